"""Android's `content` command (frameworks/base cmds/content) over the simulated phone's content providers.

A provider maps URIs to a table or view of the database its app keeps on the phone (contacts2.db, mmssms.db,
calllog.db, calendar.db), to the settings store, or to the files of shared storage (MediaStore). Queries run
in sqlite on those databases only: `--where`/`--sort`/`--projection` are SQL fragments as on a device, but a
sqlite authorizer refuses ATTACH, PRAGMA, schema changes and extension loading, a progress handler bounds
their work, and `--bind` values always travel as bound parameters. Output, errors and exit status follow
Content.java on an API 33 emulator: `Row: N col=value, ...`, `No result found.`, usage errors on stdout with
exit status 0, provider errors as `Error while accessing provider:AUTHORITY` and a Java stack trace on stderr.
"""

from __future__ import annotations

import contextlib
import decimal
import math
import re
import sqlite3
import struct
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from droidrl.envs.sim import vfs
from droidrl.envs.sim.apps import contacts, sms
from droidrl.envs.sim.shell_util import Context

USAGE = """usage: adb shell content [subcommand] [options]

usage: adb shell content insert --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...] [--extra <BINDING>...]
  <URI> a content provider URI.
  <BINDING> binds a typed value to a column and is formatted:
  <COLUMN_NAME>:<TYPE>:<COLUMN_VALUE> where:
  <TYPE> specifies data type such as:
  b - boolean, s - string, i - integer, l - long, f - float, d - double, n - null
  Note: Omit the value for passing an empty string, e.g column:s:
  Example:
  # Add "new_setting" secure setting with value "new_value".
  adb shell content insert --uri content://settings/secure --bind name:s:new_setting --bind value:s:new_value

usage: adb shell content update --uri <URI> [--user <USER_ID>] [--where <WHERE>] [--extra <BINDING>...]
  <WHERE> is a SQL style where clause in quotes (You have to escape single quotes - see example below).
  Example:
  # Change "new_setting" secure setting to "newer_value".
  adb shell content update --uri content://settings/secure --bind value:s:newer_value --where "name='new_setting'"

usage: adb shell content delete --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...] [--where <WHERE>] [--extra <BINDING>...]
  Example:
  # Remove "new_setting" secure setting.
  adb shell content delete --uri content://settings/secure --where "name='new_setting'"

usage: adb shell content query --uri <URI> [--user <USER_ID>] [--projection <PROJECTION>] [--where <WHERE>] [--sort <SORT_ORDER>] [--extra <BINDING>...]
  <PROJECTION> is a list of colon separated column names and is formatted:
  <COLUMN_NAME>[:<COLUMN_NAME>...]
  <SORT_ORDER> is the order in which rows in the result should be sorted.
  Example:
  # Select "name" and "value" columns from secure settings where "name" is equal to "new_setting" and sort the result by name in ascending order.
  adb shell content query --uri content://settings/secure --projection name:value --where "name='new_setting'" --sort "name ASC"

usage: adb shell content call --uri <URI> --method <METHOD> [--arg <ARG>]
       [--extra <BINDING> ...]
  <METHOD> is the name of a provider-defined method
  <ARG> is an optional string argument
  <BINDING> is like --bind above, typed data of the form <KEY>:{b,s,i,l,f,d}:<VAL>

usage: adb shell content read --uri <URI> [--user <USER_ID>]
  Example:
  adb shell 'content read --uri content://settings/system/ringtone_cache' > host.ogg

usage: adb shell content write --uri <URI> [--user <USER_ID>]
  Example:
  adb shell 'content write --uri content://settings/system/ringtone_cache' < host.ogg

usage: adb shell content gettype --uri <URI> [--user <USER_ID>]
  Example:
  adb shell content gettype --uri content://media/internal/audio/media/

"""  # noqa: E501 (Content.java's usage text, line for line)

# The frames below a provider's exception in Content.java's printStackTrace, as an API 33 emulator prints them.
_FRAMES_REMOTE = (
    "android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:207)",
    "android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:177)",
)
_PROXY_LINE = {"query": 495, "insert": 526, "update": 582, "delete": 551, "call": 653, "getType": 201, "openFile": 604}
_COMMAND_LINE = {
    "query": 661,
    "insert": 548,
    "update": 690,
    "delete": 566,
    "call": 598,
    "getType": 612,
    "openFile": 629,
}
_COMMAND_CLASS = {
    "query": "QueryCommand",
    "insert": "InsertCommand",
    "update": "UpdateCommand",
    "delete": "DeleteCommand",
    "call": "CallCommand",
    "getType": "GetTypeCommand",
    "openFile": "ReadCommand",
}
_MAIN_FRAMES = (
    "com.android.commands.content.Content$Command.execute(Content.java:522)",
    "com.android.commands.content.Content.main(Content.java:735)",
    "com.android.internal.os.RuntimeInit.nativeFinishInit(Native Method)",
    "com.android.internal.os.RuntimeInit.main(RuntimeInit.java:366)",
)
_MAX_SQL_STEPS = 2_000_000  # sqlite VM steps one --where/--sort may take (a device would just be slow)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ContactsDatabaseHelper.exceptionMessage names the caller; filled in per call (the shell, or root after `adb root`).
CALLER = "\x00caller\x00"
_CALLERS = {
    False: ", calling user: android.uid.shell:2000, calling package:com.android.shell",
    True: ", calling user: 0",
}


class UsageError(Exception):
    """Bad arguments: Content.java prints its usage and `[ERROR] message` on stdout."""


class ProviderError(Exception):
    """An exception thrown by the provider (or by the lookup of it): `java_class: message`."""

    def __init__(self, java_class: str, message: str | None = None, *, local: bool = False) -> None:
        super().__init__(message)
        self.java_class, self.message, self.local = java_class, message, local


def illegal_argument(message: str) -> ProviderError:
    return ProviderError("java.lang.IllegalArgumentException", message)


# ==== the command line ===================================================================================


@dataclass
class Request:
    """One parsed `content` command line."""

    verb: str
    uri: str = ""
    user: int = 0
    projection: list[str] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    where: str | None = None
    sort: str | None = None
    method: str | None = None
    arg: str | None = None


_VERBS = ("insert", "delete", "update", "query", "call", "read", "write", "gettype")
_OPTIONS = {  # verb -> the options Content.java's parser accepts for it
    "insert": ("--uri", "--user", "--bind", "--extra"),
    "delete": ("--uri", "--user", "--where", "--extra"),
    "update": ("--uri", "--user", "--where", "--bind", "--extra"),
    "query": ("--uri", "--user", "--where", "--sort", "--projection", "--extra"),
    "call": ("--uri", "--user", "--method", "--arg", "--extra"),
    "read": ("--uri", "--user"),
    "write": ("--uri", "--user"),
    "gettype": ("--uri", "--user"),
}


def _java_int(text: str, long: bool = False) -> int:
    """Integer.parseInt / Long.parseLong: NumberFormatException is an IllegalArgumentException, so a usage error."""
    if re.fullmatch(r"[+-]?\d+", text):
        value = int(text)
        if -(2 ** (63 if long else 31)) <= value < 2 ** (63 if long else 31):
            return value
    raise UsageError(f'For input string: "{text}"')


def _java_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise UsageError("empty String" if not text.strip() else f'For input string: "{text}"') from None


def _split_escaped(argument: str) -> list[str]:
    """Content.splitWithEscaping on ':' (a backslash escapes the next character)."""
    parts, current, i = [], [], 0
    while i < len(argument):
        c = argument[i]
        if c == "\\":
            i += 1
            if i == len(argument):
                raise UsageError("Invalid escaping")
            current.append(argument[i])
        elif c == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _binding(argument: str | None) -> tuple[str, Any]:
    if not argument:
        raise UsageError(f"Binding not well formed: {argument if argument is not None else 'null'}")
    parts = _split_escaped(argument)
    if len(parts) != 3:
        raise UsageError(f"Binding not well formed: {argument}")
    column, kind, value = parts
    if kind == "s":
        return column, value
    kind = kind.lower()
    if kind == "b":
        return column, value.lower() == "true"
    if kind in ("i", "l"):
        return column, _java_int(value, long=kind == "l")
    if kind in ("f", "d"):
        return column, _java_float(value)
    if kind == "n":
        return column, None
    raise UsageError(f"Unsupported type: {parts[1]}")


def parse(args: list[str]) -> Request:
    """Content.Parser: the request, or UsageError with the message Content.java prints."""
    verb = args[0] if args else None
    if verb not in _VERBS:
        raise UsageError(f"Unsupported operation: {verb if verb is not None else 'null'}")
    request = Request(verb)
    rest = iter(args[1:])

    def value(option: str) -> str:
        v = next(rest, None)
        if not v or v.startswith("--"):
            raise UsageError(f"No value for argument: {option}")
        return v

    for option in rest:
        if option not in _OPTIONS[verb]:
            raise UsageError(f"Unsupported argument: {option}")
        if option == "--uri":
            request.uri = value(option)
        elif option == "--user":
            request.user = _java_int(value(option))
        elif option == "--where":
            request.where = value(option)
        elif option == "--sort":
            request.sort = value(option)
        elif option == "--projection":
            # String.split("[\\s]*:[\\s]*") drops trailing empty strings.
            names = re.split(r"\s*:\s*", value(option))
            while names and names[-1] == "":
                names.pop()
            request.projection = names
        elif option == "--bind":
            column, v = _binding(next(rest, None))
            request.values[column] = v
        elif option == "--extra":
            column, v = _binding(next(rest, None))
            if verb == "call":  # the Bundle a provider method gets; other verbs' extras reach no provider
                request.values[column] = v
        elif option == "--method":
            request.method = value(option)
        elif option == "--arg":
            request.arg = value(option)
    if not request.uri:
        raise UsageError("Content provider URI not specified. Did you specify --uri argument?")
    if verb in ("insert", "update") and not request.values:
        raise UsageError("Bindings not specified. Did you specify --bind argument(s)?")
    if verb == "call" and request.method is None:
        raise UsageError("Content provider method not specified.")
    return request


# ==== URIs ===============================================================================================


@dataclass(frozen=True)
class Uri:
    """android.net.Uri's view of a content URI: authority, non-empty path segments, query parameters."""

    text: str
    authority: str
    segments: tuple[str, ...]
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Uri:
        parts = urllib.parse.urlsplit(text)
        segments = tuple(urllib.parse.unquote(s) for s in parts.path.split("/") if s)
        authority = parts.netloc if text.startswith(f"{parts.scheme}://") and parts.scheme else "null"
        return cls(text, authority or "null", segments, dict(urllib.parse.parse_qsl(parts.query)))


def _match(pattern: tuple[str, ...], segments: tuple[str, ...]) -> list[str] | None:
    """UriMatcher: '#' matches a number, '*' any segment; returns the matched wildcard segments."""
    if len(pattern) != len(segments):
        return None
    found = []
    for want, got in zip(pattern, segments, strict=True):
        if want == "#":
            if not got.isdigit():
                return None
            found.append(got)
        elif want == "*":
            found.append(got)
        elif want != got:
            return None
    return found


# ==== sqlite, kept inside the phone's database ===========================================================

_DENIED = {
    sqlite3.SQLITE_ATTACH,
    sqlite3.SQLITE_DETACH,
    sqlite3.SQLITE_PRAGMA,
    sqlite3.SQLITE_ALTER_TABLE,
    sqlite3.SQLITE_CREATE_INDEX,
    sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_CREATE_TEMP_TABLE,
    sqlite3.SQLITE_CREATE_TRIGGER,
    sqlite3.SQLITE_CREATE_VIEW,
    sqlite3.SQLITE_CREATE_VTABLE,
    sqlite3.SQLITE_DROP_INDEX,
    sqlite3.SQLITE_DROP_TABLE,
    sqlite3.SQLITE_DROP_TRIGGER,
    sqlite3.SQLITE_DROP_VIEW,
    sqlite3.SQLITE_DROP_VTABLE,
}
_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "sqlar_compress"}


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    if action in _DENIED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if db not in (None, "main", "temp") and action != sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@contextlib.contextmanager
def guarded(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the provider's statements with user SQL fragments under the authorizer and a step budget."""
    steps = [0]

    def progress() -> int:
        steps[0] += 1000
        return 1 if steps[0] > _MAX_SQL_STEPS else 0

    # On top of the VFS's confinement, which is back in force when this ends.
    with vfs.stricter_sqlite(conn, _authorize, progress, 1000):
        yield conn


def _sqlite_error(err: sqlite3.Error, sql: str) -> ProviderError:
    """An android.database.sqlite.SQLiteException the way SQLiteConnection words it."""
    message = str(err)
    if "not authorized" in message or "interrupted" in message:
        code = "(code 23 SQLITE_AUTH)" if "not authorized" in message else "(code 9 SQLITE_INTERRUPT)"
    else:
        code = "(code 1 SQLITE_ERROR)"
    return ProviderError("android.database.sqlite.SQLiteException", f"{message} {code}: , while compiling: {sql}")


def _run(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> sqlite3.Cursor:
    try:
        with guarded(conn):
            return conn.execute(sql, params)
    except sqlite3.Error as err:
        raise _sqlite_error(err, sql) from None


def _validate(conn: sqlite3.Connection, sql: str) -> None:
    """SQLiteQueryBuilder's strict mode: the statement with its selection unwrapped must compile too.

    So a selection cannot close the parentheses it is wrapped in.
    """
    try:
        with guarded(conn):
            conn.execute(f"EXPLAIN {sql}")
    except sqlite3.Error as err:
        raise _sqlite_error(err, sql) from None


def _validate_where(conn: sqlite3.Connection, source: str, where: str | None) -> None:
    if where:
        _validate(conn, f"SELECT 1 FROM {source} WHERE {where}")


def _where(*clauses: str | None) -> str:
    parts = [f"({c})" for c in clauses if c]
    return f" WHERE {' AND '.join(parts)}" if parts else ""


# ==== tables =============================================================================================


@dataclass(frozen=True)
class Route:
    """One URI pattern of a provider: what it reads (a FROM clause and its columns) and where writes go."""

    pattern: tuple[str, ...]
    source: str  # FROM clause of queries
    columns: tuple[tuple[str, str], ...] = ()  # (name, SQL) in the provider's order; () = the source's own
    table: str | None = None  # table inserts, updates and deletes change; None = read-only
    where: str = ""  # the route's own restriction (fixed SQL)
    sort: str = ""  # default sort order
    id_column: str = "_id"  # what a '#' segment selects
    fixed: tuple[tuple[str, Any], ...] = ()  # values an insert through this route always gets
    strict_columns: bool = True  # a projection map: unknown columns are "Invalid column"
    view_name: str = ""  # the AOSP view a projection map reads, as error messages name it


def _list_and_item(route: Route) -> tuple[Route, Route]:
    """A directory route and its `/#` item route, which reads the same source restricted to one id."""
    return route, replace(route, pattern=(*route.pattern, "#"))


def _cols(names: str, prefix: str = "") -> tuple[tuple[str, str], ...]:
    return tuple((n, f"{prefix}{n}") for n in names.split())


def _projection(route: Route, conn: sqlite3.Connection, projection: list[str] | None) -> list[tuple[str, str]]:
    """(output name, SQL) per column: the provider's projection map, or raw SQL where it has none."""
    columns = list(route.columns) or [(n, f'"{n}"') for n in _source_columns(conn, route.source)]
    if projection is None:
        return columns
    known = dict(columns)
    out = []
    for name in projection:
        if name in known:
            out.append((name, known[name]))
        elif route.strict_columns:
            raise illegal_argument(f"Invalid column {name}")
        else:
            out.append((name, name))  # SmsProvider passes projections to sqlite as they are
    return out


def _source_columns(conn: sqlite3.Connection, source: str) -> list[str]:
    cursor = conn.execute(f"SELECT * FROM {source} LIMIT 0")
    return [d[0] for d in cursor.description]


def _view(route: Route) -> str:
    """The FROM clause a query's own SQL sees: a provider's projection map becomes a view of named columns."""
    if not route.columns:
        return route.source
    select = ", ".join(f"{expr} AS {_quote(name)}" for name, expr in route.columns)
    return f"(SELECT {select} FROM {route.source}{_where(route.where)})"


def query_rows(conn: sqlite3.Connection, route: Route, ids: list[str], request: Request) -> list[list[tuple]]:
    """Rows as [(column, value), ...] for a query through `route`."""
    columns = _projection(route, conn, request.projection)
    view = _view(route)
    id_clause = f"{route.id_column} = {int(ids[-1])}" if ids else ""
    known = {name for name, _ in route.columns}
    if request.projection is None and not route.columns:
        select = "*"  # no projection map: the provider passes a null projection on to sqlite
    else:
        select = ", ".join(_quote(name) if name in known else expr for name, expr in columns)
    fixed = [c for c in ("" if route.columns else route.where, id_clause) if c]
    sort = request.sort or route.sort
    order = f" ORDER BY {sort}" if sort else ""
    try:
        if request.where:
            unwrapped = " AND ".join([*(f"({c})" for c in fixed), request.where])
            _validate(conn, f"SELECT {select} FROM {view} WHERE {unwrapped}{order}")
        cursor = _run(conn, f"SELECT {select} FROM {view}{_where(*fixed, request.where)}{order}")
    except ProviderError as err:
        if route.view_name and err.message:
            err.message = err.message.replace(view, route.view_name)
        raise
    names = [name for name, _ in columns]
    return [list(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _quote(name: str) -> str:
    if _IDENT.fullmatch(name) and name.upper() not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


_KEYWORDS = {"ORDER", "GROUP", "SELECT", "FROM", "WHERE", "TABLE", "INDEX", "VALUES", "KEY", "DEFAULT", "SET"}


def _column_names(values: dict[str, Any]) -> list[str]:
    for name in values:
        if not _IDENT.fullmatch(name):
            raise illegal_argument(f"Invalid column {name}")
    return list(values)


def _bound(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def insert_row(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> int:
    names = _column_names(values)
    if names:
        sql = f"INSERT INTO {table}({','.join(names)}) VALUES ({','.join('?' * len(names))})"
    else:
        sql = f"INSERT INTO {table} DEFAULT VALUES"
    return _run(conn, sql, tuple(_bound(v) for v in values.values())).lastrowid or 0


def update_rows(
    conn: sqlite3.Connection, route: Route, ids: list[str], values: dict[str, Any], where: str | None
) -> int:
    assert route.table is not None
    names = _column_names(values)
    id_clause = f"{route.id_column} = {int(ids[-1])}" if ids else ""
    _validate_where(conn, route.table, where)
    sql = f"UPDATE {route.table} SET {','.join(f'{n}=?' for n in names)}{_where(route.where, id_clause, where)}"
    return _run(conn, sql, tuple(_bound(v) for v in values.values())).rowcount


def delete_rows(conn: sqlite3.Connection, route: Route, ids: list[str], where: str | None) -> int:
    assert route.table is not None
    id_clause = f"{route.id_column} = {int(ids[-1])}" if ids else ""
    _validate_where(conn, route.table, where)
    return _run(conn, f"DELETE FROM {route.table}{_where(route.where, id_clause, where)}").rowcount


# ==== providers ==========================================================================================


class Provider:
    """A content provider: URI routes over one database. Subclasses adjust writes the way their Java one does."""

    authority = ""
    routes: tuple[Route, ...] = ()

    def route(self, uri: Uri) -> tuple[Route, list[str]]:
        for route in self.routes:
            ids = _match(route.pattern, uri.segments)
            if ids is not None:
                return route, ids
        raise self.unknown(uri)

    def unknown(self, uri: Uri) -> ProviderError:
        return illegal_argument(f"Unknown URI {uri.text}")

    @contextlib.contextmanager
    def database(self, phone: Any) -> Iterator[sqlite3.Connection]:
        raise NotImplementedError
        yield  # pragma: no cover

    def query(self, phone: Any, uri: Uri, request: Request) -> list[list[tuple]]:
        route, ids = self.route(uri)
        with self.database(phone) as conn:
            return query_rows(conn, route, ids, request)

    def insert(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        if route.table is None or ids:
            raise self.unsupported(uri, "insert")
        with self.database(phone) as conn:
            insert_row(conn, route.table, {**request.values, **dict(route.fixed)})

    def update(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        if route.table is None:
            raise self.unsupported(uri, "update")
        with self.database(phone) as conn:
            update_rows(conn, route, ids, request.values, request.where)

    def delete(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        if route.table is None:
            raise self.unsupported(uri, "delete")
        with self.database(phone) as conn:
            delete_rows(conn, route, ids, request.where)

    def unsupported(self, uri: Uri, verb: str) -> ProviderError:
        return ProviderError("java.lang.UnsupportedOperationException", f"Cannot {verb} that URL: {uri.text}")

    types: tuple[tuple[tuple[str, ...], str], ...] = ()  # URI pattern -> what getType answers

    def call(self, phone: Any, uri: Uri, request: Request) -> str:
        """ContentProvider.call: the Bundle's toString, or "null"; providers without methods answer null."""
        return "null"

    def get_type(self, uri: Uri) -> str | None:
        for pattern, mime in self.types:
            if _match(pattern, uri.segments) is not None:
                return mime
        return None


# ---- contacts (ContactsProvider2 and its legacy Contacts API) --------------------------------------------

_NAME_ID = f"(SELECT _id FROM mimetypes WHERE mimetype = '{contacts.NAME}')"
_PHONE_ID = f"(SELECT _id FROM mimetypes WHERE mimetype = '{contacts.PHONE}')"
_EMAIL_ID = f"(SELECT _id FROM mimetypes WHERE mimetype = '{contacts.EMAIL}')"
_ORG_ID = f"(SELECT _id FROM mimetypes WHERE mimetype = '{contacts.ORGANIZATION}')"
_NOTE_ID = "(SELECT _id FROM mimetypes WHERE mimetype = 'vnd.android.cursor.item/note')"

# LegacyApiSupport.PEOPLE_JOINS: a raw contact with its account and primary name/organization/email/note/phone.
_PEOPLE_JOINS = (
    " JOIN accounts ON (raw_contacts.account_id = accounts._id)"
    f" LEFT OUTER JOIN data name ON (raw_contacts._id = name.raw_contact_id AND name.mimetype_id = {_NAME_ID})"
    " LEFT OUTER JOIN data organization ON (raw_contacts._id = organization.raw_contact_id"
    f" AND organization.mimetype_id = {_ORG_ID} AND organization.is_primary)"
    " LEFT OUTER JOIN data email ON (raw_contacts._id = email.raw_contact_id"
    f" AND email.mimetype_id = {_EMAIL_ID} AND email.is_primary)"
    f" LEFT OUTER JOIN data note ON (raw_contacts._id = note.raw_contact_id AND note.mimetype_id = {_NOTE_ID})"
    " LEFT OUTER JOIN data phone ON (raw_contacts._id = phone.raw_contact_id"
    f" AND phone.mimetype_id = {_PHONE_ID} AND phone.is_primary)"
)
_PEOPLE_COLUMNS = {
    "name": "name.data1",
    "display_name": "raw_contacts.display_name",
    "phonetic_name": "trim(trim(ifnull(name.data7,' ')||' '||ifnull(name.data8,' '))||' '||ifnull(name.data9,' '))",
    "notes": "note.data1",
    "times_contacted": "cast(0 as int)",
    "last_time_contacted": "cast(0 as int)",
    "custom_ringtone": "raw_contacts.custom_ringtone",
    "send_to_voicemail": "raw_contacts.send_to_voicemail",
    "starred": "raw_contacts.starred",
    "primary_organization": "organization._id",
    "primary_email": "email._id",
    "primary_phone": "phone._id",
}
# The legacy views only show the default account's contacts: with no account on the phone, the local one.
_LOCAL_ACCOUNT = "accounts.account_name IS NULL AND accounts.account_type IS NULL"


def _java_hash(name: str) -> int:
    h = 0
    for ch in name:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _array_map_order(columns: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """LegacyApiSupport's projection maps are ArrayMaps: with no projection, columns come in key-hash order."""
    return tuple(sorted(columns.items(), key=lambda kv: _java_hash(kv[0])))


_PEOPLE = _array_map_order(
    {
        **_PEOPLE_COLUMNS,
        "_id": "raw_contacts._id",
        "number": "phone.data1",
        "type": "phone.data2",
        "label": "phone.data3",
        "number_key": "_PHONE_NUMBER_STRIPPED_REVERSED(phone.data1)",
    }
)
_PHONES = _array_map_order(
    {
        **_PEOPLE_COLUMNS,
        "_id": "data._id",
        "person": "data.raw_contact_id",
        "isprimary": "data.is_primary",
        "number": "data.data1",
        "type": "data.data2",
        "label": "data.data3",
        "number_key": "_PHONE_NUMBER_STRIPPED_REVERSED(data.data1)",
    }
)
_PHONES_SOURCE = (
    "data JOIN phone_lookup ON (data._id = phone_lookup.data_id)"
    " JOIN raw_contacts ON (raw_contacts._id = data.raw_contact_id)" + _PEOPLE_JOINS
)
_PHONES_WHERE = f"data.mimetype_id = {_PHONE_ID} AND raw_contacts.deleted = 0 AND {_LOCAL_ACCOUNT}"


def _hash_map_order(columns: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """ContactsProvider2's ProjectionMaps are java.util.HashMaps: with no projection, columns come in bucket order.

    The capacity is the smallest power of two from 16 that holds them at load factor 0.75.
    """
    capacity = 16
    while len(columns) > capacity * 3 // 4:
        capacity *= 2

    def bucket(name: str) -> int:
        h = _java_hash(name) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)

    order = {name: i for i, (name, _) in enumerate(columns)}
    return tuple(sorted(columns, key=lambda kv: (bucket(kv[0]), order[kv[0]])))


# sRawContactsProjectionMap (with sRawContactColumns and sRawContactSyncColumns) over view_raw_contacts.
_RAW_CONTACTS = _hash_map_order(
    [
        *_cols(
            "_id contact_id deleted display_name display_name_alt display_name_source phonetic_name"
            " phonetic_name_style sort_key sort_key_alt phonebook_label phonebook_bucket phonebook_label_alt"
            " phonebook_bucket_alt times_contacted last_time_contacted custom_ringtone send_to_voicemail starred"
            " pinned aggregation_mode",
            "raw_contacts.",
        ),
        ("raw_contact_is_user_profile", "0"),
        ("metadata_dirty", "raw_contacts.metadata_dirty"),
        ("account_name", "accounts.account_name"),
        ("account_type", "accounts.account_type"),
        ("data_set", "accounts.data_set"),
        (
            "account_type_and_data_set",
            "CASE WHEN accounts.data_set IS NULL THEN accounts.account_type"
            " ELSE accounts.account_type||'/'||accounts.data_set END",
        ),
        *_cols("dirty sourceid backup_id version sync1 sync2 sync3 sync4", "raw_contacts."),
    ]
)
_DATA_SOURCE = (
    "data JOIN mimetypes ON (mimetypes._id = data.mimetype_id)"
    " JOIN raw_contacts ON (raw_contacts._id = data.raw_contact_id)"
    " JOIN accounts ON (accounts._id = raw_contacts.account_id)"
    " LEFT OUTER JOIN contacts ON (contacts._id = raw_contacts.contact_id)"
)
# sContactsColumns and the (always empty) presence columns, as view_contacts / view_data provide them.
_CONTACT_COLUMNS = [
    ("custom_ringtone", "contacts.custom_ringtone"),
    ("display_name", "raw_contacts.display_name"),
    ("display_name_alt", "raw_contacts.display_name_alt"),
    ("display_name_source", "raw_contacts.display_name_source"),
    ("in_default_directory", "1"),
    ("in_visible_group", "1"),
    ("last_time_contacted", "0"),
    ("lookup", "contacts.lookup"),
    ("phonetic_name", "raw_contacts.phonetic_name"),
    ("phonetic_name_style", "raw_contacts.phonetic_name_style"),
    ("photo_id", "contacts.photo_id"),
    ("photo_file_id", "contacts.photo_file_id"),
    ("photo_uri", "NULL"),
    ("photo_thumb_uri", "NULL"),
    ("send_to_voicemail", "contacts.send_to_voicemail"),
    ("sort_key_alt", "raw_contacts.sort_key_alt"),
    ("sort_key", "raw_contacts.sort_key"),
    ("phonebook_label", "raw_contacts.phonebook_label"),
    ("phonebook_bucket", "raw_contacts.phonebook_bucket"),
    ("phonebook_label_alt", "raw_contacts.phonebook_label_alt"),
    ("phonebook_bucket_alt", "raw_contacts.phonebook_bucket_alt"),
    ("starred", "contacts.starred"),
    ("pinned", "contacts.pinned"),
    ("times_contacted", "0"),
    ("has_phone_number", "contacts.has_phone_number"),
    ("contact_last_updated_timestamp", "contacts.contact_last_updated_timestamp"),
]
_CONTACT_PRESENCE = [
    (name, "NULL")
    for name in [
        "contact_presence",
        "contact_chat_capability",
        "contact_status",
        "contact_status_ts",
        "contact_status_res_package",
        "contact_status_label",
        "contact_status_icon",
    ]
]
# sContactsProjectionMap over view_contacts.
_CONTACTS = _hash_map_order(
    [
        ("_id", "contacts._id"),
        ("has_phone_number", "contacts.has_phone_number"),
        ("name_raw_contact_id", "contacts.name_raw_contact_id"),
        ("is_user_profile", "0"),
        *_CONTACT_COLUMNS[:24],
        *_CONTACT_COLUMNS[25:],
        *_CONTACT_PRESENCE,
    ]
)
# sDataProjectionMap over view_data: data, presence, raw contact, contact and usage columns.
_DATA = _hash_map_order(
    [
        ("_id", "data._id"),
        ("raw_contact_id", "data.raw_contact_id"),
        ("hash_id", "data.hash_id"),
        ("contact_id", "raw_contacts.contact_id"),
        ("name_raw_contact_id", "contacts.name_raw_contact_id"),
        ("raw_contact_is_user_profile", "0"),
        *((f"data{i}", f"data.data{i}") for i in range(1, 16)),
        ("carrier_presence", "data.carrier_presence"),
        ("preferred_phone_account_component_name", "data.preferred_phone_account_component_name"),
        ("preferred_phone_account_id", "data.preferred_phone_account_id"),
        ("data_version", "data.data_version"),
        ("is_primary", "data.is_primary"),
        ("is_super_primary", "data.is_super_primary"),
        ("mimetype", "mimetypes.mimetype"),
        ("res_package", "NULL"),
        *((f"data_sync{i}", f"data.data_sync{i}") for i in range(1, 5)),
        ("group_sourceid", "NULL"),
        *(
            (n, "NULL")
            for n in [
                "mode",
                "chat_capability",
                "status",
                "status_ts",
                "status_res_package",
                "status_label",
                "status_icon",
            ]
        ),
        ("account_name", "accounts.account_name"),
        ("account_type", "accounts.account_type"),
        ("data_set", "accounts.data_set"),
        (
            "account_type_and_data_set",
            "CASE WHEN accounts.data_set IS NULL THEN accounts.account_type"
            " ELSE accounts.account_type||'/'||accounts.data_set END",
        ),
        *_cols("dirty sourceid backup_id version", "raw_contacts."),
        *_CONTACT_COLUMNS,
        *_CONTACT_PRESENCE,
        ("times_used", "0"),
        ("last_time_used", "0"),
    ]
)


def _stripped_reversed(number: Any) -> str | None:
    """PhoneNumberUtils.getStrippedReversed, the SQL function ContactsProvider registers on its database."""
    if number is None:
        return None
    kept = [c for c in str(number) if c.isdigit() or c in "+*#"]
    return "".join(reversed(kept))


class ContactsProvider(Provider):
    """ContactsProvider2 (`com.android.contacts`) and LegacyApiSupport (`contacts`) over contacts2.db."""

    authority = "com.android.contacts"
    types = (
        (("raw_contacts",), "vnd.android.cursor.dir/raw_contact"),
        (("raw_contacts", "#"), "vnd.android.cursor.item/raw_contact"),
        (("data", "phones"), "vnd.android.cursor.dir/phone_v2"),
        (("data", "emails"), "vnd.android.cursor.dir/email_v2"),
        (("data",), "vnd.android.cursor.dir/data"),
        (("contacts",), "vnd.android.cursor.dir/contact"),
        (("contacts", "#"), "vnd.android.cursor.item/contact"),
    )
    routes = (
        *_list_and_item(
            Route(
                ("raw_contacts",),
                "raw_contacts JOIN accounts ON (accounts._id = raw_contacts.account_id)",
                _RAW_CONTACTS,
                "raw_contacts",
                "raw_contacts.deleted = 0",
                id_column="_id",
                view_name="view_raw_contacts",
            )
        ),
        Route(
            ("data", "phones"),
            _DATA_SOURCE,
            _DATA,
            "data",
            f"data.mimetype_id = {_PHONE_ID}",
            id_column="_id",
            view_name="view_data data",
        ),
        Route(
            ("data", "emails"),
            _DATA_SOURCE,
            _DATA,
            "data",
            f"data.mimetype_id = {_EMAIL_ID}",
            id_column="_id",
            view_name="view_data data",
        ),
        *_list_and_item(Route(("data",), _DATA_SOURCE, _DATA, "data", id_column="_id", view_name="view_data data")),
        *_list_and_item(
            Route(
                ("contacts",),
                "contacts JOIN raw_contacts ON (raw_contacts._id = contacts.name_raw_contact_id)",
                _CONTACTS,
                "contacts",
                id_column="_id",
                view_name="view_contacts",
            )
        ),
    )

    @contextlib.contextmanager
    def database(self, phone: Any) -> Iterator[sqlite3.Connection]:
        phone.fs.makedirs(f"{contacts.PROVIDER_DIR}/databases")
        with contacts.open_db(phone) as conn:
            conn.create_function("_PHONE_NUMBER_STRIPPED_REVERSED", 1, _stripped_reversed, deterministic=True)
            yield conn

    def unknown(self, uri: Uri) -> ProviderError:
        # ContactsProvider2 hands URIs it does not know to LegacyApiSupport, which throws with
        # ContactsDatabaseHelper.exceptionMessage: the URI and the caller (the shell, uid 2000).
        return illegal_argument(f"URI: {uri.text}{CALLER}")

    def insert(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        values = dict(request.values)
        with self.database(phone) as conn:
            if route.table == "data" and not ids:
                mimetype = values.pop("mimetype", None)
                if mimetype is None:
                    raise ProviderError("java.lang.NullPointerException", "Can't insert data with a NULL mimetype")
                raw_id = values.get("raw_contact_id")  # ContentValues.getAsLong: null unless a number
                if not re.fullmatch(r"-?\d+", str(raw_id)) or isinstance(raw_id, bool):
                    raise illegal_argument("raw_contact_id is required")
                values["raw_contact_id"] = int(str(raw_id))
                conn.execute("INSERT OR IGNORE INTO mimetypes (mimetype) VALUES (?)", (str(mimetype),))
                values["mimetype_id"] = contacts.mimetype_ids(conn)[str(mimetype)]
                insert_row(conn, "data", values)
                _refresh_display_name(conn, values["raw_contact_id"])
            elif route.table == "raw_contacts" and not ids:
                values.pop("account_name", None)
                values.pop("account_type", None)
                insert_row(conn, "raw_contacts", values)
            else:
                raise self.unknown(uri)

    def update(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        with self.database(phone) as conn:
            _run_route_update(conn, route, ids, request)
            if route.table == "data":
                for row in query_rows(conn, route, ids, _ids_only(request, "raw_contact_id")):
                    _refresh_display_name(conn, row[0][1])

    def delete(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        with self.database(phone) as conn:
            if route.table == "contacts":
                # Deleting a contact deletes its raw contacts (local ones outright), and their data with them.
                contact_ids = [r[-1][1] for r in query_rows(conn, route, ids, _ids_only(request))]
                for contact_id in contact_ids:
                    _run(conn, "DELETE FROM raw_contacts WHERE contact_id = ?", (contact_id,))
            elif route.table == "data":
                touched = [r[-1][1] for r in query_rows(conn, route, ids, _ids_only(request, "raw_contact_id"))]
                _run_route_delete(conn, route, ids, request.where)
                for raw_id in set(touched):
                    _refresh_display_name(conn, raw_id)
            else:
                _run_route_delete(conn, route, ids, request.where)


def _ids_only(request: Request, column: str = "_id") -> Request:
    return Request(request.verb, request.uri, projection=[column], where=request.where)


def _run_route_update(conn: sqlite3.Connection, route: Route, ids: list[str], request: Request) -> None:
    """Update the rows of `route.table` that the route's (joined) view selects, with the bound values."""
    names = _column_names(request.values)
    found = [r[0][1] for r in query_rows(conn, route, ids, Request("query", projection=["_id"], where=request.where))]
    sql = f"UPDATE {route.table} SET {','.join(f'{n}=?' for n in names)} WHERE _id = ?"
    for row_id in found:
        _run(conn, sql, (*(_bound(v) for v in request.values.values()), row_id))


def _run_route_delete(conn: sqlite3.Connection, route: Route, ids: list[str], where: str | None) -> None:
    """Delete the rows of `route.table` that the route's (joined) source selects."""
    found = [r[0][1] for r in query_rows(conn, route, ids, Request("query", projection=["_id"], where=where))]
    for row_id in found:
        _run(conn, f"DELETE FROM {route.table} WHERE _id = ?", (row_id,))


def _refresh_display_name(conn: sqlite3.Connection, raw_id: int) -> None:
    """Recompute a raw contact's display name from its data rows, with Android's source priority."""
    ids = contacts.mimetype_ids(conn)
    best = None
    for mimetype in (contacts.NAME, contacts.ORGANIZATION, contacts.PHONE, contacts.EMAIL):
        row = conn.execute(
            "SELECT data1 FROM data WHERE raw_contact_id = ? AND mimetype_id = ? AND data1 != '' ORDER BY _id LIMIT 1",
            (raw_id, ids.get(mimetype, -1)),
        ).fetchone()
        if row:
            best = row[0]
            break
    conn.execute("UPDATE raw_contacts SET display_name = ?, sort_key = ? WHERE _id = ?", (best, best, raw_id))


class LegacyContactsProvider(ContactsProvider):
    """The legacy `content://contacts/...` API (android.provider.Contacts) served by ContactsProvider2."""

    authority = "contacts"
    types = (
        (("people",), "vnd.android.cursor.dir/person"),
        (("people", "#"), "vnd.android.cursor.item/person"),
        (("phones",), "vnd.android.cursor.dir/phone"),
        (("phones", "#"), "vnd.android.cursor.item/phone"),
        (("people", "#", "phones"), "vnd.android.cursor.dir/phone"),
    )
    routes = (
        *_list_and_item(
            Route(
                ("people",),
                "raw_contacts" + _PEOPLE_JOINS,
                _PEOPLE,
                "raw_contacts",
                f"raw_contacts.deleted = 0 AND {_LOCAL_ACCOUNT}",
                id_column="_id",
                view_name="view_v1_people people",
            )
        ),
        *_list_and_item(
            Route(
                ("phones",),
                _PHONES_SOURCE,
                _PHONES,
                "data",
                _PHONES_WHERE,
                sort="_id",
                id_column="_id",
                view_name="view_v1_phones phones",
            )
        ),
        Route(
            ("people", "#", "phones"),
            _PHONES_SOURCE,
            _PHONES,
            "data",
            _PHONES_WHERE,
            sort="_id",
            id_column="person",
            view_name="view_v1_phones phones",
        ),
    )

    def insert(self, phone: Any, uri: Uri, request: Request) -> None:
        _, ids = self.route(uri)
        values = request.values
        with self.database(phone) as conn:
            if uri.segments == ("people",):
                name = str(values.get("name") or "")
                raw_id = insert_row(
                    conn, "raw_contacts", {"display_name": name or None, "starred": int(bool(values.get("starred", 0)))}
                )
                if name:
                    first, last = contacts._split_name(name)
                    insert_row(
                        conn,
                        "data",
                        {
                            "raw_contact_id": raw_id,
                            "mimetype_id": contacts.mimetype_ids(conn)[contacts.NAME],
                            "is_primary": 1,
                            "data1": name,
                            "data2": first or None,
                            "data3": last or None,
                        },
                    )
            elif len(uri.segments) == 3:  # people/#/phones
                number = str(values.get("number") or "")
                insert_row(
                    conn,
                    "data",
                    {
                        "raw_contact_id": int(ids[0]),
                        "mimetype_id": contacts.mimetype_ids(conn)[contacts.PHONE],
                        "is_primary": 1,
                        "data1": number,
                        "data2": values.get("type", 2),
                        "data4": contacts.e164(number),
                    },
                )
                _refresh_display_name(conn, int(ids[0]))
            else:
                raise ProviderError(
                    "java.lang.UnsupportedOperationException",
                    f"URI: {uri.text}{CALLER}",
                )

    def delete(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        with self.database(phone) as conn:
            if route.table == "raw_contacts":
                found = [r[0][1] for r in query_rows(conn, route, ids, _ids_only(request))]
                for raw_id in found:
                    _run(conn, "DELETE FROM raw_contacts WHERE _id = ?", (raw_id,))
            else:
                _run_route_delete(conn, route, ids, request.where)

    def update(self, phone: Any, uri: Uri, request: Request) -> None:
        """LegacyApiSupport's updates: a person's starred/ringtone/voicemail/name, a phone's number/type/label."""
        route, ids = self.route(uri)
        people = {"starred", "custom_ringtone", "send_to_voicemail", "name"}
        phones = {"number": "data1", "type": "data2", "label": "data3"}
        with self.database(phone) as conn:
            if route.table == "raw_contacts":
                rows = [r[0][1] for r in query_rows(conn, route, ids, _ids_only(request))]
                values = {k: v for k, v in request.values.items() if k in people}
                name = values.pop("name", None)
                for raw_id in rows:
                    if values:
                        _run_route_update(conn, route, [str(raw_id)], Request("update", values=values))
                    if name is not None:
                        given, family = contacts._split_name(str(name))  # as NameSplitter fills the name row
                        conn.execute(
                            "UPDATE data SET data1 = ?, data2 = ?, data3 = ?"
                            " WHERE raw_contact_id = ? AND mimetype_id = ?",
                            (
                                str(name),
                                given or None,
                                family or None,
                                raw_id,
                                contacts.mimetype_ids(conn)[contacts.NAME],
                            ),
                        )
                        _refresh_display_name(conn, raw_id)
            else:
                values = {phones[k]: v for k, v in request.values.items() if k in phones}
                if values:
                    _run_route_update(conn, route, ids, Request("update", values=values, where=request.where))


# ---- telephony: sms and mms-sms --------------------------------------------------------------------------

_SMS_BOXES = {"inbox": 1, "sent": 2, "draft": 3, "outbox": 4, "failed": 5, "queued": 6}


def _sms_routes() -> tuple[Route, ...]:
    routes = [Route(("#",), "sms", (), "sms", sort="date DESC", strict_columns=False)]
    routes.append(Route((), "sms", (), "sms", sort="date DESC", strict_columns=False))
    for box, kind in _SMS_BOXES.items():
        routes.append(
            Route((box,), "sms", (), "sms", f"type={kind}", "date DESC", fixed=(("type", kind),), strict_columns=False)
        )
        routes.append(Route((box, "#"), "sms", (), "sms", f"type={kind}", "date DESC", strict_columns=False))
    return tuple(routes)


class SmsProvider(Provider):
    """SmsProvider (`content://sms`) over mmssms.db's sms table; threads follow through mmssms.db's triggers."""

    authority = "sms"
    types = (
        ((), "vnd.android-dir/mms-sms"),
        (("#",), "vnd.android.cursor.item/sms"),
        *(((box,), "vnd.android-dir/mms-sms") for box in _SMS_BOXES),
        *(((box, "#"), "vnd.android.cursor.item/sms") for box in _SMS_BOXES),
    )
    routes = _sms_routes()

    @contextlib.contextmanager
    def database(self, phone: Any) -> Iterator[sqlite3.Connection]:
        phone.fs.makedirs(f"{sms.PROVIDER_DIR}/databases")
        with sms._db(phone) as conn:
            yield conn

    def unknown(self, uri: Uri) -> ProviderError:
        return illegal_argument(f"Unknown URL {uri.text}")

    def insert(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        if ids:
            raise ProviderError("java.lang.UnsupportedOperationException", f"Invalid request: {uri.text}")
        values = {**request.values, **dict(route.fixed)}
        values.setdefault("type", 1)
        values.setdefault("date", phone.state.clock_ms)
        values.setdefault("read", 0 if values["type"] == 1 else 1)
        values.setdefault("seen", 0 if values["type"] == 1 else 1)
        with self.database(phone) as conn:
            insert_row(conn, "sms", values)


_THREADS = _cols("_id date message_count recipient_ids snippet snippet_cs read archived type error has_attachment")
# MmsSmsProvider.UNION_COLUMNS: MMS_SMS_COLUMNS, MMS_ONLY_COLUMNS, SMS_ONLY_COLUMNS. SMS rows have NULL MMS columns.
_MMS_SMS_COLUMNS = ["_id", "date", "date_sent", "read", "thread_id", "locked", "sub_id"]
_MMS_ONLY_COLUMNS = [
    "ct_cls",
    "ct_l",
    "ct_t",
    "d_rpt",
    "exp",
    "m_cls",
    "m_id",
    "m_size",
    "m_type",
    "msg_box",
    "pri",
    "read_status",
    "resp_st",
    "resp_txt",
    "retr_st",
    "retr_txt_cs",
    "rpt_a",
    "rr",
    "st",
    "sub",
    "sub_cs",
    "tr_id",
    "v",
    "text_only",
]
_SMS_ONLY_COLUMNS = [
    "address",
    "body",
    "person",
    "reply_path_present",
    "service_center",
    "status",
    "subject",
    "type",
    "error_code",
]
_UNION = (
    *((c, c) for c in _MMS_SMS_COLUMNS),
    *((c, "NULL") for c in _MMS_ONLY_COLUMNS),
    *((c, c) for c in _SMS_ONLY_COLUMNS),
)
# getConversations: each thread's newest message (drafts left out), grouped by thread.
_CONVERSATIONS_SOURCE = (
    "(SELECT *, thread_id AS tid, date AS normalized_date FROM sms WHERE (type != 3)"
    " GROUP BY thread_id HAVING date = MAX(date))"
)


class MmsSmsProvider(SmsProvider):
    """MmsSmsProvider (`content://mms-sms`): conversations, or the threads table with `?simple=true`.

    A conversation row is its thread's newest message; the simulated phone has SMS only, so MMS columns are NULL.
    """

    authority = "mms-sms"
    simple = Route(("conversations",), "threads", _THREADS, "threads", sort="date DESC", strict_columns=False)
    routes = (
        Route(("conversations",), _CONVERSATIONS_SOURCE, _UNION, "sms", id_column="thread_id", strict_columns=False),
        Route(("conversations", "#"), "sms", (), "sms", sort="date DESC", id_column="thread_id", strict_columns=False),
    )
    types = ((("conversations",), "vnd.android-dir/mms-sms"), (("conversations", "#"), "vnd.android-dir/mms-sms"))

    def route(self, uri: Uri) -> tuple[Route, list[str]]:
        if uri.segments == ("conversations",) and uri.params.get("simple") == "true":
            return self.simple, []
        return super().route(uri)

    def unknown(self, uri: Uri) -> ProviderError:
        return illegal_argument(f"Unknown URL {uri.text}")

    def delete(self, phone: Any, uri: Uri, request: Request) -> None:
        _, ids = self.route(uri)
        with self.database(phone) as conn:
            # Deleting a conversation deletes its messages; the triggers drop the emptied thread.
            found = query_rows(conn, self.simple, [], _ids_only(request)) if not ids else []
            threads = ids or [r[0][1] for r in found]
            for thread in threads:
                _run(conn, "DELETE FROM sms WHERE thread_id = ?", (int(thread),))

    def insert(self, phone: Any, uri: Uri, request: Request) -> None:
        raise ProviderError(
            "java.lang.UnsupportedOperationException", f"MmsSmsProvider does not support inserts: {uri.text}"
        )


# ---- call log, calendar: providers whose apps the phone lacks, with empty AOSP-shaped databases ------------

CALLLOG_DB = f"{contacts.PROVIDER_DIR}/databases/calllog.db"
CALLLOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT, presentation INTEGER NOT NULL DEFAULT 1,
    post_dial_digits TEXT NOT NULL DEFAULT '', via_number TEXT NOT NULL DEFAULT '', date INTEGER,
    duration INTEGER, data_usage INTEGER, type INTEGER, features INTEGER NOT NULL DEFAULT 0,
    subscription_component_name TEXT, subscription_id TEXT, phone_account_address TEXT,
    phone_account_hidden INTEGER NOT NULL DEFAULT 0, sub_id INTEGER DEFAULT -1, name TEXT, numbertype INTEGER,
    numberlabel TEXT, countryiso TEXT, voicemail_uri TEXT, is_read INTEGER, geocoded_location TEXT,
    lookup_uri TEXT, matched_number TEXT, normalized_number TEXT, photo_id INTEGER NOT NULL DEFAULT 0,
    photo_uri TEXT, formatted_number TEXT, add_for_all_users INTEGER NOT NULL DEFAULT 1,
    last_modified INTEGER DEFAULT 0, new INTEGER, transcription TEXT, transcription_state INTEGER NOT NULL DEFAULT 0
);
"""
CALENDAR_DB = "/data/data/com.android.providers.calendar/databases/calendar.db"
CALENDAR_SCHEMA = """
CREATE TABLE IF NOT EXISTS Calendars (
    _id INTEGER PRIMARY KEY, account_name TEXT, account_type TEXT, name TEXT, calendar_displayName TEXT,
    calendar_color INTEGER, calendar_access_level INTEGER, visible INTEGER NOT NULL DEFAULT 1,
    sync_events INTEGER NOT NULL DEFAULT 0, calendar_timezone TEXT, ownerAccount TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS Events (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, calendar_id INTEGER NOT NULL, title TEXT, eventLocation TEXT,
    description TEXT, eventColor INTEGER, eventStatus INTEGER, selfAttendeeStatus INTEGER NOT NULL DEFAULT 0,
    dtstart INTEGER, dtend INTEGER, eventTimezone TEXT, duration TEXT, allDay INTEGER NOT NULL DEFAULT 0,
    accessLevel INTEGER NOT NULL DEFAULT 0, availability INTEGER NOT NULL DEFAULT 0,
    hasAlarm INTEGER NOT NULL DEFAULT 0, hasExtendedProperties INTEGER NOT NULL DEFAULT 0, rrule TEXT, rdate TEXT,
    exrule TEXT, exdate TEXT, original_id INTEGER, original_sync_id TEXT, originalInstanceTime INTEGER,
    originalAllDay INTEGER, lastDate INTEGER, hasAttendeeData INTEGER NOT NULL DEFAULT 0,
    guestsCanModify INTEGER NOT NULL DEFAULT 0, guestsCanInviteOthers INTEGER NOT NULL DEFAULT 1,
    guestsCanSeeGuests INTEGER NOT NULL DEFAULT 1, organizer STRING, isOrganizer INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0, eventEndTimezone TEXT, customAppPackage TEXT, customAppUri TEXT, uid2445 TEXT
);
"""


class SchemaProvider(Provider):
    """A provider over one database file whose tables it creates on first use."""

    path = ""
    schema = ""

    @contextlib.contextmanager
    def database(self, phone: Any) -> Iterator[sqlite3.Connection]:
        phone.fs.makedirs(self.path.rsplit("/", 1)[0])
        with phone.fs.sqlite(self.path) as conn:
            conn.executescript(self.schema)
            yield conn


class CallLogProvider(SchemaProvider):
    authority = "call_log"
    path, schema = CALLLOG_DB, CALLLOG_SCHEMA
    types = ((("calls",), "vnd.android.cursor.dir/calls"), (("calls", "#"), "vnd.android.cursor.item/calls"))
    routes = (
        Route(("calls",), "calls", (), "calls", sort="date DESC"),
        Route(("calls", "#"), "calls", (), "calls", sort="date DESC"),
    )

    def unknown(self, uri: Uri) -> ProviderError:
        return illegal_argument(f"Unknown URL {uri.text}")


class CalendarProvider(SchemaProvider):
    authority = "com.android.calendar"
    path, schema = CALENDAR_DB, CALENDAR_SCHEMA
    types = ((("events",), "vnd.android.cursor.dir/event"), (("events", "#"), "vnd.android.cursor.item/event"))
    routes = (
        Route(("events",), "Events", (), "Events", "deleted = 0", strict_columns=False),
        Route(("events", "#"), "Events", (), "Events", "deleted = 0", strict_columns=False),
        Route(("calendars",), "Calendars", (), "Calendars", strict_columns=False),
        Route(("calendars", "#"), "Calendars", (), "Calendars", strict_columns=False),
    )

    def unknown(self, uri: Uri) -> ProviderError:
        return illegal_argument(f"Unknown URL {uri.text}")


# ---- media: MediaStore over the files of shared storage ------------------------------------------------------

_MIME = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/x-wav",
    "txt": "text/plain",
    "md": "text/markdown",
    "pdf": "application/pdf",
    "csv": "text/comma-separated-values",
    "json": "application/json",
    "html": "text/html",
    "zip": "application/zip",
}
_MEDIA_COLUMNS = (
    "_id",
    "_data",
    "_size",
    "_display_name",
    "mime_type",
    "title",
    "date_added",
    "date_modified",
    "media_type",
    "relative_path",
    "bucket_display_name",
    "is_download",
    "volume_name",
)


def _media_type(mime: str | None) -> int:
    kind = (mime or "").split("/")[0]
    return {"image": 1, "audio": 2, "video": 3}.get(kind, 0)


class MediaProvider(Provider):
    """MediaProvider (`content://media/external/...`): rows built from a scan of /storage/emulated/0.

    Deleting rows deletes their files, as MediaProvider does (android_world clears Download/ this way).
    """

    authority = "media"
    routes = tuple(
        Route(pattern, "files", (), "files", where, strict_columns=False)
        for prefix in (("external",), ("external_primary",))
        for pattern, where in (
            ((*prefix, "file"), ""),
            ((*prefix, "file", "#"), ""),
            ((*prefix, "downloads"), "is_download = 1"),
            ((*prefix, "downloads", "#"), "is_download = 1"),
            ((*prefix, "images", "media"), "media_type = 1"),
            ((*prefix, "images", "media", "#"), "media_type = 1"),
            ((*prefix, "audio", "media"), "media_type = 2"),
            ((*prefix, "video", "media"), "media_type = 3"),
        )
    )

    def unknown(self, uri: Uri) -> ProviderError:
        return illegal_argument(f"Unknown URL: {uri.text}")

    @contextlib.contextmanager
    def database(self, phone: Any) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(":memory:")
        try:
            conn.execute(f"CREATE TABLE files ({', '.join(_MEDIA_COLUMNS)})")
            for row in self._scan(phone):
                conn.execute(f"INSERT INTO files VALUES ({', '.join('?' * len(row))})", row)
            yield conn
        finally:
            conn.close()

    @staticmethod
    def _scan(phone: Any) -> Iterator[tuple]:
        paths = sorted(p for p in phone.fs.walk_files("/sdcard") if not p.startswith("/sdcard/Android/"))
        for i, path in enumerate(paths, start=1):
            st = phone.fs.stat(path)
            rel, _, name = path.removeprefix("/sdcard/").rpartition("/")
            mime = _MIME.get(name.rpartition(".")[2].lower()) if "." in name else None
            real = "/storage/emulated/0" + path.removeprefix("/sdcard")
            folder = rel.split("/")[-1] if rel else None
            downloads = rel == "Download" or rel.startswith("Download/")
            yield (
                i,
                real,
                st.size,
                name,
                mime,
                name.rpartition(".")[0] or name,
                st.mtime,
                st.mtime,
                _media_type(mime),
                f"{rel}/" if rel else "",
                folder,
                int(downloads),
                "external_primary",
            )

    def query(self, phone: Any, uri: Uri, request: Request) -> list[list[tuple]]:
        route, ids = self.route(uri)
        with self.database(phone) as conn:
            return query_rows(conn, route, ids, request)

    def delete(self, phone: Any, uri: Uri, request: Request) -> None:
        route, ids = self.route(uri)
        with self.database(phone) as conn:
            rows = query_rows(conn, route, ids, Request("query", projection=["_data"], where=request.where))
        for row in rows:
            path = str(row[0][1])
            if phone.fs.is_file(path):
                phone.fs.remove(path)

    def insert(self, phone: Any, uri: Uri, request: Request) -> None:
        raise ProviderError("java.lang.UnsupportedOperationException", f"Unknown or unsupported URL: {uri.text}")

    def update(self, phone: Any, uri: Uri, request: Request) -> None:
        raise ProviderError("java.lang.UnsupportedOperationException", f"Unknown or unsupported URL: {uri.text}")


# ---- settings -------------------------------------------------------------------------------------------

_SETTINGS_WHERE = (
    re.compile(r"\s*name\s*=\s*['\"].*['\"]\s*"),
    re.compile(r"\s*\(\s*name\s*=\s*['\"].*['\"]\s*\)\s*"),
)


class SettingsProvider(Provider):
    """SettingsProvider (`content://settings/system|secure|global[/NAME]`) over the phone's settings tables."""

    authority = "settings"

    def _target(self, uri: Uri, where: str | None, support_all: bool) -> tuple[str, str | None]:
        if not uri.segments or uri.segments[0] not in ("system", "secure", "global"):
            raise illegal_argument(f"Bad root path: {uri.segments[0] if uri.segments else 'null'}")
        table = uri.segments[0]
        if len(uri.segments) == 1:
            if where is not None and any(p.fullmatch(where) for p in _SETTINGS_WHERE):
                start = max(where.find("'"), where.find('"')) + 1
                end = max(where.rfind("'"), where.rfind('"'))
                return table, where[start:end]
            if support_all and where is None:
                return table, None
        elif len(uri.segments) == 2 and where is None:
            return table, uri.segments[1]
        raise illegal_argument(
            "Supported SQL:\n  uri content://some_table/some_property with null where and where args\n"
            "  uri content://some_table with query name=? and single name as arg\n"
            "  uri content://some_table with query name=some_name and null args\n"
            f"  but got - uri:{uri.text}, where:{where} whereArgs:null"
        )

    def query(self, phone: Any, uri: Uri, request: Request) -> list[list[tuple]]:
        table, name = self._target(uri, request.where, support_all=True)
        settings = phone.list_settings(table)
        ordered = sorted(settings)
        columns = request.projection if request.projection is not None else ["_id", "name", "value"]
        for column in columns:
            if column not in ("_id", "name", "value"):
                raise illegal_argument(f"Invalid column: {column}")
        keys = ordered if name is None else [name] if name in settings else []
        rows = []
        for key in keys:
            full = {"_id": ordered.index(key) + 1, "name": key, "value": settings[key]}
            rows.append([(c, full[c]) for c in columns])
        if request.sort:
            column = request.sort.split()[0]
            if column in ("_id", "name", "value"):
                rows.sort(key=lambda r: str(dict(r).get(column, "")), reverse=request.sort.upper().endswith("DESC"))
        return rows

    def call(self, phone: Any, uri: Uri, request: Request) -> str:
        """SettingsProvider.call: GET_<table> answers Bundle[{value=...}], PUT_<table> and DELETE_<table> change it."""
        verb, _, table = (request.method or "").partition("_")
        if table not in ("system", "secure", "global") or request.arg is None:
            return "null"
        if verb == "GET":
            return f"Bundle[{{value={phone.list_settings(table).get(request.arg, 'null')}}}]"
        if verb == "PUT":
            phone.put_setting(table, request.arg, _setting_text(request.values.get("value")))
        elif verb == "DELETE":
            phone.delete_setting(table, request.arg)
            return "Bundle[{result=1}]"
        return "null"

    def get_type(self, uri: Uri) -> str | None:
        table, name = self._target(uri, None, support_all=True)
        return f"vnd.android.cursor.{'item' if name else 'dir'}/{table}"

    def insert(self, phone: Any, uri: Uri, request: Request) -> None:
        table, _ = self._target(uri, None, support_all=True)
        name = request.values.get("name")
        if name is not None and str(name):
            phone.put_setting(table, str(name), _setting_text(request.values.get("value")))

    def update(self, phone: Any, uri: Uri, request: Request) -> None:
        table, name = self._target(uri, request.where, support_all=False)
        name = name or request.values.get("name")
        if name:
            phone.put_setting(table, str(name), _setting_text(request.values.get("value")))

    def delete(self, phone: Any, uri: Uri, request: Request) -> None:
        table, name = self._target(uri, request.where, support_all=False)
        if name:
            phone.delete_setting(table, name)


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


PROVIDERS: dict[str, Provider] = {
    p.authority: p
    for p in (
        ContactsProvider(),
        LegacyContactsProvider(),
        SmsProvider(),
        MmsSmsProvider(),
        CallLogProvider(),
        CalendarProvider(),
        MediaProvider(),
        SettingsProvider(),
    )
}


# ==== output =============================================================================================


def java_float(value: float) -> str:
    """String.valueOf(cursor.getFloat(i)): Java's Float.toString of the value narrowed to a float."""
    f = struct.unpack("f", struct.pack("f", value))[0]
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    f = abs(f)
    if f == 0:
        return f"{sign}0.0"
    for significant in range(1, 10):  # the shortest decimal that reads back as the same float32
        text = f"{f:.{significant - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f:
            break
    mantissa, _, exponent = text.partition("e")
    if 1e-3 <= f < 1e7:
        plain = format(decimal.Decimal(text), "f")
        return sign + (plain if "." in plain else plain + ".0")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{int(exponent)}"


def format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "BLOB"
    if isinstance(value, float):
        return java_float(value)
    return str(value)


def format_rows(rows: list[list[tuple]]) -> str:
    """QueryCommand's output: one `Row: N name=value, ...` line per row, or `No result found.`."""
    if not rows:
        return "No result found.\n"
    lines = [f"Row: {i} " + ", ".join(f"{name}={format_value(v)}" for name, v in row) for i, row in enumerate(rows)]
    return "\n".join(lines) + "\n"


def stack_trace(error: ProviderError, call: str) -> str:
    head = error.java_class + (f": {error.message}" if error.message is not None else "")
    frames = (
        []
        if error.local
        else [
            *_FRAMES_REMOTE,
            f"android.content.ContentProviderProxy.{call}(ContentProviderNative.java:{_PROXY_LINE[call]})",
            f"com.android.commands.content.Content${_COMMAND_CLASS[call]}.onExecute(Content.java:{_COMMAND_LINE[call]})",
        ]
    )
    if error.local:
        frames = [_MAIN_FRAMES[0].replace(":522)", ":519)")]
    else:
        frames.append(_MAIN_FRAMES[0])
    frames += _MAIN_FRAMES[1:]
    return head + "\n" + "".join(f"\tat {f}\n" for f in frames)


# ==== the command ========================================================================================

_CALLS: dict[str, str] = {
    "query": "query",
    "insert": "insert",
    "update": "update",
    "delete": "delete",
    "call": "call",
    "gettype": "getType",
    "read": "openFile",
    "write": "openFile",
}


def _execute(phone: Any, request: Request, uri: Uri, stdout: Callable[[str], None]) -> None:
    provider = PROVIDERS.get(uri.authority)
    if provider is None or request.user != 0:
        raise ProviderError("java.lang.IllegalStateException", f"Could not find provider: {uri.authority}", local=True)
    if request.verb == "query":
        stdout(format_rows(provider.query(phone, uri, request)))
    elif request.verb == "insert":
        provider.insert(phone, uri, request)
    elif request.verb == "update":
        provider.update(phone, uri, request)
    elif request.verb == "delete":
        provider.delete(phone, uri, request)
    elif request.verb == "gettype":
        mime = provider.get_type(uri)
        stdout(f"Result: {mime if mime is not None else 'null'}\n")
    elif request.verb == "call":
        stdout(f"Result: {provider.call(phone, uri, request)}\n")
    else:  # read / write: no simulated provider serves files
        raise ProviderError("java.io.FileNotFoundException", f"No files supported by provider at {uri.text}")


def _java_exception(err: Exception) -> ProviderError:
    if isinstance(err, sqlite3.DatabaseError) and "not a database" in str(err):
        return ProviderError(
            "android.database.sqlite.SQLiteDatabaseCorruptException", "file is not a database (code 26 SQLITE_NOTADB)"
        )
    if isinstance(err, sqlite3.Error):
        return ProviderError("android.database.sqlite.SQLiteException", f"{err} (code 1 SQLITE_ERROR)")
    return ProviderError("java.lang.IllegalArgumentException", str(err))


def content_command(ctx: Context, args: list[str]) -> int:
    """`content query|insert|update|delete|call|read|write|gettype ...`; exits 0 as app_process does."""
    try:
        request = parse(args)
    except UsageError as err:
        ctx.out(USAGE)
        ctx.out(f"[ERROR] {err}")
        return 0
    uri = Uri.parse(request.uri)
    try:
        with ctx.phone.lock if hasattr(ctx.phone, "lock") else contextlib.nullcontext():
            _execute(ctx.phone, request, uri, lambda text: ctx.out(text, end=""))
        if request.verb != "query" and request.verb not in ("gettype",):
            ctx.phone.changed()
    except (sqlite3.Error, ValueError, KeyError, TypeError, OverflowError) as err:
        # Anything else the provider trips on still ends as Content.java ends it: a Java exception on stderr.
        ctx.err(f"Error while accessing provider:{uri.authority}")
        ctx.stderr += stack_trace(_java_exception(err), _CALLS[request.verb]).encode()
    except ProviderError as err:
        ctx.err(f"Error while accessing provider:{uri.authority}")
        if err.message:
            err.message = err.message.replace(CALLER, _CALLERS[bool(getattr(ctx.phone, "adb_root", False))])
        ctx.stderr += stack_trace(err, _CALLS[request.verb]).encode()
    return 0
