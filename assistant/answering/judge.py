"""The answer judge at question time: a cross-encoder's logit that a sentence, read in its context, answers.

The graph is the one `assistant.judgebuild` assembles (int8 ONNX); it reads one pair per row,
`query: <question>` and `passage: <context>: <sentence>`, cut exactly as it was fitted, plus the bi-encoder's
cosine of the question and that passage text, which the judge refines rather than replaces.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.settings import Settings

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
CLS, SEP, PAD = 0, 2, 1


def passage_text(context: str, sentence: str) -> str:
    """The judge's passage side: the sentence after its context (document title, list label, table header)."""
    return f"{context}: {sentence}" if context else sentence


def pair_ids(tok: Any, question: str, passages: Sequence[str], max_tokens: int,
             max_question_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask of (question, passage) pairs, `<s> query: q </s></s> passage: p </s>`, the
    question cut to `max_question_tokens` and the pair to `max_tokens`, padded: the one input format, for
    fitting and for answering."""
    q = tok.encode(QUERY_PREFIX + question, add_special_tokens=False).ids[:max_question_tokens]
    rows = []
    for text in passages:
        s = tok.encode(PASSAGE_PREFIX + text, add_special_tokens=False).ids
        rows.append([CLS, *q, SEP, SEP, *s[: max_tokens - len(q) - 4], SEP])
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), PAD, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


class AnswerJudge:
    """Scores (question, passage text) pairs; thread-safe (onnxruntime sessions are)."""

    def __init__(self, folder: Path, threads: int = 0) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        from assistant.judgebuild import ONNX_INT8, SPEC_FILE

        self.spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        fit = self.spec["input"]
        self.max_tokens = int(fit["max_tokens"])
        self.max_question_tokens = int(fit["max_question_tokens"])
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.no_truncation()
        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / ONNX_INT8), options, providers=["CPUExecutionProvider"])
        calibration = self.spec.get("calibration", {})
        self.a = float(calibration.get("a", 1.0))
        self.b = float(calibration.get("b", 0.0))

    def encode(self, question: str, passages: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return pair_ids(self.tok, question, passages, self.max_tokens, self.max_question_tokens)

    def logits(self, question: str, passages: Sequence[str], cos: Sequence[float] | np.ndarray) -> np.ndarray:
        """The judge's logit per passage text (higher: more likely to answer)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        ids, mask = self.encode(question, passages)
        out = self.session.run(["logit"], {"input_ids": ids, "attention_mask": mask,
                                           "cos": np.asarray(cos, dtype=np.float32)})
        return np.asarray(out[0], dtype=np.float32).reshape(-1)

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """The calibrated probability that a sentence answers (Platt scaling fitted on fit-half data)."""
        return 1.0 / (1.0 + np.exp(-(self.a * logits + self.b)))


_CACHE: dict[str, AnswerJudge] = {}
_LOCK = threading.Lock()


def load_judge(settings: Settings) -> AnswerJudge:
    """The process-wide judge for `settings.model_dir`, assembled on first use if the set-up has not."""
    from assistant.judgebuild import build_judge, judge_folder

    key = str(judge_folder(settings.model_dir).resolve())
    with _LOCK:
        if key not in _CACHE:  # checked and built once per process, not for every pipeline
            _CACHE[key] = AnswerJudge(build_judge(settings.model_dir), settings.embed_threads)
        return _CACHE[key]


# The judge reads only the best candidates by the cheap scores (similarity and shared words): beyond about a
# dozen, the answer is almost never there, and each pair costs about 7 ms on two cores.
JUDGE_CANDIDATES = 12
# A sentence the judge did not read stays below every one it did.
UNREAD_PENALTY = 1.0


def rescore(judge: AnswerJudge, question: str, texts: Sequence[str], dense: Sequence[float] | np.ndarray,
            prior: Sequence[float], limit: int = JUDGE_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """Scores on the bi-encoder's cosine scale, `(logit - bias) / scale`, so that margins between sentences keep
    their meaning: the judge's for the `limit` best by `prior`, `prior - UNREAD_PENALTY` for the rest. Also
    returns each sentence's probability of answering (0 for the unread)."""
    prior_arr = np.asarray(prior, dtype=np.float32)
    order = np.argsort(-prior_arr, kind="stable")[:limit]
    scores = prior_arr - UNREAD_PENALTY
    probability = np.zeros(len(prior_arr), dtype=np.float32)
    if len(order):
        logits = judge.logits(question, [texts[i] for i in order], [float(dense[i]) for i in order])
        head = judge.spec["head"]
        scores[order] = (logits - float(head["bias"])) / float(head["scale"])
        probability[order] = judge.probability(logits)
    return scores, probability
