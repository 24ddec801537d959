"""The ``tinysdlc-nb`` command line: argument parsing, rendering and exit codes only."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from . import __version__, approvals
from .channels.commands import add_channel_commands
from .config import load_config
from .errors import TinySDLCError
from .gates.policy import USAGE_EXIT_CODE
from .heartbeat.commands import add_heartbeat_commands
from .incidents.commands import add_incident_commands
from .probe import add_probe_command
from .project import resolve_version
from .runbooks.commands import add_runbook_commands
from .schedules.commands import add_schedule_commands
from .scrub import RedactingFormatter, quiet_missing_cell_ids, scrub
from .team.commands import add_team_commands

log = logging.getLogger(__name__)

# Exit codes of `check`: the same meaning as the gate verdicts for one item.
# The shell's code for a command ended by Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT_CODE = 130
CHECK_EXIT = {"PASS": 0, "SKIPPED": 0, "WAIVED": 0, "FAIL": 1, "ERROR": 4, "UNAVAILABLE": 4}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors name the fix and exit with code 2."""

    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        self.exit(USAGE_EXIT_CODE, f"tinysdlc-nb: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    _skip_iri_grammar()
    quiet_missing_cell_ids()
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "handler", None):
        parser.print_help()
        return USAGE_EXIT_CODE
    try:
        return args.handler(args)
    except TinySDLCError as error:
        print(f"tinysdlc-nb: {scrub(str(error))}", file=sys.stderr)
        return USAGE_EXIT_CODE
    except KeyboardInterrupt:
        print("tinysdlc-nb: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except BrokenPipeError:
        # The reader (head, less) closed the pipe, so nothing more is printed.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return USAGE_EXIT_CODE
    except Exception:  # a crash is a failed run, never a verdict: exit 2, not FAILED's 1
        print(scrub(traceback.format_exc()), file=sys.stderr)
        print("tinysdlc-nb: the run failed with an unexpected error (above); nothing was "
              "decided", file=sys.stderr)
        return USAGE_EXIT_CODE


def _skip_iri_grammar() -> None:
    """Keep jsonschema from importing rfc3987-syntax, whose grammar takes seconds to build.

    jsonschema (4.26 here) imports the optional rfc3987-syntax package, when installed, to
    check the "iri" formats, and that package compiles an Earley grammar at import: about
    3 s of every command that loads nbformat, measured on a 2-core machine. No schema this
    tool validates (notebooks, its own JSON) uses those formats, so the CLI marks the
    package as absent. Python code importing tinysdlc_nb as a library is not affected.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tinysdlc-nb", description="Release gates, sign-offs, evidence, "
                     "incident timelines and team hand-offs for TinySDLC teams, run as notebooks.")
    parser.add_argument("--version", action="version", version=f"tinysdlc-nb {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    gate = commands.add_parser("gate", help="run a release gate and write its reports")
    gate.add_argument("gate", choices=["g3", "g4"], help="the gate to run")
    gate.add_argument("--project", default=".", help="project folder (default: .)")
    gate.add_argument("--version", dest="release", help="release version (default: read from "
                      "pyproject.toml, setup.cfg or PKG-INFO)")
    gate.add_argument("--tier", help="lite, standard, professional or enterprise (default: "
                      "from .tinysdlc/config.toml, else lite)")
    gate.add_argument("--environment", help="target environment named in the report")
    gate.add_argument("--output", help="folder for the reports (default: "
                      ".tinysdlc/reports/<gate>-<version>-<run id>)")
    gate.add_argument("--junit", help="ingest this JUnit XML instead of running the tests")
    gate.add_argument("--coverage", help="ingest this coverage XML (Cobertura) or JSON")
    gate.add_argument("--cell-timeout", type=float, help="time limit per notebook cell, in "
                      "seconds (default: [gate].cell_timeout_s, 1800)")
    gate.add_argument("--json", action="store_true", help="print the summary as JSON")
    gate.set_defaults(handler=_cmd_gate)

    check = commands.add_parser("check", help="run one check alone and print its findings")
    check.add_argument("name", help="check name, e.g. zero_mock, secrets, lint")
    check.add_argument("path", help="project folder to check")
    check.add_argument("--tier", help="tier whose thresholds apply (default: from config)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(handler=_cmd_check)

    evidence = commands.add_parser("evidence", help="record evidence for a gate item")
    evidence.set_defaults(handler=_help_of(evidence))
    evidence_commands = evidence.add_subparsers(metavar="ACTION", parser_class=_Parser)
    add = evidence_commands.add_parser("add", help="append one evidence record")
    add.add_argument("--gate", default="g4", help="gate the evidence is for (default: g4)")
    add.add_argument("--item", required=True, help="one of " + ", ".join(
        approvals.EVIDENCE_ITEMS))
    add.add_argument("--by", required=True, help="name of the person recording it")
    add.add_argument("--file", type=Path, help="a file to keep with its SHA-256")
    add.add_argument("--note", default="", help="what the evidence shows")
    add.add_argument("--version", dest="release", help="release version (default: detected)")
    add.add_argument("--project", default=".", help="project folder (default: .)")
    add.add_argument("--json", action="store_true", help="print the stored record as JSON")
    add.set_defaults(handler=_cmd_evidence_add)

    approve = commands.add_parser("approve", help="record a human sign-off for a gate")
    approve.add_argument("gate", help="g3 or g4")
    approve.add_argument("--role", required=True, help="one of " + ", ".join(approvals.ROLES))
    approve.add_argument("--by", required=True, help="name of the person signing")
    approve.add_argument("--reject", action="store_true", help="record a rejection")
    approve.add_argument("--comment", default="", help="written reason or remarks")
    approve.add_argument("--version", dest="release", help="release version (default: detected)")
    approve.add_argument("--project", default=".", help="project folder (default: .)")
    approve.add_argument("--tier", help="tier whose rules apply (default: from config)")
    approve.add_argument("--json", action="store_true", help="print the stored record as JSON")
    approve.set_defaults(handler=_cmd_approve)

    audit = commands.add_parser("audit", help="verify the append-only records")
    audit.set_defaults(handler=_help_of(audit))
    audit_commands = audit.add_subparsers(metavar="ACTION", parser_class=_Parser)
    verify = audit_commands.add_parser("verify", help="report edited or deleted records")
    verify.add_argument("--project", default=".", help="project folder (default: .)")
    verify.add_argument("--json", action="store_true", help="print the problems as JSON")
    verify.set_defaults(handler=_cmd_audit_verify)

    add_incident_commands(commands, _Parser)
    add_team_commands(commands, _Parser)
    add_runbook_commands(commands, _Parser)
    add_probe_command(commands, _Parser)
    add_schedule_commands(commands, _Parser)
    add_heartbeat_commands(commands, _Parser)
    add_channel_commands(commands, _Parser)
    return parser


def _help_of(parser: argparse.ArgumentParser):
    """Return a handler that prints ``parser``'s help, for a command given without its action."""

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return USAGE_EXIT_CODE

    return show_help


def _cmd_gate(args: argparse.Namespace) -> int:
    from .gatecmd import progress_wanted, run_gate_command

    def announce(config, version: str) -> None:
        if not args.json:
            print(f"Running {args.gate.upper()} on {config.name} {version} "
                  f"({config.project_dir.resolve()}) ...", file=sys.stderr)

    outcome = run_gate_command(args.gate, args.project, version=args.release, tier=args.tier,
                               environment=args.environment, output=args.output,
                               junit_file=args.junit, coverage_file=args.coverage,
                               cell_timeout_s=args.cell_timeout, progress=progress_wanted(),
                               on_start=announce)
    if args.json:
        print(json.dumps({**outcome.summary, "files": outcome.files}, indent=2))
    else:
        _print_gate(outcome)
    return outcome.exit_code


def _cmd_check(args: argparse.Namespace) -> int:
    from .gates.checks import CHECKS
    from .gates.model import CheckContext, Tier
    from .gates.runner import run_one

    if args.name not in CHECKS:
        raise TinySDLCError(f"check '{args.name}' not found; known checks: {', '.join(CHECKS)}")
    config = load_config(Path(args.path))
    tier = Tier(args.tier) if args.tier in {t.value for t in Tier} else config.tier
    if args.tier and args.tier not in {t.value for t in Tier}:
        raise TinySDLCError(f"tier '{args.tier}' is invalid; expected one of "
                            f"{', '.join(t.value for t in Tier)}")

    work_dir = Path(tempfile.mkdtemp(prefix=f"tinysdlc-check-{args.name}-"))
    try:
        context = CheckContext(project=config.project_dir.resolve(), tier=tier,
                               settings=config.checks[args.name], work_dir=work_dir,
                               timeout_s=config.gate["check_timeout_s"])
        result = run_one(args.name, context)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    if args.json:
        print(json.dumps(scrub_json({
            "check": result.check, "status": str(result.status), "summary": result.summary,
            "findings": [{"file": f.file, "line": f.line, "rule": f.rule, "message": f.message}
                         for f in result.active_findings],
            "suppressed": [{"file": f.file, "line": f.line, "rule": f.rule,
                            "message": f.message, "justification": f.suppression}
                           for f in result.findings if f.suppression is not None],
        }), indent=2))
    else:
        _print_check(result)
    return CHECK_EXIT[str(result.status)]


def _cmd_evidence_add(args: argparse.Namespace) -> int:
    from .store import open_store

    config = load_config(Path(args.project))
    version = resolve_version(config.project_dir, args.release)
    store = open_store(config.database_url)
    try:
        row = approvals.record_evidence(store, project=config.name, gate=args.gate,
                                        version=version, item=args.item, recorded_by=args.by,
                                        note=args.note, file=args.file,
                                        files_dir=config.home / "files",
                                        agent_ids=config.agent_ids())
    finally:
        store.close()
    _print_record(row, args.json, f"Evidence {row['item']} recorded for {args.gate.upper()} "
                  f"{version} by {row['recorded_by']}")
    return 0


def _cmd_approve(args: argparse.Namespace) -> int:
    from .gates.model import Tier
    from .store import open_store

    config = load_config(Path(args.project))
    if args.tier and args.tier not in {t.value for t in Tier}:
        raise TinySDLCError(f"tier '{args.tier}' is invalid; expected one of "
                            f"{', '.join(t.value for t in Tier)}")
    version = resolve_version(config.project_dir, args.release)
    store = open_store(config.database_url)
    try:
        row = approvals.record_signoff(store, project=config.name, gate=args.gate,
                                       version=version, role=args.role, signer=args.by,
                                       approve=not args.reject, comment=args.comment,
                                       agent_ids=config.agent_ids(),
                                       tier=Tier(args.tier) if args.tier else config.tier)
    finally:
        store.close()
    verb = "rejected" if args.reject else "approved"
    _print_record(row, args.json, f"{args.gate.upper()} {version} {verb} by {row['signer']} "
                  f"as {row['role']}")
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from .store import open_store
    from .store.chain import verify

    config = load_config(Path(args.project))
    if config.database_url.startswith("sqlite:///"):
        database = Path(config.database_url[len("sqlite:///"):])
        if not database.is_file():
            raise TinySDLCError(f"no store at {database}: nothing has been recorded for this "
                                f"project; check --project or TINYSDLC_NB_HOME")
    store = open_store(config.database_url)
    try:
        with store.begin() as connection:
            problems = verify(connection)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [
            {"table": p.table, "row_id": p.row_id, "problem": p.problem} for p in problems]},
            indent=2))
    elif problems:
        print(f"{len(problems)} problem(s) in the append-only records:")
        for problem in problems:
            print(f"  {problem}")
    else:
        print("Audit OK: every evidence and sign-off record verifies.")
    return 1 if problems else 0


def _print_gate(outcome) -> None:
    result = outcome.summary
    width = shutil.get_terminal_size((120, 20)).columns
    print(f"{result['gate'].upper()} {result['project']} {result['version']} "
          f"(tier {result['tier']}, run {result['run_id']})")
    for item in result["items"]:
        optional = "" if item.get("required", True) else " (optional)"
        line = f"  {item['status']:<12} {item['item']:<24} {item['summary']}{optional}"
        print(line if len(line) <= width else line[:width - 1] + "…")
    print(f"\nVerdict: {result['verdict']} (exit {result['exit_code']})")
    print(f"Report:  {outcome.html}")
    print(f"Files:   {outcome.output_dir}")


def _print_check(result) -> None:
    print(f"{result.check}: {result.status} ({result.tool} {result.tool_version}) "
          f"{result.summary}")
    for finding in result.findings:
        where = f"{finding.file}:{finding.line}" if finding.line else finding.file
        suppressed = f"  [suppressed: {finding.suppression}]" if finding.suppression else ""
        print(f"  {where}: {finding.rule} {finding.message}{suppressed}")


def _print_record(row: dict[str, Any], as_json: bool, sentence: str) -> None:
    if as_json:
        print(json.dumps(scrub_json({key: value.isoformat() if hasattr(value, "isoformat")
                                     else value for key, value in row.items()}), indent=2))
    else:
        print(f"{sentence} (record {row['id']}, hash {row['row_hash'][:12]})")


def scrub_json(data: Any) -> Any:
    from .scrub import scrub_data

    return scrub_data(data)


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("tinysdlc_nb")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


if __name__ == "__main__":
    sys.exit(main())
