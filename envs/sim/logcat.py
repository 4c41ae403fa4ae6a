"""The phone's log buffer and the `logcat` command over it, as android_env's log stream and adb clients use it.

The phone logs what a device's clients look for (ActivityTaskManager's `START u0 {...}` and `Displayed`
lines when an activity starts). `logcat -c` clears, `-d` / `-t N` dump and exit, and without them logcat
streams new lines until the host closes the stream, in liblog's formats (threadtime by default).
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

from droidrl.envs.sim import limits
from droidrl.envs.sim.shell_util import CommandError, Context

LEVELS = "VDIWEFS"  # liblog's priorities, lowest first; S (silent) filters everything out
BUFFERS = ("main", "system", "crash", "events", "radio", "kernel")
MAX_ENTRIES = 4096  # logd's ring buffer drops the oldest lines (256 KiB a buffer on an emulator)
SYSTEM_SERVER_PID = 542
_POLL_SECONDS = 0.2  # how often a streaming logcat looks for a killed or hung-up command line


@dataclass(frozen=True)
class Entry:
    seq: int
    time_ms: int  # the phone's wall clock, epoch milliseconds
    pid: int
    tid: int
    level: str
    tag: str
    message: str
    buffer: str = "main"


class LogBuffer:
    """One phone's logd: a bounded ring of entries and a condition that wakes streaming readers."""

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque(maxlen=MAX_ENTRIES)
        self.cond = threading.Condition()
        self._seq = 0

    def add(self, time_ms: int, pid: int, tid: int, level: str, tag: str, message: str, buffer: str) -> None:
        with self.cond:
            self._seq += 1
            self.entries.append(Entry(self._seq, time_ms, pid, tid, level, tag, message, buffer))
            self.cond.notify_all()

    def clear(self, buffers: set[str]) -> None:
        with self.cond:
            kept = [e for e in self.entries if e.buffer not in buffers]
            self.entries.clear()
            self.entries.extend(kept)

    def after(self, seq: int) -> list[Entry]:
        with self.cond:
            return [e for e in self.entries if e.seq > seq]

    def wait_after(self, seq: int, timeout: float) -> list[Entry]:
        with self.cond:
            if not self.entries or self.entries[-1].seq <= seq:
                self.cond.wait(timeout)
        return self.after(seq)


_buffers: weakref.WeakKeyDictionary[Any, LogBuffer] = weakref.WeakKeyDictionary()
_buffers_lock = threading.Lock()


def buffer(phone: Any) -> LogBuffer:
    with _buffers_lock:
        buf = _buffers.get(phone)
        if buf is None:
            buf = _buffers[phone] = LogBuffer()
        return buf


def log(phone: Any, tag: str, message: str, level: str = "I", pid: int = SYSTEM_SERVER_PID, tid: int = 0) -> None:
    """Append one line to the phone's main buffer (system_server's, unless another pid is given)."""
    buffer(phone).add(phone.state.clock_ms, pid, tid or pid + 29, level, tag, message, "main")


def activity_started(phone: Any, package: str, activity: str, cold: bool) -> None:
    """What ActivityTaskManager logs for a started activity: the intent, then the first frame's time."""
    name = activity[len(package) :] if activity.startswith(package + ".") else activity
    component = f"{package}/{name}"
    log(phone, "ActivityTaskManager", f"START u0 {{flg=0x10000000 cmp={component}}} from uid 2000", tid=1830)
    log(phone, "ActivityTaskManager", f"Displayed {component}: +{412 if cold else 96}ms", tid=579)


# ---- formats (liblog's logprint.c) ---------------------------------------------------------------------
def _time(entry: Entry, epoch: bool) -> str:
    seconds, millis = divmod(entry.time_ms, 1000)
    if epoch:
        return f"{seconds:19d}.{millis:03d}"
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return f"{stamp:%m-%d %H:%M:%S}.{millis:03d}"


def format_entry(entry: Entry, fmt: str, epoch: bool) -> str:
    if fmt == "raw":
        return entry.message
    if fmt == "brief":
        return f"{entry.level}/{entry.tag:<8}({entry.pid:5d}): {entry.message}"
    if fmt == "tag":
        return f"{entry.level}/{entry.tag:<8}: {entry.message}"
    if fmt == "process":
        return f"{entry.level}({entry.pid:5d}) {entry.message}  ({entry.tag})"
    if fmt == "thread":
        return f"{entry.level}({entry.pid:5d}:{entry.tid:5d}) {entry.message}"
    if fmt == "time":
        return f"{_time(entry, epoch)} {entry.level}/{entry.tag:<8}({entry.pid:5d}): {entry.message}"
    return f"{_time(entry, epoch)} {entry.pid:5d} {entry.tid:5d} {entry.level} {entry.tag:<8}: {entry.message}"


_FORMATS = {"brief", "process", "tag", "thread", "raw", "time", "threadtime"}
_MODIFIERS = {"epoch", "color", "descriptive", "printable", "uid", "usec", "nsec", "UTC", "year", "zone", "monotonic"}


# ---- the command -----------------------------------------------------------------------------------------
@dataclass
class _Options:
    clear: bool = False
    dump: bool = False
    tail: int | None = None
    fmt: str = "threadtime"
    epoch: bool = False
    buffers: set[str] | None = None
    silent: bool = False
    filters: list[tuple[str, str]] | None = None


def _parse(args: list[str]) -> _Options:
    opts = _Options(filters=[])
    i = 0
    while i < len(args):
        arg = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if arg in ("-c", "--clear"):
            opts.clear = True
        elif arg == "-d":
            opts.dump = True
        elif arg == "-s":
            opts.silent = True
        elif arg in ("-v", "-b", "-t", "-T", "--format", "--buffer") or arg[:2] in ("-v", "-b", "-t", "-T"):
            if len(arg) > 2 and not arg.startswith("--"):
                value, arg = arg[2:], arg[:2]
            else:
                i += 1
            if value is None:
                raise CommandError(f"logcat: option requires an argument -- '{arg.lstrip('-')[:1]}'")
            _option_value(opts, arg, value)
        elif arg.startswith("-"):
            raise CommandError(f"logcat: invalid option -- '{arg[1:2]}'")
        else:
            tag, _, level = arg.partition(":")
            level = (level or "V")[:1].upper()
            if level not in LEVELS:
                raise CommandError(f"logcat: Invalid filter expression '{arg}'")
            opts.filters.append((tag, level))  # type: ignore[union-attr]
        i += 1
    return opts


def _option_value(opts: _Options, arg: str, value: str) -> None:
    if arg in ("-v", "--format"):
        for word in value.split(","):
            if word == "epoch":
                opts.epoch = True
            elif word in _FORMATS:
                opts.fmt = word
            elif word not in _MODIFIERS:
                raise CommandError(f'logcat: Invalid parameter "{value}" to -v')
    elif arg in ("-b", "--buffer"):
        names = set()
        for word in value.split(","):
            if word == "all":
                names |= set(BUFFERS)
            elif word == "default":
                names |= {"main", "system", "crash"}
            elif word in BUFFERS or word == "security":
                names.add(word)
            else:
                raise CommandError(f"logcat: unknown buffer '{word}'")
        opts.buffers = (opts.buffers or set()) | names
    elif arg in ("-t", "-T"):
        if not value.isdigit():
            raise CommandError(f'logcat: -{arg[1]} "{value}" not a number')
        opts.tail = int(value)
        opts.dump = opts.dump or arg == "-t"  # -t prints the last lines and exits; -T goes on streaming


def _shown(entry: Entry, opts: _Options) -> bool:
    level = None
    for tag, lvl in opts.filters or []:
        if tag == entry.tag:
            level = lvl
    if level is None:
        default = "S" if opts.silent else "V"
        for tag, lvl in opts.filters or []:
            if tag == "*":
                default = lvl
        level = default
    return level != "S" and LEVELS.index(entry.level) >= LEVELS.index(level)


def logcat(ctx: Context, args: list[str]) -> int:
    opts = _parse(args)
    buffers = opts.buffers or {"main", "system", "crash"}
    logs = buffer(ctx.phone)
    if opts.clear:
        logs.clear(buffers)
        return 0
    everything = logs.after(0)
    last = everything[-1].seq if everything else 0
    entries = [e for e in everything if e.buffer in buffers]
    if opts.tail is not None:
        entries = entries[-opts.tail :] if opts.tail else []
    begun: set[str] = set()
    _print(ctx, entries, opts, begun)
    if opts.dump or not ctx.unlocked(ctx.flush):  # a host slow to read holds up no one but this logcat
        # Dumped; or stdout goes into a pipe or file inside the shell, which a running logcat would
        # never hand on here: it stops after what is logged so far.
        return 0

    def follow() -> None:
        nonlocal last
        while True:
            limits.check()  # the host closed the stream: the command line is hung up
            fresh = logs.wait_after(last, _POLL_SECONDS)
            if fresh:
                last = fresh[-1].seq
                _print(ctx, [e for e in fresh if e.buffer in buffers], opts, begun)
                ctx.flush()

    ctx.unlocked(follow)  # waiting for lines holds no lock: the phone goes on (and logs) meanwhile
    return 0


def _print(ctx: Context, entries: list[Entry], opts: _Options, begun: set[str]) -> None:
    for entry in entries:
        if not _shown(entry, opts):
            continue
        if entry.buffer not in begun:
            begun.add(entry.buffer)
            ctx.out(f"--------- beginning of {entry.buffer}")
        ctx.out(format_entry(entry, opts.fmt, opts.epoch))
