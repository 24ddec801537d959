"""Write one incident's postmortem: execute the notebook, keep the .ipynb, export HTML.

Both files land in ``<home>/reports/postmortems/INC-N/`` unless another folder is given,
and a second run overwrites them. The notebook reads the store itself, so the store URL
(which may carry a password) never becomes a notebook parameter.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import nbformat

from ..config import Config
from ..errors import TinySDLCError, UsageError
from ..execute import packaged_notebook, run_notebook, validate_parameters
from ..htmlreport import export_html
from ..store import open_store
from . import records
from .drafting import DraftSettings
from .records import display_id, parse_incident_id
from .times import iso, load_zone

log = logging.getLogger(__name__)

NOTEBOOK = "postmortem"


class PostmortemFailed(TinySDLCError, RuntimeError):
    """The postmortem notebook stopped before its end; the partial report is still written."""


def default_output_dir(config: Config, incident_id: int) -> Path:
    return config.home / "reports" / "postmortems" / display_id(incident_id)


def write_postmortem(config: Config, incident_id: str | int, output_dir: Path | str | None = None,
                     *, now: dt.datetime | None = None) -> Path:
    """Execute the postmortem notebook for one incident and return the HTML report's path.

    An invalid or unknown incident id, an output path that is a file, an unknown display
    zone and an invalid drafting setting raise before any kernel starts. A notebook that
    stops early raises PostmortemFailed after both files are written.
    """
    number = parse_incident_id(incident_id)
    label = display_id(number)
    title = _incident_title(config, number)
    DraftSettings.from_env()
    load_zone(config.project["display_zone"])

    folder = Path(output_dir).resolve() if output_dir else default_output_dir(config, number)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output '{output_dir}' is a file; pass a folder for the report")

    source = packaged_notebook(NOTEBOOK)
    parameters = {"incident_id": label, "project_dir": str(config.project_dir.resolve()),
                  "database_url": "", "now": iso(now) if now else ""}
    validate_parameters(nbformat.read(source, as_version=4), str(source), parameters)

    folder.mkdir(parents=True, exist_ok=True)
    notebook_path = folder / f"postmortem-{label}.ipynb"
    execution = run_notebook(source, parameters, cwd=config.project_dir.resolve(),
                             cell_timeout_s=config.gate["cell_timeout_s"],
                             output_ipynb=notebook_path)
    html_path = export_html(execution.notebook, folder / f"postmortem-{label}.html",
                            f"Postmortem {label}: {title}")

    if not execution.completed:
        raise PostmortemFailed(f"the postmortem of {label} stopped early: {execution.message}; "
                               f"the partial report is {html_path}")
    log.info("postmortem of %s written to %s", label, html_path)
    return html_path


def _incident_title(config: Config, incident_id: int) -> str:
    """Return the incident's title; raise UsageError naming INC-N when it does not exist."""
    store = open_store(config.database_url)
    try:
        with store.begin() as connection:
            return records.incident_row(connection, incident_id)["title"]
    finally:
        store.close()
