"""Shared fixtures: a simulated phone, its adbd on a free port, and a private real adb server."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

ADB = "/usr/bin/adb"  # Debian's adb (29.0.6); CI installs it, tests never skip without it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AdbServer:
    """A real adb server on a private port, with its own HOME (so its own adbkey)."""

    port: int
    env: dict[str, str]
    adb_path: str = ADB

    def adb(self, *args: str, input: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        """Run `adb -P <port> ARGS` against this server; stdin is `input`, never the test's terminal."""
        return subprocess.run(
            [ADB, "-P", str(self.port), *args],
            env=self.env,
            input=input,
            capture_output=True,
            timeout=timeout,
        )

    def devices(self) -> dict[str, str]:
        """serial -> state, from `adb devices`."""
        out = self.adb("devices").stdout.decode()
        return dict(line.split("\t") for line in out.splitlines()[1:] if "\t" in line)

    def wait_for_device(self, serial: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.devices().get(serial) != "device":
            if time.monotonic() > deadline:
                raise TimeoutError(f"adb server on port {self.port} never listed {serial!r}: {self.devices()}")
            time.sleep(0.05)


def start_adb_server(home: Path, scan_emulators: bool = False) -> AdbServer:
    """Start `adb start-server` on a free port. With scan_emulators=False the server does not probe
    ports 5555..5585 for emulators, so it only sees phones that are connected or announced explicitly.
    """
    if not os.access(ADB, os.X_OK):
        pytest.fail(f"{ADB} is missing: these tests need Debian's real adb (apt-get install adb)")
    port = free_port()
    env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    env.pop("ANDROID_SERIAL", None)
    # The scan always starts at 5555; a maximum below it turns probing off.
    env["ADB_LOCAL_TRANSPORT_MAX_PORT"] = "5555" if scan_emulators else "0"
    server = AdbServer(port, env)
    result = server.adb("start-server")
    if result.returncode != 0:
        pytest.fail(f"adb start-server on port {port} failed: {result.stderr.decode()}")
    return server


@pytest.fixture
def adb_server_factory(tmp_path: Path) -> Iterator[Callable[..., AdbServer]]:
    """Starts private real adb servers (`factory(scan_emulators=False)`); all are killed at teardown."""
    servers: list[AdbServer] = []

    def factory(scan_emulators: bool = False) -> AdbServer:
        home = tmp_path / f"adb-home-{len(servers)}"
        home.mkdir()
        servers.append(start_adb_server(home, scan_emulators))
        return servers[-1]

    yield factory
    for server in servers:
        server.adb("kill-server")


@pytest.fixture
def adb_server(adb_server_factory: Callable[..., AdbServer]) -> AdbServer:
    """A private real adb server that finds no emulator by itself."""
    return adb_server_factory()


@pytest.fixture
def sim_phone() -> Phone:
    from droidrl.envs.sim.phone import Phone  # imported here so a broken phone fails only its users

    return Phone()


@dataclass
class PhoneAdbd:
    phone: Phone
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def sim_phone_adbd(sim_phone: Phone) -> Iterator[PhoneAdbd]:
    """`sim_phone` served by our adbd on a free port in a background thread."""
    from droidrl.envs.sim.adbd import adbd_in_thread

    with adbd_in_thread(sim_phone, port=0) as port:
        yield PhoneAdbd(sim_phone, port)
