"""Run checks concurrently, each bounded by a timeout, and never let one crash the gate."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from ..errors import CheckTimeout, ToolMissing
from ..scrub import scrub
from .checks import CHECKS
from .model import CheckContext, CheckResult, Status

log = logging.getLogger(__name__)

# Extra seconds a check gets beyond its tool timeout before the runner stops waiting, for
# the parsing it does after its tool exits.
_GRACE_S = 60.0


def run_checks(names: list[str], context_for: Callable[[str], CheckContext],
               max_workers: int) -> dict[str, CheckResult]:
    """Run the named checks at once and return their results by name, in input order."""
    contexts = {name: context_for(name) for name in names}
    results: dict[str, CheckResult] = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="check") as pool:
        futures = {name: pool.submit(run_one, name, contexts[name]) for name in names}
        for name, future in futures.items():
            limit = contexts[name].timeout_s + _GRACE_S
            try:
                results[name] = future.result(timeout=limit)
            except FutureTimeout:
                log.error("check %s: no result after %.0f s; recorded as ERROR", name, limit)
                results[name] = _error(name, f"no result after {limit:.0f} s")
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def run_one(name: str, ctx: CheckContext) -> CheckResult:
    """Run one check, turning its timeout, missing tool or crash into an ERROR result."""
    module = CHECKS[name]
    started = time.monotonic()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = module.run(ctx)
    except CheckTimeout as error:
        log.error("check %s: %s", name, error)
        result = _error(name, f"timed out after {error.seconds:g} s (raise "
                              f"[gate].check_timeout_s if the tool needs longer)", module.TOOL)
    except ToolMissing as error:
        log.error("check %s: %s", name, error)
        result = _error(name, str(error), module.TOOL)
    except Exception as error:  # a crashed check must become an ERROR item, not a crash
        log.error("check %s crashed: %s\n%s", name, error, scrub(traceback.format_exc()))
        result = _error(name, f"the check crashed: {type(error).__name__}: {error}",
                        module.TOOL)
    result.duration_s = time.monotonic() - started
    result.summary = scrub(result.summary)
    return result


def _error(name: str, summary: str, tool: str = "") -> CheckResult:
    return CheckResult(check=name, status=Status.ERROR, summary=scrub(summary), tool=tool)
