"""`droidrl eval`: protocols, suites, CIs on known inputs, the durable episode store, and the command end to end.

The end-to-end tests run `python -m droidrl.eval` (as `ray job submit` does) on simulated phones with the tiny
models: both protocols, a Ray pool, and a SIGKILL mid-run followed by a resume that loses and repeats nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import test_openai_engine
from PIL import Image
from test_openai_engine import Script, make_handler, server, vllm_server  # noqa: F401  (fixtures)

from droidrl.eval.protocols import PROTOCOLS, get_protocol, protocol_score
from droidrl.eval.stats import summarise_episodes, t_interval, t_quantile_975
from droidrl.eval.store import EpisodeStore
from droidrl.eval.suites import instance_seed, suite_instances
from droidrl.trainer.evaluation import wilson_interval

TASKS = "SystemWifiTurnOff,SystemBluetoothTurnOn"


# ---- statistics on known inputs ---------------------------------------------------------------------------


def test_intervals_match_reference_values() -> None:
    # Reference values from scipy (stats.binomtest(8, 10).proportion_ci("wilson"), stats.t.ppf); the project's
    # Wilson interval takes z = 1.96 (scipy 1.959964), hence the 1e-5 tolerance.
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4901625, abs=1e-5) and high == pytest.approx(0.9433178, abs=1e-5)
    assert t_quantile_975(2) == pytest.approx(4.302653) and t_quantile_975(30) == pytest.approx(2.042272)
    assert t_quantile_975(31) == pytest.approx(2.039513, abs=1e-4)
    assert t_quantile_975(40) == pytest.approx(2.021075, abs=1e-4)
    assert t_quantile_975(120) == pytest.approx(1.979930, abs=1e-4)
    low, high = t_interval([0.5, 0.6, 0.7])  # mean 0.6, sd 0.1, 3 runs: 0.6 -+ 4.302653 * 0.1 / sqrt(3)
    assert low == pytest.approx(0.3515862, abs=1e-6) and high == pytest.approx(0.8484138, abs=1e-6)
    assert t_interval([0.4]) is None  # one run has no spread to estimate
    assert t_interval([0.0, 1.0]) == (0.0, 1.0)  # clipped to rates


def _record(run: int, task: str, difficulty: str, success: bool, seed: int = 1) -> dict:
    return {"run": run, "task": task, "seed": seed, "template": task, "difficulty": difficulty,
            "success": success, "score": float(success)}  # fmt: skip


def test_summary_of_repeated_runs_per_difficulty_and_task() -> None:
    # Three runs of four instances: run 0 solves 3, runs 1 and 2 solve 2 each.
    outcomes = {0: [1, 1, 1, 0], 1: [1, 1, 0, 0], 2: [1, 0, 1, 0]}
    tasks = [("A", "easy"), ("B", "easy"), ("C", "medium"), ("D", "hard")]
    records = [
        _record(run, task, difficulty, bool(won))
        for run, wins in outcomes.items()
        for (task, difficulty), won in zip(tasks, wins, strict=True)
    ]
    summary = summarise_episodes(records, runs=[0, 1, 2])
    overall = summary["overall"]
    assert (overall["successes"], overall["episodes"]) == (7, 12)
    assert overall["run_mean"] == pytest.approx(7 / 12)  # (0.75 + 0.5 + 0.5) / 3
    assert overall["run_std"] == pytest.approx(0.1443376)
    assert overall["run_t95"] == pytest.approx([7 / 12 - 0.3585546, 7 / 12 + 0.3585546])  # 4.302653 * sd / sqrt(3)
    assert overall["wilson95"] == pytest.approx(list(wilson_interval(7, 12)))
    assert [overall["runs"][r]["success_rate"] for r in "012"] == [0.75, 0.5, 0.5]
    assert list(summary["by_difficulty"]) == ["easy", "medium", "hard"]  # in difficulty order
    easy = summary["by_difficulty"]["easy"]
    assert (easy["successes"], easy["episodes"]) == (5, 6) and easy["run_mean"] == pytest.approx(5 / 6)
    task_a, task_c = summary["by_task"]["A"], summary["by_task"]["C"]
    assert (task_a["successes"], task_a["episodes"]) == (3, 3) and task_a["run_t95"] == [1.0, 1.0]
    assert (task_c["successes"], task_c["wilson95"]) == (2, pytest.approx(list(wilson_interval(2, 3))))
    # A run still under way: its rate counts from the episodes it has.
    partial = summarise_episodes(records[:5], runs=[0, 1, 2])["overall"]
    assert partial["runs"]["1"] == {"successes": 1, "episodes": 1, "success_rate": 1.0,
                                    "wilson95": list(wilson_interval(1, 1))}  # fmt: skip
    assert "2" not in partial["runs"] and partial["run_mean"] == pytest.approx((0.75 + 1.0) / 2)


# ---- protocols and suites ----------------------------------------------------------------------------------


def test_protocols_score_as_their_runners_do() -> None:
    androidworld, mobilerl = get_protocol("androidworld"), get_protocol("mobilerl")
    assert protocol_score(androidworld, 1.0, "finish") == 1.0
    assert protocol_score(androidworld, 1.0, "max_steps (10) reached") == 0.0  # done in time but never said so
    assert protocol_score(androidworld, 1.0, "3 invalid actions in a row") == 0.0
    assert protocol_score(mobilerl, 1.0, "max_steps (50) reached") == 1.0  # the checker's verdict at the end
    assert protocol_score(mobilerl, float("nan"), "finish") == 0.0
    assert (mobilerl.max_steps, mobilerl.temperature, mobilerl.observation) == (50, 0.0, "both")
    assert (mobilerl.image_turns, mobilerl.xml_turns) == (2, 1)
    assert androidworld.max_steps is None and all(p.runs == 3 for p in PROTOCOLS.values())
    with pytest.raises(ValueError, match="unknown protocol 'aw'; protocols: androidworld, mobilerl"):
        get_protocol("aw")


def test_suite_instances_use_android_worlds_seeding() -> None:
    # android_world's suite_utils: sha256(f"{task_random_seed}_{name}_{i}") % 2**32.
    expected = int(hashlib.sha256(b"30_SystemWifiTurnOff_0").hexdigest(), 16) % 2**32
    assert instance_seed(30, "SystemWifiTurnOff", 0) == expected
    instances = suite_instances(["SystemWifiTurnOff", "SystemBluetoothTurnOn"], combinations=2)
    assert [(i.task, i.difficulty) for i in instances] == [
        ("SystemWifiTurnOff", "easy"), ("SystemWifiTurnOff", "easy"),
        ("SystemBluetoothTurnOn", "medium"), ("SystemBluetoothTurnOn", "medium"),
    ]  # fmt: skip
    assert instances[0].seed == expected and instances[1].seed != expected
    assert suite_instances("easy", task_seed=7)[0].seed != suite_instances("easy")[0].seed
    with pytest.raises(ValueError, match="--suite: 'nope' is neither a suite"):
        suite_instances("nope")


def test_androidworld_suite_is_android_worlds_create_suite() -> None:
    aw = pytest.importorskip("droidrl.envs.tasks.android_world_suite")
    if not aw.available():
        pytest.skip("android_world is not importable here")
    instances = suite_instances("androidworld")
    assert len(instances) == 116 and {i.difficulty for i in instances} == {"easy", "medium", "hard"}
    assert [f"{i.task}:{i.seed}" for i in instances] == aw.suite_tasks("androidworld")  # H6's create_suite ids


# ---- the durable store -------------------------------------------------------------------------------------


def test_store_appends_reopens_and_cuts_a_torn_line(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    assert store.open().records == {}
    for run in (0, 1):
        store.append({"run": run, "task": "A", "seed": 5, "success": True})
    with pytest.raises(ValueError, match="r1/A/5 is already recorded"):
        store.append({"run": 1, "task": "A", "seed": 5, "success": False})
    with open(store.path, "ab") as f:  # what a kill in the middle of an append leaves
        f.write(b'{"run": 2, "task": "A", "se')
    size_before = store.path.stat().st_size
    again = EpisodeStore(tmp_path)
    opened = again.open()
    assert set(opened.records) == {(0, "A", 5), (1, "A", 5)} and opened.torn_bytes == 27
    assert store.path.stat().st_size == size_before - 27 and store.path.read_bytes().endswith(b"}\n")
    again.append({"run": 2, "task": "A", "seed": 5, "success": False})
    assert [json.loads(line)["run"] for line in store.path.read_text().splitlines()] == [0, 1, 2]


# ---- the command end to end --------------------------------------------------------------------------------


def _eval(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="160")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "droidrl.eval", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def _check_results(out: Path, runs: int, instances: int) -> dict:
    """results.json agrees with episodes.jsonl: every planned key once, the figures recomputed from the lines."""
    records = _lines(out)
    keys = Counter((r["run"], r["task"], r["seed"]) for r in records)
    assert len(keys) == runs * instances and set(keys.values()) == {1}
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["finished_episodes"] == runs * instances
    assert results["overall"] == summarise_episodes(records, list(range(runs)))["overall"]
    for record in records:
        assert record["turns"] and len(record["screens"]) == record["length"] + 1
        assert all((out / path).stat().st_size > 1000 for path in record["screens"])  # kept for the viewer
    page = (out / "report.html").read_text()
    assert page.count('<details class="ep"') == runs * instances
    return results


@pytest.mark.slow
def test_eval_androidworld_protocol(tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "aw"
    result = _eval("--model", str(model_dir), "--engine", "transformers", "--suite", TASKS, "--runs", "2",
                   "--phones", "2", "--no-ray", "--max-tokens", "12", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "under the androidworld protocol; 0 of 4 episodes already done" in result.stdout
    assert "4 of 4 episodes, complete" in result.stdout and "Traceback" not in result.stdout + result.stderr
    results = _check_results(out, runs=2, instances=2)
    assert results["protocol"]["requires_finish"] and results["settings"]["max_steps"] == "task's own"
    assert set(results["by_difficulty"]) == {"easy", "medium"} and set(results["by_task"]) == set(TASKS.split(","))
    # The random policy never finishes: every episode scores 0, whatever the checker said.
    assert all(r["score"] == 0.0 and not r["finished"] for r in _lines(out))
    # A rerun finds everything done and plays nothing; other settings in the same folder are refused.
    again = _eval("--model", str(model_dir), "--engine", "transformers", "--suite", TASKS, "--runs", "2",
                  "--no-ray", "--max-tokens", "12", "--out", str(out))  # fmt: skip
    assert again.returncode == 0 and "4 of 4 episodes already done" in again.stdout
    assert len(_lines(out)) == 4
    other = _eval("--model", str(model_dir), "--protocol", "mobilerl", "--suite", TASKS, "--out", str(out))
    assert other.returncode == 2 and "holds an evaluation with other settings (protocol, max_steps" in other.stdout


@pytest.mark.slow
def test_eval_mobilerl_protocol_with_screens_and_xml(tmp_path: Path, vl_model_dir: Path) -> None:
    out = tmp_path / "mobilerl"
    result = _eval("--model", str(vl_model_dir), "--protocol", "mobilerl", "--engine", "transformers",
                   "--suite", "SystemWifiTurnOff", "--runs", "2", "--phones", "2", "--no-ray", "--max-tokens", "12",
                   "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deviation" not in result.stdout  # a vision model: the protocol as published
    results = _check_results(out, runs=2, instances=1)
    assert results["settings"] == {"observation": "both", "max_steps": 50, "temperature": 0.0, "max_tokens": 12,
                                   "phones": 2, "ray": False}  # fmt: skip
    assert 'do(action="Swipe", direction=' in results["protocol"]["system_prompt"]  # MobileRL's action format
    assert set(results["overall"]["runs"]) == {"0", "1"}


@pytest.mark.slow
def test_eval_mobilerl_with_a_text_policy_says_what_it_changed(tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "text"
    result = _eval("--model", str(model_dir), "--protocol", "mobilerl", "--engine", "transformers", "--suite",
                   "SystemWifiTurnOff", "--runs", "1", "--phones", "1", "--ray", "--max-tokens", "12",
                   "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deviation from the protocol: observation xml: the policy is text-only" in result.stdout
    results = _check_results(out, runs=1, instances=1)
    assert results["deviations"] == ["observation xml: the policy is text-only (the protocol shows both)"]
    assert results["settings"]["ray"] is True and _lines(out)[0]["device"].startswith("env")  # a Ray env actor


@pytest.mark.slow
def test_eval_killed_midway_resumes_without_losing_or_repeating(tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "killed"
    args = ["--model", str(model_dir), "--engine", "transformers", "--suite", TASKS + ",SystemWifiTurnOn",
            "--runs", "2", "--phones", "1", "--no-ray", "--max-tokens", "12", "--out", str(out)]  # fmt: skip
    env = dict(os.environ, COLUMNS="160")
    process = subprocess.Popen(
        [sys.executable, "-m", "droidrl.eval", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 400
        path = out / "episodes.jsonl"
        while not (path.exists() and path.read_bytes().count(b"\n") >= 2):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "no two episodes finished in time"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)  # mid-run: the next episode is being played
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    process.stdout.close()
    before = path.read_bytes()
    kept = before[: before.rfind(b"\n") + 1]  # whole lines: the episodes finished before the kill
    finished = kept.count(b"\n")
    assert 2 <= finished < 6
    result = _eval(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{finished} of 6 episodes already done" in result.stdout
    after = path.read_bytes()
    assert after.startswith(kept)  # nothing written before the kill was rewritten or lost
    _check_results(out, runs=2, instances=3)  # each of the 6 keys exactly once
    assert len(_lines(out)) == 6


@pytest.mark.slow
def test_eval_through_an_openai_compatible_endpoint(
    tmp_path: Path,
    model_dir: Path,
    tokenizer,
    vllm_server: str,  # noqa: F811
) -> None:
    out = tmp_path / "endpoint"
    result = _eval("--endpoint", vllm_server, "--served-model", "tiny", "--model", str(model_dir), "--suite",
                   "SystemWifiTurnOff", "--runs", "2", "--phones", "2", "--no-ray", "--max-tokens", "12",
                   "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"droidrl eval: {vllm_server} (tiny) on SystemWifiTurnOff" in result.stdout
    _check_results(out, runs=2, instances=1)
    assert {r["engine"] for r in _lines(out)} == {"openai-0"}  # every turn came from the endpoint
    # A wrong served-model name is a clear error before any episode.
    wrong = _eval("--endpoint", vllm_server, "--served-model", "nope", "--model", str(model_dir), "--suite",
                  "SystemWifiTurnOff", "--no-ray", "--out", str(tmp_path / "wrong"))  # fmt: skip
    assert wrong.returncode == 2 and "--endpoint" in wrong.stdout and "Traceback" not in wrong.stdout + wrong.stderr
    # The screenshot probe against real vLLM: a text-only served model refuses the image, before any episode.
    # (vLLM on CPU here cannot load a vision model, torchvision being absent, so the accepted case is not run.)
    from droidrl.eval.endpoint import EndpointRefused, start_endpoint

    with pytest.raises(EndpointRefused, match=r"screenshot \(.*\(400\): tiny is not a multimodal model\): serve the"):
        asyncio.run(start_endpoint(vllm_server, "tiny", tokenizer, images=True, concurrency=1))


@pytest.mark.slow
def test_runner_retries_a_dead_device_and_leaves_a_lost_episode_for_the_rerun(
    tmp_path: Path, model_dir: Path, tokenizer
) -> None:
    from test_collector import DyingDevicePool, FailingEngine

    from droidrl.eval.runner import EvalAborted, Plan, run_plan
    from droidrl.rollout.agent import Agent, AgentConfig
    from droidrl.rollout.engines.base import SamplingParams
    from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
    from droidrl.rollout.envpool import LocalEnvPool
    from droidrl.rollout.prompts import PromptConfig

    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), batch_wait_s=0.01))
    sampling = SamplingParams(temperature=0.0, max_tokens=8, seed=0)
    protocol = get_protocol("androidworld")
    plan = Plan(suite_instances(TASKS.split(",")), runs=1)
    wifi, bluetooth = (f"r0/{i.task}/{i.seed}" for i in plan.instances)

    def agent(fails) -> Agent:
        return Agent(FailingEngine(engine, fails), tokenizer, AgentConfig(PromptConfig(observation="xml"), sampling))

    async def play(fails, pool, store, problems, **options):
        return await run_plan(agent(fails), pool, protocol, plan, store, 1, on_problem=problems.append, **options)

    try:
        store = EpisodeStore(tmp_path / "eval")
        store.open()
        problems: list[str] = []
        # The phone dies on Wi-Fi's first step (retried on a fresh phone); the engine fails every Bluetooth turn.
        pool = DyingDevicePool(LocalEnvPool(1, screenshots=True), dying="local/0", deaths=1)
        stats = asyncio.run(play(lambda _, session: "Bluetooth" in session, pool, store, problems, max_retries=1))
        assert (stats.played, stats.dropped, stats.retried) == (1, 1, 2)
        assert len(problems) == 2  # one line per handled problem
        assert problems[0].startswith(f"{wifi}: retried 1x after device failure x1; last: local/0: adb connection")
        assert problems[1].startswith(f"{bluetooth}: lost to the infrastructure after 2 attempts (engine failure x2")
        assert problems[1].endswith("not recorded, a rerun plays it again")
        (record,) = _lines(tmp_path / "eval")
        assert record["task"] == "SystemWifiTurnOff" and record["attempts"] == 2  # scored once, on the second phone
        # The rerun plays only the lost episode.
        problems.clear()
        stats = asyncio.run(play(lambda *_: False, LocalEnvPool(1, screenshots=True), store, problems))
        assert (stats.played, stats.dropped, problems) == (1, 0, [])
        assert [r["task"] for r in _lines(tmp_path / "eval")] == ["SystemWifiTurnOff", "SystemBluetoothTurnOn"]
        # An engine that fails every call stops the evaluation after max_consecutive_drops lost episodes.
        broken = EpisodeStore(tmp_path / "broken")
        broken.open()
        with pytest.raises(EvalAborted, match="2 episodes in a row were lost"):
            asyncio.run(play(lambda *_: True, LocalEnvPool(1), broken, [], max_retries=0, max_consecutive_drops=2))
        assert len(broken) == 0 and broken.path.read_bytes() == b""
    finally:
        asyncio.run(engine.close())


@pytest.mark.slow
def test_eval_of_an_android_world_task(tmp_path: Path, model_dir: Path) -> None:
    aw = pytest.importorskip("droidrl.envs.tasks.android_world_suite")
    if not aw.available():
        pytest.skip("android_world is not importable here")
    out = tmp_path / "aw"
    # A Verify task: initialize_task puts the phone in the goal state, yet an agent that never says it is done
    # scores 0 under android_world's runner.
    result = _eval("--model", str(model_dir), "--engine", "transformers", "--suite", "aw.SystemBluetoothTurnOffVerify",
                   "--runs", "1", "--phones", "1", "--no-ray", "--max-tokens", "12", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "absl" not in result.stdout  # android_world's advisories stay in the log file
    _check_results(out, runs=1, instances=1)
    (record,) = _lines(out)
    seed = aw.instance_seed(30, "SystemBluetoothTurnOffVerify", 0)
    assert record["task_id"] == f"aw.SystemBluetoothTurnOffVerify:{seed}" and record["difficulty"] == "easy"
    assert record["score"] == 0.0 and not record["finished"] and record["goal"] == "Turn bluetooth off."


# ---- an endpoint gets the protocol's screenshots (H5's stdlib OpenAI-compatible server) ---------------------


def _png(url: str) -> np.ndarray:
    prefix, data = url.split(",", 1)
    assert prefix == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def test_endpoint_eval_sends_the_protocols_screenshots_as_data_urls(
    tmp_path: Path,
    vision_model_dir: Path,  # each vision family: Qwen2.5-VL and GLM-4.1V (MobileRL-9B's architecture)
    server: tuple[Script, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import AutoTokenizer

    from droidrl.eval.endpoint import CHAT_IMAGES
    from droidrl.rollout.prompts import ChatFormat

    script, url = server
    tokenizer = AutoTokenizer.from_pretrained(vision_model_dir)
    placeholder = ChatFormat.from_tokenizer(tokenizer).image_placeholder

    def policy(body: dict) -> dict:
        """One screenshot: open Settings; two (MobileRL's last 2): finish; the probe (max_tokens 1) gets a token."""
        images = sum(part["type"] == "image_url" for part in body["messages"][0]["content"])
        answer = 'do(action="Launch", app="Settings")' if images == 1 else 'finish(message="done")'
        ids = tokenizer.encode(f"<think>-</think><answer>{answer}</answer>", add_special_tokens=False)
        ids = ids[: body["max_tokens"] - 1]
        ids.append(tokenizer.eos_token_id)
        reply = original(body)
        reply["choices"][0].update(
            token_ids=ids, logprobs={"content": [{"logprob": -0.5} for _ in ids]}, finish_reason="stop"
        )
        return reply

    original = test_openai_engine.chat_reply
    monkeypatch.setattr(test_openai_engine, "chat_reply", policy)  # the fake server's handler looks it up per call
    out = tmp_path / "endpoint-vl"
    result = _eval("--endpoint", url, "--served-model", "tiny", "--model", str(vision_model_dir), "--protocol",
                   "mobilerl", "--suite", "SystemWifiTurnOff", "--runs", "1", "--phones", "1", "--no-ray",
                   "--max-tokens", "48", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deviation" not in result.stdout  # the protocol as published: screenshots plus XML
    results = json.loads((out / "results.json").read_text())
    assert results["deviations"] == [] and results["settings"]["observation"] == "both"
    assert results["endpoint_api"] == CHAT_IMAGES
    assert f"<th>endpoint input</th><td>{CHAT_IMAGES}</td>" in (out / "report.html").read_text()
    (record,) = _lines(out)
    assert [t["action_text"] for t in record["turns"]] == [
        '<think>-</think><answer>do(action="Launch", app="Settings")</answer>',
        '<think>-</think><answer>finish(message="done")</answer>',
    ]
    assert record["end_reason"] == "finish" and record["engine"] == "openai-0"

    paths = [path for path, _ in script.requests]
    assert "/v1/completions" not in paths  # no turn went without its screenshots
    chats = [body for path, body in script.requests if path == "/v1/chat/completions"]
    texts = [tokenizer.decode(body["tokens"]) for path, body in script.requests if path == "/detokenize"]
    probe, *turns = chats  # one screenshot turn before any episode, then the episode's two turns
    assert probe["max_tokens"] == 1 and len(turns) == 2 and len(texts) == 3
    screens = [[_png(p["image_url"]["url"]) for p in t["messages"][0]["content"] if p["type"] == "image_url"]
               for t in turns]  # fmt: skip
    assert [len(s) for s in screens] == [1, 2]
    first, (older, latest) = screens[0][0], screens[1]
    assert np.array_equal(older, first) and not np.array_equal(latest, first)  # the home screen, then Settings
    assert first.ndim == 3 and first.shape[0] > first.shape[1] > 200  # a whole portrait phone screen
    for text, images in zip(texts[1:], (1, 2), strict=True):
        assert placeholder and text.count(placeholder) == images  # one per data URL, in the prompt's own text
        assert 'do(action="Swipe", direction=' in text  # MobileRL's system prompt
        current = text.rsplit(placeholder, 1)[1]  # the current screen: its app and its compressed XML
        assert re.search(r'\n\w+ "[^"\n]+" .*\[\d+,\d+,\d+,\d+\]', current), current
    assert '{"current_app": "Settings"}' in texts[2].rsplit(placeholder, 1)[1]
    for turn in turns:
        assert turn["chat_template"] == test_openai_engine.PASSTHROUGH_TEMPLATE and turn["temperature"] == 0.0


def _refusing_server(script: Script) -> ThreadingHTTPServer:
    """The fake endpoint as `vllm serve` without --trust-request-chat-template answers a request template."""

    class Refusing(make_handler(script)):
        def serve(self, body: dict) -> None:
            if self.path == "/v1/chat/completions" and body.get("chat_template") is not None:
                script.requests.append((self.path, body))
                message = (
                    "Chat template is passed with request, but --trust-request-chat-template is not set. "
                    "Refused request with untrusted chat template."
                )  # vLLM's own words
                self.send(400, json.dumps({"error": {"message": message, "type": "BadRequestError", "code": 400}}))
                return
            super().serve(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_an_endpoint_that_refuses_request_templates_fails_before_any_episode(
    tmp_path: Path, vl_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    from droidrl.eval.endpoint import EndpointRefused, start_endpoint

    script = Script()
    httpd = _refusing_server(script)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    tokenizer = AutoTokenizer.from_pretrained(vl_model_dir)

    async def without_screenshots() -> None:  # --observation xml: nothing needs the request template, no probe
        engine = await start_endpoint(url, "tiny", None, images=False, concurrency=1)
        await engine.close()

    try:
        with pytest.raises(EndpointRefused) as err:
            asyncio.run(start_endpoint(url, "tiny", tokenizer, images=True, concurrency=1))
        asyncio.run(without_screenshots())
        out = tmp_path / "refused"
        refused = _eval("--endpoint", url, "--served-model", "tiny", "--model", str(vl_model_dir), "--protocol",
                        "mobilerl", "--suite", "SystemWifiTurnOff", "--no-ray", "--out", str(out))  # fmt: skip
    finally:
        httpd.shutdown()
    message = str(err.value)
    assert "restart it with `vllm serve ... --trust-request-chat-template`" in message
    assert "--observation xml to evaluate without screenshots (recorded as a deviation)" in message
    probes = ["/v1/models", "/detokenize", "/v1/chat/completions"]
    assert [path for path, _ in script.requests] == [*probes, "/v1/models", *probes]
    # The command: one line naming the flag, exit 2, before any episode and before the folder holds an evaluation.
    assert refused.returncode == 2 and "Traceback" not in refused.stdout + refused.stderr
    said = " ".join(refused.stdout.split())  # one message (the console wraps it at its width)
    assert said.startswith(f"error: --endpoint {url}: screenshots need a request chat template: restart it with")
    assert "`vllm serve ... --trust-request-chat-template`" in said
    assert not (out / "eval.json").exists() and not (out / "episodes.jsonl").exists()
    (_, probe) = script.requests[2]
    (image,) = [p for p in probe["messages"][0]["content"] if p["type"] == "image_url"]
    assert _png(image["image_url"]["url"]).shape == (252, 112, 3)
