"""The exception hierarchy. The CLI maps every ``TinySDLCError`` to exit code 2."""


class TinySDLCError(Exception):
    """Base class of every error the tool raises on purpose."""


class ConfigError(TinySDLCError, ValueError):
    """A setting in config.toml, settings.json or the environment is invalid."""


class UsageError(TinySDLCError, ValueError):
    """A command-line argument or parameter is invalid."""


class NotebookParametersError(UsageError):
    """A notebook has no tagged parameters cell, or a parameter does not fit it."""


class StoreError(TinySDLCError, RuntimeError):
    """The store could not be opened, migrated or written."""


class SignOffRejected(TinySDLCError, PermissionError):
    """A sign-off was refused, for example because its signer is an agent."""


class CheckTimeout(TinySDLCError, TimeoutError):
    """A check's tool ran past its timeout."""

    def __init__(self, check: str, seconds: float):
        super().__init__(f"check '{check}' timed out after {seconds:g} s")
        self.check = check
        self.seconds = seconds


class ToolMissing(TinySDLCError, FileNotFoundError):
    """A check's tool is not installed in this environment."""


class PayloadError(TinySDLCError, ValueError):
    """An alert or webhook payload is not valid JSON or lacks a field its format requires."""
