"""Task templates for Google Clock (com.google.android.deskclock), named after android_world's Clock* tasks.

Alarms, timers, the stopwatch and world-clock cities are read from the app's databases/alarms.db.
"""

from __future__ import annotations

import random
import re

from droidrl.envs.actions import Action, Back, Finish, Launch, Type
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiNode, UiView
from droidrl.envs.tasks.state import app_db, query_db, write_db

CLOCK = "com.google.android.deskclock"
DB = app_db(CLOCK, "alarms.db")
RINGTONE = "content://settings/system/alarm_alert"
STOCK_ALARMS = [(7, 0), (8, 30)]  # a fresh install's alarms (7:00 weekdays on, 8:30 off)
LABELS = ["Gym", "Meds", "Standup", "Call mom", "Laundry", "Bus", "Yoga", "Feed the cat"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]  # bit i = 1 << i
CITIES = ["Amsterdam", "Bangalore", "Beijing", "Berlin", "Chicago", "Dubai", "London", "Los Angeles"]
CITIES += ["Mexico City", "Moscow", "New York", "Paris", "Singapore", "Sydney", "Tokyo", "Zurich"]


# ---- parameters and formatting -------------------------------------------------------------------


def _time_12h(hour: int, minutes: int) -> str:
    """How a person writes a time: "6:45 AM", "9:05 PM"."""
    return f"{(hour % 12) or 12}:{minutes:02d} {'AM' if hour < 12 else 'PM'}"


def _time_24h(hour: int, minutes: int) -> str:
    """How the app shows a time on the emulator's 24-hour clock: "06:45"."""
    return f"{hour:02d}:{minutes:02d}"


def _new_time(rng: random.Random, taken: list[tuple[int, int]]) -> tuple[int, int]:
    while True:
        hour, minutes = rng.randint(5, 22), rng.choice([0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55])
        if (hour, minutes) not in taken:
            return hour, minutes


def _parse_time(text: str | None) -> tuple[int, int] | None:
    """(hour, minutes) from "6:45", "06:45", "6:45 PM", "18:45"; None if the answer holds no single time."""
    found = re.findall(r"(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?", (text or "").lower())
    if len(found) != 1:
        return None
    hour, minutes, half = int(found[0][0]), int(found[0][1]), found[0][2]
    if half.startswith("p") and hour < 12:
        hour += 12
    elif half.startswith("a") and hour == 12:
        hour = 0
    return hour, minutes


# ---- database ------------------------------------------------------------------------------------


def _alarms(device: Device) -> list[tuple[int, int, int, int, str]]:
    """(hour, minutes, enabled, daysofweek, label) of every alarm, by time."""
    sql = "SELECT hour, minutes, enabled, daysofweek, label FROM alarm_templates ORDER BY hour, minutes, _id"
    return [tuple(row) for row in query_db(device, DB, sql)]


def _insert_alarms(device: Device, alarms: list[tuple[int, int, int, str]]) -> None:
    """Add (hour, minutes, enabled, label) one-time alarms."""
    sql = (
        "INSERT INTO alarm_templates (hour, minutes, enabled, daysofweek, vibrate, label, ringtone)"
        " VALUES (?, ?, ?, 0, 1, ?, ?)"
    )
    write_db(device, DB, [(sql, (*alarm, RINGTONE)) for alarm in alarms], CLOCK)


def _stock_alarms_intact(device: Device) -> bool:
    alarms = {(h, m): (enabled, days) for h, m, enabled, days, _ in _alarms(device)}
    return alarms.get((7, 0)) == (1, 0b0011111) and alarms.get((8, 30)) == (0, 0)


# ---- expert helpers ------------------------------------------------------------------------------


def _tab(view: UiView, key: str) -> Action | None:
    """Launch Clock and select tab `key` (alarm, clock, timer, stopwatch); None when it is showing."""
    if view.app != CLOCK:
        return Launch("Clock")
    if view.has(rid="search_src_text"):
        return Back()  # the Cities page, over the tabs
    tab = view.find(rid=f"tab_menu_{key}")
    if tab is None:  # the keyboard covers the tab bar while a dialog's field is focused
        return None if view.keyboard_open else Back()
    return None if tab.selected else view.tap(tab)


def _inside(node: UiNode, box: UiNode) -> bool:
    left, top, right, bottom = box.bounds
    x, y = node.center
    return left <= x < right and top <= y < bottom


def _alarm_card(view: UiView, hour: int, minutes: int) -> UiNode | None:
    """The alarm card showing this time (its content-desc starts with the time)."""
    for card in view.find_all(rid="alarm_item"):
        if card.desc.startswith(_time_24h(hour, minutes) + " "):
            return card
    return None


def _fill(view: UiView, rid: str, value: str) -> Action | None:
    """Focus the field `rid` and type `value`; None once the field shows it.

    The time picker shows its starting value as the hint of an empty field and keeps it on OK, so a
    field that shows `value` is right whether it was typed or not.
    """
    field = view.find(rid=rid)
    if field is None:
        return Back()
    if field.text == value:
        return None
    focused = view.focused_field()
    if focused is None or focused.rid != field.rid:
        return view.tap(field)
    return Type(value)


# ---- stopwatch -----------------------------------------------------------------------------------


def _stopwatch_state(device: Device) -> str:
    rows = query_db(device, DB, "SELECT state FROM stopwatch")
    return rows[0][0] if rows else ""


def _stopwatch_running_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_stopwatch_state(device) == "running")


def _stopwatch_expert(goal_state: str):
    def expert(device: Device, params: Params) -> Action:
        if _stopwatch_state(device) == goal_state:
            return Finish()
        view = UiView.of(device)
        step = _tab(view, "stopwatch")
        if step is not None:
            return step
        return view.tap(view.find(rid="fab"))

    return expert


def _paused_params(rng: random.Random) -> Params:
    return {"elapsed_ms": rng.randint(5, 3600) * 1000 + rng.randint(0, 99) * 10}


def _paused_setup(device: Device, params: Params) -> None:
    now_ms = int(device.shell("date +%s").strip()) * 1000
    sql = "UPDATE stopwatch SET state = 'running', accumulated_ms = 0, start_ms = ?"
    write_db(device, DB, [(sql, (now_ms - params["elapsed_ms"],))], CLOCK)


def _paused_evaluate(device: Device, params: Params, answer: str | None) -> float:
    rows = query_db(device, DB, "SELECT state, accumulated_ms FROM stopwatch")
    return float(bool(rows) and rows[0][0] == "paused" and rows[0][1] >= params["elapsed_ms"])


# ---- timers --------------------------------------------------------------------------------------


def _timer_entry_params(rng: random.Random) -> Params:
    hours = rng.choice([0, 0, 0, 1, 2])
    minutes = rng.randint(1, 59)
    seconds = rng.choice([0, 0, 15, 30, 45, rng.randint(1, 59)])
    digits = str(hours * 10000 + minutes * 100 + seconds)
    return {"hours": hours, "minutes": minutes, "seconds": seconds, "digits": digits}


def _timer_display(params: Params) -> str:
    return f"{params['hours']:02d}h {params['minutes']:02d}m {params['seconds']:02d}s"


def _timer_entry_evaluate(device: Device, params: Params, answer: str | None) -> float:
    """As android_world's ClockTimerEntry: the keypad shows the duration, and no timer was started."""
    view = UiView.of(device)
    shown = view.find(rid="timer_setup_time")
    started = query_db(device, DB, "SELECT count(*) FROM timers") != [(0,)]
    return float(view.app == CLOCK and shown is not None and shown.text == _timer_display(params) and not started)


def _press_digits(view: UiView, digits: str) -> Action | None:
    """The next keypad key (or Delete) that brings the display to `digits`; None once it shows them."""
    shown = view.find(rid="timer_setup_time")
    if shown is None:
        return Back()
    typed = re.sub(r"\D", "", shown.text).lstrip("0")
    if typed == digits:
        return None
    if not digits.startswith(typed):
        return view.tap(view.find(rid="timer_setup_delete"))
    return view.tap(view.find(rid=f"timer_setup_digit_{digits[len(typed)]}"))


def _timer_entry_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    step = _tab(view, "timer")
    if step is not None:
        return step
    step = _press_digits(view, params["digits"])
    return step if step is not None else Finish()


def _timer_start_params(rng: random.Random) -> Params:
    minutes = rng.choice([2, 3, 5, 8, 10, 12, 15, 20, 25, 30, 45, 90])
    return {"minutes": minutes, "digits": f"{minutes // 60 * 10000 + minutes % 60 * 100}"}


def _timer_started(device: Device, params: Params) -> bool:
    rows = query_db(device, DB, "SELECT length_ms, state FROM timers")
    return rows == [(params["minutes"] * 60_000, "running")]


def _timer_start_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_timer_started(device, params))


def _timer_start_expert(device: Device, params: Params) -> Action:
    if _timer_started(device, params):
        return Finish()
    view = UiView.of(device)
    step = _tab(view, "timer")
    if step is not None:
        return step
    step = _press_digits(view, params["digits"])
    return step if step is not None else view.tap(view.find(desc="Start"))


# ---- alarms --------------------------------------------------------------------------------------


def _alarm_add_params(rng: random.Random) -> Params:
    hour, minutes = _new_time(rng, STOCK_ALARMS)
    day = rng.randrange(7)
    return {
        "hour": hour,
        "minutes": minutes,
        "time": _time_12h(hour, minutes),
        "label": rng.choice(LABELS),
        "day_index": day,
        "day": DAYS[day],
    }


def _new_alarm(device: Device, params: Params) -> tuple[int, int, int, int, str] | None:
    """The alarm at the task's time, if there is exactly one and the stock alarms are still there."""
    found = [a for a in _alarms(device) if a[:2] == (params["hour"], params["minutes"])]
    if len(found) != 1 or len(_alarms(device)) != 3 or not _stock_alarms_intact(device):
        return None
    return found[0]


def _alarm_add_evaluate(full: bool):
    def evaluate(device: Device, params: Params, answer: str | None) -> float:
        alarm = _new_alarm(device, params)
        if alarm is None or alarm[2] != 1:
            return 0.0
        if full:
            return float(alarm[3] == 1 << params["day_index"] and alarm[4] == params["label"])
        return 1.0

    return evaluate


def _picker_step(view: UiView, params: Params) -> Action:
    """In the Enter time dialog: type the hour and minutes (24-hour), then OK."""
    for rid, value in (
        ("material_hour_text_input", f"{params['hour']:02d}"),
        ("material_minute_text_input", f"{params['minutes']:02d}"),
    ):
        step = _fill(view, rid, value)
        if step is not None:
            return step
    return view.tap(view.find(rid="material_timepicker_ok_button"))


def _alarm_add_expert(full: bool):
    def expert(device: Device, params: Params) -> Action:
        alarm = _new_alarm(device, params)
        view = UiView.of(device)
        if alarm is None:
            step = _tab(view, "alarm")
            if step is not None:
                return step
            if view.has(text="Enter time"):
                return _picker_step(view, params)
            return view.tap(view.find(desc="Add alarm"))
        if not full:
            return Finish()
        return _alarm_details_step(device, view, params, alarm)

    return expert


def _alarm_details_step(device: Device, view: UiView, params: Params, alarm: tuple) -> Action:
    """Set the new alarm's repeat day and label on its expanded card."""
    _, _, _, days, label = alarm
    if days == 1 << params["day_index"] and label == params["label"]:
        return Finish()
    step = _tab(view, "alarm")
    if step is not None:
        return step
    if view.has(text="Label", rid="alertTitle"):
        step = _fill(view, "label_input_field", params["label"])
        return step if step is not None else view.tap(view.find(text="OK"))
    card = _alarm_card(view, params["hour"], params["minutes"])
    if card is None:
        return view.scroll_down()
    chip = view.find(rid=f"day_button_{params['day_index']}")
    if chip is None or chip.bounds[1] < card.bounds[1]:  # collapsed, or another card is expanded
        return view.tap(card)
    if days != 1 << params["day_index"]:
        return view.tap(chip)
    label_row = view.find(rid="edit_label")
    return view.tap(label_row) if label_row is not None else view.scroll_down()


def _existing_params(rng: random.Random) -> Params:
    first = _new_time(rng, STOCK_ALARMS)
    second = _new_time(rng, [*STOCK_ALARMS, first])
    labels = rng.sample(LABELS, 2)
    return {
        "hour": first[0],
        "minutes": first[1],
        "time": _time_12h(*first),
        "label": labels[0],
        "other": [second[0], second[1], labels[1]],
    }


def _existing_setup(device: Device, params: Params) -> None:
    other_hour, other_minutes, other_label = params["other"]
    alarms = [(params["hour"], params["minutes"], 1, params["label"]), (other_hour, other_minutes, 1, other_label)]
    _insert_alarms(device, alarms)


def _target_alarm(device: Device, params: Params) -> list[tuple]:
    return [a for a in _alarms(device) if a[:2] == (params["hour"], params["minutes"])]


def _others_intact(device: Device, params: Params) -> bool:
    other_hour, other_minutes, other_label = params["other"]
    others = [a for a in _alarms(device) if a[:2] == (other_hour, other_minutes)]
    return others == [(other_hour, other_minutes, 1, 0, other_label)] and _stock_alarms_intact(device)


def _disable_evaluate(device: Device, params: Params, answer: str | None) -> float:
    target = _target_alarm(device, params)
    off = target == [(params["hour"], params["minutes"], 0, 0, params["label"])]
    return float(off and _others_intact(device, params))


def _disable_expert(device: Device, params: Params) -> Action:
    target = _target_alarm(device, params)
    if not target or target[0][2] == 0:
        return Finish()
    view = UiView.of(device)
    step = _tab(view, "alarm")
    if step is not None:
        return step
    card = _alarm_card(view, params["hour"], params["minutes"])
    if card is None:
        return view.scroll_down()
    switch = next(node for node in view.find_all(rid="onoff") if _inside(node, card))
    return view.tap(switch)


def _delete_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(not _target_alarm(device, params) and _others_intact(device, params))


def _delete_expert(device: Device, params: Params) -> Action:
    if not _target_alarm(device, params):
        return Finish()
    view = UiView.of(device)
    step = _tab(view, "alarm")
    if step is not None:
        return step
    card = _alarm_card(view, params["hour"], params["minutes"])
    if card is None:
        return view.scroll_down()
    delete = view.find(rid="delete")
    if delete is not None and delete.bounds[1] > card.bounds[1]:
        # The expanded card's Delete comes before the next card.
        below = [c for c in view.find_all(rid="alarm_item") if c.bounds[1] > card.bounds[1]]
        if not below or delete.bounds[1] < below[0].bounds[1]:
            return view.tap(delete)
    return view.tap(card)


# ---- world clock ---------------------------------------------------------------------------------


def _city_params(rng: random.Random) -> Params:
    return {"city": rng.choice(CITIES)}


def _cities(device: Device) -> list[str]:
    return [row[0] for row in query_db(device, DB, "SELECT name FROM cities ORDER BY name")]


def _city_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_cities(device) == [params["city"]])


def _city_expert(device: Device, params: Params) -> Action:
    if params["city"] in _cities(device):
        return Finish()
    view = UiView.of(device)
    if view.app == CLOCK and view.has(rid="search_src_text"):  # CitySelectionActivity
        search = view.find(rid="search_src_text")
        if search.text != params["city"]:
            focused = view.focused_field()
            return Type(params["city"]) if focused is not None else view.tap(search)
        return view.tap(view.find(text=params["city"], rid="city_name"))
    step = _tab(view, "clock")
    return step if step is not None else view.tap(view.find(desc="Cities"))


# ---- query ---------------------------------------------------------------------------------------


def _earliest_params(rng: random.Random) -> Params:
    taken = list(STOCK_ALARMS)
    alarms = []
    for enabled in (1, 1, 0):
        hour, minutes = _new_time(rng, taken)
        taken.append((hour, minutes))
        alarms.append([hour, minutes, enabled, rng.choice(LABELS)])
    return {"alarms": alarms}


def _earliest_setup(device: Device, params: Params) -> None:
    _insert_alarms(device, [tuple(alarm) for alarm in params["alarms"]])


def _earliest_evaluate(device: Device, params: Params, answer: str | None) -> float:
    enabled = [a[:2] for a in _alarms(device) if a[2] == 1]
    return float(bool(enabled) and _parse_time(answer) == min(enabled))


def _earliest_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    step = _tab(view, "alarm")
    if step is not None:
        return step
    for card in view.find_all(rid="alarm_item"):  # cards are in time order
        switch = next((node for node in view.find_all(rid="onoff") if _inside(node, card)), None)
        if switch is not None and switch.checked:
            return Finish(card.desc.split()[0])
    return view.scroll_down()


TEMPLATES = [
    TaskTemplate(
        name="ClockStopWatchRunning",
        apps=(CLOCK,),
        goal="Run the stopwatch.",
        difficulty="easy",
        kind="operation",
        evaluate=_stopwatch_running_evaluate,
        expert=_stopwatch_expert("running"),
    ),
    TaskTemplate(
        name="ClockStopWatchPausedVerify",
        apps=(CLOCK,),
        goal="Pause the stopwatch.",
        difficulty="easy",
        kind="operation",
        params=_paused_params,
        setup=_paused_setup,
        evaluate=_paused_evaluate,
        expert=_stopwatch_expert("paused"),
    ),
    TaskTemplate(
        name="ClockTimerEntry",
        apps=(CLOCK,),
        goal="Create a timer with {hours} hours, {minutes} minutes, and {seconds} seconds. Do not start the timer.",
        difficulty="medium",
        kind="operation",
        params=_timer_entry_params,
        evaluate=_timer_entry_evaluate,
        expert=_timer_entry_expert,
    ),
    TaskTemplate(
        name="ClockTimerStart",
        apps=(CLOCK,),
        goal="Start a {minutes}-minute timer.",
        difficulty="medium",
        kind="operation",
        params=_timer_start_params,
        evaluate=_timer_start_evaluate,
        expert=_timer_start_expert,
    ),
    TaskTemplate(
        name="ClockAlarmAdd",
        apps=(CLOCK,),
        goal="Set an alarm for {time}.",
        difficulty="medium",
        kind="operation",
        params=_alarm_add_params,
        evaluate=_alarm_add_evaluate(False),
        expert=_alarm_add_expert(False),
    ),
    TaskTemplate(
        name="ClockAlarmAddRepeatLabel",
        apps=(CLOCK,),
        goal="Set an alarm for {time} that repeats every {day}, with the label '{label}'.",
        difficulty="hard",
        kind="operation",
        params=_alarm_add_params,
        evaluate=_alarm_add_evaluate(True),
        expert=_alarm_add_expert(True),
    ),
    TaskTemplate(
        name="ClockAlarmDisable",
        apps=(CLOCK,),
        goal="Turn off the {time} alarm.",
        difficulty="easy",
        kind="operation",
        params=_existing_params,
        setup=_existing_setup,
        evaluate=_disable_evaluate,
        expert=_disable_expert,
    ),
    TaskTemplate(
        name="ClockAlarmDelete",
        apps=(CLOCK,),
        goal="Delete the {time} alarm labeled '{label}'.",
        difficulty="easy",
        kind="operation",
        params=_existing_params,
        setup=_existing_setup,
        evaluate=_delete_evaluate,
        expert=_delete_expert,
    ),
    TaskTemplate(
        name="ClockAddCity",
        apps=(CLOCK,),
        goal="Add {city} to the world clock.",
        difficulty="medium",
        kind="operation",
        params=_city_params,
        evaluate=_city_evaluate,
        expert=_city_expert,
    ),
    TaskTemplate(
        name="ClockEarliestAlarmQuery",
        apps=(CLOCK,),
        goal="At what time does the earliest alarm that is turned on ring?",
        difficulty="easy",
        kind="query",
        params=_earliest_params,
        setup=_earliest_setup,
        evaluate=_earliest_evaluate,
        expert=_earliest_expert,
    ),
]
