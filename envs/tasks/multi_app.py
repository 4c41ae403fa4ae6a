"""Task templates that need two apps: read something in one (a text, a contact, an alarm) and act in another.

Experts stay stateless by deciding from the screen and the device: e.g. "on the contact's page, so the email
has been read: open Messages"; checkers read each app's own data (mmssms.db, contacts2.db, alarms.db, settings).
"""

from __future__ import annotations

import random
import re

from droidrl.envs.actions import Action, Back, Finish, Launch
from droidrl.envs.device import Device
from droidrl.envs.tasks import markor as markor_tasks
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiView
from droidrl.envs.tasks.sms import (
    CHATTER,
    CONTACTS,
    SMS,
    TYPE_INBOX,
    Message,
    background,
    digits_key,
    fill,
    in_main,
    in_thread,
    new_sent,
    send_step,
    sent_exactly,
    set_messages,
    stranger_number,
    thread_title_is,
    to_thread,
)
from droidrl.envs.tasks.state import get_setting, put_setting, query_db, read_text, write_db
from droidrl.envs.tasks.system import wifi_switch_step

CONTACTS_PKG = "com.google.android.contacts"
CONTACTS_DB = "/data/data/com.android.providers.contacts/databases/contacts2.db"
PHONE_MIME = "vnd.android.cursor.item/phone_v2"
CLOCK = "com.google.android.deskclock"
ALARMS_DB = f"/data/data/{CLOCK}/databases/alarms.db"
DEFAULT_RINGTONE = "content://settings/system/alarm_alert"
SETTINGS = "com.android.settings"
WIFI = "Wi\u2011Fi"  # Settings writes Wi-Fi with a non-breaking hyphen

# First names after the stock contacts' (A-F), so a new contact sorts below them.
FIRST_NAMES = ["Grace", "Henry", "Isabel", "Jack", "Karen", "Liam", "Maya", "Noah", "Olivia", "Peter", "Rosa"]
LAST_NAMES = ["Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Patel", "Reyes"]
# Stock contacts that have an email address, with it.
EMAILS = {
    "Alice Johnson": "alice.johnson@gmail.com",
    "Carol Nguyen": "carol.nguyen@outlook.com",
    "David Kim": "dkim@northwind.com",
    "Frank Okafor": "frank.okafor@yahoo.com",
}


def _rows(messages: list[Message]) -> list[tuple]:
    return [(m.address, m.kind, m.body, m.minutes_ago, m.read) for m in messages]


def _messages_setup(device: Device, params: Params) -> None:
    set_messages(device, [Message(*m) for m in params["messages"]])


# ---- Contacts ------------------------------------------------------------------------------------------


def _contact_numbers(device: Device) -> dict[str, list[str]]:
    """Visible contacts by display name, with the last 10 digits of their numbers."""
    found: dict[str, list[str]] = {}
    for (name,) in query_db(device, CONTACTS_DB, "SELECT display_name FROM raw_contacts WHERE deleted = 0"):
        found.setdefault(name, [])
    rows = query_db(
        device,
        CONTACTS_DB,
        "SELECT r.display_name, d.data1 FROM raw_contacts r JOIN data d ON d.raw_contact_id = r._id"
        " JOIN mimetypes m ON m._id = d.mimetype_id WHERE m.mimetype = ? AND r.deleted = 0",
        (PHONE_MIME,),
    )
    for name, number in rows:
        found.setdefault(name, []).append(digits_key(number or ""))
    return found


def _contact_saved(device: Device, name: str, number: str) -> bool:
    """The stock six plus exactly one new contact, `name`, whose only number is `number`."""
    found = _contact_numbers(device)
    return len(found) == len(CONTACTS) + 1 and found.get(name) == [digits_key(number)]


def _add_contact_step(view: UiView, person: Params) -> Action:
    """The next step of creating `person` (first, last, phone) in Contacts."""
    if view.app != CONTACTS_PKG:
        return Launch("Contacts")
    if view.has(desc="Create contact"):
        return view.tap(view.find(desc="Create contact"))
    if not view.has(text="Create contact"):  # the editor's title
        return Back()
    for rid, value in (("first_name", person["first"]), ("last_name", person["last"]), ("phone", person["phone"])):
        step = fill(view, rid, value)
        if step is not None:
            return step
    return view.tap(view.find(rid="menu_save"))


def _open_contact_step(view: UiView, name: str) -> Action:
    """The next step to the contact's page in Contacts."""
    if view.app != CONTACTS_PKG:
        return Launch("Contacts")
    row = view.find(text=name, rid="cliv_name_textview")
    if row is not None:
        return view.tap(row)
    return view.scroll_down() if view.has(desc="Create contact") else Back()


def _new_person(rng: random.Random) -> Params:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return {"first": first, "last": last, "name": f"{first} {last}", "phone": stranger_number(rng)}


# ---- add a contact, then text them ------------------------------------------------------------------------------


def _new_contact_text_params(rng: random.Random) -> Params:
    person = _new_person(rng)
    person["message"] = rng.choice(CHATTER)
    person["messages"] = _rows(background(rng, rng.sample(CONTACTS, 2)))
    return person


def _new_contact_text_evaluate(device: Device, params: Params, answer: str | None) -> float:
    sent = sent_exactly(device, params["messages"], [(params["phone"], params["message"])])
    return float(sent and _contact_saved(device, params["name"], params["phone"]))


def _new_contact_text_expert(device: Device, params: Params) -> Action:
    if _new_contact_text_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if params["name"] not in _contact_numbers(device):
        return _add_contact_step(view, params)
    return send_step(view, params["name"], params["message"])


# ---- save a texter's new number --------------------------------------------------------------------------------


def _add_from_sms_params(rng: random.Random) -> Params:
    person = _new_person(rng)
    messages = background(rng, rng.sample(CONTACTS, 2))
    text = f"Hi, it's {person['first']} {person['last']}! This is my new number, please save it."
    messages.append(Message(person["phone"], TYPE_INBOX, text, rng.randint(10, 300), read=0))
    person["messages"] = _rows(messages)
    return person


def _add_from_sms_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_contact_saved(device, params["name"], params["phone"]))


def _add_from_sms_expert(device: Device, params: Params) -> Action:
    if _add_from_sms_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if view.app == CONTACTS_PKG:
        return _add_contact_step(view, params)
    if in_main(view) and view.has(text=params["phone"], rid="conversation_address"):
        return Launch("Contacts")  # the number has been read off the conversation list
    return Launch("Simple SMS Messenger") if view.app != SMS else Back()


# ---- text a contact's email -----------------------------------------------------------------------------------


def _email_params(rng: random.Random) -> Params:
    owner = rng.choice(sorted(EMAILS))
    target = rng.choice([c for c in CONTACTS if c[0] != owner])
    others = rng.sample([c for c in CONTACTS if c not in (target,)], 2)
    return {
        "owner": owner,
        "name": target[0],
        "number": target[1],
        "message": EMAILS[owner],
        "messages": _rows(background(rng, [c for c in others if c != target])),
    }


def _email_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(sent_exactly(device, params["messages"], [(params["number"], params["message"])]))


def _email_expert(device: Device, params: Params) -> Action:
    if _email_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if view.app == SMS:
        return send_step(view, params["name"], params["message"])
    if view.app == CONTACTS_PKG and view.has(text=params["owner"], rid="large_title"):
        return Launch("Simple SMS Messenger")  # the email is on the contact's page
    return _open_contact_step(view, params["owner"])


# ---- Clock ----------------------------------------------------------------------------------------------------


def _alarms(device: Device) -> list[tuple[int, int, int]]:
    return query_db(device, ALARMS_DB, "SELECT hour, minutes, enabled FROM alarm_templates ORDER BY _id")


def _picker_step(view: UiView, hour: int, minutes: int) -> Action:
    for rid, value in (("material_hour_text_input", f"{hour:02d}"), ("material_minute_text_input", f"{minutes:02d}")):
        step = fill(view, rid, value)
        if step is not None:
            return step
    return view.tap(view.find(rid="material_timepicker_ok_button"))


def _alarm_tab_step(view: UiView) -> Action | None:
    """Open Clock on its Alarm tab; None once there."""
    if view.app != CLOCK:
        return Launch("Clock")
    if view.has(desc="Add alarm") or view.has(text="Enter time"):
        return None
    tab = view.find(rid="tab_menu_alarm")
    return view.tap(tab) if tab is not None else Back()


# ---- set the alarm a text asks for, then reply ---------------------------------------------------------------------


def _wake_params(rng: random.Random) -> Params:
    asker, *others = rng.sample(CONTACTS, 3)
    hour, minutes = rng.randint(5, 9), rng.choice([5, 10, 15, 20, 40, 45, 50])
    messages = background(rng, [asker, *others])
    ask = f"My phone died, can you wake me up at {hour}:{minutes:02d} tomorrow morning?"
    messages.append(Message(asker[1], TYPE_INBOX, ask, rng.randint(5, 60), read=0))
    return {
        "name": asker[0],
        "number": asker[1],
        "hour": hour,
        "minutes": minutes,
        "message": "Alarm set",
        "messages": _rows(messages),
    }


def _wake_alarm_set(device: Device, params: Params) -> bool:
    return (params["hour"], params["minutes"], 1) in _alarms(device)


def _wake_evaluate(device: Device, params: Params, answer: str | None) -> float:
    replied = sent_exactly(device, params["messages"], [(params["number"], params["message"])])
    return float(replied and _wake_alarm_set(device, params))


def _wake_expert(device: Device, params: Params) -> Action:
    if _wake_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if _wake_alarm_set(device, params):
        return send_step(view, params["name"], params["message"])
    if view.app == CLOCK:
        step = _alarm_tab_step(view)
        if step is not None:
            return step
        if view.has(text="Enter time"):
            return _picker_step(view, params["hour"], params["minutes"])
        return view.tap(view.find(desc="Add alarm"))
    if in_thread(view) and thread_title_is(view, params["name"]):
        return Launch("Clock")  # the requested time has been read in their thread
    step = to_thread(view, params["name"])
    return step if step is not None else Launch("Clock")


# ---- text someone my earliest alarm ------------------------------------------------------------------------------


def _earliest_params(rng: random.Random) -> Params:
    target, *others = rng.sample(CONTACTS, 3)
    # An enabled alarm that may or may not beat the stock 07:00 one, and an earlier disabled one.
    hour, minutes = rng.choice([(6, 15), (6, 40), (7, 45), (9, 10), (5, 50), (10, 30)])
    early = (rng.randint(4, 5), rng.choice([0, 20, 35]))
    alarms = [(hour, minutes, 1), (*early, 0)]
    enabled = sorted([(7, 0), (hour, minutes)])
    return {
        "name": target[0],
        "number": target[1],
        "alarms": alarms,
        "answer": f"{enabled[0][0]:02d}:{enabled[0][1]:02d}",
        "messages": _rows(background(rng, others)),
    }


def _earliest_setup(device: Device, params: Params) -> None:
    _messages_setup(device, params)
    statements = [
        (
            "INSERT INTO alarm_templates (hour, minutes, enabled, daysofweek, vibrate, label, ringtone)"
            " VALUES (?, ?, ?, 0, 1, '', ?)",
            (hour, minutes, enabled, DEFAULT_RINGTONE),
        )
        for hour, minutes, enabled in params["alarms"]
    ]
    write_db(device, ALARMS_DB, statements, CLOCK)


def _same_time(text: str, answer: str) -> bool:
    """Whether `text` is the 24-hour time `answer` ("07:05"), with or without the leading zero."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    return match is not None and f"{int(match.group(1)):02d}:{match.group(2)}" == answer


def _earliest_evaluate(device: Device, params: Params, answer: str | None) -> float:
    new = new_sent(device, params["messages"])
    if not new or len(new) != 1:
        return 0.0
    ((key, body),) = new
    return float(key == digits_key(params["number"]) and _same_time(body, params["answer"]))


def _earliest_expert(device: Device, params: Params) -> Action:
    if _earliest_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if view.app == SMS:
        return send_step(view, params["name"], params["answer"])
    if view.app == CLOCK and view.has(desc="Add alarm"):
        return Launch("Simple SMS Messenger")  # the alarm list has been read
    step = _alarm_tab_step(view)
    return step if step is not None else Back()


# ---- Wi-Fi off, then text ------------------------------------------------------------------------------------------


def _wifi_params(rng: random.Random) -> Params:
    return {
        "number": stranger_number(rng),
        "message": rng.choice(["I'm offline for a while", "Wi-Fi is off, text me here", "Going offline now"]),
        "messages": _rows(background(rng, rng.sample(CONTACTS, 2))),
    }


def _wifi_setup(device: Device, params: Params) -> None:
    _messages_setup(device, params)
    put_setting(device, "global", "wifi_on", "1")


def _wifi_off(device: Device) -> bool:
    return get_setting(device, "global", "wifi_on") == "0"


def _wifi_evaluate(device: Device, params: Params, answer: str | None) -> float:
    sent = sent_exactly(device, params["messages"], [(params["number"], params["message"])])
    return float(sent and _wifi_off(device))


def _wifi_expert(device: Device, params: Params) -> Action:
    if _wifi_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if _wifi_off(device):
        return send_step(view, params["number"], params["message"], params["number"])
    return wifi_switch_step(view)


# ---- save a text as a Markor note --------------------------------------------------------------------------------

MARKOR = "net.gsantner.markor"
NOTEBOOK = "/sdcard/Documents/Markor"
LISTS = [
    "eggs, milk, bread, two lemons, coffee",
    "tomatoes, basil, mozzarella, olive oil",
    "rice, black beans, avocados, limes, cilantro",
    "flour, sugar, butter, vanilla, baking soda",
]


def _note_params(rng: random.Random) -> Params:
    sender, *others = rng.sample(CONTACTS, 3)
    body = rng.choice(LISTS)
    messages = background(rng, [sender, *others])
    messages.append(Message(sender[1], TYPE_INBOX, "Could you pick these up on your way?", 31))
    messages.append(Message(sender[1], TYPE_INBOX, body, 30, read=0))
    return {
        "name": sender[0],
        "file_name": f"shopping_{sender[0].split()[0].lower()}.md",
        "text": body,
        "messages": _rows(messages),
    }


def _note_evaluate(device: Device, params: Params, answer: str | None) -> float:
    content = read_text(device, f"{NOTEBOOK}/{params['file_name']}")
    return float(content is not None and content.replace("\r", "").strip() == params["text"])


def _note_expert(device: Device, params: Params) -> Action:
    if _note_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if view.app == MARKOR:
        # Markor's own steps (new-file dialog, editor, save) are the MarkorCreateNote expert's.
        return markor_tasks._create_expert(device, params)
    if in_thread(view) and thread_title_is(view, params["name"]):
        return Launch("Markor")  # the list has been read in their thread
    step = to_thread(view, params["name"])
    return step if step is not None else Launch("Markor")


# ---- templates ------------------------------------------------------------------------------------------------------

TEMPLATES = [
    TaskTemplate(
        name="SimpleSmsSendToNewContact",
        apps=(CONTACTS_PKG, SMS),
        goal='Add {name}, phone number {phone}, to my contacts, then text them "{message}" using Simple SMS Messenger.',
        difficulty="hard",
        kind="operation",
        params=_new_contact_text_params,
        setup=_messages_setup,
        evaluate=_new_contact_text_evaluate,
        expert=_new_contact_text_expert,
    ),
    TaskTemplate(
        name="ContactsAddFromSms",
        apps=(SMS, CONTACTS_PKG),
        goal="{first} texted me from a new number. Save that number as a new contact named {name}.",
        difficulty="medium",
        kind="operation",
        params=_add_from_sms_params,
        setup=_messages_setup,
        evaluate=_add_from_sms_evaluate,
        expert=_add_from_sms_expert,
    ),
    TaskTemplate(
        name="SimpleSmsSendContactEmail",
        apps=(CONTACTS_PKG, SMS),
        goal="Text {name} the email address of my contact {owner}, using Simple SMS Messenger.",
        difficulty="medium",
        kind="operation",
        params=_email_params,
        setup=_messages_setup,
        evaluate=_email_evaluate,
        expert=_email_expert,
    ),
    TaskTemplate(
        name="SimpleSmsSetRequestedAlarm",
        apps=(SMS, CLOCK),
        goal=(
            "{name} texted me asking for a wake-up call. Set an alarm in Clock for the time in their latest "
            'message, then reply to them "{message}".'
        ),
        difficulty="hard",
        kind="operation",
        params=_wake_params,
        setup=_messages_setup,
        evaluate=_wake_evaluate,
        expert=_wake_expert,
    ),
    TaskTemplate(
        name="ClockTextEarliestAlarm",
        apps=(CLOCK, SMS),
        goal='Text {name} the time of my earliest enabled alarm in Clock, as Clock shows it (e.g. "21:30").',
        difficulty="medium",
        kind="operation",
        params=_earliest_params,
        setup=_earliest_setup,
        evaluate=_earliest_evaluate,
        expert=_earliest_expert,
    ),
    TaskTemplate(
        name="SystemWifiTurnOffAndText",
        apps=(SETTINGS, SMS),
        goal='Turn off Wi-Fi, then text {number} "{message}" using Simple SMS Messenger.',
        difficulty="hard",
        kind="operation",
        params=_wifi_params,
        setup=_wifi_setup,
        evaluate=_wifi_evaluate,
        expert=_wifi_expert,
    ),
    TaskTemplate(
        name="MarkorSaveSmsAsNote",
        apps=(SMS, MARKOR),
        goal=(
            "{name} texted me a shopping list. Save the list, exactly as in their last message, as a new note "
            "named {file_name} in Markor."
        ),
        difficulty="medium",
        kind="operation",
        params=_note_params,
        setup=_messages_setup,
        evaluate=_note_evaluate,
        expert=_note_expert,
    ),
]
