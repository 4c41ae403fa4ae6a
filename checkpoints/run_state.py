"""Atomic, complete run checkpoints: `save_checkpoint` / `load_checkpoint` / `find_latest`, and HF export.

Layout under a checkpoint root:

    <root>/step-N/deepspeed/state/...   model, optimizer and LR schedule (DeepSpeed's own checkpoint)
    <root>/step-N/run_state.pkl         policy version, learner steps, RNG states, counters
    <root>/step-N/sampler.json          curriculum sampler state (JSON)
    <root>/step-N/replay.pkl            positive replay buffer state (items are pickled as they are)
    <root>/step-N/buffered_groups.pkl   groups collected but not trained on yet
    <root>/step-N/manifest.json         schema version, step, versions, every file with size and sha256
    <root>/latest                       the name of the newest complete checkpoint ("step-N")

Atomicity: everything is written into `<root>/.tmp-step-N`, fsynced, and only then renamed to `step-N`;
`latest` is replaced by writing a temporary file and renaming it. A crash at any point leaves the
previous checkpoint and `latest` untouched; the half-written temporary directory is removed by the
next save. `manifest.json` is written last inside the temporary directory, so a directory with a
manifest is a complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

SCHEMA_VERSION = 1
LATEST = "latest"
MANIFEST = "manifest.json"
DEEPSPEED_DIR = "deepspeed"
DEEPSPEED_TAG = "state"  # one fixed tag: the step lives in our directory name, not in DeepSpeed's
RUN_STATE = "run_state.pkl"
SAMPLER = "sampler.json"
REPLAY = "replay.pkl"
BUFFERED = "buffered_groups.pkl"
VERIFY_MODES = ("none", "size", "sha256")

_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class RunState:
    """What `load_checkpoint` restores beyond the learner, sampler and replay buffer it loads in place.

    `counters` holds the loop's counters as saved (at least "accepted" and "trainer_version" when the
    loop passed them); `buffered_groups` are the groups to train on before collecting new ones.
    """

    path: Path
    step: int
    version: int  # the policy version of the restored weights
    learner_steps: int
    counters: dict[str, Any]
    buffered_groups: list[Any]
    rng_states: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    def restore_collector(self, collector: Any) -> None:
        """Tell a fresh collector the trainer's version and the groups already accepted (trained or buffered)."""
        accepted = self.counters.get("accepted")
        if accepted is None:
            raise KeyError(
                f"checkpoint {self.path} has no 'accepted' counter; pass counters={{'accepted': ...}} to "
                "save_checkpoint so a resumed collector knows how many groups were already accepted"
            )
        next_index = self.counters.get("next_index")
        collector.restore(
            int(self.counters.get("trainer_version", self.version)),
            int(accepted),
            None if next_index is None else int(next_index),
        )


# -- RNG ----------------------------------------------------------------------------------------------


def capture_rng_states() -> dict[str, Any]:
    """The python, numpy and torch (CPU and, when present, CUDA) global RNG states."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Mapping[str, Any]) -> None:
    """Set the global RNGs back to `capture_rng_states()`'s snapshot (CUDA only when it was saved and is here)."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# -- distributed helpers (a no-op in a single process) ---------------------------------------------------


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


# -- files ----------------------------------------------------------------------------------------------


def _fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's fsync makes renames and new entries in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_list(root: Path) -> dict[str, dict[str, Any]]:
    """Every file under `root` (relative path -> size and sha256), the manifest itself excluded."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != MANIFEST:
            files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return files


def _write_pickle(path: Path, value: Any) -> None:
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)


def _read_pickle(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _write_latest(root: Path, name: str) -> None:
    """Point `<root>/latest` at `name`: write a temporary file, fsync it, rename over the old pointer."""
    tmp = root / f".{LATEST}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / LATEST)
    _fsync_path(root)


def checkpoint_steps(root: Path | str) -> list[tuple[int, Path]]:
    """The complete checkpoints under `root` (those with a manifest), oldest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / MANIFEST).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def find_latest(root: Path | str) -> Path | None:
    """The newest complete checkpoint under `root`: the one `latest` names, else the highest complete step-N.

    None when there is none (a fresh run). The fallback covers a crash between the directory rename
    and the pointer update, and a `latest` that names a checkpoint someone deleted.
    """
    root = Path(root)
    pointer = root / LATEST
    if pointer.is_file():
        target = root / pointer.read_text().strip()
        if (target / MANIFEST).is_file():
            return target
    steps = checkpoint_steps(root)
    return steps[-1][1] if steps else None


class NoUsableCheckpoint(FileNotFoundError):
    """A resume found no checkpoint it can load (none at all, the named step is missing, or all are damaged)."""


def _step_dirs(root: Path) -> list[tuple[int, Path]]:
    """Every step-N directory under `root`, complete or not, oldest step first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), child) for child in root.iterdir() if (m := _STEP_DIR.match(child.name))]
    return sorted(found)


def _damage(path: Path, verify: str) -> str | None:
    """Why checkpoint `path` cannot be loaded (None: it verifies)."""
    try:
        manifest = verify_checkpoint(path, verify)
        manifest["files"].items()
    except (OSError, ValueError, KeyError, AttributeError) as err:
        return str(err) or type(err).__name__
    return None


def select_checkpoint(root: Path | str, step: int | None = None, verify: str = "sha256") -> tuple[Path, list[str]]:
    """The checkpoint a resume loads, checked with `verify`; returns it and a warning per damaged one skipped.

    step None: the highest step that verifies, so a damaged newest checkpoint costs the steps since the
    one before it, not the run. step N: exactly `step-N`. NoUsableCheckpoint when there is nothing to
    load, saying what was found.
    """
    root = Path(root)
    steps = _step_dirs(root)
    available = ", ".join(str(n) for n, _ in steps) or "none"
    if step is not None:
        path = root / f"step-{step}"
        if not path.is_dir():
            raise NoUsableCheckpoint(
                f"--resume-from {step}: there is no checkpoint step-{step} under {root} (steps there: {available})"
            )
        damage = _damage(path, verify)
        if damage is not None:
            raise NoUsableCheckpoint(f"--resume-from {step}: checkpoint step-{step} is damaged: {damage}")
        return path, []
    # Highest step first, whatever `latest` says: a crash between a save's rename and its pointer update
    # leaves a complete newer checkpoint that the pointer does not name yet.
    candidates = [path for _, path in reversed(steps)]
    warnings = []
    for path in candidates:
        damage = _damage(path, verify)
        if damage is None:
            return path, [f"{warning}; resuming from {path.name} instead" for warning in warnings]
        warnings.append(f"checkpoint {path.name} is damaged ({damage})")
    if not candidates:
        raise NoUsableCheckpoint(f"--resume: no checkpoint under {root}; start the run without --resume")
    raise NoUsableCheckpoint(f"--resume: no checkpoint under {root} can be loaded: " + "; ".join(warnings))


def set_aside_newer(root: Path | str, step: int) -> list[Path]:
    """Rename every step-N directory with N > `step` to `step-N.set-aside` (kept for inspection, never loaded).

    A resume from an older step starts a new history from there; newer checkpoints of the old one
    (damaged, or skipped with --resume-from) must not be mistaken for its future.
    """
    moved = []
    for number, path in _step_dirs(Path(root)):
        if number > step:
            target = path.with_name(f"{path.name}.set-aside")
            if target.exists():
                shutil.rmtree(target)
            os.replace(path, target)
            moved.append(target)
    if moved:
        _fsync_path(Path(root))
    return moved


# -- save -----------------------------------------------------------------------------------------------


class StateSnapshot:
    """`source.state_dict()` as it was when made, held as pickled bytes: later changes to the source cannot reach it.

    A checkpoint written in another thread while the event loop runs on (trainer/loop.py) saves these
    in place of the live sampler and replay buffer, so what it writes is the state at its step.
    """

    def __init__(self, source: Any) -> None:
        self._blob = pickle.dumps(source.state_dict(), protocol=pickle.HIGHEST_PROTOCOL)

    def state_dict(self) -> Any:
        return pickle.loads(self._blob)


def snapshot_parts(
    sampler: Any = None,
    replay: Any = None,
    buffered_groups: Sequence[Any] = (),
    counters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`save_checkpoint`'s run parts captured now (sampler, replay, groups, counters, global RNGs), to save later.

    Finished groups are never changed, so the list is copied, not its groups; everything else that
    the loop goes on changing is copied whole.
    """
    return {
        "sampler": None if sampler is None else StateSnapshot(sampler),
        "replay": None if replay is None else StateSnapshot(replay),
        "buffered_groups": list(buffered_groups),
        "counters": pickle.loads(pickle.dumps(dict(counters or {}), protocol=pickle.HIGHEST_PROTOCOL)),
        "rng_states": capture_rng_states(),
    }


def save_checkpoint(
    dir_root: Path | str,
    step: int,
    learner: Any,
    sampler: Any = None,
    replay: Any = None,
    buffered_groups: Sequence[Any] = (),
    counters: Mapping[str, Any] | None = None,
    rng_states: Mapping[str, Any] | None = None,
    keep: int | None = 3,
) -> Path:
    """Save the whole run at trainer step `step` into `<dir_root>/step-<step>` atomically; returns that directory.

    learner: a trainer.learner.Learner (its DeepSpeed engine saves model, optimizer and LR schedule).
    sampler / replay: anything with `state_dict()` (CurriculumSampler, PositiveReplay), or None.
    buffered_groups: collected groups not trained on yet (pickled). counters: the loop's counters, e.g.
    {"accepted": collector groups accepted, "trainer_version": ...}. rng_states: defaults to the global
    RNGs now (`capture_rng_states()`). keep: how many complete checkpoints to keep (None: all).
    Every rank must call it (DeepSpeed writes each rank's optimizer partition); rank 0 writes the rest.
    """
    if step < 0:
        raise ValueError(f"save_checkpoint: step must be >= 0, got {step}")
    if keep is not None and keep < 1:
        raise ValueError(f"save_checkpoint: keep must be >= 1 or None (keep all), got {keep}")
    root = Path(dir_root)
    name = f"step-{step}"
    tmp = root / f".tmp-{name}"
    rank = _rank()
    rng = dict(rng_states) if rng_states is not None else capture_rng_states()
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale(root)
        tmp.mkdir()
    _barrier()

    # Collective: every rank writes its part (under ZeRO its optimizer partition).
    learner.engine.save_checkpoint(str(tmp / DEEPSPEED_DIR), tag=DEEPSPEED_TAG, save_latest=False)
    _barrier()

    final = root / name
    if rank == 0:
        version = int(learner.version)
        run_state = {
            "step": int(step),
            "version": version,
            "learner_steps": int(getattr(learner, "steps", 0)),
            "counters": dict(counters or {}),
            "rng_states": rng,
        }
        _write_pickle(tmp / RUN_STATE, run_state)
        if sampler is not None:
            (tmp / SAMPLER).write_text(json.dumps(sampler.state_dict()))
        if replay is not None:
            _write_pickle(tmp / REPLAY, replay.state_dict())
        _write_pickle(tmp / BUFFERED, list(buffered_groups))
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "step": int(step),
            "policy_version": version,
            "learner_steps": run_state["learner_steps"],
            "counters": _jsonable(run_state["counters"]),
            "buffered_groups": len(buffered_groups),
            "has_sampler": sampler is not None,
            "has_replay": replay is not None,
            "created": time.time(),
            "files": _file_list(tmp),
        }
        _write_manifest(tmp, manifest)
        _fsync_tree(tmp)
        _install(root, tmp, final)
        _write_latest(root, name)
        if keep is not None:
            _retain(root, keep, final)
    _barrier()
    return final


def _jsonable(value: Any) -> Any:
    """`value` when JSON can hold it, else its repr (the manifest is for people and tools, the pickle for resume)."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _install(root: Path, tmp: Path, final: Path) -> None:
    """Rename the finished temporary directory to its final name, replacing an older save of the same step."""
    trash = None
    if final.exists():
        # Re-saving a step (a resume from an older checkpoint): move the old one aside first, as a
        # rename cannot replace a non-empty directory; find_latest skips the gap if we crash here.
        trash = root / f".trash-{final.name}-{os.getpid()}"
        os.replace(final, trash)
    os.replace(tmp, final)
    _fsync_path(root)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _remove_stale(root: Path) -> None:
    """Delete temporary directories left by crashed saves (rank 0, before a new save starts)."""
    for child in root.iterdir():
        if child.is_dir() and child.name.startswith((".tmp-step-", ".trash-step-")):
            shutil.rmtree(child, ignore_errors=True)


def _retain(root: Path, keep: int, newest: Path) -> None:
    """Delete all but the `keep` highest-step complete checkpoints (never `newest`)."""
    steps = checkpoint_steps(root)
    for _, path in steps[: max(0, len(steps) - keep)]:
        if path != newest:
            shutil.rmtree(path, ignore_errors=True)


# -- load -----------------------------------------------------------------------------------------------


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The manifest of checkpoint directory `path`, checked for a known schema version."""
    path = Path(path)
    file = path / MANIFEST
    if not file.is_file():
        raise FileNotFoundError(
            f"{path} is not a complete checkpoint (no {MANIFEST}); pass a step-N directory or the checkpoint "
            "root, whose `latest` names the newest complete one"
        )
    manifest = json.loads(file.read_text())
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"checkpoint {path} has schema version {manifest.get('schema_version')!r}; this droidrl reads "
            f"version {SCHEMA_VERSION}"
        )
    return manifest


def verify_checkpoint(path: Path | str, mode: str = "sha256") -> dict[str, Any]:
    """Check every file the manifest lists (size, or size and sha256); returns the manifest."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, got {mode!r}")
    path = Path(path)
    manifest = read_manifest(path)
    if mode == "none":
        return manifest
    for rel, entry in manifest["files"].items():
        file = path / rel
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint {path} is missing {rel}; it is damaged: resume from an older step")
        size = file.stat().st_size
        if size != entry["size"]:
            raise ValueError(
                f"checkpoint {path}: {rel} has {size} bytes, the manifest says {entry['size']}; it is damaged: "
                "resume from an older step"
            )
        if mode == "sha256" and _sha256(file) != entry["sha256"]:
            raise ValueError(
                f"checkpoint {path}: {rel} does not match its sha256 in the manifest; it is damaged: resume from "
                "an older step"
            )
    return manifest


def load_checkpoint(
    path: Path | str,
    learner: Any,
    sampler: Any = None,
    replay: Any = None,
    restore_rng: bool = True,
    verify: str = "sha256",
) -> RunState:
    """Load a checkpoint into `learner`, `sampler` and `replay` in place; returns the rest as a RunState.

    `path` is a step-N directory or a checkpoint root (its newest complete checkpoint is used). The
    learner must be built with the same model and config (DeepSpeed loads weights, optimizer and LR
    schedule into it); its `version` and `steps` are set from the checkpoint. restore_rng sets the
    global python/numpy/torch RNGs back to their state at the save. verify: "sha256" (default),
    "size" (faster for huge models) or "none".
    """
    path = Path(path)
    if not (path / MANIFEST).is_file():
        latest = find_latest(path)
        if latest is None:
            raise FileNotFoundError(
                f"no complete checkpoint at {path}: neither a step-N directory with {MANIFEST} nor a root holding one"
            )
        path = latest
    manifest = verify_checkpoint(path, verify)
    if sampler is not None and not manifest.get("has_sampler"):
        raise ValueError(f"checkpoint {path} holds no sampler state; load it with sampler=None")
    if replay is not None and not manifest.get("has_replay"):
        raise ValueError(f"checkpoint {path} holds no replay buffer state; load it with replay=None")

    loaded, _ = learner.engine.load_checkpoint(
        str(path / DEEPSPEED_DIR),
        tag=DEEPSPEED_TAG,
        load_optimizer_states=True,
        load_lr_scheduler_states=True,
    )
    if loaded is None:
        raise RuntimeError(f"DeepSpeed could not load {path / DEEPSPEED_DIR}; see its log above for the reason")
    run_state = _read_pickle(path / RUN_STATE)
    learner.version = int(run_state["version"])
    if hasattr(learner, "steps"):
        learner.steps = int(run_state["learner_steps"])
    if sampler is not None:
        sampler.load_state_dict(json.loads((path / SAMPLER).read_text()))
    if replay is not None:
        replay.load_state_dict(_read_pickle(path / REPLAY))
    buffered = _read_pickle(path / BUFFERED)
    if restore_rng:
        restore_rng_states(run_state["rng_states"])
    return RunState(
        path=path,
        step=int(run_state["step"]),
        version=int(run_state["version"]),
        learner_steps=int(run_state["learner_steps"]),
        counters=dict(run_state["counters"]),
        buffered_groups=list(buffered),
        rng_states=run_state["rng_states"],
        manifest=manifest,
    )


# -- release ---------------------------------------------------------------------------------------------


def export_hf(learner: Any, out: Path | str) -> Path:
    """Write the learner's current policy as a Hugging Face model directory `out` (new); returns it.

    Delegates to `Learner.export_weights` (safetensors + the source model's config and tokenizer,
    written atomically), so `transformers`, vLLM and `droidrl train` load it directly.
    """
    return learner.export_weights(Path(out))
