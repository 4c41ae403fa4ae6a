"""report.html from real turn records: its charts, tables and episode viewer, rendered in headless Chromium."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, Group, TaskInstance
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import LocalEnvPool
from droidrl.rollout.prompts import PromptConfig
from droidrl.rollout.records import write_groups
from droidrl.trainer.evaluation import summarise
from droidrl.trainer.loop import rollout_metrics
from droidrl.trainer.report import read_evals, render_report, split_response, write_report
from droidrl.trainer.sft import collect_demonstrations_async
from droidrl.trainer.tracking import Tracker

WIFI = "SystemWifiTurnOff"
CHROMIUM = shutil.which("chromium")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _policy_groups(model_dir: Path, tokenizer, observation: str, seeds: list[int]) -> list[Group]:
    """Episodes of the untrained tiny policy (real failures: random text is no action)."""
    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), batch_wait_s=0.01))
    sampling = SamplingParams(temperature=1.0, max_tokens=24, seed=0)
    agent = Agent(engine, tokenizer, AgentConfig(PromptConfig(observation=observation), sampling, max_steps=3))
    pool = LocalEnvPool(1, screenshots=observation != "xml")
    config = CollectorConfig(group_size=1, batch_size=len(seeds), max_concurrent_episodes=1)
    try:
        return asyncio.run(Collector(agent, pool, config, run_id="t").collect([TaskInstance(WIFI, s) for s in seeds]))
    finally:
        asyncio.run(engine.close())


def _expert_groups(tokenizer, observation: str, seeds: list[int]) -> list[Group]:
    """The scripted expert's episodes through the same agent loop (real successes)."""
    prompt = PromptConfig(observation=observation)
    return asyncio.run(collect_demonstrations_async([WIFI], seeds, tokenizer, prompt_config=prompt))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, model_dir: Path, tokenizer) -> Path:
    """A run directory as `droidrl train` leaves it: metrics.jsonl, evals.json, rollouts/ and evals/ records.

    Training records are text-only (the default observation, so the report replays them for screens);
    the evaluation's expert episode keeps screenshots (observation=screenshot), shown as recorded.
    """
    run = tmp_path_factory.mktemp("report-run")
    (run / "config.yaml").write_text("env:\n  interruptions: 0.0\n  max_steps: null\n")
    train = _expert_groups(tokenizer, "xml", [1]) + _policy_groups(model_dir, tokenizer, "xml", [2])
    write_groups(train, run / "rollouts" / "step-000001.parquet", "train", 1)
    write_groups(train[:1], run / "rollouts" / "step-000002.parquet", "train", 2)
    evaluated = _expert_groups(tokenizer, "screenshot", [7]) + _policy_groups(model_dir, tokenizer, "xml", [8])
    write_groups(evaluated, run / "evals" / "step-000002.parquet", "eval-2", 2)
    tracker = Tracker(run, mode="disabled")
    for step, groups in ((1, train), (2, train[:1])):
        row = rollout_metrics(groups, step - 1) | {"version": float(step), "time/collect": 1.5, "time/train": 0.5}
        row |= {"train/loss": 0.4 / step, "train/grad_norm": 2.0 / step, "train/clip_frac": 0.1 * step}
        tracker.log(row, step)
    tracker.close()
    evals = [summarise(train, 0, 3.0), summarise(evaluated, 2, 4.0)]
    (run / "evals.json").write_text("[" + ",".join(__import__("json").dumps(e.to_dict()) for e in evals) + "]")
    return run


def test_split_response_separates_thinking_from_the_answer() -> None:
    assert split_response('<think>wifi is on</think><answer>do(action="Back")</answer>') == (
        "wifi is on",
        'do(action="Back")',
    )
    assert split_response('plan</think> do(action="Home")') == ("", 'plan</think> do(action="Home")')
    assert split_response("finish(message='x')") == ("", "finish(message='x')")


def test_report_holds_curves_tables_and_both_kinds_of_episode(run_dir: Path) -> None:
    page = render_report(run_dir)
    evals = read_evals(run_dir)
    assert [e.step for e in evals] == [0, 2] and evals[1].by_task == {WIFI: (1, 2)}
    # Charts: success per difficulty and per task, the loss statistics present, time per phase.
    for title in ("success rate: training rollouts", "success rate per task", "train/loss", "train/grad_norm"):
        assert title in page
    assert "train/kl" not in page  # not in this metrics.jsonl: no empty chart for it
    assert "seconds per step, by phase" in page and "time/collect" in page
    assert page.count("<circle") == 2  # one dot per evaluation
    assert "50.0%" in page and "1/2" in page  # the final evaluation's task row: 1 of 2, with its CI
    # Episodes: from training step 1 and 2 and the evaluation; successes and failures side by side.
    for source in ("train step 1", "train step 2", "eval at step 2"):
        assert f'<h3 class="source">{source}</h3>' in page
    assert page.count('class="episode success"') == 3 and page.count('class="episode failure"') == 2
    assert "do(action=&quot;Launch&quot;, app=&quot;Settings&quot;)" in page  # the expert's first answer
    assert "invalid: " in page  # the random policy's text is no action, and the reason is shown
    images = re.findall(r'src="data:image/png;base64,', page)
    turns = page.count("<figure")
    assert len(images) == turns and turns >= 8  # every turn has its screen: recorded or replayed
    assert "no screen" not in page
    no_replay = render_report(run_dir, replay=False)  # text-only records without replay: no pixels
    assert no_replay.count("no screen") > 0 and no_replay.count("<figure") == turns


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    report = write_report(run_dir)
    # A copy with a probe that records, after load, whether every image decoded.
    probe = (
        "<script>addEventListener('load', () => document.body.dataset.images = "
        "[...document.images].map(i => i.complete && i.naturalWidth > 0 ? 1 : 0).join(''))</script></body>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", probe))
    browser = [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*browser, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    flags = re.search(r'data-images="([01]*)"', dom)
    assert flags is not None, dom[-2000:]
    assert len(flags.group(1)) >= 8 and set(flags.group(1)) == {"1"}  # every screenshot loaded

    shot = tmp_path / "report.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1400,2400", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    shutil.copy(shot, run_dir / "report-screenshot.png")  # for a person to look at (pytest --basetemp)
    assert pixels.shape[:2] == (2400, 1400)
    # The first chart (top left, below the heading): white card with coloured lines drawn on it.
    chart = pixels[100:600, 20:600]
    blue = (np.abs(chart - [0x44, 0x77, 0xAA]).sum(axis=2) < 40).sum()
    assert blue > 200, blue  # the "all" success line
    # Episodes below: screenshots of the phone are photos-like areas, far from the page's flat colours.
    lower = pixels[900:]
    rows_with_screens = (np.abs(np.diff(lower, axis=1)).sum(axis=2) > 30).sum(axis=1)
    assert (rows_with_screens > 50).sum() > 100  # many rows with detail: the phone screens are drawn
