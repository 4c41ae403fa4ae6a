"""Experts for android_world's tasks: from a task instance (class name + params) to UI actions that reach its goal.

android_world is not imported here: an expert needs only the task's registry name and its `params` dict (the
android_world objects in it, such as `Expense` or `CalendarEvent` rows, are read by attribute). Most experts
reuse the droidrl template that mirrors the task (`envs/tasks/*.py`), with android_world's params mapped onto
the template's; the rest are written here. Experts read the screen (`UiView`) and the device as checkers do,
and act only through the returned `Action`; query tasks end with `Finish(answer)`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from droidrl.envs.actions import Action, Back, Finish, Launch
from droidrl.envs.device import Device
from droidrl.envs.tasks.registry import get_template
from droidrl.envs.tasks.screen import UiView

Step = Callable[[Device], Action]
Builder = Callable[[Mapping[str, Any]], Step]

SETTINGS = "com.android.settings"
CONTACTS = "com.google.android.contacts"
FILES = "com.google.android.documentsui"


# ---- composing ------------------------------------------------------------------------------------------------
def _template(name: str, params: Mapping[str, Any] | Callable[[Device], Mapping[str, Any]]) -> Step:
    """The droidrl template `name`'s expert with the given params (or params computed once from the device)."""
    template = get_template(name)
    cache: dict[str, Mapping[str, Any]] = {}

    def step(device: Device) -> Action:
        if "params" not in cache:
            cache["params"] = params(device) if callable(params) else params
        return template.expert(device, dict(cache["params"]))

    return step


def _in_order(*steps: Step) -> Step:
    """Each step's expert until it finishes, then the next; the last one's Finish ends the whole."""

    def step(device: Device) -> Action:
        for sub in steps:
            action = sub(device)
            if not isinstance(action, Finish):
                return action
        return Finish()

    return step


def _launch_then_finish(package: str, app_label: str) -> Step:
    def step(device: Device) -> Action:
        return Finish() if device.current_app() == package else Launch(app_label)

    return step


# ---- settings: Wi-Fi, Bluetooth, brightness, opening apps ------------------------------------------------------
def _setting(device: Device, namespace: str, key: str) -> str:
    return device.shell(f"settings get {namespace} {key}").strip()


def _bluetooth_step(on: bool) -> Step:
    """Settings > Connected devices > Connection preferences > Bluetooth, then its main switch."""
    want = "1" if on else "0"

    def step(device: Device) -> Action:
        if _setting(device, "global", "bluetooth_on") == want:
            return Finish()
        view = UiView.of(device)
        if view.app != SETTINGS:
            return Launch("Settings")
        bar = view.find(text="Use Bluetooth")
        if bar is not None:
            switch = view.find(rid="android:id/switch_widget") or bar
            return view.tap(switch)
        for title in ("Bluetooth", "Connection preferences", "Connected devices"):
            node = view.find(text=title, rid="android:id/title")
            if node is not None:
                return view.tap(node)
        return Back()

    return step


# ---- the table: android_world task name -> builder from its params ---------------------------------------------
def _wifi(on: bool) -> Builder:
    return lambda p: _template("SystemWifiTurnOn" if on else "SystemWifiTurnOff", {})


def _brightness(to_max: bool) -> Builder:
    return lambda p: _template("SystemBrightnessMax" if to_max else "SystemBrightnessMin", {"start": 128})


def _open_app(p: Mapping[str, Any]) -> Step:
    from droidrl.envs.actions import resolve_app

    package = resolve_app(p["app_name"]) or p["app_name"]
    return _launch_then_finish(package, p["app_name"])


def _timer_entry(p: Mapping[str, Any]) -> Step:
    digits = str(p["hours"] * 10000 + p["minutes"] * 100 + p["seconds"])
    return _template("ClockTimerEntry", {**p, "digits": digits})


def _contacts_add(p: Mapping[str, Any]) -> Step:
    first, _, last = p["name"].partition(" ")
    return _template(
        "ContactsAddContact", {"first": first, "last": last, "name": p["name"], "phone": p["number"], "people": []}
    )


def _contact_draft(p: Mapping[str, Any]) -> Step:
    """Open the new-contact editor, fill first/last name and phone, set the phone type; do not save."""
    fields = (("first_name", p["first"]), ("last_name", p["last"]), ("phone", p["phone"]))
    label = p["phone_label"]

    def step(device: Device) -> Action:
        view = UiView.of(device)
        if view.app != CONTACTS:
            return Launch("Contacts")
        chooser = view.find(text=label, rid="android:id/title")  # the phone-type list is open
        if chooser is not None:
            return view.tap(chooser)
        if not view.has(rid="first_name"):
            create = view.find(desc="Create contact")
            return view.tap(create) if create is not None else Back()
        for rid, value in fields:
            action = view.fill(rid, value)
            if action is not None:
                return action
        spinner = view.find(rid="spinner_text")
        if spinner is not None and spinner.text != label:
            return view.tap(spinner)
        return Finish()

    return step


def _expense_row(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "amount": row.amount,
        "category": row.category,
        "note": row.note,
        "created": row.created_date,
        "modified": row.modified_date,
    }


def _expense_add(p: Mapping[str, Any]) -> Step:
    targets = [_expense_row(r) for r in p["row_objects"]]
    return _template("ExpenseAddMultiple", {"noise": [], "targets": targets})


def _expense_delete(p: Mapping[str, Any]) -> Step:
    rows = [_expense_row(r) for r in p["row_objects"]]
    names = [r.name for r in p["row_objects"]][: len(p.get("expenses_to_delete", p["row_objects"]))]
    if "expenses_to_delete" in p:
        names = [r.name for r in p["expenses_to_delete"]]
    return _template("ExpenseDeleteMultiple", {"rows": rows, "names": names, "name": names[0]})


def _expense_delete_each(p: Mapping[str, Any]) -> Step:
    """One expense at a time (the long lists of ExpenseDeleteMultiple2 never show all targets at once)."""
    names = [r.name for r in p["row_objects"]]
    return _in_order(*[_template("ExpenseDeleteSingle", {"name": name}) for name in names])


def _expense_duplicates(p: Mapping[str, Any]) -> Step:
    """Delete copies of the duplicated expense, telling it from same-named ones by the amount on screen."""
    from droidrl.envs.sim.apps.expense import money
    from droidrl.envs.tasks import expense

    target = _expense_row(p["row_objects"][0])
    amount = money(target["amount"])

    def step(device: Device) -> Action:
        if sum(expense._key(r) == expense._key(target) for r in expense._stored(device)) <= 1:
            return Finish()
        view = UiView.of(device)
        title = expense._dialog_title(view)
        if title == "Delete Items":
            return view.tap(view.find(rid="android:id/button1"))
        if title == "Expense Detail":
            name, shown = view.find(rid="tv_name_value"), view.find(rid="tv_amount_value")
            same = name is not None and shown is not None and (name.text, shown.text) == (target["name"], amount)
            return view.tap(view.find(rid="btn_delete")) if same else Back()
        to_logs = expense._to_logs(view)
        if to_logs is not None:
            return to_logs
        for row in view.find_all(rid="cd_expense"):
            texts = {n.text for n in view.nodes if n.visible and _within(n.bounds, row.bounds)}
            if {target["name"], amount} <= texts and expense._tappable(view, row):
                return view.tap(row)
        return view.scroll_down()

    return step


def _within(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


# ---- Simple Calendar Pro ----------------------------------------------------------------------------------------
def _event(row: Any) -> dict[str, Any]:
    return {
        "title": row.title,
        "start": row.start_ts,
        "end": row.end_ts,
        "location": row.location,
        "description": row.description,
    }


def _stored_events(device: Device) -> list[dict[str, Any]]:
    from droidrl.envs.tasks import calendar

    keys = ("start", "end", "title", "location", "description")
    return [dict(zip(keys, row, strict=True)) for row in calendar._rows(device)]


def _day_ordinal(p: Mapping[str, Any]) -> int:
    return dt.date(p["year"], p["month"], p["day"]).toordinal()


def _calendar_add(p: Mapping[str, Any]) -> Step:
    goal = _event(p["row_objects"][0])

    def params(device: Device) -> dict[str, Any]:
        return {"day": _day_ordinal(p), "events": _stored_events(device), "goal": goal}

    return _template("SimpleCalendarAddOneEvent", params)


def _calendar_repeating(p: Mapping[str, Any]) -> Step:
    """As adding one event, choosing the Repeat row's interval in the editor before saving."""
    labels = {86400: "Daily", 604800: "Weekly", 2592000: "Monthly", 31536000: "Yearly"}
    wanted = labels[p["row_objects"][0].repeat_interval]
    add = _calendar_add(p)

    def step(device: Device) -> Action:
        view = UiView.of(device)
        repeat = view.find(rid="event_repetition")
        choice = view.find(text=wanted, rid="android:id/title")
        if choice is not None and view.has(rid="event_title"):  # the Repeat list is open
            return view.tap(choice)
        if repeat is not None and repeat.text != wanted:
            return view.tap(repeat)
        return add(device)

    return step


def _calendar_delete(p: Mapping[str, Any]) -> Step:
    doomed = [_event(r) for r in p["row_objects"]]

    def params(device: Device) -> dict[str, Any]:
        keep = [e for e in _stored_events(device) if not any(_same_event(e, d) for d in doomed)]
        titles = [d["title"] for d in doomed]
        return {"day": _day_ordinal(p), "keep": keep, "titles": titles, "title": titles[0]}

    return _template("SimpleCalendarDeleteEventsOnDay", params)


# Simple Calendar Pro's query tasks: read the day views, answer from what they show.
Reading = dict[dt.date, list[tuple[str, int, int]]]  # day -> (title, start minute, end minute) as listed
TODAY = dt.date(2023, 10, 15)  # android_world's frozen date (device_constants.DT); the phone shows it too
NOW_MINUTE = 15 * 60 + 34


def _minutes(text: str) -> int:
    """'8:00pm', '8pm', '11:00am', '22:35' -> minutes after midnight."""
    text = text.strip().lower().replace(" ", "")
    suffix = text[-2:] if text[-2:] in ("am", "pm") else ""
    hour, _, minute = text.removesuffix(suffix).partition(":")
    hours = int(hour) % 12 + (12 if suffix == "pm" else 0) if suffix else int(hour)
    return hours * 60 + int(minute or 0)


def _date(text: str) -> dt.date:
    """A date as android_world's IR goals word it, seen from TODAY.

    datetime_utils._generate_nl_date_options: 'October 24 2023', 'October 24', 'today', 'tomorrow', 'yesterday',
    'Friday' / 'this Friday' (taken as the next one, within a week), 'the Friday after next' (8-14 days ahead).
    """
    text = " ".join(text.split())
    relative = {"today": 0, "tomorrow": 1, "yesterday": -1}
    if text.lower() in relative:
        return TODAY + dt.timedelta(days=relative[text.lower()])
    for pattern in ("%B %d %Y", "%B %d"):
        try:
            parsed = dt.datetime.strptime(text, pattern).date()
            return parsed if pattern.endswith("%Y") else parsed.replace(year=TODAY.year)
        except ValueError:
            pass
    words = text.lower().removeprefix("this ").removeprefix("the ").split()
    weekday = [d.lower() for d in WEEKDAYS].index(words[0])
    ahead = (weekday - TODAY.weekday() - 1) % 7 + 1  # 1..7 days ahead
    return TODAY + dt.timedelta(days=ahead + (7 if words[1:] == ["after", "next"] else 0))


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _day_rows(view: UiView) -> list[tuple[str, int, int]]:
    """(title, start, end) of the events a daily view lists, in order."""
    rows, title = [], None
    for node in view.nodes:
        if node.rid.endswith(":id/event_item_title"):
            title = node.text
        elif node.rid.endswith(":id/event_item_time") and title is not None:
            start, _, end = node.text.partition(" - ")
            rows.append((title, _minutes(start), _minutes(end or start)))
            title = None
    return rows


def _calendar_read(days: list[dt.date], answer: Callable[[Reading], str | None]) -> Step:
    """Open each day's view in turn and note its events; finish with answer(reading) once it is not None."""
    from droidrl.envs.tasks import calendar

    reading: Reading = {}

    def step(device: Device) -> Action:
        for day in days:
            if day in reading:
                continue
            view = UiView.of(device)
            move = calendar._go_to_day(view, day)
            if move is not None:
                return move
            reading[day] = _day_rows(view)
            found = answer(reading)
            if found is not None:
                return Finish(found)
        return Finish(answer(reading) or "")

    return step


def _titles(rows: list[tuple[str, int, int]]) -> str:
    return ", ".join(title for title, _, _ in rows)


def _first(rows: list[tuple[str, int, int]]) -> str:
    earliest = min((start for _, start, _ in rows), default=None)
    return _titles([r for r in rows if r[1] == earliest])


def _only_when_complete(days: list[dt.date], answer: Callable[[Reading], str]) -> Callable[[Reading], str | None]:
    return lambda reading: answer(reading) if all(d in reading for d in days) else None


def _calendar_on_date(p: Mapping[str, Any], keep: Callable[[tuple[str, int, int]], bool], pick=_titles) -> Step:
    day = _date(p["date"])
    return _calendar_read([day], lambda r: pick([row for row in r[day] if keep(row)]))


def _calendar_next_event(p: Mapping[str, Any]) -> Step:
    return _calendar_read([TODAY], lambda r: _first([row for row in r[TODAY] if row[1] >= NOW_MINUTE - 4]))


def _calendar_next_meeting(p: Mapping[str, Any]) -> Step:
    days = [TODAY + dt.timedelta(days=i) for i in range(60)]

    def answer(reading: Reading) -> str | None:
        for day in sorted(reading):
            for title, start, _ in reading[day]:
                if p["person"].lower() in title.lower() and (day > TODAY or start >= NOW_MINUTE):
                    return f"{day.strftime('%B')} {day.day} {day.year} {start // 60:02d}:{start % 60:02d}"
        return None

    return _calendar_read(days, answer)


def _calendar_next_week(p: Mapping[str, Any]) -> Step:
    days = [TODAY + dt.timedelta(days=i) for i in range(8)]  # android_world: October 15 to 22 inclusive
    return _calendar_read(days, _only_when_complete(days, lambda r: _titles([x for d in days for x in r[d]])))


def _calendar_location(p: Mapping[str, Any]) -> Step:
    """Open the event on its day and read its location field."""
    from droidrl.envs.tasks import calendar

    day, title = _date(p["date"]), p["title"]

    def step(device: Device) -> Action:
        view = UiView.of(device)
        location = view.find(rid="event_location")
        if location is not None and view.find(rid="event_title") is not None:
            return Finish(location.text)
        move = calendar._go_to_day(view, day)
        if move is not None:
            return move
        node = next((n for n in view.find_all(rid="event_item_title") if title.lower() in n.text.lower()), None)
        return view.tap(node) if node is not None else view.scroll_down()

    return step


def _same_event(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (a["title"], a["start"], a["end"]) == (b["title"], b["start"], b["end"])


# ---- Files ---------------------------------------------------------------------------------------------------------
def _reveal(package: str, root: str, title_rid: str, folder: str, file_name: str, inner: Step) -> Step:
    """Scroll a file list showing `folder` until `file_name` shows (android_world adds many noise files)."""
    from droidrl.envs.tasks import files

    def step(device: Device) -> Action:
        view = UiView.of(device)
        hidden = (
            view.app == package
            and files.toolbar_title(view) == folder
            and not files.selected_titles(view, title_rid)
            and not view.has(text=file_name, rid=title_rid)
        )
        if hidden and file_name in files.list_dir(device, f"{root}/{folder}"):
            return view.scroll_down()
        return inner(device)

    return step


def _files_reveal(folder: str, file_name: str, inner: Step) -> Step:
    from droidrl.envs.tasks.files import STORAGE

    return _reveal(FILES, STORAGE, "android:id/title", folder, file_name, inner)


def _files_delete(p: Mapping[str, Any]) -> Step:
    inner = _template("FilesDeleteFile", {"folder": p["subfolder"], "file_name": p["file_name"]})
    return _files_reveal(p["subfolder"], p["file_name"], inner)


def _files_move(p: Mapping[str, Any]) -> Step:
    from droidrl.envs.tasks.files import STORAGE
    from droidrl.envs.tasks.state import read_text

    source = f"{STORAGE}/{p['source_folder']}/{p['file_name']}"

    def params(device: Device) -> dict[str, Any]:
        files = {source: read_text(device, source)}
        return {
            "folder": p["source_folder"],
            "file_name": p["file_name"],
            "destination": p["destination_folder"],
            "files": files,
        }

    return _files_reveal(p["source_folder"], p["file_name"], _template("FilesMoveFile", params))


# ---- Simple SMS Messenger ---------------------------------------------------------------------------------------
def _sms_send(number: str, body: str, name: str = "", paste: bool = False) -> Step:
    """Send `body` once to `number` (shown as `name` when it is a contact).

    Opens or starts its thread, types the text (or pastes it, when `body` is on the clipboard), sends.
    """
    from droidrl.envs.tasks import sms

    key = sms.digits_key(number)
    baseline: dict[str, int] = {}

    def is_target(text: str) -> bool:
        return bool(text) and (text == name or sms.digits_key(text) == key)

    def step(device: Device) -> Action:
        count = sms.sent_count(device, number, body)
        baseline.setdefault("sent", count)
        if count > baseline["sent"]:
            return Finish()
        view = UiView.of(device)
        if view.app != sms.SMS:
            return Launch(sms.APP_NAME)
        if sms.in_thread(view):
            if not any(node.rid == "" and is_target(node.text) for node in view.nodes):
                return view.tap(view.find(desc="Navigate up"))
            fill = (
                _paste_step(view, "thread_type_message", body) if paste else sms.fill(view, "thread_type_message", body)
            )
            return fill if fill is not None else view.tap(view.find(rid="thread_send_message"))
        if view.has(rid="new_conversation_address"):
            fill = sms.fill(view, "new_conversation_address", number)
            return fill if fill is not None else view.tap(view.find(rid="new_conversation_confirm"))
        if sms.in_main(view):
            rows = [n for n in view.find_all(rid="conversation_address") if is_target(n.text)]
            return view.tap(rows[0]) if rows else view.tap(view.find(desc="New conversation"))
        return Back()

    return step


# ---- Markor -----------------------------------------------------------------------------------------------------
def _markor_content(name: str, content: str | Callable[[str], str]) -> Step:
    """Open note `name`, make its text `content` (or content(original text)), save and leave the editor."""
    from droidrl.envs.tasks import markor

    path = f"{markor.NOTEBOOK}/{name}"
    wanted: dict[str, str] = {}

    def step(device: Device) -> Action:
        current = markor.read_text(device, path)
        if "text" not in wanted:
            wanted["text"] = content(current or "") if callable(content) else content
        view = UiView.of(device)
        editing = view.find(rid=markor.EDITOR) is not None
        if current == wanted["text"] or current is None:
            return Back() if editing else Finish()
        return markor._start(view) or markor._edit_note(view, name, wanted["text"])

    return step


def _markor_rename(old: str, new: str) -> Step:
    """Long-press note `old`, Rename, type `new`, OK."""
    from droidrl.envs.tasks import markor

    def step(device: Device) -> Action:
        names = markor.list_dir(device, markor.NOTEBOOK)
        if new in names and old not in names:
            return Finish()
        view = UiView.of(device)
        if (start := markor._start(view)) is not None:
            return start
        field = view.find(rid="new_name")
        if field is not None:
            return markor._enter_text(view, field, new) or view.tap(markor._button(view, "OK"))
        if markor.selected_titles(view, markor.ITEM_TITLE) == [old]:
            return view.tap(view.find(desc="Rename"))
        node = markor._title(view, old)
        return view.long_press(node) if node is not None else Back()

    return step


def _markor_create(name: str, text: str) -> Step:
    return _template("MarkorCreateNote", {"file_name": name, "text": text})


def _markor_from_clipboard(name: str, text: str) -> Step:
    """A new note `name` whose text is pasted from the clipboard (long press in the editor, Paste), saved."""
    from droidrl.envs.tasks import markor

    def step(device: Device) -> Action:
        if (markor.read_text(device, f"{markor.NOTEBOOK}/{name}") or "").strip() == text:
            return Finish()
        view = UiView.of(device)
        if (start := markor._start(view)) is not None:
            return start
        if (create := markor._create_in_dialog(view, name, "OK")) is not None:
            return create
        if view.has(rid=markor.EDITOR):
            return _paste_step(view, markor.EDITOR, text) or view.tap(view.find(desc="Save"))
        return view.tap(view.find(desc=markor.FAB))

    return step


def _markor_newest(p: Mapping[str, Any]) -> Step:
    from droidrl.envs.tasks import markor

    def params(device: Device) -> dict[str, Any]:
        newest = device.shell(f"ls -t {markor.NOTEBOOK}").split()[0]
        return {"file_name": newest}

    return _template("MarkorDeleteNote", params)


def _markor_edit(p: Mapping[str, Any]) -> Step:
    kind = p["edit_type"]
    if kind == "header":
        return _markor_content(p["file_name"], lambda original: f"{p['header']}\n{original}")
    if kind == "footer":
        return _markor_content(p["file_name"], lambda original: f"{original.rstrip()}\n{p['footer']}")
    return _markor_content(p["file_name"], p["replace_text"])


def _markor_move(p: Mapping[str, Any]) -> Step:
    from droidrl.envs.tasks import markor

    source, name = p["source_folder"], p["file_name"]
    params = {"file_name": name, "source": source, "destination": p["destination_folder"]}
    return _reveal(markor.PKG, markor.NOTEBOOK, markor.ITEM_TITLE, source, name, _template("MarkorMoveNote", params))


def _markor_read_first(name: str, then: Step) -> Step:
    """Open note `name` in Markor and leave it (the transactions are read there), then run `then`."""
    from droidrl.envs.tasks import markor

    seen: dict[str, bool] = {}

    def step(device: Device) -> Action:
        if seen.get("note"):
            return then(device)
        view = UiView.of(device)
        if view.find(rid=markor.EDITOR) is not None and markor.toolbar_title(view) == name:
            seen["note"] = True
            return Back()
        start = markor._start(view)
        node = markor._title(view, name)
        return start or (view.tap(node) if node is not None else Back())

    return step


def _markor_merge(p: Mapping[str, Any]) -> Step:
    """A new note with the three contents; a name without extension is made as NAME.md, then renamed."""
    from droidrl.envs.tasks import markor

    name = p["new_file_name"]
    text = "\n\n".join(p[f"file{i}_content"] for i in (1, 2, 3))
    if "." in name:
        return _markor_create(name, text)
    draft = f"{name}.md"
    create, rename = _markor_create(draft, text), _markor_rename(draft, name)

    def step(device: Device) -> Action:
        if markor.read_text(device, f"{markor.NOTEBOOK}/{name}") == text:
            return Finish()
        if markor.read_text(device, f"{markor.NOTEBOOK}/{draft}") == text:
            view = UiView.of(device)
            return Back() if view.find(rid=markor.EDITOR) is not None else rename(device)
        return create(device)

    return step


# ---- the clipboard (the text-selection toolbar: long press, Copy / Paste) ------------------------------------
def _paste_step(view: UiView, rid: str, expected: str) -> Action | None:
    """Paste the clipboard into field `rid` (long press, then the toolbar's Paste); None once it shows `expected`."""
    field = view.find(rid=rid)
    if field is None or field.text == expected:
        return None
    paste = view.find(desc="Paste", cls="Button")
    return view.tap(paste) if paste is not None else view.long_press(field)


def _copy_to_clipboard(text: str) -> Step:
    """Type `text` into Contacts' search field, long-press it (selecting it all) and press Copy."""
    done: dict[str, bool] = {}
    rid = "open_search_view_edit_text"

    def step(device: Device) -> Action:
        if done.get("copied"):
            return Finish()
        view = UiView.of(device)
        if view.app != CONTACTS:
            return Launch("Contacts")
        copy = view.find(desc="Copy", cls="Button")
        if copy is not None:
            done["copied"] = True
            return view.tap(copy)
        field = view.find(rid=rid)
        if field is None:
            return Back()
        if field.text != text:
            return view.fill(rid, text) or Back()
        return view.long_press(field)

    return step


EXPERTS: dict[str, Builder] = {
    "SystemWifiTurnOff": _wifi(False),
    "SystemWifiTurnOffVerify": _wifi(False),
    "SystemWifiTurnOn": _wifi(True),
    "SystemWifiTurnOnVerify": _wifi(True),
    "SystemBluetoothTurnOff": lambda p: _bluetooth_step(False),
    "SystemBluetoothTurnOffVerify": lambda p: _bluetooth_step(False),
    "SystemBluetoothTurnOn": lambda p: _bluetooth_step(True),
    "SystemBluetoothTurnOnVerify": lambda p: _bluetooth_step(True),
    "SystemBrightnessMax": _brightness(True),
    "SystemBrightnessMaxVerify": _brightness(True),
    "SystemBrightnessMin": _brightness(False),
    "SystemBrightnessMinVerify": _brightness(False),
    "TurnOffWifiAndTurnOnBluetooth": lambda p: _in_order(_wifi(False)(p), _bluetooth_step(True)),
    "TurnOnWifiAndOpenApp": lambda p: _in_order(_wifi(True)(p), _open_app(p)),
    "OpenAppTaskEval": _open_app,
    "ClockStopWatchRunning": lambda p: _template("ClockStopWatchRunning", {}),
    "ClockStopWatchPausedVerify": lambda p: _template("ClockStopWatchPausedVerify", {"elapsed_ms": 0}),
    "ClockTimerEntry": _timer_entry,
    "ContactsAddContact": _contacts_add,
    "ContactsNewContactDraft": _contact_draft,
    "ExpenseAddSingle": _expense_add,
    "ExpenseAddMultiple": _expense_add,
    "ExpenseAddMultipleFromMarkor": lambda p: _markor_read_first("my_expenses.txt", _expense_add(p)),
    "ExpenseDeleteSingle": _expense_delete,
    "ExpenseDeleteMultiple": _expense_delete,
    "ExpenseDeleteMultiple2": _expense_delete_each,
    "ExpenseDeleteDuplicates": _expense_duplicates,
    "ExpenseDeleteDuplicates2": _expense_duplicates,
    "SimpleCalendarAddOneEvent": _calendar_add,
    "SimpleCalendarAddOneEventInTwoWeeks": _calendar_add,
    "SimpleCalendarAddOneEventRelativeDay": _calendar_add,
    "SimpleCalendarAddOneEventTomorrow": _calendar_add,
    "SimpleCalendarAddRepeatingEvent": _calendar_repeating,
    "SimpleCalendarDeleteOneEvent": _calendar_delete,
    "SimpleCalendarDeleteEvents": _calendar_delete,
    "SimpleCalendarDeleteEventsOnRelativeDay": _calendar_delete,
    "FilesDeleteFile": _files_delete,
    "SimpleCalendarEventsOnDate": lambda p: _calendar_on_date(p, lambda row: True),
    "SimpleCalendarAnyEventsOnDate": lambda p: _calendar_on_date(p, lambda row: True),
    "SimpleCalendarEventOnDateAtTime": lambda p: _calendar_on_date(p, lambda row: row[1] == _minutes(p["time"])),
    "SimpleCalendarFirstEventAfterStartTime": lambda p: _calendar_on_date(
        p, lambda row: row[1] >= _minutes(p["time"]), pick=_first
    ),
    "SimpleCalendarEventsInTimeRange": lambda p: _calendar_on_date(
        p, lambda row: _minutes(p["start_time"]) <= row[1] <= _minutes(p.get("end_time", "8pm"))
    ),
    "SimpleCalendarNextEvent": _calendar_next_event,
    "SimpleCalendarNextMeetingWithPerson": _calendar_next_meeting,
    "SimpleCalendarEventsInNextWeek": _calendar_next_week,
    "SimpleCalendarLocationOfEvent": _calendar_location,
    "MarkorCreateNote": lambda p: _markor_create(p["file_name"], p["text"]),
    "MarkorCreateFolder": lambda p: _template("MarkorCreateFolder", {"folder": p["folder_name"]}),
    "MarkorDeleteNote": lambda p: _template("MarkorDeleteNote", {"file_name": p["file_name"]}),
    "MarkorDeleteNewestNote": _markor_newest,
    "MarkorCreateNoteFromClipboard": lambda p: _markor_from_clipboard(p["file_name"], p["file_content"]),
    "MarkorDeleteAllNotes": lambda p: _template("MarkorDeleteAllNotes", {}),
    "MarkorEditNote": _markor_edit,
    "MarkorMergeNotes": _markor_merge,
    "MarkorMoveNote": _markor_move,
    "MarkorChangeNoteContent": lambda p: _in_order(
        _markor_content(p["original_name"], p["updated_content"]), _markor_rename(p["original_name"], p["new_name"])
    ),
    "MarkorAddNoteHeader": lambda p: _in_order(
        _markor_content(p["original_name"], f"{p['header']}\n\n{p['original_content']}\n"),
        _markor_rename(p["original_name"], p["new_name"]),
    ),
    "MarkorCreateNoteAndSms": lambda p: _in_order(
        _markor_create(p["file_name"], p["text"]), _sms_send(p["number"], p["text"])
    ),
    "SimpleSmsSendClipboardContent": lambda p: _sms_send(p["number"], p["message"], paste=True),
    "SystemCopyToClipboard": lambda p: _copy_to_clipboard(p["clipboard_content"]),
    "SimpleSmsSend": lambda p: _sms_send(p["number"], p["message"]),
    "SimpleSmsReply": lambda p: _sms_send(p["number"], p["message"]),
    "SimpleSmsReplyMostRecent": lambda p: _sms_send(p["number"], p["message"]),
    "SimpleSmsResend": lambda p: _sms_send(p["number"], p["message"], p["name"]),
    "SimpleSmsSendReceivedAddress": lambda p: _sms_send(p["number"], p["message"], p["name1"]),
    "FilesMoveFile": _files_move,
}


def _searching_both_ways(inner: Step) -> Step:
    """Turn the inner expert's scroll-downs into scroll-ups once the list stops moving (it is past its target).

    droidrl's experts scroll down until the node they want shows; after an earlier step left a long list
    scrolled, the next target may be above. A scroll that changes nothing on screen flips the direction.
    """
    state: dict[str, Any] = {"up": False, "screen": None}

    def step(device: Device) -> Action:
        action = inner(device)
        view = UiView.of(device)
        if action != view.scroll_down():
            state.update(up=False, screen=None)
            return action
        screen = device.ui_xml()
        if screen == state["screen"]:  # the last scroll moved nothing: the end of the list this way
            state["up"] = not state["up"]
        state["screen"] = screen
        return view.scroll_up() if state["up"] else action

    return step


def expert_for(task_name: str, params: Mapping[str, Any]) -> Step | None:
    """The expert for one android_world task instance, or None when there is none for this task."""
    builder = EXPERTS.get(task_name)
    return _searching_both_ways(builder(params)) if builder is not None else None
