"""Per-severity metrics: medians and p90 of TTA/TTC/TTR, open incidents, SLA breaches,
retractions and corrections, and --since."""

from __future__ import annotations

import math

import pytest
from incidentkit import T0, minutes

from tinysdlc_nb.config import _default_sla
from tinysdlc_nb.incidents.actions import Actions
from tinysdlc_nb.incidents.metrics import incident_table, severity_metrics
from tinysdlc_nb.incidents.model import Kind
from tinysdlc_nb.incidents.records import NewRow, append_row
from tinysdlc_nb.incidents.sla import SlaPolicy
from tinysdlc_nb.incidents.view import incident_rows

POLICY = SlaPolicy.from_config(_default_sla())


@pytest.fixture
def actions(sqlite_store):
    return Actions(sqlite_store, owner="SE4H", agent_ids={"coder"})


def metrics_by_severity(store, now_minute=10_000, since=None):
    table = incident_table(store, POLICY, now=minutes(now_minute), since=since)
    return {row["severity"]: row for row in severity_metrics(table).to_dict("records")}


def handled(actions, severity, start, ack, contain, resolve):
    incident = actions.open(title=f"{severity} at {start}", by="ann", severity=severity,
                            at=minutes(start))
    if ack is not None:
        actions.acknowledge(incident, by="bob", at=minutes(start + ack))
    if contain is not None:
        actions.log(incident, "rolled back", kind="contained", by="bob",
                    at=minutes(start + contain))
    if resolve is not None:
        actions.resolve(incident, by="bob", at=minutes(start + resolve))
    return incident


def test_medians_and_p90(actions):
    for offset, (ack, resolve) in enumerate([(2, 30), (4, 60), (6, 90), (8, 120), (10, 150)]):
        handled(actions, "P1", offset * 1000, ack, None, resolve)

    p1 = metrics_by_severity(actions.store)["P1"]

    assert p1["count"] == 5
    assert p1["open"] == 0
    assert p1["tta_median_s"] == 6 * 60
    # Linear interpolation between the 4th and 5th values: 8 + 0.6 * 2 minutes.
    assert p1["tta_p90_s"] == pytest.approx(9.2 * 60)
    assert p1["ttr_median_s"] == 90 * 60
    assert p1["ttr_p90_s"] == pytest.approx(138 * 60)
    # A resolution without an explicit containment contains the incident too.
    assert p1["ttc_median_s"] == p1["ttr_median_s"]


def test_open_incidents_counted_not_measured(actions):
    handled(actions, "P2", 0, 10, 20, 30)
    handled(actions, "P2", 100, None, None, None)
    handled(actions, "P2", 200, 50, None, None)

    p2 = metrics_by_severity(actions.store, now_minute=100_000)["P2"]

    assert p2["count"] == 3
    assert p2["open"] == 2
    assert p2["ttr_median_s"] == 30 * 60
    assert p2["ttr_p90_s"] == 30 * 60
    assert p2["tta_median_s"] == 30 * 60
    assert p2["ttc_median_s"] == 20 * 60


def test_agent_acks_not_in_tta(actions):
    incident = handled(actions, "P3", 0, None, None, None)
    actions.acknowledge(incident, by="coder", at=minutes(1))

    p3 = metrics_by_severity(actions.store)["P3"]

    assert math.isnan(p3["tta_median_s"])
    assert p3["open"] == 1


def test_breaches_counted_per_severity(actions):
    handled(actions, "P0", 0, 3, None, 20)
    handled(actions, "P0", 100, 9, None, 30)
    handled(actions, "P0", 200, None, None, None)

    p0 = metrics_by_severity(actions.store, now_minute=1000)["P0"]

    assert p0["sla_breaches"] == 2
    assert metrics_by_severity(actions.store)["P1"]["count"] == 0


def test_retracted_ack_no_longer_counts(actions):
    incident = handled(actions, "P1", 0, 5, None, None)
    ack_row = [row for row in incident_rows(actions.store, incident)
               if row["kind"] == "acknowledged"][0]

    actions.retract(incident, ack_row["id"], by="ann", reason="wrong incident")

    assert math.isnan(metrics_by_severity(actions.store)["P1"]["tta_median_s"])
    kinds = [row["kind"] for row in incident_rows(actions.store, incident)]
    assert "acknowledged" not in kinds
    raw = [row["kind"] for row in incident_rows(actions.store, incident, raw=True)]
    assert raw.count("acknowledged") == 1
    assert raw.count("retraction") == 1


def test_corrected_time_is_used(actions):
    incident = handled(actions, "P1", 0, 50, None, None)
    ack_row = [row for row in incident_rows(actions.store, incident)
               if row["kind"] == "acknowledged"][0]

    actions.correct(incident, ack_row["id"], by="ann", at=minutes(12))

    assert metrics_by_severity(actions.store)["P1"]["tta_median_s"] == 12 * 60


def test_resolve_then_reopen_is_open(actions):
    incident = handled(actions, "P2", 0, 5, None, 30)
    with actions.store.begin() as connection:
        append_row(connection, incident, NewRow(Kind.REOPENED, minutes(40), "test"))

    p2 = metrics_by_severity(actions.store)["P2"]
    assert p2["open"] == 1
    assert math.isnan(p2["ttr_median_s"])


def test_since_filters_by_detection(actions):
    handled(actions, "P2", 0, 5, None, 30)
    handled(actions, "P2", 2000, 7, None, 40)

    p2 = metrics_by_severity(actions.store, since=minutes(1000))["P2"]

    assert p2["count"] == 1
    assert p2["tta_median_s"] == 7 * 60


def test_every_severity_listed_when_empty(sqlite_store):
    table = incident_table(sqlite_store, POLICY, now=T0)

    result = severity_metrics(table)

    assert list(result["severity"]) == ["P0", "P1", "P2", "P3"]
    assert list(result["count"]) == [0, 0, 0, 0]
