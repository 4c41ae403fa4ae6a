"""Task templates for Simple Calendar Pro (com.simplemobiletools.calendar.pro), named after android_world's.

Setups write events into the app's databases/events.db; checkers read it back, checking every requested
field and that the other events survived. The phone's clock is frozen at Sunday 2023-10-15 15:34 UTC.
"""

from __future__ import annotations

import datetime as dt
import random
import re

from droidrl.envs.actions import Action, Back, Finish, Launch, Type
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiView
from droidrl.envs.tasks.state import answer_matches, app_db, normalize_answer, query_db, write_db

CALENDAR = "com.simplemobiletools.calendar.pro"
APP_NAME = "Simple Calendar Pro"
DB = app_db(CALENDAR, "events.db")
NOW = dt.datetime(2023, 10, 15, 15, 34, tzinfo=dt.UTC)  # the simulated phone's frozen clock
TODAY = NOW.date()

TITLES = [
    "Dentist appointment",
    "Team meeting",
    "Yoga class",
    "Book club",
    "Project review",
    "Lunch with Sam",
    "Piano lesson",
    "Car service",
    "Budget planning",
    "Doctor checkup",
    "Movie night",
    "Haircut",
    "Guitar practice",
    "Coffee with Maya",
    "Grocery run",
    "Board game night",
    "Quarterly planning",
    "Vet appointment",
    "Running club",
    "Birthday dinner",
]
LOCATIONS = [
    "Main Street Clinic",
    "Room 204",
    "Central Library",
    "Studio 4",
    "City Park",
    "Cafe Luna",
    "Town Hall",
    "Office HQ",
    "Community Center",
    "Riverside Gym",
]
DESCRIPTIONS = [
    "Bring notes",
    "Discuss the roadmap",
    "Pay the invoice",
    "Bring ID card",
    "Prepare questions",
    "Call ahead",
    "Review the slides",
    "Bring a snack",
]
DURATIONS = [30, 45, 60, 90, 120]


# ---- parameters ------------------------------------------------------------------------------------


def _ts(day: dt.date, hour: int, minute: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC).timestamp())


def _event(day: dt.date, hour: int, minutes: int, title: str, location: str = "", description: str = "") -> dict:
    start = _ts(day, hour)
    return {
        "title": title,
        "start": start,
        "end": start + minutes * 60,
        "location": location,
        "description": description,
    }


def _random_day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _background(rng: random.Random, count: int, titles: list[str], avoid: set[dt.date]) -> list[dict]:
    """`count` unrelated events between Oct 1 and Nov 30 on days outside `avoid`, titles drawn from `titles`."""
    events = []
    for title in titles[:count]:
        day = _random_day(rng, dt.date(2023, 10, 1), dt.date(2023, 11, 30))
        while day in avoid:
            day = _random_day(rng, dt.date(2023, 10, 1), dt.date(2023, 11, 30))
        location = rng.choice(["", "", *LOCATIONS])
        events.append(_event(day, rng.randint(8, 19), rng.choice([30, 60, 90]), title, location))
    return events


def _target_day(rng: random.Random) -> dt.date:
    """A day after today: mostly later this month, sometimes next month (one more tap on the month view)."""
    if rng.random() < 0.7:
        return _random_day(rng, dt.date(2023, 10, 16), dt.date(2023, 10, 31))
    return _random_day(rng, dt.date(2023, 11, 1), dt.date(2023, 11, 20))


def _day_words(day: dt.date) -> str:
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def _date_params(day: dt.date) -> Params:
    return {"day": day.toordinal(), "date_iso": day.isoformat(), "date_words": _day_words(day)}


def _day(params: Params) -> dt.date:
    return dt.date.fromordinal(params["day"])


# ---- device state ----------------------------------------------------------------------------------------


def _setup_events(device: Device, params: Params) -> None:
    sql = "INSERT INTO events (start_ts, end_ts, title, location, description, time_zone) VALUES (?, ?, ?, ?, ?, 'UTC')"
    statements = [("DELETE FROM events", ())]
    statements += [(sql, (e["start"], e["end"], e["title"], e["location"], e["description"])) for e in params["events"]]
    write_db(device, DB, statements, CALENDAR)


def _rows(device: Device) -> list[tuple]:
    """(start_ts, end_ts, title, location, description) of every event, by id."""
    sql = "SELECT start_ts, end_ts, title, location, description FROM events WHERE type = 0 ORDER BY id"
    return [tuple(row) for row in query_db(device, DB, sql)]


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _matches(row: tuple, event: dict) -> bool:
    start, end, title, location, description = row
    return (
        (start, end) == (event["start"], event["end"])
        and _same(title, event["title"])
        and _same(location, event["location"])
        and _same(description, event["description"])
    )


def _exactly(device: Device, expected: list[dict]) -> bool:
    """The calendar holds exactly these events (each matched once, nothing else)."""
    rows = _rows(device)
    if len(rows) != len(expected):
        return False
    left = list(rows)
    for event in expected:
        found = next((row for row in left if _matches(row, event)), None)
        if found is None:
            return False
        left.remove(found)
    return True


def _split_titles(answer: str | None) -> list[str]:
    parts = re.split(r",|;|\n|\band\b|&", answer or "")
    return [normalize_answer(p) for p in parts if normalize_answer(p)]


# ---- expert helpers ------------------------------------------------------------------------------------


def _month_shown(text: str) -> tuple[int, int] | None:
    """(year, month) of a month header like "October" (this year) or "December 2022"."""
    for fmt, default_year in (("%B", TODAY.year), ("%B %Y", None)):
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return (default_year or parsed.year, parsed.month)
    return None


def _month_step(view: UiView, shown: tuple[int, int], target: dt.date, prev: str, next_: str) -> Action:
    ahead = (target.year * 12 + target.month) > (shown[0] * 12 + shown[1])
    return view.tap(view.find(desc=next_ if ahead else prev))


def _date_dialog_step(view: UiView, target: dt.date) -> Action:
    """In the date picker: show the month, pick the day, then OK."""
    if view.find(rid="android:id/alertTitle").text == target.strftime("%a, %b %-d, %Y"):
        return view.tap(view.find(rid="android:id/button1"))
    shown = _month_shown(view.find(rid="android:id/month_view").text)
    if shown != (target.year, target.month):
        return _month_step(view, shown, target, "Previous month", "Next month")
    return view.tap(view.find(desc=target.strftime(f"{target.day} %B %Y")))


def _day_header(day: dt.date) -> str:
    return f"{day.strftime('%B')} {day.day} ({day.strftime('%a')})"


def _go_to_day(view: UiView, day: dt.date) -> Action | None:
    """Open the daily view of `day` from wherever the main screen is; None once it shows."""
    if view.app != CALENDAR:
        return Launch(APP_NAME)
    if view.has(rid="android:id/month_view"):
        return _date_dialog_step(view, day)
    if view.has(text="Simple event list"):  # the Change view dialog
        return view.tap(view.find(text="Monthly view"))
    if view.has(rid="event_title") or view.has(text="Go to date"):
        return Back()  # an editor or the overflow menu
    top = view.find(rid="top_value")
    if top is None:  # the event list: switch back to the month
        return view.tap(view.find(desc="Change view"))
    if "(" in top.text:  # a daily view
        return None if top.text == _day_header(day) else view.tap(top)
    shown = _month_shown(top.text)
    if shown != (day.year, day.month):
        return _month_step(view, shown, day, "Previous", "Next")
    return view.tap(view.find(desc=_day_words(day)))


def _field_step(view: UiView, rid: str, value: str) -> Action | None:
    """Focus a text field and type `value`; None once it shows it."""
    field = view.find(rid=rid)
    if field is None or _same(field.text, value):
        return None
    focused = view.focused_field()
    if focused is None or focused.rid != field.rid:
        return view.tap(field)
    return Type(value)


def _time_text(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%H:%M")


def _editor_step(view: UiView, target: Params) -> Action:
    """Bring the open event editor to `target` (start, end, title, location, description), then Save."""
    times = [(which, target[which]) for which in ("start", "end") if target.get(which) is not None]
    wrong = [
        (which, ts)
        for which, ts in times
        if view.find(rid=f"event_{which}_time").text != _time_text(ts)
        or view.find(rid=f"event_{which}_date").text
        != dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%a, %b %-d, %Y")
    ]
    if view.has(rid="android:id/month_view"):  # a date picker, opened for the first wrong field
        return _date_dialog_step(view, dt.datetime.fromtimestamp(wrong[0][1], tz=dt.UTC).date())
    if view.has(rid="android:id/input_hour"):  # the time picker, likewise
        when = dt.datetime.fromtimestamp(wrong[0][1], tz=dt.UTC)
        for rid, value in (("android:id/input_hour", when.hour), ("android:id/input_minute", when.minute)):
            shown = view.find(rid=rid).text
            if not (shown.isdigit() and int(shown) == value):
                return _field_step(view, rid, str(value)) or Back()
        return view.tap(view.find(rid="android:id/button1"))
    if wrong:
        which, ts = wrong[0]
        date_label = dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%a, %b %-d, %Y")
        if view.find(rid=f"event_{which}_date").text != date_label:
            return view.tap(view.find(rid=f"event_{which}_date"))
        return view.tap(view.find(rid=f"event_{which}_time"))
    for key in ("title", "location", "description"):
        if target.get(key):
            step = _field_step(view, f"event_{key}", target[key])
            if step is not None:
                return step
    return view.tap(view.find(desc="Save"))


# ---- query tasks ---------------------------------------------------------------------------------------


def _events_on_date_params(rng: random.Random) -> Params:
    day = _target_day(rng)
    titles = rng.sample(TITLES, 8)
    count = rng.randint(1, 3)
    hours = sorted(rng.sample(range(8, 20), count))
    targets = [_event(day, h, rng.choice([30, 60]), t) for h, t in zip(hours, titles, strict=False)]
    near = {day - dt.timedelta(days=1), day + dt.timedelta(days=1)}
    others = [
        _event(d, rng.randint(8, 19), 60, t) for d, t in zip(sorted(near), titles[count : count + 2], strict=True)
    ]
    others += _background(rng, 3, titles[count + 2 :], {day})
    return {**_date_params(day), "events": targets + others, "answer": [e["title"] for e in targets]}


def _events_on_date_evaluate(device: Device, params: Params, answer: str | None) -> float:
    expected = sorted(normalize_answer(t) for t in params["answer"])
    return float(sorted(_split_titles(answer)) == expected)


def _events_on_date_expert(device: Device, params: Params) -> Action:
    step = _go_to_day(UiView.of(device), _day(params))
    return step or Finish(", ".join(params["answer"]))


def _next_event_params(rng: random.Random) -> Params:
    titles = rng.sample(TITLES, 7)
    past = [
        _event(TODAY, rng.randint(8, 13), 60, titles[0]),  # earlier today, over by 15:34
        _event(TODAY - dt.timedelta(days=rng.randint(1, 5)), rng.randint(8, 19), 60, titles[1]),
    ]
    if rng.random() < 0.5:
        first = _event(TODAY, rng.randint(16, 21), 60, titles[2])
    else:
        first = _event(TODAY + dt.timedelta(days=rng.randint(1, 3)), rng.randint(8, 19), 60, titles[2])
    later_from = dt.datetime.fromtimestamp(first["start"], tz=dt.UTC).date() + dt.timedelta(days=1)
    later = [_event(_random_day(rng, later_from, dt.date(2023, 11, 15)), rng.randint(8, 19), 60, t) for t in titles[3:]]
    return {"events": [*past, first, *later], "answer": first["title"]}


def _title_answer_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_matches(answer, params["answer"]))


def _next_event_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if view.app != CALENDAR:
        return Launch(APP_NAME)
    if view.has(text="Simple event list") and not view.has(rid="event_section_title"):  # the Change view dialog
        return view.tap(view.find(text="Simple event list"))
    if view.has(rid="top_value"):
        return view.tap(view.find(desc="Change view"))
    return Finish(params["answer"])


def _location_params(rng: random.Random) -> Params:
    day = _target_day(rng)
    titles = rng.sample(TITLES, 6)
    location = rng.choice(LOCATIONS)
    hour = rng.randint(8, 18)
    target = _event(day, hour, 60, titles[0], location)
    same_day = _event(day, hour + 1, 60, titles[1], rng.choice([x for x in LOCATIONS if x != location]))
    others = _background(rng, 4, titles[2:], {day})
    return {**_date_params(day), "title": titles[0], "events": [target, same_day, *others], "answer": location}


def _location_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if view.has(rid="event_location"):
        return Finish(view.find(rid="event_location").text)
    step = _go_to_day(view, _day(params))
    return step or view.tap(view.find(text=params["title"], rid="event_item_title"))


# ---- deleting ------------------------------------------------------------------------------------------


def _delete_one_params(rng: random.Random) -> Params:
    day = _target_day(rng)
    titles = rng.sample(TITLES, 7)
    hours = rng.sample(range(8, 20), 2)
    target = _event(day, hours[0], 60, titles[0])
    others = [_event(day, hours[1], 60, titles[1]), *_background(rng, 5, titles[2:], {day})]
    return {**_date_params(day), "hour": hours[0], "title": titles[0], "events": [target, *others], "keep": others}


def _delete_many_params(rng: random.Random) -> Params:
    day = _target_day(rng)
    titles = rng.sample(TITLES, 7)
    hours = sorted(rng.sample(range(8, 20), 2))
    targets = [_event(day, h, 60, t) for h, t in zip(hours, titles, strict=False)]
    near = [_event(day + dt.timedelta(days=1), rng.randint(8, 19), 60, titles[2])]
    others = near + _background(rng, 4, titles[3:], {day})
    return {**_date_params(day), "titles": titles[:2], "events": targets + others, "keep": others}


def _keep_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_exactly(device, params["keep"]))


def _delete_expert(device: Device, params: Params) -> Action:
    if _exactly(device, params["keep"]):
        return Finish()
    view = UiView.of(device)
    if view.has(rid="android:id/message"):  # "Are you sure you want to proceed with the deletion?"
        return view.tap(view.find(text="Yes"))
    if view.has(desc="Delete") and view.has(rid="event_title"):
        return view.tap(view.find(desc="Delete"))
    step = _go_to_day(view, _day(params))
    if step is not None:
        return step
    doomed = params.get("titles") or [params["title"]]
    node = next(n for n in view.find_all(rid="event_item_title") if n.text in doomed)
    return view.tap(node)


# ---- editing -------------------------------------------------------------------------------------------


def _edit_params(field: str):
    def params(rng: random.Random) -> Params:
        day = _target_day(rng)
        titles = rng.sample(TITLES, 7)
        hours = rng.sample(range(8, 20), 2)
        old_location = rng.choice(["", *LOCATIONS[:5]])
        target = _event(day, hours[0], rng.choice([30, 60, 90]), titles[0], old_location, rng.choice(DESCRIPTIONS))
        others = [_event(day, hours[1], 60, titles[1]), *_background(rng, 4, titles[2:6], {day})]
        new = titles[6] if field == "title" else rng.choice([x for x in LOCATIONS if x != old_location])
        return {
            **_date_params(day),
            "title": titles[0],
            "new": new,
            "events": [target, *others],
            "goal": {**target, field: new},
        }

    return params


def _edit_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_exactly(device, [params["goal"], *params["events"][1:]]))


def _edit_expert(device: Device, params: Params) -> Action:
    if _edit_evaluate(device, params, None) == 1.0:
        return Finish()
    view = UiView.of(device)
    if view.has(rid="event_title"):
        return _editor_step(view, params["goal"])
    step = _go_to_day(view, _day(params))
    if step is not None:
        return step
    return view.tap(view.find(text=params["title"], rid="event_item_title"))


def _move_params(rng: random.Random) -> Params:
    params = _edit_params("title")(rng)
    target = params["events"][0]
    old_hour = dt.datetime.fromtimestamp(target["start"], tz=dt.UTC).hour
    hour = rng.choice([h for h in range(8, 20) if h != old_hour])
    start = _ts(_day(params), hour)
    params["hour"] = hour
    params["goal"] = {**target, "start": start, "end": start + target["end"] - target["start"]}
    del params["new"]
    return params


# ---- adding --------------------------------------------------------------------------------------------


def _add_params(day_choice: str, with_description: bool):
    def params(rng: random.Random) -> Params:
        if day_choice == "tomorrow":
            day = TODAY + dt.timedelta(days=1)
        elif day_choice == "weekday":
            day = TODAY + dt.timedelta(days=rng.randint(1, 7))
        else:
            day = _random_day(rng, dt.date(2023, 10, 17), dt.date(2023, 11, 20))
        titles = rng.sample(TITLES, 6)
        hour = rng.choice([h for h in range(8, 21) if h != 16])  # 16:00 is the new event's default start
        minutes = rng.choice(DURATIONS) if with_description else 60
        description = rng.choice(DESCRIPTIONS) if with_description else ""
        others = _background(rng, 5, titles[1:], set())
        return {
            **_date_params(day),
            "weekday": day.strftime("%A"),
            "hour": hour,
            "title": titles[0],
            "description": description,
            "duration": minutes,
            "events": others,
            "goal": _event(day, hour, minutes, titles[0], "", description),
        }

    return params


def _add_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_exactly(device, [*params["events"], params["goal"]]))


def _add_expert(device: Device, params: Params) -> Action:
    if _add_evaluate(device, params, None) == 1.0:
        return Finish()
    view = UiView.of(device)
    if view.has(rid="event_title"):
        return _editor_step(view, params["goal"])
    step = _go_to_day(view, _day(params))
    return step or view.tap(view.find(desc="New Event"))


# ---- templates -----------------------------------------------------------------------------------------

TEMPLATES = [
    TaskTemplate(
        name="SimpleCalendarEventsOnDate",
        apps=(CALENDAR,),
        goal=(
            "What events do I have on {date_words} in Simple Calendar Pro? Answer with the titles only;"
            " if there are several, separate them with commas."
        ),
        difficulty="easy",
        kind="query",
        params=_events_on_date_params,
        setup=_setup_events,
        evaluate=_events_on_date_evaluate,
        expert=_events_on_date_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarNextEvent",
        apps=(CALENDAR,),
        goal="What is my next upcoming event in Simple Calendar Pro? Answer with the title only.",
        difficulty="easy",
        kind="query",
        params=_next_event_params,
        setup=_setup_events,
        evaluate=_title_answer_evaluate,
        expert=_next_event_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarLocationOfEvent",
        apps=(CALENDAR,),
        goal="In Simple Calendar Pro, where is the '{title}' event on {date_words}? Answer with the location only.",
        difficulty="easy",
        kind="query",
        params=_location_params,
        setup=_setup_events,
        evaluate=_title_answer_evaluate,
        expert=_location_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarDeleteOneEvent",
        apps=(CALENDAR,),
        goal="In Simple Calendar Pro, delete the calendar event on {date_iso} at {hour}h with the title '{title}'.",
        difficulty="medium",
        kind="operation",
        params=_delete_one_params,
        setup=_setup_events,
        evaluate=_keep_evaluate,
        expert=_delete_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarDeleteEventsOnDay",
        apps=(CALENDAR,),
        goal="In Simple Calendar Pro, delete all the calendar events on {date_iso}.",
        difficulty="medium",
        kind="operation",
        params=_delete_many_params,
        setup=_setup_events,
        evaluate=_keep_evaluate,
        expert=_delete_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarEditEventTitle",
        apps=(CALENDAR,),
        goal="In Simple Calendar Pro, rename the event '{title}' on {date_words} to '{new}'.",
        difficulty="medium",
        kind="operation",
        params=_edit_params("title"),
        setup=_setup_events,
        evaluate=_edit_evaluate,
        expert=_edit_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarEditEventLocation",
        apps=(CALENDAR,),
        goal="In Simple Calendar Pro, set the location of the '{title}' event on {date_words} to '{new}'.",
        difficulty="medium",
        kind="operation",
        params=_edit_params("location"),
        setup=_setup_events,
        evaluate=_edit_evaluate,
        expert=_edit_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarMoveEvent",
        apps=(CALENDAR,),
        goal=(
            "In Simple Calendar Pro, move the '{title}' event on {date_words} so that it starts at {hour}:00"
            " on the same day, keeping its length."
        ),
        difficulty="medium",
        kind="operation",
        params=_move_params,
        setup=_setup_events,
        evaluate=_edit_evaluate,
        expert=_edit_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarAddOneEventTomorrow",
        apps=(CALENDAR,),
        goal=(
            "In Simple Calendar Pro, create a one-hour calendar event for tomorrow at {hour}h with the title '{title}'."
        ),
        difficulty="medium",
        kind="operation",
        params=_add_params("tomorrow", False),
        setup=_setup_events,
        evaluate=_add_evaluate,
        expert=_add_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarAddOneEventRelativeDay",
        apps=(CALENDAR,),
        goal="In Simple Calendar Pro, create a one-hour event titled '{title}' for the coming {weekday} at {hour}h.",
        difficulty="medium",
        kind="operation",
        params=_add_params("weekday", False),
        setup=_setup_events,
        evaluate=_add_evaluate,
        expert=_add_expert,
    ),
    TaskTemplate(
        name="SimpleCalendarAddOneEvent",
        apps=(CALENDAR,),
        goal=(
            "In Simple Calendar Pro, create a calendar event on {date_iso} at {hour}h with the title '{title}'"
            " and the description '{description}'. The event should last for {duration} mins."
        ),
        difficulty="hard",
        kind="operation",
        params=_add_params("date", True),
        setup=_setup_events,
        evaluate=_add_evaluate,
        expert=_add_expert,
    ),
]
