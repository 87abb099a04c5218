"""Each line's role (heading, list item, field, table row) is fixed at ingestion and stored with its chunk."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from assistant.answering.context import sentence_context
from assistant.core import make_assistant
from assistant.index import Index
from assistant.text.structure import roles_from_text
from assistant.types import Chunk, Passage, Role
from tests.helpers import CORPUS, make_settings

HEADER = "項目 | 現状 | 目標"

MARKDOWN = """# 通商協議の論点

日付：2025年11月5日

## 各国の主張

日本
- 輸出規制の早期撤廃を要求する。
- 技術協力の継続

| 項目 | 現状 | 目標 |
|---|---|---|
| 再エネ比率 | 約23% | 4〜5割 |
| 自給率 | 約15% | 3〜4割 |

交渉は難航している。
"""

HTML = """<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>通商協議の論点</title></head><body>
<h1>通商協議の論点</h1>
<h2>各国の主張</h2>
<p>日付：2025年11月5日</p>
<p>日本</p>
<ul><li>輸出規制の早期撤廃を要求する。</li><li>技術協力の継続</li></ul>
<table><tr><th>項目</th><th>現状</th><th>目標</th></tr><tr><td>再エネ比率</td><td>約23%</td><td>4〜5割</td></tr>
<tr><td>自給率</td><td>約15%</td><td>3〜4割</td></tr></table>
<p>交渉は難航している。</p>
</body></html>
"""

TEXT = """通商協議の論点

日付：2025年11月5日

各国の主張

日本
• 輸出規制の早期撤廃を要求する。
• 技術協力の継続

| 項目 | 現状 | 目標 |
| 再エネ比率 | 約23% | 4〜5割 |
| 自給率 | 約15% | 3〜4割 |

交渉は難航している。
"""


def make_claims_docx(out: Path) -> Path:
    """The same document in Word: heading styles, a bulleted list under its label, a table."""
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.core_properties.title = "通商協議の論点"
    document.add_heading("各国の主張", level=1)
    document.add_paragraph("日付：2025年11月5日")
    document.add_paragraph("日本")
    document.add_paragraph("輸出規制の早期撤廃を要求する。", style="List Bullet")
    document.add_paragraph("技術協力の継続", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate((("項目", "現状", "目標"), ("再エネ比率", "約23%", "4〜5割"), ("自給率", "約15%", "3〜4割"))):
        for c, cell in enumerate(row):
            table.cell(r, c).text = cell
    document.add_paragraph("交渉は難航している。")
    document.save(str(out))
    return out


def roles_by_line(chunk: Chunk | Passage) -> dict[str, Role]:
    roles = chunk.roles
    assert roles is not None
    return {chunk.text[r.start : r.end].lstrip("• "): r for r in roles}


def test_roles_from_each_loader_reach_the_stored_chunk_and_the_passage(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "claims.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "claims.html").write_text(HTML, encoding="utf-8")
    (folder / "claims.txt").write_text(TEXT, encoding="utf-8")
    make_claims_docx(folder / "claims.docx")
    a = make_assistant(make_settings(tmp_path / "data"))
    report = a.ingest([folder])
    assert not report.failed and len(report.added) == 4, report
    for doc_id in report.added:
        chunks = a.index.doc_chunks(doc_id)
        lines = {k: v for c in chunks for k, v in roles_by_line(c).items()}
        table = "| 項目 | 現状 | 目標 |" if doc_id.endswith(".txt") else HEADER
        row = next(k for k in lines if "再エネ比率" in k)
        assert lines[table].kind == "header", doc_id
        assert (lines[row].kind, lines[row].label) == ("row", table), doc_id
        for item in ("輸出規制の早期撤廃を要求する。", "技術協力の継続"):
            assert (lines[item].kind, lines[item].label) == ("item", "日本"), (doc_id, lines[item])
        assert lines["日付：2025年11月5日"].key == "日付", doc_id
        assert lines["日付：2025年11月5日"].kind in ("field", "heading"), doc_id
        assert lines["各国の主張"].kind == "heading", doc_id
        assert lines["交渉は難航している。"].kind == "sentence", doc_id
        # Every line of every chunk has its role, in the chunk's own offsets.
        for c in chunks:
            assert [c.text[r.start : r.end] for r in c.roles] == [x.strip() for x in c.text.split("\n") if x.strip()]
    # Retrieval hands the stored roles on with each passage.
    passages = a.retrieve("日本は輸出規制について何を要求していますか", top_k=8)
    assert passages
    stored = a.index.load_chunks([p.chunk_id for p in passages])
    for p in passages:
        assert p.roles == stored[p.chunk_id].roles
    assert "roles" not in passages[0].to_json()  # the JSON shape is unchanged


def test_sentence_context_names_title_section_and_label() -> None:
    text = "日本\n• 輸出規制の早期撤廃を要求\n項目 | 現状 | 目標\n再エネ比率 | 約23% | 4〜5割\n交渉は難航している。"
    p = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="通商協議の論点", section="各国の主張", page=None,
                source="d", text=text, roles=roles_from_text(text, "各国の主張", "通商協議の論点"))

    def context(part: str) -> str:
        at = text.index(part)
        return sentence_context(p, at, at + len(part)).text()

    assert context("輸出規制の早期撤廃を要求") == "通商協議の論点 / 各国の主張 / 日本"
    assert context("再エネ比率") == "通商協議の論点 / 各国の主張 / 項目 | 現状 | 目標"
    assert context("交渉は難航している。") == "通商協議の論点 / 各国の主張"
    at = text.index("再エネ比率")
    assert sentence_context(p, at, at + 5).label == HEADER
    # A passage made outside the index gets its roles from its text, by the rules ingestion uses.
    bare = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="通商協議の論点", section="各国の主張",
                   page=None, source="d", text=text)
    assert sentence_context(bare, at, at + 5).label == HEADER and bare.roles == p.roles
    # The stored roles are read as they are: the text is not parsed again.
    told = Passage(**{**p.__dict__, "roles": [Role(0, len(text), "item", "別の見出し")]})
    assert sentence_context(told, at, at + 5).text() == "通商協議の論点 / 各国の主張 / 別の見出し"


# The chunks table as it was before roles were stored.
OLD_CHUNKS = """CREATE TABLE chunks_old (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    section TEXT NOT NULL DEFAULT '',
    page INTEGER
)"""


def test_an_index_built_before_roles_is_migrated_on_opening_and_still_answers(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = make_settings(tmp_path / "data")
    a = make_assistant(settings)
    a.ingest([corpus])
    doc_id = a.list_documents()[0].doc_id
    fresh = [c.roles for c in a.index.doc_chunks(doc_id)]
    question = "ロシアは何を要求していますか。"
    before = a.ask(question)
    a.index.close()

    # Put the chunks table back to its old layout: no roles column.
    conn = sqlite3.connect(settings.index_db)
    with conn:
        conn.execute("DROP INDEX chunks_roles_missing")
        conn.execute(OLD_CHUNKS)
        conn.execute("INSERT INTO chunks_old SELECT chunk_id, doc_id, ordinal, text, start, end, section, page"
                     " FROM chunks")
        conn.execute("DROP TABLE chunks")
        conn.execute("ALTER TABLE chunks_old RENAME TO chunks")
        conn.execute("CREATE INDEX chunks_doc ON chunks(doc_id, ordinal)")
    assert "roles" not in {r[1] for r in conn.execute("PRAGMA table_info(chunks)")}
    conn.close()

    index = Index(settings.index_db)
    migrated = [c.roles for c in index.doc_chunks(doc_id)]
    assert all(migrated) and migrated == fresh  # derived from the text, as ingestion derived them
    assert index.conn.execute("SELECT COUNT(*) FROM chunks WHERE roles IS NULL").fetchone()[0] == 0
    index.close()
    again = make_assistant(settings)
    assert again.refreshed is None  # nothing re-indexed: the roles came from the stored text
    after = again.ask(question)
    assert (after.answer, after.refused) == (before.answer, before.refused)
    assert [c.quote for c in after.citations] == [c.quote for c in before.citations]
