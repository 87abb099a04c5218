"""The JSON API over HTTP, against the real server (uvicorn on a free loopback port, real assistant)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import pytest

from assistant.feedback import FeedbackStore
from assistant.querylog import QueryLog
from assistant.settings import Settings
from tests.helpers import CORPUS, free_port, make_settings

pytestmark = pytest.mark.slow

Q_JA = "米ロ首脳会談はどこで行われましたか？"
Q_EN = "How long did Trump postpone sanctions on Russia?"
UPLOAD_MD = """---
title: 架空の島の灯台について
date: 2024-05-01
---
# 灯台

ミナミカゼ島の灯台は1897年に建てられ、高さは32メートルである。
灯台守の山田花子氏は2019年から勤務している。
"""


class LiveServer:
    """uvicorn serving `make_app` in a background thread on a free loopback port."""

    def __init__(self, settings: Settings, assistant: Any) -> None:
        import uvicorn

        from assistant.interfaces.server import make_app

        self.settings = settings
        self.assistant = assistant
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(make_app(settings, assistant), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on", proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from assistant.core import make_assistant

    settings = make_settings(tmp_path_factory.mktemp("api-data"), rate_limit_per_min=0)
    assistant = make_assistant(settings)
    assistant.ingest([CORPUS])
    with LiveServer(settings, assistant) as server:
        yield server


@pytest.fixture()
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=120) as c:
        yield c


def assert_error_shape(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert {"code", "message", "message_ja"} <= set(err) and all(err[k] for k in ("code", "message", "message_ja"))
    if code:
        assert err["code"] == code
    assert "Traceback" not in r.text
    return err


def read_sse(r: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "", ""
    for line in r.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and name:
            events.append((name, json.loads(data)))
            name, data = "", ""
    return events


def test_healthz_reports_counts(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert "model" in body and "index" in body
    assert json.dumps(body).count("chunks") >= 1


def test_ask_japanese_has_verified_citation(client: httpx.Client) -> None:
    r = client.post("/api/ask", json={"question": Q_JA})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["id"] and a["question"] == Q_JA and a["language"] == "ja"
    assert not a["refused"] and "[1]" in a["answer"] and a["citations"]
    c = a["citations"][0]
    assert c["text"][c["start"]:c["end"]] == c["quote"]


def test_ask_english(client: httpx.Client) -> None:
    a = client.post("/api/ask", json={"question": Q_EN}).json()
    assert a["language"] == "en" and not a["refused"] and a["citations"], a["refusal_reason"]


def test_follow_up_uses_history(client: httpx.Client) -> None:
    first = client.post("/api/ask", json={"question": Q_JA}).json()
    history = [{"role": "user", "content": Q_JA}, {"role": "assistant", "content": first["answer"]}]
    r = client.post("/api/ask", json={"question": "それは何日でしたか？", "history": history})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["standalone_question"] != "" or a["citations"]


def test_stream_sends_deltas_then_the_answer(client: httpx.Client) -> None:
    with client.stream("POST", "/api/ask/stream", json={"question": Q_JA}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_sse(r)
    names = [n for n, _ in events]
    assert names[-1] == "answer" and names.count("answer") == 1
    assert "delta" in names and "error" not in names
    assert all(isinstance(d["text"], str) for n, d in events if n == "delta")
    answer = events[-1][1]
    assert answer["citations"] and answer["id"]


def test_stream_rejects_bad_question_before_streaming(client: httpx.Client) -> None:
    r = client.post("/api/ask/stream", json={"question": "   "})
    assert_error_shape(r, 400, "empty_question")


def test_retrieve_returns_ranked_passages(client: httpx.Client) -> None:
    r = client.post("/api/retrieve", json={"question": "NATO軍派遣", "top_k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "question", "passages"}
    assert 1 <= len(body["passages"]) <= 3
    assert [p["rank"] for p in body["passages"]] == list(range(1, len(body["passages"]) + 1))
    assert any("NATO" in p["text"] for p in body["passages"])


def test_filters_by_document_and_date(client: httpx.Client) -> None:
    doc_id = client.get("/api/documents").json()[0]["doc_id"]
    inside = client.post("/api/retrieve", json={"question": "和平", "doc_ids": [doc_id]}).json()
    assert inside["passages"] and {p["doc_id"] for p in inside["passages"]} == {doc_id}
    before = client.post("/api/retrieve", json={"question": "和平", "date_to": "2020-01-01"}).json()
    assert before["passages"] == []
    other = client.post("/api/ask", json={"question": Q_JA, "doc_ids": ["no-such-doc"]}).json()
    assert other["refused"] and not other["citations"]
    r = client.post("/api/retrieve", json={"question": "和平", "date_from": "2025-09-01", "date_to": "2025-01-01"})
    assert_error_shape(r, 400, "bad_date_range")


def test_documents_list(client: httpx.Client) -> None:
    docs = client.get("/api/documents").json()
    assert docs and {"doc_id", "title", "chunks", "date", "origin"} <= set(docs[0])
    assert docs[0]["chunks"] > 0


def test_upload_ask_duplicate_delete(client: httpx.Client, live: LiveServer) -> None:
    files = [("files", ("lighthouse.md", UPLOAD_MD.encode(), "text/markdown"))]
    report = client.post("/api/documents", files=files).json()
    assert report["added"] and not report["failed"], report
    doc_id = report["added"][0]
    a = client.post("/api/ask", json={"question": "ミナミカゼ島の灯台の高さは？"}).json()
    assert "32" in a["answer"] and any(c["doc_id"] == doc_id for c in a["citations"])
    again = client.post("/api/documents", files=[("files", ("copy.md", UPLOAD_MD.encode(), "text/markdown"))]).json()
    assert again["skipped"] and not again["added"]
    assert client.delete(f"/api/documents/{doc_id}").json() == {"deleted": doc_id, "vectors_pending": 0}
    assert doc_id not in {d["doc_id"] for d in client.get("/api/documents").json()}
    assert_error_shape(client.delete(f"/api/documents/{doc_id}"), 404, "not_found")


def test_upload_several_files_reports_each(client: httpx.Client) -> None:
    files = [
        ("files", ("a-note.txt", "北斗市の人口調査は2023年に行われた。".encode(), "text/plain")),
        ("files", ("b-note.txt", "南星町の祭りは毎年七月に開かれる。".encode(), "text/plain")),
        ("files", ("bad.exe", b"MZ\x90\x00", "application/octet-stream")),
    ]
    report = client.post("/api/documents", files=files).json()
    assert len(report["added"]) == 2
    assert [f["source"] for f in report["failed"]] == ["bad.exe"]
    assert report["failed"][0]["reason"] and report["failed"][0]["reason_ja"]
    for doc_id in report["added"]:
        client.delete(f"/api/documents/{doc_id}")


def test_feedback_is_stored_and_exported(client: httpx.Client, live: LiveServer) -> None:
    a = client.post("/api/ask", json={"question": Q_JA}).json()
    r = client.post("/api/feedback", json={"answer_id": a["id"], "rating": "good", "comment": "助かった"})
    assert r.status_code == 200 and r.json()["id"] > 0
    assert_error_shape(client.post("/api/feedback", json={"answer_id": a["id"], "rating": "meh"}), 422)
    lines = client.get("/api/feedback/export").text.splitlines()
    records = [json.loads(line) for line in lines]
    mine = [x for x in records if x["answer_id"] == a["id"]]
    assert mine and mine[-1]["question"] == Q_JA and mine[-1]["comment"] == "助かった"
    assert mine[-1]["answer"]["citations"], "the stored answer keeps its citations"
    # The same store, read directly: durable on disk.
    store = FeedbackStore(live.settings.feedback_db)
    assert store.list(answer_id=a["id"])[0].rating == "good"
    buf = io.StringIO()
    assert store.export_jsonl(buf) == len(records)


def test_query_log_records_question_and_answer_id(client: httpx.Client, live: LiveServer) -> None:
    from assistant.interfaces.server import querylog_path

    a = client.post("/api/ask", json={"question": "ゼレンスキー大統領は前線をどうみなしましたか？"}).json()
    recent = QueryLog(querylog_path(live.settings)).recent(20)
    assert any(rec.answer_id == a["id"] and rec.question.startswith("ゼレンスキー") for rec in recent)


@pytest.mark.parametrize(
    "question",
    ["", "   \n\t ", "x" * 20_000, "\x00\x01\x02", "質問\x00です\x1b[31m？", "NATOとЗеленський와 ウクライナ 🇺🇦 peace?",
     "<script>alert(1)</script>", "' OR 1=1; --"],
    ids=["empty", "whitespace", "20000-chars", "only-controls", "controls", "mixed-scripts", "html", "sql"],
)
def test_hostile_questions_never_500(client: httpx.Client, question: str) -> None:
    for path in ("/api/ask", "/api/retrieve", "/api/ask/stream"):
        r = client.post(path, json={"question": question})
        assert r.status_code < 500, (path, r.text[:300])
        if r.status_code >= 400:
            assert_error_shape(r, r.status_code)


def test_validation_and_unknown_routes_use_the_error_shape(client: httpx.Client) -> None:
    err = assert_error_shape(client.post("/api/ask", json={"question": "x", "top_k": 0}), 422, "invalid_request")
    assert "top_k" in err["message"]
    assert_error_shape(client.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"}),
                       422, "invalid_request")
    assert_error_shape(client.post("/api/ask", json={"question": "x", "history": [{"role": "system",
                                                                                  "content": "hi"}]}), 422)
    assert_error_shape(client.get("/api/nothing-here"), 404, "not_found")


def test_openapi_describes_the_routes(client: httpx.Client) -> None:
    spec = client.get("/api/openapi.json").json()
    for path in ("/api/ask", "/api/ask/stream", "/api/retrieve", "/api/documents", "/api/documents/{doc_id}",
                 "/api/feedback", "/api/feedback/export", "/healthz"):
        assert path in spec["paths"], path
    assert client.get("/api/docs").status_code == 200


def test_concurrent_asks_get_their_own_answers(client: httpx.Client, live: LiveServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    questions = [Q_JA, Q_EN, "ロシア外務省報道官は何と述べましたか？", "What did Zelensky say about the front line?"] * 2

    def ask(q: str) -> dict[str, Any]:
        with httpx.Client(base_url=live.url, timeout=300) as c:
            return c.post("/api/ask", json={"question": q}).json()

    with ThreadPoolExecutor(len(questions)) as pool:
        answers = list(pool.map(ask, questions))
    assert [a["question"] for a in answers] == questions
    assert len({a["id"] for a in answers}) == len(answers)


def test_document_viewer_page(client: httpx.Client) -> None:
    a = client.post("/api/ask", json={"question": Q_JA}).json()
    c = a["citations"][0]
    r = client.get(f"/documents/{c['doc_id']}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f'id="chunk-{c["chunk_id"]}"' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert client.get("/documents/no-such-doc").status_code == 404


def test_page_is_served(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]


def test_settings_paths_are_under_the_data_dir(live: LiveServer) -> None:
    data = Path(live.settings.data_dir)
    assert Path(live.settings.feedback_db).is_relative_to(data)
