"""SimDevice and AdbDevice (over Debian's adb and the emulator console) behave identically.

The AdbDevice side is a simulated phone served like an emulator: adbd on port N+1 and the console on
port N, announced to a private real adb server, which lists it as emulator-N.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import AdbServer, ThreadedEmulator, free_port_pair

from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.checker import check_device
from droidrl.envs.device import Device, text_chunks
from droidrl.envs.errors import (
    ConsoleAuthError,
    DeviceCommandError,
    DeviceUnavailable,
    FileNotFoundOnDevice,
    SnapshotError,
)
from droidrl.envs.sim.phone import Phone
from droidrl.envs.sim_device import SimDevice

SEARCH = "open_search_view_edit_text"  # the contacts app's search field
CANARY = "/data/local/tmp/canary"
TOUCH = f"touch {CANARY}"


@pytest.fixture
def sim_device() -> SimDevice:
    return SimDevice()


@pytest.fixture
def pair(sim_device: SimDevice, adb_device: AdbDevice) -> tuple[SimDevice, AdbDevice]:
    return sim_device, adb_device


# ---- helpers -------------------------------------------------------------------------------------
def assert_same(sim: SimDevice, adb: AdbDevice, *, pixels: bool = True) -> None:
    xml = sim.ui_xml()
    assert adb.ui_xml() == xml
    assert adb.current_app() == sim.current_app()
    if pixels:
        assert np.array_equal(adb.screenshot(), sim.screenshot())


def centre(sim: SimDevice, **query: str) -> tuple[int, int]:
    node = sim.phone.find(**query)
    assert node is not None, query
    return node.center


def field_text(xml: str, rid: str) -> str:
    for node in ET.fromstring(xml.encode()).iter("node"):
        if node.get("resource-id", "").endswith(rid):
            return node.get("text", "")
    raise AssertionError(f"no node {rid} in the UI dump")


def canary_exists(device: Device) -> bool:
    try:
        device.pull(CANARY)
    except FileNotFoundOnDevice:
        return False
    return True


def open_search(*devices: Device, sim: SimDevice) -> None:
    """Open the contacts app and focus its search field on each device (positions read from `sim`)."""
    for device in devices:
        device.launch("com.google.android.contacts")
    x, y = centre(sim, rid=SEARCH)
    for device in devices:
        device.tap(x, y)


# ---- the same actions give the same observations -------------------------------------------------
@pytest.mark.adb
def test_same_actions_same_screens_and_xml(pair: tuple[SimDevice, AdbDevice]) -> None:
    sim, adb = pair
    both = (sim, adb)
    assert adb.size == sim.size == (1080, 2400)
    assert_same(sim, adb)

    for device in both:
        device.launch("com.android.settings")
    assert adb.current_app() == "com.android.settings"
    assert_same(sim, adb)

    for text in ("Display", "Dark theme"):
        x, y = centre(sim, text=text)
        for device in both:
            device.tap(x, y)
    assert_same(sim, adb)

    for device in both:
        device.swipe(540, 1800, 540, 900, 300)
    assert_same(sim, adb)

    for device in both:
        device.key("BACK")
        device.key(4)
    assert_same(sim, adb)

    for device in both:
        device.key("KEYCODE_HOME")
    x, y = centre(sim, text="Contacts")
    for device in both:
        device.long_press(x, y, 1000)
    assert_same(sim, adb)

    open_search(sim, adb, sim=sim)
    for device in both:
        device.type_text('Ann\'s; $(reboot) `id` "q" & | > x 中文 😀')
    assert_same(sim, adb)
    for device in both:
        device.clear_text()
        device.type_text("Bob")
        device.key("ENTER")
    assert_same(sim, adb)

    for device in both:
        device.key("HOME")
    assert adb.current_app() == sim.current_app() == "com.google.android.apps.nexuslauncher"
    assert_same(sim, adb)


@pytest.mark.adb
def test_files_and_shell_are_the_same(pair: tuple[SimDevice, AdbDevice]) -> None:
    sim, adb = pair
    data = bytes(range(256)) * 100
    for device in pair:
        device.push("/sdcard/Download/blob.bin", data)
        assert device.pull("/sdcard/Download/blob.bin") == data
        device.push("/sdcard/new/dir/x.txt", b"parents are created")
        assert device.pull("/sdcard/new/dir/x.txt") == b"parents are created"
    assert adb.shell("ls -l /sdcard/Download/blob.bin") == sim.shell("ls -l /sdcard/Download/blob.bin")
    assert adb.shell("echo out; echo err >&2; exit 3") == sim.shell("echo out; echo err >&2; exit 3") == "out\nerr\n"

    for device in pair:
        with pytest.raises(FileNotFoundOnDevice, match=r"^cannot pull /nope from .*: open failed: No such file"):
            device.pull("/nope")
        with pytest.raises(FileNotFoundOnDevice, match="Is a directory"):
            device.pull("/sdcard")
        with pytest.raises(DeviceCommandError, match=r"^cannot launch 'com\.example\.missing' on "):
            device.launch("com.example.missing")
        with pytest.raises(ValueError, match="invalid key name"):
            device.key("BACK; reboot")
    with pytest.raises(DeviceCommandError, match="cannot push /sdcard"):
        sim.push("/sdcard", b"x")
    with pytest.raises(DeviceCommandError):
        adb.push("/sdcard", b"x")


# ---- snapshots -----------------------------------------------------------------------------------
@pytest.mark.adb
def test_snapshots_restore_both_devices_identically(pair: tuple[SimDevice, AdbDevice]) -> None:
    sim, adb = pair
    for device in pair:
        device.launch("com.android.settings")
        device.push("/sdcard/Download/keep.txt", b"before")
        device.save_snapshot("task-start")
    saved = sim.ui_xml()

    open_search(sim, adb, sim=sim)
    for device in pair:
        device.type_text("dirty")
        device.push("/sdcard/Download/keep.txt", b"after")
        device.push("/sdcard/Download/extra.txt", b"new")

    for device in pair:
        seconds = device.load_snapshot("task-start")
        assert isinstance(seconds, float) and 0 <= seconds < 5
        assert device.pull("/sdcard/Download/keep.txt") == b"before"
        with pytest.raises(FileNotFoundOnDevice):
            device.pull("/sdcard/Download/extra.txt")
    assert adb.last_restore_s is not None and sim.last_restore_s is not None
    assert sim.ui_xml() == saved
    assert_same(sim, adb)


@pytest.mark.adb
def test_snapshot_errors(pair: tuple[SimDevice, AdbDevice]) -> None:
    sim, adb = pair
    with pytest.raises(SnapshotError, match=r"has no snapshot named 'missing'; save it first"):
        sim.load_snapshot("missing")
    with pytest.raises(
        SnapshotError,
        match=r"^'avd snapshot load missing' failed on emulator-\d+: KO: Device 'encrypt' does not have the "
        r"requested snapshot 'missing' / KO: Snapshot load failure: snapshot doesn't exist; save it first",
    ):
        adb.load_snapshot("missing")
    for device in pair:
        for bad in ("", "a b", "x\nkill", "../up", ".hidden", "a/b"):
            with pytest.raises(ValueError, match="invalid snapshot name"):
                device.save_snapshot(bad)


@pytest.mark.adb
@pytest.mark.slow
def test_snapshots_through_the_droidrl_emulator_command(
    adb_server: AdbServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The `droidrl-emulator` process announces itself to adb; AdbDevice drives it like an emulator."""
    script = Path(sys.executable).parent / "droidrl-emulator"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "droidrl.envs.sim.emulator"]
    port = free_port_pair()
    args = ["-avd", "devices", "-ports", f"{port},{port + 1}", "-no-window", "-no-snapshot"]
    log = (tmp_path / "emulator.log").open("w")
    process = subprocess.Popen([*command, *args], env=adb_server.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        adb_server.wait_for_device(f"emulator-{port}", timeout=30)
        monkeypatch.setenv("HOME", adb_server.env["HOME"])  # where the emulator wrote its console token
        device = AdbDevice(f"emulator-{port}", adb_port=adb_server.port)
        device.push("/sdcard/Download/state.txt", b"clean")
        device.save_snapshot("clean")
        device.push("/sdcard/Download/state.txt", b"dirty")
        device.launch("com.android.settings")
        assert device.load_snapshot("clean") < 5
        assert device.pull("/sdcard/Download/state.txt") == b"clean"
        assert device.current_app() == "com.google.android.apps.nexuslauncher"
        check_device(device)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.mark.adb
def test_read_only_emulator_refuses_snapshots(home: Path, adb_server: AdbServer) -> None:
    emu = ThreadedEmulator(Phone(), home, read_only=True)
    try:
        emu.announce(adb_server)
        device = AdbDevice(emu.serial, adb_port=adb_server.port)
        with pytest.raises(SnapshotError, match='"-read-only" was specified; start the emulator without -read-only'):
            device.save_snapshot("s")
    finally:
        emu.kill()


@pytest.mark.adb
def test_wrong_console_token_is_a_configuration_error(
    adb_device: AdbDevice, home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "other-home"
    elsewhere.mkdir()
    (elsewhere / ".emulator_console_auth_token").write_text("not-the-token")
    monkeypatch.setenv("HOME", str(elsewhere))  # the client reads its own HOME, like `adb emu`
    token = elsewhere / ".emulator_console_auth_token"
    with pytest.raises(ConsoleAuthError) as err:
        adb_device.save_snapshot("s")
    assert str(err.value) == (
        f"the emulator console on port {adb_device.console_port} rejected the token in {token} "
        "(KO: authentication token does not match ~/.emulator_console_auth_token). "
        f"Fix {token}: it must hold the contents of ~/.emulator_console_auth_token of the user running "
        "the emulator; this is a configuration problem, not a device failure."
    )
    token.unlink()
    with pytest.raises(ConsoleAuthError, match=rf"the token file {token} cannot be read \(No such file"):
        adb_device.save_snapshot("s")


@pytest.mark.adb
def test_snapshots_need_a_console_port(emulator: ThreadedEmulator, adb_server: AdbServer) -> None:
    serial = f"127.0.0.1:{emulator.adb_port}"
    assert b"connected" in adb_server.adb("connect", serial).stdout
    adb_server.wait_for_device(serial)
    device = AdbDevice(serial, adb_port=adb_server.port)
    with pytest.raises(SnapshotError, match="pass console_port= to AdbDevice"):
        device.save_snapshot("s")
    AdbDevice(serial, adb_port=adb_server.port, console_port=emulator.console_port).save_snapshot("s")


# ---- dead devices --------------------------------------------------------------------------------
@pytest.mark.adb
def test_a_killed_emulator_raises_device_unavailable_with_the_serial(
    emulator: ThreadedEmulator, adb_device: AdbDevice
) -> None:
    adb_device.tap(10, 10)
    emulator.kill()
    for action in (adb_device.screenshot, lambda: adb_device.tap(1, 1), adb_device.ui_xml):
        with pytest.raises(DeviceUnavailable, match=rf"^device {emulator.serial} is unavailable: ") as err:
            action()
        assert err.value.serial == emulator.serial
    with pytest.raises(DeviceUnavailable, match=r"emulator console .* does not answer"):
        adb_device.load_snapshot("x")


@pytest.mark.adb
def test_an_unknown_serial_or_a_dead_server_is_unavailable(adb_server: AdbServer) -> None:
    with pytest.raises(DeviceUnavailable, match=r"^device emulator-5998 is unavailable: .*not found"):
        AdbDevice("emulator-5998", adb_port=adb_server.port)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(DeviceUnavailable, match=rf"no adb server answers on 127\.0\.0\.1:{port}"):
        AdbDevice("emulator-5554", adb_port=port)


# ---- safe text entry -----------------------------------------------------------------------------
INJECTION_CORPUS = [
    "plain",
    "Ann's phone",
    'say "hi"',
    "“smart” ‘quotes’ «guillemets» „low“ ‹single›",
    "`backticks`",
    f"`{TOUCH}`",
    f"$({TOUCH})",
    f"$( {TOUCH} )",
    "$(reboot)",
    f"; {TOUCH}",
    f"; {TOUCH};",
    f"&& {TOUCH}",
    f"|| {TOUCH}",
    f"| {TOUCH}",
    f"& {TOUCH} &",
    f"'; {TOUCH}; '",
    f'"; {TOUCH}; "',
    f"\\'; {TOUCH}; echo \\'",
    f"\n{TOUCH}\n",
    f"a\r\n{TOUCH}",
    f"x > {CANARY}",
    f"x >> {CANARY}",
    f"<(touch {CANARY})",
    f"${{IFS}}touch${{IFS}}{CANARY}",
    "$((1+1)) ${HOME} $PATH $0 $? $$ $!",
    "; rm -rf /",
    "rm -rf / --no-preserve-root",
    "%s%s%s %d %n %x",
    "100% sure%s",
    "back\\slash \\n \\t \\\\",
    "tab\there",
    "multi\nline\ntext\n",
    "\x07bell \x1b[31mred\x1b[0m \x7f",
    "\u200b zero width \u200d joiner \ufeff bom",
    "中文输入测试：你好，世界！",
    "日本語のテキスト、カタカナ",
    "한국어 텍스트",
    "emoji 😀👍🏽👨‍👩‍👧‍👦🇫🇷",
    "مرحبا بالعالم",  # RTL
    "\u202eevil\u202c mixed RTL override",
    "e\u0301 combining: n\u0303 a\u0308\u0304",
    "Zalgo: Z\u0351\u0352\u0353a\u0354l\u0355g\u0356o",
    '{"json": [1, 2, {"a": null}]}',
    "<xml attr='1'>&amp;</xml>",
    "*?[a-z]~ !#{}",
    "-e --es msg x",
    "--help -a ADB_CLEAR_TEXT",
    "   leading and trailing spaces   ",
    "a" * 3500,  # over one broadcast chunk
    "中" * 2500,  # 7500 UTF-8 bytes: three chunks
]
XML_UNSAFE = {s for s in INJECTION_CORPUS if any(ord(c) < 32 and c not in "\t\n\r" for c in s)}


def test_the_corpus_is_large_and_needs_chunking() -> None:
    assert len(INJECTION_CORPUS) >= 40
    assert len(text_chunks("中" * 2500)) == 3 and "".join(text_chunks("中" * 2500)) == "中" * 2500
    assert text_chunks("a\ud800b") == ["a?b"]  # a lone surrogate cannot travel as UTF-8


@pytest.mark.adb
@pytest.mark.slow
def test_injection_corpus_arrives_verbatim_and_runs_nothing(
    pair: tuple[SimDevice, AdbDevice], emulator: ThreadedEmulator
) -> None:
    sim, adb = pair
    remote = emulator.phone
    open_search(sim, adb, sim=sim)
    for text in INJECTION_CORPUS:
        for device, phone in ((sim, sim.phone), (adb, remote)):
            device.clear_text()
            device.type_text(text)
            assert phone.find(rid=SEARCH).text == text, (device, text)
            assert not canary_exists(device), (device, text)
        if text not in XML_UNSAFE:
            xml = adb.ui_xml()
            assert xml == sim.ui_xml()
            assert field_text(xml, SEARCH) == text
        if len(text) < 200:  # the renderer is slow on very long text
            assert np.array_equal(adb.screenshot(), sim.screenshot()), text
    for device in pair:
        device.clear_text()
    assert remote.find(rid=SEARCH).text == sim.phone.find(rid=SEARCH).text == ""


@pytest.mark.adb
def test_the_canary_catches_a_naive_input_text(adb_device: AdbDevice) -> None:
    """The check is meaningful: typing through `input text` without quoting runs the payload."""
    assert not canary_exists(adb_device)
    adb_device.shell(f"input text $({TOUCH})")
    assert canary_exists(adb_device)


@pytest.mark.adb
def test_typing_with_no_focused_field_does_nothing(pair: tuple[SimDevice, AdbDevice]) -> None:
    sim, adb = pair
    for device in pair:
        device.type_text("nowhere")
        device.clear_text()
    assert_same(sim, adb)


@pytest.mark.adb
def test_type_text_selects_adb_keyboard_once(adb_device: AdbDevice, emulator: ThreadedEmulator) -> None:
    commands: list[str] = []
    original = adb_device._shell_status

    def spy(command: str) -> tuple[str, int]:
        commands.append(command)
        return original(command)

    adb_device._shell_status = spy  # type: ignore[method-assign]
    adb_device.type_text("a")
    adb_device.type_text("b")
    assert commands[:2] == [
        "settings get secure default_input_method",
        "ime enable com.android.adbkeyboard/.AdbIME && ime set com.android.adbkeyboard/.AdbIME",
    ]
    broadcasts = [c for c in commands if c.startswith("am broadcast")]
    assert broadcasts == [
        "am broadcast -a ADB_INPUT_B64 -p com.android.adbkeyboard --es msg YQ==",
        "am broadcast -a ADB_INPUT_B64 -p com.android.adbkeyboard --es msg Yg==",
    ]
    assert len(commands) == 4


def test_the_broadcast_prints_what_android_prints() -> None:
    phone = Phone()
    out = phone.shell("am broadcast -a ADB_INPUT_B64 -p com.android.adbkeyboard --es msg aGk=").stdout.decode()
    assert out == (
        "Broadcasting: Intent { act=ADB_INPUT_B64 flg=0x400000 pkg=com.android.adbkeyboard (has extras) }\n"
        "Broadcast completed: result=0\n"
    )
    out = phone.shell("am broadcast -a ADB_CLEAR_TEXT").stdout.decode()
    assert out.startswith("Broadcasting: Intent { act=ADB_CLEAR_TEXT flg=0x400000 }\n")


def test_sim_keyboard_receives_text_b64_and_clear() -> None:
    device = SimDevice()
    open_search(device, sim=device)
    phone = device.phone
    phone.shell("am broadcast -a ADB_INPUT_TEXT --es msg 'raw text'")
    assert phone.find(rid=SEARCH).text == "raw text"
    phone.shell("am broadcast -a ADB_CLEAR_TEXT")
    phone.shell("am broadcast -a ADB_INPUT_B64 --es msg 5Lit5paH")  # 中文
    assert phone.find(rid=SEARCH).text == "中文"
    phone.shell("am broadcast -a ADB_INPUT_B64 --es msg '!!not base64'")
    phone.shell("am broadcast -a ADB_INPUT_B64 -p com.example.other --es msg eA==")  # another app's
    assert phone.find(rid=SEARCH).text == "中文"


# ---- the checker on both devices -----------------------------------------------------------------
@pytest.mark.adb
def test_checker_passes_on_both_devices(pair: tuple[SimDevice, AdbDevice]) -> None:
    for device in pair:
        check_device(device)


def test_sim_device_is_a_device_and_validates_arguments() -> None:
    device = SimDevice(width=720, height=1280)
    assert isinstance(device, Device)
    assert device.size == (720, 1280) and device.screenshot().shape == (1280, 720, 3)
    with pytest.raises(ValueError, match="either a phone or Phone arguments"):
        SimDevice(Phone(), width=720)
    with pytest.raises(DeviceCommandError, match=r"cannot launch 'com\.google\.android\.apps\.nexuslauncher'"):
        device.launch("com.google.android.apps.nexuslauncher")  # no LAUNCHER activity: press HOME instead
    with pytest.raises(ValueError, match="out of range"):
        device.key(-1)


# ---- timings (printed with -s; not asserted beyond sanity) ---------------------------------------
@pytest.mark.adb
@pytest.mark.slow
def test_step_and_restore_timings(pair: tuple[SimDevice, AdbDevice]) -> None:
    for device in pair:
        device.save_snapshot("timing")
        started = time.perf_counter()
        for i in range(10):
            device.tap(540, 1200 + i)
            device.screenshot()
            device.ui_xml()
        step = (time.perf_counter() - started) / 10
        restore = min(device.load_snapshot("timing") for _ in range(5))
        name = type(device).__name__
        print(f"{name}: step (tap + screenshot + xml) {step * 1e3:.1f} ms, restore {restore * 1e3:.1f} ms")
        assert step < 5 and restore < 5


def test_device_modules_import_without_the_training_stack() -> None:
    blocker = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'ray', 'vllm', 'deepspeed', 'transformers', 'wandb'}:\n"
        "            raise ImportError(f'envs must not import {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import droidrl.envs.adb_device, droidrl.envs.sim_device, droidrl.envs.checker\n"
        "from droidrl.envs.sim_device import SimDevice\n"
        "from droidrl.envs.checker import check_device\n"
        "check_device(SimDevice())\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
