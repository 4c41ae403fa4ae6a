"""The commands of the simulated phone's shell and the table that names them.

Each command is a function `(ctx, args) -> exit status` listed in `COMMANDS`. The Android service commands
(`input`, `am`, `pm`, `dumpsys` ...) live in `shell_android`, the toybox tools (`ls`, `grep`, `sqlite3` ...)
in `shell_toybox`, and what they share (`Context`, `CommandError`, `getopt` ...) in `shell_util`. Output
formats follow an Android 13 (API 33) emulator, because clients parse them: adbutils (adbutils/shell.py,
_device_base.py), android_env (components/adb_call_parser.py) and android_world (env/adb_utils.py).
"""

from __future__ import annotations

from collections.abc import Callable

from droidrl.envs.sim.content import content_command
from droidrl.envs.sim.logcat import logcat
from droidrl.envs.sim.shell_android import (
    _am,
    _cmd,
    _dumpsys,
    _getprop,
    _input,
    _monkey,
    _pm,
    _screencap,
    _service,
    _setprop,
    _settings,
    _svc,
    _uiautomator,
    _wm,
)
from droidrl.envs.sim.shell_df import df
from droidrl.envs.sim.shell_services import _ime
from droidrl.envs.sim.shell_toybox import (
    _base64,
    _bracket,
    _cat,
    _checksum,
    _chmod,
    _cp,
    _date,
    _echo,
    _false,
    _find,
    _grep,
    _head,
    _id,
    _ls,
    _mkdir,
    _mv,
    _printf,
    _pwd,
    _readlink,
    _realpath,
    _restorecon,
    _rm,
    _rmdir,
    _sh,
    _sleep,
    _sort,
    _sqlite3,
    _stat,
    _su,
    _tail,
    _tee,
    _test,
    _touch,
    _true,
    _uname,
    _wc,
    _whoami,
)
from droidrl.envs.sim.shell_util import Context, getopt

BIN_DIRS = ("/system/bin", "/system/xbin", "/vendor/bin", "/bin", "/product/bin")


# toybox `which` answers from the table below, so it lives beside it rather than in shell_toybox.
def _which(ctx: Context, args: list[str]) -> int:
    _, names = getopt("which", args, "a")
    status = 0
    for name in names:
        if name in COMMANDS:
            ctx.out(f"/system/bin/{name}")
        else:
            status = 1
    return status


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
    "ime": _ime,
    "content": content_command,
    "getprop": _getprop,
    "setprop": _setprop,
    "service": _service,
    "svc": _svc,
    "logcat": logcat,
    # files
    "ls": _ls,
    "cat": _cat,
    "rm": _rm,
    "restorecon": _restorecon,
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
    "readlink": _readlink,
    "realpath": _realpath,
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
    "df": df,
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
