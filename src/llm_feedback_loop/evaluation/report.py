"""The evaluation report a person reads: one self-contained HTML file (inline SVG, no scripts) beside the
JSON: the metric table, the win-rate bar, the reward distributions of candidate and parent, and example
answers side by side. Every text from a model or a dataset is HTML-escaped."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_feedback_loop.evaluation.result import Evaluation

STYLE = """body{font:15px/1.5 system-ui,sans-serif;color:#1d2330;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #d9dee8;padding:.3rem .5rem;text-align:left;
vertical-align:top}th{color:#5b6476}.bar{display:flex;height:1.4rem;border-radius:4px;overflow:hidden;margin:.5rem 0}
.win{background:#1f8a4c}.tie{background:#9aa3b5}.loss{background:#c0392b}.muted{color:#5b6476}svg{max-width:100%}"""


def metric_rows(metrics: dict[str, Any]) -> str:
    rows = [
        f"<tr><th>{escape(name)}</th><td>{value:.4g}</td></tr>"
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    return "<table>" + "".join(rows) + "</table>"


def win_bar(metrics: dict[str, Any]) -> str:
    if "win_rate" not in metrics:
        return ""
    total = max(1, metrics["wins"] + metrics["ties"] + metrics["losses"])
    parts = "".join(
        f'<div class="{css}" style="width:{100 * metrics[key] / total:.1f}%" title="{metrics[key]} {key}"></div>'
        for key, css in (("wins", "win"), ("ties", "tie"), ("losses", "loss"))
    )
    return (
        f"<h2>Win rate against {escape(str(metrics.get('reference', 'the parent')))}: {metrics['win_rate']:.2f}"
        + (
            f" (95% interval {metrics['win_rate_low']:.2f}–{metrics['win_rate_high']:.2f})"
            if "win_rate_low" in metrics
            else ""
        )
        + "</h2>"
        f'<div class="bar">{parts}</div><p class="muted">{metrics["wins"]} wins, {metrics["ties"]} ties, '
        f"{metrics['losses']} losses, judged by {escape(str(metrics.get('judge', '')))}</p>"
    )


def histogram(candidate: list[float], parent: list[float], bins: int = 12) -> str:
    """Two overlaid reward histograms as inline SVG: candidate (green) and parent (grey)."""
    values = candidate + parent
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0

    def counts(series: list[float]) -> list[int]:
        found = [0] * bins
        for value in series:
            found[min(bins - 1, int((value - low) / width))] += 1
        return found

    ours, theirs = counts(candidate), counts(parent)
    tallest = max(ours + theirs) or 1

    def bar(x: float, count: int, colour: str) -> str:
        height = 150 * count / tallest
        return f'<rect x="{x}" y="{170 - height:.1f}" width="18" height="{height:.1f}" fill="{colour}"/>'

    bars = "".join(
        bar(40 + index * 40, b, "#9aa3b5") + bar(58 + index * 40, a, "#1f8a4c")
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True))
    )
    right = 40 + bins * 40
    axis = (
        f'<text x="40" y="190" font-size="11">{low:.2f}</text>'
        f'<text x="{right}" y="190" font-size="11" text-anchor="end">{high:.2f}</text>'
    )
    return (
        "<h2>Reward distributions</h2><p class='muted'>green: candidate, grey: parent</p>"
        f'<svg viewBox="0 0 {right + 40} 200" role="img">{bars}{axis}</svg>'
    )


def examples_table(examples: list[dict[str, str]]) -> str:
    if not examples:
        return ""
    with_references = any(e.get("reference") for e in examples)
    rows = "".join(
        f"<tr><td>{escape(e['prompt'])}</td><td>{escape(e['answer'])}</td>"
        + (f"<td>{escape(e.get('reference', ''))}</td>" if with_references else "")
        + "</tr>"
        for e in examples
    )
    head = "<tr><th>prompt</th><th>answer</th>" + ("<th>reference</th>" if with_references else "") + "</tr>"
    return f"<h2>Examples</h2><table>{head}{rows}</table>"


def render_report(result: dict[str, Any]) -> str:
    metrics = result["metrics"]
    distributions = (
        histogram(metrics["candidate_rewards"], metrics["parent_rewards"]) if metrics.get("candidate_rewards") else ""
    )
    data = result["data"]
    title = escape(result["model"])
    source = f"{data['rows']} {escape(data['kind'])} rows of {escape(data['path'])}, {escape(result['evaluated_at'])}"
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Evaluation of {title}</title>"
        f"<style>{STYLE}</style></head><body><h1>Evaluation of {title}</h1><p class='muted'>{source}</p>"
        f"<h2>Metrics</h2>{metric_rows(metrics)}{win_bar(metrics)}{distributions}"
        f"{examples_table(metrics.get('examples', []))}</body></html>\n"
    )


def write_reports(evaluation: Evaluation, out: Path | None = None) -> tuple[Path, Path]:
    """Write the JSON report to `out` (default: evaluations/MODEL-TIME.json) and the HTML one beside it;
    returns (JSON path, HTML path)."""
    result = evaluation.report()
    out = out or Path("evaluations") / f"{evaluation.model.replace('/', '_')}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    html = out.with_suffix(".html")
    html.write_text(render_report(result), encoding="utf-8")
    return out, html
