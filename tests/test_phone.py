"""Core behaviour of the simulated phone, driven through a small app defined here."""

import re
import sqlite3
import time
import xml.etree.ElementTree as ET

import pytest

from droidrl.envs.sim.app import App, Ctx
from droidrl.envs.sim.apps import launcher
from droidrl.envs.sim.phone import DEFAULT_CLOCK_MS, LAUNCHER, Phone
from droidrl.envs.sim.ui import Dialog, Screen, button, edit, item, switch_item, text

PKG = "org.example.notes"
DB = f"/data/data/{PKG}/databases/notes.db"


def _install(phone: Phone) -> None:
    with phone.fs.sqlite(DB) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes(_id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("DELETE FROM notes")
        conn.executemany("INSERT INTO notes(title) VALUES (?)", [(f"note {i:02d}",) for i in range(30)])


def _list(ctx: Ctx) -> Screen:
    rows = [
        item(title, on_click=lambda i=i: ctx.start(".Detail", note_id=i), rid="note")
        for i, title in ctx.query("notes.db", "SELECT _id, title FROM notes ORDER BY _id")
    ]
    return Screen(title="Notes", rows=rows, actions=[], fab=None)


def _detail(ctx: Ctx) -> Screen:
    (title,) = ctx.query("notes.db", "SELECT title FROM notes WHERE _id=?", (ctx.args["note_id"],))[0]

    def save() -> None:
        ctx.execute(
            "notes.db",
            "UPDATE notes SET title=? WHERE _id=?",
            (ctx.field("title", title), ctx.args["note_id"]),
        )
        ctx.toast("Saved")
        ctx.finish()

    def ask_delete() -> None:
        ctx.extra["dialog"] = True

    def close_dialog() -> None:
        ctx.extra.pop("dialog", None)

    def delete() -> None:
        ctx.execute("notes.db", "DELETE FROM notes WHERE _id=?", (ctx.args["note_id"],))
        ctx.finish()

    dialog = None
    if ctx.extra.get("dialog"):
        dialog = Dialog(
            title="Delete note?",
            buttons=[("Delete", delete), ("Cancel", close_dialog)],
            on_cancel=close_dialog,
        )
    rows = [
        edit("title", ctx.field("title", title), "Title", "title_edit", focused=ctx.focused("title")),
        button("Save", save, rid="save"),
        button("Delete", ask_delete, rid="delete", primary=False),
        switch_item(
            "Pinned",
            ctx.extra.get("pinned", False),
            lambda: ctx.extra.update(pinned=not ctx.extra.get("pinned")),
        ),
        text("Body text " * 20),
    ]
    return Screen(title="Edit note", up=ctx.finish, rows=rows, dialog=dialog, on_enter=save)


NOTES = App(package=PKG, label="Notes", activities={".List": _list, ".Detail": _detail}, install=_install)


@pytest.fixture
def phone() -> Phone:
    return Phone(apps=[launcher.APP, NOTES])


def test_boots_to_launcher_with_app_icon(phone):
    assert phone.current_activity() == (LAUNCHER, ".NexusLauncherActivity")
    icon = phone.find(text="Notes")
    assert icon is not None and icon.clickable and icon.desc == "Notes"


def test_launcher_icon_opens_app_and_back_returns_home(phone):
    phone.tap_node(text="Notes")
    assert phone.current_activity() == (PKG, ".List")
    phone.tap_node(text="note 03")
    assert phone.current_activity() == (PKG, ".Detail")
    phone.key(4)
    assert phone.current_activity() == (PKG, ".List")
    phone.key(4)
    assert phone.current_activity()[0] == LAUNCHER
    assert PKG not in phone.state.tasks


def test_home_keeps_task_and_relaunch_resumes_it(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 01")
    phone.key(3)
    assert phone.current_activity()[0] == LAUNCHER
    phone.tap_node(text="Notes")
    assert phone.current_activity() == (PKG, ".Detail")


def test_typing_needs_focus_and_keyboard_appears(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 02")
    phone.type_text("ignored")  # nothing focused: real IMEs drop it
    assert phone.find(rid="title_edit").text == "note 02"
    assert phone.find(rid="keyboard_holder") is None
    phone.tap_node(rid="title_edit")
    assert phone.find(rid="title_edit").focused
    assert phone.find(rid="keyboard_holder") is not None
    phone.key_combination([113, 29])  # CTRL+A, then DEL clears
    phone.key(67)
    phone.type_text("groceries; $(reboot) `id` 'q' \"dq\" 中文")
    assert phone.find(rid="title_edit").text == "groceries; $(reboot) `id` 'q' \"dq\" 中文"
    phone.key(67)
    assert phone.find(rid="title_edit").text.endswith("中")


def test_soft_keyboard_keys_type(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 02")
    phone.tap_node(rid="title_edit")
    phone.key_combination([113, 29])
    phone.key(67)
    for key in "hi":
        phone.tap_node(desc=key)
    phone.tap_node(desc="Space")
    phone.key(36)  # KEYCODE_H through the key path
    assert phone.find(rid="title_edit").text == "hi h"
    phone.tap_node(desc="Enter")  # IME action runs the screen's on_enter: save and finish
    assert phone.current_activity() == (PKG, ".List")
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT title FROM notes WHERE _id=3").fetchone() == ("hi h",)


def test_first_back_hides_keyboard(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 02")
    phone.tap_node(rid="title_edit")
    phone.key(4)
    assert phone.find(rid="keyboard_holder") is None
    assert phone.current_activity() == (PKG, ".Detail")


def test_dialog_is_modal_and_back_cancels(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 05")
    phone.tap_node(rid="delete")
    assert phone.find(rid="alertTitle").text == "Delete note?"
    save = phone.find(rid="save")  # under the scrim: a tap there must not reach it
    phone.tap(*save.center)
    assert phone.find(rid="alertTitle") is None  # outside tap cancels a cancelable dialog
    assert phone.current_activity() == (PKG, ".Detail")
    phone.tap_node(rid="delete")
    phone.key(4)
    assert phone.find(rid="alertTitle") is None
    phone.tap_node(rid="delete")
    phone.tap_node(text="Delete")
    assert phone.current_activity() == (PKG, ".List")
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (29,)


def test_toast_shows_until_next_input(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 00")
    phone.tap_node(rid="save")
    assert phone.find(text="Saved") is not None
    phone.key(0)
    assert phone.find(text="Saved") is None


def test_swipe_scrolls_and_offscreen_rows_are_not_in_tree(phone):
    phone.launch(PKG)
    assert phone.find(text="note 29") is None
    lst = phone.find(rid="list")
    assert lst.scrollable
    for _ in range(5):
        phone.swipe(540, 1800, 540, 600, 300)
    assert phone.find(text="note 29") is not None
    assert phone.find(text="note 00") is None
    for _ in range(10):
        phone.swipe(540, 600, 540, 1800, 300)
    assert phone.find(text="note 00") is not None


def test_switch_row_toggles(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 00")
    row = phone.find(text="Pinned")
    phone.tap(*row.center)
    assert phone.find(text="Pinned") is not None
    assert 'text="ON"' in phone.ui_xml()


def test_app_switch_overview_and_back(phone):
    phone.launch(PKG)
    phone.key(187)
    assert phone.state.overview and phone.find(text="Recent apps") is not None
    phone.tap_node(text="Notes")
    assert phone.current_activity() == (PKG, ".List")


def test_nav_bar_buttons(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 01")
    phone.tap_node(desc="Back")
    assert phone.current_activity() == (PKG, ".List")
    phone.tap_node(desc="Home")
    assert phone.current_activity()[0] == LAUNCHER


def test_ui_xml_has_real_attributes_and_matches_hit_testing(phone):
    phone.launch(PKG)
    xml = phone.ui_xml()
    assert xml.startswith("<?xml")
    root = ET.fromstring(xml)
    assert root.tag == "hierarchy" and root.get("rotation") == "0"
    nodes = list(root.iter("node"))
    expected = [
        "index",
        "text",
        "resource-id",
        "class",
        "package",
        "content-desc",
        "checkable",
        "checked",
        "clickable",
        "enabled",
        "focusable",
        "focused",
        "scrollable",
        "long-clickable",
        "password",
        "selected",
        "bounds",
    ]
    assert list(nodes[0].attrib) == expected
    row = next(n for n in nodes if n.get("text") == "note 04")
    assert row.get("resource-id") == "android:id/title" and row.get("package") == PKG
    left, top, right, bottom = map(int, re.findall(r"\d+", row.get("bounds")))
    phone.tap((left + right) // 2, (top + bottom) // 2)
    assert phone.current_activity() == (PKG, ".Detail")


def test_settings_store_and_clock_is_frozen_and_settable(phone):
    assert phone.get_setting("global", "wifi_on") == "1"
    phone.put_setting("global", "wifi_on", "0")
    assert phone.get_setting("global", "wifi_on") == "0"
    with pytest.raises(ValueError, match="Invalid namespace 'bogus'"):
        phone.get_setting("bogus", "x")
    assert phone.now().isoformat() == "2023-10-15T15:34:00+00:00"
    time.sleep(0.01)
    assert phone.state.clock_ms == DEFAULT_CLOCK_MS
    phone.set_clock(DEFAULT_CLOCK_MS + 3_600_000)
    assert phone.find(text="16:34") is not None  # status bar clock


def test_snapshot_restores_everything(phone):
    phone.launch(PKG)
    phone.tap_node(text="note 07")
    phone.tap_node(rid="title_edit")
    phone.type_text("!")
    phone.save_snapshot("s1")
    xml_before = phone.ui_xml()
    db_before = phone.fs.read(DB)

    phone.key(66)  # saves and finishes
    phone.put_setting("global", "wifi_on", "0")
    phone.fs.write("/sdcard/Download/new.txt", b"x")
    phone.advance_clock(600)
    phone.key(3)

    phone.load_snapshot("s1")
    assert phone.ui_xml() == xml_before
    assert phone.fs.read(DB) == db_before
    assert not phone.fs.exists("/sdcard/Download/new.txt")
    assert phone.get_setting("global", "wifi_on") == "1"
    assert phone.state.clock_ms == DEFAULT_CLOCK_MS
    assert [s.name for s in phone.list_snapshots()] == ["s1"]
    phone.delete_snapshot("s1")
    with pytest.raises(KeyError):
        phone.load_snapshot("s1")


def test_snapshots_persist_in_snapshot_dir(tmp_path):
    first = Phone(apps=[launcher.APP, NOTES], snapshot_dir=tmp_path)
    first.launch(PKG)
    first.save_snapshot("in_notes")
    second = Phone(apps=[launcher.APP, NOTES], snapshot_dir=tmp_path)
    assert [s.name for s in second.list_snapshots()] == ["in_notes"]
    second.load_snapshot("in_notes")
    assert second.current_activity() == (PKG, ".List")


def test_invalid_snapshot_name_is_refused(phone):
    with pytest.raises(ValueError, match="invalid snapshot name"):
        phone.save_snapshot("../escape")


def test_clear_app_data_reinstalls(phone):
    with phone.fs.sqlite(DB) as conn:
        conn.execute("DELETE FROM notes")
    phone.fs.write(f"/data/data/{PKG}/files/cache.bin", b"123")
    phone.clear_app_data(PKG)
    assert not phone.fs.exists(f"/data/data/{PKG}/files/cache.bin")
    with phone.fs.sqlite(DB) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (30,)


def test_database_bytes_are_a_real_sqlite_file(phone, tmp_path):
    path = tmp_path / "pulled.db"
    path.write_bytes(phone.fs.read(DB))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT title FROM notes WHERE _id=1").fetchone() == ("note 00",)


def test_launch_unknown_activity_is_a_clear_error(phone):
    with pytest.raises(KeyError, match=r"Activity class \{org.example.notes/.Nope\} does not exist."):
        phone.launch(PKG, ".Nope")


def test_screen_size_is_configurable():
    small = Phone(720, 1280, 320, apps=[launcher.APP, NOTES])
    assert small.windows()[0].bounds == (0, 0, 720, 1280)
    assert small.find(text="Notes").bounds[2] <= 720
