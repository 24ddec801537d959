"""The anthropic agent: the real SDK against a local Messages API server on 127.0.0.1.

The server checks the documented request shape (POST /v1/messages with the key in x-api-key
or Authorization, anthropic-version, content-type and a JSON body). It replies from a script
of documented replies: messages, rate limits, overload, authentication and not-found errors.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tinysdlc_nb.errors import ConfigError
from tinysdlc_nb.team import prompts
from tinysdlc_nb.team.agents import anthropic_agent
from tinysdlc_nb.team.agents.anthropic_agent import (
    AnthropicAgent,
    AnthropicSettingInvalid,
    retry_after_s,
)
from tinysdlc_nb.team.model import (
    AgentContext,
    AgentError,
    AgentRejected,
    AgentRequest,
    AgentUnusable,
)
from tinysdlc_nb.team.settings import parse_team_settings

API_KEY = "test-key-9f3c2a7e51d84b60"
ENV_SECRET = "tok-71be0c5d9a2f4e68"
DEVOPS_PROMPT = "You are the DevOps engineer of the shop team."
CODER_PROMPT = "You write the shop's code."
SETTINGS = {
    "agents": {
        "devops": {"name": "Dana", "provider": "anthropic", "model": "sonnet",
                   "sdlc_role": "devops", "system_prompt": DEVOPS_PROMPT},
        "coder": {"name": "Cody", "provider": "anthropic", "model": "claude-test-model",
                  "sdlc_role": "coder", "system_prompt": CODER_PROMPT},
        "tester": {"name": "Tess", "provider": "protocol", "sdlc_role": "tester"},
    },
    "teams": {"shop": {"name": "Shop team", "agents": ["devops", "coder", "tester"],
                       "leader_agent": "coder"}},
}


def message_body(text: str = "Deployed 1.4.0 to staging.", *, model: str = "claude-test-model",
                 stop_reason: str = "end_turn") -> dict:
    return {"id": "msg_test", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": stop_reason,
            "stop_sequence": None, "usage": {"input_tokens": 321, "output_tokens": 12}}


def error_body(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


OK = (200, message_body(), {})
RATE_LIMITED = (429, error_body("rate_limit_error", "Number of request tokens has exceeded "
                                "your per-minute rate limit"), {"retry-after": "7"})
OVERLOADED = (529, error_body("overloaded_error", "Overloaded"), {})
SERVER_ERROR = (500, error_body("api_error", "Internal server error"), {})
INVALID_KEY = (401, error_body("authentication_error", "invalid x-api-key"), {})
PERMISSION = (403, error_body("permission_error", "Your API key does not have permission "
                              "to use the specified resource."), {})
UNKNOWN_MODEL = (404, error_body("not_found_error", "model: claude-test-model"), {})
INVALID_REQUEST = (400, error_body("invalid_request_error", "max_tokens: 2048 > 1024, which "
                                   "is the maximum allowed"), {})


class MessagesApi:
    """A local Messages API that replies to POST /v1/messages from a script of replies.

    Each request takes the next (status, body, headers) of ``replies``; the last one repeats.
    A body of bytes is sent as it is, with ``content_type``. A request that breaks the
    documented shape gets a 400 and its problem is added to ``problems``.
    """

    def __init__(self, *replies: tuple, delay_s: float = 0.0, content_type: str =
                 "application/json"):
        self.replies = list(replies) or [OK]
        self.delay_s = delay_s
        self.content_type = content_type
        self.requests: list[dict] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.02,),
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def __enter__(self) -> MessagesApi:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.http.shutdown()
        self.http.server_close()

    def check(self, method: str, path: str, headers: dict, raw: bytes) -> list[str]:
        """Return how a request differs from the documented Messages API request."""
        problems = []
        if method != "POST" or path != "/v1/messages":
            problems.append(f"{method} {path}")
        # The API overview requires one of x-api-key or Authorization: Bearer. Older anthropic
        # releases send the key as x-api-key, and anthropic 2.17 sends it as a bearer token.
        if API_KEY not in (headers.get("x-api-key"), headers.get("authorization", "")[7:]):
            problems.append("neither x-api-key nor Authorization carries the test key")
        if headers.get("authorization", "Bearer ")[:7] != "Bearer ":
            problems.append("Authorization is not a bearer token")
        if not headers.get("anthropic-version"):
            problems.append("anthropic-version is missing")
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"content-type {headers.get('content-type')}")
        try:
            body = json.loads(raw)
        except ValueError:
            return [*problems, "body is not JSON"]

        if not isinstance(body.get("model"), str) or not body["model"]:
            problems.append("model is missing")
        if not isinstance(body.get("max_tokens"), int):
            problems.append("max_tokens is missing")
        if not isinstance(body.get("system"), str):
            problems.append("system is not a string")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages \
                or messages[0].get("role") != "user" \
                or not isinstance(messages[0].get("content"), str):
            problems.append("messages is not one user message")
        return problems

    def _next_reply(self) -> tuple:
        with self._lock:
            index = min(len(self.requests) - 1, len(self.replies) - 1)
            return self.replies[index]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                problems = api.check(self.command, self.path, headers, raw)
                with api._lock:
                    api.requests.append({"headers": headers, "raw": raw.decode("utf-8"),
                                         "json": json.loads(raw) if raw else None})
                    api.problems.extend(problems)
                time.sleep(api.delay_s)
                if problems:
                    self._send(400, error_body("invalid_request_error", "; ".join(problems)),
                               {})
                    return
                self._send(*api._next_reply())

            do_GET = do_POST

            def _send(self, status: int, body: dict | bytes, headers: dict) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("content-type", api.content_type)
                    self.send_header("content-length", str(len(data)))
                    # The SDK prefers retry-after-ms, so its own retries stay short.
                    self.send_header("retry-after-ms", "10")
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        return Handler


@pytest.fixture(autouse=True)
def _no_real_api(monkeypatch):
    """Keep every test away from a real key, a real host and the caller's limits."""
    for name in (anthropic_agent.API_KEY_ENV, anthropic_agent.TIMEOUT_ENV,
                 anthropic_agent.MAX_TOKENS_ENV, "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN",
                 "ANTHROPIC_PROFILE", "ANTHROPIC_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings():
    return parse_team_settings(SETTINGS)


@pytest.fixture
def context(settings, tmp_path):
    return AgentContext(store=None, config=None, settings=settings, files_dir=tmp_path)


def use(monkeypatch, api: MessagesApi, **env: str) -> None:
    monkeypatch.setenv(anthropic_agent.API_KEY_ENV, API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def request(message: str = "Deploy 1.4.0 to staging, please.", *, sender: str = "user",
            agent_id: str = "coder") -> AgentRequest:
    return AgentRequest(agent_id=agent_id, sender=sender, message=message, conversation_id=17,
                        message_id=42, attempt=1)


def ask(context, settings, agent_id: str = "coder", text: str = "Deploy 1.4.0 to staging.",
        sender: str = "user"):
    agent = AnthropicAgent(context)
    return agent.reply(request(text, sender=sender, agent_id=agent_id),
                       settings.agents[agent_id])


def test_reply_text_and_meta(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        use(monkeypatch, api)
        reply = ask(context, settings)

    assert reply.text == "Deployed 1.4.0 to staging."
    assert reply.meta == {"model": "claude-test-model", "input_tokens": 321,
                          "output_tokens": 12}
    assert api.problems == []


def test_request_shape(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        use(monkeypatch, api)
        ask(context, settings)

    sent = api.requests[0]
    assert len(api.requests) == 1
    assert api.problems == []
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["json"]["model"] == "claude-test-model"
    assert sent["json"]["max_tokens"] == anthropic_agent.DEFAULT_MAX_TOKENS
    assert len(sent["json"]["messages"]) == 1


def test_system_prompt_content(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        use(monkeypatch, api)
        ask(context, settings, agent_id="devops")

    system = api.requests[0]["json"]["system"]
    assert system.startswith(DEVOPS_PROMPT + "\n\n## Working in this team")
    assert "You are @devops (Dana, role devops)." in system
    assert "- @coder: Cody, role coder" in system
    assert "- @tester: Tess, role tester" in system
    assert "- @devops:" not in system
    assert "- @shop: Shop team, leader @coder" in system
    assert "[@id: message]" in system
    assert "text you write outside the brackets" in system
    assert "only when you need something" in system
    assert "You never approve a gate" in system


def test_sender_header(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        use(monkeypatch, api)
        ask(context, settings, text="Is staging green?", sender="tester")

    content = api.requests[0]["json"]["messages"][0]["content"]
    assert content == "From @tester (conversation 17):\nIs staging green?"


def test_model_alias_mapping(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        use(monkeypatch, api)
        ask(context, settings, agent_id="devops")

    assert api.requests[0]["json"]["model"] == "claude-sonnet-4-5"


def test_max_tokens_from_env(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        use(monkeypatch, api, TINYSDLC_NB_AGENT_MAX_TOKENS="512")
        ask(context, settings)

    assert api.requests[0]["json"]["max_tokens"] == 512


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5", "\u00b2"])
def test_max_tokens_env_invalid(context, monkeypatch, value):
    monkeypatch.setenv(anthropic_agent.MAX_TOKENS_ENV, value)

    with pytest.raises(AnthropicSettingInvalid, match=f"TINYSDLC_NB_AGENT_MAX_TOKENS='{value}' "
                                                      f"is invalid"):
        AnthropicAgent(context)


@pytest.mark.parametrize("value", ["0", "soon", "3601"])
def test_timeout_env_invalid(context, monkeypatch, value):
    monkeypatch.setenv(anthropic_agent.TIMEOUT_ENV, value)

    with pytest.raises(ConfigError, match=f"TINYSDLC_NB_ANTHROPIC_TIMEOUT_S='{value}' is "
                                          f"invalid"):
        AnthropicAgent(context)


def test_timeout_retried_then_error(context, settings, monkeypatch):
    with MessagesApi(OK, delay_s=1.0) as api:
        use(monkeypatch, api, TINYSDLC_NB_ANTHROPIC_TIMEOUT_S="0.2")
        with pytest.raises(AgentError, match="timed out after 0.2 s; the queue retries") as caught:
            ask(context, settings)

    assert caught.value.retry_after_s is None
    assert len(api.requests) == 1 + anthropic_agent.SDK_RETRIES


def test_connection_refused_error(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        url = api.url
    monkeypatch.setenv(anthropic_agent.API_KEY_ENV, API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)

    with pytest.raises(AgentError, match=f"the connection to the Messages API at {url}"):
        ask(context, settings)


def test_retries_then_success(context, settings, monkeypatch):
    with MessagesApi(RATE_LIMITED, OVERLOADED, OK) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentError, match="429 rate_limit_error"):
            ask(context, settings)
        with pytest.raises(AgentError, match="529 overloaded_error"):
            ask(context, settings)
        reply = ask(context, settings)

    assert reply.text == "Deployed 1.4.0 to staging."
    assert len(api.requests) == 3


def test_rate_limit_exhausted(context, settings, monkeypatch):
    with MessagesApi(RATE_LIMITED) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentError, match="429 rate_limit_error") as caught:
            ask(context, settings)

    assert caught.value.retry_after_s == 7.0
    assert len(api.requests) == 1 + anthropic_agent.SDK_RETRIES


def test_overloaded_exhausted(context, settings, monkeypatch):
    with MessagesApi(OVERLOADED) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentError, match="529 overloaded_error: Overloaded") as caught:
            ask(context, settings)

    assert caught.value.retry_after_s == pytest.approx(0.01)
    assert len(api.requests) == 1 + anthropic_agent.SDK_RETRIES


def test_server_error_exhausted(context, settings, monkeypatch):
    with MessagesApi(SERVER_ERROR) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentError, match="500 api_error"):
            ask(context, settings)

    assert len(api.requests) == 1 + anthropic_agent.SDK_RETRIES


def test_invalid_key_unusable(context, settings, monkeypatch):
    with MessagesApi(INVALID_KEY) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentUnusable) as caught:
            ask(context, settings)

    assert str(caught.value) == ("ANTHROPIC_API_KEY was rejected by the Messages API (401 "
                                 "authentication_error); set a valid key")
    assert len(api.requests) == 1


def test_permission_denied_unusable(context, settings, monkeypatch):
    with MessagesApi(PERMISSION) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentUnusable, match="403 permission_error"):
            ask(context, settings)

    assert len(api.requests) == 1


def test_unknown_model_rejected(context, settings, monkeypatch):
    with MessagesApi(UNKNOWN_MODEL) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentRejected) as caught:
            ask(context, settings)

    assert "model 'claude-test-model' was not found" in str(caught.value)
    assert "set agents.coder.model" in str(caught.value)
    assert len(api.requests) == 1


def test_invalid_request_rejected(context, settings, monkeypatch):
    with MessagesApi(INVALID_REQUEST) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentRejected, match="400 invalid_request_error: max_tokens") as caught:
            ask(context, settings)

    assert "fix agents.coder.model or TINYSDLC_NB_AGENT_MAX_TOKENS" in str(caught.value)


@pytest.mark.parametrize(("body", "content_type"), [
    ({"hello": "world"}, "application/json"),
    (b"<html><body>gateway</body></html>", "text/html"),
    (b"{not json", "application/json"),
    ({"type": "message", "content": "plain text"}, "application/json"),
])
def test_shapeless_reply_error(context, settings, monkeypatch, body, content_type):
    with MessagesApi((200, body, {}), content_type=content_type) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentError, match="is not a Messages API message") as caught:
            ask(context, settings)

    assert caught.value.retry_after_s is None


def test_empty_text_error(context, settings, monkeypatch):
    with MessagesApi((200, message_body("  \n"), {})) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentError, match="contained no text"):
            ask(context, settings)


def test_cut_off_note(context, settings, monkeypatch):
    body = message_body("The rollback plan has five", stop_reason="max_tokens")
    with MessagesApi((200, body, {})) as api:
        use(monkeypatch, api, TINYSDLC_NB_AGENT_MAX_TOKENS="64")
        reply = ask(context, settings)

    assert reply.text == ("The rollback plan has five\n\n[The reply was cut off at the limit "
                          "of 64 output tokens.]")


def test_missing_key_unusable(context, settings, monkeypatch):
    with MessagesApi(OK) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        with pytest.raises(AgentUnusable) as caught:
            ask(context, settings)

    assert str(caught.value) == ('ANTHROPIC_API_KEY is not set; export it, or set '
                                 'agents.coder.provider to "protocol"')
    assert api.requests == []


@pytest.mark.parametrize("reply", [
    (401, error_body("authentication_error", f"invalid x-api-key: {API_KEY}"), {}),
    (404, error_body("not_found_error", f"model not found for key {API_KEY}"), {}),
    (500, error_body("api_error", f"internal error while checking {API_KEY}"), {}),
    (200, {"unexpected": API_KEY}, {}),
])
def test_key_not_leaked_on_errors(context, settings, monkeypatch, caplog, reply):
    caplog.set_level(logging.DEBUG)

    with MessagesApi(reply) as api:
        use(monkeypatch, api)
        with pytest.raises((AgentError, AgentUnusable, AgentRejected)) as caught:
            ask(context, settings)

    assert API_KEY not in str(caught.value)
    assert API_KEY not in "".join(traceback.format_exception(caught.value))
    assert API_KEY not in caplog.text


def test_key_not_leaked_on_success(context, settings, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)

    with MessagesApi((200, message_body(f"Your key is {API_KEY}."), {})) as api:
        use(monkeypatch, api)
        reply = ask(context, settings)

    assert API_KEY not in reply.text
    assert API_KEY not in caplog.text
    assert caplog.records != []


def test_key_redacted_after_env_change(context, settings, monkeypatch):
    with MessagesApi((200, message_body(f"Key: {API_KEY}"), {})) as api:
        use(monkeypatch, api)
        agent = AnthropicAgent(context)
        monkeypatch.delenv(anthropic_agent.API_KEY_ENV)
        reply = agent.reply(request(), settings.agents["coder"])

    assert reply.text == "Key: [REDACTED:$ANTHROPIC_API_KEY]"


def test_sent_text_scrubbed(context, settings, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", ENV_SECRET)

    with MessagesApi(OK) as api:
        use(monkeypatch, api)
        ask(context, settings, text=f"Use the token {ENV_SECRET} to deploy.")

    assert ENV_SECRET not in api.requests[0]["raw"]
    assert "[REDACTED:$DEPLOY_TOKEN]" in api.requests[0]["json"]["messages"][0]["content"]


def test_reply_scrubbed(context, settings, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", ENV_SECRET)

    with MessagesApi((200, message_body(f"Deployed with {ENV_SECRET}."), {})) as api:
        use(monkeypatch, api)
        reply = ask(context, settings)

    assert reply.text == "Deployed with [REDACTED:$DEPLOY_TOKEN]."


def test_concurrent_replies(context, settings, monkeypatch):
    with MessagesApi(OK, delay_s=0.05) as api:
        use(monkeypatch, api)
        agent = AnthropicAgent(context)
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda index: agent.reply(
                request(f"Task {index}"), settings.agents["coder"]), range(16)))

    assert {reply.text for reply in replies} == {"Deployed 1.4.0 to staging."}
    assert len(api.requests) == 16
    assert api.problems == []


def test_prompt_file_source(tmp_path):
    prompt = tmp_path / "prompts" / "devops.md"
    prompt.parent.mkdir()
    prompt.write_text("You keep the shop running.\n")
    raw = {"agents": {"devops": {"name": "Dana", "provider": "anthropic", "model": "sonnet",
                                 "prompt_file": "prompts/devops.md"}}}
    spec = parse_team_settings(raw, tmp_path / "settings.json").agents["devops"]

    assert prompts.system_prompt(spec).startswith("You keep the shop running.\n\n## Working")


def test_system_prompt_precedence(tmp_path):
    prompt = tmp_path / "devops.md"
    prompt.write_text("From the file.")
    raw = {"agents": {"devops": {"name": "Dana", "provider": "anthropic", "model": "sonnet",
                                 "system_prompt": "From settings.", "prompt_file": str(prompt)}}}
    spec = parse_team_settings(raw).agents["devops"]

    assert prompts.own_prompt(spec) == "From settings."


def test_shipped_role_prompt(tmp_path, monkeypatch):
    (tmp_path / "devops.md").write_text("Shipped DevOps prompt.")
    monkeypatch.setattr(prompts, "ROLE_PROMPTS", tmp_path)
    raw = {"agents": {"ops": {"name": "Dana", "provider": "anthropic", "model": "sonnet",
                              "sdlc_role": "DevOps"}}}
    spec = parse_team_settings(raw).agents["ops"]

    assert prompts.own_prompt(spec) == "Shipped DevOps prompt."


def test_missing_role_prompt(tmp_path, monkeypatch):
    (tmp_path / "devops.md").write_text("Shipped DevOps prompt.")
    monkeypatch.setattr(prompts, "ROLE_PROMPTS", tmp_path)
    raw = {"agents": {"ops": {"name": "Ops", "provider": "anthropic", "model": "sonnet",
                              "sdlc_role": "../devops"}}}
    spec = parse_team_settings(raw).agents["ops"]

    with pytest.raises(ConfigError, match=r"no prompt is shipped for role '\.\./devops' "
                                          r"\(shipped roles: devops\); set "
                                          r"agents\.ops\.system_prompt"):
        prompts.own_prompt(spec)


def test_prompt_file_vanished_rejected(context, tmp_path, monkeypatch):
    prompt = tmp_path / "coder.md"
    prompt.write_text("You write code.")
    raw = {"agents": {"coder": {"name": "Cody", "provider": "anthropic", "model": "sonnet",
                                "prompt_file": str(prompt)}}}
    settings = parse_team_settings(raw)
    prompt.unlink()

    with MessagesApi(OK) as api:
        use(monkeypatch, api)
        with pytest.raises(AgentRejected, match="agents.coder.prompt_file .* could not be read"):
            AnthropicAgent(context).reply(request(), settings.agents["coder"])

    assert api.requests == []


def test_team_rules_without_settings():
    spec = parse_team_settings(SETTINGS).agents["tester"]

    rules = prompts.team_rules(spec, None)

    assert "Teammates you can mention:\n- none" in rules


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "30"}, 30.0),
    ({"retry-after": "1.5", "retry-after-ms": "10"}, 1.5),
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ({"retry-after": "later"}, None),
    ({}, None),
])
def test_retry_after_parsing(headers, expected):
    assert retry_after_s(headers) == expected


def test_retry_after_http_date():
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))

    assert 110 < retry_after_s({"retry-after": future}) <= 120


def test_packaged_role_prompt():
    shipped = Path(prompts.__file__).parent / "roles" / "devops.md"
    raw = {"agents": {"devops": {"name": "Dana", "provider": "anthropic", "model": "sonnet"}}}
    spec = parse_team_settings(raw).agents["devops"]

    text = prompts.system_prompt(spec)

    assert text.startswith(shipped.read_text(encoding="utf-8").strip() + "\n\n## Working")
    assert "devops" in prompts.shipped_roles()
