"""Shared fixtures: a simulated phone, its adbd on a free port, and a private real adb server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.ports import free_server_port
from droidrl.envs.sim.adbd import announce_to_adb_server, serve_adbd
from droidrl.envs.sim.console import serve_console
from droidrl.envs.sim.phone import Phone

ADB = "/usr/bin/adb"  # Debian's adb (29.0.6); CI installs it, tests never skip without it


def free_port() -> int:
    """A free port below the ephemeral range, so a client dialling it early cannot connect to itself."""
    return free_server_port()


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


# ---- a simulated emulator in this process --------------------------------------------------------
def free_port_pair() -> int:
    """A console port N with N and N+1 both free (the emulator's console/adb pair)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65535:  # any pair works; the emulator's even-console habit is not needed
            try:
                with socket.socket() as a, socket.socket() as b:
                    a.bind(("127.0.0.1", port))
                    b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port pair")


class ThreadedEmulator:
    """A phone's adbd (port N+1) and console (port N) on an event loop in a thread; `kill()` ends both."""

    def __init__(self, phone: Phone, home: Path, *, read_only: bool = False) -> None:
        self.phone = phone
        self.console_port = free_port_pair()
        self.adb_port = self.console_port + 1
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> list[asyncio.Server]:
            adbd = await serve_adbd(phone, "127.0.0.1", self.adb_port)
            console = await serve_console(phone, "127.0.0.1", self.console_port, read_only=read_only, home=home)
            return [adbd, console]

        self.servers = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    @property
    def serial(self) -> str:
        return f"emulator-{self.console_port}"

    def announce(self, server: AdbServer) -> None:
        assert announce_to_adb_server(self.adb_port, server.port)
        server.wait_for_device(self.serial)

    def kill(self) -> None:
        """Stop listening and drop every open connection, as a crashed emulator would."""

        async def shutdown() -> None:
            for server in self.servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME for the console token: the console writes it, AdbDevice's console client reads it."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


@pytest.fixture
def emulator(home: Path, adb_server: AdbServer) -> Iterator[ThreadedEmulator]:
    emu = ThreadedEmulator(Phone(), home)
    emu.announce(adb_server)
    yield emu
    emu.kill()


@pytest.fixture
def adb_device(emulator: ThreadedEmulator, adb_server: AdbServer) -> AdbDevice:
    return AdbDevice(emulator.serial, adb_port=adb_server.port)


def device_fingerprint(device) -> str:
    """A hash of everything a simulated phone's user or checker can observe: files, settings, screen.

    Modification times count under /sdcard (file managers show them) but not for app-private files
    under /data: a setup pushes those with the host's clock, as `adb push` does on a real phone.
    """
    import hashlib

    files, meta = device.phone.fs.state()
    digest = hashlib.sha256()
    for path in sorted(files):
        stamp = b"" if path.startswith("/data/") else repr(meta.get(path)).encode()
        digest.update(path.encode() + b"\0" + files[path] + stamp)
    settings = device.phone.state.settings
    digest.update(repr(sorted((ns, sorted(v.items())) for ns, v in settings.items())).encode())
    digest.update(device.ui_xml().encode() + device.screenshot().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny-text policy (random weights, the project's tokenizer), built once per test run; read-only."""
    from droidrl.models.presets import init_model

    return init_model("tiny-text", tmp_path_factory.mktemp("tiny") / "tiny-text")


@pytest.fixture(scope="session")
def tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def hf_model(path: Path):
    """The HF model in `path` in float32, for reference logprobs."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def perturbed(path: Path, seed: int) -> dict:
    """The HF model's state dict plus seeded noise: new weights that clearly change the logprobs."""
    import torch

    model = hf_model(path)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return model.state_dict()


# ---- the tiny vision-language model and real phone screens -----------------------------------------------
@pytest.fixture(scope="session")
def vl_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-vl (Qwen2.5-VL) model with random weights, made once per test session."""
    from droidrl.models.presets import init_model

    return init_model("tiny-vl", tmp_path_factory.mktemp("vl") / "tiny-vl")


@pytest.fixture(scope="session")
def glm4v_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-glm4v (GLM-4.1V, the MobileRL-9B architecture) model with random weights, made once per session."""
    from droidrl.models.presets import init_model

    return init_model("tiny-glm4v", tmp_path_factory.mktemp("glm4v") / "tiny-glm4v")


VISION_PRESETS = ("tiny-vl", "tiny-glm4v")


@pytest.fixture(scope="session", params=VISION_PRESETS)
def vision_model_dir(request: pytest.FixtureRequest) -> Path:
    """Each vision family's tiny model in turn (Qwen2.5-VL, GLM-4.1V): tests using it run once per family."""
    fixture = {"tiny-vl": "vl_model_dir", "tiny-glm4v": "glm4v_model_dir"}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture(scope="session")
def phone_screens() -> list:
    """Two real screens of the simulated phone (home, then Contacts), downscaled 4x, as PNG observations."""
    import io

    from PIL import Image

    from droidrl.envs.actions import APP_PACKAGES
    from droidrl.envs.sim_device import SimDevice
    from droidrl.rollout.envpool import Observation

    device = SimDevice()
    screens = []
    for app in ("com.google.android.apps.nexuslauncher", APP_PACKAGES["Contacts"]):
        if app != device.current_app():
            device.phone.launch(app)
        shot = device.screenshot()
        png = io.BytesIO()
        Image.fromarray(shot).resize((shot.shape[1] // 4, shot.shape[0] // 4)).save(png, format="PNG")
        screens.append(Observation(app, device.ui_xml(), png.getvalue(), device.size))
    assert screens[0].screenshot_png != screens[1].screenshot_png
    return screens


# ---- test tiers: `pytest -m "not slow"` for the quick loop; plain `pytest` (CI) runs everything -------------
# Modules that start DeepSpeed, Ray, vLLM, whole training runs, emulator farms, droidrl-emulator processes under
# android_env or android_world, or record whole episodes. Slow tests in otherwise quick modules carry
# `@pytest.mark.slow` themselves (expert/random runs over every task, fuzzing, CPU-budget and timing tests).
SLOW_MODULES = {
    "test_android_env",
    "test_android_world",
    "test_checkpoints",
    "test_cli",
    "test_farm",
    "test_grpc_device",
    "test_learner",
    "test_learner_group",
    "test_learner_kl_lora",
    "test_learner_vision",
    "test_report",
    "test_rollout_farm",
    "test_rollout_vision",
    "test_router",
    "test_sft",
    "test_train",
    "test_vllm_engine",
}


def _has_cuda_gpu() -> bool:
    """An NVIDIA GPU the driver lists (without importing torch, which takes seconds)."""
    return Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make android_world importable before any test runs (it is not on PyPI).

    Its pinned copy in ../shared/third_party is installed once per checkout into build/android_world, so the
    tests that use android_world's own helpers run whatever their order; where the copy is absent they skip.
    """
    from android_world_support import import_android_world

    with contextlib.suppress(FileNotFoundError):
        import_android_world(Path(__file__).resolve().parent.parent / "build" / "android_world")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("gpu") is not None:
            if not _has_cuda_gpu():
                item.add_marker(no_gpu)
        elif item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.unit)
