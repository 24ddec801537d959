from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from tinysdlc_nb import approvals
from tinysdlc_nb.config import DEFAULT_AGENT_IDS
from tinysdlc_nb.errors import SignOffRejected, UsageError
from tinysdlc_nb.gates.model import Tier
from tinysdlc_nb.store.chain import verify
from tinysdlc_nb.store.schema import signoffs

AGENTS = set(DEFAULT_AGENT_IDS)


def sign(store, gate, role, signer, *, approve=True, tier=Tier.LITE, version="1.0.0",
         comment=""):
    return approvals.record_signoff(store, project="demo", gate=gate, version=version, role=role,
                                    signer=signer, approve=approve, comment=comment,
                                    agent_ids=AGENTS, tier=tier)


def count_signoffs(store):
    with store.begin() as connection:
        return connection.execute(select(func.count()).select_from(signoffs)).scalar_one()


def test_agent_cannot_sign(any_store):
    with pytest.raises(SignOffRejected, match="agents never sign off"):
        sign(any_store, "g3", "reviewer", "Reviewer")
    assert count_signoffs(any_store) == 0


def test_unknown_role_rejected(any_store):
    with pytest.raises(UsageError, match="role 'janitor' is invalid"):
        sign(any_store, "g3", "janitor", "alice")


def test_g4_approval_needs_g3(any_store):
    with pytest.raises(SignOffRejected, match="G3 is not confirmed"):
        sign(any_store, "g4", "devops", "dana")
    assert count_signoffs(any_store) == 0


def test_g4_approval_after_g3(any_store):
    sign(any_store, "g3", "reviewer", "rita")
    sign(any_store, "g3", "tester", "tom")
    sign(any_store, "g4", "devops", "dana")
    status = approvals.signoff_status(any_store, "demo", "g4", "1.0.0", Tier.LITE)
    assert status.confirmed


def test_g4_rejection_allowed_without_g3(any_store):
    sign(any_store, "g4", "devops", "dana", approve=False, comment="staging is red")
    status = approvals.signoff_status(any_store, "demo", "g4", "1.0.0", Tier.LITE)
    assert [entry.state for entry in status.requirements] == ["rejected"]


@pytest.mark.parametrize(("tier", "needed"), [
    (Tier.LITE, ["reviewer", "tester"]),
    (Tier.STANDARD, ["reviewer", "tester", "se4h"]),
    (Tier.PROFESSIONAL, ["reviewer", "tester", "cto", "se4h"]),
    (Tier.ENTERPRISE, ["reviewer", "tester", "cto", "se4h"]),
])
def test_g3_requirements_by_tier(tier, needed):
    assert [req.name for req in approvals.required_signoffs("g3", tier)] == needed


@pytest.mark.parametrize(("tier", "needed"), [
    (Tier.LITE, ["devops"]),
    (Tier.STANDARD, ["devops", "se4h"]),
])
def test_g4_requirements_by_tier(tier, needed):
    assert [req.name for req in approvals.required_signoffs("g4", tier)] == needed


def test_one_person_fills_one_requirement(any_store):
    sign(any_store, "g3", "reviewer", "rita", tier=Tier.PROFESSIONAL)
    sign(any_store, "g3", "tester", "tom", tier=Tier.PROFESSIONAL)
    sign(any_store, "g3", "cto", "carla", tier=Tier.PROFESSIONAL)
    status = approvals.signoff_status(any_store, "demo", "g3", "1.0.0", Tier.PROFESSIONAL)
    assert [entry.state for entry in status.missing] == ["missing"]
    assert status.missing[0].requirement.name == "se4h"

    sign(any_store, "g3", "ceo", "eve", tier=Tier.PROFESSIONAL)
    status = approvals.signoff_status(any_store, "demo", "g3", "1.0.0", Tier.PROFESSIONAL)
    assert status.confirmed


def test_newest_decision_of_a_signer_wins(any_store):
    sign(any_store, "g3", "reviewer", "rita", approve=False, comment="tests missing")
    sign(any_store, "g3", "reviewer", "rita")
    status = approvals.signoff_status(any_store, "demo", "g3", "1.0.0", Tier.LITE)
    assert status.requirements[0].state == "approved"


def test_signoffs_are_per_version(any_store):
    sign(any_store, "g3", "reviewer", "rita", version="1.0.0")
    status = approvals.signoff_status(any_store, "demo", "g3", "1.1.0", Tier.LITE)
    assert status.requirements[0].state == "missing"


def test_evidence_file_kept_with_hash(any_store, tmp_path):
    report = tmp_path / "smoke.txt"
    report.write_text("all 12 smoke tests passed\n")
    row = approvals.record_evidence(any_store, project="demo", gate="g4", version="1.0.0",
                                    item="staging_smoke", recorded_by="dana", note="green",
                                    file=report, files_dir=tmp_path / "files", agent_ids=AGENTS)
    assert row["file_sha256"] == hashlib.sha256(b"all 12 smoke tests passed\n").hexdigest()
    kept = list((tmp_path / "files" / "evidence").iterdir())
    assert [path.read_text() for path in kept] == ["all 12 smoke tests passed\n"]


def test_evidence_item_validated(any_store, tmp_path):
    with pytest.raises(UsageError, match="evidence item 'smoke' is invalid"):
        approvals.record_evidence(any_store, project="demo", gate="g4", version="1.0.0",
                                  item="smoke", recorded_by="dana", note="x", file=None,
                                  files_dir=tmp_path, agent_ids=AGENTS)


def test_audit_clean_chain(any_store):
    sign(any_store, "g3", "reviewer", "rita")
    sign(any_store, "g3", "tester", "tom")
    with any_store.begin() as connection:
        assert verify(connection) == []


def test_update_blocked_by_database(any_store):
    sign(any_store, "g3", "reviewer", "rita")
    with pytest.raises(DatabaseError, match="append-only"):
        with any_store.begin() as connection:
            connection.execute(text("UPDATE signoffs SET signer = 'mallory'"))


def _drop_guards(store):
    with store.begin() as connection:
        if store.dialect == "sqlite":
            connection.execute(text("DROP TRIGGER signoffs_no_update"))
            connection.execute(text("DROP TRIGGER signoffs_no_delete"))
        else:
            connection.execute(text("DROP TRIGGER signoffs_append_only ON signoffs"))


def test_audit_finds_edited_row(any_store):
    for signer in ("rita", "ralf", "rosa"):
        sign(any_store, "g3", "reviewer", signer)
    _drop_guards(any_store)
    with any_store.begin() as connection:
        connection.execute(text("UPDATE signoffs SET decision = 'reject' WHERE signer = 'ralf'"))
        problems = verify(connection)
    assert [(p.table, p.problem) for p in problems] == \
        [("signoffs", "content was edited after it was recorded")]


def test_audit_finds_deleted_row(any_store):
    for signer in ("rita", "ralf", "rosa"):
        sign(any_store, "g3", "reviewer", signer)
    _drop_guards(any_store)
    with any_store.begin() as connection:
        connection.execute(text("DELETE FROM signoffs WHERE signer = 'ralf'"))
        problems = verify(connection)
    assert [(p.row_id, p.problem) for p in problems][0] == \
        (3, "the row before it was deleted or changed")
    assert problems[1].problem == "1 row(s) deleted (chain head records 3, found 2)"


def test_audit_finds_deleted_tail(any_store):
    for signer in ("rita", "ralf", "rosa"):
        sign(any_store, "g3", "reviewer", signer)
    _drop_guards(any_store)
    with any_store.begin() as connection:
        connection.execute(text("DELETE FROM signoffs WHERE signer = 'rosa'"))
        problems = verify(connection)
    assert [p.problem for p in problems] == \
        ["1 row(s) deleted from the end (chain head records 3, found 2)"]


@pytest.mark.parametrize("name", ["agent:coder", "coder-bot", "Claude", "copilot", "REVIEWER"])
def test_agent_like_names_cannot_sign(any_store, name):
    with pytest.raises(SignOffRejected, match="names an agent"):
        sign(any_store, "g3", "reviewer", name)


def test_control_characters_in_name_rejected(any_store):
    with pytest.raises(UsageError, match="control characters"):
        sign(any_store, "g3", "reviewer", "rita\nAPPROVED")


def test_one_person_cannot_take_two_roles(any_store):
    sign(any_store, "g3", "reviewer", "alice")
    with pytest.raises(SignOffRejected, match="already approved G3 1.0.0 as reviewer"):
        sign(any_store, "g3", "tester", "alice")


def test_role_must_belong_to_gate(any_store):
    with pytest.raises(UsageError, match="role 'devops' does not sign G3"):
        sign(any_store, "g3", "devops", "dana")


def test_g3_takes_no_evidence(any_store, tmp_path):
    with pytest.raises(UsageError, match="G3 takes no evidence records"):
        approvals.record_evidence(any_store, project="demo", gate="g3", version="1.0.0",
                                  item="staging_smoke", recorded_by="dana", note="x",
                                  file=None, files_dir=tmp_path, agent_ids=AGENTS)
