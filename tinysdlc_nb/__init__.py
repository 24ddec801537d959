"""tinysdlc-nb: a notebook-first DevOps assistant for teams that follow the TinySDLC workflow."""

__version__ = "0.1.0"
