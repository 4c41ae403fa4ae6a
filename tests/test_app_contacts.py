"""The simulated Google Contacts app, driven through the phone's input API and checked via contacts2.db."""

import sqlite3
import xml.etree.ElementTree as ET

import pytest

from droidrl.envs.sim.apps import contacts, launcher
from droidrl.envs.sim.phone import LAUNCHER, Phone

PKG = contacts.PACKAGE
DB = contacts.DB_PATH
BACK, DEL, CTRL_LEFT, A = 4, 67, 113, 29


@pytest.fixture
def phone() -> Phone:
    return Phone(apps=[launcher.APP, contacts.APP])


def names_and_numbers(phone: Phone) -> list[tuple[str, str]]:
    """(display name, number as typed) for every contact's phone rows, as android_world reads them."""
    with phone.fs.sqlite(DB) as conn:
        return conn.execute(
            "SELECT r.display_name, d.data1 FROM raw_contacts r JOIN data d ON d.raw_contact_id = r._id"
            " JOIN mimetypes m ON m._id = d.mimetype_id"
            " WHERE m.mimetype = 'vnd.android.cursor.item/phone_v2' AND r.deleted = 0 ORDER BY r._id"
        ).fetchall()


def contact_row(phone: Phone, name: str) -> tuple | None:
    with phone.fs.sqlite(DB) as conn:
        return conn.execute("SELECT _id, starred, deleted FROM raw_contacts WHERE display_name = ?", (name,)).fetchone()


def count(phone: Phone) -> int:
    with phone.fs.sqlite(DB) as conn:
        return conn.execute("SELECT count(*) FROM raw_contacts").fetchone()[0]


def screen_texts(phone: Phone) -> set[str]:
    return {n.get("text") for n in ET.fromstring(phone.ui_xml()).iter("node") if n.get("text")}


def fill(phone: Phone, rid: str, value: str) -> None:
    """Tap a field, select all, delete, type: what an agent does to replace a field's text."""
    phone.tap_node(rid=rid)
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text(value)


def add_contact(phone: Phone, first: str, last: str, number: str) -> None:
    phone.launch(PKG)
    phone.tap_node(desc="Create contact")
    fill(phone, "first_name", first)
    fill(phone, "last_name", last)
    fill(phone, "phone", number)
    phone.tap_node(rid="menu_save")


def test_seed_contacts_are_listed_alphabetically_with_headers(phone):
    phone.tap_node(text="Contacts")  # the launcher icon
    assert phone.current_activity() == (PKG, contacts.LIST)
    assert len(names_and_numbers(phone)) == 6
    root = ET.fromstring(phone.ui_xml())

    def texts_of(rid: str) -> list[str]:
        return [n.get("text") for n in root.iter("node") if n.get("resource-id") == f"{PKG}:id/{rid}"]

    shown = texts_of("cliv_name_textview")
    assert shown == sorted(shown) and "Alice Johnson" in shown
    headers = texts_of("section_header")
    assert headers[:3] == ["A", "B", "C"]
    # An empty field reports its hint as its text.
    search = next(n for n in root.iter("node") if n.get("text") == "Search contacts")
    assert search.get("class") == "android.widget.EditText"


def test_database_is_a_real_sqlite_file_at_the_provider_path(phone, tmp_path):
    pulled = tmp_path / "contacts2.db"
    pulled.write_bytes(phone.fs.read(DB))  # what `adb pull` hands a checker
    conn = sqlite3.connect(pulled)
    row = conn.execute(
        "SELECT d.data1, d.data4, l.normalized_number, l.min_match FROM raw_contacts r"
        " JOIN data d ON d.raw_contact_id = r._id JOIN mimetypes m ON m._id = d.mimetype_id"
        " JOIN phone_lookup l ON l.data_id = d._id"
        " WHERE r.display_name = 'Alice Johnson' AND m.mimetype = 'vnd.android.cursor.item/phone_v2'"
    ).fetchone()
    assert row == ("(650) 555-0134", "+16505550134", "+16505550134", "4310555")
    # AOSP's tables and mimetype ids (ContactsDatabaseHelper.COMMON_MIME_TYPES order); one aggregate each.
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"accounts", "contacts", "raw_contacts", "data", "mimetypes", "phone_lookup"} <= tables
    phone_mimetype = conn.execute("SELECT _id FROM mimetypes WHERE mimetype = 'vnd.android.cursor.item/phone_v2'")
    assert phone_mimetype.fetchone() == (5,)
    assert conn.execute(
        "SELECT c.has_phone_number, c.starred, r.account_id FROM contacts c JOIN raw_contacts r ON r.contact_id = c._id"
        " WHERE r.display_name = 'Carol Nguyen'"
    ).fetchone() == (1, 1, 1)


def test_add_contact_with_name_and_phone(phone):
    add_contact(phone, "Zoe", "Park", "4155550123")
    assert ("Zoe Park", "4155550123") in names_and_numbers(phone)
    assert phone.current_activity() == (PKG, contacts.DETAILS)
    assert phone.find(rid="large_title").text == "Zoe Park"
    assert phone.find(text="(415) 555-0123") is not None  # shown formatted, stored as typed
    with phone.fs.sqlite(DB) as conn:
        rows = conn.execute(
            "SELECT m.mimetype, d.data2, d.data3, d.data4 FROM raw_contacts r JOIN data d"
            " ON d.raw_contact_id = r._id JOIN mimetypes m ON m._id = d.mimetype_id"
            " WHERE r.display_name = 'Zoe Park' ORDER BY m.mimetype"
        ).fetchall()
    assert rows == [
        ("vnd.android.cursor.item/name", "Zoe", "Park", None),
        ("vnd.android.cursor.item/phone_v2", "2", None, "+14155550123"),  # type 2 = mobile
    ]
    phone.tap_node(desc="Navigate up")
    assert phone.current_activity() == (PKG, contacts.LIST)
    assert phone.find(text="Zoe Park") is not None


def test_search_filters_as_you_type(phone):
    add_contact(phone, "Zoe", "Park", "4155550123")
    phone.key(BACK)
    phone.tap_node(rid="open_search_view_edit_text")
    assert phone.find(desc="Create contact") is None  # the search view covers the FAB
    phone.type_text("pa")
    texts = screen_texts(phone)
    assert "Zoe Park" in texts and "Alice Johnson" not in texts
    phone.key(DEL)
    phone.key(DEL)
    phone.type_text("555-0147")  # numbers match too
    assert "Carol Nguyen" in screen_texts(phone) and "Zoe Park" not in screen_texts(phone)
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text("nobody")
    assert phone.find(text="No contacts found") is not None
    fill(phone, "open_search_view_edit_text", "zoe")
    phone.tap_node(text="Zoe Park")
    assert phone.find(rid="large_title").text == "Zoe Park"


def test_edit_phone_number(phone):
    phone.launch(PKG)
    phone.tap_node(text="Emma Wilson")
    phone.tap_node(desc="Edit contact")
    assert phone.find(text="Edit contact") is not None  # the editor's title
    assert phone.find(rid="first_name").text == "Emma"
    assert phone.find(rid="phone").text == "(617) 555-0118"
    phone.tap_node(rid="phone")
    for _ in range(4):
        phone.key(DEL)  # deletes from the prefilled text, as on a phone
    phone.type_text("0199")
    assert phone.find(rid="phone").text == "(617) 555-0199"
    phone.tap_node(rid="menu_save")
    assert phone.current_activity() == (PKG, contacts.DETAILS)
    assert phone.find(text="(617) 555-0199") is not None
    assert ("Emma Wilson", "(617) 555-0199") in names_and_numbers(phone)
    assert len(names_and_numbers(phone)) == 6


def test_star_toggles_favorite(phone):
    phone.launch(PKG)
    phone.tap_node(text="Alice Johnson")
    assert contact_row(phone, "Alice Johnson")[1] == 0
    phone.tap_node(desc="Add to favorites")
    assert contact_row(phone, "Alice Johnson")[1] == 1
    phone.tap_node(desc="Remove from favorites")
    assert contact_row(phone, "Alice Johnson")[1] == 0


def test_delete_asks_and_cancel_keeps_the_contact(phone):
    phone.launch(PKG)
    phone.tap_node(text="David Kim")
    phone.tap_node(desc="More options")
    phone.tap_node(text="Delete")
    assert phone.find(rid="alertTitle").text == "Delete this contact?"
    phone.tap_node(rid="android:id/button2")  # Cancel
    assert phone.find(rid="alertTitle") is None and contact_row(phone, "David Kim") is not None

    phone.tap_node(desc="More options")
    phone.tap_node(text="Delete")
    phone.tap_node(rid="android:id/button1")  # Delete
    assert contact_row(phone, "David Kim") is None
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT count(*) FROM data WHERE data1 = 'Northwind Traders'").fetchone() == (0,)
    assert phone.current_activity() == (PKG, contacts.LIST)
    assert phone.find(text="David Kim") is None and phone.find(text="Carol Nguyen") is not None


def test_navigate_up_discards_after_asking(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Create contact")
    assert phone.find(desc="Navigate up") is not None
    phone.tap_node(desc="Navigate up")  # nothing typed: leaves without asking
    assert phone.current_activity() == (PKG, contacts.LIST)

    phone.tap_node(desc="Create contact")
    fill(phone, "first_name", "Ghost")
    phone.key(BACK)  # hides the keyboard
    phone.tap_node(desc="Navigate up")
    assert phone.find(rid="alertTitle").text == "Discard changes?"
    phone.tap_node(rid="android:id/button2")  # Keep editing
    assert phone.find(rid="first_name").text == "Ghost"
    phone.tap_node(desc="Navigate up")
    phone.tap_node(rid="android:id/button1")  # Discard
    assert phone.current_activity() == (PKG, contacts.LIST)
    assert count(phone) == 6 and contact_row(phone, "Ghost") is None


def test_empty_contact_is_refused_with_a_toast(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Create contact")
    fill(phone, "first_name", "   ")  # whitespace only counts as empty
    phone.tap_node(rid="menu_save")
    assert contacts.EMPTY_CONTACT_TOAST in phone.ui_xml()
    assert phone.current_activity() == (PKG, contacts.EDITOR)
    assert count(phone) == 6


def test_company_only_contact_is_named_after_the_company(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Create contact")
    fill(phone, "company", "Acme Corp")
    phone.tap_node(rid="menu_save")
    assert contact_row(phone, "Acme Corp") is not None
    assert phone.find(rid="large_title").text == "Acme Corp"


def test_insert_intent_extras_prefill_the_editor(phone):
    # android_world adds contacts with `am start -a android.intent.action.INSERT -e name .. -e phone ..`.
    phone.launch(PKG, contacts.EDITOR, {"name": "Jane Q Doe", "phone": "5550100"})
    assert phone.find(rid="first_name").text == "Jane Q"
    assert phone.find(rid="last_name").text == "Doe"
    phone.tap_node(rid="menu_save")
    assert ("Jane Q Doe", "5550100") in names_and_numbers(phone)


def test_long_list_scrolls_to_the_last_contact(phone):
    with phone.fs.sqlite(DB) as conn:  # a task's setup writes the provider database directly
        for i in range(34):
            raw_id = conn.execute("INSERT INTO raw_contacts (display_name) VALUES (?)", (f"Person {i:02d}",)).lastrowid
            conn.execute(
                "INSERT INTO data (raw_contact_id, mimetype_id, data1)"
                " VALUES (?, (SELECT _id FROM mimetypes WHERE mimetype = ?), ?)",
                (raw_id, contacts.PHONE, f"555-01{i:02d}"),
            )
        conn.execute("INSERT INTO raw_contacts (display_name, deleted) VALUES ('Hidden Deleted', 1)")
    assert len(names_and_numbers(phone)) == 40
    phone.launch(PKG)
    assert phone.find(rid="list").scrollable
    assert phone.find(text="Person 33") is None
    for _ in range(20):
        if phone.find(text="Person 33") is not None:
            break
        phone.swipe(540, 1900, 540, 700, 300)
    assert phone.find(text="Person 33") is not None
    assert phone.find(text="Alice Johnson") is None
    assert "Hidden Deleted" not in phone.ui_xml()
    phone.tap_node(text="Person 33")
    assert phone.find(text="555-0133") is not None
    phone.tap_node(desc="Edit contact")  # a row without a name item still edits by its display name
    assert (phone.find(rid="first_name").text, phone.find(rid="last_name").text) == ("Person", "33")


def test_saving_a_contact_deleted_meanwhile_does_not_resurrect_it(phone):
    phone.launch(PKG)
    phone.tap_node(text="Frank Okafor")
    phone.tap_node(desc="Edit contact")
    assert phone.find(rid="first_name").text == "Frank"
    raw_id = contact_row(phone, "Frank Okafor")[0]
    with phone.fs.sqlite(DB) as conn:
        conn.execute("DELETE FROM data WHERE raw_contact_id = ?", (raw_id,))
        conn.execute("DELETE FROM raw_contacts WHERE _id = ?", (raw_id,))
    phone.tap_node(rid="menu_save")
    assert "Couldn't save contact changes" in phone.ui_xml()
    assert count(phone) == 5
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT count(*) FROM data WHERE raw_contact_id = ?", (raw_id,)).fetchone() == (0,)


def test_every_screen_but_the_list_has_navigate_up(phone):
    phone.launch(PKG)
    assert phone.find(desc="Navigate up") is None
    phone.tap_node(text="Bob Martinez")
    assert phone.find(desc="Navigate up") is not None
    phone.tap_node(desc="Edit contact")
    assert phone.find(desc="Navigate up") is not None
    phone.key(BACK)
    phone.key(BACK)
    assert phone.current_activity() == (PKG, contacts.LIST)
    phone.key(BACK)
    assert phone.current_activity()[0] == LAUNCHER


def test_snapshot_round_trip_restores_contacts_and_screen(phone):
    add_contact(phone, "Zoe", "Park", "4155550123")
    phone.save_snapshot("with_zoe")
    xml_before = phone.ui_xml()
    phone.tap_node(desc="More options")
    phone.tap_node(text="Delete")
    phone.tap_node(rid="android:id/button1")
    assert contact_row(phone, "Zoe Park") is None

    phone.load_snapshot("with_zoe")
    assert contact_row(phone, "Zoe Park") is not None
    assert phone.ui_xml() == xml_before
    phone.tap_node(desc="Navigate up")
    assert phone.find(text="Zoe Park") is not None


def test_clear_app_data_keeps_contacts_but_resets_the_app(phone):
    add_contact(phone, "Zoe", "Park", "4155550123")
    phone.clear_app_data(PKG)
    assert PKG not in phone.state.tasks
    assert contact_row(phone, "Zoe Park") is not None  # contacts belong to the provider
    assert count(phone) == 7
    phone.launch(PKG)
    assert phone.current_activity() == (PKG, contacts.LIST)


def test_missing_database_comes_back_empty(phone):
    phone.fs.remove(DB)  # like clearing the contacts provider
    phone.launch(PKG)
    assert phone.find(text="Your contacts list is empty") is not None
    add_contact(phone, "Only", "One", "555")
    assert names_and_numbers(phone) == [("Only One", "555")]


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("6505550134", "(650) 555-0134"),
        ("+16505550134", "+1 650-555-0134"),
        ("650-555", "650-555"),
        ("12", "12"),
    ],
)
def test_format_number(typed, shown):
    assert contacts.format_number(typed) == shown


def test_clearing_the_provider_over_the_shell_empties_contacts(phone):
    # android_world's clear_contacts runs `pm clear com.android.providers.contacts`.
    assert phone.shell("pm clear com.android.providers.contacts").exit_code == 0
    phone.launch(PKG)
    assert phone.find(text="Your contacts list is empty") is not None
    add_contact(phone, "Only", "One", "555")
    sql = "SELECT display_name FROM raw_contacts"
    assert phone.shell(f'sqlite3 {DB} "{sql}"').stdout == b"Only One\n"
