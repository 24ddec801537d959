"""The file exchange: [send_file: PATH] tags and the checks on the files they name, on real
folders, symbolic links and a FIFO in a temporary directory."""

from __future__ import annotations

import hashlib
import os

import pytest

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.team.files import FileRefused, extract_files, file_record, resolve_outgoing


@pytest.fixture
def files_dir(tmp_path):
    folder = tmp_path / "files"
    (folder / "reports").mkdir(parents=True)
    (folder / "notes.txt").write_text("rollback took 42 s\n")
    (folder / "reports" / "g4.html").write_text("<html></html>")
    return folder


@pytest.fixture
def outside(tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("not for agents")
    return secret


def test_extract_tag_only_line():
    text, paths = extract_files("Here is the report.\n[send_file: reports/g4.html]\nThanks.")

    assert text == "Here is the report.\nThanks."
    assert paths == ["reports/g4.html"]


def test_extract_tag_mid_sentence():
    text, paths = extract_files("The log [send_file:  notes.txt ] shows the rollback.")

    assert text == "The log shows the rollback."
    assert paths == ["notes.txt"]


def test_extract_several_tags_deduplicated():
    text, paths = extract_files("[send_file: b.txt] [send_file: a.txt]\nDone [send_file: b.txt]")

    assert text == "Done"
    assert paths == ["b.txt", "a.txt"]


def test_extract_keeps_indentation():
    text, _ = extract_files("Files:\n  - the notes [send_file: notes.txt]\n  - more")

    assert text == "Files:\n  - the notes\n  - more"


def test_extract_ignores_fenced_block():
    reply = "Use it like this:\n```\n[send_file: example.txt]\n```\n[send_file: real.txt]"

    text, paths = extract_files(reply)

    assert paths == ["real.txt"]
    assert text == "Use it like this:\n```\n[send_file: example.txt]\n```"


def test_extract_ignores_tilde_fence():
    reply = "~~~~\n[send_file: a.txt]\n~~~\n[send_file: b.txt]\n~~~~\n[send_file: c.txt]"

    _, paths = extract_files(reply)

    assert paths == ["c.txt"]


def test_extract_unclosed_fence():
    _, paths = extract_files("```\n[send_file: a.txt]\nno closing fence")

    assert paths == []


def test_extract_ignores_code_span():
    text, paths = extract_files("Write `[send_file: PATH]` to send [send_file: notes.txt] it.")

    assert paths == ["notes.txt"]
    assert text == "Write `[send_file: PATH]` to send it."


def test_extract_empty_tag_kept():
    text, paths = extract_files("Here: [send_file: ]")

    assert paths == [""]
    assert text == "Here:"


def test_extract_no_tags_unchanged():
    reply = "  No files here, [@coder: see the log].\n"

    assert extract_files(reply) == (reply, [])


def test_resolve_relative(files_dir):
    resolved = resolve_outgoing("reports/g4.html", files_dir)

    assert resolved == (files_dir / "reports" / "g4.html").resolve()


def test_resolve_dot_prefix(files_dir):
    assert resolve_outgoing(" ./notes.txt ", files_dir) == (files_dir / "notes.txt").resolve()


def test_resolve_symlinked_folder(files_dir, tmp_path):
    link = tmp_path / "exchange"
    link.symlink_to(files_dir, target_is_directory=True)

    assert resolve_outgoing("notes.txt", link) == (files_dir / "notes.txt").resolve()


def test_resolve_link_inside_accepted(files_dir):
    (files_dir / "latest.html").symlink_to(files_dir / "reports" / "g4.html")

    resolved = resolve_outgoing("latest.html", files_dir)

    assert resolved == (files_dir / "reports" / "g4.html").resolve()


@pytest.mark.parametrize("absolute", ["inside", "outside"])
def test_resolve_absolute_rejected(files_dir, outside, absolute):
    path = str(files_dir / "notes.txt") if absolute == "inside" else str(outside)

    with pytest.raises(FileRefused, match="absolute paths are not accepted; write the path "
                                          "relative to the file exchange folder"):
        resolve_outgoing(path, files_dir)


@pytest.mark.parametrize("path", ["C:\\Users\\me\\key.pem", "\\\\host\\share\\a.txt",
                                  "\\etc\\passwd"])
def test_resolve_windows_absolute_rejected(files_dir, path):
    with pytest.raises(FileRefused, match="absolute paths are not accepted"):
        resolve_outgoing(path, files_dir)


def test_resolve_home_rejected(files_dir):
    with pytest.raises(FileRefused, match="paths starting with '~' are not accepted"):
        resolve_outgoing("~/.ssh/id_rsa", files_dir)


@pytest.mark.parametrize("path", ["../outside.txt", "reports/../notes.txt", "..",
                                  "reports\\..\\..\\outside.txt"])
def test_resolve_dotdot_rejected(files_dir, path):
    with pytest.raises(FileRefused, match="'..' components are not accepted"):
        resolve_outgoing(path, files_dir)


def test_resolve_link_leaving_rejected(files_dir, outside):
    (files_dir / "escape.txt").symlink_to(outside)

    with pytest.raises(FileRefused, match="symbolic link to a file outside the file exchange "
                                          "folder"):
        resolve_outgoing("escape.txt", files_dir)


def test_resolve_linked_dir_leaving_rejected(files_dir, outside):
    (files_dir / "up").symlink_to(outside.parent, target_is_directory=True)

    with pytest.raises(FileRefused, match="symbolic link to a file outside"):
        resolve_outgoing("up/outside.txt", files_dir)


def test_resolve_dangling_link_rejected(files_dir, tmp_path):
    (files_dir / "gone.txt").symlink_to(tmp_path / "missing.txt")

    with pytest.raises(FileRefused, match="the file was not found"):
        resolve_outgoing("gone.txt", files_dir)


def test_resolve_missing_rejected(files_dir):
    with pytest.raises(FileRefused) as caught:
        resolve_outgoing("reports/g3.html", files_dir)

    assert str(caught.value) == (f"send_file 'reports/g3.html' rejected: the file was not "
                                 f"found in the file exchange folder {files_dir}; put it there "
                                 f"first")


def test_resolve_directory_rejected(files_dir):
    with pytest.raises(FileRefused, match="it is not a regular file"):
        resolve_outgoing("reports", files_dir)


def test_resolve_folder_itself_rejected(files_dir):
    with pytest.raises(FileRefused, match="it is not a regular file"):
        resolve_outgoing(".", files_dir)


def test_resolve_fifo_rejected(files_dir):
    os.mkfifo(files_dir / "pipe")

    with pytest.raises(FileRefused, match="it is not a regular file"):
        resolve_outgoing("pipe", files_dir)


def test_resolve_empty_rejected(files_dir):
    with pytest.raises(FileRefused, match="the path is empty"):
        resolve_outgoing("  ", files_dir)


def test_resolve_missing_folder_rejected(tmp_path):
    with pytest.raises(FileRefused, match="does not exist"):
        resolve_outgoing("notes.txt", tmp_path / "no-such-folder")


def test_refusal_is_usage_error(files_dir):
    with pytest.raises(UsageError) as caught:
        resolve_outgoing("/etc/passwd", files_dir)

    assert caught.value.path_text == "/etc/passwd"
    assert caught.value.reason.startswith("absolute paths are not accepted")


def test_refusal_message_scrubbed(files_dir, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-71be0c5d9a2f4e68")

    with pytest.raises(FileRefused) as caught:
        resolve_outgoing("tok-71be0c5d9a2f4e68.txt", files_dir)

    assert "tok-71be0c5d9a2f4e68" not in str(caught.value)


def test_file_record_fields(files_dir):
    record = file_record(files_dir / "reports" / "g4.html", files_dir)

    assert record == {"name": "g4.html", "path": "reports/g4.html", "size": 13,
                      "sha256": hashlib.sha256(b"<html></html>").hexdigest()}


def test_file_record_without_folder(files_dir):
    record = file_record(files_dir / "notes.txt")

    assert record["path"] == (files_dir / "notes.txt").as_posix()


def test_file_record_large_file(files_dir):
    data = os.urandom(3 * (1 << 20) + 17)
    (files_dir / "dump.bin").write_bytes(data)

    record = file_record(files_dir / "dump.bin", files_dir)

    assert record["size"] == len(data)
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_file_record_empty_file(files_dir):
    (files_dir / "empty.txt").write_bytes(b"")

    record = file_record(files_dir / "empty.txt", files_dir)

    assert record["size"] == 0
    assert record["sha256"] == hashlib.sha256(b"").hexdigest()
