"""The simulated phone keeps a VM's boundary: nothing a device-side command, a console command or a
snapshot file does reaches the host outside the phone's own state, or stalls other clients and phones.

Each test tries what a user (or an attacker on the unauthenticated adb port) would try, and checks that
the host path was not created or read, that the answer is the device's own error, and that the phone
keeps answering.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AdbServer, ThreadedEmulator, free_port, free_port_pair

from droidrl.envs.sim.adbd import serve_adbd
from droidrl.envs.sim.console import SNAPSHOT_DEVICE
from droidrl.envs.sim.phone import Phone, SnapshotInfo

TOKEN = "h5-console-token"
DB = "/data/local/tmp/probe.db"
# sqlite3 3.40's messages: the authorizer refuses at prepare; VACUUM INTO's own ATTACH is refused when it runs.
NOT_AUTHORIZED = b"Error: in prepare, not authorized (23)\n"
AUTH_DENIED = b"Error: stepping, authorization denied (23)\n"


class _Touch:
    """A pickle that creates a file when it is loaded: proof that loading it ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def run_bounded(phone: Phone, command: str, timeout: float = 60):
    """phone.shell(command) in a thread; fails (instead of hanging) if it does not end within `timeout`."""
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = phone.shell(command)
        except BaseException as err:  # the test reports it; a crash is a failure, not a hang
            box["error"] = err

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{command!r} still running after {timeout}s: not bounded"
    assert "error" not in box, f"{command!r} crashed the shell: {box.get('error')!r}"
    return box["result"]


def answers(phone: Phone) -> None:
    result = run_bounded(phone, "echo still here", timeout=30)
    assert (result.stdout, result.exit_code) == (b"still here\n", 0)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """One second of CPU per command line, so runaway commands end quickly in tests."""
    monkeypatch.setattr("droidrl.envs.sim.limits.CPU_SECONDS", 1.0)


# ---- sqlite3 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH '{host}' AS x; CREATE TABLE x.t(a);",
        "ATTACH 'file:{host}?mode=rwc' AS x; CREATE TABLE x.t(a);",
        "VACUUM INTO '{host}';",
    ],
    ids=["attach", "attach-uri", "vacuum-into"],
)
def test_sqlite3_cannot_create_host_files(sim_phone: Phone, tmp_path: Path, sql: str) -> None:
    host = tmp_path / "stolen.db"
    assert run_bounded(sim_phone, f'sqlite3 {DB} "CREATE TABLE t(a); INSERT INTO t VALUES(1);"').exit_code == 0
    result = run_bounded(sim_phone, f'sqlite3 {DB} "{sql.format(host=host)}"')
    assert not host.exists() and not list(tmp_path.iterdir())
    assert result.stderr == (AUTH_DENIED if sql.startswith("VACUUM") else NOT_AUTHORIZED)
    assert result.exit_code == 1
    assert run_bounded(sim_phone, f'sqlite3 {DB} "SELECT a FROM t"').stdout == b"1\n"  # the database is intact
    answers(sim_phone)


def test_sqlite3_cannot_attach_an_existing_host_database(sim_phone: Phone, tmp_path: Path) -> None:
    import sqlite3

    host = tmp_path / "secret.db"
    with sqlite3.connect(host) as conn:
        conn.execute("CREATE TABLE secret(v)")
        conn.execute("INSERT INTO secret VALUES ('host data')")
    conn.close()
    result = run_bounded(sim_phone, f"sqlite3 {DB} \"ATTACH '{host}' AS h; SELECT v FROM h.secret;\"")
    assert b"host data" not in result.stdout
    assert result.stderr == NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("pragma", "denied"),
    [
        ("PRAGMA temp_store_directory = '{tmp}'", True),  # temporary files into any host directory
        ("PRAGMA data_store_directory = '{tmp}'", True),
        ("PRAGMA soft_heap_limit = 1", True),  # process-wide: every other phone's databases
        ("PRAGMA hard_heap_limit = 1", True),
        ("PRAGMA temp_store = FILE", True),  # temporary tables back on the host's disk
        ("PRAGMA max_page_count = 2147483647", True),  # lifts the in-memory size bound
        ("PRAGMA temp_store", False),  # reading is fine: 2 = MEMORY
    ],
)
def test_sqlite3_pragmas_that_reach_the_host_are_refused(
    sim_phone: Phone, tmp_path: Path, pragma: str, denied: bool
) -> None:
    result = run_bounded(sim_phone, f'sqlite3 {DB} "{pragma.format(tmp=tmp_path)}"')
    if denied:
        assert (result.stderr, result.exit_code) == (NOT_AUTHORIZED, 1)
    else:
        assert (result.stdout, result.exit_code) == (b"2\n", 0)
    assert not list(tmp_path.iterdir())


def test_sqlite3_extension_functions_are_refused(sim_phone: Phone, tmp_path: Path) -> None:
    for sql in (f"SELECT load_extension('{tmp_path}/x.so')", "SELECT fts3_tokenizer('simple', x'00')"):
        result = run_bounded(sim_phone, f'sqlite3 {DB} "{sql}"')
        assert result.exit_code == 1 and result.stderr.startswith(b"Error: in prepare, "), result


@pytest.mark.parametrize("dot", [".output", ".once", ".open", ".backup", ".save", ".import", ".read", ".shell touch"])
def test_sqlite3_dot_commands_never_touch_host_files(sim_phone: Phone, tmp_path: Path, dot: str) -> None:
    """A guard (these were already unknown to the simulated sqlite3): host paths stay untouched."""
    target = tmp_path / "target"
    result = run_bounded(sim_phone, f"sqlite3 {DB} '{dot} {target}'")
    assert not target.exists()
    assert b"Error: unknown command or invalid arguments" in result.stderr
    answers(sim_phone)


def test_apps_databases_are_confined_by_the_same_opener(sim_phone: Phone, tmp_path: Path) -> None:
    """Apps and `content` open databases through the VFS too: the restriction lives there, once."""
    import sqlite3

    host = tmp_path / "app.db"
    with sim_phone.lock, sim_phone.fs.sqlite("/data/data/com.example/databases/x.db") as conn:
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            conn.execute(f"ATTACH '{host}' AS x")
        assert conn.execute("PRAGMA temp_store").fetchone() == (2,)
    assert not host.exists()


@pytest.mark.slow
def test_a_runaway_query_is_killed_and_the_phone_answers(sim_phone: Phone, small_budget: None) -> None:
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c;"
    result = run_bounded(sim_phone, f'sqlite3 {DB} "{sql}"')
    assert result.exit_code == 152  # 128 + SIGXCPU, as for a process past its CPU limit
    assert result.stderr.endswith(b"CPU time limit exceeded\n")
    answers(sim_phone)


@pytest.mark.adb
def test_sqlite3_over_real_adb_cannot_write_the_host(emulator: ThreadedEmulator, adb_server: AdbServer, tmp_path):
    host = tmp_path / "via-adb.db"
    result = adb_server.adb("-s", emulator.serial, "shell", f"sqlite3 {DB} \"VACUUM INTO '{host}'\"")
    assert result.stdout + result.stderr == AUTH_DENIED
    assert result.returncode == 1
    assert not host.exists()
    assert adb_server.adb("-s", emulator.serial, "shell", "echo ok").stdout == b"ok\n"


# ---- shell work is bounded in time and memory ----------------------------------------------------------
@pytest.mark.parametrize(
    "script",
    [
        "while true; do :; done",
        "i=0; while [ $i -ge 0 ]; do i=$((i+1)); done",
        "for a in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
        "for b in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
        "for c in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
        "for d in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
        "for e in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo $a$b$c$d$e > /dev/null; "
        "done; done; done; done; done",
        "sh -c 'until false; do true; done'",
    ],
    ids=["while-true", "counter", "nested-for", "in-sh-c"],
)
@pytest.mark.slow
def test_endless_loops_are_killed_like_a_process_past_its_cpu_limit(
    sim_phone: Phone, small_budget: None, script: str
) -> None:
    result = run_bounded(sim_phone, f"{script}; echo not reached")
    assert result.exit_code == 152
    assert result.stderr == b"CPU time limit exceeded\n"
    assert b"not reached" not in result.stdout
    answers(sim_phone)


@pytest.mark.slow
def test_a_catastrophic_regex_is_cut_by_the_cpu_budget_and_stalls_no_one(sim_phone: Phone, small_budget: None) -> None:
    """`(a|aa)+b` backtracks exponentially on a run of a's; Python's `re` would hold the GIL for seconds."""
    sim_phone.fs.write("/data/local/tmp/as", b"a" * 35 + b"\n")
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(r=sim_phone.shell("grep -E '(a|aa)+b' /data/local/tmp/as")))
    started = time.monotonic()
    thread.start()
    longest_gap, last = 0.0, time.monotonic()
    while thread.is_alive() and time.monotonic() - started < 60:
        time.sleep(0.01)  # this thread needs the GIL back after each nap
        now = time.monotonic()
        longest_gap, last = max(longest_gap, now - last), now
    thread.join(60)
    assert (box["r"].exit_code, box["r"].stderr) == (152, b"CPU time limit exceeded\n")
    assert longest_gap < 2.5, f"other threads stalled {longest_gap:.1f}s while grep matched"  # `re`: about 6 s
    assert sim_phone.shell("echo aab | grep -E '(a|aa)+b'").stdout == b"aab\n"


def test_arithmetic_is_mksh_32_bit_so_shifts_cannot_grow(sim_phone: Phone) -> None:
    result = run_bounded(sim_phone, "echo $((1<<40)) $((1<<100000000)) $((2147483647+1)) $((65536*65536))")
    assert (result.stdout, result.stderr) == (b"256 1 -2147483648 0\n", b"")
    result = run_bounded(sim_phone, "n=1099511627776; echo $((1<<n)) $((n*n*n*n))")
    assert result.stdout == b"1 0\n"


@pytest.mark.parametrize(
    "script",
    [
        "x=a; while true; do x=$x$x; done",  # a variable doubling
        'x=a; while true; do x="$x $x"; export y=$x; done',
        "x=0123456789; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do x=$x$x; done; "
        "while true; do echo $x; done",  # an output nobody reads
        "printf '%999999999s' x",  # padding built before it is printed
        "x=0123456789; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do x=$x$x; done; "
        "y=$x$x$x$x$x$x$x$x$x$x",  # one word past the limit
    ],
    ids=["doubling", "doubling-export", "endless-output", "printf-width", "one-huge-word"],
)
@pytest.mark.slow
def test_memory_blow_ups_end_with_out_of_memory(sim_phone: Phone, small_budget: None, script: str) -> None:
    from droidrl.envs.sim import limits

    result = run_bounded(sim_phone, f"{script}; echo not reached")
    assert result.exit_code in (1, 152)  # out of memory, or the CPU limit if this machine is slow
    assert result.stderr.endswith((b"/system/bin/sh: out of memory\n", b"CPU time limit exceeded\n"))
    assert b"not reached" not in result.stdout
    assert len(result.stdout) <= limits.STREAM_LIMIT
    answers(sim_phone)


def test_a_script_that_runs_itself_ends_without_a_traceback(sim_phone: Phone) -> None:
    result = run_bounded(
        sim_phone, "echo 'sh /data/local/tmp/again.sh' > /data/local/tmp/again.sh; sh /data/local/tmp/again.sh"
    )
    assert result.stderr == b"/system/bin/sh: out of memory\n"
    assert result.exit_code == 1
    result = run_bounded(sim_phone, 'x=\'eval "$x"\'; eval "$x"')
    assert result.stderr == b"/system/bin/sh: out of memory\n"
    answers(sim_phone)


@pytest.mark.slow
def test_sleep_does_not_hold_the_phone(sim_phone: Phone) -> None:
    """In-process clients (SimDevice, the gRPC server, the console) keep working during a `sleep`."""
    sleeper = threading.Thread(target=sim_phone.shell, args=("sleep 3",), daemon=True)
    sleeper.start()
    time.sleep(0.3)
    assert sim_phone.shell("echo hi").stdout == b"hi\n"
    sim_phone.tap(540, 1200)
    sim_phone.save_snapshot("during-sleep")
    assert sleeper.is_alive(), "the other calls waited for the sleep to end"
    sleeper.join(10)


@pytest.mark.adb
@pytest.mark.slow
def test_sleep_on_one_adb_connection_does_not_stall_another(emulator: ThreadedEmulator, adb_server: AdbServer):
    adb = [adb_server.adb_path, "-P", str(adb_server.port), "-s", emulator.serial]
    script = "touch /data/local/tmp/asleep; sleep 5; echo slept"
    sleeper = subprocess.Popen([*adb, "shell", script], env=adb_server.env, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not emulator.phone.fs.exists("/data/local/tmp/asleep") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert adb_server.adb("-s", emulator.serial, "shell", "echo quick").stdout == b"quick\n"
        assert sleeper.poll() is None, "`echo` only answered after the `sleep 5` had finished"
        assert sleeper.communicate(timeout=30)[0] == b"slept\n"
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.adb
@pytest.mark.slow
def test_a_busy_loop_on_one_connection_leaves_other_connections_answering(
    emulator: ThreadedEmulator, adb_server: AdbServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("droidrl.envs.sim.limits.CPU_SECONDS", 4.0)
    adb = [adb_server.adb_path, "-P", str(adb_server.port), "-s", emulator.serial]
    busy = subprocess.Popen(
        [*adb, "shell", "while :; do :; done"], env=adb_server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(0.5)
        assert adb_server.adb("-s", emulator.serial, "shell", "echo alive", timeout=20).stdout == b"alive\n"
        assert busy.poll() is None, "the busy loop had already ended: the test proved nothing"
        out, err = busy.communicate(timeout=60)
        assert (busy.returncode, out, err) == (152, b"", b"CPU time limit exceeded\n")
    finally:
        busy.kill()
        busy.wait()


@pytest.fixture
def two_phones_one_loop(adb_server: AdbServer) -> Iterator[tuple[Phone, str, Phone, str]]:
    """Two phones whose adbds share one event loop (and its default thread pool), as `-count 2` runs them."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    phones, serials, servers = [Phone(), Phone()], [], []
    for phone in phones:
        port = free_port()
        servers.append(asyncio.run_coroutine_threadsafe(serve_adbd(phone, "127.0.0.1", port), loop).result(10))
        serial = f"127.0.0.1:{port}"
        assert adb_server.adb("connect", serial).stdout.startswith(b"connected")
        serials.append(serial)
    yield phones[0], serials[0], phones[1], serials[1]
    for serial in serials:
        adb_server.adb("disconnect", serial)

    async def shutdown() -> None:
        for server in servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.mark.adb
@pytest.mark.slow
def test_sleeping_connections_do_not_starve_other_phones(two_phones_one_loop, adb_server: AdbServer) -> None:
    _, busy_serial, _, other_serial = two_phones_one_loop
    adb = [adb_server.adb_path, "-P", str(adb_server.port)]
    sleepers = [
        subprocess.Popen([*adb, "-s", busy_serial, "shell", "sleep 6"], env=adb_server.env) for _ in range(10)
    ]  # more than the event loop's default thread pool has threads
    try:
        time.sleep(1.0)
        pushed = adb_server.adb("-s", other_serial, "shell", "echo other phone", timeout=30)
        assert pushed.stdout == b"other phone\n"
        assert adb_server.adb("-s", busy_serial, "shell", "echo same phone", timeout=30).stdout == b"same phone\n"
        assert all(s.poll() is None for s in sleepers), "the sleepers had ended first: the phones were stalled"
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


# ---- snapshots ------------------------------------------------------------------------------------------
def _console(port: int, commands: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"auth {TOKEN}\n{commands}quit\n".encode())
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


@pytest.fixture
def avd_emulator(tmp_path: Path) -> Iterator[ThreadedEmulator]:
    """A phone keeping snapshots in tmp `avd/snapshots`, with its console (and adbd) in this process."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".emulator_console_auth_token").write_text(TOKEN)
    emu = ThreadedEmulator(Phone(snapshot_dir=tmp_path / "avd" / "snapshots"), home)
    yield emu
    emu.kill()


def _snapshot_missing(name: str) -> bytes:
    return (
        f"KO: Device '{SNAPSHOT_DEVICE}' does not have the requested snapshot '{name}'\r\n"
        "KO: Snapshot load failure: snapshot doesn't exist\r\n"
    ).encode()


def test_console_snapshot_load_cannot_unpickle_files_outside_the_avd(avd_emulator: ThreadedEmulator, tmp_path):
    marker = tmp_path / "code-ran"
    (tmp_path / "avd" / "snapshots").mkdir(parents=True)
    (tmp_path / "avd" / "evil.snap").write_bytes(pickle.dumps(_Touch(marker)))
    (tmp_path / "abs.snap").write_bytes(pickle.dumps(_Touch(marker)))
    absolute = str(tmp_path / "abs")
    reply = _console(avd_emulator.console_port, f"avd snapshot load ../evil\navd snapshot load {absolute}\nping\n")
    assert not marker.exists(), "loading a snapshot ran code from a host file"
    assert _snapshot_missing("../evil") in reply and _snapshot_missing(absolute) in reply
    assert reply.endswith(b"I am alive!\r\nOK\r\n")


def test_console_snapshot_names_stay_inside_the_snapshot_directory(avd_emulator: ThreadedEmulator, tmp_path):
    victim = tmp_path / "avd" / "victim.snap"
    (tmp_path / "avd" / "snapshots").mkdir(parents=True)  # so that `snapshots/../victim.snap` resolves
    victim.write_bytes(pickle.dumps((SnapshotInfo("victim", 1, 0.0, 0), b"x")))  # an old-format snapshot file
    reply = _console(
        avd_emulator.console_port,
        "avd snapshot save ../escape\navd snapshot delete ../victim\navd snapshot del ../victim\nping\n",
    )
    assert victim.exists(), "`avd snapshot delete ../victim` deleted a file outside the snapshot directory"
    assert not (tmp_path / "avd" / "escape.snap").exists()
    assert (
        f"KO: Error while creating snapshot on '{SNAPSHOT_DEVICE}': invalid snapshot name '../escape'".encode() in reply
    )
    assert reply.endswith(b"I am alive!\r\nOK\r\n")


def test_corrupt_snapshot_gives_the_load_failure_and_keeps_the_phone(avd_emulator: ThreadedEmulator, tmp_path):
    marker = tmp_path / "code-ran"
    snapshots = tmp_path / "avd" / "snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / "pickled.snap").write_bytes(pickle.dumps(_Touch(marker)))  # the old format, or an attack
    (snapshots / "garbage.snap").write_bytes(b"\x00" * 100)
    before = avd_emulator.phone.shell("ls /sdcard").stdout
    reply = _console(avd_emulator.console_port, "avd snapshot load pickled\navd snapshot load garbage\nping\n")
    assert not marker.exists()
    assert reply.count(b"KO: Snapshot load failure: snapshot data is invalid\r\n") == 2
    assert b"There is no snapshot available." in _console(avd_emulator.console_port, "avd snapshot list\n")
    assert avd_emulator.phone.shell("ls /sdcard").stdout == before
    assert reply.endswith(b"I am alive!\r\nOK\r\n")


def test_snapshot_files_are_data_not_pickles(tmp_path: Path) -> None:
    phone = Phone(snapshot_dir=tmp_path)
    phone.shell("echo kept > /sdcard/Download/note.txt")
    phone.save_snapshot("s1")
    data = (tmp_path / "s1.snap").read_bytes()
    assert not data.startswith(b"\x80")  # pickle's PROTO opcode
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    again = Phone(snapshot_dir=tmp_path)
    again.load_snapshot("s1")
    assert again.shell("cat /sdcard/Download/note.txt").stdout == b"kept\n"


def test_a_snapshot_keeps_adbd_running_as_root(tmp_path: Path) -> None:
    """adbd's user belongs to the VM's processes, which a snapshot saves and restores; a cold boot is shell."""
    phone = Phone(snapshot_dir=tmp_path)
    phone.adb_root = True
    phone.save_snapshot("rooted")
    phone.adb_root = False
    phone.save_snapshot("plain")
    phone.load_snapshot("rooted")
    assert phone.adb_root and phone.shell("whoami").stdout == b"root\n"
    phone.load_snapshot("plain")
    assert not phone.adb_root
    again = Phone(snapshot_dir=tmp_path)  # a new emulator process reading the saved files
    assert not again.adb_root and again.shell("whoami").stdout == b"shell\n"
    again.load_snapshot("rooted")
    assert again.shell("whoami").stdout == b"root\n"


def _emulator_command() -> list[str]:
    script = Path(sys.executable).parent / "droidrl-emulator"
    return [str(script)] if script.exists() else [sys.executable, "-m", "droidrl.envs.sim.emulator"]


@pytest.mark.parametrize("how", ["quickboot", "named"])
@pytest.mark.slow
def test_droidrl_emulator_cold_boots_from_a_foreign_snapshot_file(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "code-ran"
    avd_home = tmp_path / "avd-home"
    snapshots = avd_home / "h5.avd" / "snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / "default_boot.snap").write_bytes(pickle.dumps(_Touch(marker)))
    (avd_home / "h5.avd" / "evil.snap").write_bytes(pickle.dumps(_Touch(marker)))
    port = free_port_pair()
    args = ["-avd", "h5", "-ports", f"{port},{port + 1}", "-no-window", "-no-snapshot-save"]
    args += ["-snapshot", "../evil"] if how == "named" else []
    env = {"HOME": str(tmp_path), "ANDROID_AVD_HOME": str(avd_home), "ANDROID_ADB_SERVER_PORT": str(free_port())}
    env["PATH"] = "/usr/bin:/bin"
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")  # whichever droidrl this test run imports
    proc = subprocess.Popen([*_emulator_command(), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        output = _read_until(proc, b"Boot completed" if how == "quickboot" else b"ERROR", timeout=60)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    output += out
    assert not marker.exists(), "the emulator ran code from a snapshot file"
    assert b"Traceback" not in err, err.decode()
    if how == "quickboot":
        assert b"WARNING" in output and b"cold booting" in output, output.decode()
    else:
        assert proc.returncode == 1 and b"-snapshot: invalid snapshot name" in output + err


def _read_until(proc: subprocess.Popen, text: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
    return seen


@pytest.mark.adb
def test_a_command_whose_client_went_away_stops(emulator: ThreadedEmulator, adb_server: AdbServer) -> None:
    """Killing `adb shell 'sleep 60'` ends the sleep on the phone too (adbd hangs up on its process)."""
    adb = [adb_server.adb_path, "-P", str(adb_server.port), "-s", emulator.serial]
    mine = f"sh-{id(emulator.phone):x}"

    def running() -> int:
        return sum(t.name == mine for t in threading.enumerate())

    sleeper = subprocess.Popen([*adb, "shell", "sleep 60"], env=adb_server.env)
    deadline = time.monotonic() + 10
    while not running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running() == 1, "the command line did not run in a thread of its own"
    sleeper.kill()
    sleeper.wait()
    deadline = time.monotonic() + 20
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(), "the sleep went on after its client had gone"
