"""The Android emulator console (telnet, port 5554+) of a simulated phone, byte-compatible with the real one.

Replies follow the emulator's `android/console.cpp` and QEMU's snapshot code, so `adb emu`, telnet
scripts and droidrl's `AdbDevice` see the same bytes as from a real emulator.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from droidrl.envs.sim import services
from droidrl.envs.sim.snapshot import SnapshotError

TOKEN_FILE_NAME = ".emulator_console_auth_token"

# The real console keeps at most this many bytes of one line; a longer line wraps around.
LINE_BUFFER_SIZE = 4096

# The block device QEMU names when a snapshot is missing; an API 35 image reports this one.
SNAPSHOT_DEVICE = "encrypt"

OK = "OK\r\n"
HELP_PROMPT = "Android Console: type 'help' for a list of commands\r\n"
UNKNOWN_COMMAND = "KO: unknown command, try 'help'\r\n"
READ_ONLY_REFUSAL = 'KO: Snapshot {} is disabled because "-read-only" was specified\r\n'

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT")


def token_path(home: str | os.PathLike[str] | None = None) -> Path:
    """Where the console auth token lives: `$HOME/.emulator_console_auth_token` unless `home` is given."""
    return Path(home if home is not None else os.path.expanduser("~")) / TOKEN_FILE_NAME


def load_or_create_token(path: Path) -> str:
    """Read the auth token (whitespace-trimmed), creating the file with a random token if it is missing.

    Like the emulator: 12 random bytes in base64, file mode 0600, no trailing newline. An empty file
    means authentication is off. Raises OSError when the file cannot be created or read.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    token = base64.b64encode(os.urandom(12)).decode()
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


def is_http_request_line(line: bytes) -> bool:
    """Whether `line` looks like `<METHOD> <uri> HTTP/<version>` (the console refuses browsers)."""
    method_ok = any(line.startswith(m.encode()) and line[len(m) : len(m) + 1] in (b" ", b"\t") for m in HTTP_METHODS)
    if not method_ok:
        return False
    words = line.rstrip(b" \t").replace(b"\t", b" ").split(b" ")
    return len(words) > 1 and words[-1].startswith(b"HTTP/") and len(words[-1]) > len(b"HTTP/")


def human_size(size: int) -> str:
    """QEMU's snapshot size format: `999`, `9.5K`, `75M`, `1.2G`."""
    if size <= 999:
        return str(size)
    base = 1024
    for i, suffix in enumerate("KMGT"):
        if size < 10 * base:
            return f"{size / base:.1f}{suffix}"
        if size < 1000 * base or i == 3:
            return f"{(size + base // 2) // base}{suffix}"
        base *= 1024
    raise AssertionError("unreachable")


def snapshot_table(snapshots: list[Any]) -> str:
    """`avd snapshot list` output for `SnapshotInfo`s, as QEMU's `info snapshots` prints it."""
    if not snapshots:
        return "There is no snapshot available.\r\n"
    lines = [
        "List of snapshots present on all disks:",
        f"{'ID':<10}{'TAG':<20}{'VM SIZE':>7}{'DATE':>20}{'VM CLOCK':>15}",
    ]
    for info in snapshots:
        date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created))
        secs, ms = divmod(int(info.vm_clock_ms), 1000)
        clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{ms:03d}"
        lines.append(f"{'--':<10}{info.name:<20}{human_size(info.size):>7}{date:>20}{clock:>15}")
    return "".join(line + "\r\n" for line in lines)


# ---- command table -------------------------------------------------------------------------------------
# A handler writes its reply with `session.write` and returns True when `OK` should follow.
Handler = Callable[["ConsoleSession", "str | None"], Awaitable[bool]]


@dataclass(frozen=True)
class Command:
    """One console command or sub-command, as `help` lists it."""

    names: str  # alternatives separated by "|", e.g. "help|h|?"
    abstract: str  # the one-line summary in `help-verbose` and sub-command lists
    description: str = ""  # the `help <command>` text (ends in \r\n); the abstract when empty
    handler: Handler | None = None
    subcommands: tuple[Command, ...] = ()

    def matches(self, word: str) -> bool:
        return word in self.names.split("|")


def find_command(line: str, commands: tuple[Command, ...]) -> tuple[Command | None, str | None]:
    """The command named by the first word of `line`, and the rest (leading spaces skipped; None if empty).

    Only a space separates words, exactly as in the emulator: a tab is part of the word.
    """
    word, _, rest = line.partition(" ")
    args = rest.lstrip(" ") or None
    for command in commands:
        if command.matches(word):
            return command, args
    return None, None


class ConsoleSession:
    """One console connection: line assembly, the auth state and command dispatch."""

    def __init__(self, console: _Console, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.console = console
        self.reader = reader
        self.writer = writer
        self.commands: tuple[Command, ...] = MAIN_COMMANDS
        self.finished = False  # `quit`, `kill` or a forbidden request: close after this line
        self.killing = False

    def write(self, text: str) -> None:
        self.writer.write(text.encode())

    async def run(self) -> None:
        try:
            if not self.greet():
                return
            await self.writer.drain()
            line = b""
            while not self.finished:
                chunk = await self.reader.read(4096)
                if not chunk:
                    return
                *complete, line = (line + chunk.replace(b"\r", b"")).split(b"\n")
                for raw in complete:
                    await self.execute(raw)
                    await self.writer.drain()
                    if self.finished:
                        break
                line = _wrap(line)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()
            if self.killing and self.console.on_kill is not None:
                self.console.on_kill()

    def greet(self) -> bool:
        """Send the banner for the token file's current state; False closes the connection (unreadable)."""
        try:
            token = load_or_create_token(self.console.token_path)
        except OSError:
            return False
        if not token:
            self.write(HELP_PROMPT + OK)
            return True
        self.commands = PREAUTH_COMMANDS
        self.write(
            "Android Console: Authentication required\r\n"
            "Android Console: type 'auth <auth_token>' to authenticate\r\n"
            f"Android Console: you can find your <auth_token> in \r\n'{self.console.token_path}'\r\n" + OK
        )
        return True

    async def execute(self, raw: bytes) -> None:
        """Run one command line, like the emulator's `control_client_do_command`."""
        raw = _wrap(raw).split(b"\0", 1)[0]  # the emulator handles the line as a C string
        if is_http_request_line(raw):
            self.write("KO: Forbidden HTTP request. Aborting\r\n")
            self.finished = True
            return
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.write("KO: Forbidden binary request. Aborting\r\n")
            self.finished = True
            return
        command, args = find_command(line, self.commands)
        if command is None:
            self.write(UNKNOWN_COMMAND)
            return
        while command.handler is None:
            if args is None:
                self.write(help_text(command, ""))
                self.write("KO: missing sub-command\r\n")
                return
            sub, args = find_command(args, command.subcommands)
            if sub is None:
                self.write(help_text(command, ""))
                self.write("KO:  bad sub-command\r\n")  # sic: two spaces, as the emulator sends
                return
            command = sub
        if await command.handler(self, args):
            self.write(OK)

    async def run_on_phone(self, method: Callable[..., Any], *args: Any) -> Any:
        """Call a (possibly slow) phone method in a worker thread, holding the phone's lock."""

        def call() -> Any:
            with self.console.phone.lock:
                return method(*args)

        return await asyncio.get_running_loop().run_in_executor(None, call)


def _wrap(line: bytes) -> bytes:
    """What is left of an over-long line: the emulator restarts its 4096-byte buffer when it fills."""
    limit = LINE_BUFFER_SIZE - 1
    if len(line) <= limit:
        return line
    return line[-((len(line) - 1) % limit + 1) :]


def help_text(command: Command, prefix: str) -> str:
    """A command's help with its sub-command list (the emulator's `dump_help`)."""
    text = command.description or command.abstract + "\r\n"
    if command.subcommands:
        text += "\r\navailable sub-commands:\r\n"
        text += "".join(f"   {prefix} {sub.names:<15}  {sub.abstract}\r\n" for sub in command.subcommands)
        text += "\r\n"
    return text


def command_list(commands: tuple[Command, ...]) -> str:
    return (
        "Android console commands:\r\n"
        + "".join(f"    {c.names}\r\n" for c in commands)
        + "\r\nTry 'help-verbose' for more description\r\nTry 'help <command>' for command-specific help\r\n"
    )


# ---- handlers --------------------------------------------------------------------------------------------
async def do_help(session: ConsoleSession, args: str | None) -> bool:
    if args is None:
        session.write(command_list(session.commands))
        return True
    commands, rest = session.commands, args
    while True:
        command, rest = find_command(rest, commands)
        if command is None:
            session.write(command_list(session.commands) + "\r\nKO: unknown command\r\n")
            return False
        if rest is None or not command.subcommands:
            session.write(help_text(command, args))
            return True
        commands = command.subcommands


async def do_help_verbose(session: ConsoleSession, args: str | None) -> bool:
    rows = "".join(f"    {c.names:<15}  {c.abstract}\r\n" for c in session.commands)
    session.write(f"Android console command help:\r\n\r\n{rows}\r\ntry 'help <command>' for command-specific help\r\n")
    return True


async def do_ping(session: ConsoleSession, args: str | None) -> bool:
    session.write("I am alive!\r\n")
    return True


async def do_quit(session: ConsoleSession, args: str | None) -> bool:
    session.finished = True
    return False


async def do_kill(session: ConsoleSession, args: str | None) -> bool:
    session.write("OK: killing emulator, bye bye\r\n")
    # The emulator exits right after answering, which closes every connection.
    session.finished = session.killing = True
    return True


async def do_auth(session: ConsoleSession, args: str | None) -> bool:
    if args is None:
        session.write("KO: missing authentication token\r\n")
        return False
    try:
        token = load_or_create_token(session.console.token_path)
    except OSError:
        session.write("KO: unable to read ~/.emulator_console_auth_token\r\n")
        return False
    # Constant-time comparison, as the emulator does, so a timing probe cannot guess the token.
    if not hmac.compare_digest(args.encode(), token.encode()):
        session.write("KO: authentication token does not match ~/.emulator_console_auth_token\r\n")
        return False
    session.write(HELP_PROMPT)
    session.commands = MAIN_COMMANDS
    return True


async def do_avd_name(session: ConsoleSession, args: str | None) -> bool:
    session.write(f"{session.console.phone.avd_name}\r\n")
    return True


async def do_avd_status(session: ConsoleSession, args: str | None) -> bool:
    session.write("virtual device is running\r\n")
    return True


async def do_snapshot_list(session: ConsoleSession, args: str | None) -> bool:
    snapshots = await session.run_on_phone(session.console.phone.list_snapshots)
    session.write(snapshot_table(snapshots))
    return True


def _snapshot_name(args: str) -> str:
    # The emulator passes trailing spaces on; snapshot names never contain whitespace.
    return args.rstrip(" ")


async def do_snapshot_save(session: ConsoleSession, args: str | None) -> bool:
    if session.console.read_only:
        session.write(READ_ONLY_REFUSAL.format("save"))
        return False
    if args is None:
        session.write("KO: Argument missing, try 'avd snapshot save <name>'\r\n")
        return False
    try:
        await session.run_on_phone(session.console.phone.save_snapshot, _snapshot_name(args))
    except (ValueError, OSError) as err:
        session.write(f"KO: Error while creating snapshot on '{SNAPSHOT_DEVICE}': {err}\r\n")
        return False
    return True


async def do_snapshot_load(session: ConsoleSession, args: str | None) -> bool:
    if session.console.read_only:
        session.write(READ_ONLY_REFUSAL.format("load"))
        return False
    if args is None:
        session.write("KO: Argument missing, try 'avd snapshot load <name>'\r\n")
        return False
    name = _snapshot_name(args)
    try:
        await session.run_on_phone(session.console.phone.load_snapshot, name)
    except SnapshotError as err:
        # The snapshot exists but its data cannot be read (corrupt, or another program's file): QEMU's
        # "invalid argument" while loading VM state, then the emulator's summary. The phone is unchanged.
        session.write(
            f"KO: Error -22 while loading VM state from snapshot '{name}': {err}\r\n"
            "KO: Snapshot load failure: snapshot data is invalid\r\n"
        )
        return False
    except (KeyError, ValueError):  # missing, or a name no snapshot can have (`../x`, `/tmp/x`)
        # QEMU's error, then the emulator's summary (captured from an API 35 emulator).
        session.write(
            f"KO: Device '{SNAPSHOT_DEVICE}' does not have the requested snapshot '{name}'\r\n"
            "KO: Snapshot load failure: snapshot doesn't exist\r\n"
        )
        return False
    except OSError as err:
        session.write(f"KO: Could not open VM state file: {err}\r\nKO: Snapshot load failure: {err}\r\n")
        return False
    return True


async def do_snapshot_delete(session: ConsoleSession, args: str | None) -> bool:
    if session.console.read_only:
        session.write(READ_ONLY_REFUSAL.format("delete"))
        return False
    if args is None:
        # sic: the emulator names `list` in this message.
        session.write("KO: Argument missing, try 'avd snapshot list <name>'\r\n")
        return False
    try:
        await session.run_on_phone(session.console.phone.delete_snapshot, _snapshot_name(args))
    except (KeyError, ValueError):
        pass  # QEMU skips disks without the snapshot, so deleting a missing one succeeds
    except OSError as err:
        session.write(f"KO: Error while deleting snapshot on device '{SNAPSHOT_DEVICE}': {err}\r\n")
        return False
    return True


# ---- gsm and sms: the modem's calls and incoming messages (android_world's call_emulator, text_emulator) ----
def _gsm_number(session: ConsoleSession, args: str | None, usage: str) -> str | None:
    """The phone number argument of a gsm command, or None after the console's error."""
    if args is None:
        session.write(f"KO: missing argument, try '{usage}'\r\n")
        return None
    if not args or any(c not in services.GSM_NUMBER_CHARS for c in args):
        session.write("KO: bad phone number format, use digits, # and + only\r\n")
        return None
    return args


async def do_gsm_list(session: ConsoleSession, args: str | None) -> bool:
    phone = session.console.phone
    rows = await session.run_on_phone(lambda: [dict(c) for c in services.calls(phone)])
    for call in rows:
        direction = "outbound to " if call["dir"] == "outbound" else "inbound from"
        state = {"active": "active", "held": "held", "incoming": "incoming", "waiting": "waiting"}
        session.write(f"{direction} {call['number']:<10} : {state.get(call['state'], 'unknown')}\r\n")
    return True


async def do_gsm_call(session: ConsoleSession, args: str | None) -> bool:
    number = _gsm_number(session, args, "gsm call <phonenumber>")
    if number is None:
        return False
    await session.run_on_phone(services.incoming_call, session.console.phone, number)
    return True


async def _gsm_set_call(session: ConsoleSession, args: str | None, verb: str, state: str) -> bool:
    """`gsm accept|hold <number>`: move that call to `state`, with the console's KO lines."""
    if args is None:
        session.write(f"KO: missing argument, try 'gsm {verb} <phonenumber>'\r\n")
        return False
    if not await session.run_on_phone(services.update_call, session.console.phone, args, state):
        session.write(f"KO: no current call to/from number '{args}'\r\n")
        return False
    return True


async def do_gsm_accept(session: ConsoleSession, args: str | None) -> bool:
    return await _gsm_set_call(session, args, "accept", "active")


async def do_gsm_hold(session: ConsoleSession, args: str | None) -> bool:
    return await _gsm_set_call(session, args, "hold", "held")


async def do_gsm_cancel(session: ConsoleSession, args: str | None) -> bool:
    number = _gsm_number(session, args, "gsm call <phonenumber>")  # sic: the emulator names `call` here
    if number is None:
        return False
    if not await session.run_on_phone(services.end_call, session.console.phone, number):
        session.write("KO: could not cancel this number\r\n")
        return False
    return True


async def do_gsm_status(session: ConsoleSession, args: str | None) -> bool:
    if args is not None:
        session.write("KO: no argument required\r\n")
        return False
    modem = services.modem(session.console.phone)
    session.write(f"gsm voice state: {modem['voice']}\r\ngsm data state:  {modem['data']}\r\n")
    return True


async def do_gsm_busy(session: ConsoleSession, args: str | None) -> bool:
    if args is None:
        session.write("KO: missing argument, try 'gsm busy <phonenumber>'\r\n")
        return False
    # Only an outbound (dialled) call can be busy; the phone's calls are all inbound.
    session.write(f"KO: no current outbound call to number '{args}' (call (nil))\r\n")
    return False


def _registration(kind: str) -> Handler:
    """`gsm data|voice STATE`: the modem's registration state, one of _GSM_STATES."""

    async def handler(session: ConsoleSession, args: str | None) -> bool:
        if args is None:
            session.write(f"KO: missing argument, try 'gsm {kind} <state>'\r\n")
            return False
        state = dict(_GSM_STATE_ALIASES).get(args, args)
        if state not in dict(_GSM_STATES):
            # sic: the emulator says "data" for both
            session.write(f"KO: bad GSM data state name, try 'help gsm {kind}' for list of valid values\r\n")
            return False
        services.modem(session.console.phone)[kind] = state
        return True

    return handler


async def do_gsm_meter(session: ConsoleSession, args: str | None) -> bool:
    if args is None:
        session.write("KO: missing argument, try 'gsm meter <on|off>'\r\n")
        return False
    if args not in ("on", "off"):
        session.write("KO: bad GSM meter state name, try 'help gsm meter' for list of valid values\r\n")
        return False
    return True


def _leading_int(text: str) -> tuple[int, str] | None:
    """strtol: an optionally signed decimal number at the start of `text` and what follows, or None."""
    digits = len(text) - len(text.lstrip("+-"))
    end = digits
    while end < len(text) and text[end].isdigit():
        end += 1
    if end == digits or digits > 1:
        return None
    return int(text[:end]), text[end:]


async def do_gsm_signal(session: ConsoleSession, args: str | None) -> bool:
    values, rest = [], (args or "").strip(" \t")
    while rest and len(values) < 2:
        parsed = _leading_int(rest)
        if parsed is None:
            session.write(f"KO: argument '{rest}' is not a number\n")  # sic: no \r
            return False
        value, rest = parsed
        values.append(value)
        rest = rest.lstrip(" \t")
    if not values:
        session.write("KO: not enough arguments: see 'help gsm signal' for details\r\n")
        return False
    if not (0 <= values[0] <= 31 or values[0] == 99):
        session.write("KO: invalid RSSI - must be 0..31 or 99\r\n")
        return False
    if len(values) > 1 and not (0 <= values[1] <= 7 or values[1] == 99):
        session.write("KO: invalid BER - must be 0..7 or 99\r\n")
        return False
    return True


async def do_gsm_signal_profile(session: ConsoleSession, args: str | None) -> bool:
    parsed = _leading_int(args or "")
    if parsed is None:
        session.write(f"KO: argument '{args or ''}' is not a number\r\n")
        return False
    if not 0 <= parsed[0] <= 4:
        session.write("KO: invalid signal strength - must be 0..4\r\n")
        return False
    return True


async def do_sms_send(session: ConsoleSession, args: str | None) -> bool:
    number, space, text = (args or "").partition(" ")
    if args is None or not space:
        session.write("KO: missing argument, try 'sms send <phonenumber> <text message>'\r\n")
        return False
    digits = number[1:] if number.startswith("+") else number
    if not digits.isdigit() or not digits.isascii():
        session.write("KO: bad phone number format, must be [+](0-9)*\r\n")
        return False
    body = services.decode_console_text(text)
    if body is None:
        session.write(
            "message must be utf8 and can use the following escapes:\r\n"
            "    \\n      for a newline\r\n"
            "    \\xNN    where NN are two hexadecimal numbers\r\n"
            "    \\uNNNN  where NNNN are four hexadecimal numbers\r\n"
            "    \\\\     to send a '\\' character\r\n\r\n"
            "    anything else is an error\r\n"
            "KO: badly formatted text\r\n"
        )
        return False
    await session.run_on_phone(services.receive_sms, session.console.phone, number, body)
    return True


# ---- the tables: names, summaries and help texts are the emulator's own ------------------------------------
HELP = Command("help|h|?", "print a list of commands", handler=do_help)
HELP_VERBOSE = Command("help-verbose", "print a list of commands with descriptions", handler=do_help_verbose)
PING = Command("ping", "check if the emulator is alive", handler=do_ping)
QUIT = Command("quit|exit", "quit control session", handler=do_quit)
KILL = Command("kill", "kill the emulator instance", handler=do_kill)
AUTH = Command(
    "auth",
    "user authentication for the emulator console",
    "use 'auth <auth_token>' to get extended console functionality\r\n",
    handler=do_auth,
)
AVD_DESCRIPTION = "allows you to control (e.g. start/stop) the execution of the virtual device\r\n"
AVD_NAME = Command(
    "name",
    "query virtual device name",
    "'avd name' will return the name of this virtual device\r\n",
    handler=do_avd_name,
)
SNAPSHOT_COMMANDS = (
    Command(
        "list",
        "list available state snapshots",
        "'avd snapshot list' will show a list of all state snapshots that can be loaded\r\n",
        handler=do_snapshot_list,
    ),
    Command(
        "save",
        "save state snapshot",
        "'avd snapshot save <name>' will save the current (run-time) state to a snapshot with the given name\r\n",
        handler=do_snapshot_save,
    ),
    Command(
        "load",
        "load state snapshot",
        "'avd snapshot load <name>' will load the state snapshot of the given name\r\n",
        handler=do_snapshot_load,
    ),
    Command(
        "del",
        "delete state snapshot",
        "'avd snapshot del <name>' will delete the state snapshot with the given name\r\n",
        handler=do_snapshot_delete,
    ),
    Command(
        "delete",
        "delete state snapshot",
        "'avd snapshot delete <name>' will delete the state snapshot with the given name\r\n",
        handler=do_snapshot_delete,
    ),
)
AVD_COMMANDS = (
    Command(
        "status",
        "query virtual device status",
        "'avd status' will indicate whether the virtual device is running or not\r\n",
        handler=do_avd_status,
    ),
    AVD_NAME,
    Command(
        "snapshot",
        "state snapshot commands",
        "allows you to save and restore the virtual device state in snapshots\r\n",
        subcommands=SNAPSHOT_COMMANDS,
    ),
)
_GSM_STATES = (
    ("unregistered", "no network available"),
    ("home", "on local network, non-roaming"),
    ("roaming", "on roaming network"),
    ("searching", "searching networks"),
    ("denied", "emergency calls only"),
)
_GSM_STATE_ALIASES = (("off", "unregistered"), ("on", "home"))


def _gsm_state_help(kind: str) -> str:
    rows = [*_GSM_STATES, ("off", "same as 'unregistered'"), ("on", "same as 'home'")]
    return (
        f"the 'gsm {kind} <state>' allows you to change the state of your GPRS connection\r\n"
        "valid values for <state> are the following:\r\n\r\n"
        + "".join(f"  {name:<15} {text}\r\n" for name, text in rows)
        + "\r\n"
    )


GSM_COMMANDS = (
    Command(
        "list",
        "list current phone calls",
        "'gsm list' lists all inbound and outbound calls and their state\r\n",
        handler=do_gsm_list,
    ),
    Command(
        "call",
        "create inbound phone call",
        "'gsm call <phonenumber>' allows you to simulate a new inbound call\r\n",
        handler=do_gsm_call,
    ),
    Command(
        "busy",
        "close waiting outbound call as busy",
        "'gsm busy <remoteNumber>' closes an outbound call, reporting\r\n"
        "the remote phone as busy. only possible if the call is 'waiting'.\r\n",
        handler=do_gsm_busy,
    ),
    Command(
        "hold",
        "change the state of an outbound call to 'held'",
        "'gsm hold <remoteNumber>' change the state of a call to 'held'. this is only possible\r\n"
        "if the call in the 'waiting' or 'active' state\r\n",
        handler=do_gsm_hold,
    ),
    Command(
        "accept",
        "change the state of an outbound call to 'active'",
        "'gsm accept <remoteNumber>' change the state of a call to 'active'. this is only possible\r\n"
        "if the call is in the 'waiting' or 'held' state\r\n",
        handler=do_gsm_accept,
    ),
    Command(
        "cancel",
        "disconnect an inbound or outbound phone call",
        "'gsm cancel <phonenumber>' allows you to simulate the end of an inbound or outbound call\r\n",
        handler=do_gsm_cancel,
    ),
    Command("data", "modify data connection state", _gsm_state_help("data"), handler=_registration("data")),
    Command(
        "meter",
        "modify mobile data meterness",
        "the 'gsm meter <on|off>' allows you to change the meterness of your mobile data plan\r\n\r\n",
        handler=do_gsm_meter,
    ),
    Command("voice", "modify voice connection state", _gsm_state_help("voice"), handler=_registration("voice")),
    Command(
        "status",
        "display GSM status",
        "'gsm status' displays the current state of the GSM emulation\r\n",
        handler=do_gsm_status,
    ),
    Command(
        "signal",
        "set sets the rssi and ber",
        "'gsm signal <rssi> [<ber>]' changes the reported strength and error rate on next (15s) update.\r\n"
        "rssi range is 0..31 and 99 for unknown\r\n"
        "ber range is 0..7 percent and 99 for unknown\r\n",
        handler=do_gsm_signal,
    ),
    Command(
        "signal-profile",
        "set the signal strength profile",
        "'gsm signal-profile <strength>' changes the reported strength on next (15s) update.\r\n"
        "strength range is 0..4\r\n",
        handler=do_gsm_signal_profile,
    ),
)
GSM = Command(
    "gsm",
    "GSM related commands",
    "allows you to change GSM-related settings, or to make a new inbound phone call\r\n",
    subcommands=GSM_COMMANDS,
)
SMS = Command(
    "sms",
    "SMS related commands",
    "allows you to simulate an inbound SMS\r\n",
    subcommands=(
        Command(
            "send",
            "send inbound SMS text message",
            "'sms send <phonenumber> <message>' allows you to simulate a new inbound sms message\r\n",
            handler=do_sms_send,
        ),
    ),
)
# In the emulator's order; `auth` is only known before authentication.
MAIN_COMMANDS = (
    HELP,
    HELP_VERBOSE,
    PING,
    GSM,
    KILL,
    QUIT,
    SMS,
    Command("avd", "control virtual device execution", AVD_DESCRIPTION, subcommands=AVD_COMMANDS),
)
# Before `auth`, only these work; `avd name` stays open because old Android Studio versions need it.
PREAUTH_COMMANDS = (
    HELP,
    HELP_VERBOSE,
    PING,
    Command("avd", "control virtual device execution", AVD_DESCRIPTION, subcommands=(AVD_NAME,)),
    AUTH,
    QUIT,
)


@dataclass
class _Console:
    """What every session of one console server shares."""

    phone: Any
    token_path: Path
    read_only: bool
    on_kill: Callable[[], object] | None


async def serve_console(
    phone: Any,
    host: str = "127.0.0.1",
    port: int = 5554,
    *,
    read_only: bool = False,
    on_kill: Callable[[], object] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> asyncio.Server:
    """Start the emulator console for `phone` on `host:port` and return the listening server.

    Args:
        phone: the simulated `Phone` (its `lock`, `avd_name` and snapshot methods are used).
        read_only: behave like `emulator -read-only`: snapshot save, load and delete are refused.
        on_kill: called (on the event loop) after `kill` has been answered; the emulator exits there.
        home: the directory holding `.emulator_console_auth_token`; `$HOME` when None. The file is
            created with a random token if missing; an empty file turns authentication off.
    """
    console = _Console(phone, token_path(home), read_only, on_kill)
    try:
        load_or_create_token(console.token_path)
    except OSError:
        # The emulator keeps running without a usable console in this case, and says so.
        print(
            f"ERROR: Unable to access '{console.token_path}': emulator console will not work",
            file=sys.stderr,
        )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await ConsoleSession(console, reader, writer).run()

    return await asyncio.start_server(handle, host, port)


__all__ = ["load_or_create_token", "serve_console", "snapshot_table", "token_path"]
