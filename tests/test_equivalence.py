"""In-process and over-adb phones are indistinguishable: the same actions give the same pixels and XML.

Phone A is driven in-process; phone B through Debian's adb server with adbutils' high-level API
(app_start, click, swipe, send_keys, keyevent, screenshot, dump_hierarchy), as an agent stack that
targets real emulators would drive it.
"""

import io

import adbutils
import pytest
from PIL import Image

from droidrl.envs.sim.adbd import adbd_in_thread
from droidrl.envs.sim.phone import Phone

INJECTION = 'Ann\'s; $(reboot) `id` "q" & | > x 中文'


@pytest.fixture
def pair(adb_server, monkeypatch):
    """(in-process phone, the adbutils device of an identical phone served over adb)."""
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/usr/bin/adb")
    local, remote = Phone(), Phone()
    with adbd_in_thread(remote) as port:
        serial = f"127.0.0.1:{port}"
        assert b"connected" in adb_server.adb("connect", serial).stdout
        adb_server.wait_for_device(serial)
        client = adbutils.AdbClient(host="127.0.0.1", port=adb_server.port)
        yield local, client.device(serial)


def assert_same(local: Phone, device: adbutils.AdbDevice) -> None:
    assert device.dump_hierarchy() == local.ui_xml()
    png = device.shell(["screencap", "-p"], encoding=None)
    assert png == local.screenshot_png()
    assert device.screenshot().tobytes() == local.screenshot().tobytes()


def centre(local: Phone, **query: str) -> tuple[int, int]:
    node = local.find(**query)
    assert node is not None, query
    return node.center


def test_same_actions_same_observations(pair):
    local, device = pair
    assert_same(local, device)

    local.launch("com.android.settings")
    device.app_start("com.android.settings")
    assert device.app_current().package == "com.android.settings"
    assert_same(local, device)

    for text in ("Display", "Dark theme"):
        x, y = centre(local, text=text)
        local.tap(x, y)
        device.click(x, y)
    assert local.dark and device.shell("settings get secure ui_night_mode") == "2"
    assert_same(local, device)

    local.swipe(540, 1800, 540, 900, 300)
    device.swipe(540, 1800, 540, 900, 0.3)
    assert_same(local, device)

    local.key(4)
    device.keyevent("KEYCODE_BACK")
    assert_same(local, device)

    local.launch("com.google.android.contacts")
    device.app_start("com.google.android.contacts")
    x, y = centre(local, rid="open_search_view_edit_text")
    local.tap(x, y)
    device.click(x, y)
    local.type_text(INJECTION)
    device.send_keys(INJECTION)
    assert local.find(rid="open_search_view_edit_text").text == INJECTION
    assert_same(local, device)

    local.key(3)
    device.keyevent(3)
    assert_same(local, device)


def test_input_text_turns_percent_s_into_space_like_android(pair):
    local, device = pair
    local.launch("com.google.android.contacts")
    device.app_start("com.google.android.contacts")
    device.click(*centre(local, rid="open_search_view_edit_text"))
    device.send_keys("a%sb")
    assert 'text="a b"' in device.dump_hierarchy()


def test_adbutils_device_api(pair):
    _, device = pair
    assert device.window_size() == (1080, 2400)
    packages = device.list_packages()
    assert {"com.android.settings", "com.google.android.contacts", "com.google.android.deskclock"} <= set(packages)
    assert device.app_current().package == "com.google.android.apps.nexuslauncher"
    device.app_start("com.google.android.deskclock")
    current = device.app_current()
    assert current.package == "com.google.android.deskclock" and current.activity
    image = device.screenshot()
    assert image.size == (1080, 2400) and image.mode == "RGB"
    xml = device.dump_hierarchy()
    assert xml.startswith("<?xml") and 'package="com.google.android.deskclock"' in xml
    assert device.getprop("ro.build.version.sdk") == "33"
    png = Image.open(io.BytesIO(device.shell(["screencap", "-p"], encoding=None)))
    assert png.format == "PNG"


def test_adb_tap_on_wifi_switch_changes_setting(pair, adb_server):
    """The issue's acceptance check: `adb shell input tap X Y` on the Wi-Fi switch flips wifi_on."""
    local, device = pair
    serial = device.serial
    local.launch("com.android.settings")
    device.app_start("com.android.settings")
    for text in ("Network & internet", "Internet"):
        x, y = centre(local, text=text)
        local.tap(x, y)
        device.click(x, y)
    switch = local.find(rid="switch_widget")
    assert adb_server.adb("-s", serial, "shell", "settings get global wifi_on").stdout == b"1\n"
    result = adb_server.adb("-s", serial, "shell", f"input tap {switch.center[0]} {switch.center[1]}")
    assert result.returncode == 0
    assert adb_server.adb("-s", serial, "shell", "settings get global wifi_on").stdout == b"0\n"
