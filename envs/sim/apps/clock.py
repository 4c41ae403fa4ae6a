"""Google Clock (com.google.android.deskclock): alarms, world clock, timers and a stopwatch.

All state lives in databases/alarms.db, so a checker can pull it over adb; a running timer or stopwatch
stores the instant it started, so its read-out follows the phone's frozen clock (`Phone.advance_clock`).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from droidrl.envs.sim.app import DEFAULT, App, Ctx, IntentFilter
from droidrl.envs.sim.ui import (
    BUTTON,
    FRAME,
    IMAGE_BUTTON,
    RADIO,
    TEXT,
    Dialog,
    Handler,
    Node,
    Screen,
    big_text,
    button,
    buttons,
    checkbox,
    chips,
    edit,
    grid,
    icon_button,
    item,
    spacer,
    switch,
    text,
)

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

PACKAGE = "com.google.android.deskclock"
DB = "alarms.db"
# The activity classes live in the AOSP package, not the app id: adb shows
# com.google.android.deskclock/com.android.deskclock.DeskClock, and android_world starts it by that name.
MAIN = "com.android.deskclock.DeskClock"
CITIES = "com.android.deskclock.worldclock.CitySelectionActivity"

TABS = [("alarm", "Alarm"), ("clock", "Clock"), ("timer", "Timer"), ("stopwatch", "Stopwatch")]

# Repeat days in chip order, with deskclock's DaysOfWeek bit (Monday = 1 ... Sunday = 64).
DAYS = [
    ("M", "Monday", "Mon"),
    ("T", "Tuesday", "Tue"),
    ("W", "Wednesday", "Wed"),
    ("T", "Thursday", "Thu"),
    ("F", "Friday", "Fri"),
    ("S", "Saturday", "Sat"),
    ("S", "Sunday", "Sun"),
]
EVERY_DAY = 0x7F

DEFAULT_RINGTONE = "content://settings/system/alarm_alert"
# (title shown, value stored in alarm_templates.ringtone); "silent" is deskclock's ALARM_ALERT_SILENT.
RINGTONES = [
    ("Silent", "silent"),
    ("Default (Cesium)", DEFAULT_RINGTONE),
    ("Argon", "content://media/internal/audio/media/21"),
    ("Carbon", "content://media/internal/audio/media/23"),
    ("Helium", "content://media/internal/audio/media/27"),
    ("Oxygen", "content://media/internal/audio/media/33"),
]

# World clock cities: (id, name, UTC offset in minutes). Offsets are those in effect on the frozen
# date (mid-October 2023, northern summer time); there is no tz database on every host to ask.
CITY_LIST = [
    ("C_AMSTERDAM", "Amsterdam", 120),
    ("C_BANGALORE", "Bangalore", 330),
    ("C_BEIJING", "Beijing", 480),
    ("C_BERLIN", "Berlin", 120),
    ("C_CHICAGO", "Chicago", -300),
    ("C_DUBAI", "Dubai", 240),
    ("C_LONDON", "London", 60),
    ("C_LOS_ANGELES", "Los Angeles", -420),
    ("C_MEXICO_CITY", "Mexico City", -360),
    ("C_MOSCOW", "Moscow", 180),
    ("C_NEW_YORK", "New York", -240),
    ("C_PARIS", "Paris", 120),
    ("C_SAO_PAULO", "São Paulo", -180),
    ("C_SINGAPORE", "Singapore", 480),
    ("C_SYDNEY", "Sydney", 660),
    ("C_TOKYO", "Tokyo", 540),
    ("C_ZURICH", "Zurich", 120),
]

SCHEMA = """
CREATE TABLE alarm_templates (
    _id INTEGER PRIMARY KEY,
    hour INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    daysofweek INTEGER NOT NULL,
    vibrate INTEGER NOT NULL,
    label TEXT NOT NULL,
    ringtone TEXT,
    delete_after_use INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE timers (
    _id INTEGER PRIMARY KEY,
    length_ms INTEGER NOT NULL,
    remaining_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    start_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE stopwatch (
    _id INTEGER PRIMARY KEY CHECK (_id = 1),
    state TEXT NOT NULL,
    accumulated_ms INTEGER NOT NULL,
    start_ms INTEGER NOT NULL
);
CREATE TABLE laps (
    _id INTEGER PRIMARY KEY,
    lap_number INTEGER NOT NULL,
    lap_time_ms INTEGER NOT NULL,
    total_ms INTEGER NOT NULL
);
CREATE TABLE cities (
    _id INTEGER PRIMARY KEY,
    city_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    utc_offset_min INTEGER NOT NULL
);
"""

# A fresh install's alarms, as (hour, minutes, enabled, daysofweek, vibrate, label).
SEED_ALARMS = [(7, 0, 1, 0b0011111, 1, ""), (8, 30, 0, 0, 1, "")]


def install(phone: Phone) -> None:
    """Create alarms.db with the schema, the two stock alarms and a reset stopwatch."""
    with phone.fs.sqlite(f"/data/data/{PACKAGE}/databases/{DB}") as conn:
        conn.executescript(SCHEMA)
        conn.executemany(
            "INSERT INTO alarm_templates (hour, minutes, enabled, daysofweek, vibrate, label, ringtone)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*alarm, DEFAULT_RINGTONE) for alarm in SEED_ALARMS],
        )
        conn.execute("INSERT INTO stopwatch VALUES (1, 'reset', 0, 0)")


# ---- formatting ------------------------------------------------------------------------------------------


def format_time(hour: int, minutes: int, h24: bool) -> str:
    """An alarm or clock time as deskclock shows it: "07:00" (24-hour) or "7:00 AM"."""
    if h24:
        return f"{hour:02d}:{minutes:02d}"
    return f"{(hour % 12) or 12}:{minutes:02d} {'AM' if hour < 12 else 'PM'}"


def repeat_summary(days: int, enabled: bool, hour: int, minutes: int, now_minutes: int) -> str:
    """The line under an alarm's time: its repeat days, or when a one-time alarm rings next."""
    if days & EVERY_DAY == EVERY_DAY:
        return "Every day"
    if days:
        return ", ".join(short for i, (_, _, short) in enumerate(DAYS) if days & (1 << i))
    if not enabled:
        return "Not scheduled"
    return "Today" if hour * 60 + minutes > now_minutes else "Tomorrow"


def minutes_until(hour: int, minutes: int, days: int, weekday: int, now_minutes: int) -> int:
    """Minutes from now (`weekday` Monday = 0, `now_minutes` since midnight) to the alarm's next ring."""
    target = hour * 60 + minutes
    for ahead in range(8):
        if ahead == 0 and target <= now_minutes:
            continue
        if not days or days & (1 << ((weekday + ahead) % 7)):
            return ahead * 1440 + target - now_minutes
    return 7 * 1440  # unreachable: some day within a week always matches


def alarm_set_toast(total_minutes: int) -> str:
    """deskclock's "Alarm set for ... from now." toast."""
    days, rest = divmod(total_minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in ((days, "day"), (hours, "hour"), (mins, "minute")) if n
    ]
    if not parts:
        return "Alarm set for less than 1 minute from now."
    if len(parts) == 3:
        return f"Alarm set for {parts[0]}, {parts[1]}, and {parts[2]} from now."
    return f"Alarm set for {' and '.join(parts)} from now."


def format_timer(ms: int) -> str:
    """A timer read-out: "1:30", "1:00:00"; an expired timer counts up as "-0:05"."""
    if ms > 0:
        sign, secs = "", math.ceil(ms / 1000)  # deskclock rounds the remaining time up
    else:
        secs = -ms // 1000
        sign = "-" if secs else ""
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def format_stopwatch(ms: int) -> tuple[str, str]:
    """The stopwatch read-out split as the app draws it: ("01:05", "00") = minutes:seconds, hundredths."""
    secs, rest = divmod(ms, 1000)
    h, secs = divmod(secs, 3600)
    m, s = divmod(secs, 60)
    main = f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
    return main, f"{rest // 10:02d}"


def timer_digits(digits: str) -> tuple[int, int, int]:
    """Keypad digits (typed left to right, filling from the right) as (hours, minutes, seconds)."""
    padded = digits.rjust(6, "0")
    return int(padded[:2]), int(padded[2:4]), int(padded[4:])


# ---- shared helpers --------------------------------------------------------------------------------------


def _now_ms(ctx: Ctx) -> int:
    return round(ctx.now().timestamp() * 1000)


def _h24(ctx: Ctx) -> bool:
    return ctx.setting("system", "time_12_24", "24") != "12"


def _hide_keyboard(ctx: Ctx) -> None:
    # Closing a dialog drops the focus of its edit field, so the IME does not stay up over the list.
    ctx.clear_focus()


def _close_dialog(ctx: Ctx) -> None:
    ctx.extra["dialog"] = None
    _hide_keyboard(ctx)


def _tab_bar(ctx: Ctx, current: str) -> list[Node]:
    def select(key: str) -> None:
        ctx.extra["tab"] = key
        ctx.extra["dialog"] = None
        ctx.activity.scroll = 0

    return [
        Node(
            cls=FRAME,
            text=label,
            desc=label,
            rid=f"tab_menu_{key}",
            selected=key == current,
            clickable=True,
            focusable=True,
            on_click=lambda key=key: select(key),
        )
        for key, label in TABS
    ]


def main_screen(ctx: Ctx) -> Screen:
    """DeskClock: the four tabs; the selected one is kept in the activity's extra."""
    builders = {"alarm": _alarm_tab, "clock": _clock_tab, "timer": _timer_tab, "stopwatch": _stopwatch_tab}
    tab = ctx.extra.get("tab") or ctx.args.get("tab", "alarm")
    if tab not in builders:
        tab = "alarm"
    build = builders[tab]
    screen = build(ctx)
    screen.title = dict(TABS)[tab]
    screen.tabs = _tab_bar(ctx, tab)
    return screen


# ---- Alarm tab -------------------------------------------------------------------------------------------


def _alarm_tab(ctx: Ctx) -> Screen:
    now = ctx.now()
    now_minutes = now.hour * 60 + now.minute
    h24 = _h24(ctx)
    alarms = ctx.query(
        DB,
        "SELECT _id, hour, minutes, enabled, daysofweek, vibrate, label, ringtone FROM alarm_templates"
        " ORDER BY hour, minutes, _id",
    )
    expanded = ctx.extra.get("expanded")
    rows: list[Node] = []
    for alarm_id, hour, minutes, enabled, days, vibrate, label, ringtone in alarms:
        summary = repeat_summary(days, bool(enabled), hour, minutes, now_minutes)
        onoff = switch(bool(enabled), rid="onoff")
        onoff.clickable = onoff.focusable = True
        onoff.on_click = lambda a=alarm_id: _toggle_alarm(ctx, a)
        is_open = alarm_id == expanded
        row = item(
            format_time(hour, minutes, h24),
            summary,
            on_click=lambda a=alarm_id, o=is_open: _expand(ctx, None if o else a),
            trailing=onoff,
            rid="alarm_item",
            title_rid="digital_clock",
            subtitle_rid="days_of_week",
        )
        row.desc = f"{format_time(hour, minutes, h24)} {label or 'Alarm'}"
        time_node = row.children[0]
        time_node.size = 34
        if label:
            # The label sits above the time, as on the real alarm card.
            row.children.insert(0, Node(cls=TEXT, text=label, rid="label", kind="subtitle", size=14))
        row.height = 96 if label else 80
        rows.append(row)
        if is_open:
            # Only an expanded card's time opens the picker, so a tap anywhere on a closed card expands it.
            time_node.clickable = time_node.focusable = True
            time_node.on_click = lambda a=alarm_id, h=hour, m=minutes: _open_time_picker(ctx, a, h, m)
            rows += _alarm_details(ctx, alarm_id, days, vibrate, label, ringtone)
    if not alarms:
        rows.append(text("No alarms", align="center", rid="alarms_empty_view"))
    rows.append(spacer(88))  # room to scroll the last card out from under the FAB
    fab = icon_button("Add alarm", lambda: _open_time_picker(ctx, None, now.hour, now.minute), rid="fab", glyph="+")
    dialog, on_enter = _alarm_dialog(ctx, alarms)
    return Screen(rows=rows, fab=fab, dialog=dialog, on_enter=on_enter, rid_prefix=PACKAGE)


def _alarm_details(ctx: Ctx, alarm_id: int, days: int, vibrate: int, label: str, ringtone: str) -> list[Node]:
    """The rows an expanded alarm card adds under its time: days, label, sound, vibrate, delete."""
    day_chips = chips(
        [
            (letter, bool(days & (1 << i)), lambda i=i: _toggle_day(ctx, alarm_id, i))
            for i, (letter, _, _) in enumerate(DAYS)
        ]
    )
    for i, chip in enumerate(day_chips.children):
        chip.rid = f"day_button_{i}"
        chip.desc = DAYS[i][1]
    sound = next((title for title, uri in RINGTONES if uri == ringtone), "Default (Cesium)")
    vib = checkbox(bool(vibrate), rid="vibrate_onoff")
    vib_row = item(
        "Vibrate", on_click=lambda: _toggle_vibrate(ctx, alarm_id), trailing=vib, rid="vibrate", title_rid=""
    )
    vib_row.checkable, vib_row.checked = True, bool(vibrate)
    return [
        day_chips,
        item(
            label or "Add label",
            on_click=lambda: _open_label(ctx, "alarm", alarm_id, label),
            rid="edit_label",
            title_rid="",
        ),
        item(sound, on_click=lambda: _open_ringtone(ctx, alarm_id), rid="choose_ringtone", title_rid=""),
        vib_row,
        button("Delete", lambda: _delete_alarm(ctx, alarm_id), rid="delete", primary=False),
    ]


def _alarm_dialog(ctx: Ctx, alarms: list[tuple]) -> tuple[Dialog | None, Handler | None]:
    """The open dialog of the Alarm tab, and what ENTER in its field does (the IME "done" = OK)."""
    kind = ctx.extra.get("dialog")
    if kind == "time":
        return _time_picker(ctx)
    if kind == "label":
        return _label_dialog(ctx)
    if kind == "ringtone":
        alarm_id = ctx.extra.get("target", (None, None))[1]
        current = next((a[7] for a in alarms if a[0] == alarm_id), DEFAULT_RINGTONE)
        rows = [
            item(
                title,
                on_click=lambda uri=uri: _set_ringtone(ctx, alarm_id, uri),
                trailing=Node(cls=RADIO, kind="radio", checkable=True, checked=uri == current, rid="radio"),
                title_rid="android:id/text1",
            )
            for title, uri in RINGTONES
        ]
        sounds = Dialog(
            title="Alarm sound",
            rows=rows,
            buttons=[("Cancel", lambda: _close_dialog(ctx))],
            on_cancel=lambda: _close_dialog(ctx),
        )
        return sounds, None
    return None, None


def _time_picker(ctx: Ctx) -> tuple[Dialog, Handler]:
    """The Material time picker in keyboard-entry mode: Hour and Minute fields (24-hour), OK/Cancel.

    An empty field shows the picker's starting value and keeps it on OK, which is what the real
    picker's select-all-on-focus gives: typing replaces the value, leaving it alone keeps it.
    """
    hour0, minute0 = ctx.extra["picker"]
    hour = edit("hour", ctx.field("hour"), f"{hour0:02d}", "material_hour_text_input", focused=ctx.focused("hour"))
    minute = edit(
        "minute",
        ctx.field("minute"),
        f"{minute0:02d}",
        "material_minute_text_input",
        focused=ctx.focused("minute"),
    )
    hour.children[0].desc, minute.children[0].desc = "Hour", "Minute"
    rows = [hour, minute]
    if ctx.extra.get("time_error"):
        rows.append(text("Enter a valid time", size=14, color="#b3261e", rid="textinput_error"))

    def ok() -> None:
        h_txt = ctx.field("hour") or f"{hour0:02d}"
        m_txt = ctx.field("minute") or f"{minute0:02d}"
        valid = re.fullmatch(r"[0-9]{1,2}", h_txt) and re.fullmatch(r"[0-9]{1,2}", m_txt)
        if not valid or int(h_txt) > 23 or int(m_txt) > 59:
            ctx.extra["time_error"] = True  # the dialog stays open, as it refuses bad input
            return
        _close_dialog(ctx)
        _set_alarm_time(ctx, ctx.extra.get("target", (None, None))[1], int(h_txt), int(m_txt))

    rows.append(
        buttons(
            ("Cancel", lambda: _close_dialog(ctx), "material_timepicker_cancel_button"),
            ("OK", ok, "material_timepicker_ok_button"),
        )
    )
    return Dialog(title="Enter time", rows=rows, on_cancel=lambda: _close_dialog(ctx)), ok


def _label_dialog(ctx: Ctx) -> tuple[Dialog, Handler]:
    kind, target_id = ctx.extra["target"]
    field = edit("label", ctx.field("label"), "Label", "label_input_field", focused=ctx.focused("label"))

    def ok() -> None:
        _close_dialog(ctx)
        table = "alarm_templates" if kind == "alarm" else "timers"
        ctx.execute(DB, f"UPDATE {table} SET label = ? WHERE _id = ?", (ctx.field("label").strip(), target_id))

    dialog = Dialog(
        title="Label",
        rows=[field],
        buttons=[("OK", ok), ("Cancel", lambda: _close_dialog(ctx))],
        on_cancel=lambda: _close_dialog(ctx),
    )
    return dialog, ok


def _expand(ctx: Ctx, alarm_id: int | None) -> None:
    ctx.extra["expanded"] = alarm_id


def _open_time_picker(ctx: Ctx, alarm_id: int | None, hour: int, minute: int) -> None:
    ctx.extra.update(dialog="time", target=("alarm", alarm_id), picker=(hour, minute), time_error=False)
    ctx.set_field("hour", "")
    ctx.set_field("minute", "")


def _open_label(ctx: Ctx, kind: str, target_id: int, label: str) -> None:
    ctx.extra.update(dialog="label", target=(kind, target_id))
    ctx.set_field("label", label)


def _open_ringtone(ctx: Ctx, alarm_id: int) -> None:
    ctx.extra.update(dialog="ringtone", target=("alarm", alarm_id))


def _announce(ctx: Ctx, alarm_id: int) -> None:
    """Toast how long until an enabled alarm rings, as the app does whenever one is switched on or set."""
    rows = ctx.query(DB, "SELECT hour, minutes, daysofweek FROM alarm_templates WHERE _id = ?", (alarm_id,))
    if rows:
        now = ctx.now()
        hour, minutes, days = rows[0]
        ctx.toast(alarm_set_toast(minutes_until(hour, minutes, days, now.weekday(), now.hour * 60 + now.minute)))


def _set_alarm_time(ctx: Ctx, alarm_id: int | None, hour: int, minutes: int) -> None:
    """Picker OK: a new alarm is inserted enabled and expanded; an existing one is retimed and enabled."""
    if alarm_id is None:
        alarm_id = ctx.execute(
            DB,
            "INSERT INTO alarm_templates (hour, minutes, enabled, daysofweek, vibrate, label, ringtone)"
            " VALUES (?, ?, 1, 0, 1, '', ?)",
            (hour, minutes, DEFAULT_RINGTONE),
        )
        ctx.extra["expanded"] = alarm_id
    else:
        ctx.execute(
            DB,
            "UPDATE alarm_templates SET hour = ?, minutes = ?, enabled = 1 WHERE _id = ?",
            (hour, minutes, alarm_id),
        )
    _announce(ctx, alarm_id)


def _toggle_alarm(ctx: Ctx, alarm_id: int) -> None:
    ctx.execute(DB, "UPDATE alarm_templates SET enabled = 1 - enabled WHERE _id = ?", (alarm_id,))
    if ctx.query(DB, "SELECT enabled FROM alarm_templates WHERE _id = ?", (alarm_id,)) == [(1,)]:
        _announce(ctx, alarm_id)


def _toggle_day(ctx: Ctx, alarm_id: int, day: int) -> None:
    bit = 1 << day
    # sqlite has no XOR operator: (a | b) - (a & b) flips the bit.
    ctx.execute(
        DB,
        "UPDATE alarm_templates SET daysofweek = (daysofweek | ?) - (daysofweek & ?) WHERE _id = ?",
        (bit, bit, alarm_id),
    )


def _toggle_vibrate(ctx: Ctx, alarm_id: int) -> None:
    ctx.execute(DB, "UPDATE alarm_templates SET vibrate = 1 - vibrate WHERE _id = ?", (alarm_id,))


def _set_ringtone(ctx: Ctx, alarm_id: int, uri: str) -> None:
    _close_dialog(ctx)
    ctx.execute(DB, "UPDATE alarm_templates SET ringtone = ? WHERE _id = ?", (uri, alarm_id))


def _delete_alarm(ctx: Ctx, alarm_id: int) -> None:
    ctx.execute(DB, "DELETE FROM alarm_templates WHERE _id = ?", (alarm_id,))
    ctx.extra["expanded"] = None
    ctx.toast("Alarm deleted")


# ---- Clock tab -------------------------------------------------------------------------------------------


def _city_line(offset_min: int, now_minutes: int) -> str:
    """A world-clock city's day and offset line, e.g. "Tomorrow, 9 hours ahead"; `offset_min` is from UTC."""
    local = now_minutes + offset_min
    day = "Yesterday" if local < 0 else "Tomorrow" if local >= 1440 else "Today"
    hours = abs(offset_min) / 60
    amount = f"{hours:g} hour{'' if hours == 1 else 's'}"
    if offset_min == 0:
        return f"{day}, same time"
    return f"{day}, {amount} {'ahead' if offset_min > 0 else 'behind'}"


def _clock_tab(ctx: Ctx) -> Screen:
    now = ctx.now()
    h24 = _h24(ctx)
    now_minutes = now.hour * 60 + now.minute
    rows = [
        spacer(24),
        big_text(format_time(now.hour, now.minute, h24), rid="digital_clock", size=64),
        text(now.strftime("%a, %b ") + str(now.day), align="center", rid="date", size=18),
        spacer(16),
    ]
    for name, offset in ctx.query(DB, "SELECT name, utc_offset_min FROM cities ORDER BY name"):
        local = (now_minutes + offset) % 1440
        clock = Node(cls=TEXT, text=format_time(local // 60, local % 60, h24), rid="digital_clock", size=22)
        rows.append(
            item(
                name,
                _city_line(offset, now_minutes),
                trailing=clock,
                rid="city_item",
                title_rid="city_name",
                subtitle_rid="city_day",
            )
        )
    fab = icon_button("Cities", lambda: ctx.start(CITIES), rid="fab", glyph="◍")
    return Screen(rows=rows, fab=fab, rid_prefix=PACKAGE)


def cities_screen(ctx: Ctx) -> Screen:
    """CitySelectionActivity: a searchable list of cities; the checked ones appear on the Clock tab."""
    query = ctx.field("search").strip().lower()
    chosen = {row[0] for row in ctx.query(DB, "SELECT city_id FROM cities")}
    rows = [edit("search", ctx.field("search"), "Search", "search_src_text", focused=ctx.focused("search"))]
    for city_id, name, offset in CITY_LIST:
        if query and query not in name.lower():
            continue
        box = checkbox(city_id in chosen, rid="city_onoff")
        rows.append(
            item(
                name,
                trailing=box,
                on_click=lambda c=(city_id, name, offset): _toggle_city(ctx, *c),
                rid="city_item",
                title_rid="city_name",
            )
        )
    return Screen(title="Cities", rows=rows, up=ctx.finish, rid_prefix=PACKAGE)


def _toggle_city(ctx: Ctx, city_id: str, name: str, offset: int) -> None:
    if ctx.query(DB, "SELECT 1 FROM cities WHERE city_id = ?", (city_id,)):
        ctx.execute(DB, "DELETE FROM cities WHERE city_id = ?", (city_id,))
    else:
        ctx.execute(DB, "INSERT INTO cities (city_id, name, utc_offset_min) VALUES (?, ?, ?)", (city_id, name, offset))


# ---- Timer tab -------------------------------------------------------------------------------------------


def _remaining_ms(state: str, remaining_ms: int, start_ms: int, now_ms: int) -> int:
    """A running timer's `remaining_ms` is what was left at `start_ms`; it has been counting down since."""
    return remaining_ms - (now_ms - start_ms) if state == "running" else remaining_ms


def _timer_tab(ctx: Ctx) -> Screen:
    timers = ctx.query(DB, "SELECT _id, length_ms, remaining_ms, state, label, start_ms FROM timers ORDER BY _id")
    if not timers or ctx.extra.get("timer_setup"):
        return _timer_setup(ctx, has_timers=bool(timers))
    now_ms = _now_ms(ctx)
    rows: list[Node] = []
    for timer_id, _, remaining_ms, state, label, start_ms in timers:
        left = _remaining_ms(state, remaining_ms, start_ms, now_ms)
        expired = state == "running" and left <= 0
        rows.append(
            item(
                label or "Label",
                "Time's up" if expired else "",
                rid="timer_label",
                title_rid="timer_label_text",
                on_click=lambda t=timer_id, lab=label: _open_label(ctx, "timer", t, lab),
            )
        )
        rows.append(big_text(format_timer(left), rid="timer_time_text", size=56))
        actions = [
            (
                "+1:00" if state == "running" else "Reset",
                lambda t=timer_id, s=state: _timer_reset_add(ctx, t, s),
                "reset_add",
            ),
            ("Delete", lambda t=timer_id: _delete_timer(ctx, t), "delete_timer"),
        ]
        if len(timers) > 1:
            actions.append(
                (
                    "Pause" if state == "running" else "Start",
                    lambda t=timer_id: _timer_play_pause(ctx, t),
                    "play_pause",
                )
            )
        rows.append(buttons(*actions))
        rows.append(spacer(16))
    first_id, _, first_left, first_state, _, first_start = timers[0]
    if first_state == "running":
        first_expired = _remaining_ms(first_state, first_left, first_start, now_ms) <= 0
        fab_desc = "Stop" if first_expired else "Pause"
    else:
        fab_desc = "Start"
    fab = icon_button(
        fab_desc,
        lambda: _timer_play_pause(ctx, first_id),
        rid="fab",
        glyph="▶" if fab_desc == "Start" else "❚❚",
    )
    add = icon_button("Add timer", lambda: _start_setup(ctx), rid="add_timer", glyph="+")
    dialog, on_enter = _label_dialog(ctx) if ctx.extra.get("dialog") == "label" else (None, None)
    return Screen(rows=rows, fab=fab, actions=[add], dialog=dialog, on_enter=on_enter, rid_prefix=PACKAGE)


def _timer_setup(ctx: Ctx, has_timers: bool) -> Screen:
    """The keypad: digits fill hh mm ss from the right, as on the real app."""
    digits = ctx.extra.get("timer_digits", "")
    h, m, s = timer_digits(digits)
    display = big_text(f"{h:02d}h {m:02d}m {s:02d}s", rid="timer_setup_time", size=44)
    display.children[0].desc = f"{h} hours, {m} minutes, {s} seconds"
    cells = [
        Node(
            cls=BUTTON,
            text=d,
            rid=f"timer_setup_digit_{d}",
            kind="keypad",
            clickable=True,
            focusable=True,
            on_click=lambda d=d: _press_digit(ctx, d),
            size=28,
            align="center",
        )
        for d in "123456789"
    ]
    cells.append(Node(cls=FRAME, kind="keypad_blank"))
    cells.append(
        Node(
            cls=BUTTON,
            text="0",
            rid="timer_setup_digit_0",
            kind="keypad",
            clickable=True,
            focusable=True,
            on_click=lambda: _press_digit(ctx, "0"),
            size=28,
            align="center",
        )
    )
    delete = Node(
        cls=IMAGE_BUTTON,
        desc="Delete",
        rid="timer_setup_delete",
        kind="keypad",
        hint="⌫",
        size=28,
        align="center",
        enabled=bool(digits),
        clickable=bool(digits),
        focusable=True,
        on_click=(lambda: _press_delete(ctx)) if digits else None,
    )
    cells.append(delete)
    rows = [spacer(16), display, spacer(8), grid(cells, columns=3, cell_height=104)]
    if has_timers:
        rows.append(button("Cancel", lambda: _cancel_setup(ctx), rid="timer_cancel", primary=False))
    fab = None
    if digits:
        fab = icon_button("Start", lambda: _start_timer(ctx), rid="fab", glyph="▶")
    return Screen(rows=rows, fab=fab, rid_prefix=PACKAGE)


def _press_digit(ctx: Ctx, digit: str) -> None:
    digits = ctx.extra.get("timer_digits", "")
    if len(digits) < 6 and (digits or digit != "0"):  # leading zeros are ignored, at most hh mm ss
        ctx.extra["timer_digits"] = digits + digit


def _press_delete(ctx: Ctx) -> None:
    ctx.extra["timer_digits"] = ctx.extra.get("timer_digits", "")[:-1]


def _start_setup(ctx: Ctx) -> None:
    ctx.extra.update(timer_setup=True, timer_digits="")


def _cancel_setup(ctx: Ctx) -> None:
    ctx.extra.update(timer_setup=False, timer_digits="")


def _start_timer(ctx: Ctx) -> None:
    h, m, s = timer_digits(ctx.extra.get("timer_digits", ""))
    length_ms = (h * 3600 + m * 60 + s) * 1000
    ctx.execute(
        DB,
        "INSERT INTO timers (length_ms, remaining_ms, state, label, start_ms) VALUES (?, ?, 'running', '', ?)",
        (length_ms, length_ms, _now_ms(ctx)),
    )
    ctx.extra.update(timer_setup=False, timer_digits="")


def _timer_play_pause(ctx: Ctx, timer_id: int) -> None:
    rows = ctx.query(DB, "SELECT remaining_ms, state, start_ms FROM timers WHERE _id = ?", (timer_id,))
    if not rows:
        return
    remaining_ms, state, start_ms = rows[0]
    now_ms = _now_ms(ctx)
    if state == "running":
        left = _remaining_ms(state, remaining_ms, start_ms, now_ms)
        if left <= 0:  # "Stop" on an expired timer resets it
            ctx.execute(
                DB,
                "UPDATE timers SET state = 'reset', remaining_ms = length_ms, start_ms = 0 WHERE _id = ?",
                (timer_id,),
            )
        else:
            ctx.execute(
                DB,
                "UPDATE timers SET state = 'paused', remaining_ms = ?, start_ms = 0 WHERE _id = ?",
                (left, timer_id),
            )
    else:
        ctx.execute(DB, "UPDATE timers SET state = 'running', start_ms = ? WHERE _id = ?", (now_ms, timer_id))


def _timer_reset_add(ctx: Ctx, timer_id: int, state: str) -> None:
    if state == "running":
        ctx.execute(
            DB,
            "UPDATE timers SET remaining_ms = remaining_ms + 60000, length_ms = length_ms + 60000 WHERE _id = ?",
            (timer_id,),
        )
    else:
        ctx.execute(
            DB,
            "UPDATE timers SET state = 'reset', remaining_ms = length_ms, start_ms = 0 WHERE _id = ?",
            (timer_id,),
        )


def _delete_timer(ctx: Ctx, timer_id: int) -> None:
    ctx.execute(DB, "DELETE FROM timers WHERE _id = ?", (timer_id,))


# ---- Stopwatch tab ---------------------------------------------------------------------------------------


def _elapsed_ms(ctx: Ctx) -> tuple[str, int]:
    state, accumulated_ms, start_ms = ctx.query(DB, "SELECT state, accumulated_ms, start_ms FROM stopwatch")[0]
    if state == "running":
        return state, accumulated_ms + _now_ms(ctx) - start_ms
    return state, accumulated_ms


def _stopwatch_tab(ctx: Ctx) -> Screen:
    state, elapsed = _elapsed_ms(ctx)
    main, hundredths = format_stopwatch(elapsed)
    rows = [
        spacer(48),
        big_text(main, rid="stopwatch_time_text", size=64),
        text(hundredths, align="center", rid="stopwatch_hundredths_text", size=24),
        spacer(16),
    ]
    controls = []
    if state != "reset":
        controls.append(("Reset", lambda: _stopwatch_reset(ctx), "left_button"))
    if state == "running":
        controls.append(("Lap", lambda: _stopwatch_lap(ctx), "right_button"))
    if controls:
        row = buttons(*controls)
        for btn in row.children:
            btn.desc = btn.text  # the real buttons are icons; android_world looks for content-desc "Lap"
        rows.append(row)
    for number, lap_ms, total_ms in ctx.query(
        DB, "SELECT lap_number, lap_time_ms, total_ms FROM laps ORDER BY lap_number DESC"
    ):
        total = Node(cls=TEXT, text=".".join(format_stopwatch(total_ms)), rid="lap_total", size=16)
        rows.append(
            item(
                f"# {number}",
                ".".join(format_stopwatch(lap_ms)),
                trailing=total,
                rid="lap_item",
                title_rid="lap_number",
                subtitle_rid="lap_time",
            )
        )
    running = state == "running"
    fab = icon_button(
        "Pause" if running else "Start",
        lambda: _stopwatch_start_pause(ctx),
        rid="fab",
        glyph="❚❚" if running else "▶",
    )
    return Screen(rows=rows, fab=fab, rid_prefix=PACKAGE)


def _stopwatch_start_pause(ctx: Ctx) -> None:
    state, elapsed = _elapsed_ms(ctx)
    if state == "running":
        ctx.execute(DB, "UPDATE stopwatch SET state = 'paused', accumulated_ms = ?, start_ms = 0", (elapsed,))
    else:
        ctx.execute(DB, "UPDATE stopwatch SET state = 'running', start_ms = ?", (_now_ms(ctx),))


def _stopwatch_reset(ctx: Ctx) -> None:
    ctx.execute(DB, "UPDATE stopwatch SET state = 'reset', accumulated_ms = 0, start_ms = 0")
    ctx.execute(DB, "DELETE FROM laps")


def _stopwatch_lap(ctx: Ctx) -> None:
    _, elapsed = _elapsed_ms(ctx)
    number, previous = ctx.query(DB, "SELECT COUNT(*), COALESCE(MAX(total_ms), 0) FROM laps")[0]
    if number >= 98:  # the app stops offering Lap after 98 laps
        return
    ctx.execute(
        DB,
        "INSERT INTO laps (lap_number, lap_time_ms, total_ms) VALUES (?, ?, ?)",
        (number + 1, elapsed - previous, elapsed),
    )


# ---- intents: DeskClock's launcher filter and the AlarmClock "show" actions (HandleApiCalls opens DeskClock)

HANDLE_API_CALLS = "com.android.deskclock.HandleApiCalls"
INTENT_FILTERS = [
    IntentFilter(MAIN, ("android.intent.action.MAIN",), (DEFAULT, "android.intent.category.LAUNCHER")),
    IntentFilter(HANDLE_API_CALLS, ("android.intent.action.SHOW_ALARMS", "android.intent.action.SHOW_TIMERS")),
]

APP = App(
    package=PACKAGE,
    label="Clock",
    activities={MAIN: main_screen, CITIES: cities_screen},
    intent_filters=INTENT_FILTERS,
    aliases={HANDLE_API_CALLS: MAIN},
    icon="◷",
    color="#1a73e8",
    version_name="7.2",
    install=install,
)
