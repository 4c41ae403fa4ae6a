"""Chaos benchmark: `droidrl train` under seeded faults, then its lost and duplicated steps and groups, counted.

A seeded schedule kills devices, env actors, an engine actor and the trainer itself (SIGKILL, then `--resume`)
and damages the newest checkpoint once.

The run is the embedded default `droidrl train` shortened to a few steps (overrides below; more after `--`), in its
own run directory, on a private Ray cluster this script starts on loopback and the trainer joins (RAY_ADDRESS), so
the faults go through the public handles: `ray.util.state.list_actors` and `ray.get_actor` by name, `ray.kill`,
the env actor's `kill_device`, and `os.kill`. The figures come from what the run wrote (metrics.jsonl, the Parquet
records of every trained step and evaluation, evals.json, logs/droidrl.log), not from the trainer's own claims.

    python benchmarks/chaos.py [--seed 0] [--faults device,env_actor,engine_actor,trainer,corrupt] [-- KEY=VALUE ...]

A step is lost when metrics.jsonl has no row for it or its rollouts/step-N.parquet is missing, duplicated when it
has two rows; a group is lost when a step trained fewer than collector.batch_size groups or a group has fewer than
collector.group_size episodes, duplicated when one group id is trained at two steps. Device kills need a handle on
the env actor, which Ray gives only by name: while env actors are unnamed they are reported "not injected".

The last line reads `lost steps 0, duplicated steps 0, lost groups 0, duplicated groups 0` on a run that survived;
the exit status is 0 then, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The embedded default, shortened: a few steps with a checkpoint after each (a resume has one to go back to), two
# env actors (one can die while the other works on) and two engine replicas behind the router (one can die).
SHORTEN = ["steps=4", "checkpoint.every=1", "env.phones_per_actor=4", "resources.engines=2"]
KINDS = ("device", "env_actor", "engine_actor", "trainer", "corrupt")
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "RAY_ADDRESS")
DROPPED = re.compile(r"group (\S+) \((\S+)\) dropped: (.*)")
FAILURE = re.compile(r"episode failure \((\w+)\): (.*)")


@dataclass
class Fault:
    """One injection: `kind` fires `delay_s` after the run starts collecting step `step`.

    Step 0 is the evaluation before RL; `pick` chooses the target among those alive then. A trainer fault
    with `corrupt` also damages the newest checkpoint before the resume.
    """

    kind: str
    step: int
    delay_s: float
    pick: int
    corrupt: bool = False
    fired: str = ""  # what was done, once done


def schedule(seed: int, steps: int, kinds: set[str], eval_before: bool) -> list[Fault]:
    """The seeded faults, in the order they fire."""
    rng = random.Random(seed)
    faults = []

    def add(kind: str, low: int, high: int, **extra: Any) -> None:
        step = rng.randint(low, max(low, high))
        faults.append(Fault(kind, step, round(rng.uniform(0.5, 4.0), 2), rng.randrange(1 << 16), **extra))

    last = max(1, steps - 1)  # not the last step: a fault there may come after the run is done
    if "device" in kinds:
        if eval_before:
            add("device", 0, 0)  # the evaluation's groups must survive it too
        add("device", 1, last)
    if "env_actor" in kinds:
        add("env_actor", 1, last)
    if "engine_actor" in kinds:
        add("engine_actor", 1, last)
    if "trainer" in kinds:
        # Two checkpoints before it (step >= 3): a damaged newest one leaves an older one to resume from.
        add("trainer", min(3, steps), max(min(3, steps), last), corrupt="corrupt" in kinds)
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(faults, key=lambda f: (f.step, order[f.kind]))


# ---- the run's state, read from its directory and from Ray -------------------------------------------------


def step_rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl's step rows (a trained step's row has "version"; evaluations log rows without it)."""
    path = run_dir / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a torn line of a killed writer
            if "version" in row:
                rows.append(row)
    return rows


def completed(run_dir: Path) -> int:
    return max((int(row["step"]) for row in step_rows(run_dir)), default=0)


def evaluated_before(run_dir: Path) -> bool:
    path = run_dir / "evals.json"
    try:
        return path.is_file() and any(e["step"] == 0 for e in json.loads(path.read_text()))
    except ValueError:
        return False


def checkpoint_done(run_dir: Path, step: int) -> bool:
    return (run_dir / "checkpoints" / f"step-{step}" / "manifest.json").is_file()


class NoHandle(RuntimeError):
    """The fault's target cannot be reached through a public handle."""


class Cluster:
    """A private Ray cluster on loopback for the trainer to join, and the actors' handles for the faults."""

    def __init__(self, phones: int) -> None:
        import ray

        from droidrl.cluster.launch import _loopback_node
        from droidrl.envs.ports import free_server_port

        port = free_server_port()
        with _loopback_node():
            context = ray.init(
                resources={"android": phones},
                include_dashboard=True,  # the state API (list_actors) is served by it
                dashboard_host="127.0.0.1",
                dashboard_port=port,
                _node_ip_address="127.0.0.1",
                logging_level="ERROR",
                log_to_driver=False,
            )
        self.address = "127.0.0.1:" + context.address_info["gcs_address"].rsplit(":", 1)[1]
        self.api = f"http://127.0.0.1:{port}"

    def actors(self, class_name: str) -> list[Any]:
        """The live actors of `class_name` that the newest job (the trainer running now) started."""
        from ray.util.state import list_actors

        found = list_actors(
            address=self.api, filters=[("class_name", "=", class_name), ("state", "=", "ALIVE")], detail=True
        )
        newest = max((a.job_id for a in found), default=None)
        return sorted((a for a in found if a.job_id == newest), key=lambda a: a.actor_id)

    def episodes_started(self) -> bool:
        """Whether the trainer running now has started episodes (an env actor ran a reset for its job)."""
        from ray.util.state import list_tasks

        actors = self.actors("EnvActor")
        if not actors:
            return False
        filters = [("job_id", "=", actors[0].job_id), ("name", "=", "EnvActor.reset")]
        return bool(list_tasks(address=self.api, filters=filters, limit=1, raise_on_missing_output=False))

    @staticmethod
    def handle(actor: Any) -> Any:
        """A handle on `actor` by its name; NoHandle when it has none (Ray has no public handle on unnamed actors)."""
        import ray

        if not actor.name:
            raise NoHandle(f"{actor.class_name} {actor.actor_id[:8]} has no name, so no handle reaches it")
        return ray.get_actor(actor.name, namespace=actor.ray_namespace)

    def close(self) -> None:
        import ray

        ray.shutdown()  # stops the processes this script's ray.init started, and only those


# ---- the faults --------------------------------------------------------------------------------------------


class Trainer:
    """The `droidrl train` process (then its `--resume`s), each in its own session so a SIGKILL takes its children."""

    def __init__(self, run_dir: Path, overrides: list[str], ray_address: str) -> None:
        self.run_dir = run_dir
        self.overrides = overrides
        # The cluster listens on loopback only; Ray's single-machine switch makes the trainer's own node 127.0.0.1
        # too, else Ray rewrites a 127.0.0.1 address into the machine's routable one, where nothing listens.
        joined = {"RAY_ADDRESS": ray_address, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        self.env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV} | joined
        self.starts = 0
        self.process: subprocess.Popen | None = None
        self.logs = run_dir.parent / f"{run_dir.name}.chaos"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, resume: bool) -> None:
        self.starts += 1
        command = [sys.executable, "-m", "droidrl.train", *(["--resume"] if resume else []), *self.overrides]
        out = (self.logs / f"train-{self.starts}.log").open("w")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def poll(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def tail(self, lines: int = 15) -> str:
        text = (self.logs / f"train-{self.starts}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _die_with_parent() -> None:
    """In the trainer's process, before exec: the kernel SIGKILLs it if this script dies (Linux), so none is left."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def corrupt_newest(run_dir: Path) -> str:
    """Flip bytes in the middle of the newest checkpoint's largest file (size kept: only the sha256 tells)."""
    steps = sorted(
        (int(p.name.removeprefix("step-")), p)
        for p in (run_dir / "checkpoints").glob("step-*")
        if (p / "manifest.json").is_file()
    )
    _, newest = steps[-1]
    target = max((p for p in newest.rglob("*") if p.is_file() and p.name != "manifest.json"), key=_size)
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    target.write_bytes(bytes(data))
    return f"{target.relative_to(run_dir)} ({len(data)} bytes, 64 flipped)"


def _size(path: Path) -> int:
    return path.stat().st_size


def inject(fault: Fault, cluster: Cluster, trainer: Trainer, run_dir: Path) -> str:
    """Do `fault`; returns what was done (empty when there was no target alive to hit)."""
    import ray

    if fault.kind == "device":
        actors = cluster.actors("EnvActor")
        if not actors:
            return ""
        actor = actors[fault.pick % len(actors)]
        handle = cluster.handle(actor)
        devices = ray.get(handle.devices.remote(), timeout=60)
        device = devices[(fault.pick // len(actors)) % len(devices)]
        ray.get(handle.kill_device.remote(device), timeout=60)
        return f"killed device {device}"
    if fault.kind == "env_actor":
        actors = cluster.actors("EnvActor")
        if not actors:
            return ""
        actor = actors[fault.pick % len(actors)]
        os.kill(actor.pid, signal.SIGKILL)
        return f"SIGKILL env actor pid {actor.pid}"
    if fault.kind == "engine_actor":
        actors = cluster.actors("EngineActor")
        if not actors:
            return ""
        actor = actors[fault.pick % len(actors)]
        ray.kill(cluster.handle(actor), no_restart=True)
        return f"ray.kill engine actor {actor.name}"
    if fault.kind == "trainer":
        trainer.kill()
        done = f"SIGKILL droidrl train pid {trainer.process.pid} after step {completed(run_dir)}"
        if fault.corrupt:
            done += f"; corrupted the newest checkpoint: {corrupt_newest(run_dir)}"
        trainer.start(resume=True)
        return done + "; started droidrl train --resume"
    raise ValueError(f"unknown fault kind {fault.kind!r}")


class _Once:
    """`function()` computed on the first call, then remembered."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.value: Any = None
        self.done = False

    def __call__(self) -> Any:
        if not self.done:
            self.value, self.done = self.function(), True
        return self.value


def due(fault: Fault, run_dir: Path, eval_before: bool, episodes_started: Any) -> bool:
    """Whether the run is where `fault` waits for: collecting its step (or in the evaluation before RL).

    Device, actor and engine faults wait until the trainer running now has started episodes, so they
    hit work in progress rather than a trainer still starting its parts.
    """
    done = completed(run_dir)
    if fault.kind == "trainer":  # after the checkpoint of the step before (it is written off the loop)
        return done >= fault.step - 1 and checkpoint_done(run_dir, fault.step - 1)
    if fault.step == 0:
        ready = not evaluated_before(run_dir)
    else:
        ready = (evaluated_before(run_dir) or not eval_before) and done >= fault.step - 1
    return ready and bool(episodes_started())


# ---- the count --------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What the run's records say after the chaos."""

    finished: bool
    faults: dict[str, int]
    fault_log: list[str]
    retries: int
    failures: dict[str, int]
    dropped: list[str]
    eval_dropped: dict[int, int]
    steps_once: list[int]
    lost_steps: list[int]
    duplicated_steps: list[int]
    lost_groups: int
    duplicated_groups: int
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        losses = (self.lost_steps, self.duplicated_steps, self.lost_groups, self.duplicated_groups)
        return self.finished and not any(losses)


def _parquet_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    columns = ["batch_id", "group_id", "episode_id", "attempts"]
    return pq.read_table(path, columns=columns).to_pylist()


def count(run_dir: Path, steps: int, batch: int, group: int) -> tuple[dict[str, Any], list[str]]:
    """Steps and groups lost or duplicated, and retries, from metrics.jsonl and the Parquet records."""
    problems = []
    per_step = Counter(int(row["step"]) for row in step_rows(run_dir))
    lost_steps, duplicated_steps, once = [], [], []
    lost_groups = duplicated_groups = retries = 0
    seen_groups: dict[str, int] = {}
    for step in range(1, steps + 1):
        path = run_dir / "rollouts" / f"step-{step:06d}.parquet"
        if per_step[step] == 0 or not path.is_file():
            lost_steps.append(step)
            lost_groups += batch
            problems.append(
                f"step {step}: {per_step[step]} metric rows, records {'present' if path.is_file() else 'missing'}"
            )
            continue
        if per_step[step] > 1:
            duplicated_steps.append(step)
            problems.append(f"step {step}: {per_step[step]} metric rows")
        else:
            once.append(step)
        episodes: dict[str, set[str]] = {}
        for row in _parquet_rows(path):
            if row["batch_id"] != step:
                problems.append(f"step {step}: a record of batch {row['batch_id']} in its file")
            first = row["episode_id"] not in episodes.setdefault(row["group_id"], set())
            episodes[row["group_id"]].add(row["episode_id"])
            retries += (row["attempts"] - 1) if first else 0
        if len(episodes) < batch:
            lost_groups += batch - len(episodes)
            problems.append(f"step {step}: {len(episodes)} groups trained, the batch is {batch}")
        for group_id, members in episodes.items():
            if len(members) < group:
                lost_groups += 1
                problems.append(f"step {step}: group {group_id} has {len(members)} of {group} episodes")
            if group_id in seen_groups:
                duplicated_groups += 1
                problems.append(f"group {group_id} trained at steps {seen_groups[group_id]} and {step}")
            seen_groups[group_id] = step
    extra = sorted(s for s in per_step if s > steps)
    if extra:
        duplicated_steps += extra
        problems.append(f"steps past the last: {extra}")
    for path in sorted((run_dir / "evals").glob("step-*.parquet")):
        episodes_seen: set[str] = set()
        for row in _parquet_rows(path):
            if row["episode_id"] not in episodes_seen:
                episodes_seen.add(row["episode_id"])
                retries += row["attempts"] - 1
    figures = {
        "steps_once": once,
        "lost_steps": lost_steps,
        "duplicated_steps": duplicated_steps,
        "lost_groups": lost_groups,
        "duplicated_groups": duplicated_groups,
        "retries": retries,
    }
    return figures, problems


def read_log(run_dir: Path) -> tuple[dict[str, int], list[str]]:
    """Episode failures by kind and every dropped group with its reason, from the run's log (all its processes)."""
    failures: Counter[str] = Counter()
    dropped = []
    path = run_dir / "logs" / "droidrl.log"
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            if match := FAILURE.search(line):
                failures[match.group(1)] += 1
            elif match := DROPPED.search(line):
                dropped.append(f"{match.group(1)} ({match.group(2)}): {match.group(3)}")
    return dict(failures), dropped


def eval_drops(run_dir: Path) -> dict[int, int]:
    path = run_dir / "evals.json"
    if not path.is_file():
        return {}
    return {int(e["step"]): int(e.get("dropped_groups", 0)) for e in json.loads(path.read_text())}


# ---- the benchmark ----------------------------------------------------------------------------------------


def run(seed: int, kinds: set[str], run_dir: Path, extra: list[str], timeout_s: float) -> Figures:
    from droidrl.trainer.config import load_config

    overrides = [*SHORTEN, *extra, f"run_dir={run_dir}"]
    config = load_config(None, overrides)  # a bad override fails here, before anything starts
    faults = schedule(seed, config.steps, kinds, config.eval.before)
    print(f"run: droidrl train {' '.join(overrides)}")
    print(
        "schedule: " + ", ".join(f"{f.kind}{'+corrupt' if f.corrupt else ''}@step{f.step}+{f.delay_s}s" for f in faults)
    )
    started = time.monotonic()
    cluster = Cluster(config.env.phones)
    trainer = Trainer(run_dir, overrides, cluster.address)
    finished = False
    fault_log: list[str] = []
    try:
        trainer.start(resume=False)
        pending = list(faults)
        armed: dict[int, float] = {}  # fault index -> when its trigger was first seen; each fault arms on its own
        while True:
            rc = trainer.poll()
            if rc is not None:
                finished = rc == 0
                if not finished:
                    fault_log.append(f"droidrl train exited with status {rc}:\n{trainer.tail()}")
                break
            if time.monotonic() - started > timeout_s:
                trainer.kill()
                fault_log.append(f"timed out after {timeout_s:.0f} s at step {completed(run_dir)}")
                break
            live = _Once(cluster.episodes_started)  # asked at most once a round: the state API is not free
            for fault in list(pending):
                key = id(fault)
                if key not in armed:
                    if not due(fault, run_dir, config.eval.before, live):
                        continue
                    armed[key] = time.monotonic()
                if time.monotonic() - armed[key] < fault.delay_s:
                    continue
                try:
                    fault.fired = inject(fault, cluster, trainer, run_dir)
                except Exception as error:  # no way to reach the target, or it went away meanwhile: say so
                    fault.fired = f"not injected ({type(error).__name__}: {error})"
                if not fault.fired:  # no target is up yet (actors starting): try again next round
                    continue
                pending.remove(fault)
                line = f"[{time.monotonic() - started:6.0f} s] {fault.kind} at step {fault.step}: {fault.fired}"
                fault_log.append(line)
                print(line, flush=True)
                if fault.kind == "trainer":  # a new trainer: the others wait for its episodes, armed anew
                    armed.clear()
                    break
            time.sleep(1.0)
        for fault in pending:
            fault_log.append(f"{fault.kind} at step {fault.step}: not injected (the run ended first)")
    finally:
        if trainer.poll() is None:
            trainer.kill()
        cluster.close()
    injected = Counter(f.kind for f in faults if f.fired and not f.fired.startswith("not injected"))
    if injected["trainer"] and any(f.corrupt for f in faults):
        injected["corrupt"] = 1
    figures, problems = count(run_dir, config.steps, config.collector.batch_size, config.collector.group_size)
    failures, dropped = read_log(run_dir)
    return Figures(
        finished=finished,
        faults=dict(injected),
        fault_log=fault_log,
        failures=failures,
        dropped=dropped,
        eval_dropped=eval_drops(run_dir),
        problems=problems,
        seconds=time.monotonic() - started,
        **figures,
    )


def report(figures: Figures) -> None:
    print(f"finished: {figures.finished} in {figures.seconds:.0f} s (a loaded machine: times are not comparable)")
    for line in figures.fault_log:
        print(f"  {line}")
    print("faults injected: " + (", ".join(f"{k} {v}" for k, v in sorted(figures.faults.items())) or "none"))
    exhausted = sum(1 for reason in figures.dropped if re.search(r"failed \d+ times; last:", reason))
    print(
        f"retries: {figures.retries} in the kept records (episodes trained on or evaluated), "
        f"{sum(figures.failures.values()) - exhausted} in the log (every process, abandoned steps included)"
    )
    print("episode failures by kind (log): " + (", ".join(f"{k} {v}" for k, v in figures.failures.items()) or "none"))
    print(f"groups dropped: {len(figures.dropped)}")
    for reason in figures.dropped:
        print(f"  {reason}")
    print(
        "evaluations, dropped groups by step: "
        + (", ".join(f"{k}: {v}" for k, v in figures.eval_dropped.items()) or "none")
    )
    print(f"steps completed exactly once: {figures.steps_once}")
    for problem in figures.problems:
        print(f"  problem: {problem}")
    print(
        f"lost steps {len(figures.lost_steps)}, duplicated steps {len(figures.duplicated_steps)}, "
        f"lost groups {figures.lost_groups}, duplicated groups {figures.duplicated_groups}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the schedule's seed")
    parser.add_argument("--faults", default=",".join(KINDS), help=f"kinds to inject, of {','.join(KINDS)}")
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/chaos-seed<SEED> (must be new)")
    parser.add_argument("--overwrite", action="store_true", help="remove --run-dir first if it exists")
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE overrides after the shortening ones (after --)")
    args = parser.parse_args(argv)
    kinds = {k.strip() for k in args.faults.split(",") if k.strip()}
    if unknown := kinds - set(KINDS):
        parser.error(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    run_dir = (args.run_dir or ROOT / "runs" / f"chaos-seed{args.seed}").resolve()
    if run_dir.exists():
        if not args.overwrite:
            parser.error(f"{run_dir} exists: pass --overwrite or another --run-dir")
        shutil.rmtree(run_dir)
    # SIGTERM ends the run as Ctrl-C does: the trainer is killed and the Ray cluster stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = run(args.seed, kinds, run_dir, args.overrides, args.timeout_s)
    report(figures)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(figures) | {"clean": figures.clean}, indent=2))
    return 0 if figures.clean else 1


if __name__ == "__main__":
    sys.exit(main())
