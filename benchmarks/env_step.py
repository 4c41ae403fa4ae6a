"""AndroidEnv throughput on SimDevice and on AdbDevice (a `droidrl-emulator` behind Debian's adb), side by side.

Per device: env.step calls per second with random taps (parse + act + screenshot + UI dump), expert
episodes (one template per app), and reset times: a cold reset (base snapshot, task setup, save the
task's snapshot) and a warm one (load the task's own snapshot).

    python benchmarks/env_step.py [--steps 100] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from droidrl.envs.actions import format_action
from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.device import Device
from droidrl.envs.env import AndroidEnv
from droidrl.envs.sim.farm import start_farm
from droidrl.envs.sim_device import SimDevice
from droidrl.envs.tasks.expert import expert_action
from droidrl.envs.tasks.registry import templates


def one_template_per_app() -> list[str]:
    chosen: dict[str, str] = {}
    for name, template in templates().items():
        chosen.setdefault(template.apps[0], name)
    return sorted(chosen.values())


def measure(device: Device, steps: int, seeds: int) -> dict[str, float]:
    env = AndroidEnv(device, wait_scale=0.0)
    names = one_template_per_app()
    cold, warm = [], []
    for name in names:
        for seed in range(seeds):
            cold.append(_reset_seconds(env, name, seed))
            warm.append(_reset_seconds(env, name, seed))

    rng = random.Random(0)
    env.reset(seed=0, options={"task": names[0]})
    step_s = []
    for _ in range(steps):
        started = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(
            f'do(action="Tap", element=[{rng.randint(0, 999)}, {rng.randint(0, 999)}])'
        )
        step_s.append(time.perf_counter() - started)
        if terminated or truncated:
            env.reset(seed=0, options={"task": names[0]})

    expert_steps, expert_s, solved, episodes = 0, 0.0, 0, 0
    for name in names:
        env.reset(seed=0, options={"task": name})
        started = time.perf_counter()
        while True:
            _, reward, terminated, truncated, _ = env.step(format_action(expert_action(env.task, env.device)))
            expert_steps += 1
            if terminated or truncated:
                break
        expert_s += time.perf_counter() - started
        solved += reward == 1.0
        episodes += 1
    return {
        "random-tap steps/s": len(step_s) / sum(step_s),
        "step p50 ms": statistics.median(step_s) * 1000,
        "expert steps/s (incl. expert's UI reads)": expert_steps / expert_s,
        "expert episodes solved": solved / episodes,
        "cold reset p50 ms": statistics.median(cold) * 1000,
        "warm reset p50 ms": statistics.median(warm) * 1000,
    }


def _reset_seconds(env: AndroidEnv, name: str, seed: int) -> float:
    started = time.perf_counter()
    env.reset(seed=seed, options={"task": name})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="random-tap steps per device")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per template for reset timings")
    args = parser.parse_args()
    console = Console()
    results = {}
    with console.status("SimDevice"):
        results["SimDevice"] = measure(SimDevice(), args.steps, args.seeds)
    with tempfile.TemporaryDirectory(prefix="droidrl-bench-") as tmp:
        with console.status("starting droidrl-emulator behind a private adb server"):
            farm = start_farm(1, Path(tmp))
        os.environ["HOME"] = tmp  # the console auth token the emulator wrote
        try:
            subprocess.run([*farm.adb, "-s", farm.serials[0], "wait-for-device"], env=farm.env, timeout=60)
            device = AdbDevice(farm.serials[0], adb_port=int(farm.env["ANDROID_ADB_SERVER_PORT"]))
            with console.status("AdbDevice"):
                results["AdbDevice"] = measure(device, args.steps, args.seeds)
        finally:
            farm.stop()

    table = Table(title=f"AndroidEnv on 1080x2400, {len(one_template_per_app())} templates (one per app)")
    table.add_column("figure")
    for name in results:
        table.add_column(name, justify="right")
    table.add_column("SimDevice advantage", justify="right")
    for key in results["SimDevice"]:
        sim, adb = results["SimDevice"][key], results["AdbDevice"][key]
        faster = adb / sim if key.endswith(" ms") else sim / adb  # times: lower is better
        ratio = f"{faster:.1f}x" if key != "expert episodes solved" else "-"
        table.add_row(key, f"{sim:.2f}", f"{adb:.2f}", ratio)
    console.print(table)


if __name__ == "__main__":
    main()
