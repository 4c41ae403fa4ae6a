"""The commands of the simulated phone's shell: toybox tools, `input`, `am`, `pm`, `dumpsys`, `sqlite3` ...

Each command is a function `(ctx, args) -> exit status` listed in `COMMANDS`. Output formats follow an
Android 13 (API 33) emulator, because clients parse them: adbutils (adbutils/shell.py,
_device_base.py), android_env (components/adb_call_parser.py) and android_world (env/adb_utils.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hashlib
import io
import math
import posixpath
import re
import sqlite3
import stat as statmod
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from droidrl.envs.sim.vfs import normpath

BIN_DIRS = ("/system/bin", "/system/xbin", "/vendor/bin", "/bin", "/product/bin")
LAUNCHER = "com.google.android.apps.nexuslauncher"
# Packages of the Android framework that exist on every image besides the installed apps.
FRAMEWORK_PACKAGES = (
    "android",
    "com.android.systemui",
    "com.android.shell",
    "com.android.providers.settings",
    "com.android.providers.contacts",
    "com.android.providers.media",
    "com.android.providers.telephony",
    "com.android.inputmethod.latin",
)
DISPLAY_UNIQUE_ID = "local:4619827259835644672"  # the emulator's built-in display


class CommandError(Exception):
    """A command fails with `message` on stderr and exit status `code` (usage errors and the like)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class ShellExit(Exception):
    """`exit N`: ends the script (or the subshell) with status `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Context:
    """What a command sees: the phone, stdin, its two output buffers, the shell's directory and variables."""

    phone: Any
    stdin: bytes
    stdout: bytearray
    stderr: bytearray
    cwd: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    run_script: Callable[[str], int] = lambda script: 127  # `sh -c SCRIPT` in a subshell, same streams
    run_argv: Callable[[list[str]], int] = lambda argv: 127  # run one split command line (`su 0 CMD`)

    @property
    def fs(self) -> Any:
        return self.phone.fs

    def out(self, text: str = "", end: str = "\n") -> None:
        self.stdout += (text + end).encode()

    def err(self, text: str) -> None:
        self.stderr += (text + "\n").encode()

    def path(self, name: str) -> str:
        return resolve_path(self.cwd, name)


def resolve_path(cwd: str, name: str) -> str:
    """An absolute, normalised path for `name` as seen from directory `cwd`."""
    return normpath(name if name.startswith("/") else posixpath.join(cwd, name))


def getopt(cmd: str, args: list[str], flags: str, valued: str = "") -> tuple[dict[str, Any], list[str]]:
    """Toybox-style options: anywhere on the line, bundled (`-rf`), values attached or next (`-n5`, `-n 5`).

    Returns ({flag: count, valued flag: [values]}, operands); `--` ends the options.
    """
    opts: dict[str, Any] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands += args[i:]
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        for j, ch in enumerate(arg[1:], start=1):
            if ch in valued:
                value = arg[j + 1 :]
                if not value:
                    if i >= len(args):
                        raise CommandError(f"{cmd}: Missing argument to -{ch}")
                    value, i = args[i], i + 1
                opts.setdefault(ch, []).append(value)
                break
            if ch not in flags:
                raise CommandError(f"{cmd}: Unknown option '{ch}' (see \"{cmd} --help\")")
            opts[ch] = opts.get(ch, 0) + 1
    return opts, operands


def _read(ctx: Context, cmd: str, name: str) -> bytes | None:
    """The bytes of file `name` (`-` is stdin), or None after printing toybox's error."""
    if name == "-":
        return ctx.stdin
    path = ctx.path(name)
    if path == "/dev/null":
        return b""
    if not ctx.fs.exists(path):
        ctx.err(f"{cmd}: {name}: No such file or directory")
        return None
    if ctx.fs.is_dir(path):
        ctx.err(f"{cmd}: {name}: Is a directory")
        return None
    return ctx.fs.read(path)


def _lines(data: bytes) -> list[bytes]:
    """Lines with their newline kept; a last line without one stays as it is."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _walk(fs: Any, top: str) -> Iterator[str]:
    """Every path under directory `top` (not `top` itself), parents before children, names sorted."""
    for name, st in fs.listdir(top):
        path = posixpath.join(top, name)
        yield path
        if st.is_dir:
            yield from _walk(fs, path)


def _hex_id(*parts: object) -> str:
    """A stable 7-digit hex object id, like the identity hashes in dumpsys output."""
    return format(zlib.crc32("/".join(map(str, parts)).encode()) & 0xFFFFFFF, "07x")


def _stable_int(text: str, low: int, span: int) -> int:
    return low + zlib.crc32(text.encode()) % span


# ==== activities and components =========================================================================


def full_class(package: str, activity: str) -> str:
    """`.Settings` in com.android.settings is `com.android.settings.Settings`."""
    return package + activity if activity.startswith(".") else activity


def short_component(package: str, activity: str) -> str:
    """ComponentName.flattenToShortString: `com.android.settings/.Settings`."""
    cls = full_class(package, activity)
    if cls.startswith(package + "."):
        cls = cls[len(package) :]
    return f"{package}/{cls}"


def long_component(package: str, activity: str) -> str:
    """ComponentName.flattenToString: `com.android.settings/com.android.settings.Settings`."""
    return f"{package}/{full_class(package, activity)}"


def _find_activity(phone: Any, package: str, cls: str) -> str | None:
    """The app's own spelling of activity `cls` (short or long form), or None if it has no such one."""
    app = phone.apps.get(package)
    if app is None:
        return None
    wanted = full_class(package, cls)
    return next((name for name in app.activities if full_class(package, name) == wanted), None)


def _pid(package: str) -> int:
    return _stable_int(package, 2000, 8000)


def _uid(package: str) -> int:
    return 1000 if package in FRAMEWORK_PACKAGES[:3] else _stable_int(package, 10100, 200)


def _tasks(phone: Any) -> list[tuple[int, str, list[str]]]:
    """(task id, package, activities bottom->top), foreground first."""
    return list(phone.task_stacks())


# ==== input =============================================================================================

# android.view.KeyEvent codes by name (KEYCODE_ prefix optional, as KeyEvent.keyCodeFromString allows).
_KEY_NAMES = (  # noqa: SIM905 (a code per position; a list literal would take 170 lines)
    "UNKNOWN SOFT_LEFT SOFT_RIGHT HOME BACK CALL ENDCALL 0 1 2 3 4 5 6 7 8 9 STAR POUND DPAD_UP DPAD_DOWN "
    "DPAD_LEFT DPAD_RIGHT DPAD_CENTER VOLUME_UP VOLUME_DOWN POWER CAMERA CLEAR A B C D E F G H I J K L M "
    "N O P Q R S T U V W X Y Z COMMA PERIOD ALT_LEFT ALT_RIGHT SHIFT_LEFT SHIFT_RIGHT TAB SPACE SYM "
    "EXPLORER ENVELOPE ENTER DEL GRAVE MINUS EQUALS LEFT_BRACKET RIGHT_BRACKET BACKSLASH SEMICOLON "
    "APOSTROPHE SLASH AT NUM HEADSETHOOK FOCUS PLUS MENU NOTIFICATION SEARCH MEDIA_PLAY_PAUSE MEDIA_STOP "
    "MEDIA_NEXT MEDIA_PREVIOUS MEDIA_REWIND MEDIA_FAST_FORWARD MUTE PAGE_UP PAGE_DOWN PICTSYMBOLS "
    "SWITCH_CHARSET BUTTON_A BUTTON_B BUTTON_C BUTTON_X BUTTON_Y BUTTON_Z BUTTON_L1 BUTTON_R1 BUTTON_L2 "
    "BUTTON_R2 BUTTON_THUMBL BUTTON_THUMBR BUTTON_START BUTTON_SELECT BUTTON_MODE ESCAPE FORWARD_DEL "
    "CTRL_LEFT CTRL_RIGHT CAPS_LOCK SCROLL_LOCK META_LEFT META_RIGHT FUNCTION SYSRQ BREAK MOVE_HOME "
    "MOVE_END INSERT FORWARD MEDIA_PLAY MEDIA_PAUSE MEDIA_CLOSE MEDIA_EJECT MEDIA_RECORD F1 F2 F3 F4 F5 "
    "F6 F7 F8 F9 F10 F11 F12 NUM_LOCK NUMPAD_0 NUMPAD_1 NUMPAD_2 NUMPAD_3 NUMPAD_4 NUMPAD_5 NUMPAD_6 "
    "NUMPAD_7 NUMPAD_8 NUMPAD_9 NUMPAD_DIVIDE NUMPAD_MULTIPLY NUMPAD_SUBTRACT NUMPAD_ADD NUMPAD_DOT "
    "NUMPAD_COMMA NUMPAD_ENTER NUMPAD_EQUALS NUMPAD_LEFT_PAREN NUMPAD_RIGHT_PAREN VOLUME_MUTE INFO "
    "CHANNEL_UP CHANNEL_DOWN ZOOM_IN ZOOM_OUT TV WINDOW GUIDE DVR BOOKMARK CAPTIONS SETTINGS"
).split()
KEYCODES: dict[str, int] = {name: code for code, name in enumerate(_KEY_NAMES)}
KEYCODES.update(
    {"APP_SWITCH": 187, "CONTACTS": 207, "CALENDAR": 208, "MUSIC": 209, "CALCULATOR": 210, "ASSIST": 219}
)
KEYCODES.update({"BRIGHTNESS_DOWN": 220, "BRIGHTNESS_UP": 221, "SLEEP": 223, "WAKEUP": 224})
KEYCODES.update({"VOICE_ASSIST": 231, "CUT": 277, "COPY": 278, "PASTE": 279, "ALL_APPS": 284})
LAST_KEYCODE = 316


def keycode_from_string(name: str) -> int:
    """KeyEvent.keyCodeFromString: a number, or a name with or without KEYCODE_; 0 when unknown."""
    if re.fullmatch(r"-?\d+", name):
        code = int(name)
        return code if 0 <= code <= LAST_KEYCODE else 0
    return KEYCODES.get(name.removeprefix("KEYCODE_"), 0)


_INPUT_SOURCES = ("keyboard", "dpad", "gamepad", "touchscreen", "mouse", "stylus", "trackball", "touchpad")
_INPUT_SOURCES += ("touchnavigation", "joystick")
_INPUT_USAGE = "\n".join(
    [
        "Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]",
        "",
        "The sources are: ",  # sic: Android prints the trailing space
        *(f"      {source}" for source in _INPUT_SOURCES),
        "",
        "-d: specify the display ID.",
        "      (Default: -1 for key event, 0 for motion event if not specified.)",
        "The commands and default sources are:",
        "      text <string> (Default: touchscreen)",
        "      keyevent [--longpress|--doubletap] <key code number or name> ... (Default: keyboard)",
        "      tap <x> <y> (Default: touchscreen)",
        "      swipe <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)",
        "      draganddrop <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)",
        "      press (Default: trackball)",
        "      roll <dx> <dy> (Default: trackball)",
        "      motionevent <DOWN|UP|MOVE|CANCEL> <x> <y> (Default: touchscreen)",
        "      keycombination [-t duration(ms)] <key code 1> <key code 2> ..."
        " (Default: keyboard, the key order is important here.)",
    ]
)


class _JavaArgs:
    """android.os.ShellCommand argument handling; a Java exception ends the command like on a device."""

    def __init__(self, service: str, args: list[str]) -> None:
        self.service = service  # the class named in the stack trace
        self.args = args
        self.pos = 0
        self.command = args[0] if args else ""  # mCmd, named in "Exception occurred while executing"

    def next(self) -> str | None:
        if self.pos >= len(self.args):
            return None
        self.pos += 1
        return self.args[self.pos - 1]

    def required(self) -> str:
        if self.pos >= len(self.args):
            prev = self.args[self.pos - 1] if self.pos else self.command
            self.fail(f'Argument expected after "{prev}"')
        return self.next()

    def number(self, text: str, sub: str, parse: Callable[[str], float] = float) -> float:
        try:
            value = parse(text)
        except ValueError:
            self.fail(f"Error: Invalid arguments for command: {sub}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"Error: Invalid arguments for command: {sub}")
        return value

    def fail(self, message: str) -> None:
        trace = (
            f"\nException occurred while executing '{self.command}':\n"
            f"java.lang.IllegalArgumentException: {message}\n"
            f"\tat {self.service}.onCommand({self.service.rsplit('.', 1)[-1]}.java:224)\n"
            "\tat com.android.modules.utils.BasicShellCommandHandler.exec(BasicShellCommandHandler.java:97)"
        )
        raise CommandError(trace, 255)


def _input(ctx: Context, args: list[str]) -> int:
    """`input [source] [-d DISPLAY] COMMAND ...` (InputShellCommand of Android 13)."""
    a = _JavaArgs("com.android.server.input.InputShellCommand", args)
    sub = a.next()
    if sub in _INPUT_SOURCES:
        sub = a.required()
    if sub == "-d":
        display = a.required()
        if not re.fullmatch(r"-?\d+|INVALID_DISPLAY|DEFAULT_DISPLAY", display, re.I):
            a.fail("Error: Invalid arguments for display ID.")
        sub = a.required()
    handler = _INPUT_COMMANDS.get(sub or "")
    if handler is not None:
        handler(ctx, a, sub)
    elif sub in (None, "help", "-h"):
        ctx.out(_INPUT_USAGE)
    else:
        ctx.out(f"Unknown command: {sub}")
    return 0  # InputShellCommand returns 0 even for unknown commands


def _input_text(ctx: Context, a: _JavaArgs, sub: str) -> None:
    # Only the first argument is typed; "%s" stands for a space (InputShellCommand.sendText).
    text = a.required().replace("%s", " ")
    if text:
        ctx.phone.type_text(text)


def _input_keyevent(ctx: Context, a: _JavaArgs, sub: str) -> None:
    arg = a.required()
    presses = 1
    if arg in ("--longpress", "--doubletap"):
        presses = 2 if arg == "--doubletap" else 1
        arg = a.required()
    while arg is not None:
        code = keycode_from_string(arg)
        for _ in range(presses):
            if code:  # KEYCODE_UNKNOWN is injected but does nothing
                ctx.phone.key(code)
        arg = a.next()


def _input_keycombination(ctx: Context, a: _JavaArgs, sub: str) -> None:
    arg = a.required()
    if arg == "-t":
        a.number(a.required(), sub, int)
        arg = a.required()
    codes = []
    while arg is not None:
        code = keycode_from_string(arg)
        if code == 0:
            a.fail(f"Unknown keycode: {arg}")
        codes.append(code)
        arg = a.next()
    if len(codes) < 2:
        a.fail("keycombination requires at least 2 keycodes")
    ctx.phone.key_combination(codes)


def _input_tap(ctx: Context, a: _JavaArgs, sub: str) -> None:
    x, y = (a.number(a.required(), sub) for _ in range(2))
    ctx.phone.tap(int(x), int(y))


def _swipe_args(a: _JavaArgs, sub: str) -> tuple[int, int, int, int, int]:
    x1, y1, x2, y2 = (int(a.number(a.required(), sub)) for _ in range(4))
    duration_arg = a.next()
    duration = int(a.number(duration_arg, sub, int)) if duration_arg is not None else -1
    return x1, y1, x2, y2, duration if duration >= 0 else 300


def _input_swipe(ctx: Context, a: _JavaArgs, sub: str) -> None:
    ctx.phone.swipe(*_swipe_args(a, sub))


def _input_draganddrop(ctx: Context, a: _JavaArgs, sub: str) -> None:
    # A drag starts with a long press; the simulated phone has no drag-and-drop, so it is a slow swipe.
    x1, y1, x2, y2, duration = _swipe_args(a, sub)
    ctx.phone.swipe(x1, y1, x2, y2, max(duration, 500))


def _input_roll(ctx: Context, a: _JavaArgs, sub: str) -> None:
    a.number(a.required(), sub)
    a.number(a.required(), sub)  # trackball motion: nothing on the simulated phone reacts to it


def _input_press(ctx: Context, a: _JavaArgs, sub: str) -> None:
    """A trackball click: nothing on the simulated phone reacts to it."""


def _input_motionevent(ctx: Context, a: _JavaArgs, sub: str) -> None:
    action = a.required().upper()
    if action not in ("DOWN", "UP", "MOVE", "CANCEL"):
        a.fail(f"Unknown action: {action}")
    if action != "CANCEL":
        a.number(a.required(), sub)
        a.number(a.required(), sub)
    # Single pointer events are accepted but not simulated; use tap/swipe.


_INPUT_COMMANDS: dict[str, Callable[[Context, _JavaArgs, str], None]] = {
    "text": _input_text,
    "keyevent": _input_keyevent,
    "keycombination": _input_keycombination,
    "tap": _input_tap,
    "swipe": _input_swipe,
    "draganddrop": _input_draganddrop,
    "press": _input_press,
    "roll": _input_roll,
    "motionevent": _input_motionevent,
}


# ==== screen: screencap, uiautomator, wm ===============================================================


def _screencap(ctx: Context, args: list[str]) -> int:
    """`screencap [-p] [-d ID] [FILE]`: PNG with -p or a .png name, else the raw RGBA dump."""
    opts, files = getopt("screencap", args, "hpj", valued="da")
    if "h" in opts:
        ctx.err("usage: screencap [-hp] [-d display-id] [FILENAME]")
        return 0
    png = ctx.phone.screenshot_png()
    as_png = "p" in opts or (files and files[0].endswith(".png"))
    data = png if as_png else _raw_screencap(png)
    if not files:
        ctx.stdout += data
        return 0
    path = ctx.path(files[0])
    if not ctx.fs.is_dir(posixpath.dirname(path)) or ctx.fs.is_dir(path):
        ctx.err(f"Error opening file: {files[0]} (No such file or directory).")
        return 1
    ctx.fs.write(path, data)
    return 0


def _raw_screencap(png: bytes) -> bytes:
    """screencap's raw format: width, height, pixel format (1 = RGBA_8888), dataspace, then pixels."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    return struct.pack("<IIII", image.width, image.height, 1, 0) + image.tobytes()


_UIAUTOMATOR_USAGE = """Usage: uiautomator <subcommand> [options]

Available subcommands:

help: displays help message

runtest: executes UI automation tests
    runtest <class spec> [options]

dump: creates an XML dump of current UI hierarchy
    dump [--verbose][file]
      [--compressed]: dumps compressed layout information.
      [file]: the location where the dumped XML should be stored, default is
      /sdcard/window_dump.xml

events: prints out accessibility events until terminated"""


def _uiautomator(ctx: Context, args: list[str]) -> int:
    if not args or args[0] != "dump":
        ctx.out(_UIAUTOMATOR_USAGE)
        return 0
    files = [a for a in args[1:] if not a.startswith("--")]
    target = files[0] if files else "/sdcard/window_dump.xml"
    xml = ctx.phone.ui_xml().encode()
    if target in ("/dev/tty", "/dev/stdout"):
        ctx.stdout += xml
    else:
        path = ctx.path(target)
        if not ctx.fs.is_dir(posixpath.dirname(path)) or ctx.fs.is_dir(path):
            ctx.err(f"ERROR: could not write {path}: No such file or directory")
            return 1
        ctx.fs.write(path, xml)
        target = path
    ctx.out(f"UI hierchary dumped to: {target}")  # sic: Android's spelling, which scripts match
    return 0


def _wm(ctx: Context, args: list[str]) -> int:
    sub = args[0] if args else "help"
    phone = ctx.phone
    if sub == "size":
        if len(args) == 1:
            ctx.out(f"Physical size: {phone.width}x{phone.height}")
        # `wm size WxH` / `reset` are accepted; the simulated display keeps its physical size.
        return 0
    if sub == "density":
        if len(args) == 1:
            ctx.out(f"Physical density: {phone.density}")
        return 0
    if sub in ("help", "-h"):
        ctx.out(
            "Window manager (window) commands:\n  help\n  size [reset|WxH|WdpxHdp]\n  density [reset|DENSITY]"
        )
        return 0
    ctx.out(f"Unknown command: {sub}")
    return 255


# ==== activity manager ================================================================================


@dataclass
class _Intent:
    action: str = ""
    data: str = ""
    mime: str = ""
    categories: list[str] = field(default_factory=list)
    package: str = ""
    component: tuple[str, str] | None = None  # (package, class as given)
    extras: bool = False

    def __str__(self) -> str:
        """Intent.toString as `am` prints it: `Intent { act=... cat=[...] dat=... cmp=pkg/.Cls }`."""
        parts = []
        if self.action:
            parts.append(f"act={self.action}")
        if self.categories:
            parts.append(f"cat=[{','.join(self.categories)}]")
        if self.data:
            parts.append(f"dat={self.data}")
        if self.mime:
            parts.append(f"typ={self.mime}")
        if self.package:
            parts.append(f"pkg={self.package}")
        if self.component:
            parts.append(f"cmp={short_component(*self.component)}")
        if self.extras:
            parts.append("(has extras)")
        return "Intent { " + " ".join(parts) + " }"


@dataclass
class _StartOptions:
    wait: bool = False
    stop: bool = False


# Intent options of `am start` / `am broadcast` with one argument (besides -a -d -t -c -n -p), and extras
# with a key and a value.
_AM_VALUED = {"-P", "--start-profiler", "--sampling", "--attach-agent", "--attach-agent-bind", "-R", "-f"}
_AM_VALUED |= {"--user", "--receiver-permission", "--display", "--windowingMode", "--activityType"}
_AM_VALUED |= {"--task", "--esn"}
_EXTRA_TWO_ARGS = {"-e", "--es", "--ei", "--el", "--ef", "--ez", "--eu", "--ecn", "--eia", "--ela", "--efa"}
_EXTRA_TWO_ARGS |= {"--esa"}


def _parse_intent(a: _JavaArgs) -> tuple[_Intent, _StartOptions]:
    """Intent.parseCommandArgs, the common subset: -a -d -t -c -n -p, extras, flags, a bare URI/package."""
    intent, opts = _Intent(), _StartOptions()
    simple = {"-a": "action", "-d": "data", "-t": "mime", "-p": "package"}
    arg = a.next()
    while arg is not None:
        if arg in simple:
            setattr(intent, simple[arg], a.required())
        elif arg == "-c":
            intent.categories.append(a.required())
        elif arg == "-n":
            component = a.required()
            if "/" not in component:
                a.fail(f"Bad component name: {component}")
            pkg, cls = component.split("/", 1)
            intent.component = (pkg, cls)
        elif arg in _EXTRA_TWO_ARGS:
            a.required()
            a.required()
            intent.extras = True
        elif arg in _AM_VALUED:
            a.required()
        elif arg in ("-W", "-S"):
            opts.wait = opts.wait or arg == "-W"
            opts.stop = opts.stop or arg == "-S"
        elif arg.startswith("-"):
            pass  # flags such as -D, -N, --activity-clear-top change nothing on the simulated phone
        elif arg:  # a bare argument: a URI, a component, or a package (an empty one is dropped)
            if ":" in arg:
                intent.data = arg
            elif "/" in arg:
                pkg, cls = arg.split("/", 1)
                intent.component = (pkg, cls)
            else:
                intent.package = arg
        arg = a.next()
    return intent, opts


def _am(ctx: Context, args: list[str]) -> int:
    a = _JavaArgs("com.android.server.am.ActivityManagerShellCommand", args)
    sub = a.next()
    handler = _AM_COMMANDS.get(sub or "")
    if handler is not None:
        return handler(ctx, a)
    if sub in (None, "help", "-h"):
        ctx.out(
            "Activity manager (activity) commands:\n  help\n  start [-W] [-S] <INTENT>\n"
            "  force-stop <PACKAGE>\n  stack list"
        )
        return 0
    ctx.out(f"Unknown command: {sub}")
    return 255


def _resolve(ctx: Context, intent: _Intent) -> tuple[str, str | None] | None:
    """The (package, activity) an intent starts, the way the few implicit intents we know resolve."""
    apps = ctx.phone.apps
    if intent.component:
        return intent.component
    if intent.package:
        return (intent.package, None) if intent.package in apps else None
    if "android.intent.category.HOME" in intent.categories:
        return LAUNCHER, None
    if intent.action.startswith("android.settings.") and "com.android.settings" in apps:
        return "com.android.settings", None
    return None


def _am_start(ctx: Context, a: _JavaArgs) -> int:
    intent, opts = _parse_intent(a)
    phone = ctx.phone
    report = ctx.out if opts.wait else ctx.err  # with -W errors go to stdout
    target = _resolve(ctx, intent)
    if opts.stop and target and target[0] in phone.apps:
        ctx.out(f"Stopping: {target[0]}")
        phone.force_stop(target[0])
    ctx.out(f"Starting: {intent}")
    if target is None:
        report(f"Error: Activity not started, unable to resolve {intent}")
        return 0
    package, cls = target
    activity = _find_activity(phone, package, cls) if cls is not None else phone.apps[package].main_activity
    if activity is None:
        report("Error type 3")
        report(f"Error: Activity class {{{long_component(package, cls)}}} does not exist.")
        return 0
    tasks = {pkg: acts for _, pkg, acts in _tasks(phone)}
    on_top = phone.current_activity() == (package, activity)
    phone.launch(package, activity if cls is not None else None)
    state = "COLD" if package not in tasks else "HOT"
    if on_top:
        report(
            "Warning: Activity not started, intent has been delivered to currently running top-most instance."
        )
        state = "UNKNOWN (0)"
    elif package in tasks and tasks[package][0] == activity:
        report("Warning: Activity not started, its current task has been brought to the front")
        state = "UNKNOWN (0)"
    if opts.wait:
        total = {"COLD": 412, "HOT": 96}.get(state)
        ctx.out("Status: ok")
        ctx.out(f"LaunchState: {state}")
        ctx.out(f"Activity: {short_component(package, activity)}")
        if total is not None:
            ctx.out(f"TotalTime: {total}")
        ctx.out(f"WaitTime: {(total or 0) + 4}")
        ctx.out("Complete")
    return 0


def _am_force_stop(ctx: Context, a: _JavaArgs) -> int:
    arg = a.required()
    while arg == "--user":
        a.required()
        arg = a.required()
    if arg in ctx.phone.apps:
        ctx.phone.force_stop(arg)
    return 0


def _am_kill(ctx: Context, a: _JavaArgs) -> int:
    a.required()  # only kills a background process; the simulated phone keeps no processes
    return 0


def _am_broadcast(ctx: Context, a: _JavaArgs) -> int:
    intent, _ = _parse_intent(a)
    ctx.out(f"Broadcasting: {intent}".replace(" }", " flg=0x400000 }", 1))
    ctx.out("Broadcast completed: result=0")
    return 0


def _am_stack(ctx: Context, a: _JavaArgs) -> int:
    sub = a.required()
    if sub == "list":
        ctx.out(_stack_list(ctx.phone), end="")
        return 0
    if sub == "remove":
        task_id = a.number(a.required(), "stack", int)
        for tid, package, _ in _tasks(ctx.phone):
            if tid == task_id and package != LAUNCHER:
                ctx.phone.force_stop(package)  # removing the task finishes all its activities
        return 0
    a.fail(f"Unknown stack command: {sub}")
    return 255


def _am_task(ctx: Context, a: _JavaArgs) -> int:
    sub = a.required()
    if sub == "lock":
        a.required()  # screen pinning is accepted but not simulated
        return 0
    a.fail(f"Unknown task command: {sub}")
    return 255


def _stack_list(phone: Any) -> str:
    """`am stack list` (Android 11+): one root task per task, the foreground one visible."""
    w, h, dpi = phone.width, phone.height, phone.density
    sw, hdp = w * 160 // dpi, h * 160 // dpi
    lines = []
    for n, (tid, package, activities) in enumerate(_tasks(phone)):
        kind = "home" if package == LAUNCHER else "standard"
        lines += [
            f"RootTask id={tid} bounds=[0,0][{w},{h}] displayId=0 userId=0",
            f" configuration={{1.0 310mcc260mnc [en_US] ldltr sw{sw}dp w{sw}dp h{hdp}dp {dpi}dpi nrml long "
            f"port finger qwerty/v/v dpad/v winConfig={{ mBounds=Rect(0, 0 - {w}, {h}) "
            f"mAppBounds=Rect(0, 0 - {w}, {h}) mMaxBounds=Rect(0, 0 - {w}, {h}) mDisplayRotation=ROTATION_0 "
            "mWindowingMode=fullscreen "
            f"mDisplayWindowingMode=fullscreen mActivityType={kind} mAlwaysOnTop=undefined "
            f"mRotation=ROTATION_0}} s.{tid} fontWeightAdjustment=0}}",
            f"  taskId={tid}: {long_component(package, activities[0])} bounds=[0,0][{w},{h}] userId=0 "
            f"visible={'true' if n == 0 else 'false'} "
            f"topActivity=ComponentInfo{{{long_component(package, activities[-1])}}}",
        ]
    return "\n".join(lines) + "\n"


def _am_current_user(ctx: Context, a: _JavaArgs) -> int:
    ctx.out("0")
    return 0


_AM_COMMANDS: dict[str, Callable[[Context, _JavaArgs], int]] = {
    "start": _am_start,
    "start-activity": _am_start,
    "force-stop": _am_force_stop,
    "kill": _am_kill,
    "broadcast": _am_broadcast,
    "stack": _am_stack,
    "task": _am_task,
    "get-current-user": _am_current_user,
}


def _monkey(ctx: Context, args: list[str]) -> int:
    """`monkey -p PKG [-c CATEGORY] COUNT`: scripts use it to launch an app's launcher activity."""
    for arg in args:  # the /system/bin/monkey wrapper script echoes its arguments
        ctx.out(f"  bash arg: {arg}")
    ctx.out(f"args: [{', '.join(args)}]")
    for arg in args:
        ctx.out(f' arg: "{arg}"')
    packages, count, it = [], 0, iter(args)
    for arg in it:
        if arg in ("-p", "-c", "-s", "--throttle", "--pct-touch", "--pct-motion", "--pct-syskeys"):
            value = next(it, "")
            ctx.out(f'data="{value}"')
            if arg == "-p":
                packages.append(value)
        elif re.fullmatch(r"\d+", arg):
            count = int(arg)
    candidates = [p for p in packages or sorted(ctx.phone.apps) if p in ctx.phone.apps and p != LAUNCHER]
    if not candidates:
        ctx.err("** No activities found to run, monkey aborted.")
        return 251
    if count:
        ctx.phone.launch(candidates[0])
    ctx.out(f"Events injected: {count}")
    ctx.out("## Network stats: elapsed time=7ms (0ms mobile, 0ms wifi, 7ms not connected)")
    return 0


# ==== package manager ===================================================================================


def _packages(phone: Any) -> list[str]:
    """Installed apps, framework packages and anything else with a data directory."""
    with_data = [name for name, st in phone.fs.listdir("/data/data") if st.is_dir]
    return sorted(set(phone.apps) | set(FRAMEWORK_PACKAGES) | set(with_data))


def _is_system(package: str) -> bool:
    return package == "android" or package.startswith(("com.android.", "com.google.android."))


def apk_path(package: str) -> str:
    """Where an APK lives: /data/app/~~<22 chars>==/<pkg>-<22 chars>==/base.apk, stable per package."""

    def token(salt: str) -> str:
        digest = hashlib.sha256(f"{salt}:{package}".encode()).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    return f"/data/app/~~{token('dir')}==/{package}-{token('apk')}==/base.apk"


def _pm(ctx: Context, args: list[str]) -> int:
    a = _JavaArgs("com.android.server.pm.PackageManagerShellCommand", args)
    sub = a.next()
    handler = _PM_COMMANDS.get(sub or "")
    if handler is not None:
        return handler(ctx, a)
    if sub in (None, "help", "-h"):
        ctx.out(
            "Package manager (package) commands:\n  help\n  path PACKAGE\n"
            "  list packages [-f] [-3] [-s] [FILTER]"
        )
        return 0
    ctx.out(f"Unknown command: {sub}")
    return 255


def _pm_list(ctx: Context, a: _JavaArgs) -> int:
    what = a.required()
    rest = a.args[a.pos :]
    if what == "features":
        for feature in ("android.hardware.touchscreen", "android.hardware.wifi", "android.software.webview"):
            ctx.out(f"feature:{feature}")
        return 0
    if what == "libraries":
        ctx.out("library:android.test.runner")
        return 0
    if what not in ("packages", "package"):
        a.fail(f"Unknown list type: {what}")
    opts, filters = getopt(
        "pm", [r for r in rest if r not in ("--user", "--show-versioncode")], "fdes3iuUaAl"
    )
    if "--user" in rest:
        filters = filters[1:] if filters else filters  # the user id followed --user
    show_version = "--show-versioncode" in rest
    for package in _packages(ctx.phone):
        if ("s" in opts and not _is_system(package)) or ("3" in opts and _is_system(package)):
            continue
        if filters and filters[0] not in package:
            continue
        line = f"package:{apk_path(package)}={package}" if "f" in opts else f"package:{package}"
        if show_version:
            line += " versionCode:1"
        if "U" in opts:
            line += f" uid:{_uid(package)}"
        if "i" in opts:
            line += "  installer=null"
        ctx.out(line)
    return 0


def _pm_package_arg(a: _JavaArgs) -> str:
    arg = a.required()
    while arg == "--user":
        a.required()
        arg = a.required()
    return arg


def _pm_path(ctx: Context, a: _JavaArgs) -> int:
    package = _pm_package_arg(a)
    if package not in _packages(ctx.phone):
        return 1  # unknown package: no output, status 1
    ctx.out(f"package:{apk_path(package)}")
    return 0


def _pm_clear(ctx: Context, a: _JavaArgs) -> int:
    package = _pm_package_arg(a)
    phone = ctx.phone
    if package in phone.apps:
        phone.clear_app_data(package)
    elif package in _packages(phone):
        data_dir = f"/data/data/{package}"  # a content provider: its databases come back empty
        if phone.fs.exists(data_dir):
            phone.fs.rmtree(data_dir)
        phone.fs.makedirs(data_dir)
    else:
        ctx.err("Failed")
        return 1
    ctx.out("Success")
    return 0


def _pm_grant(ctx: Context, a: _JavaArgs) -> int:
    package = _pm_package_arg(a)
    a.required()  # the permission: every simulated app already holds what it needs
    if package not in _packages(ctx.phone):
        a.fail(f"Unknown package: {package}")
    return 0


def _pm_install(ctx: Context, a: _JavaArgs) -> int:
    ctx.err("Failure [INSTALL_FAILED_INTERNAL_ERROR: the simulated phone cannot install APKs]")
    return 1


def _pm_uninstall(ctx: Context, a: _JavaArgs) -> int:
    ctx.err("Failure [DELETE_FAILED_INTERNAL_ERROR]")
    return 1


def _pm_dump(ctx: Context, a: _JavaArgs) -> int:
    ctx.out(_dumpsys_package(ctx.phone, [a.required()]), end="")
    return 0


_PM_COMMANDS: dict[str, Callable[[Context, _JavaArgs], int]] = {
    "list": _pm_list,
    "path": _pm_path,
    "clear": _pm_clear,
    "grant": _pm_grant,
    "revoke": _pm_grant,
    "install": _pm_install,
    "uninstall": _pm_uninstall,
    "dump": _pm_dump,
}


# ==== dumpsys ===========================================================================================

_DASHES = "-" * 79


def _dumpsys(ctx: Context, args: list[str]) -> int:
    if not args or args[0] == "-l":
        ctx.out("Currently running services:")
        for name in sorted(_DUMPSYS, key=str.lower):
            ctx.out(f"  {name}")
        return 0
    service, rest = args[0], args[1:]
    dump = _DUMPSYS.get(service)
    if dump is None:
        ctx.err(f"Can't find service: {service}")
        return 0
    ctx.out(dump(ctx.phone, rest), end="")
    return 0


def _window_token(phone: Any) -> tuple[str, str, str]:
    """(pkg, activity, `Window{hex u0 pkg/full.Class}`) of the focused app window."""
    package, activity = phone.current_activity()
    return (
        package,
        activity,
        f"Window{{{_hex_id('win', package, activity)} u0 {long_component(package, activity)}}}",
    )


def _activity_record(package: str, activity: str, task_id: int) -> str:
    """`ActivityRecord{hex u0 pkg/.Act tN}` as dumpsys prints it."""
    hex_id = _hex_id("ar", package, activity, task_id)
    return f"ActivityRecord{{{hex_id} u0 {short_component(package, activity)} t{task_id}}}"


def _focused_record(phone: Any) -> str:
    package, activity = phone.current_activity()
    task_id = next((tid for tid, pkg, _ in _tasks(phone) if pkg == package), 0)
    return _activity_record(package, activity, task_id)


def _dumpsys_window_displays(phone: Any) -> str:
    w, h, dpi = phone.width, phone.height, phone.density
    app_h = h - round(48 * dpi / 160)  # minus the navigation bar
    _, _, focus = _window_token(phone)
    return "\n".join(
        [
            "WINDOW MANAGER DISPLAY CONTENTS (dumpsys window displays)",
            f"  Display: mDisplayId=0 rootTasks={len(_tasks(phone))}",
            f"    init={w}x{h} {dpi}dpi cur={w}x{h} app={w}x{app_h} rng={w}x{w - 63}-{app_h}x{app_h}",
            f"    deferred=false mLayoutNeeded=false mTouchExcludeRegion=SkRegion((0,0,{w},{h}))",
            "",
            "  mLayoutSeq=250",
            f"  mCurrentFocus={focus}",
            f"  mFocusedApp={_focused_record(phone)}",
            "  mLastStatusBarVisibility=0x0",
            "  DisplayRotation",
            "    mCurrentAppOrientation=SCREEN_ORIENTATION_UNSPECIFIED",
            "    mLastOrientation=-1",
            "    mRotation=0 mDeferredRotationPauseCount=0",
            "    mCurrentRotation=ROTATION_0",
            "    mUserRotationMode=USER_ROTATION_LOCKED mUserRotation=ROTATION_0",
            "",
        ]
    )


def _dumpsys_window_windows(phone: Any) -> str:
    w, h = phone.width, phone.height
    package, activity, focus = _window_token(phone)
    windows = [
        ("com.android.systemui.ImageWallpaper", "com.android.systemui", "WALLPAPER"),
        (long_component(package, activity), package, "BASE_APPLICATION"),
        ("StatusBar", "com.android.systemui", "STATUS_BAR"),
        ("NavigationBar0", "com.android.systemui", "NAVIGATION_BAR"),
    ]
    lines = ["WINDOW MANAGER WINDOWS (dumpsys window windows)"]
    for n, (title, owner, kind) in enumerate(reversed(windows)):
        token = f"Window{{{_hex_id('win', *title.split('/'))} u0 {title}}}"
        lines += [
            f"  Window #{n} {token}:",
            f"    mDisplayId=0 rootTaskId=1 mSession=Session{{{_hex_id('session', owner)} {_pid(owner)}:u0a"
            f"{_uid(owner) - 10000}}} mClient=android.os.BinderProxy@{_hex_id('client', title)}",
            f"    mOwnerUid={_uid(owner)} showForAllUsers=false package={owner} appop=NONE",
            f"    mAttrs={{(0,0)(fillxfill) sim={{adjust=pan}} ty={kind} fmt=TRANSLUCENT}}",
            f"    Requested w={w} h={h} mLayoutSeq=250",
            "    mHasSurface=true isReadyForDisplay()=true mWindowRemovalAllowed=false",
        ]
    lines += [
        "",
        "  mGlobalConfiguration={1.0 310mcc260mnc [en_US] ldltr port finger qwerty/v/v dpad/v}",
        "  mHasPermanentDpad=false",
        "  mTopFocusedDisplayId=0",
        f"  mCurrentFocus={focus}",
        f"  mFocusedApp={_focused_record(phone)}",
        "",
    ]
    return "\n".join(lines)


def _dumpsys_window(phone: Any, args: list[str]) -> str:
    sections = {"displays": _dumpsys_window_displays, "windows": _dumpsys_window_windows}
    if args and args[0] in sections:
        return sections[args[0]](phone)
    policy = "WINDOW MANAGER POLICY STATE (dumpsys window policy)\n    mSafeMode=false mSystemReady=true\n"
    parts = [policy, _dumpsys_window_displays(phone), _dumpsys_window_windows(phone)]
    return _DASHES.join(parts)


def _task_header(tid: int, package: str, activities: list[str], visible: bool) -> str:
    kind = "home" if package == LAUNCHER else "standard"
    return (
        f"Task{{{_hex_id('task', tid)} #{tid} type={kind} A={_uid(package)}:{package} U=0 "
        f"visible={str(visible).lower()} visibleRequested={str(visible).lower()} mode=fullscreen "
        f"translucent=false sz={len(activities)}}}"
    )


def _dumpsys_activity_activities(phone: Any) -> str:
    lines = [
        "ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)",
        "Display #0 (activities from top to bottom):",
    ]
    tasks = _tasks(phone)
    for n, (tid, package, activities) in enumerate(tasks):
        top = _activity_record(package, activities[-1], tid)
        lines.append(f"  * {_task_header(tid, package, activities, n == 0)}")
        lines.append(f"    mBounds=Rect(0, 0 - {phone.width}, {phone.height})")
        if n == 0:
            lines.append(f"    topResumedActivity={top}")
        for depth in range(len(activities) - 1, -1, -1):
            record = _activity_record(package, activities[depth], tid)
            lines.append(f"    * Hist  #{depth}: {record}")
            lines.append(f"      packageName={package} processName={package}")
            process = f"{_pid(package)}:{package}/u0a{_uid(package) - 10000}"
            lines.append(f"      app=ProcessRecord{{{_hex_id('proc', package)} {process}}}")
        if n == 0:
            lines.append(f"    mResumedActivity: {top}")
    focused = _focused_record(phone)
    first = tasks[0] if tasks else (0, "", [""])
    lines += [
        "",
        f"  ResumedActivity: {focused}",
        "  Resumed activities in task display areas (from top to bottom):",
        f"    Resumed: {focused}",
        "",
        f"  mFocusedRootTask={_task_header(first[0], first[1], first[2], True)}",
        f"  mCurTaskIdForUser={{0={first[0]}}}",
        "  isHomeRecentsComponent=true",
        "",
    ]
    return "\n".join(lines)


def _dumpsys_activity_top(phone: Any, package_filter: str = "") -> str:
    tid, package, activities = _tasks(phone)[0]
    if package_filter and package_filter != package:
        return ""
    activity = activities[-1]
    return "\n".join(
        [
            f"TASK {_uid(package)}:{package} id={tid} userId=0",
            f"  ACTIVITY {short_component(package, activity)} {_hex_id('ar', package, activity, tid)} "
            f"pid={_pid(package)}",
            f"    Local Activity {_hex_id('local', package, activity)} State:",
            "      mResumed=true mStopped=false mFinished=false",
            "",
        ]
    )


def _dumpsys_activity_recents(phone: Any) -> str:
    lines = [
        "ACTIVITY MANAGER RECENT TASKS (dumpsys activity recents)",
        f"  mRecentsComponent=ComponentInfo{{{LAUNCHER}/com.android.quickstep.RecentsActivity}}",
        "  Recent tasks:",
    ]
    recents = [t for t in _tasks(phone) if t[1] != LAUNCHER]
    for n, (tid, package, activities) in enumerate(recents):
        lines += [
            f"  * Recent #{n}: {_task_header(tid, package, activities, n == 0)}",
            f"    userId=0 effectiveUid=u0a{_uid(package) - 10000} mCallingUid=2000 mUserSetupComplete=true",
            "    intent={act=android.intent.action.MAIN cat=[android.intent.category.LAUNCHER] "
            "flg=0x10000000 "
            f"cmp={short_component(package, activities[0])}}}",
            f"    taskId={tid} rootTaskId={tid}",
        ]
    return "\n".join(lines) + "\n"


def _dumpsys_activity(phone: Any, args: list[str]) -> str:
    sub = args[0] if args else "activities"
    sections = {
        "activities": _dumpsys_activity_activities,
        "a": _dumpsys_activity_activities,
        "top": _dumpsys_activity_top,
        "recents": _dumpsys_activity_recents,
        "r": _dumpsys_activity_recents,
    }
    if sub in sections:
        return sections[sub](phone)
    return _dumpsys_activity_top(phone, package_filter=sub)  # `dumpsys activity PKG ...`


def _dumpsys_display(phone: Any, args: list[str]) -> str:
    w, h, dpi = phone.width, phone.height, phone.density
    viewport = (
        "DisplayViewport{type=INTERNAL, valid=true, isActive=true, displayId=0, "
        f"uniqueId='{DISPLAY_UNIQUE_ID}', physicalPort=0, orientation=0, logicalFrame=Rect(0, 0 - {w}, {h}), "
        f"physicalFrame=Rect(0, 0 - {w}, {h}), "
        f"deviceWidth={w}, deviceHeight={h}}}"
    )
    info = (
        f'DisplayInfo{{"Built-in Screen", displayId 0, displayGroupId 0, FLAG_SECURE, '
        f"FLAG_SUPPORTS_PROTECTED_BUFFERS, FLAG_TRUSTED, real {w} x {h}, largest app {w} x {h}, "
        f"smallest app {w} x {h}, appVsyncOff 1000000, presDeadline 16666666, mode 1, defaultMode 1, "
        f"modes [{{id=1, width={w}, height={h}, fps=60.0, alternativeRefreshRates=[]}}], rotation 0, "
        f'state ON, committedState ON, type INTERNAL, uniqueId "{DISPLAY_UNIQUE_ID}", app {w} x {h}, '
        f"density {dpi} ({dpi}.0 x {dpi}.0) dpi, layerStack 0, colorMode 0, supportedColorModes [0], "
        f"address {{port=0, model=0x401cec6a7a2b7b}}, deviceProductInfo null, removeMode 0}}"
    )
    return "\n".join(
        [
            "DISPLAY MANAGER (dumpsys display)",
            "  mOnlyCode=false",
            "  mSafeMode=false",
            "  mPendingTraversal=false",
            f"  mViewports=[{viewport}]",
            "",
            "Display Devices: size=1",
            f'  DisplayDeviceInfo{{"Built-in Screen": uniqueId="{DISPLAY_UNIQUE_ID}", {w} x {h}, modeId 1, '
            f"defaultModeId 1, density {dpi}, {dpi}.0 x {dpi}.0 dpi, type INTERNAL, state ON}}",
            "    mAdapter=LocalDisplayAdapter",
            "    mCurrentOrientation=0",
            f"    mCurrentDisplayRect=Rect(0, 0 - {w}, {h})",
            "",
            "Logical Displays: size=1",
            "  Display 0:",
            "    mDisplayId=0",
            "    mLayerStack=0",
            "    mHasContent=true",
            "    mPrimaryDisplayDevice=Built-in Screen",
            f"    mBaseDisplayInfo={info}",
            f"    mOverrideDisplayInfo={info}",
            "",
        ]
    )


def _dumpsys_input(phone: Any, args: list[str]) -> str:
    w, h = phone.width, phone.height
    viewport = (
        f"Viewport INTERNAL: displayId=0, uniqueId={DISPLAY_UNIQUE_ID}, port=0, orientation=0, "
        f"logicalFrame=[0, 0, {w}, {h}], physicalFrame=[0, 0, {w}, {h}], deviceSize=[{w}, {h}], isActive=[1]"
    )
    return "\n".join(
        [
            "INPUT MANAGER (dumpsys input)",
            "",
            "Input Manager State:",
            "  Interactive: true",
            "  System UI Lights Out: false",
            "  Pointer Speed: 0",
            "  Show Touches: false",
            "Event Hub State:",
            "  BuiltInKeyboardId: -2",
            "  Devices:",
            "    3: virtio_input_multi_touch_1",
            "      Classes: TOUCH | TOUCH_MT",
            "Input Reader State (Nums of device: 1):",
            "  Device 3: virtio_input_multi_touch_1",
            "    Generation: 4",
            "    IsExternal: false",
            "    Sources: TOUCHSCREEN",
            "    Touch Input Mapper (mode - DIRECT):",
            "      Parameters:",
            "        GestureMode: MULTI_TOUCH",
            "        DeviceType: TOUCH_SCREEN",
            "        OrientationAware: true",
            f"      {viewport}",
            f"      SurfaceWidth: {w}px",
            f"      SurfaceHeight: {h}px",
            "      SurfaceLeft: 0",
            "      SurfaceTop: 0",
            f"      PhysicalWidth: {w}px",
            f"      PhysicalHeight: {h}px",
            "      PhysicalLeft: 0",
            "      PhysicalTop: 0",
            "      SurfaceOrientation: 0",
            "  Configuration:",
            "    PointerVelocityControlParameters: scale=1.000, lowThreshold=500.000, highThreshold=3000.000",
            "  Viewports:",
            f"    {viewport}",
            "",
        ]
    )


def _dumpsys_package(phone: Any, args: list[str]) -> str:
    package = args[0] if args else ""
    if package not in _packages(phone):
        return "Dexopt state:\n  Unable to find package: " + package + "\n"
    app = phone.apps.get(package)
    version = app.version_name if app is not None else "13"
    installed = phone.now().strftime("%Y-%m-%d %H:%M:%S")
    flags = (
        "SYSTEM HAS_CODE ALLOW_CLEAR_USER_DATA" if _is_system(package) else "HAS_CODE ALLOW_CLEAR_USER_DATA"
    )
    code_path = posixpath.dirname(apk_path(package))
    lines = [
        "Packages:",
        f"  Package [{package}] ({_hex_id('pkg', package)}):",
        f"    userId={_uid(package)}",
    ]
    lines += [
        f"    pkg=Package{{{_hex_id('pkgobj', package)} {package}}}",
        f"    codePath={code_path}",
        f"    resourcePath={code_path}",
        "    primaryCpuAbi=null",
        "    versionCode=1 minSdk=33 targetSdk=33",
        f"    versionName={version}",
        f"    flags=[ {flags} ]",
        f"    pkgFlags=[ {flags} ]",
        f"    timeStamp={installed}",
        f"    firstInstallTime={installed}",
        f"    lastUpdateTime={installed}",
        "    installerPackageName=null",
        f"    signatures=PackageSignatures{{{_hex_id('sig', package)} version:3, "
        f"signatures:[{_hex_id('cert', package)}], past signatures:[]}}",
        "    User 0: ceDataInode=0 installed=true hidden=false suspended=false distractionFlags=0 "
        "stopped=false "
        "notLaunched=false enabled=0 instant=false virtual=false",
    ]
    if app is not None:
        lines.append("    declared permissions:" if app.permissions else "    requested permissions:")
        lines += [f"      {p}" for p in app.permissions]
    return "\n".join(lines) + "\n"


def _dumpsys_battery(phone: Any, args: list[str]) -> str:
    return (
        "Current Battery Service state:\n  AC powered: true\n  USB powered: false\n"
        "  Wireless powered: false\n  Dock powered: false\n  Max charging current: 0\n"
        "  Max charging voltage: 0\n  Charge counter: 10000\n"
        "  status: 2\n  health: 2\n  present: true\n  level: 100\n  scale: 100\n  voltage: 5000\n"
        "  temperature: 250\n  technology: Li-ion\n"
    )


def _dumpsys_power(phone: Any, args: list[str]) -> str:
    return (
        "POWER MANAGER (dumpsys power)\n\nPower Manager State:\n  mWakefulness=Awake\n"
        "  mWakefulnessChanging=false\n  mIsPowered=true\n  mPlugType=1\n  mStayOn=false\n"
        "  mHoldingWakeLockSuspendBlocker=false\n  mHoldingDisplaySuspendBlocker=true\n"
        "Display Power: state=ON\n"
    )


def _dumpsys_surfaceflinger(phone: Any, args: list[str]) -> str:
    return 'Display 4619827259835644672 (HWC display 0): port=0 pnpId=GGL displayName="EMU_display_0"\n'


def _dumpsys_telephony(phone: Any, args: list[str]) -> str:
    return "last known state:\n  Phone Id=0\n    mCallState=0\n    mRingingCallState=0\n    mServiceState=0\n"


_DUMPSYS: dict[str, Callable[[Any, list[str]], str]] = {
    "window": _dumpsys_window,
    "activity": _dumpsys_activity,
    "display": _dumpsys_display,
    "input": _dumpsys_input,
    "package": _dumpsys_package,
    "battery": _dumpsys_battery,
    "power": _dumpsys_power,
    "SurfaceFlinger": _dumpsys_surfaceflinger,
    "telephony.registry": _dumpsys_telephony,
}


# ==== settings, properties, services =====================================================================


def _settings(ctx: Context, args: list[str]) -> int:
    """`settings [--user N] get|put|delete|list|reset NAMESPACE [KEY [VALUE]]`."""
    rest = list(args)
    while rest[:1] == ["--user"]:
        rest = rest[2:]
    if len(rest) < 2 or rest[0] not in _SETTINGS_VERBS:
        ctx.err("Invalid command: " + (" ".join(rest) or "(none)"))
        return 255
    verb, namespace, operands = rest[0], rest[1], rest[2:]
    if namespace not in ("system", "secure", "global"):
        ctx.err(f"Invalid namespace '{namespace}'")
        return 255
    return _SETTINGS_VERBS[verb](ctx, namespace, operands)


def _settings_get(ctx: Context, namespace: str, operands: list[str]) -> int:
    if not operands:
        ctx.err("Bad arguments")
        return 255
    value = ctx.phone.get_setting(namespace, operands[0])
    ctx.out("null" if value is None else value)
    return 0


def _settings_put(ctx: Context, namespace: str, operands: list[str]) -> int:
    if len(operands) < 2:
        ctx.err("Bad arguments")
        return 255
    ctx.phone.put_setting(namespace, operands[0], operands[1])
    return 0


def _settings_delete(ctx: Context, namespace: str, operands: list[str]) -> int:
    if not operands:
        ctx.err("Bad arguments")
        return 255
    deleted = ctx.phone.delete_setting(namespace, operands[0])
    ctx.out(f"Deleted {int(deleted)} rows")
    return 0


def _settings_list(ctx: Context, namespace: str, operands: list[str]) -> int:
    for key, value in sorted(ctx.phone.list_settings(namespace).items()):
        ctx.out(f"{key}={value}")
    return 0


def _settings_reset(ctx: Context, namespace: str, operands: list[str]) -> int:
    return 0  # resetting to package defaults: the simulated settings have no per-package defaults


_SETTINGS_VERBS: dict[str, Callable[[Context, str, list[str]], int]] = {
    "get": _settings_get,
    "put": _settings_put,
    "delete": _settings_delete,
    "list": _settings_list,
    "reset": _settings_reset,
}


def _content(ctx: Context, args: list[str]) -> int:
    """`content query|insert|delete --uri content://settings/NS ...` over the settings provider."""
    if not args:
        ctx.err("usage: adb shell content [subcommand] [options]")
        return 1
    verb, options = args[0], _content_options(args[1:])
    uri = options.get("uri", [""])[0]
    m = re.fullmatch(r"content://settings/(system|secure|global)", uri)
    if not m:
        if verb == "query":
            ctx.err(f"Error while accessing provider:{uri.removeprefix('content://').split('/')[0]}")
            return 1
        return 0  # writes to providers the simulated phone lacks (call log, sms) change nothing
    namespace = m.group(1)
    where = options.get("where", [""])[0]
    wanted = re.fullmatch(r"\s*name\s*=\s*'([^']*)'\s*", where)
    settings = ctx.phone.list_settings(namespace)
    if verb == "query":
        rows = [(k, v) for k, v in sorted(settings.items()) if not wanted or k == wanted.group(1)]
        if not rows:
            ctx.out("No result found.")
        for n, (key, value) in enumerate(rows):
            ctx.out(f"Row: {n} _id={sorted(settings).index(key) + 1}, name={key}, value={value}")
    elif verb == "insert":
        binds = dict(b.split(":", 2)[::2] for b in options.get("bind", []) if b.count(":") >= 2)
        if "name" in binds:
            ctx.phone.put_setting(namespace, binds["name"], binds.get("value", ""))
    elif verb == "delete" and wanted:
        ctx.phone.delete_setting(namespace, wanted.group(1))
    return 0


def _content_options(args: list[str]) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for name, value in zip(args[::2], args[1::2], strict=False):
        options.setdefault(name.lstrip("-"), []).append(value)
    return options


def _getprop(ctx: Context, args: list[str]) -> int:
    props = ctx.phone.props
    if not args:
        for key in sorted(props):
            ctx.out(f"[{key}]: [{props[key]}]")
        return 0
    ctx.out(props.get(args[0], args[1] if len(args) > 1 else ""))
    return 0


def _setprop(ctx: Context, args: list[str]) -> int:
    if len(args) != 2:
        ctx.err("usage: setprop NAME VALUE\n\nSets an Android system property.")
        return 1
    key, value = args
    if key.startswith("ro.") and key in ctx.phone.props:
        ctx.err(f"Failed to set property '{key}' to '{value}'.\nSee dmesg for error reason.")
        return 1
    ctx.phone.props[key] = value
    return 0


_SERVICES = (  # noqa: SIM905
    "activity alarm audio battery bluetooth_manager clipboard connectivity display input input_method "
    "notification package power settings statusbar SurfaceFlinger telephony.registry uimode wifi window"
).split()


def _service(ctx: Context, args: list[str]) -> int:
    sub = args[0] if args else ""
    if sub == "check" and len(args) > 1:
        ctx.out(f"Service {args[1]}: {'found' if args[1] in _SERVICES else 'not found'}")
    elif sub == "list":
        ctx.out(f"Found {len(_SERVICES)} services:")
        for n, name in enumerate(_SERVICES):
            ctx.out(f"{n}\t{name}: []")
    elif sub == "call" and len(args) > 2:
        ctx.out("Result: Parcel(00000000    '....')")
    else:
        ctx.err(
            "Usage: service [-h|-?]\n       service list\n       service check SERVICE\n"
            "       service call SERVICE CODE [i32 N | i64 N | f N | d N | s16 STR | null | fd f] ..."
        )
        return 0 if sub in ("-h", "-?") else 1
    return 0


_SVC_SETTINGS = {"wifi": "wifi_on", "bluetooth": "bluetooth_on", "data": "mobile_data"}


def _svc(ctx: Context, args: list[str]) -> int:
    """`svc wifi|bluetooth|data enable|disable` flips the matching global setting."""
    if len(args) >= 2 and args[0] in _SVC_SETTINGS and args[1] in ("enable", "disable"):
        ctx.phone.put_setting("global", _SVC_SETTINGS[args[0]], "1" if args[1] == "enable" else "0")
        return 0
    if args[:1] == ["power"]:
        return 0
    ctx.out("Available commands:\n    help\n    power\n    data\n    wifi\n    bluetooth")
    return 0


def _logcat(ctx: Context, args: list[str]) -> int:
    return 0  # the simulated phone logs nothing; streaming logcat returns at once


def _cmd(ctx: Context, args: list[str]) -> int:
    """`cmd SERVICE ...` reaches the same shell commands as am/pm/input/wm/settings."""
    services = {"activity": _am, "package": _pm, "input": _input, "window": _wm, "settings": _settings}
    if not args:
        ctx.err("cmd: No service specified; use -l to list all running services. Use -w to start and wait.")
        return 20
    if args[0] == "-l":
        ctx.out("\n".join(["Currently running services:", *(f"  {s}" for s in sorted(services))]))
        return 0
    handler = services.get(args[0])
    if handler is None:
        ctx.err(f"cmd: Can't find service: {args[0]}")
        return 20
    return handler(ctx, args[1:])


# ==== files =============================================================================================


def _owner(path: str) -> tuple[str, str]:
    """Owner and group `ls -l` shows; only the column positions matter to parsers."""
    if path.startswith(("/sdcard", "/storage")):
        return "root", "media_rw"
    m = re.match(r"/data/data/([^/]+)", path)
    if m:
        user = f"u0_a{_uid(m.group(1)) - 10000}" if _uid(m.group(1)) >= 10000 else "system"
        return user, user
    if path.startswith("/data/local/tmp"):
        return "shell", "shell"
    return "root", "root"


def _blocks(size: int, is_dir: bool) -> int:
    """1 KiB blocks of a file on a 4 KiB-block filesystem (the `total` line of ls -l)."""
    return 4 if is_dir else math.ceil(size / 4096) * 4


def _ls(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("ls", args, "1aAdlRrtSsFhnuciCx")
    status = 0
    files, dirs = [], []
    for name in names or ["."]:
        st = ctx.fs.stat(ctx.path(name))
        if st is None:
            ctx.err(f"ls: {name}: No such file or directory")
            status = 1
        elif st.is_dir and "d" not in opts:
            dirs.append(name)
        else:
            files.append((name, ctx.path(name), st))
    if files:
        _ls_entries(ctx, files, opts, with_total=False)
    show_header = len(names) > 1 or "R" in opts
    for n, name in enumerate(dirs):
        _ls_dir(ctx, name, opts, show_header, first=n == 0 and not files)
    return status


def _ls_dir(ctx: Context, name: str, opts: dict[str, Any], header: bool, first: bool) -> None:
    path = ctx.path(name)
    if header:
        ctx.out(("" if first else "\n") + f"{name}:")
    entries = [
        (child, posixpath.join(path, child), st)
        for child, st in ctx.fs.listdir(path)
        if not child.startswith(".") or "a" in opts or "A" in opts
    ]
    if "a" in opts:
        parent = ctx.fs.stat(posixpath.dirname(path)) or ctx.fs.stat(path)
        entries = [(".", path, ctx.fs.stat(path)), ("..", posixpath.dirname(path), parent), *entries]
    _ls_entries(ctx, entries, opts, with_total=True)
    if "R" in opts:
        for child, _, st in entries:
            if st.is_dir and child not in (".", ".."):
                _ls_dir(ctx, posixpath.join(name, child), opts, header=True, first=False)


def _ls_entries(
    ctx: Context, entries: list[tuple[str, str, Any]], opts: dict[str, Any], with_total: bool
) -> None:
    if "t" in opts:
        entries = sorted(entries, key=lambda e: -e[2].mtime)
    elif "S" in opts:
        entries = sorted(entries, key=lambda e: -e[2].size)
    if "r" in opts:
        entries = entries[::-1]
    suffix = (lambda st: "/" if st.is_dir else "") if "F" in opts else (lambda st: "")
    if "l" not in opts and "n" not in opts:
        for name, _, st in entries:
            ctx.out(name + suffix(st))
        return
    if with_total:
        ctx.out(f"total {sum(_blocks(st.size, st.is_dir) for _, _, st in entries)}")
    tz = ctx.phone.now().tzinfo
    full_time = opts.get("l", 0) >= 2  # toybox: -ll is --full-time
    rows = []
    for name, path, st in entries:
        when = dt.datetime.fromtimestamp(st.mtime, tz)
        stamp = (
            when.strftime("%Y-%m-%d %H:%M:%S.000000000 %z") if full_time else when.strftime("%Y-%m-%d %H:%M")
        )
        user, group = _owner(path)
        rows.append(
            (
                statmod.filemode(st.mode),
                "2" if st.is_dir else "1",
                user,
                group,
                str(st.size),
                stamp,
                name + suffix(st),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for mode, links, user, group, size, stamp, name in rows:
        ctx.out(
            f"{mode} {links:>{widths[1]}} {user:<{widths[2]}} {group:<{widths[3]}} {size:>{widths[4]}} "
            f"{stamp} {name}"
        )


def _cat(ctx: Context, args: list[str]) -> int:
    _, names = getopt("cat", args, "uvteAsn")
    status = 0
    for name in names or ["-"]:
        data = _read(ctx, "cat", name)
        if data is None:
            status = 1
        else:
            ctx.stdout += data
    return status


def _rm(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("rm", args, "fiRrvd")
    if not names and "f" not in opts:
        raise CommandError('rm: Needs 1 argument (see "rm --help")')
    status = 0
    for name in names:
        path = ctx.path(name)
        if path == "/":
            ctx.err("rm: /: Device or resource busy")
            status = 1
        elif not ctx.fs.exists(path):
            if "f" not in opts:
                ctx.err(f"rm: {name}: No such file or directory")
                status = 1
        elif ctx.fs.is_dir(path):
            if "r" in opts or "R" in opts or ("d" in opts and not ctx.fs.listdir(path)):
                ctx.fs.rmtree(path)
            else:
                ctx.err(f"rm: {name}: Is a directory")
                status = 1
        else:
            ctx.fs.remove(path)
    return status


def _rmdir(ctx: Context, args: list[str]) -> int:
    _, names = getopt("rmdir", args, "p")
    status = 0
    for name in names:
        path = ctx.path(name)
        if not ctx.fs.is_dir(path):
            ctx.err(
                f"rmdir: {name}: {'Not a directory' if ctx.fs.exists(path) else 'No such file or directory'}"
            )
            status = 1
        elif ctx.fs.listdir(path):
            ctx.err(f"rmdir: {name}: Directory not empty")
            status = 1
        else:
            ctx.fs.rmtree(path)
    return status


def _mkdir(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("mkdir", args, "pv", valued="mZ")
    if not names:
        raise CommandError('mkdir: Needs 1 argument (see "mkdir --help")')
    status = 0
    for name in names:
        path = ctx.path(name)
        try:
            if "p" in opts:
                ctx.fs.makedirs(path)
            else:
                ctx.fs.mkdir(path)
        except FileExistsError:
            ctx.err(f"mkdir: {name}: File exists")
            status = 1
        except FileNotFoundError:
            ctx.err(f"mkdir: {name}: No such file or directory")
            status = 1
        except NotADirectoryError:
            ctx.err(f"mkdir: {name}: Not a directory")
            status = 1
    return status


def _touch(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("touch", args, "acmh", valued="drt")
    status = 0
    for name in names:
        path = ctx.path(name)
        if ctx.fs.is_file(path):
            st = ctx.fs.stat(path)
            ctx.fs.write(path, ctx.fs.read(path), mode=st.mode)  # a new mtime, same contents
        elif ctx.fs.is_dir(path) or "c" in opts:
            continue
        elif ctx.fs.is_dir(posixpath.dirname(path)):
            ctx.fs.write(path, b"")
        else:
            ctx.err(f"touch: {name}: No such file or directory")
            status = 1
    return status


def _copy_tree(fs: Any, src: str, dst: str) -> None:
    """Copy a file or a directory tree, keeping modes and modification times."""
    if not fs.is_dir(src):
        st = fs.stat(src)
        fs.write(dst, fs.read(src), mode=st.mode, mtime=st.mtime)
        return
    fs.makedirs(dst)
    for path in list(_walk(fs, src)):
        target = dst + path[len(src) :]
        if fs.is_dir(path):
            fs.makedirs(target)
        else:
            st = fs.stat(path)
            fs.write(target, fs.read(path), mode=st.mode, mtime=st.mtime)


def _transfer(ctx: Context, cmd: str, args: list[str], flags: str, move: bool) -> int:
    """cp and mv: SOURCE... DEST, into DEST when it is a directory; `dir/.` copies a directory's contents."""
    opts, names = getopt(cmd, args, flags)
    if len(names) < 2:
        raise CommandError(f'{cmd}: Needs 2 arguments (see "{cmd} --help")')
    *sources, dest = names
    dest_path = ctx.path(dest)
    into_dir = ctx.fs.is_dir(dest_path)
    if len(sources) > 1 and not into_dir:
        raise CommandError(f"{cmd}: '{dest}' not directory")
    recursive = move or any(f in opts for f in "rRa")
    status = 0
    for source in sources:
        src = ctx.path(source)
        contents_only = source == "." or source.endswith("/.")
        target = (
            dest_path if not into_dir or contents_only else posixpath.join(dest_path, posixpath.basename(src))
        )
        if not ctx.fs.exists(src):
            ctx.err(f"{cmd}: {source}: No such file or directory")
            status = 1
        elif ctx.fs.is_dir(src) and not recursive:
            ctx.err(f"{cmd}: Skipped dir '{source}'")
            status = 1
        elif target == src or target.startswith(src + "/"):
            ctx.err(f"{cmd}: {source}: Invalid argument")
            status = 1
        elif not ctx.fs.is_dir(posixpath.dirname(target)):
            ctx.err(f"{cmd}: {dest}: No such file or directory")
            status = 1
        else:
            _copy_tree(ctx.fs, src, target)
            if move:
                ctx.fs.rmtree(src)
    return status


def _cp(ctx: Context, args: list[str]) -> int:
    return _transfer(ctx, "cp", args, "rRafpnvidLPHl", move=False)


def _mv(ctx: Context, args: list[str]) -> int:
    return _transfer(ctx, "mv", args, "fivnT", move=True)


def _chmod(ctx: Context, args: list[str]) -> int:
    _, names = getopt("chmod", args, "Rfv")
    if len(names) < 2:
        raise CommandError('chmod: Needs 2 arguments (see "chmod --help")')
    mode, *paths = names
    status = 0
    for name in paths:
        path = ctx.path(name)
        if not ctx.fs.exists(path):
            ctx.err(f"chmod: {name}: No such file or directory")
            status = 1
        elif ctx.fs.is_file(path) and re.fullmatch(r"[0-7]{3,4}", mode):
            st = ctx.fs.stat(path)
            ctx.fs.write(path, ctx.fs.read(path), mode=int(mode, 8), mtime=st.mtime)
    return status


def _stat(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("stat", args, "fLt", valued="c")
    fmt = opts.get("c", [None])[-1]
    status = 0
    for name in names:
        st = ctx.fs.stat(ctx.path(name))
        if st is None:
            ctx.err(f"stat: {name}: No such file or directory")
            status = 1
            continue
        if fmt is None:
            kind = "directory" if st.is_dir else "regular file"
            ctx.out(
                f"  File: `{name}'\n  Size: {st.size}\t Blocks: {_blocks(st.size, st.is_dir) * 2}\t "
                f"IO Blocks: 512\t{kind}"
            )
            continue
        fields = {
            "s": str(st.size),
            "n": name,
            "Y": str(st.mtime),
            "a": format(st.mode & 0o7777, "o"),
            "A": statmod.filemode(st.mode),
            "F": "directory" if st.is_dir else "regular file",
            "U": _owner(ctx.path(name))[0],
            "G": _owner(ctx.path(name))[1],
            "%": "%",
        }
        ctx.out(re.sub(r"%(.)", lambda m, f=fields: f.get(m.group(1), m.group(0)), fmt))
    return status


def _checksum(algorithm: str) -> Callable[[Context, list[str]], int]:
    def command(ctx: Context, args: list[str]) -> int:
        _, names = getopt(f"{algorithm}sum", args, "bcs")
        status = 0
        for name in names or ["-"]:
            data = _read(ctx, f"{algorithm}sum", name)
            if data is None:
                status = 1
            else:
                ctx.out(f"{hashlib.new(algorithm, data).hexdigest()}  {name}")
        return status

    return command


def _find(ctx: Context, args: list[str]) -> int:
    """`find [PATH...] [-name P] [-iname P] [-type f|d] [-maxdepth N] [-mindepth N] [-o]`."""
    roots = []
    while args and not args[0].startswith("-"):
        roots.append(args.pop(0))
    groups, depth = _find_expression(args)
    status = 0
    for root in roots or ["."]:
        path = ctx.path(root)
        if not ctx.fs.exists(path):
            ctx.err(f"find: {root}: No such file or directory")
            status = 1
            continue
        candidates = [path, *(_walk(ctx.fs, path) if ctx.fs.is_dir(path) else [])]
        for candidate in candidates:
            level = 0 if candidate == path else candidate[len(path) :].strip("/").count("/") + 1
            if not depth[0] <= level <= depth[1]:
                continue
            if any(all(test(ctx.fs, candidate) for test in group) for group in groups):
                ctx.out(root.rstrip("/") + candidate[len(path) :] if candidate != path else root)
    return status


def _find_expression(args: list[str]) -> tuple[list[list[Callable[[Any, str], bool]]], tuple[int, float]]:
    """The expression as OR-ed groups of AND-ed tests, plus (mindepth, maxdepth)."""
    groups: list[list[Callable[[Any, str], bool]]] = [[]]
    low, high = 0, math.inf
    it = iter(args)
    for arg in it:
        if arg in ("-o", "-or"):
            groups.append([])
        elif arg in ("-name", "-iname"):
            pattern, icase = next(it, ""), arg == "-iname"
            groups[-1].append(
                lambda fs, p, pat=pattern, i=icase: fnmatch.fnmatchcase(
                    posixpath.basename(p).lower() if i else posixpath.basename(p), pat.lower() if i else pat
                )
            )
        elif arg == "-type":
            kind = next(it, "f")
            groups[-1].append(lambda fs, p, k=kind: fs.is_dir(p) if k == "d" else fs.is_file(p))
        elif arg == "-maxdepth":
            high = int(next(it, "0"))
        elif arg == "-mindepth":
            low = int(next(it, "0"))
        elif arg in ("-print", "-a", "-and"):
            continue
        else:
            raise CommandError(f"find: Unknown option '{arg}'")
    return groups, (low, high)


def _pwd(ctx: Context, args: list[str]) -> int:
    ctx.out(ctx.cwd)
    return 0


# ==== text ==============================================================================================


def _backslash_escapes(text: str) -> tuple[str, bool]:
    r"""mksh echo/print escapes; returns (text, stopped) where `\c` stops all further output."""
    simple = {
        "a": "\a",
        "b": "\b",
        "e": "\x1b",
        "f": "\f",
        "n": "\n",
        "r": "\r",
        "t": "\t",
        "v": "\v",
        "\\": "\\",
    }
    out, i = [], 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1 : i + 2]
        if c != "\\" or not nxt:
            out.append(c)
            i += 1
        elif nxt == "c":
            return "".join(out), True
        elif nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "0":
            digits = re.match(r"[0-7]{0,3}", text[i + 2 :]).group()
            out.append(chr(int(digits or "0", 8)))
            i += 2 + len(digits)
        else:
            out.append(c)
            i += 1
    return "".join(out), False


def _echo(ctx: Context, args: list[str]) -> int:
    """mksh's echo: -n, -e (the default) and -E; backslash escapes are interpreted."""
    newline, escapes = True, True
    while args and re.fullmatch(r"-[neE]+", args[0]):
        for flag in args[0][1:]:
            newline = newline and flag != "n"
            escapes = {"e": True, "E": False}.get(flag, escapes)
        args = args[1:]
    text, stopped = _backslash_escapes(" ".join(args)) if escapes else (" ".join(args), False)
    ctx.stdout += text.encode("utf-8", "surrogateescape")
    if newline and not stopped:
        ctx.stdout += b"\n"
    return 0


_PRINTF_SPEC = re.compile(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([diouxXcsfeEgGb%])")


def _printf(ctx: Context, args: list[str]) -> int:
    if not args:
        raise CommandError('printf: Needs 1 argument (see "printf --help")')
    fmt, values = args[0], list(args[1:])
    status = 0
    while True:
        consumed = False

        def convert(m: re.Match[str]) -> str:
            nonlocal consumed, status
            flags, width, precision, conv = m.groups()
            if conv == "%":
                return "%"
            value = values.pop(0) if values else ""
            consumed = True
            if conv == "b":
                return _backslash_escapes(value)[0]
            spec = f"%{flags}{width}{'.' + precision if precision is not None else ''}"
            if conv in "sc":
                return (spec + "s") % (value[:1] if conv == "c" else value)
            try:
                number = float(value or 0) if conv in "feEgG" else int(value or 0, 0)
            except ValueError:
                ctx.err(f"printf: invalid number '{value}'")
                status, number = 1, 0
            return (spec + ("d" if conv in "iu" else conv)) % number

        text = _PRINTF_SPEC.sub(convert, _backslash_escapes(fmt)[0])
        ctx.stdout += text.encode("utf-8", "surrogateescape")
        if not values or not consumed:
            return status


def _grep_regex(pattern: str, opts: dict[str, Any]) -> str:
    """Translate a grep pattern (BRE, or ERE with -E, or fixed with -F) into a Python regex."""
    regex = re.escape(pattern) if "F" in opts else _posix_regex(pattern, extended="E" in opts)
    if "w" in opts:
        regex = rf"(?<!\w)(?:{regex})(?!\w)"
    if "x" in opts:
        regex = rf"^(?:{regex})$"
    return regex


_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
}  # fmt: skip


def _posix_regex(pattern: str, extended: bool) -> str:
    r"""POSIX regex to Python: bracket expressions and classes; BRE's `\(` `\{` `\|` `\+` are operators."""
    out, i = [], 0
    bre_ops = {"(": "(", ")": ")", "{": "{", "}": "}", "|": "|", "+": "+", "?": "?"}
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            end = i + 1 + (pattern[i + 1 : i + 2] == "^")
            end += pattern[end : end + 1] == "]"
            end = pattern.find("]", end)
            while end > 0 and pattern[end - 1 : end] == ":" and "[:" in pattern[i + 1 : end]:
                end = pattern.find("]", end + 1)
            if end < 0:
                out.append(r"\[")
                i += 1
                continue
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            body = re.sub(r"\[:(\w+):\]", lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)), body)
            out.append(f"[{body}]")
            i = end + 1
        elif c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(
                bre_ops[nxt]
                if not extended and nxt in bre_ops
                else {"<": r"\b", ">": r"\b"}.get(nxt, "\\" + nxt)
            )
            i += 2
        elif not extended and c in bre_ops:
            out.append("\\" + c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _grep(ctx: Context, args: list[str]) -> int:
    opts, operands = getopt("grep", args, "EFivcoqnlLhHsrRwxZz", valued="emABC")
    patterns = opts.get("e") or ([operands.pop(0)] if operands else None)
    if patterns is None:
        raise CommandError('grep: Needs 1 argument (see "grep --help")', 2)
    flags = re.I if "i" in opts else 0
    try:
        regex = re.compile(
            "|".join(f"(?:{_grep_regex(p, opts)})" for pat in patterns for p in pat.split("\n")), flags
        )
    except re.error as e:
        raise CommandError(f"grep: bad regex '{patterns[0]}': {e}", 2) from e
    names = operands or ["-"]
    if "r" in opts or "R" in opts:
        names = [n for name in names for n in _grep_files(ctx, name)]
    show_names = ("H" in opts or len(names) > 1 or "r" in opts or "R" in opts) and "h" not in opts
    max_count = int(opts["m"][-1]) if "m" in opts else None
    matched, error = False, False
    for name in names:
        data = _read(ctx, "grep", name) if "s" not in opts else _read_quietly(ctx, name)
        if data is None:
            error = True
            continue
        found = _grep_data(ctx, regex, data, opts, name if show_names else None, max_count)
        matched = matched or found
        if matched and "q" in opts:
            return 0
    return 2 if error and not matched else (0 if matched else 1)


def _grep_files(ctx: Context, name: str) -> list[str]:
    path = ctx.path(name)
    if not ctx.fs.is_dir(path):
        return [name]
    return [name.rstrip("/") + p[len(path) :] for p in _walk(ctx.fs, path) if ctx.fs.is_file(p)]


def _read_quietly(ctx: Context, name: str) -> bytes | None:
    stderr = ctx.stderr
    ctx.stderr = bytearray()
    try:
        return _read(ctx, "grep", name)
    finally:
        ctx.stderr = stderr


def _grep_data(
    ctx: Context,
    regex: re.Pattern[str],
    data: bytes,
    opts: dict[str, Any],
    name: str | None,
    max_count: int | None,
) -> bool:
    prefix = f"{name}:" if name else ""
    count = 0
    for number, raw in enumerate(_lines(data), start=1):
        line = raw.rstrip(b"\n").decode("utf-8", "surrogateescape")
        hit = regex.search(line)
        if bool(hit) == ("v" in opts):
            continue
        count += 1
        if "q" in opts or "l" in opts or "L" in opts or "c" in opts:
            pass
        elif "o" in opts and "v" not in opts:
            for m in regex.finditer(line):
                if m.group():
                    ctx.stdout += f"{prefix}{m.group()}\n".encode("utf-8", "surrogateescape")
        else:
            line_no = f"{number}:" if "n" in opts else ""
            ctx.stdout += f"{prefix}{line_no}{line}\n".encode("utf-8", "surrogateescape")
        if max_count is not None and count >= max_count:
            break
    if "c" in opts:
        ctx.out(f"{prefix}{count}")
    if ("l" in opts and count) or ("L" in opts and not count):
        ctx.out(name or "(standard input)")
    return count > 0


def _head_tail(ctx: Context, cmd: str, args: list[str]) -> int:
    args = [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in args]  # `head -5`
    opts, names = getopt(cmd, args, "qvf", valued="nc")
    count_arg = (opts.get("n") or opts.get("c") or ["10"])[-1]
    by_bytes = "c" in opts
    status = 0
    for n, name in enumerate(names or ["-"]):
        data = _read(ctx, cmd, name)
        if data is None:
            status = 1
            continue
        if len(names) > 1 and "q" not in opts:
            ctx.out(("\n" if n else "") + f"==> {name} <==")
        chunks = list(data) if by_bytes else _lines(data)
        ctx.stdout += b"".join(bytes([c]) if by_bytes else c for c in _slice(cmd, chunks, count_arg))
    return status


def _slice(cmd: str, items: list[Any], count: str) -> list[Any]:
    if not re.fullmatch(r"[+-]?\d+", count):
        raise CommandError(f"{cmd}: Not integer '{count}'")
    n = int(count)
    if cmd == "head":
        return items[:n]  # a negative count is "all but the last N"
    if count.startswith("+"):
        return items[max(n - 1, 0) :]
    return items[-abs(n) :] if n else []


def _head(ctx: Context, args: list[str]) -> int:
    return _head_tail(ctx, "head", args)


def _tail(ctx: Context, args: list[str]) -> int:
    return _head_tail(ctx, "tail", args)


def _wc(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("wc", args, "lwcm")
    chosen = [f for f in "lwcm" if f in opts] or ["l", "w", "c"]
    status = 0
    for name in names or ["-"]:
        data = _read(ctx, "wc", name)
        if data is None:
            status = 1
            continue
        counts = {
            "l": data.count(b"\n"),
            "w": len(data.split()),
            "c": len(data),
            "m": len(data.decode("utf-8", "replace")),
        }
        line = " ".join(str(counts[f]) for f in chosen)
        ctx.out(line if name == "-" else f"{line} {name}")
    return status


def _base64(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("base64", args, "di", valued="w")
    data = _read(ctx, "base64", names[0] if names else "-")
    if data is None:
        return 1
    if "d" in opts:
        try:
            ctx.stdout += base64.b64decode(re.sub(rb"\s", b"", data) + b"==", validate=False)
        except (binascii.Error, ValueError):
            ctx.err("base64: bad input")
            return 1
        return 0
    encoded = base64.b64encode(data).decode()
    width = int(opts.get("w", ["76"])[-1])
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)] if width else [encoded]
    ctx.out("\n".join(lines) if encoded else "", end="\n" if encoded else "")
    return 0


def _sort(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("sort", args, "rnuf")
    data = b"".join(d for d in (_read(ctx, "sort", n) for n in names or ["-"]) if d is not None)
    lines = [line.rstrip(b"\n") for line in _lines(data)]

    def key(line: bytes) -> Any:
        if "n" in opts:
            m = re.match(rb"\s*(-?\d+(?:\.\d+)?)", line)
            return (float(m.group(1)) if m else 0.0, line)
        return line.lower() if "f" in opts else line

    lines = sorted(set(lines) if "u" in opts else lines, key=key, reverse="r" in opts)
    ctx.stdout += b"".join(line + b"\n" for line in lines)
    return 0


def _tee(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("tee", args, "ai")
    status = 0
    for name in names:
        path = ctx.path(name)
        if not ctx.fs.is_dir(posixpath.dirname(path)) or ctx.fs.is_dir(path):
            ctx.err(f"tee: {name}: No such file or directory")
            status = 1
        elif "a" in opts:
            ctx.fs.append(path, ctx.stdin)
        else:
            ctx.fs.write(path, ctx.stdin)
    ctx.stdout += ctx.stdin
    return status


# ==== test / [ ===========================================================================================


def _test(ctx: Context, args: list[str]) -> int:
    try:
        return 0 if _test_expr(ctx, list(args)) else 1
    except (ValueError, IndexError) as e:
        raise CommandError(f"test: {e or 'syntax error'}", 2) from e


def _bracket(ctx: Context, args: list[str]) -> int:
    if not args or args[-1] != "]":
        raise CommandError("[: missing ]", 2)
    return _test(ctx, args[:-1])


_FILE_TESTS: dict[str, Callable[[Any, str], bool]] = {
    "-e": lambda fs, p: fs.exists(p),
    "-f": lambda fs, p: fs.is_file(p),
    "-d": lambda fs, p: fs.is_dir(p),
    "-s": lambda fs, p: fs.is_file(p) and fs.stat(p).size > 0,
    "-r": lambda fs, p: fs.exists(p),
    "-w": lambda fs, p: fs.exists(p),
    "-x": lambda fs, p: fs.is_dir(p),
    "-L": lambda fs, p: False,
    "-h": lambda fs, p: False,
}
_INT_TESTS: dict[str, Callable[[int, int], bool]] = {
    "-eq": lambda a, b: a == b,
    "-ne": lambda a, b: a != b,
    "-lt": lambda a, b: a < b,
    "-le": lambda a, b: a <= b,
    "-gt": lambda a, b: a > b,
    "-ge": lambda a, b: a >= b,
}


def _test_expr(ctx: Context, args: list[str]) -> bool:
    """POSIX test with `!`, -a and -o (lowest), unary file/string tests and binary comparisons."""
    if "-o" in args[1:-1]:
        i = args.index("-o", 1)
        return _test_expr(ctx, args[:i]) or _test_expr(ctx, args[i + 1 :])
    if "-a" in args[1:-1]:
        i = args.index("-a", 1)
        return _test_expr(ctx, args[:i]) and _test_expr(ctx, args[i + 1 :])
    if args and args[0] == "!" and len(args) > 1:
        return not _test_expr(ctx, args[1:])
    if len(args) == 0:
        return False
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, value = args
        if op in _FILE_TESTS:
            return _FILE_TESTS[op](ctx.fs, ctx.path(value))
        if op in ("-z", "-n"):
            return (value == "") == (op == "-z")
        raise ValueError(f"{op}: unknown operand")
    left, op, right = args[0], args[1], args[2]
    if len(args) == 3 and op in ("=", "==", "!="):
        return (left == right) == (op != "!=")
    if len(args) == 3 and op in _INT_TESTS:
        if not (re.fullmatch(r"\s*-?\d+\s*", left) and re.fullmatch(r"\s*-?\d+\s*", right)):
            raise ValueError("bad number")
        return _INT_TESTS[op](int(left), int(right))
    raise ValueError("syntax error")


# ==== system: date, sleep, users, sqlite3, sh ========================================================

_DATE_FORMAT = "%a %b %e %H:%M:%S %Z %Y"  # toybox date's default


def _date(ctx: Context, args: list[str]) -> int:
    """`date [-u] [+FORMAT]`; `date -s STRING` or `date MMDDhhmm[[CC]YY][.ss]` set the device clock."""
    opts, operands = getopt("date", args, "uR", valued="sdrD")
    now = ctx.phone.now()
    if "u" in opts:
        now = now.astimezone(dt.UTC)
    setting = opts.get("s", [None])[-1]
    fmt = next((o[1:] for o in operands if o.startswith("+")), None)
    positional = [o for o in operands if not o.startswith("+")]
    if positional:
        setting = positional[0]
    if "d" in opts:
        now = _parse_date(opts["d"][-1], now)
        if now is None:
            raise CommandError(f"date: bad date '{opts['d'][-1]}'")
    if setting is not None:
        new = _parse_date(setting, now)
        if new is None:
            raise CommandError(f"date: bad date '{setting}'")
        ctx.phone.set_clock(int(new.timestamp() * 1000))
        now = new
    ctx.out(_strftime(now, fmt or _DATE_FORMAT))
    return 0


def _strftime(when: dt.datetime, fmt: str) -> str:
    fmt = fmt.replace("%s", str(int(when.timestamp()))).replace("%N", f"{when.microsecond * 1000:09d}")
    return when.strftime(fmt)


def _parse_date(text: str, now: dt.datetime) -> dt.datetime | None:
    """toybox date's inputs: @EPOCH, MMDDhhmm[[CC]YY][.ss], or YYYY-MM-DD [hh:mm[:ss]] / hh:mm[:ss]."""
    tz = now.tzinfo
    if re.fullmatch(r"@-?\d+(\.\d+)?", text):
        return dt.datetime.fromtimestamp(float(text[1:]), tz)
    m = re.fullmatch(r"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d|\d{4})?(?:\.(\d\d))?", text)
    try:
        if m:
            month, day, hour, minute, year, second = m.groups()
            if year is None:
                full_year = now.year
            elif len(year) == 4:
                full_year = int(year)
            else:
                full_year = (1900 if int(year) >= 69 else 2000) + int(year)  # POSIX two-digit years
            return dt.datetime(
                full_year, int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz
            )
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
            try:
                return dt.datetime.strptime(text, fmt).replace(tzinfo=tz)
            except ValueError:
                pass
        for fmt in ("%H:%M:%S", "%H:%M"):
            try:
                t = dt.datetime.strptime(text, fmt)
                return now.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=0)
            except ValueError:
                pass
    except ValueError:
        return None
    return None


def _sleep(ctx: Context, args: list[str]) -> int:
    total = 0.0
    for arg in args:
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", arg)
        if not m:
            raise CommandError(f"sleep: Not a number '{arg}'")
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    time.sleep(total)
    return 0


def _whoami(ctx: Context, args: list[str]) -> int:
    ctx.out("shell")
    return 0


def _id(ctx: Context, args: list[str]) -> int:
    ctx.out(
        "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),"
        "1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),"
        "3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs) context=u:r:shell:s0"
    )
    return 0


def _uname(ctx: Context, args: list[str]) -> int:
    fields = {"s": "Linux", "n": "localhost", "r": "5.15.41-android13-8-00055-g4f5025129fe8-ab8949913"}
    fields |= {"v": "#1 SMP PREEMPT Mon Aug 15 18:33:14 UTC 2022", "m": "x86_64", "o": "Toybox"}
    opts, _ = getopt("uname", args, "snrvmoa")
    chosen = "snrvmo" if "a" in opts else "".join(f for f in "snrvmo" if f in opts) or "s"
    ctx.out(" ".join(fields[f] for f in chosen))
    return 0


def _which(ctx: Context, args: list[str]) -> int:
    _, names = getopt("which", args, "a")
    status = 0
    for name in names:
        if name in COMMANDS:
            ctx.out(f"/system/bin/{name}")
        else:
            status = 1
    return status


def _true(ctx: Context, args: list[str]) -> int:
    return 0


def _false(ctx: Context, args: list[str]) -> int:
    return 1


def _sh(ctx: Context, args: list[str]) -> int:
    """`sh -c SCRIPT` (a subshell); `sh` alone reads the script from stdin."""
    if args[:1] == ["-c"]:
        return ctx.run_script(args[1] if len(args) > 1 else "")
    if not args:
        return ctx.run_script(ctx.stdin.decode("utf-8", "surrogateescape"))
    data = _read(ctx, "sh", args[0])
    return 127 if data is None else ctx.run_script(data.decode("utf-8", "surrogateescape"))


def _su(ctx: Context, args: list[str]) -> int:
    """`su [UID] [COMMAND...]` / `su -c SCRIPT` as on userdebug emulators (the shell already acts as root)."""
    if args[:1] in (["0"], ["root"]):
        args = args[1:]
    if args[:1] == ["-c"]:
        return ctx.run_script(" ".join(args[1:]))
    return ctx.run_argv(args) if args else 0


# ---- sqlite3 --------------------------------------------------------------------------------------


def _sqlite3(ctx: Context, args: list[str]) -> int:
    """`sqlite3 [-header] [-separator S] [-json|-csv|-line] DB [SQL]` against a database file in the VFS."""
    options, operands = _sqlite_options(args)
    if not operands:
        ctx.err("Error: the simulated sqlite3 needs a database file argument")
        return 1
    path = ctx.path(operands[0])
    sql = " ".join(operands[1:]) if len(operands) > 1 else ctx.stdin.decode("utf-8", "surrogateescape")
    if not ctx.fs.is_dir(posixpath.dirname(path)) or ctx.fs.is_dir(path):
        ctx.err(f'Error: unable to open database "{operands[0]}": unable to open database file')
        return 1
    status = 1
    try:
        with ctx.fs.sqlite(path) as conn:
            status = _sqlite_run(ctx, conn, sql, options)
    except sqlite3.DatabaseError as e:
        if "unable to serialize" not in str(e):
            ctx.err(f"Error: {str(e).split(': ')[-1]}")
            return 1
        # A database with no pages cannot be serialised; sqlite3 leaves an empty file in that case.
        if not ctx.fs.exists(path):
            ctx.fs.write(path, b"")
    return status


def _sqlite_options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    options = {"mode": "list", "separator": "|", "header": "off", "nullvalue": ""}
    operands, it = [], iter(args)
    for arg in it:
        name = arg.lstrip("-")
        if arg.startswith("-") and name in ("json", "csv", "line", "list", "column", "tabs"):
            options["mode"] = name
        elif arg.startswith("-") and name in ("header", "noheader"):
            options["header"] = "on" if name == "header" else "off"
        elif arg.startswith("-") and name in ("separator", "nullvalue", "cmd"):
            options[name] = next(it, "")
        elif arg.startswith("-") and name in ("batch", "bail", "echo", "readonly", "interactive"):
            continue
        else:
            operands.append(arg)
    if options["mode"] == "csv":
        options["separator"] = ","
    if options["mode"] == "tabs":
        options["separator"] = "\t"
    return options, operands


def _sqlite_run(ctx: Context, conn: sqlite3.Connection, sql: str, options: dict[str, str]) -> int:
    """Run each statement in turn like the CLI: print rows, stop at the first error (earlier ones stick)."""
    for statement in _sql_statements(sql):
        if statement.startswith("."):
            _sqlite_dot_command(ctx, conn, statement)
            continue
        try:
            cursor = conn.execute(statement)
            rows = cursor.fetchall()
        except sqlite3.OperationalError as e:
            ctx.err(f"Error: in prepare, {e}")
            return 1
        except sqlite3.DatabaseError as e:
            ctx.err(f"Error: stepping, {e} ({_sqlite_code(e)})")
            return 1
        if cursor.description:
            _sqlite_print(ctx, [d[0] for d in cursor.description], rows, options)
    return 0


def _sqlite_code(error: sqlite3.DatabaseError) -> int:
    return getattr(error, "sqlite_errorcode", 1) & 0xFF


def _sql_statements(sql: str) -> Iterator[str]:
    """Split a script into complete statements (sqlite3.complete_statement knows about quotes)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        if not pending.strip() and line.strip().startswith("."):
            yield line.strip()
            continue
        for piece in re.split(r"(?<=;)", line):
            pending += piece
            if pending.strip() and sqlite3.complete_statement(pending):
                yield pending.strip()
                pending = ""
    if pending.strip():
        yield pending.strip()


def _sqlite_dot_command(ctx: Context, conn: sqlite3.Connection, command: str) -> None:
    name = command.split()[0]
    if name == ".tables":
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        if tables:
            ctx.out("  ".join(tables))
    elif name == ".schema":
        for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"):
            ctx.out(f"{sql};")
    else:
        ctx.err(f'Error: unknown command or invalid arguments:  "{name[1:]}". Enter ".help" for help')


def _sqlite_value(value: Any, null: str) -> str:
    """A value as the sqlite3 shell prints it (REAL with %.15g and a .0 on whole numbers)."""
    if value is None:
        return null
    if isinstance(value, float):
        text = f"{value:.15g}"
        return text + ".0" if re.fullmatch(r"-?\d+", text) else text
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _sqlite_print(ctx: Context, names: list[str], rows: list[tuple], options: dict[str, str]) -> None:
    mode, sep, null = options["mode"], options["separator"], options["nullvalue"]
    if mode == "json":
        if rows:
            import json

            body = ",\n".join(
                json.dumps(dict(zip(names, row, strict=True)), separators=(",", ":")) for row in rows
            )
            ctx.out(f"[{body}]")
        return
    if mode == "line":
        width = max(len(n) for n in names)
        for n, row in enumerate(rows):
            ctx.out(
                ("\n" if n else "")
                + "\n".join(
                    f"{k:>{width}} = {_sqlite_value(v, null)}" for k, v in zip(names, row, strict=True)
                )
            )
        return
    if options["header"] == "on" and rows:
        ctx.out(sep.join(names))
    for row in rows:
        ctx.out(sep.join(_sqlite_value(v, null) for v in row))


# ==== the table =========================================================================================

COMMANDS: dict[str, Callable[[Context, list[str]], int]] = {
    # input and screen
    "input": _input,
    "screencap": _screencap,
    "uiautomator": _uiautomator,
    "wm": _wm,
    # system services
    "am": _am,
    "monkey": _monkey,
    "pm": _pm,
    "cmd": _cmd,
    "dumpsys": _dumpsys,
    "settings": _settings,
    "content": _content,
    "getprop": _getprop,
    "setprop": _setprop,
    "service": _service,
    "svc": _svc,
    "logcat": _logcat,
    # files
    "ls": _ls,
    "cat": _cat,
    "rm": _rm,
    "rmdir": _rmdir,
    "mkdir": _mkdir,
    "touch": _touch,
    "cp": _cp,
    "mv": _mv,
    "chmod": _chmod,
    "stat": _stat,
    "md5sum": _checksum("md5"),
    "sha1sum": _checksum("sha1"),
    "sha256sum": _checksum("sha256"),
    "find": _find,
    "pwd": _pwd,
    # text
    "echo": _echo,
    "printf": _printf,
    "grep": _grep,
    "head": _head,
    "tail": _tail,
    "wc": _wc,
    "base64": _base64,
    "sort": _sort,
    "tee": _tee,
    "test": _test,
    "[": _bracket,
    # system
    "date": _date,
    "sleep": _sleep,
    "whoami": _whoami,
    "id": _id,
    "uname": _uname,
    "which": _which,
    "true": _true,
    "false": _false,
    "sh": _sh,
    "su": _su,
    "sqlite3": _sqlite3,
}
