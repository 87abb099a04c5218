"""Evaluation metrics as pure, deterministic functions; each docstring is the metric's definition.

Text comparisons use `norm`: NFKC, then every white-space character removed, so a phrase matches the
briefing whatever the line wrapping. The README in `eval/questions/` repeats these definitions.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

_WS = re.compile(r"\s+")
# [1], [1, 2], [1][2], ［１］ (full width is NFKC-folded before matching)
_MARKER = re.compile(r"\[(\d+(?:\s*[,、，]\s*\d+)*)\]")
_QUOTED = re.compile(r"「[^」]*」|『[^』]*』|“[^”]*”|\"[^\"]*\"")
_KANA_KANJI = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z]")


def norm(text: str) -> str:
    """NFKC, lower-cased Latin, all white space removed: the form every containment test uses."""
    return _WS.sub("", unicodedata.normalize("NFKC", text)).lower()


def contains_any(text: str, needles: Iterable[str]) -> bool:
    """True when `text` contains at least one needle, both normalised."""
    hay = norm(text)
    return any(norm(n) and norm(n) in hay for n in needles)


# Retrieval ---------------------------------------------------------------------------------------

def ranking_metrics(hits: Sequence[frozenset[int] | set[int]], n_items: int,
                    ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@k, MRR@10 and nDCG@10 of one ranked list; `hits[i]` are the gold items the (i+1)-th result covers.

    R@k: share of the `n_items` gold items covered within the top k. MRR@10: 1/rank of the first result
    covering any item (0 if none in the top 10). nDCG@10: a result's gain is the number of items it
    covers first (an item counts once); the ideal places one item per rank; capped at 1.
    """
    if n_items <= 0:
        return {}
    out: dict[str, float] = {}
    for k in ks:
        covered: set[int] = set()
        for h in hits[:k]:
            covered |= set(h)
        out[f"r@{k}"] = len(covered) / n_items
    out["mrr@10"] = next((1.0 / (i + 1) for i, h in enumerate(hits[:10]) if h), 0.0)
    seen: set[int] = set()
    dcg = 0.0
    for i, h in enumerate(hits[:10]):
        new = set(h) - seen
        seen |= new
        dcg += len(new) / math.log2(i + 2)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(n_items, 10)))
    out["ndcg@10"] = min(1.0, dcg / ideal)
    return out


def evidence_hits(passages: Sequence[str], evidence: Sequence[str]) -> list[frozenset[int]]:
    """For each ranked passage text, the indexes of the evidence strings it contains (normalised)."""
    ev = [norm(e) for e in evidence]
    return [frozenset(i for i, e in enumerate(ev) if e and e in norm(p)) for p in passages]


def doc_hits(doc_keys: Sequence[str], gold: str) -> list[frozenset[int]]:
    """Ranked documents (passages collapsed to distinct documents, first occurrence kept) against one gold id."""
    distinct = list(dict.fromkeys(doc_keys))
    return [frozenset({0}) if d == gold else frozenset() for d in distinct]


# Citations ---------------------------------------------------------------------------------------

def citation_markers(answer: str) -> list[int]:
    """Every citation number written in the answer, in order (`[1]`, `[1, 2]`, `[1][3]`)."""
    out: list[int] = []
    for m in _MARKER.finditer(unicodedata.normalize("NFKC", answer)):
        out.extend(int(x) for x in re.split(r"[,、，]", m.group(1)))
    return out


def citation_validity(answer: str, citations: Mapping[int, str], retrieved_ids: Iterable[str]) -> bool:
    """Valid when every `[n]` in the answer names a given citation (n -> chunk id) whose chunk was retrieved.

    An answer without markers is valid (nothing claims a source it does not have).
    """
    retrieved = set(retrieved_ids)
    return all(n in citations and citations[n] in retrieved for n in citation_markers(answer))


def evidence_recall(cited_texts: Sequence[str], evidence: Sequence[str]) -> float:
    """Share of the gold evidence strings that lie (normalised) in at least one cited passage."""
    if not evidence:
        return 0.0
    joined = [norm(t) for t in cited_texts]
    return sum(1 for e in evidence if any(norm(e) in t for t in joined)) / len(evidence)


def citation_precision(cited_relevant: Sequence[bool], cited_supporting: Sequence[bool]) -> float | None:
    """Share of cited passages that contain gold evidence or support the sentence citing them; None if none cited."""
    if not cited_relevant:
        return None
    good = [a or b for a, b in zip(cited_relevant, cited_supporting, strict=True)]
    return sum(good) / len(good)


# Language and correctness ------------------------------------------------------------------------

def strip_quotes_and_citations(text: str) -> str:
    """The framing text: quotations in 「」『』“”"" and citation markers removed."""
    return _MARKER.sub("", _QUOTED.sub("", unicodedata.normalize("NFC", text)))


def detect_language(text: str) -> str:
    """'ja' when the framing text's kana/kanji count is at least half its Latin letter count, 'en' when it
    has Latin letters otherwise, '' when it has neither. Quotes and citations are ignored."""
    frame = strip_quotes_and_citations(text)
    ja = len(_KANA_KANJI.findall(frame))
    latin = len(_LATIN.findall(frame))
    if ja and ja * 2 >= latin:
        return "ja"
    return "en" if latin else ""


def answer_text_for_matching(answer: str) -> str:
    """The answer without citation markers, for correctness checks."""
    return _MARKER.sub("", answer)


def containment(answer: str, golds: Sequence[str]) -> bool:
    """True when some gold answer string occurs in the answer, both normalised."""
    return contains_any(answer_text_for_matching(answer), golds)


def char_f1(answer: str, golds: Sequence[str]) -> float:
    """Best character-multiset F1 of the normalised answer against any gold answer (SQuAD F1 on characters)."""
    pred = Counter(norm(answer_text_for_matching(answer)))
    best = 0.0
    for gold in golds:
        ref = Counter(norm(gold))
        same = sum((pred & ref).values())
        if not same:
            continue
        p, r = same / sum(pred.values()), same / sum(ref.values())
        best = max(best, 2 * p * r / (p + r))
    return best


# Refusal, latency, separation --------------------------------------------------------------------

def refusal_rates(refused: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float | None]:
    """Refusal accuracy (share of unanswerable questions refused) and false-refusal rate (answerable refused)."""
    un = [r for r, a in zip(refused, answerable, strict=True) if not a]
    an = [r for r, a in zip(refused, answerable, strict=True) if a]
    return {
        "refusal_accuracy": sum(un) / len(un) if un else None,
        "false_refusal_rate": sum(an) / len(an) if an else None,
    }


def threshold_curve(scores: Sequence[float], answerable: Sequence[bool]) -> list[dict[str, float]]:
    """Refusal accuracy and false refusals if the system refused whenever `score < t`, for every distinct t.

    The thresholds are the distinct scores plus one above the maximum (refuse everything).
    """
    pairs = list(zip(scores, answerable, strict=True))
    n_un = sum(1 for _, a in pairs if not a)
    n_an = len(pairs) - n_un
    cuts = sorted(set(scores))
    cuts.append((cuts[-1] + 1e-6) if cuts else 0.0)
    curve = []
    for t in cuts:
        ref_un = sum(1 for s, a in pairs if not a and s < t)
        ref_an = sum(1 for s, a in pairs if a and s < t)
        curve.append({
            "threshold": t,
            "refusal_accuracy": ref_un / n_un if n_un else 0.0,
            "false_refusal_rate": ref_an / n_an if n_an else 0.0,
        })
    return curve


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100) of the values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(ms: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p95 and max of latencies in milliseconds (nearest rank)."""
    return {"p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90), "p95_ms": percentile(ms, 95),
            "max_ms": max(ms) if ms else None}


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance a random positive outscores a random negative (ties count 1/2)."""
    pos = sorted(s for s, p in zip(scores, positive, strict=True) if p)
    neg = sorted(s for s, p in zip(scores, positive, strict=True) if not p)
    if not pos or not neg:
        return None
    # rank-sum with average ranks for ties (Mann-Whitney U)
    allv = sorted((s, i) for i, s in enumerate(list(pos) + list(neg)))
    ranks = [0.0] * len(allv)
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1][0] == allv[i][0]:
            j += 1
        for m in range(i, j + 1):
            ranks[allv[m][1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = sum(ranks[: len(pos)])
    u = r_pos - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def bigram_overlap(claim: str, source: str) -> float:
    """Share of the claim's distinct character bigrams (normalised) that also occur in the source."""
    c, s = norm(claim), norm(source)
    cb = {c[i : i + 2] for i in range(len(c) - 1)}
    if not cb:
        return 0.0
    sb = {s[i : i + 2] for i in range(len(s) - 1)}
    return len(cb & sb) / len(cb)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None
