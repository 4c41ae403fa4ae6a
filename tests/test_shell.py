"""The simulated `/system/bin/sh`: syntax, device commands, and the output formats client libraries parse.

Formats are checked with the regexes the clients themselves use (copied below with the file they come
from) and, for adbutils, by calling its real parsing methods on an in-process device.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shlex
import struct
import time

import pytest
from adbutils._utils import list2cmdline
from adbutils.screenshot import ScreenshotExtesion
from adbutils.shell import ShellExtension
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from droidrl.envs.sim.phone import Phone
from droidrl.envs.sim.shell import ShellResult, run

SETTINGS = "com.android.settings"
CONTACTS = "com.google.android.contacts"
LAUNCHER = "com.google.android.apps.nexuslauncher"
CONTACTS_DB = "/data/data/com.android.providers.contacts/databases/contacts2.db"


@pytest.fixture
def phone() -> Phone:
    return Phone()


def sh(phone: Phone, command: str) -> ShellResult:
    return run(phone, command)


def out(phone: Phone, command: str) -> str:
    result = run(phone, command)
    assert result.exit_code == 0, (command, result)
    return result.stdout.decode()


# ==== interpreter: (command, stdout, exit code) ===================================================
SYNTAX = [
    ("echo hi", "hi\n", 0),
    ("", "", 0),
    ("true; false", "", 1),
    ("false; echo $?", "1\n", 0),
    ("true && echo yes || echo no", "yes\n", 0),
    ("false && echo yes || echo no", "no\n", 0),
    ("false || false && echo x", "", 1),
    ("! false && echo negated", "negated\n", 0),
    ("pwd; echo X4EXIT:$?", "/\nX4EXIT:0\n", 0),  # adbutils' shell v1 exit-code trick
    ("nosuch; echo X4EXIT:$?", "X4EXIT:127\n", 0),
    ("exit 3", "", 3),
    ("echo a; exit 42; echo b", "a\n", 42),
    ("exit 300", "", 44),
    ("(exit 5); echo $?", "5\n", 0),
    ("echo 'a;b&&c||d|e'", "a;b&&c||d|e\n", 0),
    ('echo "a;b" \'$HOME\' "$HOME" \\$HOME', "a;b $HOME / $HOME\n", 0),
    ("echo \"x\\\"y\" 'it'\\''s'", "x\"y it's\n", 0),
    ("echo a\\ b   c", "a b c\n", 0),
    ('echo ""; echo "" | wc -c', "\n1\n", 0),
    ("echo $EXTERNAL_STORAGE $ANDROID_DATA $HOME ${HOME}x", "/sdcard /data / /x\n", 0),
    ("echo $UNSET_VAR end", "end\n", 0),
    ("echo ${UNSET:-dflt} ${HOME:+set}", "dflt set\n", 0),
    ("X=1; echo $X; X=2 Y=3; echo $X$Y", "1\n23\n", 0),
    ("x=$(false); echo $?; x=$(true); echo $?", "1\n0\n", 0),
    ("false; echo $(echo $?)", "1\n", 0),
    ("export A=b; echo $A", "b\n", 0),
    ("echo $(echo inner) `echo back`", "inner back\n", 0),
    ("echo \"$(echo 'a  b')\" $(echo 'a  b')", "a  b a b\n", 0),
    ("echo $((2 + 3 * 4)) $((7 / 2)) $((-7 / 2)) $((1 == 1))", "14 3 -3 1\n", 0),
    ("echo one # a comment", "one\n", 0),
    ("echo a#b", "a#b\n", 0),
    ("echo a\necho b", "a\nb\n", 0),
    ("echo a |\ngrep a", "a\n", 0),
    ("if true; then echo t; else echo f; fi", "t\n", 0),
    ("if false; then echo t; elif true; then echo e; fi", "e\n", 0),
    ("if false; then echo t; fi", "", 0),
    ("for x in 1 2 3; do echo $x; done", "1\n2\n3\n", 0),
    ("for x in; do echo $x; done", "", 0),
    ("n=0; while [ $n -lt 3 ]; do n=$((n+1)); done; echo $n", "3\n", 0),
    ("until true; do echo never; done; echo done", "done\n", 0),
    ("{ echo a; echo b; } | wc -l", "2\n", 0),
    ("cd /sdcard; (cd /data); pwd", "/sdcard\n", 0),
    ("echo out 2>/dev/null", "out\n", 0),
    ("ls /nope 2>&1", "ls: /nope: No such file or directory\n", 1),
    ("ls /nope 2>&1 >/dev/null | wc -l", "1\n", 0),
    ("echo x >&2 2>/dev/null", "", 0),
    ("echo x > /dev/null", "", 0),
    ("echo x | cat | cat", "x\n", 0),
    ("false | true", "", 0),
    ("true | false", "", 1),
    ("exit 3 | echo still", "still\n", 0),
    ("sh -c 'exit 7'; echo $?", "7\n", 0),
    ("eval 'echo a; echo b'", "a\nb\n", 0),
    ("command -v ls", "/system/bin/ls\n", 0),
    ("/system/bin/echo full path", "full path\n", 0),
    ("echo ~ ~/x '~'", "/ /x ~\n", 0),
]


@pytest.mark.parametrize(("command", "stdout", "exit_code"), SYNTAX)
def test_interpreter(phone, command, stdout, exit_code):
    result = sh(phone, command)
    assert (result.stdout.decode(), result.exit_code) == (stdout, exit_code), result.stderr


@pytest.mark.parametrize(
    ("command", "stderr", "exit_code"),
    [
        ("nosuch arg", "/system/bin/sh: nosuch: inaccessible or not found\n", 127),
        (
            "/data/local/tmp/nosuch",
            "/system/bin/sh: /data/local/tmp/nosuch: inaccessible or not found\n",
            127,
        ),
        ("echo 'unterminated", "/system/bin/sh: syntax error: unterminated '\n", 1),
        (
            "if true; then echo x",
            "/system/bin/sh: syntax error: end of input unexpected, expecting 'fi'\n",
            1,
        ),
        ("echo a | ", "/system/bin/sh: syntax error: end of input unexpected\n", 1),
        ("echo x > /nope/dir/f", "/system/bin/sh: can't create /nope/dir/f: No such file or directory\n", 1),
        ("cat < /nope", "/system/bin/sh: can't open /nope: No such file or directory\n", 1),
        ("cd /nope", "/system/bin/sh: cd: /nope: No such file or directory\n", 2),
        ("cat /nope", "cat: /nope: No such file or directory\n", 1),
        ("cat /sdcard", "cat: /sdcard: Is a directory\n", 1),
        ("ls -z", "ls: Unknown option 'z' (see \"ls --help\")\n", 1),
    ],
)
def test_errors_look_like_mksh_and_toybox(phone, command, stderr, exit_code):
    result = sh(phone, command)
    assert (result.stderr.decode(), result.exit_code) == (stderr, exit_code)


def test_syntax_error_runs_nothing(phone):
    assert sh(phone, "touch /sdcard/ran; fi").exit_code == 1
    assert not phone.fs.exists("/sdcard/ran")


def test_globs_match_the_phone_filesystem(phone):
    out(phone, "touch /sdcard/Download/a.txt /sdcard/Download/b.txt /sdcard/Download/c.png")
    assert out(phone, "echo /sdcard/Download/*.txt") == "/sdcard/Download/a.txt /sdcard/Download/b.txt\n"
    assert out(phone, "cd /sdcard/Download && echo ?.png") == "c.png\n"
    assert out(phone, "echo '/sdcard/Download/*.txt' /sdcard/*.none") == "/sdcard/Download/*.txt /sdcard/*.none\n"
    assert out(phone, "rm -r /sdcard/Download/*; ls /sdcard/Download") == ""
    result = sh(phone, "rm -r /sdcard/Download/*")  # nothing left: the pattern stays literal, as in sh
    assert (result.exit_code, result.stderr) == (1, b"rm: /sdcard/Download/*: No such file or directory\n")


def test_redirections_write_and_append_files(phone):
    out(phone, "echo one > /sdcard/f.txt; echo two >> /sdcard/f.txt; echo err 2>> /sdcard/f.txt >&2")
    assert phone.fs.read("/sdcard/f.txt") == b"one\ntwo\nerr\n"
    out(phone, "echo new > /sdcard/f.txt")
    assert phone.fs.read("/sdcard/f.txt") == b"new\n"
    assert out(phone, "cat < /sdcard/f.txt | wc -l") == "1\n"
    assert sh(phone, "echo x > /sdcard").stderr == b"/system/bin/sh: can't create /sdcard: Is a directory\n"


def test_android_world_file_helpers(phone):
    """The shell scripts android_world/utils/file_utils.py sends (create_file, check_file_exists)."""
    content = "it's here".replace("'", "'\"'\"'")
    out(phone, f"mkdir -p /sdcard/Documents/notes; echo '{content}' > /sdcard/Documents/notes/a.md")
    assert phone.fs.read("/sdcard/Documents/notes/a.md") == b"it's here\n"
    script = '\n  if [ {test} "{path}" ]; then\n      echo "Exists"\n  else\n      echo "Does not exist"\n  fi\n  '
    assert out(phone, script.format(test="-f", path="/sdcard/Documents/notes/a.md")) == "Exists\n"
    assert out(phone, script.format(test="-d", path="/sdcard/Documents/notes/a.md")) == "Does not exist\n"
    assert out(phone, "find /sdcard/Documents -type f -o -type d") == (
        "/sdcard/Documents\n/sdcard/Documents/Markor\n/sdcard/Documents/notes\n/sdcard/Documents/notes/a.md\n"
    )
    out(phone, "mkdir -p /sdcard/copy && cp -a /sdcard/Documents/. /sdcard/copy/")
    assert phone.fs.read("/sdcard/copy/notes/a.md") == b"it's here\n"


# ==== `input text`: typed verbatim, never executed ================================================
INJECTIONS = [
    "hello",
    "it's",
    'say "hi"',
    "a;reboot",
    "$(reboot)",
    "`reboot`",
    "$HOME",
    "a && b || c | d",
    "> /sdcard/pwned",
    "back\\slash",
    "tab\there",
    "multi\nline",
    "*",
    "100%",
    "naïve café 日本語 🙂",
    "-d 0",
]


@pytest.fixture
def typed(phone, monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(phone, "type_text", calls.append)
    return calls


@pytest.mark.parametrize("text", INJECTIONS)
def test_input_text_quoted_like_adbutils_arrives_verbatim(phone, typed, text):
    # adbutils.send_keys joins ["input", "text", text] with shlex.quote (adbutils/_utils.py list2cmdline).
    result = sh(phone, list2cmdline(["input", "text", text]))
    assert (result.exit_code, typed) == (0, [text])
    assert not phone.fs.exists("/sdcard/pwned")


@pytest.mark.parametrize("word", ["it's", "a;b", "$(reboot)", "`id`", "x|y", "<a>", "(p)", "#tag", 'q"', "&"])
def test_input_text_escaped_like_android_world_arrives_verbatim(phone, typed, word):
    # android_world/env/adb_utils.py _adb_text_format backslash-escapes \ ; | ` space ' " & < > ( ) # $.
    escaped = "".join("\\" + c if c in "\\;|`\r '\"&<>()#$" else c for c in word)
    assert sh(phone, "input text " + escaped).exit_code == 0
    assert typed == [word]


def test_input_text_percent_s_is_a_space_and_only_the_first_argument_counts(phone, typed):
    out(phone, "input text hello%sworld; input text a b; input text 100%; input text ''")
    assert typed == ["hello world", "a", "100%"]


_TYPING_PHONE = Phone()  # shared by hypothesis examples; only its type_text is used


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1))
def test_any_text_survives_shlex_quoting(text):
    typed: list[str] = []
    _TYPING_PHONE.type_text = typed.append
    result = run(_TYPING_PHONE, "input text " + shlex.quote(text))
    assert result.exit_code == 0
    assert typed == ([text.replace("%s", " ")] if text.replace("%s", " ") else [])


# ==== input: events reach the phone, errors look like InputShellCommand ===========================
def test_input_commands_reach_the_phone(phone, monkeypatch):
    calls = []
    for name in ("tap", "swipe", "key", "key_combination"):
        monkeypatch.setattr(phone, name, lambda *a, _n=name: calls.append((_n, *a)))
    out(
        phone,
        "input tap 100 200.7; input -d 0 tap 1 2; input touchscreen swipe 1 2 3 4; input swipe 1 2 3 4 900",
    )
    out(phone, "input keyevent KEYCODE_HOME BACK 66; input keyevent --longpress 4; input keyevent NOPE")
    out(phone, "input keycombination 113 29 && input keyevent 67")  # android_world's clear_text
    out(phone, "input draganddrop 1 2 3 4 100; input press; input roll 1 1")
    assert calls == [
        ("tap", 100, 200),
        ("tap", 1, 2),
        ("swipe", 1, 2, 3, 4, 300),
        ("swipe", 1, 2, 3, 4, 900),
        ("key", 3),
        ("key", 4),
        ("key", 66),
        ("key", 4),
        ("key_combination", [113, 29]),
        ("key", 67),
        ("swipe", 1, 2, 3, 4, 500),
    ]


_JAVA_ERROR = "java.lang.IllegalArgumentException: "
INPUT_ERRORS = [
    ("input tap 1", "", ["", "Exception occurred while executing 'tap':",
                         _JAVA_ERROR + 'Argument expected after "1"'], 255),
    ("input tap x 1", "", ["", "Exception occurred while executing 'tap':",
                           _JAVA_ERROR + "Error: Invalid arguments for command: tap"], 255),
    ("input keycombination 113", "", ["", "Exception occurred while executing 'keycombination':",
                                      _JAVA_ERROR + "keycombination requires at least 2 keycodes"], 255),
    ("input frobnicate", "Unknown command: frobnicate\n", [], 0),
]  # fmt: skip


@pytest.mark.parametrize(("command", "stdout", "stderr_lines", "exit_code"), INPUT_ERRORS)
def test_input_errors(phone, command, stdout, stderr_lines, exit_code):
    result = sh(phone, command)
    assert (result.stdout.decode(), result.exit_code) == (stdout, exit_code)
    assert result.stderr.decode().splitlines()[: len(stderr_lines)] == stderr_lines


def test_input_without_arguments_prints_the_usage(phone):
    usage = out(phone, "input")
    assert usage.startswith("Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]\n")
    assert "      keycombination [-t duration(ms)] <key code 1> <key code 2> ..." in usage


# ==== output formats, checked with the regexes the client libraries use ===========================
# (command, library file, regex, expected first match groups); the phone shows Settings.
CLIENT_REGEXES = [
    # adbutils/shell.py
    ("wm size", "adbutils/shell.py _wm_size", r"Physical size: (\d+)x(\d+)", ("1080", "2400")),
    ("dumpsys display", "adbutils/shell.py rotation", r".*?orientation=(?P<orientation>\d+)", ("0",)),
    (
        "dumpsys display",
        "adbutils/shell.py _DISPLAY_RE",
        r".*DisplayViewport{.*?valid=true, .*?orientation=(?P<orientation>\d+), "
        r".*?deviceWidth=(?P<width>\d+), "
        r"deviceHeight=(?P<height>\d+).*",
        ("0", "1080", "2400"),
    ),
    (
        "dumpsys window windows",
        "adbutils/shell.py app_current",
        r"mCurrentFocus=Window{.*\s+(?P<package>[^\s]+)/(?P<activity>[^\s]+)\}",
        (SETTINGS, "com.android.settings.Settings"),
    ),
    (
        "dumpsys activity activities",
        "adbutils/shell.py app_current",
        r"mResumedActivity: ActivityRecord\{.*?\s+(?P<package>[^\s]+)/(?P<activity>[^\s]+)\s.*?\}",
        (SETTINGS, ".Settings"),
    ),
    (
        "dumpsys activity top",
        "adbutils/shell.py app_current",
        r"ACTIVITY (?P<package>[^\s]+)/(?P<activity>[^/\s]+) \w+ pid=(?P<pid>\d+)",
        (SETTINGS, ".Settings", None),
    ),
    (
        "pm list packages",
        "adbutils/shell.py list_packages",
        r"^package:(com\.android\.settings)\r?$",
        (SETTINGS,),
    ),
    (
        "dumpsys package com.android.settings",
        "adbutils/shell.py app_info",
        r"versionName=(?P<name>[^\s]+)",
        ("13",),
    ),
    (
        "dumpsys package com.android.settings",
        "adbutils/shell.py app_info",
        r"versionCode=(?P<code>\d+)",
        ("1",),
    ),
    (
        "dumpsys package com.android.settings",
        "adbutils/shell.py app_info",
        r"firstInstallTime=([-\d]+\s+[:\d]+)",
        ("2023-10-15 15:34:00",),
    ),
    (
        "dumpsys SurfaceFlinger --display-id",
        "adbutils/screenshot.py",
        r"Display (\d+) ",
        ("4619827259835644672",),
    ),
    # android_env/components/adb_call_parser.py
    (
        "am stack list",
        "android_env adb_call_parser.py _fetch_current_task_id",
        r"^\ *taskId=(?P<id>[0-9]*): (?P<base_activity>[^\s]*) .*visible=true"
        r".*topActivity=ComponentInfo{(?P<top_activity>[^\s]*)}$",
        (
            None,
            "com.android.settings/com.android.settings.Settings",
            "com.android.settings/com.android.settings.Settings",
        ),
    ),
    (
        "am stack list | grep -E visible=true",
        "android_env adb_call_parser.py _get_current_activity",
        r".*\{(.*)\}",
        ("com.android.settings/com.android.settings.Settings",),
    ),
    (
        "dumpsys input",
        "android_env adb_call_parser.py _get_orientation",
        r"\s+PhysicalWidth:\s+(-?\d+)px",
        ("1080",),
    ),
    (
        "dumpsys input",
        "android_env adb_call_parser.py _get_orientation (v1.2)",
        r"\s+(SurfaceOrientation|InputDeviceOrientation):\s+(\d)",
        ("SurfaceOrientation", "0"),
    ),
    (
        "dumpsys input",
        "android_env adb_call_parser.py _get_orientation (HEAD)",
        r"\s+(SurfaceOrientation|InputDeviceOrientation):\s+.*(\d)",
        ("SurfaceOrientation", "0"),
    ),
    ("service check window", "android_env fake_simulator.py", r"Service (\S+): found", ("window",)),
    # android_world/env/adb_utils.py
    (
        "wm size",
        "android_world adb_utils.py _parse_screen_size_response",
        r"Physical size: (\d+)x(\d+)",
        ("1080", "2400"),
    ),
    (
        "dumpsys input | grep logicalFrame",
        "android_world adb_utils.py get_logical_screen_size",
        r"logicalFrame=\[0, 0, (\d+), (\d+)\]",
        ("1080", "2400"),
    ),
    (
        "dumpsys input | grep physicalFrame",
        "android_world adb_utils.py get_physical_frame_boundary",
        r"physicalFrame=\[(\d+), (\d+), (\d+), (\d+)\]",
        ("0", "0", "1080", "2400"),
    ),
    (
        "dumpsys window | grep mCurrentRotation",
        "android_world adb_utils.py get_orientation",
        r"mCurrentRotation=ROTATION_(\d+)",
        ("0",),
    ),
    ("dumpsys activity recents", "android_world adb_utils.py close_recents", r"taskId=(\d+)", ("1",)),
    ("dumpsys telephony.registry", "android_world adb_utils.py get_call_state", r"mCallState=(\d)", ("0",)),
    # the brief's own formats
    ("dumpsys window displays", "window displays", r"mDisplayId=(0) ", ("0",)),
    (
        "dumpsys window displays",
        "window displays",
        r"init=(\d+)x(\d+) (\d+)dpi cur=",
        ("1080", "2400", "420"),
    ),
    (
        "dumpsys window displays",
        "window displays",
        r"mFocusedApp=ActivityRecord\{\w+ u0 (\S+) t(\d+)\}",
        (".", None),
    ),
    (
        "dumpsys activity activities",
        "activities",
        r"topResumedActivity=ActivityRecord\{\w+ u0 (\S+) t\d+\}",
        (".",),
    ),
    ("dumpsys display", "display", r"mCurrentOrientation=(\d)", ("0",)),
    ("dumpsys display", "display", r"mBaseDisplayInfo=DisplayInfo\{.*real (\d+) x (\d+),", ("1080", "2400")),
    ("wm density", "wm density", r"Physical density: (\d+)", ("420",)),
    ("dumpsys battery", "adbutils/shell.py battery", r"\s+level: (\d+)", ("100",)),
]


@pytest.mark.parametrize(
    ("command", "source", "pattern", "groups"), CLIENT_REGEXES, ids=[f"{c[0]}~{c[1]}" for c in CLIENT_REGEXES]
)
def test_output_matches_client_regex(phone, command, source, pattern, groups):
    phone.launch(SETTINGS)
    text = out(phone, command)
    m = re.search(pattern, text, re.M)
    assert m, f"{source}: {pattern!r} finds nothing in `{command}`:\n{text}"
    for got, want in zip(m.groups(), groups, strict=True):
        if want == ".":
            assert got.startswith(f"{SETTINGS}/")
        elif want is not None:
            assert got == want


def test_stack_list_visible_line_names_the_foreground_app(phone):
    phone.launch(CONTACTS)
    visible = out(phone, "am stack list | grep -E visible=true")
    assert visible.count("\n") == 1
    assert visible.endswith(
        "topActivity=ComponentInfo{com.google.android.contacts/com.android.contacts.activities.PeopleActivity}\n"
    )
    assert out(phone, "am stack list").count("RootTask id=") == 2


def test_am_stack_remove_closes_the_recent_task(phone):
    phone.launch(CONTACTS)
    ids = re.findall(r"taskId=(\d+)", out(phone, "dumpsys activity recents"))
    for task_id in ids:
        out(phone, f"am stack remove {task_id}")
    assert phone.current_activity()[0] == LAUNCHER
    assert [pkg for _, pkg, _ in phone.task_stacks()] == [LAUNCHER]


# ==== adbutils' own parsing, on an in-process device ==============================================
class InProcessDevice(ShellExtension, ScreenshotExtesion):
    """adbutils' shell and screenshot mixins over the simulated shell: v1 `shell:` semantics, no sockets."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    def shell(self, cmdargs, stream=False, timeout=None, encoding="utf-8", rstrip=True):
        command = cmdargs if isinstance(cmdargs, str) else list2cmdline(cmdargs)
        result = self.phone.shell(command)
        output = result.stdout + result.stderr  # v1 `shell:` merges the two streams
        if encoding is None:
            return output
        text = output.decode(encoding, errors="replace")
        return text.rstrip() if rstrip else text

    @property
    def sync(self):
        phone = self.phone

        class Sync:
            def iter_content(self, path):
                yield phone.fs.read(path)

        return Sync()

    def framebuffer(self):
        raise NotImplementedError("adbutils marks framebuffer: as unstable; screenshot uses screencap")

    def window_size(self, landscape=None):
        return ShellExtension.window_size(self, landscape)


def test_adbutils_parsers_read_the_simulated_output(phone):
    d = InProcessDevice(phone)
    assert tuple(d.window_size()) == (1080, 2400)
    assert d.rotation() == 0
    assert d.app_current().package == LAUNCHER
    d.app_start(SETTINGS)  # monkey
    current = d.app_current()
    assert (current.package, current.activity) == (SETTINGS, "com.android.settings.Settings")
    d.app_start(CONTACTS, "com.android.contacts.activities.PeopleActivity")  # am start -n
    assert d.app_current().package == CONTACTS
    d.app_stop(CONTACTS)  # the stopped task goes; home is underneath it
    assert d.app_current().package == LAUNCHER
    assert {SETTINGS, CONTACTS, LAUNCHER} <= set(d.list_packages())
    info = d.app_info(SETTINGS)
    assert (info.version_name, info.version_code, info.path) == (
        "13",
        1,
        out(phone, f"pm path {SETTINGS}")[8:-1],
    )
    assert d.app_info("no.such.app") is None
    assert d.battery().level == 100
    assert d.is_screen_on()
    assert d.getprop("ro.build.version.sdk") == "33"
    assert d.dump_hierarchy().startswith("<?xml")
    assert d.screenshot(error_ok=False).size == (1080, 2400)


# ==== activity manager, monkey, package manager ===================================================
def test_am_start_launches_and_reports_like_android(phone):
    assert (
        out(phone, "am start -n com.android.settings/.Settings")
        == "Starting: Intent { cmp=com.android.settings/.Settings }\n"
    )
    assert phone.current_activity() == (SETTINGS, ".Settings")
    result = sh(phone, "am start -n com.android.settings/com.android.settings.Settings")
    assert result.stderr == (
        b"Warning: Activity not started, intent has been delivered to currently running top-most instance.\n"
    )
    people = "com.google.android.contacts/com.android.contacts.activities.PeopleActivity"
    waited = out(phone, f"am start  -S -W -n {people}")  # android_env's ['am', 'start', '', ...] joined by adb
    assert waited.splitlines() == [
        "Stopping: com.google.android.contacts",
        f"Starting: Intent {{ cmp={people} }}",
        "Status: ok",
        "LaunchState: COLD",
        f"Activity: {people}",
        "TotalTime: 412",
        "WaitTime: 416",
        "Complete",
    ]
    assert phone.current_activity()[0] == CONTACTS
    out(phone, "am start -a android.intent.action.MAIN -c android.intent.category.HOME")
    assert phone.current_activity()[0] == LAUNCHER
    out(phone, "am force-stop com.google.android.contacts; am force-stop no.such.pkg")
    assert CONTACTS not in [pkg for _, pkg, _ in phone.task_stacks()]


def test_am_start_unknown_component_prints_error_type_3(phone):
    result = sh(phone, "am start -n com.foo/.Bar")
    assert (result.stdout, result.stderr, result.exit_code) == (
        b"Starting: Intent { cmp=com.foo/.Bar }\n",
        b"Error type 3\nError: Activity class {com.foo/com.foo.Bar} does not exist.\n",
        0,
    )
    waited = sh(phone, "am start -W -n com.android.settings/.Nope")  # with -W the error goes to stdout
    assert re.match(r".*Error.*", str(waited.stdout))  # android_env's check of `am start` output
    assert b"Error: Activity class {com.android.settings/com.android.settings.Nope} does not exist." in waited.stdout


def test_monkey_launches_the_app_or_aborts(phone):
    result = sh(phone, "monkey -p com.android.settings -c android.intent.category.LAUNCHER 1")
    lines = result.stdout.decode().splitlines()
    assert lines[:2] == ["  bash arg: -p", "  bash arg: com.android.settings"]
    assert "Events injected: 1" in lines
    assert phone.current_activity() == (SETTINGS, ".Settings")
    missing = sh(phone, "monkey -p no.such.app 1")  # android_world's launch-by-package fallback
    assert (missing.stderr, missing.exit_code) == (b"** No activities found to run, monkey aborted.\n", 251)


def test_pm_commands(phone):
    listed = out(phone, "pm list packages").splitlines()
    assert f"package:{SETTINGS}" in listed and listed == sorted(listed)
    assert out(phone, "pm list packages contacts").splitlines() == [
        "package:com.android.providers.contacts",
        "package:com.google.android.contacts",
    ]
    path = out(phone, f"pm path {SETTINGS}")
    assert re.fullmatch(r"package:/data/app/~~[\w-]{22}==/com\.android\.settings-[\w-]{22}==/base\.apk\n", path)
    assert path == out(Phone(), f"pm path {SETTINGS}")  # stable across phones
    assert out(phone, f"pm list packages -f {SETTINGS}") == f"package:{path[8:-1]}={SETTINGS}\n"
    assert sh(phone, "pm path no.such.app") == ShellResult(b"", b"", 1)
    assert out(phone, "pm grant com.android.settings android.permission.CAMERA") == ""
    grant = sh(phone, "pm grant no.such.app android.permission.CAMERA")
    assert grant.exit_code == 255 and b"Unknown package: no.such.app" in grant.stderr


def test_pm_clear_wipes_app_and_provider_data(phone):
    out(phone, f"sqlite3 {CONTACTS_DB} 'select count(*) from raw_contacts'")
    assert out(phone, "pm clear com.android.providers.contacts") == "Success\n"  # android_world delete_contacts
    assert not phone.fs.exists(CONTACTS_DB)
    phone.launch(SETTINGS)
    assert out(phone, f"pm clear {SETTINGS}") == "Success\n"
    assert phone.current_activity()[0] == LAUNCHER
    assert sh(phone, "pm clear no.such.app") == ShellResult(b"", b"Failed\n", 1)


# ==== settings, properties, services ==============================================================
SYSTEM_COMMANDS = [
    ("settings get global wifi_on", "1\n"),
    ("settings get secure nope", "null\n"),
    ("settings put system screen_brightness 255; settings get system screen_brightness", "255\n"),
    ("settings --user 0 put global airplane_mode_on 1; settings get global airplane_mode_on", "1\n"),
    (
        "settings put global k v; settings delete global k; settings delete global k",
        "Deleted 1 rows\nDeleted 0 rows\n",
    ),
    ("settings list system | grep -E '^font_scale='", "font_scale=1.0\n"),
    ("svc wifi disable; settings get global wifi_on", "0\n"),
    ("getprop ro.build.version.sdk; getprop nope; getprop nope dflt", "33\n\ndflt\n"),
    ("getprop | grep sys.boot_completed", "[sys.boot_completed]: [1]\n"),
    ("setprop debug.x 1; getprop debug.x", "1\n"),
    (
        "content query --uri content://settings/global --where \"name='wifi_on'\"",
        "Row: 0 _id=85, name=wifi_on, value=1\n",
    ),
    ("service check window", "Service window: found\n"),
    ("whoami", "shell\n"),
    ("id | grep -o 'uid=[0-9]*(shell)'", "uid=2000(shell)\n"),
    ("which ls am nosuch; echo $?", "/system/bin/ls\n/system/bin/am\n1\n"),
]


@pytest.mark.parametrize(("command", "stdout"), SYSTEM_COMMANDS)
def test_system_commands(phone, command, stdout):
    assert out(phone, command) == stdout


def test_setprop_refuses_read_only_properties(phone):
    result = sh(phone, "setprop ro.build.version.sdk 99")
    assert result.exit_code == 1 and b"Failed to set property 'ro.build.version.sdk' to '99'." in result.stderr
    assert phone.props["ro.build.version.sdk"] == "33"


# ==== files and text tools ========================================================================
FILE_COMMANDS = [
    ("mkdir /sdcard/d && ls /sdcard/d && echo empty", "empty\n", 0),
    ("mkdir /sdcard", "", 1),
    ("mkdir /a/b/c", "", 1),
    ("mkdir -p /a/b/c && ls -d /a/b/c", "/a/b/c\n", 0),
    ("touch /sdcard/t && ls /sdcard | grep -c '^t$'", "1\n", 0),
    ("touch /nope/t", "", 1),
    ("echo x > /sdcard/f; cp /sdcard/f /sdcard/g; cat /sdcard/g", "x\n", 0),
    ("echo x > /sdcard/f; mv /sdcard/f /sdcard/Download; ls /sdcard/Download; ls /sdcard/f", "f\n", 1),
    ("cp /sdcard/DCIM /sdcard/x", "", 1),
    ("cp -r /sdcard/DCIM /sdcard/x && ls -d /sdcard/x", "/sdcard/x\n", 0),
    ("rm /sdcard/nope", "", 1),
    ("rm -f /sdcard/nope", "", 0),
    ("rm /sdcard/DCIM", "", 1),
    ("rm -rf /sdcard/DCIM; ls /sdcard", "Documents\nDownload\nMovies\nMusic\nPictures\n", 0),
    ("ls /sdcard/DCIM /sdcard/Music", "/sdcard/DCIM:\n\n/sdcard/Music:\n", 0),
    ("ls -a /sdcard/Music", ".\n..\n", 0),
    ("cd /sdcard && ls -1d Music Nope", "Music\n", 1),
    ("printf 'abc' > /sdcard/f; md5sum /sdcard/f", "900150983cd24fb0d6963f7d28e17f72  /sdcard/f\n", 0),
    ("printf 'abc' > /sdcard/f; stat -c '%s %n' /sdcard/f", "3 /sdcard/f\n", 0),
    ("printf 'a\\nb\\nc\\n' | head -n 2", "a\nb\n", 0),
    ("printf 'a\\nb\\nc\\n' | head -1", "a\n", 0),
    ("printf 'a\\nb\\nc\\n' | tail -n 1", "c\n", 0),
    ("printf 'a\\nb\\nc\\n' | tail -n +2", "b\nc\n", 0),
    ("printf 'a\\nb\\nc\\n' | wc -l", "3\n", 0),
    ("printf 'c\\na\\nb\\n' | sort", "a\nb\nc\n", 0),
    ("printf '%s-%d\\n' x 5 y 6", "x-5\ny-6\n", 0),
    ("echo -n a; echo b", "ab\n", 0),
    ("echo 'a\\tb'", "a\tb\n", 0),
    ("echo aGVsbG8= | base64 -d", "hello", 0),
    ("printf hello | base64", "aGVsbG8=\n", 0),
    ("echo Hello | grep -i hello", "Hello\n", 0),
    ("echo Hello | grep nope", "", 1),
    ("echo Hello | grep -q Hel && echo found", "found\n", 0),
    ("printf 'a1\\nb2\\na3\\n' | grep -c a", "2\n", 0),
    ("printf 'a1\\nb2\\n' | grep -v a", "b2\n", 0),
    ("printf 'a1\\nb2\\n' | grep -n b", "2:b2\n", 0),
    ("echo 'x=12 y=345' | grep -oE '[0-9]+'", "12\n345\n", 0),
    ("echo 'a|b' | grep -F '|'", "a|b\n", 0),
    ("echo 'a+b' | grep 'a+b'", "a+b\n", 0),  # BRE: + is literal
    ("echo 'aab' | grep -E 'a+b'", "aab\n", 0),
    ("echo 'ab' | grep 'a\\(b\\)'", "ab\n", 0),
    ("echo 'visible=true x' | grep -E visible=true", "visible=true x\n", 0),
    ("grep x /nope", "", 2),
]


@pytest.mark.parametrize(("command", "stdout", "exit_code"), FILE_COMMANDS)
def test_file_and_text_commands(phone, command, stdout, exit_code):
    result = sh(phone, command)
    assert (result.stdout.decode(), result.exit_code) == (stdout, exit_code), result.stderr


def test_ls_long_formats_parse_like_android_world(phone):
    phone.fs.write("/sdcard/Download/my file.txt", b"12345")
    listing = out(phone, "ls /sdcard/Download -ll -au")  # android_world file_utils.get_file_list_with_metadata
    line = next(row for row in listing.splitlines() if row.startswith("-"))
    parts = line.split(None, 8)
    assert (parts[0], parts[4], parts[8]) == ("-rw-rw----", "5", "my file.txt")
    assert dt.datetime.fromisoformat(" ".join(parts[5:7])[:-3]) == dt.datetime(2023, 10, 15, 15, 34)
    short = out(phone, "ls -l /sdcard/Download").splitlines()
    assert short[0] == "total 4" and short[1].endswith(" 5 2023-10-15 15:34 my file.txt")


# ==== screen: screencap, uiautomator ==============================================================
def test_screencap_stdout_is_binary_exact_png(phone):
    png = sh(phone, "screencap -p").stdout
    assert png == phone.screenshot_png()
    assert Image.open(io.BytesIO(png)).size == (1080, 2400)


def test_screencap_to_file_and_raw(phone):
    out(phone, "screencap -p /sdcard/s.png; screencap /sdcard/t.png")
    assert phone.fs.read("/sdcard/s.png") == phone.fs.read("/sdcard/t.png") == phone.screenshot_png()
    raw = sh(phone, "screencap").stdout
    assert struct.unpack("<IIII", raw[:16]) == (1080, 2400, 1, 0) and len(raw) == 16 + 1080 * 2400 * 4
    assert sh(phone, "screencap -p /nope/s.png").exit_code == 1


def test_uiautomator_dump_like_adbutils_and_android_world(phone):
    result = sh(phone, "rm -f /data/local/tmp/uidump.xml; uiautomator dump /data/local/tmp/uidump.xml && echo success")
    assert result.stdout == b"UI hierchary dumped to: /data/local/tmp/uidump.xml\nsuccess\n"  # sic
    assert phone.fs.read("/data/local/tmp/uidump.xml").decode() == phone.ui_xml()
    assert out(phone, "uiautomator dump") == "UI hierchary dumped to: /sdcard/window_dump.xml\n"
    assert out(phone, "cat /sdcard/window_dump.xml").startswith("<?xml")
    assert out(phone, "uiautomator dump --compressed /dev/tty").startswith("<?xml")


# ==== date, sleep =================================================================================
def test_date_prints_and_sets_the_device_clock(phone):
    text = out(phone, "date").strip()
    assert text == "Sun Oct 15 15:34:00 UTC 2023"
    parsed = dt.datetime.strptime(text, "%a %b %d %H:%M:%S %Z %Y")  # android_world datetime_utils
    assert parsed == dt.datetime(2023, 10, 15, 15, 34)
    assert out(phone, "date +%s") == "1697384040\n"
    # android_world sets the clock with date MMDDhhmmYY.ss
    assert out(phone, "date 1015190423.16") == "Sun Oct 15 19:04:16 UTC 2023\n"
    assert phone.now() == dt.datetime(2023, 10, 15, 19, 4, 16, tzinfo=dt.UTC)
    out(phone, "date -s '2024-02-29 08:05:00'")
    assert out(phone, "date '+%Y-%m-%d %H:%M'") == "2024-02-29 08:05\n"
    assert out(phone, "date 030112002025") == "Sat Mar  1 12:00:00 UTC 2025\n"
    assert sh(phone, "date 99999999").stderr == b"date: bad date '99999999'\n"


def test_sleep_really_sleeps(phone):
    start = time.monotonic()
    out(phone, "sleep 0.2")
    assert time.monotonic() - start >= 0.2
    assert sh(phone, "sleep abc").exit_code == 1


# ==== sqlite3 =====================================================================================
def test_sqlite3_round_trip(phone):
    db = "/data/data/com.android.settings/databases/test.db"
    out(phone, f'sqlite3 {db} "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, note TEXT);"')
    out(
        phone,
        f"sqlite3 {db} \"INSERT INTO t (name, score, note) VALUES ('a b', 1.5, NULL), ('it''s', 2, 'x|y');\"",
    )
    assert out(phone, f'sqlite3 {db} "SELECT * FROM t ORDER BY id;"') == "1|a b|1.5|\n2|it's|2.0|x|y\n"
    with phone.fs.sqlite(db) as conn:  # the same file an evaluator pulls and queries
        assert conn.execute("SELECT name FROM t ORDER BY id").fetchall() == [("a b",), ("it's",)]
    assert out(phone, f"sqlite3 -header -separator , {db} 'SELECT id, name FROM t'") == "id,name\n1,a b\n2,it's\n"
    assert out(phone, f"sqlite3 -json {db} 'SELECT id FROM t'") == '[{"id":1},\n{"id":2}]\n'
    assert out(phone, f"echo 'SELECT count(*) FROM t;' | sqlite3 {db}") == "2\n"
    assert out(phone, f"sqlite3 {db} .tables") == "t\n"


def test_sqlite3_errors_and_partial_scripts(phone):
    db = "/data/local/tmp/e.db"
    assert sh(phone, f"sqlite3 {db} 'SELECT * FROM x'") == ShellResult(b"", b"Error: in prepare, no such table: x\n", 1)
    result = sh(phone, f"sqlite3 {db} 'CREATE TABLE t(a UNIQUE); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1);'")
    assert result.exit_code == 1 and result.stderr.startswith(b"Error: stepping, UNIQUE constraint failed: t.a")
    assert out(phone, f"sqlite3 {db} 'SELECT a FROM t'") == "1\n"  # statements before the error stick
    assert sh(phone, "sqlite3 /nope/x.db 'SELECT 1'").exit_code == 1


def test_sqlite3_reads_app_databases(phone):
    names = out(phone, f"sqlite3 {CONTACTS_DB} 'SELECT display_name FROM raw_contacts ORDER BY _id LIMIT 2'")
    assert names == "Alice Johnson\nBob Martinez\n"


def test_force_stop_marks_the_package_stopped_until_its_next_launch(phone):
    clock = "com.google.android.deskclock"
    assert "stopped=false" in out(phone, f"dumpsys package {clock}")
    out(phone, f"am force-stop {clock}")
    assert "stopped=true" in out(phone, f"dumpsys package {clock}")
    phone.key(4)  # leaving an app with BACK is not a force stop
    out(phone, f"monkey -p {clock} -c android.intent.category.LAUNCHER 1")
    assert "stopped=false" in out(phone, f"dumpsys package {clock}")


# ---- a full disk ----------------------------------------------------------------------------------------
def test_writes_onto_a_full_disk_fail_as_the_shell_and_toybox_report_them(phone):
    phone.fs.write("/sdcard/big", b"x" * 1000)
    phone.fs.capacity = phone.fs.used() + 500
    result = sh(phone, "cp /sdcard/big /sdcard/copy")
    assert (result.stderr, result.exit_code) == (b"cp: /sdcard/copy: No space left on device\n", 1)
    assert not phone.fs.exists("/sdcard/copy")
    result = sh(phone, "cat /sdcard/big > /sdcard/out; echo status=$?")
    assert result.stderr == b"/system/bin/sh: can't create /sdcard/out: No space left on device\n"
    assert result.stdout == b"status=1\n" and len(phone.fs.read("/sdcard/out")) == 500  # what fit, as write(2)
    assert sh(phone, "{ echo a; cat /sdcard/big; } >> /sdcard/out").exit_code == 1
    assert phone.fs.free() == 0
    # A rename needs no space, and removing frees it.
    assert sh(phone, "mv /sdcard/big /sdcard/moved && rm /sdcard/out && echo hi > /sdcard/small").exit_code == 0
    assert phone.fs.read("/sdcard/small") == b"hi\n" and phone.fs.read("/sdcard/moved") == b"x" * 1000


def test_df_reports_the_storage_the_vfs_holds(phone):
    header, *rows = out(phone, "df").splitlines()
    assert header.split() == ["Filesystem", "1K-blocks", "Used", "Available", "Use%", "Mounted", "on"]
    table = {row.split()[5]: row.split() for row in rows}
    assert {"/", "/data", "/storage/emulated", "/system_ext", "/vendor"} <= set(table)
    assert table["/data"][0] == "/dev/block/dm-5" and table["/storage/emulated"][0] == "/dev/fuse"
    assert table["/"][1:5] == [table["/"][1], table["/"][1], "0", "100%"]  # the read-only system image is full
    assert int(table["/data"][1]) == phone.fs.capacity // 1024
    before = int(table["/data"][2])
    phone.fs.write("/sdcard/Download/blob", b"x" * (8 << 20))
    device, size, used, avail, percent, mount = out(phone, "df /sdcard/Download/blob").splitlines()[1].split()
    assert (device, mount) == ("/dev/fuse", "/storage/emulated") and int(used) == before + 8192
    assert int(avail) == int(size) - int(used) and percent == f"{-(-int(used) * 100 // int(size))}%"
    # Columns are as wide as their widest entry; -h prints toybox's three-digit sizes.
    assert out(phone, "df -h /data") == (
        "Filesystem      Size Used Avail Use% Mounted on\n/dev/block/dm-5 2.0G 8.1M  1.9G   1% /data\n"
    )
    phone.fs.capacity = phone.fs.used()
    assert out(phone, "df /data").splitlines()[1].split()[3:5] == ["0", "100%"]
    result = sh(phone, "df /nope")
    assert (result.stderr, result.exit_code) == (b"df: '/nope': No such file or directory\n", 1)


# ---- exec, stdin, logcat ------------------------------------------------------------------------------------
def test_exec_replaces_the_shell_and_exec_redirections_stay(phone):
    assert out(phone, "exec echo hi; echo not reached") == "hi\n"
    assert sh(phone, "exec false; echo not reached") == ShellResult(b"", b"", 1)
    result = sh(phone, "exec >/data/local/tmp/log 2>&1; echo a; ls /nope; echo b")
    assert (result.stdout, result.stderr, result.exit_code) == (b"", b"", 0)
    assert phone.fs.read("/data/local/tmp/log") == b"a\nls: /nope: No such file or directory\nb\n"
    # What Debian's `adb logcat` runs on the device.
    assert sh(phone, "export ANDROID_LOG_TAGS=\"''\" ; exec logcat -d") == ShellResult(b"", b"", 0)


def test_commands_read_the_stdin_they_are_given(phone):
    assert phone.shell("cat > /sdcard/in.txt; wc -c /sdcard/in.txt", stdin=b"abc\n").stdout == b"4 /sdcard/in.txt\n"
    assert phone.shell("grep b | sh -c 'cat'", stdin=b"a\nb\nc\n").stdout == b"b\n"
    assert phone.shell("echo no stdin read", stdin=b"x").stdout == b"no stdin read\n"


def test_logcat_dumps_activity_starts_in_liblog_formats_and_clears(phone):
    assert out(phone, "logcat -d") == ""
    out(phone, "am start -n com.android.settings/.Settings")
    first, start, displayed = out(phone, "logcat -d").splitlines()
    assert first == "--------- beginning of main"
    stamp = phone.now().strftime("%m-%d %H:%M:%S.") + f"{phone.state.clock_ms % 1000:03d}"
    assert start == (
        f"{stamp}   542  1830 I ActivityTaskManager: START u0 {{flg=0x10000000 cmp=com.android.settings/.Settings}}"
        " from uid 2000"
    )
    assert displayed.endswith(" I ActivityTaskManager: Displayed com.android.settings/.Settings: +412ms")
    epoch = out(phone, "logcat -d -v epoch -s ActivityTaskManager").splitlines()[1]
    assert epoch.startswith(f"{phone.state.clock_ms // 1000:19d}.")  # what android_env's LogcatThread parses
    assert out(phone, "logcat -d -v brief ActivityManager:I '*:S'") == ""
    last = out(phone, "logcat -t 1 -v raw")
    assert last == "--------- beginning of main\nDisplayed com.android.settings/.Settings: +412ms\n"
    assert out(phone, "logcat -b all -c; logcat -d") == ""
    result = sh(phone, "logcat -b nosuch")
    assert result.exit_code == 1 and b"nosuch" in result.stderr


# ==== shared storage's names: /sdcard -> /storage/self/primary -> /storage/emulated/0 (API 33) ====================
def test_glob_expands_under_every_name_of_shared_storage(phone):
    out(phone, "mkdir -p /sdcard/Documents/Markor && echo a > /sdcard/Documents/Markor/a.md && echo b > /sdcard/x.txt")
    for root in ("/sdcard", "/storage/emulated/0", "/storage/self/primary"):
        assert out(phone, f"echo {root}/Documents/*") == f"{root}/Documents/Markor\n"
        assert f"{root}/x.txt" in out(phone, f"echo {root}/*").split()
    assert out(phone, "echo /storage/*/0/x.txt") == "/storage/emulated/0/x.txt\n"
    # android_world's file_utils.clear_directory before every Markor task
    assert sh(phone, "rm -r /storage/emulated/0/Documents/Markor/*").exit_code == 0
    assert phone.fs.listdir("/sdcard/Documents/Markor") == []


def test_storage_lists_emulated_and_self_with_their_modes_and_links(phone):
    assert out(phone, "ls /storage") == "emulated\nself\n"
    assert out(phone, "ls /storage/emulated") == "0\n"
    rows = [line.split() for line in out(phone, "ls -l /storage").splitlines()[1:]]
    assert [(r[0], r[2], r[3], r[-1]) for r in rows] == [
        ("drwx--x--x", "root", "everybody", "emulated"),
        ("drwxr-xr-x", "root", "root", "self"),
    ]
    assert out(phone, "ls -l /storage/self").splitlines()[1].split()[::7] == ["lrwxrwxrwx", "primary"]
    assert out(phone, "ls -l /storage/self").rstrip().endswith("primary -> /mnt/user/0/primary")
    link = out(phone, "ls -l /sdcard").split()
    assert (link[0], link[4], link[-3:]) == ("lrwxrwxrwx", "21", ["/sdcard", "->", "/storage/self/primary"])
    assert "Download" in out(phone, "ls /sdcard").split()  # without -l the link is followed
    assert out(phone, "ls -ld /sdcard/").startswith("d")


def test_readlink_and_realpath_resolve_shared_storage(phone):
    assert out(phone, "readlink /sdcard") == "/storage/self/primary\n"
    assert out(phone, "readlink -f /sdcard") == "/storage/emulated/0\n"
    assert out(phone, "realpath /storage/self/primary/Download") == "/storage/emulated/0/Download\n"
    assert out(phone, "readlink -f /data/local/tmp") == "/data/local/tmp\n"
    result = sh(phone, "readlink /data/local/tmp")
    assert (result.exit_code, result.stdout) == (1, b"")
    assert sh(phone, "realpath /nope").stderr == b"realpath: /nope: No such file or directory\n"


def test_cd_find_and_stat_through_storage_names(phone):
    out(phone, "echo a > /sdcard/Download/f.txt")
    assert out(phone, "cd /storage/emulated/0/Download && pwd && ls") == "/storage/emulated/0/Download\nf.txt\n"
    assert out(phone, "cd /storage && ls") == "emulated\nself\n"
    assert out(phone, "find /storage/emulated/0 -name f.txt") == "/storage/emulated/0/Download/f.txt\n"
    # links met on the way down are not followed: the file shows once, under the real directory
    assert out(phone, "find / -name f.txt") == "/storage/emulated/0/Download/f.txt\n"
    assert out(phone, "stat -c '%A %n' /storage /storage/emulated/0/Download") == (
        "drwxr-xr-x /storage\ndrwxrwx--x /storage/emulated/0/Download\n"
    )
