"""The incident review notebook through a real kernel, and the formatting it relies on."""

from __future__ import annotations

import datetime as dt
import math
import re
from html.parser import HTMLParser

import pytest

from tinysdlc_nb.config import load_config
from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.execute import packaged_notebook, run_notebook
from tinysdlc_nb.htmlreport import export_html
from tinysdlc_nb.incidents.actions import Actions
from tinysdlc_nb.incidents.metrics import incident_table, severity_metrics
from tinysdlc_nb.incidents.report_format import format_duration, parse_report_time
from tinysdlc_nb.incidents.review import load_review
from tinysdlc_nb.incidents.sla import SlaPolicy
from tinysdlc_nb.store import open_store

T0 = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=10)


def after(**delta) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    return load_config(folder)


def record_incidents(config) -> dict[str, int]:
    """Record five incidents with backfilled times; the P3 one predates T0."""
    store = open_store(config.database_url)
    actions = Actions(store, owner="SE4H", agent_ids=config.agent_ids())
    ids = {}
    try:
        ids["quick_p0"] = actions.open(title="API down", by="alice", severity="P0", at=T0)
        actions.acknowledge(ids["quick_p0"], by="alice", at=after(minutes=3))
        actions.resolve(ids["quick_p0"], by="alice", at=after(hours=2))

        ids["late_p0"] = actions.open(title="Queue <stuck>", by="bob", severity="P0",
                                      at=after(days=1))
        actions.acknowledge(ids["late_p0"], by="bob", at=after(days=1, minutes=20))
        actions.log(ids["late_p0"], "drained the queue", by="bob", kind="contained",
                    at=after(days=1, minutes=40))
        actions.resolve(ids["late_p0"], by="bob", at=after(days=1, hours=1, seconds=7))

        ids["open_p1"] = actions.open(title="Slow search", by="carol", severity="P1",
                                      at=after(days=2))
        actions.acknowledge(ids["open_p1"], by="carol", at=after(days=2, minutes=30))

        ids["unacked_p2"] = actions.open(title="Disk 85%", by="dave", severity="P2",
                                         at=after(days=3))

        ids["old_p3"] = actions.open(title="Typo on status page", by="erin", severity="P3",
                                     at=T0 - dt.timedelta(days=30))
        actions.resolve(ids["old_p3"], by="erin", at=T0 - dt.timedelta(days=29))
    finally:
        store.close()
    return ids


class Tables(HTMLParser):
    """Collects the text of every table cell, table by table, with the heading before it."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.heading = ""
        self._in_heading = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self._in_heading, self.heading = True, ""
        elif tag == "table":
            self.tables[self.heading] = []
        elif tag == "tr":
            self.tables[self.heading].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_heading = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self.heading][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._in_heading:
            self.heading += data
        if self._cell is not None:
            self._cell.append(data)


def seconds_of(text: str) -> float:
    """Read ``1d 2h 3m 4s`` back as seconds; the dash is NaN."""
    if text == "–":
        return math.nan
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return float(sum(int(value) * units[unit] for value, unit in re.findall(r"(\d+)([dhms])",
                                                                             text)))


@pytest.mark.kernel
def test_review_matches_severity_metrics(project, tmp_path):
    ids = record_incidents(project)
    source = packaged_notebook("incident_review")

    execution = run_notebook(source, {"project_dir": str(project.project_dir),
                                      "since": T0.date().isoformat(), "now": NOW.isoformat()},
                             cwd=project.project_dir, cell_timeout_s=120)
    assert execution.completed, execution.message
    page = export_html(execution.notebook, tmp_path / "review.html", "review").read_text()

    store = open_store(project.database_url)
    try:
        table = incident_table(store, SlaPolicy.from_config(project.sla), now=NOW, since=T0)
    finally:
        store.close()
    expected = severity_metrics(table)

    parser = Tables()
    parser.feed(page)
    head, *rows = parser.tables["Response metrics by severity"]
    assert head == ["Severity", "Incidents", "Open", "TTA median", "TTA p90", "TTC median",
                    "TTR median", "TTR p90", "SLA breaches"]
    assert [row[0] for row in rows] == list(expected["severity"])
    for row, (_, numbers) in zip(rows, expected.iterrows(), strict=True):
        assert int(row[1]) == numbers["count"]
        assert int(row[2]) == numbers["open"]
        assert int(row[8]) == numbers["sla_breaches"]
        for cell, column in zip(row[3:8], ("tta_median_s", "tta_p90_s", "ttc_median_s",
                                           "ttr_median_s", "ttr_p90_s"), strict=True):
            value = numbers[column]
            if math.isnan(value):
                assert cell == "–", column
            else:
                assert seconds_of(cell) == round(value), column

    assert [int(row[1]) for row in rows] == [2, 1, 1, 0]
    assert rows[0][3] == "11m 30s"
    breached = parser.tables["SLA breaches"][1:]
    assert sorted((row[0], row[3]) for row in breached) == [
        (f"INC-{ids['late_p0']}", "acknowledge"), (f"INC-{ids['unacked_p2']}", "acknowledge")]
    open_rows = parser.tables["Open incidents"][1:]
    assert [row[0] for row in open_rows] == [f"INC-{ids['open_p1']}", f"INC-{ids['unacked_p2']}"]
    assert "Queue &lt;stuck&gt;" in page
    assert "load_review(" not in page


def test_review_since_filters(project):
    record_incidents(project)

    everything = load_review(project.project_dir, now=NOW.isoformat())
    recent = load_review(project.project_dir, since="2026-01-12", now=NOW.isoformat())

    assert len(everything.table) == 5
    assert len(recent.table) == 4
    assert list(recent.metrics["count"]) == [2, 1, 1, 0]


def test_review_invalid_since(project):
    with pytest.raises(UsageError, match="since 'last week' is invalid"):
        load_review(project.project_dir, since="last week")


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59.4, "59s"), (59.6, "1m"), (3600, "1h"), (90061, "1d 1h 1m 1s"),
    (float("nan"), "–"), (None, "–"), (-61, "-1m 1s"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_parse_report_time():
    assert parse_report_time("", "now") is None
    assert parse_report_time("2026-03-01", "since") == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert parse_report_time("2026-03-01T13:00:00+01:00", "now") == \
        dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    with pytest.raises(UsageError, match="now '2026-03-01T13:00' is invalid"):
        parse_report_time("2026-03-01T13:00", "now")
