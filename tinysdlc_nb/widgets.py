"""The approval panel: a sign-off form over the same recording code the CLI uses."""

from __future__ import annotations

import ipywidgets as widgets

from . import approvals
from .errors import TinySDLCError
from .gates import display as views
from .gates.run import GateRun


def approval_panel(run: GateRun) -> widgets.VBox:
    """Return a form that records a sign-off for ``run`` and refreshes its verdict.

    Clicking Approve or Reject calls ``approvals.record_signoff`` exactly as
    ``tinysdlc-nb approve`` does, so an agent id is rejected here too.
    """
    name = widgets.Text(description="Name", placeholder="your name")
    role = widgets.Dropdown(description="Role", options=approvals.ROLES,
                            value="devops" if run.gate == "g4" else "reviewer")
    comment = widgets.Textarea(description="Comment", layout=widgets.Layout(width="60%"))
    approve = widgets.Button(description="Approve", button_style="success", icon="check")
    reject = widgets.Button(description="Reject", button_style="danger", icon="times")
    result = widgets.HTML()

    def record(approved: bool) -> None:
        try:
            approvals.record_signoff(
                run.store, project=run.project, gate=run.gate, version=run.version,
                role=role.value, signer=name.value, approve=approved, comment=comment.value,
                agent_ids=run.config.agent_ids(), tier=run.tier, source="widget")
        except TinySDLCError as error:
            result.value = f"<p class=\"status status-FAIL\">{views.escaped(error)}</p>"
            return
        run.refresh()
        result.value = views.signoffs(run) + views.verdict(run)

    approve.on_click(lambda _button: record(True))
    reject.on_click(lambda _button: record(False))
    return widgets.VBox([name, role, comment, widgets.HBox([approve, reject]), result])
