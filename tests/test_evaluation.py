"""The evaluation harness: metric definitions, the question set's schema, an end-to-end run on fake answers."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assistant.evaluation import harness, report
from assistant.evaluation import metrics as m
from assistant.evaluation.cli import build_result, run_cli
from assistant.evaluation.datasets import Question, load_questions, validate_questions
from assistant.types import Answer, Citation, Passage

ROOT = Path(__file__).resolve().parents[1]
BRIEFING = ROOT.parent / "shared" / "seed" / "briefing-russia-ukraine-2025-08.txt"
CORPUS_COPY = ROOT / "corpus" / "briefing-russia-ukraine-2025-08.txt"
QUESTIONS = ROOT / "eval" / "questions" / "briefing.jsonl"


# Metrics -----------------------------------------------------------------------------------------

def test_norm_joins_wrapped_lines_and_folds_width() -> None:
    assert m.norm("ドネ\nツィク　ＮＡＴＯ ２～３") == "ドネツィクnato2~3"


def test_ranking_metrics_single_item() -> None:
    hits = [frozenset(), frozenset({0}), frozenset({0})]
    got = m.ranking_metrics(hits, 1, (1, 5, 10))
    assert got["r@1"] == 0.0 and got["r@5"] == 1.0 and got["r@10"] == 1.0
    assert got["mrr@10"] == 0.5
    assert got["ndcg@10"] == pytest.approx(1 / math.log2(3))  # the repeat at rank 3 adds nothing


def test_ranking_metrics_two_items_and_misses() -> None:
    got = m.ranking_metrics([frozenset({1}), frozenset(), frozenset({0})], 2, (1, 5))
    assert got["r@1"] == 0.5 and got["r@5"] == 1.0 and got["mrr@10"] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert got["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    both = m.ranking_metrics([frozenset({0, 1})], 2, (1,))
    assert both["ndcg@10"] == 1.0  # capped: two items in one passage beat the one-per-rank ideal
    none = m.ranking_metrics([], 1, (1,))
    assert none == {"r@1": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}
    assert m.ranking_metrics([frozenset({0})], 0) == {}


def test_mrr_ignores_hits_below_rank_10() -> None:
    hits: list[frozenset[int]] = [frozenset()] * 10 + [frozenset({0})]
    got = m.ranking_metrics(hits, 1, (1, 11))
    assert got["mrr@10"] == 0.0 and got["r@11"] == 1.0


def test_doc_hits_collapse_passages_of_one_document() -> None:
    hits = m.doc_hits(["a", "a", "b", "gold"], "gold")
    assert [bool(h) for h in hits] == [False, False, True]


def test_evidence_hits_after_normalisation() -> None:
    hits = m.evidence_hits(["米空軍を通じた\n支援を行う", "別の文"], ["米空軍を通じた支援", "ない"])
    assert hits == [frozenset({0}), frozenset()]


def test_citation_markers_and_validity() -> None:
    assert m.citation_markers("A [1]. B [2, 3][4]. C ［５］") == [1, 2, 3, 4, 5]
    cits = {1: "c1", 2: "c2"}
    assert m.citation_validity("x [1] y [2]", cits, ["c1", "c2"])
    assert not m.citation_validity("x [3]", cits, ["c1", "c2"])  # no such citation
    assert not m.citation_validity("x [2]", cits, ["c1"])  # cites a passage that was not retrieved
    assert m.citation_validity("no markers", {}, [])


def test_evidence_recall_and_precision() -> None:
    assert m.evidence_recall(["…中国を挙げた…"], ["中国を挙げた", "欧州"]) == 0.5
    assert m.evidence_recall([], ["x"]) == 0.0
    assert m.evidence_recall(["x"], []) == 0.0
    assert m.citation_precision([True, False, False], [False, True, False]) == pytest.approx(2 / 3)
    assert m.citation_precision([], []) is None


def test_language_detection_judges_the_framing_text() -> None:
    assert m.detect_language("トランプ氏は欧州が「第一の防衛線」になるべきだと述べた [1]。") == "ja"
    assert m.detect_language("Trump said Europe should be the 「第一の防衛線」 (first line of defence) [1].") == "en"
    assert m.detect_language("The briefing says 中国 was named as a possible participant [2].") == "en"
    assert m.detect_language("NATO軍の派遣を拒否 [1]") == "ja"
    assert m.detect_language("[1]") == ""


def test_answer_correctness() -> None:
    assert m.containment("延期は２～３週間です [1]", ["2～3週間"])
    assert not m.containment("延期された", ["2～3週間"])
    assert m.char_f1("アラスカ", ["アラスカ"]) == 1.0
    assert m.char_f1("米国のアラスカ", ["アラスカ"]) == pytest.approx(2 * (4 / 7) * 1 / (4 / 7 + 1))
    assert m.char_f1("abc", ["xyz"]) == 0.0


def test_refusal_rates_and_curve() -> None:
    rates = m.refusal_rates([True, False, True, False], [False, False, True, True])
    assert rates == {"refusal_accuracy": 0.5, "false_refusal_rate": 0.5}
    assert m.refusal_rates([], []) == {"refusal_accuracy": None, "false_refusal_rate": None}
    curve = m.threshold_curve([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    at = {round(c["threshold"], 3): c for c in curve}
    assert at[0.8]["refusal_accuracy"] == 1.0 and at[0.8]["false_refusal_rate"] == 0.0
    assert curve[0]["refusal_accuracy"] == 0.0 and curve[-1]["false_refusal_rate"] == 1.0


def test_percentiles_and_auroc() -> None:
    assert m.percentile([5, 1, 3, 2, 4], 50) == 3
    assert m.percentile([1, 2], 95) == 2
    assert m.percentile([], 50) is None
    assert m.auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert m.auroc([0.5, 0.5], [True, False]) == 0.5
    assert m.auroc([0.1, 0.9, 0.4, 0.6], [True, False, True, False]) == 0.0
    assert m.auroc([1.0], [True]) is None
    assert m.bigram_overlap("中国を挙げた", "中国を挙げたとされる") == 1.0
    assert m.bigram_overlap("", "x") == 0.0


# The question set --------------------------------------------------------------------------------

def briefing_text() -> str:
    path = BRIEFING if BRIEFING.exists() else CORPUS_COPY
    return path.read_text(encoding="utf-8")


def test_question_set_schema() -> None:
    qs = load_questions(QUESTIONS)
    assert validate_questions(qs, briefing_text()) == []
    assert len(qs) >= 60
    assert len({q.id for q in qs}) == len(qs)
    langs = Counter(q.lang for q in qs)
    assert langs["ja"] == langs["en"]
    assert sum(not q.answerable for q in qs) >= 15
    types = Counter(q.type for q in qs)
    for t in ("fact", "paraphrase", "multi_passage", "followup", "unanswerable", "table", "profile"):
        assert types[t] >= 2, t
    assert all(len(q.evidence) >= 2 for q in qs if q.type == "multi_passage")
    hay = m.norm(briefing_text())
    for q in qs:
        assert all(m.norm(e) in hay for e in q.evidence), q.id


def test_validation_catches_mistakes() -> None:
    qs = [Question("a", "ja", "q", True, ["存在しない文"]), Question("a", "fr", "q", False, ["x"]),
          Question("c", "en", "and then?", True, ["米国"], type="followup", followup_of="zz")]
    problems = validate_questions(qs, "米国は")
    assert any("duplicate" in p for p in problems)
    assert any("not in source" in p for p in problems)
    assert any("lang" in p for p in problems)
    assert any("unanswerable question with evidence" in p for p in problems)
    assert any("not an earlier question" in p for p in problems)


# End to end on fake answers ----------------------------------------------------------------------

def passage(cid: str, text: str, score: float) -> Passage:
    return Passage(rank=1, score=score, chunk_id=cid, doc_id="brief", title="t", section="", page=None,
                   source="corpus/brief.txt", text=text)


P1 = passage("c1", "トランプ米大統領は15日の米・アラスカでのロシアのプーチン大統領との会談で、停戦よりも和平を優先する方針に転換。", 0.9)
P2 = passage("c2", "研究分野：マクロ経済全般、CIS（特にロシア）地域事情", 0.4)


def cite(n: int, p: Passage) -> Citation:
    return Citation(n=n, chunk_id=p.chunk_id, doc_id=p.doc_id, title=p.title, section="", page=None,
                    source=p.source, text=p.text, quote=p.text[:10], start=0, end=10)


FAKE_QS = [
    Question("q1", "ja", "会談はどこで？", True, ["米・アラスカでの"], ["アラスカ"]),
    Question("q2", "ja", "それはいつ？", True, ["15日の米・アラスカ"], ["15日"], type="followup", followup_of="q1"),
    Question("q3", "en", "What is the author's name?", False, type="unanswerable"),
    Question("q4", "en", "What are the author's research fields?", True, ["マクロ経済全般"], ["macroeconomics"],
             type="profile"),
]
FAKE_ANSWERS = {
    "会談はどこで？": Answer("会談はどこで？", "ja", "会談はアラスカで行われました [1]。", False,
                            [cite(1, P1)], [P1, P2], answerer="fake"),
    "それはいつ？": Answer("それはいつ？", "ja", "15日です [2]。", False, [cite(1, P1)], [P1, P2],
                         standalone_question="アラスカの会談はいつ？", answerer="fake"),
    "What is the author's name?": Answer("What is the author's name?", "en",
                                         "The documents do not say.", True, [], [P2, P1], answerer="fake"),
    "What are the author's research fields?": Answer("What are the author's research fields?", "en",
                                                     "マクロ経済全般 [1]。", False, [cite(1, P2)], [P2, P1],
                                                     answerer="fake"),
}


class RecordingBackend(harness.ListBackend):
    def __init__(self) -> None:
        super().__init__(FAKE_ANSWERS)
        self.histories: list[list[dict[str, str]]] = []

    def ask(self, question: str, history: harness.History, top_k: int | None) -> Answer:
        self.histories.append(list(history))
        return super().ask(question, history, top_k)


def test_harness_end_to_end_on_fake_answers(tmp_path: Path) -> None:
    backend = RecordingBackend()
    records = harness.run_questions(FAKE_QS, backend, (1, 5, 10), clock=iter(range(100)).__next__)
    assert backend.histories[1] == [{"role": "user", "content": "会談はどこで？"},
                                    {"role": "assistant", "content": "会談はアラスカで行われました [1]。"}]
    by_id = {r["id"]: r for r in records}
    assert by_id["q1"]["retrieval"]["r@1"] == 1.0 and by_id["q1"]["failures"] == []
    assert by_id["q2"]["citation_valid"] is False  # [2] names no citation
    assert by_id["q4"]["retrieval"]["mrr@10"] == 1.0
    assert by_id["q4"]["language_match"] is False  # English question, Japanese answer
    assert by_id["q4"]["answer_contains"] is False
    assert all(r["latency_ms"] == 1000.0 for r in records)
    result = build_result(records, (1, 5, 10), {"set": "fake", "backend": "list", "questions": 4, "k": 10})
    allm = result["metrics"]["all"]
    assert allm["citation_validity"] == pytest.approx(2 / 3)
    assert allm["refusal_accuracy"] == 1.0 and allm["false_refusal_rate"] == 0.0
    assert allm["language_match"] == 0.75
    assert allm["evidence_recall"] == 1.0
    assert result["metrics"]["ja"]["questions"] == 2
    assert {f["id"] for f in result["failures"]} == {"q2", "q4"}
    assert result["refusal_curves"]["score"]
    written = report.write_outputs(result, tmp_path / "fake")
    names = {p.name for p in written}
    assert {"fake.json", "fake.md", "fake_by_language.png", "fake_by_type.png", "fake_refusal_curve.png"} <= names
    assert all((tmp_path / n).stat().st_size > 0 for n in names)
    saved = json.loads((tmp_path / "fake.json").read_text(encoding="utf-8"))
    assert saved["failures"] and "Failing cases (2)" in (tmp_path / "fake.md").read_text(encoding="utf-8")


def test_harness_with_the_grounding_checker() -> None:
    records = harness.run_questions(FAKE_QS[:1], harness.ListBackend(FAKE_ANSWERS), checker=harness.Checker())
    rec = records[0]
    assert rec["sentences_checked"] >= 1
    assert rec["citation_precision"] == 1.0


def test_compare_and_floors() -> None:
    old: dict[str, Any] = {"metrics": {"all": {"evidence_recall": 0.8, "p50_ms": 10.0}},
           "questions": [{"id": "a", "failures": ["x"]}, {"id": "b", "failures": []}]}
    new: dict[str, Any] = {"metrics": {"all": {"evidence_recall": 0.9, "p50_ms": 20.0}},
           "questions": [{"id": "a", "failures": []}, {"id": "b", "failures": ["y"]}]}
    text = "\n".join(report.compare(old, new))
    assert "better evidence_recall" in text and "worse  p50_ms" in text
    assert "better a: fixed: x" in text and "worse  b: y" in text
    floors = {"floors": {"all.evidence_recall": 0.95, "ja.x": None}, "ceilings": {"all.p50_ms": 15}}
    broken = report.check_floors(new["metrics"], floors)
    assert len(broken) == 2


def test_answer_json_round_trip() -> None:
    a = FAKE_ANSWERS["会談はどこで？"]
    assert harness.answer_from_json(a.to_json()).to_json() == a.to_json()


def test_cli_rejects_a_missing_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--set", str(tmp_path / "none.jsonl")]) == 2
    assert "no question set" in capsys.readouterr().out


def test_repo_floors_file_is_well_formed() -> None:
    floors = json.loads((ROOT / "eval" / "floors.json").read_text(encoding="utf-8"))
    assert "_comment" in floors
    for key in [*floors["floors"], *floors["ceilings"]]:
        group, _, name = key.partition(".")
        assert group in ("all", "ja", "en") or group.startswith("type:")
        assert name


# Shared data, retrieval evaluation and checker validation (pure parts) ---------------------------

SHARED = ROOT.parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not (SHARED / "retrieval").is_dir(), reason="no ../shared/datasets")


@needs_shared
def test_shared_set_is_a_fixed_seed_sample(tmp_path: Path) -> None:
    from assistant.evaluation.datasets import build_shared_set, main

    a, b = build_shared_set(SHARED, per_set=5), build_shared_set(SHARED, per_set=5)
    assert [q.id for q in a] == [q.id for q in b] and len(a) == 15
    assert {q.set for q in a} == {"jsquad", "xling_en2ja", "xling_ja2ja"}
    assert all(q.gold_doc and q.evidence and q.answers for q in a)
    assert validate_questions(a) == []
    assert main(["--datasets", str(SHARED), "--per-set", "2", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert len(load_questions(tmp_path / "s.jsonl")) == 6


def test_retrieval_eval_parts(tmp_path: Path) -> None:
    from assistant.evaluation import retrieval_eval as rv

    corpus = {"xsquadja-Super_Bowl_50-0": {"title": "Super_Bowl_50", "text": "スーパーボウル"},
              "jsquad-a1": {"title": "梅雨", "text": "梅雨は雨季"}}
    names = rv.write_corpus(corpus, tmp_path)
    assert sorted(names.values()) == sorted(corpus)
    assert not any("Super" in n for n in names)
    side = {json.loads((tmp_path / f"{n}.meta.json").read_text(encoding="utf-8")).get("title") for n in names}
    assert side == {"Super_Bowl_50", "梅雨"}
    rv.write_corpus(corpus, tmp_path, untitled=["xsquadja-Super_Bowl_50-0"])
    side = {json.loads((tmp_path / f"{n}.meta.json").read_text(encoding="utf-8")).get("title") for n in names}
    assert side == {None, "梅雨"}
    rows = [{"qid": str(i)} for i in range(10)]
    fit, test = rv.split_queries(rows, "fit"), rv.split_queries(rows, "test")
    assert len(fit) == len(test) == 5 and not {q["qid"] for q in fit} & {q["qid"] for q in test}
    assert rv.split_queries(rows, "fit") == fit

    by_pid = {pid: name for name, pid in names.items()}

    class FakeAssistant:
        def retrieve(self, question: str, top_k: int, mode: str) -> list[Passage]:
            order = ["jsquad-a1", "xsquadja-Super_Bowl_50-0"] if mode == "keyword" else ["xsquadja-Super_Bowl_50-0"]
            return [Passage(i + 1, 1.0, f"c{i}", by_pid[pid], "", "", None, f"/x/{by_pid[pid]}", "")
                    for i, pid in enumerate(order)]

    qs = [{"qid": "q", "question": "?", "gold_pid": "xsquadja-Super_Bowl_50-0"}]
    results = {"s": {mode: rv.evaluate(FakeAssistant(), qs, mode, names) for mode in rv.MODES}}
    assert results["s"]["keyword"]["r@1"] == 0.0 and results["s"]["keyword"]["mrr@10"] == 0.5
    assert results["s"]["dense"]["r@1"] == 1.0
    assert all(c["ok"] for c in rv.never_worse(results))
    report_ = {"meta": {"split": "all", "seed": 13, "sample": None, "top_k": 10, "passages": 2,
                        "documents_ingested": 2, "ingest_s": 1.0, "passages_per_s": 2.0, "load_s": 0.5},
               "results": results, "never_worse": rv.never_worse(results), "targets": rv.target_status(results)}
    assert "| s | dense | 1 | 1.000 |" in rv.render(report_)


def test_grounding_validation_parts() -> None:
    from assistant.evaluation import grounding_validation as gv

    text = briefing_text()
    passages = gv.split_passages(text)
    assert len(passages) > 5 and all(len(p) <= 400 for p in passages)
    assert gv.sentence_with(text, "中国を挙げた") is not None
    pairs = gv.swapped_from_briefing(text, QUESTIONS)
    assert pairs and sum(p[2] for p in pairs) * 2 == len(pairs)
    result = gv.separation(pairs, {"bigram_baseline": m.bigram_overlap})
    assert result["auroc_bigram_baseline"] > 0.9
    assert gv.verdict({"auroc_checker": 0.7, "auroc_bigram_baseline": 0.8}) == "does NOT beat the baseline"


def test_http_backend_posts_questions_and_reads_answer_json() -> None:
    import httpx

    seen: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/retrieve":
            return httpx.Response(404)
        body = json.loads(request.content)
        seen.append(body)
        assert request.headers["Authorization"] == "Bearer t0k"
        return httpx.Response(200, json=FAKE_ANSWERS[str(body["question"])].to_json())

    backend = harness.HttpBackend("http://eval.test/", token="t0k", transport=httpx.MockTransport(handle))
    records = harness.run_questions(FAKE_QS[:2], backend)
    assert seen[1]["history"] and seen[1]["top_k"] is None
    assert records[0]["retrieval"]["r@1"] == 1.0  # from the answer's own passages when /api/retrieve is absent
