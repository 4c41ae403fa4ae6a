"""What every shell command shares: its `Context`, its errors, path resolution and toybox-style options."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from droidrl.envs.sim.vfs import normpath


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
