"""Task templates for the Settings app (com.android.settings), named after android_world's System* tasks.

Switches are read from the settings provider, Wi-Fi networks from Settings' wifi.db, as a checker would.
"""

from __future__ import annotations

import random
import re

from droidrl.envs.actions import Action, Back, Finish, Launch, Tap, Type, resolve_app, to_grid
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiNode, UiView
from droidrl.envs.tasks.state import answer_matches, answer_number, app_db, get_setting, put_setting, query_db, write_db

SETTINGS = "com.android.settings"
CLOCK = "com.google.android.deskclock"
WIFI = "Wi\u2011Fi"  # Settings writes Wi-Fi with a non-breaking hyphen
WIFI_DB = app_db(SETTINGS, "wifi.db")
CLOCK_DB = app_db(CLOCK, "alarms.db")

# Networks in range of the simulated phone (Settings' scan results), with their security.
SECURED_IN_RANGE = {
    "HomeNet-5G": "WPA2",
    "HomeNet": "WPA2",
    "Office-Secure": "WPA3",
    "NETGEAR47": "WPA2",
    "Linksys00521": "WPA2",
}
OUT_OF_RANGE = ["Guest-Lounge", "Library_WiFi", "Studio-5G", "Cabin Net", "Airport_Free", "TP-Link_3F2A"]
PASSWORDS = ["sunflower42", "blue-river-88", "Tr0ub4dor&3", "correcthorse", "P@ssw0rd2023", "kettle-lamp-19"]
DEVICE_NAMES = ["Alex's Pixel", "Work Phone", "Pixel Travel", "Kitchen Tablet", "Maria's Phone", "Test Device 7"]
# (label, screen_off_timeout ms) as the Display page lists them.
TIMEOUTS = [("15 seconds", 15_000), ("30 seconds", 30_000), ("2 minutes", 120_000), ("5 minutes", 300_000)]
TIMEOUTS += [("10 minutes", 600_000), ("30 minutes", 1_800_000)]
ALARM_LABELS = ["Gym", "Meds", "Standup", "Call mom", "Laundry", "Bus"]


# ---- navigation ----------------------------------------------------------------------------------


def _title(view: UiView) -> str:
    """The page title in the Settings toolbar ("Settings" on the home page)."""
    for node in view.nodes:
        toolbar = node.package == SETTINGS and node.cls.endswith("TextView") and node.bounds[1] < 230
        if toolbar and not node.rid and node.text:
            return node.text
    return ""


def _entry(view: UiView, text: str) -> UiNode | None:
    """A list entry (preference title) by its text."""
    return view.find(text=text, rid="android:id/title") or view.find(text=text)


def _tap_entry(view: UiView, text: str) -> Action:
    node = _entry(view, text)
    return view.tap(node) if node is not None else view.scroll_down()


def _navigate(view: UiView, route: list[tuple[str, str]], target: str) -> Action | None:
    """The next step along `route` ((page title, entry to tap) pairs) to the page titled `target`.

    None when the target page is on screen; Back from a page off the route; Launch outside Settings.
    """
    if view.app != SETTINGS:
        return Launch("Settings")
    title = _title(view)
    if title == target:
        return None
    for page, entry in route:
        if title == page:
            return _tap_entry(view, entry)
    return Back()


def _switch_row(view: UiView, title: str) -> Action:
    """Tap a switch preference by its title: the whole row toggles, as on a phone."""
    return _tap_entry(view, title)


ROUTE_NETWORK = [("Settings", "Network & internet")]
ROUTE_INTERNET = [*ROUTE_NETWORK, ("Network & internet", "Internet")]
ROUTE_BLUETOOTH = [
    ("Settings", "Connected devices"),
    ("Connected devices", "Connection preferences"),
    ("Connection preferences", "Bluetooth"),
]
ROUTE_DISPLAY = [("Settings", "Display")]
ROUTE_ABOUT = [("Settings", "About phone")]
ROUTE_DEVELOPER = [("Settings", "System"), ("System", "Developer options")]


# ---- state helpers -------------------------------------------------------------------------------


def _flag(device: Device, namespace: str, key: str) -> bool:
    return get_setting(device, namespace, key) == "1"


def _networks(device: Device) -> dict[str, tuple[str, str, int]]:
    """Saved networks: ssid -> (security, password, connected)."""
    rows = query_db(device, WIFI_DB, "SELECT ssid, security, password, connected FROM networks")
    return {ssid: (security, password, connected) for ssid, security, password, connected in rows}


def _save_networks(device: Device, networks: list[tuple[str, str, str]]) -> None:
    """Save (ssid, security, password) networks, not connected."""
    statements = [
        ("INSERT INTO networks (ssid, security, password, connected) VALUES (?, ?, ?, 0)", network)
        for network in networks
    ]
    write_db(device, WIFI_DB, statements, SETTINGS)


# ---- Wi-Fi on/off (the worked example) -----------------------------------------------------------


def wifi_switch_step(view: UiView) -> Action:
    """The next step from any screen towards the Wi-Fi switch on Settings' Internet page, and the tap on it."""
    if view.app != SETTINGS:
        return Launch("Settings")
    if view.has(text=WIFI, rid="android:id/title"):  # the Internet page: the first switch is Wi-Fi's
        return view.tap(view.find(rid="android:id/switch_widget"))
    if view.has(text="Internet", rid="android:id/title"):
        return view.tap(view.find(text="Internet", rid="android:id/title"))
    network = view.find(text="Network & internet", rid="android:id/title")
    return view.tap(network) if network is not None else Back()


def _wifi_setup(on_at_start: bool):
    def setup(device: Device, params: Params) -> None:
        put_setting(device, "global", "wifi_on", "1" if on_at_start else "0")

    return setup


def _wifi_evaluate(on: bool):
    def evaluate(device: Device, params: Params, answer: str | None) -> float:
        return float(get_setting(device, "global", "wifi_on") == ("1" if on else "0"))

    return evaluate


def _wifi_expert(on: bool):
    def expert(device: Device, params: Params) -> Action:
        if get_setting(device, "global", "wifi_on") == ("1" if on else "0"):
            return Finish()
        return wifi_switch_step(UiView.of(device))

    return expert


# ---- simple switches -----------------------------------------------------------------------------


def _switch_task(
    name: str,
    goal: str,
    namespace: str,
    key: str,
    values: tuple[str, str],
    route: list[tuple[str, str]],
    page: str,
    title: str,
    difficulty: str,
) -> TaskTemplate:
    """A template that flips one switch preference from values[0] to values[1]."""
    start, goal_value = values

    def setup(device: Device, params: Params) -> None:
        put_setting(device, namespace, key, start)

    def evaluate(device: Device, params: Params, answer: str | None) -> float:
        return float(get_setting(device, namespace, key) == goal_value)

    def expert(device: Device, params: Params) -> Action:
        if get_setting(device, namespace, key) == goal_value:
            return Finish()
        view = UiView.of(device)
        step = _navigate(view, route, page)
        return step if step is not None else _switch_row(view, title)

    return TaskTemplate(
        name=name,
        apps=(SETTINGS,),
        goal=goal,
        difficulty=difficulty,  # type: ignore[arg-type]
        kind="operation",
        setup=setup,
        evaluate=evaluate,
        expert=expert,
    )


# ---- brightness ----------------------------------------------------------------------------------


def _brightness_params(rng: random.Random) -> Params:
    return {"start": rng.randint(60, 200)}


def _brightness_setup(device: Device, params: Params) -> None:
    put_setting(device, "system", "screen_brightness_mode", "0")  # manual, so the slider value sticks
    put_setting(device, "system", "screen_brightness", str(params["start"]))


def _brightness_ok(device: Device, to_max: bool) -> bool:
    value = get_setting(device, "system", "screen_brightness")
    if value is None or not value.isdigit():
        return False
    return int(value) == 255 if to_max else int(value) <= 1  # a phone's slider bottom writes 0 or 1


def _brightness_evaluate(to_max: bool):
    def evaluate(device: Device, params: Params, answer: str | None) -> float:
        return float(_brightness_ok(device, to_max))

    return evaluate


def _brightness_expert(to_max: bool):
    def expert(device: Device, params: Params) -> Action:
        if _brightness_ok(device, to_max):
            return Finish()
        view = UiView.of(device)
        step = _navigate(view, ROUTE_DISPLAY, "Display")
        if step is not None:
            return step
        bar = view.find(cls="SeekBar")
        if bar is None:
            return view.scroll_up()
        left, top, right, bottom = bar.bounds
        x = right - 1 if to_max else left  # the very end of the bar
        return Tap(to_grid((x, (top + bottom) // 2), *view.size))

    return expert


# ---- Wi-Fi networks ------------------------------------------------------------------------------


def _connect_saved_params(rng: random.Random) -> Params:
    ssid = rng.choice(sorted(SECURED_IN_RANGE))
    return {"ssid": ssid, "password": rng.choice(PASSWORDS)}


def _connect_saved_setup(device: Device, params: Params) -> None:
    _save_networks(device, [(params["ssid"], SECURED_IN_RANGE[params["ssid"]], params["password"])])
    put_setting(device, "global", "wifi_on", "0")


def _connected_to(device: Device, ssid: str) -> bool:
    saved = _networks(device).get(ssid)
    return _flag(device, "global", "wifi_on") and saved is not None and saved[2] == 1


def _connected_evaluate(device: Device, params: Params, answer: str | None) -> float:
    """Connected to the network with the given password, and the emulator's own network still saved."""
    saved = _networks(device)
    ok = _connected_to(device, params["ssid"]) and saved[params["ssid"]][1] == params["password"]
    return float(ok and "AndroidWifi" in saved)


def _connect_saved_expert(device: Device, params: Params) -> Action:
    if _connected_to(device, params["ssid"]):
        return Finish()
    view = UiView.of(device)
    step = _navigate(view, ROUTE_INTERNET, "Internet")
    if step is not None:
        return step
    if not _flag(device, "global", "wifi_on"):
        return _switch_row(view, WIFI)
    return _tap_entry(view, params["ssid"])


def _password_params(rng: random.Random) -> Params:
    return {"ssid": rng.choice(sorted(SECURED_IN_RANGE)), "password": rng.choice(PASSWORDS)}


def _fill_password(view: UiView, value: str) -> Action | None:
    """Like `_fill` for the masked "password" field, which shows one dot per character."""
    field = view.find(rid="password")
    if field is None:
        return Back()
    if field.text in (value, "\u2022" * len(value)):
        return None
    focused = view.focused_field()
    if focused is None or focused.rid != field.rid:
        return view.tap(field)
    return Type(value)


def _password_expert(device: Device, params: Params) -> Action:
    if _connected_to(device, params["ssid"]):
        return Finish()
    view = UiView.of(device)
    step = _navigate(view, ROUTE_INTERNET, "Internet")
    if step is not None:
        return step
    if view.has(text=params["ssid"], rid="alertTitle"):  # the password dialog
        step = _fill_password(view, params["password"])
        return step if step is not None else view.tap(view.find(text="Connect"))
    return _tap_entry(view, params["ssid"])


def _add_network_params(rng: random.Random) -> Params:
    return {"ssid": rng.choice(OUT_OF_RANGE), "password": rng.choice(PASSWORDS)}


def _add_network_saved(device: Device, params: Params) -> bool:
    saved = _networks(device).get(params["ssid"])
    return saved is not None and saved[1] == params["password"]


def _add_network_evaluate(device: Device, params: Params, answer: str | None) -> float:
    saved = _networks(device)
    ok = _add_network_saved(device, params) and saved[params["ssid"]][0] == "WPA2"
    return float(ok and "AndroidWifi" in saved)


def _add_network_expert(device: Device, params: Params) -> Action:
    if _add_network_saved(device, params):
        return Finish()
    view = UiView.of(device)
    step = _navigate(view, ROUTE_INTERNET, "Internet")
    if step is not None:
        return step
    if not _flag(device, "global", "wifi_on"):
        return _switch_row(view, WIFI)
    if not view.has(text="Add network", rid="alertTitle"):
        return _tap_entry(view, "Add network")
    step = view.fill("ssid", params["ssid"])
    if step is not None:
        return step
    step = _fill_password(view, params["password"])
    return step if step is not None else view.tap(view.find(text="Save"))


def _forget_params(rng: random.Random) -> Params:
    first, second = rng.sample(sorted(SECURED_IN_RANGE), 2)
    return {"ssid": first, "other": second, "password": rng.choice(PASSWORDS)}


def _forget_setup(device: Device, params: Params) -> None:
    networks = [(ssid, SECURED_IN_RANGE[ssid], params["password"]) for ssid in (params["ssid"], params["other"])]
    _save_networks(device, networks)


def _forget_evaluate(device: Device, params: Params, answer: str | None) -> float:
    saved = _networks(device)
    return float(params["ssid"] not in saved and {params["other"], "AndroidWifi"} <= set(saved))


def _forget_expert(device: Device, params: Params) -> Action:
    if params["ssid"] not in _networks(device):
        return Finish()
    view = UiView.of(device)
    route = [*ROUTE_INTERNET, ("Internet", "Saved networks"), ("Saved networks", params["ssid"])]
    step = _navigate(view, route, "Network details")
    if step is not None:
        return step
    return view.tap(view.find(text="Forget"))


# ---- apps ----------------------------------------------------------------------------------------


def _clear_params(rng: random.Random) -> Params:
    hour, minutes = rng.randint(4, 11), rng.choice([0, 10, 15, 20, 40, 45, 50])
    return {"label": rng.choice(ALARM_LABELS), "hour": hour, "minutes": minutes}


def _clear_setup(device: Device, params: Params) -> None:
    sql = (
        "INSERT INTO alarm_templates (hour, minutes, enabled, daysofweek, vibrate, label, ringtone)"
        " VALUES (?, ?, 1, 0, 1, ?, 'content://settings/system/alarm_alert')"
    )
    city = "INSERT INTO cities (city_id, name, utc_offset_min) VALUES ('C_TOKYO', 'Tokyo', 540)"
    write_db(device, CLOCK_DB, [(sql, (params["hour"], params["minutes"], params["label"])), (city, ())], CLOCK)


def _clock_cleared(device: Device, params: Params) -> bool:
    alarms = query_db(device, CLOCK_DB, "SELECT hour, minutes, label FROM alarm_templates ORDER BY _id")
    cities = query_db(device, CLOCK_DB, "SELECT count(*) FROM cities")
    return alarms == [(7, 0, ""), (8, 30, "")] and cities == [(0,)]  # a fresh install's alarms, no cities


def _clear_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_clock_cleared(device, params))


def _clear_expert(device: Device, params: Params) -> Action:
    if _clock_cleared(device, params):
        return Finish()
    view = UiView.of(device)
    if view.app == SETTINGS and _title(view) == "Apps":
        see_all = view.find(contains="See all")
        return view.tap(see_all) if see_all is not None else view.scroll_down()
    route = [
        ("Settings", "Apps"),
        ("All apps", "Clock"),
        ("App info", "Storage & cache"),
    ]
    step = _navigate(view, route, "Storage & cache")
    if step is not None:
        return step
    if view.has(text="Clear app data?"):
        return view.tap(view.find(text="Delete"))
    return view.tap(view.find(text="Clear storage"))


# ---- force stop ------------------------------------------------------------------------------------

FORCE_STOP_APPS = ["Clock", "Contacts"]


def _force_stop_params(rng: random.Random) -> Params:
    return {"app": rng.choice(FORCE_STOP_APPS)}


def _force_stop_setup(device: Device, params: Params) -> None:
    device.launch(resolve_app(params["app"]))  # running in the background, as users leave apps
    device.key("HOME")


def _force_stopped(device: Device, params: Params) -> bool:
    package = resolve_app(params["app"])
    return "stopped=true" in device.shell(f"dumpsys package {package}")


def _force_stop_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_force_stopped(device, params))


def _force_stop_expert(device: Device, params: Params) -> Action:
    if _force_stopped(device, params):
        return Finish()
    view = UiView.of(device)
    if view.app == SETTINGS and _title(view) == "Apps":
        see_all = view.find(contains="See all")
        return view.tap(see_all) if see_all is not None else view.scroll_down()
    step = _navigate(view, [("Settings", "Apps"), ("All apps", params["app"])], "App info")
    if step is not None:
        return step
    if view.has(text="Force stop?"):
        return view.tap(view.find(text="OK"))
    return view.tap(view.find(text="Force stop"))


# ---- developer options ---------------------------------------------------------------------------


def _stay_awake_setup(device: Device, params: Params) -> None:
    put_setting(device, "global", "development_settings_enabled", "0")
    put_setting(device, "global", "stay_on_while_plugged_in", "0")


def _stay_awake_on(device: Device) -> bool:
    return get_setting(device, "global", "stay_on_while_plugged_in") not in (None, "0")


def _stay_awake_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(_stay_awake_on(device))


def _stay_awake_expert(device: Device, params: Params) -> Action:
    if _stay_awake_on(device):
        return Finish()
    view = UiView.of(device)
    if not _flag(device, "global", "development_settings_enabled"):
        # Developer options are hidden: tap Build number until they show up.
        step = _navigate(view, ROUTE_ABOUT, "About phone")
        return step if step is not None else _tap_entry(view, "Build number")
    step = _navigate(view, ROUTE_DEVELOPER, "Developer options")
    return step if step is not None else _switch_row(view, "Stay awake")


# ---- device name ---------------------------------------------------------------------------------


def _rename_params(rng: random.Random) -> Params:
    return {"name": rng.choice(DEVICE_NAMES)}


def _rename_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(get_setting(device, "global", "device_name") == params["name"])


def _rename_expert(device: Device, params: Params) -> Action:
    if get_setting(device, "global", "device_name") == params["name"]:
        return Finish()
    view = UiView.of(device)
    step = _navigate(view, ROUTE_ABOUT, "About phone")
    if step is not None:
        return step
    if not view.has(text="Device name", rid="alertTitle"):
        return _tap_entry(view, "Device name")
    step = view.fill("android:id/edit", params["name"])
    return step if step is not None else view.tap(view.find(text="OK"))


# ---- queries -------------------------------------------------------------------------------------


def _about_query_expert(label: str):
    def expert(device: Device, params: Params) -> Action:
        view = UiView.of(device)
        step = _navigate(view, ROUTE_ABOUT, "About phone")
        if step is not None:
            return step
        title = _entry(view, label)
        if title is None:
            return view.scroll_down()
        index = view.nodes.index(title)
        return Finish(view.nodes[index + 1].text)  # the summary under the title

    return expert


def _android_version_evaluate(device: Device, params: Params, answer: str | None) -> float:
    release = device.shell("getprop ro.build.version.release").strip()
    number = answer_number(answer)
    return float(number is not None and release.replace(".", "", 1).isdigit() and number == float(release))


def _model_evaluate(device: Device, params: Params, answer: str | None) -> float:
    model = device.shell("getprop ro.product.model").strip()
    return float(bool(model) and answer_matches(answer, model))


def _saved_count_params(rng: random.Random) -> Params:
    extra = rng.sample(sorted(SECURED_IN_RANGE) + OUT_OF_RANGE[:3], rng.randint(1, 4))
    return {"extra": extra, "password": rng.choice(PASSWORDS)}


def _saved_count_setup(device: Device, params: Params) -> None:
    networks = [(ssid, SECURED_IN_RANGE.get(ssid, "WPA2"), params["password"]) for ssid in params["extra"]]
    _save_networks(device, networks)


def _saved_count_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_number(answer) == len(_networks(device)))


def _saved_count_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    step = _navigate(view, ROUTE_INTERNET, "Internet")
    if step is not None:
        return step
    title = _entry(view, "Saved networks")
    if title is None:
        return view.scroll_down()
    summary = view.nodes[view.nodes.index(title) + 1].text  # "3 networks"
    return Finish(summary.split()[0])


def _timeout_params(rng: random.Random) -> Params:
    label, ms = rng.choice(TIMEOUTS)
    return {"label": label, "ms": ms}


def _timeout_setup(device: Device, params: Params) -> None:
    put_setting(device, "system", "screen_off_timeout", str(params["ms"]))


def _timeout_evaluate(device: Device, params: Params, answer: str | None) -> float:
    """The number and its unit: "5 minutes", "After 5 min", "5 minutes of inactivity" all pass."""
    amount, unit = params["label"].split()
    text = (answer or "").lower()
    unit_ok = re.search(rf"\b{unit[:3]}", text) is not None
    return float(answer_number(answer) == float(amount) and unit_ok)


def _timeout_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    step = _navigate(view, ROUTE_DISPLAY, "Display")
    if step is not None:
        return step
    title = _entry(view, "Screen timeout")
    if title is None:
        return view.scroll_down()
    summary = view.nodes[view.nodes.index(title) + 1].text  # "After 5 minutes of inactivity"
    return Finish(summary.removeprefix("After ").removesuffix(" of inactivity"))


TEMPLATES = [
    TaskTemplate(
        name="SystemWifiTurnOff",
        apps=(SETTINGS,),
        goal="Turn off Wi-Fi.",
        difficulty="easy",
        kind="operation",
        setup=_wifi_setup(True),
        evaluate=_wifi_evaluate(False),
        expert=_wifi_expert(False),
    ),
    TaskTemplate(
        name="SystemWifiTurnOn",
        apps=(SETTINGS,),
        goal="Turn on Wi-Fi.",
        difficulty="easy",
        kind="operation",
        setup=_wifi_setup(False),
        evaluate=_wifi_evaluate(True),
        expert=_wifi_expert(True),
    ),
    _switch_task(
        "SystemBluetoothTurnOn",
        "Turn on Bluetooth.",
        "global",
        "bluetooth_on",
        ("0", "1"),
        ROUTE_BLUETOOTH,
        "Bluetooth",
        "Use Bluetooth",
        "medium",
    ),
    _switch_task(
        "SystemBluetoothTurnOff",
        "Turn off Bluetooth.",
        "global",
        "bluetooth_on",
        ("1", "0"),
        ROUTE_BLUETOOTH,
        "Bluetooth",
        "Use Bluetooth",
        "medium",
    ),
    _switch_task(
        "SystemAirplaneModeOn",
        "Turn on airplane mode.",
        "global",
        "airplane_mode_on",
        ("0", "1"),
        ROUTE_NETWORK,
        "Network & internet",
        "Airplane mode",
        "easy",
    ),
    _switch_task(
        "SystemDarkThemeOn",
        "Turn on the dark theme.",
        "secure",
        "ui_night_mode",
        ("1", "2"),
        ROUTE_DISPLAY,
        "Display",
        "Dark theme",
        "easy",
    ),
    TaskTemplate(
        name="SystemBrightnessMax",
        apps=(SETTINGS,),
        goal="Turn the screen brightness to its maximum.",
        difficulty="easy",
        kind="operation",
        params=_brightness_params,
        setup=_brightness_setup,
        evaluate=_brightness_evaluate(True),
        expert=_brightness_expert(True),
    ),
    TaskTemplate(
        name="SystemBrightnessMin",
        apps=(SETTINGS,),
        goal="Turn the screen brightness to its minimum.",
        difficulty="easy",
        kind="operation",
        params=_brightness_params,
        setup=_brightness_setup,
        evaluate=_brightness_evaluate(False),
        expert=_brightness_expert(False),
    ),
    TaskTemplate(
        name="SystemWifiConnectSaved",
        apps=(SETTINGS,),
        goal="Connect to the saved Wi-Fi network {ssid}.",
        difficulty="medium",
        kind="operation",
        params=_connect_saved_params,
        setup=_connect_saved_setup,
        evaluate=_connected_evaluate,
        expert=_connect_saved_expert,
    ),
    TaskTemplate(
        name="SystemWifiConnectPassword",
        apps=(SETTINGS,),
        goal="Connect to the Wi-Fi network {ssid}; its password is {password}.",
        difficulty="medium",
        kind="operation",
        params=_password_params,
        evaluate=_connected_evaluate,
        expert=_password_expert,
    ),
    TaskTemplate(
        name="SystemWifiAddNetwork",
        apps=(SETTINGS,),
        goal="Add the Wi-Fi network {ssid} with the password {password}.",
        difficulty="medium",
        kind="operation",
        params=_add_network_params,
        setup=_wifi_setup(False),
        evaluate=_add_network_evaluate,
        expert=_add_network_expert,
    ),
    TaskTemplate(
        name="SystemWifiForgetNetwork",
        apps=(SETTINGS,),
        goal="Forget the saved Wi-Fi network {ssid}.",
        difficulty="medium",
        kind="operation",
        params=_forget_params,
        setup=_forget_setup,
        evaluate=_forget_evaluate,
        expert=_forget_expert,
    ),
    TaskTemplate(
        name="SystemAppClearStorage",
        apps=(SETTINGS,),
        goal="Clear all the storage (app data) of the Clock app.",
        difficulty="medium",
        kind="operation",
        params=_clear_params,
        setup=_clear_setup,
        evaluate=_clear_evaluate,
        expert=_clear_expert,
    ),
    TaskTemplate(
        name="SystemAppForceStop",
        apps=(SETTINGS,),
        goal="Force stop the {app} app.",
        difficulty="medium",
        kind="operation",
        params=_force_stop_params,
        setup=_force_stop_setup,
        evaluate=_force_stop_evaluate,
        expert=_force_stop_expert,
    ),
    TaskTemplate(
        name="SystemStayAwakeOn",
        apps=(SETTINGS,),
        goal="Turn on the 'Stay awake' developer option; developer options are not enabled yet.",
        difficulty="hard",
        kind="operation",
        setup=_stay_awake_setup,
        evaluate=_stay_awake_evaluate,
        expert=_stay_awake_expert,
    ),
    TaskTemplate(
        name="SystemRenameDevice",
        apps=(SETTINGS,),
        goal="Rename this phone to '{name}'.",
        difficulty="medium",
        kind="operation",
        params=_rename_params,
        evaluate=_rename_evaluate,
        expert=_rename_expert,
    ),
    TaskTemplate(
        name="SystemAndroidVersionQuery",
        apps=(SETTINGS,),
        goal="What Android version is this phone running? Answer with the version number.",
        difficulty="easy",
        kind="query",
        evaluate=_android_version_evaluate,
        expert=_about_query_expert("Android version"),
    ),
    TaskTemplate(
        name="SystemPhoneModelQuery",
        apps=(SETTINGS,),
        goal="What is the model of this phone, as shown in About phone?",
        difficulty="easy",
        kind="query",
        evaluate=_model_evaluate,
        expert=_about_query_expert("Model"),
    ),
    TaskTemplate(
        name="SystemWifiSavedCountQuery",
        apps=(SETTINGS,),
        goal="How many Wi-Fi networks are saved on this phone?",
        difficulty="easy",
        kind="query",
        params=_saved_count_params,
        setup=_saved_count_setup,
        evaluate=_saved_count_evaluate,
        expert=_saved_count_expert,
    ),
    TaskTemplate(
        name="SystemScreenTimeoutQuery",
        apps=(SETTINGS,),
        goal="After how long of inactivity does the screen turn off?",
        difficulty="easy",
        kind="query",
        params=_timeout_params,
        setup=_timeout_setup,
        evaluate=_timeout_evaluate,
        expert=_timeout_expert,
    ),
]
