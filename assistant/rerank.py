"""Query-time re-ranking of the hybrid candidates from their texts (Japanese questions).

A linear model over the two lists' scores and cheap lexical features of each candidate's text: how
much of the question's (pool-weighted) words and bigrams it holds, in its title line and its body,
its best sentence, the longest stretch of the question it repeats, how close together the matched
words stand, numbers, and whether a "when" / "how many" question meets a date or a number. Fitted
listwise on one fixed-seed half of the shared retrieval data (`eval/fit_rerank.py`), reported on the
other; weights ship in `rerank_params.json`. English questions pass through unchanged.

Cost: about 2 ms a query (one Sudachi pass over the question, substring tests over the candidates;
passages are not tokenised). `texts` are the candidates as indexed (`candidate_text`).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any

from assistant.keyword.tokenize import _QUERY_STOP, _thread_tokenizer
from assistant.text.lang import detect_language
from assistant.text.normalize import normalize_query, question_core, title_line

FEATURES = ["d_ev", "k_ev", "fused", "inv_pos", "no_dense", "no_kw", "cov_w", "cov_b", "best_sent", "lcs",
            "compact", "num_match", "atype", "top_term", "log_len", "cov_head", "cov_body"]

_KK = re.compile(r"[\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ]")
_CJK_RUN = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ]+")
_HIRA = re.compile(r"[\u3041-\u3096]")
_TRAILING_KANA = re.compile(r"[\u3041-\u3096]+$")
_NUM = re.compile(r"[0-9][0-9,.]*")
_SENT = re.compile(r"[^。!?\n]+[。!?\n]?")
_CONTENT = frozenset({"名詞", "代名詞", "形状詞", "動詞", "形容詞", "接頭辞", "接尾辞"})
# Expected answer type: a question asking when / how many, and a passage holding a date / a number.
# Coarser than `answering.answertype`, and kept: the shipped weights were fitted on these
# patterns, so moving the feature onto `answertype.asked_types` / `supplies` means refitting
# (`eval/fit_rerank.py`) and measuring again.
_TIME_Q = re.compile(r"いつ|何年|何月|何日|何世紀|何時代|西暦|何時|年代|時期")
_NUM_Q = re.compile(r"いくつ|いくら|何人|何個|何回|何度|何歳|何倍|何%|何パーセント|何メートル|何キロ|何km|どれくらい|"
                    r"どのくらい|何番|何位|何本|何台|何件|何種|何ヶ国|何か国|何か所|何校|何社|何枚|何頭|何匹|何冊|何円|何ドル|何万|何億")
_DATE_P = re.compile(r"[0-9]+年|[0-9]+月|[0-9]+日|世紀|時代|年代")
_DIGIT = re.compile(r"[0-9]")


def query_terms(query: str) -> tuple[list[str], list[str]]:
    """Content words of a search-form question as surface strings (verb/adjective stems without their
    kana endings; compounds plus their short parts), and its kanji/katakana character bigrams."""
    from sudachipy import SplitMode

    words: list[str] = []
    query = question_core(query)
    for m in _thread_tokenizer().tokenize(query, SplitMode.C):
        if m.part_of_speech()[0] not in _CONTENT:
            continue
        surface = m.surface()
        if surface in _QUERY_STOP or m.normalized_form() in _QUERY_STOP or m.dictionary_form() in _QUERY_STOP:
            continue
        s = _TRAILING_KANA.sub("", surface) if m.part_of_speech()[0] in ("動詞", "形容詞") else surface
        if not s or _HIRA.fullmatch(s) or (len(s) == 1 and not _KK.match(s) and not s.isalnum()):
            continue
        words.append(s)
        if len(surface) > 2:
            parts = m.split(SplitMode.A)
            if len(parts) > 1:
                words.extend(p.surface() for p in parts if p.part_of_speech()[0] in _CONTENT
                             and (len(p.surface()) > 1 or _KK.match(p.surface())) and p.surface() not in _QUERY_STOP)
    bigrams = [run[i:i + 2] for run in _CJK_RUN.findall(query) for i in range(len(run) - 1) if _KK.search(run[i:i + 2])]
    return list(dict.fromkeys(words)), list(dict.fromkeys(bigrams))


def _lcs(q: str, t: str, cap: int = 12) -> int:
    """Length of the longest substring of q found in t (capped)."""
    best = 0
    for i in range(len(q)):
        n = best + 1
        while i + n <= len(q) and n <= cap and q[i:i + n] in t:
            best = n
            n += 1
    return best


def _min_window(text: str, terms: list[str]) -> int:
    """Smallest span of text that holds every term once (all terms occur in text)."""
    occ = []
    for k, term in enumerate(terms):
        j = text.find(term)
        while j >= 0:
            occ.append((j, j + len(term), k))
            j = text.find(term, j + 1)
    occ.sort()
    have: dict[int, int] = {}
    best, lo = 10 ** 9, 0
    for hi in range(len(occ)):
        have[occ[hi][2]] = have.get(occ[hi][2], 0) + 1
        while len(have) == len(terms):
            best = min(best, max(o[1] for o in occ[lo:hi + 1]) - occ[lo][0])
            k = occ[lo][2]
            have[k] -= 1
            if not have[k]:
                del have[k]
            lo += 1
    return best


def features(query: str, fused: list[tuple[str, float]], cands: dict[str, Any], texts: dict[str, str],
             dense_floor: float, bm25_half: float) -> list[list[float]]:
    """One feature row (FEATURES order) per fused candidate; `query` in search form."""
    words, bigrams = query_terms(query)
    tx = [texts.get(cid, "") for cid, _ in fused]
    n = len(tx)
    # IDF within the candidate pool: a term every candidate holds tells them apart by nothing.
    widf = {w: math.log((n + 1) / (sum(w in t for t in tx) + 0.5)) for w in words}
    bidf = {b: math.log((n + 1) / (sum(b in t for t in tx) + 0.5)) for b in bigrams}
    wsum, bsum = sum(widf.values()) or 1.0, sum(bidf.values()) or 1.0
    top = max(widf, key=widf.__getitem__) if widf else None
    qnums = set(_NUM.findall(query))
    qcore = query.rstrip("。?？ ")
    want_time, want_num = bool(_TIME_Q.search(query)), bool(_NUM_Q.search(query))
    from assistant.retrieval import list_evidence  # retrieval imports this module

    evidence = list_evidence(cands, dense_floor, bm25_half)
    rows = []
    for pos, ((cid, score), t) in enumerate(zip(fused, tx, strict=True)):
        c = cands[cid]
        matched = [w for w in words if w in t]
        nl = t.find("\n")
        head, body = (t[:nl], t[nl + 1:]) if nl >= 0 else ("", t)
        best_sent = max((sum(widf[w] for w in matched if w in s) for s in _SENT.findall(t)), default=0.0) if matched else 0.0
        if len(matched) >= 2:
            core = [w for w in matched if not any(w != o and w in o for o in matched)]
            compact = min(1.0, sum(map(len, core)) / max(_min_window(t, core), 1)) if len(core) > 1 else 1.0
        else:
            compact = 1.0 if matched else 0.0
        atype = (want_time and bool(_DATE_P.search(t))) + (want_num and bool(_DIGIT.search(t)))
        rows.append([
            *evidence[cid],
            score,
            1.0 / (pos + 1),
            float(c.dense is None),
            float(c.keyword is None),
            sum(widf[w] for w in matched) / wsum if words else 0.0,
            sum(bidf[b] for b in bigrams if b in t) / bsum if bigrams else 0.0,
            best_sent / wsum,
            _lcs(qcore, t) / 12 if t else 0.0,
            compact,
            sum(x in t for x in qnums) / len(qnums) if qnums else 0.0,
            float(atype),
            float(top in matched) if top else 0.0,
            math.log(1 + len(t)) / 6,
            sum(widf[w] for w in matched if w in head) / wsum if words else 0.0,
            sum(widf[w] for w in matched if w in body) / wsum if words else 0.0,
        ])
    return rows


def candidate_text(title: str, section: str, text: str, with_title: bool = True) -> str:
    """A chunk as the indexes see it: the "title / section" line (when ingestion embeds titles), then
    the text in search form. Chunk text is already display text, so NFKC and lower case make it."""
    body = unicodedata.normalize("NFKC", text).lower()
    if not with_title:
        return body
    head = title_line(title, section).lower()
    return f"{head}\n{body}" if head else body


@lru_cache(maxsize=1)
def load_params() -> dict[str, Any]:
    """The fitted weights shipped with the package (`eval/fit_rerank.py` writes them); {} without them."""
    try:
        data: dict[str, Any] = json.loads(resources.files("assistant").joinpath("rerank_params.json").read_text("utf-8"))
    except FileNotFoundError:
        return {}
    return data


def rerank(question: str, fused: list[tuple[str, float]], cands: dict[str, Any], texts: dict[str, str],
           params: dict[str, Any]) -> list[tuple[str, float]]:
    """Re-scored candidates, best first, as (chunk_id, model score); `fused` is the hybrid ranking.
    Unchanged when the question's language has no fitted model. The caller re-applies the list-leaders
    rule."""
    model = params.get("models", {}).get(detect_language(question))
    if not model or not fused:
        return fused
    rows = features(normalize_query(question), fused, cands, texts, model["dense_floor"], model["bm25_half"])
    w = [model["weights"][f] for f in params["features"]]
    scored = [(cid, sum(a * b for a, b in zip(w, row, strict=True))) for (cid, _), row in zip(fused, rows, strict=True)]
    scored.sort(key=lambda x: -x[1])  # stable: ties keep the fused order
    return scored
