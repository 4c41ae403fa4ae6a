"""The complete state of one simulated phone: what a snapshot saves and restores.

Nothing here holds callables: screens and their click handlers are rebuilt from this state on every
observation, so a snapshot is just this data (written by `snapshot.py` as JSON plus the files' bytes;
values are plain data: str, int, float, bool, None, lists, tuples, dicts, sets, bytes, these dataclasses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Activity:
    """One entry of an app's back stack: which screen it shows and that screen's own state.

    `args` are the intent extras the screen was started with (e.g. the contact id to show);
    `fields` hold the text of its editable fields; `scroll` is the content scroll offset in px;
    `extra` is free-form screen state (an open dialog, a selected tab, a picker value).
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    scroll: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Focus:
    """The focused editable field: the activity it belongs to (by identity of stack position) and its key."""

    package: str
    depth: int
    field: str


@dataclass
class PhoneState:
    """Everything that changes while a phone is used. Files (with the apps' sqlite databases) live in `fs`."""

    fs: tuple[dict[str, bytes], dict[str, tuple[int, int]]]
    settings: dict[str, dict[str, str]]
    clock_ms: int
    tasks: dict[str, list[Activity]] = field(default_factory=dict)  # package -> back stack
    recents: list[str] = field(default_factory=list)  # most recent last
    foreground: str = ""  # package on screen ("" = launcher)
    overview: bool = False  # the recent-apps screen (APP_SWITCH) is showing
    focus: Focus | None = None
    toast: str | None = None
    system_dialog: dict[str, Any] | None = None  # a permission prompt, an ad, a rate-this-app dialog
    last_system_dialog_result: str | None = None  # the button that dismissed the last system dialog
    input_events: int = 0  # counts every input event; some screens use it as a deterministic tick
    stopped: list[str] = field(default_factory=list)  # force-stopped packages, until they are launched again
    select_all: bool = False  # CTRL+A was pressed in the focused field; the next DEL clears it
    services: dict[str, Any] = field(default_factory=dict)  # clipboard and modem calls (services.py)
