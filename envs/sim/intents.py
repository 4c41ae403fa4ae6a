"""Intents on the simulated phone: `am`'s intent arguments, Intent.toString, and resolution by intent filters.

Follows Android 13's android.content.Intent (parseCommandArgs, toShortString), android.net.Uri
(toSafeString), android.content.IntentFilter (match) and PackageManager's activity resolution
(MATCH_DEFAULT_ONLY), over the installed apps' filter tables (envs/sim/app.py `IntentFilter`).
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from droidrl.envs.sim import packages
from droidrl.envs.sim.app import DEFAULT, App, IntentFilter

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

MAIN = "android.intent.action.MAIN"
VIEW = "android.intent.action.VIEW"
LAUNCHER = "android.intent.category.LAUNCHER"
HOME = "android.intent.category.HOME"
FLAG_ACTIVITY_NEW_TASK = 0x10000000
FLAG_RECEIVER_FROM_SHELL = 0x400000


class JavaException(Exception):
    """A Java exception thrown while parsing a command; the shell prints it as ShellCommand does."""

    def __init__(self, cls: str, message: str, frame: str = "android.content.Intent.parseCommandArgs") -> None:
        super().__init__(message)
        self.cls, self.message, self.frame = cls, message, frame


def _illegal(message: str) -> JavaException:
    return JavaException("java.lang.IllegalArgumentException", message)


# ==== Intent ============================================================================================


def _java_hash(text: str) -> int:
    """String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


@dataclass
class Intent:
    action: str | None = None
    data: str | None = None
    type: str | None = None
    identifier: str | None = None
    categories: list[str] = field(default_factory=list)
    flags: int = 0
    package: str | None = None
    component: tuple[str, str] | None = None  # (package, full class name), as ComponentName holds it
    extras: dict[str, Any] | None = None
    selector: Intent | None = None

    def add_category(self, category: str) -> None:
        if category not in self.categories:
            self.categories.append(category)

    def put_extra(self, key: str, value: Any) -> None:
        if self.extras is None:
            self.extras = {}
        self.extras[key] = value

    def short_string(self) -> str:
        """Intent.toShortString(secure=true, comp=true, extras=true, clip=false)."""
        parts = []
        if self.action is not None:
            parts.append(f"act={self.action}")
        if self.categories:
            # mCategories is an ArraySet: it iterates in the order of the strings' hash codes.
            ordered = sorted(self.categories, key=_java_hash)
            parts.append(f"cat=[{','.join(ordered)}]")
        if self.data is not None:
            parts.append(f"dat={safe_uri(self.data)}")
        if self.type is not None:
            parts.append(f"typ={self.type}")
        if self.identifier is not None:
            parts.append(f"id={self.identifier}")
        if self.flags:
            parts.append(f"flg=0x{self.flags:x}")
        if self.package is not None:
            parts.append(f"pkg={self.package}")
        if self.component is not None:
            parts.append(f"cmp={flatten_short(*self.component)}")
        if self.extras is not None:
            parts.append("(has extras)")
        text = " ".join(parts)
        if self.selector is not None:  # sic: no opening brace, and the space comes even when nothing precedes
            text += f" sel={self.selector.short_string()}}}"
        return text

    def __str__(self) -> str:
        return "Intent { " + self.short_string() + " }"


def flatten_short(package: str, cls: str) -> str:
    """ComponentName.flattenToShortString: the class relative to the package where it can be."""
    if cls.startswith(package + ".") and len(cls) > len(package) + 1:
        cls = cls[len(package) :]
    return f"{package}/{cls}"


def unflatten(text: str) -> tuple[str, str] | None:
    """ComponentName.unflattenFromString: `pkg/cls` (a leading '.' is relative to pkg), else None."""
    sep = text.find("/")
    if sep < 0 or sep + 1 >= len(text):
        return None
    package, cls = text[:sep], text[sep + 1 :]
    if cls.startswith("."):
        cls = package + cls
    return package, cls


# ==== Uri ==================================================================================================

_SENSITIVE_SCHEMES = ("tel", "sip", "sms", "smsto", "mailto", "nfc")
_WEB_SCHEMES = ("http", "https", "ftp", "rtsp")


def uri_scheme(uri: str) -> str | None:
    sep = uri.find(":")
    return uri[:sep] if sep >= 0 else None


def uri_ssp(uri: str) -> str:
    """The scheme-specific part, decoded, without the fragment."""
    sep = uri.find(":")
    rest = uri[sep + 1 :]
    frag = rest.find("#")
    return urllib.parse.unquote(rest if frag < 0 else rest[:frag])


def uri_authority(uri: str) -> str | None:
    sep = uri.find(":")
    if uri[sep + 1 : sep + 3] != "//":
        return None
    return re.split(r"[/?#]", uri[sep + 3 :], maxsplit=1)[0]


def uri_path(uri: str) -> str:
    """The decoded path of a hierarchical URI (`content://auth/a/b?q` -> `/a/b`)."""
    sep = uri.find(":")
    rest = uri[sep + 1 :]
    if rest.startswith("//"):
        slash = re.search(r"[/?#]", rest[2:])
        rest = rest[2 + slash.start() :] if slash else ""
    return urllib.parse.unquote(re.split(r"[?#]", rest, maxsplit=1)[0])


def safe_uri(uri: str) -> str:
    """Uri.toSafeString (Android 13): no personal data from tel:/sms:/mailto:, no paths of web URLs."""
    scheme = uri_scheme(uri)
    ssp = uri_ssp(uri) if scheme is not None else urllib.parse.unquote(uri.split("#", 1)[0])
    if scheme is not None and scheme.lower() in _SENSITIVE_SCHEMES:
        return scheme + ":" + "".join(c if c in "-@." else "x" for c in ssp)
    if scheme is not None and scheme.lower() in _WEB_SCHEMES:
        authority = uri_authority(uri) or ""
        host_port = authority.rsplit("@", 1)[-1]
        ssp = f"//{host_port}/..."
    return f"{scheme}:{ssp}" if scheme is not None else ssp


# ==== Java number parsing ==================================================================================


def _number_error(text: str, radix: int = 10) -> JavaException:
    suffix = "" if radix == 10 else f" under radix {radix}"
    return JavaException("java.lang.NumberFormatException", f'For input string: "{text}"{suffix}')


def _parse_int(text: str, radix: int = 10, bits: int = 32) -> int:
    """Integer.parseInt / Long.parseLong."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:radix]
    body = text[1:] if text[:1] in "+-" else text
    if not body or any(c.lower() not in digits for c in body):
        raise _number_error(text, radix)
    value = int(text, radix)
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise _number_error(text, radix)
    return value


def java_decode(text: str, bits: int = 32) -> int:
    """Integer.decode: an optional sign, then 0x/0X/# hex, a leading-0 octal, or decimal."""
    if not text:
        raise JavaException("java.lang.NumberFormatException", "Zero length string")
    index, negative = 0, False
    if text[0] in "+-":
        negative, index = text[0] == "-", 1
    radix = 10
    if text.startswith(("0x", "0X"), index):
        index, radix = index + 2, 16
    elif text.startswith("#", index):
        index, radix = index + 1, 16
    elif text.startswith("0", index) and len(text) > index + 1:
        index, radix = index + 1, 8
    rest = text[index:]
    if rest.startswith(("-", "+")):
        raise JavaException("java.lang.NumberFormatException", "Sign character in wrong position")
    return _parse_int(("-" if negative else "") + rest, radix, bits)


_JAVA_FLOAT = re.compile(r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)")


def java_float(text: str) -> float:
    """Float.valueOf / Double.valueOf (decimal forms; Java trims surrounding whitespace)."""
    stripped = text.strip()
    if not stripped:
        raise JavaException("java.lang.NumberFormatException", "empty String")
    if not _JAVA_FLOAT.fullmatch(stripped):
        raise JavaException("java.lang.NumberFormatException", f'For input string: "{text}"')
    return float(stripped.rstrip("fFdD").replace("Infinity", "inf"))


def _java_bool(text: str) -> bool:
    value = text.lower()
    if value in ("true", "t"):
        return True
    if value in ("false", "f"):
        return False
    try:
        return java_decode(value) != 0
    except JavaException:
        raise _illegal(f"Invalid boolean value: {value}") from None


# ==== `am` intent arguments ================================================================================


class ShellArgs:
    """android.os.ShellCommand's option reader (getNextOption / getNextArg / getNextArgRequired)."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.pos = 0
        self.cur_data: str | None = None  # the rest of a short option written together with its value

    def next_option(self) -> str | None:
        if self.cur_data is not None:
            raise _illegal(f'No argument expected after "{self.args[self.pos - 1]}"')
        if self.pos >= len(self.args) or not self.args[self.pos].startswith("-"):
            return None
        arg = self.args[self.pos]
        self.pos += 1
        if arg == "--":
            return None
        if len(arg) > 2 and arg[1] != "-":
            self.cur_data = arg[2:]
            return arg[:2]
        return arg

    def next_arg(self) -> str | None:
        if self.cur_data is not None:
            arg, self.cur_data = self.cur_data, None
            return arg
        if self.pos >= len(self.args):
            return None
        self.pos += 1
        return self.args[self.pos - 1]

    def required(self) -> str:
        arg = self.next_arg()
        if arg is None:
            raise _illegal(f'Argument expected after "{self.args[self.pos - 1]}"')
        return arg


# Intent flags set by `am` options (Intent.parseCommandArgs).
_FLAG_OPTIONS = {
    "--grant-read-uri-permission": 0x1,
    "--grant-write-uri-permission": 0x2,
    "--grant-persistable-uri-permission": 0x40,
    "--grant-prefix-uri-permission": 0x80,
    "--exclude-stopped-packages": 0x10,
    "--include-stopped-packages": 0x20,
    "--debug-log-resolution": 0x8,
    "--activity-brought-to-front": 0x400000,
    "--activity-clear-top": 0x4000000,
    "--activity-clear-when-task-reset": 0x80000,
    "--activity-exclude-from-recents": 0x800000,
    "--activity-launched-from-history": 0x100000,
    "--activity-multiple-task": 0x8000000,
    "--activity-no-animation": 0x10000,
    "--activity-no-history": 0x40000000,
    "--activity-no-user-action": 0x40000,
    "--activity-previous-is-top": 0x1000000,
    "--activity-reorder-to-front": 0x20000,
    "--activity-reset-task-if-needed": 0x200000,
    "--activity-single-top": 0x20000000,
    "--activity-clear-task": 0x8000,
    "--activity-task-on-home": 0x4000,
    "--activity-match-external": 0x800,
    "--receiver-registered-only": 0x40000000,
    "--receiver-replace-pending": 0x20000000,
    "--receiver-foreground": 0x10000000,
    "--receiver-no-abort": 0x8000000,
    "--receiver-include-background": 0x1000000,
}


def _split_array(value: str) -> list[str]:
    """`--esa`: split on commas not escaped with a backslash (the backslashes stay, as in Java)."""
    return re.split(r"(?<!\\),", value)


def _read_extra(opt: str, cmd: ShellArgs) -> tuple[str, Any] | None:
    """One typed extra (`--ei KEY VALUE` ...), or None when `opt` is no extra option."""
    key = cmd.required() if opt in _EXTRA_PARSERS or opt == "--esn" else None
    if key is None:
        return None
    if opt == "--esn":
        return key, None
    return key, _EXTRA_PARSERS[opt](cmd.required())


def _component_extra(value: str) -> str:
    component = unflatten(value)
    if component is None:
        raise _illegal(f"Bad component name: {value}")
    return flatten_short(*component)


_EXTRA_PARSERS: dict[str, Callable[[str], Any]] = {
    "-e": str,
    "--es": str,
    "--ei": java_decode,
    "--eu": str,
    "--ecn": _component_extra,
    "--eia": lambda v: [java_decode(x) for x in v.split(",")],
    "--eial": lambda v: [java_decode(x) for x in v.split(",")],
    "--el": lambda v: _parse_int(v, 10, 64),
    "--ela": lambda v: [_parse_int(x, 10, 64) for x in v.split(",")],
    "--elal": lambda v: [_parse_int(x, 10, 64) for x in v.split(",")],
    "--ef": java_float,
    "--efa": lambda v: [java_float(x) for x in v.split(",")],
    "--efal": lambda v: [java_float(x) for x in v.split(",")],
    "--ed": java_float,
    "--eda": lambda v: [java_float(x) for x in v.split(",")],
    "--edal": lambda v: [java_float(x) for x in v.split(",")],
    "--esa": _split_array,
    "--esal": _split_array,
    "--ez": _java_bool,
}

OptionHandler = Callable[[str, ShellArgs], bool]


def parse_command_args(cmd: ShellArgs, handle_option: OptionHandler) -> Intent:
    """Intent.parseCommandArgs: intent options, then an optional URI, component or package argument."""
    intent = base = Intent()
    data: str | None = None
    mime: str | None = None
    has_info = False
    while (opt := cmd.next_option()) is not None:
        if opt == "-a":
            intent.action = cmd.required()
        elif opt == "-d":
            data = cmd.required()
        elif opt == "-t":
            mime = cmd.required()
        elif opt == "-i":
            intent.identifier = cmd.required()
        elif opt == "-c":
            intent.add_category(cmd.required())
        elif opt == "-n":
            value = cmd.required()
            component = unflatten(value)
            if component is None:
                raise _illegal(f"Bad component name: {value}")
            intent.component = component
        elif opt == "-p":
            intent.package = cmd.required()
        elif opt == "-f":
            intent.flags = java_decode(cmd.required()) & 0xFFFFFFFF
        elif opt in _FLAG_OPTIONS:
            intent.flags |= _FLAG_OPTIONS[opt]
        elif opt == "--selector":  # later options describe the selector (data and type carry over, as in Java)
            intent.data, intent.type = data, mime
            intent = Intent()
        elif (extra := _read_extra(opt, cmd)) is not None:
            intent.put_extra(*extra)
        elif handle_option(opt, cmd):
            continue
        else:
            raise _illegal(f"Unknown option: {opt}")
        if intent is base:
            has_info = True
    intent.data, intent.type = data, mime
    if intent is not base:
        base.selector = intent
        intent = base
    arg = cmd.next_arg()
    fill: Intent | None = None
    if arg is None:
        if base.selector is not None:
            fill = Intent()
    elif ":" in arg:
        fill = Intent(action=VIEW, data=arg)  # Intent.parseUri of a plain URI: VIEW it
    elif "/" in arg:
        fill = Intent(action=MAIN, categories=[LAUNCHER], component=unflatten(arg))
    else:
        fill = Intent(action=MAIN, categories=[LAUNCHER], package=arg)
    if fill is not None:
        _fill_in(intent, fill)
        has_info = True
    if not has_info:
        raise _illegal("No intent supplied")
    return intent


def _fill_in(intent: Intent, other: Intent) -> None:
    """Intent.fillIn(FILL_IN_COMPONENT): fill gaps from the bare argument's intent (not its categories if -a)."""
    categories = other.categories if intent.action is None else []
    if intent.action is None:
        intent.action = other.action
    if intent.data is None and intent.type is None:
        intent.data, intent.type = other.data, other.type
    if categories and not intent.categories:
        intent.categories = list(categories)
    if intent.package is None and other.package is not None:
        intent.package = other.package
    if other.component is not None:
        intent.component = other.component


# ==== resolution ==========================================================================================


def launcher_filters(app: App, home_package: str) -> list[IntentFilter]:
    """Every launcher app's main activity answers MAIN/LAUNCHER; the home app answers MAIN/HOME."""
    if app.package == home_package:
        return [IntentFilter(app.main_activity, (MAIN,), (HOME, DEFAULT))]
    if not app.launcher:
        return []
    declared = [f for f in app.intent_filters if MAIN in f.actions and LAUNCHER in f.categories]
    return [] if declared else [IntentFilter(app.main_activity, (MAIN,), (LAUNCHER,))]


def _mime_matches(wanted: str | None, types: tuple[str, ...]) -> bool:
    """IntentFilter.findMimeType: exact, `base/*` filters, the `*/*` filter, and `base/*` intents."""
    if wanted is None:
        return False
    if wanted in types:
        return True
    bases = {t[:-2] for t in types if t.endswith("/*")}
    if wanted == "*/*":
        return bool(types)
    if "*" in bases:
        return True
    slash = wanted.find("/")
    if slash > 0:
        if wanted[:slash] in bases:
            return True
        if wanted[slash:] == "/*":
            return any(t.startswith(wanted[: slash + 1]) for t in types)
    return False


def filter_matches(f: IntentFilter, intent: Intent, mime: str | None) -> bool:
    """IntentFilter.match(action, type, scheme, data, categories) >= 0."""
    if intent.action is not None and intent.action not in f.actions:
        return False
    scheme = uri_scheme(intent.data) if intent.data is not None else None
    if not f.schemes and not f.mime_types:
        if mime is not None or intent.data is not None:
            return False
    else:
        if f.schemes:
            if (scheme or "") not in f.schemes:
                return False
            if f.hosts:
                host = (uri_authority(intent.data or "") or "").rsplit("@", 1)[-1].split(":")[0]
                if "*" not in f.hosts and host not in f.hosts:
                    return False
        elif scheme not in (None, "", "content", "file"):
            return False
        if f.mime_types:
            if not _mime_matches(mime, f.mime_types):
                return False
        elif mime is not None:
            return False
    return all(c in f.categories for c in intent.categories)


@dataclass(frozen=True)
class Target:
    package: str
    component: str  # the class name the intent resolved to (an activity or an alias of one)
    activity: str  # the app's activity (its key in App.activities) that shows; "" when there is none
    filter: IntentFilter | None = None  # the filter that matched (None for an explicit component)

    @property
    def match(self) -> int:
        """ResolveInfo.match: IntentFilter's MATCH_CATEGORY_* of what matched, plus MATCH_ADJUSTMENT_NORMAL."""
        f = self.filter
        if f is None:
            return 0
        category = 0x600000 if f.mime_types else 0x300000 if f.hosts else 0x200000 if f.schemes else 0x100000
        return category + 0x8000


def _activity_named(app: App, cls: str) -> str | None:
    """The app activity a full class name opens (the activity itself, or the one an alias stands for)."""
    for name in (*app.activities, *app.aliases):
        if _full(app.package, name) == cls:
            return app.aliases.get(name, name)
    return None


def _full(package: str, name: str) -> str:
    return package + name if name.startswith(".") else name


def query(phone: Phone, intent: Intent, mime: str | None, home_package: str, default_only: bool) -> list[Target]:
    """PackageManager.queryIntentActivities: every installed, enabled activity whose filter matches.

    `default_only` is MATCH_DEFAULT_ONLY, what startActivity uses: filters without CATEGORY_DEFAULT
    (a launcher-only MAIN/LAUNCHER one) then match nothing.
    """
    if intent.component is None and intent.selector is not None:
        intent = intent.selector  # a selector stands in for the intent when resolving (not its type)
    if intent.component is not None:
        package, cls = intent.component
        app = phone.apps.get(package)
        activity = _activity_named(app, cls) if app is not None and packages.available(phone, package) else None
        return [Target(package, cls, activity)] if activity else []
    found: list[Target] = []
    for app in phone.apps.values():
        if intent.package is not None and app.package != intent.package:
            continue
        if not packages.available(phone, app.package):
            continue
        for f in [*launcher_filters(app, home_package), *app.intent_filters]:
            component = _full(app.package, f.activity)
            if default_only and DEFAULT not in f.categories:
                continue
            if filter_matches(f, intent, mime) and all(t.component != component for t in found):
                found.append(Target(app.package, component, app.aliases.get(f.activity, f.activity), f))
    return found


def resolve(phone: Phone, intent: Intent, mime: str | None, home_package: str) -> Target | None:
    """The activity startActivity would launch, or None if nothing matches.

    An explicit component names its class directly (ClassNotFound is a Target with activity ""). An
    implicit intent takes the first match in install order; a real phone would show a chooser if several
    apps matched, which the simulated apps' filters avoid.
    """
    if intent.component is not None:
        found = query(phone, intent, mime, home_package, default_only=True)
        return found[0] if found else Target(intent.component[0], intent.component[1], "")
    found = query(phone, intent, mime, home_package, default_only=True)
    return found[0] if found else None


def deliver(phone: Phone, target: Target, intent: Intent) -> tuple[str, dict[str, Any]]:
    """The screen and its args once the app has read the intent (App.on_intent, default: the extras)."""
    app = phone.apps[target.package]
    if app.on_intent is not None:
        return app.on_intent(target.activity, intent)
    return target.activity, dict(intent.extras or {})


# ==== provider MIME types ==================================================================================

# ContentResolver.getType of the providers' URIs (what `am start` looks up for content: data without -t).
_PROVIDER_TYPES: list[tuple[str, str, str]] = [
    ("contacts", r"/people/?", "vnd.android.cursor.dir/person"),
    ("contacts", r"/people/\d+", "vnd.android.cursor.item/person"),
    ("contacts", r"/phones/?", "vnd.android.cursor.dir/phone"),
    ("contacts", r"/phones/\d+", "vnd.android.cursor.item/phone"),
    ("com.android.contacts", r"/contacts/?", "vnd.android.cursor.dir/contact"),
    ("com.android.contacts", r"/contacts/\d+", "vnd.android.cursor.item/contact"),
    ("com.android.contacts", r"/contacts/lookup/[^/]+(/\d+)?", "vnd.android.cursor.item/contact"),
    ("com.android.contacts", r"/raw_contacts/?", "vnd.android.cursor.dir/raw_contact"),
    ("com.android.contacts", r"/raw_contacts/\d+", "vnd.android.cursor.item/raw_contact"),
    ("com.android.contacts", r"/data/phones/?", "vnd.android.cursor.dir/phone_v2"),
    ("com.android.contacts", r"/data/phones/\d+", "vnd.android.cursor.item/phone_v2"),
    ("com.android.contacts", r"/data/emails/?", "vnd.android.cursor.dir/email_v2"),
    ("com.android.contacts", r"/data/?", "vnd.android.cursor.dir/data"),
    ("com.android.calendar", r"/events/?", "vnd.android.cursor.dir/event"),
    ("com.android.calendar", r"/events/\d+", "vnd.android.cursor.item/event"),
    ("com.android.calendar", r"/calendars/?", "vnd.android.cursor.dir/calendars"),
    ("com.android.calendar", r"/time(/\d+)?", "time/epoch"),
    ("sms", r"/?", "vnd.android-dir/mms-sms"),
    ("sms", r"/(inbox|sent|draft|outbox)/?", "vnd.android-dir/mms-sms"),
    ("sms", r"/(inbox/|sent/)?\d+", "vnd.android.cursor.item/sms"),
    ("mms-sms", r"/conversations/?", "vnd.android-dir/mms-sms"),
    ("media", r"/external(_primary)?/images/media/?", "vnd.android.cursor.dir/image"),
    ("media", r"/external(_primary)?/video/media/?", "vnd.android.cursor.dir/video"),
    ("media", r"/external(_primary)?/audio/media/?", "vnd.android.cursor.dir/audio"),
]


EXTERNAL_STORAGE_DOCUMENTS = "com.android.externalstorage.documents"
# Android's MimeMap for the files the simulated apps deal in (a fixed table: nothing of the host's).
_EXTENSION_TYPES = {
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "csv": "text/comma-separated-values",
    "json": "application/json",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
}


def provider_type(uri: str, phone: Phone | None = None) -> str | None:
    """getProviderMimeType: the type a content: URI's provider reports, None when it reports none.

    With the phone, external-storage documents (`.../document/primary:Download`) report what
    ExternalStorageProvider does: a folder's directory type, a file's type by its extension.
    """
    if uri_scheme(uri) != "content":
        return None
    authority, path = uri_authority(uri) or "", uri_path(uri)
    for auth, pattern, mime in _PROVIDER_TYPES:
        if auth == authority and re.fullmatch(pattern, path):
            return mime
    if authority == EXTERNAL_STORAGE_DOCUMENTS and phone is not None:
        if re.fullmatch(r"/root/[^/]+", path):
            return "vnd.android.document/root"
        doc = re.fullmatch(r"(?:/tree/[^/]+)?/document/primary:(.*)", path)
        target = "/sdcard/" + doc.group(1) if doc else ""
        if doc and phone.fs.is_dir(target.rstrip("/")):
            return "vnd.android.document/directory"
        if doc and phone.fs.is_file(target):
            extension = posixpath.splitext(target)[1].lower().lstrip(".")
            return _EXTENSION_TYPES.get(extension, "application/octet-stream")
    return None


# ==== dumpsys package: the Activity Resolver Table ======================================================


def _filter_lines(f: IntentFilter, prefix: str) -> list[str]:
    """IntentFilter.dump: actions, categories, schemes, authorities, types (a `base/*` type as its base)."""
    lines = [f'{prefix}Action: "{a}"' for a in f.actions]
    lines += [f'{prefix}Category: "{c}"' for c in f.categories]
    lines += [f'{prefix}Scheme: "{s}"' for s in f.schemes]
    lines += [f'{prefix}Authority: "{h}": -1' + (" WILD" if h == "*" else "") for h in f.hosts]
    lines += [f'{prefix}Type: "{t[:-2] if t.endswith("/*") else t}"' for t in f.mime_types]
    if any(t.endswith("/*") for t in f.mime_types):
        lines.append(f"{prefix}mPriority=0, mOrder=0, mHasStaticPartialTypes=true, mHasDynamicPartialTypes=false")
    return lines


def resolver_table(app: App, home_package: str, ident: Callable[..., str]) -> str:
    """`dumpsys package PKG`'s "Activity Resolver Table:" for one app (empty when it has no filters).

    Each filter is filed as IntentResolver.addFilter files it: by full and base MIME type, by scheme, under
    its actions when it has no data, and under its actions again when it is typed. `ident(...)` gives the
    stable hex identity hashes.
    """
    maps: dict[str, dict[str, list[IntentFilter]]] = {
        name: {} for name in ("Full MIME Types", "Base MIME Types", "Wild MIME Types", "Schemes")
    }
    maps["Non-Data Actions"], maps["MIME Typed Actions"] = {}, {}
    for f in [*launcher_filters(app, home_package), *app.intent_filters]:
        for t in f.mime_types:
            base, _, sub = t.partition("/")
            maps["Full MIME Types"].setdefault(t, []).append(f)
            maps["Wild MIME Types" if sub == "*" else "Base MIME Types"].setdefault(base, []).append(f)
        for s in f.schemes:
            maps["Schemes"].setdefault(s, []).append(f)
        for a in f.actions:
            if not f.schemes and not f.mime_types:
                maps["Non-Data Actions"].setdefault(a, []).append(f)
            if f.mime_types:
                maps["MIME Typed Actions"].setdefault(a, []).append(f)
    sections = []
    for title, entries in maps.items():
        if not entries:
            continue
        lines = [f"  {title}:"]
        for key in sorted(entries, key=_java_hash):  # an ArrayMap iterates in hash order
            lines.append(f"      {key}:")
            for f in entries[key]:
                component = flatten_short(app.package, _full(app.package, f.activity))
                lines.append(f"        {ident('activity', component)} {component} filter {ident('filter', f)}")
                lines += _filter_lines(f, "          ")
        sections.append("\n".join(lines))
    return "Activity Resolver Table:\n" + "\n\n".join(sections) + "\n" if sections else ""
