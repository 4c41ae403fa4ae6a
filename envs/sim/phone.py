"""The simulated phone: device state, input events, app navigation, rendering hooks and snapshots.

A `Phone` is one device. Input arrives as pixel coordinates and Android key codes (the same units
`adb shell input` uses); observations are a PNG screenshot and a uiautomator XML dump drawn from one
positioned view tree, which is also what taps are hit-tested against.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from droidrl.envs.device import check_snapshot_name
from droidrl.envs.sim import keyboard, logcat, selection, services, snapshot, systemui, uixml
from droidrl.envs.sim.app import App, Ctx
from droidrl.envs.sim.state import Activity, Focus, PhoneState
from droidrl.envs.sim.ui import EDIT, SEEKBAR, Metrics, Node, Screen, layout_dialog, layout_screen
from droidrl.envs.sim.vfs import VirtualFS

if TYPE_CHECKING:
    from collections.abc import Callable

    from PIL import Image

    from droidrl.envs.sim.limits import Budget
    from droidrl.envs.sim.shell import ShellResult
    from droidrl.envs.sim.shell_util import PendingInput

# android_world freezes device time at this instant; we start from the same one.
DEFAULT_CLOCK_MS = int(dt.datetime(2023, 10, 15, 15, 34, tzinfo=dt.UTC).timestamp() * 1000)
LAUNCHER = "com.google.android.apps.nexuslauncher"

KEYCODE_HOME, KEYCODE_BACK, KEYCODE_ENTER, KEYCODE_DEL = 3, 4, 66, 67
KEYCODE_APP_SWITCH, KEYCODE_CTRL_LEFT, KEYCODE_CTRL_RIGHT = 187, 113, 114
KEYCODE_FORWARD_DEL, KEYCODE_ESCAPE, KEYCODE_SPACE, KEYCODE_A = 112, 111, 62, 29
KEYCODE_PASTE = 279


def default_settings() -> dict[str, dict[str, str]]:
    """Settings values of a freshly booted API 33 emulator image (the full `settings list` tables)."""
    from droidrl.envs.sim.settings_defaults import stock_settings

    return stock_settings()


def default_props(width: int, height: int, density: int, avd_name: str) -> dict[str, str]:
    return {
        "ro.product.name": "sdk_gphone64_x86_64",
        "ro.product.model": "sdk_gphone64_x86_64",
        "ro.product.device": "emu64xa",
        "ro.product.brand": "google",
        "ro.product.manufacturer": "Google",
        "ro.product.cpu.abi": "x86_64",
        "ro.build.version.sdk": "33",
        "ro.build.version.release": "13",
        "ro.build.type": "userdebug",
        "ro.build.characteristics": "emulator",
        "ro.build.fingerprint": "google/sdk_gphone64_x86_64/emu64xa:13/TE1A.220922.034/10940250:userdebug/dev-keys",
        "ro.hardware": "ranchu",
        "ro.kernel.qemu": "1",
        "ro.boot.qemu": "1",
        "ro.boot.qemu.avd_name": avd_name,
        "ro.serialno": "EMULATOR33X1X1X0",
        "ro.sf.lcd_density": str(density),
        "qemu.sf.lcd_density": str(density),
        "sys.boot_completed": "1",
        "dev.bootcomplete": "1",
        "init.svc.bootanim": "stopped",
        "persist.sys.timezone": "UTC",
        "persist.sys.locale": "en-US",
        "droidrl.screen": f"{width}x{height}",
    }


@dataclass(frozen=True)
class SnapshotInfo:
    """One saved snapshot: size of its serialised state, host creation time, device uptime at save."""

    name: str
    size: int
    created: float
    vm_clock_ms: int


def _locked(method):
    """Serialise a public method on the phone's lock; servers call phones from many threads."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


class Phone:
    """One simulated Android phone (an API 33 emulator image with droidrl's apps installed)."""

    def __init__(
        self,
        width: int = 1080,
        height: int = 2400,
        density: int = 420,
        *,
        apps: list[App] | None = None,
        avd_name: str = "droidrl_sim",
        snapshot_dir: str | Path | None = None,
        clock_ms: int = DEFAULT_CLOCK_MS,
    ) -> None:
        from droidrl.envs.sim.apps import default_apps  # apps import the core; import lazily

        if width < 320 or height < 480 or density < 120:
            raise ValueError(f"screen {width}x{height} @ {density}dpi is too small (min 320x480 @ 120dpi)")
        self.width, self.height, self.density = width, height, density
        # Portrait and landscape geometry; `metrics` picks one by the display rotation (services.rotation).
        self._metrics = (Metrics(width, height, density), Metrics(height, width, density))
        self.avd_name = avd_name
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {a.package: a for a in (apps if apps is not None else default_apps())}
        if LAUNCHER not in self.apps:
            raise ValueError(f"the app list must include the launcher ({LAUNCHER})")
        self.props = default_props(width, height, density, avd_name)
        self.state = PhoneState(fs=({}, {}), settings=default_settings(), clock_ms=clock_ms)
        self.fs = VirtualFS(clock=lambda: self.state.clock_ms // 1000)
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        self._snapshots: dict[str, tuple[bytes, SnapshotInfo]] = {}
        self._booted = time.monotonic()
        # adbd runs as root after `adb root` (a userdebug image allows it) until `adb unroot`; a cold boot
        # starts it as shell again. It belongs to the phone, so reconnecting clients see it unchanged.
        self.adb_root = False
        self._version = 0  # bumped on every change; keys the cached view tree
        self._cache: tuple[int, list[Node], Screen | None] | None = None
        for app in self.apps.values():
            self._install(app)
        services.preinstall(self)
        self.state.tasks[LAUNCHER] = [Activity(self.apps[LAUNCHER].main_activity)]
        self.state.foreground = LAUNCHER

    # ---- bookkeeping -------------------------------------------------------------------------------------
    @property
    def metrics(self) -> Metrics:
        """The display's geometry as apps lay out on it: landscape at 90 and 270 degrees of rotation."""
        return self._metrics[services.rotation(self) % 2]

    def changed(self) -> None:
        """Invalidate the cached view tree; call after changing state outside the input methods."""
        self._version += 1

    def _install(self, app: App) -> None:
        self.fs.makedirs(f"{app.data_dir}/databases")
        self.fs.makedirs(f"{app.data_dir}/shared_prefs")
        if app.install is not None:
            app.install(self)

    # ---- settings, clock, props ------------------------------------------------------------------------------
    def get_setting(self, namespace: str, key: str) -> str | None:
        return self._namespace(namespace).get(key)

    @_locked
    def put_setting(self, namespace: str, key: str, value: str) -> None:
        self._namespace(namespace)[key] = str(value)
        self.changed()

    @_locked
    def delete_setting(self, namespace: str, key: str) -> bool:
        self.changed()
        return self._namespace(namespace).pop(key, None) is not None

    def list_settings(self, namespace: str) -> dict[str, str]:
        return dict(sorted(self._namespace(namespace).items()))

    def _namespace(self, namespace: str) -> dict[str, str]:
        if namespace not in ("system", "secure", "global"):
            raise ValueError(f"Invalid namespace '{namespace}'")
        return self.state.settings[namespace]

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.state.clock_ms / 1000, tz=dt.UTC)

    @_locked
    def set_clock(self, epoch_ms: int) -> None:
        self.state.clock_ms = int(epoch_ms)
        self.changed()

    @_locked
    def advance_clock(self, seconds: float) -> None:
        self.state.clock_ms += round(seconds * 1000)
        self.changed()

    @property
    def dark(self) -> bool:
        return self.get_setting("secure", "ui_night_mode") == "2"

    # ---- navigation --------------------------------------------------------------------------------------
    def current_activity(self) -> tuple[str, str]:
        pkg = self.state.foreground
        return pkg, self.state.tasks[pkg][-1].name

    def task_stacks(self) -> list[tuple[int, str, list[str]]]:
        """(task id, package, activities bottom->top) for every task, foreground first."""
        order = [self.state.foreground] + [p for p in reversed(self.state.recents) if p != self.state.foreground]
        order += [p for p in self.state.tasks if p not in order]
        ids = {pkg: 1 + sorted(self.apps).index(pkg) for pkg in self.apps}
        return [(ids[p], p, [a.name for a in self.state.tasks[p]]) for p in order if p in self.state.tasks]

    @_locked
    def launch(self, package: str, activity: str | None = None, args: dict[str, Any] | None = None) -> None:
        """Bring an app to the front (starting it if needed), or start a given activity of it."""
        app = self._app(package)
        if activity is not None and activity not in app.activities:
            raise KeyError(f"Activity class {{{package}/{activity}}} does not exist.")
        self._leave_screen()
        if package == LAUNCHER:
            self._go_home()
            return
        stack = self.state.tasks.get(package)
        if stack is None:
            self.state.tasks[package] = [Activity(activity or app.main_activity, dict(args or {}))]
        elif activity is not None and activity != stack[-1].name:
            stack.append(Activity(activity, dict(args or {})))
        self.state.foreground = package
        if package in self.state.stopped:
            self.state.stopped.remove(package)
        self._touch_recents(package)
        systemui.maybe_interrupt(self, package)
        self.changed()
        logcat.activity_started(self, package, self.state.tasks[package][-1].name, cold=stack is None)

    def start_activity(self, package: str, name: str, args: dict[str, Any]) -> None:
        app = self._app(package)
        if name not in app.activities:
            raise KeyError(f"Activity class {{{package}/{name}}} does not exist.")
        self.state.tasks.setdefault(package, []).append(Activity(name, dict(args)))
        self.state.focus = None
        self.changed()

    def finish_activity(self, package: str) -> None:
        stack = self.state.tasks.get(package)
        if not stack:
            return
        stack.pop()
        self.state.focus = None
        if not stack:
            del self.state.tasks[package]
            if self.state.foreground == package:
                self._go_home()
        self.changed()

    @_locked
    def force_stop(self, package: str) -> None:
        self._app(package)
        if package == LAUNCHER:
            self._go_home()
            return
        self.state.tasks.pop(package, None)
        if package not in self.state.stopped:
            self.state.stopped.append(package)
        if self.state.foreground == package:
            self._go_home()
        self.changed()

    @_locked
    def clear_app_data(self, package: str) -> None:
        """`pm clear`: stop the app, wipe its data directory and reinstall its initial data."""
        app = self._app(package)
        self.force_stop(package)
        self.fs.rmtree(app.data_dir)
        self._install(app)
        self.changed()

    def _app(self, package: str) -> App:
        if package not in self.apps:
            raise KeyError(f"unknown package '{package}'")
        return self.apps[package]

    def _go_home(self) -> None:
        self.state.foreground = LAUNCHER
        self.state.overview = False
        self.state.focus = None
        self.state.tasks[LAUNCHER] = [Activity(self.apps[LAUNCHER].main_activity)]

    def _touch_recents(self, package: str) -> None:
        if package in self.state.recents:
            self.state.recents.remove(package)
        self.state.recents.append(package)

    def _leave_screen(self) -> None:
        self.state.overview = False
        self.state.focus = None

    # ---- observations ------------------------------------------------------------------------------------
    def windows(self) -> list[Node]:
        """Positioned view trees of every window, bottom to top (app, system bars, dialog, toast, IME)."""
        with self.lock:
            if self._cache is None or self._cache[0] != self._version:
                windows, screen = self._build_windows()
                self._cache = (self._version, windows, screen)
            return self._cache[1]

    def _current_screen(self) -> tuple[App, Ctx, Screen]:
        pkg = self.state.foreground
        app = self.apps[pkg]
        stack = self.state.tasks[pkg]
        activity = stack[-1]
        ctx = Ctx(self, app, activity, len(stack) - 1)
        if self.state.overview:
            from droidrl.envs.sim.apps.launcher import overview_screen

            return app, ctx, overview_screen(ctx)
        return app, ctx, app.activities[activity.name](ctx)

    def _build_windows(self) -> tuple[list[Node], Screen]:
        app, ctx, screen = self._current_screen()
        focus = self.state.focus
        ime = focus is not None and focus.package == app.package and focus.depth == ctx.depth
        root, scroll = layout_screen(screen, self.metrics, app.package, ctx.activity.scroll, ime)
        fields = [*root.walk(), *(screen.dialog.rows if screen.dialog is not None else [])]
        fields = [n for row in fields for n in row.walk() if n.cls == EDIT]
        if ime and not any(n.field == focus.field for n in fields):
            # The focused field is gone (its dialog closed): Android drops focus and hides the IME.
            self.state.focus, ime = None, False
            root, scroll = layout_screen(screen, self.metrics, app.package, ctx.activity.scroll, ime)
        ctx.activity.scroll = scroll
        for node in root.walk():
            if node.cls == EDIT and node.field:
                node.focused = ime and focus.field == node.field
        windows = [root, systemui.status_bar(self), systemui.nav_bar(self)]
        if screen.dialog is not None:
            windows.append(layout_dialog(screen.dialog, self.metrics, app.package, keyboard=ime))
        if self.state.system_dialog is not None:
            windows.append(systemui.system_dialog(self))
        if ime:
            windows.append(keyboard.layout(self))
            toolbar = selection.layout(self, next((n for n in fields if n.focused), None))
            if toolbar is not None:  # the long-press Cut / Copy / Paste toolbar floats over the field
                windows.append(toolbar)
        if self.state.toast:  # toasts float above the keyboard, as on a phone
            windows.append(systemui.toast(self, self.state.toast))
        return windows, screen

    def _screen(self) -> Screen:
        self.windows()
        return self._cache[2]

    def screenshot(self) -> Image.Image:
        from droidrl.envs.sim import render  # Pillow is only needed once someone looks at the screen

        with self.lock:
            return render.screenshot(self.windows(), self.metrics, dark=self.dark)

    def screenshot_png(self) -> bytes:
        from droidrl.envs.sim import render

        with self.lock:
            return render.png_bytes(self.screenshot())

    def ui_xml(self) -> str:
        with self.lock:
            return uixml.hierarchy_xml(self.windows(), services.rotation(self))

    def find(self, *, rid: str = "", text: str = "", desc: str = "") -> Node | None:
        """The topmost on-screen node matching the resource-id suffix, text and/or content-desc."""
        for window in reversed(self.windows()):
            node = window.find(rid=rid, text=text, desc=desc)
            if node is not None:
                return node
        return None

    @_locked
    def tap_node(self, *, rid: str = "", text: str = "", desc: str = "") -> Node:
        """Tap the centre of a node found with `find`; raises LookupError naming what was missing."""
        node = self.find(rid=rid, text=text, desc=desc)
        if node is None:
            raise LookupError(f"no node on screen with rid={rid!r} text={text!r} desc={desc!r}")
        self.tap(*node.center)
        return node

    # ---- input --------------------------------------------------------------------------------------------
    def _begin_input(self) -> None:
        self.state.input_events += 1
        self.state.toast = None
        selection.hide(self)  # any input closes the text-selection toolbar
        self.changed()

    def _interactive(self, node: Node) -> bool:
        return node.enabled and (
            node.on_click is not None
            or node.on_long_click is not None
            or (node.cls == EDIT and bool(node.field))
            or node.cls == SEEKBAR
        )

    def hit(self, x: int, y: int) -> Node | None:
        """The node a touch at (x, y) lands on: the deepest interactive node of the topmost window under it.

        A modal dialog swallows touches outside itself; the result is then the dialog root.
        """
        windows = self.windows()
        for window in reversed(windows):
            if window.kind == "toast":
                continue
            inside = _contains(window.bounds, x, y)
            if window.kind in ("dialog", "system_dialog") and not inside:
                return window  # modal: the touch goes to the dialog's outside handler
            if not inside:
                continue
            found = None
            for node in window.walk():
                if _contains(node.bounds, x, y) and self._interactive(node):
                    found = node
            if found is not None or window.kind in ("dialog", "system_dialog", "keyboard"):
                return found or window
        return None

    @_locked
    def tap(self, x: int, y: int) -> None:
        node = self.hit(x, y)
        screen = self._screen()
        self._begin_input()
        if node is None:
            return
        if node.kind in ("dialog", "system_dialog") and not _contains(node.bounds, x, y):
            self._cancel_dialog(screen)
        elif node.cls == EDIT and node.field:
            self._focus(node.field)
        elif node.cls == SEEKBAR and node.on_progress is not None:
            left, _, right, _ = node.bounds
            node.on_progress(min(1.0, max(0.0, (x - left) / max(1, right - left))))
        elif node.on_click is not None:
            node.on_click()
        self.changed()

    @_locked
    def long_press(self, x: int, y: int, duration_ms: int = 1000) -> None:
        node = self.hit(x, y)
        self._begin_input()
        if node is None:
            return
        if node.on_long_click is not None:
            node.on_long_click()
        elif node.cls == EDIT and node.field:
            self._focus(node.field)
            self.state.select_all = True
            selection.show(self)
        self.changed()

    @_locked
    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 300) -> None:
        """Scroll the list under the start point, drag a seek bar, or long-press when the finger stays put."""
        if abs(x2 - x1) < 8 and abs(y2 - y1) < 8:
            if duration_ms >= 500:
                self.long_press(x1, y1, duration_ms)
            else:
                self.tap(x1, y1)
            return
        node = self.hit(x1, y1)
        self._begin_input()
        if node is not None and node.cls == SEEKBAR and node.on_progress is not None:
            left, _, right, _ = node.bounds
            node.on_progress(min(1.0, max(0.0, (x2 - left) / max(1, right - left))))
        elif abs(y2 - y1) >= abs(x2 - x1) and not self._modal_open():
            self._scroll(x1, y1, y1 - y2)
        self.changed()

    def _modal_open(self) -> bool:
        return any(w.kind in ("dialog", "system_dialog") for w in self.windows())

    def _scroll(self, x: int, y: int, delta: int) -> None:
        app_window = self.windows()[0]
        for node in app_window.walk():
            if node.scrollable and _contains(node.bounds, x, y):
                activity = self.state.tasks[self.state.foreground][-1]
                activity.scroll += delta
                return

    @_locked
    def key(self, keycode: int) -> None:
        """One key press (Android KeyEvent code): navigation keys, editing keys, or a character."""
        screen = self._screen()
        self._begin_input()
        self.press(keycode, screen)
        self.changed()

    def press(self, keycode: int, screen: Screen | None = None) -> None:
        """Handle a key inside an input event (nav-bar buttons and IME keys call this directly)."""
        screen = screen or self._screen()
        if services.handle_call_key(self, keycode):
            return  # CALL answers a ringing call, ENDCALL hangs up
        if keycode == KEYCODE_PASTE:
            self._type(services.clipboard(self) or "")  # the focused field pastes the primary clip
            return
        if keycode == KEYCODE_HOME:
            self.state.system_dialog = None if self._system_dialog_cancelable() else self.state.system_dialog
            self._leave_screen()
            self._go_home()
        elif keycode in (KEYCODE_BACK, KEYCODE_ESCAPE):
            self._back(screen)
        elif keycode == KEYCODE_APP_SWITCH:
            self.state.focus = None
            self.state.overview = not self.state.overview
            if self.state.overview:
                self.state.foreground = LAUNCHER
                self.state.tasks[LAUNCHER] = [Activity(self.apps[LAUNCHER].main_activity)]
        elif keycode == KEYCODE_ENTER:
            self._enter(screen)
        elif keycode == KEYCODE_DEL:
            self._delete()
        elif keycode == KEYCODE_FORWARD_DEL:
            if self.state.select_all:
                self._delete()
        else:
            char = keyboard.KEYCODE_CHARS.get(keycode)
            if char is not None:
                self._type(char)

    @_locked
    def key_combination(self, keycodes: list[int]) -> None:
        """Chorded keys; CTRL+A selects the focused field's text so the next DEL clears it."""
        ctrl = any(k in (KEYCODE_CTRL_LEFT, KEYCODE_CTRL_RIGHT) for k in keycodes)
        if ctrl and KEYCODE_A in keycodes and self.state.focus is not None:
            self._begin_input()
            self.state.select_all = True
            return
        for code in keycodes:
            if code not in (KEYCODE_CTRL_LEFT, KEYCODE_CTRL_RIGHT):
                self.key(code)

    @_locked
    def type_text(self, text: str) -> None:
        """Type into the focused field, as an IME commit would; ignored when nothing has focus."""
        self._begin_input()
        for line_no, line in enumerate(text.split("\n")):
            if line_no:
                self._enter(self._screen())
            self._type(line)
        self.changed()

    def _focus(self, field: str) -> None:
        stack = self.state.tasks[self.state.foreground]
        self.state.focus = Focus(self.state.foreground, len(stack) - 1, field)
        self.state.select_all = False

    def _focused_activity(self) -> Activity | None:
        f = self.state.focus
        if f is None or f.package != self.state.foreground or self.state.overview:
            return None
        stack = self.state.tasks.get(f.package, [])
        return stack[f.depth] if f.depth == len(stack) - 1 else None

    def _field_text(self, activity: Activity, key: str) -> str:
        """The text a field holds: typed text, else what the screen prefilled it with."""
        if key in activity.fields:
            return activity.fields[key]
        for node in self.windows()[0].walk():
            if node.cls == EDIT and node.field == key:
                return node.text
        return ""

    def _type(self, text: str) -> None:
        activity = self._focused_activity()
        if activity is None or not text:
            return
        old = "" if self.state.select_all else self._field_text(activity, self.state.focus.field)
        activity.fields[self.state.focus.field] = old + text
        self.state.select_all = False

    def _delete(self) -> None:
        activity = self._focused_activity()
        if activity is None:
            return
        key = self.state.focus.field
        value = self._field_text(activity, key)
        activity.fields[key] = "" if self.state.select_all else value[:-1]
        self.state.select_all = False

    def _enter(self, screen: Screen) -> None:
        if self._focused_activity() is None:
            return
        if screen.on_enter is not None:
            screen.on_enter()
        else:
            self.state.focus = None  # IME action "done" closes the keyboard

    def _back(self, screen: Screen) -> None:
        if self.state.focus is not None and self._focused_activity() is not None:
            self.state.focus = None  # the first BACK hides the keyboard
        elif self.state.system_dialog is not None:
            if self._system_dialog_cancelable():
                systemui.dismiss_system_dialog(self)
        elif screen.dialog is not None:
            self._cancel_dialog(screen)
        elif screen.on_back is not None and not self.state.overview:
            screen.on_back()  # the app handles BACK itself (e.g. "Discard changes?")
        elif self.state.overview:
            self.state.overview = False
        elif self.state.foreground != LAUNCHER:
            self.finish_activity(self.state.foreground)
        else:
            self._go_home()

    def _cancel_dialog(self, screen: Screen) -> None:
        if self.state.system_dialog is not None:
            if self._system_dialog_cancelable():
                systemui.dismiss_system_dialog(self)
        elif screen.dialog is not None and screen.dialog.on_cancel is not None:
            screen.dialog.on_cancel()

    def _system_dialog_cancelable(self) -> bool:
        return bool(self.state.system_dialog and self.state.system_dialog.get("cancelable", True))

    # ---- shell --------------------------------------------------------------------------------------------
    def shell(
        self,
        command: str,
        budget: Budget | None = None,
        stdin: bytes | PendingInput = b"",
        sink: Callable[[bytes], None] | None = None,
    ) -> ShellResult:
        """Run one `sh -c` command line through the simulated device shell.

        Not under the lock as a whole: the shell takes it around each step that touches the phone, so
        a `sleep` or a long loop leaves other clients free. `budget` bounds its CPU time and memory.
        `stdin` feeds its commands; `sink` takes a streaming command's output as it comes (`shell.run`).
        """
        from droidrl.envs.sim import shell

        result = shell.run(self, command, budget, stdin, sink)
        with self.lock:
            self.changed()
        return result

    # ---- snapshots ----------------------------------------------------------------------------------------
    # Snapshots are `snapshot.py`'s format (JSON + raw file bytes), in memory and in `<snapshot_dir>/<name>.snap`:
    # loading one can never run code, and a corrupt or foreign file is a SnapshotError, never a crash.
    @_locked
    def save_snapshot(self, name: str) -> None:
        check_snapshot_name(name)
        created, uptime = time.time(), self.uptime_ms()
        # adbd's user is part of the VM's processes, which an emulator snapshot covers.
        meta = {"name": name, "created": created, "vm_clock_ms": uptime, "adb_root": self.adb_root}
        data = snapshot.encode(self.state, self.fs.state(), self.props, meta)
        info = SnapshotInfo(name, len(data), created, uptime)
        self._snapshots[name] = (data, info)
        if self.snapshot_dir is not None:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.snapshot_dir / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.replace(self.snapshot_dir / f"{name}.snap")

    @_locked
    def load_snapshot(self, name: str) -> None:
        """Restore a snapshot; KeyError if there is none, SnapshotError (a ValueError) if it is unreadable."""
        data, _ = self._snapshot(name)
        state, props = snapshot.decode(data)  # everything is checked before the phone changes
        self.fs.restore(state.fs)
        state.fs = ({}, {})
        self.state, self.props = state, props
        self.adb_root = snapshot.read_info(data).get("adb_root") is True  # older snapshots: adbd as shell
        self.changed()

    @_locked
    def delete_snapshot(self, name: str) -> None:
        check_snapshot_name(name)
        if name not in self._snapshots and not self._snapshot_path(name).is_file():
            raise KeyError(name)
        self._snapshots.pop(name, None)
        if self.snapshot_dir is not None:
            self._snapshot_path(name).unlink(missing_ok=True)

    @_locked
    def list_snapshots(self) -> list[SnapshotInfo]:
        if self.snapshot_dir is not None and self.snapshot_dir.is_dir():
            for path in self.snapshot_dir.glob("*.snap"):
                if path.stem not in self._snapshots:
                    with contextlib.suppress(KeyError, ValueError, OSError):  # foreign or corrupt: not listed
                        self._snapshot(path.stem)
        return sorted((info for _, info in self._snapshots.values()), key=lambda i: i.created)

    def _snapshot_path(self, name: str) -> Path:
        """Where snapshot `name` is stored: only ever a file directly inside the snapshot directory."""
        check_snapshot_name(name)
        return (self.snapshot_dir or Path("/nonexistent")) / f"{name}.snap"

    def _snapshot(self, name: str) -> tuple[bytes, SnapshotInfo]:
        path = self._snapshot_path(name)  # a ValueError for names like `../x` or `/tmp/x`, before any I/O
        if name not in self._snapshots and self.snapshot_dir is not None and path.is_file():
            data = path.read_bytes()
            meta = snapshot.read_info(data)
            created, uptime = meta.get("created"), meta.get("vm_clock_ms")
            if not isinstance(created, int | float) or not isinstance(uptime, int):
                raise snapshot.SnapshotError(f"{path}: bad snapshot info")
            self._snapshots[name] = (data, SnapshotInfo(name, len(data), float(created), uptime))
        if name not in self._snapshots:
            raise KeyError(name)
        return self._snapshots[name]

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self._booted) * 1000)


def _contains(bounds: tuple[int, int, int, int], x: int, y: int) -> bool:
    left, top, right, bottom = bounds
    return left <= x < right and top <= y < bottom
