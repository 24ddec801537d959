"""The team inbox's message form: a person writes to the team, as `tinysdlc-nb send` does.

The form routes and stores the message with the same functions as the CLI, so an
unknown ``@id`` or an empty message is rejected here too and nothing is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ipywidgets as widgets

from ..config import Config
from ..errors import TinySDLCError, UsageError
from ..scrub import scrub
from ..store import Store
from .conversations import start_conversation
from .model import HUMAN, Dropped
from .routing import route_user_message
from .settings import TeamSettings
from .tags import parse_user_address

log = logging.getLogger(__name__)

# The length of team_conversations.started_by, which stores the sender's name.
MAX_NAME_LENGTH = 200
ORIGIN = "notebook"


@dataclass(frozen=True)
class SentMessage:
    """A message the form stored: its conversation, its queued messages and its drops."""

    conversation_id: int
    message_ids: tuple[int, ...]
    recipients: tuple[str, ...]
    dropped: tuple[Dropped, ...]


class MessageForm:
    """A message box, a name box, a Send button and an Output that shows what happened.

    ``widget`` is the panel to display. The button calls ``send``, which tests call
    directly.
    """

    def __init__(self, store: Store, config: Config, settings: TeamSettings):
        self.store = store
        self.config = config
        self.settings = settings
        self.message = widgets.Textarea(description="Message",
                                        placeholder="@devops status of release 1.4.0",
                                        layout=widgets.Layout(width="60%", height="6em"))
        self.author = widgets.Text(description="Your name", placeholder="your name")
        self.button = widgets.Button(description="Send", button_style="primary",
                                     icon="paper-plane")
        self.output = widgets.Output()
        self.button.on_click(self._clicked)
        self.widget = widgets.VBox([self.message, self.author, self.button, self.output])

    def send(self, text: str, author: str) -> SentMessage | None:
        """Store ``text`` from ``author`` as a new conversation and show the result.

        Return the stored message. For invalid input, show the error in the output,
        store nothing and return None.
        """
        self.output.outputs = ()
        try:
            sent = self._store_message(text, author)
        except TinySDLCError as error:
            message = scrub(str(error))
            log.info("message form: message not sent: %s", message)
            self.output.append_stdout(f"Not sent: {message}\n")
            return None

        log.info("message form: conversation %s started by %s for %s", sent.conversation_id,
                 scrub(author.strip()), ", ".join(sent.recipients))
        self.output.append_stdout(describe(sent))
        return sent

    def _clicked(self, _button: widgets.Button) -> None:
        if self.send(self.message.value, self.author.value) is not None:
            self.message.value = ""

    def _store_message(self, text: str, author: str) -> SentMessage:
        name = validated_name(author)
        decision = route_user_message(text, self.settings,
                                      self.config.team["default_agent"] or None,
                                      self.config.team["max_conversation_messages"])

        started = start_conversation(
            self.store, decision, text=text, started_by=name, sender=HUMAN, origin=ORIGIN,
            team=_addressed_team(text, self.settings),
            max_messages=self.config.team["max_conversation_messages"],
            max_attempts=self.config.team["max_attempts"])
        return SentMessage(started.conversation_id, started.message_ids,
                           tuple(delivery.to for delivery in decision.deliveries),
                           decision.dropped)


def validated_name(author: str) -> str:
    """Return the sender's name without surrounding spaces; raise UsageError if unusable."""
    name = author.strip()
    if not name:
        raise UsageError("your name is empty; type it in the 'Your name' box")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(f"your name is {len(name)} characters long; shorten it to at most "
                         f"{MAX_NAME_LENGTH}")
    if not name.isprintable():
        raise UsageError(f"your name {name!r} contains a line break or a control character; "
                         f"type it on one line")
    return name


def describe(sent: SentMessage) -> str:
    """Return the lines the form shows after a message was stored."""
    targets = ", ".join(f"@{recipient}" for recipient in sent.recipients)
    ids = ", ".join(str(message_id) for message_id in sent.message_ids)
    noun = "message" if len(sent.message_ids) == 1 else "messages"
    lines = [f"Conversation C-{sent.conversation_id}: queued for {targets} ({noun} {ids})."]
    for item in sent.dropped:
        lines.append(f"Not delivered: @{item.mention}: {item.detail}")
    lines.append(f"A running `tinysdlc-nb worker` delivers it. Read the answer with "
                 f"`tinysdlc-nb conversation show {sent.conversation_id}`, or set "
                 f"conversation_id = {sent.conversation_id} and run the notebook again.")
    return scrub("\n".join(lines)) + "\n"


def _addressed_team(text: str, settings: TeamSettings) -> str | None:
    """Return the team id a message starts with (``@release ...``), else None."""
    target = parse_user_address(text).target
    return target if target in settings.teams else None
