"""Declarations of settings: each one has a key, a type, a default, a unit and help text.

Config validation, ``tinysdlc-nb config --help`` output and the README table all read
these declarations, so a setting is described in one place only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list",
               dict: "table"}


@dataclass(frozen=True)
class Setting:
    """One declared setting of a config section."""

    key: str
    type: type
    default: Any
    help: str
    unit: str | None = None
    choices: Sequence[Any] | None = None
    minimum: float | None = None

    def coerce(self, value: Any, where: str) -> Any:
        """Return ``value`` checked against this declaration; raise ConfigError naming ``where``."""
        expected = self.type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ConfigError(
                f"{where}: {self.key} = {value!r} is invalid; expected "
                f"{_article(_TYPE_NAMES[expected])} {_TYPE_NAMES[expected]}"
            )
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(choice) for choice in self.choices)
            raise ConfigError(
                f"{where}: {self.key} '{value}' is invalid; expected one of {allowed}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(
                f"{where}: {self.key} = {value!r} is invalid; it must be at least {self.minimum:g}"
            )
        return value


@dataclass(frozen=True)
class Section:
    """A named group of settings, such as ``[checks.secrets]`` in config.toml."""

    name: str
    settings: Sequence[Setting] = field(default_factory=tuple)

    def defaults(self) -> dict[str, Any]:
        return {setting.key: _copy(setting.default) for setting in self.settings}

    def resolve(self, raw: dict[str, Any] | None, where: str) -> dict[str, Any]:
        """Merge ``raw`` over the defaults, rejecting unknown keys and values of the wrong type."""
        values = self.defaults()
        declared = {setting.key: setting for setting in self.settings}
        for key, value in (raw or {}).items():
            if key not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise ConfigError(
                    f"{where}: unknown setting '{self.name}.{key}'; known settings: {known}"
                )
            values[key] = declared[key].coerce(value, where)
        return values


def seconds_from_env(name: str, default: float, maximum: float) -> float:
    """Return the number of seconds in environment variable ``name``, or ``default`` when unset.

    Raise ConfigError naming the variable when the value is not above 0 and at most ``maximum``.
    """
    text = os.environ.get(name, "").strip()
    try:
        seconds = float(text) if text else default
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= maximum:
        raise ConfigError(f"{name}='{text}' is invalid; set a number of seconds above 0 and "
                          f"at most {maximum:g}, or unset it for {default:g}")
    return seconds


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
