"""Entry point of one scheduled run's process: ``python -m tinysdlc_nb.schedules.job RUN_ID``.

The store is the one named by ``TINYSDLC_NB_DATABASE_URL``, which the parent sets. The
exit code is the job's.
"""

from __future__ import annotations

import logging
import os
import sys

from ..scrub import RedactingFormatter, quiet_missing_cell_ids


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m tinysdlc_nb.schedules.job RUN_ID", file=sys.stderr)
        return 2
    url = os.environ.get("TINYSDLC_NB_DATABASE_URL")
    if not url:
        print("TINYSDLC_NB_DATABASE_URL is not set; the scheduler sets it for its jobs",
              file=sys.stderr)
        return 2

    # Same reason as the CLI: jsonschema would otherwise build an unused grammar for ~3 s.
    sys.modules.setdefault("rfc3987_syntax", None)
    handler = logging.StreamHandler(sys.stderr)
    quiet_missing_cell_ids()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("tinysdlc_nb")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)

    from ..store import open_store
    from .jobs import execute_run

    store = open_store(url, migrate=False)
    try:
        return execute_run(store, int(argv[0]))
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
