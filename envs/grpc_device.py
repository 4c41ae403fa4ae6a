"""`GrpcDevice`: the `Device` contract over the emulator's gRPC service (screen, touch, keys, snapshots) plus adb.

android_env drives emulators this way: raw frames from `getScreenshot` (no PNG, no adb round trip), fingers
through `sendTouch`, keys through `sendKey`, snapshots through the `SnapshotService`; the shell, files, UI
dumps and typed text still go through adb (`AdbDevice`), so text only ever reaches the phone as base64.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc
import numpy as np
from android_env.proto import emulator_controller_pb2 as pb
from android_env.proto import emulator_controller_pb2_grpc as pb_grpc
from android_env.proto import snapshot_service_pb2 as snap_pb
from android_env.proto import snapshot_service_pb2_grpc as snap_grpc
from google.protobuf import empty_pb2

from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.device import check_snapshot_name, key_argument
from droidrl.envs.errors import DeviceCommandError, DeviceUnavailable, SnapshotError

# The emulator's keyboard (its qwerty keylayout) as evdev -> Android key codes: one table, kept with the
# gRPC service that implements it. Keys it has no evdev code for go through `input keyevent` instead.
from droidrl.envs.sim.grpc_server import EVDEV_TO_ANDROID
from droidrl.envs.sim.shell_android import keycode_from_string  # KeyEvent.keyCodeFromString

T = TypeVar("T")

# RPC failures that mean "the emulator is gone or not answering", as opposed to a refused request.
_UNAVAILABLE_CODES = frozenset(
    {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
)
_ANDROID_TO_EVDEV: dict[int, int] = {}
for _evdev, _android in sorted(EVDEV_TO_ANDROID.items()):
    _ANDROID_TO_EVDEV.setdefault(_android, _evdev)  # the lowest evdev code wins (KEY_HOME over KEY_HOMEPAGE)

SWIPE_MOVE_MS = 16  # one finger report per display frame, as a touchscreen sends them


class GrpcDevice:
    """An emulator reached through its gRPC port (`emulator -grpc PORT`) and an adb server.

    Args:
        serial: the adb serial, e.g. "emulator-5554" (also names the console for `AdbDevice`).
        grpc_port: the emulator's gRPC port (`-grpc`); `grpc_host` where it listens.
        adb_host, adb_port: the adb server for the shell, files, UI dumps and typed text.
        timeout_s: the longest one RPC or adb request may take before the device counts as unavailable.
        ready_timeout_s: how long `load_snapshot` waits for `sys.boot_completed` afterwards.

    Raises:
        DeviceUnavailable: the gRPC port or adb does not answer within `timeout_s` (any method).
        DeviceCommandError: the emulator answered but refused a request.
        SnapshotError: a snapshot is missing, the name is bad, or the emulator refuses snapshots.
    """

    def __init__(
        self,
        serial: str,
        grpc_port: int,
        *,
        grpc_host: str = "localhost",
        adb_host: str = "127.0.0.1",
        adb_port: int = 5037,
        timeout_s: float = 10.0,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.serial = serial
        self.grpc_address = f"{grpc_host}:{grpc_port}"
        self.timeout_s = timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.last_restore_s: float | None = None
        self._adb_args = dict(adb_host=adb_host, adb_port=adb_port, timeout_s=timeout_s)
        self._adb = AdbDevice(serial, ready_timeout_s=ready_timeout_s, **self._adb_args)
        # android_env's channel: local credentials, no message size limits (a 1080x2400 RGBA frame is 10 MB).
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self._channel = grpc.secure_channel(self.grpc_address, grpc.local_channel_credentials(), options=options)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise DeviceUnavailable(
                serial, f"its gRPC port {self.grpc_address} did not answer within {timeout_s:.0f}s"
            ) from None
        self._emulator = pb_grpc.EmulatorControllerStub(self._channel)
        self._snapshots = snap_grpc.SnapshotServiceStub(self._channel)
        self._size: tuple[int, int] | None = None
        self._rotation: int | None = None  # display rotation 0..3; None: read it before the next use

    # ---- observations ------------------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """The panel's (width, height), as `wm size` reports it (what `AdbDevice.size` says too)."""
        if self._size is None:
            status = self._rpc("getStatus", self._emulator.getStatus, empty_pb2.Empty())
            config = {entry.key: entry.value for entry in status.hardwareConfig.entry}
            try:
                self._size = int(config["hw.lcd.width"]), int(config["hw.lcd.height"])
            except (KeyError, ValueError):
                self._size = self._adb.size  # an emulator that does not report its hardware config
        return self._size

    def screenshot(self) -> np.ndarray:
        image = self._rpc("getScreenshot", self._emulator.getScreenshot, pb.ImageFormat(format=pb.ImageFormat.RGB888))
        width, height = image.format.width, image.format.height
        if len(image.image) != width * height * 3:
            raise DeviceCommandError(
                f"getScreenshot on {self.serial} sent {len(image.image)} bytes for a {width}x{height} RGB888 frame"
            )
        panel = np.frombuffer(image.image, dtype=np.uint8).reshape(height, width, 3)
        # The framebuffer keeps the panel's portrait frame; Android drew the rotated UI turned by the display
        # rotation, so turning it back gives what `screencap` returns.
        rotation = self._display_rotation()
        return np.ascontiguousarray(np.rot90(panel, k=rotation)) if rotation else panel.copy()

    def ui_xml(self) -> str:
        return self._adb.ui_xml()

    def current_app(self) -> str:
        return self._adb.current_app()

    # ---- input -------------------------------------------------------------------------------------------
    def tap(self, x: int, y: int) -> None:
        px, py = self._to_panel(x, y)
        self._touch(px, py, down=True)
        self._touch(px, py, down=False)

    def long_press(self, x: int, y: int, duration_ms: int = 1000) -> None:
        px, py = self._to_panel(x, y)
        self._touch(px, py, down=True)
        time.sleep(max(0, duration_ms) / 1000)  # Android tells a long press by how long the finger stays
        self._touch(px, py, down=False)

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 300) -> None:
        (ax, ay), (bx, by) = self._to_panel(x1, y1), self._to_panel(x2, y2)
        moves = max(1, int(duration_ms) // SWIPE_MOVE_MS)
        started = time.monotonic()
        self._touch(ax, ay, down=True)
        for i in range(1, moves + 1):
            # Paced by the clock, not by sleeps alone: the gesture's speed (fling or scroll) is distance/time.
            time.sleep(max(0.0, started + i * duration_ms / 1000 / moves - time.monotonic()))
            self._touch(round(ax + (bx - ax) * i / moves), round(ay + (by - ay) * i / moves), down=True)
        self._touch(bx, by, down=False)

    def key(self, key: int | str) -> None:
        argument = key_argument(key)  # validates before anything is sent
        evdev = _ANDROID_TO_EVDEV.get(keycode_from_string(argument))
        if evdev is None:
            self._adb.key(argument)  # a key the emulator's keyboard does not have: `input keyevent`
            return
        event = pb.KeyboardEvent(
            codeType=pb.KeyboardEvent.KeyCodeType.Evdev, eventType=pb.KeyboardEvent.KeyEventType.keypress, keyCode=evdev
        )
        self._rpc("sendKey", self._emulator.sendKey, event)

    def type_text(self, text: str) -> None:
        # Through ADB Keyboard as base64, exactly as AdbDevice types: any character arrives, nothing parses it.
        # (The gRPC `KeyboardEvent.text` becomes key presses of the emulator's keyboard, which has no emoji or CJK.)
        self._adb.type_text(text)

    def clear_text(self) -> None:
        self._adb.clear_text()

    def launch(self, package: str) -> None:
        self._adb.launch(package)

    # ---- files and shell (adb) ---------------------------------------------------------------------------
    def pull(self, path: str) -> bytes:
        return self._adb.pull(path)

    def push(self, path: str, data: bytes) -> None:
        self._adb.push(path, data)

    def shell(self, cmd: str) -> str:
        self._rotation = None  # setup commands may turn the display (`settings put system user_rotation`)
        return self._adb.shell(cmd)

    # ---- snapshots (gRPC SnapshotService, as android_env's EmulatorSimulator uses it) ---------------------
    def save_snapshot(self, name: str) -> None:
        check_snapshot_name(name)
        request = snap_pb.SnapshotPackage(snapshot_id=name)
        reply = self._rpc("SaveSnapshot", self._snapshots.SaveSnapshot, request, self._snapshot_timeout_s)
        if not reply.success:
            detail = reply.err.decode("utf-8", errors="replace")
            hint = "; start the emulator without -read-only to use snapshots" if "-read-only" in detail else ""
            raise SnapshotError(f"saving snapshot {name!r} on {self.serial} failed: {detail}{hint}")

    def load_snapshot(self, name: str) -> float:
        check_snapshot_name(name)
        started = time.perf_counter()
        request = snap_pb.SnapshotPackage(snapshot_id=name)
        reply = self._rpc("LoadSnapshot", self._snapshots.LoadSnapshot, request, self._snapshot_timeout_s)
        if not reply.success:
            detail = reply.err.decode("utf-8", errors="replace")
            missing = "exist" in detail or "not found" in detail.lower()
            hint = f"; save it first with save_snapshot({name!r})" if missing else ""
            raise SnapshotError(f"loading snapshot {name!r} on {self.serial} failed: {detail}{hint}")
        self._rotation = None
        self._wait_ready(name, started + self.ready_timeout_s)
        self.last_restore_s = time.perf_counter() - started
        return self.last_restore_s

    def _wait_ready(self, name: str, deadline: float) -> None:
        """Poll `sys.boot_completed` over a fresh adb client (the snapshot may predate ADB Keyboard's selection)."""
        while True:
            try:
                adb = AdbDevice(self.serial, ready_timeout_s=self.ready_timeout_s, **self._adb_args)
                if adb.shell("getprop sys.boot_completed").strip() == "1":
                    self._adb = adb
                    return
            except DeviceUnavailable:
                pass  # adb may drop the device for a moment while the snapshot loads
            if time.perf_counter() > deadline:
                raise DeviceUnavailable(
                    self.serial,
                    f"not ready {self.ready_timeout_s:.0f}s after loading snapshot {name!r} "
                    "(sys.boot_completed never became 1)",
                )
            time.sleep(0.1)

    @property
    def _snapshot_timeout_s(self) -> float:
        # A real emulator takes seconds to save or load a snapshot of a few GB, more on a busy host.
        return max(self.timeout_s, self.ready_timeout_s)

    def close(self) -> None:
        """Close the gRPC channel (the emulator keeps running)."""
        self._channel.close()

    # ---- plumbing ----------------------------------------------------------------------------------------
    def _touch(self, x: int, y: int, *, down: bool) -> None:
        event = pb.TouchEvent(touches=[pb.Touch(x=int(x), y=int(y), identifier=0, pressure=1 if down else 0)])
        self._rpc("sendTouch", self._emulator.sendTouch, event)

    def _display_rotation(self) -> int:
        """Surface rotation 0..3, read over adb once and again after anything that may have turned the display.

        With auto-rotate on, an emulator lying still reports the natural orientation; with it off the display
        follows `user_rotation` (WindowManager's locked mode).
        """
        if self._rotation is None:
            out = self._adb.shell("settings get system accelerometer_rotation; settings get system user_rotation")
            auto, user, *_ = [*(line.strip() for line in out.splitlines()), "", ""]
            self._rotation = int(user) % 4 if auto in ("0", "null") and user.isdigit() else 0
        return self._rotation

    def _to_panel(self, x: int, y: int) -> tuple[int, int]:
        """A display point (what `input tap` takes) on the portrait panel, where gRPC touches land."""
        width, height = self.size
        w, h, x, y = width - 1, height - 1, int(x), int(y)
        rotation = self._display_rotation()
        if rotation == 1:
            return w - y, x
        if rotation == 2:
            return w - x, h - y
        if rotation == 3:
            return y, h - x
        return x, y

    def _rpc(self, what: str, method: Callable[..., T], request: object, timeout_s: float | None = None) -> T:
        try:
            return method(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as err:
            # A stub's RpcError is also a grpc.Call, which carries the status code and the server's words.
            code, detail = (err.code(), err.details()) if isinstance(err, grpc.Call) else (None, str(err))
            said = f"{code.name if code else 'error'} ({detail})"
            if code in _UNAVAILABLE_CODES:
                raise DeviceUnavailable(self.serial, f"gRPC {what} on {self.grpc_address} failed: {said}") from None
            raise DeviceCommandError(f"gRPC {what} on {self.serial} failed: {said}") from None

    def __repr__(self) -> str:
        return f"GrpcDevice({self.serial!r}, gRPC {self.grpc_address}, {self._adb!r})"
