"""Google Contacts (com.google.android.contacts): contact list with search, contact details and the editor.

Contacts live where Android keeps them, in the contacts provider's database
/data/data/com.android.providers.contacts/databases/contacts2.db, so a checker can `adb pull` it.
The schema is AOSP's (ContactsDatabaseHelper), tables and column names as on a device:

    accounts(_id, account_name, account_type, data_set, ...): row 1 is the local account (all NULL).
    raw_contacts(_id, account_id, contact_id, deleted, starred, display_name, display_name_alt, ...)
        display_name: "First Last", else company, else phone number, else email (Android's priority).
        deleted: always 0 here; the app deletes local contacts' rows outright, as ContactsProvider2 does
        for contacts without a sync account, so readers may filter `WHERE deleted = 0` as on a device.
    contacts(_id, name_raw_contact_id, starred, has_phone_number, lookup, ...): one per raw contact (the
        simulated phone does not merge contacts).
    mimetypes(_id, mimetype), prefilled with ContactsDatabaseHelper.COMMON_MIME_TYPES in its order.
    data(_id, mimetype_id, raw_contact_id, is_primary, data1 .. data15, ...), one row per item:
        vnd.android.cursor.item/name          data1 display name, data2 given name, data3 family name
        vnd.android.cursor.item/phone_v2      data1 number as typed, data2 type (2 = mobile),
                                              data4 normalised number (E.164, e.g. "+16505550134")
        vnd.android.cursor.item/email_v2      data1 address, data2 type (1 = home)
        vnd.android.cursor.item/organization  data1 company, data2 type (1 = work)
    phone_lookup(data_id, raw_contact_id, normalized_number, min_match)

Triggers keep contacts, phone_lookup and has_phone_number in step with raw_contacts and data (ContactsProvider2
does that in Java), so a task setup that writes raw SQL into raw_contacts/data gets a consistent database.
Names and numbers, as android_world's checks read them (`content query --uri content://contacts/phones/`,
see envs/sim/content.py), or in SQL:
    SELECT r.display_name, d.data1 FROM raw_contacts r JOIN data d ON d.raw_contact_id = r._id
    JOIN mimetypes m ON m._id = d.mimetype_id WHERE m.mimetype = 'vnd.android.cursor.item/phone_v2'
    AND r.deleted = 0

`pm clear com.google.android.contacts` keeps the contacts, as on a phone: they belong to the provider,
so `install` writes the six seed contacts only when the database does not exist yet. Clearing the
provider (`pm clear com.android.providers.contacts`, android_world's clear_contacts) empties them: the
tables come back empty on first use.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from droidrl.envs.sim.app import DEFAULT, App, Ctx, IntentFilter
from droidrl.envs.sim.ui import BUTTON, Dialog, Node, Screen, edit, header, icon_button, item, spacer, text

if TYPE_CHECKING:
    from droidrl.envs.sim.intents import Intent
    from droidrl.envs.sim.phone import Phone

PACKAGE = "com.google.android.contacts"
PROVIDER_DIR = "/data/data/com.android.providers.contacts"
DB_PATH = f"{PROVIDER_DIR}/databases/contacts2.db"

# Google Contacts keeps AOSP's class names (com.android.contacts.*) inside com.google.android.contacts.
LIST = "com.android.contacts.activities.PeopleActivity"
DETAILS = "com.android.contacts.quickcontact.QuickContactActivity"
EDITOR = "com.android.contacts.activities.ContactEditorActivity"

NAME = "vnd.android.cursor.item/name"
PHONE = "vnd.android.cursor.item/phone_v2"
EMAIL = "vnd.android.cursor.item/email_v2"
ORGANIZATION = "vnd.android.cursor.item/organization"
PHONE_TYPE_MOBILE, EMAIL_TYPE_HOME, ORG_TYPE_WORK = 2, 1, 1
PHONE_LABELS = {1: "Home", 2: "Mobile", 3: "Work", 7: "Other"}
EMAIL_LABELS = {1: "Home", 2: "Work", 3: "Other", 4: "Mobile"}

# Editor fields in screen order: (field key, hint, resource-id).
EDITOR_FIELDS = [
    ("first_name", "First name", "first_name"),
    ("last_name", "Last name", "last_name"),
    ("company", "Company", "company"),
    ("phone", "Phone", "phone"),
    ("email", "Email", "email"),
]
FIELD_KEYS = [key for key, _, _ in EDITOR_FIELDS]
EMPTY_CONTACT_TOAST = "Can't save an empty contact"


def _digits_sql(column: str) -> str:
    """SQL for a number with its separators dropped ("+1 (650) 555-0134" -> "+16505550134")."""
    for sep in " -().":
        column = f"replace({column}, '{sep}', '')"
    return column


def _e164_sql(column: str) -> str:
    """SQL for PhoneNumberUtils.formatNumberToE164 on a US-locale phone: 10 digits get +1."""
    s = _digits_sql(column)
    return (
        f"CASE WHEN {s} LIKE '+%' THEN {s} WHEN length({s}) = 10 THEN '+1' || {s}"
        f" WHEN length({s}) = 11 AND {s} LIKE '1%' THEN '+' || {s} ELSE {s} END"
    )


def _min_match_sql(column: str) -> str:
    """SQL for PhoneNumberUtils.toCallerIDMinMatch: the last 7 digits, reversed."""
    s = _digits_sql(column)
    return " || ".join(f"substr({s}, -{i}, 1)" for i in range(1, 8))


# ContactsDatabaseHelper.COMMON_MIME_TYPES: prepopulated in this order, so their ids match a device's.
COMMON_MIME_TYPES = [
    EMAIL,
    "vnd.android.cursor.item/im",
    "vnd.android.cursor.item/nickname",
    ORGANIZATION,
    PHONE,
    "vnd.android.cursor.item/sip_address",
    NAME,
    "vnd.android.cursor.item/postal-address_v2",
    "vnd.android.cursor.item/identity",
    "vnd.android.cursor.item/photo",
    "vnd.android.cursor.item/group_membership",
    "vnd.android.cursor.item/note",
    "vnd.android.cursor.item/contact_event",
    "vnd.android.cursor.item/website",
    "vnd.android.cursor.item/relation",
    "vnd.com.google.cursor.item/contact_misc",
]
_PHONE_ID = f"(SELECT _id FROM mimetypes WHERE mimetype = '{PHONE}')"
_DATA_COLUMNS = "".join(f"    data{i} TEXT,\n" for i in range(1, 16))

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS accounts (
    _id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_name TEXT, account_type TEXT, data_set TEXT, sim_slot_index INTEGER, sim_ef_type INTEGER,
    ungrouped_visible INTEGER NOT NULL DEFAULT 0, should_sync INTEGER NOT NULL DEFAULT 1,
    is_default INTEGER NOT NULL DEFAULT 0
);
INSERT INTO accounts (_id) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM accounts);
CREATE TABLE IF NOT EXISTS contacts (
    _id INTEGER PRIMARY KEY AUTOINCREMENT,
    name_raw_contact_id INTEGER REFERENCES raw_contacts(_id),
    photo_id INTEGER REFERENCES data(_id),
    photo_file_id INTEGER REFERENCES photo_files(_id),
    custom_ringtone TEXT,
    send_to_voicemail INTEGER NOT NULL DEFAULT 0,
    x_times_contacted INTEGER NOT NULL DEFAULT 0,
    x_last_time_contacted INTEGER,
    times_contacted INTEGER NOT NULL DEFAULT 0,
    last_time_contacted INTEGER,
    starred INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    has_phone_number INTEGER NOT NULL DEFAULT 0,
    lookup TEXT,
    status_update_id INTEGER REFERENCES data(_id),
    contact_last_updated_timestamp INTEGER
);
CREATE TABLE IF NOT EXISTS raw_contacts (
    _id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER REFERENCES accounts(_id),
    sourceid TEXT,
    backup_id TEXT,
    raw_contact_is_read_only INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    dirty INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    metadata_dirty INTEGER NOT NULL DEFAULT 0,
    contact_id INTEGER REFERENCES contacts(_id),
    aggregation_mode INTEGER NOT NULL DEFAULT 0,
    aggregation_needed INTEGER NOT NULL DEFAULT 1,
    custom_ringtone TEXT,
    send_to_voicemail INTEGER NOT NULL DEFAULT 0,
    x_times_contacted INTEGER NOT NULL DEFAULT 0,
    x_last_time_contacted INTEGER,
    times_contacted INTEGER NOT NULL DEFAULT 0,
    last_time_contacted INTEGER,
    starred INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    display_name TEXT,
    display_name_alt TEXT,
    display_name_source INTEGER NOT NULL DEFAULT 0,
    phonetic_name TEXT,
    phonetic_name_style TEXT,
    sort_key TEXT,
    phonebook_label TEXT,
    phonebook_bucket INTEGER,
    sort_key_alt TEXT,
    phonebook_label_alt TEXT,
    phonebook_bucket_alt INTEGER,
    name_verified INTEGER NOT NULL DEFAULT 0,
    sync1 TEXT, sync2 TEXT, sync3 TEXT, sync4 TEXT
);
CREATE INDEX IF NOT EXISTS raw_contacts_contact_id_index ON raw_contacts (contact_id);
CREATE TABLE IF NOT EXISTS packages (_id INTEGER PRIMARY KEY AUTOINCREMENT, package TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mimetypes (_id INTEGER PRIMARY KEY AUTOINCREMENT, mimetype TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS mime_type ON mimetypes (mimetype);
{"".join(f"INSERT OR IGNORE INTO mimetypes (mimetype) VALUES ('{m}');" + chr(10) for m in COMMON_MIME_TYPES)}
CREATE TABLE IF NOT EXISTS data (
    _id INTEGER PRIMARY KEY AUTOINCREMENT,
    package_id INTEGER REFERENCES package(_id),
    mimetype_id INTEGER REFERENCES mimetype(_id) NOT NULL,
    raw_contact_id INTEGER REFERENCES raw_contacts(_id) NOT NULL,
    hash_id TEXT,
    is_read_only INTEGER NOT NULL DEFAULT 0,
    is_primary INTEGER NOT NULL DEFAULT 0,
    is_super_primary INTEGER NOT NULL DEFAULT 0,
    data_version INTEGER NOT NULL DEFAULT 0,
{_DATA_COLUMNS}    data_sync1 TEXT, data_sync2 TEXT, data_sync3 TEXT, data_sync4 TEXT,
    carrier_presence INTEGER NOT NULL DEFAULT 0,
    preferred_phone_account_component_name TEXT,
    preferred_phone_account_id TEXT
);
CREATE INDEX IF NOT EXISTS data_raw_contact_id ON data (raw_contact_id);
CREATE INDEX IF NOT EXISTS data_mimetype_data1_index ON data (mimetype_id, data1);
CREATE TABLE IF NOT EXISTS phone_lookup (
    data_id INTEGER REFERENCES data(_id) NOT NULL,
    raw_contact_id INTEGER REFERENCES raw_contacts(_id) NOT NULL,
    normalized_number TEXT NOT NULL,
    min_match TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS phone_lookup_index ON phone_lookup (normalized_number, raw_contact_id, data_id);

CREATE TRIGGER IF NOT EXISTS raw_contacts_aggregate AFTER INSERT ON raw_contacts BEGIN
    UPDATE raw_contacts SET account_id = COALESCE(new.account_id, 1) WHERE _id = new._id;
    INSERT INTO contacts (name_raw_contact_id, starred, lookup)
        SELECT new._id, new.starred, '0r' || new._id || '-' || upper(replace(COALESCE(new.display_name, ''), ' ', ''))
        WHERE new.contact_id IS NULL;
    UPDATE raw_contacts SET contact_id = last_insert_rowid() WHERE _id = new._id AND new.contact_id IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS raw_contacts_changed AFTER UPDATE OF starred, display_name, deleted ON raw_contacts BEGIN
    UPDATE contacts SET starred = new.starred WHERE _id = new.contact_id;
END;
CREATE TRIGGER IF NOT EXISTS raw_contacts_deleted AFTER DELETE ON raw_contacts BEGIN
    DELETE FROM data WHERE raw_contact_id = old._id;
    DELETE FROM contacts WHERE _id = old.contact_id
        AND NOT EXISTS (SELECT 1 FROM raw_contacts WHERE contact_id = old.contact_id);
END;
CREATE TRIGGER IF NOT EXISTS data_phone_inserted AFTER INSERT ON data WHEN new.mimetype_id = {_PHONE_ID} BEGIN
    INSERT INTO phone_lookup (data_id, raw_contact_id, normalized_number, min_match)
        VALUES (new._id, new.raw_contact_id, {_e164_sql("COALESCE(new.data1, '')")},
                {_min_match_sql("COALESCE(new.data1, '')")});
    UPDATE contacts SET has_phone_number = 1
        WHERE _id = (SELECT contact_id FROM raw_contacts WHERE _id = new.raw_contact_id);
END;
CREATE TRIGGER IF NOT EXISTS data_phone_updated AFTER UPDATE OF data1 ON data WHEN new.mimetype_id = {_PHONE_ID} BEGIN
    UPDATE phone_lookup SET normalized_number = {_e164_sql("COALESCE(new.data1, '')")},
        min_match = {_min_match_sql("COALESCE(new.data1, '')")} WHERE data_id = new._id;
END;
CREATE TRIGGER IF NOT EXISTS data_deleted AFTER DELETE ON data BEGIN
    DELETE FROM phone_lookup WHERE data_id = old._id;
    UPDATE contacts SET has_phone_number = EXISTS (
        SELECT 1 FROM data d JOIN raw_contacts r ON r._id = d.raw_contact_id
        WHERE r.contact_id = contacts._id AND d.mimetype_id = {_PHONE_ID})
        WHERE _id = (SELECT contact_id FROM raw_contacts WHERE _id = old.raw_contact_id);
END;
"""


# The editor's fields in FIELD_KEYS order, then starred; 555-01xx numbers are reserved for fiction.
SEED_CONTACTS = [
    ("Alice", "Johnson", "", "(650) 555-0134", "alice.johnson@gmail.com", 0),
    ("Bob", "Martinez", "Martinez Plumbing", "+1 415-555-0199", "", 0),
    ("Carol", "Nguyen", "", "(212) 555-0147", "carol.nguyen@outlook.com", 1),
    ("David", "Kim", "Northwind Traders", "(312) 555-0162", "dkim@northwind.com", 0),
    ("Emma", "Wilson", "", "(617) 555-0118", "", 0),
    ("Frank", "Okafor", "", "(206) 555-0175", "frank.okafor@yahoo.com", 0),
]


# ---- database ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_db(phone: Phone) -> Iterator[sqlite3.Connection]:
    """contacts2.db, its tables created on first use."""
    # The provider creates its tables on first use, so a deleted database file comes back empty.
    with phone.fs.sqlite(DB_PATH) as conn:
        conn.executescript(SCHEMA)
        yield conn


def install(phone: Phone) -> None:
    """Create the provider's database with the seed contacts, unless it already exists."""
    phone.fs.makedirs(f"{PROVIDER_DIR}/databases")
    if phone.fs.is_file(DB_PATH):
        return  # `pm clear` of the Contacts app: the contacts belong to the provider and stay
    with open_db(phone) as conn:
        for *fields, starred in SEED_CONTACTS:
            raw_id = _save_contact(conn, None, dict(zip(FIELD_KEYS, fields, strict=True)))
            conn.execute("UPDATE raw_contacts SET starred = ? WHERE _id = ?", (starred, raw_id))


def normalize_number(number: str) -> str:
    """Digits only, the form android_world compares numbers in ("+1 (650) 555-0134" -> "16505550134")."""
    return re.sub(r"\D", "", number)


def e164(number: str) -> str:
    """The number as Phone.NORMALIZED_NUMBER stores it on a US-locale phone ("(650) 555-0134" -> "+16505550134")."""
    digits = normalize_number(number)
    if number.strip().startswith("+"):
        return f"+{digits}"
    if len(digits) == 10:
        return f"+1{digits}"
    return f"+{digits}" if len(digits) == 11 and digits.startswith("1") else digits


def mimetype_ids(conn: sqlite3.Connection) -> dict[str, int]:
    """The mimetypes table as {mimetype: _id}."""
    return dict(conn.execute("SELECT mimetype, _id FROM mimetypes"))


def format_number(number: str) -> str:
    """How the app shows a number on a US-locale phone; numbers the user formatted are left alone."""
    if not re.fullmatch(r"\+?\d+", number):
        return number
    if len(number) == 10 and number.isdigit():
        return f"({number[:3]}) {number[3:6]}-{number[6:]}"
    if len(number) == 12 and number.startswith("+1"):
        return f"+1 {number[2:5]}-{number[5:8]}-{number[8:]}"
    return number


def _display_name(values: dict[str, str]) -> str:
    name = " ".join(v for v in (values["first_name"], values["last_name"]) if v)
    return name or values["company"] or values["phone"] or values["email"]


def _name_columns(values: dict[str, str], display: str) -> tuple:
    """display_name_alt, display_name_source, sort keys and phonebook labels, as ContactsProvider2 derives them."""
    first, last = values["first_name"], values["last_name"]
    alt = ", ".join(v for v in (last, first) if v) or display
    # DisplayNameSources: STRUCTURED_NAME 40, ORGANIZATION 30, PHONE 20, EMAIL 10.
    source = 40 if first or last else 30 if values["company"] else 20 if values["phone"] else 10
    label, label_alt = _section(display), _section(alt)
    return alt, source, display, alt, label, label_alt, _bucket(label), _bucket(label_alt)


def _bucket(label: str) -> int:
    """ContactLocaleUtils' bucket of an English phonebook label: A..Z are 1..26, "#" comes after them."""
    return ord(label) - ord("A") + 1 if "A" <= label <= "Z" else 27


def _put_item(conn: sqlite3.Connection, raw_id: int, mimetype: str, columns: dict[str, Any] | None) -> None:
    """Set the contact's first data row of `mimetype` to `columns`, inserting it, or deleting it when None."""
    mimetype_id = mimetype_ids(conn)[mimetype]
    row = conn.execute(
        "SELECT _id FROM data WHERE raw_contact_id = ? AND mimetype_id = ? ORDER BY _id LIMIT 1",
        (raw_id, mimetype_id),
    ).fetchone()
    if columns is None:
        if row is not None:
            conn.execute("DELETE FROM data WHERE _id = ?", row)
        return
    names = list(columns)
    if row is None:
        placeholders = ", ".join("?" * len(names))
        sql = f"INSERT INTO data (raw_contact_id, mimetype_id, is_primary, {', '.join(names)})"
        sql += f" VALUES (?, ?, 1, {placeholders})"
        conn.execute(sql, (raw_id, mimetype_id, *columns.values()))
    else:
        sql = f"UPDATE data SET {', '.join(f'{n} = ?' for n in names)} WHERE _id = ?"
        conn.execute(sql, (*columns.values(), row[0]))


def _save_contact(
    conn: sqlite3.Connection, raw_id: int | None, values: dict[str, str], phone_type: int = PHONE_TYPE_MOBILE
) -> int:
    """Insert (raw_id None) or update a contact from editor values; returns its raw contact id."""
    display = _display_name(values)
    if raw_id is None:
        raw_id = conn.execute("INSERT INTO raw_contacts (display_name) VALUES (?)", (display,)).lastrowid
    conn.execute(
        "UPDATE raw_contacts SET display_name = ?, display_name_alt = ?, display_name_source = ?, sort_key = ?,"
        " sort_key_alt = ?, phonebook_label = ?, phonebook_label_alt = ?, phonebook_bucket = ?,"
        " phonebook_bucket_alt = ?, phonetic_name_style = '0' WHERE _id = ?",
        (display, *_name_columns(values, display), raw_id),
    )
    first, last = values["first_name"], values["last_name"]
    name = {"data1": " ".join(v for v in (first, last) if v), "data2": first or None, "data3": last or None}
    _put_item(conn, raw_id, NAME, name if first or last else None)
    number = values["phone"]
    phone = {"data1": number, "data2": phone_type, "data4": e164(number)}
    _put_item(conn, raw_id, PHONE, phone if number else None)
    email = values["email"]
    _put_item(conn, raw_id, EMAIL, {"data1": email, "data2": EMAIL_TYPE_HOME} if email else None)
    company = values["company"]
    _put_item(conn, raw_id, ORGANIZATION, {"data1": company, "data2": ORG_TYPE_WORK} if company else None)
    return raw_id


def _load_contact(conn: sqlite3.Connection, raw_id: int) -> dict[str, Any] | None:
    """A contact with all its data rows, or None when it does not exist (any more)."""
    row = conn.execute(
        "SELECT display_name, starred FROM raw_contacts WHERE _id = ? AND deleted = 0", (raw_id,)
    ).fetchone()
    if row is None:
        return None
    contact: dict[str, Any] = {
        "display_name": row[0] or "",
        "starred": bool(row[1]),
        "phones": [],
        "emails": [],
    }
    contact.update(first_name="", last_name="", company="")
    items = conn.execute(
        "SELECT m.mimetype, d.data1, d.data2, d.data3 FROM data d JOIN mimetypes m ON m._id = d.mimetype_id"
        " WHERE d.raw_contact_id = ? ORDER BY d._id",
        (raw_id,),
    ).fetchall()
    for mimetype, data1, data2, data3 in items:
        if mimetype == NAME:
            contact["first_name"], contact["last_name"] = data2 or "", data3 or ""
        elif mimetype == PHONE:
            contact["phones"].append((data1 or "", PHONE_LABELS.get(_int(data2), "Mobile")))
        elif mimetype == EMAIL:
            contact["emails"].append((data1 or "", EMAIL_LABELS.get(_int(data2), "Home")))
        elif mimetype == ORGANIZATION and not contact["company"]:
            contact["company"] = data1 or ""
    derived = {contact["company"], *(n for n, _ in contact["phones"]), *(e for e, _ in contact["emails"])}
    if not any(m == NAME for m, *_ in items) and contact["display_name"] not in derived:
        # A row written without a name item (e.g. by a task's setup SQL): edit its display name.
        contact["first_name"], contact["last_name"] = _split_name(contact["display_name"])
    return contact


def _split_name(name: str) -> tuple[str, str]:
    """("Jane Q Doe") -> ("Jane Q", "Doe"): the last word is the family name, as Android's NameSplitter."""
    first, _, last = name.strip().rpartition(" ")
    return (first, last) if first else (last, "")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# ---- contact list (PeopleActivity) -----------------------------------------------------------------------


def _section(name: str) -> str:
    first = name[:1].upper()
    return first if first.isalpha() else "#"


def _matches(query: str, name: str, numbers: list[str], emails: list[str]) -> bool:
    """Like the real search: a prefix of any word of the name, part of a number, or an email prefix."""
    q = query.strip().casefold()
    if not q:
        return True
    words = name.casefold().split()
    if name.casefold().startswith(q) or any(w.startswith(q) for w in words):
        return True
    digits = normalize_number(q)
    if digits and re.fullmatch(r"[\d\s()+\-.]+", q) and any(digits in normalize_number(n) for n in numbers):
        return True
    return any(e.casefold().startswith(q) for e in emails)


def list_screen(ctx: Ctx) -> Screen:
    with open_db(ctx.phone) as conn:
        contacts = conn.execute("SELECT _id, display_name FROM raw_contacts WHERE deleted = 0").fetchall()
        details: dict[int, tuple[list[str], list[str]]] = {raw_id: ([], []) for raw_id, _ in contacts}
        for raw_id, mimetype, data1 in conn.execute(
            "SELECT d.raw_contact_id, m.mimetype, d.data1 FROM data d JOIN mimetypes m ON m._id = d.mimetype_id"
            " WHERE m.mimetype IN (?, ?)",
            (PHONE, EMAIL),
        ):
            if raw_id in details and data1:
                details[raw_id][0 if mimetype == PHONE else 1].append(data1)
    # Letters A-Z first, then names starting with a digit or symbol under "#", as the real list does.
    contacts.sort(key=lambda c: (_section(c[1] or "") == "#", (c[1] or "").casefold(), c[0]))

    query, focused = ctx.field("query"), ctx.focused("query")
    searching = bool(query.strip()) or focused
    rows = [edit("query", query, "Search contacts", "open_search_view_edit_text", focused=focused)]
    shown = [(i, name or "") for i, name in contacts if _matches(query, name or "", *details[i])]
    section = None
    for raw_id, name in shown:
        if not searching and _section(name) != section:
            section = _section(name)
            rows.append(header(section, rid="section_header"))
        rows.append(
            item(
                name,
                avatar=name,
                on_click=lambda raw_id=raw_id: ctx.start(DETAILS, contact_id=raw_id),
                rid="contact_list_item",
                title_rid="cliv_name_textview",
            )
        )
    if not contacts:
        rows.append(text("Your contacts list is empty", align="center", rid="empty_list_message"))
    elif not shown:
        rows.append(text("No contacts found", align="center", rid="empty_list_message"))
    fab = None
    if not focused:  # the open search view (keyboard up) covers the FAB
        fab = icon_button("Create contact", lambda: ctx.start(EDITOR), "floating_action_button", "+")
    return Screen(title="Contacts", rows=rows, fab=fab, app_bar=False)


# ---- contact details (QuickContactActivity) --------------------------------------------------------------


def details_screen(ctx: Ctx) -> Screen:
    raw_id = ctx.args.get("contact_id")
    with open_db(ctx.phone) as conn:
        contact = _load_contact(conn, raw_id) if isinstance(raw_id, int) else None
    if contact is None:
        gone = text("This contact no longer exists", align="center", rid="empty")
        return Screen(up=ctx.finish, rows=[gone])

    def toggle_star() -> None:
        starred = 0 if contact["starred"] else 1
        with open_db(ctx.phone) as conn:
            conn.execute("UPDATE raw_contacts SET starred = ? WHERE _id = ?", (starred, raw_id))
        ctx.refresh()

    def delete() -> None:
        with open_db(ctx.phone) as conn:
            conn.execute("DELETE FROM raw_contacts WHERE _id = ?", (raw_id,))  # a trigger drops its data
        ctx.toast("Contact deleted")
        ctx.finish()

    def open_dialog(name: str | None) -> None:
        ctx.extra["dialog"] = name

    star_desc = "Remove from favorites" if contact["starred"] else "Add to favorites"
    star = icon_button(star_desc, toggle_star, "menu_star", "★")
    # TODO(render): no outline-star glyph ("☆" draws as a missing-glyph box); a grey star stands in.
    star.color = "accent" if contact["starred"] else "text2"
    actions = [
        star,
        icon_button("Edit contact", lambda: ctx.start(EDITOR, contact_id=raw_id), "menu_edit", "✎"),
        icon_button("More options", lambda: open_dialog("menu"), glyph="⋮"),
    ]
    rows = [spacer(24), text(contact["display_name"], size=30, align="center", rid="large_title")]
    if contact["company"]:
        rows.append(text(contact["company"], size=16, align="center", rid="organization"))
    if contact["phones"] or contact["emails"]:
        rows += [spacer(16), header("Contact info", rid="section_header")]
    for number, label in contact["phones"]:
        rows.append(item(format_number(number), label, title_rid="header", subtitle_rid="sub_header"))
    for address, label in contact["emails"]:
        rows.append(item(address, label, title_rid="header", subtitle_rid="sub_header"))

    dialog = None
    if ctx.extra.get("dialog") == "menu":
        # TODO(core): an anchored overflow popup; a dialog with the menu rows stands in for it.
        delete_row = item("Delete", on_click=lambda: open_dialog("delete"), rid="menu_delete")
        dialog = Dialog(rows=[delete_row], on_cancel=lambda: open_dialog(None))
    elif ctx.extra.get("dialog") == "delete":
        dialog = Dialog(
            title="Delete this contact?",
            buttons=[("Delete", delete), ("Cancel", lambda: open_dialog(None))],
            on_cancel=lambda: open_dialog(None),
        )
    return Screen(up=ctx.finish, actions=actions, rows=rows, dialog=dialog)


# ---- editor (ContactEditorActivity) ----------------------------------------------------------------------


def _editor_initial(ctx: Ctx) -> dict[str, str]:
    """Field values the editor opens with: the stored contact, or the INSERT intent's extras."""
    values = dict.fromkeys(FIELD_KEYS, "")
    raw_id = ctx.args.get("contact_id")
    if isinstance(raw_id, int):
        with open_db(ctx.phone) as conn:
            contact = _load_contact(conn, raw_id)
        if contact is not None:
            for key in ("first_name", "last_name", "company"):
                values[key] = contact[key]
            values["phone"] = contact["phones"][0][0] if contact["phones"] else ""
            if contact["phones"]:
                ctx.extra["phone_label"] = contact["phones"][0][1]  # the spinner shows the saved type
            values["email"] = contact["emails"][0][0] if contact["emails"] else ""
        return values
    # Intents.Insert extras (`am start -a android.intent.action.INSERT -e name ... -e phone ...`).
    values["first_name"], values["last_name"] = _split_name(str(ctx.args.get("name", "")))
    for key in ("phone", "email", "company"):
        values[key] = str(ctx.args.get(key, ""))
    return values


def _phone_type(ctx: Ctx) -> int:
    label = ctx.extra.get("phone_label", "Mobile")
    return next(t for t, name in PHONE_LABELS.items() if name == label)


def _phone_type_spinner(ctx: Ctx) -> Node:
    """The Spinner beside the phone field: shows the type ("Mobile"), content-desc "Mobile Phone"."""
    label = ctx.extra.get("phone_label", "Mobile")
    row = item(label, on_click=lambda: ctx.extra.update(dialog="phone_type"), title_rid="spinner_text")
    row.children[0].desc = f"{label} Phone"
    return row


def _phone_type_chooser(ctx: Ctx) -> Dialog:
    def choose(label: str) -> None:
        ctx.extra.update(phone_label=label, dialog=None)

    close = lambda: ctx.extra.update(dialog=None)  # noqa: E731
    rows = [item(label, on_click=lambda label=label: choose(label)) for label in PHONE_LABELS.values()]
    return Dialog(rows=rows, on_cancel=close)


def editor_screen(ctx: Ctx) -> Screen:
    if "initial" not in ctx.extra:
        # Runs once, like onCreate: the phone types into activity.fields, so prefilled text must be there
        # for typing to append to it rather than start from an empty field.
        ctx.extra["initial"] = _editor_initial(ctx)
        for key, value in ctx.extra["initial"].items():
            ctx.set_field(key, value)
    raw_id = ctx.args.get("contact_id")
    editing = isinstance(raw_id, int)

    def values() -> dict[str, str]:
        return {key: ctx.field(key).strip() for key in FIELD_KEYS}

    def save() -> None:
        current = values()
        if not any(current.values()):
            ctx.toast(EMPTY_CONTACT_TOAST)
            return
        with open_db(ctx.phone) as conn:
            if editing and _load_contact(conn, raw_id) is None:  # deleted while the editor was open
                ctx.toast("Couldn't save contact changes")
                ctx.finish()
                return
            saved_id = _save_contact(conn, raw_id if editing else None, current, _phone_type(ctx))
        ctx.toast("Contact saved")
        if editing:
            ctx.finish()
        else:
            ctx.replace(DETAILS, contact_id=saved_id)

    def up() -> None:
        changed = any(ctx.field(key) != ctx.extra["initial"][key] for key in FIELD_KEYS)
        if changed:
            ctx.extra["dialog"] = "discard"
        else:
            ctx.finish()

    def keep_editing() -> None:
        ctx.extra["dialog"] = None

    rows = [spacer(8)]
    for key, hint, rid in EDITOR_FIELDS:
        rows.append(edit(key, ctx.field(key), hint, rid, focused=ctx.focused(key)))
        if key == "phone":
            rows.append(_phone_type_spinner(ctx))
    save_button = Node(
        cls=BUTTON,
        text="Save",
        rid="menu_save",
        kind="primary",
        clickable=True,
        focusable=True,
        on_click=save,
        size=16,
    )
    dialog = None
    if ctx.extra.get("dialog") == "phone_type":
        dialog = _phone_type_chooser(ctx)
    if ctx.extra.get("dialog") == "discard":
        dialog = Dialog(
            title="Discard changes?",
            buttons=[("Discard", ctx.finish), ("Keep editing", keep_editing)],
            on_cancel=keep_editing,
        )
    title = "Edit contact" if editing else "Create contact"
    return Screen(title=title, up=up, actions=[save_button], rows=rows, dialog=dialog)


# ---- intents (the manifest's filters; `am start` resolves against them) ----------------------------------

_DIR_TYPES = ("vnd.android.cursor.dir/person", "vnd.android.cursor.dir/contact", "vnd.android.cursor.dir/raw_contact")
_ITEM_TYPES = ("vnd.android.cursor.item/person", "vnd.android.cursor.item/contact")
_ITEM_TYPES += ("vnd.android.cursor.item/raw_contact",)
_VIEW, _INSERT, _EDIT = "android.intent.action.VIEW", "android.intent.action.INSERT", "android.intent.action.EDIT"
INTENT_FILTERS = [
    IntentFilter(
        LIST,
        ("android.intent.action.MAIN",),
        (DEFAULT, "android.intent.category.LAUNCHER", "android.intent.category.APP_CONTACTS"),
    ),
    IntentFilter(LIST, (_VIEW,), mime_types=_DIR_TYPES),
    IntentFilter(DETAILS, (_VIEW,), mime_types=_ITEM_TYPES),
    IntentFilter(EDITOR, (_INSERT,), mime_types=_DIR_TYPES),
    IntentFilter(EDITOR, (_EDIT,), mime_types=_ITEM_TYPES),
]


def on_intent(activity: str, intent: Intent) -> tuple[str, dict[str, Any]]:
    """A contact URI (`content://contacts/people/3`) opens that contact; INSERT extras fill the editor."""
    args = {k: v for k, v in (intent.extras or {}).items() if isinstance(v, str)}
    found = re.search(r"/(\d+)$", intent.data or "")
    if found and activity in (DETAILS, EDITOR):
        args["contact_id"] = int(found.group(1))
    return activity, args


APP = App(
    package=PACKAGE,
    label="Contacts",
    activities={LIST: list_screen, DETAILS: details_screen, EDITOR: editor_screen},
    intent_filters=INTENT_FILTERS,
    on_intent=on_intent,
    icon="C",  # TODO(render): no person glyph yet; the real icon is a person silhouette
    color="#1a73e8",
    version_name="4.22.37.586680692",
    install=install,
    permissions=["android.permission.READ_CONTACTS", "android.permission.WRITE_CONTACTS"],
)
