from __future__ import annotations

import pytest

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.project import resolve_version


@pytest.mark.parametrize("version", ["1.4.0", "2.32.3", "1.0.0rc1", "1.0+local.7", "v2_1"])
def test_plain_versions_accepted(tmp_path, version):
    assert resolve_version(tmp_path, version) == version


@pytest.mark.parametrize("version", ["1.0/../../x", "../up", "1.0 beta", "1.0\nx", "-1", "",
                                     "1.0<script>", "a" * 101])
def test_unsafe_versions_rejected(tmp_path, version):
    with pytest.raises(UsageError, match="is invalid"):
        resolve_version(tmp_path, version)


def test_missing_version_asks_for_flag(tmp_path):
    with pytest.raises(UsageError, match="pass --version"):
        resolve_version(tmp_path, None)


def test_version_from_pkg_info(tmp_path):
    (tmp_path / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: x\nVersion: 3.1.4\n")
    assert resolve_version(tmp_path, None) == "3.1.4"
