"""The simulated Pro Expense app, driven through the phone's input API and checked via accounting.db."""

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from droidrl.envs.sim.apps import expense, launcher
from droidrl.envs.sim.phone import LAUNCHER, Phone

PKG = expense.PACKAGE
DB = expense.DB_PATH
BACK, DEL, CTRL_LEFT, A = 4, 67, 113, 29
NOW = dt.datetime(2023, 10, 15, 15, 34, tzinfo=dt.UTC)
DAY_MS = 86_400_000
NOW_MS = int(NOW.timestamp() * 1000)

# (name, cents, category, note, days before now)
SEED = [
    ("Groceries", 4550, expense.FOOD, "Weekly shop", 0),
    ("Salary", 300000, expense.INCOME, "October", 2),
    ("Taxi Fare", 1890, expense.TRANSPORTATION, "Airport", 4),
    ("Movie Night", 2400, expense.ENTERTAINMENT, "", 6),
    ("Coffee", 475, expense.FOOD, "Latte", 8),
]


@pytest.fixture
def phone() -> Phone:
    return Phone(apps=[launcher.APP, expense.APP])


def seed(phone: Phone, rows=SEED) -> None:
    with phone.fs.sqlite(DB) as conn:
        for name, cents, category, note, days in rows:
            stamp = NOW_MS - 600_000 - days * DAY_MS
            conn.execute(
                "INSERT INTO expense (name, amount, category, note, created_date, modified_date)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, cents, category, note, stamp, stamp),
            )


def rows(phone: Phone) -> list[tuple]:
    with phone.fs.sqlite(DB) as conn:
        return conn.execute(
            "SELECT name, amount, category, note, created_date, modified_date FROM expense ORDER BY expense_id"
        ).fetchall()


def names(phone: Phone) -> list[str]:
    return [r[0] for r in rows(phone)]


def texts_of(phone: Phone, rid: str) -> list[str]:
    root = ET.fromstring(phone.ui_xml())
    return [n.get("text") for n in root.iter("node") if n.get("resource-id") == f"{PKG}:id/{rid}"]


def fill(phone: Phone, rid: str, value: str) -> None:
    phone.tap_node(rid=rid)
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text(value)


def open_logs(phone: Phone) -> None:
    phone.launch(PKG)
    phone.tap_node(rid="btn_more_logs")


def test_fresh_install_is_empty_with_the_room_schema(phone):
    phone.tap_node(text="Pro Expense")  # the launcher icon
    assert phone.current_activity() == (PKG, expense.MAIN)
    assert phone.find(text="Home") is not None and phone.find(text="No Items") is not None
    assert texts_of(phone, "tv_outcome_value") == ["$0"]
    with phone.fs.sqlite(DB) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(expense)")]
    assert columns == ["expense_id", "name", "amount", "category", "note", "created_date", "modified_date"]


def test_home_shows_totals_and_the_four_most_recent(phone):
    seed(phone)
    phone.launch(PKG)
    assert texts_of(phone, "tv_income_value") == ["$3,000"]
    assert texts_of(phone, "tv_outcome_value") == ["$93.15"]  # 45.50 + 18.90 + 24 + 4.75
    assert texts_of(phone, "tv_week_total_value") == ["$45.5"]  # Oct 15 2023 is a Sunday
    assert texts_of(phone, "tv_name") == ["Groceries", "Salary", "Taxi Fare", "Movie Night"]
    assert texts_of(phone, "tv_date")[:2] == ["Today 3:24 PM", "2023 Oct 13"]
    assert phone.find(desc="Food").text == "F"  # the category icon names its category


def test_add_expense_with_category_and_note(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Add expense")
    assert phone.find(text="Expense Entry") is not None
    food = phone.find(text="Food", rid="cd_category")
    assert food.checked  # the default category
    fill(phone, "edt_name", "Bus Pass")
    fill(phone, "edt_amount", "12.5")
    phone.tap_node(text="Transportation")
    assert phone.find(text="Transportation", rid="cd_category").checked
    assert not phone.find(text="Food", rid="cd_category").checked
    fill(phone, "edt_note", "Monthly")
    phone.tap_node(rid="btn_save")
    assert rows(phone) == [("Bus Pass", 1250, expense.TRANSPORTATION, "Monthly", NOW_MS, NOW_MS)]
    assert phone.find(text="Home") is not None  # back where the entry was opened
    assert texts_of(phone, "tv_amount") == ["$12.5"]
    assert texts_of(phone, "tv_date") == ["Today 3:34 PM"]


def test_empty_or_bad_amount_is_refused(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Add expense")
    fill(phone, "edt_name", "Nothing")
    phone.tap_node(rid="btn_save")
    assert expense.EMPTY_COST in phone.ui_xml()
    fill(phone, "edt_amount", "12,50$")
    phone.tap_node(rid="btn_save")
    assert rows(phone) == [] and phone.find(text="Expense Entry") is not None
    phone.key(BACK)  # hides the keyboard
    phone.key(BACK)  # leaves the entry without saving
    assert phone.find(text="Home") is not None and rows(phone) == []


def test_logs_list_every_expense_newest_first(phone):
    seed(phone)
    open_logs(phone)
    assert phone.find(text="Expense Logs") is not None
    assert texts_of(phone, "tv_name") == ["Groceries", "Salary", "Taxi Fare", "Movie Night", "Coffee"]
    assert texts_of(phone, "tv_amount") == ["$45.5", "$3,000", "$18.9", "$24", "$4.75"]
    phone.key(BACK)
    assert phone.find(text="Home") is not None
    phone.key(BACK)
    assert phone.current_activity()[0] == LAUNCHER


def test_edit_amount_from_the_detail_dialog(phone):
    seed(phone)
    open_logs(phone)
    phone.tap_node(text="Taxi Fare")
    assert phone.find(rid="android:id/alertTitle").text == "Expense Detail"
    assert texts_of(phone, "tv_amount_value") == ["$18.9"]
    assert texts_of(phone, "tv_note_value") == ["Airport"]
    phone.tap_node(rid="btn_edit")
    assert phone.find(text="Update Data") is not None
    assert phone.find(rid="edt_amount").text == "18.9"
    assert phone.find(text="Transportation", rid="cd_category").checked
    fill(phone, "edt_amount", "21.75")
    phone.tap_node(rid="btn_save")
    assert expense.DATA_UPDATED in phone.ui_xml()
    taxi = next(r for r in rows(phone) if r[0] == "Taxi Fare")
    assert taxi[1:4] == (2175, expense.TRANSPORTATION, "Airport")
    assert taxi[4] == taxi[5] == NOW_MS - 600_000 - 4 * DAY_MS  # dates are kept
    assert len(rows(phone)) == 5
    assert phone.find(text="Expense Logs") is not None and "$21.75" in texts_of(phone, "tv_amount")


def test_delete_one_asks_to_confirm(phone):
    seed(phone)
    phone.launch(PKG)
    phone.tap_node(text="Salary")  # a recent entry on Home
    phone.tap_node(rid="btn_delete")
    assert phone.find(rid="android:id/alertTitle").text == "Delete Items"
    assert phone.find(rid="android:id/message").text == "1 item will be deleted!"
    phone.tap_node(rid="android:id/button2")  # Cancel
    assert "Salary" in names(phone)
    phone.tap_node(text="Salary")
    phone.tap_node(rid="btn_delete")
    phone.tap_node(rid="android:id/button1")  # Confirm
    assert names(phone) == ["Groceries", "Taxi Fare", "Movie Night", "Coffee"]
    assert "Item Deleted" in phone.ui_xml()
    assert texts_of(phone, "tv_income_value") == ["$0"]


def test_select_several_and_delete_them(phone):
    seed(phone)
    open_logs(phone)
    phone.long_press(*phone.find(text="Coffee").center)
    assert phone.find(text="1 item") is not None
    phone.tap_node(text="Salary")  # a tap adds to the selection
    phone.tap_node(text="Groceries")
    phone.tap_node(text="Groceries")  # and a second tap removes again
    assert phone.find(text="2 items") is not None
    assert phone.find(desc="Add expense") is None
    phone.tap_node(desc="Delete")
    assert phone.find(rid="android:id/message").text == "2 items will be deleted!"
    phone.tap_node(text="Confirm")
    assert names(phone) == ["Groceries", "Taxi Fare", "Movie Night"]
    assert phone.find(text="Expense Logs") is not None  # selection mode ends
    phone.long_press(*phone.find(text="Movie Night").center)
    phone.key(BACK)  # BACK clears the selection first
    assert phone.find(text="Expense Logs") is not None and names(phone)[-1] == "Movie Night"


def test_drawer_statistics_and_back(phone):
    seed(phone)
    phone.launch(PKG)
    phone.tap_node(desc="Open navigation drawer")
    phone.tap_node(text="Statistics")
    assert phone.find(text="Category Statistics") is not None
    assert texts_of(phone, "tv_category_name")[0] == "Income"
    assert texts_of(phone, "tv_progress")[0] == "97.0%"
    phone.tap_node(desc="Open navigation drawer")
    phone.tap_node(text="Expense Logs")
    assert phone.find(text="Coffee") is not None
    phone.key(BACK)
    assert phone.find(text="Home") is not None


def test_clear_app_data_wipes_expenses(phone):
    seed(phone)
    assert phone.shell(f"pm clear {PKG}").exit_code == 0
    assert rows(phone) == []
    phone.launch(PKG)
    assert phone.find(text="No Items") is not None


def test_snapshot_restores_the_entry_screen(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Add expense")
    fill(phone, "edt_name", "Snack")
    phone.save_snapshot("entry")
    phone.key(BACK)
    phone.key(BACK)
    phone.load_snapshot("entry")
    assert phone.find(rid="edt_name").text == "Snack"
    fill(phone, "edt_amount", "3")
    phone.tap_node(rid="btn_save")
    assert names(phone) == ["Snack"]


@pytest.mark.parametrize(
    ("cents", "shown"),
    [(4550, "45.5"), (300000, "3,000"), (475, "4.75"), (123456789, "1,234,567.89"), (5, "0.05")],
)
def test_format_amount(cents, shown):
    assert expense.format_amount(cents) == shown


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (dt.datetime(2023, 10, 15, 9, 5, tzinfo=dt.UTC), "Today 9:05 AM"),
        (dt.datetime(2023, 10, 14, 21, 0, tzinfo=dt.UTC), "Yesterday 9:00 PM"),
        (dt.datetime(2023, 10, 3, 12, 0, tzinfo=dt.UTC), "2023 Oct 3"),
        (dt.datetime(2023, 9, 30, 12, 0, tzinfo=dt.UTC), "Sep 30"),
        (dt.datetime(2022, 12, 1, 12, 0, tzinfo=dt.UTC), "2022 Dec 1"),
    ],
)
def test_format_date(moment, shown):
    assert expense.format_date(int(moment.timestamp() * 1000), NOW) == shown


@pytest.mark.parametrize(("typed", "cents"), [("12.5", 1250), ("3", 300), (".99", 99), ("", None), ("1,000", None)])
def test_parse_amount(typed, cents):
    assert expense.parse_amount(typed) == cents
