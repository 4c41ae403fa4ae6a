"""The simulated shell's Android service commands: input, screen, am, pm, dumpsys, settings and props."""

from __future__ import annotations

import base64
import hashlib
import io
import math
import posixpath
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from droidrl.envs.sim import a11y, apk, intents, packages, services
from droidrl.envs.sim.settings_defaults import stock_settings
from droidrl.envs.sim.shell_util import CommandError, Context, getopt

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
KEYCODES.update({"APP_SWITCH": 187, "CONTACTS": 207, "CALENDAR": 208, "MUSIC": 209, "CALCULATOR": 210, "ASSIST": 219})
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
    if sub == "user-rotation":
        return _wm_user_rotation(ctx, args[1:])
    if sub in ("help", "-h"):
        ctx.out(
            "Window manager (window) commands:\n  help\n  size [reset|WxH|WdpxHdp]\n  density [reset|DENSITY]\n"
            "  user-rotation [-d DISPLAY_ID] [free|lock] [rotation]"
        )
        return 0
    ctx.out(f"Unknown command: {sub}")
    return 255


def _wm_user_rotation(ctx: Context, args: list[str]) -> int:
    """`wm user-rotation [-d ID] [free|lock] [ROTATION]`: WindowManagerService's freeze/thawDisplayRotation."""
    phone = ctx.phone
    if args[:1] == ["-d"]:
        args = args[2:]
    if not args:
        if phone.get_setting("system", "accelerometer_rotation") not in (None, "0"):
            ctx.out("free")
        else:
            ctx.out(f"lock {services.rotation(phone)}")
        return 0
    if args[0] == "free":
        phone.put_setting("system", "accelerometer_rotation", "1")
        return 0
    if args[0] != "lock":
        ctx.err("Error: argument needs to be either -d, free or lock.")
        return 255
    try:
        rotation = int(args[1]) if len(args) > 1 else services.rotation(phone)
    except ValueError:  # Integer.parseInt's NumberFormatException is an IllegalArgumentException
        ctx.err(f'Error: For input string: "{args[1]}"')
        return 255
    if not 0 <= rotation <= 3:
        ctx.err(f"Error: Rotation argument, {rotation} out of range")
        return 255
    phone.put_setting("system", "accelerometer_rotation", "0")
    phone.put_setting("system", "user_rotation", str(rotation))
    return 0


# ==== activity manager ================================================================================


@dataclass
class _StartOptions:
    wait: bool = False
    stop: bool = False
    user: str = "current"


# Intent options of `am start` / `am broadcast` with one argument (besides -a -d -t -c -n -p), and extras
# with a key and a value (what _string_extras skips over).
_AM_VALUED = {"-P", "--start-profiler", "--sampling", "--attach-agent", "--attach-agent-bind", "-R", "-f"}
_AM_VALUED |= {"--user", "--receiver-permission", "--display", "--windowingMode", "--activityType"}
_AM_VALUED |= {"--task", "--esn"}
_EXTRA_TWO_ARGS = {"-e", "--es", "--ei", "--el", "--ef", "--ez", "--eu", "--ecn", "--eia", "--ela", "--efa"}
_EXTRA_TWO_ARGS |= {"--esa"}
# ActivityManagerShellCommand.makeIntent's own options: without a value, with a value, with a number.
_AM_FLAGS = {"-D", "-N", "--streaming", "--track-allocation", "--task-overlay", "--lock-task"}
_AM_FLAGS |= {"--allow-background-activity-starts", "--dismiss-keyguard"}
_AM_TEXT = {"-P", "--start-profiler", "--attach-agent", "--attach-agent-bind", "--receiver-permission"}
_AM_NUMBER = {"--sampling", "-R", "--display", "--windowingMode", "--activityType", "--task"}


def _java_exception(a: _JavaArgs, exc: intents.JavaException) -> CommandError:
    """How ShellCommand.exec reports an exception thrown while parsing the intent (exit status 255)."""
    cls = a.service.rsplit(".", 1)[-1]
    if a.service.endswith("PackageManagerShellCommand"):
        frames = [f"{a.service}.parseIntentAndUser({cls}.java:3301)"]
        frames.append(f"{a.service}.runResolveActivity({cls}.java:1023)")
    else:
        where = "runSendBroadcast" if a.command == "broadcast" else "runStartActivity"
        frames = [f"{a.service}.makeIntent({cls}.java:415)", f"{a.service}.{where}({cls}.java:491)"]
    trace = [
        "",
        f"Exception occurred while executing '{a.command}':",
        f"{exc.cls}: {exc.message}",
        f"\tat {exc.frame}(Intent.java:8258)",
        *(f"\tat {frame}" for frame in frames),
        f"\tat {a.service}.onCommand({cls}.java:199)",
        "\tat com.android.modules.utils.BasicShellCommandHandler.exec(BasicShellCommandHandler.java:97)",
    ]
    return CommandError("\n".join(trace), 255)


def _parse_intent(a: _JavaArgs) -> tuple[intents.Intent, _StartOptions]:
    """ActivityManagerShellCommand.makeIntent: Intent.parseCommandArgs plus am's own start options."""
    opts = _StartOptions()

    def handle(opt: str, cmd: intents.ShellArgs) -> bool:
        if opt == "-W":
            opts.wait = True
        elif opt == "-S":
            opts.stop = True
        elif opt == "--user":
            opts.user = cmd.required()
            if opts.user not in ("all", "current", "cur"):
                intents.java_decode(opts.user)  # Integer.parseInt: a NumberFormatException for junk
        elif opt in _AM_TEXT:
            cmd.required()
        elif opt in _AM_NUMBER:
            intents.java_decode(cmd.required())
        elif opt not in _AM_FLAGS:
            return False
        return True

    cmd = intents.ShellArgs(a.args[a.pos :])
    try:
        intent = intents.parse_command_args(cmd, handle)
    except intents.JavaException as exc:
        raise _java_exception(a, exc) from None
    a.pos = len(a.args)
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


def _am_start(ctx: Context, a: _JavaArgs) -> int:
    intent, opts = _parse_intent(a)
    phone = ctx.phone
    if opts.user == "all":
        ctx.err("Error: Can't start service with user 'all'")
        return 1
    # Without -t, a content: URI's type comes from its provider, as ActivityManagerShellCommand asks it.
    mime = intent.type if intent.type is not None else intents.provider_type(intent.data or "", phone)
    target = intents.resolve(phone, intent, mime, LAUNCHER)
    if opts.stop:
        if intent.component is None and target is None:
            ctx.err(f"Error: Intent does not match any activities: {intent}")
            return 1
        stopped = intent.component[0] if intent.component is not None else target.package
        ctx.out(f"Stopping: {stopped}")
        if stopped in phone.apps and packages.installed(phone, stopped):
            phone.force_stop(stopped)
    ctx.out(f"Starting: {intent}")
    intent.flags |= intents.FLAG_ACTIVITY_NEW_TASK  # added after printing, so only errors show it
    report = ctx.out if opts.wait else ctx.err  # with -W errors go to stdout
    if target is None:
        report(f"Error: Activity not started, unable to resolve {intent}")
        return 0
    package = target.package
    if not target.activity:
        report("Error type 3")
        report(f"Error: Activity class {{{package}/{target.component}}} does not exist.")
        return 0
    activity, args = intents.deliver(phone, target, intent)
    # An implicit MAIN (launcher/home) intent brings the app's task forward, as tapping its icon does.
    main = intent.component is None and intent.action == intents.MAIN and activity == phone.apps[package].main_activity
    tasks = {pkg: acts for _, pkg, acts in _tasks(phone)}
    on_top = phone.current_activity() == (package, activity)
    phone.launch(package, None if main else activity, args)
    state = "COLD" if package not in tasks else "HOT"
    if on_top:
        report("Warning: Activity not started, intent has been delivered to currently running top-most instance.")
        state = "UNKNOWN (0)"
    elif package in tasks and tasks[package][0] == activity and (main or intent.component is not None):
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
    extras = _string_extras(a.args[a.pos :])
    intent, _ = _parse_intent(a)
    ctx.out(f"Broadcasting: {_broadcast_intent(intent)}")
    result: tuple[int, str | None] | None = None
    if (intent.package or "") in ("", ADB_KEYBOARD_PACKAGE) and intent.component is None:
        _adb_keyboard_receive(ctx.phone, intent.action, extras)
    if _delivers_to(intent, services.CLIPPER_PACKAGE) and services.CLIPPER_PACKAGE in _packages(ctx.phone):
        result = services.clipper_receive(ctx.phone, intent.action, extras)
    # The accessibility forwarder's FlagsBroadcastReceiver (envs/sim/a11y.py; explicit `-n` broadcasts only).
    a11y.receive_broadcast(ctx.phone, intent.action, intent.component, intent.extras)
    code, data = result if result is not None else (0, None)
    # IntentReceiver.performReceive in ActivityManagerShellCommand: data is quoted, only when set.
    ctx.out(f"Broadcast completed: result={code}" + (f', data="{data}"' if data is not None else ""))
    return 0


def _delivers_to(intent: intents.Intent, package: str) -> bool:
    """Whether a broadcast can reach `package`'s receivers: implicit, or aimed at that package."""
    if intent.component is not None:
        return intent.component[0] == package
    return (intent.package or "") in ("", package)


def _broadcast_intent(intent: intents.Intent) -> str:
    """Intent.toString of a broadcast: `am broadcast` adds FLAG_RECEIVER_FROM_SHELL (flg=0x400000)."""
    intent.flags |= intents.FLAG_RECEIVER_FROM_SHELL
    return str(intent)


def _string_extras(args: list[str]) -> dict[str, str]:
    """The `--es KEY VALUE` (and `-e`) string extras of an intent command line; other options skipped."""
    extras: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-e", "--es") and i + 2 < len(args):
            extras[args[i + 1]] = args[i + 2]
            i += 3
        elif arg in _EXTRA_TWO_ARGS:
            i += 3
        elif arg in _AM_VALUED or arg in ("-a", "-d", "-t", "-c", "-n", "-p"):
            i += 2
        else:
            i += 1
    return extras


# ---- ADB Keyboard (senzhk/ADBKeyBoard): the IME agents type through -------------------------------------
# The simulated phone behaves as if ADB Keyboard were installed and selected, so its broadcasts always
# reach it. Like the real IME it commits text into the focused field's InputConnection; with no focused
# field it does nothing. SimDevice calls the same two functions, so typing is identical in-process.
ADB_KEYBOARD_PACKAGE = "com.android.adbkeyboard"
ADB_KEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"


def _input_connection(phone: Any) -> Any:
    """The activity holding the focused field an IME would type into, or None (no InputConnection)."""
    state = phone.state
    focus = state.focus
    if focus is None or focus.package != state.foreground or state.overview:
        return None
    stack = state.tasks.get(focus.package, [])
    return stack[-1] if stack and focus.depth == len(stack) - 1 else None


def adb_keyboard_commit(phone: Any, text: str) -> None:
    """InputConnection.commitText(text): the text goes into the focused field as it is, newlines included."""
    with phone.lock:
        activity = _input_connection(phone)
        if activity is None or not text:
            return
        if "\n" not in text:
            phone.type_text(text)
            return
        # Phone.type_text presses Enter for "\n" (what `input text` does); a commit inserts the character.
        phone.type_text("")  # the input event itself: one more tick, any toast goes away
        field = phone.state.focus.field
        old = "" if phone.state.select_all else activity.fields.get(field, "")
        activity.fields[field] = old + text
        phone.state.select_all = False
        phone.changed()


def adb_keyboard_clear(phone: Any) -> None:
    """ADB_CLEAR_TEXT: empty the focused field, the way android_world clears one (CTRL+A, then DEL)."""
    with phone.lock:
        if _input_connection(phone) is None:
            return
        phone.key_combination([113, 29])  # KEYCODE_CTRL_LEFT + KEYCODE_A selects everything
        phone.key(67)  # KEYCODE_DEL deletes the selection


def _adb_keyboard_receive(phone: Any, action: str, extras: dict[str, str]) -> None:
    if action == "ADB_INPUT_TEXT" and "msg" in extras:
        adb_keyboard_commit(phone, extras["msg"])
    elif action == "ADB_INPUT_B64" and "msg" in extras:
        try:
            data = base64.b64decode(extras["msg"])
        except ValueError:
            return  # the real IME throws on bad base64 and types nothing
        adb_keyboard_commit(phone, data.decode("utf-8", errors="replace"))  # Java's new String(b, "UTF-8")
    elif action == "ADB_CLEAR_TEXT":
        adb_keyboard_clear(phone)


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
    wanted, count, it = [], 0, iter(args)
    for arg in it:
        if arg in ("-p", "-c", "-s", "--throttle", "--pct-touch", "--pct-motion", "--pct-syskeys"):
            value = next(it, "")
            ctx.out(f'data="{value}"')
            if arg == "-p":
                wanted.append(value)
        elif re.fullmatch(r"\d+", arg):
            count = int(arg)
    phone = ctx.phone
    candidates = [p for p in wanted or sorted(phone.apps) if p in phone.apps and p != LAUNCHER]
    candidates = [p for p in candidates if packages.available(phone, p)]  # uninstalled or disabled: none
    if not candidates:
        ctx.err("** No activities found to run, monkey aborted.")
        return 251
    if count:
        ctx.phone.launch(candidates[0])
    ctx.out(f"Events injected: {count}")
    ctx.out("## Network stats: elapsed time=7ms (0ms mobile, 0ms wifi, 7ms not connected)")
    return 0


# ==== package manager ===================================================================================


def _packages(phone: Any, uninstalled: bool = False) -> list[str]:
    """Packages installed for user 0: the apps, framework packages, anything else with a data directory.

    With `uninstalled`, also those uninstalled for the user but still on the device (`pm list packages -u`).
    """
    with_data = [name for name, st in phone.fs.listdir("/data/data") if st.is_dir]
    names = set(phone.apps) | set(FRAMEWORK_PACKAGES) | set(with_data)
    keep = packages.exists if uninstalled else packages.installed
    return sorted(name for name in names if keep(phone, name))


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
        ctx.out("Package manager (package) commands:\n  help\n  path PACKAGE\n  list packages [-f] [-3] [-s] [FILTER]")
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
    opts, filters = getopt("pm", [r for r in rest if r not in ("--user", "--show-versioncode")], "fdes3iuUaAl")
    if "--user" in rest:
        filters = filters[1:] if filters else filters  # the user id followed --user
    show_version = "--show-versioncode" in rest
    phone = ctx.phone
    for package in _packages(phone, uninstalled="u" in opts):
        if ("s" in opts and not _is_system(package)) or ("3" in opts and _is_system(package)):
            continue
        enabled = packages.enabled_state(phone, package) in (packages.ENABLED_DEFAULT, packages.ENABLED)
        if ("d" in opts and enabled) or ("e" in opts and not enabled):
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
    if package in phone.apps and packages.installed(phone, package):
        phone.fs.makedirs(phone.apps[package].data_dir)  # even if someone rm -rf'd it, clearing succeeds
        phone.clear_app_data(package)
    elif package in _packages(phone) and package not in phone.apps:
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


# ---- pm install (envs/sim/apk.py reads the manifest) ------------------------------------------------------
# Packages the simulated phone implements besides its apps: what an APK of them installs. Any other APK
# fails the way an APK built only for ARM fails on an x86_64 emulator image.
IMPLEMENTED_PACKAGES = (a11y.FORWARDER_PACKAGE, ADB_KEYBOARD_PACKAGE, services.CLIPPER_PACKAGE)
# Options of `pm install` that take a value (the rest are flags).
_INSTALL_VALUED = {"-i", "-p", "-S", "--user", "--install-reason", "--abi", "--install-location", "--pkg"}
_INSTALL_VALUED |= {"--originating-uri", "--referrer", "--force-uuid", "--staged-ready-timeout", "--apex-timeout"}


def _pm_install(ctx: Context, a: _JavaArgs) -> int:
    """`pm install [-r] [-t] [-g] [-d] [--user U] ... PATH`: install the APK file at PATH on the device."""
    rest = a.args[a.pos :]
    paths, i = [], 0
    while i < len(rest):
        arg = rest[i]
        i += 2 if arg in _INSTALL_VALUED else 1
        if not arg.startswith("-") or arg == "-":
            paths.append(arg)
    if not paths:
        ctx.err("Error: APK content must be streamed")
        return 1
    path = paths[-1]
    phone = ctx.phone
    if not phone.fs.is_file(path):
        ctx.err(f"Error: Unable to open file: {path}")
        if not path.startswith("/data/local/tmp/"):
            ctx.err("Consider using a file under /data/local/tmp/")
        ctx.err(f"Error: Can't open file: {path}")
        return 1
    session = f"/data/app/vmdl{_stable_int(path, 10**8, 9 * 10**8)}.tmp/base.apk"
    try:
        manifest = apk.read_manifest(phone.fs.read(path))
    except apk.ApkError as err:
        kind = "NOT_APK" if "zip" in str(err) else "BAD_MANIFEST"
        ctx.out(f"Failure [INSTALL_PARSE_FAILED_{kind}: Failed to parse {session}: {err}]")
        return 1
    package = manifest.package
    if package not in phone.apps and package not in IMPLEMENTED_PACKAGES:
        ctx.out("Failure [INSTALL_FAILED_NO_MATCHING_ABIS: Failed to extract native libraries, res=-113]")
        return 1
    packages.set_state(phone, package, installed=True, deleted=False)
    phone.fs.makedirs(f"/data/data/{package}")  # an extra package is installed while its data directory exists
    phone.changed()
    ctx.out("Success")
    return 0


def _pm_user_arg(a: _JavaArgs) -> int | None:
    """UserHandle.parseUserArg: `all` is None (USER_ALL); `current`/`cur` and numbers are a user id."""
    value = a.required()
    if value == "all":
        return None
    if value in ("current", "cur"):
        return 0
    try:
        return intents.java_decode(value)
    except intents.JavaException as exc:
        raise CommandError(
            f"\nException occurred while executing '{a.command}':\n{exc.cls}: {exc.message}\n"
            "\tat android.os.UserHandle.parseUserArg(UserHandle.java:591)\n"
            "\tat com.android.modules.utils.BasicShellCommandHandler.exec(BasicShellCommandHandler.java:97)",
            255,
        ) from None


def _pm_options(ctx: Context, a: _JavaArgs, known: dict[str, bool]) -> tuple[dict[str, Any], str | None] | None:
    """getNextOption() over `known` options (name -> takes a value), then the package; None after an error."""
    seen: dict[str, Any] = {}
    while a.pos < len(a.args) and a.args[a.pos].startswith("-"):
        opt = a.next()
        if opt == "--":
            break
        if opt not in known:
            ctx.out(f"Error: Unknown option: {opt}")
            return None
        seen[opt] = (_pm_user_arg(a) if opt == "--user" else a.required()) if known[opt] else True
    package = a.next()
    if package is None:
        ctx.out("Error: package name not specified")
        return None
    return seen, package


def _remove_for_user(phone: Any, package: str, keep_data: bool, deleted: bool) -> None:
    """What uninstalling leaves: no process, task or recents entry; no data unless -k."""
    if package in phone.apps:
        phone.force_stop(package)
        if package in phone.state.recents:
            phone.state.recents.remove(package)
    if not keep_data and phone.fs.exists(f"/data/data/{package}"):
        phone.fs.rmtree(f"/data/data/{package}")
        if deleted and package not in phone.apps:
            return  # an installed APK's package is its data directory: gone with it, free to install again
    packages.set_state(phone, package, installed=False, deleted=deleted or None)


def _pm_uninstall(ctx: Context, a: _JavaArgs) -> int:
    """`pm uninstall [-k] [--user USER] PKG`: a user app goes entirely; a system app only for a user."""
    parsed = _pm_options(ctx, a, {"-k": False, "--user": True, "--versionCode": True})
    if parsed is None:
        return 1
    opts, package = parsed
    phone = ctx.phone
    user = opts.get("--user")
    if user is None:  # all users: only packages that are not on the system image
        if package not in _packages(phone, uninstalled=True) or _is_system(package) or package == LAUNCHER:
            ctx.out("Failure [DELETE_FAILED_INTERNAL_ERROR]")
            return 1
        _remove_for_user(phone, package, "-k" in opts, deleted=True)
    else:
        if package not in _packages(phone):
            ctx.out(f"Failure [not installed for {user}]")
            return 1
        _remove_for_user(phone, package, "-k" in opts, deleted=False)
    ctx.out("Success")
    return 0


def _pm_install_existing(ctx: Context, a: _JavaArgs) -> int:
    """`pm install-existing [--user USER] PKG`: installs for the user a package still on the device."""
    flags = {"--user": True, "--ephemeral": False, "--instant": False, "--full": False, "--wait": False}
    parsed = _pm_options(ctx, a, {**flags, "--restrict-permissions": False})
    if parsed is None:
        return 1
    opts, package = parsed
    phone = ctx.phone
    if package not in _packages(phone, uninstalled=True):
        ctx.out(f"android.content.pm.PackageManager$NameNotFoundException: Package {package} doesn't exist")
        return 1
    if not packages.installed(phone, package):
        packages.set_state(phone, package, installed=True)
        if package in phone.apps and not phone.fs.exists(phone.apps[package].data_dir + "/databases"):
            phone.fs.makedirs(phone.apps[package].data_dir)
            phone.clear_app_data(package)  # data went with the uninstall: the app starts fresh
    ctx.out(f"Package {package} installed for user: {opts.get('--user') or 0}")
    return 0


_ENABLED_NAMES = {0: "default", 1: "enabled", 2: "disabled", 3: "disabled-user", 4: "disabled-until-used"}


def _pm_set_enabled(state: int) -> Callable[[Context, _JavaArgs], int]:
    """`pm enable|disable|disable-user|default-state [--user USER] PKG`."""

    def run(ctx: Context, a: _JavaArgs) -> int:
        if a.pos < len(a.args) and a.args[a.pos] == "--user":
            a.next()
            _pm_user_arg(a)
        package = a.next()
        if package is None:
            ctx.err("Error: no package or component specified")
            return 1
        phone = ctx.phone
        if package not in _packages(phone):
            a.fail(f"Unknown package: {package}")
        packages.set_state(phone, package, enabled=state)
        if state in (packages.DISABLED, packages.DISABLED_USER) and package in phone.apps:
            phone.force_stop(package)  # a disabled app's process is killed
        ctx.out(f"Package {package} new state: {_ENABLED_NAMES[packages.enabled_state(phone, package)]}")
        return 0

    return run


def _pm_resolve(ctx: Context, a: _JavaArgs) -> int:
    """`pm resolve-activity|query-activities [--brief|--components] [--user U] INTENT`.

    These query with flags 0, so unlike `am start` launcher-only filters (no CATEGORY_DEFAULT) match too.
    """
    opts = {"brief": False, "components": False}

    def handle(opt: str, cmd: intents.ShellArgs) -> bool:
        if opt in ("--brief", "--components"):
            opts[opt[2:]] = True
        elif opt in ("--user", "--query-flags"):
            cmd.required()
        else:
            return False
        return True

    try:
        intent = intents.parse_command_args(intents.ShellArgs(a.args[a.pos :]), handle)
    except intents.JavaException as exc:
        raise _java_exception(a, exc) from None
    found = intents.query(ctx.phone, intent, intent.type, LAUNCHER, default_only=False)
    if a.command == "resolve-activity":
        if not found:
            ctx.out("No activity found")
        elif len(found) > 1:  # ResolverActivity: the chooser
            _print_resolve_info(ctx, "", intents.Target("android", "com.android.internal.app.ResolverActivity", ""))
        else:
            _print_resolve_info(ctx, "", found[0], opts["components"])
        return 0
    if not found:
        ctx.out("No activities found")
    elif opts["components"]:
        for target in found:
            _print_resolve_info(ctx, "", target, True)
    else:
        ctx.out(f"{len(found)} activities found:")
        for n, target in enumerate(found):
            ctx.out(f"  Activity #{n}:")
            _print_resolve_info(ctx, "    ", target)
    return 0


def _print_resolve_info(ctx: Context, prefix: str, target: intents.Target, components: bool = False) -> None:
    """PackageManagerShellCommand.printResolveInfo in its --brief form (--components: the name only)."""
    if not components:
        is_default = target.filter is not None and "android.intent.category.DEFAULT" in target.filter.categories
        ctx.out(
            f"{prefix}priority=0 preferredOrder=0 match=0x{target.match:x} specificIndex=-1 "
            f"isDefault={str(is_default).lower()}"
        )
    ctx.out(prefix + intents.flatten_short(target.package, target.component))


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
    "install-existing": _pm_install_existing,
    "resolve-activity": _pm_resolve,
    "query-activities": _pm_resolve,
    "enable": _pm_set_enabled(packages.ENABLED),
    "disable": _pm_set_enabled(packages.DISABLED),
    "disable-user": _pm_set_enabled(packages.DISABLED_USER),
    "default-state": _pm_set_enabled(packages.ENABLED_DEFAULT),
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
    pw, ph, dpi = phone.width, phone.height, phone.density
    w, h = services.logical_size(phone)
    app_h = h - round(48 * dpi / 160)  # minus the navigation bar
    _, _, focus = _window_token(phone)
    rot = services.rotation(phone)
    locked = phone.get_setting("system", "accelerometer_rotation") in (None, "0")
    mode = "LOCKED" if locked else "FREE"
    user = phone.get_setting("system", "user_rotation") or "0"
    user_rot = int(user) % 4 if user.isdigit() else 0
    return "\n".join(
        [
            "WINDOW MANAGER DISPLAY CONTENTS (dumpsys window displays)",
            f"  Display: mDisplayId=0 rootTasks={len(_tasks(phone))}",
            f"    init={pw}x{ph} {dpi}dpi cur={w}x{h} app={w}x{app_h} rng={pw}x{pw - 63}-{ph - 126}x{ph - 126}",
            f"    deferred=false mLayoutNeeded=false mTouchExcludeRegion=SkRegion((0,0,{w},{h}))",
            "",
            "  mLayoutSeq=250",
            f"  mCurrentFocus={focus}",
            f"  mFocusedApp={_focused_record(phone)}",
            "  mLastStatusBarVisibility=0x0",
            "  DisplayRotation",
            "    mCurrentAppOrientation=SCREEN_ORIENTATION_UNSPECIFIED",
            "    mLastOrientation=-1",
            f"    mRotation={rot} mDeferredRotationPauseCount=0",
            "    mLandscapeRotation=ROTATION_90 mSeascapeRotation=ROTATION_270",
            "    mPortraitRotation=ROTATION_0 mUpsideDownRotation=ROTATION_180",
            f"    mCurrentRotation=ROTATION_{rot * 90}",
            f"    mUserRotationMode=USER_ROTATION_{mode} mUserRotation=ROTATION_{user_rot * 90}"
            " mCameraRotationMode=0 mAllowAllRotations=false",
            "",
        ]
    )


def _dumpsys_window_windows(phone: Any) -> str:
    w, h = services.logical_size(phone)
    orientation = "land" if w > h else "port"
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
        f"  mGlobalConfiguration={{1.0 310mcc260mnc [en_US] ldltr {orientation} finger qwerty/v/v dpad/v}}",
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
    pw, ph, dpi = phone.width, phone.height, phone.density
    w, h = services.logical_size(phone)
    rot = services.rotation(phone)
    viewport = (
        "DisplayViewport{type=INTERNAL, valid=true, isActive=true, displayId=0, "
        f"uniqueId='{DISPLAY_UNIQUE_ID}', physicalPort=0, orientation={rot}, logicalFrame=Rect(0, 0 - {w}, {h}), "
        f"physicalFrame=Rect(0, 0 - {w}, {h}), "
        f"deviceWidth={pw}, deviceHeight={ph}}}"
    )
    info = (
        f'DisplayInfo{{"Built-in Screen", displayId 0, displayGroupId 0, FLAG_SECURE, '
        f"FLAG_SUPPORTS_PROTECTED_BUFFERS, FLAG_TRUSTED, real {w} x {h}, largest app {w} x {h}, "
        f"smallest app {w} x {h}, appVsyncOff 1000000, presDeadline 16666666, mode 1, defaultMode 1, "
        f"modes [{{id=1, width={pw}, height={ph}, fps=60.0, alternativeRefreshRates=[]}}], rotation {rot}, "
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
            f'  DisplayDeviceInfo{{"Built-in Screen": uniqueId="{DISPLAY_UNIQUE_ID}", {pw} x {ph}, modeId 1, '
            f"defaultModeId 1, density {dpi}, {dpi}.0 x {dpi}.0 dpi, type INTERNAL, state ON}}",
            "    mAdapter=LocalDisplayAdapter",
            f"    mCurrentOrientation={rot}",
            f"    mCurrentDisplayRect=Rect(0, 0 - {pw}, {ph})",
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
    w, h = services.logical_size(phone)
    rot = services.rotation(phone)
    viewport = (
        f"Viewport INTERNAL: displayId=0, uniqueId={DISPLAY_UNIQUE_ID}, port=0, orientation={rot}, "
        f"logicalFrame=[0, 0, {w}, {h}], physicalFrame=[0, 0, {w}, {h}], "
        f"deviceSize=[{phone.width}, {phone.height}], isActive=[1]"
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
            f"      SurfaceOrientation: {rot}",
            "  Configuration:",
            "    PointerVelocityControlParameters: scale=1.000, lowThreshold=500.000, highThreshold=3000.000",
            "  Viewports:",
            f"    {viewport}",
            "",
        ]
    )


def _dumpsys_package(phone: Any, args: list[str]) -> str:
    package = args[0] if args else ""
    if package not in _packages(phone, uninstalled=True):
        return "Dexopt state:\n  Unable to find package: " + package + "\n"
    app = phone.apps.get(package)
    version = app.version_name if app is not None else "13"
    installed = phone.now().strftime("%Y-%m-%d %H:%M:%S")
    flags = "SYSTEM HAS_CODE ALLOW_CLEAR_USER_DATA" if _is_system(package) else "HAS_CODE ALLOW_CLEAR_USER_DATA"
    code_path = posixpath.dirname(apk_path(package))
    table = intents.resolver_table(app, LAUNCHER, _hex_id) if app is not None else ""
    lines = [
        *([table, ""] if table else []),  # the resolver tables come first, a blank line before Packages
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
        f"    User 0: ceDataInode=0 installed={str(packages.installed(phone, package)).lower()} hidden=false "
        "suspended=false distractionFlags=0 "
        f"stopped={str(package in phone.state.stopped).lower()} "
        f"notLaunched=false enabled={packages.enabled_state(phone, package)} instant=false virtual=false",
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
    """TelephonyRegistry's dump: the call state android_world's get_call_state reads (0 idle, 1 ringing, 2 offhook)."""
    state = services.call_state(phone)
    ringing = next((c["number"] for c in services.calls(phone) if c["state"] in ("incoming", "waiting")), "")
    return (
        "last known state:\n  Phone Id=0\n"
        f"    mCallState={state}\n"
        f"    mRingingCallState={1 if ringing else 0}\n"
        f"    mForegroundCallState={1 if state == services.CALL_STATE_OFFHOOK else 0}\n"
        f"    mCallIncomingNumber={ringing}\n"
        "    mServiceState={mVoiceRegState=0(IN_SERVICE), mDataRegState=0(IN_SERVICE), mChannelNumber=1, "
        "duplexMode()=1, mOperatorAlphaLong=T-Mobile, mOperatorAlphaShort=T-Mobile, isManualNetworkSelection=false}\n"
        "    mVoiceActivationState=0\n    mDataActivationState=0\n    mUserMobileDataState=true\n"
        "  local logs:\n"
    )


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


# SystemSettingsValidators for the system keys the phone acts on: SettingsProvider rejects other values.
_SYSTEM_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "user_rotation": lambda v: v in ("0", "1", "2", "3"),
    "accelerometer_rotation": lambda v: v in ("0", "1"),
    "screen_brightness_mode": lambda v: v in ("0", "1"),
    "screen_brightness": lambda v: v.isdigit() and int(v) <= 255,
    "time_12_24": lambda v: v in ("12", "24"),
}


def _settings_put(ctx: Context, namespace: str, operands: list[str]) -> int:
    if len(operands) < 2:
        ctx.err("Bad arguments")
        return 255
    key, value = operands[0], operands[1]
    valid = _SYSTEM_VALIDATORS.get(key) if namespace == "system" else None
    if valid is not None and not valid(value):
        _JavaArgs("com.android.providers.settings.SettingsService$MyShellCommand", ["put"]).fail(
            f"Invalid value: {value} for setting: {key}"
        )
    ctx.phone.put_setting(namespace, key, value)
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
    """`settings reset NAMESPACE {PACKAGE | untrusted_defaults | untrusted_clear | trusted_defaults}`.

    A mode puts the table back to the image's defaults (keys without a default go); a package name resets
    what that package set, and only the shell sets settings here, so it changes nothing.
    """
    if not operands:
        ctx.err("Bad arguments")
        return 255
    if namespace == "system":
        ctx.err("Invalid table; no reset performed")
        return 255
    if operands[0].lower() in ("untrusted_defaults", "untrusted_clear", "trusted_defaults"):
        defaults = stock_settings()[namespace]
        for key in ctx.phone.list_settings(namespace):
            if key not in defaults:
                ctx.phone.delete_setting(namespace, key)
        for key, value in defaults.items():
            ctx.phone.put_setting(namespace, key, value)
    return 0


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


def _cmd_input_method(ctx: Context, args: list[str]) -> int:
    """`cmd input_method ime ...` is what the `ime` command runs."""
    from droidrl.envs.sim.shell_services import _ime  # shell_services imports this module

    if args[:1] == ["ime"]:
        return _ime(ctx, args[1:])
    ctx.err(f"Unknown command: {args[0] if args else ''}")
    return 255


def _cmd(ctx: Context, args: list[str]) -> int:
    """`cmd SERVICE ...` reaches the same shell commands as am/pm/input/wm/settings."""
    services = {"activity": _am, "package": _pm, "input": _input, "window": _wm, "settings": _settings}
    services["input_method"] = _cmd_input_method
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
