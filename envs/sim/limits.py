"""What one device-side command line may cost the host: CPU time, memory held in streams and variables, nesting.

A real emulator's shell runs inside a VM, so a runaway script only hurts the guest. The simulated shell
runs inside the host process, so every command line runs under a `Budget`: past it, the command line
ends the way the kernel ends a runaway process (`ShellKilled`), and the phone keeps answering.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

CPU_SECONDS = 10.0  # CPU time of one command line (RLIMIT_CPU); sleeping does not count
STREAM_LIMIT = 64 << 20  # bytes one stream may hold: stdout, stderr, a pipe, a $(...) capture
VALUE_LIMIT = 16 << 20  # bytes one variable or one expanded word may hold
ENV_LIMIT = 64 << 20  # bytes all variables of one shell may hold together
DEPTH_LIMIT = 100  # nested `sh -c` / `eval` / `$(...)` levels

# What a parent sees when the kernel kills a child: 128 + the signal number, and strsignal's text.
CPU_EXCEEDED = ("CPU time limit exceeded", 128 + 24)  # SIGXCPU
OUT_OF_MEMORY = ("/system/bin/sh: out of memory", 1)
HANGUP = ("", 128 + 1)  # SIGHUP: the adb connection that ran the command went away


class ShellKilled(BaseException):
    """The command line ran past its budget and ends now.

    A BaseException, so no command's `except Exception` swallows it: like a signal, it unwinds it all.
    """

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class Budget:
    """The limits of one command line; `cancel()` (from any thread) ends it at its next step or sleep."""

    def __init__(self, cpu_seconds: float | None = None) -> None:
        self.cpu_seconds = CPU_SECONDS if cpu_seconds is None else cpu_seconds
        self._cancelled = threading.Event()
        self._deadline: float | None = None  # thread CPU time; set by the thread that runs the command
        self._killed: tuple[str, int] | None = None

    def start(self) -> None:
        if self._deadline is None:
            self._deadline = time.thread_time() + self.cpu_seconds

    def cancel(self) -> None:
        self._cancelled.set()

    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise ShellKilled once the budget is spent (and on every later check: a kill sticks)."""
        if self._killed is None:
            if self._cancelled.is_set():
                self._killed = HANGUP
            elif self._deadline is not None and time.thread_time() > self._deadline:
                self._killed = CPU_EXCEEDED
        if self._killed is not None:
            raise ShellKilled(*self._killed)

    def cpu_left(self) -> float:
        """Seconds of CPU time this command line may still use."""
        self.check()
        return self.cpu_seconds if self._deadline is None else max(0.0, self._deadline - time.thread_time())

    def cpu_exceeded(self) -> None:
        """End the command line as the kernel ends one past RLIMIT_CPU (work timed out outside `check`)."""
        self._killed = self._killed or CPU_EXCEEDED
        raise ShellKilled(*self._killed)

    def out_of_memory(self) -> None:
        self._killed = self._killed or OUT_OF_MEMORY
        raise ShellKilled(*self._killed)

    def sleep(self, seconds: float) -> None:
        """Wait without using CPU or any lock; a cancelled command stops waiting at once."""
        self.check()
        self._cancelled.wait(seconds)
        self.check()


_current = threading.local()


def current() -> Budget | None:
    """The budget of the command line this thread is running, if any."""
    return getattr(_current, "budget", None)


@contextlib.contextmanager
def running(budget: Budget | None) -> Iterator[Budget]:
    """Make `budget` this thread's current one (a nested command line keeps the outer budget)."""
    outer = current()
    active = outer or budget or Budget()
    active.start()
    _current.budget = active
    try:
        yield active
    finally:
        _current.budget = outer


def check() -> None:
    budget = current()
    if budget is not None:
        budget.check()


def check_size(size: int, limit: int) -> None:
    """Fail the command line with `out of memory` when a buffer would grow past `limit` bytes."""
    if size > limit:
        budget = current()
        if budget is None:
            raise MemoryError(f"{size} bytes is over the simulated shell's limit of {limit}")
        budget.out_of_memory()


def sleep(seconds: float) -> None:
    seconds = min(seconds, threading.TIMEOUT_MAX)  # `sleep 99999999999` waits "forever", without OverflowError
    budget = current()
    if budget is None:
        time.sleep(seconds)
    else:
        budget.sleep(seconds)


def cpu_left() -> float:
    """CPU seconds the running command line has left (CPU_SECONDS outside one)."""
    budget = current()
    return CPU_SECONDS if budget is None else budget.cpu_left()


def cpu_exceeded() -> None:
    budget = current()
    if budget is None:
        raise TimeoutError("past the simulated shell's CPU limit")
    budget.cpu_exceeded()


def sqlite_progress() -> int:
    """sqlite's progress handler: a non-zero answer interrupts the statement once the budget is spent."""
    budget = current()
    if budget is None:
        return 0
    try:
        budget.check()
    except ShellKilled:
        return 1
    return 0


class Stream(bytearray):
    """An output buffer that refuses to grow past STREAM_LIMIT (a pipe whose reader never reads)."""

    def __iadd__(self, data):  # type: ignore[override]
        check_size(len(self) + len(data), STREAM_LIMIT)
        return super().__iadd__(data)

    def extend(self, data) -> None:  # type: ignore[override]
        data = bytes(data)
        check_size(len(self) + len(data), STREAM_LIMIT)
        super().extend(data)
