"""Shell commands over the phone's system services (`ime`), in InputMethodManagerService's words."""

from __future__ import annotations

from droidrl.envs.sim import services
from droidrl.envs.sim.shell_android import _JavaArgs
from droidrl.envs.sim.shell_util import Context

_IME_USAGE = """ime <command>:
  list [-a] [-s]
    prints all enabled input methods.
      -a: see all input methods
      -s: only a single summary line of each
  enable [--user <USER_ID>] <ID>
    allows the given input method ID to be used.
      --user <USER_ID>: Specify which user to enable. Assumes the current user if not specified.
  disable [--user <USER_ID>] <ID>
    disallows the given input method ID to be used.
      --user <USER_ID>: Specify which user to disable. Assumes the current user if not specified.
  set [--user <USER_ID>] <ID>
    switches to the given input method ID.
      --user <USER_ID>: Specify which user to enable. Assumes the current user if not specified.
  reset [--user <USER_ID>]
    reset currently selected/enabled IMEs to the default ones as if the device is initially booted w
    ith the current locale.
      --user <USER_ID>: Specify which user to reset. Assumes the current user if not specified."""


def _ime(ctx: Context, args: list[str]) -> int:
    """`ime list|enable|disable|set|reset` (also `cmd input_method ime ...`)."""
    sub, rest = (args[0], args[1:]) if args else ("help", [])
    while rest[:1] == ["--user"]:  # the only user is 0
        rest = rest[2:]
    phone = ctx.phone
    if sub == "list":
        flags = {a for a in rest if a.startswith("-")}
        ctx.out(services.ime_list(phone, all_imes="-a" in flags, brief="-s" in flags), end="")
        return 0
    if sub in ("enable", "disable", "set"):
        ids = [a for a in rest if not a.startswith("-")]
        if not ids:  # ShellCommand.getNextArgRequired throws
            _JavaArgs("com.android.server.inputmethod.InputMethodManagerService$ShellCommandImpl", args).fail(
                f'Argument expected after "{sub}"'
            )
        if sub == "set":
            out, err = services.ime_set(phone, ids[0])
        else:
            out, err = services.ime_enable(phone, ids[0], sub == "enable")
        if out:
            ctx.out(out)
        if err:
            ctx.err(err)
        return 255 if err else 0
    if sub == "reset":
        ctx.out(services.ime_reset(phone))
        return 0
    if sub in ("help", "-h"):
        ctx.out(_IME_USAGE)
        return 0
    ctx.err(f"Unknown command: {sub}")  # falls through to ShellCommand.handleDefaultCommands
    return 255
