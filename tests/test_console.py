"""The emulator console speaks the real emulator's bytes (android/console.cpp, QEMU snapshot code)."""

from __future__ import annotations

import asyncio
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from droidrl.envs.sim.console import human_size, serve_console, snapshot_table
from droidrl.envs.sim.phone import Phone, SnapshotInfo

TOKEN = "s3cretToken+/abc"


def auth_banner(home: Path) -> bytes:
    return (
        b"Android Console: Authentication required\r\n"
        b"Android Console: type 'auth <auth_token>' to authenticate\r\n"
        b"Android Console: you can find your <auth_token> in \r\n"
        + f"'{home / '.emulator_console_auth_token'}'\r\n".encode()
        + b"OK\r\n"
    )


HELP_PROMPT = b"Android Console: type 'help' for a list of commands\r\n"
AUTHED = HELP_PROMPT + b"OK\r\n"
AVD_HELP = (
    b"allows you to control (e.g. start/stop) the execution of the virtual device\r\n"
    b"\r\navailable sub-commands:\r\n"
    b"    status           query virtual device status\r\n"
    b"    name             query virtual device name\r\n"
    b"    snapshot         state snapshot commands\r\n"
    b"\r\n"
)


class Console:
    """A console server for one phone, on its own event loop in a thread (tests talk raw sockets)."""

    def __init__(self, phone: Phone, home: Path, **kwargs) -> None:
        self.phone, self.home = phone, home
        self.killed = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        start = serve_console(phone, port=0, home=home, on_kill=self.killed.set, **kwargs)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock

    def talk(self, data: bytes) -> bytes:
        """Send `data` on a new connection and return everything received until the console closes it."""
        with self.connect() as sock:
            sock.sendall(data)
            return read_to_eof(sock)


def read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while not data.endswith(marker):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}, waiting for {marker!r}"
        data += chunk
    return data


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".emulator_console_auth_token").write_text(TOKEN + "\n")  # trailing newline is trimmed
    return tmp_path


@pytest.fixture
def phone() -> Phone:
    return Phone(avd_name="Pixel_Test")


@pytest.fixture
def console(phone: Phone, home: Path) -> Iterator[Console]:
    server = Console(phone, home)
    yield server
    server.close()


def authed(commands: bytes) -> bytes:
    return b"auth " + TOKEN.encode() + b"\n" + commands + b"quit\n"


# ---- banner and authentication ------------------------------------------------------------------------
def test_auth_banner_is_byte_exact(console: Console, home: Path) -> None:
    assert console.talk(b"quit\n") == auth_banner(home)


def test_empty_token_file_turns_auth_off(phone: Phone, tmp_path: Path) -> None:
    (tmp_path / ".emulator_console_auth_token").write_text("")
    server = Console(phone, tmp_path)
    try:
        # With auth off the commands are the full set, which has no `auth` command at all.
        assert server.talk(b"avd status\nauth x\nquit\n") == (
            HELP_PROMPT + b"OK\r\n" + b"virtual device is running\r\nOK\r\n" + b"KO: unknown command, try 'help'\r\n"
        )
    finally:
        server.close()


def test_missing_token_file_is_created_with_a_random_token(phone: Phone, tmp_path: Path) -> None:
    server = Console(phone, tmp_path)
    try:
        path = tmp_path / ".emulator_console_auth_token"
        token = path.read_text()
        assert len(token) == 16 and not token.endswith("\n")  # 12 random bytes in base64, as the emulator
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        reply = server.talk(f"auth {token}\nping\nquit\n".encode())
        assert reply == auth_banner(tmp_path) + AUTHED + b"I am alive!\r\nOK\r\n"
    finally:
        server.close()


def test_wrong_token_is_refused_and_the_server_keeps_serving(console: Console, home: Path) -> None:
    with console.connect() as first:
        read_until(first, auth_banner(home))
        first.sendall(b"auth wrong\n")
        assert (
            read_until(first, b"\r\n") == b"KO: authentication token does not match ~/.emulator_console_auth_token\r\n"
        )
        first.sendall(b"kill\n")  # still unauthenticated: not even told that `kill` exists
        assert read_until(first, b"\r\n") == b"KO: unknown command, try 'help'\r\n"
        first.sendall(b"auth\n")
        assert read_until(first, b"\r\n") == b"KO: missing authentication token\r\n"
        # Another client is served meanwhile, and the first can still authenticate.
        assert console.talk(authed(b"ping\n")) == auth_banner(home) + AUTHED + b"I am alive!\r\nOK\r\n"
        first.sendall(f"auth {TOKEN}\n".encode())
        assert read_until(first, b"OK\r\n") == AUTHED


def test_token_must_match_exactly(console: Console, home: Path) -> None:
    mismatch = b"KO: authentication token does not match ~/.emulator_console_auth_token\r\n"
    reply = console.talk(f"auth {TOKEN[:-1]}\nauth {TOKEN}x\nauth {TOKEN} \nquit\n".encode())
    assert reply == auth_banner(home) + mismatch * 3


def test_commands_allowed_before_auth(console: Console, home: Path, phone: Phone) -> None:
    reply = console.talk(b"ping\navd name\navd status\nhelp\nexit\n")
    preauth_avd_help = (
        b"allows you to control (e.g. start/stop) the execution of the virtual device\r\n"
        b"\r\navailable sub-commands:\r\n"
        b"    name             query virtual device name\r\n"
        b"\r\n"
    )
    assert reply == auth_banner(home) + (
        b"I am alive!\r\nOK\r\n"
        b"Pixel_Test\r\nOK\r\n" + preauth_avd_help + b"KO:  bad sub-command\r\n" + b"Android console commands:\r\n"
        b"    help|h|?\r\n    help-verbose\r\n    ping\r\n    avd\r\n    auth\r\n    quit|exit\r\n"
        b"\r\nTry 'help-verbose' for more description\r\nTry 'help <command>' for command-specific help\r\n"
        b"OK\r\n"
    )


# ---- command replies ------------------------------------------------------------------------------------
def test_help_lists_the_commands_in_the_real_format(console: Console, home: Path) -> None:
    reply = console.talk(authed(b"help\nhelp-verbose\n"))
    assert reply == auth_banner(home) + AUTHED + (
        b"Android console commands:\r\n"
        b"    help|h|?\r\n    help-verbose\r\n    ping\r\n    gsm\r\n    kill\r\n    quit|exit\r\n    sms\r\n"
        b"    avd\r\n"
        b"\r\nTry 'help-verbose' for more description\r\nTry 'help <command>' for command-specific help\r\n"
        b"OK\r\n"
        b"Android console command help:\r\n\r\n"
        b"    help|h|?         print a list of commands\r\n"
        b"    help-verbose     print a list of commands with descriptions\r\n"
        b"    ping             check if the emulator is alive\r\n"
        b"    gsm              GSM related commands\r\n"
        b"    kill             kill the emulator instance\r\n"
        b"    quit|exit        quit control session\r\n"
        b"    sms              SMS related commands\r\n"
        b"    avd              control virtual device execution\r\n"
        b"\r\ntry 'help <command>' for command-specific help\r\n"
        b"OK\r\n"
    )


def test_help_for_one_command(console: Console, home: Path) -> None:
    reply = console.talk(authed(b"help avd snapshot\nh avd name\n? nope\n"))
    assert reply.startswith(auth_banner(home) + AUTHED)
    reply = reply[len(auth_banner(home) + AUTHED) :]
    snapshot_help = (
        b"allows you to save and restore the virtual device state in snapshots\r\n"
        b"\r\navailable sub-commands:\r\n"
        b"   avd snapshot list             list available state snapshots\r\n"
        b"   avd snapshot save             save state snapshot\r\n"
        b"   avd snapshot load             load state snapshot\r\n"
        b"   avd snapshot del              delete state snapshot\r\n"
        b"   avd snapshot delete           delete state snapshot\r\n"
        b"\r\nOK\r\n"
    )
    name_help = b"'avd name' will return the name of this virtual device\r\nOK\r\n"
    assert reply.startswith(snapshot_help + name_help + b"Android console commands:\r\n")
    assert reply.endswith(b"Try 'help <command>' for command-specific help\r\n\r\nKO: unknown command\r\n")


def test_errors_use_the_real_wording(console: Console, home: Path) -> None:
    reply = console.talk(authed(b"foo\n\nping \n avd\navd\navd bogus\n"))
    assert reply == auth_banner(home) + AUTHED + (
        b"KO: unknown command, try 'help'\r\n"  # foo
        b"KO: unknown command, try 'help'\r\n"  # an empty line
        b"I am alive!\r\nOK\r\n"  # trailing spaces are fine
        b"KO: unknown command, try 'help'\r\n"  # a leading space is not
        + AVD_HELP
        + b"KO: missing sub-command\r\n"
        + AVD_HELP
        + b"KO:  bad sub-command\r\n"
    )


def test_ping_status_and_name(console: Console, home: Path) -> None:
    reply = console.talk(authed(b"ping\navd status\navd  name\n"))
    assert reply == auth_banner(home) + AUTHED + (
        b"I am alive!\r\nOK\r\nvirtual device is running\r\nOK\r\nPixel_Test\r\nOK\r\n"
    )


def test_carriage_returns_are_dropped_and_lines_can_arrive_in_pieces(console: Console, home: Path) -> None:
    with console.connect() as sock:
        for piece in (b"auth ", TOKEN.encode(), b"\r\n", b"pi", b"\rn", b"g\r\n", b"quit\r\n"):
            sock.sendall(piece)
            time.sleep(0.01)
        assert read_to_eof(sock) == auth_banner(home) + AUTHED + b"I am alive!\r\nOK\r\n"


def test_an_overlong_line_wraps_like_the_emulator_buffer(console: Console, home: Path) -> None:
    # The emulator's 4096-byte line buffer restarts when full: of 4095 + 4 bytes, only "ping" is left.
    reply = console.talk(authed(b"x" * 4095 + b"ping\n"))
    assert reply == auth_banner(home) + AUTHED + b"I am alive!\r\nOK\r\n"


def test_http_request_is_forbidden_and_closes_the_connection(console: Console, home: Path) -> None:
    reply = console.talk(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert reply == auth_banner(home) + b"KO: Forbidden HTTP request. Aborting\r\n"
    assert console.talk(b"\xff\xfe\n") == auth_banner(home) + b"KO: Forbidden binary request. Aborting\r\n"
    assert console.talk(b"ping\nquit\n") == auth_banner(home) + b"I am alive!\r\nOK\r\n"


def test_kill_answers_then_calls_on_kill(console: Console, home: Path) -> None:
    reply = console.talk(f"auth {TOKEN}\nkill\n".encode())  # the console closes the connection
    assert reply == auth_banner(home) + AUTHED + b"OK: killing emulator, bye bye\r\nOK\r\n"
    assert console.killed.wait(5)


# ---- snapshots ------------------------------------------------------------------------------------------
def test_snapshot_save_change_load_restores(console: Console, home: Path, phone: Phone) -> None:
    phone.fs.write("/sdcard/Download/before.txt", b"kept")
    reply = console.talk(authed(b"avd snapshot save s1\n"))
    assert reply == auth_banner(home) + AUTHED + b"OK\r\n"

    phone.fs.write("/sdcard/Download/after.txt", b"dropped")
    phone.fs.remove("/sdcard/Download/before.txt")
    reply = console.talk(authed(b"avd snapshot load s1\n"))
    assert reply == auth_banner(home) + AUTHED + b"OK\r\n"
    assert phone.fs.read("/sdcard/Download/before.txt") == b"kept"
    assert not phone.fs.exists("/sdcard/Download/after.txt")


def test_snapshot_list_is_a_qemu_table(console: Console, home: Path) -> None:
    assert console.talk(authed(b"avd snapshot list\n")).endswith(b"There is no snapshot available.\r\nOK\r\n")
    reply = console.talk(authed(b"avd snapshot save clean\navd snapshot save other\navd snapshot list\n"))
    lines = reply[len(auth_banner(home) + AUTHED) :].split(b"\r\n")
    assert lines[:4] == [
        b"OK",
        b"OK",
        b"List of snapshots present on all disks:",
        b"ID        TAG                 VM SIZE                DATE       VM CLOCK",
    ]
    for line, name in zip(lines[4:6], (b"clean", b"other"), strict=True):
        assert line.startswith(b"--        " + name.ljust(20))
        assert len(line) == 72  # fixed-width columns: 10 + 20 + 7 + 20 + 15
    assert lines[6:] == [b"OK", b""]


def test_snapshot_table_matches_a_captured_emulator_row() -> None:
    created = time.mktime((2026, 9, 9, 11, 41, 45, 0, 0, -1))  # the table prints local time, like QEMU
    info = SnapshotInfo("default_boot", 75 * 1024 * 1024, created, 607_753)
    assert snapshot_table([info]) == (
        "List of snapshots present on all disks:\r\n"
        "ID        TAG                 VM SIZE                DATE       VM CLOCK\r\n"
        "--        default_boot            75M 2026-09-09 11:41:45   00:10:07.753\r\n"
    )


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1.0K"),
        (9728, "9.5K"),
        (12 * 1024, "12K"),
        (75 << 20, "75M"),
        (3 << 30, "3.0G"),
    ],
)
def test_snapshot_sizes_are_qemu_human_readable(size: int, text: str) -> None:
    assert human_size(size) == text


def test_snapshot_errors_use_the_real_wording(console: Console, home: Path) -> None:
    reply = console.talk(authed(b"avd snapshot save\navd snapshot load\navd snapshot del\navd snapshot load nope\n"))
    assert reply == auth_banner(home) + AUTHED + (
        b"KO: Argument missing, try 'avd snapshot save <name>'\r\n"
        b"KO: Argument missing, try 'avd snapshot load <name>'\r\n"
        b"KO: Argument missing, try 'avd snapshot list <name>'\r\n"
        b"KO: Device 'encrypt' does not have the requested snapshot 'nope'\r\n"
        b"KO: Snapshot load failure: snapshot doesn't exist\r\n"
    )


def test_snapshot_delete(console: Console, home: Path, phone: Phone) -> None:
    reply = console.talk(authed(b"avd snapshot save a\navd snapshot del a\navd snapshot delete missing\n"))
    # Like QEMU, deleting a snapshot that does not exist succeeds.
    assert reply == auth_banner(home) + AUTHED + b"OK\r\nOK\r\nOK\r\n"
    assert phone.list_snapshots() == []


def test_read_only_refuses_snapshot_changes(phone: Phone, home: Path) -> None:
    phone.save_snapshot("base")
    server = Console(phone, home, read_only=True)
    try:
        reply = server.talk(authed(b"avd snapshot save s\navd snapshot load base\navd snapshot del base\n"))
        assert reply == auth_banner(home) + AUTHED + (
            b'KO: Snapshot save is disabled because "-read-only" was specified\r\n'
            b'KO: Snapshot load is disabled because "-read-only" was specified\r\n'
            b'KO: Snapshot delete is disabled because "-read-only" was specified\r\n'
        )
        assert b"--        base" in server.talk(authed(b"avd snapshot list\n"))
    finally:
        server.close()


def test_unreadable_token_file_closes_connections_without_a_banner(
    phone: Phone, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / ".emulator_console_auth_token"
    path.mkdir()  # exists but cannot be read as a file
    server = Console(phone, tmp_path)
    try:
        assert f"ERROR: Unable to access '{path}': emulator console will not work" in capsys.readouterr().err
        with server.connect() as sock:
            assert read_to_eof(sock) == b""
    finally:
        server.close()
