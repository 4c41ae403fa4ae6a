"""Android 13 Settings (com.android.settings): network, Bluetooth, apps, battery, sound, display, about.

Device switches live in the settings provider (global/system/secure), as on a phone; Wi-Fi scan
results and saved networks live in wifi.db, paired Bluetooth devices in bluetooth.db.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from droidrl.envs.sim import packages
from droidrl.envs.sim.app import DEFAULT, App, Ctx, IntentFilter
from droidrl.envs.sim.ui import (
    RADIO,
    Dialog,
    Node,
    Screen,
    buttons,
    checkbox,
    edit,
    header,
    item,
    slider,
    switch,
    switch_item,
    text,
)

if TYPE_CHECKING:
    from droidrl.envs.sim.intents import Intent
    from droidrl.envs.sim.phone import Phone

PACKAGE = "com.android.settings"
WIFI_DB = "wifi.db"
BT_DB = "bluetooth.db"
WIFI_DB_PATH = f"/data/data/{PACKAGE}/databases/{WIFI_DB}"
BT_DB_PATH = f"/data/data/{PACKAGE}/databases/{BT_DB}"

WIFI = "Wi\u2011Fi"  # Android writes Wi-Fi with a non-breaking hyphen
CARRIER = "T-Mobile"  # the emulator's SIM operator
BATTERY_LEVEL = 100  # the emulator's battery is always full; the status bar shows the same
TAPS_TO_BE_A_DEVELOPER = 7

# Activities (the real app runs most pages as Settings$XActivity).
MAIN = ".Settings"
NETWORK = ".Settings$NetworkDashboardActivity"
INTERNET = ".Settings$NetworkProviderSettingsActivity"
WIFI_DETAILS = ".Settings$WifiDetailsSettingsActivity"
SAVED_NETWORKS = ".Settings$SavedAccessPointsSettingsActivity"
MOBILE_NETWORK = ".network.telephony.MobileNetworkActivity"
CONNECTED_DEVICES = ".Settings$ConnectedDeviceDashboardActivity"
CONNECTION_PREFS = ".Settings$AdvancedConnectedDeviceActivity"
BLUETOOTH = ".Settings$BluetoothSettingsActivity"
APPS = ".Settings$AppDashboardActivity"
ALL_APPS = ".Settings$ManageApplicationsActivity"
APP_INFO = ".applications.InstalledAppDetails"
APP_STORAGE = ".Settings$StorageUseActivity"
BATTERY = ".Settings$PowerUsageSummaryActivity"
BATTERY_SAVER = ".Settings$BatterySaverSettingsActivity"
SOUND = ".Settings$SoundSettingsActivity"
DISPLAY = ".Settings$DisplaySettingsActivity"
SYSTEM = ".Settings$SystemDashboardActivity"
DATE_TIME = ".Settings$DateTimeSettingsActivity"
DEVELOPER = ".Settings$DevelopmentSettingsDashboardActivity"
ABOUT = ".Settings$MyDeviceInfoActivity"

# Keys a freshly booted API 33 emulator has that the core's defaults leave out; written only when
# absent, since the settings provider (not this app) owns them and `pm clear` must not reset them.
SETTING_DEFAULTS = {
    "global": {"zen_mode": "0", "low_power": "0", "data_roaming": "0", "auto_time_zone": "1"},
    "system": {
        "volume_music": "8",
        "volume_voice": "4",
        "volume_ring": "5",
        "volume_alarm": "6",
        "status_bar_show_battery_percent": "0",
    },
}

# Nearby access points: (ssid, security, signal level 0-4, frequency MHz). AndroidWifi is the
# emulator's own open network, saved and connected on a fresh device.
SCAN_RESULTS = [
    ("AndroidWifi", "NONE", 4, 2447),
    ("HomeNet-5G", "WPA2", 4, 5180),
    ("HomeNet", "WPA2", 3, 2437),
    ("GoogleGuest", "NONE", 3, 5240),
    ("Office-Secure", "WPA3", 2, 5745),
    ("CoffeeShop_Free", "NONE", 2, 2412),
    ("NETGEAR47", "WPA2", 2, 2462),
    ("Linksys00521", "WPA2", 1, 2437),
    ("xfinitywifi", "NONE", 1, 2412),
    ("DIRECT-7B-HP OfficeJet Pro 8020", "WPA2", 1, 2462),
]
SECURITY_LABELS = {"NONE": "None", "WPA2": "WPA2-Personal", "WPA3": "WPA3-Personal"}
SIGNAL_LABELS = ["Very poor", "Poor", "Fair", "Good", "Excellent"]
MIN_PASSWORD = 8  # WPA passphrases are 8-63 characters; Connect stays inert below that

# Bonded Bluetooth devices: (address, name, kind).
PAIRED_DEVICES = [
    ("A4:C1:38:5E:21:0F", "Pixel Buds Pro", "headphones"),
    ("00:1B:66:8D:4A:92", "JBL Flip 5", "speaker"),
    ("F0:5C:77:12:AB:3D", "Galaxy Watch4 (AB3D)", "watch"),
]

# Screen timeout choices (label, system screen_off_timeout in ms), as the Display page lists them.
SCREEN_TIMEOUTS = [
    ("15 seconds", 15_000),
    ("30 seconds", 30_000),
    ("1 minute", 60_000),
    ("2 minutes", 120_000),
    ("5 minutes", 300_000),
    ("10 minutes", 600_000),
    ("30 minutes", 1_800_000),
]

# Volume sliders: (title, system key, max index, min index) with the emulator's stream ranges.
VOLUMES = [
    ("Media volume", "volume_music", 25, 0),
    ("Call volume", "volume_voice", 5, 1),
    ("Ring & notification volume", "volume_ring", 7, 0),
    ("Alarm volume", "volume_alarm", 7, 1),
]


# ---- small helpers -------------------------------------------------------------------------------


def _is_on(ctx: Ctx, namespace: str, key: str) -> bool:
    return ctx.setting(namespace, key, "0") == "1"


def _put_flag(ctx: Ctx, namespace: str, key: str, on: bool) -> None:
    ctx.put_setting(namespace, key, "1" if on else "0")


def _opener(ctx: Ctx, activity: str, **args: object) -> Callable[[], None]:
    return lambda: ctx.start(activity, **args)


def _main_switch(title: str, checked: bool, on_toggle: Callable[[], None]) -> Node:
    """The MainSwitchBar at the top of a feature page ("Use Bluetooth")."""
    row = item(title, on_click=on_toggle, trailing=switch(checked), title_rid="switch_text")
    row.checkable, row.checked = True, checked
    return row


def _radio_row(label: str, checked: bool, on_click: Callable[[], None]) -> Node:
    """One option of a single-choice list dialog (a CheckedTextView on the phone)."""
    mark = Node(cls=RADIO, kind="radio", checkable=True, checked=checked, rid="android:id/checkbox")
    row = item(label, on_click=on_click, trailing=mark, title_rid="android:id/text1")
    row.checkable, row.checked = True, checked
    return row


def _footer(value: str) -> Node:
    return text(value, size=14, rid="android:id/title")


def _close_dialog(ctx: Ctx) -> None:
    ctx.extra.pop("dialog", None)
    ctx.clear_focus()  # the closed dialog took the focused field with it


def _format_size(size: int) -> str:
    """Bytes as Android's Formatter writes them (SI units, switching up above 900)."""
    value, unit = float(size), "B"
    for next_unit in ("kB", "MB", "GB"):
        if value <= 900:
            break
        value, unit = value / 1000, next_unit
    if unit == "B":
        return f"{size} B"
    return f"{value:.2f} {unit}" if value < 100 else f"{value:.0f} {unit}"


# ---- home ----------------------------------------------------------------------------------------


def main_screen(ctx: Ctx) -> Screen:
    entries = [
        ("Network & internet", f"Mobile, {WIFI}, hotspot", NETWORK),
        ("Connected devices", "Bluetooth, pairing", CONNECTED_DEVICES),
        ("Apps", "Assistant, recent apps, default apps", APPS),
        ("Battery", f"{BATTERY_LEVEL}%", BATTERY),
        ("Sound & vibration", "Volume, haptics, Do Not Disturb", SOUND),
        ("Display", "Dark theme, font size, brightness", DISPLAY),
        ("System", "Languages, gestures, time, backup", SYSTEM),
        ("About phone", ctx.setting("global", "device_name"), ABOUT),
    ]
    rows = [item(title, summary, on_click=_opener(ctx, activity)) for title, summary, activity in entries]
    return Screen(title="Settings", rows=rows)


# ---- network & internet --------------------------------------------------------------------------


def _connected_ssid(ctx: Ctx) -> str | None:
    """The network Wi-Fi is associated with, or None when Wi-Fi is off or not connected."""
    if not _is_on(ctx, "global", "wifi_on"):
        return None
    rows = ctx.query(WIFI_DB, "SELECT ssid FROM networks WHERE connected = 1")
    return rows[0][0] if rows else None


def _set_airplane_mode(ctx: Ctx, on: bool) -> None:
    """Airplane mode turns the radios off and, when it ends, turns back on those that were on."""
    if on:
        wifi, bluetooth = _is_on(ctx, "global", "wifi_on"), _is_on(ctx, "global", "bluetooth_on")
        _put_flag(ctx, "global", "wifi_saved_state", wifi)
        _put_flag(ctx, "global", "bluetooth_saved_state", bluetooth)
        _put_flag(ctx, "global", "wifi_on", False)
        _set_bluetooth(ctx, False)
    else:
        # A radio the user turned on during airplane mode stays on.
        if _is_on(ctx, "global", "wifi_saved_state"):
            _put_flag(ctx, "global", "wifi_on", True)
        if _is_on(ctx, "global", "bluetooth_saved_state"):
            _set_bluetooth(ctx, True)
    _put_flag(ctx, "global", "airplane_mode_on", on)


def network_screen(ctx: Ctx) -> Screen:
    airplane = _is_on(ctx, "global", "airplane_mode_on")
    ssid = _connected_ssid(ctx)
    if ssid:
        internet = ssid
    elif _is_on(ctx, "global", "wifi_on"):
        internet = "Networks available"
    elif not airplane and _is_on(ctx, "global", "mobile_data"):
        internet = CARRIER
    else:
        internet = "Off"
    rows = [
        item("Internet", internet, on_click=_opener(ctx, INTERNET)),
        item(
            "Mobile network",
            "Airplane mode is on" if airplane else CARRIER,
            on_click=_opener(ctx, MOBILE_NETWORK),
        ),
        switch_item("Airplane mode", airplane, lambda: _set_airplane_mode(ctx, not airplane)),
        item("Hotspot & tethering", "Off"),
        item("Data Saver", "Off"),
        item("VPN", "None"),
        item("Private DNS", "Automatic"),
    ]
    return Screen(title="Network & internet", rows=rows, up=ctx.finish)


def _wifi_networks(ctx: Ctx) -> list[tuple[str, str, int, int, bool, bool]]:
    """(ssid, security, level, frequency, saved, connected) of the networks in range, as listed."""
    rows = ctx.query(
        WIFI_DB,
        "SELECT s.ssid, s.security, s.level, s.frequency, n.ssid IS NOT NULL, COALESCE(n.connected, 0)"
        " FROM scan_results s LEFT JOIN networks n ON n.ssid = s.ssid"
        " ORDER BY COALESCE(n.connected, 0) DESC, s.level DESC, s.ssid",
    )
    return [(ssid, sec, level, freq, bool(saved), bool(conn)) for ssid, sec, level, freq, saved, conn in rows]


def _connect(ctx: Ctx, ssid: str, security: str, password: str | None = None) -> None:
    """Associate with `ssid`, saving it first; a None password keeps the saved one."""
    with ctx.db(WIFI_DB) as conn:
        conn.execute("UPDATE networks SET connected = 0")
        conn.execute(
            "INSERT INTO networks (ssid, security, password, connected) VALUES (?, ?, ?, 1)"
            " ON CONFLICT(ssid) DO UPDATE SET connected = 1, password = COALESCE(?, password)",
            (ssid, security, password or "", password),
        )


def _forget(ctx: Ctx, ssid: str) -> None:
    ctx.execute(WIFI_DB, "DELETE FROM networks WHERE ssid = ?", (ssid,))


def internet_screen(ctx: Ctx) -> Screen:
    wifi_on = _is_on(ctx, "global", "wifi_on")
    rows = [switch_item(WIFI, wifi_on, lambda: _put_flag(ctx, "global", "wifi_on", not wifi_on))]
    if wifi_on:
        for ssid, security, _level, _freq, saved, connected in _wifi_networks(ctx):
            status = "Connected" if connected else ("Saved" if saved else "")
            rows.append(item(ssid, status, on_click=lambda s=ssid, sec=security: _tap_network(ctx, s, sec)))
        rows.append(
            item("Add network", on_click=lambda: _open_dialog(ctx, "add_network", new_ssid="", new_password=""))
        )
    else:
        rows.append(_footer(f"To see available networks, turn {WIFI} on."))
    saved = ctx.query(WIFI_DB, "SELECT count(*) FROM networks")[0][0]
    rows.append(
        item(
            "Saved networks",
            f"{saved} network{'s' if saved != 1 else ''}",
            on_click=_opener(ctx, SAVED_NETWORKS),
        )
    )
    return Screen(title="Internet", rows=rows, up=ctx.finish, dialog=_internet_dialog(ctx))


def _open_dialog(ctx: Ctx, name: str, **values: str) -> None:
    ctx.extra["dialog"] = name
    for key, value in values.items():
        ctx.set_field(key, value)


def _tap_network(ctx: Ctx, ssid: str, security: str) -> None:
    saved = ctx.query(WIFI_DB, "SELECT connected FROM networks WHERE ssid = ?", (ssid,))
    if saved and saved[0][0]:
        ctx.start(WIFI_DETAILS, ssid=ssid)
    elif saved or security == "NONE":
        _connect(ctx, ssid, security)
    else:
        ctx.extra["ssid"] = ssid
        ctx.extra["show_password"] = False
        _open_dialog(ctx, "password", wifi_password="")


def _internet_dialog(ctx: Ctx) -> Dialog | None:
    name = ctx.extra.get("dialog")
    if name == "password":
        ssid = ctx.extra["ssid"]
        show = ctx.extra.get("show_password", False)

        def connect() -> None:
            password = ctx.field("wifi_password")
            if len(password) < MIN_PASSWORD:
                return  # the real Connect button is disabled until the passphrase is long enough
            security = ctx.query(WIFI_DB, "SELECT security FROM scan_results WHERE ssid = ?", (ssid,))
            _connect(ctx, ssid, security[0][0] if security else "WPA2", password)
            _close_dialog(ctx)

        def toggle_show() -> None:
            ctx.extra["show_password"] = not show

        rows = [
            edit(
                "wifi_password",
                ctx.field("wifi_password"),
                "Password",
                "password",
                password=not show,
                focused=ctx.focused("wifi_password"),
            ),
            item("Show password", on_click=toggle_show, trailing=checkbox(show, rid="show_password")),
        ]
        return Dialog(
            title=ssid,
            rows=rows,
            buttons=[("Connect", connect), ("Cancel", lambda: _close_dialog(ctx))],
            on_cancel=lambda: _close_dialog(ctx),
        )
    if name == "add_network":

        def save() -> None:
            ssid, password = ctx.field("new_ssid").strip(), ctx.field("new_password")
            if not ssid or 0 < len(password) < MIN_PASSWORD:
                return  # Save is disabled without a name or with a too-short passphrase
            security = "WPA2" if password else "NONE"
            if ctx.query(WIFI_DB, "SELECT 1 FROM scan_results WHERE ssid = ?", (ssid,)):
                _connect(ctx, ssid, security, password)
            else:  # out of range: saved, to connect when it shows up
                ctx.execute(
                    WIFI_DB,
                    "INSERT OR REPLACE INTO networks (ssid, security, password, connected) VALUES (?, ?, ?, 0)",
                    (ssid, security, password),
                )
            _close_dialog(ctx)

        rows = [
            edit("new_ssid", ctx.field("new_ssid"), "Network name", "ssid", focused=ctx.focused("new_ssid")),
            edit(
                "new_password",
                ctx.field("new_password"),
                "Password",
                "password",
                password=True,
                focused=ctx.focused("new_password"),
            ),
        ]
        return Dialog(
            title="Add network",
            rows=rows,
            buttons=[("Save", save), ("Cancel", lambda: _close_dialog(ctx))],
            on_cancel=lambda: _close_dialog(ctx),
        )
    return None


def wifi_details_screen(ctx: Ctx) -> Screen:
    ssid = ctx.args["ssid"]
    saved = ctx.query(WIFI_DB, "SELECT security, connected FROM networks WHERE ssid = ?", (ssid,))
    scan = ctx.query(WIFI_DB, "SELECT security, level, frequency FROM scan_results WHERE ssid = ?", (ssid,))
    connected = bool(saved and saved[0][1]) and _is_on(ctx, "global", "wifi_on")
    status = "Connected" if connected else ("Saved" if saved else "Not in range")

    def forget() -> None:
        _forget(ctx, ssid)
        ctx.finish()

    def connect_or_disconnect() -> None:
        if connected:
            ctx.execute(WIFI_DB, "UPDATE networks SET connected = 0 WHERE ssid = ?", (ssid,))
        elif scan:
            _connect(ctx, ssid, scan[0][0])

    actions = [("Forget", forget, "button1")] if saved else []
    if scan:
        actions.append(("Disconnect" if connected else "Connect", connect_or_disconnect, "button3"))
    rows = [
        text(ssid, size=24, rid="entity_header_title", align="center"),
        text(status, size=14, rid="entity_header_summary", align="center"),
    ]
    if actions:
        rows.append(buttons(*actions))
    if scan:
        security, level, frequency = scan[0]
        rows += [
            item("Signal strength", SIGNAL_LABELS[level]),
            item("Frequency", "5 GHz" if frequency > 4900 else "2.4 GHz"),
            item("Security", SECURITY_LABELS[security]),
        ]
    rows.append(item("Privacy", "Use randomized MAC"))
    return Screen(title="Network details", rows=rows, up=ctx.finish)


def saved_networks_screen(ctx: Ctx) -> Screen:
    names = [r[0] for r in ctx.query(WIFI_DB, "SELECT ssid FROM networks ORDER BY ssid COLLATE NOCASE")]
    rows = [item(ssid, on_click=_opener(ctx, WIFI_DETAILS, ssid=ssid)) for ssid in names]
    if not rows:
        rows.append(_footer("No saved networks"))
    return Screen(title="Saved networks", rows=rows, up=ctx.finish)


def mobile_network_screen(ctx: Ctx) -> Screen:
    data = _is_on(ctx, "global", "mobile_data")
    roaming = _is_on(ctx, "global", "data_roaming")
    rows = [
        switch_item(
            "Mobile data",
            data,
            lambda: _put_flag(ctx, "global", "mobile_data", not data),
            "Access data using mobile network",
        ),
        switch_item(
            "Roaming",
            roaming,
            lambda: _put_flag(ctx, "global", "data_roaming", not roaming),
            "Connect to data services when roaming",
        ),
        item("Preferred network type", "5G (recommended)"),
        item("Access Point Names", "T-Mobile US"),
    ]
    return Screen(title=CARRIER, rows=rows, up=ctx.finish)


# ---- connected devices ---------------------------------------------------------------------------


def _set_bluetooth(ctx: Ctx, on: bool) -> None:
    if not on:  # the radio going down drops every connection
        ctx.execute(BT_DB, "UPDATE devices SET connected = 0")
    _put_flag(ctx, "global", "bluetooth_on", on)


def _paired_devices(ctx: Ctx) -> list[tuple[str, str, bool]]:
    rows = ctx.query(BT_DB, "SELECT address, name, connected FROM devices ORDER BY connected DESC, name")
    return [(address, name, bool(connected)) for address, name, connected in rows]


def connected_devices_screen(ctx: Ctx) -> Screen:
    bt_on = _is_on(ctx, "global", "bluetooth_on")
    rows = [header("Saved devices")]
    for _address, name, connected in _paired_devices(ctx):
        rows.append(item(name, "Connected" if connected and bt_on else ""))
    rows.append(item("Connection preferences", "Bluetooth, Android Auto", on_click=_opener(ctx, CONNECTION_PREFS)))
    if bt_on:
        rows.append(_footer(f"Visible as \u201c{ctx.setting('global', 'device_name')}\u201d to other devices"))
    return Screen(title="Connected devices", rows=rows, up=ctx.finish)


def connection_prefs_screen(ctx: Ctx) -> Screen:
    bt = "On" if _is_on(ctx, "global", "bluetooth_on") else "Off"
    rows = [
        item("Bluetooth", bt, on_click=_opener(ctx, BLUETOOTH)),
        item("Cast", "Not connected"),
        item("Printing", "1 print service on"),
        item("Android Auto", "Use apps on your car screen"),
    ]
    return Screen(title="Connection preferences", rows=rows, up=ctx.finish)


def bluetooth_screen(ctx: Ctx) -> Screen:
    bt_on = _is_on(ctx, "global", "bluetooth_on")
    rows = [_main_switch("Use Bluetooth", bt_on, lambda: _set_bluetooth(ctx, not bt_on))]
    if bt_on:
        rows.append(item("Device name", ctx.setting("global", "device_name")))
        rows.append(header("Paired devices"))
        for address, name, connected in _paired_devices(ctx):
            rows.append(
                item(
                    name,
                    "Connected" if connected else "",
                    on_click=lambda a=address, c=connected: _toggle_device(ctx, a, not c),
                )
            )
    rows.append(
        _footer("When Bluetooth is turned on, your device can communicate with other nearby Bluetooth devices.")
    )
    return Screen(title="Bluetooth", rows=rows, up=ctx.finish)


def _toggle_device(ctx: Ctx, address: str, connect: bool) -> None:
    ctx.execute(BT_DB, "UPDATE devices SET connected = ? WHERE address = ?", (int(connect), address))


# ---- apps ----------------------------------------------------------------------------------------


def _installed(phone: Phone) -> list[App]:
    """The apps user 0 has (`pm uninstall` takes an app off these lists; a disabled one stays)."""
    return [app for app in phone.apps.values() if packages.installed(phone, app.package)]


def apps_screen(ctx: Ctx) -> Screen:
    phone = ctx.phone
    recent = [pkg for pkg in reversed(phone.state.recents) if pkg in phone.apps and pkg != PACKAGE][:3]
    rows = []
    if recent:
        rows.append(header("Recently opened apps"))
        for pkg in recent:
            rows.append(item(phone.apps[pkg].label, "0 min. ago", on_click=_opener(ctx, APP_INFO, package=pkg)))
    rows.append(item(f"See all {len(_installed(phone))} apps", on_click=_opener(ctx, ALL_APPS)))
    rows.append(item("Default apps", "Chrome, Phone, and Messages"))
    rows.append(item("Special app access", "1 app can use unrestricted data"))
    return Screen(title="Apps", rows=rows, up=ctx.finish)


def all_apps_screen(ctx: Ctx) -> Screen:
    apps = sorted(_installed(ctx.phone), key=lambda a: a.label.lower())
    rows = [
        item(
            app.label,
            f"version {app.version_name}",
            on_click=_opener(ctx, APP_INFO, package=app.package),
            title_rid="app_name",
            subtitle_rid="app_size",
        )
        for app in apps
    ]
    return Screen(title="All apps", rows=rows, up=ctx.finish)


def _storage_sizes(ctx: Ctx, package: str) -> tuple[int, int, int]:
    """(app, user data, cache) bytes; the apk size is a stable made-up figure per package."""
    app = ctx.phone.apps[package]
    fs = ctx.phone.fs
    cache_dir = f"{app.data_dir}/cache/"
    data = cache = 0
    for path in fs.walk_files(app.data_dir):
        size = len(fs.read(path))
        if path.startswith(cache_dir):
            cache += size
        else:
            data += size
    apk = 5_000_000 + zlib.crc32(package.encode()) % 60_000_000
    return apk, data, cache


def app_info_screen(ctx: Ctx) -> Screen:
    package = ctx.args["package"]
    app = ctx.phone.apps.get(package) if packages.installed(ctx.phone, package) else None
    if app is None:  # uninstalled while its page was open
        return Screen(title="App info", rows=[_footer("App not installed.")], up=ctx.finish)
    running = package in ctx.phone.state.tasks

    def force_stop() -> None:
        _close_dialog(ctx)
        ctx.phone.force_stop(package)

    actions = buttons(
        ("Open", lambda: ctx.launch(package), "button1"),
        ("Force stop", lambda: _open_dialog(ctx, "force_stop"), "button3"),
    )
    for btn, enabled in zip(actions.children, (app.launcher, running), strict=True):
        if not enabled:
            btn.enabled, btn.clickable, btn.on_click = False, False, None
    apk, data, cache = _storage_sizes(ctx, package)
    rows = [
        text(app.label, size=24, rid="entity_header_title", align="center"),
        actions,
        item("Notifications", "~0 notifications per week"),
        item(
            "Permissions",
            "No permissions requested" if not app.permissions else f"{len(app.permissions)} permissions",
        ),
        item(
            "Storage & cache",
            f"{_format_size(apk + data + cache)} used in internal storage",
            on_click=_opener(ctx, APP_STORAGE, package=package),
        ),
        item(f"Mobile data & {WIFI}", "No data used"),
        _footer(f"version {app.version_name}"),
    ]
    dialog = None
    if ctx.extra.get("dialog") == "force_stop":
        dialog = Dialog(
            title="Force stop?",
            message="If you force stop an app, it may misbehave.",
            buttons=[("OK", force_stop), ("Cancel", lambda: _close_dialog(ctx))],
            on_cancel=lambda: _close_dialog(ctx),
        )
    return Screen(title="App info", rows=rows, up=ctx.finish, dialog=dialog)


def app_storage_screen(ctx: Ctx) -> Screen:
    package = ctx.args["package"]
    app = ctx.phone.apps[package]
    apk, data, cache = _storage_sizes(ctx, package)

    def clear_storage() -> None:
        _close_dialog(ctx)
        ctx.phone.clear_app_data(package)

    def clear_cache() -> None:
        if ctx.phone.fs.exists(f"{app.data_dir}/cache"):
            ctx.phone.fs.rmtree(f"{app.data_dir}/cache")
            ctx.refresh()

    rows = [
        text(app.label, size=24, rid="entity_header_title", align="center"),
        buttons(
            ("Clear storage", lambda: _open_dialog(ctx, "clear"), "button1"),
            ("Clear cache", clear_cache, "button2"),
        ),
        header("Space used"),
        item("App size", _format_size(apk)),
        item("User data", _format_size(data)),
        item("Cache", _format_size(cache)),
        item("Total", _format_size(apk + data + cache)),
    ]
    dialog = None
    if ctx.extra.get("dialog") == "clear":
        dialog = Dialog(
            title="Clear app data?",
            message="All this app\u2019s data will be deleted permanently. This includes all files, settings,"
            " accounts, databases, etc.",
            buttons=[("Delete", clear_storage), ("Cancel", lambda: _close_dialog(ctx))],
            on_cancel=lambda: _close_dialog(ctx),
        )
    return Screen(title="Storage & cache", rows=rows, up=ctx.finish, dialog=dialog)


# ---- battery -------------------------------------------------------------------------------------


def battery_screen(ctx: Ctx) -> Screen:
    saver = _is_on(ctx, "global", "low_power")
    percent = _is_on(ctx, "system", "status_bar_show_battery_percent")
    rows = [
        text(f"{BATTERY_LEVEL}%", size=36, rid="battery_percent"),
        text("Full charge", size=14, rid="summary1"),
        item("Battery usage", "View usage for past 24 hours"),
        item("Battery Saver", "On" if saver else "Off", on_click=_opener(ctx, BATTERY_SAVER)),
        item("Adaptive preferences", "Adaptive Battery and Adaptive Charging"),
        switch_item(
            "Battery percentage",
            percent,
            lambda: _put_flag(ctx, "system", "status_bar_show_battery_percent", not percent),
            "Show battery percentage in status bar",
        ),
    ]
    return Screen(title="Battery", rows=rows, up=ctx.finish)


def battery_saver_screen(ctx: Ctx) -> Screen:
    saver = _is_on(ctx, "global", "low_power")
    rows = [
        _main_switch("Use Battery Saver", saver, lambda: _put_flag(ctx, "global", "low_power", not saver)),
        item("Set a schedule", "No schedule"),
        _footer(
            "Battery Saver turns on Dark theme and limits or turns off background activity, some visual"
            " effects, certain features, and some network connections."
        ),
    ]
    return Screen(title="Battery Saver", rows=rows, up=ctx.finish)


# ---- sound ---------------------------------------------------------------------------------------


def sound_screen(ctx: Ctx) -> Screen:
    rows = []
    for title, key, top, bottom in VOLUMES:
        value = int(ctx.setting("system", key, str(bottom)))

        def set_volume(progress: float, key: str = key, top: int = top, bottom: int = bottom) -> None:
            ctx.put_setting("system", key, str(max(bottom, round(progress * top))))

        rows.append(slider(title, value / top, set_volume))
    zen = ctx.setting("global", "zen_mode", "0") != "0"
    rows += [
        switch_item(
            "Do Not Disturb",
            zen,
            lambda: ctx.put_setting("global", "zen_mode", "0" if zen else "1"),
            "On" if zen else "Off",
        ),
        item("Phone ringtone", "The Big Adventure"),
        item("Default notification sound", "Popcorn"),
        item("Default alarm sound", "Fresh Start"),
    ]
    return Screen(title="Sound & vibration", rows=rows, up=ctx.finish)


# ---- display -------------------------------------------------------------------------------------


def _timeout_label(ms: int) -> str:
    for label, value in SCREEN_TIMEOUTS:
        if value == ms:
            return label
    return f"{ms // 1000} seconds"


def display_screen(ctx: Ctx) -> Screen:
    brightness = int(ctx.setting("system", "screen_brightness", "102"))
    adaptive = _is_on(ctx, "system", "screen_brightness_mode")
    dark = ctx.setting("secure", "ui_night_mode") == "2"
    timeout = int(ctx.setting("system", "screen_off_timeout", "60000"))

    def set_brightness(progress: float) -> None:
        # The setting's range is 1..255 (config_screenBrightnessSettingMinimum is 1): the slider's left end is 1.
        ctx.put_setting("system", "screen_brightness", str(1 + round(progress * 254)))

    def choose_timeout(ms: int) -> None:
        ctx.put_setting("system", "screen_off_timeout", str(ms))
        _close_dialog(ctx)

    rows = [
        header("Brightness"),
        slider("Brightness level", brightness / 255, set_brightness),
        switch_item(
            "Adaptive brightness",
            adaptive,
            lambda: _put_flag(ctx, "system", "screen_brightness_mode", not adaptive),
            "Optimize brightness level for available light",
        ),
        header("Lock display"),
        item("Lock screen", "Show all notification content"),
        item(
            "Screen timeout",
            f"After {_timeout_label(timeout)} of inactivity",
            on_click=lambda: _open_dialog(ctx, "timeout"),
        ),
        header("Appearance"),
        switch_item(
            "Dark theme",
            dark,
            lambda: ctx.put_setting("secure", "ui_night_mode", "1" if dark else "2"),
            f"Will never turn {'off' if dark else 'on'} automatically",
        ),
        item("Font size", "Default"),
        item("Display size", "Default"),
    ]
    dialog = None
    if ctx.extra.get("dialog") == "timeout":
        options = [_radio_row(label, ms == timeout, lambda ms=ms: choose_timeout(ms)) for label, ms in SCREEN_TIMEOUTS]
        dialog = Dialog(
            title="Screen timeout",
            rows=options,
            buttons=[("Cancel", lambda: _close_dialog(ctx))],
            on_cancel=lambda: _close_dialog(ctx),
        )
    return Screen(title="Display", rows=rows, up=ctx.finish, dialog=dialog)


# ---- system --------------------------------------------------------------------------------------


def system_screen(ctx: Ctx) -> Screen:
    rows = [
        item("Languages & input", "Gboard"),
        item("Gestures"),
        item("Date & time", "GMT+00:00 Coordinated Universal Time", on_click=_opener(ctx, DATE_TIME)),
        item("Backup", "Off"),
    ]
    if _is_on(ctx, "global", "development_settings_enabled"):
        rows.append(item("Developer options", on_click=_opener(ctx, DEVELOPER)))
    rows.append(item("System update", "Updated to Android 13"))
    return Screen(title="System", rows=rows, up=ctx.finish)


def date_time_screen(ctx: Ctx) -> Screen:
    auto_time = _is_on(ctx, "global", "auto_time")
    auto_zone = _is_on(ctx, "global", "auto_time_zone")
    use_24 = ctx.setting("system", "time_12_24", "24") == "24"
    now = ctx.now()
    rows = [
        switch_item("Set time automatically", auto_time, lambda: _put_flag(ctx, "global", "auto_time", not auto_time)),
        item("Date", f"{now:%B} {now.day}, {now:%Y}", enabled=not auto_time),
        item("Time", now.strftime("%H:%M") if use_24 else now.strftime("%-I:%M %p"), enabled=not auto_time),
        header("Time zone"),
        switch_item(
            "Set time zone automatically",
            auto_zone,
            lambda: _put_flag(ctx, "global", "auto_time_zone", not auto_zone),
        ),
        item("Time zone", "GMT+00:00 Coordinated Universal Time", enabled=not auto_zone),
        header("Time format"),
        switch_item(
            "Use 24-hour format",
            use_24,
            lambda: ctx.put_setting("system", "time_12_24", "12" if use_24 else "24"),
            "13:00" if use_24 else "1:00 PM",
        ),
    ]
    return Screen(title="Date & time", rows=rows, up=ctx.finish)


def developer_screen(ctx: Ctx) -> Screen:
    enabled = _is_on(ctx, "global", "development_settings_enabled")
    adb = _is_on(ctx, "global", "adb_enabled")
    stay_awake = ctx.setting("global", "stay_on_while_plugged_in", "0") != "0"
    rows = [
        _main_switch(
            "Use developer options",
            enabled,
            lambda: _put_flag(ctx, "global", "development_settings_enabled", not enabled),
        )
    ]
    if enabled:
        rows += [
            switch_item(
                "Stay awake",
                stay_awake,
                # 7 = awake on AC, USB and wireless charging, what the switch writes
                lambda: ctx.put_setting("global", "stay_on_while_plugged_in", "0" if stay_awake else "7"),
                "Screen will never sleep while charging",
            ),
            header("Debugging"),
            switch_item(
                "USB debugging",
                adb,
                lambda: _put_flag(ctx, "global", "adb_enabled", not adb),
                "Debug mode when USB is connected",
            ),
        ]
    return Screen(title="Developer options", rows=rows, up=ctx.finish)


# ---- about phone ---------------------------------------------------------------------------------


def _build_number(props: dict[str, str]) -> str:
    """Build.DISPLAY, e.g. "sdk_gphone64_x86_64-userdebug 13 TE1A.220922.034 10940250 dev-keys"."""
    if "ro.build.display.id" in props:
        return props["ro.build.display.id"]
    # fingerprint = brand/product/device:release/id/incremental:type/tags
    fingerprint = props.get("ro.build.fingerprint", "")
    parts = fingerprint.split("/")
    if len(parts) == 6:
        build_id, incremental, tags = parts[3], parts[4].split(":")[0], parts[5]
    else:
        build_id, incremental, tags = "", "", ""
    words = [
        f"{props.get('ro.product.name', '')}-{props.get('ro.build.type', 'user')}",
        props.get("ro.build.version.release", ""),
        build_id,
        incremental,
        tags,
    ]
    return " ".join(w for w in words if w)


def _tap_build_number(ctx: Ctx) -> None:
    if _is_on(ctx, "global", "development_settings_enabled"):
        ctx.toast("No need, you are already a developer.")
        return
    left = ctx.extra.get("dev_taps_left", TAPS_TO_BE_A_DEVELOPER) - 1
    ctx.extra["dev_taps_left"] = left
    if left == 0:
        ctx.put_setting("global", "development_settings_enabled", "1")
        ctx.toast("You are now a developer!")
    elif left < TAPS_TO_BE_A_DEVELOPER - 2:  # the first two taps are silent, as on a phone
        ctx.toast(f"You are now {left} step{'s' if left > 1 else ''} away from being a developer.")


def about_screen(ctx: Ctx) -> Screen:
    props = ctx.phone.props
    name = ctx.setting("global", "device_name")
    ip = "10.0.2.16" if _connected_ssid(ctx) else "Unavailable"

    def rename() -> None:
        new_name = ctx.field("device_name").strip()
        if not new_name:
            return  # OK is disabled for an empty name
        ctx.put_setting("global", "device_name", new_name)
        ctx.put_setting("secure", "bluetooth_name", new_name)
        _close_dialog(ctx)

    rows = [
        item("Device name", name, on_click=lambda: _open_dialog(ctx, "rename", device_name=name)),
        item("Phone number (SIM slot 1)", "+1 555-521-5554"),
        item("Emergency information"),
        item("Legal information"),
        header("Device details"),
        item("SIM status", CARRIER),
        item("Model", props.get("ro.product.model", "")),
        item("IMEI", "358240051111110"),
        item("Android version", props.get("ro.build.version.release", "")),
        item("IP address", ip),
        item("Build number", _build_number(props), on_click=lambda: _tap_build_number(ctx)),
    ]
    dialog = None
    if ctx.extra.get("dialog") == "rename":
        field = edit("device_name", ctx.field("device_name"), "", "android:id/edit", focused=ctx.focused("device_name"))
        dialog = Dialog(
            title="Device name",
            rows=[field],
            buttons=[("OK", rename), ("Cancel", lambda: _close_dialog(ctx))],
            on_cancel=lambda: _close_dialog(ctx),
        )
    return Screen(title="About phone", rows=rows, up=ctx.finish, dialog=dialog)


# ---- install -------------------------------------------------------------------------------------


def install(phone: Phone) -> None:
    """Settings the provider should have, then wifi.db and bluetooth.db with their seed rows."""
    for namespace, values in SETTING_DEFAULTS.items():
        for key, value in values.items():
            if phone.get_setting(namespace, key) is None:
                phone.put_setting(namespace, key, value)
    with phone.fs.sqlite(WIFI_DB_PATH) as conn:
        # security: NONE, WPA2 or WPA3; level: 0 (very poor) .. 4 (excellent); frequency in MHz
        conn.execute(
            "CREATE TABLE IF NOT EXISTS scan_results (ssid TEXT PRIMARY KEY, security TEXT NOT NULL,"
            " level INTEGER NOT NULL, frequency INTEGER NOT NULL)"
        )
        # one row per saved network; at most one has connected = 1
        conn.execute(
            "CREATE TABLE IF NOT EXISTS networks (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " ssid TEXT NOT NULL UNIQUE, security TEXT NOT NULL, password TEXT NOT NULL DEFAULT '',"
            " connected INTEGER NOT NULL DEFAULT 0)"
        )
        conn.executemany("INSERT OR IGNORE INTO scan_results VALUES (?, ?, ?, ?)", SCAN_RESULTS)
        conn.execute("INSERT OR IGNORE INTO networks (ssid, security, connected) VALUES ('AndroidWifi', 'NONE', 1)")
    with phone.fs.sqlite(BT_DB_PATH) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS devices (address TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " kind TEXT NOT NULL, connected INTEGER NOT NULL DEFAULT 0)"
        )
        conn.executemany("INSERT OR IGNORE INTO devices (address, name, kind) VALUES (?, ?, ?)", PAIRED_DEVICES)


# ---- intents: the android.settings.* actions of the pages this app shows -------------------------------

_S = "android.settings."
_ACTIONS: list[tuple[str, tuple[str, ...]]] = [
    (MAIN, (_S + "SETTINGS",)),
    (NETWORK, (_S + "WIRELESS_SETTINGS", _S + "AIRPLANE_MODE_SETTINGS")),
    (".Settings$WifiSettingsActivity", (_S + "WIFI_SETTINGS",)),
    (INTERNET, (_S + "NETWORK_PROVIDER_SETTINGS",)),
    (MOBILE_NETWORK, (_S + "DATA_ROAMING_SETTINGS", _S + "NETWORK_OPERATOR_SETTINGS")),
    (BLUETOOTH, (_S + "BLUETOOTH_SETTINGS",)),
    (APPS, (_S + "APPLICATION_SETTINGS",)),
    (ALL_APPS, (_S + "MANAGE_APPLICATIONS_SETTINGS", _S + "MANAGE_ALL_APPLICATIONS_SETTINGS")),
    (BATTERY, ("android.intent.action.POWER_USAGE_SUMMARY",)),
    (BATTERY_SAVER, (_S + "BATTERY_SAVER_SETTINGS",)),
    (SOUND, (_S + "SOUND_SETTINGS",)),
    (DISPLAY, (_S + "DISPLAY_SETTINGS",)),
    (DATE_TIME, (_S + "DATE_SETTINGS",)),
    (DEVELOPER, (_S + "APPLICATION_DEVELOPMENT_SETTINGS",)),
    (ABOUT, (_S + "DEVICE_INFO_SETTINGS",)),
]
INTENT_FILTERS = [
    IntentFilter(MAIN, ("android.intent.action.MAIN",), (DEFAULT, "android.intent.category.LAUNCHER")),
    *(IntentFilter(activity, actions) for activity, actions in _ACTIONS),
    IntentFilter(APP_INFO, (_S + "APPLICATION_DETAILS_SETTINGS",), schemes=("package",)),
]


def on_intent(activity: str, intent: Intent) -> tuple[str, dict[str, Any]]:
    """APPLICATION_DETAILS_SETTINGS names its app as `package:PKG`."""
    if activity == APP_INFO:
        return activity, {"package": (intent.data or "").partition(":")[2]}
    return activity, {}


APP = App(
    package=PACKAGE,
    label="Settings",
    intent_filters=INTENT_FILTERS,
    aliases={".Settings$WifiSettingsActivity": INTERNET},  # Android 13 shows Wi-Fi on the Internet page
    on_intent=on_intent,
    activities={
        MAIN: main_screen,
        NETWORK: network_screen,
        INTERNET: internet_screen,
        WIFI_DETAILS: wifi_details_screen,
        SAVED_NETWORKS: saved_networks_screen,
        MOBILE_NETWORK: mobile_network_screen,
        CONNECTED_DEVICES: connected_devices_screen,
        CONNECTION_PREFS: connection_prefs_screen,
        BLUETOOTH: bluetooth_screen,
        APPS: apps_screen,
        ALL_APPS: all_apps_screen,
        APP_INFO: app_info_screen,
        APP_STORAGE: app_storage_screen,
        BATTERY: battery_screen,
        BATTERY_SAVER: battery_saver_screen,
        SOUND: sound_screen,
        DISPLAY: display_screen,
        SYSTEM: system_screen,
        DATE_TIME: date_time_screen,
        DEVELOPER: developer_screen,
        ABOUT: about_screen,
    },
    icon="⚙",
    color="#5f6368",
    version_name="13",
    install=install,
)
