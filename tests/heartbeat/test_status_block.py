"""The status block rewrite: only the bytes between the markers change."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from beatkit import add_gate_run, write_project

from tinysdlc_nb import approvals
from tinysdlc_nb.config import load_config
from tinysdlc_nb.heartbeat.status_block import (
    END,
    START,
    rewrite_block,
    status_lines,
    update_status_block,
)
from tinysdlc_nb.store import open_store

LINES = ["Stage: 06-Deploy", "Gate: G3 received (1.4.0)"]
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def block(newline: str = "\n") -> bytes:
    return newline.join([START, *LINES, END]).encode("utf-8")


def test_block_replaced_keeps_outside(tmp_path):
    path = tmp_path / "AGENTS.md"
    before, after = b"# DevOps\n\nIntro.\n", b"\n\n## Soul\nRest.\n"
    path.write_bytes(before + START.encode() + b"\nStage: old\n" + END.encode() + after)
    assert rewrite_block(path, LINES).outcome == "replaced"
    assert path.read_bytes() == before + block() + after


def test_block_crlf_kept(tmp_path):
    path = tmp_path / "AGENTS.md"
    before, after = b"# DevOps\r\n", b"\r\nTail.\r\n"
    path.write_bytes(before + START.encode() + b"\r\nStage: old\r\n" + END.encode() + after)
    rewrite_block(path, LINES)
    assert path.read_bytes() == before + block("\r\n") + after


def test_block_no_trailing_newline_kept(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(b"Top\n" + START.encode() + b"\nold\n" + END.encode() + b" tail")
    rewrite_block(path, LINES)
    assert path.read_bytes() == b"Top\n" + block() + b" tail"


def test_block_bom_kept(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(b"\xef\xbb\xbfTop\n" + START.encode() + b"\n" + END.encode() + b"\n")
    rewrite_block(path, LINES)
    assert path.read_bytes() == b"\xef\xbb\xbfTop\n" + block() + b"\n"


def test_block_non_ascii_kept(tmp_path):
    path = tmp_path / "AGENTS.md"
    before = "# Vận hành — DevOps ✓\n".encode()
    after = "\nÜbergabe: 日本語\n".encode()
    path.write_bytes(before + START.encode() + b"\n" + END.encode() + after)
    rewrite_block(path, ["Stage: Triển khai"])
    expected = before + f"{START}\nStage: Triển khai\n{END}".encode() + after
    assert path.read_bytes() == expected


def test_block_missing_markers_appended(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(b"# DevOps\n")
    assert rewrite_block(path, LINES).outcome == "appended"
    assert path.read_bytes() == b"# DevOps\n\n" + block() + b"\n"


def test_block_appended_without_final_newline(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(b"# DevOps")
    rewrite_block(path, LINES)
    assert path.read_bytes() == b"# DevOps\n\n" + block()


def test_block_appended_crlf(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(b"# DevOps\r\n")
    rewrite_block(path, LINES)
    assert path.read_bytes() == b"# DevOps\r\n\r\n" + block("\r\n") + b"\r\n"


@pytest.mark.parametrize("content", [
    END + "\nold\n" + START + "\n",
    START + "\n" + END + "\n" + START + "\n" + END + "\n",
    START + "\nno end\n",
    "no start\n" + END + "\n",
])
def test_block_bad_markers_untouched(tmp_path, content):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(content.encode())
    result = rewrite_block(path, LINES)
    assert result.outcome == "unchanged"
    assert result.problem
    assert path.read_bytes() == content.encode()


def test_block_not_utf8_untouched(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(b"caf\xe9\n")
    assert rewrite_block(path, LINES).problem.startswith("not UTF-8")
    assert path.read_bytes() == b"caf\xe9\n"


def test_block_mode_kept(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(START.encode() + b"\n" + END.encode() + b"\n")
    os.chmod(path, 0o640)
    rewrite_block(path, LINES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_block_no_temporary_left(tmp_path):
    path = tmp_path / "AGENTS.md"
    path.write_bytes(b"# DevOps\n")
    rewrite_block(path, LINES)
    assert sorted(item.name for item in tmp_path.iterdir()) == ["AGENTS.md"]


def test_block_symlink_target_written(tmp_path):
    target = tmp_path / "real.md"
    target.write_bytes(b"# DevOps\n")
    link = tmp_path / "AGENTS.md"
    link.symlink_to(target)
    rewrite_block(link, LINES)
    assert link.is_symlink()
    assert START.encode() in target.read_bytes()


# The values, and the configured path.

def project_with_file(tmp_path, content: bytes, path_setting: str = "AGENTS.md"):
    folder = write_project(tmp_path / "shop", f'[heartbeat]\ninstructions_file = '
                                              f'"{path_setting}"\n')
    (folder / "AGENTS.md").write_bytes(content)
    config = load_config(folder)
    return folder, config, open_store(config.database_url)


def test_status_relative_path_from_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, config, store = project_with_file(tmp_path, b"# DevOps\n")
    finding = update_status_block(config, store, NOW)
    store.close()
    assert finding.state == "written"
    assert "Updated: 2026-03-02 09:30 UTC" in (folder / "AGENTS.md").read_text()


def test_status_bad_markers_finding(tmp_path):
    content = (START + "\n" + START + "\n" + END + "\n").encode()
    folder, config, store = project_with_file(tmp_path, content)
    finding = update_status_block(config, store, NOW)
    store.close()
    assert finding.state.startswith("invalid")
    assert (folder / "AGENTS.md").read_bytes() == content


def test_status_unset_no_finding(config, store):
    assert update_status_block(config, store, NOW) is None


def test_status_lines_no_records(config, store):
    lines = status_lines(config, store, NOW)
    assert lines[:4] == ["Stage: unknown (no gate records)", "Gate: none",
                         "Deploy Status: not authorized", "G3 Received: pending"]


def test_status_lines_g3_pending(config, store):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL", started=NOW)
    assert status_lines(config, store, NOW)[:3] == [
        "Stage: 05-Test", "Gate: G3 pending (1.4.0)", "Deploy Status: not authorized"]


def test_status_lines_g3_received(config, store):
    add_gate_run(store, "r1", gate="g3", verdict="AWAITING_APPROVAL", started=NOW)
    for role, signer in (("reviewer", "Rita Gomez"), ("tester", "Tom Baker")):
        approvals.record_signoff(store, project="shop", gate="g3", version="1.4.0", role=role,
                                 signer=signer, approve=True, comment="", tier=config.tier,
                                 agent_ids=config.agent_ids())
    lines = status_lines(config, store, NOW)
    assert lines[1:3] == ["Gate: G3 received (1.4.0)", "Deploy Status: authorized"]
    assert lines[3].startswith("G3 Received: 20")


def test_status_lines_g4_passed(config, store):
    for role, signer in (("reviewer", "Rita Gomez"), ("tester", "Tom Baker")):
        approvals.record_signoff(store, project="shop", gate="g3", version="1.4.0", role=role,
                                 signer=signer, approve=True, comment="", tier=config.tier,
                                 agent_ids=config.agent_ids())
    add_gate_run(store, "r1", gate="g4", verdict="PASSED")
    assert status_lines(config, store, NOW)[1] == "Gate: G4 PASSED (1.4.0)"
