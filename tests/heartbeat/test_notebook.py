"""The heartbeat notebook through papermill and a real kernel."""

from __future__ import annotations

import pytest
from beatkit import write_project

from tinysdlc_nb.config import load_config
from tinysdlc_nb.execute import declared_parameters, packaged_notebook, run_notebook
from tinysdlc_nb.heartbeat.beat import previous_beats
from tinysdlc_nb.store import open_store


def test_notebook_parameters():
    import nbformat

    notebook = nbformat.read(packaged_notebook("heartbeat"), as_version=4)
    assert declared_parameters(notebook, "heartbeat") == {"project": ".",
                                                          "schedule_run_id": 0}


@pytest.mark.kernel
def test_notebook_runs_beat(tmp_path, health):
    url = health.url("/error")
    project = write_project(tmp_path / "shop", f'[heartbeat]\nendpoints = [{{name = "api", '
                                               f'url = "{url}"}}]\n')
    execution = run_notebook(packaged_notebook("heartbeat"),
                             {"project": str(project), "schedule_run_id": 0}, cwd=project,
                             cell_timeout_s=120)
    assert execution.state == "cell_error"
    assert "NeedsPerson: 1 finding(s) need a person: Endpoint api is down" in execution.message

    texts = [str(output.get("data", {}).get("text/markdown", ""))
             + str(output.get("data", {}).get("text/plain", ""))
             for cell in execution.notebook.cells for output in cell.get("outputs", [])]
    assert any("1 need a person" in text for text in texts)
    assert any("Endpoint api is down" in text for text in texts)

    store = open_store(load_config(project).database_url)
    beats = previous_beats(store)
    store.close()
    assert len(beats) == 1


@pytest.mark.kernel
def test_notebook_completes_when_healthy(tmp_path, health):
    url = health.url("/ok")
    project = write_project(tmp_path / "shop", f'[heartbeat]\nendpoints = [{{name = "api", '
                                               f'url = "{url}"}}]\n')
    execution = run_notebook(packaged_notebook("heartbeat"),
                             {"project": str(project), "schedule_run_id": 0}, cwd=project,
                             cell_timeout_s=120)
    assert execution.state == "completed", execution.message
