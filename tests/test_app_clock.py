"""The simulated Google Clock, driven through the input API and checked via sqlite and the XML dump."""

from __future__ import annotations

import sqlite3

import pytest

from droidrl.envs.sim.apps import clock
from droidrl.envs.sim.phone import KEYCODE_BACK, Phone

PKG = "com.google.android.deskclock"
DB_PATH = f"/data/data/{PKG}/databases/alarms.db"
IME = "com.google.android.inputmethod.latin"


@pytest.fixture
def phone() -> Phone:
    p = Phone()
    p.launch(PKG)
    return p


def rows(phone: Phone, sql: str) -> list[tuple]:
    with phone.fs.sqlite(DB_PATH) as conn:
        return conn.execute(sql).fetchall()


def alarms(phone: Phone) -> list[tuple]:
    return rows(phone, "SELECT hour, minutes, enabled, daysofweek, vibrate, label FROM alarm_templates ORDER BY _id")


def texts(phone: Phone) -> list[str]:
    return [n.text for w in phone.windows() for n in w.walk() if n.text]


def node_text(phone: Phone, rid: str) -> str:
    node = phone.find(rid=rid)
    assert node is not None, f"no {rid} on screen"
    return node.text


def has_desc(phone: Phone, desc: str) -> bool:
    return phone.find(desc=desc) is not None


def go_to(phone: Phone, tab: str) -> None:
    phone.tap_node(rid=f"tab_menu_{tab}")


def type_into(phone: Phone, rid: str, value: str) -> None:
    phone.tap_node(rid=rid)
    phone.type_text(value)


# ---- install, launch, tabs ----------------------------------------------------------------------


def test_fresh_install_has_two_alarms_and_a_reset_stopwatch(phone: Phone) -> None:
    assert alarms(phone) == [(7, 0, 1, 0b0011111, 1, ""), (8, 30, 0, 0, 1, "")]
    assert rows(phone, "SELECT state, accumulated_ms, start_ms FROM stopwatch") == [("reset", 0, 0)]
    assert rows(phone, "SELECT * FROM timers") == []
    assert phone.fs.read(DB_PATH).startswith(b"SQLite format 3\x00")  # what `adb pull` would fetch


def test_launcher_icon_opens_deskclock_on_the_alarm_tab() -> None:
    phone = Phone()
    phone.tap_node(text="Clock")
    assert phone.current_activity() == (PKG, "com.android.deskclock.DeskClock")
    xml = phone.ui_xml()
    assert 'text="07:00"' in xml and 'text="Mon, Tue, Wed, Thu, Fri"' in xml
    assert 'text="08:30"' in xml and 'text="Not scheduled"' in xml
    assert phone.find(rid="tab_menu_alarm").selected
    assert not phone.find(rid="tab_menu_timer").selected


def test_tabs_switch_and_mark_the_selected_one(phone: Phone) -> None:
    for tab, title in [
        ("clock", "Clock"),
        ("timer", "Timer"),
        ("stopwatch", "Stopwatch"),
        ("alarm", "Alarm"),
    ]:
        go_to(phone, tab)
        selected = [n.text for n in phone.windows()[0].walk() if n.rid.startswith(f"{PKG}:id/tab_menu_") and n.selected]
        assert selected == [title]
        assert title in texts(phone)  # the app bar names the page


# ---- alarms ----------------------------------------------------------------------


def test_add_alarm_through_the_time_picker(phone: Phone) -> None:
    phone.tap_node(desc="Add alarm")
    assert 'text="Enter time"' in phone.ui_xml()
    type_into(phone, "material_hour_text_input", "6")
    type_into(phone, "material_minute_text_input", "45")
    phone.tap_node(rid="material_timepicker_ok_button")
    assert alarms(phone)[-1] == (6, 45, 1, 0, 1, "")
    xml = phone.ui_xml()
    assert 'text="06:45"' in xml and 'text="Enter time"' not in xml
    assert IME not in xml  # closing the dialog hides the keyboard
    # Frozen clock: Sunday 15:34, so 06:45 rings tomorrow, 15 h 11 min from now.
    assert phone.state.toast == "Alarm set for 15 hours and 11 minutes from now."
    assert phone.find(rid="delete") is not None  # the new alarm is expanded
    assert node_text(phone, "days_of_week") == "Tomorrow"  # 06:45 sorts first


def test_picker_keeps_the_dialog_open_on_an_invalid_time(phone: Phone) -> None:
    phone.tap_node(desc="Add alarm")
    type_into(phone, "material_hour_text_input", "25")
    phone.tap_node(rid="material_timepicker_ok_button")
    assert "Enter a valid time" in texts(phone)
    assert len(alarms(phone)) == 2
    phone.key(KEYCODE_BACK)  # hides the keyboard
    assert "Enter time" in texts(phone)
    phone.key(KEYCODE_BACK)  # cancels the dialog
    assert "Enter time" not in texts(phone)
    assert len(alarms(phone)) == 2


def test_picker_cancel_adds_nothing(phone: Phone) -> None:
    phone.tap_node(desc="Add alarm")
    type_into(phone, "material_hour_text_input", "9")
    phone.tap_node(rid="material_timepicker_cancel_button")
    assert len(alarms(phone)) == 2
    assert "Enter time" not in texts(phone)


def test_switch_toggles_enabled_without_opening_the_alarm(phone: Phone) -> None:
    phone.tap_node(rid="onoff")  # the first switch belongs to 07:00
    assert alarms(phone)[0][2] == 0
    assert phone.find(rid="onoff").text == "OFF" and not phone.find(rid="onoff").checked
    assert phone.find(rid="delete") is None
    phone.tap_node(rid="onoff")
    assert alarms(phone)[0][2] == 1
    assert phone.state.toast == "Alarm set for 15 hours and 26 minutes from now."


def test_repeat_days_chips_set_the_bitmask(phone: Phone) -> None:
    phone.tap_node(desc="08:30 Alarm")
    phone.tap_node(desc="Saturday")
    phone.tap_node(desc="Sunday")
    assert alarms(phone)[1][3] == 32 + 64
    assert "Sat, Sun" in texts(phone)
    assert phone.find(desc="Sunday").checked
    phone.tap_node(desc="Monday")
    assert alarms(phone)[1][3] == 1 + 32 + 64
    assert "Mon, Sat, Sun" in texts(phone)


def test_label_dialog_sets_the_label(phone: Phone) -> None:
    phone.tap_node(desc="07:00 Alarm")
    phone.tap_node(text="Add label")
    assert "Label" in texts(phone)
    type_into(phone, "label_input_field", "Gym")
    phone.tap_node(text="OK")
    assert alarms(phone)[0][5] == "Gym"
    xml = phone.ui_xml()
    assert 'text="Gym"' in xml and 'content-desc="07:00 Gym"' in xml
    assert IME not in xml


def test_enter_in_a_dialog_field_is_ok(phone: Phone) -> None:
    phone.tap_node(desc="Add alarm")
    type_into(phone, "material_hour_text_input", "23")
    type_into(phone, "material_minute_text_input", "5\n")  # type_text turns a newline into ENTER
    assert alarms(phone)[-1] == (23, 5, 1, 0, 1, "")
    phone.tap_node(rid="edit_label")  # the new alarm is expanded
    phone.tap_node(rid="label_input_field")
    phone.type_text("Late\n")
    assert alarms(phone)[-1][5] == "Late"
    assert IME not in phone.ui_xml() and "Label" not in texts(phone)


def test_vibrate_and_ringtone(phone: Phone) -> None:
    phone.tap_node(desc="07:00 Alarm")
    phone.tap_node(text="Vibrate")
    assert alarms(phone)[0][4] == 0
    phone.tap_node(text="Default (Cesium)")
    phone.tap_node(text="Argon")
    assert rows(phone, "SELECT ringtone FROM alarm_templates WHERE _id = 1") == [
        ("content://media/internal/audio/media/21",)
    ]
    assert "Argon" in texts(phone) and "Alarm sound" not in texts(phone)


def test_delete_alarm(phone: Phone) -> None:
    phone.tap_node(desc="07:00 Alarm")
    phone.tap_node(rid="delete")
    assert alarms(phone) == [(8, 30, 0, 0, 1, "")]
    assert phone.state.toast == "Alarm deleted"
    assert "07:00" not in texts(phone)


def test_retime_an_alarm_keeps_untouched_fields(phone: Phone) -> None:
    phone.tap_node(desc="08:30 Alarm")
    phone.tap_node(text="08:30")  # an expanded card's time opens the picker
    assert phone.find(rid="material_hour_text_input").hint == "08"
    type_into(phone, "material_minute_text_input", "15")
    phone.tap_node(rid="material_timepicker_ok_button")
    assert alarms(phone)[1] == (8, 15, 1, 0, 1, "")  # setting a time switches the alarm on


def test_collapsed_card_time_expands_instead_of_opening_the_picker(phone: Phone) -> None:
    phone.tap_node(text="07:00")
    assert "Enter time" not in texts(phone)
    assert phone.find(rid="delete") is not None
    phone.tap_node(rid="days_of_week")  # tapping the open card again closes it
    assert phone.find(rid="delete") is None


def test_twelve_hour_setting(phone: Phone) -> None:
    phone.put_setting("system", "time_12_24", "12")
    assert "7:00 AM" in texts(phone)
    go_to(phone, "clock")
    assert node_text(phone, "digital_clock") == "3:34 PM"


# ---- clock ----------------------------------------------------------------------


def test_clock_tab_follows_the_frozen_clock(phone: Phone) -> None:
    go_to(phone, "clock")
    assert node_text(phone, "digital_clock") == "15:34"
    assert node_text(phone, "date") == "Sun, Oct 15"
    phone.advance_clock(9 * 3600)
    assert node_text(phone, "digital_clock") == "00:34"
    assert node_text(phone, "date") == "Mon, Oct 16"


def test_world_clock_city(phone: Phone) -> None:
    go_to(phone, "clock")
    phone.tap_node(desc="Cities")
    assert phone.current_activity() == (PKG, clock.CITIES)
    type_into(phone, "search_src_text", "tok")
    assert [n.text for n in phone.windows()[0].walk() if n.rid.endswith("city_name")] == ["Tokyo"]
    phone.tap_node(text="Tokyo")
    assert rows(phone, "SELECT city_id, utc_offset_min FROM cities") == [("C_TOKYO", 540)]
    phone.key(KEYCODE_BACK)  # keyboard
    phone.key(KEYCODE_BACK)  # back to DeskClock
    assert phone.current_activity() == (PKG, clock.MAIN)
    assert "Tokyo" in texts(phone) and "00:34" in texts(phone)
    assert "Tomorrow, 9 hours ahead" in texts(phone)


# ---- stopwatch ----------------------------------------------------------------------


def test_stopwatch_runs_with_the_clock_laps_and_pauses(phone: Phone) -> None:
    go_to(phone, "stopwatch")
    assert node_text(phone, "stopwatch_time_text") == "00:00"
    phone.tap_node(desc="Start")
    assert rows(phone, "SELECT state, start_ms > 0 FROM stopwatch") == [("running", 1)]
    phone.advance_clock(65)
    assert node_text(phone, "stopwatch_time_text") == "01:05"
    assert has_desc(phone, "Pause") and has_desc(phone, "Lap")  # android_world's ClockStopWatchRunning
    phone.tap_node(desc="Lap")
    phone.advance_clock(5.25)
    phone.tap_node(desc="Lap")
    assert rows(phone, "SELECT lap_number, lap_time_ms, total_ms FROM laps ORDER BY lap_number") == [
        (1, 65000, 65000),
        (2, 5250, 70250),
    ]
    assert {"# 1", "# 2", "00:05.25", "01:10.25"} <= set(texts(phone))
    phone.tap_node(desc="Pause")
    assert rows(phone, "SELECT state, accumulated_ms FROM stopwatch") == [("paused", 70250)]
    phone.advance_clock(100)
    assert node_text(phone, "stopwatch_time_text") == "01:10"
    assert node_text(phone, "stopwatch_hundredths_text") == "25"
    # android_world's ClockStopWatchPausedVerify: a "Start" button and two "Stopwatch" labels.
    assert has_desc(phone, "Start") and not has_desc(phone, "Lap")
    assert sum(n.text == "Stopwatch" or n.desc == "Stopwatch" for w in phone.windows() for n in w.walk()) >= 2
    phone.tap_node(desc="Start")
    phone.advance_clock(1)
    assert node_text(phone, "stopwatch_time_text") == "01:11"
    phone.tap_node(desc="Reset")
    assert rows(phone, "SELECT state, accumulated_ms FROM stopwatch") == [("reset", 0)]
    assert rows(phone, "SELECT * FROM laps") == []
    assert node_text(phone, "stopwatch_time_text") == "00:00"


# ---- timer ----------------------------------------------------------------------


def test_timer_keypad_start_and_countdown(phone: Phone) -> None:
    go_to(phone, "timer")
    assert phone.find(desc="Start") is None  # nothing entered yet
    for digit in "0130":  # a leading zero is ignored
        phone.tap_node(rid=f"timer_setup_digit_{digit}")
    display = phone.find(rid="timer_setup_time")
    assert display.text == "00h 01m 30s"
    assert display.desc == "0 hours, 1 minutes, 30 seconds"  # android_world's ClockTimerEntry
    phone.tap_node(desc="Start")
    assert rows(phone, "SELECT length_ms, remaining_ms, state FROM timers") == [(90000, 90000, "running")]
    assert node_text(phone, "timer_time_text") == "1:30"
    phone.advance_clock(30)
    assert node_text(phone, "timer_time_text") == "1:00"
    phone.tap_node(desc="Pause")
    assert rows(phone, "SELECT remaining_ms, state FROM timers") == [(60000, "paused")]
    phone.advance_clock(100)
    assert node_text(phone, "timer_time_text") == "1:00"
    phone.tap_node(desc="Start")
    phone.advance_clock(10)
    assert node_text(phone, "timer_time_text") == "0:50"
    phone.tap_node(text="+1:00")
    assert node_text(phone, "timer_time_text") == "1:50"
    phone.tap_node(rid="delete_timer")
    assert rows(phone, "SELECT * FROM timers") == []
    assert node_text(phone, "timer_setup_time") == "00h 00m 00s"


def test_timer_keypad_delete_and_six_digit_limit(phone: Phone) -> None:
    go_to(phone, "timer")
    for digit in "1234567":
        phone.tap_node(rid=f"timer_setup_digit_{digit}")
    assert node_text(phone, "timer_setup_time") == "12h 34m 56s"
    phone.tap_node(desc="Delete")
    assert node_text(phone, "timer_setup_time") == "01h 23m 45s"


def test_expired_timer_counts_up_and_stop_resets_it(phone: Phone) -> None:
    go_to(phone, "timer")
    phone.tap_node(rid="timer_setup_digit_5")
    phone.tap_node(desc="Start")
    phone.advance_clock(7)
    assert node_text(phone, "timer_time_text") == "-0:02"
    assert "Time's up" in texts(phone)
    phone.tap_node(desc="Stop")
    assert rows(phone, "SELECT remaining_ms, state FROM timers") == [(5000, "reset")]
    assert node_text(phone, "timer_time_text") == "0:05"


def test_second_timer_and_timer_label(phone: Phone) -> None:
    go_to(phone, "timer")
    phone.tap_node(rid="timer_setup_digit_9")
    phone.tap_node(desc="Start")
    phone.tap_node(desc="Add timer")
    phone.tap_node(rid="timer_setup_digit_2")
    phone.tap_node(rid="timer_setup_digit_0")
    phone.tap_node(desc="Start")
    assert rows(phone, "SELECT length_ms FROM timers ORDER BY _id") == [(9000,), (20000,)]
    phone.tap_node(text="Label")
    type_into(phone, "label_input_field", "Tea")
    phone.tap_node(text="OK")
    assert rows(phone, "SELECT label FROM timers ORDER BY _id") == [("Tea",), ("",)]
    assert "Tea" in texts(phone)


# ---- device state ----------------------------------------------------------------------


def test_snapshot_round_trip(phone: Phone) -> None:
    go_to(phone, "stopwatch")
    phone.save_snapshot("clean")
    before_xml, before_db = phone.ui_xml(), phone.fs.read(DB_PATH)
    phone.tap_node(desc="Start")
    phone.advance_clock(42)
    go_to(phone, "alarm")
    phone.tap_node(rid="onoff")
    assert phone.fs.read(DB_PATH) != before_db
    phone.load_snapshot("clean")
    assert phone.fs.read(DB_PATH) == before_db
    assert phone.ui_xml() == before_xml
    assert node_text(phone, "stopwatch_time_text") == "00:00"


def test_clear_app_data_reseeds(phone: Phone) -> None:
    phone.tap_node(desc="07:00 Alarm")
    phone.tap_node(rid="delete")
    go_to(phone, "stopwatch")
    phone.tap_node(desc="Start")
    phone.clear_app_data(PKG)
    assert phone.current_activity()[0] != PKG
    assert alarms(phone) == [(7, 0, 1, 0b0011111, 1, ""), (8, 30, 0, 0, 1, "")]
    assert rows(phone, "SELECT state FROM stopwatch") == [("reset",)]
    phone.launch(PKG)
    assert phone.find(rid="tab_menu_alarm").selected


def test_checker_view_over_the_device_shell() -> None:
    phone = Phone()
    started = phone.shell(f"am start -n {PKG}/com.android.deskclock.DeskClock")
    assert started.exit_code == 0
    assert f"{PKG}/com.android.deskclock.DeskClock" in phone.shell("dumpsys window").stdout.decode()
    go_to(phone, "stopwatch")
    phone.tap_node(desc="Start")
    out = phone.shell(f"sqlite3 {DB_PATH} 'SELECT state FROM stopwatch'")
    assert out.stdout.decode().strip() == "running"
    assert phone.shell(f"pm clear {PKG}").stdout.decode().strip() == "Success"
    assert phone.shell(f"sqlite3 {DB_PATH} 'SELECT COUNT(*) FROM alarm_templates'").stdout.decode().strip() == "2"


def test_pulled_database_opens_with_host_sqlite(phone: Phone, tmp_path) -> None:
    path = tmp_path / "alarms.db"
    path.write_bytes(phone.fs.read(DB_PATH))
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = [r[1] for r in conn.execute("PRAGMA table_info(alarm_templates)")]
    assert {"alarm_templates", "timers", "stopwatch", "laps", "cities"} <= tables
    assert columns == [
        "_id",
        "hour",
        "minutes",
        "enabled",
        "daysofweek",
        "vibrate",
        "label",
        "ringtone",
        "delete_after_use",
    ]


# ---- formatting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "enabled", "hour", "minutes", "expected"),
    [
        (0b0011111, True, 7, 0, "Mon, Tue, Wed, Thu, Fri"),
        (0b1111111, True, 7, 0, "Every day"),
        (0b1100000, False, 7, 0, "Sat, Sun"),
        (0, False, 7, 0, "Not scheduled"),
        (0, True, 16, 0, "Today"),  # now is 15:34
        (0, True, 15, 34, "Tomorrow"),
    ],
)
def test_repeat_summary(days: int, enabled: bool, hour: int, minutes: int, expected: str) -> None:
    assert clock.repeat_summary(days, enabled, hour, minutes, 15 * 60 + 34) == expected


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (0, "Alarm set for less than 1 minute from now."),
        (1, "Alarm set for 1 minute from now."),
        (60, "Alarm set for 1 hour from now."),
        (926, "Alarm set for 15 hours and 26 minutes from now."),
        (1440 * 2 + 61, "Alarm set for 2 days, 1 hour, and 1 minute from now."),
    ],
)
def test_alarm_set_toast(minutes: int, expected: str) -> None:
    assert clock.alarm_set_toast(minutes) == expected


def test_minutes_until_skips_to_the_next_repeat_day() -> None:
    # Sunday (weekday 6) 15:34; a weekday alarm at 07:00 rings Monday.
    assert clock.minutes_until(7, 0, 0b0011111, 6, 15 * 60 + 34) == 1440 - 934 + 420
    # Friday 15:34, weekdays only: next ring is Monday 07:00.
    assert clock.minutes_until(7, 0, 0b0011111, 4, 15 * 60 + 34) == 3 * 1440 - 934 + 420


@pytest.mark.parametrize(
    ("ms", "expected"),
    [(90000, "1:30"), (59001, "1:00"), (3600000, "1:00:00"), (0, "0:00"), (-2500, "-0:02")],
)
def test_format_timer(ms: int, expected: str) -> None:
    assert clock.format_timer(ms) == expected


def test_format_stopwatch() -> None:
    assert clock.format_stopwatch(65000) == ("01:05", "00")
    assert clock.format_stopwatch(3_723_450) == ("1:02:03", "45")
