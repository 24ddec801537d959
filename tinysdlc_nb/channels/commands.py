"""The CLI of the channels commands: list, test, deliver and listen."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

SEND_FAILED_EXIT = 1
USAGE_EXIT = 2


def add_channel_commands(commands, parser_class) -> None:
    """Register the channels commands on the CLI's subparsers."""
    channels = commands.add_parser("channels", help="chat channels that carry notifications "
                                   "and bring messages to the team")
    channels.set_defaults(handler=lambda _args: _help(channels))
    actions = channels.add_subparsers(metavar="ACTION", parser_class=parser_class)

    listing = actions.add_parser("list", help="configured channels, their secret variables "
                                 "and how many notifications each has still to deliver")
    _common(listing, json_output=True)
    listing.set_defaults(handler=_cmd_list)

    test = actions.add_parser("test", help="send one message now (exit 0 sent, 1 failed)")
    test.add_argument("name", help="channel name, such as telegram or slack")
    test.add_argument("--text", help="the message (default: a short test line)")
    _common(test)
    test.set_defaults(handler=_cmd_test)

    deliver = actions.add_parser("deliver", help="run one delivery pass over the queued "
                                 "notifications")
    _common(deliver, json_output=True)
    deliver.set_defaults(handler=_cmd_deliver)

    listen = actions.add_parser("listen", help="receive Telegram messages in the foreground "
                                "and deliver the answers")
    listen.add_argument("--once", action="store_true", help="run one getUpdates round and "
                        "stop")
    _common(listen)
    listen.set_defaults(handler=_cmd_listen)


def _common(parser: argparse.ArgumentParser, json_output: bool = False) -> None:
    parser.add_argument("--project", default=".", help="project folder (default: .)")
    if json_output:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return USAGE_EXIT


def _cmd_list(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..scrub import scrub_data
    from ..store import open_store
    from .status import channel_status

    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        status = scrub_data(channel_status(store, config))
    finally:
        store.close()

    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
        return 0
    if not status["channels"]:
        print("No channels configured. Add a [channels.<name>] table to .tinysdlc/config.toml.")
    for item in status["channels"]:
        secrets = ", ".join(f"{name} {'set' if is_set else 'NOT SET'}"
                            for name, is_set in item["secrets"].items()) or "none"
        counts = item["deliveries"]
        print(f"{item['name']:<9} {'notify' if item['notify'] else '      '}  "
              f"queued {counts['queued']}  delivered {counts['delivered']}  "
              f"failing {counts['failing']}  secrets: {secrets}")
        if item["last_error"]:
            print(f"          last error: {item['last_error']}")
    waiting = status["notifications_waiting"]
    print(f"{waiting} notification(s) wait for delivery; a channel's queued count is how "
          f"many of them it has still to deliver.")
    if waiting and not status["notify"]:
        print("channels.notify is empty, so notifications stay queued; name the channels "
              "that carry them in [channels] notify.")
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..scrub import scrub
    from .base import Outgoing, new_client
    from .registry import build_channel
    from .split import split_text

    config = load_config(Path(args.project))
    channel = build_channel(args.name, config.channels)
    channel.prepare()
    text = args.text or f"tinysdlc-nb test message from {config.name}"
    parts = split_text(scrub(text), channel.limit)
    with new_client(config.channels["timeout_s"]) as client:
        for target in channel.targets():
            for number, part in enumerate(parts, 1):
                message = Outgoing(text=part, target=target, part=number, parts=len(parts),
                                   recipient="test", key=f"test-p{number}")
                failure = _send_with_wait(channel, client, message,
                                          config.channels["max_retry_after_s"])
                if failure is not None:
                    where = f" to {target}" if target else ""
                    print(f"tinysdlc-nb: channels test {args.name}{where} failed: "
                          f"{scrub(failure)}", file=sys.stderr)
                    return SEND_FAILED_EXIT
    print(f"Sent {len(parts)} part(s) to {len(channel.targets())} recipient(s) over "
          f"{args.name}.")
    return 0


def _send_with_wait(channel, client, message, max_wait_s: float) -> str | None:
    """Send one message, waiting once for a short 429; return the error, or None when sent."""
    result = channel.send(client, message)
    if result.http_status == 429 and result.retry_after_s is not None \
            and result.retry_after_s <= max_wait_s:
        time.sleep(result.retry_after_s)
        result = channel.send(client, message)
    return None if result.ok else (result.error or "failed without a message")


def _cmd_deliver(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..store import open_store
    from .delivery import deliver_due

    config = load_config(Path(args.project))
    store = open_store(config.database_url)
    try:
        summary = deliver_due(store, config)
    finally:
        store.close()

    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    if not config.channels["notify"]:
        print("channels.notify is empty, so notifications stay queued; name the channels "
              "that carry them in [channels] notify.")
    print(f"Delivery pass: {summary['claimed']} claimed, {summary.get('delivered', 0)} "
          f"delivered, {summary.get('retrying', 0)} to retry, "
          f"{summary.get('rate_limited', 0)} rate limited, {summary['parts_sent']} part(s) "
          f"sent, {summary['notifications_delivered']} notification(s) done.")
    return 0


def _cmd_listen(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..errors import ConfigError
    from ..store import open_store
    from .base import new_client
    from .delivery import deliver_due
    from .inbound import receive_once
    from .telegram import UpdatesError

    config = load_config(Path(args.project))
    if "telegram" not in config.channels["configured"]:
        raise ConfigError("channels listen needs a [channels.telegram] table in config.toml")
    store = open_store(config.database_url)
    client = new_client(config.channels["timeout_s"])
    try:
        while True:
            try:
                received = receive_once(store, config, client)
            except UpdatesError as error:
                print(f"tinysdlc-nb: getUpdates failed: {error}", file=sys.stderr)
                if args.once:
                    return SEND_FAILED_EXIT
                time.sleep(5)
                continue
            _print_received(received.as_json())
            if args.once:
                return 0
            deliver_due(store, config, client=client)
    finally:
        client.close()
        store.close()


def _print_received(counts: dict[str, Any]) -> None:
    started = ", ".join(f"C-{number}" for number in counts["conversations"])
    print(f"{counts['updates']} update(s): {counts['queued']} queued for the team"
          f"{' (' + started + ')' if started else ''}, {counts['rejected']} rejected, "
          f"{counts['duplicates']} repeated, {counts['ignored']} ignored.", flush=True)
