"""Simple SMS Messenger (com.simplemobiletools.smsmessenger): conversation list, threads and new conversations.

Messages live where Android keeps them, in the telephony provider's database
/data/data/com.android.providers.telephony/databases/mmssms.db, which `content://sms` reads:

    sms(_id, thread_id, address, date, date_sent, read, seen, type, body, ...)
        date / date_sent: epoch milliseconds. type: 1 inbox (received), 2 sent. read: 0 unread.
    threads(_id, date, message_count, recipient_ids, snippet, read, ...), one per correspondent
    canonical_addresses(_id, address), the addresses threads' recipient_ids point to

As in AOSP's MmsSmsDatabaseHelper, triggers keep `threads` in step with `sms`: a row inserted with a
NULL thread_id joins the thread of the same number (compared on its last 10 digits) or starts one,
and a thread whose last message is deleted goes too. So a task setup only inserts `sms` rows.

A thread shows the contact's name when the number matches a contact in the contacts provider
(contacts2.db, see contacts.py). `pm clear` of the app keeps the messages: they belong to the provider.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from droidrl.envs.sim.app import App, Ctx, IntentFilter
from droidrl.envs.sim.apps import contacts
from droidrl.envs.sim.ui import BUTTON, Dialog, Node, Screen, edit, header, icon_button, item, text

if TYPE_CHECKING:
    from droidrl.envs.sim.intents import Intent
    from droidrl.envs.sim.phone import Phone

PACKAGE = "com.simplemobiletools.smsmessenger"
PROVIDER_DIR = "/data/data/com.android.providers.telephony"
DB_PATH = f"{PROVIDER_DIR}/databases/mmssms.db"

MAIN = ".activities.MainActivity"
THREAD = ".activities.ThreadActivity"
NEW_CONVERSATION = ".activities.NewConversationActivity"

TYPE_INBOX, TYPE_SENT = 1, 2
MESSAGE_HINT = "Type a message…"
ADDRESS_HINT = "Add Contact or Number…"


def _sql_key(column: str) -> str:
    """The thread key of an address in SQL: separators dropped, last 10 digits ("+1 (650) 555-0134" -> 6505550134)."""
    stripped = column
    for sep in " -()+.":
        stripped = f"replace({stripped}, '{sep}', '')"
    return f"substr({stripped}, -10)"


def _recalc(thread: str) -> str:
    """SQL refreshing one thread's summary columns from its messages."""
    return f"""
    UPDATE threads SET
        date = COALESCE((SELECT MAX(date) FROM sms WHERE thread_id = {thread}), date),
        snippet = (SELECT body FROM sms WHERE thread_id = {thread} ORDER BY date DESC, _id DESC LIMIT 1),
        message_count = (SELECT COUNT(*) FROM sms WHERE thread_id = {thread}),
        read = NOT EXISTS (SELECT 1 FROM sms WHERE thread_id = {thread} AND read = 0)
    WHERE _id = {thread};"""


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS canonical_addresses (_id INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT);
CREATE TABLE IF NOT EXISTS threads (
    _id INTEGER PRIMARY KEY AUTOINCREMENT,
    date INTEGER DEFAULT 0,
    message_count INTEGER DEFAULT 0,
    recipient_ids TEXT,
    snippet TEXT,
    snippet_cs INTEGER DEFAULT 0,
    read INTEGER DEFAULT 1,
    archived INTEGER DEFAULT 0,
    type INTEGER DEFAULT 0,
    error INTEGER DEFAULT 0,
    has_attachment INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sms (
    _id INTEGER PRIMARY KEY,
    thread_id INTEGER,
    address TEXT,
    person INTEGER,
    date INTEGER,
    date_sent INTEGER DEFAULT 0,
    protocol INTEGER,
    read INTEGER DEFAULT 0,
    status INTEGER DEFAULT -1,
    type INTEGER,
    reply_path_present INTEGER,
    subject TEXT,
    body TEXT,
    service_center TEXT,
    locked INTEGER DEFAULT 0,
    sub_id INTEGER DEFAULT -1,
    error_code INTEGER DEFAULT 0,
    creator TEXT,
    seen INTEGER DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS sms_assign_thread AFTER INSERT ON sms WHEN new.thread_id IS NULL BEGIN
    INSERT INTO canonical_addresses (address) SELECT new.address
        WHERE NOT EXISTS (SELECT 1 FROM canonical_addresses WHERE {_sql_key("address")} = {_sql_key("new.address")});
    INSERT INTO threads (recipient_ids, date)
        SELECT CAST(c._id AS TEXT), new.date FROM canonical_addresses c
        WHERE {_sql_key("c.address")} = {_sql_key("new.address")}
          AND NOT EXISTS (SELECT 1 FROM threads t WHERE t.recipient_ids = CAST(c._id AS TEXT))
        ORDER BY c._id LIMIT 1;
    UPDATE sms SET thread_id = (
        SELECT t._id FROM threads t JOIN canonical_addresses c ON t.recipient_ids = CAST(c._id AS TEXT)
        WHERE {_sql_key("c.address")} = {_sql_key("new.address")} ORDER BY t._id LIMIT 1
    ) WHERE _id = new._id;
END;
CREATE TRIGGER IF NOT EXISTS sms_update_thread_on_insert AFTER INSERT ON sms WHEN new.thread_id IS NOT NULL BEGIN
    {_recalc("new.thread_id")}
END;
CREATE TRIGGER IF NOT EXISTS sms_update_thread_on_update AFTER UPDATE OF thread_id, read, body, date ON sms BEGIN
    {_recalc("new.thread_id")}
    {_recalc("old.thread_id")}
END;
CREATE TRIGGER IF NOT EXISTS sms_update_thread_on_delete AFTER DELETE ON sms BEGIN
    {_recalc("old.thread_id")}
    DELETE FROM threads WHERE _id = old.thread_id AND NOT EXISTS (SELECT 1 FROM sms WHERE thread_id = old.thread_id);
END;
"""

# A lived-in phone: (address, type, body, minutes before the frozen clock, read).
SEED_MESSAGES = [
    ("+16505550134", TYPE_INBOX, "Are we still on for lunch tomorrow?", 26 * 60, 1),
    ("+16505550134", TYPE_SENT, "Yes! 12:30 at the usual place", 25 * 60 + 50, 1),
    ("+14155550199", TYPE_INBOX, "The part for your sink arrived, I can come by on Tuesday.", 3 * 60, 1),
    ("32665", TYPE_INBOX, "Your verification code is 482913. Do not share it with anyone.", 45, 0),
]


# ---- database ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _db(phone: Phone) -> Iterator[sqlite3.Connection]:
    # The provider creates its tables on first use, so a cleared provider comes back empty.
    with phone.fs.sqlite(DB_PATH) as conn:
        conn.executescript(SCHEMA)
        yield conn


def install(phone: Phone) -> None:
    """Create the provider's database with a few seed conversations, unless it already exists."""
    phone.fs.makedirs(f"{PROVIDER_DIR}/databases")
    if phone.fs.is_file(DB_PATH):
        return  # `pm clear` of the app: messages belong to the provider and stay
    now_ms = round(phone.now().timestamp() * 1000)
    with _db(phone) as conn:
        for address, kind, body, minutes_ago, read in SEED_MESSAGES:
            date = now_ms - minutes_ago * 60_000
            sent = date - 4000 if kind == TYPE_INBOX else 0
            conn.execute(
                "INSERT INTO sms (address, date, date_sent, read, seen, type, body) VALUES (?, ?, ?, ?, 1, ?, ?)",
                (address, date, sent, read, kind, body),
            )


def address_key(address: str) -> str:
    """What threads are matched on, as the triggers' SQL computes it: the last 10 digits."""
    return re.sub(r"[ \-().+]", "", address)[-10:]


def _contact_names(phone: Phone) -> dict[str, str]:
    """Contact display names by the last 10 digits of their numbers."""
    if not phone.fs.is_file(contacts.DB_PATH):
        return {}
    with phone.fs.sqlite(contacts.DB_PATH) as conn:
        try:
            rows = conn.execute(
                "SELECT r.display_name, d.data1 FROM raw_contacts r JOIN data d ON d.raw_contact_id = r._id"
                " JOIN mimetypes m ON m._id = d.mimetype_id"
                " WHERE m.mimetype = ? AND r.deleted = 0 ORDER BY r._id",
                (contacts.PHONE,),
            ).fetchall()
        except sqlite3.OperationalError:  # a cleared provider has no tables yet
            return {}
    names: dict[str, str] = {}
    for name, number in rows:
        digits = contacts.normalize_number(number or "")
        if digits:
            names.setdefault(digits[-10:], name or "")
    return names


def _contact_list(phone: Phone) -> list[tuple[str, str]]:
    """(name, number) of every contact with a number, sorted by name, as the new-conversation list shows."""
    if not phone.fs.is_file(contacts.DB_PATH):
        return []
    with phone.fs.sqlite(contacts.DB_PATH) as conn:
        try:
            rows = conn.execute(
                "SELECT r.display_name, d.data1 FROM raw_contacts r JOIN data d ON d.raw_contact_id = r._id"
                " JOIN mimetypes m ON m._id = d.mimetype_id"
                " WHERE m.mimetype = ? AND r.deleted = 0 AND d.data1 != '' ORDER BY r._id, d._id",
                (contacts.PHONE,),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
    return sorted(((name or "", number) for name, number in rows), key=lambda r: r[0].casefold())


def display_name(address: str, names: dict[str, str]) -> str:
    """The contact's name for an address, else the address itself."""
    digits = re.sub(r"\D", "", address)
    return (names.get(digits[-10:]) if digits else None) or address


def format_date(date_ms: int, now: dt.datetime, h24: bool) -> str:
    """formatDateOrTime: the time for today's messages, else the date (dd.MM.yyyy, the app's default)."""
    when = dt.datetime.fromtimestamp(date_ms / 1000, tz=now.tzinfo)
    if when.date() == now.date():
        return when.strftime("%H:%M") if h24 else f"{(when.hour % 12) or 12}:{when.minute:02d} {when:%p}"
    return when.strftime("%d.%m.%Y")


def _h24(ctx: Ctx) -> bool:
    return ctx.setting("system", "time_12_24", "24") != "12"


def _now_ms(ctx: Ctx) -> int:
    return round(ctx.now().timestamp() * 1000)


def _conversations(phone: Phone) -> list[dict]:
    """One entry per thread, newest first: thread id, address, snippet, date and whether all is read."""
    with _db(phone) as conn:
        rows = conn.execute(
            "SELECT thread_id, address, body, date, read FROM sms ORDER BY date DESC, _id DESC"
        ).fetchall()
    threads: dict[int, dict] = {}
    for thread_id, address, body, date, read in rows:
        conv = threads.get(thread_id)
        if conv is None:
            threads[thread_id] = {"id": thread_id, "address": address or "", "snippet": body or "", "date": date}
            conv = threads[thread_id]
            conv["read"] = True
        if not read:
            conv["read"] = False
    return list(threads.values())


def _open_thread(ctx: Ctx, address: str, replace: bool = False) -> None:
    """Open a thread; the app marks its messages read as it shows them."""
    key = address_key(address)
    with _db(ctx.phone) as conn:
        for _id, other in conn.execute("SELECT _id, address FROM sms WHERE read = 0").fetchall():
            if address_key(other or "") == key:
                conn.execute("UPDATE sms SET read = 1, seen = 1 WHERE _id = ?", (_id,))
    if replace:
        ctx.replace(THREAD, address=address)
    else:
        ctx.start(THREAD, address=address)


# ---- conversation list (MainActivity) ---------------------------------------------------------------------


def main_screen(ctx: Ctx) -> Screen:
    conversations = _conversations(ctx.phone)
    names = _contact_names(ctx.phone)
    now, h24 = ctx.now(), _h24(ctx)
    selected: list[int] = [t for t in ctx.extra.get("selected", []) if any(c["id"] == t for c in conversations)]

    def toggle(thread_id: int) -> None:
        chosen = list(ctx.extra.get("selected", []))
        if thread_id in chosen:
            chosen.remove(thread_id)
        else:
            chosen.append(thread_id)
        ctx.extra["selected"] = chosen

    def clear_selection() -> None:
        ctx.extra["selected"] = []
        ctx.extra["dialog"] = None

    rows: list[Node] = []
    for conv in conversations:
        name = display_name(conv["address"], names)
        date = Node(cls="android.widget.TextView", text=format_date(conv["date"], now, h24), rid="conversation_date")
        # In selection mode a tap adds or removes the conversation; otherwise it opens the thread.
        open_it = lambda a=conv["address"]: _open_thread(ctx, a)  # noqa: E731
        on_click = (lambda t=conv["id"]: toggle(t)) if selected else open_it
        row = item(
            name,
            conv["snippet"],
            on_click=on_click,
            on_long_click=lambda t=conv["id"]: toggle(t),
            trailing=date,
            avatar=name,
            rid="conversation_frame",
            title_rid="conversation_address",
            subtitle_rid="conversation_body_short",
        )
        row.selected = conv["id"] in selected
        row.children[1].bold = not conv["read"]  # unread threads show their name in bold
        rows.append(row)
    if not conversations:
        rows.append(text("No stored conversations have been found", align="center", rid="no_conversations_placeholder"))
        start = item("Start a conversation", on_click=lambda: ctx.start(NEW_CONVERSATION), title_rid="")
        start.rid = "no_conversations_placeholder_2"
        rows.append(start)

    dialog = None
    if selected and ctx.extra.get("dialog") == "delete":

        def delete() -> None:
            with _db(ctx.phone) as conn:
                conn.executemany("DELETE FROM sms WHERE thread_id = ?", [(t,) for t in selected])
            clear_selection()

        count = len(selected)
        noun = "conversation" if count == 1 else "conversations"
        dialog = Dialog(
            message=f"Are you sure you want to delete {count} {noun}?",
            buttons=[("Yes", delete), ("No", lambda: ctx.extra.update(dialog=None))],
            on_cancel=lambda: ctx.extra.update(dialog=None),
        )
    if selected:  # the contextual action bar of the selection mode
        actions = [icon_button("Delete", lambda: ctx.extra.update(dialog="delete"), "cab_delete", "🗑")]
        return Screen(
            title=f"{len(selected)} / {len(conversations)}",
            rows=rows,
            up=clear_selection,
            actions=actions,
            dialog=dialog,
            on_back=clear_selection,
        )
    fab = icon_button("New conversation", lambda: ctx.start(NEW_CONVERSATION), "conversations_fab", "+")
    return Screen(title="Simple SMS Messenger", rows=rows, fab=fab)


# ---- one conversation (ThreadActivity) ---------------------------------------------------------------------


def _thread_messages(phone: Phone, address: str) -> list[tuple]:
    key = address_key(address)
    with _db(phone) as conn:
        rows = conn.execute("SELECT _id, address, body, date, type FROM sms ORDER BY date, _id").fetchall()
    return [r for r in rows if address_key(r[1] or "") == key]


def _bubble(body: str, sent: bool) -> Node:
    row = text(body, rid="thread_message_body", align="right" if sent else "left")
    bubble = row.children[0]
    bubble.long_clickable = True
    bubble.color = "#ffffff" if sent else ""
    row.bg = "accent" if sent else ""
    return row


def thread_screen(ctx: Ctx) -> Screen:
    address = str(ctx.args.get("address", ""))
    if "prefilled" not in ctx.extra:  # an sms: intent's sms_body waits in the composer, like onCreate
        ctx.extra["prefilled"] = True
        if ctx.args.get("body"):
            ctx.set_field("message", str(ctx.args["body"]))
    messages = _thread_messages(ctx.phone, address)
    names = _contact_names(ctx.phone)
    now, h24 = ctx.now(), _h24(ctx)

    rows: list[Node] = []
    last_date = None
    for _id, _addr, body, date, kind in messages:
        # A date line heads each group of messages more than an hour apart, as the real thread does.
        if last_date is None or date - last_date > 3_600_000:
            rows.append(header(format_date(date, now, h24), rid="thread_date_time"))
        last_date = date
        rows.append(_bubble(body or "", kind != TYPE_INBOX))

    message = ctx.field("message")

    def send() -> None:
        body = ctx.field("message").strip()
        if not body:
            return
        with _db(ctx.phone) as conn:
            conn.execute(
                "INSERT INTO sms (address, date, date_sent, read, seen, type, body, status)"
                " VALUES (?, ?, 0, 1, 1, ?, ?, -1)",
                (address, _now_ms(ctx), TYPE_SENT, body),
            )
        ctx.set_field("message", "")

    composer = [edit("message", message, MESSAGE_HINT, "thread_type_message", focused=ctx.focused("message"))]
    can_send = bool(message.strip())
    send_button = Node(
        cls=BUTTON,
        text="SMS",
        desc="OK",
        rid="thread_send_message",
        kind="primary" if can_send else "secondary",
        clickable=can_send,
        focusable=True,
        enabled=can_send,
        on_click=send if can_send else None,
        size=14,
        bold=True,
    )
    composer.append(Node(cls="android.widget.LinearLayout", kind="button_row", height=64, children=[send_button]))

    # The list is stacked from its end: it opens on the newest message and stays there while typing
    # (the keyboard shrinks the window) and after a message is sent; the composer is pinned below it.
    if ctx.focused("message") or ctx.extra.get("shown") != len(messages):
        ctx.activity.scroll = 10**9
        ctx.extra["shown"] = len(messages)

    dialog = None
    if ctx.extra.get("dialog") == "delete":

        def delete() -> None:
            ids = [(m[0],) for m in messages]
            with _db(ctx.phone) as conn:
                conn.executemany("DELETE FROM sms WHERE _id = ?", ids)
            ctx.extra["dialog"] = None
            ctx.finish()

        dialog = Dialog(
            message="Are you sure you want to delete all messages of this conversation?",
            buttons=[("Yes", delete), ("No", lambda: ctx.extra.update(dialog=None))],
            on_cancel=lambda: ctx.extra.update(dialog=None),
        )
    actions = [icon_button("Delete", lambda: ctx.extra.update(dialog="delete"), "delete", "🗑")] if messages else []
    title = display_name(address, names)
    return Screen(title=title, rows=rows, bottom=composer, up=ctx.finish, actions=actions, dialog=dialog)


# ---- new conversation (NewConversationActivity) ----------------------------------------------------------


def is_number(value: str) -> bool:
    """Whether the typed text can be texted as a number (the confirm check shows for these)."""
    return bool(re.fullmatch(r"\+?[\d\s\-().]{3,}", value.strip())) and len(re.sub(r"\D", "", value)) >= 3


def _contact_matches(query: str, name: str, number: str) -> bool:
    q = query.strip().casefold()
    if not q:
        return True
    if q in name.casefold():
        return True
    digits = re.sub(r"\D", "", q)
    return bool(digits) and digits in re.sub(r"\D", "", number)


def new_conversation_screen(ctx: Ctx) -> Screen:
    typed = ctx.field("address")
    rows = [edit("address", typed, ADDRESS_HINT, "new_conversation_address", focused=ctx.focused("address"))]
    actions = []
    if is_number(typed):
        confirm = icon_button(
            "", lambda: _open_thread(ctx, typed.strip(), replace=True), "new_conversation_confirm", "✓"
        )
        actions.append(confirm)
    shown = [(n, num) for n, num in _contact_list(ctx.phone) if _contact_matches(typed, n, num)]
    if shown:
        rows.append(header("Suggestions" if typed.strip() else "Contacts", rid="suggestions_label"))
    for name, number in shown:
        rows.append(
            item(
                name,
                number,
                on_click=lambda n=number: _open_thread(ctx, n, replace=True),
                avatar=name,
                rid="item_contact_frame",
                title_rid="item_contact_name",
                subtitle_rid="item_contact_number",
            )
        )
    if not shown and not typed.strip():
        rows.append(text("No contacts found", align="center", rid="no_contacts_placeholder"))
    return Screen(title="New conversation", rows=rows, up=ctx.finish, actions=actions)


# ---- intents (the manifest's filters; the launcher icon is an alias of the splash activity) ---------------

SPLASH = ".activities.SplashActivity"
_SMS_SCHEMES = ("sms", "smsto", "mms", "mmsto")
INTENT_FILTERS = [
    IntentFilter(SPLASH + ".Orange", ("android.intent.action.MAIN",), ("android.intent.category.LAUNCHER",)),
    IntentFilter(
        NEW_CONVERSATION,
        ("android.intent.action.SEND", "android.intent.action.SENDTO", "android.intent.action.VIEW"),
        ("android.intent.category.DEFAULT", "android.intent.category.BROWSABLE"),
        schemes=_SMS_SCHEMES,
    ),
    IntentFilter(NEW_CONVERSATION, ("android.intent.action.SEND",), mime_types=("*/*",)),
    IntentFilter(NEW_CONVERSATION, ("android.intent.action.SEND_MULTIPLE",), mime_types=("*/*",)),
]


def on_intent(activity: str, intent: Intent) -> tuple[str, dict[str, object]]:
    """NewConversationActivity opens the thread of an `sms:NUMBER` URI at once, its sms_body in the composer."""
    scheme, _, number = (intent.data or "").partition(":")
    number = urllib.parse.unquote(number.split("?")[0]).strip()
    if activity == NEW_CONVERSATION and scheme in _SMS_SCHEMES and number:
        return THREAD, {"address": number, "body": str((intent.extras or {}).get("sms_body") or "")}
    return activity, {}


APP = App(
    package=PACKAGE,
    label="Simple SMS Messenger",
    activities={MAIN: main_screen, THREAD: thread_screen, NEW_CONVERSATION: new_conversation_screen},
    intent_filters=INTENT_FILTERS,
    aliases={SPLASH: MAIN, SPLASH + ".Orange": MAIN},
    on_intent=on_intent,
    icon="✉",
    color="#e65100",
    version_name="5.16.0",
    install=install,
    permissions=["android.permission.READ_SMS", "android.permission.SEND_SMS", "android.permission.READ_CONTACTS"],
)
