"""The refusal rule's fit: its threshold and its figures are those of the answerer's whole decision."""

from __future__ import annotations

import random

from assistant.answering.calibrate import Example, fit, lowest_within_se, measure, refused
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


def test_thresholds_the_data_cannot_tell_apart_are_settled_for_answering() -> None:
    grid = [0.1, 0.2, 0.3, 0.4, 0.5]
    # Over 1,000 examples one standard error of 0.94 is about 0.0075.
    assert lowest_within_se(grid, [0.80, 0.935, 0.938, 0.940, 0.92], 1000) == 0.2
    assert lowest_within_se(grid, [0.80, 0.90, 0.938, 0.940, 0.92], 1000) == 0.3
    # With few examples the band widens.
    assert lowest_within_se(grid, [0.80, 0.90, 0.938, 0.940, 0.92], 30) == 0.2
