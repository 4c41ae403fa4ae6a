"""The floating text-selection toolbar a text field shows on long press: Cut, Copy, Paste, Select all.

Android's Editor opens it over the field when a long press selects text (here: all of it) or, in an empty
field, offers Paste when the clipboard holds text. Its buttons act on the phone-wide clipboard
(`services.clipboard`); any other input event closes it. Whether it shows lives in `PhoneState.services`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from droidrl.envs.sim import services
from droidrl.envs.sim.ui import Node

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

_SHOWN = "text_toolbar"


def show(phone: Phone) -> None:
    services._services(phone)[_SHOWN] = True


def hide(phone: Phone) -> None:
    services._services(phone).pop(_SHOWN, None)


def layout(phone: Phone, field: Node | None) -> Node | None:
    """The toolbar window above `field` (the focused text field), or None when it is closed or has no action."""
    if field is None or not services._services(phone).get(_SHOWN):
        return None
    activity = phone._focused_activity()
    if activity is None:
        return None
    key = phone.state.focus.field
    text = activity.fields.get(key, field.text)  # typed text, else what the screen prefilled
    clip = services.clipboard(phone)
    actions: list[tuple[str, object]] = []
    if text and phone.state.select_all:
        actions += [("Cut", lambda: _cut(phone, activity, key, text)), ("Copy", lambda: _copy(phone, text))]
    if clip:
        actions.append(("Paste", lambda: _paste(phone, activity, key, text, clip)))
    if text:
        actions.append(("Select all", lambda: _select_all(phone)))
    if not actions:
        return None
    m = phone.metrics
    height, pad = m.dp(48), m.dp(8)
    widths = [m.dp(32) + m.dp(10) * len(label) for label, _ in actions]
    left = min(max(0, field.bounds[0]), max(0, m.width - sum(widths)))
    top = field.bounds[1] - height - pad
    if top < m.status_bar:  # no room above the field: below it, as the Editor does
        top = field.bounds[3] + pad
    root = Node(cls="android.widget.LinearLayout", kind="text_toolbar", package=field.package, bg="#ffffff")
    root.bounds = (left, top, left + sum(widths), top + height)
    x = left
    for (label, handler), width in zip(actions, widths, strict=True):
        button = Node(
            cls="android.widget.Button",
            text=label,
            desc=label,
            kind="text_button",
            package=field.package,
            clickable=True,
            focusable=True,
            on_click=handler,
            bounds=(x, top, x + width, top + height),
        )
        root.children.append(button)
        x += width
    return root


def _copy(phone: Phone, text: str) -> None:
    services.set_clipboard(phone, text)
    phone.state.select_all = False


def _cut(phone: Phone, activity, key: str, text: str) -> None:
    services.set_clipboard(phone, text)
    activity.fields[key] = ""
    phone.state.select_all = False


def _paste(phone: Phone, activity, key: str, text: str, clip: str) -> None:
    activity.fields[key] = clip if phone.state.select_all else text + clip
    phone.state.select_all = False


def _select_all(phone: Phone) -> None:
    phone.state.select_all = True
    show(phone)
