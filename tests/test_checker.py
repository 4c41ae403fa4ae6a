"""check_device accepts a correct device and names exactly what a device broken in one way gets wrong."""

from __future__ import annotations

import re

import numpy as np
import pytest

from droidrl.envs.checker import CHECK_FILE, check_device
from droidrl.envs.device import Device
from droidrl.envs.errors import DeviceContractError, FileNotFoundOnDevice, SnapshotError
from droidrl.envs.sim_device import SimDevice


class FakeDevice:
    """A tiny correct Device: a 40x30 screen whose only state is its screen name and its files."""

    width, height = 40, 30

    def __init__(self) -> None:
        self.screen = "home"
        self.files: dict[str, bytes] = {}
        self.snapshots: dict[str, tuple[str, dict[str, bytes]]] = {}

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def screenshot(self) -> np.ndarray:
        return np.zeros((self.height, self.width, 3), dtype=np.uint8)

    def ui_xml(self) -> str:
        return (
            "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<hierarchy rotation=\"0\">\n"
            f'  <node index="0" text="{self.screen}" bounds="[0,0][{self.width},{self.height}]" />\n'
            "</hierarchy>\n"
        )

    def tap(self, x: int, y: int) -> None: ...
    def long_press(self, x: int, y: int, duration_ms: int = 1000) -> None: ...
    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 300) -> None: ...
    def type_text(self, text: str) -> None: ...
    def clear_text(self) -> None: ...
    def launch(self, package: str) -> None: ...

    def key(self, key: int | str) -> None:
        if key == "APP_SWITCH":
            self.screen = "recents"

    def current_app(self) -> str:
        return "com.example.home"

    def pull(self, path: str) -> bytes:
        if path not in self.files:
            raise FileNotFoundOnDevice("fake", path, "open failed: No such file or directory")
        return self.files[path]

    def push(self, path: str, data: bytes) -> None:
        self.files[path] = bytes(data)

    def shell(self, cmd: str) -> str:
        if cmd.startswith("rm -f "):
            self.files.pop(cmd[len("rm -f ") :], None)
        return ""

    def save_snapshot(self, name: str) -> None:
        self.snapshots[name] = (self.screen, dict(self.files))

    def load_snapshot(self, name: str) -> float:
        if name not in self.snapshots:
            raise SnapshotError(name)
        self.screen, files = self.snapshots[name]
        self.files = dict(files)
        return 0.001


class FloatScreenshot(FakeDevice):
    def screenshot(self) -> np.ndarray:
        return np.zeros((30, 40, 3), dtype=np.float32)


class RgbaScreenshot(FakeDevice):
    def screenshot(self) -> np.ndarray:
        return np.zeros((30, 40, 4), dtype=np.uint8)


class TransposedScreenshot(FakeDevice):
    def screenshot(self) -> np.ndarray:
        return np.zeros((40, 30, 3), dtype=np.uint8)


class PilScreenshot(FakeDevice):
    def screenshot(self):  # a PIL image instead of an array
        from PIL import Image

        return Image.new("RGB", (40, 30))


class FloatSize(FakeDevice):
    @property
    def size(self):
        return (40.0, 30.0)


class BrokenXml(FakeDevice):
    def ui_xml(self) -> str:
        return "<hierarchy><node bounds='[0,0][40,30]'></hierarchy>"


class SmallWindow(FakeDevice):
    def ui_xml(self) -> str:
        return '<hierarchy rotation="0"><node bounds="[0,0][40,20]" /></hierarchy>'


class LossyPull(FakeDevice):
    def pull(self, path: str) -> bytes:
        return super().pull(path).replace(b"\r\n", b"\n")  # a PTY in the way


class SnapshotKeepsScreen(FakeDevice):
    def load_snapshot(self, name: str) -> float:
        self.files = dict(self.snapshots[name][1])  # restores files, forgets the screen
        return 0.001


class SnapshotKeepsFiles(FakeDevice):
    def load_snapshot(self, name: str) -> float:
        self.screen = self.snapshots[name][0]  # restores the screen, forgets the files
        return 0.001


class SnapshotReturnsNothing(FakeDevice):
    def load_snapshot(self, name: str):
        super().load_snapshot(name)


def test_a_correct_fake_and_the_sim_device_pass() -> None:
    fake = FakeDevice()
    assert isinstance(fake, Device)
    check_device(fake)
    assert CHECK_FILE not in fake.files  # the checker cleans up after itself
    check_device(SimDevice())


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (FloatSize(), "size must be (width, height) as two positive ints, got (40.0, 30.0)"),
        (PilScreenshot(), "screenshot() must return a numpy.ndarray, got Image"),
        (
            FloatScreenshot(),
            "screenshot() returned dtype float32; the Device contract needs uint8 RGB "
            "(convert with np.asarray(image, dtype=np.uint8))",
        ),
        (
            RgbaScreenshot(),
            "screenshot() has shape (30, 40, 4); size is 40x30, so it must be (30, 40, 3) (height, width, RGB)",
        ),
        (
            TransposedScreenshot(),
            "screenshot() has shape (40, 30, 3); size is 40x30, so it must be (30, 40, 3) (height, width, RGB)",
        ),
        (
            BrokenXml(),
            "ui_xml() is not well-formed XML: mismatched tag: line 1, column 41",
        ),
        (
            SmallWindow(),
            "ui_xml() windows cover [0,0][40,20]; size is 40x30, so they must cover [0,0][40,30]",
        ),
        (
            LossyPull(),
            f"pull('{CHECK_FILE}') returned 779 bytes that differ from the 780 bytes pushed; "
            "push and pull must round-trip any bytes unchanged",
        ),
        (
            SnapshotKeepsScreen(),
            "load_snapshot('droidrl-check') did not restore the UI: ui_xml() line 3 is "
            '\'<node index="0" text="recents" bounds="[0,0][40,30]" />\', '
            'was \'<node index="0" text="home" bounds="[0,0][40,30]" />\' when the snapshot was saved',
        ),
        (
            SnapshotKeepsFiles(),
            f"load_snapshot('droidrl-check') did not restore {CHECK_FILE}: it holds "
            "b'written after the snapshot', was b'saved with the snapshot' when the snapshot was saved",
        ),
        (
            SnapshotReturnsNothing(),
            "load_snapshot() must return the seconds the restore took as a float >= 0, got None",
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, FakeDevice) else "",
)
def test_each_broken_fake_gets_its_exact_message(device: FakeDevice, message: str) -> None:
    with pytest.raises(DeviceContractError, match=f"^{re.escape(message)}$"):
        check_device(device)


def test_snapshot_checks_can_be_skipped() -> None:
    check_device(SnapshotKeepsFiles(), snapshots=False)
