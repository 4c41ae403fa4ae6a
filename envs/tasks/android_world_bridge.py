"""android_world's own env over a droidrl `Device`, for running its tasks' initialize/is_successful/tear_down.

android_world's tasks act on the phone through adb (android_env's `AdbController` and `AdbCallParser`), so
the device must be reachable by an adb server: an `AdbDevice` (emulator or `droidrl-emulator`) is used by its
serial and server port; an in-process `SimDevice` is served by the simulated phone's own adbd and console
(threads in this process) on a private adb server (`adb nodaemon server`, a child process that dies with this
one) that this module starts on first use.
UI elements come from `uiautomator dump` (android_world's UIAUTOMATOR a11y method), which needs no forwarder.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import io
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from droidrl.envs.device import Device
from droidrl.envs.ports import free_server_port, port_is_free

DEFAULT_ADB = "/usr/bin/adb"
ADB_TIMEOUT_S = 60.0


class AndroidWorldUnavailable(ValueError):
    """android_world (or adb) is needed for an android_world task and is missing (a configuration error)."""


def adb_path() -> str:
    """The `adb` binary: $ADB, else adb on PATH, else Debian's /usr/bin/adb."""
    found = os.environ.get("ADB") or shutil.which("adb") or DEFAULT_ADB
    if not os.access(found, os.X_OK):
        raise AndroidWorldUnavailable(
            f"android_world's tasks drive the phone through adb, and no adb binary was found ({found}); "
            "install platform-tools (Debian: apt-get install adb) or set $ADB"
        )
    return found


# ---- a private adb server and the simulated phone's adbd/console, once per process ---------------------------
@dataclass
class _AdbServer:
    port: int
    env: dict[str, str]
    adb: str
    process: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        command = [self.adb, "-P", str(self.port), *args]
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)

    def devices(self) -> dict[str, str]:
        out = self.run("devices").stdout
        return dict(line.split("\t", 1) for line in out.splitlines()[1:] if "\t" in line)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


_lock = threading.Lock()
_server: _AdbServer | None = None
_PR_SET_PDEATHSIG = 1
# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits: fork from one long-lived thread.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aw-adb-spawner")


def _die_with_parent() -> None:  # in the child between fork and exec
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _private_adb_server(timeout_s: float = 30.0) -> _AdbServer:
    """This process's adb server for simulated phones: `adb nodaemon server` as a child that dies with it."""
    global _server
    with _lock:
        if _server is not None and _server.process is not None and _server.process.poll() is None:
            return _server
        env = dict(os.environ)
        env.pop("ANDROID_SERIAL", None)
        env["ADB_LOCAL_TRANSPORT_MAX_PORT"] = "0"  # no emulator scan: only the phones announced to it
        server = _AdbServer(free_server_port(), env, adb_path())
        command = [server.adb, "-P", str(server.port), "nodaemon", "server"]

        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

        server.process = _spawner.submit(spawn).result()
        deadline = time.monotonic() + timeout_s
        # Wait by connecting, not by an adb client call: a client that finds no server starts a daemon itself.
        while not _listening(server.port):
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"`{' '.join(command)}` did not start listening (exit {server.process.poll()})")
            time.sleep(0.05)
        atexit.register(server.stop)
        _server = server
        return _server


def _free_port_pair() -> int:
    """N with N and N+1 free (console, adbd), below the ephemeral range and outside 5554-5585."""
    for _ in range(200):
        port = free_server_port(low=20000)
        if port % 2 == 0 and port_is_free(port + 1):
            return port
    raise OSError("no free console/adbd port pair")


class _ServedPhone:
    """A simulated phone's adbd (N+1) and console (N) on an event loop in a daemon thread."""

    def __init__(self, phone: Any) -> None:
        from droidrl.envs.sim.adbd import serve_adbd
        from droidrl.envs.sim.console import serve_console

        self.console_port = _free_port_pair()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="aw-sim-adbd").start()

        async def start() -> list[asyncio.Server]:
            adbd = await serve_adbd(phone, "127.0.0.1", self.console_port + 1)
            # The console's token lives in $HOME, where `adb emu` (android_world's SMS helper) reads it.
            console = await serve_console(phone, "127.0.0.1", self.console_port)
            return [adbd, console]

        self.servers = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)

    @property
    def serial(self) -> str:
        return f"emulator-{self.console_port}"

    def close(self) -> None:
        async def shutdown() -> None:
            for server in self.servers:
                server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:  # open adb/console connections, dropped as a stopped emulator drops them
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)


def _announce(served: _ServedPhone, server: _AdbServer, timeout_s: float = 20.0) -> None:
    """Make `server` list the served phone (again, after android_env restarted the server)."""
    from droidrl.envs.sim.adbd import announce_to_adb_server

    deadline = time.monotonic() + timeout_s
    while server.devices().get(served.serial) != "device":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the adb server on port {server.port} never listed {served.serial}")
        announce_to_adb_server(served.console_port + 1, server.port)
        time.sleep(0.1)


# ---- android_world's env over adb -----------------------------------------------------------------------------
@dataclass
class AdbAddress:
    """Where an adb client reaches a device: its serial on the adb server at `server_port`."""

    serial: str
    server_port: int


def _adb_only_android_env(adb: str, address: AdbAddress) -> Any:
    """An android_env `AndroidEnvInterface` whose only channel is adb (screens by screencap)."""
    import dm_env
    import numpy as np
    from android_env import env_interface
    from android_env.components import adb_call_parser, adb_controller, config_classes
    from PIL import Image

    config = config_classes.AdbControllerConfig(
        adb_path=adb, adb_server_port=address.server_port, device_name=address.serial, default_timeout=ADB_TIMEOUT_S
    )

    class SharedServerAdbController(adb_controller.AdbController):
        """android_env's controller, except that a failed command does not kill-server.

        The adb server is shared (every emulator of the node, or this process's simulated phones), not android_env's.
        """

        def _restart_server(self, timeout: float | None = None) -> None:
            return None

    saved = {key: os.environ.get(key) for key in ("ANDROID_HOME", "ANDROID_ADB_SERVER_PORT")}
    controller = SharedServerAdbController(config)
    # AdbController deletes these from os.environ (for its own subprocesses); the rest of this process keeps them.
    os.environ.update({key: value for key, value in saved.items() if value is not None})
    parser = adb_call_parser.AdbCallParser(controller)

    class AdbOnlyAndroidEnv(env_interface.AndroidEnvInterface):
        def _timestep(self) -> dm_env.TimeStep:
            png = controller.execute_command(["exec-out", "screencap", "-p"])
            return dm_env.restart({"pixels": np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))})

        def action_spec(self) -> dict:
            return {}

        def observation_spec(self) -> dict:
            return {}

        def reset(self) -> dm_env.TimeStep:
            return self._timestep()

        def step(self, action: dict) -> dm_env.TimeStep:
            return self._timestep()

        def close(self) -> None:
            pass

        def execute_adb_call(self, call: Any) -> Any:
            return parser.parse(call)

    return AdbOnlyAndroidEnv()


@dataclass
class WorldEnv:
    """android_world's `AsyncAndroidEnv` for one device, and how to make sure adb still reaches it."""

    env: Any
    address: AdbAddress
    served: _ServedPhone | None = None

    def ensure_reachable(self) -> None:
        if self.served is not None:
            _announce(self.served, _private_adb_server())


_world_envs: weakref.WeakKeyDictionary[Any, WorldEnv] = weakref.WeakKeyDictionary()


def _address(device: Device, served: _ServedPhone | None = None) -> tuple[AdbAddress, _ServedPhone | None]:
    phone = getattr(device, "phone", None)
    if phone is not None:  # an in-process simulated phone: serve it over adb
        served = served or _ServedPhone(phone)
        server = _private_adb_server()
        _announce(served, server)
        return AdbAddress(served.serial, server.port), served
    serial, port = getattr(device, "serial", None), getattr(device, "adb_port", None)
    if port is None:  # GrpcDevice: the screen over gRPC, the shell over its AdbDevice
        port = getattr(getattr(device, "_adb", None), "adb_port", None)
    if not serial or not port:
        raise AndroidWorldUnavailable(
            f"android_world's tasks need an adb-reachable phone; {device!r} has no adb serial and server port"
        )
    return AdbAddress(str(serial), int(port)), None


def world_env(device: Device) -> WorldEnv:
    """android_world's env over `device` (made once per device, reused across episodes)."""
    with _lock:
        cached = _world_envs.get(device)
    # After the private adb server died, a new one runs on another port: the same phone, a new controller.
    current = cached is not None and (cached.served is None or cached.address.server_port == _private_adb_server().port)
    if cached is not None and current:
        cached.ensure_reachable()
        return cached
    from android_world.env import android_world_controller, interface

    address, served = _address(device, cached.served if cached is not None else None)
    controller = android_world_controller.AndroidWorldController(
        _adb_only_android_env(adb_path(), address), a11y_method=android_world_controller.A11yMethod.UIAUTOMATOR
    )
    made = WorldEnv(interface.AsyncAndroidEnv(controller), address, served)
    if served is not None and cached is None:
        weakref.finalize(device, served.close)
    with _lock:
        _world_envs[device] = made
    return made


def private_adb_server_pid() -> int | None:
    """The pid of this process's private adb server for simulated phones (None before first use)."""
    with _lock:
        return _server.process.pid if _server is not None and _server.process is not None else None
