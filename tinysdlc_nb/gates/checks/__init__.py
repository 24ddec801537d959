"""The table of checks, by name. Adding a check means one module here and one row below.

Each module defines ``NAME``, ``TOOL`` (the distribution that does the work),
``SETTINGS`` (its ``[checks.NAME]`` settings) and ``run(ctx) -> CheckResult``.
"""

from __future__ import annotations

from types import ModuleType

from . import (
    dependencies,
    licenses,
    lint,
    migrations,
    sast,
    sbom,
    secrets,
    tests,
    zero_mock,
)

CHECKS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (lint, tests, zero_mock, sast, secrets, dependencies, licenses, sbom, migrations)
}
