"""Run a notebook through papermill: validate parameters first, bound every cell, redact.

The executed notebook never reaches the disk unredacted: papermill saves it into memory
(the ``tinysdlc-mem://`` scheme registered here) and ``run_notebook`` writes the redacted
copy itself.
"""

from __future__ import annotations

import ast
import atexit
import copy
import functools
import logging
import shutil
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.iorw import papermill_io
from traitlets import default

from .errors import NotebookParametersError, UsageError
from .scrub import scrub, scrub_data

log = logging.getLogger(__name__)

KERNEL_NAME = "tinysdlc-nb-python"
MEMORY_SCHEME = "tinysdlc-mem://"
DEFAULT_START_TIMEOUT_S = 120.0


@dataclass
class Execution:
    """The end state of a notebook run: completed, cell_error, timeout or dead_kernel."""

    state: str
    notebook: nbformat.NotebookNode
    message: str = ""

    @property
    def completed(self) -> bool:
        return self.state == "completed"


def packaged_notebook(name: str) -> Path:
    """Return the path of a notebook that ships with the package, by name or file name."""
    file_name = name if name.endswith(".ipynb") else f"{name}.ipynb"
    path = Path(str(resources.files("tinysdlc_nb") / "notebooks" / file_name))
    if not path.is_file():
        shipped = sorted(p.stem for p in path.parent.glob("*.ipynb"))
        raise UsageError(f"notebook '{name}' not found; shipped notebooks: {', '.join(shipped)}")
    return path


def declared_parameters(notebook: nbformat.NotebookNode, source: str) -> dict[str, Any]:
    """Return the names and default values assigned in the notebook's tagged parameters cell.

    Raises NotebookParametersError when no code cell carries the ``parameters`` tag, since
    papermill would then inject undeclared values.
    """
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return _assignments(cell.source, source)
    raise NotebookParametersError(f"notebook '{source}' has no code cell tagged 'parameters'; "
                                  f"add the tag to the cell that declares its parameters")


def validate_parameters(notebook: nbformat.NotebookNode, source: str,
                        parameters: dict[str, Any]) -> None:
    """Reject parameters the notebook does not declare, before any kernel starts."""
    declared = declared_parameters(notebook, source)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise NotebookParametersError(f"notebook '{source}' does not declare parameter "
                                      f"'{unknown[0]}'; declared: {', '.join(declared)}")


def run_notebook(source: Path, parameters: dict[str, Any], *, cwd: Path,
                 cell_timeout_s: float, progress: bool = False,
                 output_ipynb: Path | None = None, failure_expected: bool = False) -> Execution:
    """Execute ``source`` with ``parameters`` and return the redacted executed notebook.

    A failing cell, a cell past ``cell_timeout_s`` and a dead kernel end the run with the
    matching ``state`` instead of raising. The notebook then contains every output up to
    that point. ``failure_expected`` logs such an ending at INFO instead of ERROR, for
    notebooks whose last cell raises to mark a failed run the caller reports itself.
    """
    notebook = nbformat.read(source, as_version=4)
    validate_parameters(notebook, str(source), parameters)
    notebook.metadata.setdefault("kernelspec", {}).update(name=KERNEL_NAME, language="python")

    key = f"{MEMORY_SCHEME}{uuid.uuid4().hex}.ipynb"
    state, message = "completed", ""
    log.info("executing %s in %s", source.name, cwd)
    try:
        papermill.execute_notebook(
            notebook, key, parameters=parameters, kernel_name=KERNEL_NAME, language="python",
            progress_bar=progress, cwd=str(cwd), execution_timeout=cell_timeout_s,
            start_timeout=DEFAULT_START_TIMEOUT_S, kernel_manager_class=SameEnvKernelManager,
            engine_name=ENGINE_NAME,
        )
    except PapermillExecutionError as error:
        state, message = "cell_error", f"cell {error.exec_count} raised {error.ename}: " \
                                       f"{error.evalue}"
    except CellTimeoutError as error:
        state, message = "timeout", f"a cell ran past {cell_timeout_s:g} s ({error})"
    except DeadKernelError as error:
        state, message = "dead_kernel", f"the kernel died ({error})"
    except RuntimeError as error:
        if "kernel" not in str(error).lower():
            raise
        state, message = "dead_kernel", f"the kernel failed ({error})"
    if state != "completed":
        level = logging.INFO if failure_expected and state == "cell_error" else logging.ERROR
        log.log(level, "notebook %s ended early: %s", source.name, scrub(message))

    executed = _MemoryHandler.take(key) or notebook
    # papermill records its input as given, here the whole notebook object; keep the path.
    papermill_meta = executed.metadata.get("papermill")
    if papermill_meta is not None:
        papermill_meta["input_path"] = str(source)
        papermill_meta["output_path"] = str(output_ipynb) if output_ipynb else None
    executed = redact_notebook(executed)
    executed.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    if output_ipynb is not None:
        output_ipynb.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(executed, output_ipynb)
    return Execution(state, executed, scrub(message))


def redact_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a copy with every output, source and metadata string redacted."""
    redacted = copy.deepcopy(notebook)
    redacted.metadata = nbformat.from_dict(scrub_data(dict(redacted.metadata)))
    for cell in redacted.cells:
        cell.source = scrub(cell.source)
        cell.metadata = nbformat.from_dict(scrub_data(dict(cell.get("metadata", {}))))
        for output in cell.get("outputs", []):
            if "text" in output:
                text = output["text"]
                output["text"] = scrub("".join(text) if isinstance(text, list) else text)
            if "data" in output:
                output["data"] = scrub_data(output["data"])
            if "traceback" in output:
                output["traceback"] = [scrub(line) for line in output["traceback"]]
            if "evalue" in output:
                output["evalue"] = scrub(output["evalue"])
    return redacted


class SameEnvKernelSpecManager(KernelSpecManager):
    """Serve a kernel spec that starts this very interpreter, whatever is on PATH."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == KERNEL_NAME:
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"],
                              display_name="Python (tinysdlc-nb)", language="python",
                              resource_dir="")
        return super().get_kernel_spec(kernel_name)


class SameEnvKernelManager(AsyncKernelManager):
    """Start kernels of this interpreter, talking over local IPC sockets rather than TCP."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        # jupyter_client would put the IPC sockets in the current folder, the user's project.
        return str(Path(tempfile.mkdtemp(prefix="tinysdlc-kernel-", dir=_ipc_root())) / "ipc")

    @default("kernel_spec_manager")
    def _default_kernel_spec_manager(self) -> KernelSpecManager:
        return SameEnvKernelSpecManager(data_dir=self.data_dir)


@functools.cache
def _ipc_root() -> str:
    """Return a private folder for this process's kernel sockets, removed at exit."""
    root = tempfile.mkdtemp(prefix="tinysdlc-ipc-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


class _SaveAtEndManager(NotebookExecutionManager):
    """Execution state that writes the notebook once, when the run ends in any way.

    papermill saves at the start and the end of every cell. Each save serializes and
    validates the whole notebook, about 15 ms for a compiled 20-step runbook, so per-cell
    saves would cost more than the steps themselves. The final save still runs after a
    dead kernel or a cell timeout, so the partial outputs are kept.
    """

    final = False

    def save(self, **kwargs) -> None:
        if self.final:
            super().save(**kwargs)

    def notebook_complete(self, **kwargs) -> None:
        self.final = True
        super().notebook_complete(**kwargs)


class _SaveAtEndEngine(NBClientEngine):
    """papermill's nbclient engine with ``_SaveAtEndManager`` as its execution state."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True,
                         log_output=False, autosave_cell_every=30, **kwargs):
        manager = _SaveAtEndManager(nb, output_path=output_path, progress_bar=progress_bar,
                                    log_output=log_output,
                                    autosave_cell_every=autosave_cell_every)
        manager.notebook_start()
        try:
            cls.execute_managed_notebook(manager, kernel_name, log_output=log_output, **kwargs)
        finally:
            manager.cleanup_pbar()
            manager.notebook_complete()
        return manager.nb


ENGINE_NAME = "tinysdlc-save-at-end"
papermill_engines.register(ENGINE_NAME, _SaveAtEndEngine)


class _MemoryHandler:
    """A papermill I/O handler that keeps the newest save of each notebook in memory."""

    _saved: dict[str, str] = {}
    _lock = threading.Lock()

    @classmethod
    def read(cls, path: str) -> str:
        with cls._lock:
            return cls._saved[path]

    @classmethod
    def write(cls, buf: str, path: str) -> None:
        with cls._lock:
            cls._saved[path] = buf

    @classmethod
    def listdir(cls, path: str) -> list[str]:
        with cls._lock:
            return [key for key in cls._saved if key.startswith(path)]

    @classmethod
    def pretty_path(cls, path: str) -> str:
        return path

    @classmethod
    def take(cls, path: str) -> nbformat.NotebookNode | None:
        with cls._lock:
            buf = cls._saved.pop(path, None)
        return nbformat.reads(buf, as_version=4) if buf is not None else None


papermill_io.register(MEMORY_SCHEME, _MemoryHandler)


def _assignments(cell_source: str, source: str) -> dict[str, Any]:
    try:
        tree = ast.parse(cell_source)
    except SyntaxError as error:
        raise NotebookParametersError(f"notebook '{source}': the parameters cell is not valid "
                                      f"Python ({error.msg}, line {error.lineno})") from error
    names: dict[str, Any] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                value = getattr(node, "value", None)
                try:
                    names[target.id] = ast.literal_eval(value) if value is not None else None
                except ValueError:
                    names[target.id] = None
    return names
