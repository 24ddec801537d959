"""Fixtures of the incident tests: a store that applies signals, and a CLI runner."""

from __future__ import annotations

import pytest

from tinysdlc_nb.cli import main
from tinysdlc_nb.incidents.engine import EngineSettings, apply_signals
from tinysdlc_nb.incidents.model import Signal


@pytest.fixture
def ingest(sqlite_store):
    """Apply signals to a fresh SQLite store and return the outcomes."""

    def apply(*signals: Signal, settings: EngineSettings | None = None):
        return apply_signals(sqlite_store, signals, settings or EngineSettings())

    apply.store = sqlite_store
    return apply


@pytest.fixture
def run(tmp_path, capsys):
    """Run the CLI in this process on a project in tmp_path; return (exit code, out, err)."""

    def invoke(*args: str):
        code = main([*args, "--project", str(tmp_path)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
