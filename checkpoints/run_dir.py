"""A run directory is used by one run at a time: an exclusive lock held for the run's life, and crash leftovers removed.

The lock is a POSIX record lock (fcntl) on `<run_dir>/run.lock`: the kernel drops it when the holding
process exits or dies (SIGKILL included), so a crashed run never leaves a stale lock behind, and a
second `droidrl train` (or `--resume`) on the same directory is refused at once, naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "run.lock"

# Temporary names the run's atomic writers use (write, fsync, rename); a crash can leave them behind.
LEFTOVERS = (
    ("weights", ".v*.tmp-*"),  # rollout.engines.weight_sync.write_weights
    ("rollouts", ".step-*.parquet.tmp*"),  # rollout.records.write_groups
    ("checkpoints", ".tmp-step-*"),  # checkpoints.run_state.save_checkpoint
    ("checkpoints", ".trash-step-*"),
    ("checkpoints", ".latest.tmp*"),
    (".", ".report.html.tmp"),  # trainer.report
    (".", ".metrics.jsonl.tmp*"),  # set_aside_metrics
    (".", ".final.stale-*"),  # trainer.loop.Run._export_final
)
STALE_FINAL = ".final.stale-"  # + pid: an interrupted run's final export, on its way out

_held: set[Path] = set()  # run dirs this process holds: a POSIX lock never conflicts with its own process


class RunDirBusy(RuntimeError):
    """Another run holds the run directory's lock."""


def _holder(lock: Path) -> str:
    """Who holds `lock`, from what it wrote into the file (pid, host, start time, command)."""
    try:
        info = json.loads(lock.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another process (it has not written its pid yet)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"pid {info['pid']} on {info.get('host', '?')}, started {started}: {info.get('command', '?')}"


@contextlib.contextmanager
def lock_run_dir(run_dir: Path | str) -> Iterator[Path]:
    """Hold the exclusive lock on `run_dir` (created if needed) for the block; RunDirBusy when another run has it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_FILE
    key = lock.resolve()
    if key in _held:
        raise RunDirBusy(f"{run_dir} is in use by this process (pid {os.getpid()}) already; choose another run_dir")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes (O_CLOEXEC)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunDirBusy(
                f"{run_dir} is in use by another droidrl run ({_holder(lock)}); wait for it to end, stop it, "
                "or choose another run_dir"
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        _held.add(key)
        try:
            yield lock
        finally:
            _held.discard(key)
            os.ftruncate(fd, 0)  # the next holder writes its own; a reader meanwhile sees no pid
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def clean_leftovers(run_dir: Path | str) -> list[Path]:
    """Remove the temporary files and directories crashed writers left in `run_dir`; returns what was removed.

    Call it only while holding the run directory's lock: a live run's temporaries look the same.
    """
    run_dir = Path(run_dir)
    removed = []
    for folder, pattern in LEFTOVERS:
        base = run_dir / folder
        if not base.is_dir():
            continue
        for path in sorted(base.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


METRICS_FILE = "metrics.jsonl"  # trainer.tracking.Tracker's rows, one JSON object per line, each with "step"
SET_ASIDE_METRICS = "metrics.set-aside.jsonl"


def set_aside_metrics(run_dir: Path | str, step: int) -> int:
    """Before a resume from checkpoint `step`: move metrics rows of later steps out of metrics.jsonl.

    The interrupted run logged them after that checkpoint; the resumed run does those steps again
    and logs them anew, so left in place every such step would appear twice. They go to
    metrics.set-aside.jsonl (appended, for inspection); a torn last line (a crash mid-write) goes too.
    metrics.jsonl is rewritten atomically (temporary file, fsync, rename). Returns the rows moved.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    kept: list[str] = []
    moved: list[str] = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            row_step = json.loads(line)["step"]
            keep = line.endswith("\n") and isinstance(row_step, int) and row_step <= step
        except (ValueError, KeyError, TypeError):
            keep = False
        (kept if keep else moved).append(line if line.endswith("\n") else line + "\n")
    if not moved:
        return 0
    with open(path.with_name(SET_ASIDE_METRICS), "a") as aside:
        aside.writelines(moved)
        aside.flush()
        os.fsync(aside.fileno())
    tmp = path.with_name(f".{METRICS_FILE}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.writelines(kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(moved)
