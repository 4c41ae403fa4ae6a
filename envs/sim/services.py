"""System services of the simulated phone: display rotation, input methods, the clipboard and telephony.

Each service keeps its state where Android keeps it: rotation and input methods in settings (`user_rotation`,
`accelerometer_rotation`, `default_input_method`, `enabled_input_methods`), received SMS in the telephony
provider's mmssms.db. The clipboard and the calls of the modem live in `PhoneState.services`, so snapshots
carry them. Shell commands (`ime`, `am broadcast`, `dumpsys`) and console commands (`sms`, `gsm`) call these.
"""

from __future__ import annotations

from typing import Any

# ---- display rotation ------------------------------------------------------------------------------------


def rotation(phone: Any) -> int:
    """Surface rotation 0..3 (ROTATION_0..ROTATION_270).

    With `accelerometer_rotation` off the display follows `user_rotation`, as WindowManager's
    DisplayRotation does in USER_ROTATION_LOCKED mode; with it on it follows the sensor, which on an
    emulator lying still reports the natural (portrait) orientation.
    """
    if phone.get_setting("system", "accelerometer_rotation") not in (None, "0"):
        return 0
    value = phone.get_setting("system", "user_rotation") or "0"
    try:
        number = int(value)
    except ValueError:
        return 0
    return number if 0 <= number <= 3 else 0


def logical_size(phone: Any) -> tuple[int, int]:
    """The display's size as apps see it: width and height swap at 90 and 270 degrees."""
    w, h = phone.width, phone.height
    return (h, w) if rotation(phone) % 2 else (w, h)


def physical_to_logical(phone: Any, x: float, y: float) -> tuple[float, float]:
    """Map a point on the panel in its natural (portrait) frame to the rotated display frame.

    Touches from the emulator's own window (gRPC sendTouch, `adb emu event`) arrive in the panel's frame;
    `input tap` already speaks the display frame. Rotation r draws the content turned r*90 degrees
    clockwise on the panel (Display.getRotation: the opposite of how the device was turned), so at
    ROTATION_90 the top-left of the landscape display sits at the panel's top-right corner.
    """
    w, h = phone.width - 1, phone.height - 1  # pixel indices: the last column/row is w-1/h-1
    r = rotation(phone)
    if r == 1:
        return y, w - x
    if r == 2:
        return w - x, h - y
    if r == 3:
        return h - y, x
    return x, y


def logical_to_physical(phone: Any, x: float, y: float) -> tuple[float, float]:
    """The inverse of `physical_to_logical`: where a display point sits on the portrait panel."""
    w, h = phone.width - 1, phone.height - 1
    r = rotation(phone)
    if r == 1:
        return w - y, x
    if r == 2:
        return w - x, h - y
    if r == 3:
        return y, h - x
    return x, y


# ---- input methods ---------------------------------------------------------------------------------------
GBOARD_ID = "com.google.android.inputmethod.latin/com.android.inputmethod.latin.LatinIME"
ADB_KEYBOARD_ID = "com.android.adbkeyboard/.AdbIME"
_IME_PACKAGES = {GBOARD_ID: "com.google.android.inputmethod.latin", ADB_KEYBOARD_ID: "com.android.adbkeyboard"}
_IME_SERVICES = {
    GBOARD_ID: (
        "com.android.inputmethod.latin.LatinIME",
        "Gboard",
        "com.google.android.apps.inputmethod.latin.preference.SettingsActivity",
    ),
    ADB_KEYBOARD_ID: ("com.android.adbkeyboard.AdbIME", "ADB Keyboard", ""),
}


# droidrl's phone images carry ADB Keyboard (AdbDevice types through it; real farm AVDs bake it in), so the
# simulated image boots with its package installed but, as on a stock image, not enabled or selected.
PREINSTALLED_PACKAGES = ("com.android.adbkeyboard",)


def preinstall(phone: Any) -> None:
    """Install the image's extra packages: a package is installed while its data directory exists."""
    for package in PREINSTALLED_PACKAGES:
        phone.fs.makedirs(f"/data/data/{package}")


def installed_imes(phone: Any) -> list[str]:
    """Input methods whose package is installed: Gboard always, ADB Keyboard once its APK is installed."""
    from droidrl.envs.sim.shell_android import _packages  # the package list `pm list packages` prints

    packages = set(_packages(phone))
    return [ime for ime, package in _IME_PACKAGES.items() if ime == GBOARD_ID or package in packages]


def enabled_imes(phone: Any) -> list[str]:
    value = phone.get_setting("secure", "enabled_input_methods") or ""
    # Each entry may carry subtype ids after ';' (`ID;hash;hash`); the id is what ime commands name.
    return [entry.split(";")[0] for entry in value.split(":") if entry]


def _set_enabled(phone: Any, imes: list[str]) -> None:
    phone.put_setting("secure", "enabled_input_methods", ":".join(imes))


def ime_enable(phone: Any, ime: str, enable: bool) -> tuple[str, str]:
    """`ime enable|disable ID`: (stdout, stderr) of InputMethodManagerService's shell command."""
    if enable and ime not in installed_imes(phone):
        return "", f"Unknown input method {ime} cannot be enabled for user #0"
    enabled = enabled_imes(phone)
    was = ime in enabled
    if enable and not was:
        _set_enabled(phone, [*enabled, ime])
    elif not enable and was:
        rest = [i for i in enabled if i != ime]
        _set_enabled(phone, rest)
        if phone.get_setting("secure", "default_input_method") == ime:
            # The current IME went away: IMMS falls back to the first enabled one.
            phone.put_setting("secure", "default_input_method", rest[0] if rest else "")
    change = "already " if was == enable else "now "
    return f"Input method {ime}: {change}{'enabled' if enable else 'disabled'} for user #0", ""


def ime_set(phone: Any, ime: str) -> tuple[str, str]:
    """`ime set ID`: switch to an installed and enabled input method, else IMMS's refusal on stderr."""
    if ime not in installed_imes(phone) or ime not in enabled_imes(phone):
        return "", f"Unknown input method {ime} cannot be selected for user #0"
    phone.put_setting("secure", "default_input_method", ime)
    phone.put_setting("secure", "selected_input_method_subtype", "-921088104" if ime == GBOARD_ID else "-1")
    return f"Input method {ime} selected for user #0", ""


def ime_reset(phone: Any) -> str:
    """`ime reset`: back to the system's default input method (Gboard), the others disabled."""
    _set_enabled(phone, [GBOARD_ID])
    phone.put_setting("secure", "default_input_method", GBOARD_ID)
    phone.put_setting("secure", "selected_input_method_subtype", "-921088104")
    return f"Reset current and enabled IMEs for user #0\n  Selected: {GBOARD_ID}\n   Enabled: {GBOARD_ID}"


def ime_list(phone: Any, *, all_imes: bool, brief: bool) -> str:
    """`ime list [-a] [-s]`: ids only with -s, else each one's InputMethodInfo.dump (enabled ones unless -a)."""
    enabled = enabled_imes(phone)
    imes = [i for i in installed_imes(phone) if all_imes or i in enabled]
    if brief:
        return "".join(f"{ime}\n" for ime in imes)
    lines: list[str] = []
    for ime in imes:
        package = _IME_PACKAGES[ime]
        cls, label, settings = _IME_SERVICES[ime]
        gboard = ime == GBOARD_ID
        flag = str(gboard).lower()
        lines += [
            f"{ime}:",
            f"  mId={ime} mSettingsActivityName={settings or 'null'} mIsVrOnly=false"
            f" mSupportsSwitchingToNextInputMethod={flag} mInlineSuggestionsEnabled={flag}"
            " mSupportsInlineSuggestionsWithTouchExploration=false mSuppressesSpellChecker=false"
            " mShowInInputMethodPicker=true mSupportsStylusHandwriting=false",
            f"  mIsDefaultResId=0x{'7f050005' if gboard else '0'}",
            "  Service:",
            "    priority=0 preferredOrder=0 match=0x108000 specificIndex=-1 isDefault=false",
            "    ServiceInfo:",
            f"      name={cls}",
            f"      packageName={package}",
            f"      labelRes=0x0 nonLocalizedLabel={label} icon=0x0 banner=0x0",
            f"      enabled=true exported=true directBootAware={flag}",
            "      permission=android.permission.BIND_INPUT_METHOD",
            f"      flags=0x{'4' if gboard else '0'}",
        ]
    return "".join(line + "\n" for line in lines)


# ---- clipboard (the clipper app: ca.zgrs.clipper) -----------------------------------------------------------
CLIPPER_PACKAGE = "ca.zgrs.clipper"


def _services(phone: Any) -> dict[str, Any]:
    state = phone.state
    services = getattr(state, "services", None)
    if services is None:  # a snapshot taken before the services existed
        services = {}
        state.services = services
    return services


def clipboard(phone: Any) -> str | None:
    """The phone-wide primary clip's text, or None when nothing was ever copied."""
    return _services(phone).get("clipboard")


def set_clipboard(phone: Any, text: str) -> None:
    _services(phone)["clipboard"] = text
    phone.changed()


def clipper_receive(phone: Any, action: str, extras: dict[str, str]) -> tuple[int, str | None] | None:
    """The clipper app's broadcast receiver: (result code, result data), or None if it does not handle `action`.

    clipper.set puts `text` on the clipboard and answers "Text is copied into clipboard."; clipper.get
    answers the clip's text. Both set result -1 (Activity.RESULT_OK), which android_world checks.
    """
    if action in ("clipper.set", "set"):
        if "text" not in extras:
            return 0, 'No text is provided. Use -e text "text to be pasted"'
        set_clipboard(phone, extras["text"])
        return -1, "Text is copied into clipboard."
    if action in ("clipper.get", "get"):
        # Android 10+ hands the clip only to the foreground app (or the IME): clipper must be on screen.
        on_screen = CLIPPER_PACKAGE not in phone.apps or phone.state.foreground == CLIPPER_PACKAGE
        text = clipboard(phone) if on_screen else None
        return (-1, text) if text is not None else (0, "")
    return None


# ---- telephony: the modem's calls and incoming SMS ------------------------------------------------------
CALL_STATE_IDLE, CALL_STATE_RINGING, CALL_STATE_OFFHOOK = 0, 1, 2
GSM_NUMBER_CHARS = set("0123456789+#")


def modem(phone: Any) -> dict[str, str]:
    """The modem's voice and data registration states (`gsm voice|data`), "home" until changed."""
    return _services(phone).setdefault("modem", {"voice": "home", "data": "home"})


def calls(phone: Any) -> list[dict[str, Any]]:
    """The modem's current calls, oldest first: {"number", "dir" ("inbound"|"outbound"), "state"}."""
    return _services(phone).setdefault("calls", [])


def call_state(phone: Any) -> int:
    """TelephonyManager's call state: RINGING while a call rings, OFFHOOK while one is up, else IDLE."""
    states = {c["state"] for c in calls(phone)}
    if "incoming" in states or "waiting" in states:
        return CALL_STATE_RINGING
    if states:
        return CALL_STATE_OFFHOOK
    return CALL_STATE_IDLE


def incoming_call(phone: Any, number: str) -> None:
    """`gsm call NUMBER`: a new inbound call rings (waiting if another call is already up)."""
    state = "waiting" if calls(phone) else "incoming"
    calls(phone).append({"number": number, "dir": "inbound", "state": state, "created": phone.state.clock_ms})
    phone.changed()


def find_call(phone: Any, number: str) -> dict[str, Any] | None:
    return next((c for c in calls(phone) if c["number"] == number), None)


def update_call(phone: Any, number: str, state: str) -> bool:
    call = find_call(phone, number)
    if call is None:
        return False
    if state == "active" and "answered" not in call:
        call["answered"] = phone.state.clock_ms
    call["state"] = state
    phone.changed()
    return True


def end_call(phone: Any, number: str | None = None, *, rejected: bool = False) -> bool:
    """Disconnect the call with `number` (the first call when None) and log it in the call log.

    An inbound call that was never answered is logged missed, or rejected when the user hung it up.
    """
    call = find_call(phone, number) if number is not None else (calls(phone) or [None])[0]
    if call is None:
        return False
    calls(phone).remove(call)
    answered = call["state"] in ("active", "held")
    if call["dir"] == "outbound":
        kind = CALL_TYPE_OUTGOING
    elif answered:
        kind = CALL_TYPE_INCOMING
    else:
        kind = CALL_TYPE_REJECTED if rejected else CALL_TYPE_MISSED
    now = phone.state.clock_ms
    duration = (now - call["answered"]) // 1000 if "answered" in call else 0
    log_call(phone, call["number"], kind, call.get("created", now), duration)
    phone.changed()
    return True


# CallLog.Calls.TYPE values. The log is the contacts provider's calllog.db, which `content://call_log/calls`
# reads (content.py owns its schema).
CALL_TYPE_INCOMING, CALL_TYPE_OUTGOING, CALL_TYPE_MISSED, CALL_TYPE_REJECTED = 1, 2, 3, 5


def log_call(phone: Any, number: str, kind: int, started_ms: int, duration_s: int) -> None:
    """Add a row to the call log as Telecom does when a call ends."""
    from droidrl.envs.sim.content import CALLLOG_DB, CALLLOG_SCHEMA

    now = phone.state.clock_ms
    phone.fs.makedirs(CALLLOG_DB.rsplit("/", 1)[0])
    with phone.fs.sqlite(CALLLOG_DB) as conn:
        conn.executescript(CALLLOG_SCHEMA)
        conn.execute(
            "INSERT INTO calls (number, date, duration, data_usage, type, new, is_read, countryiso,"
            " subscription_component_name, subscription_id, phone_account_address, last_modified)"
            " VALUES (?, ?, ?, NULL, ?, 1, 0, 'US',"
            " 'com.android.phone/com.android.services.telephony.TelephonyConnectionService', '1', '', ?)",
            (number, started_ms, duration_s, kind, now),
        )


def call_log(phone: Any) -> list[tuple[str, int, int]]:
    """(number, type, date) of each logged call, oldest first."""
    from droidrl.envs.sim.content import CALLLOG_DB, CALLLOG_SCHEMA

    if not phone.fs.is_file(CALLLOG_DB):
        return []
    with phone.fs.sqlite(CALLLOG_DB) as conn:
        conn.executescript(CALLLOG_SCHEMA)
        return [tuple(r) for r in conn.execute("SELECT number, type, date FROM calls ORDER BY _id")]


def handle_call_key(phone: Any, keycode: int) -> bool:
    """KEYCODE_CALL answers a ringing call, KEYCODE_ENDCALL hangs up (rejecting one that rings).

    Returns whether the key was used; with no call, ENDCALL is left to the caller (it would sleep the screen).
    """
    ringing = next((c for c in calls(phone) if c["state"] in ("incoming", "waiting")), None)
    if keycode == KEYCODE_CALL and ringing is not None:
        return update_call(phone, ringing["number"], "active")
    if keycode == KEYCODE_ENDCALL and calls(phone):
        target = ringing or calls(phone)[0]
        return end_call(phone, target["number"], rejected=ringing is not None)
    return False


KEYCODE_CALL, KEYCODE_ENDCALL = 5, 6


def receive_sms(phone: Any, sender: str, body: str) -> None:
    """An SMS-DELIVER from `sender` lands in the telephony provider's inbox, unread, in its sender's thread."""
    from droidrl.envs.sim.apps import sms

    now_ms = phone.state.clock_ms
    phone.fs.makedirs(f"{sms.PROVIDER_DIR}/databases")
    with phone.fs.sqlite(sms.DB_PATH) as conn:
        conn.executescript(sms.SCHEMA)
        # On a real phone time runs between two deliveries (a modem delivery takes milliseconds at least), so
        # each text is newer than the last one received even when the clock is frozen here: `date DESC` lists
        # the latest first, as android_world's SimpleSmsReplyMostRecent expects.
        (newest,) = conn.execute("SELECT MAX(date) FROM sms WHERE type = ?", (sms.TYPE_INBOX,)).fetchone()
        if newest is not None and newest >= now_ms:
            now_ms = newest + 1
        # The SMSC timestamp has whole-second precision; the provider stamps `date` on arrival.
        conn.execute(
            "INSERT INTO sms (address, date, date_sent, read, seen, type, body, protocol, reply_path_present,"
            " service_center, sub_id) VALUES (?, ?, ?, 0, 0, ?, ?, 0, 0, '+1234567890', 1)",
            (sender, now_ms, now_ms // 1000 * 1000, sms.TYPE_INBOX, body),
        )
    phone.changed()


def decode_console_text(text: str) -> str | None:
    r"""The console's message escapes (\n, \xNN, \uNNNN, \\) decoded; None when an escape is malformed."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "n":
            out.append("\n")
            i += 2
        elif nxt == "\\":
            out.append("\\")
            i += 2
        elif nxt in ("x", "u"):
            size = 2 if nxt == "x" else 4
            digits = text[i + 2 : i + 2 + size]
            if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
                return None
            out.append(chr(int(digits, 16)))
            i += 2 + size
        else:
            return None
    return "".join(out)
