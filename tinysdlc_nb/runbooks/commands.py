"""The ``tinysdlc-nb runbook`` commands: new, lint, compile, run and history."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import UsageError
from ..scrub import scrub, scrub_data
from ..store import as_utc, open_store
from .document import load_runbook, read_runbook
from .lint import lint_runbook
from .skeleton import skeleton

USAGE_EXIT = 2
FAILED_TAIL_LINES = 5


def add_runbook_commands(commands, parser_class) -> None:
    """Register ``runbook`` and its actions on the CLI's subparsers."""
    runbook = commands.add_parser("runbook", help="write, check, compile and run runbooks")
    actions = runbook.add_subparsers(metavar="ACTION", parser_class=parser_class)
    runbook.set_defaults(handler=lambda _args: _usage(runbook))

    new = actions.add_parser("new", help="write a runbook skeleton in the runbook template")
    new.add_argument("name", help="runbook name, such as deploy-web")
    new.add_argument("--output", type=Path, help="file to write (default: runbooks/NAME.md "
                     "in the project)")
    new.add_argument("--project", default=".", help="project folder (default: .)")
    new.add_argument("--force", action="store_true", help="replace an existing file")
    new.set_defaults(handler=_cmd_new)

    lint = actions.add_parser("lint", help="report what runbooks are missing, with line "
                              "numbers")
    lint.add_argument("files", nargs="+", type=Path, help="runbook Markdown files")
    lint.add_argument("--json", action="store_true", help="print the problems as JSON")
    lint.set_defaults(handler=_cmd_lint)

    compile_parser = actions.add_parser("compile", help="write the parameterized notebook "
                                        "of a runbook")
    compile_parser.add_argument("file", type=Path, help="runbook Markdown file")
    compile_parser.add_argument("--output", type=Path, help="notebook to write (default: "
                                "beside the runbook, with .ipynb)")
    compile_parser.add_argument("--project", default=".", type=Path, help="project folder "
                                "whose store records runs of the notebook (default: .)")
    compile_parser.set_defaults(handler=_cmd_compile)

    run = actions.add_parser("run", help="run a runbook through papermill and record every "
                             "step")
    run.add_argument("runbook", help="runbook file, or a name under runbooks/ (or shipped)")
    run.add_argument("-p", "--parameter", dest="parameters", action="append", default=[],
                     metavar="NAME=VALUE", help="a parameter value; repeat for each")
    run.add_argument("--rehearse-rollback", action="store_true", help="run the steps, the "
                     "verification, the rollback and the verification again, and time the "
                     "rollback")
    run.add_argument("--no-rollback", action="store_true", help="run a runbook that has no "
                     "rollback section (recorded with the run)")
    run.add_argument("--by", dest="operator", help="person running it (default: "
                     "$TINYSDLC_NB_OPERATOR, else the login name)")
    run.add_argument("--project", default=".", help="project folder (default: .)")
    run.add_argument("--json", action="store_true", help="print the run and its steps as JSON")
    run.set_defaults(handler=_cmd_run)

    history = actions.add_parser("history", help="list runbook runs with their steps")
    history.add_argument("name", nargs="?", help="only runs of this runbook")
    history.add_argument("--limit", type=int, default=20, help="runs to show (default: 20)")
    history.add_argument("--project", default=".", help="project folder (default: .)")
    history.add_argument("--json", action="store_true", help="print the runs as JSON")
    history.set_defaults(handler=_cmd_history)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return USAGE_EXIT


def _cmd_new(args: argparse.Namespace) -> int:
    text = skeleton(args.name)
    output = args.output or load_config(Path(args.project)).project_dir / "runbooks" / \
        f"{args.name}.md"
    if output.exists() and not args.force:
        raise UsageError(f"{output} already exists; pass --force to replace it or --output to "
                         f"write elsewhere")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"Wrote {output}. Replace each '[fill in' placeholder, then check it with: "
          f"tinysdlc-nb runbook lint {output}")
    return 0


def _cmd_lint(args: argparse.Namespace) -> int:
    results = []
    for path in args.files:
        runbook, problems = read_runbook(path)
        problems = sorted(problems + lint_runbook(runbook), key=lambda problem: problem.line)
        results.append((path, problems))

    errors = sum(problem.severity == "error" for _, problems in results for problem in problems)
    if args.json:
        print(json.dumps([{"file": str(path), "ok": not any(p.severity == "error"
                                                             for p in problems),
                           "problems": [{"line": p.line, "severity": p.severity,
                                         "message": p.message} for p in problems]}
                          for path, problems in results], indent=2))
    else:
        for path, problems in results:
            for problem in problems:
                print(problem.render(str(path)))
        warnings = sum(len(problems) for _, problems in results) - errors
        print(f"{len(results)} runbook(s): {errors} error(s), {warnings} warning(s)",
              file=sys.stderr)
    return 1 if errors else 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from .compile import write_notebook  # nbformat takes seconds to import; only compile needs it

    runbook = load_runbook(args.file)
    output = args.output or args.file.with_suffix(".ipynb")
    write_notebook(runbook, output, load_config(args.project).project_dir)
    print(f"Wrote {output}: {len(runbook.steps)} step(s), {len(runbook.verification)} "
          f"verification(s), {len(runbook.rollback)} rollback step(s)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_runbook

    outcome = run_runbook(args.runbook, project=args.project, parameters=args.parameters,
                          rehearse=args.rehearse_rollback, no_rollback=args.no_rollback,
                          operator=args.operator,
                          progress=sys.stderr.isatty() and not args.json)
    if args.json:
        print(json.dumps(scrub_data(_run_json(outcome.run, outcome.evidence)), indent=2,
                         default=str))
        return outcome.exit_code

    print(f"Runbook {outcome.runbook}, run {outcome.run_id}: {outcome.status.value} "
          f"(exit {outcome.exit_code})")
    print(f"  {scrub(outcome.message)}")
    for step in outcome.run["steps"]:
        if step["status"] in ("failed", "timed_out") and step["output_tail"]:
            last = step["output_tail"].rstrip("\n").splitlines()[-FAILED_TAIL_LINES:]
            print(f"  {step['phase']} {step['number']} output, last lines:")
            print("\n".join(f"    | {line}" for line in last))
    for item in outcome.evidence:
        print(f"  evidence recorded: {item['item']} for G4 {item['version']} "
              f"(record {item['id']})")
    print(f"Notebook: {outcome.notebook}")
    return outcome.exit_code


def _cmd_history(args: argparse.Namespace) -> int:
    from .records import list_runs

    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} is invalid; pass a count of at least 1")
    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        runs = list_runs(store, args.name, args.limit)
    finally:
        store.close()

    if args.json:
        print(json.dumps(scrub_data([_run_json(run) for run in runs]), indent=2, default=str))
        return 0
    if not runs:
        print("No runbook runs recorded" + (f" for '{args.name}'." if args.name else "."))
        return 0
    for run in runs:
        _print_run(run)
    return 0


def _print_run(run: dict[str, Any]) -> None:
    version = f" {run['version']}" if run["version"] else ""
    took = ""
    if run["finished_at"] is not None:
        took = f" in {(run['finished_at'] - run['started_at']).total_seconds():.1f} s"
    print(f"run {run['id']}  {run['runbook']}{version}  {run['environment']}  {run['mode']}  "
          f"{run['status']} (exit {run['exit_code']}){took}  by {run['operator']}  "
          f"{run['started_at']:%Y-%m-%d %H:%M:%S}")
    for step in run["steps"]:
        exit_code = "" if step["exit_code"] is None else f" exit {step['exit_code']}"
        print(f"    {step['phase']:<22} {step['number']:>2}  {step['status']:<10} "
              f"{step['duration_s']:7.2f} s{exit_code}  {scrub(step['title'])}")
    if run["message"]:
        print(f"    {scrub(run['message'])}")


def _run_json(run: dict[str, Any], evidence: list[dict[str, Any]] | None = None) -> dict:
    data = {key: _utc(value) for key, value in run.items() if key != "steps"}
    if isinstance(data.get("parameters"), str):
        data["parameters"] = json.loads(data["parameters"])
    data["steps"] = [{key: _utc(value) for key, value in step.items() if key != "run_id"}
                     for step in run.get("steps", [])]
    if evidence is not None:
        data["evidence"] = [{"id": row["id"], "item": row["item"], "version": row["version"],
                             "note": row["note"], "file_name": row["file_name"],
                             "file_sha256": row["file_sha256"]} for row in evidence]
    return data


def _utc(value: Any) -> Any:
    """Return times as ISO 8601 in UTC with their offset; SQLite hands them back naive."""
    return as_utc(value).isoformat() if isinstance(value, dt.datetime) else value
