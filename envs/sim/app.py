"""What a simulated app is (package, label, screens, initial data) and the context its screens get.

An app is data: a table of activity name -> screen function. A screen function reads device state
through `Ctx` and returns a `Screen` whose handlers change state through `Ctx`. Adding an app means
writing one module in envs/sim/apps/ and listing it in `default_apps`; the phone core never changes.
Its manifest's intent filters are a table too (`IntentFilter` rows), which `am start` resolves against.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from droidrl.envs.sim.state import Activity
from droidrl.envs.sim.ui import Screen

if TYPE_CHECKING:
    from droidrl.envs.sim.intents import Intent
    from droidrl.envs.sim.phone import Phone

ScreenFn = Callable[["Ctx"], Screen]
# What an app does with the intent that started one of its activities (its onCreate reading getIntent()):
# (activity name, intent) -> (activity to show, that screen's args). Trampolines such as a SplashActivity
# or Simple SMS's NewConversationActivity (which opens the thread for an sms: URI) return another activity.
IntentHandler = Callable[[str, "Intent"], tuple[str, dict[str, Any]]]

DEFAULT = "android.intent.category.DEFAULT"


@dataclass(frozen=True)
class IntentFilter:
    """One <intent-filter> of an activity, as in the app's AndroidManifest.xml.

    Empty `schemes`/`hosts`/`mime_types` mean the filter names none (Android's IntentFilter rules then
    apply: no types matches only intents without a type; no schemes matches content:, file: or no data).
    A mime type may end in `/*` ("text/*") or be "*/*".
    """

    activity: str
    actions: tuple[str, ...]
    categories: tuple[str, ...] = (DEFAULT,)
    schemes: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    mime_types: tuple[str, ...] = ()


@dataclass
class App:
    """A simulated app. The first entry of `activities` is the launcher activity."""

    package: str
    label: str
    activities: dict[str, ScreenFn]
    icon: str = ""  # glyph drawn on the launcher icon; defaults to the label's first letter
    color: str = "#1a73e8"  # launcher icon colour
    version_name: str = "1.0"
    install: Callable[[Phone], None] | None = None  # writes initial files/databases (boot and `pm clear`)
    launcher: bool = True  # shown in the launcher grid and app drawer
    permissions: list[str] = field(default_factory=list)
    # Implicit-intent resolution: the manifest's filters (MAIN/LAUNCHER of `main_activity` is implied for
    # launcher apps), other exported component names that show one of `activities` (activity-aliases,
    # trampolines), and how the app reads a starting intent (default: the screen's args are the extras).
    intent_filters: list[IntentFilter] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    on_intent: IntentHandler | None = None

    @property
    def main_activity(self) -> str:
        return next(iter(self.activities))

    @property
    def data_dir(self) -> str:
        return f"/data/data/{self.package}"

    def db_path(self, name: str) -> str:
        return f"{self.data_dir}/databases/{name}"


class Ctx:
    """What a screen function may see and do: its activity, the device state, navigation, toasts."""

    def __init__(self, phone: Phone, app: App, activity: Activity, depth: int) -> None:
        self.phone = phone
        self.app = app
        self.activity = activity
        self.depth = depth  # position in the app's back stack; 0 is the root activity

    # ---- this activity's state ----
    @property
    def args(self) -> dict[str, Any]:
        return self.activity.args

    @property
    def extra(self) -> dict[str, Any]:
        return self.activity.extra

    def field(self, key: str, default: str = "") -> str:
        return self.activity.fields.get(key, default)

    def set_field(self, key: str, value: str) -> None:
        self.activity.fields[key] = value

    def clear_focus(self) -> None:
        """Drop keyboard focus (e.g. when a dialog with a field closes)."""
        self.phone.state.focus = None

    def focused(self, key: str) -> bool:
        f = self.phone.state.focus
        return f is not None and f.package == self.app.package and f.depth == self.depth and f.field == key

    # ---- navigation ----
    def start(self, activity: str, **args: Any) -> None:
        """Open another screen of this app on top of the current one."""
        self.phone.start_activity(self.app.package, activity, args)

    def finish(self) -> None:
        """Close this screen (like BACK), returning to the one below it."""
        self.phone.finish_activity(self.app.package)

    def replace(self, activity: str, **args: Any) -> None:
        """Close this screen and open another in its place, also at the root of the task.

        An editor that an intent opened on its own then shows the saved contact, not the home screen.
        """
        stack = self.phone.state.tasks.get(self.app.package, [])
        if len(stack) == 1 and self.phone.state.foreground == self.app.package:
            stack[0] = Activity(activity, dict(args))
            self.phone.state.focus = None
            self.phone.changed()
            return
        self.phone.finish_activity(self.app.package)
        self.phone.start_activity(self.app.package, activity, args)

    def launch(self, package: str, activity: str | None = None, **args: Any) -> None:
        """Open another app (e.g. Contacts -> Messages to text a contact)."""
        self.phone.launch(package, activity, args)

    def toast(self, message: str) -> None:
        self.phone.state.toast = message

    def refresh(self) -> None:
        """Mark the screen as changed (handlers that only edit `extra` need not call it)."""
        self.phone.changed()

    # ---- device state ----
    @contextlib.contextmanager
    def db(self, name: str) -> Iterator[sqlite3.Connection]:
        """This app's sqlite database `name` under /data/data/<pkg>/databases/."""
        with self.phone.fs.sqlite(self.app.db_path(name)) as conn:
            yield conn

    def query(self, name: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self.db(name) as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, name: str, sql: str, params: tuple = ()) -> int:
        """Run one statement; returns the last row id."""
        with self.db(name) as conn:
            cur = conn.execute(sql, params)
            return cur.lastrowid or 0

    def setting(self, namespace: str, key: str, default: str = "") -> str:
        value = self.phone.get_setting(namespace, key)
        return default if value is None else value

    def put_setting(self, namespace: str, key: str, value: str) -> None:
        self.phone.put_setting(namespace, key, value)

    def now(self) -> dt.datetime:
        return self.phone.now()
