"""`AdbDevice`: the `Device` contract over adb (adbutils), with the emulator console for snapshots.

Typed text reaches the phone only as base64 in an ADB Keyboard broadcast, so no shell ever parses it.
"""

from __future__ import annotations

import base64
import io
import re
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import adbutils
import numpy as np
from adbutils.errors import AdbError, AdbTimeout
from PIL import Image

from droidrl.envs.console_client import EmulatorConsole
from droidrl.envs.device import check_snapshot_name, key_argument, text_chunks
from droidrl.envs.errors import (
    ConsoleError,
    DeviceCommandError,
    DeviceUnavailable,
    FileNotFoundOnDevice,
    SnapshotError,
)

# ADB Keyboard (github.com/senzhk/ADBKeyBoard): an IME that commits the text of a broadcast into the
# focused field. The base64 form (action ADB_INPUT_B64, string extra `msg`, UTF-8) is what Open-AutoGLM
# sends; the base64 alphabet needs no shell quoting. `-p` delivers the text to that app alone.
ADB_KEYBOARD_PACKAGE = "com.android.adbkeyboard"
ADB_KEYBOARD_IME = f"{ADB_KEYBOARD_PACKAGE}/.AdbIME"
ADB_KEYBOARD_APK = "https://github.com/senzhk/ADBKeyBoard/releases"

UI_DUMP_PATH = "/data/local/tmp/droidrl_window_dump.xml"
UI_DUMP_DONE = "UI hierchary dumped to:"  # sic: Android's own spelling
_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+")
_EMULATOR_SERIAL = re.compile(r"emulator-(\d+)")
# The foreground app's package, from `dumpsys window windows` (the focused window) or, when a window
# without a package has the focus (a popup), from `dumpsys activity activities` (the resumed activity).
_FOCUSED_WINDOW = re.compile(r"mCurrentFocus=Window\{\S+ \S+ ([^\s/{}]+)/")
_RESUMED_ACTIVITY = re.compile(r"mResumedActivity: ActivityRecord\{\S+ \S+ ([^\s/{}]+)/")

T = TypeVar("T")


class AdbDevice:
    """An Android device reached through an adb server; `emulator-NNNN` serials get snapshots.

    Args:
        serial: the serial `adb devices` lists, e.g. "emulator-5554" or "127.0.0.1:5555".
        adb_host, adb_port: the adb server to talk to (never taken from the environment).
        console_port: the emulator console for snapshots; derived from an `emulator-NNNN` serial.
        timeout_s: the longest one adb request may take before the device counts as unavailable (every
            request has it: shell commands, file transfers, the UI dump, state queries).
        ready_timeout_s: how long `load_snapshot` waits for `sys.boot_completed` afterwards.

    Raises:
        DeviceUnavailable: the device is not listed, offline, or stops answering (any method).
        DeviceCommandError: the device answered but a command failed.
        SnapshotError: a snapshot is missing or the emulator refuses snapshots.
        ConsoleAuthError: the console token file is missing or wrong (a configuration problem).
    """

    def __init__(
        self,
        serial: str,
        adb_host: str = "127.0.0.1",
        adb_port: int = 5037,
        console_port: int | None = None,
        *,
        console_host: str = "127.0.0.1",
        timeout_s: float = 30.0,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.serial = serial
        self.adb_host, self.adb_port = adb_host, adb_port
        if console_port is None and (match := _EMULATOR_SERIAL.fullmatch(serial)):
            console_port = int(match.group(1))
        self.console_port = console_port
        self.console_host = console_host
        self.timeout_s = timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.last_restore_s: float | None = None
        # socket_timeout bounds what adbutils opens without a timeout of its own (file sync: pull, push).
        self._client = adbutils.AdbClient(host=adb_host, port=adb_port, socket_timeout=timeout_s)
        self._device = self._client.device(serial=serial)
        self._size: tuple[int, int] | None = None
        self._keyboard_ready = False
        state = self._state()
        if state != "device":
            raise DeviceUnavailable(serial, state)

    # ---- observations ------------------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        if self._size is None:
            out = self._shell("wm size")
            sizes = dict(re.findall(r"(Physical|Override) size: (\d+x\d+)", out))
            text = sizes.get("Override") or sizes.get("Physical")
            if text is None:
                raise DeviceCommandError(f"`wm size` on {self.serial} printed no screen size: {out.strip()!r}")
            width, height = text.split("x")
            self._size = int(width), int(height)
        return self._size

    def screenshot(self) -> np.ndarray:
        # exec: streams screencap's bytes untouched (a shell: PTY on old devices turns \n into \r\n).
        png = self._call("screencap", lambda: self._exec("screencap -p"))
        try:
            with Image.open(io.BytesIO(png)) as image:
                return np.array(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as err:
            raise self._failure("screencap", f"{len(png)} bytes that are not a PNG ({err})") from None

    def ui_xml(self) -> str:
        for _ in range(3):  # uiautomator fails now and then while the screen animates ("null root node")
            out = self._shell(f"uiautomator dump {UI_DUMP_PATH}")
            if UI_DUMP_DONE in out:
                break
            time.sleep(0.2)
        else:
            raise DeviceCommandError(f"uiautomator dump failed on {self.serial}: {out.strip()}")
        data = self._call("pull the UI dump", lambda: self._device.sync.read_bytes(UI_DUMP_PATH))
        return data.decode("utf-8", errors="replace")

    def current_app(self) -> str:
        # Not adbutils' app_current: its dumpsys calls wait up to 10 minutes for an answer.
        for command, pattern in (
            ("dumpsys window windows", _FOCUSED_WINDOW),
            ("dumpsys activity activities", _RESUMED_ACTIVITY),
        ):
            if match := pattern.search(self._shell(command)):
                return match.group(1)
        raise DeviceCommandError(f"{self.serial} names no foreground app (no focused window, no resumed activity)")

    # ---- input ------------------------------------------------------------------------------------------
    def tap(self, x: int, y: int) -> None:
        self._input(f"input tap {int(x)} {int(y)}")

    def long_press(self, x: int, y: int, duration_ms: int = 1000) -> None:
        self._input(f"input swipe {int(x)} {int(y)} {int(x)} {int(y)} {int(duration_ms)}")

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 300) -> None:
        self._input(f"input swipe {int(x1)} {int(y1)} {int(x2)} {int(y2)} {int(duration_ms)}")

    def key(self, key: int | str) -> None:
        self._input(f"input keyevent {key_argument(key)}")

    def type_text(self, text: str) -> None:
        chunks = text_chunks(text)
        if chunks:
            self._ensure_adb_keyboard()
        for chunk in chunks:
            encoded = base64.b64encode(chunk.encode("utf-8")).decode("ascii")
            self._broadcast("ADB_INPUT_B64", f"--es msg {encoded}")

    def clear_text(self) -> None:
        self._ensure_adb_keyboard()
        self._broadcast("ADB_CLEAR_TEXT")

    def launch(self, package: str) -> None:
        if not _PACKAGE.fullmatch(package):
            raise DeviceCommandError(f"cannot launch {package!r} on {self.serial}: not a package name")
        out = self._shell(f"monkey -p {package} -c android.intent.category.LAUNCHER 1")
        if "Events injected: 1" not in out:
            said = out.strip().splitlines()[-1] if out.strip() else "no output"
            raise DeviceCommandError(
                f"cannot launch {package!r} on {self.serial}: no such app with a launcher activity ({said})"
            )

    # ---- files and shell ----------------------------------------------------------------------------------
    def pull(self, path: str) -> bytes:
        try:
            return self._device.sync.read_bytes(path)
        except AdbTimeout as err:
            raise DeviceUnavailable(self.serial, f"pull {path} timed out ({err})") from None
        except AdbError as err:
            # adbutils raises AdbError(message, path) for the device's FAIL reply; other errors are I/O.
            if len(err.args) == 2 and err.args[1] == path:
                message = str(err.args[0])
                if "No such file" in message or "Is a directory" in message:
                    raise FileNotFoundOnDevice(self.serial, path, message) from None
                raise DeviceCommandError(f"cannot pull {path} from {self.serial}: {message}") from None
            raise self._failure(f"pull {path}", str(err)) from None
        except OSError as err:
            raise self._failure(f"pull {path}", str(err)) from None

    def push(self, path: str, data: bytes) -> None:
        self._call(f"push {path}", lambda: self._device.sync.push(bytes(data), path, 0o644))

    def shell(self, cmd: str) -> str:
        return self._shell(cmd)

    # ---- snapshots ---------------------------------------------------------------------------------------
    def save_snapshot(self, name: str) -> None:
        check_snapshot_name(name)
        self._console_command(f"avd snapshot save {name}", name)

    def load_snapshot(self, name: str) -> float:
        check_snapshot_name(name)
        started = time.perf_counter()
        self._console_command(f"avd snapshot load {name}", name)
        self._keyboard_ready = False  # the snapshot may predate selecting ADB Keyboard
        self._wait_ready(name, started + self.ready_timeout_s)
        self.last_restore_s = time.perf_counter() - started
        return self.last_restore_s

    def _console_command(self, command: str, name: str) -> str:
        if self.console_port is None:
            raise SnapshotError(
                f"snapshots need the emulator console, and {self.serial} is not an emulator-NNNN serial: "
                "pass console_port= to AdbDevice"
            )
        console = EmulatorConsole(self.console_port, self.console_host, timeout=max(self.timeout_s, 300))
        try:
            return console.command(command)
        except ConsoleError as err:
            hint = ""
            if "-read-only" in err.reply:
                hint = "; start the emulator without -read-only to use snapshots"
            elif "does not have the requested snapshot" in err.reply or "doesn't exist" in err.reply:
                hint = f"; save it first with save_snapshot({name!r})"
            raise SnapshotError(f"{command!r} failed on {self.serial}: {err.reply}{hint}") from None
        except OSError as err:
            raise DeviceUnavailable(
                self.serial,
                f"its emulator console {self.console_host}:{self.console_port} does not answer ({err})",
            ) from None

    def _wait_ready(self, name: str, deadline: float) -> None:
        """Poll `getprop sys.boot_completed` until it says 1; adb may drop the device for a moment."""
        while True:
            try:
                if self._shell("getprop sys.boot_completed").strip() == "1":
                    return
            except DeviceUnavailable:
                pass
            if time.perf_counter() > deadline:
                raise DeviceUnavailable(
                    self.serial,
                    f"not ready {self.ready_timeout_s:.0f}s after loading snapshot {name!r} "
                    "(sys.boot_completed never became 1)",
                )
            time.sleep(0.1)

    # ---- ADB Keyboard ------------------------------------------------------------------------------------
    def _ensure_adb_keyboard(self) -> None:
        """Select ADB Keyboard as the input method once; it must be installed on a real device."""
        if self._keyboard_ready:
            return
        if self._shell("settings get secure default_input_method").strip() != ADB_KEYBOARD_IME:
            out, code = self._shell_status(f"ime enable {ADB_KEYBOARD_IME} && ime set {ADB_KEYBOARD_IME}")
            if "Unknown input method" in out:
                raise DeviceCommandError(
                    f"ADB Keyboard is not installed on {self.serial}, and typing needs it: install "
                    f"ADBKeyboard.apk from {ADB_KEYBOARD_APK} (`adb -s {self.serial} install "
                    "ADBKeyboard.apk`), or bake it into the emulator snapshot"
                )
            if code == 0:
                time.sleep(0.5)  # the system binds the new IME asynchronously; its receiver starts then
            elif code != 127:
                raise DeviceCommandError(f"cannot select ADB Keyboard on {self.serial}: {out.strip()}")
            # 127: no `ime` command. droidrl's simulated phone has none, and its ADB Keyboard is built in.
        self._keyboard_ready = True

    def _broadcast(self, action: str, extras: str = "") -> None:
        command = f"am broadcast -a {action} -p {ADB_KEYBOARD_PACKAGE}" + (f" {extras}" if extras else "")
        out = self._shell(command)
        if "Broadcast completed" not in out:
            raise DeviceCommandError(f"the {action} broadcast failed on {self.serial}: {out.strip()[:300]}")

    # ---- adb plumbing ------------------------------------------------------------------------------------
    def _input(self, command: str) -> None:
        out, code = self._shell_status(command)
        if code != 0 or "Exception" in out:
            raise DeviceCommandError(f"`{command}` failed on {self.serial}: {out.strip()[:300]}")

    def _shell(self, command: str) -> str:
        return self._shell_status(command)[0]

    def _shell_status(self, command: str) -> tuple[str, int]:
        """(stdout then stderr, exit status); shell protocol v2, so a dropped connection is an error."""
        result = self._call(
            f"`{command[:60]}`",
            lambda: self._device.shell2(command, timeout=self.timeout_s, rstrip=False, v2=True),
        )
        return result.output, result.returncode

    def _exec(self, command: str) -> bytes:
        conn = self._device.open_transport(timeout=self.timeout_s)
        try:
            conn.send_command(f"exec:{command}")
            conn.check_okay()
            return conn.read_until_close(encoding=None)
        finally:
            conn.close()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except AdbTimeout as err:
            raise DeviceUnavailable(self.serial, f"{what} got no answer within {self.timeout_s:.0f}s ({err})") from None
        except (AdbError, OSError, EOFError) as err:
            raise self._failure(what, str(err) or type(err).__name__) from None

    def _failure(self, what: str, detail: str) -> DeviceUnavailable | DeviceCommandError:
        """DeviceCommandError if adb still lists the device as online, else DeviceUnavailable."""
        state = self._state()
        if state == "device":
            return DeviceCommandError(f"{what} failed on {self.serial}: {detail}")
        return DeviceUnavailable(self.serial, f"{what} failed ({detail}); {state}")

    def _state(self) -> str:
        """The string "device" when adb lists it online; otherwise what is wrong, in words."""
        try:
            # Checked first: adbutils would otherwise run `adb start-server` (on the default port).
            socket.create_connection((self.adb_host, self.adb_port), timeout=3).close()
        except OSError as err:
            return f"no adb server answers on {self.adb_host}:{self.adb_port} ({err})"
        try:
            # adbutils' get_state waits up to 10 minutes; this is its request with our timeout.
            with self._device.open_transport("get-state", timeout=self.timeout_s) as conn:
                state = conn.read_string_block()
        except (AdbError, OSError) as err:
            return f"the adb server on port {self.adb_port} says: {err}"
        return state if state == "device" else f"adb lists it as {state}"

    def __repr__(self) -> str:
        return f"AdbDevice({self.serial!r}, adb {self.adb_host}:{self.adb_port}, console {self.console_port})"
