"""Evaluation output: the JSON result, the Markdown report, PNG charts, comparisons and regression floors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Goals from the grounding-evaluation issue, reported against (never lowered to be met).
TARGETS: list[tuple[str, str, str, float]] = [
    ("all", "citation_validity", ">=", 1.0),
    ("ja", "evidence_recall", ">=", 0.90),
    ("en", "evidence_recall", ">=", 0.90),
    ("all", "grounded_share", ">=", 0.95),
    ("all", "refusal_accuracy", ">=", 0.80),
    ("all", "false_refusal_rate", "<=", 0.10),
    ("all", "language_match", ">=", 1.0),
]
LOWER_IS_BETTER = {"false_refusal_rate", "p50_ms", "p90_ms", "p95_ms", "max_ms", "errors"}
CHART_METRICS = ["retrieval_r@5", "retrieval_mrr@10", "evidence_recall", "citation_validity", "citation_precision",
                 "grounded_share", "refusal_accuracy", "false_refusal_rate", "language_match", "answer_containment"]


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def target_status(metrics: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Where each issue target stands: group, metric, goal, measured value, met."""
    out = []
    for group, name, op, goal in TARGETS:
        value = metrics.get(group, {}).get(name)
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        out.append({"group": group, "metric": name, "goal": f"{op} {goal}", "value": value, "met": met})
    return out


def check_floors(metrics: Mapping[str, Mapping[str, Any]], floors: Mapping[str, Any]) -> list[str]:
    """Figures below their floor (or above their ceiling, for lower-is-better ones); keys are `group.metric`."""
    broken = []
    for section, lower in (("floors", True), ("ceilings", False)):
        for key, bound in (floors.get(section) or {}).items():
            if bound is None:
                continue
            group, _, name = key.partition(".")
            value = metrics.get(group, {}).get(name)
            if value is None:
                broken.append(f"{key}: not measured (bound {bound})")
            elif (value < bound) if lower else (value > bound):
                broken.append(f"{key}: {value:.4f} {'<' if lower else '>'} {'floor' if lower else 'ceiling'} {bound}")
    return broken


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Lines saying what got better and worse: set-level figures, then question by question."""
    lines = ["Set-level figures (old -> new):"]
    om, nm = old.get("metrics", {}).get("all", {}), new.get("metrics", {}).get("all", {})
    for key in sorted(set(om) | set(nm)):
        a, b = om.get(key), nm.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float) and a != b:
            improved = (b < a) if key in LOWER_IS_BETTER else (b > a)
            lines.append(f"  {'better' if improved else 'worse '} {key}: {a:.4g} -> {b:.4g}")
    old_q = {r["id"]: r for r in old.get("questions", [])}
    better: list[str] = []
    worse: list[str] = []
    for r in new.get("questions", []):
        prev = old_q.get(r["id"])
        if prev is None:
            continue
        was, now = set(prev.get("failures", [])), set(r.get("failures", []))
        for f in sorted(now - was):
            worse.append(f"  worse  {r['id']}: {f}")
        for f in sorted(was - now):
            better.append(f"  better {r['id']}: fixed: {f}")
    lines.append(f"Questions: {len(better)} fixed, {len(worse)} newly failing")
    return lines + better + worse


def render_markdown(result: Mapping[str, Any]) -> str:
    """The human-readable report of one run."""
    meta, metrics = result["meta"], result["metrics"]
    intro = (f"Backend `{meta.get('backend')}`, {meta.get('questions')} questions, k={meta.get('k')}, "
             f"answerer `{meta.get('answerer', '')}`, grounding checker: {meta.get('checker', 'none')}.")
    lines = [f"# Evaluation: {meta.get('set', '')}", "", intro, "",
             "## Targets", "", "| group | metric | goal | measured | met |", "|---|---|---|---|---|"]
    for t in result.get("targets", []):
        lines.append(f"| {t['group']} | {t['metric']} | {t['goal']} | {_fmt(t['value'])} | {_fmt(t['met'])} |")
    groups = ["all", "ja", "en"] + sorted(g for g in metrics if g.startswith("type:"))
    keys = [k for k in metrics.get("all", {}) if k not in ("questions",)]
    lines += ["", "## Figures", "", "| metric | " + " | ".join(groups) + " |",
              "|---|" + "---|" * len(groups)]
    lines.append("| questions | " + " | ".join(_fmt(metrics.get(g, {}).get("questions")) for g in groups) + " |")
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(_fmt(metrics.get(g, {}).get(k)) for g in groups) + " |")
    curves = result.get("refusal_curves") or {}
    if curves:
        lines += ["", "## Refusing below a threshold on a retrieval score", "",
                  "Best refusal accuracy with false refusals at most 0.10, per score of the top passage:", "",
                  "| score | threshold | refusal accuracy | false refusals |", "|---|---|---|---|"]
        for name, curve in curves.items():
            b = best_threshold(curve)
            if b:
                lines.append(f"| {name} | {b['threshold']:.4g} | {b['refusal_accuracy']:.3f} | "
                             f"{b['false_refusal_rate']:.3f} |")
    if result.get("floors_broken"):
        lines += ["", "## Regression floors broken", ""] + [f"- {b}" for b in result["floors_broken"]]
    lines += ["", f"## Failing cases ({len(result.get('failures', []))})", ""]
    for f in result.get("failures", []):
        answer = str(f.get("answer", "")).replace("\n", " ")
        lines.append(f"- **{f['id']}** ({f['lang']}, {f['type']}) {f['question']}")
        lines.append(f"  - answer: {answer[:300]}")
        lines.extend(f"  - {x}" for x in f["failures"])
    if result.get("charts"):
        lines += ["", "## Charts", ""] + [f"![{Path(c).stem}]({Path(c).name})" for c in result["charts"]]
    return "\n".join(lines) + "\n"


def best_threshold(curve: Sequence[Mapping[str, float]], max_false: float = 0.10) -> dict[str, float] | None:
    """The threshold with the best refusal accuracy whose false-refusal rate stays within `max_false`."""
    ok = [c for c in curve if c["false_refusal_rate"] <= max_false]
    return dict(max(ok, key=lambda c: (c["refusal_accuracy"], -c["false_refusal_rate"]))) if ok else None


def write_charts(result: Mapping[str, Any], base: Path) -> list[str]:
    """PNG bar charts per language and per question type, and the refusal-threshold curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = result["metrics"]
    paths: list[str] = []
    for tag, groups in (("by_language", ["all", "ja", "en"]),
                        ("by_type", sorted(g for g in metrics if g.startswith("type:")))):
        names = [k for k in CHART_METRICS if any(metrics.get(g, {}).get(k) is not None for g in groups)]
        if not names or not groups:
            continue
        fig, ax = plt.subplots(figsize=(max(8, len(names) * 1.1), 4.5))
        width = 0.8 / len(groups)
        for i, g in enumerate(groups):
            vals = [metrics.get(g, {}).get(k) or 0.0 for k in names]
            ax.bar([x + i * width for x in range(len(names))], vals, width, label=g.removeprefix("type:"))
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{result['meta'].get('set', '')}: metrics {tag.replace('_', ' ')}")
        ax.legend(fontsize=7, ncol=min(len(groups), 4))
        fig.tight_layout()
        path = base.with_name(f"{base.name}_{tag}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(str(path))
    curves = result.get("refusal_curves", {})
    if curves.get("score"):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for name, curve in curves.items():
            ax.plot([c["false_refusal_rate"] for c in curve], [c["refusal_accuracy"] for c in curve], marker=".",
                    label=f"top {name}" if name != "score" else "top passage score")
        now = result["metrics"]["all"]
        if now.get("refusal_accuracy") is not None:
            ax.scatter([now["false_refusal_rate"]], [now["refusal_accuracy"]], color="red", zorder=3,
                       label="the system's own refusals")
        ax.legend(fontsize=8)
        ax.axvline(0.10, ls=":", color="grey")
        ax.axhline(0.80, ls=":", color="grey")
        ax.set_xlabel("false-refusal rate (answerable questions refused)")
        ax.set_ylabel("refusal accuracy (unanswerable refused)")
        ax.set_title("Refusing below a threshold on a retrieval score")
        fig.tight_layout()
        path = base.with_name(f"{base.name}_refusal_curve.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(str(path))
    return paths


def write_outputs(result: dict[str, Any], base: Path, charts: bool = True) -> list[Path]:
    """Writes `<base>.json`, `<base>.md` and the charts; returns the paths written."""
    base.parent.mkdir(parents=True, exist_ok=True)
    result["charts"] = write_charts(result, base) if charts else []
    json_path, md_path = base.with_name(base.name + ".json"), base.with_name(base.name + ".md")
    json_path.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    md_path.write_text(render_markdown(result), encoding="utf-8")
    return [json_path, md_path, *map(Path, result["charts"])]
