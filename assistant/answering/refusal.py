"""The refusal rule: a logistic model over retrieval and sentence scores, fitted by `calibrate.py`.

Its parameters ship beside this module: `refusal_params_rules.json`, fitted on the rules' sentence scores (the
default), and `refusal_params.json`, fitted with the answer judge scoring the sentences (`ASSISTANT_ANSWER_JUDGE=1`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any

from assistant.answering import answertype
from assistant.types import Citation, Passage

REFUSAL_TEXT = {
    "en": "The documents do not answer this question.",
    "ja": "資料にはこの質問に答える情報がありません。",
}
# Something was found, but nothing that answers it with confidence (reason "weak_evidence …"): saying
# the documents lack it would claim more than is known; the closest passages follow.
UNSURE_TEXT = {
    "en": "No confident answer was found in the documents.",
    "ja": "資料から確かな答えは見つかりませんでした。",
}
# When the question asks for a date or a number that no quote gives (reason "asked_detail_absent (date)").
DETAIL_TEXT = {
    ("en", "date"): "The documents do not give the date asked for.",
    ("en", "number"): "The documents do not give the number asked for.",
    ("ja", "date"): "資料には、お尋ねの日付や時期が書かれていません。",
    ("ja", "number"): "資料には、お尋ねの数値が書かれていません。",
    # "asked_detail_absent (year 2030)": the quotes speak of other years.
    ("en", "year"): "Nothing found answers this for {0}: the closest passages concern other years.",
    ("ja", "year"): "お尋ねの{0}年について答える記述は見つかりませんでした（近い記述は別の年についてのものです）。",
    # "asked_detail_absent (measure interest rate)": the quotes give figures, but not of that quantity.
    ("en", "measure"): "The documents do not give the {0} asked for.",
    ("ja", "measure"): "資料には、お尋ねの{0}についての記述が見つかりませんでした。",
}
# Shown under a refusal, before the passages that came closest: they are pointers, not an answer.
NEAR_LABEL = {
    "en": "Not an answer, but the passages closest to the question:",
    "ja": "回答ではありませんが、質問に最も近い箇所です:",
}
NEAR_COUNT = 3
FEATURES = ("s_dense", "s_kw", "s_gap", "s_best", "p_kw", "p_dense", "xling", "xling_s_dense", "xling_s_gap",
            "same_s_kw", "s_judge")
PARAMS = {True: "refusal_params.json", False: "refusal_params_rules.json"}


@dataclass
class RefusalRule:
    """answerable probability = sigmoid(bias + sum(w * (x - mean) / scale)); refuse below `threshold`."""

    weights: dict[str, float]
    bias: float
    threshold: float
    mean: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def probability(self, features: dict[str, float]) -> float:
        x = expand(features)
        z = self.bias
        for name, w in self.weights.items():
            z += w * (x.get(name, 0.0) - self.mean.get(name, 0.0)) / (self.scale.get(name, 1.0) or 1.0)
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

    def refuse(self, features: dict[str, float]) -> tuple[bool, float]:
        p = self.probability(features)
        return p < self.threshold, p

    def to_json(self) -> dict[str, Any]:
        return {"weights": self.weights, "bias": self.bias, "threshold": self.threshold,
                "mean": self.mean, "scale": self.scale, "meta": self.meta}


def expand(features: dict[str, float]) -> dict[str, float]:
    """Adds the interaction terms: keyword overlap means little across languages, density more."""
    x = dict(features)
    xl = x.get("xling", 0.0)
    x["xling_s_dense"] = xl * x.get("s_dense", 0.0)
    x["xling_s_gap"] = xl * x.get("s_gap", 0.0)
    x["same_s_kw"] = (1.0 - xl) * x.get("s_kw", 0.0)
    return x


# Used only when the shipped parameters are missing: refuse unless a sentence is both close in
# meaning and (for same-language questions) shares the question's key terms.
_FALLBACK = RefusalRule(
    weights={"s_dense": 1.0, "same_s_kw": 1.0, "xling_s_dense": 0.5},
    bias=0.0, threshold=0.5,
    mean={"s_dense": 0.84, "same_s_kw": 0.3, "xling_s_dense": 0.0},
    scale={"s_dense": 0.02, "same_s_kw": 0.15, "xling_s_dense": 0.02},
    meta={"source": "built-in fallback"},
)


@lru_cache(maxsize=2)
def load_rule(judged: bool = False) -> RefusalRule:
    """The fitted rule shipped with the package for sentences scored with the judge or without, or a
    conservative built-in one."""
    try:
        raw = resources.files("assistant.answering").joinpath(PARAMS[judged]).read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return _FALLBACK
    data = json.loads(raw)
    return RefusalRule(weights=data["weights"], bias=data["bias"], threshold=data["threshold"],
                       mean=data.get("mean", {}), scale=data.get("scale", {}), meta=data.get("meta", {}))


class RefusalReason(StrEnum):
    """Why an answer is refused; the answer JSON's `refusal_reason` starts with its value."""

    NO_EVIDENCE = "no_evidence"  # nothing to weigh: no sentence of the passages found bears on it
    WEAK_EVIDENCE = "weak_evidence"  # sentences were weighed and none answers with confidence
    ASKED_DETAIL_ABSENT = "asked_detail_absent"  # the date, number, year or quantity asked for is not there


def refusal_text(language: str, reason: RefusalReason | None = None, detail: str = "") -> str:
    """The refusal in the question's language: it names the missing `detail` ("number", "year 2030",
    "measure interest rate") when that is the reason, says that no confident answer was found when
    sentences were weighed and found wanting, and that the documents do not answer only when nothing
    was there to weigh."""
    lang = language if language in REFUSAL_TEXT else "en"
    if reason is RefusalReason.WEAK_EVIDENCE:
        return UNSURE_TEXT[lang]
    if reason is not RefusalReason.ASKED_DETAIL_ABSENT:
        return REFUSAL_TEXT[lang]
    kind, _, value = detail.partition(" ")
    if kind == "measure":
        value = answertype.measure_name(value, lang)
    return DETAIL_TEXT.get((lang, kind), REFUSAL_TEXT[lang]).format(value)


def closest(passages: Sequence[Passage], sentences: Sequence[tuple[int, int, int]],
            limit: int = NEAR_COUNT) -> list[Citation]:
    """What a refusal points at: the best-scored sentences (passage index, start, end; best first, text
    that speaks to the answerer already left out), each in its passage and each sentence once (chunks
    overlap by a sentence). Several may come from one section: measured on the shared data's
    answerable questions that the rule refuses, the three best sentences held the answer for 0.774,
    the best sentence of each of three passages for 0.565."""
    seen: set[str] = set()
    picks: list[tuple[Passage, int, int]] = []
    for i, start, end in sentences:
        if 0 <= i < len(passages) and passages[i].text[start:end] not in seen:
            seen.add(passages[i].text[start:end])
            picks.append((passages[i], start, end))
            if len(picks) == limit:
                break
    return [Citation(n=n, chunk_id=p.chunk_id, doc_id=p.doc_id, title=p.title, section=p.section, page=p.page,
                     source=p.source, text=p.text, quote=p.text[s:e], start=s, end=e, date=p.date)
            for n, (p, s, e) in enumerate(picks, start=1)]
