"""report.html for a training run: success rate over the RL steps (an inline SVG chart) and the evaluation table."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from droidrl.trainer.evaluation import EvalResult, difference_interval

WIDTH, HEIGHT, PAD = 720, 300, 44


def _x(step: float, last: int) -> float:
    return PAD + (WIDTH - 2 * PAD) * step / max(last, 1)


def _y(rate: float) -> float:
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * rate


def chart(history: Sequence[dict[str, float]], evals: Sequence[EvalResult]) -> str:
    """An SVG: the rollout success rate of every step (line) and each evaluation with its 95% CI (bars)."""
    last = max([len(history)] + [e.step for e in evals] + [1])
    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg" font-size="11">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="4" y="{y + 4}">{tick:.0%}</text>')
    for step in range(0, last + 1, max(1, last // 10)):
        parts.append(f'<text x="{_x(step, last) - 4}" y="{HEIGHT - PAD + 16}">{step}</text>')
    parts.append(f'<text x="{WIDTH / 2 - 20}" y="{HEIGHT - 6}">RL step</text>')
    points = [
        f"{_x(i + 1, last):.1f},{_y(row['rollout/success_rate']):.1f}"
        for i, row in enumerate(history)
        if "rollout/success_rate" in row
    ]
    if points:
        parts.append(f'<polyline fill="none" stroke="#4477aa" stroke-width="2" points="{" ".join(points)}"/>')
    for result in evals:
        low, high = result.interval
        x = _x(result.step, last)
        parts.append(f'<line x1="{x}" x2="{x}" y1="{_y(low)}" y2="{_y(high)}" stroke="#cc3311" stroke-width="2"/>')
        parts.append(f'<circle cx="{x}" cy="{_y(result.rate)}" r="4" fill="#cc3311"/>')
    parts.append(f'<text x="{PAD}" y="14" fill="#4477aa">training rollouts (success rate per step)</text>')
    parts.append(f'<text x="{PAD + 260}" y="14" fill="#cc3311">evaluation (95% Wilson CI)</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def eval_table(evals: Sequence[EvalResult]) -> str:
    rows = ["<tr><th>step</th><th>success</th><th>95% CI</th><th>episodes</th><th>by difficulty</th></tr>"]
    for result in evals:
        low, high = result.interval
        split = ", ".join(f"{k} {w}/{t}" for k, (w, t) in sorted(result.by_difficulty.items()))
        rows.append(
            f"<tr><td>{result.step}</td><td>{result.rate:.1%}</td><td>{low:.1%} - {high:.1%}</td>"
            f"<td>{result.episodes}</td><td>{html.escape(split)}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """The RL steps' rows of <run_dir>/metrics.jsonl (a resumed run's included), in step order."""
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    by_step = {int(row["step"]): row for row in rows if "version" in row}
    return [by_step[step] for step in sorted(by_step)]


def write_report(run_dir: Path, evals: Sequence[EvalResult]) -> Path:
    """Write <run_dir>/report.html from metrics.jsonl and `evals`; returns its path."""
    history = read_history(run_dir)
    summary = ""
    if len(evals) >= 2 and evals[0].step == 0:
        first, final = evals[0], evals[-1]
        low, high = difference_interval((first.successes, first.episodes), (final.successes, final.episodes))
        summary = (
            f"<p>Success rate {first.rate:.1%} before RL, {final.rate:.1%} after {final.step} steps: "
            f"{final.rate - first.rate:+.1%} (95% CI {low:+.1%} to {high:+.1%}).</p>"
        )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>droidrl run {html.escape(run_dir.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}</style></head>
<body><h1>droidrl run {html.escape(str(run_dir))}</h1>
{summary}
{chart(history, evals)}
<h2>Evaluations</h2>
{eval_table(evals)}
<p>Per-step metrics: metrics.jsonl; evaluations by task: evals.json; trained turns: rollouts/.</p>
</body></html>
"""
    path = run_dir / "report.html"
    path.write_text(page)
    return path
