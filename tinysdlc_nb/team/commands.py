"""The team messaging commands: init, route, send, worker, queue and conversation."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..config import Config, load_config
from ..errors import UsageError
from ..scrub import scrub, scrub_data
from ..store import Store, open_store
from .conversations import (
    conversation_detail,
    list_conversations,
    parse_conversation_id,
    start_conversation,
)
from .defaults import write_default_settings
from .inbox import dead_messages, pending_notifications
from .model import HUMAN, AgentContext
from .queue import QueueOptions, queue_counts, retry_dead
from .routing import route, route_user_message
from .settings import RUNNABLE_PROVIDERS, TeamSettings, load_team_settings
from .worker import Worker

USAGE_EXIT = 2
WAIT_POLL_S = 0.05


def add_team_commands(commands, parser_class) -> None:
    """Register the team messaging commands on the CLI's subparsers."""
    init = commands.add_parser("init", help="write the default team settings "
                               "(.tinysdlc/settings.json)")
    _project(init)
    init.add_argument("--provider", choices=RUNNABLE_PROVIDERS, default="protocol",
                      help="provider of every agent (default: protocol, which needs no key)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.add_argument("--no-heartbeat", action="store_true", help="do not schedule the "
                      "heartbeat notebook (scheduled by default, every 15 minutes)")
    init.set_defaults(handler=_cmd_init)

    route_parser = commands.add_parser("route", help="show where a reply's hand-offs would "
                                       "go, without sending anything")
    route_parser.add_argument("--from", dest="sender", required=True,
                              help=f"agent id that wrote the text, or '{HUMAN}' for a person")
    _text_options(route_parser)
    _project(route_parser)
    route_parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    route_parser.set_defaults(handler=_cmd_route)

    send = commands.add_parser("send", help="send a message as a person, e.g. "
                               "\"@devops deploy 1.4.0\"")
    send.add_argument("text", nargs="?", help="the message; start it with @agent or @team")
    send.add_argument("--text-file", type=Path, help="read the message from this file")
    send.add_argument("--from", dest="author", help="your name (default: the login name)")
    send.add_argument("--wait", type=float, metavar="SECONDS",
                      help="wait up to SECONDS for the answer (a worker must be running)")
    _project(send)
    send.add_argument("--json", action="store_true", help="print the result as JSON")
    send.set_defaults(handler=_cmd_send)

    worker = commands.add_parser("worker", help="deliver queued messages to the agents")
    worker.add_argument("--once", action="store_true",
                        help="stop when nothing is left to claim instead of waiting")
    worker.add_argument("--concurrency", type=int,
                        help="messages handled at once (default: [team].concurrency, 4)")
    worker.add_argument("--agent", action="append", dest="agents", metavar="ID",
                        help="serve only this agent (repeatable)")
    _project(worker)
    worker.set_defaults(handler=_cmd_worker)

    queue = commands.add_parser("queue", help="show or repair the message queue")
    queue.set_defaults(handler=lambda _args: _help(queue))
    queue_commands = queue.add_subparsers(metavar="ACTION", parser_class=parser_class)
    status = queue_commands.add_parser("status", help="messages per status and agent, dead "
                                       "messages, waiting notifications")
    _project(status, settings=False)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_cmd_queue_status)
    retry = queue_commands.add_parser("retry", help="put a dead message back in the queue")
    retry.add_argument("id", type=int, help="message id (see `queue status`)")
    retry.add_argument("--by", help="your name (default: the login name)")
    _project(retry, settings=False)
    retry.add_argument("--json", action="store_true", help="print the message as JSON")
    retry.set_defaults(handler=_cmd_queue_retry)

    conversation = commands.add_parser("conversation", help="read team conversations")
    conversation.set_defaults(handler=lambda _args: _help(conversation))
    conversation_commands = conversation.add_subparsers(metavar="ACTION",
                                                        parser_class=parser_class)
    listing = conversation_commands.add_parser("list", help="newest conversations first")
    listing.add_argument("--limit", type=int, default=50, help="at most this many "
                         "(default: 50)")
    listing.add_argument("--status", choices=["open", "answered"], help="only this status")
    _project(listing, settings=False)
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    listing.set_defaults(handler=_cmd_conversation_list)
    show = conversation_commands.add_parser("show", help="one conversation: messages, "
                                            "hand-offs, drops and the answer")
    show.add_argument("id", help="conversation id, e.g. 3 or C-3")
    _project(show, settings=False)
    show.add_argument("--json", action="store_true", help="print it as JSON")
    show.set_defaults(handler=_cmd_conversation_show)


def _project(parser: argparse.ArgumentParser, settings: bool = True) -> None:
    parser.add_argument("--project", default=".", help="project folder (default: .)")
    if settings:
        parser.add_argument("--settings", help="team settings file (default: "
                            "$TINYSDLC_NB_SETTINGS, else .tinysdlc/settings.json)")


def _text_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", help="the reply text to route")
    group.add_argument("--text-file", type=Path, help="read the reply text from this file")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return USAGE_EXIT


def _read_text(text: str | None, text_file: Path | None) -> str:
    if text_file is not None:
        try:
            return text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read --text-file {text_file} ({error}); pass a UTF-8 "
                             f"text file") from error
    if text is None:
        raise UsageError("no message given; pass the text or --text-file FILE")
    return text


def _person(name: str | None) -> str:
    chosen = (name or "").strip()
    if chosen:
        return chosen
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return HUMAN


def _cmd_init(args: argparse.Namespace) -> int:
    config = load_config(Path(args.project))
    path = write_default_settings(config.home, provider=args.provider, force=args.force)
    print(f"Wrote the default team to {path}: agents {', '.join(_settings_ids(path))}. "
          f"Start a worker with `tinysdlc-nb worker`, then `tinysdlc-nb send \"@devops "
          f"status\"`.")
    if not args.no_heartbeat:
        _schedule_heartbeat(config)
    return 0


def _schedule_heartbeat(config: Config) -> None:
    """Add the ``heartbeat`` schedule unless one exists, and print which happened."""
    from ..runbooks.spec import default_operator
    from ..schedules.model import ScheduleSpec
    from ..schedules.records import ensure_schedule, get_schedule

    spec = ScheduleSpec(name="heartbeat", kind="notebook", target="heartbeat",
                        cron=config.heartbeat["cron"], project=str(config.project_dir),
                        timezone=config.project["display_zone"],
                        created_by=default_operator())
    store = open_store(config.database_url)
    try:
        added = ensure_schedule(store, spec)
        schedule = get_schedule(store, "heartbeat")
    finally:
        store.close()
    state = "Scheduled" if added else "Kept the existing schedule of"
    print(f"{state} the heartbeat: '{schedule['cron']}' ({schedule['timezone']}). Start "
          f"`tinysdlc-nb scheduler` to run it.")


def _settings_ids(path: Path) -> list[str]:
    return list(json.loads(path.read_text(encoding="utf-8"))["agents"])


def _cmd_route(args: argparse.Namespace) -> int:
    config = load_config(Path(args.project))
    settings = load_team_settings(config.home, args.settings)
    sender = args.sender.strip().lower()
    if sender != HUMAN and sender not in settings.agents:
        raise UsageError(f"--from '{args.sender}' is not an agent; use one of "
                         f"{', '.join(sorted(settings.agents))}, or '{HUMAN}' for a person")

    text = _read_text(args.text, args.text_file)
    decision = route(sender, text, settings)
    payload = scrub_data(decision.as_json())
    if args.json:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0

    for delivery in payload["deliveries"]:
        print(f"→ @{delivery['to']}: {_first_line(delivery['directed'])}")
    for dropped in payload["dropped"]:
        print(f"✗ @{dropped['mention']}: {dropped['reason']} ({dropped['detail']})")
    if not payload["deliveries"] and not payload["dropped"]:
        print("No hand-offs in this text.")
    return 0


def _cmd_send(args: argparse.Namespace) -> int:
    config = load_config(Path(args.project))
    settings = load_team_settings(config.home, args.settings)
    text = _read_text(args.text, args.text_file)
    if args.wait is not None and args.wait <= 0:
        raise UsageError(f"--wait {args.wait:g} is invalid; give a number of seconds above 0")

    decision = route_user_message(text, settings, config.team["default_agent"] or None,
                                  config.team["max_conversation_messages"])
    author = _person(args.author)
    store = open_store(config.database_url)
    try:
        started = start_conversation(
            store, decision, text=text, started_by=author, sender=HUMAN, origin="cli",
            team=_team_addressed(text, settings),
            max_messages=config.team["max_conversation_messages"],
            max_attempts=config.team["max_attempts"])
        answer = _wait_for_answer(store, started.conversation_id, args.wait) \
            if args.wait else None
    finally:
        store.close()

    result = {"conversation_id": started.conversation_id, "message_ids": list(started.message_ids),
              "deliveries": [delivery.to for delivery in decision.deliveries],
              "dropped": [item.as_json() for item in decision.dropped], "answer": answer}
    if args.json:
        print(json.dumps(scrub_data(result), indent=2, ensure_ascii=False))
    else:
        targets = ", ".join(f"@{name}" for name in result["deliveries"])
        print(f"Conversation C-{started.conversation_id}: queued for {targets}.")
        if not args.wait:
            where = "" if args.project == "." else f" --project {args.project}"
            print(f"A worker delivers it: run `tinysdlc-nb worker{where}` (or `worker --once`), "
                  f"then `tinysdlc-nb conversation show {started.conversation_id}{where}`.")
        for item in decision.dropped:
            print(f"Not delivered: @{item.mention}: {item.detail}")
        if answer is not None:
            print(f"\n{scrub(answer)}")
    if args.wait and answer is None:
        print(f"No answer after {args.wait:g} s; is a worker running? Read it later with "
              f"`tinysdlc-nb conversation show {started.conversation_id}`.", file=sys.stderr)
        return 1
    return 0


def _team_addressed(text: str, settings: TeamSettings) -> str | None:
    from .tags import parse_user_address

    target = parse_user_address(text).target
    return target if target in settings.teams else None


def _wait_for_answer(store: Store, conversation_id: int, wait_s: float) -> str | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        detail = conversation_detail(store, conversation_id)
        if detail["status"] == "answered":
            return detail["answer"]
        time.sleep(WAIT_POLL_S)
    return None


def _cmd_worker(args: argparse.Namespace) -> int:
    config = load_config(Path(args.project))
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency {args.concurrency} is invalid; give 1 or more")
    settings = load_team_settings(config.home, args.settings)
    unknown = [agent for agent in args.agents or [] if agent.lower() not in settings.agents]
    if unknown:
        raise UsageError(f"--agent '{unknown[0]}' is not in the team settings; known agents: "
                         f"{', '.join(sorted(settings.agents))}")

    store = open_store(config.database_url)
    try:
        worker = build_worker(store, config, settings, settings_file=args.settings,
                              once=args.once, concurrency=args.concurrency,
                              recipients=[agent.lower() for agent in args.agents or []] or None)
        stats = worker.run()
    finally:
        store.close()

    print(f"Worker {worker.worker_id}: {stats.done} done, {stats.retried} retried, "
          f"{stats.dead} dead, {stats.answered} conversation(s) answered.", file=sys.stderr)
    if worker.unusable is not None:
        print(f"tinysdlc-nb: {scrub(str(worker.unusable))}", file=sys.stderr)
        return USAGE_EXIT
    return 0


def build_worker(store: Store, config: Config, settings: TeamSettings, *,
                 settings_file: str | None = None, once: bool = False,
                 concurrency: int | None = None, recipients: list[str] | None = None) -> Worker:
    """Build a worker for ``config``'s queue options with the agents of ``settings``.

    The worker's SQLite connections commit without waiting for the disk
    (``Store.relax_durability``).
    """
    store.relax_durability()
    context = AgentContext(store=store, config=config, settings=settings,
                           files_dir=config.files_dir)
    return Worker(store, context, lambda: load_team_settings(config.home, settings_file),
                  QueueOptions.from_config(config.team),
                  concurrency=concurrency or config.team["concurrency"],
                  poll_interval_s=config.team["poll_interval_s"], once=once,
                  recipients=recipients)


def _cmd_queue_status(args: argparse.Namespace) -> int:
    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        status = queue_counts(store)
        status["dead"] = dead_messages(store).to_dict("records")
        status["notifications_waiting"] = len(pending_notifications(store))
    finally:
        store.close()

    status = scrub_data(_jsonable(status))
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
        return 0

    totals = status["totals"]
    print("Queue: " + ", ".join(f"{count} {name}" for name, count in totals.items()))
    if status["oldest_pending_age_s"] is not None:
        print(f"Oldest pending message waits for {status['oldest_pending_age_s']:.1f} s")
    for agent, counts in sorted(status["agents"].items()):
        print(f"  @{agent:<12} " + "  ".join(f"{name} {count}" for name, count in counts.items()))
    for item in status["dead"]:
        print(f"Dead #{item['id']} to @{item['recipient']} (C-{item['conversation_id']}): "
              f"{_first_line(item['last_error'] or '')}  → `tinysdlc-nb queue retry "
              f"{item['id']}`")
    if status["notifications_waiting"]:
        print(f"{status['notifications_waiting']} notification(s) for people wait for a "
              f"channel")
    return 0


def _cmd_queue_retry(args: argparse.Namespace) -> int:
    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        row = retry_dead(store, args.id, _person(args.by))
    finally:
        store.close()
    if args.json:
        print(json.dumps(scrub_data(_jsonable(row)), indent=2, ensure_ascii=False))
    else:
        print(f"Message {args.id} to @{row['recipient']} is pending again (conversation "
              f"C-{row['conversation_id']}).")
    return 0


def _cmd_conversation_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} is invalid; give 1 or more")
    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        rows = list_conversations(store, limit=args.limit, status=args.status)
    finally:
        store.close()

    rows = scrub_data(_jsonable(rows))
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("No conversations yet. Send one with `tinysdlc-nb send \"@devops status\"`.")
    for row in rows:
        print(f"C-{row['id']:<5} {row['status']:<9} {row['created_at'][:19]}  "
              f"{row['started_by']} → @{row['entry_agent']}  {row['messages']} message(s)"
              f"{', ' + str(row['dead']) + ' dead' if row['dead'] else ''}  "
              f"{_first_line(row['text'])[:60]}")
    return 0


def _cmd_conversation_show(args: argparse.Namespace) -> int:
    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        detail = conversation_detail(store, parse_conversation_id(args.id))
    finally:
        store.close()

    detail = scrub_data(_jsonable(detail))
    if args.json:
        print(json.dumps(detail, indent=2, ensure_ascii=False))
        return 0

    from .inbox import render_conversation

    print(render_conversation(detail))
    return 0


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
