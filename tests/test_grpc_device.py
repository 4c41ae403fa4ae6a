"""GrpcDevice against `droidrl-emulator -grpc PORT` processes behind a private real adb server.

Its observations are checked against AdbDevice on the same emulator (adb screencap and uiautomator), so
the gRPC path (raw frames, touches in the panel's frame, evdev keys, SnapshotService) must agree with adb.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import AdbServer, free_port, free_port_pair, start_adb_server

from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.checker import check_device
from droidrl.envs.errors import DeviceUnavailable, FileNotFoundOnDevice, SnapshotError
from droidrl.envs.grpc_device import GrpcDevice

CANARY = "/data/local/tmp/canary"
SEARCH = "open_search_view_edit_text"  # the contacts app's search field
DANGEROUS = [
    f"$(touch {CANARY})",
    f"`touch {CANARY}`; touch {CANARY} && echo x | sh",
    'Ann\'s "quoted" \\back & | > < * ? ~ # %s %% 中文 😀',
    "-e --es msg x\nsecond line\ttab",
]


@dataclass
class Emulator:
    """One `droidrl-emulator` process: console port N, adbd N+1, gRPC `grpc_port`."""

    process: subprocess.Popen[bytes]
    serial: str
    grpc_port: int
    adb: AdbServer
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_emulator(home: Path, adb: AdbServer, name: str, *flags: str) -> Emulator:
    console, grpc_port = free_port_pair(), free_port()
    log = home / f"{name}.log"
    env = dict(adb.env, HOME=str(home), ANDROID_AVD_HOME=str(home / "avd"))
    command = [sys.executable, "-m", "droidrl.envs.sim.emulator", "-avd", name, "-no-window", "-no-snapshot"]
    command += ["-ports", f"{console},{console + 1}", "-grpc", str(grpc_port), *flags]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    emulator = Emulator(process, f"emulator-{console}", grpc_port, adb, log)
    deadline = time.monotonic() + 120
    while "Started GRPC server" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            emulator.stop()
            pytest.fail(f"droidrl-emulator did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    adb.wait_for_device(emulator.serial, timeout=30)
    return emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    home = tmp_path_factory.mktemp("grpc-device")
    adb = start_adb_server(home)
    emulator = start_emulator(home, adb, "grpc_device")
    yield emulator
    emulator.stop()
    adb.adb("kill-server")


@pytest.fixture
def devices(emulator: Emulator) -> Iterator[tuple[GrpcDevice, AdbDevice]]:
    """The gRPC device and an adb device on the same emulator, starting on the home screen."""
    grpc_device = GrpcDevice(emulator.serial, emulator.grpc_port, adb_port=emulator.adb.port, timeout_s=10)
    adb_device = AdbDevice(emulator.serial, adb_port=emulator.adb.port)
    grpc_device.shell("settings put system user_rotation 0")
    grpc_device.key("HOME")
    yield grpc_device, adb_device
    grpc_device.shell("settings put system user_rotation 0")
    grpc_device.close()


def centre(device: AdbDevice, **attrs: str) -> tuple[int, int]:
    """The centre of the first node in the UI dump whose attributes end with the given values."""
    for node in re.finditer(r"<node [^>]*>", device.ui_xml()):
        tag = node.group(0)
        if all(re.search(rf'{key}="[^"]*{re.escape(value)}"', tag) for key, value in attrs.items()):
            x1, y1, x2, y2 = map(int, re.search(r'bounds="\[(\d+),(\d+)\]\[(\d+),(\d+)\]"', tag).groups())
            return (x1 + x2) // 2, (y1 + y2) // 2
    raise AssertionError(f"no node with {attrs} on the screen")


def field_text(device: AdbDevice, rid: str) -> str:
    root = ET.fromstring(device.ui_xml().encode())
    return next(node.get("text", "") for node in root.iter("node") if node.get("resource-id", "").endswith(rid))


def canary_exists(device: AdbDevice) -> bool:
    try:
        device.pull(CANARY)
    except FileNotFoundOnDevice:
        return False
    return True


def test_screenshots_equal_adb_screencap(devices: tuple[GrpcDevice, AdbDevice]) -> None:
    grpc_device, adb_device = devices
    assert grpc_device.size == adb_device.size == (1080, 2400)
    home = grpc_device.screenshot()
    assert home.dtype == np.uint8 and home.shape == (2400, 1080, 3)
    assert np.array_equal(home, adb_device.screenshot())
    grpc_device.launch("com.android.settings")
    settings = grpc_device.screenshot()
    assert not np.array_equal(settings, home)
    assert np.array_equal(settings, adb_device.screenshot())


def test_a_tap_and_a_swipe_act_where_adb_would(devices: tuple[GrpcDevice, AdbDevice]) -> None:
    grpc_device, adb_device = devices
    before = grpc_device.screenshot()
    grpc_device.tap(*centre(adb_device, text="Settings"))
    assert adb_device.current_app() == "com.android.settings"
    assert not np.array_equal(grpc_device.screenshot(), before)
    grpc_device.tap(*centre(adb_device, text="Display"))
    assert "Dark theme" in adb_device.ui_xml()

    for i in range(40):  # a file list longer than the screen
        grpc_device.push(f"/sdcard/Documents/Markor/grpc{i:02d}.md", b"x")
    grpc_device.launch("net.gsantner.markor")
    top = grpc_device.screenshot()
    assert "grpc00.md" in adb_device.ui_xml()
    grpc_device.swipe(540, 1800, 540, 600, 300)  # a swipe up scrolls the list down
    assert "grpc00.md" not in adb_device.ui_xml()
    assert not np.array_equal(grpc_device.screenshot(), top)
    assert np.array_equal(grpc_device.screenshot(), adb_device.screenshot())
    grpc_device.shell("rm -r /sdcard/Documents/Markor")


def test_key_events_navigate_and_edit(devices: tuple[GrpcDevice, AdbDevice]) -> None:
    grpc_device, adb_device = devices
    grpc_device.launch("com.android.settings")
    grpc_device.tap(*centre(adb_device, text="Display"))
    grpc_device.key("BACK")
    assert "Network &amp; internet" in adb_device.ui_xml()
    grpc_device.key(4)  # KEYCODE_BACK as a number
    assert adb_device.current_app() == "com.google.android.apps.nexuslauncher"

    grpc_device.launch("com.google.android.contacts")
    grpc_device.tap(*centre(adb_device, **{"resource-id": SEARCH}))
    grpc_device.type_text("abc")
    grpc_device.key("DEL")  # evdev KEY_BACKSPACE through the emulator's keyboard
    grpc_device.key("KEYCODE_X")
    assert field_text(adb_device, SEARCH) == "abx"
    with pytest.raises(ValueError, match="invalid key name"):
        grpc_device.key("BACK; reboot")
    grpc_device.key("KEYCODE_HOME")
    assert adb_device.current_app() == "com.google.android.apps.nexuslauncher"


def test_typed_text_arrives_literally_and_runs_nothing(devices: tuple[GrpcDevice, AdbDevice]) -> None:
    grpc_device, adb_device = devices
    grpc_device.launch("com.google.android.contacts")
    grpc_device.tap(*centre(adb_device, **{"resource-id": SEARCH}))
    for text in DANGEROUS:
        grpc_device.clear_text()
        grpc_device.type_text(text)
        assert field_text(adb_device, SEARCH) == text
        assert not canary_exists(adb_device), text
    grpc_device.clear_text()
    assert field_text(adb_device, SEARCH) == "Search contacts"  # an empty field shows its hint


def test_a_rotated_display_is_turned_back_and_touched_in_its_own_frame(devices: tuple[GrpcDevice, AdbDevice]) -> None:
    grpc_device, adb_device = devices
    grpc_device.shell("settings put system user_rotation 1")
    landscape = grpc_device.screenshot()
    assert landscape.shape == (1080, 2400, 3)
    assert np.array_equal(landscape, adb_device.screenshot())
    grpc_device.tap(*centre(adb_device, text="Settings"))  # display coordinates, as `input tap` takes them
    assert adb_device.current_app() == "com.android.settings"


def test_snapshots_go_through_the_snapshot_service(devices: tuple[GrpcDevice, AdbDevice]) -> None:
    grpc_device, adb_device = devices
    home = grpc_device.screenshot()
    grpc_device.save_snapshot("grpc_home")
    grpc_device.launch("com.android.settings")
    assert grpc_device.load_snapshot("grpc_home") >= 0
    assert adb_device.current_app() == "com.google.android.apps.nexuslauncher"
    assert np.array_equal(grpc_device.screenshot(), home)
    with pytest.raises(SnapshotError, match="nope"):
        grpc_device.load_snapshot("nope")
    with pytest.raises(ValueError, match="invalid snapshot name"):
        grpc_device.save_snapshot("../escape")


def test_the_device_passes_the_contract_checker(devices: tuple[GrpcDevice, AdbDevice]) -> None:
    check_device(devices[0])


def test_a_closed_grpc_port_is_unavailable(emulator: Emulator) -> None:
    with pytest.raises(DeviceUnavailable, match="gRPC port"):
        GrpcDevice(emulator.serial, free_port(), adb_port=emulator.adb.port, timeout_s=1)


def test_a_read_only_emulator_refuses_snapshot_saves(tmp_path: Path) -> None:
    adb = start_adb_server(tmp_path)
    emulator = start_emulator(tmp_path, adb, "grpc_read_only", "-read-only")
    try:
        device = GrpcDevice(emulator.serial, emulator.grpc_port, adb_port=adb.port, timeout_s=10)
        with pytest.raises(SnapshotError, match="start the emulator without -read-only"):
            device.save_snapshot("s")
        device.close()
    finally:
        emulator.stop()
        adb.adb("kill-server")


@pytest.mark.slow
def test_a_stopped_emulator_raises_unavailable_within_the_timeout(tmp_path: Path) -> None:
    adb = start_adb_server(tmp_path)
    emulator = start_emulator(tmp_path, adb, "grpc_stopped")
    try:
        device = GrpcDevice(emulator.serial, emulator.grpc_port, adb_port=adb.port, timeout_s=2)
        assert device.screenshot().shape == (2400, 1080, 3)
        os.kill(emulator.process.pid, signal.SIGSTOP)
        for call in (device.screenshot, lambda: device.tap(10, 10), lambda: device.key("BACK")):
            started = time.monotonic()
            with pytest.raises(DeviceUnavailable, match="DEADLINE_EXCEEDED") as err:
                call()
            assert err.value.serial == emulator.serial
            assert time.monotonic() - started < 30  # it gave up; a hang would block the test until killed
        os.kill(emulator.process.pid, signal.SIGCONT)
        assert device.screenshot().shape == (2400, 1080, 3)  # the same channel works once it runs again
        device.close()
    finally:
        emulator.stop()
        adb.adb("kill-server")
