"""System UI windows drawn over apps: status bar, 3-button navigation bar, toasts and system dialogs.

System dialogs (permission prompts, ads, rate-this-app) are plain data in `PhoneState.system_dialog`
({"title", "message", "buttons": [labels], "cancelable", "package"}) so that snapshots can hold them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from droidrl.envs.sim.ui import FRAME, IMAGE, IMAGE_BUTTON, TEXT, Dialog, Node, layout_dialog

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

SYSTEMUI = "com.android.systemui"


def status_bar(phone: Phone) -> Node:
    m = phone.metrics
    h = m.status_bar
    clock = phone.now().strftime("%H:%M" if phone.get_setting("system", "time_12_24") != "12" else "%-I:%M")
    icons = []
    if phone.get_setting("global", "airplane_mode_on") == "1":
        icons.append(("airplane", "Airplane mode on."))
    elif phone.get_setting("global", "wifi_on") == "1":
        icons.append(("wifi", "Wifi signal full."))
    if phone.get_setting("global", "bluetooth_on") == "1":
        icons.append(("bluetooth", "Bluetooth on."))
    icons.append(("battery", "Battery 100 percent."))
    root = Node(cls=FRAME, kind="status_bar", rid="com.android.systemui:id/status_bar", bounds=(0, 0, m.width, h))
    root.children.append(
        Node(
            cls=TEXT,
            text=clock,
            rid="com.android.systemui:id/clock",
            size=14,
            bounds=(m.dp(16), 0, m.dp(96), h),
        )
    )
    x = m.width - m.dp(16)
    for name, desc in reversed(icons):
        w = m.dp(44) if name == "battery" else m.dp(22)
        root.children.append(Node(cls=IMAGE, desc=desc, kind=f"sb_{name}", hint=name, size=12, bounds=(x - w, 0, x, h)))
        x -= w + m.dp(4)
    for node in root.walk():
        node.package = SYSTEMUI
    return root


def nav_bar(phone: Phone) -> Node:
    """Back, Home and Overview buttons with the SystemUI resource-ids of a 3-button navigation bar."""
    from droidrl.envs.sim.phone import KEYCODE_APP_SWITCH, KEYCODE_BACK, KEYCODE_HOME

    m = phone.metrics
    top = m.height - m.nav_bar
    root = Node(
        cls=FRAME,
        kind="nav_bar",
        rid="com.android.systemui:id/navigation_bar_frame",
        bounds=(0, top, m.width, m.height),
    )
    w = m.dp(72)
    specs = [
        ("back", "Back", KEYCODE_BACK, m.width // 4),
        ("home", "Home", KEYCODE_HOME, m.width // 2),
        ("recent_apps", "Overview", KEYCODE_APP_SWITCH, 3 * m.width // 4),
    ]
    for rid, desc, code, cx in specs:
        root.children.append(
            Node(
                cls=IMAGE_BUTTON,
                rid=f"com.android.systemui:id/{rid}",
                desc=desc,
                kind=f"nav_{rid}",
                clickable=True,
                long_clickable=True,
                on_click=lambda code=code: phone.press(code),
                bounds=(cx - w // 2, top, cx + w // 2, m.height),
            )
        )
    for node in root.walk():
        node.package = SYSTEMUI
    return root


def toast(phone: Phone, message: str) -> Node:
    m = phone.metrics
    width = min(m.width - m.dp(48), m.dp(24) + round(len(message) * m.dp(14) * 0.55))
    left = (m.width - width) // 2
    bottom = m.height - m.nav_bar - m.dp(64)
    node = Node(
        cls="android.widget.Toast",
        kind="toast",
        package=phone.state.foreground,
        bounds=(left, bottom - m.dp(44), left + width, bottom),
    )
    node.children.append(
        Node(
            cls=TEXT,
            text=message,
            rid="android:id/message",
            size=14,
            align="center",
            package=node.package,
            bounds=node.bounds,
        )
    )
    return node


def show_system_dialog(
    phone: Phone,
    title: str,
    message: str,
    buttons: list[str],
    *,
    cancelable: bool = True,
    package: str = "com.android.permissioncontroller",
) -> None:
    """Put a system dialog on screen (permission prompt, ad, rating request); any button dismisses it."""
    phone.state.system_dialog = {
        "title": title,
        "message": message,
        "buttons": list(buttons),
        "cancelable": cancelable,
        "package": package,
        "result": None,
    }
    phone.changed()


def dismiss_system_dialog(phone: Phone, result: str | None = None) -> None:
    phone.state.system_dialog = None
    phone.state.last_system_dialog_result = result
    phone.changed()


def system_dialog(phone: Phone) -> Node:
    spec = phone.state.system_dialog
    dialog = Dialog(
        title=spec["title"],
        message=spec["message"],
        buttons=[(label, lambda label=label: dismiss_system_dialog(phone, label)) for label in spec["buttons"]],
    )
    card = layout_dialog(dialog, phone.metrics, spec["package"])
    card.kind = "system_dialog"
    return card


# Interruptions a task can arm: the next time the app comes to the front, its dialog appears once.
# Armed through a global setting ("pkg:kind,pkg:kind") so that `adb shell settings put` arms them too.
INTERRUPTIONS_SETTING = "droidrl_interruptions"
INTERRUPTIONS = {
    "permission": {
        "title": "Allow {label} to send you notifications?",
        "message": "",
        "buttons": ["Allow", "Don\u2019t allow"],
        "package": "com.android.permissioncontroller",
        "dismiss": "Don\u2019t allow",
    },
    "ad": {
        "title": "Special offer",
        "message": "Upgrade {label} to Premium and remove ads. 50% off today only!",
        "buttons": ["No thanks", "Upgrade"],
        "package": "com.google.android.gms.ads",
        "dismiss": "No thanks",
    },
    "rate": {
        "title": "Enjoying {label}?",
        "message": "Tap a star to rate it on Google Play.",
        "buttons": ["Not now", "Rate"],
        "package": "com.android.vending",
        "dismiss": "Not now",
    },
}


def armed_interruptions(phone: Phone) -> dict[str, str]:
    value = phone.get_setting("global", INTERRUPTIONS_SETTING) or ""
    armed = {}
    for entry in value.split(","):
        package, _, kind = entry.strip().partition(":")
        if package and kind in INTERRUPTIONS:
            armed[package] = kind
    return armed


def maybe_interrupt(phone: Phone, package: str) -> None:
    """Show (once) the interruption armed for `package`, as apps do on a cold start."""
    armed = armed_interruptions(phone)
    kind = armed.pop(package, None)
    if kind is None:
        return
    if armed:
        phone.put_setting("global", INTERRUPTIONS_SETTING, ",".join(f"{p}:{k}" for p, k in armed.items()))
    else:
        phone.delete_setting("global", INTERRUPTIONS_SETTING)
    spec = INTERRUPTIONS[kind]
    label = phone.apps[package].label
    show_system_dialog(
        phone,
        spec["title"].format(label=label),
        spec["message"].format(label=label),
        spec["buttons"],
        cancelable=True,
        package=spec["package"],
    )
