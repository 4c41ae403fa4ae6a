"""The emulator's gRPC `EmulatorController` and `SnapshotService` (`emulator -grpc PORT`) for a simulated phone.

Served with the stubs android-env ships (`android_env.proto.*_pb2_grpc`), so android_env's EmulatorSimulator
and anything else written against the emulator's gRPC API talk to the simulated phone unchanged: status,
screenshots in the emulator's formats and scaling, touch and mouse, keys, the VM run state and snapshots.
Methods the simulated phone has no use for answer UNIMPLEMENTED, as the emulator's unregistered ones do.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import TYPE_CHECKING

import grpc
from android_env.proto import emulator_controller_pb2 as pb
from android_env.proto import emulator_controller_pb2_grpc as pb_grpc
from android_env.proto import snapshot_pb2
from android_env.proto import snapshot_service_pb2 as snap_pb
from android_env.proto import snapshot_service_pb2_grpc as snap_grpc
from google.protobuf import empty_pb2

if TYPE_CHECKING:
    from PIL import Image

    from droidrl.envs.sim.phone import Phone

log = logging.getLogger(__name__)

# What `getStatus().version` reports: the emulator release whose gRPC API android-env 1.3.0's protos match.
EMULATOR_VERSION = "33.1.24.0 (build_id 11237101) (CL:N/A)"
MAX_SECONDARY_DISPLAYS = 3  # avdInfo_maxMultiDisplayEntries() of a phone AVD
RAM_MB = 2048

# Linux evdev key codes -> Android key codes, as the emulator's keyboard device maps them (its qwerty.kl
# keylayout, which differs from Generic.kl in a few places: KEY_HOME is HOME, not MOVE_HOME).
EVDEV_TO_ANDROID: dict[int, int] = {
    1: 111,  # ESC -> ESCAPE
    **{2 + i: 8 + i for i in range(9)},  # 1..9
    11: 7,  # 0
    12: 69,  # MINUS
    13: 70,  # EQUAL
    14: 67,  # BACKSPACE -> DEL
    15: 61,  # TAB
    **dict(
        zip((16, 17, 18, 19, 20, 21, 22, 23, 24, 25), (45, 51, 33, 46, 48, 53, 49, 37, 43, 44), strict=True)
    ),  # qwertyuiop
    26: 71,  # [
    27: 72,  # ]
    28: 66,  # ENTER
    29: 113,  # CTRL_LEFT
    **dict(zip((30, 31, 32, 33, 34, 35, 36, 37, 38), (29, 47, 32, 34, 35, 36, 38, 39, 40), strict=True)),  # asdfghjkl
    39: 74,  # ;
    40: 75,  # '
    41: 68,  # `
    42: 59,  # SHIFT_LEFT
    43: 73,  # backslash
    **dict(zip((44, 45, 46, 47, 48, 49, 50), (54, 52, 31, 50, 30, 42, 41), strict=True)),  # zxcvbnm
    51: 55,  # ,
    52: 56,  # .
    53: 76,  # /
    54: 60,  # SHIFT_RIGHT
    56: 57,  # ALT_LEFT
    57: 62,  # SPACE
    58: 115,  # CAPS_LOCK
    97: 114,  # CTRL_RIGHT
    100: 58,  # ALT_RIGHT
    102: 3,  # HOME
    103: 19,  # DPAD_UP
    104: 92,  # PAGE_UP
    105: 21,  # DPAD_LEFT
    106: 22,  # DPAD_RIGHT
    107: 6,  # END -> ENDCALL
    108: 20,  # DPAD_DOWN
    109: 93,  # PAGE_DOWN
    111: 112,  # DELETE -> FORWARD_DEL
    113: 164,  # MUTE
    114: 25,  # VOLUME_DOWN
    115: 24,  # VOLUME_UP
    116: 26,  # POWER
    139: 82,  # MENU
    158: 4,  # BACK
    172: 3,  # HOMEPAGE -> HOME
    217: 84,  # SEARCH
    580: 187,  # APPSELECT -> APP_SWITCH
}
SHIFT_KEYS = {59, 60}  # Android SHIFT_LEFT / SHIFT_RIGHT
KEYCODE_CHARS_SHIFTED = {8: "!", 9: "@", 10: "#", 11: "$", 12: "%", 13: "^", 14: "&", 15: "*", 16: "(", 7: ")"}

# Browser (DOM) key names the emulator accepts in `KeyboardEvent.key` for keys that print nothing.
DOM_KEYS: dict[str, int] = {
    "Enter": 66,
    "Backspace": 67,
    "Tab": 61,
    "Escape": 111,
    "Delete": 112,
    "ArrowUp": 19,
    "ArrowDown": 20,
    "ArrowLeft": 21,
    "ArrowRight": 22,
    "Home": 3,  # DomCode HOME is evdev KEY_HOME, which the emulator's keylayout maps to HOME
    "End": 6,
    "PageUp": 92,
    "PageDown": 93,
    "Shift": 59,
    "Control": 113,
    "Alt": 57,
    "CapsLock": 115,
    "Power": 26,
    "AudioVolumeUp": 24,
    "AudioVolumeDown": 25,
    "AudioVolumeMute": 164,
    "ContextMenu": 82,
    "BrowserSearch": 84,
    "GoBack": 4,
    "BrowserBack": 4,
    "GoHome": 3,
    "BrowserHome": 3,
    "AppSwitch": 187,
}


def keep_aspect(width: float, height: float, want_w: float, want_h: float) -> tuple[int, int]:
    """The emulator's ScreenshotUtils::resizeKeepAspectRatio: fit (want_w, want_h) without distorting."""
    aspect = width / height
    if want_w / want_h > aspect:
        return int(want_h * aspect), int(want_h)
    return int(want_w), int(want_w / aspect)


class TouchTracker:
    """Fingers (and the mouse) that are down: a lift turns the finger's path into a tap, long press or swipe."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.lock = threading.Lock()
        self.down: dict[object, tuple[int, int, float, int, int]] = {}  # id -> x0, y0, t0, x, y

    def event(self, finger: object, x: int, y: int, pressed: bool) -> None:
        """One touch report in the panel's (portrait) frame; Android maps it to the rotated display."""
        from droidrl.envs.sim import services

        x = min(max(x, 0), self.phone.width - 1)
        y = min(max(y, 0), self.phone.height - 1)
        lx, ly = services.physical_to_logical(self.phone, x, y)
        x, y = int(lx), int(ly)
        with self.lock:
            start = self.down.get(finger)
            if pressed:
                x0, y0, t0 = (x, y, time.monotonic()) if start is None else start[:3]
                self.down[finger] = (x0, y0, t0, x, y)
                return
            if start is None:
                return  # a lift with no finger down: the touchscreen reports nothing
            del self.down[finger]
        x0, y0, t0, _, _ = start
        duration_ms = int((time.monotonic() - t0) * 1000)
        # Phone.swipe decides as Android's gesture handling does: a still finger is a tap, or a long
        # press once held past the long-press timeout; a moving one scrolls or drags.
        self.phone.swipe(x0, y0, x, y, duration_ms)


class EmulatorController(pb_grpc.EmulatorControllerServicer):
    """The `android.emulation.control.EmulatorController` service of one phone."""

    def __init__(self, phone: Phone, on_shutdown: Callable[[], object] = lambda: None) -> None:
        self.phone = phone
        self.on_shutdown = on_shutdown
        self.touches = TouchTracker(phone)
        self.shift_down = False
        self.run_state = pb.VmRunState.RunState.RUNNING
        self.started = time.monotonic()
        self.screenshots = 0

    # ---- status ----------------------------------------------------------------------------------------
    def getStatus(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> pb.EmulatorStatus:
        status = pb.EmulatorStatus(
            version=EMULATOR_VERSION,
            uptime=int((time.monotonic() - self.started) * 1000),
            booted=self.phone.props.get("sys.boot_completed") == "1",
        )
        status.vmConfig.hypervisorType = pb.VmConfiguration.VmHypervisorType.NONE  # no VM: a simulation
        status.vmConfig.numberOfCpuCores = 4
        status.vmConfig.ramSizeBytes = RAM_MB * 1024 * 1024
        for key, value in self.hardware_config().items():
            status.hardwareConfig.entry.add(key=key, value=value)
        return status

    def hardware_config(self) -> dict[str, str]:
        """The hardware-qemu.ini entries the emulator reports (the ones clients read, with real key names)."""
        phone = self.phone
        return {
            "avd.name": phone.avd_name,
            "hw.cpu.arch": "x86_64",
            "hw.cpu.ncore": "4",
            "hw.ramSize": str(RAM_MB),
            "hw.device.manufacturer": "Google",
            "hw.device.name": "pixel_6",
            "hw.screen": "multi-touch",
            "hw.mainKeys": "false",
            "hw.keyboard": "true",
            "hw.lcd.width": str(phone.width),
            "hw.lcd.height": str(phone.height),
            "hw.lcd.density": str(phone.density),
            "hw.gpu.enabled": "true",
            "hw.gpu.mode": "swiftshader_indirect",
            "hw.audioInput": "false",
            "hw.audioOutput": "false",
            "hw.sdCard": "true",
            "hw.initialOrientation": "portrait",
            "image.androidVersion.api": phone.props.get("ro.build.version.sdk", "33"),
            "kernel.newDeviceNaming": "yes",
            "fastboot.forceColdBoot": "false",
            "firstboot.bootFromDownloadableSnapshot": "false",
        }

    def getVmState(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> pb.VmRunState:
        return pb.VmRunState(state=self.run_state)

    def setVmState(self, request: pb.VmRunState, context: grpc.ServicerContext) -> empty_pb2.Empty:
        states = pb.VmRunState.RunState
        if request.state in (states.SHUTDOWN, states.TERMINATE):
            self.run_state = states.SHUTDOWN
            self.on_shutdown()
        elif request.state in (states.PAUSED, states.RUNNING):
            self.run_state = request.state
        # RESET and the rest: the real emulator ignores what it cannot do, and so do we.
        return empty_pb2.Empty()

    # ---- screen ----------------------------------------------------------------------------------------
    def getScreenshot(self, request: pb.ImageFormat, context: grpc.ServicerContext) -> pb.Image:
        image = self.framebuffer()
        width, height = image.size
        want_w, want_h = request.width, request.height
        if not want_w or not want_h:
            want_w, want_h = width, height
        new_w, new_h = keep_aspect(width, height, want_w, want_h)
        if (new_w, new_h) != (width, height) and new_w > 0 and new_h > 0:
            from PIL import Image

            image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
        formats = pb.ImageFormat.ImgFormat
        if request.format == formats.PNG:
            from droidrl.envs.sim import render

            data = render.png_bytes(image)
        elif request.format == formats.RGB888:
            data = image.convert("RGB").tobytes()
        else:  # RGBA8888 (and values this proto does not know, as the emulator's translate() defaults)
            data = image.convert("RGBA").tobytes()
        self.screenshots += 1
        reply = pb.Image(image=data, width=image.width, height=image.height, seq=self.screenshots)
        reply.timestampUs = time.time_ns() // 1000
        reply.format.format = request.format if request.format in formats.values() else formats.RGBA8888
        reply.format.width, reply.format.height = image.width, image.height
        reply.format.rotation.rotation = pb.Rotation.SkinRotation.PORTRAIT  # the emulator's physical pose
        return reply

    def streamScreenshot(self, request: pb.ImageFormat, context: grpc.ServicerContext) -> Iterator[pb.Image]:
        """The first frame at once, then a frame whenever the screen changes (checked every 125 ms)."""
        version = None
        while context.is_active() and self.run_state != pb.VmRunState.RunState.SHUTDOWN:
            current = self.phone._version  # the phone's change counter
            if current != version:
                version = current
                yield self.getScreenshot(request, context)
            time.sleep(0.125)

    def framebuffer(self) -> Image.Image:
        """The display as the emulator's framebuffer holds it: the panel's native portrait orientation.

        When the phone's display is rotated (user_rotation), Android draws the rotated UI into the same
        portrait panel, so a landscape screen comes back turned by the display rotation.
        """
        from droidrl.envs.sim import services

        image = self.phone.screenshot()
        rotation = services.rotation(self.phone)
        if rotation:
            from PIL import Image

            # Rotation r turns the content r * 90 degrees on the panel (services.physical_to_logical).
            turn = {1: Image.Transpose.ROTATE_270, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_90}
            image = image.transpose(turn[rotation])
        return image

    def getDisplayConfigurations(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> pb.DisplayConfigurations:
        reply = pb.DisplayConfigurations()
        reply.displays.add(width=self.phone.width, height=self.phone.height, dpi=self.phone.density, display=0)
        return reply

    def setDisplayConfigurations(
        self, request: pb.DisplayConfigurations, context: grpc.ServicerContext
    ) -> pb.DisplayConfigurations:
        seen: set[int] = set()
        for display in request.displays:
            if display.display in seen:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Duplicate display: {display.display} detected.")
            if not (display.width and display.height and display.dpi):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"Display: {display.display} is an invalid configuration."
                )
            if not 1 <= display.display <= MAX_SECONDARY_DISPLAYS:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Display id has to be in the set: [1, {MAX_SECONDARY_DISPLAYS}].",
                )
            seen.add(display.display)
        if request.displays:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "Secondary displays are not simulated")
        return self.getDisplayConfigurations(empty_pb2.Empty(), context)

    # ---- input -----------------------------------------------------------------------------------------
    def sendTouch(self, request: pb.TouchEvent, context: grpc.ServicerContext) -> empty_pb2.Empty:
        if request.display == 0:  # touches for displays that do not exist go nowhere
            for touch in request.touches:
                self.touches.event(("touch", touch.identifier), touch.x, touch.y, touch.pressure > 0)
        return empty_pb2.Empty()

    def sendMouse(self, request: pb.MouseEvent, context: grpc.ServicerContext) -> empty_pb2.Empty:
        if request.display == 0:
            self.touches.event("mouse", request.x, request.y, bool(request.buttons & 1))  # left button
        return empty_pb2.Empty()

    def sendKey(self, request: pb.KeyboardEvent, context: grpc.ServicerContext) -> empty_pb2.Empty:
        types = pb.KeyboardEvent.KeyEventType
        if request.key:
            code = DOM_KEYS.get(request.key)
            if code is not None:
                self.key(code, request.eventType)
            elif len(request.key) == 1 and request.eventType != types.keyup:
                self.phone.type_text(request.key)  # a printable key types its character
        if request.text:
            self.phone.type_text(request.text)
        if request.keyCode > 0:
            code = self.android_keycode(request.keyCode, request.codeType)
            if code is not None:
                self.key(code, request.eventType)
        return empty_pb2.Empty()

    @staticmethod
    def android_keycode(code: int, code_type: int) -> int | None:
        types = pb.KeyboardEvent.KeyCodeType
        if code_type == types.XKB:
            return EVDEV_TO_ANDROID.get(code - 8)  # X11 keycodes are evdev + 8
        if code_type == types.Evdev:
            return EVDEV_TO_ANDROID.get(code)
        return None  # Usb, Win and Mac codes: keys no simulated app needs

    def key(self, code: int, event_type: int) -> None:
        types = pb.KeyboardEvent.KeyEventType
        if code in SHIFT_KEYS:
            if event_type != types.keypress:
                self.shift_down = event_type == types.keydown
            return
        if event_type == types.keyup:
            return  # the key already acted on its way down
        from droidrl.envs.sim.keyboard import KEYCODE_CHARS

        char = KEYCODE_CHARS.get(code)
        if self.shift_down and char is not None:
            self.phone.type_text(KEYCODE_CHARS_SHIFTED.get(code, char.upper()))
        else:
            self.phone.key(code)


class SnapshotService(snap_grpc.SnapshotServiceServicer):
    """`android.emulation.control.SnapshotService` over the phone's own snapshot store."""

    def __init__(self, phone: Phone, read_only: bool = False) -> None:
        self.phone = phone
        self.read_only = read_only
        self.loaded: str | None = None

    def ListSnapshots(self, request: snap_pb.SnapshotFilter, context: grpc.ServicerContext) -> snap_pb.SnapshotList:
        reply = snap_pb.SnapshotList()
        statuses = snap_pb.SnapshotDetails.LoadStatus
        for info in self.phone.list_snapshots():
            details = reply.snapshots.add(snapshot_id=info.name, size=info.size)
            details.status = statuses.Loaded if info.name == self.loaded else statuses.Compatible
            details.details.CopyFrom(
                snapshot_pb2.Snapshot(logical_name=info.name, creation_time=int(info.created), version=4)
            )
        return reply

    def LoadSnapshot(self, request: snap_pb.SnapshotPackage, context: grpc.ServicerContext) -> snap_pb.SnapshotPackage:
        def load(name: str) -> None:
            self.phone.load_snapshot(name)
            self.loaded = name

        return self._run(request, load, "load")

    def SaveSnapshot(self, request: snap_pb.SnapshotPackage, context: grpc.ServicerContext) -> snap_pb.SnapshotPackage:
        if self.read_only:
            return _failed(request.snapshot_id, 'Snapshot save is disabled because "-read-only" was specified')
        return self._run(request, self.phone.save_snapshot, "save")

    def DeleteSnapshot(
        self, request: snap_pb.SnapshotPackage, context: grpc.ServicerContext
    ) -> snap_pb.SnapshotPackage:
        return self._run(request, self.phone.delete_snapshot, "delete")

    def _run(
        self, request: snap_pb.SnapshotPackage, action: Callable[[str], None], verb: str
    ) -> snap_pb.SnapshotPackage:
        name = request.snapshot_id
        try:
            action(name)
        except KeyError:
            return _failed(name, f"Could not {verb} snapshot {name}: it does not exist")
        except (ValueError, OSError) as err:
            return _failed(name, f"Could not {verb} snapshot {name}: {err}")
        return snap_pb.SnapshotPackage(snapshot_id=name, success=True)


def _failed(name: str, message: str) -> snap_pb.SnapshotPackage:
    return snap_pb.SnapshotPackage(snapshot_id=name, success=False, err=message.encode())


class GrpcServer:
    """One phone's gRPC endpoint; `start()` binds `host:port` (raises OSError when it cannot)."""

    def __init__(
        self,
        phone: Phone,
        port: int,
        *,
        host: str = "127.0.0.1",
        read_only: bool = False,
        on_shutdown: Callable[[], object] = lambda: None,
        workers: int = 16,  # streams hold a worker each, as the emulator's synchronous service does
    ) -> None:
        self.phone = phone
        self.port = port
        self.controller = EmulatorController(phone, on_shutdown)
        self.snapshots = SnapshotService(phone, read_only)
        # No SO_REUSEPORT: a second emulator on the same port must fail, not share it silently.
        options = [("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
        pb_grpc.add_EmulatorControllerServicer_to_server(self.controller, self.server)
        snap_grpc.add_SnapshotServiceServicer_to_server(self.snapshots, self.server)
        self.address = f"{host}:{port}"

    def start(self) -> GrpcServer:
        try:
            bound = self.server.add_insecure_port(self.address)
        except RuntimeError as err:  # grpcio >= 1.5x raises instead of returning 0
            raise OSError(98, f"gRPC port {self.port}: address already in use") from err
        if not bound:
            raise OSError(98, f"gRPC port {self.port}: address already in use")
        self.server.start()
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        with contextlib.suppress(Exception):
            self.server.stop(grace).wait(5)


def serve_grpc(phone: Phone, port: int, **kwargs: object) -> GrpcServer:
    """Start the EmulatorController and SnapshotService of `phone` on 127.0.0.1:`port`, as the emulator binds it."""
    return GrpcServer(phone, port, **kwargs).start()
