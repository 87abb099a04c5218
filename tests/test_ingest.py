"""Ingestion: incremental, atomic, versioned, and bad documents never stop a run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.core import Filters, make_assistant
from tests.helpers import CORPUS, INGEST_SCRIPT, REPO, make_settings

BRIEFING = "briefing-russia-ukraine-2025-08.txt"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    return folder


def test_ingest_then_skip_unchanged(tmp_path: Path, corpus: Path) -> None:
    a = make_assistant(make_settings(tmp_path / "data"))
    first = a.ingest([corpus])
    assert first.added == [BRIEFING] and not first.failed
    assert first.chunks >= 8
    again = a.ingest([corpus])
    assert again.skipped == [BRIEFING] and not again.added and not again.changed
    docs = a.list_documents()
    assert [d.doc_id for d in docs] == [BRIEFING]
    assert docs[0].date == "2025-08" and docs[0].chunks == first.chunks
    assert a.vectors.count() == first.chunks == a.index.keyword.count()


def test_chunks_carry_offsets_into_display_text(tmp_path: Path, corpus: Path) -> None:
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([corpus])
    found = a.get_document(BRIEFING)
    assert found is not None
    _, chunks, display = found
    for c in chunks:
        assert display[c.start : c.end] == c.text
    sections = {c.section for c in chunks}
    assert any("現状" in s for s in sections) and any("展望" in s for s in sections)
    # Wrapped lines of the source are joined in the display text.
    assert "停戦よりも和平を優先する方針に転換" in display


def test_changed_file_replaces_old_chunks(tmp_path: Path, corpus: Path) -> None:
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([corpus])
    old_ids = set(a.index.chunk_ids(BRIEFING))
    path = corpus / BRIEFING
    path.write_text(path.read_text(encoding="utf-8") + "\n追記：パラジウム価格の見通しは別稿で扱う。\n", encoding="utf-8")
    report = a.ingest([corpus])
    assert report.changed == [BRIEFING]
    new_ids = set(a.index.chunk_ids(BRIEFING))
    assert new_ids != old_ids
    # Unchanged chunks keep their ids (content-derived); the vector store holds exactly the live ones.
    assert old_ids & new_ids
    assert a.vectors.count() == len(new_ids)
    hits = a.retrieve("パラジウム価格", top_k=3)
    assert any("パラジウム" in p.text for p in hits)
    # Japanese questions are re-ranked: the order is the re-ranker's, `score` stays the fused one.
    assert all("rerank" in p.scores and p.score == p.scores["fused"] for p in hits)
    assert all("rerank" not in p.scores for p in a.retrieve("palladium price outlook", top_k=3))


def test_prune_removes_deleted_files_but_not_uploads(tmp_path: Path, corpus: Path) -> None:
    a = make_assistant(make_settings(tmp_path / "data"))
    (corpus / "extra.md").write_text("# 追加資料\n\nこれは削除される予定の資料です。内容は短い。\n", encoding="utf-8")
    a.ingest([corpus])
    up = a.add_upload("note.txt", "アップロードされたメモ。北極海航路の話題。".encode())
    assert up.added == ["uploads/note.txt"]
    (corpus / "extra.md").unlink()
    kept = a.ingest([corpus])
    assert not kept.removed and "extra.md" in {d.doc_id for d in a.list_documents()}
    pruned = a.ingest([corpus], prune=True)
    assert pruned.removed == ["extra.md"]
    ids = {d.doc_id for d in a.list_documents()}
    assert ids == {BRIEFING, "uploads/note.txt"}
    assert a.vectors.count() == sum(d.chunks for d in a.list_documents())


def test_upload_names_are_sanitised_and_duplicates_detected(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    a = make_assistant(settings)
    data = "上海協力機構の首脳会議についてのメモ。".encode()
    report = a.add_upload("../../etc/pass\x00wd.txt", data)
    assert not report.failed, report
    stored = list(settings.documents_dir.iterdir())
    assert len(stored) == 1 and stored[0].parent == settings.documents_dir
    assert "\x00" not in stored[0].name and ".." not in stored[0].name
    dup = a.add_upload("copy.txt", data)
    assert dup.skipped and not dup.added
    bad = a.add_upload("tool.exe", b"MZ")
    assert bad.failed and "unsupported" in bad.failed[0].reason


def test_bad_documents_do_not_stop_the_run(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path / "data", max_file_mb=0.01)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "data.xyz").write_text("unknown", encoding="utf-8")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nendobj\n% truncated")
    limit = settings.max_file_bytes
    (corpus / "huge.txt").write_text("あ" * (limit // 3 + 10), encoding="utf-8")  # just over the limit
    (corpus / "sjis.txt").write_bytes("シフトJISで書かれた報告書。髙橋氏が①の論点を説明した。".encode("cp932"))
    (corpus / "eucjp.txt").write_bytes("EUC-JPの文書。北方領土問題の経緯をまとめた。".encode("euc_jp"))
    a = make_assistant(settings)
    report = a.ingest([corpus])
    failed = {Path(f.source).name: f.reason for f in report.failed}
    assert set(failed) >= {"empty.txt", "data.xyz", "broken.pdf", "huge.txt"}
    assert "empty" in failed["empty.txt"]
    assert "unsupported" in failed["data.xyz"]
    assert "MB" in failed["huge.txt"]
    assert set(report.added) == {"sjis.txt", "eucjp.txt", BRIEFING}
    texts = " ".join(c.text for d in ("sjis.txt", "eucjp.txt") for c in a.index.doc_chunks(d))
    assert "髙橋氏が①の論点" in texts and "北方領土問題" in texts
    for f in report.failed:
        assert f.reason and f.reason_ja


def test_version_change_reindexes_with_reason(tmp_path: Path, corpus: Path) -> None:
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([corpus])
    b = make_assistant(make_settings(tmp_path / "data", chunk_chars=250))  # re-indexes on opening
    assert b.refreshed is not None and b.refreshed.changed == [BRIEFING]
    assert "chunking changed" in b.refreshed.reindexed[BRIEFING]
    assert b.vectors.count() == len(b.index.chunk_ids(BRIEFING))
    assert b.ingest([corpus]).skipped == [BRIEFING]


def test_documents_an_older_model_embedded_are_re_embedded_on_opening(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path / "data")
    a = make_assistant(settings)
    a.ingest([corpus])
    a.add_upload("memo.txt", "北海電機は来年度の設備投資を3割増やす。".encode())
    ids = a.index.chunk_ids(BRIEFING)
    fresh = a.vectors.store.get(ids=ids, include=["embeddings"])["embeddings"]
    # As an earlier build left them: recorded under another model, with other vectors.
    for doc in (BRIEFING, "uploads/memo.txt"):
        rec = a.index.get_record(doc)
        assert rec is not None
        versions = json.dumps({**rec.versions, "embedder": "older-model"})
        a.index.conn.execute("UPDATE documents SET versions = ? WHERE doc_id = ?", (versions, doc))
    a.index.conn.commit()
    a.vectors.store._collection.update(ids=ids, embeddings=[[-x for x in v] for v in fresh])
    a.index.close()
    b = make_assistant(settings)
    assert b.refreshed is not None and sorted(b.refreshed.changed) == sorted([BRIEFING, "uploads/memo.txt"])
    assert "embedder changed (older-model ->" in b.refreshed.reindexed[BRIEFING]
    again = b.vectors.store.get(ids=ids, include=["embeddings"])["embeddings"]
    assert max(abs(x - y) for u, v in zip(fresh, again, strict=True) for x, y in zip(u, v, strict=True)) < 1e-5
    assert b.retrieve("北海電機の設備投資")[0].doc_id == "uploads/memo.txt"
    assert make_assistant(settings).refreshed is None  # nothing left to do


def test_a_document_whose_file_is_gone_keeps_its_index_and_is_reported(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path / "data")
    a = make_assistant(settings)
    a.ingest([corpus])
    rec = a.index.get_record(BRIEFING)
    assert rec is not None
    a.index.conn.execute("UPDATE documents SET versions = ? WHERE doc_id = ?",
                         (json.dumps({**rec.versions, "embedder": "older-model"}), BRIEFING))
    a.index.conn.commit()
    a.index.close()
    (corpus / BRIEFING).unlink()
    b = make_assistant(settings)
    assert b.refreshed is not None and [f.source for f in b.refreshed.failed] == [rec.source]
    assert "its file" in b.refreshed.failed[0].reason and "ファイル" in b.refreshed.failed[0].reason_ja
    assert b.retrieve("トランプ氏の制裁の延期")  # still answerable from the old index


def test_filters_by_document_and_date(tmp_path: Path, corpus: Path) -> None:
    (corpus / "later.md").write_text("# 2026年の展望\n\nロシア経済の成長率は鈍化した。\n", encoding="utf-8")
    (corpus / "later.md.meta.json").write_text(json.dumps({"title": "2026年の展望", "date": "2026-02-01"}))
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([corpus])
    only = a.retrieve("ロシア", top_k=10, filters=Filters(doc_ids=["later.md"]))
    assert only and {p.doc_id for p in only} == {"later.md"}
    in_2025 = a.retrieve("ロシア", top_k=10, filters=Filters(date_from="2025-08-01", date_to="2025-12-31"))
    assert in_2025 and {p.doc_id for p in in_2025} == {BRIEFING}
    assert a.retrieve("ロシア", filters=Filters(doc_ids=["nope"])) == []




def _write_versions(folder: Path, version: str, n: int) -> None:
    for i in range(n):
        sentences = [f"文書{i}の第{j}文は版{version}の内容で、ウクライナ情勢の論点{j}を述べる。" for j in range(30)]
        (folder / f"doc{i:03d}.txt").write_text("\n\n".join(sentences), encoding="utf-8")


def test_sigkill_mid_run_leaves_previous_state(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    n = 90
    _write_versions(folder, "A", n)
    data = tmp_path / "data"
    a = make_assistant(make_settings(data))
    assert len(a.ingest([folder]).added) == n
    a.index.close()
    _write_versions(folder, "B", n)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", INGEST_SCRIPT, str(data), str(folder)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # wait until the run is part-way through, then kill it hard
        if line.strip().isdigit() and int(line) >= n // 2 or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    b = make_assistant(make_settings(data))
    versions = set()
    for i in range(n):
        texts = [c.text for c in b.index.doc_chunks(f"doc{i:03d}.txt")]
        kinds = {("A" if "版A" in t else "B") for t in texts}
        assert len(kinds) == 1, f"doc{i:03d} mixes old and new chunks"
        versions |= kinds
    assert versions == {"A", "B"}, versions  # killed part-way: the first batches committed, the rest not
    # Every retrieved passage is a committed chunk of one version.
    for p in b.retrieve("版Bの内容", top_k=10) + b.retrieve("版Aの内容", top_k=10):
        assert p.chunk_id in set(b.index.chunk_ids(p.doc_id))
    report = b.ingest([folder])
    assert not report.failed
    assert all("版B" in c.text for i in range(n) for c in b.index.doc_chunks(f"doc{i:03d}.txt"))
    assert b.vectors.count() == b.index.counts()["chunks"]  # what the killed run left is cleaned up


def test_sidecar_title_change_reembeds(tmp_path: Path, corpus: Path) -> None:
    (corpus / "note.txt").write_text("北極海航路の利用が増えている。砕氷船の建造も進む。", encoding="utf-8")
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([corpus])
    (chunk,) = a.index.doc_chunks("note.txt")
    before = a.vectors.store.get(ids=[chunk.chunk_id], include=["embeddings"])["embeddings"][0]
    (corpus / "note.txt.meta.json").write_text(json.dumps({"title": "Arctic shipping lanes"}), encoding="utf-8")
    report = a.ingest([corpus])
    assert report.changed == ["note.txt"]
    after = a.vectors.store.get(ids=[chunk.chunk_id], include=["embeddings"])["embeddings"][0]
    assert a.index.doc_chunks("note.txt")[0].title == "Arctic shipping lanes"
    assert sum((x - y) ** 2 for x, y in zip(before, after, strict=True)) > 1e-6


def test_keyword_weighting_change_resets_and_reindexes(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path / "data")
    a = make_assistant(settings)
    a.ingest([corpus])
    a.index.conn.execute("UPDATE kw_meta SET value = 'older-weighting' WHERE key = 'version'")
    a.index.close()
    b = make_assistant(settings)  # opens despite the stale keyword index, and rebuilds it
    report = b.refreshed
    assert report is not None and report.changed == [BRIEFING] and "tokenizer changed" in report.reindexed[BRIEFING]
    assert b.index.keyword.count() == b.index.counts()["chunks"] > 0
    assert b.ingest([corpus]).skipped == [BRIEFING]



OPEN_INDEX_SCRIPT = """
import sys, time
from pathlib import Path
from assistant.index import Index
ready, go = Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.0005)
index = Index(Path(sys.argv[1]))
index.close()
"""


def test_processes_creating_one_index_at_once_all_open_it(tmp_path: Path) -> None:
    """Switching a new SQLite file to WAL fails at once, without waiting, when another process is creating it."""
    for attempt in range(8):
        folder = tmp_path / f"round{attempt}"
        folder.mkdir()
        go = folder / "go"
        readies = [folder / f"ready{i}" for i in range(4)]
        procs = [subprocess.Popen([sys.executable, "-c", OPEN_INDEX_SCRIPT, str(folder / "index.sqlite"),
                                   str(ready), str(go)], cwd=REPO, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
                 for ready in readies]
        deadline = time.monotonic() + 120
        while not all(ready.exists() for ready in readies) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-1500:]
