"""`droidrl-emulator` acts like `emulator` for adb, `adb emu` and scripts: flags, ports, snapshots, exit."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AdbServer, free_port

from droidrl.envs.sim import emulator
from droidrl.envs.sim.phone import Phone

SERIAL = "emulator-5554"


def emulator_command() -> list[str]:
    script = Path(sys.executable).parent / "droidrl-emulator"  # the installed console script
    return [str(script)] if script.exists() else [sys.executable, "-m", "droidrl.envs.sim.emulator"]


class EmulatorProcess:
    """`droidrl-emulator ARGS` as a child process whose stdout is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*emulator_command(), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"droidrl-emulator never printed {text!r}:\n{self.output}\n{self.proc.stderr.read()}")
            time.sleep(0.02)

    def wait(self, timeout: float = 5) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"droidrl-emulator did not exit within {timeout}s:\n{self.output}")
        self.reader.join(5)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5) -> int:
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def emulators() -> Iterator[list[EmulatorProcess]]:
    """Started emulators register here; any still running at teardown are killed."""
    started: list[EmulatorProcess] = []
    yield started
    for process in started:
        process.kill()


def start(emulators: list[EmulatorProcess], args: list[str], env: dict[str, str]) -> EmulatorProcess:
    process = EmulatorProcess(args, env)
    emulators.append(process)
    process.wait_for("Boot completed")
    return process


@pytest.fixture
def standard_ports() -> None:
    """The adb-level tests use the real default pair 5554/5555 (adb derives the serial from it)."""
    for port in (5554, 5555, 5556, 5557):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as err:
                pytest.fail(
                    f"port {port} is in use ({err.strerror}): these tests need ports 5554-5557 free; "
                    "stop the emulator (or other program) holding it"
                )


def adb_ok(server: AdbServer, *args: str) -> bytes:
    result = server.adb("-s", SERIAL, *args)
    assert result.returncode == 0, f"adb {' '.join(args)} failed: {result.stderr.decode()}"
    return result.stdout


# ---- with the real adb ----------------------------------------------------------------------------------
@pytest.mark.adb
@pytest.mark.slow
def test_adb_discovers_the_emulator_and_adb_emu_drives_its_snapshots(
    adb_server: AdbServer, standard_ports: None, emulators: list[EmulatorProcess], tmp_path: Path
) -> None:
    home = Path(adb_server.env["HOME"])  # `adb emu` reads the console token from the same HOME
    args = ["-avd", "test", "-ports", "5554,5555", "-no-window", "-no-audio", "-no-boot-anim"]
    args += ["-gpu", "swiftshader_indirect", "-grpc", "8554", "-camera-back", "none"]
    process = start(emulators, args, adb_server.env)
    assert f"Serial number of this emulator (for ADB): {SERIAL}" in process.output

    adb_server.wait_for_device(SERIAL)  # found through the emulator's own announcement
    assert f"{SERIAL}\tdevice" in adb_server.adb("devices").stdout.decode()
    assert (home / ".emulator_console_auth_token").read_text()  # created by the console, used by adb

    assert adb_server.adb("emu", "avd", "name").stdout == b"test\r\nOK\r\n"
    assert adb_ok(adb_server, "emu", "avd", "snapshot", "save", "s1") == b"OK\r\n"
    local = tmp_path / "note.txt"
    local.write_text("written after s1")
    adb_ok(adb_server, "push", str(local), "/sdcard/Download/note.txt")
    adb_ok(adb_server, "pull", "/sdcard/Download/note.txt", str(tmp_path / "copy.txt"))
    assert adb_ok(adb_server, "emu", "avd", "snapshot", "load", "s1") == b"OK\r\n"
    assert adb_server.adb("-s", SERIAL, "pull", "/sdcard/Download/note.txt", str(tmp_path / "gone.txt")).returncode
    assert b"--        s1 " in adb_ok(adb_server, "emu", "avd", "snapshot", "list")

    assert process.stop(signal.SIGTERM) == 0
    assert "Saved snapshot 'default_boot' on exit" in process.output
    assert "Traceback" not in process.proc.stderr.read()  # open adb connections end quietly
    assert (home / ".android" / "avd" / "test.avd" / "snapshots" / "default_boot.snap").is_file()


@pytest.mark.adb
@pytest.mark.slow
def test_adb_emu_kill_exits_and_quickboot_restores_the_state(
    adb_server: AdbServer, standard_ports: None, emulators: list[EmulatorProcess], tmp_path: Path
) -> None:
    args = ["@pixel", "-port", "5554", "-no-window"]
    process = start(emulators, args, adb_server.env)
    adb_server.wait_for_device(SERIAL)
    local = tmp_path / "note.txt"
    local.write_text("kept by default_boot")
    adb_ok(adb_server, "push", str(local), "/sdcard/Download/note.txt")
    assert adb_server.adb("emu", "kill").stdout == b"OK: killing emulator, bye bye\r\nOK\r\n"
    assert process.wait() == 0

    # A restart loads the quickboot snapshot saved on exit.
    process = start(emulators, args, adb_server.env)
    adb_server.wait_for_device(SERIAL)
    adb_ok(adb_server, "pull", "/sdcard/Download/note.txt", str(tmp_path / "copy.txt"))
    assert (tmp_path / "copy.txt").read_text() == "kept by default_boot"
    assert process.stop(signal.SIGINT) == 0

    # A cold boot does not.
    process = start(emulators, [*args, "-no-snapshot-load", "-no-snapshot-save"], adb_server.env)
    adb_server.wait_for_device(SERIAL)
    assert adb_server.adb("-s", SERIAL, "pull", "/sdcard/Download/note.txt", str(tmp_path / "x")).returncode
    assert process.stop() == 0


# ---- processes without adb ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_second_emulator_on_the_same_avd_needs_read_only(tmp_path: Path, emulators: list[EmulatorProcess]) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "ANDROID_ADB_SERVER_PORT": str(free_port())}
    first = start(emulators, ["-avd", "shared", "-ports", f"{free_port()},{free_port()}"], env)
    second = EmulatorProcess(["-avd", "shared", "-ports", f"{free_port()},{free_port()}"], env)
    emulators.append(second)
    assert second.wait() == 1
    assert "AVD 'shared' is already in use" in second.proc.stderr.read()

    third = start(emulators, ["-avd", "shared", "-read-only", "-ports", f"{free_port()},{free_port()}"], env)
    assert third.stop() == 0
    assert "Saved snapshot" not in third.output  # -read-only never writes
    assert first.stop() == 0
    assert "Saved snapshot 'default_boot' on exit" in first.output


def test_a_taken_port_fails_fast_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ANDROID_AVD_HOME", raising=False)
    monkeypatch.delenv("ANDROID_EMULATOR_HOME", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert emulator.main(["-avd", "x", "-ports", f"{port},{free_port()}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR   | -ports: cannot listen on console port")
    assert f"console port {port}: address already in use" in err


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["-ports", "5554"], "-ports"),
        (["-ports", "5554,abc"], "-ports"),
        (["-ports", "5554,5554"], "-ports"),
        (["-port", "70000"], "-port"),
        (["-count", "0"], "-count"),
        (["-gpu", "fancy"], "-gpu"),
        (["-screen", "big"], "-screen"),
        (["-density", "x"], "-density"),
        (["-grpc", "port"], "-grpc"),
        (["-bogus"], "-bogus"),
    ],
)
def test_bad_flag_values_name_the_flag(args: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        emulator.main(["-avd", "x", *args])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR   | ") and flag in err


def test_avd_is_required_and_port_flags_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert emulator.main(["-no-window"]) == 1
    assert "-avd NAME" in capsys.readouterr().err
    assert emulator.main(["-avd", "x", "-port", "5554", "-ports", "5554,5555"]) == 1
    assert "options -port and -ports cannot be used together." in capsys.readouterr().err


def test_options_follow_the_real_emulator() -> None:
    def options(*args: str) -> emulator.Options:
        return emulator.to_options(emulator.parse_args(list(args)))

    opts = options("@Pixel_9", "-port", "5560", "-no-window", "-memory", "2048", "-qemu", "-m", "2048")
    assert (opts.avd, opts.console_port, opts.adb_port, opts.port_flag) == ("Pixel_9", 5560, 5561, "-port")
    assert (opts.snapshot_load, opts.snapshot_save, opts.count) == (True, True, 1)

    opts = options("-avd", "a", "-ports", "5580,5581", "-count", "3", "-screen", "720x1280", "-density", "320")
    assert (opts.console_port, opts.adb_port, opts.count) == (5580, 5581, 3)
    assert (opts.width, opts.height, opts.density) == (720, 1280, 320)
    assert options("-avd", "a", "-screen", "multi-touch").width is None  # the real touch-mode values

    assert not options("-avd", "a", "-no-snapshot").snapshot_load
    assert not options("-avd", "a", "-no-snapshot").snapshot_save
    assert not options("-avd", "a", "-read-only").snapshot_save
    assert not options("-avd", "a", "-wipe-data").snapshot_load
    assert options("-avd", "a", "-snapshot", "clean").snapshot == "clean"


def test_avd_directory_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ANDROID_AVD_HOME", raising=False)
    monkeypatch.delenv("ANDROID_EMULATOR_HOME", raising=False)
    assert emulator.avd_home() == tmp_path / ".android" / "avd"
    monkeypatch.setenv("ANDROID_EMULATOR_HOME", str(tmp_path / "emu"))
    assert emulator.avd_home() == tmp_path / "emu" / "avd"
    monkeypatch.setenv("ANDROID_AVD_HOME", str(tmp_path / "avds"))
    assert emulator.avd_home() == tmp_path / "avds"

    avd = tmp_path / "avds" / "x.avd"
    assert emulator.snapshot_dir(avd, 0) == avd / "snapshots"
    assert emulator.snapshot_dir(avd, 2) == avd / "instance-2" / "snapshots"


def test_named_boot_snapshot_and_wipe_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANDROID_AVD_HOME", str(tmp_path))
    snapshots = emulator.snapshot_dir(tmp_path / "a.avd", 0)
    phone = Phone(avd_name="a", snapshot_dir=snapshots)
    phone.fs.write("/sdcard/marker", b"1")
    phone.save_snapshot("clean")

    booted = emulator.make_phone(
        emulator.to_options(emulator.parse_args(["-avd", "a", "-snapshot", "clean"])), snapshots
    )
    assert booted.fs.read("/sdcard/marker") == b"1"
    emulator.wipe(tmp_path / "a.avd")
    assert not snapshots.exists()


def test_free_ports_are_picked_from_5554_skipping_busy_ones(standard_ports: None) -> None:
    async def pick() -> list[tuple[int, int]]:
        opts = emulator.to_options(emulator.parse_args(["-avd", "a", "-count", "1"]))
        started = await emulator.start_emulators([Phone()], opts, on_kill=lambda: None)
        ports = [(e.console_port, e.adb_port) for e in started]
        for e in started:
            for server in e.servers:
                server.close()
        return ports

    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # an earlier test may leave TIME_WAIT
        busy.bind(("127.0.0.1", 5555))  # the adb port of the first pair
        busy.listen()
        assert asyncio.run(pick()) == [(5556, 5557)]
