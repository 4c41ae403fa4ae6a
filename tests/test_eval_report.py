"""The evaluation's results.json and report.html from real episodes: tables, per-episode viewers, headless Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from droidrl.eval.protocols import get_protocol
from droidrl.eval.report import anchor, build_results, render_report, write_report, write_results
from droidrl.eval.runner import episode_record
from droidrl.eval.store import EpisodeStore, episode_key
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, TaskInstance
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import LocalEnvPool
from droidrl.rollout.prompts import PromptConfig
from droidrl.trainer.sft import collect_demonstrations_async

pytestmark = pytest.mark.slow  # records real episodes (expert and tiny policy) on simulated phones

WIFI = "SystemWifiTurnOff"
CHROMIUM = shutil.which("chromium")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
THOUGHT = "Wi-Fi is on; the Settings app has the switch"


def _expert_episodes(tokenizer, seeds: list[int]):
    """The scripted expert through the agent loop, screenshots kept: real successes ending in finish()."""
    groups = asyncio.run(collect_demonstrations_async([WIFI], seeds, tokenizer, PromptConfig(observation="screenshot")))
    return [group.episodes[0] for group in groups]


def _policy_episode(model_dir: Path, tokenizer, seed: int):
    """The untrained tiny policy (xml prompts, screenshots kept for the viewer): a real failure."""
    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), batch_wait_s=0.01))
    sampling = SamplingParams(temperature=0.0, max_tokens=12, seed=0)
    agent = Agent(engine, tokenizer, AgentConfig(PromptConfig(observation="xml"), sampling))
    config = CollectorConfig(group_size=1, batch_size=1, max_concurrent_episodes=1)
    try:
        collector = Collector(agent, LocalEnvPool(1, screenshots=True), config, run_id="t")
        return asyncio.run(collector.collect([TaskInstance(WIFI, seed)]))[0].episodes[0]
    finally:
        asyncio.run(engine.close())


def _meta(runs: int) -> dict:
    protocol = get_protocol("androidworld")
    return {"policy": "tiny-text", "protocol": protocol.to_dict(), "suite": WIFI, "task_seed": 30, "instances": 2,
            "runs": runs, "deviations": [], "settings": {"observation": "xml"}}  # fmt: skip


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, model_dir: Path, tokenizer) -> tuple[Path, dict, list[dict]]:
    """An output folder as `droidrl eval` leaves it: 2 runs of 2 instances; run 1 of seed 2 is a failure."""
    out = tmp_path_factory.mktemp("eval-report")
    experts = _expert_episodes(tokenizer, [1, 2, 1])
    failure = _policy_episode(model_dir, tokenizer, 2)
    store = EpisodeStore(out)
    store.open()
    protocol = get_protocol("androidworld")
    experts[0].turns[0].action_text = f"<think>{THOUGHT}</think>{experts[0].turns[0].action_text}"
    for run, seed, episode in ((0, 1, experts[0]), (0, 2, experts[1]), (1, 1, experts[2]), (1, 2, failure)):
        key = episode_key(run, WIFI, seed)
        store.append(episode_record(key, protocol, episode, store.write_screens(key, episode.screenshots)))
    records = list(store)
    results = build_results(_meta(runs=2), records, planned=4)
    write_results(out, results)
    write_report(out, results, records)
    return out, results, records


def test_results_hold_the_figures_of_both_runs(evaluation) -> None:
    out, results, records = evaluation
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    overall = results["overall"]
    assert results["complete"] and (overall["successes"], overall["episodes"]) == (3, 4)
    assert overall["runs"]["0"]["success_rate"] == 1.0 and overall["runs"]["1"]["success_rate"] == 0.5
    assert overall["run_mean"] == 0.75 and overall["run_t95"][0] < 0.75 < overall["run_t95"][1]
    failed = next(r for r in records if not r["success"])
    assert failed["run"] == 1 and failed["end_reason"] == "3 invalid actions in a row" and failed["score"] == 0.0
    solved = next(r for r in records if r["run"] == 0 and r["seed"] == 1)
    assert solved["finished"] and solved["reward"] == 1.0 and solved["turns"][-1]["action"].startswith("finish(")


def test_report_has_tables_and_a_viewer_per_episode(evaluation) -> None:
    out, _, records = evaluation
    page = (out / "report.html").read_text()
    assert "Success rate <b>75.0%</b> (mean of 2 runs" in page
    assert "<td>100.0% <small>(2/2)</small></td><td>50.0% <small>(1/2)</small></td>" in page  # per-run cells
    assert "3/4 (75.0%)" in page  # the task's row
    for record in records:  # every episode has its viewer, and the task table links to it
        assert f'id="{anchor(record)}"' in page and f'href="#{anchor(record)}"' in page
    assert page.count('<details class="ep"') == 4
    assert "Turn off Wi-Fi." in page  # the goal
    assert f"<summary>thinking</summary><pre>{THOUGHT}</pre>" in page  # the thinking, apart from the answer
    assert "do(action=&quot;Launch&quot;, app=&quot;Settings&quot;)" in page  # the answer
    assert "invalid: empty output" in page  # validity and its reason
    assert "finish; checker 1" in page and "3 invalid actions in a row; checker 0" in page  # outcome
    turns = sum(len(r["turns"]) for r in records)
    assert len(re.findall(r'src="data:image/png;base64,', page)) == turns and "no screen" not in page


def test_a_large_report_links_its_screens_instead_of_embedding_them(evaluation, tmp_path: Path) -> None:
    out, results, records = evaluation
    page = render_report(results, records, out, inline_turns=3)  # over the limit: screens go to report_files/
    sources = re.findall(r'<img alt="turn \d+" src="([^"]+)"', page)
    assert len(sources) == sum(len(r["turns"]) for r in records) and "data:image" not in page
    for source in sources:
        assert source.startswith("report_files/ep-r")
        with Image.open(out / source) as image:
            assert image.width == 270  # the annotated thumbnail, as embedded ones are


def test_partial_results_say_so(evaluation) -> None:
    _, _, records = evaluation
    results = build_results(_meta(runs=3), records[:3], planned=6)
    assert not results["complete"] and results["finished_episodes"] == 3
    assert results["overall"]["runs"].keys() == {"0", "1"}


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(evaluation, tmp_path: Path) -> None:
    out, _, records = evaluation
    page = (out / "report.html").read_text()
    # A copy that opens every episode's viewer, then records whether every image decoded.
    probe = (
        "<script>document.querySelectorAll('details.ep').forEach(d => d.open = true);"
        "addEventListener('load', () => document.body.dataset.images = "
        "[...document.images].map(i => i.complete && i.naturalWidth > 0 ? 1 : 0).join(''))</script></body>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe))
    browser = [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*browser, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()], capture_output=True, text=True,
        timeout=120,
    ).stdout  # fmt: skip
    flags = re.search(r'data-images="([01]*)"', dom)
    assert flags is not None, dom[-2000:]
    assert len(flags.group(1)) == sum(len(r["turns"]) for r in records) and set(flags.group(1)) == {"1"}
    assert dom.count('<details class="ep"') == 4 and dom.count(' open=""') >= 4  # the viewers opened

    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1400,2400", probed.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    shutil.copy(shot, out / "report-screenshot.png")  # for a person to look at (pytest --basetemp)
    assert pixels.shape[:2] == (2400, 1400)
    # The runs chart near the top: the "easy" line (second series colour) drawn over "all" (the same rates here).
    red = (np.abs(pixels[150:700, 20:650] - [0xCC, 0x33, 0x11]).sum(axis=2) < 40).sum()
    assert red > 100, red
    # The opened viewers below the tables: phone screens are detailed areas, far from the page's flat colours.
    lower = pixels[1100:]
    rows_with_screens = (np.abs(np.diff(lower, axis=1)).sum(axis=2) > 30).sum(axis=1)
    assert (rows_with_screens > 50).sum() > 100
