"""Task templates for Google Contacts (com.google.android.contacts), named after android_world's Contacts* tasks.

Contacts are read from the contacts provider's contacts2.db (raw_contacts + data + mimetypes, AOSP's schema).
"""

from __future__ import annotations

import random
import re

from droidrl.envs.actions import Action, Back, Finish, Launch
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiNode, UiView
from droidrl.envs.tasks.state import answer_matches, answer_number, query_db, write_db

CONTACTS = "com.google.android.contacts"
PROVIDER = "com.android.providers.contacts"
DB = f"/data/data/{PROVIDER}/databases/contacts2.db"
NAME = "vnd.android.cursor.item/name"
PHONE = "vnd.android.cursor.item/phone_v2"
EMAIL = "vnd.android.cursor.item/email_v2"
ORGANIZATION = "vnd.android.cursor.item/organization"

# First names start after the seed contacts' (A-F), so new contacts sort below them in the list.
FIRST_NAMES = ["Grace", "Henry", "Isabel", "Jack", "Karen", "Liam", "Maya", "Noah", "Olivia", "Peter", "Rosa"]
LAST_NAMES = ["Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Patel", "Reyes"]
AREA_CODES = ["415", "650", "212", "312", "617", "206", "303", "512"]
COMPANIES = ["Acme Corp", "Blue Harbor", "Greenleaf Labs", "Summit Dental", "Riverside Bakery", "Orbit Media"]
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me"]


# ---- parameters ----------------------------------------------------------------------------------


def _person(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return {
        "first": first,
        "last": last,
        "name": f"{first} {last}",
        "phone": f"({rng.choice(AREA_CODES)}) 555-01{rng.randint(0, 99):02d}",
        "email": f"{first.lower()}.{last.lower()}@{rng.choice(EMAIL_DOMAINS)}",
        "company": rng.choice(COMPANIES),
    }


def _people(rng: random.Random, count: int) -> list[dict[str, str]]:
    """`count` people with distinct first names (so no two share a display name)."""
    firsts = rng.sample(FIRST_NAMES, count)
    people = []
    for first in firsts:
        person = _person(rng)
        person.update(first=first, name=f"{first} {person['last']}")
        person["email"] = f"{first.lower()}.{person['last'].lower()}@{person['email'].split('@')[1]}"
        people.append(person)
    return people


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


# ---- database ------------------------------------------------------------------------------------


def _insert_contact(person: dict[str, str], starred: int = 0) -> list[tuple[str, tuple]]:
    """Statements that add a contact the way the Contacts app saves one (raw contact + data rows)."""
    raw = "(SELECT max(_id) FROM raw_contacts)"
    data = (
        "INSERT INTO data (raw_contact_id, mimetype_id, is_primary, data1, data2, data3, data4)"
        f" VALUES ({raw}, (SELECT _id FROM mimetypes WHERE mimetype = ?), 1, ?, ?, ?, ?)"
    )
    statements = [
        ("INSERT INTO raw_contacts (display_name, starred) VALUES (?, ?)", (person["name"], starred)),
        (data, (NAME, person["name"], person["first"], person["last"], None)),
        (data, (PHONE, person["phone"], 2, None, "+1" + _digits(person["phone"])[-10:])),
    ]
    if person.get("with_email"):
        statements.append((data, (EMAIL, person["email"], 1, None, None)))
    return statements


def _add_people(device: Device, people: list[dict[str, str]]) -> None:
    statements = [statement for person in people for statement in _insert_contact(person)]
    write_db(device, DB, statements, CONTACTS)


def _contacts(device: Device) -> dict[str, dict]:
    """Visible contacts by display name: starred flag, phone numbers (digits), emails and companies."""
    found: dict[str, dict] = {}
    rows = query_db(device, DB, "SELECT _id, display_name, starred FROM raw_contacts WHERE deleted = 0")
    ids = {}
    for raw_id, name, starred in rows:
        found[name] = {"starred": starred, "phones": [], "emails": [], "companies": []}
        ids[raw_id] = name
    items = query_db(
        device,
        DB,
        "SELECT d.raw_contact_id, m.mimetype, d.data1 FROM data d JOIN mimetypes m ON m._id = d.mimetype_id",
    )
    keys = {PHONE: "phones", EMAIL: "emails", ORGANIZATION: "companies"}
    for raw_id, mimetype, data1 in items:
        if raw_id in ids and mimetype in keys:
            value = _digits(data1 or "") if mimetype == PHONE else data1
            found[ids[raw_id]][keys[mimetype]].append(value)
    return found


def _count(device: Device) -> int:
    rows = query_db(device, DB, "SELECT count(*) FROM raw_contacts WHERE deleted = 0")
    return rows[0][0] if rows else 0


def _same_number(stored: list[str], wanted: str) -> bool:
    """One phone number equal to `wanted`, digits compared (a leading US 1 is optional)."""
    want = _digits(wanted)
    return len(stored) == 1 and stored[0] in (want, f"1{want}")


# ---- expert helpers ------------------------------------------------------------------------------


def _in_list(view: UiView) -> bool:
    # The search bar scrolls away with the list; the Create contact button stays.
    return view.app == CONTACTS and (view.has(rid="open_search_view_edit_text") or view.has(desc="Create contact"))


def _in_details(view: UiView, name: str) -> bool:
    return view.app == CONTACTS and view.has(text=name, rid="large_title")


def _open_contact(view: UiView, name: str) -> Action:
    """From anywhere: to the list, then tap the contact (scrolling down to it)."""
    if view.app != CONTACTS:
        return Launch("Contacts")
    if not _in_list(view):
        return Back()
    row = view.find(text=name, rid="cliv_name_textview")
    return view.tap(row) if row is not None and _tappable(view, row) else view.scroll_down()


def _tappable(view: UiView, node: UiNode) -> bool:
    """Not hidden under the navigation bar at the bottom of the screen."""
    return node.center[1] < view.size[1] - 160


# ---- add a contact -------------------------------------------------------------------------------


def _add_params(rng: random.Random) -> Params:
    return _person(rng)


def _add_fields(params: Params, full: bool) -> list[tuple[str, str]]:
    fields = [("first_name", params["first"]), ("last_name", params["last"])]
    if full:
        fields.append(("company", params["company"]))
    fields.append(("phone", params["phone"]))
    if full:
        fields.append(("email", params["email"]))
    return fields


def _add_evaluate(full: bool):
    def evaluate(device: Device, params: Params, answer: str | None) -> float:
        contact = _contacts(device).get(params["name"])
        if contact is None or _count(device) != 7 or not _same_number(contact["phones"], params["phone"]):
            return 0.0  # the six stock contacts and exactly one new one
        if full and (contact["emails"] != [params["email"]] or contact["companies"] != [params["company"]]):
            return 0.0
        return 1.0

    return evaluate


def _add_expert(full: bool):
    def expert(device: Device, params: Params) -> Action:
        view = UiView.of(device)
        if params["name"] in _contacts(device):
            return Finish()
        if view.app != CONTACTS:
            return Launch("Contacts")
        if _in_list(view):
            return view.tap(view.find(desc="Create contact"))
        if not view.has(text="Create contact"):
            return Back()
        for rid, value in _add_fields(params, full):
            step = view.fill(rid, value)
            if step is not None:
                return step
        return view.tap(view.find(rid="menu_save"))

    return expert


# ---- delete, edit, favorite ----------------------------------------------------------------------


def _two_people_params(rng: random.Random) -> Params:
    target, other = _people(rng, 2)
    new_phone = target["phone"]
    while _digits(new_phone) in (_digits(target["phone"]), _digits(other["phone"])):
        new_phone = _person(rng)["phone"]
    return {"name": target["name"], "target": target, "other": other, "new_phone": new_phone}


def _two_people_setup(device: Device, params: Params) -> None:
    _add_people(device, [params["target"], params["other"]])


def _delete_evaluate(device: Device, params: Params, answer: str | None) -> float:
    contacts = _contacts(device)
    return float(params["name"] not in contacts and params["other"]["name"] in contacts and len(contacts) == 7)


def _delete_expert(device: Device, params: Params) -> Action:
    if params["name"] not in _contacts(device):
        return Finish()
    view = UiView.of(device)
    if not _in_details(view, params["name"]):
        return _open_contact(view, params["name"])
    if view.has(text="Delete this contact?"):
        return view.tap(view.find(text="Delete", rid="android:id/button1"))
    menu_delete = view.find(rid="menu_delete")
    return view.tap(menu_delete) if menu_delete is not None else view.tap(view.find(desc="More options"))


def _edit_done(device: Device, params: Params) -> bool:
    contact = _contacts(device).get(params["name"])
    return contact is not None and _same_number(contact["phones"], params["new_phone"])


def _edit_evaluate(device: Device, params: Params, answer: str | None) -> float:
    other = _contacts(device).get(params["other"]["name"])
    untouched = other is not None and _same_number(other["phones"], params["other"]["phone"])
    return float(_edit_done(device, params) and untouched and _count(device) == 8)


def _edit_expert(device: Device, params: Params) -> Action:
    if _edit_done(device, params):
        return Finish()
    view = UiView.of(device)
    if view.app == CONTACTS and view.has(text="Edit contact", cls="TextView"):
        step = view.fill("phone", params["new_phone"])
        return step if step is not None else view.tap(view.find(rid="menu_save"))
    if not _in_details(view, params["name"]):
        return _open_contact(view, params["name"])
    return view.tap(view.find(desc="Edit contact"))


def _starred(device: Device, name: str) -> bool:
    contact = _contacts(device).get(name)
    return contact is not None and contact["starred"] == 1


def _favorite_evaluate(device: Device, params: Params, answer: str | None) -> float:
    # Carol Nguyen is the stock favorite: she must stay one, and the other new contact must not become one.
    ok = _starred(device, params["name"]) and _starred(device, "Carol Nguyen")
    return float(ok and not _starred(device, params["other"]["name"]))


def _favorite_expert(device: Device, params: Params) -> Action:
    if _starred(device, params["name"]):
        return Finish()
    view = UiView.of(device)
    if not _in_details(view, params["name"]):
        return _open_contact(view, params["name"])
    return view.tap(view.find(desc="Add to favorites"))


# ---- queries -------------------------------------------------------------------------------------


def _query_params(rng: random.Random) -> Params:
    target, other = _people(rng, 2)
    target["with_email"] = other["with_email"] = "1"
    return {"name": target["name"], "target": target, "other": other}


def _number_evaluate(device: Device, params: Params, answer: str | None) -> float:
    want = _digits(params["target"]["phone"])
    return float(_digits(answer or "") in (want, f"1{want}"))


def _email_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_matches(answer, params["target"]["email"]))


def _detail_query_expert(pattern: str):
    """Read the first contact-info line matching `pattern` on the contact's page."""

    def expert(device: Device, params: Params) -> Action:
        view = UiView.of(device)
        if not _in_details(view, params["name"]):
            return _open_contact(view, params["name"])
        for node in view.find_all(rid="header"):
            if re.search(pattern, node.text):
                return Finish(node.text)
        return view.scroll_down()

    return expert


def _count_params(rng: random.Random) -> Params:
    return {"people": _people(rng, rng.randint(0, 3))}


def _count_setup(device: Device, params: Params) -> None:
    if params["people"]:
        _add_people(device, params["people"])


def _count_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_number(answer) == _count(device))


def _count_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if view.app != CONTACTS:
        return Launch("Contacts")
    if not _in_list(view):
        return Back()
    # Scroll until the list's last name is in view, then count (the checker's count is the same).
    names = sorted(_contacts(device), key=str.casefold)
    last = view.find(text=names[-1], rid="cliv_name_textview") if names else None
    if names and (last is None or not _tappable(view, last)):
        return view.scroll_down()
    return Finish(str(len(names)))


TEMPLATES = [
    TaskTemplate(
        name="ContactsAddContact",
        apps=(CONTACTS,),
        goal="Create a new contact for {name}. Their number is {phone}.",
        difficulty="medium",
        kind="operation",
        params=_add_params,
        evaluate=_add_evaluate(False),
        expert=_add_expert(False),
    ),
    TaskTemplate(
        name="ContactsAddContactDetails",
        apps=(CONTACTS,),
        goal="Create a new contact for {name}, who works at {company}. Their number is {phone} and their"
        " email is {email}.",
        difficulty="hard",
        kind="operation",
        params=_add_params,
        evaluate=_add_evaluate(True),
        expert=_add_expert(True),
    ),
    TaskTemplate(
        name="ContactsDeleteContact",
        apps=(CONTACTS,),
        goal="Delete the contact {name}.",
        difficulty="medium",
        kind="operation",
        params=_two_people_params,
        setup=_two_people_setup,
        evaluate=_delete_evaluate,
        expert=_delete_expert,
    ),
    TaskTemplate(
        name="ContactsEditNumber",
        apps=(CONTACTS,),
        goal="Change the phone number of {name} to {new_phone}.",
        difficulty="medium",
        kind="operation",
        params=_two_people_params,
        setup=_two_people_setup,
        evaluate=_edit_evaluate,
        expert=_edit_expert,
    ),
    TaskTemplate(
        name="ContactsFavoriteContact",
        apps=(CONTACTS,),
        goal="Add {name} to your favorite contacts.",
        difficulty="easy",
        kind="operation",
        params=_two_people_params,
        setup=_two_people_setup,
        evaluate=_favorite_evaluate,
        expert=_favorite_expert,
    ),
    TaskTemplate(
        name="ContactsNumberQuery",
        apps=(CONTACTS,),
        goal="What is {name}'s phone number?",
        difficulty="easy",
        kind="query",
        params=_query_params,
        setup=_two_people_setup,
        evaluate=_number_evaluate,
        expert=_detail_query_expert(r"\d"),
    ),
    TaskTemplate(
        name="ContactsEmailQuery",
        apps=(CONTACTS,),
        goal="What is {name}'s email address?",
        difficulty="easy",
        kind="query",
        params=_query_params,
        setup=_two_people_setup,
        evaluate=_email_evaluate,
        expert=_detail_query_expert("@"),
    ),
    TaskTemplate(
        name="ContactsCountQuery",
        apps=(CONTACTS,),
        goal="How many contacts are saved on this phone?",
        difficulty="easy",
        kind="query",
        params=_count_params,
        setup=_count_setup,
        evaluate=_count_evaluate,
        expert=_count_expert,
    ),
]
