"""What every shell command shares: its `Context`, its errors, path resolution and toybox-style options."""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from droidrl.envs.sim import limits
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


class PendingInput:
    """Stdin still arriving from the host, as in `echo hi | adb shell 'cat > f'`.

    A command that reads it waits for the host to close it; one that never reads it runs at once, as
    with a real pipe.
    The host side `feed`s chunks and `close`s it from another thread; what is fed but unread stays small
    because the feeder waits while `backlog()` is large (the adb stream then stops acknowledging).
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._backlog = 0
        self._eof = False
        self._data: bytes | None = None
        self.started = False  # a command began reading
        self._fed = False
        self._cond = threading.Condition()

    def feed(self, chunk: bytes) -> None:
        with self._cond:
            self._chunks.append(chunk)
            self._backlog += len(chunk)
            self._fed = self._fed or bool(chunk)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def backlog(self) -> int:
        return self._backlog

    def unread(self) -> bool:
        """The host sent input that no command has read in full yet."""
        return self._fed and self._data is None

    def read(self) -> bytes:
        """All of stdin, once the host has closed it (the same bytes on every later call)."""
        if self._data is not None:
            return self._data
        self.started = True
        data = bytearray()
        while True:
            with self._cond:
                while not self._chunks and not self._eof:
                    self._cond.wait(0.2)
                    limits.check()  # a hung-up or killed command stops waiting
                chunks, self._chunks, self._backlog = self._chunks, [], 0
                eof = self._eof
            for chunk in chunks:
                limits.check_size(len(data) + len(chunk), limits.STREAM_LIMIT)
                data += chunk
            if eof:
                self._data = bytes(data)
                return self._data


def _no_sink() -> bool:
    return False


@dataclass
class Context:
    """What a command sees: the phone, stdin, its two output buffers, the shell's directory and variables."""

    phone: Any
    input: bytes | PendingInput  # stdin: its bytes, or the host's still arriving (read through `stdin`)
    stdout: bytearray
    stderr: bytearray
    cwd: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    run_script: Callable[[str], int] = lambda script: 127  # `sh -c SCRIPT` in a subshell, same streams
    run_argv: Callable[[list[str]], int] = lambda argv: 127  # run one split command line (`su 0 CMD`)
    unlocked: Callable[[Callable[[], Any]], Any] = lambda run: run()  # run() without holding the phone
    flush: Callable[[], bool] = _no_sink  # send stdout so far to the host now; False: stdout is not streamed

    @property
    def fs(self) -> Any:
        return self.phone.fs

    @property
    def stdin(self) -> bytes:
        """Stdin's bytes; host input still arriving is awaited without holding the phone."""
        if isinstance(self.input, PendingInput):
            pending = self.input
            self.input = self.unlocked(pending.read)
        return self.input

    def out(self, text: str = "", end: str = "\n") -> None:
        self.stdout += (text + end).encode()

    def err(self, text: str) -> None:
        self.stderr += (text + "\n").encode()

    def path(self, name: str) -> str:
        return resolve_path(self.cwd, name)

    def raw_path(self, name: str) -> str:
        """`name` made absolute without going through shared storage's links (for lstat and readlink).

        A trailing slash is kept: it makes a link's directory count, not the link.
        """
        full = posixpath.normpath(name if name.startswith("/") else posixpath.join(self.cwd, name))
        return full + "/" if name.endswith("/") and full != "/" else full


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
