"""The team inbox: its frames, its message form and the notebook through a real kernel."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from teamkit import team_document

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.execute import packaged_notebook, run_notebook
from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import team_conversations, team_messages
from tinysdlc_nb.team import inbox
from tinysdlc_nb.team.conversations import conversation_detail, start_conversation
from tinysdlc_nb.team.inbox_form import MessageForm
from tinysdlc_nb.team.model import HUMAN, AgentContext, AgentRejected, AgentReply
from tinysdlc_nb.team.queue import QueueOptions
from tinysdlc_nb.team.routing import route_user_message
from tinysdlc_nb.team.worker import Worker

OPTIONS = QueueOptions(max_attempts=3, backoff_base_s=10, backoff_max_s=60, lease_s=30)
GITHUB_TOKEN = "ghp_" + "Zx9Q" * 9
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def send(store, settings, text, author="alice"):
    decision = route_user_message(text, settings, "devops")
    return start_conversation(store, decision, text=text, started_by=author, sender=HUMAN,
                              max_messages=50, max_attempts=3)


def devops_script(request):
    """Plan with a hand-off and an unknown mention, reject the frozen deploy, else answer."""
    if "frozen" in request.message:
        raise AgentRejected("deploy target <prod> is frozen until Monday")
    if request.agent_id == "devops" and request.sender == HUMAN:
        return AgentReply("Release plan ready.\n[@coder: check <b>build</b> 42] "
                          "[@ghost: hello]",
                          notifications=(("alice", "deploy window opens at 14:00"),))
    return f"{request.agent_id} done with #{request.message_id}"


@pytest.fixture
def busy(project, config, team_settings, scripted):
    """A project with one answered, one dead and one pending conversation.

    The worker here runs the scripted agents; the settings file on disk names the
    protocol provider, which the notebook's kernel can load without the test's registry.
    """
    config.home.mkdir(parents=True, exist_ok=True)
    (config.home / "settings.json").write_text(
        json.dumps(team_document(provider="protocol")), encoding="utf-8")
    store = open_store(config.database_url)
    scripted.script = devops_script

    ids = {"planned": send(store, team_settings, "@devops plan release 1.4").conversation_id,
           "frozen": send(store, team_settings, "@tester run the frozen deploy")}
    context = AgentContext(store=store, config=config, settings=team_settings,
                           files_dir=config.files_dir)
    Worker(store, context, lambda: team_settings, OPTIONS, concurrency=1, once=True).run()
    ids["dead_message"] = ids["frozen"].message_ids[0]
    ids["frozen"] = ids["frozen"].conversation_id
    ids["waiting"] = send(store, team_settings, "@pjm weekly status").conversation_id
    yield store, ids
    store.close()


def conversation_count(store) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(team_conversations)) \
            .scalar_one()


def output_texts(cell, kind: str) -> str:
    """Join the outputs of one cell of MIME type ``kind`` (``stream`` for printed text)."""
    texts = []
    for output in cell.get("outputs", []):
        if kind == "stream" and output.get("output_type") == "stream":
            texts.append(output["text"])
        elif kind in output.get("data", {}):
            value = output["data"][kind]
            texts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(texts)


def code_cells(execution):
    return [cell for cell in execution.notebook.cells if cell.cell_type == "code"]


# The frames and views the notebook shows.

def test_conversations_frame_counts(busy):
    store, ids = busy
    frame = inbox.conversations_frame(store).set_index("id")

    assert list(frame.index) == [ids["waiting"], ids["frozen"], ids["planned"]]
    assert frame.loc[ids["planned"], "status"] == "answered"
    assert frame.loc[ids["planned"], "messages"] == 3
    assert frame.loc[ids["frozen"], "dead"] == 1
    assert frame.loc[ids["waiting"], "open_messages"] == 1


def test_conversations_frame_limit(busy):
    store, ids = busy

    assert list(inbox.conversations_frame(store, 1)["id"]) == [ids["waiting"]]
    with pytest.raises(UsageError, match="limit 0 is invalid"):
        inbox.conversations_frame(store, 0)


def test_handoffs_frame_kinds(busy):
    store, ids = busy
    frame = inbox.handoffs_frame(store, ids["planned"])

    handoff = frame[frame["kind"] == "handoff"].iloc[0]
    dropped = frame[frame["kind"] == "dropped"].iloc[0]
    assert handoff["target"] == "coder"
    assert handoff["detail"] == "check <b>build</b> 42"
    assert dropped["target"] == "ghost"
    assert dropped["detail"].startswith("unknown_id:")
    assert "notified" in set(frame["kind"])


def test_messages_frame_times(busy):
    store, ids = busy
    frame = inbox.messages_frame(store, ids["planned"])

    assert list(frame["recipient"]) == ["devops", "coder", "devops"]
    assert list(frame["kind"]) == ["task", "task", "notice"]
    assert (frame["wait_s"] >= 0).all()
    assert (frame["duration_s"] >= 0).all()


def test_queue_frame_statuses(busy):
    store, _ids = busy
    frame = inbox.queue_frame(store).set_index("agent")

    assert frame.loc["devops", "done"] == 2
    assert frame.loc["tester", "dead"] == 1
    assert frame.loc["pjm", "pending"] == 1


def test_dead_messages_retry_command(busy):
    store, ids = busy

    here = inbox.dead_messages_to_retry(store)
    elsewhere = inbox.dead_messages_to_retry(store, "/srv/my project")

    assert list(here["id"]) == [ids["dead_message"]]
    assert here["retry_command"][0] == f"tinysdlc-nb queue retry {ids['dead_message']}"
    assert elsewhere["retry_command"][0].endswith("--project '/srv/my project'")


def test_chosen_conversation_newest(busy):
    store, ids = busy

    assert inbox.chosen_conversation(store, 0)["id"] == ids["waiting"]
    assert inbox.chosen_conversation(store, ids["planned"])["id"] == ids["planned"]


def test_chosen_conversation_invalid(busy, sqlite_store):
    store, _ids = busy

    with pytest.raises(UsageError, match="conversation 999 not found"):
        inbox.chosen_conversation(store, 999)
    with pytest.raises(UsageError, match="conversation_id -1 is invalid"):
        inbox.chosen_conversation(store, -1)
    assert inbox.chosen_conversation(sqlite_store, 0) is None


def test_conversation_html_escaped(busy):
    store, ids = busy
    page = inbox.conversation_html(conversation_detail(store, ids["frozen"]))
    waiting = inbox.conversation_html(conversation_detail(store, ids["waiting"]))

    assert "&lt;prod&gt; is frozen" in page
    assert "<prod>" not in page
    assert "No answer yet" in waiting


def test_open_inbox_missing_settings(project):
    opened = inbox.open_inbox(project)
    try:
        assert opened.settings is None
        assert "tinysdlc-nb init" in opened.settings_error
    finally:
        opened.store.close()


# The message form, called without a browser.

def test_form_send_stored(any_store, config, team_settings):
    form = MessageForm(any_store, config, team_settings)

    sent = form.send("@release ship 1.4.0 tonight", "  Alice  ")

    detail = conversation_detail(any_store, sent.conversation_id)
    assert detail["started_by"] == "Alice"
    assert detail["origin"] == "notebook"
    assert detail["team"] == "release"
    assert [message["recipient"] for message in detail["messages"]] == ["devops"]
    assert detail["messages"][0]["sender"] == HUMAN
    assert f"Conversation C-{sent.conversation_id}: queued for @devops" \
        in form.output.outputs[0]["text"]


def test_form_send_dropped_shown(sqlite_store, config, team_settings):
    form = MessageForm(sqlite_store, config, team_settings)

    sent = form.send("Two jobs: [@coder: build 1.4] [@ghost: hello]", "alice")

    shown = form.output.outputs[0]["text"]
    assert sent.recipients == ("coder",)
    assert "Not delivered: @ghost:" in shown
    assert "queued for @coder" in shown


@pytest.mark.parametrize(("text", "author", "error"), [
    ("@ghost deploy", "alice", "'@ghost' is not an agent or team id"),
    ("   ", "alice", "the message is empty"),
    ("@devops", "alice", "the message to @devops is empty"),
    ("@devops deploy", "  ", "your name is empty"),
    ("@devops deploy", "al\nice", "contains a line break"),
    ("@devops deploy", "a" * 201, "shorten it to at most 200"),
])
def test_form_rejects_input(sqlite_store, config, team_settings, text, author, error):
    form = MessageForm(sqlite_store, config, team_settings)

    sent = form.send(text, author)

    assert sent is None
    assert error in form.output.outputs[0]["text"]
    assert conversation_count(sqlite_store) == 0


def test_form_redacts_secret(any_store, config, team_settings):
    form = MessageForm(any_store, config, team_settings)

    sent = form.send(f"@devops rotate {GITHUB_TOKEN} please", "alice")

    detail = conversation_detail(any_store, sent.conversation_id)
    with any_store.engine.connect() as connection:
        body = connection.execute(select(team_messages.c.body)).scalar_one()
    assert GITHUB_TOKEN not in detail["text"]
    assert "[REDACTED" in detail["text"]
    assert GITHUB_TOKEN not in body
    assert GITHUB_TOKEN not in json.dumps(detail["events"], default=str)


def test_form_button_click(sqlite_store, config, team_settings):
    form = MessageForm(sqlite_store, config, team_settings)
    form.message.value = "@coder rebuild the wheel"
    form.author.value = "bob"

    form.button.click()

    assert conversation_count(sqlite_store) == 1
    assert form.message.value == ""
    assert form.author.value == "bob"


def test_form_previous_output_cleared(sqlite_store, config, team_settings):
    form = MessageForm(sqlite_store, config, team_settings)

    form.send("@ghost hi", "alice")
    form.send("@coder hi", "alice")

    assert len(form.output.outputs) == 1
    assert "queued for @coder" in form.output.outputs[0]["text"]


# The notebook through papermill and a real kernel.

@pytest.mark.kernel
def test_notebook_shows_store(busy, project):
    _store, ids = busy

    execution = run_notebook(packaged_notebook("team_inbox"),
                             {"project_dir": str(project), "conversation_id": ids["planned"]},
                             cwd=project, cell_timeout_s=120)

    assert execution.completed, execution.message
    _parameters, *_injected, queue, conversations, conversation, form = code_cells(execution)
    queue_html = output_texts(queue, "text/html")
    assert "<td>tester</td>" in queue_html
    assert f"tinysdlc-nb queue retry {ids['dead_message']} --project" in queue_html
    assert "deploy window opens at 14:00" in queue_html
    listing = output_texts(conversations, "text/html")
    for text in ("plan release 1.4", "run the frozen deploy", "weekly status"):
        assert text in listing
    shown = output_texts(conversation, "text/html")
    assert f"Conversation C-{ids['planned']} (answered)" in shown
    assert "check &lt;b&gt;build&lt;/b&gt; 42" in shown
    assert "<b>build</b>" not in shown
    assert "coder done with #" in shown
    assert "<td>ghost</td>" in shown
    assert "model_id" in output_texts(form, WIDGET_VIEW)


@pytest.mark.kernel
def test_notebook_without_settings(busy, project):
    _store, ids = busy

    execution = run_notebook(packaged_notebook("team_inbox"),
                             {"project_dir": str(project),
                              "settings_path": str(project / "missing.json")},
                             cwd=project, cell_timeout_s=120)

    assert execution.completed, execution.message
    *_cells, queue, conversations, conversation, form = code_cells(execution)
    assert f"tinysdlc-nb queue retry {ids['dead_message']}" in output_texts(queue, "text/html")
    assert "weekly status" in output_texts(conversations, "text/html")
    assert f"Conversation C-{ids['waiting']} (open)" in output_texts(conversation, "text/html")
    form_text = output_texts(form, "text/markdown")
    assert "missing.json not found" in form_text
    assert "tinysdlc-nb init" in form_text
    assert output_texts(form, WIDGET_VIEW) == ""
