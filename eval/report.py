"""results.json and report.html of an evaluation, from its episode store alone (so also of a partial one).

The page reuses the training report's parts (trainer.report): its style, chart, episode view and
screen annotation; it adds the tables of repeated runs and one collapsible viewer per episode.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from droidrl.eval.stats import summarise_episodes
from droidrl.trainer.report import STYLE, EpisodeView, TurnView, attach_screens, episode_html, line_chart

RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"
REPORT_FILES = "report_files"  # the report's screens when there are too many to embed
INLINE_TURNS = 1500  # screens embedded in report.html at most (~27 kB each)
EVAL_STYLE = """
details.ep{background:#fff;border-radius:6px;margin:4px 0;padding:2px 8px}
details.ep>summary{cursor:pointer;font-size:13px} details.ep .episode{margin:6px 0;border-left-width:3px}
td.ok{color:#228833} td.bad{color:#cc3311} td a{text-decoration:none;color:inherit}
.meta td{text-align:left}
"""


def build_results(meta: dict[str, Any], records: Sequence[dict[str, Any]], planned: int) -> dict[str, Any]:
    """The results document: the evaluation's settings (`meta`), progress and every figure of stats."""
    runs = list(range(int(meta["runs"])))
    results = dict(meta)
    results["planned_episodes"] = planned
    results["finished_episodes"] = len(records)
    results["complete"] = len(records) >= planned
    results |= summarise_episodes(records, runs)
    return results


def write_results(out: Path, results: dict[str, Any]) -> Path:
    """<out>/results.json, replaced atomically."""
    return _replace(Path(out) / RESULTS_FILE, json.dumps(results, indent=2, sort_keys=False) + "\n")


def _replace(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


# ---- tables -----------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _ci(interval: Sequence[float] | None) -> str:
    return "–" if interval is None else f"{interval[0]:.1%} – {interval[1]:.1%}"


def summary_table(results: dict[str, Any]) -> str:
    """Overall and per difficulty: mean over runs with its t CI, pooled rate with its Wilson CI, each run."""
    runs = [str(r) for r in range(int(results["runs"]))]
    head = (
        "<tr><th></th><th>episodes</th><th>mean of runs</th><th>95% CI (t, runs)</th><th>pooled</th>"
        "<th>95% CI (Wilson)</th>" + "".join(f"<th>run {r}</th>" for r in runs) + "</tr>"
    )
    rows = [head]
    slices = [("all", results["overall"]), *results["by_difficulty"].items()]
    for name, figures in slices:
        per_run = "".join(
            f"<td>{_pct(figures['runs'][r]['success_rate'])} <small>({figures['runs'][r]['successes']}/"
            f"{figures['runs'][r]['episodes']})</small></td>"
            if r in figures["runs"]
            else "<td>–</td>"
            for r in runs
        )
        rows.append(
            f'<tr><td class="name">{html.escape(name)}</td><td>{figures["episodes"]}</td>'
            f"<td><b>{_pct(figures['run_mean'])}</b></td><td>{_ci(figures['run_t95'])}</td>"
            f"<td>{_pct(figures['success_rate'])}</td><td>{_ci(figures['wilson95'])}</td>{per_run}</tr>"
        )
    return '<table class="summary">' + "".join(rows) + "</table>"


def task_table(results: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """Per task: difficulty, successes, Wilson CI, and each run's outcome linking to its episode."""
    runs = list(range(int(results["runs"])))
    by_task: dict[str, dict[int, list[dict[str, Any]]]] = {}
    difficulty: dict[str, str] = {}
    for record in records:
        by_task.setdefault(record["template"], {}).setdefault(int(record["run"]), []).append(record)
        difficulty[record["template"]] = record.get("difficulty", "")
    head = "<tr><th>task</th><th>difficulty</th><th>success</th><th>95% CI (Wilson)</th>"
    rows = [head + "".join(f"<th>run {r}</th>" for r in runs) + "</tr>"]
    for task, figures in results["by_task"].items():
        cells = []
        for run in runs:
            marks = [
                f'<a href="#{anchor(r)}" title="{html.escape(r["end_reason"])}">{"✔" if r["success"] else "✘"}</a>'
                for r in sorted(by_task.get(task, {}).get(run, []), key=lambda r: r["seed"])
            ]
            cls = "ok" if marks and all("✔" in m for m in marks) else "bad"
            cells.append(f'<td class="{cls}">{" ".join(marks) or "–"}</td>')
        rows.append(
            f'<tr><td class="name">{html.escape(task)}</td><td>{html.escape(difficulty.get(task, ""))}</td>'
            f"<td>{figures['successes']}/{figures['episodes']} ({_pct(figures['success_rate'])})</td>"
            f"<td>{_ci(figures['wilson95'])}</td>{''.join(cells)}</tr>"
        )
    return '<table class="tasks">' + "".join(rows) + "</table>"


def runs_chart(results: dict[str, Any]) -> str:
    """Success rate of each run, overall and per difficulty (the run-to-run drift at a glance)."""
    runs = int(results["runs"])
    series: dict[str, list[tuple[float, float]]] = {}
    for name, figures in [("all", results["overall"]), *results["by_difficulty"].items()]:
        points = [(float(r), v["success_rate"]) for r, v in ((int(k), v) for k, v in figures["runs"].items())]
        if points:
            series[name] = sorted(points)
    if not series:
        return ""
    return line_chart("success rate per run", series, rate=True, x_label="run", x_max=max(1.0, runs - 1.0))


# ---- episodes ---------------------------------------------------------------------------------------------


def anchor(record: dict[str, Any]) -> str:
    """The HTML id of an episode's viewer."""
    safe = "".join(c if c.isalnum() else "-" for c in f"{record['task']}-{record['seed']}")
    return f"ep-r{record['run']}-{safe}"


def episode_view(record: dict[str, Any], out: Path) -> EpisodeView:
    """A stored episode as the training report's EpisodeView (score under the protocol as its reward)."""
    outcome = f"{record['end_reason']}; checker {record['reward']:g}"
    if record.get("answer") is not None:
        outcome += f"; answer {record['answer']!r}"
    view = EpisodeView(
        source=f"run {record['run']}",
        step=int(record["run"]),
        episode_id=record["episode_id"],
        task_id=record["task_id"],
        template=record["template"],
        difficulty=record.get("difficulty", ""),
        goal=record["goal"],
        reward=float(record["score"]),
        success=bool(record["success"]),
        end_reason=outcome,
        records=out / "episodes.jsonl",
    )
    screens = record.get("screens") or []
    for i, turn in enumerate(record["turns"]):
        view.turns.append(TurnView(turn["action_text"], turn["action"], turn["valid"], turn["reason"], turn["app"]))
        screen = screens[i] if i < len(screens) else None
        view.images.append([screen] if screen else [])
    return view


def episodes_section(records: Sequence[dict[str, Any]], out: Path, inline_turns: int = INLINE_TURNS) -> str:
    """One collapsible viewer per episode, grouped by task; each screen with its action drawn.

    Up to `inline_turns` screens in all are embedded in the page; a larger evaluation (AndroidWorld's 116 tasks
    x 3 runs is ~5000 screens, ~140 MB inline) writes them to <out>/report_files/ and links them, so the page
    stays light and must be opened from its folder.
    """
    if not records:
        return "<p>No finished episode yet.</p>"
    ordered = sorted(records, key=lambda r: (r["template"], r["seed"], r["run"]))
    inline = sum(len(r["turns"]) for r in ordered) <= inline_turns
    parts = []
    for record in ordered:
        view = episode_view(record, out)
        if view.images and all(view.images):
            attach_screens([view], replay=False)  # one episode at a time: only its thumbnails in memory
        src = None if inline else _file_src(out, anchor(record))
        mark = "✔" if record["success"] else "✘"
        summary = (
            f"{mark} {html.escape(record['task_id'])} · run {record['run']} · score {record['score']:g} · "
            f"{record['length']} turns · {html.escape(record['end_reason'])}"
        )
        body = episode_html(view, src)
        parts.append(f'<details class="ep" id="{anchor(record)}"><summary>{summary}</summary>{body}</details>')
    return "\n".join(parts)


def _file_src(out: Path, name: str):
    """An image_src for episode_html that writes each annotated screen under <out>/report_files/."""
    folder = Path(out) / REPORT_FILES
    folder.mkdir(exist_ok=True)

    def src(turn: int, png: bytes) -> str:
        path = folder / f"{name}-{turn:03d}.png"
        path.write_bytes(png)
        return f"{REPORT_FILES}/{path.name}"

    return src


def meta_table(results: dict[str, Any]) -> str:
    protocol = results["protocol"]
    rows = [
        ("policy", results.get("policy", "")),
        ("protocol", f"{protocol['name']}: {protocol['summary']}"),
        ("suite", f"{results['suite']} ({results['instances']} instances, task seed {results['task_seed']})"),
        ("runs", str(results["runs"])),
        ("episodes", f"{results['finished_episodes']} of {results['planned_episodes']}"),
        ("settings", ", ".join(f"{k}={v}" for k, v in results.get("settings", {}).items())),
    ]
    if results.get("endpoint_api"):  # how the policy's input reached an endpoint (screenshots or not)
        rows.append(("endpoint input", results["endpoint_api"]))
    rows += [("deviation", d) for d in results.get("deviations", [])]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'


def render_report(
    results: dict[str, Any], records: Sequence[dict[str, Any]], out: Path, inline_turns: int = INLINE_TURNS
) -> str:
    """The page: settings, the runs chart, the summary and per-task tables, and every episode's viewer."""
    status = "" if results["complete"] else '<p class="partial"><b>Partial:</b> the evaluation has not finished.</p>'
    overall = results["overall"]
    headline = (
        f"<p>Success rate <b>{_pct(overall['run_mean'])}</b> (mean of {len(overall['runs'])} runs; 95% CI "
        f"{_ci(overall['run_t95'])} over runs, {_ci(overall['wilson95'])} Wilson over {overall['episodes']} episodes)."
        "</p>"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>droidrl eval {html.escape(out.name)}</title>
<style>{STYLE}{EVAL_STYLE}</style></head>
<body><h1>droidrl eval: {html.escape(str(results.get("policy", "")))}</h1>
{status}{headline}
{meta_table(results)}
<h2>Success rate</h2>
<div class="charts">{runs_chart(results)}</div>
{summary_table(results)}
<h2>Tasks</h2>
{task_table(results, records)}
<h2>Episodes</h2>
<p>Every episode, by task; open one to see each screen with the action taken on it (circle: tap, line: swipe), the
model's thinking and answer, and whether the action was valid.</p>
{episodes_section(records, out, inline_turns)}
<p><small>Written {time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())} from episodes.jsonl.</small></p>
</body></html>
"""


def write_report(
    out: Path, results: dict[str, Any], records: Sequence[dict[str, Any]], inline_turns: int = INLINE_TURNS
) -> Path:
    """<out>/report.html, replaced atomically (screens embedded up to `inline_turns`, else in report_files/)."""
    return _replace(Path(out) / REPORT_FILE, render_report(results, records, Path(out), inline_turns))
