"""The phone's system services as android_world uses them: settings tables, rotation, ime, clipper, telephony, find.

Most tests drive the simulated shell directly; the android_world tests call android_world's own adb_utils
through android_env's AdbCallParser and Debian's adb (a private adb server) against the phone's adbd and
console, exactly as android_world talks to an emulator.
"""

from __future__ import annotations

import io
import re
import sqlite3
import struct
import subprocess

import pytest
from PIL import Image

from droidrl.envs.sim import services
from droidrl.envs.sim.apps import sms
from droidrl.envs.sim.phone import Phone

adb_utils = pytest.importorskip("android_world.env.adb_utils")
from android_env.components import adb_call_parser, adb_controller, config_classes  # noqa: E402

SETTINGS_PKG = "com.android.settings"
GBOARD = "com.google.android.inputmethod.latin/com.android.inputmethod.latin.LatinIME"
ADB_IME = "com.android.adbkeyboard/.AdbIME"


@pytest.fixture
def phone() -> Phone:
    return Phone()


def sh(phone: Phone, command: str) -> tuple[int, str, str]:
    result = phone.shell(command)
    return result.exit_code, result.stdout.decode(), result.stderr.decode()


def out(phone: Phone, command: str) -> str:
    code, stdout, stderr = sh(phone, command)
    assert code == 0, (command, stdout, stderr)
    return stdout


def table(phone: Phone, namespace: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out(phone, f"settings list {namespace}").splitlines())


# ==== settings =====================================================================================
def test_settings_tables_are_a_stock_images(phone):
    system, secure, global_ = table(phone, "system"), table(phone, "secure"), table(phone, "global")
    assert len(system) >= 50 and len(secure) >= 100 and len(global_) >= 90
    assert secure["zen_duration"] == "0"
    assert system["user_rotation"] == "0" and system["accelerometer_rotation"] == "0"
    assert secure["default_input_method"] == GBOARD == secure["enabled_input_methods"]
    assert global_["zen_mode"] == "0" and global_["device_provisioned"] == "1"
    # the keys droidrl's apps and tasks already read keep their values
    assert (global_["wifi_on"], global_["bluetooth_on"], secure["ui_night_mode"]) == ("1", "0", "1")
    lines = out(phone, "settings list secure").splitlines()
    assert lines == sorted(lines)


def test_settings_get_put_delete_reset(phone):
    assert out(phone, "settings get secure zen_duration") == "0\n"
    out(phone, "settings put secure zen_duration 60")
    assert out(phone, "settings get secure zen_duration") == "60\n"
    out(phone, "settings put global my_key 7")
    assert out(phone, "settings delete global my_key") == "Deleted 1 rows\n"
    assert out(phone, "settings get global my_key") == "null\n"
    out(phone, "settings put global my_key 7; settings put global wifi_on 0")
    assert sh(phone, "settings reset global trusted_defaults") == (0, "", "")
    assert out(phone, "settings get global my_key; settings get global wifi_on") == "null\n1\n"
    assert sh(phone, "settings reset system trusted_defaults") == (255, "", "Invalid table; no reset performed\n")
    assert sh(phone, "settings reset secure")[0] == 255
    assert out(phone, "settings get secure zen_duration") == "60\n"  # secure was not reset


# ==== rotation =======================================================================================
class ShellEnv:
    """The smallest android_world env: generic adb requests run in the phone's shell."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    def execute_adb_call(self, request):
        from android_env.proto import adb_pb2

        args = list(request.generic.args)
        assert args[0] == "shell", args
        result = self.phone.shell(" ".join(args[1:]))
        response = adb_pb2.AdbResponse(status=adb_pb2.AdbResponse.Status.OK)
        response.generic.output = result.stdout + result.stderr
        return response


def test_change_orientation_rotates_the_display(phone):
    env = ShellEnv(phone)
    adb_utils.change_orientation("landscape", env)
    assert out(phone, "settings get system user_rotation; settings get system accelerometer_rotation") == "1\n0\n"
    assert adb_utils.get_orientation(env) == 1
    assert adb_utils.get_logical_screen_size(env) == (2400, 1080)
    assert adb_utils.get_physical_frame_boundary(env) == (0, 0, 1080, 2400)  # portrait terms, as on a device
    assert adb_utils.get_screen_size(env) == (1080, 2400)  # `wm size` is the panel's
    png = phone.shell("screencap -p").stdout
    assert Image.open(io.BytesIO(png)).size == (2400, 1080)
    raw = phone.shell("screencap").stdout
    assert struct.unpack("<IIII", raw[:16]) == (2400, 1080, 1, 0) and len(raw) == 16 + 2400 * 1080 * 4
    assert '<hierarchy rotation="1">' in phone.ui_xml()
    assert "mCurrentRotation=ROTATION_90" in out(phone, "dumpsys window displays")
    assert " land " in out(phone, "dumpsys window windows")
    adb_utils.change_orientation("landscape_reversed", env)
    assert adb_utils.get_orientation(env) == 3
    adb_utils.change_orientation("portrait", env)
    assert adb_utils.get_orientation(env) == 0
    assert adb_utils.get_logical_screen_size(env) == (1080, 2400)
    assert Image.open(io.BytesIO(phone.shell("screencap -p").stdout)).size == (1080, 2400)


def test_accelerometer_mode_keeps_the_natural_orientation(phone):
    out(phone, "settings put system user_rotation 1; settings put system accelerometer_rotation 1")
    assert services.rotation(phone) == 0  # the emulator lies still: its sensor says portrait
    assert "mUserRotationMode=USER_ROTATION_FREE mUserRotation=ROTATION_90" in out(phone, "dumpsys window")


def bounds_of(xml: str, text: str) -> tuple[int, int, int, int]:
    m = re.search(rf'text="{re.escape(text)}"[^>]*bounds="\[(\d+),(\d+)\]\[(\d+),(\d+)\]"', xml)
    assert m, text
    return tuple(int(v) for v in m.groups())  # type: ignore[return-value]


def test_a_tap_lands_where_the_rotated_screen_shows_it(phone):
    portrait = bounds_of(phone.ui_xml(), "Settings")
    out(phone, "settings put system accelerometer_rotation 0; settings put system user_rotation 1")
    left, top, right, bottom = bounds_of(phone.ui_xml(), "Settings")
    assert right <= 2400 and bottom <= 1080 and (left, top) != portrait[:2]
    # what the screenshot shows at the icon is not the plain wallpaper around it
    shot = Image.open(io.BytesIO(phone.screenshot_png())).convert("RGB")
    cx, cy = (left + right) // 2, (top + bottom) // 2
    assert len({shot.getpixel((x, cy)) for x in range(left, right)}) > 1
    out(phone, f"input tap {cx} {cy}")
    assert phone.current_activity()[0] == SETTINGS_PKG
    # the panel's own frame (gRPC touches) maps onto the same point
    px, py = services.logical_to_physical(phone, cx, cy)
    assert 0 <= px < 1080 and 0 <= py < 2400
    assert services.physical_to_logical(phone, px, py) == (cx, cy)


def test_rotation_round_trips_for_every_orientation(phone):
    for rotation in range(4):
        phone.put_setting("system", "user_rotation", str(rotation))
        for point in [(0, 0), (100, 700), (1079, 2399)]:
            logical = services.physical_to_logical(phone, *point)
            assert services.logical_to_physical(phone, *logical) == point


# ==== input methods =================================================================================
def test_ime_list_enable_set_reset(phone):
    assert out(phone, "ime list -s") == f"{GBOARD}\n" == out(phone, "cmd input_method ime list -s")
    assert out(phone, "ime list -a -s") == f"{GBOARD}\n{ADB_IME}\n"
    assert out(phone, "ime list").startswith(f"{GBOARD}:\n  mId={GBOARD} ")
    assert sh(phone, f"ime set {ADB_IME}") == (
        255,
        "",
        f"Unknown input method {ADB_IME} cannot be selected for user #0\n",
    )
    assert out(phone, f"ime enable {ADB_IME}") == f"Input method {ADB_IME}: now enabled for user #0\n"
    assert out(phone, f"ime enable {ADB_IME}") == f"Input method {ADB_IME}: already enabled for user #0\n"
    assert out(phone, f"ime set {ADB_IME}") == f"Input method {ADB_IME} selected for user #0\n"
    assert out(phone, "settings get secure default_input_method") == f"{ADB_IME}\n"
    assert out(phone, "settings get secure enabled_input_methods") == f"{GBOARD}:{ADB_IME}\n"
    assert out(phone, "ime reset") == (
        f"Reset current and enabled IMEs for user #0\n  Selected: {GBOARD}\n   Enabled: {GBOARD}\n"
    )
    assert out(phone, "settings get secure default_input_method; settings get secure enabled_input_methods") == (
        f"{GBOARD}\n{GBOARD}\n"
    )
    assert sh(phone, "ime enable com.example/.Nope")[0] == 255
    assert "Argument expected after" in sh(phone, "ime set")[2]


def test_adb_keyboard_is_listed_only_while_its_package_is_installed(phone):
    phone.fs.rmtree("/data/data/com.android.adbkeyboard")
    assert out(phone, "ime list -a -s") == f"{GBOARD}\n"
    assert "Unknown input method" in sh(phone, f"ime enable {ADB_IME}")[2]


# ==== clipboard (clipper) ===========================================================================
def install_clipper(phone: Phone) -> None:
    phone.fs.makedirs(f"/data/data/{services.CLIPPER_PACKAGE}")


def test_clipper_broadcasts_in_androids_format(phone):
    assert out(phone, "am broadcast -a clipper.get") == (
        "Broadcasting: Intent { act=clipper.get flg=0x400000 }\nBroadcast completed: result=0\n"
    )  # no receiver without the app
    install_clipper(phone)
    assert out(phone, "am broadcast -a clipper.get").endswith('Broadcast completed: result=0, data=""\n')
    reply = out(phone, "am broadcast -a clipper.set -e text 'hello world'")
    assert adb_utils.extract_broadcast_data(reply) == "Text is copied into clipboard."
    reply = out(phone, "am broadcast -a clipper.get")
    assert (
        reply
        == 'Broadcasting: Intent { act=clipper.get flg=0x400000 }\nBroadcast completed: result=-1, data="hello world"\n'
    )
    assert adb_utils.extract_broadcast_data(reply) == "hello world"
    assert out(phone, "am broadcast -a clipper.set").endswith(
        'result=0, data="No text is provided. Use -e text "text to be pasted""\n'
    )


def test_paste_puts_the_clip_into_the_focused_field(phone):
    install_clipper(phone)
    out(phone, "am broadcast -a clipper.set -e text 5550123")
    phone.launch(sms.PACKAGE, sms.NEW_CONVERSATION)
    field = next(n for w in phone.windows() for n in w.walk() if n.field == "address")
    phone.tap(*field.center)
    out(phone, "input keyevent KEYCODE_PASTE")
    assert [n.text for w in phone.windows() for n in w.walk() if n.field == "address"] == ["5550123"]


# ==== telephony =====================================================================================
def inbox(phone: Phone) -> list[tuple]:
    data = phone.fs.read(sms.DB_PATH)
    conn = sqlite3.connect(":memory:")
    conn.deserialize(data)
    return conn.execute(
        "SELECT s.address, s.body, s.type, s.read, t.recipient_ids FROM sms s JOIN threads t ON t._id = s.thread_id"
        " WHERE s.type = 1 ORDER BY s._id"
    ).fetchall()


def test_incoming_sms_lands_in_the_inbox_in_its_thread(phone):
    before = len(inbox(phone))
    services.receive_sms(phone, "5551234", "Hi there")
    services.receive_sms(phone, "5551234", "again")
    rows = inbox(phone)[before:]
    assert [(a, b, t, r) for a, b, t, r, _ in rows] == [("5551234", "Hi there", 1, 0), ("5551234", "again", 1, 0)]
    assert rows[0][4] == rows[1][4]  # one thread for the sender


def test_texts_received_on_a_frozen_clock_are_newest_first_in_the_inbox(phone):
    from droidrl.envs.sim.shell import run

    frozen = phone.state.clock_ms
    for body in ("first", "second", "third"):
        services.receive_sms(phone, "5551234", body)
    assert phone.state.clock_ms == frozen  # the phone's clock itself stays where it was set
    conn = sqlite3.connect(":memory:")
    conn.deserialize(phone.fs.read(sms.DB_PATH))
    dates = [d for (d,) in conn.execute("SELECT date FROM sms WHERE type = 1 ORDER BY _id")][-3:]
    assert dates[0] >= frozen and dates[0] < dates[1] < dates[2]
    # android_world's SimpleSmsReplyMostRecent reads row 0 of the inbox's default order (date DESC)
    first = run(phone, "content query --uri content://sms/inbox --projection body").stdout.decode().splitlines()[0]
    assert first == "Row: 0 body=third"


def test_call_state_follows_the_modem(phone):
    env = ShellEnv(phone)
    assert adb_utils.get_call_state(env) == "IDLE"
    services.incoming_call(phone, "5551234")
    assert adb_utils.get_call_state(env) == "RINGING"
    assert services.update_call(phone, "5551234", "active")
    assert adb_utils.get_call_state(env) == "OFFHOOK"
    adb_utils.end_call_if_active(env)  # KEYCODE_ENDCALL hangs up
    assert adb_utils.get_call_state(env) == "IDLE"
    services.incoming_call(phone, "5550000")
    out(phone, "input keyevent KEYCODE_ENDCALL")  # rejected while ringing
    assert [(n, t) for n, t, _ in services.call_log(phone)] == [("5551234", 1), ("5550000", 5)]


# ==== toybox find / restorecon =======================================================================
def test_find_predicates_cleanup_scripts_use(phone):
    out(phone, "mkdir -p /sdcard/t/a/b; echo 1 > /sdcard/t/x.TXT; echo 2 > /sdcard/t/a/y.txt; echo > /sdcard/t/a/b/z")
    assert out(phone, "find /sdcard/t -iname '*.txt'") == "/sdcard/t/a/y.txt\n/sdcard/t/x.TXT\n"
    assert out(phone, "find /sdcard/t -mindepth 1 -maxdepth 1") == "/sdcard/t/a\n/sdcard/t/x.TXT\n"
    assert out(phone, "find /sdcard/t ! -type d -path '*/a/*'") == "/sdcard/t/a/b/z\n/sdcard/t/a/y.txt\n"
    assert out(phone, "find /sdcard/t -name '*.txt' -o -name z") == "/sdcard/t/a/b/z\n/sdcard/t/a/y.txt\n"
    assert out(phone, r"find /sdcard/t -type f -name '*.txt' -exec cat {} \;") == "2\n"
    assert out(phone, "find /sdcard/t -type f -exec echo {} +") == "/sdcard/t/a/b/z /sdcard/t/a/y.txt /sdcard/t/x.TXT\n"
    assert sh(phone, "find /sdcard/t -bogus") == (1, "", "find: bad arg '-bogus'\n")
    assert sh(phone, "find /sdcard/t -name") == (1, "", "find: '-name' needs 1 arg\n")
    assert sh(phone, "find /sdcard/t -exec ls") == (1, "", "find: -exec without {}\n")
    assert sh(phone, "find /nope")[0] == 1


def test_android_world_storage_cleanup_deletes_files_and_keeps_folders(phone):
    out(phone, "mkdir -p /sdcard/Download/d; echo 1 > /sdcard/Download/d/f; echo 2 > /sdcard/Documents/g.md")
    out(phone, "find /storage/emulated/0 -mindepth 1 -type f -delete")
    assert out(phone, "find /sdcard -type f") == ""
    assert out(phone, "find /sdcard -type d -name d") == "/sdcard/Download/d\n"
    out(phone, "find /sdcard/Download -mindepth 1 -delete")
    assert out(phone, "find /sdcard/Download") == "/sdcard/Download\n"


def test_restorecon(phone):
    assert sh(phone, "restorecon -R -F /data/data/com.android.settings") == (0, "", "")
    assert sh(phone, "restorecon /sdcard/nope") == (
        1,
        "",
        "restorecon: restorecon failed: /sdcard/nope: No such file or directory\n",
    )


# ==== android_world through Debian's adb and the console =============================================
@pytest.fixture
def aw_env(emulator, adb_server):
    """android_world's view of the phone: android_env's AdbCallParser over Debian's adb (private server)."""
    config = config_classes.AdbControllerConfig(
        adb_path=adb_server.adb_path, adb_server_port=adb_server.port, device_name=emulator.serial
    )
    parser = adb_call_parser.AdbCallParser(adb_controller.AdbController(config))

    class Env:
        def execute_adb_call(self, request):
            return parser.parse(request)

    return Env()


def test_android_world_helpers_end_to_end(emulator, aw_env, adb_server):
    phone = emulator.phone
    adb_utils.text_emulator(aw_env, "+1 (555) 123-4567", "Where are you?")
    rows = inbox(phone)
    assert rows[-1][:4] == ("+15551234567", "Where are you?", 1, 0)

    adb_utils.call_emulator(aw_env, "555-0100")
    assert adb_utils.get_call_state(aw_env) == "RINGING"
    assert "inbound from 5550100    : incoming" in adb_emu(adb_server, emulator, "gsm", "list")
    adb_utils.end_call_if_active(aw_env)
    assert adb_utils.get_call_state(aw_env) == "IDLE"

    adb_utils.change_orientation("landscape", aw_env)
    assert adb_utils.get_orientation(aw_env) == 1
    assert adb_utils.get_logical_screen_size(aw_env) == (2400, 1080)

    install_clipper(phone)
    adb_utils.set_clipboard_contents("copied text", aw_env)
    assert services.clipboard(phone) == "copied text"
    assert adb_utils.get_clipboard_contents(aw_env) == "copied text"


def adb_emu(adb_server, emulator, *args: str) -> str:
    """`adb emu ARGS` as a user runs it: the client reads the console token from the user's own HOME."""
    command = [adb_server.adb_path, "-P", str(adb_server.port), "-s", emulator.serial, "emu", *args]
    return subprocess.run(command, capture_output=True, timeout=30, check=False).stdout.decode()


def test_console_gsm_and_sms_replies(emulator, adb_server):
    def emu(*args: str) -> str:
        return adb_emu(adb_server, emulator, *args)

    phone = emulator.phone
    assert emu("gsm", "list") == "OK\r\n"
    emu("gsm", "call", "5551234")
    assert services.call_state(phone) == services.CALL_STATE_RINGING
    emu("gsm", "accept", "5551234")
    assert services.call_state(phone) == services.CALL_STATE_OFFHOOK
    assert "inbound from 5551234    : active" in emu("gsm", "list")
    emu("gsm", "cancel", "5551234")
    assert services.call_state(phone) == services.CALL_STATE_IDLE
    assert services.call_log(phone)[-1][:2] == ("5551234", services.CALL_TYPE_INCOMING)
    assert "KO: bad phone number format, use digits, # and + only" in emu("gsm", "call", "55a")
    assert "KO: no current call to/from number '999'" in emu("gsm", "accept", "999")
    emu("sms", "send", "5550199", "two\\nlines")
    assert inbox(phone)[-1][:2] == ("5550199", "two\nlines")
    assert "KO: bad phone number format, must be [+](0-9)*" in emu("sms", "send", "abc", "hi")
    assert emu("gsm", "data", "off") == "OK\r\n"
    assert emu("gsm", "status") == "gsm voice state: home\r\ngsm data state:  unregistered\r\nOK\r\n"
    assert emu("gsm", "signal", "40") == "KO: invalid RSSI - must be 0..31 or 99\r\n"
    assert emu("gsm", "busy", "5551234") == "KO: no current outbound call to number '5551234' (call (nil))\r\n"


def test_ended_calls_show_in_the_call_log_provider(phone):
    services.incoming_call(phone, "5551234")
    services.end_call(phone, "5551234")  # the caller hung up before an answer: missed
    rows = out(phone, "content query --uri content://call_log/calls --projection number:type:duration")
    assert rows == "Row: 0 number=5551234, type=3, duration=0\n"
    out(phone, "content delete --uri content://call_log/calls")  # android_world's clear_android_emulator_call_log
    assert services.call_log(phone) == []


def test_wm_user_rotation_and_settings_validation(phone):
    assert out(phone, "wm user-rotation") == "lock 0\n"
    out(phone, "wm user-rotation lock 2")
    assert out(phone, "settings get system user_rotation; wm user-rotation") == "2\nlock 2\n"
    assert services.rotation(phone) == 2
    assert sh(phone, "wm user-rotation lock 7") == (255, "", "Error: Rotation argument, 7 out of range\n")
    out(phone, "wm user-rotation free")
    assert out(phone, "wm user-rotation; settings get system accelerometer_rotation") == "free\n1\n"
    code, _, err = sh(phone, "settings put system user_rotation 5")
    assert code == 255 and "java.lang.IllegalArgumentException: Invalid value: 5 for setting: user_rotation" in err
    assert out(phone, "settings get system user_rotation") == "2\n"


def test_rotation_90_draws_the_content_clockwise_on_the_panel(phone):
    """Display.getRotation: at ROTATION_90 the graphics are turned 90 degrees clockwise on the panel."""
    phone.put_setting("system", "user_rotation", "1")
    assert services.logical_to_physical(phone, 0, 0) == (1079, 0)  # display top-left: panel top-right
    assert services.logical_to_physical(phone, 2399, 1079) == (0, 2399)
    phone.put_setting("system", "user_rotation", "3")
    assert services.logical_to_physical(phone, 0, 0) == (0, 2399)  # display top-left: panel bottom-left
    # pixel-exact: the landscape screenshot turned onto the panel puts each pixel where touches map it
    phone.put_setting("system", "user_rotation", "1")
    shot = phone.screenshot()
    panel = shot.transpose(Image.Transpose.ROTATE_270)  # content turned clockwise onto the portrait panel
    assert panel.size == (1080, 2400)
    for lx, ly in [(0, 0), (2399, 0), (37, 1079), (1200, 500)]:
        px, py = services.logical_to_physical(phone, lx, ly)
        assert panel.getpixel((px, py)) == shot.getpixel((lx, ly))


def field_text(phone: Phone, key: str) -> str:
    return next(n.text for w in phone.windows() for n in w.walk() if n.field == key)


def test_long_press_toolbar_copies_cuts_and_pastes(phone):
    phone.launch(sms.PACKAGE, sms.NEW_CONVERSATION)
    field = next(n for w in phone.windows() for n in w.walk() if n.field == "address")
    phone.long_press(*field.center)  # empty field, empty clipboard: nothing to offer
    assert not [w for w in phone.windows() if w.kind == "text_toolbar"]
    out(phone, "input text 5550123")
    phone.long_press(*field.center)
    toolbar = next(w for w in phone.windows() if w.kind == "text_toolbar")
    assert [n.text for n in toolbar.children] == ["Cut", "Copy", "Select all"]
    assert 'text="Copy"' in phone.ui_xml()
    phone.tap_node(text="Copy")
    assert services.clipboard(phone) == "5550123"
    assert not [w for w in phone.windows() if w.kind == "text_toolbar"]  # an action closes it
    phone.long_press(*field.center)
    phone.tap_node(text="Cut")
    assert field_text(phone, "address") == "" and services.clipboard(phone) == "5550123"
    phone.long_press(*field.center)
    assert [n.text for w in phone.windows() if w.kind == "text_toolbar" for n in w.children] == ["Paste"]
    phone.tap_node(text="Paste")
    assert field_text(phone, "address") == "5550123"
    phone.long_press(*field.center)
    out(phone, "input keyevent KEYCODE_BACK")  # any other input closes the toolbar
    assert not [w for w in phone.windows() if w.kind == "text_toolbar"]


def test_clipper_app_reads_the_clipboard_only_in_the_foreground():
    from droidrl.envs.sim.apps import clipper, default_apps

    phone = Phone(apps=[*default_apps(), clipper.APP])
    out(phone, "am broadcast -a clipper.set -e text 'from the shell'")
    assert 'result=0, data=""' in out(phone, "am broadcast -a clipper.get")  # Android 10+: not focused
    out(phone, "am start -n ca.zgrs.clipper/ca.zgrs.clipper.Main")
    assert "Clipper service is started!" in phone.ui_xml()
    reply = out(phone, "am broadcast -a get")  # the receiver's short action names work too
    assert adb_utils.extract_broadcast_data(reply) == "from the shell"
    with pytest.raises(RuntimeError, match="foreground"):
        adb_utils._extract_clipper_output(out(phone, "input keyevent KEYCODE_BACK; am broadcast -a clipper.get"))


def test_droidrl_emulator_process_through_debian_adb(adb_server, tmp_path):
    """The `droidrl-emulator` program on private ports, driven as a user would: `adb shell` and `adb emu`."""
    from conftest import free_port_pair
    from test_emulator_cli import EmulatorProcess

    console = free_port_pair()
    env = {**adb_server.env, "ANDROID_ADB_SERVER_PORT": str(adb_server.port)}
    process = EmulatorProcess(["-avd", "AndroidWorldAvd", "-ports", f"{console},{console + 1}", "-no-window"], env)
    try:
        process.wait_for("Boot completed")
        serial = f"emulator-{console}"
        adb_server.wait_for_device(serial)

        def adb(*args: str) -> str:
            result = adb_server.adb("-s", serial, *args)
            assert result.returncode == 0, result.stderr
            return result.stdout.decode()

        assert "zen_duration=0\n" in adb("shell", "settings", "list", "secure")
        assert adb("emu", "sms", "send", "5550177", "hello from the console") == "OK\r\n"
        inbox_rows = adb("shell", "content query --uri content://sms/inbox --projection address:body")
        assert "address=5550177, body=hello from the console" in inbox_rows
        assert adb("emu", "gsm", "call", "5550177") == "OK\r\n"
        assert "mCallState=1" in adb("shell", "dumpsys", "telephony.registry")
        assert adb("emu", "gsm", "list") == "inbound from 5550177    : incoming\r\nOK\r\n"
        assert adb("emu", "gsm", "cancel", "5550177") == "OK\r\n"
        assert "mCallState=0" in adb("shell", "dumpsys", "telephony.registry")
        adb("shell", "settings put system accelerometer_rotation 0; settings put system user_rotation 1")
        png = adb_server.adb("-s", serial, "exec-out", "screencap", "-p").stdout
        assert Image.open(io.BytesIO(png)).size == (2400, 1080)
        assert adb("shell", "wm", "size") == "Physical size: 1080x2400\n"
    finally:
        process.kill()
