"""The soft keyboard (a Gboard-like IME window) and the key codes that type characters."""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

from droidrl.envs.sim.ui import FRAME, Node

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

IME_PACKAGE = "com.google.android.inputmethod.latin"

# Android KeyEvent codes that produce a character: 7-16 digits, 29-54 letters, and punctuation.
KEYCODE_CHARS: dict[int, str] = {7 + i: str(i) for i in range(10)}
KEYCODE_CHARS.update({29 + i: c for i, c in enumerate(string.ascii_lowercase)})
KEYCODE_CHARS.update(
    {
        55: ",",
        56: ".",
        62: " ",
        68: "`",
        69: "-",
        70: "=",
        71: "[",
        72: "]",
        73: "\\",
        74: ";",
        75: "'",
        76: "/",
        77: "@",
        81: "+",
        17: "*",
        18: "#",
    }
)

ROWS = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"]


def layout(phone: Phone) -> Node:
    """The keyboard window docked above the navigation bar; each key is a clickable node."""
    m = phone.metrics
    top = m.height - m.nav_bar - m.keyboard
    bottom = m.height - m.nav_bar
    root = Node(
        cls=FRAME,
        kind="keyboard",
        package=IME_PACKAGE,
        rid=f"{IME_PACKAGE}:id/keyboard_holder",
        bounds=(0, top, m.width, bottom),
    )
    row_h = (bottom - top - m.dp(8)) // 5
    key_w = m.width // 10
    y = top + m.dp(4)
    for row in ROWS:
        x = (m.width - key_w * len(row)) // 2
        if row == "zxcvbnm":
            x = key_w * 3 // 2
        for ch in row:
            root.children.append(_key(ch, ch, (x, y, x + key_w, y + row_h), lambda ch=ch: phone._type(ch)))
            x += key_w
        if row == "zxcvbnm":
            root.children.append(_key("⌫", "Delete", (x, y, m.width, y + row_h), phone._delete, action=True))
        y += row_h
    space_left, space_right = key_w * 2, m.width - key_w * 2
    root.children.append(_key(",", ",", (key_w, y, space_left, y + row_h), lambda: phone._type(",")))
    root.children.append(
        _key(" ", "Space", (space_left, y, space_right, y + row_h), lambda: phone._type(" "), action=True)
    )
    root.children.append(_key(".", ".", (space_right, y, space_right + key_w, y + row_h), lambda: phone._type(".")))
    root.children.append(
        _key("⏎", "Enter", (space_right + key_w, y, m.width, y + row_h), lambda: phone.press(66), action=True)
    )
    for node in root.walk():
        node.package = IME_PACKAGE
    return root


def _key(label: str, desc: str, bounds: tuple[int, int, int, int], handler, action: bool = False) -> Node:
    return Node(
        cls="android.widget.Button",
        text=label,
        desc=desc,
        kind="key_action" if action else "key",
        clickable=True,
        on_click=handler,
        bounds=bounds,
        size=22,
    )
