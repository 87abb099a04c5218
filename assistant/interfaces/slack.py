"""The Slack bot: a thin Bolt adapter over `Assistant`, served over HTTP (`/slack/events`) or Socket Mode.

Mentions and direct messages are answered in their thread, with the thread's earlier messages as the
conversation history; `/ask` answers privately; the feedback buttons write to the same `FeedbackStore`
as the web page. Every handler acknowledges first and answers afterwards on Bolt's worker threads, so
Slack gets its acknowledgement within three seconds. Retried deliveries of an event are answered once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from assistant.errors import UserError
from assistant.interfaces.slack_blocks import (
    ACTION_BAD,
    ACTION_GOOD,
    SlackMessage,
    clean_text,
    language_of,
    notice,
    render_answer,
    t,
    unescape_mrkdwn,
)
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.core import Assistant
    from assistant.feedback import FeedbackStore

log = logging.getLogger(__name__)

# What a Web API call can raise: Slack's refusal, a client-side error, or the network (URLError, timeouts).
SLACK_ERRORS = (SlackClientError, OSError)

DEFAULT_API_URL = "https://slack.com/api/"
WORKING_REACTION = "eyes"
FEEDBACK_CHANNEL = "slack"
MAX_HISTORY_MESSAGES = 20
MAX_HISTORY_CHARS = 8000
MAX_THREAD_PAGES = 5
MAX_BODY_BYTES = 1024 * 1024
SEEN_TTL_S = 3600.0  # Slack retries within minutes; an hour covers every retry with room to spare
MAX_RESPONSES = 5  # a response_url accepts five messages


class SeenKeys:
    """A bounded set of recently seen keys that forgets them after `ttl_s`; thread-safe."""

    def __init__(self, ttl_s: float = SEEN_TTL_S, size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._items: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: Hashable) -> bool:
        """Remembers `key`; False if it was already seen within the TTL."""
        now = time.monotonic()
        with self._lock:
            while self._items and (next(iter(self._items.values())) < now - self.ttl_s
                                   or len(self._items) >= self.size):
                self._items.popitem(last=False)
            if key in self._items:
                return False
            self._items[key] = now
            return True


class RecentAnswers:
    """The last few hundred answers by id, so a feedback click can store the question and answer JSON."""

    def __init__(self, size: int = 500) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, answer_id: str, question: str, answer_json: dict[str, Any]) -> None:
        with self._lock:
            self._items[answer_id] = (question, answer_json)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, answer_id: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            return self._items.get(answer_id)


def make_web_client(settings: Settings) -> WebClient:
    """A Web API client for `SLACK_API_URL` (default Slack's) that waits and retries on HTTP 429."""
    base_url = settings.slack_api_url or DEFAULT_API_URL
    return WebClient(
        token=settings.slack_bot_token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=30,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1),
                        RateLimitErrorRetryHandler(max_retry_count=2)],
    )


class SlackBot:
    """The handlers, independent of how events arrive (HTTP or Socket Mode)."""

    def __init__(self, settings: Settings, assistant: Assistant, feedback: FeedbackStore) -> None:
        self.settings = settings
        self.assistant = assistant
        self.feedback = feedback
        self.answers = RecentAnswers()
        self.seen_events = SeenKeys()
        self.seen_messages = SeenKeys()

    # Events --------------------------------------------------------------------------------------------
    def skip_duplicate(self, body: dict[str, Any], request: Any, next_: Callable[[], None]) -> BoltResponse | None:
        """Global middleware: an event already seen (a retry or a replay) is acknowledged and dropped."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not self.seen_events.add(event_id):
            retry = (request.headers.get("x-slack-retry-num") or [""])[0]
            log.info("slack: duplicate delivery of %s dropped (retry %s)", event_id, retry or "-")
            return BoltResponse(status=200, body="")
        next_()
        return None

    def on_event(self, event: dict[str, Any], context: Any, client: WebClient) -> None:
        """A mention in a channel, or a message in a direct conversation with the bot."""
        if event.get("type") == "message" and event.get("channel_type") != "im":
            return
        bot_user_id = context.get("bot_user_id")
        if (event.get("bot_id") or event.get("bot_profile") or event.get("subtype") not in (None, "thread_broadcast",
                                                                                          "file_share")
                or (bot_user_id and event.get("user") == bot_user_id)):
            return
        channel, ts = event.get("channel", ""), event.get("ts", "")
        if not channel or not ts or not self.seen_messages.add((channel, ts)):
            return  # the same message can arrive as app_mention and as message.im
        thread_ts = event.get("thread_ts") or ts
        question = clean_text(event.get("text", ""), bot_user_id)
        language = language_of(question)
        if not question:  # a bare mention
            self.post(client, channel, thread_ts, notice(t("empty", language)), language)
            return
        self._react(client, "reactions_add", channel, ts)
        try:
            try:
                history = self.thread_history(client, channel, thread_ts, ts, bot_user_id) if event.get(
                    "thread_ts") else []
                messages = self.answer(question, history, event.get("user", ""))
            except Exception:  # noqa: BLE001 - logged in full; the user gets a short message, never a traceback
                messages = self._error_messages(language, channel)
            self.post(client, channel, thread_ts, messages, language)
        finally:
            self._react(client, "reactions_remove", channel, ts)

    def thread_history(self, client: WebClient, channel: str, thread_ts: str, current_ts: str,
                       bot_user_id: str | None) -> list[dict[str, str]]:
        """The thread's messages before the current one as [{role, content}], consecutive roles merged."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            for _ in range(MAX_THREAD_PAGES):
                resp = client.conversations_replies(channel=channel, ts=thread_ts, limit=200, cursor=cursor)
                found.extend(resp.get("messages") or [])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SLACK_ERRORS as exc:
            log.warning("slack: conversations.replies failed in %s: %s; answering without history", channel,
                        describe(exc))
        history: list[dict[str, str]] = []
        for m in found:
            if _ts(m.get("ts", "")) >= _ts(current_ts):
                continue
            is_bot = bool(m.get("bot_id") or m.get("subtype") == "bot_message"
                          or (bot_user_id and m.get("user") == bot_user_id))
            role = "assistant" if is_bot else "user"
            content = clean_text(m.get("text", ""), bot_user_id)
            if not content:
                continue
            if history and history[-1]["role"] == role:
                history[-1]["content"] = (history[-1]["content"] + "\n" + content)[:MAX_HISTORY_CHARS]
            else:
                history.append({"role": role, "content": content[:MAX_HISTORY_CHARS]})
        return history[-MAX_HISTORY_MESSAGES:]

    def answer(self, question: str, history: list[dict[str, str]], user: str,
               buttons: bool = True) -> list[SlackMessage]:
        """The messages answering `question`; a user error becomes a short message in their language."""
        language = language_of(question)
        try:
            answer = self.assistant.ask(question, history=history)
        except UserError as exc:
            return notice(exc.message_for(language))
        if not answer.id:
            answer.id = uuid.uuid4().hex
        self.answers.put(answer.id, question, answer.to_json())
        log.info("slack: answered %s for %s (%d citations%s)", answer.id, user or "?", len(answer.citations),
                 ", refused" if answer.refused else "")
        return render_answer(answer, self.settings.public_url, buttons=buttons)

    def _error_messages(self, language: str, where: str) -> list[SlackMessage]:
        log.exception("slack: answering failed in %s", where)
        return notice(t("error", language))

    def post(self, client: WebClient, channel: str, thread_ts: str, messages: list[SlackMessage],
             language: str) -> None:
        """Posts the messages in the thread; if Slack refuses one, tries to tell the user once."""
        for msg in messages:
            try:
                client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=msg.text, blocks=msg.blocks,
                                        unfurl_links=False, unfurl_media=False)
            except SLACK_ERRORS as exc:
                log.error("slack: chat.postMessage failed in %s: %s", channel, describe(exc))
                self._post_notice(client, channel, thread_ts, t("error", language))
                return

    def _post_notice(self, client: WebClient, channel: str, thread_ts: str, text: str) -> None:
        (msg,) = notice(text)
        try:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=msg.text, blocks=msg.blocks)
        except SLACK_ERRORS as exc:
            log.error("slack: could not post the error notice in %s: %s", channel, describe(exc))

    @staticmethod
    def _react(client: WebClient, method: str, channel: str, ts: str) -> None:
        try:
            getattr(client, method)(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except SLACK_ERRORS as exc:  # a missing reaction never stops an answer
            log.warning("slack: %s failed in %s: %s", method.replace("_", "."), channel, describe(exc))

    # /ask --------------------------------------------------------------------------------------------------
    def on_command(self, ack: Callable[..., None], command: dict[str, Any], respond: Any,
                   client: WebClient) -> None:
        """`/ask question`: answered privately to whoever asked."""
        question = clean_text(command.get("text", ""))
        language = language_of(question)
        if not question:
            ack(response_type="ephemeral", text=t("usage", language))
            return
        ack(response_type="ephemeral", text=t("working", language))
        try:
            messages = self.answer(question, [], command.get("user_id", ""))
        except Exception:  # noqa: BLE001 - logged in full; the user gets a short message, never a traceback
            messages = self._error_messages(language, command.get("channel_id", "/ask"))
        self.reply_privately(respond, client, command, messages)

    def reply_privately(self, respond: Any, client: WebClient, payload: dict[str, Any],
                        messages: list[SlackMessage]) -> None:
        channel, user = payload.get("channel_id", ""), payload.get("user_id", "")
        for i, msg in enumerate(messages):
            if payload.get("response_url") and i < MAX_RESPONSES:
                try:
                    status = respond(text=msg.text, blocks=msg.blocks, response_type="ephemeral",
                                     replace_original=False).status_code
                except SLACK_ERRORS as exc:
                    status = describe(exc)
                if status == 200:
                    continue
                log.warning("slack: response_url answered %s; falling back to chat.postEphemeral", status)
            try:
                client.chat_postEphemeral(channel=channel, user=user, text=msg.text, blocks=msg.blocks)
            except SLACK_ERRORS as exc:
                log.error("slack: chat.postEphemeral failed in %s: %s", channel, describe(exc))
                return

    # Feedback buttons ------------------------------------------------------------------------------------
    def on_feedback(self, ack: Callable[..., None], body: dict[str, Any], action: dict[str, Any],
                    respond: Any) -> None:
        """A click on 👍 / 👎: recorded with the question and the answer JSON, thanked privately."""
        ack()
        rating = "good" if action.get("action_id") == ACTION_GOOD else "bad"
        answer_id = str(action.get("value") or "")
        found = self.answers.get(answer_id)
        if found is None:  # answered before a restart: keep what the message itself still shows
            shown = unescape_mrkdwn((body.get("message") or {}).get("text", ""))
            question, answer_json = "", {"id": answer_id, "answer": shown}
        else:
            question, answer_json = found
        language = answer_json.get("language") or language_of(question or answer_json.get("answer", ""))
        user = (body.get("user") or {}).get("id", "")
        try:
            self.feedback.record(FEEDBACK_CHANNEL, answer_id, question, answer_json, rating, user=user)
            text = t("thanks", language)
        except UserError as exc:
            text = exc.message_for(language)
        except Exception:
            log.exception("slack: storing feedback for %s failed", answer_id)
            text = t("error", language)
        if body.get("response_url"):
            try:
                respond(text=text, response_type="ephemeral", replace_original=False)
            except SLACK_ERRORS as exc:
                log.warning("slack: thanking for feedback failed: %s", describe(exc))


def describe(exc: BaseException) -> str:
    """Slack's error code, or the kind of failure; never the request (which carries the token)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__


def _ts(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def make_bolt_app(settings: Settings, assistant: Assistant, feedback: FeedbackStore | None = None,
                  client: WebClient | None = None) -> App:
    """The Bolt app with every handler; makes no network call (the bot's identity is fetched on first use)."""
    if feedback is None:
        from assistant.feedback import FeedbackStore

        feedback = FeedbackStore(settings.feedback_db)
    bot = SlackBot(settings, assistant, feedback)
    app = App(
        name="assistant",
        client=client or make_web_client(settings),
        signing_secret=settings.slack_signing_secret or "",
        token_verification_enabled=False,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-bot"),
    )
    app.middleware(bot.skip_duplicate)
    app.event("app_mention")(bot.on_event)
    app.event("message")(bot.on_event)
    app.command("/ask")(bot.on_command)
    app.action(ACTION_GOOD)(bot.on_feedback)
    app.action(ACTION_BAD)(bot.on_feedback)
    return app


def slack_router(settings: Settings, assistant: Assistant, feedback: FeedbackStore | None = None
                 ) -> APIRouter | None:
    """`POST /slack/events` (events, `/ask`, button clicks) when the signing secret and bot token are set."""
    if not (settings.slack_signing_secret and settings.slack_bot_token):
        return None
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
    from starlette.concurrency import run_in_threadpool

    bolt = make_bolt_app(settings, assistant, feedback)
    router = APIRouter(tags=["slack"])

    @router.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        declared = request.headers.get("content-length") or "0"
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            return Response(status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(status_code=413)
        try:
            bolt_request = to_bolt_request(request, body)
        except UnicodeDecodeError:
            return Response(status_code=400)
        # dispatch blocks until the handler acknowledges: keep it off the event loop
        return to_starlette_response(await run_in_threadpool(bolt.dispatch, bolt_request))

    return router


def run_socket_mode(settings: Settings) -> None:
    """`assistant slack`: connects to Slack over Socket Mode and answers until interrupted."""
    missing = [name for name, value in (("SLACK_BOT_TOKEN", settings.slack_bot_token),
                                        ("SLACK_APP_TOKEN", settings.slack_app_token)) if not value]
    if missing:
        names = " and ".join(missing)
        raise UserError("slack_not_configured",
                        f"Set {names} to run the Slack bot (see slack/README.md).",
                        f"Slack ボットを動かすには {names} を設定してください（slack/README.md を参照）。")
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from assistant.core import make_assistant
    from assistant.interfaces.server import prepare

    client = make_web_client(settings)
    try:
        identity = client.auth_test()
    except SlackApiError as exc:
        error = describe(exc)
        raise UserError("slack_auth_failed", f"Slack rejected SLACK_BOT_TOKEN ({error}).",
                        f"Slack が SLACK_BOT_TOKEN を受け付けませんでした（{error}）。") from None
    except SLACK_ERRORS as exc:
        raise UserError("slack_unreachable", f"Cannot reach Slack at {client.base_url} ({describe(exc)}).",
                        f"Slack（{client.base_url}）に接続できません（{describe(exc)}）。",
                        status=503) from None
    print("Loading the model and the index … / モデルと索引を読み込んでいます…", flush=True)
    assistant = make_assistant(settings)
    prepare(settings, assistant)
    app = make_bolt_app(settings, assistant, client=client)
    name = identity.get("user", "?")
    print(f"Connecting to Slack as @{name} (Socket Mode); Ctrl-C stops. / @{name} として Slack に接続します。",
          flush=True)
    SocketModeHandler(app, settings.slack_app_token).start()
