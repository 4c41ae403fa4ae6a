"""AndroidEnv throughput on SimDevice, AdbDevice and GrpcDevice, side by side in one run.

AdbDevice and GrpcDevice drive the same `droidrl-emulator -grpc PORT` process behind a private Debian adb
server: AdbDevice over adb alone, GrpcDevice with screenshots, touches, keys and snapshots over the emulator's
gRPC service. Per device: milliseconds per screenshot and per tap, env.step calls per second with random
taps (parse + act + screenshot + UI dump), expert episodes (one template per app), and reset times: a cold
reset (base snapshot, task setup, save the task's snapshot) and a warm one (load the task's own snapshot).

    python benchmarks/env_step.py [--steps 100] [--seeds 3] [--calls 30]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from droidrl.envs.actions import format_action
from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.device import Device
from droidrl.envs.env import AndroidEnv
from droidrl.envs.grpc_device import GrpcDevice
from droidrl.envs.ports import free_server_port, port_is_free
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


def primitives(device: Device, calls: int) -> dict[str, float]:
    """Median milliseconds of one screenshot and one tap (on the status bar, where a tap changes nothing)."""
    device.key("HOME")
    shots, taps = [], []
    for _ in range(calls):
        started = time.perf_counter()
        device.screenshot()
        shots.append(time.perf_counter() - started)
        started = time.perf_counter()
        device.tap(540, 40)
        taps.append(time.perf_counter() - started)
    return {"screenshot p50 ms": statistics.median(shots) * 1000, "tap p50 ms": statistics.median(taps) * 1000}


@dataclass
class GrpcEmulator:
    """A private adb server and one `droidrl-emulator -grpc PORT` process listed by it."""

    serial: str
    grpc_port: int
    adb_port: int


@contextmanager
def grpc_emulator(workdir: Path) -> Iterator[GrpcEmulator]:
    """Start the adb server and the emulator; stop both (and only them) on the way out."""
    adb_binary = shutil.which("adb")
    if adb_binary is None:
        raise SystemExit("the `adb` binary is missing: install Debian's package (apt-get install adb)")
    adb_port, grpc_port, console = free_server_port(), free_server_port(), free_server_port()
    while not (console % 2 == 0 and port_is_free(console + 1)):
        console = free_server_port()
    env = dict(os.environ, HOME=str(workdir), ANDROID_AVD_HOME=str(workdir / "avd"))
    env.update(ANDROID_ADB_SERVER_PORT=str(adb_port), ADB_LOCAL_TRANSPORT_MAX_PORT="0")
    adb = [adb_binary, "-P", str(adb_port)]
    subprocess.run([*adb, "start-server"], env=env, check=True, capture_output=True, timeout=60)
    command = [sys.executable, "-m", "droidrl.envs.sim.emulator", "-avd", "droidrl_bench", "-no-window"]
    command += ["-no-snapshot", "-ports", f"{console},{console + 1}", "-grpc", str(grpc_port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            if "Started GRPC server" in line:
                break
        else:
            raise SystemExit(f"droidrl-emulator exited with {process.wait()} before serving gRPC")
        serial = f"emulator-{console}"
        subprocess.run([*adb, "-s", serial, "wait-for-device"], env=env, timeout=60, check=True)
        os.environ["HOME"] = str(workdir)  # the console auth token the emulator wrote (AdbDevice snapshots)
        yield GrpcEmulator(serial, grpc_port, adb_port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        subprocess.run([*adb, "kill-server"], env=env, capture_output=True, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="random-tap steps per device")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per template for reset timings")
    parser.add_argument("--calls", type=int, default=30, help="screenshots and taps timed per device")
    args = parser.parse_args()
    console = Console()
    results: dict[str, dict[str, float]] = {}

    def run(name: str, device: Device) -> None:
        with console.status(name):
            results[name] = {**primitives(device, args.calls), **measure(device, args.steps, args.seeds)}

    run("SimDevice", SimDevice())
    with tempfile.TemporaryDirectory(prefix="droidrl-bench-") as tmp:
        console.print("starting droidrl-emulator -grpc behind a private adb server")
        with grpc_emulator(Path(tmp)) as phone:
            run("AdbDevice", AdbDevice(phone.serial, adb_port=phone.adb_port))
            device = GrpcDevice(phone.serial, phone.grpc_port, adb_port=phone.adb_port)
            run("GrpcDevice", device)
            device.close()

    table = Table(title=f"AndroidEnv on 1080x2400, {len(one_template_per_app())} templates (one per app)")
    table.add_column("figure")
    for name in results:
        table.add_column(name, justify="right")
    table.add_column("GrpcDevice vs AdbDevice", justify="right")
    for key in results["SimDevice"]:
        adb, grpc_ = results["AdbDevice"][key], results["GrpcDevice"][key]
        faster = adb / grpc_ if key.endswith(" ms") else grpc_ / adb  # times: lower is better
        ratio = f"{faster:.1f}x faster" if key != "expert episodes solved" else "-"
        table.add_row(key, *(f"{results[name][key]:.2f}" for name in results), ratio)
    console.print(table)
    console.print(
        f"--steps {args.steps} --seeds {args.seeds} --calls {args.calls}; AdbDevice and GrpcDevice share one "
        "droidrl-emulator process; timings are wall clock on this machine"
    )


if __name__ == "__main__":
    main()
