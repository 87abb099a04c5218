"""The Slack bot over real HTTP: signed requests to the running server, a fake Slack Web API on loopback.

The server is uvicorn on a loopback port serving `slack_router` with the real `Assistant` over the
ingested corpus; the bot's Web API client talks to `FakeSlack`. A thin wrapper around the assistant
records what it was asked and lets a test swap in a long answer or a failure.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from slack_sdk.signature import SignatureVerifier

from assistant.errors import UserError
from assistant.feedback import FeedbackStore
from assistant.interfaces.server import make_app
from assistant.interfaces.slack import clean_text, language_of, make_bolt_app, run_socket_mode, slack_router
from assistant.interfaces.slack_blocks import (
    MAX_BLOCKS,
    SECTION_CHARS,
    escape_mrkdwn,
    render_answer,
    slack_len,
    unescape_mrkdwn,
)
from assistant.settings import Settings
from assistant.types import Answer, Citation
from tests.fake_slack import BOT_ID, BOT_USER_ID, TEAM_ID, Call, FakeSlack
from tests.helpers import CORPUS, REPO, free_port, make_settings

SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-111-222-TESTTOKENmustNeverBeLogged"
PUBLIC_URL = "https://assistant.example.org"
QUESTION = "トランプ氏は対ロ経済制裁の発動をどれだけ延期したか"


# Fixtures ---------------------------------------------------------------------------------------------------

@dataclass
class Recorder:
    """Wraps the real assistant: records each question and history; a test may replace `ask`."""

    real: Any
    asked: list[tuple[str, list[dict[str, str]]]] = field(default_factory=list)
    override: Callable[[str], Answer] | None = None

    def ask(self, question: str, history: Any = (), top_k: int | None = None, filters: Any = None) -> Answer:
        self.asked.append((question, [dict(m) for m in history]))
        if self.override is not None:
            return self.override(question)
        answer: Answer = self.real.ask(question, history=history, top_k=top_k, filters=filters)
        return answer

    def __getattr__(self, name: str) -> Any:  # the main server needs the rest of the Assistant
        return getattr(self.real, name)


@dataclass
class Server:
    url: str
    fake: FakeSlack
    assistant: Recorder
    feedback: FeedbackStore
    settings: Settings


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture(scope="module")
def real_assistant(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from assistant.core import make_assistant

    assistant = make_assistant(make_settings(tmp_path_factory.mktemp("slack-data")))
    report = assistant.ingest([CORPUS])
    assert report.chunks > 0 and not report.failed
    return assistant


@pytest.fixture(scope="module")
def server(fake: FakeSlack, real_assistant: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("slack-server")
    settings = make_settings(data, slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET,
                             slack_api_url=fake.url, public_url=PUBLIC_URL)
    recorder = Recorder(real_assistant)
    feedback = FeedbackStore(settings.feedback_db)
    assert slack_router(settings, recorder, feedback) is not None  # type: ignore[arg-type]
    # The bot is served by the main server (page, API and /slack/events in one app).
    app = make_app(settings, recorder)  # type: ignore[arg-type]
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, name="slack-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", fake, recorder, feedback, settings)
    uv.should_exit = True
    thread.join(10)


@pytest.fixture(autouse=True)
def fresh(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Each test starts with an empty fake and its own log capture; no test may log the bot token."""
    caplog.set_level(logging.DEBUG)
    if "server" in request.fixturenames:
        srv: Server = request.getfixturevalue("server")
        srv.fake.reset()
        srv.assistant.asked.clear()
        srv.assistant.override = None
    yield
    if "server" in request.fixturenames:  # let the bot finish what it started before the next test
        deadline = time.monotonic() + 30
        quiet_since, seen = time.monotonic(), len(srv.fake.calls)
        while time.monotonic() < deadline:
            if len(srv.fake.calls) != seen:
                quiet_since, seen = time.monotonic(), len(srv.fake.calls)
            balanced = len(srv.fake.attempts_of("reactions.add")) <= len(srv.fake.attempts_of("reactions.remove"))
            if balanced and time.monotonic() - quiet_since > 0.5:
                break
            time.sleep(0.05)
    assert BOT_TOKEN not in caplog.text
    assert BOT_TOKEN.split("-")[-1] not in caplog.text


# Requests ---------------------------------------------------------------------------------------------------

_counter = iter(range(1, 1_000_000))


def new_ts() -> str:
    return f"{1_760_000_000 + next(_counter)}.{next(_counter):06d}"


def signed_headers(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def send(srv: Server, body: str, content_type: str = "application/json", **kw: Any) -> httpx.Response:
    extra = kw.pop("headers", {})
    headers = {"Content-Type": content_type, **signed_headers(body, **kw), **extra}
    started = time.monotonic()
    resp = httpx.post(f"{srv.url}/slack/events", content=body.encode("utf-8"), headers=headers, timeout=10)
    assert time.monotonic() - started < 3.0, "Slack needs an acknowledgement within three seconds"
    return resp


def event_body(event: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps({
        "token": "unused", "team_id": TEAM_ID, "api_app_id": "A0001", "type": "event_callback",
        "event_id": event_id or f"Ev{next(_counter)}", "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }, ensure_ascii=False)


def mention(text: str, channel: str = "C0001", ts: str | None = None, thread_ts: str | None = None,
            **extra: Any) -> dict[str, Any]:
    event = {"type": "app_mention", "user": "U0001", "text": f"<@{BOT_USER_ID}> {text}", "ts": ts or new_ts(),
             "channel": channel, **extra}
    event["event_ts"] = event["ts"]
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def direct_message(text: str, **extra: Any) -> dict[str, Any]:
    ts = new_ts()
    return {"type": "message", "channel_type": "im", "channel": "D0001", "user": "U0001", "text": text,
            "ts": ts, "event_ts": ts, **extra}


def section_texts(call: Call) -> list[str]:
    return [b["text"]["text"] for b in call.params["blocks"] if b["type"] == "section"]


def assert_nothing_posted(fake: FakeSlack, wait_s: float = 1.5) -> None:
    time.sleep(wait_s)
    assert not fake.calls_of("chat.postMessage") and not fake.calls_of("respond")


# Mentions, direct messages, threads ---------------------------------------------------------------------------

def test_mention_is_answered_in_its_thread_with_sources(server: Server) -> None:
    event = mention(QUESTION)
    resp = send(server, event_body(event))
    assert resp.status_code == 200
    (post,) = server.fake.wait_for("chat.postMessage")
    server.fake.wait_for("reactions.remove")
    assert post.params["channel"] == "C0001" and post.params["thread_ts"] == event["ts"]
    assert post.authorization == f"Bearer {BOT_TOKEN}"
    assert server.assistant.asked == [(QUESTION, [])]  # the mention is stripped
    text = "\n".join(section_texts(post))
    assert "2～3週間" in text
    assert "出典 / Sources" in text
    assert f"<{PUBLIC_URL}/documents/" in text and "#chunk-" in text
    assert "[1]" in text
    (actions,) = [b for b in post.params["blocks"] if b["type"] == "actions"]
    assert {e["action_id"] for e in actions["elements"]} == {"feedback_good", "feedback_bad"}
    adds, removes = server.fake.calls_of("reactions.add"), server.fake.calls_of("reactions.remove")
    assert [c.params["name"] for c in adds] == ["eyes"] and [c.params["name"] for c in removes] == ["eyes"]
    assert adds[0].params["timestamp"] == event["ts"]
    order = [c.method for c in server.fake.calls if c.method != "auth.test"]
    assert order.index("reactions.add") < order.index("chat.postMessage")


def test_direct_message_is_answered(server: Server) -> None:
    event = direct_message("ロシアは停戦の先送りで何を確保したか")
    assert send(server, event_body(event)).status_code == 200
    (post,) = server.fake.wait_for("chat.postMessage")
    assert post.params["channel"] == "D0001" and post.params["thread_ts"] == event["ts"]
    assert server.assistant.asked[0][0] == "ロシアは停戦の先送りで何を確保したか"


def test_follow_up_in_a_thread_uses_the_earlier_messages(server: Server) -> None:
    first, reply, follow = new_ts(), new_ts(), new_ts()
    server.fake.add_thread("C0002", [
        {"type": "message", "user": "U0001", "text": f"<@{BOT_USER_ID}> {QUESTION}", "ts": first},
        {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "2～3週間の延期を表明した [1]",
         "ts": reply, "thread_ts": first},
        {"type": "message", "user": "U0001", "text": f"<@{BOT_USER_ID}> それはいつの会談の後？", "ts": follow,
         "thread_ts": first},
    ])
    send(server, event_body(mention("それはいつの会談の後？", channel="C0002", ts=follow, thread_ts=first)))
    (post,) = server.fake.wait_for("chat.postMessage")
    assert post.params["thread_ts"] == first
    (replies,) = server.fake.calls_of("conversations.replies")
    assert replies.params["channel"] == "C0002" and replies.params["ts"] == first
    question, history = server.assistant.asked[0]
    assert question == "それはいつの会談の後？"
    assert history == [{"role": "user", "content": QUESTION},
                       {"role": "assistant", "content": "2～3週間の延期を表明した [1]"}]


def test_a_bare_mention_gets_a_hint(server: Server) -> None:
    event = mention("")
    send(server, event_body(event))
    (post,) = server.fake.wait_for("chat.postMessage")
    assert "質問を書いてください" in post.params["text"] and post.params["thread_ts"] == event["ts"]
    assert server.assistant.asked == []


def test_bots_and_edits_are_ignored(server: Server) -> None:
    for event in (
        direct_message("hello from a bot", bot_id="B0OTHER", subtype="bot_message"),
        direct_message("edited", subtype="message_changed"),
        direct_message("my own message", user=BOT_USER_ID, bot_id=BOT_ID),
        mention("another bot mentions us", bot_id="B0OTHER"),
        {**mention("a channel message"), "type": "message", "channel_type": "channel"},
    ):
        assert send(server, event_body(event)).status_code == 200
    assert_nothing_posted(server.fake)
    assert server.assistant.asked == []


def test_url_verification(server: Server) -> None:
    body = json.dumps({"token": "x", "challenge": "challenge-123", "type": "url_verification"})
    resp = send(server, body)
    assert resp.status_code == 200 and "challenge-123" in resp.text


# /ask and feedback -------------------------------------------------------------------------------------------

def test_slash_command_is_answered_privately(server: Server) -> None:
    body = urlencode({"command": "/ask", "text": QUESTION, "user_id": "U0001", "channel_id": "C0001",
                      "team_id": TEAM_ID, "response_url": server.fake.response_url("cmd-1"),
                      "trigger_id": "1.2.3", "token": "unused"})
    resp = send(server, body, "application/x-www-form-urlencoded")
    assert resp.status_code == 200
    assert resp.json()["response_type"] == "ephemeral"
    (answer,) = server.fake.wait_for("respond")
    assert answer.params["_path"] == "/respond/cmd-1"
    assert answer.params["response_type"] == "ephemeral"
    assert "2～3週間" in "\n".join(b["text"]["text"] for b in answer.params["blocks"] if b["type"] == "section")
    assert not server.fake.calls_of("chat.postMessage")


def test_slash_command_without_a_question_explains_usage(server: Server) -> None:
    body = urlencode({"command": "/ask", "text": "  ", "user_id": "U0001", "channel_id": "C0001",
                      "response_url": server.fake.response_url("cmd-2")})
    resp = send(server, body, "application/x-www-form-urlencoded")
    assert resp.status_code == 200 and "/ask" in resp.json()["text"]
    assert server.assistant.asked == []


def test_feedback_click_is_recorded_in_the_shared_store(server: Server) -> None:
    send(server, event_body(mention(QUESTION)))
    (post,) = server.fake.wait_for("chat.postMessage")
    (actions,) = [b for b in post.params["blocks"] if b["type"] == "actions"]
    good = next(e for e in actions["elements"] if e["action_id"] == "feedback_good")
    payload = {"type": "block_actions", "user": {"id": "U0042"}, "team": {"id": TEAM_ID},
               "api_app_id": "A0001", "container": {"type": "message", "channel_id": "C0001"},
               "channel": {"id": "C0001"}, "message": {"text": post.params["text"], "ts": "1.0"},
               "response_url": server.fake.response_url("click-1"), "trigger_id": "1.2.3",
               "actions": [{**good, "block_id": "feedback", "type": "button", "action_ts": "1.1"}]}
    resp = send(server, urlencode({"payload": json.dumps(payload, ensure_ascii=False)}),
                "application/x-www-form-urlencoded")
    assert resp.status_code == 200
    (thanks,) = server.fake.wait_for("respond")
    assert "ありがとう" in thanks.params["text"]
    (record,) = server.feedback.list(channel="slack", answer_id=good["value"])
    assert record.rating == "good" and record.user == "U0042" and record.question == QUESTION
    assert record.answer["id"] == good["value"] and record.answer["citations"]


# Hygiene: signatures, retries, replays -------------------------------------------------------------------------

def test_bad_signature_is_rejected(server: Server) -> None:
    body = event_body(mention(QUESTION))
    resp = send(server, body, secret="not-the-secret")
    assert resp.status_code == 401
    assert send(server, body, headers={"X-Slack-Signature": "v0=deadbeef"}).status_code == 401
    assert_nothing_posted(server.fake)


def test_stale_timestamp_is_rejected(server: Server) -> None:
    resp = send(server, event_body(mention(QUESTION)), timestamp=int(time.time()) - 6 * 60)
    assert resp.status_code == 401
    assert_nothing_posted(server.fake)


def test_replayed_event_is_answered_once(server: Server) -> None:
    body = event_body(mention(QUESTION), event_id="EvReplay1")
    assert send(server, body).status_code == 200
    assert send(server, body).status_code == 200
    server.fake.wait_for("chat.postMessage")
    time.sleep(2)
    assert len(server.fake.calls_of("chat.postMessage")) == 1
    assert len(server.assistant.asked) == 1


def test_retried_delivery_is_acknowledged_and_answered_once(server: Server) -> None:
    body = event_body(mention(QUESTION), event_id="EvRetry1")
    assert send(server, body).status_code == 200
    retry = send(server, body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    server.fake.wait_for("chat.postMessage")
    time.sleep(2)
    assert len(server.fake.calls_of("chat.postMessage")) == 1


# Long answers, refusals and errors ------------------------------------------------------------------------------

def long_japanese_answer(base: Answer, chars: int = 6000) -> Answer:
    """The real answer, continued with its passages' sentences (each cited) to `chars` characters."""
    sentences = [s + "。" for p in base.passages for s in p.text.replace("\n", "").split("。") if s.strip()]
    parts = [base.answer]
    i = 0
    while sum(map(len, parts)) < chars:
        parts.append(sentences[i % len(sentences)].rstrip("。") + f"[{1 + i % max(len(base.citations), 1)}]。")
        if i % 7 == 6:
            parts.append("🇯🇵👨‍👩‍👧 & <注>\n")
        i += 1
    return replace(base, answer="".join(parts))


def test_a_6000_character_japanese_answer_is_split_between_sentences(server: Server) -> None:
    real = server.assistant.real
    long = long_japanese_answer(real.ask(QUESTION))
    assert len(long.answer) >= 6000
    server.assistant.override = lambda q: long
    event = mention(QUESTION)
    send(server, event_body(event))
    server.fake.wait_for("reactions.remove")
    posts = server.fake.calls_of("chat.postMessage")
    assert len(posts) >= 1
    sections = [s for p in posts for s in section_texts(p)]
    assert len(sections) >= 3
    for p in posts:
        assert p.params["thread_ts"] == event["ts"]
        assert len(p.params["blocks"]) <= MAX_BLOCKS
        assert slack_len(p.params["text"]) <= 40_000
    body = [s for s in sections if "出典 / Sources" not in s]
    for s in body:
        assert slack_len(s) <= SECTION_CHARS
    for s in body[:-1]:  # each piece ends a sentence or a line of the answer
        raw = unescape_mrkdwn(s)
        assert raw.endswith(("。", "！", "？")) or raw[-50:] + "\n" in long.answer, raw[-20:]
    shown = "".join(unescape_mrkdwn(s) for s in body)
    assert shown.replace("\n", "") == long.answer.replace("\n", "")
    assert any(b["type"] == "actions" for b in posts[-1].params["blocks"])


def test_a_refusal_says_so_in_the_questions_language(server: Server) -> None:
    send(server, event_body(mention("東京の明日の天気は？")))
    (post,) = server.fake.wait_for("chat.postMessage")
    text = "\n".join(section_texts(post))
    assert "資料" in text and language_of(text) == "ja", text
    assert "Sources" not in text and "[1]" not in text
    assert any(b["type"] == "actions" for b in post.params["blocks"])  # a refusal can be rated too


def test_an_assistant_failure_reaches_the_user_as_a_short_message(server: Server,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    def explode(question: str) -> Answer:
        raise RuntimeError("internal detail that must stay in the log")

    server.assistant.override = explode
    send(server, event_body(mention(QUESTION)))
    (post,) = server.fake.wait_for("chat.postMessage")
    assert "申し訳ありません" in post.params["text"]
    assert "internal detail" not in json.dumps(post.params, ensure_ascii=False)
    assert "Traceback" not in json.dumps(post.params)
    server.fake.wait_for("reactions.remove")
    assert "internal detail that must stay in the log" in caplog.text


def test_slack_api_error_is_logged_and_the_user_told(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    server.fake.fail("chat.postMessage", "channel_not_found")
    server.fake.fail("reactions.add", "channel_not_found")
    send(server, event_body(mention(QUESTION)))
    (notice,) = server.fake.wait_for("chat.postMessage")
    assert "申し訳ありません" in notice.params["text"]
    assert len(server.fake.attempts_of("chat.postMessage")) == 2
    assert "channel_not_found" in caplog.text
    # Slack refusing everything does not stop the bot: the next question is answered.
    server.fake.wait_for("reactions.remove", 1)
    server.fake.fail("chat.postMessage", "channel_not_found", times=2)
    send(server, event_body(mention(QUESTION)))
    server.fake.wait_for("reactions.remove", 2)
    assert len(server.fake.attempts_of("chat.postMessage")) == 4
    send(server, event_body(mention(QUESTION)))
    answer = server.fake.wait_for("chat.postMessage", 2)[-1]
    assert "2～3週間" in "\n".join(section_texts(answer))


def test_rate_limited_post_is_retried_after_retry_after(server: Server) -> None:
    server.fake.rate_limit("chat.postMessage", retry_after_s=1)
    send(server, event_body(mention(QUESTION)))
    (post,) = server.fake.wait_for("chat.postMessage")
    attempts = server.fake.attempts_of("chat.postMessage")
    assert [(c.status, c.ok) for c in attempts] == [(429, False), (200, True)]
    assert attempts[1].at_s - attempts[0].at_s >= 0.9  # it waited for Retry-After
    assert "2～3週間" in "\n".join(section_texts(post))


# Units: splitting and rendering -------------------------------------------------------------------------------

def citation(n: int, **kw: Any) -> Citation:
    base: dict[str, Any] = {"n": n, "chunk_id": f"doc/a b#{n}", "doc_id": "briefings/ロシア 2025.txt",
                            "title": "ロシア・ウクライナ", "section": "展望", "page": 3, "source": "corpus/x.txt",
                            "text": "本文。", "quote": "本文", "start": 0, "end": 2}
    return Citation(**{**base, **kw})


def test_splitter_keeps_sentences_emoji_and_surrogate_pairs_whole() -> None:
    from assistant.interfaces.slack_blocks import hard_split, sentences, split_text

    sentence = "ロシアは時間を稼いだ🇺🇦👨‍👩‍👧、😀と𠮷野家&<b>も。"
    text = "".join(sentence if i % 5 else sentence[:-1] + "！\n" for i in range(220))
    assert len(text) > 6000
    assert "".join(sentences(text)) == text
    pieces = split_text(text)
    assert len(pieces) >= 3
    for piece in pieces:
        assert slack_len(piece) <= SECTION_CHARS
        assert piece.endswith(("。", "！")), piece[-10:]
        assert not 0xD800 <= ord(piece[0]) <= 0xDFFF and piece[0] != "\u200d"
    assert "".join(unescape_mrkdwn(p) for p in pieces).replace("\n", "") == text.replace("\n", "")
    # A sentence with no end at all is cut at a comma, never inside an emoji sequence.
    run_on = "👨‍👩‍👧" * 500 + "、" + "あ" * 2000
    cut = hard_split(run_on, SECTION_CHARS)
    assert "".join(cut) == run_on and all(slack_len(c) <= SECTION_CHARS for c in cut)
    assert all(not c.startswith(("\u200d", "👩", "👧")) for c in cut)
    # Escaping counts: 3,000 ampersands become 15,000 characters, still within the limit per section.
    assert all(slack_len(p) <= SECTION_CHARS for p in split_text("&" * 3000))
    assert "".join(split_text("&" * 3000)) == escape_mrkdwn("&" * 3000)


def test_render_answer_respects_block_kit_limits() -> None:
    text = "".join(f"文{i}は重要である[{1 + i % 3}]。" for i in range(3000))  # about 40,000 characters
    answer = Answer(question="q", language="ja", answer=text, refused=False, id="ans-1",
                    citations=[citation(1), citation(2, page=None, section=""), citation(3, title="A|B <x>")])
    messages = render_answer(answer, PUBLIC_URL + "/")
    assert len(messages) > 1
    for m in messages:
        assert len(m.blocks) <= MAX_BLOCKS and slack_len(m.text) <= 40_000
        assert all(slack_len(b["text"]["text"]) <= SECTION_CHARS for b in m.blocks if b["type"] == "section")
    tail = messages[-1].blocks
    sources = "\n".join(b["text"]["text"] for b in tail if b["type"] == "section" and "出典" in b["text"]["text"])
    link = f"{PUBLIC_URL}/documents/briefings%2F%E3%83%AD%E3%82%B7%E3%82%A2%202025.txt#chunk-doc%2Fa%20b%231"
    assert f"<{link}|[1] ロシア・ウクライナ> — 展望 — p.3" in sources
    assert "|[2] ロシア・ウクライナ>" in sources and "[2] ロシア・ウクライナ> —" not in sources
    assert "[3] A｜B &lt;x&gt;>" in sources
    assert tail[-1]["type"] == "actions" and tail[-1]["elements"][0]["value"] == "ans-1"
    plain = render_answer(replace(answer, answer="短い回答［1］と【2】。"), None)
    assert plain[0].blocks[0]["text"]["text"] == "短い回答[1]と[2]。"
    assert "[1] ロシア・ウクライナ — 展望 — p.3" in plain[0].blocks[2]["text"]["text"]


def test_refusal_rendering_uses_the_question_language() -> None:
    for language, expected in (("ja", "お答えできません"), ("en", "cannot answer")):
        answer = Answer(question="q", language=language, answer="", refused=True, id="r",
                        citations=[citation(1)])
        (msg,) = render_answer(answer)
        assert expected in msg.text and "出典" not in msg.text
        assert not any("出典" in b.get("text", {}).get("text", "") for b in msg.blocks)


def test_message_text_cleanup_and_language() -> None:
    assert clean_text(f"<@{BOT_USER_ID}> 見通しは？ &lt;重要&gt; <https://x.example|リンク> <@U9|taro>",
                      BOT_USER_ID) == "見通しは？ <重要> リンク @taro"
    assert language_of("What changed?") == "en" and language_of("何が変わった？") == "ja"


def test_bolt_app_is_built_without_network(tmp_path: Path, fake: FakeSlack) -> None:
    settings = make_settings(tmp_path, slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET,
                             slack_api_url=fake.url)
    fake.reset()
    make_bolt_app(settings, assistant=object())  # type: ignore[arg-type]
    assert fake.calls == []
    assert slack_router(make_settings(tmp_path, slack_bot_token=BOT_TOKEN), object()) is None  # type: ignore[arg-type]


def test_socket_mode_needs_both_tokens(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        run_socket_mode(make_settings(tmp_path, slack_bot_token=BOT_TOKEN))
    assert "SLACK_APP_TOKEN" in info.value.message and "SLACK_APP_TOKEN" in info.value.message_ja
    assert BOT_TOKEN not in info.value.message


def test_socket_mode_reports_a_rejected_token(tmp_path: Path, fake: FakeSlack) -> None:
    fake.reset()
    fake.fail("auth.test", "invalid_auth")
    settings = make_settings(tmp_path, slack_bot_token=BOT_TOKEN, slack_app_token="xapp-1-test",
                             slack_api_url=fake.url)
    with pytest.raises(UserError) as info:
        run_socket_mode(settings)
    assert info.value.code == "slack_auth_failed" and "invalid_auth" in info.value.message


def test_manifest_matches_the_bot() -> None:
    import yaml  # type: ignore[import-untyped]

    manifest = yaml.safe_load((REPO / "slack" / "manifest.yaml").read_text(encoding="utf-8"))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read", "chat:write", "im:history", "im:read", "im:write", "channels:history",
        "groups:history", "reactions:write", "commands"}
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention", "message.im"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/ask"
    urls = [command["url"], manifest["settings"]["event_subscriptions"]["request_url"],
            manifest["settings"]["interactivity"]["request_url"]]
    assert all(u.endswith("/slack/events") for u in urls)
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
