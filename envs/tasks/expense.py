"""Task templates for Pro Expense (com.arduia.expense), named after android_world's Expense* tasks.

Expenses are read from the app's accounting.db (table `expense`, amounts in cents), as android_world checks them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from droidrl.envs.actions import Action, Back, Finish, Launch
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiNode, UiView
from droidrl.envs.tasks.state import answer_matches, answer_number, app_db, query_db, write_db

EXPENSE = "com.arduia.expense"
DB = app_db(EXPENSE, "accounting.db")
APP_NAME = "Pro Expense"

# ExpenseCategory ids, as the app and android_world number them.
CATEGORIES = {
    1: "Others",
    2: "Income",
    3: "Food",
    4: "Housing",
    5: "Social",
    6: "Entertainment",
    7: "Transportation",
    8: "Clothes",
    9: "Health Care",
    10: "Education",
    11: "Donation",
}
FOOD = 3
# A few of android_world's expense names per category (user_data_generation's _EXPENSE_NAMES).
NAMES = {
    1: ["Pet Supplies", "Household Items", "Stationery", "Subscriptions", "Legal Fees"],
    2: ["Salary", "Freelance Payment", "Bonus", "Dividends", "Rental Income"],
    3: ["Restaurant Meal", "Groceries", "Coffee", "Fast Food", "Bakery Items", "Food Delivery"],
    4: ["Rent Payment", "Home Repairs", "Utilities", "Furnishing", "Pest Control"],
    5: ["Dinner Party", "Gift for Friend", "Wedding Gift", "Event Tickets", "Night Out"],
    6: ["Concert Tickets", "Movie Night", "Theater Show", "Video Games", "Museum Tickets"],
    7: ["Taxi Fare", "Gas", "Parking Fees", "Car Maintenance", "Flight Tickets"],
    8: ["New Jacket", "Shoes", "Jeans", "Sportswear", "Tailoring Services"],
    9: ["Doctor Visits", "Medications", "Dental Care", "Eyecare", "Gym Membership"],
    10: ["Tuition Fees", "Textbooks", "Online Courses", "Workshops", "Tutoring Services"],
    11: ["Charity", "Fundraising Events", "Sponsorships", "Crowdfunding", "Non-Profit Support"],
}
NOTES = [
    "Paid by card",
    "Monthly payment",
    "Shared with roommate",
    "Paid in cash",
    "Reimbursable",
    "Weekend trip",
    "Urgent purchase",
    "Discount applied",
    "Gift",
    "Online order",
]
OCTOBER_1 = dt.datetime(2023, 10, 1, tzinfo=dt.UTC)
SPENDING = [c for c in CATEGORIES if c != 2]  # every category but Income

Row = dict[str, Any]


# ---- parameters ----------------------------------------------------------------------------------


def _timestamp(rng: random.Random) -> int:
    """Epoch ms on Oct 1-14 2023, before the phone's frozen clock (Oct 15 15:34)."""
    moment = OCTOBER_1 + dt.timedelta(days=rng.randint(0, 13), hours=rng.randint(8, 21), minutes=rng.randint(0, 59))
    return int(moment.timestamp() * 1000)


def _expense(rng: random.Random, category: int | None = None, taken: set[str] = frozenset()) -> Row:
    """A random expense whose name is not in `taken`."""
    while True:
        cat = category if category is not None else rng.choice(list(CATEGORIES))
        name = rng.choice(NAMES[cat])
        if name not in taken:
            break
    stamp = _timestamp(rng)
    return {
        "name": name,
        "amount": rng.randint(1000, 50000),  # cents: $10.00 - $500.00, as android_world draws them
        "category": cat,
        "note": rng.choice(NOTES),
        "created": stamp,
        "modified": stamp,
    }


def _expenses(rng: random.Random, count: int, categories: list[int] | None = None, taken=()) -> list[Row]:
    """`count` expenses with distinct names (none in `taken`) and distinct times."""
    rows: list[Row] = []
    names, stamps = set(taken), set()
    while len(rows) < count:
        row = _expense(rng, rng.choice(categories) if categories else None, names)
        if row["modified"] in stamps:
            continue
        rows.append(row)
        names.add(row["name"])
        stamps.add(row["modified"])
    return rows


def dollars(cents: int) -> str:
    return f"${cents / 100:.2f}"


def _describe(row: Row) -> str:
    category = CATEGORIES[row["category"]]
    return f"name: {row['name']}, amount: {dollars(row['amount'])}, category: {category}, note: {row['note']}"


# ---- database ------------------------------------------------------------------------------------

INSERT = "INSERT INTO expense (name, amount, category, note, created_date, modified_date) VALUES (?, ?, ?, ?, ?, ?)"


def _insert(device: Device, rows: list[Row]) -> None:
    values = [(r["name"], r["amount"], r["category"], r["note"], r["created"], r["modified"]) for r in rows]
    write_db(device, DB, [(INSERT, v) for v in values], EXPENSE)


def _seed_setup(key: str) -> Callable[[Device, Params], None]:
    def setup(device: Device, params: Params) -> None:
        _insert(device, params[key])

    return setup


def _stored(device: Device) -> list[Row]:
    sql = "SELECT expense_id, name, amount, category, note, created_date, modified_date FROM expense"
    keys = ("id", "name", "amount", "category", "note", "created", "modified")
    return [dict(zip(keys, r, strict=True)) for r in query_db(device, DB, sql)]


def _key(row: Row) -> tuple:
    """Every stored field but the id: two rows with the same key are exact duplicates."""
    return (row["name"], row["amount"], row["category"], row["note"] or "", row["created"], row["modified"])


def _same_text(a: str | None, b: str) -> bool:
    return " ".join((a or "").split()).casefold() == " ".join(b.split()).casefold()


def _matches(row: Row, want: Row) -> bool:
    """The fields a person types (name, amount, category, note); names and notes compare loosely."""
    same = row["amount"] == want["amount"] and row["category"] == want["category"]
    return same and _same_text(row["name"], want["name"]) and _same_text(row["note"], want["note"])


def _remaining_ok(device: Device, keep: list[Row]) -> bool:
    """The stored expenses are exactly `keep` (as multisets of every field but the id)."""
    return Counter(_key(r) for r in _stored(device)) == Counter(_key(r) for r in keep)


# ---- expert helpers ------------------------------------------------------------------------------


def _dialog_title(view: UiView) -> str:
    node = view.find(rid="android:id/alertTitle")
    return node.text if node is not None else ""


def _in_logs(view: UiView) -> bool:
    """The Expense Logs list (also in its selection mode, whose bar holds Delete)."""
    return view.has(text="Expense Logs", cls="TextView") or view.has(rid="delete", desc="Delete")


def _in_entry(view: UiView) -> bool:
    return view.has(rid="edt_name")


def _to_logs(view: UiView) -> Action | None:
    """The next step to the Expense Logs list with no dialog over it; None when it is showing."""
    if view.app != EXPENSE:
        return Launch(APP_NAME)
    if view.has(rid="android:id/parentPanel") or _in_entry(view):
        return Back()
    if _in_logs(view):
        return None
    more = view.find(rid="btn_more_logs")
    if more is not None and _tappable(view, more):
        return view.tap(more)
    return view.scroll_down() if view.has(text="Home", cls="TextView") else Back()


def _tappable(view: UiView, node: UiNode) -> bool:
    """Not hidden under the navigation bar at the bottom of the screen."""
    return node.center[1] < view.size[1] - 160


def _row_of(view: UiView, name_node: UiNode) -> UiNode | None:
    """The list row (cd_expense) holding a name."""
    x, y = name_node.center
    for row in view.find_all(rid="cd_expense"):
        left, top, right, bottom = row.bounds
        if left <= x < right and top <= y < bottom:
            return row
    return None


def _find_row(view: UiView, name: str) -> UiNode | None:
    node = view.find(text=name, rid="tv_name")
    return node if node is not None and _tappable(view, node) else None


def _open_detail(view: UiView, name: str) -> Action:
    """From anywhere: the log, then tap the expense (scrolling down to it)."""
    step = _to_logs(view)
    if step is not None:
        return step
    node = _find_row(view, name)
    return view.tap(node) if node is not None else view.scroll_down()


# ---- add expenses --------------------------------------------------------------------------------


def _add_params(count_range: tuple[int, int]) -> Callable[[random.Random], Params]:
    def params(rng: random.Random) -> Params:
        noise = _expenses(rng, 4)
        targets = _expenses(rng, rng.randint(*count_range), taken={r["name"] for r in noise})
        lines = "\n".join(_describe(r) for r in targets)
        return {"noise": noise, "targets": targets, "listing": lines, "describe": _describe(targets[0])}

    return params


def _added(device: Device, params: Params) -> list[Row]:
    """Stored rows that were not there after setup."""
    seeded = Counter(_key(r) for r in params["noise"])
    added = []
    for row in _stored(device):
        if seeded[_key(row)]:
            seeded[_key(row)] -= 1
        else:
            added.append(row)
    return added


def _add_evaluate(device: Device, params: Params, answer: str | None) -> float:
    stored = Counter(_key(r) for r in _stored(device))
    if any(stored[key] < n for key, n in Counter(_key(r) for r in params["noise"]).items()):
        return 0.0  # a seeded expense was changed or deleted
    added, targets = _added(device, params), list(params["targets"])
    if len(added) != len(targets):
        return 0.0
    for row in added:
        match = next((t for t in targets if _matches(row, t)), None)
        if match is None:
            return 0.0
        targets.remove(match)
    return 1.0


def _entry_step(view: UiView, target: Row) -> Action:
    """On the Expense Entry screen: fill name, amount, category and note, then Save."""
    for rid, value in (("edt_name", target["name"]), ("edt_amount", f"{target['amount'] / 100:.2f}")):
        step = view.fill(rid, value)
        if step is not None:
            return step
    chip = view.find(text=CATEGORIES[target["category"]], rid="cd_category")
    if chip is None:
        return view.scroll_down()
    if not chip.checked:
        return view.tap(chip)
    step = view.fill("edt_note", target["note"])
    if step is not None:
        return step
    save = view.find(rid="btn_save")
    return view.tap(save) if save is not None else Back()  # Back hides the keyboard over Save


def _add_expert(device: Device, params: Params) -> Action:
    added = _added(device, params)
    missing = [t for t in params["targets"] if not any(_matches(r, t) for r in added)]
    if not missing:
        return Finish()
    view = UiView.of(device)
    if view.app != EXPENSE:
        return Launch(APP_NAME)
    if _in_entry(view) and view.has(text="Expense Entry", cls="TextView"):
        return _entry_step(view, missing[0])
    if view.has(rid="android:id/parentPanel") or _in_entry(view):
        return Back()
    fab = view.find(desc="Add expense")
    return view.tap(fab) if fab is not None else Back()


# ---- delete expenses -----------------------------------------------------------------------------


def _delete_params(n_targets: int, n_noise: int) -> Callable[[random.Random], Params]:
    def params(rng: random.Random) -> Params:
        rows = _expenses(rng, n_targets + n_noise)
        targets = rng.sample(rows, n_targets)
        names = [t["name"] for t in targets]
        return {"rows": rows, "names": names, "name": names[0], "listing": ", ".join(names)}

    return params


def _delete_evaluate(device: Device, params: Params, answer: str | None) -> float:
    keep = [r for r in params["rows"] if r["name"] not in params["names"]]
    return float(_remaining_ok(device, keep))


def _delete_one_step(view: UiView, name: str) -> Action:
    """Open the expense's detail, Delete, Confirm."""
    title = _dialog_title(view)
    if title == "Delete Items":
        return view.tap(view.find(rid="android:id/button1"))
    if title == "Expense Detail":
        shown = view.find(rid="tv_name_value")
        if shown is not None and shown.text == name:
            return view.tap(view.find(rid="btn_delete"))
    return _open_detail(view, name)


def _delete_single_expert(device: Device, params: Params) -> Action:
    if not any(r["name"] == params["name"] for r in _stored(device)):
        return Finish()
    return _delete_one_step(UiView.of(device), params["name"])


def _delete_multiple_expert(device: Device, params: Params) -> Action:
    """Long-press the first expense, tap the others to select them, Delete, Confirm."""
    left = {r["name"] for r in _stored(device)} & set(params["names"])
    if not left:
        return Finish()
    view = UiView.of(device)
    if _dialog_title(view) == "Delete Items":
        return view.tap(view.find(rid="android:id/button1"))
    step = _to_logs(view)
    if step is not None:
        return step
    selecting = view.has(rid="delete", desc="Delete")
    for node in view.find_all(rid="tv_name"):
        row = _row_of(view, node)
        if row is None or not _tappable(view, node):
            continue
        wanted = node.text in left
        if wanted != row.selected:  # select a target, or unselect anything else
            return view.tap(node) if selecting else view.long_press(node)
    visible = {n.text for n in view.find_all(rid="tv_name") if _tappable(view, n)}
    if selecting and left <= visible:
        return view.tap(view.find(rid="delete", desc="Delete"))
    return view.scroll_down()


def _duplicates_params(rng: random.Random) -> Params:
    rows = _expenses(rng, 6)
    target = rows.pop()
    return {"noise": rows, "target": target, "rows": [*rows, dict(target), dict(target)]}


def _duplicates_setup(device: Device, params: Params) -> None:
    rows = list(params["noise"])
    rows.insert(2, params["target"])
    rows.insert(4, params["target"])
    _insert(device, rows)


def _duplicates_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_remaining_ok(device, [*params["noise"], params["target"]]))


def _duplicates_expert(device: Device, params: Params) -> Action:
    name = params["target"]["name"]
    if sum(r["name"] == name for r in _stored(device)) <= 1:
        return Finish()
    return _delete_one_step(UiView.of(device), name)


# ---- edit an amount ------------------------------------------------------------------------------


def _edit_params(rng: random.Random) -> Params:
    rows = _expenses(rng, 6)
    target = rng.choice(rows)
    new_amount = target["amount"]
    while new_amount == target["amount"]:
        new_amount = rng.randint(1000, 50000)
    return {"rows": rows, "name": target["name"], "new_amount": new_amount, "new_dollars": dollars(new_amount)}


def _edited(row: Row, params: Params) -> Row:
    return {**row, "amount": params["new_amount"]} if row["name"] == params["name"] else row


def _edit_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_remaining_ok(device, [_edited(r, params) for r in params["rows"]]))


def _edit_expert(device: Device, params: Params) -> Action:
    row = next((r for r in _stored(device) if r["name"] == params["name"]), None)
    if row is None or row["amount"] == params["new_amount"]:
        return Finish()
    view = UiView.of(device)
    if view.app == EXPENSE and view.has(text="Update Data", cls="TextView"):
        step = view.fill("edt_amount", f"{params['new_amount'] / 100:.2f}")
        if step is not None:
            return step
        save = view.find(rid="btn_save")
        return view.tap(save) if save is not None else Back()
    if _dialog_title(view) == "Expense Detail":
        shown = view.find(rid="tv_name_value")
        if shown is not None and shown.text == params["name"]:
            return view.tap(view.find(rid="btn_edit"))
    return _open_detail(view, params["name"])


# ---- queries -------------------------------------------------------------------------------------


def _total_params(rng: random.Random) -> Params:
    category = rng.choice(SPENDING)
    matching = _expenses(rng, rng.randint(2, 3), [category])
    others = _expenses(rng, 5, [c for c in SPENDING if c != category], taken={r["name"] for r in matching})
    rows = sorted(matching + others, key=lambda r: r["modified"])
    total = sum(r["amount"] for r in matching)
    return {"rows": rows, "category": CATEGORIES[category], "total": total}


def _total_evaluate(device: Device, params: Params, answer: str | None) -> float:
    value = answer_number(answer)
    return float(value is not None and abs(value - params["total"] / 100) < 0.005)


def _largest_params(rng: random.Random) -> Params:
    rows = _expenses(rng, rng.randint(5, 8), SPENDING)
    amounts = [r["amount"] for r in rows]
    if amounts.count(max(amounts)) > 1:  # one clear answer
        rows[amounts.index(max(amounts))]["amount"] += 1
    largest = max(rows, key=lambda r: r["amount"])
    return {"rows": rows, "largest": largest["name"]}


def _largest_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_matches(answer, params["largest"]))


def _count_params(rng: random.Random) -> Params:
    return {"rows": _expenses(rng, rng.randint(3, 12), SPENDING)}


def _count_evaluate(device: Device, params: Params, answer: str | None) -> float:
    stored = len(_stored(device))
    return float(stored > 0 and answer_number(answer) == stored)


def _list_query_expert(answer: Callable[[list[Row], Params], str]):
    """Open the log, scroll until its last (oldest) expense is in view, then answer."""

    def expert(device: Device, params: Params) -> Action:
        view = UiView.of(device)
        step = _to_logs(view)
        if step is not None:
            return step
        stored = sorted(_stored(device), key=lambda r: (r["modified"], r["id"]))
        if stored and _find_row(view, stored[0]["name"]) is None:
            return view.scroll_down()
        return Finish(answer(stored, params))

    return expert


def _total_answer(stored: list[Row], params: Params) -> str:
    cents = sum(r["amount"] for r in stored if CATEGORIES.get(r["category"]) == params["category"])
    return dollars(cents)


def _largest_answer(stored: list[Row], params: Params) -> str:
    spending = [r for r in stored if r["category"] != 2]
    return max(spending, key=lambda r: r["amount"])["name"]


def _count_answer(stored: list[Row], params: Params) -> str:
    return str(len(stored))


TEMPLATES = [
    TaskTemplate(
        name="ExpenseAddSingle",
        apps=(EXPENSE,),
        goal="Add the following expense into Pro Expense: {describe}.",
        difficulty="medium",
        kind="operation",
        params=_add_params((1, 1)),
        setup=_seed_setup("noise"),
        evaluate=_add_evaluate,
        expert=_add_expert,
    ),
    TaskTemplate(
        name="ExpenseAddMultiple",
        apps=(EXPENSE,),
        goal="Add the following expenses into Pro Expense:\n{listing}",
        difficulty="hard",
        kind="operation",
        params=_add_params((2, 3)),
        setup=_seed_setup("noise"),
        evaluate=_add_evaluate,
        expert=_add_expert,
        max_steps=60,
    ),
    TaskTemplate(
        name="ExpenseDeleteSingle",
        apps=(EXPENSE,),
        goal="Delete the following expense from Pro Expense: {name}.",
        difficulty="medium",
        kind="operation",
        params=_delete_params(1, 5),
        setup=_seed_setup("rows"),
        evaluate=_delete_evaluate,
        expert=_delete_single_expert,
    ),
    TaskTemplate(
        name="ExpenseDeleteMultiple",
        apps=(EXPENSE,),
        goal="Delete the following expenses from Pro Expense: {listing}.",
        difficulty="medium",
        kind="operation",
        params=_delete_params(3, 4),
        setup=_seed_setup("rows"),
        evaluate=_delete_evaluate,
        expert=_delete_multiple_expert,
    ),
    TaskTemplate(
        name="ExpenseDeleteDuplicates",
        apps=(EXPENSE,),
        goal="Delete all but one of any expenses in Pro Expense that are exact duplicates, ensuring at least one"
        " instance of each unique expense remains.",
        difficulty="medium",
        kind="operation",
        params=_duplicates_params,
        setup=_duplicates_setup,
        evaluate=_duplicates_evaluate,
        expert=_duplicates_expert,
    ),
    TaskTemplate(
        name="ExpenseEditAmount",
        apps=(EXPENSE,),
        goal="In Pro Expense, change the amount of the expense {name} to {new_dollars}.",
        difficulty="medium",
        kind="operation",
        params=_edit_params,
        setup=_seed_setup("rows"),
        evaluate=_edit_evaluate,
        expert=_edit_expert,
    ),
    TaskTemplate(
        name="ExpenseTotalQuery",
        apps=(EXPENSE,),
        goal="How much did I spend in total on {category} according to Pro Expense?",
        difficulty="easy",
        kind="query",
        params=_total_params,
        setup=_seed_setup("rows"),
        evaluate=_total_evaluate,
        expert=_list_query_expert(_total_answer),
    ),
    TaskTemplate(
        name="ExpenseLargestQuery",
        apps=(EXPENSE,),
        goal="What was my most expensive expense in Pro Expense? Answer with its name.",
        difficulty="easy",
        kind="query",
        params=_largest_params,
        setup=_seed_setup("rows"),
        evaluate=_largest_evaluate,
        expert=_list_query_expert(_largest_answer),
    ),
    TaskTemplate(
        name="ExpenseCountQuery",
        apps=(EXPENSE,),
        goal="How many expenses are recorded in Pro Expense?",
        difficulty="easy",
        kind="query",
        params=_count_params,
        setup=_seed_setup("rows"),
        evaluate=_count_evaluate,
        expert=_list_query_expert(_count_answer),
    ),
]
