"""The refusal rule's fit: its threshold and its figures are those of the answerer's whole decision."""

from __future__ import annotations

import random

from assistant.answering.calibrate import Example, fit, measure, refused
from assistant.answering.refusal import FEATURES


def _example(i: int, label: int, strength: float, vetoed: bool = False) -> Example:
    rng = random.Random(i)
    features = {f: strength + rng.gauss(0, 0.3) for f in FEATURES if f not in ("xling", "xling_s_dense", "xling_s_gap",
                                                                                  "same_s_kw")}
    features["xling"] = 0.0
    return Example(f"q{i}", "set", label, features, vetoed)


def test_the_figures_count_the_vetoes_as_refusals() -> None:
    answerable = [_example(i, 1, 1.0) for i in range(60)]
    weak = [_example(100 + i, 0, 0.0) for i in range(40)]
    # Unanswerable questions that look answerable but that a veto (a missing date, say) refuses anyway.
    vetoed = [_example(200 + i, 0, 1.0, vetoed=True) for i in range(40)]
    rule = fit(answerable + weak + vetoed)
    assert all(refused(rule, e) for e in vetoed)
    figures = measure(rule, answerable + weak + vetoed)["all"]
    assert figures["false_refusal"] <= 0.05, figures
    assert figures["false_answer"] <= 0.05, figures
    # Judged without the vetoes, the same examples would have forced a trade-off.
    plain = [Example(e.qid, e.group, e.label, e.features) for e in vetoed]
    alone = measure(rule, answerable + weak + plain)["all"]
    assert alone["false_answer"] > 0.3, alone
