"""Export an executed notebook as one self-contained HTML page with no input cells.

The page carries its own styles and no script, link or font from anywhere else, so it
opens the same offline, in a mail attachment or in a CI artifact viewer.
"""

from __future__ import annotations

import html
import re
from importlib import resources
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

from .scrub import scrub

# Cells with this tag (the notebook's instructions for JupyterLab users) stay out of reports.
HIDE_TAG = "report-hide"
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_SCRIPT = re.compile(r"<script\b.*?</script>", re.IGNORECASE | re.DOTALL)


def export_html(notebook: nbformat.NotebookNode, path: Path, title: str) -> Path:
    """Write ``notebook`` to ``path`` as a standalone page and return the path."""
    body = _render_body(_without_widgets(notebook))
    style = (resources.files("tinysdlc_nb") / "report" / "report.css").read_text("utf-8")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{style}</style>\n</head>\n"
        f"<body>\n<main class=\"report\">\n{body}\n</main>\n</body>\n</html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scrub(page), encoding="utf-8")
    return path


def _render_body(notebook: nbformat.NotebookNode) -> str:
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, exclude_anchor_links=True)
    hide = TagRemovePreprocessor(remove_cell_tags=(HIDE_TAG,), enabled=True)
    exporter.register_preprocessor(hide, enabled=True)
    body, _resources = exporter.from_notebook_node(notebook)
    return _SCRIPT.sub("", body)


def _without_widgets(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget views and widget state, which render as nothing without a live kernel.

    Log lines the kernel wrote to stderr are dropped as well: they stay in the executed
    notebook, and the report states the same facts in its checklist.
    """
    copy = nbformat.from_dict(notebook)
    copy.metadata.pop("widgets", None)
    for cell in copy.cells:
        if "outputs" not in cell:
            continue
        cell.outputs = [output for output in cell.outputs
                        if _WIDGET_MIME not in output.get("data", {})
                        and not (output.get("output_type") == "stream"
                                 and output.get("name") == "stderr")]
    return copy
