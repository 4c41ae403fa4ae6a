"""The simulated Simple SMS Messenger, driven through the phone's input API and checked via mmssms.db."""

import sqlite3
import xml.etree.ElementTree as ET

import pytest

from droidrl.envs.sim.apps import contacts, launcher, sms
from droidrl.envs.sim.phone import Phone

PKG = sms.PACKAGE
DB = sms.DB_PATH
BACK = 4
NOW_MS = 1697384040000  # the frozen clock, 2023-10-15 15:34 UTC


@pytest.fixture
def phone() -> Phone:
    p = Phone(apps=[launcher.APP, contacts.APP, sms.APP])
    p.launch(PKG)
    return p


def messages(phone: Phone) -> list[tuple]:
    """(thread_id, address, type, read, body) of every message, as `content query --uri content://sms` lists them."""
    with phone.fs.sqlite(DB) as conn:
        return conn.execute("SELECT thread_id, address, type, read, body FROM sms ORDER BY _id").fetchall()


def texts_of(phone: Phone, rid: str) -> list[str]:
    root = ET.fromstring(phone.ui_xml())
    return [n.get("text") for n in root.iter("node") if n.get("resource-id") == f"{PKG}:id/{rid}"]


def send(phone: Phone, body: str) -> None:
    phone.tap_node(rid="thread_type_message")
    phone.type_text(body)
    phone.tap_node(rid="thread_send_message")


def test_conversations_are_listed_newest_first_with_contact_names(phone):
    assert phone.current_activity() == (PKG, sms.MAIN)
    assert texts_of(phone, "conversation_address") == ["32665", "Bob Martinez", "Alice Johnson"]
    assert texts_of(phone, "conversation_body_short")[2] == "Yes! 12:30 at the usual place"
    assert texts_of(phone, "conversation_date") == ["14:49", "12:34", "14.10.2023"]


def test_database_is_a_real_sqlite_file_with_threads(phone, tmp_path):
    pulled = tmp_path / "mmssms.db"
    pulled.write_bytes(phone.fs.read(DB))  # what `adb pull` hands a checker
    conn = sqlite3.connect(pulled)
    rows = conn.execute("SELECT _id, recipient_ids, message_count, snippet, read FROM threads ORDER BY _id").fetchall()
    assert rows[0] == (1, "1", 2, "Yes! 12:30 at the usual place", 1)
    assert rows[2][2:] == (1, "Your verification code is 482913. Do not share it with anyone.", 0)
    assert conn.execute("SELECT address FROM canonical_addresses WHERE _id = 2").fetchone() == ("+14155550199",)


def test_reply_in_a_thread_inserts_a_sent_message(phone):
    phone.tap_node(text="Alice Johnson")
    assert phone.current_activity() == (PKG, sms.THREAD)
    assert texts_of(phone, "thread_message_body") == [
        "Are we still on for lunch tomorrow?",
        "Yes! 12:30 at the usual place",
    ]
    assert not phone.find(rid="thread_send_message").enabled  # nothing typed yet
    send(phone, "Running 5 minutes late")
    assert messages(phone)[-1] == (1, "+16505550134", 2, 1, "Running 5 minutes late")
    assert texts_of(phone, "thread_type_message") == ["Type a message…"]  # emptied: the hint shows
    assert "Running 5 minutes late" in texts_of(phone, "thread_message_body")
    phone.key(BACK)  # hides the keyboard
    phone.tap_node(desc="Navigate up")
    assert texts_of(phone, "conversation_address")[0] == "Alice Johnson"
    assert texts_of(phone, "conversation_body_short")[0] == "Running 5 minutes late"
    assert texts_of(phone, "conversation_date")[0] == "15:34"
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT date, message_count FROM threads WHERE _id = 1").fetchone() == (NOW_MS, 3)


def test_opening_an_unread_thread_marks_it_read(phone):
    assert messages(phone)[3][3] == 0
    phone.tap_node(text="32665")
    assert messages(phone)[3][3] == 1
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT read FROM threads WHERE _id = 3").fetchone() == (1,)


def test_new_conversation_to_a_typed_number(phone):
    phone.tap_node(desc="New conversation")
    assert phone.current_activity() == (PKG, sms.NEW_CONVERSATION)
    assert phone.find(rid="new_conversation_confirm") is None
    phone.tap_node(rid="new_conversation_address")
    phone.type_text("555-0142")
    assert texts_of(phone, "item_contact_name") == []  # no contact has that number
    phone.tap_node(rid="new_conversation_confirm")
    assert phone.current_activity() == (PKG, sms.THREAD)
    assert phone.find(text="555-0142") is not None  # the thread's title
    send(phone, "Hello there")
    assert messages(phone)[-1] == (4, "555-0142", 2, 1, "Hello there")
    phone.key(BACK)
    phone.key(BACK)  # the new-conversation screen closed when the thread opened
    assert phone.current_activity() == (PKG, sms.MAIN)
    assert texts_of(phone, "conversation_address")[0] == "555-0142"


def test_new_conversation_with_a_contact_joins_the_existing_thread(phone):
    phone.tap_node(desc="New conversation")
    phone.tap_node(rid="new_conversation_address")
    phone.type_text("ali")
    assert texts_of(phone, "item_contact_name") == ["Alice Johnson"]
    phone.tap_node(text="Alice Johnson")
    assert phone.find(text="Alice Johnson") is not None
    assert len(texts_of(phone, "thread_message_body")) == 2  # the earlier messages show
    send(phone, "Lunch at noon?")
    thread_id, address, kind, _, body = messages(phone)[-1]
    assert (thread_id, kind, body) == (1, 2, "Lunch at noon?")
    assert contacts.normalize_number(address) == "6505550134"


def test_delete_a_conversation_from_its_thread(phone):
    phone.tap_node(text="Bob Martinez")
    phone.tap_node(desc="Delete")
    assert phone.find(text="Are you sure you want to delete all messages of this conversation?") is not None
    phone.tap_node(text="No")
    assert len(messages(phone)) == 4
    phone.tap_node(desc="Delete")
    phone.tap_node(text="Yes")
    assert phone.current_activity() == (PKG, sms.MAIN)
    assert texts_of(phone, "conversation_address") == ["32665", "Alice Johnson"]
    assert all(m[1] != "+14155550199" for m in messages(phone))
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT _id FROM threads ORDER BY _id").fetchall() == [(1,), (3,)]


def test_long_press_selects_conversations_to_delete(phone):
    phone.long_press(*phone.find(text="32665").center)
    assert phone.find(text="1 / 3") is not None
    phone.tap_node(text="Alice Johnson")  # a tap adds to the selection instead of opening
    assert phone.current_activity() == (PKG, sms.MAIN) and phone.find(text="2 / 3") is not None
    phone.tap_node(desc="Delete")
    phone.tap_node(text="Yes")
    assert texts_of(phone, "conversation_address") == ["Bob Martinez"]
    assert [m[1] for m in messages(phone)] == ["+14155550199"]
    assert phone.find(desc="New conversation") is not None  # the selection mode ended


def test_messages_survive_pm_clear_and_a_cleared_provider_is_empty(phone):
    phone.shell(f"pm clear {PKG}")
    assert len(messages(phone)) == 4
    phone.shell("pm clear com.android.providers.telephony")
    phone.launch(PKG)
    assert phone.find(text="No stored conversations have been found") is not None
    phone.tap_node(text="Start a conversation")
    assert phone.current_activity() == (PKG, sms.NEW_CONVERSATION)
