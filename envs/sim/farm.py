"""The emulator-process farm: a private adb server plus `droidrl-emulator` processes serving simulated phones.

`start_farm(count, workdir)` boots `count` phones that real adb clients reach as `emulator-PORT`
(`droidrl farm` checks them; benchmarks use them as a library). Phones in Ray env actors are
cluster/env_pool.py's RayEnvPool.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from droidrl.envs.ports import free_server_port, port_is_free


class FarmStartError(RuntimeError):
    """The farm could not start (no adb binary, no free ports, an emulator process failed); says what to do."""


def free_port_run(count: int, start: int = 15554) -> int:
    """First even port P from `start` such that P .. P + 2*count - 1 are all free."""
    for base in range(start, 60000, 2):
        if all(port_is_free(p) for p in range(base, base + 2 * count)):
            return base
    raise FarmStartError(f"no run of {2 * count} free ports above {start}")


@dataclass
class Farm:
    """A private adb server plus one `droidrl-emulator` process serving `count` phones."""

    adb: list[str]
    env: dict[str, str]
    process: subprocess.Popen[str]
    serials: list[str]
    console_ports: list[int]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        subprocess.run([*self.adb, "kill-server"], env=self.env, capture_output=True, timeout=30)


def start_farm(count: int, workdir: Path) -> Farm:
    """Start a private adb server and `count` simulated phones as one droidrl-emulator process; wait until all boot."""
    adb_binary = shutil.which("adb")
    if adb_binary is None:
        raise FarmStartError("the `adb` binary is missing: install Debian's package (apt-get install adb)")
    server_port = free_server_port()  # never an ephemeral port: see envs/ports.py
    env = dict(
        os.environ,
        HOME=str(workdir),  # console token and adb keys stay inside the run directory
        ANDROID_AVD_HOME=str(workdir / "avd"),
        ANDROID_ADB_SERVER_PORT=str(server_port),
        ADB_LOCAL_TRANSPORT_MAX_PORT="0",  # the farm announces itself; don't probe other emulators
    )
    adb = [adb_binary, "-P", str(server_port)]
    subprocess.run([*adb, "start-server"], env=env, check=True, capture_output=True, timeout=60)
    base = free_port_run(count)
    command = [
        sys.executable,
        "-m",
        "droidrl.envs.sim.emulator",
        "-avd",
        "droidrl_farm",
        "-count",
        str(count),
        "-ports",
        f"{base},{base + 1}",
        "-no-window",
        "-no-snapshot",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = 0
    for line in process.stdout:
        if " ready: " in line:
            ready += 1
            if ready == count:
                break
        if line.startswith("ERROR"):
            raise FarmStartError(f"droidrl-emulator failed: {line.strip()}")
    if ready < count:
        raise FarmStartError(f"droidrl-emulator exited with {process.wait()} after starting {ready}/{count} phones")
    ports = [base + 2 * i for i in range(count)]
    return Farm(adb, env, process, [f"emulator-{p}" for p in ports], ports)
