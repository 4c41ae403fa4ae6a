"""android_env's own AndroidEnv, started by its EmulatorLauncher with `droidrl-emulator` as the emulator binary."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from android_env import loader
from android_env.components import action_type, config_classes, logcat_thread
from android_env.proto import adb_pb2
from android_env.wrappers import a11y_grpc_wrapper
from apk_support import forwarder_apk
from conftest import free_port

from droidrl.envs.sim.phone import Phone

pytestmark = pytest.mark.adb

TASK = """
id: "droidrl_home"
name: "Home screen of the simulated phone (no APK, no setup)"
description: "Touch the screen; nothing is scored."
max_episode_steps: 50
log_parsing_config { filters: "ActivityTaskManager:I" }
"""


def fake_sdk(root: Path) -> Path:
    """An Android SDK layout whose emulator/emulator is the installed `droidrl-emulator` console script."""
    script = Path(sys.executable).parent / "droidrl-emulator"
    assert script.exists(), "the droidrl-emulator console script is not installed in this environment"
    (root / "emulator").mkdir(parents=True)
    emulator = root / "emulator" / "emulator"
    emulator.symlink_to(script)
    return emulator


class Launched:
    """An AndroidEnv that android_env's launcher started; `close()` shuts it down and kills the adb server."""

    def __init__(self, tmp_path: Path) -> None:
        sdk = tmp_path / "sdk"
        task_path = tmp_path / "task.textproto"
        task_path.write_text(TASK)
        self.adb_server_port = free_port()
        self.avd_home = tmp_path / "avd"
        self.config = config_classes.AndroidEnvConfig(
            task=config_classes.FilesystemTaskConfig(path=str(task_path)),
            simulator=config_classes.EmulatorConfig(
                emulator_launcher=config_classes.EmulatorLauncherConfig(
                    emulator_path=str(fake_sdk(sdk)),
                    android_sdk_root=str(sdk),
                    android_avd_home=str(self.avd_home),
                    avd_name="droidrl_test",
                    tmp_dir=str(tmp_path / "launcher"),
                ),
                adb_controller=config_classes.AdbControllerConfig(
                    adb_path="/usr/bin/adb", adb_server_port=self.adb_server_port
                ),
            ),
        )
        self.env = None
        self.process = None

    def load(self):
        self.env = loader.load(self.config)
        self.process = self.env._coordinator._simulator._launcher._emulator  # the emulator process it started
        return self.env

    def close(self) -> None:
        try:
            if self.env is not None:
                self.env.close()
        finally:
            subprocess.run(["/usr/bin/adb", "-P", str(self.adb_server_port), "kill-server"], capture_output=True)
            if self.process is not None and self.process.poll() is None:
                self.process.kill()  # only if close() failed to shut it down (the test then fails below)
                self.process.wait()


@pytest.fixture
def launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launched]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # adb's key and the console token stay private
    (tmp_path / "home").mkdir()
    launched = Launched(tmp_path)
    yield launched
    launched.close()


def settings_icon() -> tuple[float, float]:
    """The launcher's Settings icon in android_env's [0, 1] touch coordinates."""
    x, y = Phone().find(text="Settings").center
    return x / 1080, y / 2400


def touch(env, kind: int, position: tuple[float, float]):
    return env.step({"action_type": np.array(kind), "touch_position": np.array(position, np.float32)})


def test_android_env_launches_droidrl_emulator_resets_steps_and_closes(launched: Launched) -> None:
    env = launched.load()
    assert launched.process is not None and launched.process.poll() is None
    assert (launched.avd_home / "droidrl_test.avd").is_dir()  # the AVD the launcher named

    assert env.observation_spec()["pixels"].shape == (2400, 1080, 3)
    timestep = env.reset()
    assert timestep.first()
    pixels = timestep.observation["pixels"]
    assert pixels.shape == (2400, 1080, 3) and pixels.dtype == np.uint8
    assert pixels.std() > 0  # a drawn screen, not a blank frame

    # android_env's LogcatThread reads `adb logcat -v epoch` as it streams: it sees the activity start.
    started = threading.Event()
    listener = logcat_thread.EventListener(re.compile(r"START u0 .*com\.android\.settings"), lambda *_: started.set())
    env._coordinator._task_manager._logcat_thread.add_event_listener(listener)
    for kind in (action_type.ActionType.TOUCH, action_type.ActionType.LIFT):
        timestep = touch(env, kind, settings_icon())
        assert timestep.observation["pixels"].shape == (2400, 1080, 3)
    assert not np.array_equal(timestep.observation["pixels"], pixels)  # Settings opened
    assert started.wait(10), "android_env's logcat thread never saw ActivityTaskManager's START line"
    current = env.execute_adb_call(adb_pb2.AdbRequest(get_current_activity=adb_pb2.AdbRequest.GetCurrentActivity()))
    assert current.get_current_activity.full_activity == "com.android.settings/com.android.settings.Settings"

    env.close()
    launched.env = None
    assert launched.process.wait(10) == 0  # shut down over gRPC (setVmState SHUTDOWN), exit status 0


def test_a11y_grpc_wrapper_installs_the_forwarder_and_receives_forests(
    launched: Launched, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the download of the forwarder APK is replaced (android_env fetches it from the internet).
    monkeypatch.setattr(a11y_grpc_wrapper, "_get_accessibility_forwarder_apk", forwarder_apk)
    env = a11y_grpc_wrapper.A11yGrpcWrapper(
        launched.load(),
        install_a11y_forwarding=True,
        start_a11y_service=True,
        enable_a11y_tree_info=True,
        latest_a11y_info_only=True,
    )
    launched.env = env
    env.reset()
    forests = []
    deadline = time.monotonic() + 10
    while not forests and time.monotonic() < deadline:
        forests = list(env.accumulate_new_extras().get("accessibility_tree", []))
        time.sleep(0.2)
    assert forests, "no accessibility forest reached the wrapper's gRPC server"
    texts = {node.text for window in forests[-1].windows for node in window.tree.nodes}
    assert {"Settings", "Clock"} <= texts

    for kind in (action_type.ActionType.TOUCH, action_type.ActionType.LIFT):
        touch(env, kind, settings_icon())
    deadline = time.monotonic() + 10
    while "Network & internet" not in texts and time.monotonic() < deadline:
        time.sleep(0.2)
        env.task_extras()  # start accumulating afresh
        for forest in env.accumulate_new_extras().get("accessibility_tree", []):
            texts = {node.text for window in forest.windows for node in window.tree.nodes}
    assert "Network & internet" in texts  # the forwarder follows the UI
