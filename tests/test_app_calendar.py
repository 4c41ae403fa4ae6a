"""The simulated Simple Calendar Pro, driven through the phone's input API and checked via events.db."""

import datetime as dt
import sqlite3
import xml.etree.ElementTree as ET

import pytest

from droidrl.envs.sim.apps import calendar, launcher
from droidrl.envs.sim.phone import LAUNCHER, Phone

PKG = calendar.PACKAGE
DB = calendar.DB_PATH
BACK, DEL, CTRL_LEFT, A = 4, 67, 113, 29


def ts(day: int, hour: int, minute: int = 0, month: int = 10) -> int:
    return int(dt.datetime(2023, month, day, hour, minute, tzinfo=dt.UTC).timestamp())


@pytest.fixture
def phone() -> Phone:
    phone = Phone(apps=[launcher.APP, calendar.APP])
    with phone.fs.sqlite(DB) as conn:  # what a task's setup writes
        conn.executemany(
            "INSERT INTO events (start_ts, end_ts, title, location, description) VALUES (?, ?, ?, ?, ?)",
            [
                (ts(15, 9), ts(15, 10), "Dentist", "Main Street Clinic", ""),
                (ts(16, 10), ts(16, 11), "Team standup", "", "Daily sync"),
                (ts(16, 18), ts(16, 19, 30), "Yoga class", "Studio 4", ""),
                (ts(3, 12, month=11), ts(3, 13, month=11), "Lunch with Sam", "", ""),
            ],
        )
    return phone


def events(phone: Phone) -> list[tuple]:
    with phone.fs.sqlite(DB) as conn:
        return conn.execute("SELECT title, start_ts, end_ts, location, description FROM events ORDER BY id").fetchall()


def texts(phone: Phone) -> list[str]:
    return [n.get("text") for n in ET.fromstring(phone.ui_xml()).iter("node") if n.get("text")]


def titles(phone: Phone) -> list[str]:
    """The event titles the day view lists, top to bottom."""
    rid = f"{PKG}:id/event_item_title"
    return [n.get("text") for n in ET.fromstring(phone.ui_xml()).iter("node") if n.get("resource-id") == rid]


def fill(phone: Phone, rid: str, value: str) -> None:
    phone.tap_node(rid=rid)
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text(value)


def set_time(phone: Phone, rid: str, hour: str, minute: str) -> None:
    phone.tap_node(rid=rid)
    fill(phone, "android:id/input_hour", hour)
    fill(phone, "android:id/input_minute", minute)
    phone.tap_node(rid="android:id/button1")


def test_month_view_shows_the_frozen_month_with_event_titles(phone):
    phone.tap_node(text="Simple Calendar Pro")  # the launcher icon
    assert phone.current_activity() == (PKG, calendar.MAIN)
    assert phone.find(rid="top_value").text == "October"
    today = phone.find(desc="October 15, 2023")
    assert today.text == "15\nDentist" and today.bold
    assert phone.find(desc="October 16, 2023").text == "16\nTeam standup\nYoga class"
    assert phone.find(desc="Go to today") is None  # already on today's month
    assert phone.find(desc="New Event") is not None


def test_database_matches_the_real_apps_columns(phone, tmp_path):
    pulled = tmp_path / "events.db"
    pulled.write_bytes(phone.fs.read(DB))
    conn = sqlite3.connect(pulled)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    assert columns[:7] == ["id", "start_ts", "end_ts", "title", "location", "description", "reminder_1_minutes"]
    assert {"repeat_interval", "repeat_rule", "repeat_limit", "event_type", "flags", "type"} <= set(columns)
    assert conn.execute("SELECT title FROM event_types").fetchall() == [("Regular event",)]


def test_month_arrows_and_go_to_today(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Next")
    assert phone.find(rid="top_value").text == "November"
    assert phone.find(desc="November 3, 2023").text == "3\nLunch with Sam"
    phone.tap_node(desc="Go to today")
    assert phone.find(rid="top_value").text == "October"
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    assert phone.find(rid="top_value").text == "July"
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    phone.tap_node(desc="Previous")
    assert phone.find(rid="top_value").text == "December 2022"


def test_day_view_lists_events_and_back_returns_to_the_month(phone):
    phone.launch(PKG)
    phone.tap_node(desc="October 16, 2023")
    assert phone.find(rid="top_value").text == "October 16 (Mon)"
    assert titles(phone) == ["Team standup", "Yoga class"]
    assert "18:00 - 19:30" in texts(phone)
    phone.tap_node(desc="Next")
    assert phone.find(rid="top_value").text == "October 17 (Tue)"
    assert phone.find(rid="event_item_title") is None
    phone.key(BACK)
    assert phone.find(rid="top_value").text == "October"
    phone.key(BACK)
    assert phone.current_activity()[0] == LAUNCHER


def test_event_list_view_is_remembered(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Change view")
    phone.tap_node(text="Simple event list")
    shown = texts(phone)
    assert shown.index("Sunday, October 15") < shown.index("Dentist") < shown.index("Monday, October 16")
    assert "Lunch with Sam" in shown
    phone.key(BACK)
    phone.launch(PKG)
    assert phone.find(text="Monday, October 16") is not None  # stored in shared_prefs
    assert b'name="view" value="3"' in phone.fs.read(calendar.PREFS_PATH)


def test_add_event_with_pickers(phone):
    phone.launch(PKG)
    phone.tap_node(desc="New Event")
    assert phone.current_activity() == (PKG, calendar.EVENT)
    assert phone.find(rid="event_start_date").text == "Sun, Oct 15, 2023"
    assert (phone.find(rid="event_start_time").text, phone.find(rid="event_end_time").text) == ("16:00", "17:00")
    phone.tap_node(rid="event_start_date")
    phone.tap_node(desc="Next month")
    assert phone.find(rid="android:id/month_view").text == "November 2023"
    phone.tap_node(desc="7 November 2023")
    assert phone.find(rid="android:id/alertTitle").text == "Tue, Nov 7, 2023"
    phone.tap_node(rid="android:id/button1")
    set_time(phone, "event_start_time", "9", "30")
    assert phone.find(rid="event_end_time").text == "10:30"  # the end keeps the hour-long duration
    set_time(phone, "event_end_time", "11", "15")
    fill(phone, "event_title", "Book club")
    fill(phone, "event_description", "Bring the novel")
    phone.tap_node(desc="Save")
    assert phone.current_activity() == (PKG, calendar.MAIN)
    assert events(phone)[-1] == ("Book club", ts(7, 9, 30, month=11), ts(7, 11, 15, month=11), "", "Bring the novel")
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute(
            "SELECT reminder_1_minutes, event_type, type FROM events WHERE title = 'Book club'"
        ).fetchone() == (
            10,
            1,
            0,
        )


def test_new_event_from_a_day_view_starts_on_that_day(phone):
    phone.launch(PKG)
    phone.tap_node(desc="October 20, 2023")
    phone.tap_node(desc="New Event")
    assert phone.find(rid="event_start_date").text == "Fri, Oct 20, 2023"
    fill(phone, "event_title", "Movie night")
    phone.tap_node(desc="Save")
    assert events(phone)[-1][:3] == ("Movie night", ts(20, 16), ts(20, 17))
    assert phone.find(text="Movie night") is not None  # back on the day view


def test_invalid_input_is_refused(phone):
    phone.launch(PKG)
    phone.tap_node(desc="New Event")
    phone.tap_node(desc="Save")
    assert calendar.TITLE_EMPTY_TOAST in phone.ui_xml()
    phone.tap_node(rid="event_start_time")
    fill(phone, "android:id/input_hour", "25")
    phone.tap_node(rid="android:id/button1")
    assert phone.find(text="Enter a valid time") is not None
    phone.tap_node(rid="android:id/button2")  # Cancel
    fill(phone, "event_title", "Backwards")
    set_time(phone, "event_end_time", "8", "00")
    phone.tap_node(desc="Save")
    assert calendar.END_BEFORE_START_TOAST in phone.ui_xml()
    assert len(events(phone)) == 4


def test_edit_title_and_location(phone):
    phone.launch(PKG)
    phone.tap_node(desc="October 16, 2023")
    phone.tap_node(text="Yoga class")
    assert phone.find(text="Edit Event") is not None
    assert phone.find(rid="event_location").text == "Studio 4"
    fill(phone, "event_title", "Pilates class")
    fill(phone, "event_location", "Studio 7")
    phone.tap_node(desc="Save")
    assert events(phone)[2] == ("Pilates class", ts(16, 18), ts(16, 19, 30), "Studio 7", "")
    assert titles(phone) == ["Team standup", "Pilates class"]


def test_delete_asks_first(phone):
    phone.launch(PKG)
    phone.tap_node(desc="October 15, 2023")
    phone.tap_node(text="Dentist")
    phone.tap_node(desc="Delete")
    assert phone.find(rid="android:id/message").text == calendar.DELETE_MESSAGE
    phone.tap_node(text="No")
    assert len(events(phone)) == 4
    phone.tap_node(desc="Delete")
    phone.tap_node(text="Yes")
    assert [e[0] for e in events(phone)] == ["Team standup", "Yoga class", "Lunch with Sam"]
    assert phone.current_activity() == (PKG, calendar.MAIN)
    assert phone.find(rid="event_item_title") is None


def test_leaving_with_changes_asks_to_save(phone):
    phone.launch(PKG)
    phone.tap_node(desc="New Event")
    phone.tap_node(desc="Navigate up")  # nothing changed: leaves at once
    assert phone.current_activity() == (PKG, calendar.MAIN)
    phone.tap_node(desc="New Event")
    fill(phone, "event_title", "Draft")
    phone.key(BACK)  # hides the keyboard
    phone.key(BACK)
    assert phone.find(text="Discard") is not None
    phone.tap_node(text="Discard")
    assert phone.current_activity() == (PKG, calendar.MAIN) and len(events(phone)) == 4


def test_go_to_date_from_the_menu(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Change view")
    phone.tap_node(text="Daily view")
    assert phone.find(rid="top_value").text == "October 15 (Sun)"
    phone.tap_node(desc="More options")
    phone.tap_node(text="Go to date")
    phone.tap_node(desc="Next month")
    phone.tap_node(desc="3 November 2023")
    phone.tap_node(text="OK")
    assert phone.find(rid="top_value").text == "November 3 (Fri)"
    assert phone.find(text="Lunch with Sam") is not None
    assert phone.find(desc="Go to today") is not None


def test_all_day_event(phone):
    phone.launch(PKG)
    phone.tap_node(desc="New Event")
    fill(phone, "event_title", "Holiday")
    phone.tap_node(text="All-day")
    assert phone.find(rid="event_start_time").text == ""
    phone.tap_node(desc="Save")
    with phone.fs.sqlite(DB) as conn:
        row = conn.execute("SELECT start_ts, end_ts, flags FROM events WHERE title = 'Holiday'").fetchone()
    assert row == (ts(15, 0), ts(15, 0), calendar.FLAG_ALL_DAY)


def test_clear_app_data_empties_the_calendar(phone):
    assert phone.shell(f"pm clear {PKG}").exit_code == 0
    assert events(phone) == []
    phone.launch(PKG)
    assert phone.find(desc="October 15, 2023").text == "15"
