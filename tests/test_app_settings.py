"""The simulated Settings app, driven through the phone's input API and checked via settings and sqlite."""

import xml.etree.ElementTree as ET

import pytest

from droidrl.envs.sim.apps import contacts, launcher, settings
from droidrl.envs.sim.phone import LAUNCHER, Phone
from droidrl.envs.sim.ui import SEEKBAR, Node

PKG = settings.PACKAGE
WIFI = settings.WIFI
BACK, DEL, CTRL_LEFT, A = 4, 67, 113, 29


@pytest.fixture
def phone() -> Phone:
    return Phone(apps=[launcher.APP, settings.APP, contacts.APP])


def texts(phone: Phone) -> list[str]:
    return [n.get("text") for n in ET.fromstring(phone.ui_xml()).iter("node") if n.get("text")]


def open_page(phone: Phone, *titles: str) -> None:
    """Launch Settings and tap through the given list entries."""
    phone.launch(PKG)
    for title in titles:
        phone.tap_node(text=title)


def setting(phone: Phone, namespace: str, key: str) -> str | None:
    return phone.get_setting(namespace, key)


def wifi_networks(phone: Phone) -> list[tuple[str, str, int]]:
    with phone.fs.sqlite(settings.WIFI_DB_PATH) as conn:
        return conn.execute("SELECT ssid, password, connected FROM networks ORDER BY ssid").fetchall()


def seekbar(phone: Phone, title: str) -> Node:
    """The SeekBar in the slider row titled `title` (a row holds its title and its bar)."""
    for row in phone.windows()[0].walk():
        if any(c.text == title for c in row.children):
            bar = next((c for c in row.children if c.cls == SEEKBAR), None)
            if bar is not None:
                return bar
    raise LookupError(title)


def tap_at_fraction(phone: Phone, bar: Node, fraction: float) -> None:
    left, top, right, bottom = bar.bounds
    phone.tap(left + round(fraction * (right - left)), (top + bottom) // 2)


def replace_text(phone: Phone, rid: str, value: str) -> None:
    """Tap a field, select all, delete, type: what an agent does to replace a field's text."""
    phone.tap_node(rid=rid)
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text(value)


def test_launcher_icon_opens_the_main_list(phone):
    phone.tap_node(text="Settings")
    assert phone.current_activity() == (PKG, ".Settings")
    shown = texts(phone)
    home = ["Network & internet", "Connected devices", "Apps", "Battery", "Sound & vibration", "Display"]
    assert [t for t in shown if t in home] == home
    assert f"Mobile, {WIFI}, hotspot" in shown
    assert "About phone" in shown and "sdk_gphone64_x86_64" in shown
    assert phone.find(desc="Navigate up") is None  # the home page has no up arrow


def test_wifi_switch_turns_wifi_off_and_on(phone):
    open_page(phone, "Network & internet", "Internet")
    assert phone.current_activity() == (PKG, settings.INTERNET)
    assert setting(phone, "global", "wifi_on") == "1"
    shown = texts(phone)
    assert shown.index("AndroidWifi") + 1 == shown.index("Connected")
    assert "HomeNet-5G" in shown

    phone.tap_node(text=WIFI)
    assert setting(phone, "global", "wifi_on") == "0"
    shown = texts(phone)
    assert "AndroidWifi" not in shown and f"To see available networks, turn {WIFI} on." in shown
    assert phone.find(rid="android:id/switch_widget").checked is False

    phone.tap_node(text=WIFI)
    assert setting(phone, "global", "wifi_on") == "1"
    assert "Connected" in texts(phone)  # reconnects to the saved network


def test_secured_network_asks_for_a_password_and_is_saved(phone):
    open_page(phone, "Network & internet", "Internet")
    phone.tap_node(text="HomeNet-5G")
    assert phone.find(rid="android:id/alertTitle").text == "HomeNet-5G"
    phone.tap_node(rid=f"{PKG}:id/password")
    phone.type_text("short")
    phone.tap_node(text="Connect")  # too short: the dialog stays
    assert phone.find(rid="android:id/alertTitle") is not None
    assert phone.find(rid=f"{PKG}:id/password").text == "short"
    assert "•••••" in texts(phone)  # masked in the dump

    phone.type_text("battery42")
    phone.tap_node(text="Connect")
    assert phone.find(rid="android:id/alertTitle") is None
    assert phone.find(desc="Delete") is None  # the keyboard went away with the dialog
    assert wifi_networks(phone) == [("AndroidWifi", "", 0), ("HomeNet-5G", "shortbattery42", 1)]
    shown = texts(phone)
    assert shown.index("HomeNet-5G") + 1 == shown.index("Connected")


def test_open_network_connects_and_details_page_forgets_it(phone):
    open_page(phone, "Network & internet", "Internet")
    phone.tap_node(text="GoogleGuest")
    assert ("GoogleGuest", "", 1) in wifi_networks(phone)
    phone.tap_node(text="GoogleGuest")  # the connected network opens its details
    assert phone.current_activity() == (PKG, settings.WIFI_DETAILS)
    assert {"Connected", "Good", "5 GHz", "None"} <= set(texts(phone))
    phone.tap_node(text="Forget")
    assert phone.current_activity() == (PKG, settings.INTERNET)
    assert wifi_networks(phone) == [("AndroidWifi", "", 0)]


def test_add_network_saves_an_out_of_range_network(phone):
    open_page(phone, "Network & internet", "Internet", "Add network")
    phone.tap_node(rid=f"{PKG}:id/ssid")
    phone.type_text("CabinWifi")
    phone.tap_node(rid=f"{PKG}:id/password")
    phone.type_text("pinecone99")
    save = phone.find(text="Save")
    assert phone.hit(*save.center) is save
    phone.tap_node(text="Save")
    assert ("CabinWifi", "pinecone99", 0) in wifi_networks(phone)
    assert phone.find(desc="Delete") is None
    phone.tap_node(text="Saved networks")
    assert {"AndroidWifi", "CabinWifi"} <= set(texts(phone))


def test_airplane_mode_turns_radios_off_and_restores_them(phone):
    open_page(phone, "Connected devices", "Connection preferences", "Bluetooth")
    phone.tap_node(text="Use Bluetooth")
    assert setting(phone, "global", "bluetooth_on") == "1"
    assert "Pixel Buds Pro" in texts(phone)
    for _ in range(3):
        phone.tap_node(desc="Navigate up")
    assert phone.current_activity() == (PKG, ".Settings")

    phone.tap_node(text="Network & internet")
    phone.tap_node(text="Airplane mode")
    assert setting(phone, "global", "airplane_mode_on") == "1"
    assert (setting(phone, "global", "wifi_on"), setting(phone, "global", "bluetooth_on")) == ("0", "0")
    assert phone.find(desc="Airplane mode on.") is not None  # status bar icon
    phone.tap_node(text="Airplane mode")
    assert setting(phone, "global", "airplane_mode_on") == "0"
    assert (setting(phone, "global", "wifi_on"), setting(phone, "global", "bluetooth_on")) == ("1", "1")


def test_airplane_mode_leaves_off_radios_off(phone):
    open_page(phone, "Network & internet", "Internet")
    phone.tap_node(text=WIFI)
    phone.key(BACK)
    phone.tap_node(text="Airplane mode")
    phone.tap_node(text="Airplane mode")
    assert setting(phone, "global", "airplane_mode_on") == "0"
    assert (setting(phone, "global", "wifi_on"), setting(phone, "global", "bluetooth_on")) == ("0", "0")


def test_dark_theme_switch(phone):
    open_page(phone, "Display")
    assert setting(phone, "secure", "ui_night_mode") == "1"
    phone.tap_node(text="Dark theme")
    assert setting(phone, "secure", "ui_night_mode") == "2"
    assert phone.dark
    assert "Will never turn off automatically" in texts(phone)
    phone.tap_node(text="Dark theme")
    assert setting(phone, "secure", "ui_night_mode") == "1"


def test_brightness_slider_and_adaptive_brightness(phone):
    open_page(phone, "Display")
    bar = seekbar(phone, "Brightness level")
    assert bar.progress == pytest.approx(102 / 255)
    tap_at_fraction(phone, bar, 0.75)
    assert abs(int(setting(phone, "system", "screen_brightness")) - 191) <= 1
    phone.tap_node(text="Adaptive brightness")
    assert setting(phone, "system", "screen_brightness_mode") == "1"


def test_screen_timeout_dialog(phone):
    open_page(phone, "Display")
    assert "After 1 minute of inactivity" in texts(phone)
    phone.tap_node(text="Screen timeout")
    assert phone.find(rid="android:id/alertTitle").text == "Screen timeout"
    options = [n.text for n in phone.windows()[-1].walk() if n.rid == "android:id/text1"]
    assert options == [label for label, _ in settings.SCREEN_TIMEOUTS]
    phone.tap_node(text="Cancel")
    assert setting(phone, "system", "screen_off_timeout") == "60000"
    phone.tap_node(text="Screen timeout")
    phone.tap_node(text="5 minutes")
    assert setting(phone, "system", "screen_off_timeout") == "300000"
    assert phone.find(rid="android:id/alertTitle") is None
    assert "After 5 minutes of inactivity" in texts(phone)


def test_sound_volume_and_do_not_disturb(phone):
    open_page(phone, "Sound & vibration")
    tap_at_fraction(phone, seekbar(phone, "Media volume"), 0.2)
    assert setting(phone, "system", "volume_music") == "5"
    tap_at_fraction(phone, seekbar(phone, "Alarm volume"), 0.0)
    assert setting(phone, "system", "volume_alarm") == "1"  # the alarm stream never goes silent
    assert setting(phone, "global", "zen_mode") == "0"
    phone.tap_node(text="Do Not Disturb")
    assert setting(phone, "global", "zen_mode") == "1"


def test_battery_saver(phone):
    open_page(phone, "Battery")
    assert "100%" in texts(phone)
    phone.tap_node(text="Battery Saver")
    phone.tap_node(text="Use Battery Saver")
    assert setting(phone, "global", "low_power") == "1"
    phone.tap_node(desc="Navigate up")
    shown = texts(phone)
    assert shown[shown.index("Battery Saver") + 1] == "On"


def test_rename_device_by_typing(phone):
    open_page(phone, "About phone")
    phone.tap_node(text="Device name")
    assert phone.find(rid="android:id/edit").text == "sdk_gphone64_x86_64"
    replace_text(phone, "android:id/edit", "Alex's Pixel")
    ok = phone.find(text="OK")
    assert phone.hit(*ok.center) is ok  # the keyboard does not cover the dialog's buttons
    phone.tap_node(text="OK")
    assert setting(phone, "global", "device_name") == "Alex's Pixel"
    assert phone.find(rid="android:id/alertTitle") is None
    phone.tap_node(desc="Navigate up")
    assert "Alex's Pixel" in texts(phone)  # the home page's About phone summary


def test_empty_device_name_is_refused(phone):
    open_page(phone, "About phone")
    phone.tap_node(text="Device name")
    replace_text(phone, "android:id/edit", "")
    phone.tap_node(text="OK")
    assert setting(phone, "global", "device_name") == "sdk_gphone64_x86_64"
    phone.key(BACK)  # keyboard
    phone.key(BACK)  # dialog
    assert phone.find(rid="android:id/alertTitle") is None
    assert phone.current_activity() == (PKG, settings.ABOUT)


def test_seven_build_number_taps_enable_developer_options(phone):
    phone.put_setting("global", "development_settings_enabled", "0")  # a fresh emulator image has it on
    open_page(phone, "About phone")
    assert "sdk_gphone64_x86_64-userdebug 13 TE1A.220922.034 10940250 dev-keys" in texts(phone)
    toasts = []
    for _ in range(7):
        phone.tap_node(text="Build number")
        toast = phone.find(rid="android:id/message")
        toasts.append(toast.text if toast else None)
    assert toasts == [
        None,
        None,
        "You are now 4 steps away from being a developer.",
        "You are now 3 steps away from being a developer.",
        "You are now 2 steps away from being a developer.",
        "You are now 1 step away from being a developer.",
        "You are now a developer!",
    ]
    assert setting(phone, "global", "development_settings_enabled") == "1"
    phone.tap_node(text="Build number")
    assert phone.find(rid="android:id/message").text == "No need, you are already a developer."
    phone.key(BACK)
    phone.tap_node(text="System")
    phone.tap_node(text="Developer options")
    assert phone.current_activity() == (PKG, settings.DEVELOPER)


def test_back_and_up_return_to_the_main_list(phone):
    open_page(phone, "Network & internet", "Internet", "AndroidWifi")
    assert phone.current_activity() == (PKG, settings.WIFI_DETAILS)
    phone.key(BACK)
    phone.tap_node(desc="Navigate up")
    phone.key(BACK)
    assert phone.current_activity() == (PKG, ".Settings")
    phone.key(BACK)
    assert phone.current_activity()[0] == LAUNCHER


def test_force_stop_from_app_info(phone):
    phone.launch(contacts.PACKAGE)
    open_page(phone, "Apps", "See all 3 apps")
    shown = texts(phone)
    assert shown.index("Contacts") < shown.index("Pixel Launcher") < shown.index("Settings")
    phone.tap_node(text="Contacts")
    assert phone.current_activity() == (PKG, settings.APP_INFO)
    phone.tap_node(text="Force stop")
    assert phone.find(rid="android:id/alertTitle").text == "Force stop?"
    phone.tap_node(text="OK")
    assert contacts.PACKAGE not in [pkg for _, pkg, _ in phone.task_stacks()]
    assert phone.find(text="Force stop").enabled is False


def test_clear_storage_resets_settings_databases(phone):
    open_page(phone, "Network & internet", "Internet", "GoogleGuest")
    assert len(wifi_networks(phone)) == 2
    phone.key(BACK)
    phone.key(BACK)
    phone.tap_node(text="Apps")
    phone.tap_node(text="See all 3 apps")
    phone.tap_node(text="Settings")
    phone.tap_node(text="Storage & cache")
    phone.tap_node(text="Clear storage")
    assert phone.find(rid="android:id/alertTitle").text == "Clear app data?"
    phone.tap_node(text="Delete")
    assert phone.current_activity()[0] == LAUNCHER  # clearing an app stops it
    assert wifi_networks(phone) == [("AndroidWifi", "", 1)]


def test_pm_clear_recreates_databases(phone):
    phone.fs.remove(settings.BT_DB_PATH)
    open_page(phone, "Network & internet", "Internet", "HomeNet")
    replace_text(phone, "password", "hunter2hunter2")
    phone.tap_node(text="Connect")
    assert ("HomeNet", "hunter2hunter2", 1) in wifi_networks(phone)
    phone.clear_app_data(PKG)
    assert wifi_networks(phone) == [("AndroidWifi", "", 1)]
    with phone.fs.sqlite(settings.BT_DB_PATH) as conn:
        assert conn.execute("SELECT count(*) FROM devices").fetchone()[0] == len(settings.PAIRED_DEVICES)


def test_long_lists_scroll_on_a_small_screen():
    phone = Phone(720, 1280, 320, apps=[launcher.APP, settings.APP])
    open_page(phone, "Network & internet", "Internet")
    assert phone.find(text="Saved networks") is None
    for _ in range(5):
        phone.swipe(360, 1000, 360, 300)
    assert phone.find(text="Saved networks") is not None
    phone.tap_node(text="Saved networks")
    assert phone.current_activity() == (PKG, settings.SAVED_NETWORKS)
