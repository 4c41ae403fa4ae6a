"""Simple Calendar Pro (com.simplemobiletools.calendar.pro): month, day and list views and the event editor.

Events live where the real app keeps them, in databases/events.db, table `events` with the Room
entity's columns (times are epoch seconds; android_world's SimpleCalendar checks read id, start_ts,
end_ts, title, location, description). The views show each event on every day it overlaps; repeat
rules (the editor's Repeat row) are stored but not expanded (task setups write single events). The
chosen view is kept in shared_prefs/Prefs.xml as the real app's `view` preference (1 monthly, 3 event list, 5 daily).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from droidrl.envs.sim.app import App, Ctx, IntentFilter
from droidrl.envs.sim.ui import (
    LINEAR,
    RADIO,
    TEXT,
    Dialog,
    Node,
    Screen,
    edit,
    header,
    icon_button,
    item,
    spacer,
    switch_item,
    text,
)

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

PACKAGE = "com.simplemobiletools.calendar.pro"
MAIN = ".activities.MainActivity"
EVENT = ".activities.EventActivity"
DB = "events.db"
DB_PATH = f"/data/data/{PACKAGE}/databases/{DB}"
PREFS_PATH = f"/data/data/{PACKAGE}/shared_prefs/Prefs.xml"

# The real app's view constants (helpers/Constants.kt) and the labels of its "Change view" dialog.
MONTHLY_VIEW, EVENTS_LIST_VIEW, DAILY_VIEW = 1, 3, 5
VIEWS = [(DAILY_VIEW, "Daily view"), (MONTHLY_VIEW, "Monthly view"), (EVENTS_LIST_VIEW, "Simple event list")]
FLAG_ALL_DAY = 1
REGULAR_EVENT_TYPE_ID = 1
DEFAULT_REMINDER_MINUTES = 10
DEFAULT_DURATION_S = 3600
UTC = dt.UTC

TITLE_EMPTY_TOAST = "Title cannot be empty"
END_BEFORE_START_TOAST = "The event cannot end earlier than it starts"
DELETE_MESSAGE = "Are you sure you want to proceed with the deletion?"

# Room's schema, with column defaults added so that a task's setup can insert the fields it cares about.
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    start_ts INTEGER NOT NULL,
    end_ts INTEGER NOT NULL,
    title TEXT NOT NULL,
    location TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    reminder_1_minutes INTEGER NOT NULL DEFAULT -1,
    reminder_2_minutes INTEGER NOT NULL DEFAULT -1,
    reminder_3_minutes INTEGER NOT NULL DEFAULT -1,
    reminder_1_type INTEGER NOT NULL DEFAULT 0,
    reminder_2_type INTEGER NOT NULL DEFAULT 0,
    reminder_3_type INTEGER NOT NULL DEFAULT 0,
    repeat_interval INTEGER NOT NULL DEFAULT 0,
    repeat_rule INTEGER NOT NULL DEFAULT 0,
    repeat_limit INTEGER NOT NULL DEFAULT 0,
    repetition_exceptions TEXT NOT NULL DEFAULT '[]',
    attendees TEXT NOT NULL DEFAULT '[]',
    import_id TEXT NOT NULL DEFAULT '',
    time_zone TEXT NOT NULL DEFAULT '',
    flags INTEGER NOT NULL DEFAULT 0,
    event_type INTEGER NOT NULL DEFAULT 1,
    parent_id INTEGER NOT NULL DEFAULT 0,
    last_updated INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT 'simple-calendar',
    availability INTEGER NOT NULL DEFAULT 0,
    color INTEGER NOT NULL DEFAULT 0,
    type INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS index_events_id ON events (id);
CREATE TABLE IF NOT EXISTS event_types (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    color INTEGER NOT NULL,
    caldav_calendar_id INTEGER NOT NULL,
    caldav_display_name TEXT NOT NULL,
    caldav_email TEXT NOT NULL,
    type INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS index_event_types_id ON event_types (id);
"""

EVENT_COLUMNS = "id, start_ts, end_ts, title, location, description, flags"


def install(phone: Phone) -> None:
    """An empty calendar with the built-in "Regular event" type, as after a fresh install."""
    phone.fs.makedirs(f"/data/data/{PACKAGE}/databases")
    with phone.fs.sqlite(DB_PATH) as conn:
        conn.executescript(SCHEMA)
        if conn.execute("SELECT count(*) FROM event_types").fetchone()[0] == 0:
            conn.execute(
                "INSERT INTO event_types (id, title, color, caldav_calendar_id, caldav_display_name, caldav_email)"
                " VALUES (?, 'Regular event', -13615201, 0, '', '')",
                (REGULAR_EVENT_TYPE_ID,),
            )


# ---- dates and formatting ----------------------------------------------------------------------------


def day_start(day: dt.date) -> int:
    """Epoch seconds of the day's midnight (the device runs on UTC)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def to_datetime(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=UTC)


def format_time(ts: int) -> str:
    return to_datetime(ts).strftime("%H:%M")


def format_date(ts: int) -> str:
    """The editor's date label, e.g. "Sun, Oct 15, 2023"."""
    return to_datetime(ts).strftime("%a, %b %-d, %Y")


def day_title(day: dt.date, today: dt.date) -> str:
    """The daily view's header, e.g. "October 15 (Sun)"; other years show the year."""
    year = f" {day.year}" if day.year != today.year else ""
    return f"{day.strftime('%B')} {day.day}{year} ({day.strftime('%a')})"


def month_title(day: dt.date, today: dt.date) -> str:
    return day.strftime("%B") + (f" {day.year}" if day.year != today.year else "")


def section_title(day: dt.date, today: dt.date) -> str:
    """An event-list day header, e.g. "Sunday, October 15"."""
    year = f" {day.year}" if day.year != today.year else ""
    return f"{day.strftime('%A')}, {day.strftime('%B')} {day.day}{year}"


def time_range(start: int, end: int, flags: int) -> str:
    if flags & FLAG_ALL_DAY:
        return "All-day"
    return f"{format_time(start)} - {format_time(end)}"


def month_grid(year: int, month: int) -> list[list[dt.date]]:
    """Six Sunday-first weeks covering the month, as the month view shows them."""
    first = dt.date(year, month, 1)
    start = first - dt.timedelta(days=(first.weekday() + 1) % 7)
    return [[start + dt.timedelta(days=7 * w + d) for d in range(7)] for w in range(6)]


def add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month `months` away from `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def events_between(ctx: Ctx, start: int, end: int) -> list[tuple]:
    """Events overlapping [start, end) (an instant event counts on the day it starts), by start time."""
    return ctx.query(
        DB,
        f"SELECT {EVENT_COLUMNS} FROM events WHERE type = 0 AND start_ts < ? AND (end_ts > ? OR start_ts >= ?)"
        " ORDER BY start_ts, id",
        (end, start, start),
    )


def _today(ctx: Ctx) -> dt.date:
    return ctx.now().date()


# ---- stored view (shared_prefs/Prefs.xml) ---------------------------------------------------------------


def stored_view(ctx: Ctx) -> int:
    fs = ctx.phone.fs
    if not fs.is_file(PREFS_PATH):
        return MONTHLY_VIEW
    match = re.search(r'<int name="view" value="(\d+)"', fs.read(PREFS_PATH).decode("utf-8", "replace"))
    view = int(match.group(1)) if match else MONTHLY_VIEW
    return view if view in dict(VIEWS) else MONTHLY_VIEW


def _store_view(ctx: Ctx, view: int) -> None:
    xml = (
        "<?xml version='1.0' encoding='utf-8' standalone='yes' ?>\n"
        f'<map>\n    <int name="view" value="{view}" />\n</map>\n'
    )
    ctx.phone.fs.makedirs(f"/data/data/{PACKAGE}/shared_prefs")
    ctx.phone.fs.write(PREFS_PATH, xml.encode("utf-8"))


# ---- shared widgets ------------------------------------------------------------------------------------------


def _cells_row(cells: list[Node], height: float = 56) -> Node:
    """Equal-width cells in one row (the layout's chips row places them side by side)."""
    return Node(cls=LINEAR, kind="chips_row", height=height, children=cells)


def _label(value: str, *, rid: str = "", size: float = 14, align: str = "center", **kw) -> Node:
    return Node(cls=TEXT, text=value, rid=rid, size=size, align=align, **kw)


def _arrow(desc: str, glyph: str, on_click: Callable[[], None], rid: str) -> Node:
    return icon_button(desc, on_click, rid, glyph)


def _weekday_row(rid: str) -> Node:
    return _cells_row([_label(d, rid=rid, size=12, color="text2") for d in "SMTWTFS"], height=32)


def _date_dialog(ctx: Ctx, on_ok: Callable[[dt.date], None], on_cancel: Callable[[], None]) -> Dialog:
    """The framework DatePickerDialog in calendar mode: month arrows, a day grid, Cancel / OK.

    `ctx.extra["picker"]` holds the selected date's ordinal and `["picker_month"]` the shown month's first day.
    """
    selected = dt.date.fromordinal(ctx.extra["picker"])
    shown = dt.date.fromordinal(ctx.extra["picker_month"])

    def pick(day: dt.date) -> None:
        ctx.extra["picker"] = day.toordinal()

    def move(months: int) -> None:
        ctx.extra["picker_month"] = add_months(shown, months).toordinal()

    nav = _cells_row(
        [
            _arrow("Previous month", "‹", lambda: move(-1), "android:id/prev"),
            _label(shown.strftime("%B %Y"), rid="android:id/month_view", size=14, bold=True),
            _arrow("Next month", "›", lambda: move(1), "android:id/next"),
        ]
    )
    rows = [nav, _weekday_row("android:id/day_names")]
    for week in month_grid(shown.year, shown.month):
        cells = []
        for day in week:
            if day.month != shown.month:
                cells.append(_label("", size=14))  # the framework leaves other months' days blank
                continue
            chosen = day == selected
            cells.append(
                _label(
                    str(day.day),
                    size=14,
                    desc=day.strftime(f"{day.day} %B %Y"),
                    rid="android:id/date_picker_day",
                    clickable=True,
                    focusable=True,
                    selected=chosen,
                    checked=chosen,
                    bg="accent_soft" if chosen else "",
                    bold=chosen,
                    on_click=lambda day=day: pick(day),
                )
            )
        rows.append(_cells_row(cells, height=44))
    return Dialog(
        title=selected.strftime("%a, %b %-d, %Y"),
        rows=rows,
        buttons=[("OK", lambda: on_ok(selected)), ("Cancel", on_cancel)],
        on_cancel=on_cancel,
    )


def _open_date_dialog(ctx: Ctx, name: str, day: dt.date) -> None:
    ctx.extra.update(dialog=name, picker=day.toordinal(), picker_month=day.replace(day=1).toordinal())


def _close_dialog(ctx: Ctx) -> None:
    ctx.extra["dialog"] = None
    ctx.clear_focus()


# ---- main screen (MainActivity) -------------------------------------------------------------------------


def main_screen(ctx: Ctx) -> Screen:
    today = _today(ctx)
    view = ctx.extra.get("view") or stored_view(ctx)
    shown = dt.date.fromordinal(ctx.extra.get("day") or today.toordinal())
    dialog = _main_dialog(ctx, view, shown)

    def go_today() -> None:
        ctx.extra["day"] = today.toordinal()

    def new_event() -> None:
        ctx.start(EVENT, day=(shown if view == DAILY_VIEW else today).toordinal())

    if view == DAILY_VIEW:
        rows, on_back = _day_view(ctx, shown, today), _day_back(ctx)
        showing_today = shown == today
    elif view == EVENTS_LIST_VIEW:
        rows, on_back, showing_today = _list_view(ctx, today), None, True
    else:
        rows, on_back = _month_view(ctx, shown, today), None
        showing_today = (shown.year, shown.month) == (today.year, today.month)
    actions = []
    if not showing_today:  # the real app shows "Go to today" only away from today
        actions.append(icon_button("Go to today", go_today, "go_to_today", "□"))
    actions += [
        icon_button("Change view", lambda: ctx.extra.update(dialog="change_view"), "change_view", "☰"),
        icon_button("More options", lambda: ctx.extra.update(dialog="menu"), "", "⋮"),
    ]
    fab = icon_button("New Event", new_event, "calendar_fab", "+")
    return Screen(
        title="Simple Calendar Pro",
        rows=rows,
        actions=actions,
        fab=fab,
        dialog=dialog,
        on_back=on_back,
        rid_prefix=PACKAGE,
    )


def _day_back(ctx: Ctx) -> Callable[[], None] | None:
    """BACK in a daily view opened from the month view returns to the month, as the real app does."""
    if not ctx.extra.get("from_month"):
        return None

    def back() -> None:
        ctx.extra.update(view=MONTHLY_VIEW, from_month=False)

    return back


def _open_day(ctx: Ctx, day: dt.date) -> None:
    ctx.extra.update(view=DAILY_VIEW, day=day.toordinal(), from_month=True)
    ctx.activity.scroll = 0


def _month_view(ctx: Ctx, shown: dt.date, today: dt.date) -> list[Node]:
    weeks = month_grid(shown.year, shown.month)
    first, last = weeks[0][0], weeks[-1][-1]
    events = events_between(ctx, day_start(first), day_start(last + dt.timedelta(days=1)))

    def move(months: int) -> None:
        ctx.extra["day"] = add_months(shown, months).toordinal()

    nav = _cells_row(
        [
            _arrow("Previous", "‹", lambda: move(-1), "top_left_arrow"),
            _label(month_title(shown, today), rid="top_value", size=16, bold=True),
            _arrow("Next", "›", lambda: move(1), "top_right_arrow"),
        ]
    )
    nav.children[1].clickable = True
    nav.children[1].on_click = lambda: _open_date_dialog(ctx, "go_to_date", shown)
    rows = [nav, _weekday_row("week_day_label")]
    for week in weeks:
        cells = []
        for day in week:
            start, end = day_start(day), day_start(day + dt.timedelta(days=1))
            titles = [e[3] for e in events if e[1] < end and (e[2] > start or e[1] >= start)]
            cells.append(
                _label(
                    "\n".join([str(day.day), *titles]),
                    rid="month_day",
                    size=11,
                    desc=day.strftime(f"%B {day.day}, %Y"),
                    color="" if day.month == shown.month else "text2",
                    bg="accent_soft" if day == today else "",
                    bold=day == today,
                    clickable=True,
                    focusable=True,
                    on_click=lambda day=day: _open_day(ctx, day),
                )
            )
        rows.append(_cells_row(cells, height=80))
    return rows


def _event_row(ctx: Ctx, event: tuple) -> Node:
    event_id, start, end, title, _location, _description, flags = event
    return item(
        title,
        time_range(start, end, flags),
        on_click=lambda: ctx.start(EVENT, event_id=event_id),
        rid="event_item_holder",
        title_rid="event_item_title",
        subtitle_rid="event_item_time",
    )


def _day_view(ctx: Ctx, shown: dt.date, today: dt.date) -> list[Node]:
    def move(days: int) -> None:
        ctx.extra["day"] = (shown + dt.timedelta(days=days)).toordinal()

    nav = _cells_row(
        [
            _arrow("Previous", "‹", lambda: move(-1), "top_left_arrow"),
            _label(day_title(shown, today), rid="top_value", size=13, bold=True),
            _arrow("Next", "›", lambda: move(1), "top_right_arrow"),
        ]
    )
    nav.children[1].clickable = True
    nav.children[1].on_click = lambda: _open_date_dialog(ctx, "go_to_date", shown)
    start = day_start(shown)
    events = events_between(ctx, start, start + 86400)
    return [nav, *(_event_row(ctx, e) for e in events), spacer(88)]


def _list_view(ctx: Ctx, today: dt.date) -> list[Node]:
    """Simple event list: every event from today on, under a header per day."""
    start = day_start(today)
    events = events_between(ctx, start, start + 366 * 86400)
    rows: list[Node] = []
    section = None
    for event in events:
        day = max(to_datetime(event[1]).date(), today)
        if day != section:
            section = day
            rows.append(header(section_title(day, today), rid="event_section_title"))
        rows.append(_event_row(ctx, event))
    if not rows:
        rows.append(text("No upcoming events found.", align="center", rid="calendar_empty_list_placeholder"))
    rows.append(spacer(88))
    return rows


def _main_dialog(ctx: Ctx, view: int, shown: dt.date) -> Dialog | None:
    kind = ctx.extra.get("dialog")
    close = lambda: _close_dialog(ctx)  # noqa: E731
    if kind == "change_view":

        def choose(value: int) -> None:
            _store_view(ctx, value)
            ctx.extra.update(view=value, dialog=None, from_month=False)
            ctx.activity.scroll = 0

        rows = [
            item(
                label,
                on_click=lambda value=value: choose(value),
                trailing=Node(cls=RADIO, kind="radio", checkable=True, checked=value == view, rid="radio"),
                title_rid="android:id/text1",
            )
            for value, label in VIEWS
        ]
        return Dialog(rows=rows, on_cancel=close)
    if kind == "menu":
        # TODO(core): an anchored overflow popup; a dialog with the menu rows stands in for it.
        go_to = item("Go to date", on_click=lambda: _open_date_dialog(ctx, "go_to_date", shown), title_rid="title")
        return Dialog(rows=[go_to], on_cancel=close)
    if kind == "go_to_date":

        def go(day: dt.date) -> None:
            ctx.extra.update(day=day.toordinal(), dialog=None)
            if view == EVENTS_LIST_VIEW:  # the list has no date: going to one opens its day
                ctx.extra.update(view=DAILY_VIEW, from_month=False)

        return _date_dialog(ctx, go, close)
    return None


# ---- event editor (EventActivity) ------------------------------------------------------------------------


def _load_event(ctx: Ctx, event_id: int) -> tuple | None:
    rows = ctx.query(DB, f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
    return rows[0] if rows else None


def _new_event_times(ctx: Ctx) -> tuple[int, int]:
    """A new event starts at the next full hour on the chosen day and lasts an hour (the app's defaults)."""
    now = ctx.now()
    day = dt.date.fromordinal(ctx.args.get("day") or now.date().toordinal())
    next_hour = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = dt.datetime.combine(day, next_hour.time(), tzinfo=UTC)
    if next_hour.date() != now.date() and day == now.date():
        start = next_hour  # just before midnight the next full hour is tomorrow
    ts = int(start.timestamp())
    return ts, ts + DEFAULT_DURATION_S


# The Repeat row's choices: (label, repeat_interval in seconds), as the app's constants (DAY .. YEAR).
REPEATS = [("No repetition", 0), ("Daily", 86400), ("Weekly", 604800), ("Monthly", 2592000), ("Yearly", 31536000)]


def _repeat_rule(interval: int, start: int) -> int:
    """Weekly: the start day's bit (Monday 1 .. Sunday 64); monthly/yearly: REPEAT_SAME_DAY (1); else 0."""
    if interval == 604800:
        return 1 << (to_datetime(start).isoweekday() - 1)
    return 1 if interval in (2592000, 31536000) else 0


def _repeat_row(ctx: Ctx) -> Node:
    label = next(name for name, secs in REPEATS if secs == ctx.extra.get("repeat", 0))
    open_dialog = lambda: ctx.extra.update(dialog="repeat")  # noqa: E731
    return item(label, on_click=open_dialog, rid="event_repetition_holder", title_rid="event_repetition")


def _repeat_dialog(ctx: Ctx) -> Dialog:
    def choose(secs: int) -> None:
        ctx.extra["repeat"] = secs
        _close_dialog(ctx)

    rows = [item(name, on_click=lambda secs=secs: choose(secs)) for name, secs in REPEATS]
    return Dialog(rows=rows, on_cancel=lambda: _close_dialog(ctx))


def _editor_init(ctx: Ctx) -> bool:
    """Fill the editor once, like onCreate; returns False when the event to edit does not exist."""
    if "initial" in ctx.extra:
        return True
    event_id = ctx.args.get("event_id")
    if isinstance(event_id, int):
        event = _load_event(ctx, event_id)
        if event is None:
            return False
        _, start, end, title, location, description, flags = event
    else:
        (start, end), title, location, description, flags = _new_event_times(ctx), "", "", "", 0
        # An INSERT intent's CalendarContract extras (beginTime/endTime in ms) fill in the new event.
        title, location = str(ctx.args.get("title", "")), str(ctx.args.get("eventLocation", ""))
        description = str(ctx.args.get("description", ""))
        if isinstance(ctx.args.get("beginTime"), int):
            start = ctx.args["beginTime"] // 1000
            end = start + DEFAULT_DURATION_S
        if isinstance(ctx.args.get("endTime"), int):
            end = max(start, ctx.args["endTime"] // 1000)
        flags = FLAG_ALL_DAY if ctx.args.get("allDay") is True else 0
    initial = {
        "title": title,
        "location": location,
        "description": description,
        "start": start,
        "end": end,
        "all_day": bool(flags & FLAG_ALL_DAY),
    }
    ctx.extra["initial"] = initial
    ctx.extra.update(start=start, end=end, all_day=initial["all_day"], dialog=None)
    if isinstance(event_id, int):
        ctx.extra["repeat"] = ctx.query(DB, "SELECT repeat_interval FROM events WHERE id = ?", (event_id,))[0][0]
    for key in ("title", "location", "description"):
        ctx.set_field(key, initial[key])
    return True


def editor_screen(ctx: Ctx) -> Screen:
    if not _editor_init(ctx):
        gone = text("This event no longer exists", align="center", rid="event_missing")
        return Screen(title="Edit Event", up=ctx.finish, rows=[gone], rid_prefix=PACKAGE)
    event_id = ctx.args.get("event_id")
    editing = isinstance(event_id, int)
    start, end, all_day = ctx.extra["start"], ctx.extra["end"], ctx.extra["all_day"]

    def changed() -> bool:
        initial = ctx.extra["initial"]
        now = {"start": ctx.extra["start"], "end": ctx.extra["end"], "all_day": ctx.extra["all_day"]}
        fields = {key: ctx.field(key) for key in ("title", "location", "description")}
        return any(initial[k] != v for k, v in {**now, **fields}.items())

    def up() -> None:
        if changed():
            ctx.extra["dialog"] = "discard"
        else:
            ctx.finish()

    def toggle_all_day() -> None:
        ctx.extra["all_day"] = not ctx.extra["all_day"]

    def open_time(which: str) -> None:
        value = to_datetime(ctx.extra[which])
        ctx.extra.update(dialog="time", target=which, time_error=False)
        ctx.set_field("hour", f"{value.hour:02d}")
        ctx.set_field("minute", f"{value.minute:02d}")

    rows = [
        spacer(8),
        edit("title", ctx.field("title"), "Title", "event_title", focused=ctx.focused("title")),
        edit("location", ctx.field("location"), "Location", "event_location", focused=ctx.focused("location")),
        edit(
            "description",
            ctx.field("description"),
            "Description",
            "event_description",
            focused=ctx.focused("description"),
        ),
        switch_item("All-day", all_day, toggle_all_day, rid="event_all_day"),
    ]
    for which, ts in (("start", start), ("end", end)):
        date_label = _label(
            format_date(ts),
            rid=f"event_{which}_date",
            size=17,
            align="left",
            clickable=True,
            focusable=True,
            on_click=lambda which=which: _open_date_dialog(ctx, which, to_datetime(ctx.extra[which]).date()),
        )
        time_label = _label("", rid=f"event_{which}_time", size=17, align="right")
        if not all_day:
            time_label.text, time_label.clickable, time_label.focusable = format_time(ts), True, True
            time_label.on_click = lambda which=which: open_time(which)
        rows.append(_cells_row([date_label, time_label]))
    rows.append(item("UTC", rid="event_time_zone", title_rid="event_time_zone_text"))
    rows.append(_repeat_row(ctx))

    actions = [icon_button("Save", lambda: _save(ctx, event_id if editing else None), "save", "✓")]
    if editing:
        actions.append(icon_button("Delete", lambda: ctx.extra.update(dialog="delete"), "delete", "🗑"))
    return Screen(
        title="Edit Event" if editing else "New Event",
        up=up,
        actions=actions,
        rows=rows,
        dialog=_editor_dialog(ctx, event_id),
        on_back=up,
        rid_prefix=PACKAGE,
    )


def _editor_dialog(ctx: Ctx, event_id: int | None) -> Dialog | None:
    kind = ctx.extra.get("dialog")
    close = lambda: _close_dialog(ctx)  # noqa: E731
    if kind in ("start", "end"):
        return _date_dialog(ctx, lambda day: _set_date(ctx, kind, day), close)
    if kind == "time":
        return _time_dialog(ctx)
    if kind == "repeat":
        return _repeat_dialog(ctx)
    if kind == "delete":

        def delete() -> None:
            ctx.execute(DB, "DELETE FROM events WHERE id = ?", (event_id,))
            ctx.finish()

        return Dialog(message=DELETE_MESSAGE, buttons=[("Yes", delete), ("No", close)], on_cancel=close)
    if kind == "discard":
        return Dialog(
            message="You have unsaved changes. Save before exiting?",
            buttons=[("Save", lambda: _save(ctx, event_id)), ("Discard", ctx.finish)],
            on_cancel=close,
        )
    return None


def _time_dialog(ctx: Ctx) -> Dialog:
    """The framework TimePickerDialog in text-input mode (24-hour): hour and minute fields, Cancel / OK."""
    hour = edit("hour", ctx.field("hour"), "hh", "android:id/input_hour", focused=ctx.focused("hour"))
    minute = edit("minute", ctx.field("minute"), "mm", "android:id/input_minute", focused=ctx.focused("minute"))
    hour.children[0].desc, minute.children[0].desc = "hour", "minute"
    rows = [_cells_row([hour.children[0], minute.children[0]], height=72)]
    if ctx.extra.get("time_error"):
        rows.append(text("Enter a valid time", size=14, color="#b3261e", rid="android:id/label_error"))

    def ok() -> None:
        h_txt, m_txt = ctx.field("hour").strip(), ctx.field("minute").strip()
        valid = re.fullmatch(r"\d{1,2}", h_txt) and re.fullmatch(r"\d{1,2}", m_txt)
        if not valid or int(h_txt) > 23 or int(m_txt) > 59:
            ctx.extra["time_error"] = True  # the dialog refuses bad input and stays open
            return
        _close_dialog(ctx)
        _set_time(ctx, ctx.extra["target"], int(h_txt), int(m_txt))

    return Dialog(
        title="Type in time",
        rows=rows,
        buttons=[("OK", ok), ("Cancel", lambda: _close_dialog(ctx))],
        on_cancel=lambda: _close_dialog(ctx),
    )


def _set_date(ctx: Ctx, which: str, day: dt.date) -> None:
    """A new start date keeps the time and moves the end along; a new end date only moves the end."""
    _close_dialog(ctx)
    old = to_datetime(ctx.extra[which])
    new = int(dt.datetime.combine(day, old.time(), tzinfo=UTC).timestamp())
    _move(ctx, which, new)


def _set_time(ctx: Ctx, which: str, hour: int, minute: int) -> None:
    old = to_datetime(ctx.extra[which])
    _move(ctx, which, int(old.replace(hour=hour, minute=minute, second=0).timestamp()))


def _move(ctx: Ctx, which: str, new: int) -> None:
    if which == "start":
        duration = ctx.extra["end"] - ctx.extra["start"]
        ctx.extra.update(start=new, end=new + duration)
    else:
        ctx.extra["end"] = new


def _save(ctx: Ctx, event_id: int | None) -> None:
    title = ctx.field("title").strip()
    if not title:
        _close_dialog(ctx)
        ctx.toast(TITLE_EMPTY_TOAST)
        return
    start, end, all_day = ctx.extra["start"], ctx.extra["end"], ctx.extra["all_day"]
    if all_day:  # all-day events are stored from the start day's midnight to the end day's midnight
        start = day_start(to_datetime(start).date())
        end = day_start(to_datetime(end).date())
    if end < start:
        _close_dialog(ctx)
        ctx.toast(END_BEFORE_START_TOAST)
        return
    values = (
        start,
        end,
        title,
        ctx.field("location").strip(),
        ctx.field("description").strip(),
        FLAG_ALL_DAY if all_day else 0,
        int(ctx.now().timestamp() * 1000),
    )
    if event_id is None:
        ctx.execute(
            DB,
            "INSERT INTO events (start_ts, end_ts, title, location, description, flags, last_updated,"
            " reminder_1_minutes, time_zone, event_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'UTC', ?)",
            (*values, DEFAULT_REMINDER_MINUTES, REGULAR_EVENT_TYPE_ID),
        )
        repeat = ctx.extra.get("repeat", 0)
        ctx.execute(
            DB,
            "UPDATE events SET repeat_interval = ?, repeat_rule = ? WHERE id = (SELECT max(id) FROM events)",
            (repeat, _repeat_rule(repeat, start)),
        )
        ctx.toast("Event added successfully")
    else:
        if _load_event(ctx, event_id) is None:  # deleted while the editor was open: nothing to update
            ctx.finish()
            return
        ctx.execute(
            DB,
            "UPDATE events SET start_ts = ?, end_ts = ?, title = ?, location = ?, description = ?, flags = ?,"
            " last_updated = ? WHERE id = ?",
            (*values, event_id),
        )
        repeat = ctx.extra.get("repeat", 0)
        ctx.execute(
            DB,
            "UPDATE events SET repeat_interval = ?, repeat_rule = ? WHERE id = ?",
            (repeat, _repeat_rule(repeat, start), event_id),
        )
        ctx.toast("Event updated successfully")
    ctx.finish()


# ---- intents (the manifest's filters; the launcher icon is an alias of the splash activity) ---------------

SPLASH = ".activities.SplashActivity"
_VIEW, _EVENT_TYPES = "android.intent.action.VIEW", ("vnd.android.cursor.item/event", "vnd.android.cursor.dir/event")
INTENT_FILTERS = [
    IntentFilter(
        SPLASH + ".Orange",
        ("android.intent.action.MAIN",),
        ("android.intent.category.LAUNCHER", "android.intent.category.APP_CALENDAR"),
    ),
    IntentFilter(
        MAIN,
        (_VIEW,),
        schemes=("content", "file"),
        mime_types=("text/x-vcalendar", "text/calendar", "application/ics"),
    ),
    IntentFilter(MAIN, (_VIEW,), schemes=("content",), hosts=("com.android.calendar",), mime_types=("time/epoch",)),
    IntentFilter(MAIN, (_VIEW,), mime_types=("vnd.android.cursor.item/event",)),
    IntentFilter(EVENT, ("android.intent.action.EDIT", "android.intent.action.INSERT"), mime_types=_EVENT_TYPES),
]


APP = App(
    package=PACKAGE,
    label="Simple Calendar Pro",
    activities={MAIN: main_screen, EVENT: editor_screen},
    intent_filters=INTENT_FILTERS,
    aliases={SPLASH: MAIN, SPLASH + ".Orange": MAIN},  # the splash screen opens MainActivity at once
    icon="31",
    color="#f57c00",
    version_name="6.22.1",
    install=install,
)
