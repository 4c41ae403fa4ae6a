"""Read and change device state the way a checker on a real phone does: sqlite files, settings, answers.

Everything goes through the `Device` contract (pull, push, shell), so a setup or checker written with
these helpers runs unchanged on the simulated phone, over adb, and on a real emulator.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from droidrl.envs.device import Device
from droidrl.envs.errors import FileNotFoundOnDevice


def app_db(package: str, name: str) -> str:
    """The path of an app's database, `/data/data/<package>/databases/<name>`."""
    return f"/data/data/{package}/databases/{name}"


def query_db(device: Device, path: str, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
    """Rows of a read-only query on a sqlite file pulled from the device ([] when the file is absent)."""
    try:
        data = device.pull(path)
    except FileNotFoundOnDevice:
        return []
    with tempfile.TemporaryDirectory(prefix="droidrl-db-") as tmp:
        local = Path(tmp) / "db.sqlite"
        local.write_bytes(data)
        con = sqlite3.connect(local)
        try:
            return con.execute(sql, tuple(args)).fetchall()
        finally:
            con.close()


def write_db(device: Device, path: str, statements: Iterable[tuple[str, Sequence[Any]]], package: str) -> None:
    """Run SQL statements on an app's database: stop the app, pull the file, change it, push it back.

    android_world changes app data the same way; stopping the app first keeps it from overwriting
    the file with its in-memory copy.
    """
    device.shell(f"am force-stop {shlex.quote(package)}")
    data = device.pull(path)
    with tempfile.TemporaryDirectory(prefix="droidrl-db-") as tmp:
        local = Path(tmp) / "db.sqlite"
        local.write_bytes(data)
        con = sqlite3.connect(local)
        try:
            for sql, args in statements:
                con.execute(sql, tuple(args))
            con.commit()
        finally:
            con.close()
        device.push(path, local.read_bytes())


def get_setting(device: Device, namespace: str, key: str) -> str | None:
    """`settings get`: the value, or None when the key is unset."""
    value = device.shell(f"settings get {shlex.quote(namespace)} {shlex.quote(key)}").strip()
    return None if value == "null" else value


def put_setting(device: Device, namespace: str, key: str, value: str) -> None:
    device.shell(f"settings put {shlex.quote(namespace)} {shlex.quote(key)} {shlex.quote(value)}")


def read_text(device: Device, path: str) -> str | None:
    """A text file's contents, or None when it does not exist."""
    try:
        return device.pull(path).decode("utf-8", errors="replace")
    except FileNotFoundOnDevice:
        return None


def list_dir(device: Device, path: str) -> list[str]:
    """Names in a device directory (`ls -1`), [] when it does not exist."""
    out = device.shell(f"ls -1 {shlex.quote(path)} 2>/dev/null")
    return [line for line in out.splitlines() if line and "No such file" not in line]


_PUNCT = re.compile(r"[^\w\s.:-]", re.UNICODE)


def normalize_answer(text: str | None) -> str:
    """Case, accents, surrounding punctuation and repeated spaces removed: 'The  Alarm!' -> 'the alarm'."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _PUNCT.sub(" ", text)
    return " ".join(text.split()).strip(" .:-")


def answer_matches(answer: str | None, expected: str | Iterable[str]) -> bool:
    """True when the normalised answer equals the (or one of the) normalised expected answers."""
    options = [expected] if isinstance(expected, str) else list(expected)
    got = normalize_answer(answer)
    return bool(got) and any(got == normalize_answer(option) for option in options)


def answer_number(answer: str | None) -> float | None:
    """The single number in an answer ('You spent $42.50.' -> 42.5), or None if there is not exactly one."""
    if answer is None:
        return None
    numbers = re.findall(r"-?\d+(?:,\d{3})*(?:\.\d+)?", answer)
    if len(numbers) != 1:
        return None
    return float(numbers[0].replace(",", ""))
