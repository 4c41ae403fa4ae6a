"""`SimDevice`: the `Device` contract on a simulated phone in this process (no sockets, no PNG round trip).

Each call does what `AdbDevice` makes the phone do over adb, so both give identical observations.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from droidrl.envs.device import check_snapshot_name, key_argument, text_chunks
from droidrl.envs.errors import DeviceCommandError, FileNotFoundOnDevice, SnapshotError
from droidrl.envs.sim.phone import LAUNCHER, Phone
from droidrl.envs.sim.shell_android import adb_keyboard_clear, adb_keyboard_commit, keycode_from_string


class SimDevice:
    """A simulated phone behind the `Device` contract; pass a `Phone` or the arguments to build one."""

    def __init__(self, phone: Phone | None = None, **phone_kwargs: Any) -> None:
        if phone is not None and phone_kwargs:
            raise ValueError(f"give either a phone or Phone arguments, not both (got {sorted(phone_kwargs)})")
        self.phone = phone if phone is not None else Phone(**phone_kwargs)
        self.serial = f"sim-{self.phone.avd_name}"
        self.last_restore_s: float | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.phone.width, self.phone.height

    def screenshot(self) -> np.ndarray:
        return np.array(self.phone.screenshot().convert("RGB"), dtype=np.uint8)

    def ui_xml(self) -> str:
        return self.phone.ui_xml()

    def tap(self, x: int, y: int) -> None:
        self.phone.tap(int(x), int(y))

    def long_press(self, x: int, y: int, duration_ms: int = 1000) -> None:
        # `input swipe x y x y ms` is how adb long-presses; the phone treats it exactly like that.
        self.phone.swipe(int(x), int(y), int(x), int(y), int(duration_ms))

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 300) -> None:
        self.phone.swipe(int(x1), int(y1), int(x2), int(y2), int(duration_ms))

    def type_text(self, text: str) -> None:
        for chunk in text_chunks(text):
            adb_keyboard_commit(self.phone, chunk)

    def clear_text(self) -> None:
        adb_keyboard_clear(self.phone)

    def key(self, key: int | str) -> None:
        code = keycode_from_string(key_argument(key))
        if code:  # KEYCODE_UNKNOWN (and unknown names) do nothing, as on Android
            self.phone.key(code)

    def launch(self, package: str) -> None:
        # `monkey -c LAUNCHER` finds no launcher activity in the home app itself.
        if package not in self.phone.apps or package == LAUNCHER:
            raise DeviceCommandError(
                f"cannot launch {package!r} on {self.serial}: no such app with a launcher activity "
                f"(installed: {', '.join(sorted(p for p in self.phone.apps if p != LAUNCHER))})"
            )
        self.phone.launch(package)

    def current_app(self) -> str:
        return self.phone.current_activity()[0]

    def pull(self, path: str) -> bytes:
        try:
            with self.phone.lock:
                return self.phone.fs.read(path)
        except IsADirectoryError:
            raise FileNotFoundOnDevice(self.serial, path, "read failed: Is a directory") from None
        except FileNotFoundError:
            raise FileNotFoundOnDevice(self.serial, path, "open failed: No such file or directory") from None

    def push(self, path: str, data: bytes) -> None:
        try:
            with self.phone.lock:
                # Mode and mtime as adb push leaves them: 0644 widened by adbd, the host's clock.
                self.phone.fs.write(path, bytes(data), 0o666, int(time.time()))
                self.phone.changed()
        except OSError as err:
            raise DeviceCommandError(f"cannot push {path} to {self.serial}: {err.strerror or err}") from None

    def shell(self, cmd: str) -> str:
        result = self.phone.shell(cmd)
        return (result.stdout + result.stderr).decode("utf-8", errors="replace")

    def save_snapshot(self, name: str) -> None:
        check_snapshot_name(name)
        self.phone.save_snapshot(name)

    def load_snapshot(self, name: str) -> float:
        check_snapshot_name(name)
        started = time.perf_counter()
        try:
            self.phone.load_snapshot(name)
        except KeyError:
            raise SnapshotError(
                f"{self.serial} has no snapshot named {name!r}; save it first with save_snapshot({name!r})"
            ) from None
        self.last_restore_s = time.perf_counter() - started
        return self.last_restore_s

    def __repr__(self) -> str:
        return f"SimDevice({self.serial}, {self.phone.width}x{self.phone.height})"
