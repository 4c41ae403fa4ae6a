"""The `Device` contract that `AdbDevice` and `SimDevice` implement identically, in screen pixels.

Coordinates are pixels with (0, 0) at the top left, the units `adb shell input` uses.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

import numpy as np

# Type text in IME commits of at most this many UTF-8 bytes. Its base64 (4000 characters) keeps one
# `am broadcast` command line under the 4 KiB service-name limit of older adbd versions; both devices
# split the same way, so a long text is the same sequence of input events on either.
TEXT_CHUNK_BYTES = 3000

_SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_KEY_NAME = re.compile(r"(KEYCODE_)?[A-Z][A-Z0-9_]*")


@runtime_checkable
class Device(Protocol):
    """One Android phone: observe it, act on it in pixels and key codes, read its files, roll it back."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the screen in pixels; screenshots are (height, width, 3)."""
        ...

    def screenshot(self) -> np.ndarray:
        """The screen as a uint8 array of shape (height, width, 3), RGB."""
        ...

    def ui_xml(self) -> str:
        """The UI hierarchy as `uiautomator dump` writes it (an XML string starting with `<?xml`)."""
        ...

    def tap(self, x: int, y: int) -> None:
        """Tap the pixel (x, y)."""
        ...

    def long_press(self, x: int, y: int, duration_ms: int = 1000) -> None:
        """Hold a finger on (x, y) for duration_ms (a swipe that does not move, as `input` does it)."""
        ...

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 300) -> None:
        """Drag a finger from (x1, y1) to (x2, y2) in duration_ms; a swipe up scrolls content down."""
        ...

    def type_text(self, text: str) -> None:
        """Commit `text` verbatim into the focused field, as a keyboard app would; nothing runs.

        Any string is safe: quotes, `;`, `$(...)`, newlines, emoji and CJK arrive as typed. With no
        focused field nothing happens. A newline is inserted as a character; use `key("ENTER")` to
        submit.
        """
        ...

    def clear_text(self) -> None:
        """Delete all text in the focused field (nothing happens when no field has focus)."""
        ...

    def key(self, key: int | str) -> None:
        """Press one key: an Android KeyEvent code (4) or name ("BACK" or "KEYCODE_BACK")."""
        ...

    def launch(self, package: str) -> None:
        """Start the app's launcher activity, or bring its task to the front if it runs already.

        Raises DeviceCommandError when the package has no launcher activity on this device.
        """
        ...

    def current_app(self) -> str:
        """The package of the app in the foreground (the launcher's package on the home screen)."""
        ...

    def pull(self, path: str) -> bytes:
        """The contents of a file on the device; raises FileNotFoundOnDevice if there is none."""
        ...

    def push(self, path: str, data: bytes) -> None:
        """Create or replace a file on the device (parent directories are created)."""
        ...

    def shell(self, cmd: str) -> str:
        """Run a shell command line on the device and return stdout then stderr.

        For setup and checkers only: never pass model-generated text here (use `type_text`).
        """
        ...

    def save_snapshot(self, name: str) -> None:
        """Save the whole device state (screen, apps, files, settings) under `name`, replacing it."""
        ...

    def load_snapshot(self, name: str) -> float:
        """Restore the state saved as `name` and wait until the device is ready; returns the seconds it took.

        Raises SnapshotError when there is no such snapshot or the device refuses to load it.
        """
        ...


def check_snapshot_name(name: str) -> None:
    """Refuse names a console line or a file name could misread (spaces, newlines, slashes, dots first)."""
    if not isinstance(name, str) or not _SNAPSHOT_NAME.fullmatch(name):
        raise ValueError(
            f"invalid snapshot name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def key_argument(key: int | str) -> str:
    """The `input keyevent` argument for a key code or name; raises ValueError for anything else."""
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise ValueError(f"key must be a KeyEvent code or name, got {key!r}")
    if isinstance(key, int):
        if not 0 <= key <= 999:
            raise ValueError(f"key code {key} is out of range (Android KeyEvent codes are 0-316)")
        return str(key)
    if key.isdigit():
        return key_argument(int(key))
    name = key.upper()
    if not _KEY_NAME.fullmatch(name):
        raise ValueError(f"invalid key name {key!r}: use a KeyEvent name such as 'BACK' or 'KEYCODE_ENTER'")
    return name if name.startswith("KEYCODE_") else f"KEYCODE_{name}"


def text_chunks(text: str, max_bytes: int = TEXT_CHUNK_BYTES) -> list[str]:
    """Split text at code-point boundaries into pieces of at most max_bytes UTF-8 bytes each.

    Lone surrogates (which UTF-8 cannot carry) become '?', as on the way to a real phone.
    """
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    chunks: list[str] = []
    start, size = 0, 0
    for i, char in enumerate(text):
        width = len(char.encode("utf-8"))
        if size + width > max_bytes and i > start:
            chunks.append(text[start:i])
            start, size = i, 0
        size += width
    if start < len(text):
        chunks.append(text[start:])
    return chunks
