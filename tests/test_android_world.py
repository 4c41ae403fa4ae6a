"""android_world, unchanged, against `droidrl-emulator`: its env launcher, its env API, and its tasks with experts.

android_world is installed from the pinned copy in ../shared/third_party when it is not importable. Its
launcher talks to the adb server on the default port 5037 (`get_controller` builds android_env's
`AdbControllerConfig(adb_path=...)`, whose `adb_server_port` is 5037, and passes no port): these tests own that
server for their duration and skip when another one runs there. The forwarder APK download is replaced by a
locally built APK (android_env's `_get_accessibility_forwarder_apk`); the clipper helper APK is installed as
android_world's emulator_setup would.

The per-task tests run each task on that same env (UI elements from the accessibility forwarder):
`initialize_task`, `is_successful` 0 before acting (1 for the System*Verify tasks, which start in the goal
state), the expert from `envs/tasks/android_world_experts.py` drives the phone through its UI via droidrl's
`AdbDevice` on the same serial, then `is_successful` 1 and `tear_down`. Set AW_STATUS=path.json to record each
task's outcome for the closing-note table (`python tests/android_world_support.py OUT.md`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from android_world_support import (
    HARNESS_INSTALLS,
    TASK_SEED,
    import_android_world,
    missing_packages,
    phone_packages,
    task_census,
)
from apk_support import build_apk, forwarder_apk

from droidrl.envs.actions import Finish
from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.execute import perform
from droidrl.envs.tasks import android_world_experts

ADB = "/usr/bin/adb"
DEFAULT_ADB_SERVER_PORT = 5037
EXPERT_STEP_LIMIT = 80
VERIFY_TASKS = {
    "SystemBluetoothTurnOffVerify",
    "SystemBluetoothTurnOnVerify",
    "SystemBrightnessMaxVerify",
    "SystemBrightnessMinVerify",
    "SystemWifiTurnOffVerify",
    "SystemWifiTurnOnVerify",
}

pytestmark = [pytest.mark.adb, pytest.mark.slow]  # 6-9 minutes: 66 tasks on one emulator

# Tasks that cannot pass yet, and exactly why (each is re-checked: it shows as XPASS once it does).
NO_EXPERT = "no expert for this task yet in envs/tasks/android_world_experts.py"
XFAIL: dict[str, str] = {}


# ---- android_world, the adb server on 5037, the emulator -------------------------------------------------------
@pytest.fixture(scope="module")
def android_world(tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        return import_android_world(tmp_path_factory.mktemp("android_world"))
    except FileNotFoundError as error:
        pytest.skip(str(error))


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_pair_in_emulator_range() -> int:
    """A console port (5554-5584, even) with its adb port free: the range the adb server scans, so a server
    that android_env restarts after a failed command finds the phone again."""
    for console in range(5584, 5553, -2):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", console))
                b.bind(("127.0.0.1", console + 1))
            return console
        except OSError:
            continue
    pytest.skip("no free emulator port pair in 5554-5585")


@pytest.fixture(scope="module")
def default_adb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Own the adb server on 5037 (android_world's launcher uses no other) for this module; kill it after."""
    if not os.access(ADB, os.X_OK):
        pytest.fail(f"{ADB} is missing: these tests need Debian's real adb (apt-get install adb)")
    if _listening(DEFAULT_ADB_SERVER_PORT):
        pytest.skip(
            "an adb server that this test did not start runs on port 5037; android_world's launcher can use no "
            "other port, and this test never kills a server it did not start"
        )
    home = tmp_path_factory.mktemp("adb-home")
    env = dict(os.environ, HOME=str(home))
    env.pop("ANDROID_ADB_SERVER_PORT", None)
    env.pop("ANDROID_SERIAL", None)
    subprocess.run([ADB, "-P", str(DEFAULT_ADB_SERVER_PORT), "start-server"], env=env, check=True, timeout=30)
    # `adb emu` (android_world's text_emulator) authenticates with the token in the adb client's
    # ~/.emulator_console_auth_token, which the emulator writes in its own $HOME: the adb that android_env runs
    # from this process must see the same HOME as the emulator, as on a user's machine.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        yield env
    subprocess.run([ADB, "-P", str(DEFAULT_ADB_SERVER_PORT), "kill-server"], env=env, timeout=30)


class Emulator:
    """`droidrl-emulator -avd AndroidWorldAvd -ports C,C+1 -grpc G` as a child process."""

    def __init__(self, env: dict[str, str], avd_home: Path) -> None:
        self.console_port = _free_pair_in_emulator_range()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.grpc_port = probe.getsockname()[1]
        script = Path(sys.executable).parent / "droidrl-emulator"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "droidrl.envs.sim.emulator"]
        args = ["-avd", "AndroidWorldAvd", "-ports", f"{self.console_port},{self.console_port + 1}"]
        args += ["-grpc", str(self.grpc_port), "-no-window", "-no-snapshot"]
        env = dict(env, ANDROID_AVD_HOME=str(avd_home), ANDROID_ADB_SERVER_PORT=str(DEFAULT_ADB_SERVER_PORT))
        self.proc = subprocess.Popen(
            [*command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 60
        while not any("Boot completed" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("droidrl-emulator did not boot:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def serial(self) -> str:
        return f"emulator-{self.console_port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def emulator(default_adb_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = Emulator(default_adb_server, tmp_path_factory.mktemp("avd"))
    deadline = time.monotonic() + 20
    while True:
        out = subprocess.run(
            [ADB, "-P", str(DEFAULT_ADB_SERVER_PORT), "devices"], capture_output=True, text=True, timeout=30
        ).stdout
        if f"{emu.serial}\tdevice" in out:
            break
        if time.monotonic() > deadline:
            emu.stop()
            pytest.fail(f"the adb server on 5037 never listed {emu.serial}: {out}")
        time.sleep(0.1)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def launcher_env(android_world: str, emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """android_world's `env_launcher.load_and_setup_env(..., emulator_setup=False)` over the emulator."""
    from android_env.wrappers import a11y_grpc_wrapper
    from android_world.env import env_launcher

    patch = pytest.MonkeyPatch()
    patch.setattr(a11y_grpc_wrapper, "_get_accessibility_forwarder_apk", forwarder_apk)
    try:
        env = env_launcher.load_and_setup_env(
            console_port=emulator.console_port, emulator_setup=False, adb_path=ADB, grpc_port=emulator.grpc_port
        )
        # android_world's emulator_setup installs the clipper helper; emulator_setup=False expects it there.
        for package in HARNESS_INSTALLS:
            apk = tmp_path_factory.mktemp("apk") / f"{package}.apk"
            apk.write_bytes(build_apk(package))
            adb = [ADB, "-P", str(DEFAULT_ADB_SERVER_PORT), "-s", emulator.serial, "install", str(apk)]
            installed = subprocess.run(adb, capture_output=True, text=True, timeout=60)
            assert installed.returncode == 0, installed.stdout + installed.stderr
        yield env
        env.close()
    finally:
        patch.undo()


# ---- the env API -------------------------------------------------------------------------------------------------
def _index(env: Any, text: str) -> int:
    """The index of the first UI element whose text or content description is `text` (android_world's indices)."""
    elements = env.get_state(wait_to_stabilize=True).ui_elements
    for i, element in enumerate(elements):
        if text in (element.text, element.content_description):
            return i
    raise AssertionError(f"no UI element {text!r} among {[e.text for e in elements if e.text]}")


def _texts(env: Any) -> list[str]:
    # android_world's own wait: the forwarder's trees arrive asynchronously, as from a real phone.
    return [e.text for e in env.get_state(wait_to_stabilize=True).ui_elements if e.text]


def test_launcher_env_observes_and_acts(launcher_env: Any, emulator: Emulator) -> None:
    from android_world.env import json_action

    def act(**kwargs: Any) -> None:
        launcher_env.execute_action(json_action.JSONAction(**kwargs))

    state = launcher_env.reset(go_home=True)
    width, height = launcher_env.logical_screen_size
    assert (width, height) == (1080, 2400)
    assert state.pixels.shape == (height, width, 3)
    assert launcher_env.get_state().ui_elements, "no UI elements from the accessibility forwarder"

    act(action_type="open_app", app_name="files")
    assert "com.google.android.documentsui" in launcher_env.foreground_activity_name
    act(action_type="long_press", index=_index(launcher_env, "Download"))
    assert "1 selected" in _texts(launcher_env)
    act(action_type="navigate_back")
    assert "1 selected" not in _texts(launcher_env)

    act(action_type="open_app", app_name="contacts")
    act(action_type="click", index=_index(launcher_env, "Search contacts"))
    act(action_type="input_text", text="Bob", index=_index(launcher_env, "Search contacts"))
    texts = _texts(launcher_env)
    assert "Bob" in texts and "Bob Martinez" in texts and "Alice Johnson" not in texts, texts
    act(action_type="navigate_home")
    assert "nexuslauncher" in launcher_env.foreground_activity_name

    # A folder longer than the screen, to scroll.
    files = " ".join(f"/sdcard/Download/scroll_{i:02d}.txt" for i in range(30))
    adb = [ADB, "-P", str(DEFAULT_ADB_SERVER_PORT), "-s", emulator.serial, "shell"]
    subprocess.run([*adb, f"touch {files}"], check=True, timeout=30)
    act(action_type="open_app", app_name="files")
    act(action_type="click", index=_index(launcher_env, "Download"))
    top = _texts(launcher_env)
    assert "scroll_00.txt" in top and "scroll_29.txt" not in top
    act(action_type="scroll", direction="down")
    assert "scroll_00.txt" not in _texts(launcher_env), "scrolling down did not move the list"
    act(action_type="navigate_back")
    assert "Download" in _texts(launcher_env)
    subprocess.run([*adb, f"rm {files}"], check=True, timeout=30)
    act(action_type="answer", text="done")
    assert launcher_env.interaction_cache == "done"


# ---- every task the simulated phone can run ------------------------------------------------------------------------
def _runnable_tasks() -> list[Any]:
    """pytest params: every android_world task whose apps the simulated phone has (xfail where it cannot pass)."""
    try:
        import_android_world()
    except FileNotFoundError:
        return []
    from android_world_support import suite_instances

    installed = phone_packages()
    instances = suite_instances()
    params = []
    for task in task_census():
        if missing_packages(task, installed, instances[task.name].params):
            continue
        reason = XFAIL.get(task.name)
        if reason is None and android_world_experts.expert_for(task.name, instances[task.name].params) is None:
            reason = NO_EXPERT
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        params.append(pytest.param(task.name, marks=marks, id=task.name))
    return params


def _record(name: str, outcome: str) -> None:
    path = os.environ.get("AW_STATUS")
    if not path:
        return
    statuses = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    statuses[name] = outcome
    Path(path).write_text(json.dumps(statuses, indent=1, sort_keys=True))


@pytest.mark.parametrize("name", _runnable_tasks())
def test_task_reaches_its_goal_through_the_ui(name: str, launcher_env: Any, emulator: Emulator) -> None:
    from android_world import suite_utils
    from android_world.env import json_action
    from android_world_support import aw_registry

    task = suite_utils.create_suite(aw_registry(), n_task_combinations=1, seed=TASK_SEED, tasks=[name])[name][0]
    try:
        launcher_env.reset(go_home=True)
        task.initialize_task(launcher_env)
        before = task.is_successful(launcher_env)
        assert before == (1.0 if name in VERIFY_TASKS else 0.0), f"{name}: is_successful before acting = {before}"
        expert = android_world_experts.expert_for(name, task.params)
        assert expert is not None, f"no expert for {name}"
        device = AdbDevice(emulator.serial, adb_port=DEFAULT_ADB_SERVER_PORT)
        actions = []
        for _ in range(EXPERT_STEP_LIMIT):
            action = expert(device)
            actions.append(action)
            if isinstance(action, Finish):
                break
            perform(device, action, wait_scale=0.2)
        assert isinstance(actions[-1], Finish), f"{name}: expert did not finish; last actions {actions[-5:]}"
        if actions[-1].message:
            launcher_env.execute_action(json_action.JSONAction(action_type="answer", text=actions[-1].message))
        after = task.is_successful(launcher_env)
        assert after == 1.0, f"{name}: is_successful = {after} after the expert's {len(actions)} actions"
        task.tear_down(launcher_env)
    except BaseException as error:
        reason = XFAIL.get(name)
        _record(name, f"xfail: {reason}" if reason else f"fails: {type(error).__name__}: {str(error)[:200]}")
        raise
    _record(name, "passes")


def test_contact_editor_phone_type_spinner_saves_the_type() -> None:
    """The editor's phone-type Spinner (ContactsNewContactDraft reads it) shows 'Work Phone' and saves type 3."""
    from droidrl.envs.sim_device import SimDevice
    from droidrl.envs.tasks.screen import UiView

    device = SimDevice()
    device.launch("com.google.android.contacts")
    device.tap(*UiView.of(device).find(desc="Create contact").center)
    for rid, value in (("first_name", "Grace"), ("phone", "799-802-1530")):
        device.tap(*UiView.of(device).find(rid=rid).center)
        device.type_text(value)
    spinner = UiView.of(device).find(rid="spinner_text")
    assert (spinner.text, spinner.desc) == ("Mobile", "Mobile Phone")
    device.tap(*spinner.center)
    device.tap(*UiView.of(device).find(text="Work", rid="android:id/title").center)
    spinner = UiView.of(device).find(rid="spinner_text")
    assert (spinner.text, spinner.desc) == ("Work", "Work Phone")
    device.tap(*UiView.of(device).find(text="Save").center)
    out = device.shell("content query --uri content://contacts/phones/ --projection display_name:number:type")
    assert "display_name=Grace, number=799-802-1530, type=3" in out, out


def test_calendar_editor_repeat_row_saves_interval_and_rule() -> None:
    """The event editor's Repeat row (SimpleCalendarAddRepeatingEvent sets it): Weekly stores 604800 and the
    start day's bit, as Simple Calendar Pro does."""
    from droidrl.envs.sim_device import SimDevice
    from droidrl.envs.tasks.screen import UiView

    device = SimDevice()
    device.launch("com.simplemobiletools.calendar.pro")
    device.tap(*UiView.of(device).find(desc="New Event").center)
    device.tap(*UiView.of(device).find(rid="event_title").center)
    device.type_text("Standup")
    assert UiView.of(device).find(rid="event_repetition").text == "No repetition"
    device.tap(*UiView.of(device).find(rid="event_repetition").center)
    device.tap(*UiView.of(device).find(text="Weekly", rid="android:id/title").center)
    assert UiView.of(device).find(rid="event_repetition").text == "Weekly"
    device.tap(*UiView.of(device).find(desc="Save").center)
    db = "/data/data/com.simplemobiletools.calendar.pro/databases/events.db"
    row = device.shell(f"sqlite3 {db} 'SELECT title, start_ts, repeat_interval, repeat_rule FROM events'").split("|")
    weekday_bit = 1 << (dt.datetime.fromtimestamp(int(row[1]), tz=dt.UTC).isoweekday() - 1)
    assert (row[0], int(row[2]), int(row[3])) == ("Standup", 604800, weekday_bit), row
