"""Task templates for Simple SMS Messenger (com.simplemobiletools.smsmessenger), named after android_world's SimpleSms*.

Messages are read from the telephony provider's mmssms.db (table `sms`), which `content://sms` reads on a phone.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

from droidrl.envs.actions import Action, Back, Finish, Launch, Type
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiView
from droidrl.envs.tasks.state import answer_matches, query_db, write_db

SMS = "com.simplemobiletools.smsmessenger"
APP_NAME = "Simple SMS Messenger"
DB = "/data/data/com.android.providers.telephony/databases/mmssms.db"
TYPE_INBOX, TYPE_SENT = 1, 2
NOW_MS = 1697384040000  # the phone's frozen clock, 2023-10-15 15:34 UTC

# The stock contacts of the Contacts app (name, number): threads with these numbers show the name.
CONTACTS = [
    ("Alice Johnson", "+16505550134"),
    ("Bob Martinez", "+14155550199"),
    ("Carol Nguyen", "+12125550147"),
    ("David Kim", "+13125550162"),
    ("Emma Wilson", "+16175550118"),
    ("Frank Okafor", "+12065550175"),
]
# Area codes no stock contact uses, so a number drawn from them is a stranger's.
STRANGER_AREAS = ["303", "512", "702", "919", "503", "404"]

# Texts people send; none contains a phone number or a time, which other tasks look for.
CHATTER = [
    "Did you see the game last night?",
    "Can you send me the photos from Saturday?",
    "Happy birthday! Hope you have a great day",
    "I left my umbrella at your place",
    "Thanks again for dinner, it was lovely",
    "Are you coming to the team lunch on Friday?",
    "The package arrived this morning",
    "Let me know when you are free to talk",
    "Don't forget to bring the charger",
    "Traffic is terrible today, running late",
]
REPLIES = [
    "Sounds good, see you then",
    "On my way",
    "Thanks, I will check it out",
    "Can we move it to tomorrow?",
    "Got it, talk soon",
    "Yes, count me in",
    "I am at the store now",
    "Call me when you get this",
]


@dataclass(frozen=True)
class Message:
    """One row for the `sms` table: who, which way, what, and how many minutes before now."""

    address: str
    kind: int
    body: str
    minutes_ago: int
    read: int = 1


# ---- state -------------------------------------------------------------------------------------------


def digits_key(number: str) -> str:
    """The last 10 digits of a number: how threads and checkers compare numbers."""
    return re.sub(r"\D", "", number)[-10:]


def set_messages(device: Device, messages: list[Message]) -> None:
    """Replace every message on the phone with `messages` (the provider's triggers rebuild the threads)."""
    statements: list[tuple[str, tuple]] = [
        ("DELETE FROM sms", ()),
        ("DELETE FROM threads", ()),
        ("DELETE FROM canonical_addresses", ()),
    ]
    for m in messages:
        date = NOW_MS - m.minutes_ago * 60_000
        sent = date - 5000 if m.kind == TYPE_INBOX else 0
        statements.append(
            (
                "INSERT INTO sms (address, date, date_sent, read, seen, type, body) VALUES (?, ?, ?, ?, 1, ?, ?)",
                (m.address, date, sent, m.read, m.kind, m.body),
            )
        )
    write_db(device, DB, statements, SMS)


def messages_to(device: Device, number: str, kind: int = TYPE_SENT) -> list[str]:
    """Bodies of the messages of `kind` exchanged with `number`, oldest first."""
    rows = query_db(device, DB, "SELECT address, body FROM sms WHERE type = ? ORDER BY date, _id", (kind,))
    key = digits_key(number)
    return [(body or "").strip() for address, body in rows if digits_key(address or "") == key]


def sent_count(device: Device, number: str, body: str) -> int:
    """How many messages with exactly `body` were sent to `number`."""
    return messages_to(device, number).count(body.strip())


def new_sent(device: Device, setup_rows: list[tuple]) -> set[tuple[str, str]] | None:
    """(number key, body) of the messages sent since setup; None when a message of the setup is gone."""
    rows = query_db(device, DB, "SELECT address, body, type FROM sms")
    now = Counter((digits_key(a or ""), (b or "").strip(), t) for a, b, t in rows)
    before = Counter((digits_key(a), b.strip(), t) for a, t, b, *_ in setup_rows)
    if before - now:
        return None
    return {(key, body) for key, body, kind in now - before if kind == TYPE_SENT}


def sent_exactly(device: Device, setup_rows: list[tuple], wanted: list[tuple[str, str]]) -> bool:
    """Whether the messages sent since setup are just `wanted` ((number, body) pairs), nothing deleted."""
    new = new_sent(device, setup_rows)
    return new is not None and new == {(digits_key(number), body.strip()) for number, body in wanted}


# ---- expert helpers ------------------------------------------------------------------------------------


def in_main(view: UiView) -> bool:
    return view.app == SMS and (view.has(desc="New conversation") or view.has(rid="no_conversations_placeholder"))


def in_thread(view: UiView) -> bool:
    return view.app == SMS and view.has(rid="thread_type_message")


def thread_title_is(view: UiView, title: str) -> bool:
    # The app-bar title is the only node with this text and no resource-id.
    return any(node.rid == "" for node in view.find_all(text=title))


def to_thread(view: UiView, title: str, number: str = "") -> Action | None:
    """The next step towards the thread titled `title` (a contact's name, or `number` typed as shown).

    Existing conversations are opened from the list; others through "New conversation", picking the
    contact or typing the number. None once the thread is on screen.
    """
    if view.app != SMS:
        return Launch(APP_NAME)
    if in_thread(view):
        return None if thread_title_is(view, title) else view.tap(view.find(desc="Navigate up"))
    if view.has(rid="new_conversation_address"):
        if not number:
            contact = view.find(text=title, rid="item_contact_name")
            return view.tap(contact) if contact is not None else fill(view, "new_conversation_address", title)
        step = fill(view, "new_conversation_address", number)
        return step if step is not None else view.tap(view.find(rid="new_conversation_confirm"))
    if in_main(view):
        row = view.find(text=title, rid="conversation_address")
        return view.tap(row) if row is not None else view.tap(view.find(desc="New conversation"))
    return Back()


def fill(view: UiView, rid: str, value: str) -> Action | None:
    """Focus the field `rid` and type `value`; None once it holds it."""
    field = view.find(rid=rid)
    if field is None or field.text == value:
        return None
    focused = view.focused_field()
    if focused is None or focused.rid != field.rid:
        return view.tap(field)
    return Type(value)


def send_step(view: UiView, title: str, body: str, number: str = "") -> Action:
    """The next step to send `body` in the thread titled `title` (see `to_thread`)."""
    step = to_thread(view, title, number)
    if step is not None:
        return step
    step = fill(view, "thread_type_message", body)
    return step if step is not None else view.tap(view.find(rid="thread_send_message"))


# ---- parameters ---------------------------------------------------------------------------------------


def stranger_number(rng: random.Random) -> str:
    """A US number no contact has, written as people write it: (303) 555-0123."""
    return f"({rng.choice(STRANGER_AREAS)}) 555-{rng.randint(100, 199):04d}"


def background(rng: random.Random, people: list[tuple[str, str]]) -> list[Message]:
    """A day or two of ordinary conversations with `people`, each ending in a received message."""
    messages = []
    for i, (_, number) in enumerate(people):
        start = 600 + 180 * i + rng.randint(0, 90)
        messages.append(Message(number, TYPE_INBOX, rng.choice(CHATTER), start + 40))
        messages.append(Message(number, TYPE_SENT, rng.choice(REPLIES), start + 30))
        messages.append(Message(number, TYPE_INBOX, rng.choice(CHATTER), start))
    return messages


def _messages_setup(device: Device, params: Params) -> None:
    set_messages(device, [Message(*m) for m in params["messages"]])


def _as_rows(messages: list[Message]) -> list[tuple]:
    """Messages as plain tuples, so parameters stay plain data."""
    return [(m.address, m.kind, m.body, m.minutes_ago, m.read) for m in messages]


# ---- send to a number / a contact -----------------------------------------------------------------------


def _send_number_params(rng: random.Random) -> Params:
    others = rng.sample(CONTACTS, 2)
    return {
        "number": stranger_number(rng),
        "message": rng.choice(REPLIES + CHATTER),
        "messages": _as_rows(background(rng, others)),
    }


def _send_contact_params(rng: random.Random) -> Params:
    target, *others = rng.sample(CONTACTS, 3)
    return {
        "name": target[0],
        "number": target[1],
        "message": rng.choice(REPLIES + CHATTER),
        "messages": _as_rows(background(rng, others)),  # no thread with the target yet
    }


def _send_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(sent_exactly(device, params["messages"], [(params["number"], params["message"])]))


def _send_number_expert(device: Device, params: Params) -> Action:
    if _send_evaluate(device, params, None):
        return Finish()
    return send_step(UiView.of(device), params["number"], params["message"], params["number"])


def _send_contact_expert(device: Device, params: Params) -> Action:
    if _send_evaluate(device, params, None):
        return Finish()
    return send_step(UiView.of(device), params["name"], params["message"])


# ---- reply, resend ------------------------------------------------------------------------------------


def _reply_params(rng: random.Random) -> Params:
    """Three conversations; the target's is not the newest, so it must be found by name."""
    people = rng.sample(CONTACTS, 3)
    target = people[rng.randint(1, 2)]
    return {
        "name": target[0],
        "number": target[1],
        "message": rng.choice(REPLIES),
        "messages": _as_rows(background(rng, people)),
    }


def _reply_recent_params(rng: random.Random) -> Params:
    """The newest conversation ends in an unread text from a contact or a stranger."""
    people = rng.sample(CONTACTS, 2)
    messages = background(rng, people)
    if rng.random() < 0.5:
        name, number = rng.choice([c for c in CONTACTS if c not in people])
    else:
        number = stranger_number(rng)
        name = number
    messages.append(Message(number, TYPE_INBOX, rng.choice(CHATTER), rng.randint(5, 120), read=0))
    return {"name": name, "number": number, "message": rng.choice(REPLIES), "messages": _as_rows(messages)}


def _resend_params(rng: random.Random) -> Params:
    """The last message of the target's conversation is one I sent."""
    people = rng.sample(CONTACTS, 3)
    target = people[rng.randint(0, 2)]
    message = rng.choice(REPLIES)
    messages = background(rng, people)
    messages.append(Message(target[1], TYPE_SENT, message, rng.randint(2, 30)))
    return {"name": target[0], "number": target[1], "message": message, "messages": _as_rows(messages)}


def _resend_evaluate(device: Device, params: Params, answer: str | None) -> float:
    # The setup's copy counts as "before", so exactly the one new copy must have been sent.
    return _send_evaluate(device, params, answer)


def _reply_expert(device: Device, params: Params) -> Action:
    if _send_evaluate(device, params, None):
        return Finish()
    return send_step(UiView.of(device), params["name"], params["message"])


# ---- send to two contacts -----------------------------------------------------------------------------


def _two_params(rng: random.Random) -> Params:
    first, second, *others = rng.sample(CONTACTS, 4)
    return {
        "name1": first[0],
        "number1": first[1],
        "name2": second[0],
        "number2": second[1],
        "message": rng.choice(CHATTER),
        "messages": _as_rows(background(rng, others)),
    }


def _two_wanted(params: Params) -> list[tuple[str, str]]:
    return [(params["number1"], params["message"]), (params["number2"], params["message"])]


def _two_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(sent_exactly(device, params["messages"], _two_wanted(params)))


def _two_expert(device: Device, params: Params) -> Action:
    new = new_sent(device, params["messages"]) or set()
    for name, number in ((params["name1"], params["number1"]), (params["name2"], params["number2"])):
        if (digits_key(number), params["message"]) not in new:
            return send_step(UiView.of(device), name, params["message"])
    return Finish()


# ---- forward what someone sent ----------------------------------------------------------------------------

ADDRESSES = [
    "42 Maple Street, Springfield",
    "1600 Amphitheatre Parkway, Mountain View",
    "221B Baker Street, London",
    "350 Fifth Avenue, New York",
    "12 Ocean Drive, Miami Beach",
    "8 Harbor Road, Seattle",
]


def _received_address_params(rng: random.Random) -> Params:
    sender, target, other = rng.sample(CONTACTS, 3)
    address = rng.choice(ADDRESSES)
    messages = background(rng, [target, other])
    messages.append(Message(sender[1], TYPE_INBOX, "Here is the address of the party:", 20))
    messages.append(Message(sender[1], TYPE_INBOX, address, 19))
    return {
        "sender": sender[0],
        "name": target[0],
        "number": target[1],
        "message": address,
        "messages": _as_rows(messages),
    }


# ---- delete a conversation ----------------------------------------------------------------------------------


def _delete_params(rng: random.Random) -> Params:
    people = rng.sample(CONTACTS, 3)
    target = rng.choice(people)
    return {"name": target[0], "number": target[1], "messages": _as_rows(background(rng, people))}


def _delete_evaluate(device: Device, params: Params, answer: str | None) -> float:
    rows = query_db(device, DB, "SELECT address, body, type FROM sms")
    now = Counter((digits_key(a or ""), (b or "").strip(), t) for a, b, t in rows)
    kept = Counter(
        (digits_key(a), b.strip(), t)
        for a, t, b, *_ in params["messages"]
        if digits_key(a) != digits_key(params["number"])
    )
    return float(now == kept)


def _delete_expert(device: Device, params: Params) -> Action:
    if _delete_evaluate(device, params, None):
        return Finish()
    view = UiView.of(device)
    if view.has(text="Are you sure you want to delete all messages of this conversation?"):
        return view.tap(view.find(text="Yes"))
    step = to_thread(view, params["name"])
    return step if step is not None else view.tap(view.find(desc="Delete"))


# ---- queries -------------------------------------------------------------------------------------------------


def _latest_params(rng: random.Random) -> Params:
    people = rng.sample(CONTACTS, 3)
    target = people[rng.randint(0, 2)]
    messages = background(rng, people)
    last = [m for m in messages if m.address == target[1]][-1]  # each conversation ends in a received text
    return {"name": target[0], "number": target[1], "answer": last.body, "messages": _as_rows(messages)}


def _latest_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_matches(answer, params["answer"]))


def _latest_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    step = to_thread(view, params["name"])
    if step is not None:
        return step
    bodies = view.find_all(rid="thread_message_body")
    return Finish(bodies[-1].text) if bodies else Back()


def _sender_params(rng: random.Random) -> Params:
    people = rng.sample(CONTACTS, 2)
    number = stranger_number(rng)
    message = rng.choice(
        [
            "Hi, this is the dentist's office confirming your appointment on Monday.",
            "Your table for two is booked for 7 pm tonight.",
            "Hello! Your order has been shipped and will arrive tomorrow.",
            "Reminder: your car is due for service next week.",
        ]
    )
    messages = background(rng, people)
    messages.append(Message(number, TYPE_INBOX, message, rng.randint(60, 500), read=0))
    return {"number": number, "message": message, "messages": _as_rows(messages)}


def _sender_evaluate(device: Device, params: Params, answer: str | None) -> float:
    digits = re.sub(r"\D", "", answer or "")
    return float(digits[-10:] == digits_key(params["number"]) and len(digits) in (10, 11))


def _sender_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if view.app != SMS:
        return Launch(APP_NAME)
    # The list shows the sender's number (no contact has it) above the message.
    for row in view.find_all(rid="conversation_address"):
        if digits_key(row.text) == digits_key(params["number"]):
            return Finish(row.text)
    return Back() if not in_main(view) else view.scroll_down()


# ---- templates ---------------------------------------------------------------------------------------------------

TEMPLATES = [
    TaskTemplate(
        name="SimpleSmsSend",
        apps=(SMS,),
        goal='Send a text message using Simple SMS Messenger to {number} with message: "{message}"',
        difficulty="medium",
        kind="operation",
        params=_send_number_params,
        setup=_messages_setup,
        evaluate=_send_evaluate,
        expert=_send_number_expert,
    ),
    TaskTemplate(
        name="SimpleSmsSendToContact",
        apps=(SMS,),
        goal='Text my contact {name} "{message}" using Simple SMS Messenger.',
        difficulty="medium",
        kind="operation",
        params=_send_contact_params,
        setup=_messages_setup,
        evaluate=_send_evaluate,
        expert=_send_contact_expert,
    ),
    TaskTemplate(
        name="SimpleSmsReply",
        apps=(SMS,),
        goal='Reply to {name} with message: "{message}" in Simple SMS Messenger.',
        difficulty="medium",
        kind="operation",
        params=_reply_params,
        setup=_messages_setup,
        evaluate=_send_evaluate,
        expert=_reply_expert,
    ),
    TaskTemplate(
        name="SimpleSmsReplyMostRecent",
        apps=(SMS,),
        goal='Reply to the most recent text message using Simple SMS Messenger with message: "{message}"',
        difficulty="medium",
        kind="operation",
        params=_reply_recent_params,
        setup=_messages_setup,
        evaluate=_send_evaluate,
        expert=_reply_expert,
    ),
    TaskTemplate(
        name="SimpleSmsResend",
        apps=(SMS,),
        goal="Resend the message I just sent to {name} in Simple SMS Messenger.",
        difficulty="medium",
        kind="operation",
        params=_resend_params,
        setup=_messages_setup,
        evaluate=_resend_evaluate,
        expert=_reply_expert,
    ),
    TaskTemplate(
        name="SimpleSmsSendReceivedAddress",
        apps=(SMS,),
        goal="Text the address that {sender} just sent me to {name}, using Simple SMS Messenger.",
        difficulty="medium",
        kind="operation",
        params=_received_address_params,
        setup=_messages_setup,
        evaluate=_send_evaluate,
        expert=_send_contact_expert,
    ),
    TaskTemplate(
        name="SimpleSmsSendToTwoContacts",
        apps=(SMS,),
        goal='Send the message "{message}" to both {name1} and {name2} using Simple SMS Messenger.',
        difficulty="hard",
        kind="operation",
        params=_two_params,
        setup=_messages_setup,
        evaluate=_two_evaluate,
        expert=_two_expert,
    ),
    TaskTemplate(
        name="SimpleSmsDeleteConversation",
        apps=(SMS,),
        goal="Delete my conversation with {name} in Simple SMS Messenger.",
        difficulty="easy",
        kind="operation",
        params=_delete_params,
        setup=_messages_setup,
        evaluate=_delete_evaluate,
        expert=_delete_expert,
    ),
    TaskTemplate(
        name="SimpleSmsLatestFrom",
        apps=(SMS,),
        goal="What did {name} say in their last text message to me? Answer with the message text.",
        difficulty="easy",
        kind="query",
        params=_latest_params,
        setup=_messages_setup,
        evaluate=_latest_evaluate,
        expert=_latest_expert,
    ),
    TaskTemplate(
        name="SimpleSmsSenderNumber",
        apps=(SMS,),
        goal='Which phone number sent me the text "{message}"?',
        difficulty="easy",
        kind="query",
        params=_sender_params,
        setup=_messages_setup,
        evaluate=_sender_evaluate,
        expert=_sender_expert,
    ),
]
