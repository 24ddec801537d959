"""The incident commands of the CLI: ``ingest``, ``serve``, ``incident ...`` and
``postmortem``. Argument parsing and output only; the work happens in the library."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from ..config import Config, load_config
from ..errors import PayloadError, UsageError
from ..scrub import scrub_data
from ..store import Store, open_store, utc_now
from . import render
from .actions import Actions
from .adapters import adapter
from .ingest import adapter_context, decode, ingest_signals, signals_of
from .metrics import incident_table, severity_metrics
from .model import LOG_KINDS, SEVERITIES
from .records import display_id, parse_incident_id
from .sla import SlaPolicy
from .times import parse_cli_time
from .view import Flapping, incident_detail, incident_rows, row_json


def add_incident_commands(commands, parser_class) -> None:
    """Register the incident commands on the CLI's sub-command set."""
    ingest = commands.add_parser("ingest", help="record alert or CI payloads as incident "
                                 "timeline rows")
    ingest.add_argument("format", help="payload format: alertmanager, grafana, pagerduty, "
                        "opsgenie, github, kubernetes")
    ingest.add_argument("files", nargs="+", metavar="FILE", help="JSON payload files; - reads "
                        "standard input")
    _common(ingest, json_help="print the outcome of every signal as JSON")
    ingest.set_defaults(handler=_cmd_ingest)

    serve = commands.add_parser("serve", help="receive the same payloads as webhooks: "
                                "POST /webhooks/FORMAT")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                       "127.0.0.1; there is no authentication)")
    serve.add_argument("--port", type=int, default=9095, help="port (default: 9095)")
    serve.add_argument("--project", default=".", help="project folder (default: .)")
    serve.set_defaults(handler=_cmd_serve)

    incident = commands.add_parser("incident", help="open, update and read incidents")
    incident.set_defaults(handler=_help_of(incident))
    actions = incident.add_subparsers(metavar="ACTION", parser_class=parser_class)
    _add_write_commands(actions)
    _add_read_commands(actions)

    postmortem = commands.add_parser("postmortem", help="write the HTML postmortem of an "
                                     "incident")
    postmortem.add_argument("id", help="incident id, e.g. INC-7")
    postmortem.add_argument("--output", help="folder for the report (default: "
                            ".tinysdlc/reports/postmortems/INC-N)")
    postmortem.add_argument("--project", default=".", help="project folder (default: .)")
    postmortem.set_defaults(handler=_cmd_postmortem)


def _add_write_commands(actions) -> None:
    opened = actions.add_parser("open", help="open an incident by hand")
    opened.add_argument("--title", required=True, help="short title of the problem")
    opened.add_argument("--severity", default="P2", help="P0, P1, P2 or P3 (default: P2)")
    opened.add_argument("--service", default="", help="affected service")
    opened.add_argument("--description", default="", help="what was seen")
    _by(opened)
    _when(opened)
    _common(opened, json_help="print the new incident as JSON")
    opened.set_defaults(handler=_cmd_open)

    for name, verb in (("ack", "acknowledge"), ("resolve", "resolve"), ("close", "close")):
        sub = actions.add_parser(name, help=f"{verb} an incident")
        sub.add_argument("id", help="incident id, e.g. INC-7")
        sub.add_argument("--note", default="", help="remarks stored with the row")
        _by(sub)
        _when(sub)
        _common(sub)
        sub.set_defaults(handler=_cmd_milestone, method=verb)

    log = actions.add_parser("log", help="add a note, milestone or postmortem entry")
    log.add_argument("id", help="incident id, e.g. INC-7")
    log.add_argument("text", help="what happened or was found")
    log.add_argument("--kind", default="note", choices=[str(kind) for kind in LOG_KINDS],
                     help="kind of entry (default: note)")
    log.add_argument("--owner", help="owner of an action_item")
    log.add_argument("--due", help="due date of an action_item, YYYY-MM-DD")
    _by(log)
    _when(log)
    _common(log)
    log.set_defaults(handler=_cmd_log)

    severity = actions.add_parser("severity", help="change an incident's severity")
    severity.add_argument("id", help="incident id, e.g. INC-7")
    severity.add_argument("severity", help=", ".join(SEVERITIES))
    severity.add_argument("--reason", default="", help="why the severity changed")
    _by(severity)
    _when(severity)
    _common(severity)
    severity.set_defaults(handler=_cmd_severity)

    retract = actions.add_parser("retract", help="withdraw a timeline row (it stays stored)")
    retract.add_argument("id", help="incident id, e.g. INC-7")
    retract.add_argument("row", type=int, help="row id from `incident timeline ID --raw`")
    retract.add_argument("--reason", required=True, help="why the row is withdrawn")
    _by(retract)
    _common(retract)
    retract.set_defaults(handler=_cmd_retract)

    correct = actions.add_parser("correct", help="replace a row's time or text with a new row")
    correct.add_argument("id", help="incident id, e.g. INC-7")
    correct.add_argument("row", type=int, help="row id from `incident timeline ID --raw`")
    correct.add_argument("--text", help="corrected description")
    _by(correct)
    _when(correct)
    _common(correct)
    correct.set_defaults(handler=_cmd_correct)


def _add_read_commands(actions) -> None:
    show = actions.add_parser("show", help="one incident: milestones, SLA, timeline")
    show.add_argument("id", help="incident id, e.g. INC-7")
    _common(show, json_help="print the incident as JSON")
    show.set_defaults(handler=_cmd_show)

    listing = actions.add_parser("list", help="every incident with status and milestones")
    listing.add_argument("--open", action="store_true", help="only incidents not yet resolved")
    _common(listing, json_help="print a JSON array")
    listing.set_defaults(handler=_cmd_list)

    timeline = actions.add_parser("timeline", help="the timeline of one incident")
    timeline.add_argument("id", help="incident id, e.g. INC-7")
    timeline.add_argument("--raw", action="store_true", help="every stored row, including "
                          "superseded ones, with flapping not collapsed")
    _common(timeline, json_help="print the rows as a JSON array")
    timeline.set_defaults(handler=_cmd_timeline)

    metrics = actions.add_parser("metrics", help="response times and SLA breaches per "
                                 "severity")
    metrics.add_argument("--since", help="only incidents detected at or after this ISO 8601 "
                         "time (with offset) or date (UTC midnight)")
    metrics.add_argument("--tz", help="IANA zone of a --since written without offset")
    _common(metrics, json_help="print a JSON array, one object per severity")
    metrics.set_defaults(handler=_cmd_metrics)


def _common(parser, json_help: str = "print the result as JSON") -> None:
    parser.add_argument("--project", default=".", help="project folder (default: .)")
    parser.add_argument("--json", action="store_true", help=json_help)


def _by(parser) -> None:
    parser.add_argument("--by", required=True, help="name of the person doing this")


def _when(parser) -> None:
    parser.add_argument("--at", help="when it happened, ISO 8601 with offset (default: now)")
    parser.add_argument("--tz", help="IANA zone of a --at written without offset")


def _help_of(parser):
    def show_help(_args) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show_help


@contextmanager
def _opened(args):
    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        yield config, store
    finally:
        store.close()


def _actions(config: Config, store: Store) -> Actions:
    from ..team.escalations import escalation_route

    return Actions(store, owner=config.incidents["owner"], agent_ids=config.agent_ids(),
                   escalation=escalation_route(config))


def _at(args) -> dt.datetime | None:
    if args.at is None:
        if args.tz:
            raise UsageError("--tz only applies to --at; add --at TIME or drop --tz")
        return None
    return parse_cli_time(args.at, args.tz)


def _cmd_ingest(args) -> int:
    adapter(args.format)
    config = load_config(Path(args.project))
    context = adapter_context(config)
    if args.files.count("-") > 1:
        raise UsageError("- (standard input) is given more than once; pass it once")
    signals = []
    for name in args.files:
        body = _read_payload(name)
        where = "stdin" if name == "-" else name
        signals.extend(signals_of(args.format, decode(body, where), context, where))

    store = open_store(config.database_url)
    try:
        outcomes = ingest_signals(store, config, signals)
    finally:
        store.close()
    render.print_outcomes(outcomes, as_json=args.json)
    return 0


def _read_payload(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    path = Path(name)
    if path.is_dir():
        raise PayloadError(f"payload file '{name}' is a folder; pass JSON files, e.g. "
                           f"{name.rstrip('/')}/*.json")
    if not path.is_file():
        raise PayloadError(f"payload file '{name}' does not exist; pass a JSON file or - for "
                           f"standard input")
    return path.read_bytes()


def _cmd_serve(args) -> int:
    from .serve import serve

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is invalid; use 1-65535")
    config = load_config(Path(args.project))
    # A long-running server logs each request and its stop even without --verbose.
    logging.getLogger("tinysdlc_nb.incidents").setLevel(logging.INFO)

    def announce(host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        print(f"Listening on http://{shown}:{port}/webhooks/FORMAT (no authentication); "
              f"Ctrl-C stops", file=sys.stderr, flush=True)

    serve(config, host=args.host, port=args.port, ready=announce)
    return 0


def _cmd_open(args) -> int:
    with _opened(args) as (config, store):
        incident_id = _actions(config, store).open(
            title=args.title, by=args.by, severity=args.severity, service=args.service,
            description=args.description, at=_at(args))
        detail = incident_detail(store, incident_id, _policy(config), now=utc_now())
    render.print_detail_line(detail, "opened", as_json=args.json)
    return 0


def _act(args, action) -> int:
    """Run ``action(actions, incident_id) -> sentence`` on the incident named by ``args.id``
    and print the incident afterwards, as one line or as JSON."""
    incident_id = parse_incident_id(args.id)
    with _opened(args) as (config, store):
        what = action(_actions(config, store), incident_id)
        detail = incident_detail(store, incident_id, _policy(config), now=utc_now())
    render.print_detail_line(detail, what, as_json=args.json)
    return 0


def _cmd_milestone(args) -> int:
    def record(actions: Actions, incident_id: int) -> str:
        method = getattr(actions, args.method)
        row_id = method(incident_id, by=args.by, note=args.note, at=_at(args))
        return f"{args.method}d by {args.by} (row {row_id})"

    return _act(args, record)


def _cmd_log(args) -> int:
    due = None
    if args.due:
        try:
            due = dt.date.fromisoformat(args.due)
        except ValueError:
            raise UsageError(f"--due '{args.due}' is not a date; write YYYY-MM-DD") from None

    def record(actions: Actions, incident_id: int) -> str:
        row_id = actions.log(incident_id, args.text, by=args.by, kind=args.kind,
                             owner=args.owner, due=due, at=_at(args))
        return f"{args.kind} logged (row {row_id})"

    return _act(args, record)


def _cmd_severity(args) -> int:
    def record(actions: Actions, incident_id: int) -> str:
        actions.change_severity(incident_id, args.severity, by=args.by, reason=args.reason,
                                at=_at(args))
        return f"severity set to {args.severity.strip().upper()}"

    return _act(args, record)


def _cmd_retract(args) -> int:
    def record(actions: Actions, incident_id: int) -> str:
        row_id = actions.retract(incident_id, args.row, by=args.by, reason=args.reason)
        return f"row {args.row} retracted (row {row_id})"

    return _act(args, record)


def _cmd_correct(args) -> int:
    def record(actions: Actions, incident_id: int) -> str:
        row_id = actions.correct(incident_id, args.row, by=args.by, at=_at(args),
                                 text=args.text)
        return f"row {args.row} corrected by row {row_id}"

    return _act(args, record)


def _cmd_show(args) -> int:
    incident_id = parse_incident_id(args.id)
    with _opened(args) as (config, store):
        detail = incident_detail(store, incident_id, _policy(config), now=utc_now())
        rows = incident_rows(store, incident_id, flapping=Flapping.from_config(config.incidents))
    if args.json:
        print(json.dumps(scrub_data({**detail, "timeline": [row_json(row) for row in rows]}),
                         indent=2))
    else:
        render.print_detail(detail, rows, config.project["display_zone"])
    return 0


def _cmd_list(args) -> int:
    with _opened(args) as (config, store):
        table = incident_table(store, _policy(config), now=utc_now())
    items = render.list_items(table)
    if args.open:
        items = [item for item in items if item["status"] not in ("resolved", "verified",
                                                                   "closed")]
    if args.json:
        print(json.dumps(scrub_data(items), indent=2))
    else:
        render.print_list(items, table, config.project["display_zone"])
    return 0


def _cmd_timeline(args) -> int:
    incident_id = parse_incident_id(args.id)
    with _opened(args) as (config, store):
        rows = incident_rows(store, incident_id, raw=args.raw,
                             flapping=Flapping.from_config(config.incidents))
    if args.json:
        print(json.dumps(scrub_data([row_json(row) for row in rows]), indent=2))
    else:
        render.print_timeline(display_id(incident_id), rows, config.project["display_zone"])
    return 0


def _cmd_metrics(args) -> int:
    since = _since(args.since, args.tz)
    with _opened(args) as (config, store):
        table = incident_table(store, _policy(config), now=utc_now(), since=since)
    result = severity_metrics(table)
    if args.json:
        print(json.dumps(render.metrics_items(result), indent=2))
    else:
        render.print_metrics(result, since)
    return 0


def _since(text: str | None, zone: str | None) -> dt.datetime | None:
    if text is None:
        if zone:
            raise UsageError("--tz only applies to --since; add --since TIME or drop --tz")
        return None
    if len(text.strip()) == 10 and not zone:
        try:
            return dt.datetime.combine(dt.date.fromisoformat(text.strip()), dt.time(), dt.UTC)
        except ValueError:
            raise UsageError(f"--since '{text}' is not a date; write YYYY-MM-DD or an ISO "
                             f"8601 time with offset") from None
    return parse_cli_time(text, zone, option="--since")


def _cmd_postmortem(args) -> int:
    from .postmortem import write_postmortem

    incident_id = parse_incident_id(args.id)
    config = load_config(Path(args.project))
    html = write_postmortem(config, incident_id, Path(args.output) if args.output else None)
    print(f"Postmortem of {display_id(incident_id)}: {html}")
    return 0


def _policy(config: Config) -> SlaPolicy:
    return SlaPolicy.from_config(config.sla)
