"""The accessibility forwarder app (android_env's `com.google.androidenv.accessibilityforwarder`), simulated.

Like the real app (the 2024.05.13 APK android_env installs): its FlagsBroadcastReceiver takes
`ENABLE/DISABLE_ACCESSIBILITY_TREE_LOGS` and `SET_GRPC --ei port N --es host H` broadcasts; while its
AccessibilityService is enabled (`settings put secure enabled_accessibility_services ...`), a thread sends
the phone's accessibility forest to the host's `A11yService.SendForest` every 100 ms once tree logs are on
and a port is set, and each UI change as an accessibility event through `SendEvent`. The forest is built
from the same positioned view tree the screen and `uiautomator dump` come from.

Inside the emulator the host is 10.0.2.2; for the simulated phone that is the host's 127.0.0.1. No other
address is reachable (the device cannot open connections to arbitrary hosts), and airplane mode cuts it
off, as it does the real app.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from android_env.proto.a11y import android_accessibility_forest_pb2 as forest_pb2

    from droidrl.envs.sim.phone import Phone
    from droidrl.envs.sim.ui import Node

log = logging.getLogger(__name__)

FORWARDER_PACKAGE = "com.google.androidenv.accessibilityforwarder"
SERVICE_COMPONENT = f"{FORWARDER_PACKAGE}/{FORWARDER_PACKAGE}.AccessibilityForwarder"
RECEIVER_CLASS = f"{FORWARDER_PACKAGE}.FlagsBroadcastReceiver"
ACTION = "accessibility_forwarder.intent.action."
EMULATOR_HOST_ALIAS = "10.0.2.2"  # the emulator's alias for the host's loopback interface
GRPC_TIMEOUT_S = 1.0  # the app's grpcTimeoutMillis
DEFAULT_PERIOD_MS = 100  # LogFlags.a11yTreePeriodMs

# AccessibilityNodeInfo.AccessibilityAction ids
ACTION_FOCUS, ACTION_CLICK, ACTION_LONG_CLICK, ACTION_A11Y_FOCUS = 1, 16, 32, 64
ACTION_SCROLL_FORWARD, ACTION_SCROLL_BACKWARD, ACTION_SET_TEXT = 4096, 8192, 2097152

# Window ids and types per window kind (AccessibilityWindowInfo.TYPE_*): stable across frames, as a
# window keeps its id while it exists.
_WINDOWS = {
    "status_bar": (2, "TYPE_SYSTEM"),
    "nav_bar": (3, "TYPE_SYSTEM"),
    "keyboard": (5, "TYPE_INPUT_METHOD"),
    "dialog": (7, "TYPE_APPLICATION"),
    "system_dialog": (8, "TYPE_SYSTEM"),
}
_APP_WINDOW = (1, "TYPE_APPLICATION")


@dataclass
class LogFlags:
    """The app's global flags (its `LogFlags` object): process memory, so a fresh phone starts from these."""

    log_tree: bool = False
    period_ms: int = DEFAULT_PERIOD_MS
    host: str = ""
    port: int = 0


def installed(phone: Phone) -> bool:
    """Installed while its data directory exists, like the image's other extra packages."""
    return phone.fs.exists(f"/data/data/{FORWARDER_PACKAGE}")


def service_enabled(phone: Phone) -> bool:
    """The AccessibilityService runs while it is listed in enabled_accessibility_services and installed."""
    enabled = phone.get_setting("secure", "enabled_accessibility_services") or ""
    components = {c.strip() for c in enabled.split(":")}
    short = f"{FORWARDER_PACKAGE}/.AccessibilityForwarder"
    return installed(phone) and (SERVICE_COMPONENT in components or short in components)


# ---- the forest -----------------------------------------------------------------------------------------
def _visible_text(node: Node) -> str:
    # AccessibilityNodeInfo.getText of an empty EditText is its hint (API 26+); passwords are masked.
    if node.cls.endswith("EditText"):
        if not node.text:
            return node.hint
        if node.password:
            return "\u2022" * len(node.text)
    return node.text


def _actions(node: Node, visible: bool, editable: bool) -> list[int]:
    actions = []
    if node.focusable or editable:
        actions.append(ACTION_FOCUS)
    if node.clickable:
        actions.append(ACTION_CLICK)
    if node.long_clickable:
        actions.append(ACTION_LONG_CLICK)
    if visible:
        actions.append(ACTION_A11Y_FOCUS)
    if node.scrollable:
        actions += [ACTION_SCROLL_FORWARD, ACTION_SCROLL_BACKWARD]
    if editable:
        actions.append(ACTION_SET_TEXT)
    return actions


def build_forest(phone: Phone) -> forest_pb2.AndroidAccessibilityForest:
    """The AndroidAccessibilityForest of the phone's windows, as the app's AccessibilityTreeCreator builds it.

    Windows come bottom to top; each window's nodes breadth-first with per-window unique ids, child ids
    and depths. Toasts are not accessibility windows and are left out.
    """
    from android_env.proto.a11y import android_accessibility_forest_pb2 as forest_pb2
    from android_env.proto.a11y import android_accessibility_window_info_pb2 as window_pb2

    from droidrl.envs.sim import services

    with phone.lock:
        windows = [w for w in phone.windows() if w.kind != "toast"]
        width, height = services.logical_size(phone)
    forest = forest_pb2.AndroidAccessibilityForest()
    focused = max((i for i, w in enumerate(windows) if w.kind not in ("status_bar", "nav_bar", "keyboard")), default=0)
    for layer, window in enumerate(windows):
        window_id, type_name = _WINDOWS.get(window.kind, _APP_WINDOW)
        info = forest.windows.add(id=window_id, layer=layer, display_id=0)
        info.window_type = window_pb2.AndroidAccessibilityWindowInfo.WindowType.Value(type_name)
        info.is_active = info.is_focused = layer == focused
        _rect(info.bounds_in_screen, window.bounds)
        _tree(info.tree, window, window_id, width, height)
    return forest


def _rect(rect: Any, bounds: tuple[int, int, int, int]) -> None:
    rect.left, rect.top, rect.right, rect.bottom = bounds


def _tree(tree: Any, root: Node, window_id: int, width: int, height: int) -> None:
    layer = [(root, 0)]
    ids: dict[int, int] = {}
    order: list[tuple[Node, int]] = []
    while layer:  # breadth first, layer by layer, as processNodesInWindow
        order += layer
        layer = [(child, depth + 1) for node, depth in layer for child in node.children]
    for i, (node, _) in enumerate(order):
        ids[id(node)] = i
    for node, depth in order:
        left, top, right, bottom = node.bounds
        visible = right > left and bottom > top and right > 0 and bottom > 0 and left < width and top < height
        editable = node.cls.endswith("EditText") and node.enabled
        info = tree.nodes.add(
            unique_id=ids[id(node)],
            class_name=node.cls,
            content_description=node.desc,
            hint_text=node.hint if node.cls.endswith("EditText") else "",
            package_name=node.package or root.package,
            text=_visible_text(node),
            view_id_resource_name=node.rid,
            window_id=window_id,
            is_checkable=node.checkable,
            is_checked=node.checked,
            is_clickable=node.clickable,
            is_editable=editable,
            is_enabled=node.enabled,
            is_focusable=node.focusable or editable,
            is_focused=node.focused,
            is_long_clickable=node.long_clickable,
            is_password=node.password,
            is_scrollable=node.scrollable,
            is_selected=node.selected,
            is_visible_to_user=visible,
            depth=depth,
            drawing_order=1,
        )
        if editable:
            info.text_selection_start = info.text_selection_end = len(node.text)
        else:
            info.text_selection_start = info.text_selection_end = -1
        _rect(info.bounds_in_screen, node.bounds)
        info.child_ids.extend(ids[id(child)] for child in node.children)
        for action in _actions(node, visible, editable):
            info.actions.add(id=action)


# ---- the app --------------------------------------------------------------------------------------------
class Forwarder:
    """One phone's forwarder app: its flags (process memory) and the thread of its AccessibilityService."""

    def __init__(self, phone: Phone) -> None:
        self._phone = weakref.ref(phone)
        self.flags = LogFlags()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self._channel: tuple[str, Any] | None = None  # (address, channel): rebuilt when the endpoint changes
        self._forest: tuple[int, Any] | None = None  # (phone version, forest) of the last tree built
        self.sent_forests = 0
        self.sent_events = 0
        self.failures = 0

    # FlagsBroadcastReceiver.onReceive
    def receive(self, action: str, extras: dict[str, Any]) -> None:
        name = action.removeprefix(ACTION) if action.startswith(ACTION) else ""
        with self.lock:
            if name == "ENABLE_ACCESSIBILITY_TREE_LOGS":
                self.flags.log_tree = True
            elif name == "DISABLE_ACCESSIBILITY_TREE_LOGS":
                self.flags.log_tree = False
            elif name == "SET_GRPC":
                self.flags.host = str(extras.get("host") or EMULATOR_HOST_ALIAS)
                self.flags.port = _int_extra(extras.get("port"))
            else:
                log.info("FlagsBroadcastReceiver: unknown action %r", action)
                return
        self.start()

    def start(self) -> None:
        """Start the service's periodic thread (once); it idles while the service is disabled."""
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.stopped.clear()
                self.thread = threading.Thread(target=self._run, name="a11y-forwarder", daemon=True)
                self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(5)
        self._close_channel()

    def _run(self) -> None:
        last_version: int | None = None
        last_activity: tuple[str, str] | None = None
        while not self.stopped.is_set():
            phone = self._phone()
            if phone is None:
                break
            period = max(self.flags.period_ms, 10) / 1000
            try:
                if service_enabled(phone) and self.flags.port > 0:
                    version = phone._version
                    if version != last_version:
                        activity = phone.current_activity()
                        self._send_event(phone, activity, state_changed=activity != last_activity)
                        last_version, last_activity = version, activity
                    if self.flags.log_tree:
                        self._send_forest(phone)
            except Exception:  # the app logs and keeps running; so does the simulated one
                log.exception("a11y forwarder: sending failed")
            del phone
            self.stopped.wait(period)

    def _stub(self, phone: Phone) -> Any | None:
        """The A11yService stub of the configured endpoint, or None when the device cannot reach it."""
        import grpc
        from android_env.proto.a11y import a11y_pb2_grpc

        if phone.get_setting("global", "airplane_mode_on") == "1":
            return None
        if self.flags.host != EMULATOR_HOST_ALIAS:
            return None  # only the host (10.0.2.2) is reachable from the simulated phone
        address = f"127.0.0.1:{self.flags.port}"
        if self._channel is None or self._channel[0] != address:
            self._close_channel()
            self._channel = (address, grpc.insecure_channel(address))  # the app uses plaintext
        return a11y_pb2_grpc.A11yServiceStub(self._channel[1])

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel[1].close()
            self._channel = None

    def _send_forest(self, phone: Phone) -> None:
        stub = self._stub(phone)
        if stub is None:
            self.failures += 1
            return
        version = phone._version
        if self._forest is None or self._forest[0] != version:  # unchanged UI: the same tree again
            self._forest = (version, build_forest(phone))
        if self._call(stub.SendForest, self._forest[1]):
            self.sent_forests += 1

    def _send_event(self, phone: Phone, activity: tuple[str, str], state_changed: bool) -> None:
        from android_env.proto.a11y import a11y_pb2

        stub = self._stub(phone)
        if stub is None:
            self.failures += 1
            return
        kind = "TYPE_WINDOW_STATE_CHANGED" if state_changed else "TYPE_WINDOW_CONTENT_CHANGED"
        event = {"event_type": kind, "event_package_name": activity[0]}
        if state_changed:
            event["source_class_name"] = "android.widget.FrameLayout"
        event["event_timestamp_ms"] = str(phone.uptime_ms())
        if self._call(stub.SendEvent, a11y_pb2.EventRequest(event=event)):
            self.sent_events += 1

    def _call(self, method: Any, request: Any) -> bool:
        import grpc

        try:
            method(request, timeout=GRPC_TIMEOUT_S)
            return True
        except grpc.RpcError:
            # "gRPC StatusException; are you sure networking is turned on?": the app drops its stub.
            self.failures += 1
            self._close_channel()
            return False


def _int_extra(value: object) -> int:
    """Intent.getIntExtra(name, 0): an int extra, else the default."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return 0


_FORWARDERS: weakref.WeakKeyDictionary[Phone, Forwarder] = weakref.WeakKeyDictionary()
_FORWARDERS_LOCK = threading.Lock()


def forwarder(phone: Phone) -> Forwarder:
    """The phone's forwarder app (created on first use; it lives as long as the phone)."""
    with _FORWARDERS_LOCK:
        app = _FORWARDERS.get(phone)
        if app is None:
            app = _FORWARDERS[phone] = Forwarder(phone)
        return app


def receive_broadcast(phone: Phone, action: str | None, component: tuple[str, str] | None, extras: Any) -> bool:
    """Deliver an `am broadcast` to the FlagsBroadcastReceiver when it is aimed at it and the app is installed.

    Manifest receivers get no implicit broadcasts (API 26+): android_env names the receiver with `-n`.
    """
    if component is None or component[0] != FORWARDER_PACKAGE or not component[1].endswith("FlagsBroadcastReceiver"):
        return False
    if not installed(phone):
        return False
    forwarder(phone).receive(action or "", dict(extras or {}))
    return True


def wait_until(predicate: Any, timeout_s: float) -> bool:
    """Poll `predicate()` every 20 ms until it is true or the time is up (for tests and tools)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
