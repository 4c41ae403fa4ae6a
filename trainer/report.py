"""report.html for a training run: curves, evaluation tables with CIs, and sampled policy episodes, in one file.

Everything comes from what the run already wrote (metrics.jsonl, evals.json, rollouts/*.parquet and
evals/*.parquet with their PNGs), so `write_report(run_dir)` also works on a finished or interrupted
run. The page is self-contained: inline SVG charts and images as data: URIs, no scripts, no network.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from droidrl.trainer.evaluation import EvalResult, difference_interval, wilson_interval

WIDTH, HEIGHT, PAD = 600, 240, 44
LEGEND = 150  # right margin for the series names
COLORS = ("#4477aa", "#cc3311", "#228833", "#ccbb44", "#aa3377", "#66ccee", "#ee7733", "#555555")
# The learner's loss statistics worth a chart, in the order shown; any that metrics.jsonl lacks is skipped.
TRAIN_KEYS = (
    "train/loss",
    "train/pg_loss",
    "train/kl",
    "train/entropy",
    "train/clip_frac",
    "train/grad_norm",
    "is/weight_mean",
    "rollout/reward_mean",
)
THUMB_WIDTH = 270  # screenshots are shown at 180 px; the extra pixels keep them sharp on zoom
EPISODES_PER_SOURCE = 4  # successes and failures sampled for the viewer from each source


# ---- charts -------------------------------------------------------------------------------------------


def line_chart(
    title: str,
    series: dict[str, list[tuple[float, float]]],
    rate: bool = False,
    x_label: str = "RL step",
    x_max: float = 1.0,
    from_zero: bool = False,
) -> str:
    """An SVG line chart of named (x, y) series; `rate` fixes the y axis to 0-100%.

    Points are small squares; circles are left to evaluations (see `success_chart`).
    """
    points = [p for values in series.values() for p in values]
    if not points and not rate:
        return ""
    x_max = max([x_max] + [x for x, _ in points])
    if rate:
        y_min, y_max = 0.0, 1.0
    else:
        y_min, y_max = min(y for _, y in points), max(y for _, y in points)
        if from_zero:
            y_min = min(0.0, y_min)
        if y_max - y_min < 1e-12:
            y_min, y_max = y_min - 1.0, y_max + 1.0

    def sx(x: float) -> float:
        return PAD + (WIDTH - PAD - LEGEND) * x / x_max

    def sy(y: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (y - y_min) / (y_max - y_min)

    # Enough significant digits that neighbouring ticks differ (a ratio near 1.0 moves in the 4th digit).
    digits = 3 + max(0, int(math.log10(max(abs(y_min), abs(y_max), 1e-12) / (y_max - y_min))))
    parts = [
        f'<svg class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="sans-serif">',
        f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i in range(5):
        value = y_min + (y_max - y_min) * i / 4
        y = sy(value)
        label = f"{value:.0%}" if rate else f"{value:.{digits}g}"
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - LEGEND}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        parts.append(f'<text x="2" y="{y + 4:.1f}">{label}</text>')
    for step in sorted({round(x_max * i / 4) for i in range(5)}):
        parts.append(f'<text x="{sx(step) - 4:.1f}" y="{HEIGHT - PAD + 16}">{step}</text>')
    parts.append(f'<text x="{(WIDTH - LEGEND) / 2}" y="{HEIGHT - 8}">{html.escape(x_label)}</text>')
    for i, (name, values) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        if len(values) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        for x, y in values:
            parts.append(f'<rect x="{sx(x) - 2:.1f}" y="{sy(y) - 2:.1f}" width="4" height="4" fill="{color}"/>')
        label = html.escape(_short(name))
        parts.append(f'<text x="{WIDTH - LEGEND + 8}" y="{40 + 14 * i}" fill="{color}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def success_chart(history: Sequence[dict[str, float]], evals: Sequence[EvalResult]) -> str:
    """Rollout success rate per step, overall and per difficulty; each evaluation as a dot with its 95% CI."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in history:
        for key, value in row.items():
            if key == "rollout/success_rate" or key.startswith("rollout/success_rate/"):
                name = "all" if key == "rollout/success_rate" else key.rsplit("/", 1)[1]
                series.setdefault(name, []).append((row["step"], value))
    x_max = max([1.0] + [float(e.step) for e in evals] + [x for v in series.values() for x, _ in v])
    if not series and not evals:
        return ""
    svg = line_chart("success rate: training rollouts per difficulty, evaluations", series, rate=True, x_max=x_max)
    marks = [f'<text x="{PAD + 4}" y="30" fill="#000">● evaluation (95% Wilson CI)</text>']
    for result in evals:
        low, high = result.interval
        x = PAD + (WIDTH - PAD - LEGEND) * result.step / x_max
        y_rate, y_low, y_high = (HEIGHT - PAD - (HEIGHT - 2 * PAD) * v for v in (result.rate, low, high))
        marks.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_low:.1f}" y2="{y_high:.1f}" stroke="#000"/>')
        marks.append(f'<circle cx="{x:.1f}" cy="{y_rate:.1f}" r="4" fill="#000"/>')
    return svg.replace("</svg>", "\n".join(marks) + "\n</svg>")


def metric_charts(history: Sequence[dict[str, float]]) -> list[str]:
    """One small chart per loss statistic present in the history."""
    charts = []
    for key in TRAIN_KEYS:
        values = [(row["step"], row[key]) for row in history if key in row]
        if values:
            charts.append(line_chart(key, {key: values}))
    return charts


def time_chart(history: Sequence[dict[str, float]]) -> str:
    """Seconds per step spent in each phase (time/* keys)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in history:
        for key, value in row.items():
            if key.startswith("time/"):
                series.setdefault(key, []).append((row["step"], value))
    return line_chart("seconds per step, by phase", series, from_zero=True)


def task_chart(episodes: Sequence[EpisodeView]) -> str:
    """Training success rate per task template over the steps, from the rollout records."""
    tally: dict[str, dict[int, list[int]]] = {}
    for episode in episodes:
        if episode.source.startswith("train"):
            wins = tally.setdefault(episode.template, {}).setdefault(episode.step, [0, 0])
            wins[0] += int(episode.success)
            wins[1] += 1
    if not tally:
        return ""
    series = {
        task: [(step, w / n) for step, (w, n) in sorted(by_step.items())] for task, by_step in sorted(tally.items())
    }
    return line_chart("success rate per task (training rollouts)", series, rate=True)


def _short(name: str) -> str:
    return name if len(name) <= 24 else name[:23] + "…"


# ---- tables -------------------------------------------------------------------------------------------


def _rate_cells(wins: int, total: int) -> str:
    low, high = wilson_interval(wins, total)
    rate = wins / total if total else 0.0
    return f"<td>{rate:.1%}</td><td>{low:.1%} – {high:.1%}</td><td>{wins}/{total}</td>"


def eval_tables(evals: Sequence[EvalResult]) -> str:
    """Overall, per-difficulty and per-task success of every evaluation, each with its Wilson 95% CI."""
    if not evals:
        return "<p>No evaluation yet.</p>"
    head = "<tr><th>step</th><th>success</th><th>95% CI</th><th>episodes</th><th>mean length</th><th>invalid</th>"
    rows = [head + "<th>dropped groups</th><th>seconds</th></tr>"]
    for r in evals:
        rows.append(
            f"<tr><td>{r.step}</td>{_rate_cells(r.successes, r.episodes)}<td>{r.mean_length:.1f}</td>"
            f"<td>{r.invalid_rate:.0%}</td><td>{r.dropped_groups}</td><td>{r.seconds:.0f}</td></tr>"
        )
    parts = ["<table>" + "".join(rows) + "</table>"]
    for title, attr in (("by difficulty", "by_difficulty"), ("by task", "by_task")):
        keys = sorted({k for r in evals for k in getattr(r, attr)})
        rows = ["<tr><th></th>" + "".join(f'<th colspan="3">step {r.step}</th>' for r in evals) + "</tr>"]
        for key in keys:
            cells = "".join(_rate_cells(*getattr(r, attr).get(key, (0, 0))) for r in evals)
            rows.append(f'<tr><td class="name">{html.escape(key)}</td>{cells}</tr>')
        parts.append(f"<h3>{title}</h3><table>" + "".join(rows) + "</table>")
    return "\n".join(parts)


# ---- episodes -----------------------------------------------------------------------------------------


@dataclass
class TurnView:
    """One turn as the viewer shows it."""

    action_text: str
    action: str | None
    valid: bool
    reason: str | None
    app: str
    image: bytes | None = None  # PNG with the action drawn on it


@dataclass
class EpisodeView:
    """One episode from a records file."""

    source: str  # "train step 3" or "eval at step 2"
    step: int
    episode_id: str
    task_id: str
    template: str
    difficulty: str
    goal: str
    reward: float
    success: bool
    end_reason: str
    turns: list[TurnView] = field(default_factory=list)
    records: Path | None = None
    images: list[list[str]] = field(default_factory=list)  # each turn's PNG paths, relative to `records`


def read_episodes(run_dir: Path) -> list[EpisodeView]:
    """Every episode of rollouts/step-*.parquet and evals/step-*.parquet (turn text, no pixels yet)."""
    from droidrl.rollout.records import read_turns

    found: list[EpisodeView] = []
    sources = [("train step", p) for p in sorted((run_dir / "rollouts").glob("step-*.parquet"))]
    sources += [("eval at step", p) for p in sorted((run_dir / "evals").glob("step-*.parquet"))]
    for label, path in sources:
        step = int(re.sub(r"\D", "", path.stem) or 0)
        frame = read_turns(path).sort_values(["episode_id", "turn"])
        for episode_id, turns in frame.groupby("episode_id", sort=False):
            first = turns.iloc[0]
            view = EpisodeView(
                source=f"{label} {step}",
                step=step,
                episode_id=str(episode_id),
                task_id=first["task_id"],
                template=first["template"],
                difficulty=first["difficulty"],
                goal=first["goal"],
                reward=float(first["reward"]),
                success=bool(first["success"]),
                end_reason=first["end_reason"],
                records=path,
            )
            for _, row in turns.iterrows():
                view.turns.append(
                    TurnView(row["action_text"], row["action"], bool(row["valid"]), row["reason"], row["app"])
                )
                view.images.append(list(row["images"]))
            found.append(view)
    return found


def sample_episodes(episodes: Sequence[EpisodeView], per_source: int = EPISODES_PER_SOURCE) -> list[EpisodeView]:
    """For the first and last training step and each evaluation: up to per_source/2 successes and failures."""
    by_source: dict[str, list[EpisodeView]] = {}
    for episode in episodes:
        by_source.setdefault(episode.source, []).append(episode)
    train = sorted((s for s in by_source if s.startswith("train")), key=lambda s: by_source[s][0].step)
    chosen = [*dict.fromkeys(train[:1] + train[-1:])] + [s for s in by_source if s.startswith("eval")]
    picked = []
    for source in chosen:
        pool = by_source[source]
        wins = [e for e in pool if e.success][: per_source // 2]
        losses = [e for e in pool if not e.success][: per_source - len(wins)]
        picked += wins + losses
    return picked


def attach_screens(
    episodes: Sequence[EpisodeView], env_options: dict[str, Any] | None = None, replay: bool = True
) -> None:
    """Give every turn its screenshot with the action drawn: the recorded PNG, else (`replay`) a replay.

    Text-only runs (model.observation=xml) keep no pixels; the simulator is deterministic, so playing the
    recorded actions from the same task and seed shows the screens the policy acted on.
    """
    import numpy as np
    from PIL import Image

    from droidrl.envs.actions import Invalid, parse
    from droidrl.envs.viewer import annotate, thumbnail_png

    for episode in episodes:
        # A turn's prompt shows its screens in order, the one it acted on last.
        recorded = episode.records is not None and all(len(refs) >= 1 for refs in episode.images)
        screens: list[np.ndarray | None]
        if recorded:
            base = episode.records.parent
            screens = [np.asarray(Image.open(base / refs[-1]).convert("RGB")) for refs in episode.images]
        elif replay:
            screens = replay_screens(episode, env_options or {})
        else:
            continue
        for turn, screen in zip(episode.turns, screens, strict=False):
            if screen is None:
                continue
            parsed = parse(turn.action_text)
            turn.image = thumbnail_png(annotate(screen, None if isinstance(parsed, Invalid) else parsed), THUMB_WIDTH)


def replay_screens(episode: EpisodeView, env_options: dict[str, Any]) -> list[Any]:
    """The screen before each turn, by playing the episode's actions again on a fresh simulated phone."""
    from droidrl.envs.env import AndroidEnv

    env = AndroidEnv(task=episode.task_id, **env_options)
    obs, _ = env.reset()
    screens = []
    for turn in episode.turns:
        screens.append(obs["screenshot"])
        obs, _, terminated, truncated, _ = env.step(turn.action_text)
        if terminated or truncated:
            break
    env.close()
    return screens


THINK = re.compile(r"<think>(.*?)</think>", re.S)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)


def split_response(text: str) -> tuple[str, str]:
    """(thinking, answer) of a model response; the whole text is the answer when it has no tags."""
    think = THINK.search(text)
    answer = ANSWER.search(text)
    thinking = think.group(1).strip() if think else ""
    if answer:
        return thinking, answer.group(1).strip()
    return thinking, (text[think.end() :] if think else text).strip()


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI, so the page needs no other file."""
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def episode_html(episode: EpisodeView, image_src: Callable[[int, bytes], str] | None = None) -> str:
    """One episode's card row; `image_src(turn, png)` gives each screen's src (default: a data: URI)."""
    mark = "success" if episode.success else "failure"
    cards = []
    for i, turn in enumerate(episode.turns):
        thinking, answer = split_response(turn.action_text)
        src = image_src(i, turn.image) if image_src is not None and turn.image else None
        image = (
            f'<img alt="turn {i + 1}" src="{html.escape(src or data_uri(turn.image))}">'
            if turn.image
            else '<div class="noimg">no screen</div>'
        )
        status = "valid" if turn.valid else f"invalid: {html.escape(turn.reason or '')}"
        think = f"<details><summary>thinking</summary><pre>{html.escape(thinking)}</pre></details>" if thinking else ""
        cards.append(
            f'<figure class="{"ok" if turn.valid else "bad"}">{image}<figcaption><b>{i + 1}.</b> '
            f"<code>{html.escape(answer[:300])}</code>{think}<small>{html.escape(turn.app)} · {status}</small>"
            "</figcaption></figure>"
        )
    return (
        f'<div class="episode {mark}"><h4>{"✔" if episode.success else "✘"} {html.escape(episode.task_id)} '
        f"<small>({html.escape(episode.difficulty)}, {html.escape(episode.source)}) reward {episode.reward:g}, "
        f"{len(episode.turns)} turns, {html.escape(episode.end_reason)}</small></h4>"
        f'<p class="goal">{html.escape(episode.goal)}</p><div class="turns">{"".join(cards)}</div></div>'
    )


def episodes_html(episodes: Sequence[EpisodeView]) -> str:
    """Per source, successes in the left column and failures in the right."""
    if not episodes:
        return "<p>No episode records (rollout.save_records=false, or no step finished yet).</p>"
    parts = []
    for source in dict.fromkeys(e.source for e in episodes):
        mine = [e for e in episodes if e.source == source]
        columns = "".join(
            f'<div class="column"><h3>{title}</h3>'
            f"{''.join(episode_html(e) for e in mine if e.success == won) or '<p>none sampled</p>'}</div>"
            for title, won in (("successes", True), ("failures", False))
        )
        parts.append(f'<section><h3 class="source">{html.escape(source)}</h3><div class="sides">{columns}</div>')
        parts.append("</section>")
    return "\n".join(parts)


# ---- the page -----------------------------------------------------------------------------------------


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """The RL steps' rows of <run_dir>/metrics.jsonl (a resumed run's included), in step order."""
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    by_step = {int(row["step"]): row for row in rows if "version" in row}
    return [by_step[step] for step in sorted(by_step)]


def read_evals(run_dir: Path) -> list[EvalResult]:
    """<run_dir>/evals.json as EvalResults."""
    path = run_dir / "evals.json"
    if not path.exists():
        return []
    results = []
    for item in json.loads(path.read_text()):
        results.append(
            EvalResult(
                step=item["step"],
                successes=item["successes"],
                episodes=item["episodes"],
                by_difficulty={k: tuple(v) for k, v in item.get("by_difficulty", {}).items()},
                by_task={k: tuple(v) for k, v in item.get("by_task", {}).items()},
                mean_length=item.get("mean_length", 0.0),
                invalid_rate=item.get("invalid_rate", 0.0),
                seconds=item.get("seconds", 0.0),
                dropped_groups=item.get("dropped_groups", 0),
            )
        )
    return results


def _env_options(run_dir: Path) -> dict[str, Any]:
    """The env settings of the run (config.yaml) that shape what a replay shows."""
    path = run_dir / "config.yaml"
    if not path.exists():
        return {}
    import yaml

    env = (yaml.safe_load(path.read_text()) or {}).get("env", {})
    options: dict[str, Any] = {"interruptions": float(env.get("interruptions", 0.0))}
    if env.get("max_steps"):
        options["max_steps"] = int(env["max_steps"])
    return options


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;background:#f6f7f9;color:#222}
h1{font-size:20px} h2{margin-top:32px;border-bottom:1px solid #ccc}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{background:#fff;border-radius:6px;box-shadow:0 1px 3px #0002}
table{border-collapse:collapse;background:#fff;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;font-size:13px} td.name{text-align:left}
.sides{display:flex;gap:16px;align-items:flex-start} .column{flex:1;min-width:0}
.episode{background:#fff;border-radius:6px;padding:8px;margin-bottom:12px;border-left:5px solid #999}
.episode.success{border-color:#228833} .episode.failure{border-color:#cc3311}
.episode h4{margin:2px 0} .goal{margin:4px 0;font-style:italic}
.turns{display:flex;gap:8px;overflow-x:auto;padding-bottom:6px}
figure{margin:0;flex:0 0 180px;font-size:12px} figure.bad figcaption code{color:#cc3311}
figure img{width:180px;border-radius:4px;border:1px solid #ddd;display:block}
.noimg{width:180px;height:60px;background:#eee;color:#888;text-align:center;line-height:60px}
code{word-break:break-all} pre{white-space:pre-wrap;font-size:11px;max-height:120px;overflow:auto}
"""


def render_report(run_dir: Path, evals: Sequence[EvalResult] | None = None, replay: bool = True) -> str:
    """The report page as a string; `evals` defaults to evals.json; `replay` re-plays text-only episodes."""
    run_dir = Path(run_dir)
    evals = list(read_evals(run_dir) if evals is None else evals)
    history = read_history(run_dir)
    episodes = read_episodes(run_dir)
    shown = sample_episodes(episodes)
    attach_screens(shown, _env_options(run_dir), replay)
    summary = ""
    if len(evals) >= 2 and evals[0].step == 0:
        first, final = evals[0], evals[-1]
        low, high = difference_interval((first.successes, first.episodes), (final.successes, final.episodes))
        summary = (
            f"<p>Success rate {first.rate:.1%} before RL, {final.rate:.1%} after {final.step} steps: "
            f"{final.rate - first.rate:+.1%} (95% CI {low:+.1%} to {high:+.1%}).</p>"
        )
    charts = [success_chart(history, evals), task_chart(episodes), *metric_charts(history), time_chart(history)]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>droidrl run {html.escape(run_dir.name)}</title>
<style>{STYLE}</style></head>
<body><h1>droidrl run {html.escape(str(run_dir))}</h1>
{summary}
<p>{len(history)} RL steps, {len(evals)} evaluations, {len(episodes)} recorded episodes.</p>
<h2>Curves</h2><div class="charts">{"".join(c for c in charts if c)}</div>
<h2>Evaluations (Wilson 95% CI)</h2>
{eval_tables(evals)}
<h2>Episodes</h2>
<p>Sampled policy episodes, successes beside failures; each screen shows the action taken on it (circle: tap,
line: swipe).</p>
{episodes_html(shown)}
<p>Sources: metrics.jsonl, evals.json, rollouts/ and evals/ (turn records).</p>
</body></html>
"""


def write_report(run_dir: Path, evals: Sequence[EvalResult] | None = None, replay: bool = True) -> Path:
    """Write <run_dir>/report.html (see `render_report`); returns its path."""
    path = Path(run_dir) / "report.html"
    page = render_report(Path(run_dir), evals, replay)
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m droidrl.trainer.report RUN_DIR`: (re)write a run's report.html."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m droidrl.trainer.report", description=main.__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--no-replay", action="store_true", help="do not replay text-only episodes for screens")
    args = parser.parse_args(argv)
    print(write_report(args.run_dir, replay=not args.no_replay))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
