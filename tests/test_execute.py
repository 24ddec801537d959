"""The papermill wrapper on tiny notebooks, one per hard case, through real kernels."""

from __future__ import annotations

import re
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tinysdlc_nb.errors import NotebookParametersError
from tinysdlc_nb.execute import declared_parameters, packaged_notebook, run_notebook
from tinysdlc_nb.htmlreport import export_html

# Built at run time so that no token-shaped literal sits in the repository.
PLANTED_TOKEN = "ghp_" + "Zq8" * 12


def write_notebook(path, *sources, tagged=True):
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                       "display_name": "Python 3"}
    parameters = new_code_cell("value = 1")
    if tagged:
        parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, *(new_code_cell(source) for source in sources)]
    nbformat.write(notebook, path)
    return path


def outputs_text(notebook):
    return "".join(output.get("text", "") for cell in notebook.cells
                   for output in cell.get("outputs", []))


def test_untagged_notebook_rejected(tmp_path):
    path = write_notebook(tmp_path / "untagged.ipynb", "print(value)", tagged=False)
    with pytest.raises(NotebookParametersError, match="no code cell tagged 'parameters'"):
        run_notebook(path, {"value": 2}, cwd=tmp_path, cell_timeout_s=30)


def test_unknown_parameter_rejected(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", "print(value)")
    with pytest.raises(NotebookParametersError, match="does not declare parameter 'valeu'"):
        run_notebook(path, {"valeu": 2}, cwd=tmp_path, cell_timeout_s=30)


def test_packaged_gate_notebooks_declare_parameters():
    for name in ("g3_ship_ready", "g4_production_ready"):
        notebook = nbformat.read(packaged_notebook(name), as_version=4)
        declared = declared_parameters(notebook, name)
        assert {"project", "version", "tier", "environment", "run_id", "output_dir"} \
            <= set(declared)


@pytest.mark.kernel
def test_kernel_is_this_interpreter(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", "import sys\nprint(sys.executable)")
    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=60)
    assert execution.completed
    assert outputs_text(execution.notebook).strip() == sys.executable


@pytest.mark.kernel
def test_parameters_injected(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", "print(value * 2)")
    execution = run_notebook(path, {"value": 21}, cwd=tmp_path, cell_timeout_s=60)
    assert outputs_text(execution.notebook).strip() == "42"


@pytest.mark.kernel
def test_dead_kernel_reported(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", "print('before')",
                          "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                          "print('after')")
    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=60)
    assert execution.state == "dead_kernel"
    assert "before" in outputs_text(execution.notebook)
    assert "after" not in outputs_text(execution.notebook)


@pytest.mark.kernel
def test_cell_timeout_reported(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", "import time\ntime.sleep(60)")
    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=3)
    assert execution.state == "timeout"


@pytest.mark.kernel
def test_cell_error_reported(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", "raise ValueError('broken cell')")
    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=60)
    assert execution.state == "cell_error"
    assert "broken cell" in execution.message


@pytest.mark.kernel
def test_secret_output_redacted_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_DEPLOY_TOKEN", "s3cr3t-deploy-value-9f8e7d")
    monkeypatch.setenv("PLANTED", PLANTED_TOKEN)
    path = write_notebook(
        tmp_path / "nb.ipynb",
        "import os\nprint('token', os.environ['DEMO_DEPLOY_TOKEN'])\nprint(os.environ['PLANTED'])",
        "raise RuntimeError(os.environ['PLANTED'])")
    output = tmp_path / "out" / "executed.ipynb"
    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=60, output_ipynb=output)
    html_path = export_html(execution.notebook, tmp_path / "out" / "report.html", "demo")

    for written in (output.read_text(), html_path.read_text(), execution.message):
        assert "s3cr3t-deploy-value-9f8e7d" not in written
        assert PLANTED_TOKEN not in written
    assert "REDACTED" in output.read_text()


@pytest.mark.kernel
def test_html_is_self_contained(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb",
                          "from IPython.display import HTML, display\n"
                          "display(HTML('<h1>Report body</h1>'))\n"
                          "distinctive_input_marker = 1")
    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=60)
    page = export_html(execution.notebook, tmp_path / "report.html", "demo").read_text()

    assert "<h1>Report body</h1>" in page
    assert "distinctive_input_marker" not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) is None


@pytest.mark.kernel
def test_no_kernel_files_left_in_current_folder(tmp_path, monkeypatch):
    path = write_notebook(tmp_path / "nb.ipynb", "print(value)")
    current = tmp_path / "current"
    current.mkdir()
    monkeypatch.chdir(current)
    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=60)
    assert execution.completed
    assert list(current.iterdir()) == []


@pytest.mark.kernel
def test_report_hides_tagged_cells_and_stderr(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb",
                          "import sys\nprint('log line on stderr', file=sys.stderr)\n"
                          "print('shown on stdout')")
    notebook = nbformat.read(path, as_version=4)
    intro = nbformat.v4.new_markdown_cell("Instructions for JupyterLab users")
    intro.metadata["tags"] = ["report-hide"]
    notebook.cells.insert(0, intro)
    nbformat.write(notebook, path)

    execution = run_notebook(path, {}, cwd=tmp_path, cell_timeout_s=60)
    page = export_html(execution.notebook, tmp_path / "report.html", "demo").read_text()
    assert "shown on stdout" in page
    assert "log line on stderr" not in page
    assert "Instructions for JupyterLab users" not in page
