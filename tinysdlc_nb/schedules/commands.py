"""The CLI of the schedule and scheduler commands.

Times are printed in the project's ``[project].display_zone``; ``--json`` prints them as
ISO 8601 in UTC.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SHOW_RUNS = 20


def add_schedule_commands(commands, parser_class) -> None:
    """Register the schedule and scheduler commands on the CLI's subparsers."""
    schedule = commands.add_parser("schedule", help="scheduled runs of notebooks, gates and "
                                   "runbooks")
    schedule.set_defaults(handler=_usage(schedule))
    actions = schedule.add_subparsers(metavar="ACTION", parser_class=parser_class)

    add = actions.add_parser("add", help="add a schedule")
    add.add_argument("name", help="schedule name: lowercase letters, digits, '-' and '_'")
    add.add_argument("--cron", required=True, help="cron expression: 5 fields, 6 with seconds "
                     "first, or @hourly, @daily, @weekly, @monthly, @yearly")
    add.add_argument("--tz", help="IANA time zone of the cron expression (default: "
                     "[project].display_zone)")
    add.add_argument("--catch-up", default="none", choices=["none", "latest"],
                     help="after downtime: record the missed fires (none, the default) or "
                     "also run the latest of them once (latest)")
    job = add.add_mutually_exclusive_group(required=True)
    job.add_argument("--notebook", help="notebook path, or the name of a shipped notebook "
                     "such as heartbeat")
    job.add_argument("--gate", choices=["g3", "g4"], help="gate to run on --project")
    job.add_argument("--runbook", help="runbook name under runbooks/, shipped, or a path")
    add.add_argument("-p", "--parameter", action="append", default=[], dest="parameters",
                     metavar="KEY=VALUE", help="job parameter; repeat for more")
    _common(add)
    add.set_defaults(handler=_cmd_add)

    listing = actions.add_parser("list", help="list the schedules")
    _common(listing)
    listing.set_defaults(handler=_cmd_list)
    for action, text, handler in (
            ("show", "show a schedule and its recent runs", _cmd_show),
            ("pause", "stop firing a schedule until it is resumed", _cmd_pause),
            ("resume", "fire a paused schedule again, from now on", _cmd_resume),
            ("remove", "delete a schedule; its run records stay", _cmd_remove),
            ("run-now", "run a schedule's job now in the foreground; exit with its exit "
             "code", _cmd_run_now)):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("name", help="schedule name")
        _common(parser)
        parser.set_defaults(handler=handler)

    scheduler = commands.add_parser("scheduler", help="run due scheduled jobs until SIGTERM")
    scheduler.add_argument("--once", action="store_true", help="handle what is due now, wait "
                           "for those runs, and exit")
    scheduler.add_argument("--project", default=".", help="project folder (default: .)")
    scheduler.set_defaults(handler=_cmd_scheduler)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=".", help="project folder (default: .)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _usage(parser: argparse.ArgumentParser):
    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show_help


@contextmanager
def _opened(project: str):
    from ..config import load_config
    from ..store import open_store

    config = load_config(Path(project))
    store = open_store(config.database_url)
    try:
        yield config, store
    finally:
        store.close()


def _cmd_add(args: argparse.Namespace) -> int:
    from ..runbooks.spec import default_operator
    from .model import ScheduleSpec, parse_pairs
    from .records import add_schedule

    kind, target = next((kind, value) for kind, value in (
        ("notebook", args.notebook), ("gate", args.gate), ("runbook", args.runbook))
        if value is not None)
    with _opened(args.project) as (config, store):
        spec = ScheduleSpec(name=args.name, kind=kind, target=target, cron=args.cron,
                            project=args.project,
                            timezone=config.project["display_zone"] if args.tz is None else args.tz,
                            catch_up=args.catch_up,
                            parameters=parse_pairs(args.parameters, kind),
                            created_by=default_operator())
        schedule = add_schedule(store, spec)
        zone = config.project["display_zone"]
    if args.json:
        _print_json(schedule)
    else:
        print(f"Schedule {schedule['name']} added: {kind} {schedule['target']}, cron "
              f"'{schedule['cron']}' in {schedule['timezone']}; next run "
              f"{_shown(schedule['next_run_at'], zone)}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .records import list_schedules

    with _opened(args.project) as (config, store):
        schedules = list_schedules(store)
        zone = config.project["display_zone"]
    if args.json:
        _print_json(schedules)
        return 0
    if not schedules:
        print("No schedules. Add one with `tinysdlc-nb schedule add NAME --cron EXPR ...`.")
        return 0
    header = f"NEXT RUN ({zone})"
    width = max(len(header), 19)
    print(f"{'NAME':<24} {'KIND':<9} {'CRON':<18} {'STATE':<7} {header:<{width}} TARGET")
    for item in schedules:
        state = "paused" if item["paused"] else "active"
        next_run = "-" if item["paused"] else _shown(item["next_run_at"], zone)
        print(f"{item['name']:<24} {item['kind']:<9} {item['cron']:<18} {state:<7} "
              f"{next_run:<{width}} {item['target']}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .records import get_schedule, runs_of

    with _opened(args.project) as (config, store):
        schedule = get_schedule(store, args.name)
        runs = runs_of(store, args.name, SHOW_RUNS)
        zone = config.project["display_zone"]
    if args.json:
        _print_json({**schedule, "runs": runs})
        return 0
    for key in ("name", "kind", "target", "project", "cron", "timezone", "catch_up",
                "created_by"):
        print(f"{key + ':':<12} {schedule[key]}")
    print(f"{'parameters:':<12} {json.dumps(schedule['parameters'])}")
    print(f"{'state:':<12} {'paused' if schedule['paused'] else 'active'}")
    if schedule["paused"]:
        print(f"{'next run:':<12} - (paused; `schedule resume` restarts from now)")
    else:
        print(f"{'next run:':<12} {_shown(schedule['next_run_at'], zone)} ({zone})")
    print(f"\nRecent runs ({len(runs)}):")
    for run in runs:
        code = "" if run["exit_code"] is None else f" exit {run['exit_code']}"
        print(f"  {run['id']:>6} {_shown(run['started_at'], zone)} {run['trigger']:<9} "
              f"{run['status']:<11}{code} {run['message']}")
    return 0


def _cmd_pause(args: argparse.Namespace) -> int:
    return _set_paused(args, True)


def _cmd_resume(args: argparse.Namespace) -> int:
    return _set_paused(args, False)


def _set_paused(args: argparse.Namespace, paused: bool) -> int:
    from .records import set_paused

    with _opened(args.project) as (config, store):
        schedule = set_paused(store, args.name, paused)
        zone = config.project["display_zone"]
    if args.json:
        _print_json(schedule)
    elif paused:
        print(f"Schedule {schedule['name']} paused.")
    else:
        print(f"Schedule {schedule['name']} resumed; next run "
              f"{_shown(schedule['next_run_at'], zone)}.")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from .records import remove_schedule

    with _opened(args.project) as (_config, store):
        kept = remove_schedule(store, args.name)
    if args.json:
        _print_json({"name": args.name, "removed": True, "runs_kept": kept})
    else:
        print(f"Schedule {args.name} removed; its {kept} run record(s) are kept.")
    return 0


def _cmd_run_now(args: argparse.Namespace) -> int:
    from .jobs import run_in_foreground
    from .records import get_schedule

    with _opened(args.project) as (config, store):
        schedule = get_schedule(store, args.name)
        if not args.json:
            print(f"Running {schedule['name']} ({schedule['kind']} {schedule['target']}) ...",
                  file=sys.stderr)
        run = run_in_foreground(store, config, schedule)
    exit_code = 1 if run["status"] == "skipped" else run["exit_code"]
    exit_code = 2 if exit_code is None else exit_code
    if args.json:
        _print_json(run)
    elif run["status"] == "skipped":
        print(f"Schedule {args.name}: not run, because {run['message']}; try again when it "
              f"has ended (skip recorded as run {run['id']})")
    else:
        print(f"Schedule {args.name}, run {run['id']}: {run['status']} (exit {exit_code})")
        print(f"  {run['message']}")
        for label, key in (("Notebook", "notebook_path"), ("Report", "html_path"),
                           ("Files", "output_dir")):
            if run.get(key):
                print(f"{label + ':':<9} {run[key]}")
    return exit_code


def _cmd_scheduler(args: argparse.Namespace) -> int:
    from .scheduler import Scheduler

    with _opened(args.project) as (config, store):
        # Like the queue worker: no disk flush per commit on SQLite; see relax_durability.
        store.relax_durability()
        scheduler = Scheduler(config, store)
        if not args.once:
            _log_service_events()
            return scheduler.run_forever()
        started = scheduler.run_once()
    print(f"Scheduler pass done: {len(started)} run(s) started"
          + (f" ({', '.join(str(run_id) for run_id in started)})" if started else ""))
    return 0


def _log_service_events() -> None:
    """Show the long-running scheduler's starts, stops and runs, with times, on stderr.

    The CLI logs warnings only unless -v is given. A service is expected to say what it
    does, so the scheduler and channel loggers log at INFO here.
    """
    root = logging.getLogger("tinysdlc_nb")
    for handler in root.handlers:
        formatter = type(handler.formatter) if handler.formatter else logging.Formatter
        handler.setFormatter(formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("tinysdlc_nb.schedules", "tinysdlc_nb.channels"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


def _shown(value, zone: str) -> str:
    from .cron import load_zone

    if value is None:
        return "-"
    return value.astimezone(load_zone(zone)).strftime("%Y-%m-%d %H:%M:%S")


def _print_json(data: Any) -> None:
    from ..scrub import scrub_data

    print(json.dumps(scrub_data(_jsonable(data)), indent=2))


def _jsonable(data: Any) -> Any:
    import datetime as dt

    if isinstance(data, dict):
        return {key: _jsonable(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_jsonable(value) for value in data]
    if isinstance(data, dt.datetime):
        return data.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return data
