"""Intents and packages on the simulated phone: `am start` parsing, output and resolution, extras reaching the
apps, activity names in dumpsys, `pm uninstall` / `install-existing` / `disable-user`, malformed intents."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import AdbServer, free_port_pair

from droidrl.envs.sim import intents
from droidrl.envs.sim.apps import calendar, contacts, files, markor, settings, sms
from droidrl.envs.sim.phone import Phone

CONTACTS, SMS, MARKOR = contacts.PACKAGE, sms.PACKAGE, markor.PACKAGE
PEOPLE = "com.google.android.contacts/com.android.contacts.activities.PeopleActivity"
NEW_TASK = "flg=0x10000000"


@pytest.fixture
def phone() -> Phone:
    return Phone()


def run(phone: Phone, command: str) -> tuple[str, str, int]:
    result = phone.shell(command)
    return result.stdout.decode(), result.stderr.decode(), result.exit_code


def field_texts(phone: Phone) -> dict[str, str]:
    """resource-id (without the package) -> text of the views on screen that have one."""
    found = re.findall(r'text="([^"]*)"[^>]*resource-id="[^":]*:id/([^"]*)"', phone.ui_xml())
    return {rid: text for text, rid in found}


# ==== am start: output and resolution ===================================================================
def test_view_contacts_uri_opens_the_people_list(phone):
    out, err, code = run(phone, "am start -a android.intent.action.VIEW -d content://contacts/people/")
    assert (out, err, code) == (
        "Starting: Intent { act=android.intent.action.VIEW dat=content://contacts/people/ }\n",
        "",
        0,
    )
    assert phone.current_activity() == (CONTACTS, contacts.LIST)


def test_insert_contact_prefills_the_editor_and_saves(phone):
    # android_world's contacts_utils.add_contact, as its adb command reaches the shell
    command = "am start -a android.intent.action.INSERT -t vnd.android.cursor.dir/contact"
    command += ' -e name "Ada Lovelace" -e phone 5550100'
    out, err, code = run(phone, command)
    assert (
        out == "Starting: Intent { act=android.intent.action.INSERT typ=vnd.android.cursor.dir/contact (has extras) }\n"
    )
    assert (err, code) == ("", 0)
    assert phone.current_activity() == (CONTACTS, contacts.EDITOR)
    fields = field_texts(phone)
    assert (fields["first_name"], fields["last_name"], fields["phone"]) == ("Ada", "Lovelace", "5550100")
    phone.tap_node(text="Save")  # find_and_click_element("SAVE") then matches this button
    assert phone.current_activity() == (CONTACTS, contacts.DETAILS)  # the saved contact, as on a phone
    with phone.fs.sqlite(contacts.DB_PATH) as conn:
        names = [row[0] for row in conn.execute("SELECT display_name FROM raw_contacts WHERE deleted = 0")]
    assert "Ada Lovelace" in names
    phone.press(4)  # BACK, as add_contact ends
    assert phone.current_activity()[0] != CONTACTS or phone.current_activity()[1] != contacts.EDITOR


def test_wait_option_reports_the_resolved_activity(phone):
    out, _, _ = run(phone, "am start -W -a android.intent.action.INSERT -t vnd.android.cursor.dir/contact -e name X")
    assert out.splitlines() == [
        "Starting: Intent { act=android.intent.action.INSERT typ=vnd.android.cursor.dir/contact (has extras) }",
        "Status: ok",
        "LaunchState: COLD",
        "Activity: com.google.android.contacts/com.android.contacts.activities.ContactEditorActivity",
        "TotalTime: 412",
        "WaitTime: 416",
        "Complete",
    ]


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("am start -a android.intent.action.DIAL -d tel:5551234", "act=android.intent.action.DIAL dat=tel:xxxxxxx"),
        (
            "am start https://example.org/a/b?q=1",
            "act=android.intent.action.VIEW dat=https://example.org/...",
        ),
        (
            "am start -a android.intent.action.VIEW -d content://com.android.calendar",  # no type: nobody
            "act=android.intent.action.VIEW dat=content://com.android.calendar",
        ),
        ("am start -a android.settings.LOCATION_SOURCE_SETTINGS", "act=android.settings.LOCATION_SOURCE_SETTINGS"),
    ],
)
def test_unresolvable_intent_is_reported_with_the_new_task_flag(phone, command, shown):
    out, err, code = run(phone, command)
    assert (out, code) == (f"Starting: Intent {{ {shown} }}\n", 0)
    assert err == f"Error: Activity not started, unable to resolve Intent {{ {shown} {NEW_TASK} }}\n"
    out, err, code = run(phone, command.replace("am start", "am start -W", 1))
    assert out.splitlines()[1] == f"Error: Activity not started, unable to resolve Intent {{ {shown} {NEW_TASK} }}"
    assert (err, code) == ("", 0)  # with -W errors go to stdout


def test_missing_activity_class(phone):
    out, err, code = run(phone, "am start -n com.nope/.Main")
    assert (out, code) == ("Starting: Intent { cmp=com.nope/.Main }\n", 0)
    assert err == "Error type 3\nError: Activity class {com.nope/com.nope.Main} does not exist.\n"
    _, err, _ = run(phone, f"am start -n {CONTACTS}/.activities.PeopleActivity")  # the wrong package prefix
    assert err.endswith(
        "Error: Activity class {com.google.android.contacts/com.google.android.contacts."
        "activities.PeopleActivity} does not exist.\n"
    )


def test_bare_component_and_categories_in_hash_order(phone):
    out, _, _ = run(phone, "am start com.android.settings/.Settings")
    assert out == (
        "Starting: Intent { act=android.intent.action.MAIN cat=[android.intent.category.LAUNCHER] "
        "cmp=com.android.settings/.Settings }\n"
    )
    out, _, _ = run(
        phone,
        "am start -a X -c android.intent.category.LAUNCHER -c android.intent.category.DEFAULT "
        "-c android.intent.category.BROWSABLE -f 0x4000 --activity-clear-top -p com.x",
    )
    # ArraySet order (String.hashCode), flags after the type, pkg before cmp
    assert out == (
        "Starting: Intent { act=X cat=[android.intent.category.DEFAULT,android.intent.category.LAUNCHER,"
        "android.intent.category.BROWSABLE] flg=0x4004000 pkg=com.x }\n"
    )


def test_main_launcher_needs_the_default_category_for_implicit_starts(phone):
    _, err, _ = run(
        phone, "am start -a android.intent.action.MAIN -c android.intent.category.LAUNCHER -p com.android.settings"
    )
    assert err == "" and phone.current_activity() == ("com.android.settings", settings.MAIN)
    _, err, _ = run(phone, f"am start -a android.intent.action.MAIN -c android.intent.category.LAUNCHER -p {MARKOR}")
    assert err.startswith("Error: Activity not started, unable to resolve Intent")  # Markor's filter has no DEFAULT
    run(phone, "am start -a android.intent.action.MAIN -c android.intent.category.HOME")
    assert phone.current_activity()[0] == "com.google.android.apps.nexuslauncher"


# Every component android_world's adb_utils._PATTERN_TO_ACTIVITY names for an app the phone has.
ANDROID_WORLD_COMPONENTS = [
    "com.android.settings/.Settings",
    "com.google.android.deskclock/com.android.deskclock.DeskClock",
    PEOPLE,
    "com.google.android.documentsui/com.android.documentsui.files.FilesActivity",
    "net.gsantner.markor/net.gsantner.markor.activity.MainActivity",
    "com.simplemobiletools.smsmessenger/com.simplemobiletools.smsmessenger.activities.MainActivity",
    "com.simplemobiletools.calendar.pro/com.simplemobiletools.calendar.pro.activities.MainActivity",
    "com.arduia.expense/com.arduia.expense.ui.MainActivity",
]


@pytest.mark.parametrize("component", ANDROID_WORLD_COMPONENTS)
def test_android_world_components_start(phone, component):
    out, err, code = run(phone, f"am start -W -n {component}")  # android_env's start_activity
    assert "Error" not in out + err and code == 0
    package, cls = intents.unflatten(component)
    assert out.splitlines()[3] == f"Activity: {intents.flatten_short(package, cls)}"
    dumped, _, _ = run(phone, "dumpsys activity activities")
    assert "topResumedActivity=ActivityRecord{" in dumped and f" {intents.flatten_short(package, cls)} t" in dumped
    stack, _, _ = run(phone, "am stack list")
    assert f"topActivity=ComponentInfo{{{package}/{cls}}}" in stack
    window, _, _ = run(phone, "dumpsys window windows | grep mCurrentFocus")
    assert window.strip().endswith(f" u0 {package}/{cls}}}")  # a window's title: the long component name


@pytest.mark.parametrize(
    ("action", "activity"),
    [
        ("android.settings.WIFI_SETTINGS", settings.INTERNET),
        ("android.settings.BLUETOOTH_SETTINGS", settings.BLUETOOTH),
        ("android.settings.DISPLAY_SETTINGS", settings.DISPLAY),
        ("android.settings.SETTINGS", settings.MAIN),
    ],
)
def test_settings_actions_open_their_pages(phone, action, activity):
    out, err, _ = run(phone, f"am start -a {action}")
    assert (out, err) == (f"Starting: Intent {{ act={action} }}\n", "")
    assert phone.current_activity() == ("com.android.settings", activity)


def test_app_details_settings_names_the_package(phone):
    run(phone, f"am start -a android.settings.APPLICATION_DETAILS_SETTINGS -d package:{MARKOR}")
    assert phone.current_activity() == ("com.android.settings", settings.APP_INFO)
    assert "Markor" in phone.ui_xml()


def test_calendar_insert_fills_the_event_editor(phone):
    command = (
        "am start -a android.intent.action.INSERT -t vnd.android.cursor.dir/event -e title Standup "
        "--el beginTime 1700000000000 -e eventLocation 'Room 1' -e description daily"
    )
    out, err, _ = run(phone, command)
    assert (out, err) == (
        "Starting: Intent { act=android.intent.action.INSERT typ=vnd.android.cursor.dir/event (has extras) }\n",
        "",
    )
    assert phone.current_activity() == (calendar.PACKAGE, calendar.EVENT)
    fields = field_texts(phone)
    assert (fields["event_title"], fields["event_location"], fields["event_description"]) == (
        "Standup",
        "Room 1",
        "daily",
    )
    run(phone, "am start -a android.intent.action.VIEW -d content://com.android.calendar/events/3")
    assert phone.current_activity() == (calendar.PACKAGE, calendar.MAIN)  # item/event: MainActivity


def test_sendto_sms_opens_the_thread_with_the_body(phone):
    out, err, _ = run(phone, 'am start -a android.intent.action.SENDTO -d sms:5551234 --es sms_body "see you"')
    assert (out, err) == ("Starting: Intent { act=android.intent.action.SENDTO dat=sms:xxxxxxx (has extras) }\n", "")
    assert phone.current_activity() == (SMS, sms.THREAD)
    assert field_texts(phone)["thread_type_message"] == "see you"
    dumped, _, _ = run(phone, "dumpsys activity activities")
    assert "com.simplemobiletools.smsmessenger/.activities.ThreadActivity" in dumped
    phone.tap_node(text="SMS")  # what android_world's send_sms taps for Simple SMS
    with phone.fs.sqlite(sms.DB_PATH) as conn:
        assert ("5551234", "see you") in conn.execute("SELECT address, body FROM sms").fetchall()


def test_document_intents_reach_documentsui_and_markor(phone):
    run(phone, "am start -a android.intent.action.GET_CONTENT -t '*/*'")
    assert phone.current_activity() == (files.PACKAGE, files.PICK)
    uri = "content://com.android.externalstorage.documents/document/primary%3ADownload"
    out, _, _ = run(phone, f"am start -a android.intent.action.VIEW -t vnd.android.document/directory -d {uri}")
    assert "dat=content://com.android.externalstorage.documents/document/primary:Download typ=" in out
    assert phone.current_activity() == (files.PACKAGE, files.FILES)
    assert 'text="Download"' in phone.ui_xml()
    phone.fs.write("/sdcard/Documents/plan.md", b"# the plan")
    run(phone, "am start -a android.intent.action.VIEW -t text/markdown -d file:///sdcard/Documents/plan.md")
    assert phone.current_activity() == (MARKOR, markor.EDITOR)
    assert 'text="# the plan"' in phone.ui_xml()


# ==== intent arguments ==================================================================================
def test_typed_extras_are_parsed_as_java_does():
    cmd = intents.ShellArgs(
        [
            *("--ei", "n", "0x10", "--el", "l", "-5", "--ez", "b", "t", "--ez", "z", "0", "--ef", "f", "1.5f"),
            *("--esa", "a", "x,y\\,z", "--eia", "ia", "1,2", "--esn", "nul", "-e", "s", "text", "--ecn", "c", "p/.C"),
        ]
    )
    intent = intents.parse_command_args(cmd, lambda opt, c: False)
    assert intent.extras == {
        "n": 16,
        "l": -5,
        "b": True,
        "z": False,
        "f": 1.5,
        "a": ["x", "y\\,z"],
        "ia": [1, 2],
        "nul": None,
        "s": "text",
        "c": "p/.C",
    }


@pytest.mark.parametrize(
    ("args", "exception"),
    [
        ("-n com.android.settings", "java.lang.IllegalArgumentException: Bad component name: com.android.settings"),
        ("--ei count notanint -a X", 'java.lang.NumberFormatException: For input string: "notanint"'),
        ("--ei count '' -a X", "java.lang.NumberFormatException: Zero length string"),
        ("--ez flag maybe -a X", "java.lang.IllegalArgumentException: Invalid boolean value: maybe"),
        ("--ef f 1,5 -a X", 'java.lang.NumberFormatException: For input string: "1,5"'),
        ("-a X --bogus", "java.lang.IllegalArgumentException: Unknown option: --bogus"),
        ("-a", 'java.lang.IllegalArgumentException: Argument expected after "-a"'),
        ("-W", "java.lang.IllegalArgumentException: No intent supplied"),
        ("-f lots -a X", 'java.lang.NumberFormatException: For input string: "lots"'),
    ],
)
def test_malformed_intents_get_the_java_exception(phone, args, exception):
    out, err, code = run(phone, f"am start {args}")
    assert (out, code) == ("", 255)
    lines = err.splitlines()
    assert lines[:3] == ["", "Exception occurred while executing 'start':", exception]
    assert lines[3].startswith("\tat ") and "Traceback" not in err
    assert run(phone, "echo still here") == ("still here\n", "", 0)


def test_stop_option_needs_a_resolvable_intent(phone):
    out, err, code = run(phone, "am start -S -a android.intent.action.DIAL -d tel:1")
    assert (out, code) == ("", 1)
    assert err == "Error: Intent does not match any activities: Intent { act=android.intent.action.DIAL dat=tel:x }\n"


# ==== pm uninstall / install-existing / disable-user ====================================================
def test_uninstalling_a_user_app_removes_it_everywhere(phone):
    run(phone, f"am start -n {MARKOR}/.activity.MainActivity")
    assert run(phone, f"pm uninstall {MARKOR}") == ("Success\n", "", 0)
    assert MARKOR not in run(phone, "pm list packages")[0]
    assert MARKOR not in run(phone, "pm list packages -u")[0]
    assert phone.current_activity()[0] == "com.google.android.apps.nexuslauncher"
    assert 'text="Markor"' not in phone.ui_xml()  # no launcher icon
    assert not phone.fs.exists(f"/data/data/{MARKOR}")
    _, err, _ = run(phone, f"am start -n {MARKOR}/.activity.MainActivity")
    assert err.endswith(f"Error: Activity class {{{MARKOR}/{MARKOR}.activity.MainActivity}} does not exist.\n")
    assert run(phone, f"pm uninstall {MARKOR}") == ("Failure [DELETE_FAILED_INTERNAL_ERROR]\n", "", 1)
    assert run(phone, f"pm install-existing {MARKOR}") == (
        f"android.content.pm.PackageManager$NameNotFoundException: Package {MARKOR} doesn't exist\n",
        "",
        1,
    )
    assert run(phone, f"dumpsys package {MARKOR}")[0] == f"Dexopt state:\n  Unable to find package: {MARKOR}\n"
    assert run(phone, f"pm path {MARKOR}") == ("", "", 1)
    _, err, code = run(phone, f"monkey -p {MARKOR} 1")
    assert (err, code) == ("** No activities found to run, monkey aborted.\n", 251)


def test_system_app_is_uninstalled_for_the_user_and_comes_back(phone):
    assert run(phone, f"pm uninstall {CONTACTS}") == ("Failure [DELETE_FAILED_INTERNAL_ERROR]\n", "", 1)
    assert run(phone, f"pm uninstall -k --user 0 {CONTACTS}") == ("Success\n", "", 0)
    assert run(phone, f"pm uninstall --user 0 {CONTACTS}") == ("Failure [not installed for 0]\n", "", 1)
    assert f"package:{CONTACTS}\n" not in run(phone, "pm list packages")[0]
    assert f"package:{CONTACTS}\n" in run(phone, "pm list packages -u")[0]
    assert " installed=false " in run(phone, f"dumpsys package {CONTACTS}")[0]
    _, err, _ = run(phone, "am start -a android.intent.action.VIEW -d content://contacts/people/")
    assert err.startswith("Error: Activity not started, unable to resolve")
    assert run(phone, f"pm install-existing {CONTACTS}") == (
        f"Package {CONTACTS} installed for user: 0\n",
        "",
        0,
    )
    run(phone, "am start -a android.intent.action.VIEW -d content://contacts/people/")
    assert phone.current_activity() == (CONTACTS, contacts.LIST)
    assert " installed=true " in run(phone, f"dumpsys package {CONTACTS}")[0]


def test_uninstall_usage_errors(phone):
    assert run(phone, "pm uninstall") == ("Error: package name not specified\n", "", 1)
    assert run(phone, "pm uninstall -x pkg") == ("Error: Unknown option: -x\n", "", 1)
    assert run(phone, "pm uninstall no.such.app") == ("Failure [DELETE_FAILED_INTERNAL_ERROR]\n", "", 1)
    assert run(phone, "pm uninstall --user 0 no.such.app") == ("Failure [not installed for 0]\n", "", 1)


def test_disable_user_hides_the_app_until_enabled(phone):
    assert run(phone, f"pm disable-user --user 0 {SMS}") == (f"Package {SMS} new state: disabled-user\n", "", 0)
    assert f"package:{SMS}\n" in run(phone, "pm list packages -d")[0]
    assert f"package:{SMS}\n" not in run(phone, "pm list packages -e")[0]
    _, err, _ = run(phone, "am start -a android.intent.action.SENDTO -d sms:1")
    assert err.startswith("Error: Activity not started, unable to resolve")
    assert " enabled=3 " in run(phone, f"dumpsys package {SMS}")[0]
    assert run(phone, f"pm enable {SMS}") == (f"Package {SMS} new state: enabled\n", "", 0)
    run(phone, "am start -a android.intent.action.SENDTO -d sms:1")
    assert phone.current_activity() == (SMS, sms.THREAD)


def test_package_state_is_part_of_a_snapshot(phone):
    run(phone, f"pm uninstall --user 0 {CONTACTS}")
    phone.save_snapshot("no_contacts")
    run(phone, f"pm install-existing {CONTACTS}")
    phone.load_snapshot("no_contacts")
    assert f"package:{CONTACTS}\n" not in run(phone, "pm list packages")[0]
    assert f"package:{CONTACTS}\n" in Phone().shell("pm list packages").stdout.decode()  # a fresh phone has it


def test_pm_clear_of_the_contacts_provider(phone):
    # android_world's clear_contacts: `pm clear com.android.providers.contacts`
    assert run(phone, "pm clear com.android.providers.contacts") == ("Success\n", "", 0)
    run(phone, "am start -a android.intent.action.VIEW -d content://contacts/people/")
    assert phone.current_activity() == (CONTACTS, contacts.LIST)


# ==== through Debian's adb against droidrl-emulator =====================================================
def _emulator_command() -> list[str]:
    script = Path(sys.executable).parent / "droidrl-emulator"
    return [str(script)] if script.exists() else [sys.executable, "-m", "droidrl.envs.sim.emulator"]


@pytest.mark.adb
def test_intents_through_adb_and_droidrl_emulator(adb_server: AdbServer):
    console = free_port_pair()
    serial = f"127.0.0.1:{console + 1}"
    args = ["-avd", "intents", "-ports", f"{console},{console + 1}", "-no-window", "-no-snapshot"]
    proc = subprocess.Popen(
        [*_emulator_command(), *args], env=adb_server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("Boot completed" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        assert adb_server.adb("connect", serial).stdout.decode().startswith(f"connected to {serial}")
        adb_server.wait_for_device(serial)
        # android_world's add_contact sends one shell string; adb joins it as the device shell sees it
        command = "am start -a android.intent.action.INSERT -t vnd.android.cursor.dir/contact"
        command += ' -e name "Grace Hopper" -e phone 5550199'
        result = adb_server.adb("-s", serial, "shell", command)
        assert result.stdout == (
            b"Starting: Intent { act=android.intent.action.INSERT typ=vnd.android.cursor.dir/contact (has extras) }\n"
        )
        assert (result.stderr, result.returncode) == (b"", 0)
        dump = adb_server.adb("-s", serial, "shell", "uiautomator dump /sdcard/ui.xml && cat /sdcard/ui.xml").stdout
        assert b'text="Grace"' in dump and b'text="Hopper"' in dump and b'text="5550199"' in dump
        top = adb_server.adb("-s", serial, "shell", "dumpsys activity activities | grep topResumedActivity").stdout
        assert b"com.google.android.contacts/com.android.contacts.activities.ContactEditorActivity" in top
        bad = adb_server.adb("-s", serial, "shell", "am start --ei n x -a X")
        assert bad.returncode == 255 and b'java.lang.NumberFormatException: For input string: "x"' in bad.stderr
        gone = adb_server.adb("-s", serial, "shell", f"pm uninstall {MARKOR}")
        assert (gone.stdout, gone.returncode) == (b"Success\n", 0)
        listed = adb_server.adb("-s", serial, "shell", "pm list packages").stdout.decode().split()
        assert f"package:{MARKOR}" not in listed and f"package:{CONTACTS}" in listed
    finally:
        adb_server.adb("disconnect", serial)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_pm_resolve_activity_uses_every_filter(phone):
    # resolve-activity queries with flags 0: a launcher-only MAIN filter (no CATEGORY_DEFAULT) counts here
    assert run(phone, f"pm resolve-activity --brief {MARKOR}") == (
        "priority=0 preferredOrder=0 match=0x108000 specificIndex=-1 isDefault=false\n"
        f"{MARKOR}/.activity.MainActivity\n",
        "",
        0,
    )
    assert run(phone, "cmd package resolve-activity --components -a android.intent.action.VIEW -t text/markdown") == (
        f"{MARKOR}/.activity.DocumentActivity\n",
        "",
        0,
    )
    assert run(phone, "pm resolve-activity --brief -a android.intent.action.DIAL -d tel:1") == (
        "No activity found\n",
        "",
        0,
    )
    launchers, _, _ = run(
        phone, "pm query-activities --components -a android.intent.action.MAIN -c android.intent.category.LAUNCHER"
    )
    assert PEOPLE in launchers.splitlines() and f"{MARKOR}/.activity.MainActivity" in launchers.splitlines()
    run(phone, f"pm uninstall {MARKOR}")
    assert f"{MARKOR}/" not in run(phone, "pm query-activities --components -a android.intent.action.MAIN")[0]


def test_dumpsys_package_lists_the_activity_filters(phone):
    dumped, _, _ = run(phone, f"dumpsys package {MARKOR}")
    table, _, rest = dumped.partition("\n\nPackages:\n")
    assert rest.startswith(f"  Package [{MARKOR}]")
    lines = table.splitlines()
    assert lines[0] == "Activity Resolver Table:"
    # what launcher-activity parsers read: the MAIN entry under Non-Data Actions, 6/8/10-space indents
    main = lines.index("      android.intent.action.MAIN:", lines.index("  Non-Data Actions:"))
    assert re.fullmatch(
        r"        [0-9a-f]{7} net\.gsantner\.markor/\.activity\.MainActivity filter [0-9a-f]{7}", lines[main + 1]
    )
    assert lines[main + 2 : main + 4] == [
        '          Action: "android.intent.action.MAIN"',
        '          Category: "android.intent.category.LAUNCHER"',
    ]
    assert "      text/markdown:" in lines  # Full MIME Types of DocumentActivity's VIEW/EDIT filters


def test_an_installed_apk_package_can_be_removed_and_installed_again(phone):
    # a package the phone knows only by its data directory (what `pm install` leaves)
    phone.fs.makedirs("/data/data/com.example.helper")
    assert "package:com.example.helper\n" in run(phone, "pm list packages")[0]
    assert run(phone, "pm uninstall com.example.helper") == ("Success\n", "", 0)
    assert "com.example.helper" not in run(phone, "pm list packages -u")[0]
    phone.fs.makedirs("/data/data/com.example.helper")  # installed again
    assert "package:com.example.helper\n" in run(phone, "pm list packages")[0]


def test_pm_clear_needs_the_package_installed_for_the_user(phone):
    run(phone, f"pm uninstall --user 0 {MARKOR}")
    assert run(phone, f"pm clear {MARKOR}") == ("", "Failed\n", 1)
    run(phone, f"pm install-existing {MARKOR}")
    assert run(phone, f"pm clear {MARKOR}") == ("Success\n", "", 0)


def test_selector_resolves_in_place_of_the_intent(phone):
    # Intent.makeMainSelectorActivity(ACTION_MAIN, CATEGORY_APP_CONTACTS), as `am` spells it
    out, err, _ = run(
        phone, "am start -a android.intent.action.MAIN --selector -c android.intent.category.APP_CONTACTS"
    )
    # Intent.toShortString writes " sel=" + the selector + "}" (no opening brace)
    assert (
        out == "Starting: Intent { act=android.intent.action.MAIN sel=cat=[android.intent.category.APP_CONTACTS]} }\n"
    )
    assert err == "" and phone.current_activity() == (CONTACTS, contacts.LIST)


def test_document_uris_take_their_type_from_the_documents_provider(phone):
    phone.fs.write("/sdcard/Documents/notes.txt", b"plain words")
    documents = "content://com.android.externalstorage.documents/document/primary%3A"
    run(phone, f"am start -a android.intent.action.VIEW -d {documents}Download")  # a folder: DocumentsUI
    assert phone.current_activity() == (files.PACKAGE, files.FILES)
    run(phone, f"am start -a android.intent.action.VIEW -d {documents}Documents%2Fnotes.txt")  # text/plain: Markor
    assert phone.current_activity() == (MARKOR, markor.EDITOR)
    assert 'text="plain words"' in phone.ui_xml()
    _, err, _ = run(phone, f"am start -a android.intent.action.VIEW -d {documents}Documents%2Fnone.txt")
    assert err.startswith("Error: Activity not started, unable to resolve")  # no such document: no type


def test_settings_app_list_follows_uninstalls(phone):
    run(phone, "am start -a android.settings.MANAGE_APPLICATIONS_SETTINGS")
    assert 'text="Markor"' in phone.ui_xml()
    run(phone, f"pm uninstall {MARKOR}")
    run(phone, "am start -a android.settings.MANAGE_APPLICATIONS_SETTINGS")
    assert phone.current_activity() == ("com.android.settings", settings.ALL_APPS)
    assert 'text="Markor"' not in phone.ui_xml() and 'text="Contacts"' in phone.ui_xml()


def test_bare_package_needs_a_default_launcher_filter(phone):
    # as `am start org.mozilla.fenix` answers on a device: the launcher filter has no CATEGORY_DEFAULT
    out, err, code = run(phone, f"am start {MARKOR}")
    intent = f"act=android.intent.action.MAIN cat=[android.intent.category.LAUNCHER] pkg={MARKOR}"
    assert (out, code) == (f"Starting: Intent {{ {intent} }}\n", 0)
    assert err == (
        "Error: Activity not started, unable to resolve Intent { act=android.intent.action.MAIN "
        f"cat=[android.intent.category.LAUNCHER] {NEW_TASK} pkg={MARKOR} }}\n"
    )
    assert run(phone, "am start com.android.settings")[1] == ""  # Settings' filter has it
    assert phone.current_activity() == ("com.android.settings", settings.MAIN)
