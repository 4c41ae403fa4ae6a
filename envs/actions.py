"""Parse and validate agent action strings; never touches a device.

Speaks the MobileRL / AutoGLM-Phone `do(action=...)` language and android_world's JSON actions.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Point = tuple[int, int]  # (x, y) on the 0-999 relative grid; (0, 0) is the top-left corner
Box = tuple[int, int, int, int]  # (x1, y1, x2, y2) in screen pixels, for android_world element lists

GRID_SIZE = 1000  # the pixel mapping divides by 1000, as Open-AutoGLM's handler does
GRID_MAX = GRID_SIZE - 1
CENTER: Point = (500, 500)
MAX_ACTION_CHARS = 20_000  # longer calls are refused unread, which bounds the parser's time
MAX_WAIT_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 1.0  # Open-AutoGLM's default duration and android_world's fixed wait
# Swipe length in grid units for direction-style swipes. MobileRL's AndroidLab controller moves
# width/10 * {1, 2, 3} pixels sideways and twice that vertically: 100/200/300 grid units across,
# 90/180/270 down a 1080x2400 screen. One table for both axes stays within 10% of that.
SWIPE_DISTANCES = {"short": 100, "medium": 200, "long": 300}
# Finger movement per direction: "up" moves the finger up, so the content scrolls to show what
# is below (AutoGLM/MobileRL convention; android_world's `scroll` names the opposite direction).
_FINGER_STEPS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


class ActionError(ValueError):
    """An action value that cannot exist (off-grid point, empty text, ...): a bug in the caller."""


# ---------------------------------------------------------------------------------------------
# Actions


def _check_point(point: object, what: str) -> None:
    ok = isinstance(point, tuple) and len(point) == 2 and all(_is_int(v) for v in point)
    if not ok:
        raise ActionError(f"{what} must be a tuple of two ints (x, y); got {_snippet(repr(point))}")
    for axis, value in zip("xy", point, strict=True):
        if not 0 <= value <= GRID_MAX:
            raise ActionError(f"{what} {axis}={value} is outside the 0-{GRID_MAX} grid")


def _check_text(value: object, what: str, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise ActionError(f"{what} must be a quoted string; got {_snippet(repr(value))}")
    if not allow_empty and not value:
        raise ActionError(f"{what} is empty")


@dataclass(frozen=True)
class Tap:
    point: Point

    def __post_init__(self) -> None:
        _check_point(self.point, "Tap point")


@dataclass(frozen=True)
class LongPress:
    point: Point

    def __post_init__(self) -> None:
        _check_point(self.point, "Long Press point")


@dataclass(frozen=True)
class DoubleTap:
    point: Point

    def __post_init__(self) -> None:
        _check_point(self.point, "Double Tap point")


@dataclass(frozen=True)
class Swipe:
    """A finger drag from `start` to `end`."""

    start: Point
    end: Point

    def __post_init__(self) -> None:
        _check_point(self.start, "Swipe start")
        _check_point(self.end, "Swipe end")


@dataclass(frozen=True)
class Type:
    """Type `text` into the focused field.

    `focus`: tap here first (android_world's input_text x/y or index). `clear`: empty the field
    first (AutoGLM's Type always does). `enter`: press Enter afterwards (android_world's input_text
    always does).
    """

    text: str
    focus: Point | None = None
    clear: bool = True
    enter: bool = False

    def __post_init__(self) -> None:
        _check_text(self.text, "Type text", allow_empty=True)
        if not self.text:
            raise ActionError('Type text is empty; give the text to type, like text="hello"')
        if self.focus is not None:
            _check_point(self.focus, "Type focus")
        if not isinstance(self.clear, bool) or not isinstance(self.enter, bool):
            raise ActionError(f"Type clear= and enter= must be True or False; got {self.clear!r}, {self.enter!r}")


@dataclass(frozen=True)
class Launch:
    """Open an app by the name the model said; `resolve_app` maps it to a package."""

    app: str

    def __post_init__(self) -> None:
        _check_text(self.app, "Launch app")
        if not self.app.strip():
            raise ActionError('Launch app is empty; name the app, like app="Settings"')


@dataclass(frozen=True)
class Back:
    pass


@dataclass(frozen=True)
class Home:
    pass


@dataclass(frozen=True)
class Enter:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float = DEFAULT_WAIT_SECONDS

    def __post_init__(self) -> None:
        ok = isinstance(self.seconds, int | float) and not isinstance(self.seconds, bool)
        if not ok or not 0 <= self.seconds <= MAX_WAIT_SECONDS:
            raise ActionError(
                f"Wait duration must be between 0 and {MAX_WAIT_SECONDS:g} seconds; got {_snippet(repr(self.seconds))}"
            )


@dataclass(frozen=True)
class Finish:
    """End the episode; `message` is the answer that query tasks check."""

    message: str = ""

    def __post_init__(self) -> None:
        _check_text(self.message, "finish message", allow_empty=True)


@dataclass(frozen=True)
class Note:
    """AutoGLM's "record this page for a later summary": valid, and does nothing on the device."""

    message: str = ""

    def __post_init__(self) -> None:
        _check_text(self.message, "Note message", allow_empty=True)


@dataclass(frozen=True)
class CallApi:
    """AutoGLM's Call_API (summarise recorded content): valid, and does nothing on the device."""

    instruction: str

    def __post_init__(self) -> None:
        _check_text(self.instruction, "Call_API instruction")
        if not self.instruction.strip():
            raise ActionError("Call_API instruction is empty")


@dataclass(frozen=True)
class Invalid:
    """Model output that is not an action; `reason` says why, for the model's next prompt and logs."""

    reason: str


Action = Tap | LongPress | DoubleTap | Swipe | Type | Launch | Back | Home | Enter | Wait | Finish | Note | CallApi


def swipe_in_direction(direction: str, dist: str | float = "medium", start: Point = CENTER) -> Swipe:
    """MobileRL's direction-style swipe as a start/end Swipe on the grid.

    The finger moves from `start` towards `direction` ("up" moves it up) by SWIPE_DISTANCES[dist]
    grid units, or by `dist` grid units when it is a number; the end is clamped into 0-999.
    """
    if not isinstance(direction, str) or direction.strip().lower() not in _FINGER_STEPS:
        raise ActionError(f"Swipe direction must be one of up, down, left, right; got {_snippet(repr(direction))}")
    if isinstance(dist, str) and dist.strip().lower() in SWIPE_DISTANCES:
        length = SWIPE_DISTANCES[dist.strip().lower()]
    elif isinstance(dist, int | float) and not isinstance(dist, bool) and math.isfinite(dist) and dist >= 0:
        length = min(round(dist), GRID_SIZE)
    else:
        raise ActionError(
            f"Swipe dist must be short, medium, long or a number of grid units; got {_snippet(repr(dist))}"
        )
    _check_point(start, "Swipe start")
    dx, dy = _FINGER_STEPS[direction.strip().lower()]
    end = (_clamp(start[0] + dx * length, 0, GRID_MAX), _clamp(start[1] + dy * length, 0, GRID_MAX))
    return Swipe(start, end)


# ---------------------------------------------------------------------------------------------
# Grid <-> pixels


def to_pixels(point: Point, width: int, height: int) -> tuple[int, int]:
    """Grid point -> screen pixel: px = floor(x * width / 1000), py = floor(y * height / 1000).

    This is Open-AutoGLM's `int(x / 1000 * width)` in exact integer arithmetic: the float form
    drops a pixel where the product is a whole number (x=175 on a 720-wide screen gives 125, not
    126). (999, 999) is (1078, 2397) on 1080x2400 and (719, 1278) on 720x1280. MobileRL's v4
    executor divides by 999 instead, a difference of at most 0.1% of the screen.
    """
    _check_size(width, height)
    _check_point(point, "point")
    return point[0] * width // GRID_SIZE, point[1] * height // GRID_SIZE


def to_grid(pixel: tuple[int, int], width: int, height: int) -> Point:
    """Screen pixel -> grid point: x = min(999, ceil(px * 1000 / width)), the same for y.

    The smallest grid value whose pixel is at or after `px`, so to_pixels(to_grid(p)) == p on
    screens at most 1000 pixels wide (tall), and to_grid(to_pixels(g)) == g on screens at least
    1000 wide (tall). Wider screens have pixels no grid point reaches: such a pixel maps to the next
    one reached (to 999 past the last), less than width/1000 pixels away.
    """
    _check_size(width, height)
    ok = isinstance(pixel, tuple) and len(pixel) == 2 and all(_is_int(v) for v in pixel)
    if not ok:
        raise ActionError(f"pixel must be a tuple of two ints (px, py); got {_snippet(repr(pixel))}")
    px, py = pixel
    if not (0 <= px < width and 0 <= py < height):
        raise ActionError(f"pixel ({px}, {py}) is outside the {width}x{height} screen")
    return min(GRID_MAX, -(-px * GRID_SIZE // width)), min(GRID_MAX, -(-py * GRID_SIZE // height))


def _check_size(width: int, height: int) -> None:
    if not (_is_int(width) and _is_int(height) and width > 0 and height > 0):
        raise ActionError(f"screen size must be two positive ints; got {width!r}x{height!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


# ---------------------------------------------------------------------------------------------
# App names

# Names models say -> Android package. Defaults follow android_world's app set (and its package
# names) plus the stock apps; an environment passes its phone's installed apps instead.
APP_PACKAGES: dict[str, str] = {
    "Settings": "com.android.settings",
    "System Settings": "com.android.settings",
    "Contacts": "com.google.android.contacts",
    "Clock": "com.google.android.deskclock",
    "Calendar": "com.simplemobiletools.calendar.pro",
    "Simple Calendar": "com.simplemobiletools.calendar.pro",
    "Simple Calendar Pro": "com.simplemobiletools.calendar.pro",
    "Markor": "net.gsantner.markor",
    "Expenses": "com.arduia.expense",
    "Expense": "com.arduia.expense",
    "Pro Expense": "com.arduia.expense",
    "Messages": "com.simplemobiletools.smsmessenger",
    "SMS Messenger": "com.simplemobiletools.smsmessenger",
    "Simple SMS Messenger": "com.simplemobiletools.smsmessenger",
    "Files": "com.google.android.documentsui",
    "Chrome": "com.android.chrome",
    "Google Chrome": "com.android.chrome",
    "Camera": "com.android.camera2",
    "Phone": "com.google.android.dialer",
    "Dialer": "com.google.android.dialer",
    "Audio Recorder": "com.dimowner.audiorecorder",
    "Broccoli": "com.flauschcode.broccoli",
    "Gallery": "com.simplemobiletools.gallery.pro",
    "Simple Gallery Pro": "com.simplemobiletools.gallery.pro",
    "Simple Draw Pro": "com.simplemobiletools.draw.pro",
    "Joplin": "net.cozic.joplin",
    "OsmAnd": "net.osmand",
    "Tasks": "org.tasks",
    "OpenTracks": "de.dennisguse.opentracks",
    "Retro Music": "code.name.monkey.retromusic",
    "VLC": "org.videolan.vlc",
}


def resolve_app(name: str, apps: Mapping[str, str] = APP_PACKAGES) -> str | None:
    """The package for an app name as a model says it, or None when `apps` has no such app.

    Case, repeated spaces and a trailing " app" are ignored ("clock app" finds "Clock"); a name
    that already is one of the packages is returned as it is.
    """
    wanted = _app_key(name)
    for label, package in apps.items():
        if _app_key(label) == wanted:
            return package
    return name.strip() if name.strip() in apps.values() else None


def _app_key(name: str) -> str:
    return " ".join(name.lower().split()).removesuffix(" app")


# ---------------------------------------------------------------------------------------------
# The AutoGLM / MobileRL language: parse


def parse(text: str) -> Action | Invalid:
    """Parse one model turn into an Action, or Invalid(reason). Never raises.

    Accepted, in the order it is looked for:
      - an optional leading `<think>...</think>`, or a bare `...</think>` (the template opened it),
        skipped;
      - an optional `<answer>...</answer>`: when present the action is looked for inside it;
      - one call, `do(action="Name", key=value, ...)` or `finish(message="...")`, found by its
        start (`do(action=` / `finish(`) and ended by its matching `)`, strings respected. Text
        before it (reasoning, "Action:", code fences) is ignored, so is text after it unless it
        holds a second call or a second <answer>: one action per turn.
    The call is read with `ast.parse` and each argument with `ast.literal_eval` (never `eval`), so
    strings are Python literals: either quote, backslash escapes and unicode; raw newlines inside
    a string are kept as newlines, and leading zeros in numbers (`[050, 100]`) are dropped, as
    MobileRL's executor does. When that fails and the last argument is the free text of Type, Note,
    Call_API, Take_over or finish, the text is taken verbatim from after `text="` to the final
    quote before `)`: this repairs unescaped quotes (`text="say "hi""`), the commonest model error.

    Actions (names match ignoring case, spaces, `_` and `-`; see _ACTION_ALIASES):
      Tap / Long Press / Double Tap: element=[x, y], or [x1, y1, x2, y2] for the box centre
        ((x1 + x2) // 2, (y1 + y2) // 2); numbers on the 0-999 grid, floats rounded. Tap's
        `message=` (AutoGLM's "sensitive action" flag) is accepted and dropped: no one confirms.
      Swipe: start=[x, y], end=[x, y]; or MobileRL's direction="up|down|left|right",
        dist="short|medium|long" (default medium) and an optional element, see swipe_in_direction.
      Type / Type_Name: text="..." (non-empty), optional element= (tap there first), clear=,
        enter= (see Type).
      Launch: app="Settings" (kept as said). Back / Press Back, Home / Press Home, Enter / Press Enter.
      Wait: duration="2 seconds" (also 2, "2", "2s", "1.5 second"; default 1 s; 0-60 s).
      Note: message=; Call_API: instruction= (valid, do nothing on the device).
      Take_over and Interact ask a human to act or choose; episodes have none, so they are Invalid.
      finish(message="...") (or do(action="finish", ...)): message optional, numbers become text.
    """
    if not isinstance(text, str):
        return Invalid(f"expected the model's output as a string, got {type(text).__name__}")
    try:
        return _parse(text)
    except Exception as exc:  # a parser bug must cost one invalid step, never a rollout worker
        return Invalid(f"internal parser error ({type(exc).__name__}: {_snippet(str(exc))}); please report it")


# `(?<![A-Za-z0-9_])` rather than `\b`: a call glued to Chinese text ("点击do(...") still counts.
_CALL_START = re.compile(r"(?<![A-Za-z0-9_])(?:do\s*\(\s*action\s*=|finish\s*\()")


def _parse(text: str) -> Action | Invalid:
    found = _find_call(text)
    if isinstance(found, Invalid):
        return found
    start, in_answer = found
    end, source, open_quote_at = _scan_call(text, start)
    if end is None:
        if len(text) - start > MAX_ACTION_CHARS:
            return Invalid(
                f"the action is not closed within {MAX_ACTION_CHARS} characters: "
                "unbalanced quotes or brackets, or an over-long text"
            )
        region = text[start:]
        if in_answer and "</answer>" in region:
            region = region[: region.rfind("</answer>")]
        region = region.rstrip(" \t\r\n`")
        repaired = _repair_free_text(region)
        if repaired is not None:
            return repaired
        if open_quote_at is not None:
            return Invalid(f"unbalanced quotes: the string {_snippet(text[open_quote_at:], 40)} is never closed")
        return Invalid(f"unbalanced brackets: {_snippet(region, 40)} is never closed with ')'")
    rest = text[end:]
    if _CALL_START.search(rest) or "<answer>" in rest:
        return Invalid("more than one action in one turn: give exactly one do(...) or finish(...)")
    call = _read_call(source)
    if isinstance(call, Invalid):
        repaired = _repair_free_text(text[start:end])
        return call if repaired is None else repaired
    return _build(*call)


def _find_call(text: str) -> tuple[int, bool] | Invalid:
    """Where the action call starts, and whether it is inside an <answer> block."""
    lead = len(text) - len(text.lstrip())
    if _CALL_START.match(text, lead):
        # Output that starts with the call (format_action's, for one) is read as it is, so its
        # strings may hold "<answer>" or "</think>" freely.
        return lead, False
    pos = 0
    think_open = text.startswith("<think>", lead)
    think_closed = text.find("</think>")
    if think_closed >= 0:
        pos = think_closed + len("</think>")
        mention = None if think_open else _CALL_START.search(text, 0, think_closed)
        if mention is not None and (_scan_call(text, mention.start())[0] or 0) > think_closed:
            pos = 0  # a bare "</think>" inside the call's own string ("Action: do(... text="</think>")")
    elif think_open:
        pos = lead + len("<think>")
    call = _CALL_START.search(text, pos)
    answer = text.find("<answer>", pos)
    if answer >= 0 and (call is None or answer < call.start()):
        body_start = answer + len("<answer>")
        call = _CALL_START.search(text, body_start)
        if call is None:
            body_end = text.find("</answer>", body_start)
            body = text[body_start : body_end if body_end >= 0 else len(text)].strip()
            return Invalid(f"the <answer> block holds no do(action=...) or finish(message=...) call: {_snippet(body)}")
        return call.start(), True
    if call is not None:
        return call.start(), False
    if not text.strip():
        return Invalid('empty output: expected an action like do(action="Tap", element=[500, 320])')
    if think_open and think_closed < 0:
        return Invalid("the output ended inside <think> (no </think>) without an action")
    if "action_type" in text:
        return Invalid("this looks like an android_world JSON action; parse it with parse_json(text, size)")
    return Invalid(
        'no action found: expected do(action="...", ...) or finish(message="..."); '
        f"the output starts {_snippet(text.strip())}"
    )


# Model output is parsed as this pseudo-file, and Python's warnings about its oddities (invalid
# escapes, `1if`) are silenced: they are the model's problem, reported through Invalid reasons.
_SOURCE_NAME = "<droidrl action>"


def _ast_parse(source: str) -> ast.Expression:
    """ast.parse of model output with Python's syntax warnings about it silenced.

    The filter is (re)installed on each call because test runners, Ray workers and `-W` options reset
    the process's filters after import or put others first; catch_warnings() is avoided since it is not thread-safe.
    """
    first = warnings.filters[0] if warnings.filters else None
    if not (first and first[0] == "ignore" and first[3] is not None and first[3].pattern == _SOURCE_NAME):
        warnings.filterwarnings("ignore", module=_SOURCE_NAME)  # first in the list, so it wins
    return ast.parse(source, filename=_SOURCE_NAME, mode="eval")


def _literal_source(source: str) -> object:
    """The value of a Python literal written in model output (ast, never eval)."""
    return ast.literal_eval(_ast_parse(source).body)


# Raw characters that cannot stand in a Python string literal -> their escapes.
_RAW_IN_STRING = {"\n": "\\n", "\r": "\\r", "\x00": "\\x00"}
_ESCAPED_RAW = {"\n": "n", "\r": "r", "\x00": "x00"}  # the same after a backslash
_ESCAPE_CHARS = set("\\'\"abfnrtvxNuU01234567")


def _escape_pair(nxt: str) -> str:
    """A backslash and the character after it, inside a string, as Python source."""
    if nxt in _ESCAPED_RAW:
        return "\\" + _ESCAPED_RAW[nxt]
    if nxt not in _ESCAPE_CHARS:
        # An unknown escape such as `\c` means a backslash and `c` (as Python reads it), spelt out
        # so that ast does not warn.
        return "\\\\" + nxt
    return "\\" + nxt


def _scan_call(text: str, start: int) -> tuple[int | None, str, int | None]:
    """Find the `)` that closes the call starting at `start`, respecting strings.

    Returns (index after it or None, the call as Python source, where an unclosed string opened).
    The source has raw newlines inside strings escaped and leading zeros of numbers dropped.
    """
    out: list[str] = []
    depth = 0
    quote = ""
    quote_at = 0
    i = start
    limit = min(len(text), start + MAX_ACTION_CHARS)
    while i < limit:
        ch = text[i]
        if quote:
            if ch == "\\" and i + 1 < limit:
                out.append(_escape_pair(text[i + 1]))
                i += 2
                continue
            if ch == quote:
                quote = ""
            out.append(_RAW_IN_STRING.get(ch, ch))
        elif ch in "\"'":
            quote, quote_at = ch, i
            out.append(ch)
        elif ch in "([{":
            depth += 1
            out.append(ch)
        elif ch in ")]}":
            depth -= 1
            out.append(ch)
            if depth <= 0:
                return i + 1, "".join(out), None
        elif ch == "0" and (i == start or not (text[i - 1].isalnum() or text[i - 1] in "._")):
            # Leading zeros: `050` is a syntax error in Python 3; MobileRL strips them too.
            while i + 1 < limit and text[i] == "0" and text[i + 1] in _DIGITS:
                i += 1
            out.append(text[i])
        else:
            out.append(ch)
        i += 1
    return None, "".join(out), quote_at if quote else None


_DIGITS = "0123456789"


def _read_call(source: str) -> tuple[str, dict[str, Any]] | Invalid:
    """The call's name and its keyword arguments as Python values, via ast (never eval)."""
    try:
        tree = _ast_parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return Invalid(f"malformed action ({_snippet(message, 120, quote=False)}): {_snippet(source)}")
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        return Invalid(f"malformed action: expected one call like do(...) or finish(...); got {_snippet(source)}")
    name = call.func.id
    if call.args:
        usage = 'finish(message="...")' if name == "finish" else 'do(action="Tap", element=[x, y])'
        return Invalid(f"{name}() takes keyword arguments only, like {usage}")
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            return Invalid(f"{name}() does not take **arguments")
        if keyword.arg in kwargs:
            return Invalid(f"{name}() is given {keyword.arg}= twice")
        try:
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            written = ast.get_source_segment(source, keyword.value) or "?"
            return Invalid(f"{keyword.arg}= must be a literal (number, quoted string or list); got {_snippet(written)}")
    return name, kwargs


# The argument of each action that is free text, which the unescaped-quote repair may rebuild.
_FREE_TEXT_KEY = {"Type": "text", "Note": "message", "Call_API": "instruction", "Take_over": "message"}
_FREE_TEXT_START = {
    key: re.compile(rf"(?<![A-Za-z0-9_]){key}\s*=\s*([\"'])") for key in ("text", "message", "instruction")
}
_ACTION_NAME = re.compile(r"(?<![A-Za-z0-9_])action\s*=\s*([\"'])([^\"'\n]{0,40})\1")


def _repair_free_text(region: str) -> Action | Invalid | None:
    """Re-read a call whose last argument is free text with unescaped quotes, or None if it is not."""
    region = region.rstrip()
    if not region.endswith(")"):
        return None
    body = region[:-1].rstrip()
    if not body or body[-1] not in "\"'":
        return None
    if region.startswith("finish"):
        key = "message"
    else:
        named = _ACTION_NAME.search(body)
        canonical = _ACTION_ALIASES.get(_name_key(named.group(2))) if named else None
        key = _FREE_TEXT_KEY.get(canonical or "")
        if key is None:
            return None
    opening = _FREE_TEXT_START[key].search(body)
    if opening is None or opening.group(1) != body[-1] or opening.end() > len(body) - 1:
        return None
    quote = body[-1]
    raw = body[opening.end() : len(body) - 1]
    head = body[: opening.start(1)] + quote + quote + ")"
    end, source, _ = _scan_call(head, 0)
    if end != len(head):
        return None
    call = _read_call(source)
    if isinstance(call, Invalid):
        return None
    name, kwargs = call
    kwargs[key] = _loose_string(raw, quote)
    return _build(name, kwargs)


def _loose_string(raw: str, quote: str) -> str:
    """The value of a string literal whose inner `quote`s were left unescaped; verbatim if hopeless."""
    out: list[str] = []
    escaped = False
    for ch in raw:
        if escaped:
            out.append(_escape_pair(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == quote:
            out.append("\\" + ch)
        else:
            out.append(_RAW_IN_STRING.get(ch, ch))
    if escaped:
        out.append("\\\\")  # a trailing lone backslash is a backslash
    try:
        value = _literal_source(quote + "".join(out) + quote)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return raw
    return value if isinstance(value, str) else raw


# ---------------------------------------------------------------------------------------------
# From (name, arguments) to an Action

# Action names as models write them, keyed by _name_key -> the canonical name.
_ACTION_ALIASES = {
    "tap": "Tap",
    "longpress": "Long Press",
    "doubletap": "Double Tap",
    "swipe": "Swipe",
    "type": "Type",
    "typename": "Type",  # AutoGLM: "type a person's name", handled exactly like Type
    "launch": "Launch",
    "back": "Back",
    "pressback": "Back",  # MobileRL
    "home": "Home",
    "presshome": "Home",
    "enter": "Enter",
    "pressenter": "Enter",
    "wait": "Wait",
    "note": "Note",
    "callapi": "Call_API",
    "takeover": "Take_over",
    "interact": "Interact",
    "finish": "finish",
}

_USAGE = {
    "Tap": 'do(action="Tap", element=[x, y])',
    "Long Press": 'do(action="Long Press", element=[x, y])',
    "Double Tap": 'do(action="Double Tap", element=[x, y])',
    "Swipe": 'do(action="Swipe", start=[x1, y1], end=[x2, y2])',
    "Type": 'do(action="Type", text="...")',
    "Launch": 'do(action="Launch", app="Settings")',
    "Back": 'do(action="Back")',
    "Home": 'do(action="Home")',
    "Enter": 'do(action="Enter")',
    "Wait": 'do(action="Wait", duration="2 seconds")',
    "Note": 'do(action="Note", message="...")',
    "Call_API": 'do(action="Call_API", instruction="...")',
    "finish": 'finish(message="...")',
}


def _name_key(name: str) -> str:
    return "".join(name.split()).replace("_", "").replace("-", "").lower()


def _build(name: str, kwargs: dict[str, Any]) -> Action | Invalid:
    if name == "finish":
        canonical = "finish"
    else:
        action = kwargs.pop("action", None)
        if not isinstance(action, str):
            return Invalid(f'do() needs action="Name" as a quoted string; got action={_snippet(repr(action))}')
        canonical = _ACTION_ALIASES.get(_name_key(action))
        if canonical is None:
            known = ", ".join(known_name for known_name in _USAGE if known_name != "finish")
            return Invalid(f"unknown action {_snippet(action)}; known actions: {known}, and finish(message=...)")
    try:
        return _BUILDERS[canonical](canonical, kwargs)
    except ActionError as exc:
        return Invalid(str(exc))


def _check_args(
    name: str, kwargs: dict[str, Any], required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> None:
    unknown = [key for key in kwargs if key not in required and key not in optional]
    if unknown:
        given = _snippet(", ".join(k + "=" for k in unknown), quote=False)
        raise ActionError(f"{name} does not take {given}; use {_USAGE[name]}")
    missing = [key for key in required if kwargs.get(key) is None]
    if missing:
        raise ActionError(f"{name} is missing {', '.join(k + '=' for k in missing)}; use {_USAGE[name]}")


def _point(value: object, what: str) -> Point:
    """[x, y] or a box [x1, y1, x2, y2] (its centre) on the grid, from a parsed argument."""
    if not isinstance(value, list | tuple):
        raise ActionError(f"{what} must be a list [x, y] or [x1, y1, x2, y2]; got {_snippet(repr(value))}")
    if len(value) not in (2, 4):
        raise ActionError(
            f"{what} must be [x, y] or a box [x1, y1, x2, y2]; got {len(value)} values {_snippet(repr(value))}"
        )
    axes = ("x", "y") if len(value) == 2 else ("x1", "y1", "x2", "y2")
    numbers = [_grid_number(v, what, axis) for v, axis in zip(value, axes, strict=True)]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    return (numbers[0] + numbers[2]) // 2, (numbers[1] + numbers[3]) // 2


def _grid_number(value: object, what: str, axis: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ActionError(f"{what} {axis} must be a number; got {_snippet(repr(value))}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ActionError(f"{what} {axis}={value} is not a finite number")
        value = round(value)
    if not 0 <= value <= GRID_MAX:
        raise ActionError(
            f"{what} {axis}={_snippet(str(value), 20, quote=False)} is outside the 0-{GRID_MAX} grid "
            f"((0, 0) is the top-left corner, ({GRID_MAX}, {GRID_MAX}) the bottom-right)"
        )
    return value


def _build_pointer(name: str, kwargs: dict[str, Any]) -> Action:
    optional = ("message",) if name == "Tap" else ()  # AutoGLM's sensitive-tap note; nobody confirms
    _check_args(name, kwargs, required=("element",), optional=optional)
    return _POINTER_ACTIONS[name](_point(kwargs["element"], f"{name} element"))


_POINTER_ACTIONS: dict[str, Callable[[Point], Action]] = {
    "Tap": Tap,
    "Long Press": LongPress,
    "Double Tap": DoubleTap,
}


def _build_swipe(name: str, kwargs: dict[str, Any]) -> Action:
    if "start" in kwargs or "end" in kwargs:
        _check_args(name, kwargs, required=("start", "end"))
        return Swipe(_point(kwargs["start"], "Swipe start"), _point(kwargs["end"], "Swipe end"))
    if "direction" not in kwargs:
        raise ActionError(
            f'Swipe needs start=[x1, y1], end=[x2, y2] (or direction="up|down|left|right"); use {_USAGE["Swipe"]}'
        )
    _check_args(name, kwargs, required=("direction",), optional=("dist", "element"))
    start = CENTER if kwargs.get("element") is None else _point(kwargs["element"], "Swipe element")
    dist = kwargs.get("dist")
    return swipe_in_direction(kwargs["direction"], "medium" if dist is None else dist, start)


def _build_type(name: str, kwargs: dict[str, Any]) -> Action:
    _check_args(name, kwargs, required=("text",), optional=("element", "clear", "enter"))
    focus = None if kwargs.get("element") is None else _point(kwargs["element"], "Type element")
    clear = kwargs.get("clear", True)
    enter = kwargs.get("enter", False)
    return Type(kwargs["text"], focus, clear, enter)


def _build_launch(name: str, kwargs: dict[str, Any]) -> Action:
    _check_args(name, kwargs, required=("app",))
    return Launch(kwargs["app"])


def _build_key(name: str, kwargs: dict[str, Any]) -> Action:
    _check_args(name, kwargs)
    return _KEY_ACTIONS[name]()


_KEY_ACTIONS: dict[str, Callable[[], Action]] = {"Back": Back, "Home": Home, "Enter": Enter}


def _build_wait(name: str, kwargs: dict[str, Any]) -> Action:
    _check_args(name, kwargs, optional=("duration",))
    duration = kwargs.get("duration")
    return Wait(DEFAULT_WAIT_SECONDS if duration is None else _seconds(duration))


_SECOND_UNITS = ("seconds", "second", "secs", "sec", "s")


def _seconds(duration: object) -> float:
    """2, 2.5, "2", "2s", "2 seconds", "1 second" -> seconds."""
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration)
    if isinstance(duration, str) and len(duration) <= 40:
        number = duration.strip().lower()
        for unit in _SECOND_UNITS:
            if number.endswith(unit):
                number = number.removesuffix(unit).strip()
                break
        try:
            return float(number)
        except ValueError:
            pass
    raise ActionError(
        f'Wait duration must be a number of seconds like duration="2 seconds"; got {_snippet(repr(duration))}'
    )


def _build_note(name: str, kwargs: dict[str, Any]) -> Action:
    _check_args(name, kwargs, optional=("message",))
    message = kwargs.get("message")
    return Note("" if message is None else message)


def _build_call_api(name: str, kwargs: dict[str, Any]) -> Action:
    _check_args(name, kwargs, required=("instruction",))
    return CallApi(kwargs["instruction"])


def _build_finish(name: str, kwargs: dict[str, Any]) -> Action:
    _check_args(name, kwargs, optional=("message",))
    message = kwargs.get("message")
    if message is None:
        return Finish("")
    if isinstance(message, int | float) and not isinstance(message, bool):
        return Finish(str(message))  # query answers such as finish(message=42)
    return Finish(message)


def _refuse_takeover(name: str, kwargs: dict[str, Any]) -> Action:
    raise ActionError(
        "Take_over asks a human to take over the phone (login, captcha); droidrl episodes have no "
        "human, so it is not executed: continue with the screen as it is, or finish(message=...)"
    )


def _refuse_interact(name: str, kwargs: dict[str, Any]) -> Action:
    raise ActionError(
        "Interact asks the user to choose between options; droidrl episodes have no user to ask, so choose one yourself"
    )


_BUILDERS: dict[str, Callable[[str, dict[str, Any]], Action]] = {
    "Tap": _build_pointer,
    "Long Press": _build_pointer,
    "Double Tap": _build_pointer,
    "Swipe": _build_swipe,
    "Type": _build_type,
    "Launch": _build_launch,
    "Back": _build_key,
    "Home": _build_key,
    "Enter": _build_key,
    "Wait": _build_wait,
    "Note": _build_note,
    "Call_API": _build_call_api,
    "Take_over": _refuse_takeover,
    "Interact": _refuse_interact,
    "finish": _build_finish,
}


# ---------------------------------------------------------------------------------------------
# The AutoGLM / MobileRL language: format


def format_action(action: Action) -> str:
    """The canonical AutoGLM string for `action`; parse(format_action(a)) == a for every action.

    Strings are double-quoted Python literals: backslash, quote and non-printable characters are
    escaped, printable unicode is kept. Type's non-default options come before text=, so the free
    text stays the last argument as in AutoGLM's prompt.
    """
    formatter = _FORMATTERS.get(type(action))
    if formatter is None:
        raise ActionError(f"cannot format {action!r}: not an Action")
    return formatter(action)


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_QUOTE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _grid(point: Point) -> str:
    return f"[{point[0]}, {point[1]}]"


def _format_type(action: Type) -> str:
    options = ""
    if action.focus is not None:
        options += f", element={_grid(action.focus)}"
    if not action.clear:
        options += ", clear=False"
    if action.enter:
        options += ", enter=True"
    return f'do(action="Type"{options}, text={_quote(action.text)})'


def _format_seconds(seconds: float) -> str:
    number = str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))
    return f'"{number} seconds"'


_FORMATTERS: dict[type, Callable[[Any], str]] = {
    Tap: lambda a: f'do(action="Tap", element={_grid(a.point)})',
    LongPress: lambda a: f'do(action="Long Press", element={_grid(a.point)})',
    DoubleTap: lambda a: f'do(action="Double Tap", element={_grid(a.point)})',
    Swipe: lambda a: f'do(action="Swipe", start={_grid(a.start)}, end={_grid(a.end)})',
    Type: _format_type,
    Launch: lambda a: f'do(action="Launch", app={_quote(a.app)})',
    Back: lambda a: 'do(action="Back")',
    Home: lambda a: 'do(action="Home")',
    Enter: lambda a: 'do(action="Enter")',
    Wait: lambda a: f'do(action="Wait", duration={_format_seconds(a.seconds)})',
    Note: lambda a: f'do(action="Note", message={_quote(a.message)})',
    CallApi: lambda a: f'do(action="Call_API", instruction={_quote(a.instruction)})',
    Finish: lambda a: f"finish(message={_quote(a.message)})",
}


# ---------------------------------------------------------------------------------------------
# android_world JSON actions


def parse_json(text: str, size: tuple[int, int], elements: Sequence[Box] | None = None) -> Action | Invalid:
    """Parse an android_world JSON action (as its M3A/T3A agents emit) into an Action. Never raises.

    The first `{...}` after any `</think>`, `<answer>` or `Action:` is read with json, then as a
    Python literal (android_world's extract_json accepts both). Its keys are android_world's
    JSONAction fields; an unknown key is Invalid, a key another action type uses is ignored.

    Coordinates: android_world's x/y are screen pixels; they must lie on the `size` = (width,
    height) screen and are converted with to_grid, so every action lives on the 0-999 grid.
    `index` picks `elements[index]`, a pixel box (x1, y1, x2, y2), and uses its centre; without
    `elements` an index is Invalid.

      click / long_press / double_tap: index or x, y -> Tap / LongPress / DoubleTap
      input_text: text, optional index or x, y, clear_text -> Type(text, focus, clear=clear_text,
        enter=True): android_world taps the field, optionally clears it, types and presses Enter
      keyboard_enter / navigate_home / navigate_back -> Enter / Home / Back
      open_app: app_name -> Launch;  wait -> Wait(1 s)
      scroll: direction, optional index -> Swipe from the centre of the element (or the screen)
        to its edge OPPOSITE to `direction`: "scroll down" drags the finger up, moving the content
        up to show what is below (android_world's actuation.py).
      swipe: direction -> Swipe across the whole screen exactly as android_world does: down and
        up drag top->bottom and bottom->top, but left drags left->right and right right->left.
      status: goal_status complete -> Finish(""), infeasible -> Finish("infeasible")
      answer: text -> Finish(text) (android_world keeps going until a status action; here the
        answer ends the episode).
    """
    width, height = size
    _check_size(width, height)
    if not isinstance(text, str):
        return Invalid(f"expected the model's output as a string, got {type(text).__name__}")
    try:
        return _parse_json(text, (width, height), elements)
    except Exception as exc:  # a parser bug must cost one invalid step, never a rollout worker
        return Invalid(f"internal parser error ({type(exc).__name__}: {_snippet(str(exc))}); please report it")


_JSON_KEYS = (
    "action_type",
    "index",
    "x",
    "y",
    "text",
    "direction",
    "goal_status",
    "app_name",
    "keycode",
    "clear_text",
)


def _parse_json(text: str, size: tuple[int, int], elements: Sequence[Box] | None) -> Action | Invalid:
    pos = 0
    for marker in ("</think>", "<answer>", "Action:"):
        found = text.find(marker, pos)
        if found >= 0:
            pos = found + len(marker)
    brace = text.find("{", pos)
    if brace < 0:
        return Invalid('no JSON action found: expected {"action_type": ...}')
    end, source, _ = _scan_call(text, brace)
    if end is None:
        return Invalid(f"unbalanced JSON: {_snippet(text[brace:], 40)} is never closed with '}}'")
    obj = _load_object(source)
    if obj is None:
        return Invalid(f"malformed JSON action: {_snippet(source)}")
    if not isinstance(obj, dict):
        return Invalid(f"a JSON action must be an object {{...}}; got {_snippet(source)}")
    unknown = [key for key in obj if key not in _JSON_KEYS]
    if unknown:
        return Invalid(
            f"unknown JSON action key(s) {_snippet(', '.join(map(str, unknown)))}; known: {', '.join(_JSON_KEYS)}"
        )
    fields = {key: value for key, value in obj.items() if value is not None}
    action_type = fields.get("action_type")
    if not isinstance(action_type, str):
        return Invalid('a JSON action needs "action_type" as a string, like {"action_type": "click", "index": 3}')
    builder = _JSON_BUILDERS.get(action_type)
    if builder is None:
        return Invalid(f"unknown action_type {_snippet(action_type)}; known: {', '.join(_JSON_BUILDERS)}")
    try:
        return builder(action_type, fields, size, elements)
    except ActionError as exc:
        return Invalid(str(exc))


def _load_object(source: str) -> object | None:
    try:
        return json.loads(source)
    except (ValueError, RecursionError):
        pass
    try:
        return _literal_source(source)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _json_box(index: object, size: tuple[int, int], elements: Sequence[Box] | None) -> Box:
    """elements[index] clamped to the screen, as android_world's scroll does."""
    if isinstance(index, str) and index.strip().isdecimal() and len(index) < 10:
        index = int(index)  # android_world's JSONAction does int(index)
    if isinstance(index, bool) or not isinstance(index, int):
        raise ActionError(f"index must be an element number; got {_snippet(repr(index))}")
    if elements is None:
        raise ActionError("index needs the UI element list, which this environment does not provide; use x and y")
    if not 0 <= index < len(elements):
        raise ActionError(f"element index {index} is out of range: the screen lists {len(elements)} elements")
    width, height = size
    x1, y1, x2, y2 = (int(v) for v in elements[index])
    return max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)


def _pixel_to_grid(px: int, py: int, size: tuple[int, int]) -> Point:
    width, height = size
    return to_grid((_clamp(px, 0, width - 1), _clamp(py, 0, height - 1)), width, height)


def _json_point(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Point | None:
    """Where a click/long_press/input_text acts: from index or x, y; None when neither is given."""
    has_xy = "x" in fields or "y" in fields
    if "index" in fields and has_xy:
        raise ActionError(f"{action_type} takes either index or x and y, not both")
    if "index" in fields:
        x1, y1, x2, y2 = _json_box(fields["index"], size, elements)
        return _pixel_to_grid((x1 + x2) // 2, (y1 + y2) // 2, size)
    if not has_xy:
        return None
    if "x" not in fields or "y" not in fields:
        raise ActionError(f"{action_type} needs both x and y (screen pixels)")
    width, height = size
    x, y = fields["x"], fields["y"]
    for axis, value in (("x", x), ("y", y)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ActionError(f"{action_type} {axis} must be a number of pixels; got {_snippet(repr(value))}")
    if not (0 <= x < width and 0 <= y < height):
        raise ActionError(
            f"{action_type} at ({_snippet(str(x), 20, quote=False)}, {_snippet(str(y), 20, quote=False)}) "
            f"is outside the {width}x{height} screen"
        )
    return to_grid((int(x), int(y)), width, height)


def _json_pointer(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Action:
    point = _json_point(action_type, fields, size, elements)
    if point is None:
        raise ActionError(f'{action_type} needs "index" or "x" and "y"')
    return _JSON_POINTER_ACTIONS[action_type](point)


_JSON_POINTER_ACTIONS: dict[str, Callable[[Point], Action]] = {
    "click": Tap,
    "long_press": LongPress,
    "double_tap": DoubleTap,
}


def _json_text(action_type: str, fields: dict[str, Any]) -> str:
    text = fields.get("text")
    if text is None or text == "":
        raise ActionError(f'{action_type} needs a non-empty "text"')
    return text if isinstance(text, str) else str(text)  # android_world's JSONAction does str(text)


def _json_input_text(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Action:
    clear = fields.get("clear_text", False)
    if not isinstance(clear, bool):
        raise ActionError(f"clear_text must be true or false; got {_snippet(repr(clear))}")
    focus = _json_point(action_type, fields, size, elements)
    return Type(_json_text(action_type, fields), focus=focus, clear=clear, enter=True)


def _json_direction(action_type: str, fields: dict[str, Any]) -> str:
    direction = fields.get("direction")
    if direction not in ("up", "down", "left", "right"):
        raise ActionError(f'{action_type} needs "direction": up, down, left or right; got {_snippet(repr(direction))}')
    return direction


def _json_scroll(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Action:
    direction = _json_direction(action_type, fields)
    width, height = size
    if "index" in fields:
        x1, y1, x2, y2 = _json_box(fields["index"], size, elements)
    else:
        x1, y1, x2, y2 = 0, 0, width, height
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    # The finger moves against the scroll direction, from the centre to the far edge.
    end = {"down": (cx, y1), "up": (cx, y2), "right": (x1, cy), "left": (x2, cy)}[direction]
    return Swipe(_pixel_to_grid(cx, cy, size), _pixel_to_grid(*end, size))


def _json_swipe(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Action:
    direction = _json_direction(action_type, fields)
    width, height = size
    mx, my = width // 2, height // 2
    # android_world's actuation.py, horizontal directions included as it has them.
    start, end = {
        "down": ((mx, 0), (mx, height)),
        "up": ((mx, height), (mx, 0)),
        "left": ((0, my), (width, my)),
        "right": ((width, my), (0, my)),
    }[direction]
    return Swipe(_pixel_to_grid(*start, size), _pixel_to_grid(*end, size))


def _json_open_app(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Action:
    app = fields.get("app_name")
    if not isinstance(app, str) or not app.strip():
        raise ActionError('open_app needs "app_name", like {"action_type": "open_app", "app_name": "Clock"}')
    return Launch(app)


def _json_status(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Action:
    status = fields.get("goal_status")
    if status == "complete":
        return Finish("")
    if status == "infeasible":
        return Finish("infeasible")
    raise ActionError(f'status needs "goal_status": complete or infeasible; got {_snippet(repr(status))}')


def _json_answer(
    action_type: str, fields: dict[str, Any], size: tuple[int, int], elements: Sequence[Box] | None
) -> Action:
    return Finish(_json_text(action_type, fields))


_JSON_BUILDERS: dict[str, Callable[[str, dict[str, Any], tuple[int, int], Sequence[Box] | None], Action]] = {
    "click": _json_pointer,
    "long_press": _json_pointer,
    "double_tap": _json_pointer,
    "input_text": _json_input_text,
    "keyboard_enter": lambda *_: Enter(),
    "navigate_home": lambda *_: Home(),
    "navigate_back": lambda *_: Back(),
    "scroll": _json_scroll,
    "swipe": _json_swipe,
    "open_app": _json_open_app,
    "wait": lambda *_: Wait(DEFAULT_WAIT_SECONDS),
    "status": _json_status,
    "answer": _json_answer,
}


# ---------------------------------------------------------------------------------------------


def _snippet(text: str, limit: int = 60, quote: bool = True) -> str:
    """A short, printable excerpt of `text` for an Invalid reason."""
    short = text[:limit]
    shown = repr(short) if quote else short
    return shown + ("..." if len(text) > limit else "")
