"""The vectorised summary and the one-incident summary follow the same rules: compared on
seeded random histories with corrections, retractions, agent acks and reopenings."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from tinysdlc_nb.incidents.derive import summarize, summarize_rows

KINDS = ["acknowledged", "unacknowledged", "contained", "resolved", "verified", "closed",
         "reopened", "severity", "note", "alert_fired", "alert_resolved"]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def random_history(rng: random.Random, incident_id: int, first_id: int) -> list[dict]:
    rows = [{"id": first_id, "incident_id": incident_id, "occurred_at": T0, "kind": "detected",
             "actor_kind": "system", "severity": rng.choice(["P0", "P1", "P2", "P3"]),
             "supersedes": None}]
    for _ in range(rng.randint(0, 12)):
        kind = rng.choice(KINDS + ["retraction", "correction"])
        row = {"id": first_id + len(rows), "incident_id": incident_id,
               "occurred_at": T0 + dt.timedelta(minutes=rng.randint(0, 300)),
               "kind": kind, "actor_kind": rng.choice(["human", "agent", "system"]),
               "severity": rng.choice(["P0", "P1", "P2", "P3"]) if kind == "severity" else None,
               "supersedes": None}
        if kind in ("retraction", "correction"):
            # As the CLI allows: only a row that is still in effect, never a retraction.
            taken = {item["supersedes"] for item in rows}
            choices = [item for item in rows
                       if item["id"] not in taken and item["kind"] != "retraction"]
            if not choices:
                continue
            target = rng.choice(choices)
            row["supersedes"] = target["id"]
            if kind == "correction":
                row["kind"] = target["kind"]
                row["severity"] = target["severity"]
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_equals_per_incident(seed):
    rng = random.Random(seed)
    histories, next_id = [], 1
    for incident_id in range(1, 201):
        history = random_history(rng, incident_id, next_id)
        next_id += len(history)
        histories.append(history)

    frame = pd.DataFrame([row for history in histories for row in history])
    frame["supersedes"] = frame["supersedes"].astype("Int64")
    vectorised = summarize(frame).set_index("incident_id")

    for history in histories:
        expected = summarize_rows(history)
        found = vectorised.loc[history[0]["incident_id"]]
        for column, value in expected.items():
            seen = found[column]
            if value is None:
                assert pd.isna(seen), (history[0]["incident_id"], column)
            else:
                assert seen == value, (history[0]["incident_id"], column)
