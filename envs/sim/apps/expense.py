"""Pro Expense (com.arduia.expense): home totals and recent entries, the expense log, the entry editor, statistics.

Expenses live where the real app keeps them, in the Room database databases/accounting.db, table `expense`:

    expense(expense_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, amount INTEGER, category INTEGER,
            note TEXT, created_date INTEGER, modified_date INTEGER)

`amount` is in cents (the real app stores the typed amount times 100 since schema 6, and android_world's
Expense rows use the same unit); dates are epoch milliseconds. `category` is the app's ExpenseCategory id
(CATEGORIES below; android_world uses the same ids). Lists are ordered by modified_date, newest first, as
the app's DAO queries them.

The real app is one activity (.ui.MainActivity) hosting fragments; so is this one: the fragment back
stack is kept in the activity's `extra["nav"]`. Category icons carry the category name as content-desc
(the real ImageViews have none) so that an accessibility-tree agent can tell categories apart.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from droidrl.envs.sim.app import App, Ctx
from droidrl.envs.sim.ui import (
    TEXT,
    Dialog,
    Node,
    Screen,
    button,
    buttons,
    chips,
    edit,
    header,
    icon_button,
    item,
    text,
)

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

PACKAGE = "com.arduia.expense"
MAIN = ".ui.MainActivity"
DB = "accounting.db"
DB_PATH = f"/data/data/{PACKAGE}/databases/{DB}"
CURRENCY = "$"

# ExpenseCategory ids (ui/common/category/ExpenseCategoryProviderImpl.kt).
OTHERS, INCOME, FOOD, HOUSING, SOCIAL, ENTERTAINMENT = 1, 2, 3, 4, 5, 6
TRANSPORTATION, CLOTHES, HEALTH_CARE, EDUCATION, DONATION = 7, 8, 9, 10, 11
CATEGORIES = {
    OTHERS: "Others",
    INCOME: "Income",
    FOOD: "Food",
    HOUSING: "Housing",
    SOCIAL: "Social",
    ENTERTAINMENT: "Entertainment",
    TRANSPORTATION: "Transportation",
    CLOTHES: "Clothes",
    HEALTH_CARE: "Health Care",
    EDUCATION: "Education",
    DONATION: "Donation",
}
# The provider's list order, which the entry screen's category chooser shows.
CHOOSER_ORDER = [INCOME, FOOD, HOUSING, SOCIAL, ENTERTAINMENT, TRANSPORTATION, CLOTHES]
CHOOSER_ORDER += [HEALTH_CARE, EDUCATION, DONATION, OTHERS]
CHIPS_PER_ROW = 3
RECENT_COUNT = 4  # ExpenseDao.getRecentExpense: LIMIT 4

EMPTY_COST = "Cost is Empty"
DATA_UPDATED = "Data Updated!"

# Room's schema for version 6 (ProExpenseDatabase.MIGRATION_4_6 and BackupEnt).
SCHEMA = """
CREATE TABLE IF NOT EXISTS expense (
    expense_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT,
    amount INTEGER NOT NULL,
    category INTEGER NOT NULL,
    note TEXT,
    created_date INTEGER NOT NULL,
    modified_date INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS backup (
    backup_id INTEGER NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    created_date INTEGER NOT NULL,
    item_total INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    is_completed INTEGER NOT NULL
);
"""

# Fragment destinations (navigation/main_nav.xml) and the drawer's entries (menu/menu_home.xml).
HOME, LOGS, ENTRY, STATISTICS, ABOUT = "home", "logs", "entry", "statistics", "about"
DRAWER = [(HOME, "Home"), (LOGS, "Expense Logs"), (STATISTICS, "Statistics"), (ABOUT, "About")]
NEW_ID = -100  # the entry fragment's default expense_id argument: insert mode


def install(phone: Phone) -> None:
    """A fresh install: an empty accounting database (boot and `pm clear`)."""
    phone.fs.makedirs(f"/data/data/{PACKAGE}/databases")
    with phone.fs.sqlite(DB_PATH) as conn:
        conn.executescript(SCHEMA)


# ---- formatting ------------------------------------------------------------------------------------------


def format_amount(cents: int) -> str:
    """The app's currency format: grouping, at most two decimals ("1,234.5", "25", "7.05")."""
    value = f"{Decimal(cents) / 100:,.2f}"
    return value.rstrip("0").rstrip(".") if "." in value else value


def money(cents: int) -> str:
    return f"{CURRENCY}{format_amount(cents)}"


def plain_amount(cents: int) -> str:
    """The amount as the editor prefills it: no grouping ("1234.5")."""
    return format_amount(cents).replace(",", "")


def parse_amount(value: str) -> int | None:
    """Cents for a typed amount ("12.5" -> 1250), None when it is not a number the amount field accepts."""
    value = value.strip()
    if not re.fullmatch(r"\d+(\.\d*)?|\.\d+", value):
        return None
    try:
        return int((Decimal(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:
        return None


def _time(moment: dt.datetime) -> str:
    return moment.strftime("%-I:%M %p")


def format_date(ms: int, now: dt.datetime) -> str:
    """ExpenseRecentDateFormatter: "Today 3:34 PM", "Yesterday 9:05 AM", "Sep 30", else "2023 Oct 3"."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=now.tzinfo)
    same_month = moment.year == now.year and moment.month == now.month
    if same_month and moment.day == now.day:
        return f"Today {_time(moment)}"
    if same_month and moment.day == now.day - 1:
        return f"Yesterday {_time(moment)}"
    if moment.year == now.year and moment.month != now.month:
        return f"{moment.strftime('%b')} {moment.day}"
    return f"{moment.year} {moment.strftime('%b')} {moment.day}"


def format_full_date(ms: int, now: dt.datetime) -> str:
    """The entry screen's and detail dialog's date ("d MMM yyyy h:mm a")."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=now.tzinfo)
    return f"{moment.day} {moment.strftime('%b %Y')} {_time(moment)}"


def _now_ms(ctx: Ctx) -> int:
    return int(ctx.now().timestamp() * 1000)


# ---- data ------------------------------------------------------------------------------------------------

COLUMNS = "expense_id, name, amount, category, note, created_date, modified_date"


def _row(values: tuple) -> dict[str, Any]:
    keys = ("id", "name", "amount", "category", "note", "created", "modified")
    return dict(zip(keys, values, strict=True))


def _expenses(ctx: Ctx, limit: int = -1) -> list[dict[str, Any]]:
    sql = f"SELECT {COLUMNS} FROM expense ORDER BY modified_date DESC, expense_id DESC LIMIT ?"
    return [_row(r) for r in ctx.query(DB, sql, (limit,))]


def _expense(ctx: Ctx, expense_id: int) -> dict[str, Any] | None:
    rows = ctx.query(DB, f"SELECT {COLUMNS} FROM expense WHERE expense_id = ?", (expense_id,))
    return _row(rows[0]) if rows else None


def _category(category_id: int) -> str:
    return CATEGORIES.get(category_id, CATEGORIES[OTHERS])


# ---- navigation between fragments -------------------------------------------------------------------------


def _stack(ctx: Ctx) -> list[list[Any]]:
    return ctx.extra.get("nav") or [[HOME, NEW_ID, 0]]


def _reset_overlays(ctx: Ctx) -> None:
    ctx.extra.update(dialog=None, selected=[])
    ctx.clear_focus()


def _navigate(ctx: Ctx, dest: str, expense_id: int = NEW_ID) -> None:
    """Open a fragment on top (the entry editor) or, from the drawer, switch the top-level one."""
    stack = [list(entry) for entry in _stack(ctx)]
    stack[-1][2] = ctx.activity.scroll  # the fragment's scroll position comes back on BACK
    if dest == ENTRY:
        _fill_entry(ctx, expense_id)
        stack.append([ENTRY, expense_id, 0])
    elif dest == HOME:
        stack = [[HOME, NEW_ID, 0]]
    else:
        stack = [[HOME, NEW_ID, stack[0][2]], [dest, NEW_ID, 0]]
    ctx.extra["nav"] = stack
    ctx.activity.scroll = 0
    _reset_overlays(ctx)


def _pop(ctx: Ctx) -> None:
    stack = [list(entry) for entry in _stack(ctx)]
    if len(stack) > 1:
        stack.pop()
    ctx.extra["nav"] = stack
    ctx.activity.scroll = stack[-1][2]
    _reset_overlays(ctx)


def _fill_entry(ctx: Ctx, expense_id: int) -> None:
    expense = _expense(ctx, expense_id) if expense_id != NEW_ID else None
    if expense is None:  # insert mode: empty fields, Food chosen (setInitialDefaultCategory)
        values, category = {"name": "", "amount": "", "note": ""}, FOOD
    else:
        values = {
            "name": expense["name"] or "",
            "amount": plain_amount(expense["amount"]),
            "note": expense["note"] or "",
        }
        category = expense["category"]
    for key, value in values.items():
        ctx.set_field(key, value)
    # The chosen category is listed first; the others keep the provider's order.
    ctx.extra.update(category=category, first_category=category)


def _open_drawer(ctx: Ctx) -> None:
    ctx.extra["dialog"] = "drawer"


def _close_dialog(ctx: Ctx) -> None:
    ctx.extra["dialog"] = None


def _drawer_action(ctx: Ctx) -> Node:
    return icon_button("Open navigation drawer", lambda: _open_drawer(ctx), glyph="=")


# ---- rows shared by home and the log ------------------------------------------------------------------


def _expense_row(ctx: Ctx, expense: dict[str, Any], now: dt.datetime, selection: list[int] | None) -> Node:
    """item_expense_log / item_expense_recent: category icon, name, date and amount."""
    expense_id = expense["id"]
    amount = Node(cls=TEXT, text=money(expense["amount"]), rid="tv_amount", align="right")

    def toggle() -> None:
        chosen = [i for i in ctx.extra.get("selected", []) if i != expense_id]
        if expense_id not in ctx.extra.get("selected", []):
            chosen.append(expense_id)
        ctx.extra["selected"] = chosen

    def show_detail() -> None:
        ctx.extra.update(dialog="detail", detail_id=expense_id)

    selecting = bool(selection)
    row = item(
        expense["name"] or "",
        format_date(expense["modified"], now),
        on_click=toggle if selecting else show_detail,
        on_long_click=toggle if selection is not None else None,
        trailing=amount,
        avatar=_category(expense["category"]),
        rid="cd_expense",
        title_rid="tv_name",
        subtitle_rid="tv_date",
    )
    icon = row.children[0]
    icon.rid, icon.desc = "imv_category", _category(expense["category"])
    row.selected = selecting and expense_id in selection
    row.checkable, row.checked = selecting, row.selected
    return row


def _detail_dialog(ctx: Ctx, now: dt.datetime) -> Dialog | None:
    """ExpenseDetailDialog: name, amount, date and note, with Delete and Edit."""
    expense = _expense(ctx, ctx.extra.get("detail_id", NEW_ID))
    if expense is None:
        return None
    name = item(expense["name"] or "", avatar=_category(expense["category"]), title_rid="tv_name_value")
    name.children[0].rid, name.children[0].desc = "imv_category", _category(expense["category"])
    rows = [
        name,
        item("Amount", money(expense["amount"]), title_rid="tv_amount", subtitle_rid="tv_amount_value"),
        item("Date", format_full_date(expense["modified"], now), title_rid="tv_date", subtitle_rid="tv_date_value"),
        item("Note", expense["note"] or "", title_rid="tv_note", subtitle_rid="tv_note_value"),
        buttons(
            ("Delete", lambda: ctx.extra.update(dialog="confirm", delete_ids=[expense["id"]]), "btn_delete"),
            ("Edit", lambda: _navigate(ctx, ENTRY, expense["id"]), "btn_edit"),
        ),
    ]
    return Dialog(title="Expense Detail", rows=rows, on_cancel=lambda: _close_dialog(ctx))


def _confirm_dialog(ctx: Ctx) -> Dialog:
    """DeleteConfirmFragment: "Delete Items", "3 items will be deleted!", Confirm."""
    ids = list(ctx.extra.get("delete_ids", []))

    def confirm() -> None:
        with ctx.db(DB) as conn:
            conn.executemany("DELETE FROM expense WHERE expense_id = ?", [(i,) for i in ids])
        ctx.toast("Item Deleted" if len(ids) == 1 else "Items Deleted")
        ctx.extra.update(dialog=None, selected=[], delete_ids=[])

    noun = "item" if len(ids) == 1 else "items"
    return Dialog(
        title="Delete Items",
        message=f"{len(ids)} {noun} will be deleted!",
        buttons=[("Confirm", confirm), ("Cancel", lambda: _close_dialog(ctx))],
        on_cancel=lambda: _close_dialog(ctx),
    )


def _drawer_dialog(ctx: Ctx) -> Dialog:
    current = _stack(ctx)[-1][0]
    rows = []
    for dest, label in DRAWER:
        row = item(label, on_click=lambda d=dest: _navigate(ctx, d), rid=dest, title_rid="design_menu_item_text")
        row.checkable, row.checked = True, dest == current
        rows.append(row)
    return Dialog(title="Pro Expense", rows=rows, on_cancel=lambda: _close_dialog(ctx))


def _dialog(ctx: Ctx, now: dt.datetime) -> Dialog | None:
    name = ctx.extra.get("dialog")
    if name == "drawer":
        return _drawer_dialog(ctx)
    if name == "detail":
        return _detail_dialog(ctx, now)
    if name == "confirm" and ctx.extra.get("delete_ids"):
        return _confirm_dialog(ctx)
    return None


def _fab(ctx: Ctx) -> Node:
    return icon_button("Add expense", lambda: _navigate(ctx, ENTRY), "fb_main_add", "+")


# ---- fragments -----------------------------------------------------------------------------------------------


def _home(ctx: Ctx, now: dt.datetime) -> Screen:
    """HomeFragment: this month's income and outcome, this week's spending, the four most recent entries."""
    month_start = int(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    # The week starts on Sunday (US locale).
    week_day = (now.weekday() + 1) % 7
    week_start = now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=week_day)
    income, outcome = ctx.query(
        DB,
        "SELECT coalesce(sum(CASE WHEN category = ? THEN amount END), 0),"
        " coalesce(sum(CASE WHEN category != ? THEN amount END), 0) FROM expense WHERE modified_date >= ?",
        (INCOME, INCOME, month_start),
    )[0]
    week = ctx.query(
        DB,
        "SELECT coalesce(sum(amount), 0) FROM expense WHERE category != ? AND modified_date > ?",
        (INCOME, int(week_start.timestamp() * 1000)),
    )[0][0]
    last_day = (now.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)

    def figure(label: str, cents: int, rid: str) -> Node:
        value = Node(cls=TEXT, text=money(cents), rid=f"{rid}_value", align="right")
        return item(label, trailing=value, title_rid=rid)

    rows = [
        header("Totals", rid="tv_expense_in_out_title"),
        text(f"{now.year} {now.strftime('%b')} 1 - {last_day.day}", rid="tv_date_range", size=14),
        figure("Income", income, "tv_income"),
        figure("Outcome", outcome, "tv_outcome"),
        header("Expenses in this Week", rid="tv_week_title"),
        figure("This week", week, "tv_week_total"),
        header("Recent", rid="tv_recent_lists"),
    ]
    recent = _expenses(ctx, RECENT_COUNT)
    rows += [_expense_row(ctx, expense, now, None) for expense in recent]
    if not recent:
        rows.append(text("No Items", align="center", rid="tv_no_item"))
    rows.append(button("More", lambda: _navigate(ctx, LOGS), "btn_more_logs", primary=False))
    return Screen(title="Home", rows=rows, actions=[_drawer_action(ctx)], fab=_fab(ctx))


def _logs(ctx: Ctx, now: dt.datetime) -> Screen:
    """ExpenseFragment: every expense, newest first; long-press starts selecting, Delete asks to confirm."""
    expenses = _expenses(ctx)
    present = {e["id"] for e in expenses}
    selected = [i for i in ctx.extra.get("selected", []) if i in present]
    rows = [_expense_row(ctx, expense, now, selected) for expense in expenses]
    if not expenses:
        rows.append(text("No Data", align="center", rid="tv_no_data"))
    if selected:

        def clear() -> None:
            ctx.extra["selected"] = []

        delete = icon_button(
            "Delete", lambda: ctx.extra.update(dialog="confirm", delete_ids=list(selected)), "delete", "🗑"
        )
        noun = "item" if len(selected) == 1 else "items"
        return Screen(title=f"{len(selected)} {noun}", rows=rows, up=clear, actions=[delete], on_back=clear)
    return Screen(title="Expense Logs", rows=rows, actions=[_drawer_action(ctx)], fab=_fab(ctx))


def _entry(ctx: Ctx, now: dt.datetime, expense_id: int) -> Screen:
    """ExpenseEntryFragment: name, amount, category and note; Save inserts, Update changes the expense."""
    existing = _expense(ctx, expense_id) if expense_id != NEW_ID else None
    updating = expense_id != NEW_ID
    chosen = ctx.extra.get("category", FOOD)
    first = ctx.extra.get("first_category", FOOD)
    order = [first] + [c for c in CHOOSER_ORDER if c != first]

    def pick(category_id: int) -> None:
        ctx.extra["category"] = category_id

    def save() -> None:
        cents = parse_amount(ctx.field("amount"))
        if cents is None:
            ctx.toast(EMPTY_COST)
            return
        values = (ctx.field("name").strip(), cents, ctx.extra.get("category", FOOD), ctx.field("note").strip())
        if not updating:
            stamp = _now_ms(ctx)
            ctx.execute(
                DB,
                "INSERT INTO expense (name, amount, category, note, created_date, modified_date)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (*values, stamp, stamp),
            )
        else:
            ctx.execute(
                DB,
                "UPDATE expense SET name = ?, amount = ?, category = ?, note = ? WHERE expense_id = ?",
                (*values, expense_id),
            )
            ctx.toast(DATA_UPDATED)
        _pop(ctx)

    stamp = existing["modified"] if existing else _now_ms(ctx)
    rows = [
        text(format_full_date(stamp, now), size=14, rid="tv_entry_date"),
        edit("name", ctx.field("name"), "Name", "edt_name", focused=ctx.focused("name")),
        edit("amount", ctx.field("amount"), "Amount", "edt_amount", focused=ctx.focused("amount")),
    ]
    for start in range(0, len(order), CHIPS_PER_ROW):
        options = [(_category(c), c == chosen, lambda c=c: pick(c)) for c in order[start : start + CHIPS_PER_ROW]]
        row = chips(options, rid="cd_category")
        row.height = 48
        rows.append(row)
    rows.append(edit("note", ctx.field("note"), "Note", "edt_note", focused=ctx.focused("note")))
    rows.append(button("Update" if updating else "Save", save, "btn_save"))
    title = "Update Data" if updating else "Expense Entry"
    return Screen(title=title, rows=rows, up=lambda: _pop(ctx), on_back=lambda: _pop(ctx))


def _statistics(ctx: Ctx, now: dt.datetime) -> Screen:
    """StatisticsFragment: this month's share of each category, largest first (CategoryAnalyzerImpl)."""
    month_start = int(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    sums = ctx.query(
        DB, "SELECT category, sum(amount) FROM expense WHERE modified_date >= ? GROUP BY category", (month_start,)
    )
    total = sum(amount for _, amount in sums)
    rows = [header("Category Statistics", rid="tv_category_statistics")]
    shares = sorted(((amount * 100 / total, cat) for cat, amount in sums), key=lambda s: -s[0]) if total else []
    for share, category_id in shares:
        value = Node(cls=TEXT, text=f"{share:.1f}%", rid="tv_progress", align="right")
        rows.append(item(_category(category_id), trailing=value, title_rid="tv_category_name"))
    if not shares:
        rows.append(text("No Data", align="center", rid="tv_no_data"))
    return Screen(title="Statistics", rows=rows, actions=[_drawer_action(ctx)])


def _about(ctx: Ctx) -> Screen:
    description = "Pro Expense is a free and open-source software to simply and safely record daily expenses."
    return Screen(title="About", rows=[text(description)], actions=[_drawer_action(ctx)])


def main_screen(ctx: Ctx) -> Screen:
    now = ctx.now()
    dest, expense_id, _ = _stack(ctx)[-1]
    if dest == ENTRY:
        screen = _entry(ctx, now, expense_id)
    elif dest == LOGS:
        screen = _logs(ctx, now)
    elif dest == STATISTICS:
        screen = _statistics(ctx, now)
    elif dest == ABOUT:
        screen = _about(ctx)
    else:
        screen = _home(ctx, now)
    if screen.on_back is None and len(_stack(ctx)) > 1:
        screen.on_back = lambda: _pop(ctx)  # a drawer destination goes back to Home
    screen.dialog = _dialog(ctx, now)
    return screen


APP = App(
    package=PACKAGE,
    label="Pro Expense",
    activities={MAIN: main_screen},
    icon="$",
    color="#3f51b5",
    version_name="0.1.6-beta",
    install=install,
)
