"""android_world's 116 AndroidWorld tasks as droidrl task templates and suites (when android_world is importable).

Names. A task is `aw.<RegistryName>` (e.g. `aw.SystemWifiTurnOff`); its instance `aw.<Name>:<seed>` is
android_world's instance for that instance seed: `random.seed(seed)`, `generate_random_params()` (its
`suite_utils._instantiate_task`), so params and goal are android_world's own. android_world's suite with
`task_random_seed` r and `n_task_combinations` n is the instance seeds sha256(f"{r}_{Name}_{i}") % 2**32 for
i < n (`create_suite`); `suite_tasks(name, n, r)` lists exactly those ids (r = 30, its default, n = 1 unless
told). Training samples other seeds (e.g. `curriculum.seed_pool`), each a valid android_world instance too.

Suites (merged into `registry.suites()`): `androidworld` (the 116), `androidworld-easy|medium|hard` (the
difficulty in android_world's task_metadata.json), `androidworld-operation|query`, one per app,
`androidworld-<app>` with android_world's app name, spaces as `_` (`androidworld-simple_calendar_pro`), and
`androidworld-sim`: the tasks whose apps droidrl's simulated phone has (62). On a phone that lacks a task's
app, its setup raises `TaskUnavailableOnDevice` naming the app.

Protocol (android_world's runner, `suite_utils._run_task`/`run`):
- `setup` = a fresh instance of the task (params deep-copied) and its `initialize_task` on android_world's
  env built over the device (envs/tasks/android_world_bridge.py); every episode, never from a cached snapshot;
- the step budget is `int(10 * complexity)` (`_allocate_step_budget`);
- `evaluate(device, answer)` = `is_successful` with `env.interaction_cache = answer` (query tasks take their
  answer from `finish(message=...)`), then `tear_down`; `AndroidEnv` gives the reward only when the agent
  finished (`requires_finish`): a truncated episode scores 0 even in the goal state (info["checker"] has it).

API for other parts (e.g. `droidrl eval`):
- `available()`, `require(key)`: whether android_world imports; `require` raises `AndroidWorldUnavailable`
  naming the config key that asked for android_world tasks.
- `suites()` -> {suite name: [template names]}; `suite_tasks(name, n_task_combinations=1, task_random_seed=30)`
  -> task ids `aw.Name:<instance seed>` (android_world's suite, in its order); `instance_seed(r, aw_name, i)`.
- `get_template(name)` -> `AndroidWorldTemplate`; `make_task(id_or_name, seed)` -> droidrl `Task` (its
  `goal`, `max_steps`, `difficulty`, `template.kind`, `setup(device)`, `evaluate(device, answer)`,
  `expert(device)`), usable as `AndroidEnv.reset(options={"task": ...})` like any droidrl task.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import random
import re
import threading
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from droidrl.envs.actions import Action
from droidrl.envs.device import Device
from droidrl.envs.errors import DeviceUnavailable
from droidrl.envs.tasks.android_world_bridge import AndroidWorldUnavailable, world_env
from droidrl.envs.tasks.base import Params, Task, TaskTemplate

__all__ = [
    "AndroidWorldTemplate",
    "AndroidWorldUnavailable",
    "TaskUnavailableOnDevice",
    "available",
    "get_template",
    "instance_seed",
    "is_android_world_name",
    "make_task",
    "off_simulated_phone",
    "require",
    "step_budget",
    "suite_tasks",
    "suites",
]

SUITE = "androidworld"
PREFIX = "aw"
TASK_RANDOM_SEED = 30  # android_world's default task_random_seed (run.py), MobileRL evaluates with it too
_NAME = re.compile(r"^aw\.([A-Za-z0-9_]+)$")
# Information-retrieval tasks name no app (app_names is empty); their registry name says which app they query.
_IR_PREFIX_APPS = {
    "SimpleCalendar": "simple calendar pro",
    "Tasks": "tasks",
    "SportsTracker": "open tracks sports tracker",
    "Notes": "joplin",
}
_HELPER_PACKAGES = {"clipper": "ca.zgrs.clipper"}  # not a launcher app: android_world's clipboard helper APK


# ---- availability -------------------------------------------------------------------------------------------
@cache
def available() -> bool:
    """True when `import android_world` works in this process."""
    try:
        with warnings.catch_warnings():  # pydub, which android_world imports, warns (no ffmpeg; audioop)
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            importlib.import_module("android_world.registry")
    except ImportError:
        return False
    return True


def require(key: str = "tasks") -> None:
    """Raise `AndroidWorldUnavailable` naming `key` when android_world is not importable."""
    if not available():
        raise AndroidWorldUnavailable(
            f"{key}: android_world tasks were requested but android_world is not importable in this Python; "
            "install it (pip install --no-deps <android_world checkout>; its requirements are the "
            "`androidworld` extra) or choose droidrl's own tasks (`droidrl tasks` lists them)"
        )


def is_android_world_name(name: str) -> bool:
    """True for an android_world template or suite name (`aw.X`, `aw.X:seed`, `androidworld...`)."""
    name = name.partition(":")[0].strip()
    return bool(_NAME.match(name)) or name == SUITE or name.startswith(SUITE + "-")


# ---- the registry ---------------------------------------------------------------------------------------------
@cache
def _registry() -> dict[str, Any]:
    """android_world's AndroidWorld family: registry name -> TaskEval class (116 tasks)."""
    require()
    from android_world import registry

    return dict(registry.TaskRegistry().get_registry(registry.TaskRegistry.ANDROID_WORLD_FAMILY))


@cache
def _metadata() -> dict[str, dict[str, Any]]:
    import android_world

    path = Path(android_world.__file__).parent / "task_metadata.json"
    return {row["task_name"]: row for row in json.loads(path.read_text())}


def _is_query(cls: type) -> bool:
    from android_world.task_evals.information_retrieval import information_retrieval

    return issubclass(cls, information_retrieval.InformationRetrieval)  # these read env.interaction_cache


def _app_names(name: str, cls: type) -> tuple[str, ...]:
    apps = tuple(app for app in cls.app_names if app)
    if apps:
        return apps
    return tuple(app for prefix, app in _IR_PREFIX_APPS.items() if name.startswith(prefix))[:1]


def _package(app: str) -> str:
    if app in _HELPER_PACKAGES:
        return _HELPER_PACKAGES[app]
    from android_world.env import adb_utils

    activity = adb_utils.get_adb_activity(app)
    return adb_utils.extract_package_name(activity) if activity else app


def step_budget(complexity: float) -> int:
    """android_world's runner's step budget for a task of this complexity (`_allocate_step_budget`)."""
    return int(10 * complexity)


def instance_seed(task_random_seed: int, aw_name: str, index: int) -> int:
    """create_suite's seed of instance `index` of task `aw_name` (its `_get_instance_seed`; registry name)."""
    import hashlib

    return int(hashlib.sha256(f"{task_random_seed}_{aw_name}_{index}".encode()).hexdigest(), 16) % (2**32)


_random_lock = threading.Lock()


def _android_world_instance(cls: type, seed: int) -> Any:
    """android_world's own instance for `seed` (its `_instantiate_task`), leaving Python's `random` as it was."""
    from android_world import suite_utils

    with _random_lock:
        state = random.getstate()
        try:
            return suite_utils._instantiate_task(cls, seed=seed)
        finally:
            random.setstate(state)


# ---- templates -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AndroidWorldTemplate(TaskTemplate):
    """One android_world task class as a droidrl template; `instance(seed)` is android_world's for that seed."""

    aw_name: str = ""
    complexity: float = 1.0
    requires_finish: bool = True  # android_world's runner: success counts only when the agent said it is done
    cache_snapshots: bool = False  # initialize_task runs every episode (it also sets host-side task state)

    def instance(self, seed: int) -> Task:
        if isinstance(seed, bool) or not 0 <= int(seed) < 2**32:
            raise ValueError(f"{self.name}: an android_world instance seed is an integer in [0, 2**32), got {seed!r}")
        made = _android_world_instance(_registry()[self.aw_name], int(seed))
        return Task(template=self, seed=int(seed), params=made.params, goal=made.goal, max_steps=self.max_steps or 1)


@cache
def _template(aw_name: str) -> AndroidWorldTemplate:
    cls = _registry()[aw_name]
    apps = _app_names(aw_name, cls)
    meta = _metadata().get(aw_name, {})
    return AndroidWorldTemplate(
        name=f"{PREFIX}.{aw_name}",
        apps=tuple(dict.fromkeys(_package(app) for app in apps)) or ("com.google.android.apps.nexuslauncher",),
        goal=cls.template,
        difficulty=meta.get("difficulty", "hard"),
        kind="query" if _is_query(cls) else "operation",
        evaluate=_evaluate,
        expert=_expert,
        setup=_setup_for(aw_name),
        max_steps=step_budget(cls.complexity),
        tags=tuple(tag for tag in meta.get("tags", ()) if tag),
        aw_name=aw_name,
        complexity=float(cls.complexity),
    )


def get_template(name: str) -> AndroidWorldTemplate:
    """The template `aw.<Name>`; KeyError with close names when there is none."""
    match = _NAME.match(name.strip())
    if match is None:
        raise KeyError(f"{name!r} is not an android_world task name (aw.<RegistryName>, e.g. aw.SystemWifiTurnOff)")
    require("task")
    (aw_name,) = match.groups()
    if aw_name not in _registry():
        lowered = {key.lower(): key for key in _registry()}
        if aw_name.lower() not in lowered:
            close = [f"aw.{key}" for key in _registry() if aw_name.lower() in key.lower()][:8]
            hint = f" Did you mean: {', '.join(close)}?" if close else f" The suite {SUITE!r} lists all 116."
            raise KeyError(f"android_world has no task {aw_name!r}.{hint}")
        aw_name = lowered[aw_name.lower()]
    return _template(aw_name)


def make_task(spec: str, seed: int | None = None) -> Task:
    """A task from `aw.Name:seed` (or `aw.Name` with `seed`, default 0), seed being android_world's instance seed."""
    name, sep, index_text = spec.partition(":")
    if sep:
        try:
            seed = int(index_text)
        except ValueError:
            raise ValueError(f"task spec {spec!r}: the part after ':' must be an integer instance seed") from None
    return get_template(name).instance(0 if seed is None else seed)


def _slug(app: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", app.lower()).strip("_")


@cache
def suites() -> dict[str, list[str]]:
    """android_world's suites by name -> template names; {} when android_world is not importable."""
    if not available():
        return {}
    templates = {name: _template(name) for name in _registry()}
    named: dict[str, list[str]] = {SUITE: [t.name for t in templates.values()]}
    for difficulty in ("easy", "medium", "hard"):
        named[f"{SUITE}-{difficulty}"] = [t.name for t in templates.values() if t.difficulty == difficulty]
    for kind in ("operation", "query"):
        named[f"{SUITE}-{kind}"] = [t.name for t in templates.values() if t.kind == kind]
    for aw_name, template in templates.items():
        for app in _app_names(aw_name, _registry()[aw_name]):
            named.setdefault(f"{SUITE}-{_slug(app)}", []).append(template.name)
    simulated = _simulated_packages()
    named[f"{SUITE}-sim"] = [t.name for t in templates.values() if set(t.apps) <= simulated]
    return named


def off_simulated_phone(names: list[str]) -> list[str]:
    """The android_world template names among `names` that droidrl's simulated phone cannot run (an app missing)."""
    android_world_names = [name for name in names if _NAME.match(name)]
    if not android_world_names:
        return []
    runnable = set(suites()[f"{SUITE}-sim"])
    return [name for name in android_world_names if name not in runnable]


def _simulated_packages() -> set[str]:
    """The app packages of droidrl's simulated phone (its `androidworld-sim` suite: the tasks it can run)."""
    from droidrl.envs.sim.apps import default_apps

    return {app.package for app in default_apps()}


def suite_tasks(name: str, n_task_combinations: int = 1, task_random_seed: int = TASK_RANDOM_SEED) -> list[str]:
    """Task ids `aw.Name:<seed>` of suite `name`: android_world's `create_suite(n_task_combinations, seed)`.

    Tasks in suite order, each with its n instance seeds in instance order.
    """
    require("suite")
    if n_task_combinations < 1:
        raise ValueError(f"n_task_combinations must be at least 1, got {n_task_combinations}")
    named = suites()
    if name not in named:
        raise KeyError(f"no android_world suite {name!r}; suites: {', '.join(sorted(named))}")
    ids: list[str] = []
    for template_name in named[name]:
        aw_name = template_name.partition(".")[2]
        ids.extend(f"{template_name}:{instance_seed(task_random_seed, aw_name, i)}" for i in range(n_task_combinations))
    return ids


# ---- one episode: android_world's initialize_task / is_successful / tear_down on the device -----------------------
@dataclass
class _Live:
    """The android_world instance of the device's current episode, and its expert's state."""

    task_name: str
    instance: Any
    expert: Any = None


_live: weakref.WeakKeyDictionary[Any, _Live] = weakref.WeakKeyDictionary()
_live_lock = threading.Lock()


def _setup_for(aw_name: str) -> Any:
    """The setup of task `aw_name`: a fresh android_world instance (params copied) and its initialize_task."""

    def setup(device: Device, params: Params) -> None:
        _check_apps(device, aw_name, params)
        instance = _registry()[aw_name](copy.deepcopy(params))
        world = world_env(device)
        with _adb_failures_as_unavailable(world, f"aw.{aw_name} initialize_task"):
            instance.initialize_task(world.env)
        with _live_lock:
            _live[device] = _Live(aw_name, instance)

    return setup


class TaskUnavailableOnDevice(ValueError):
    """The phone lacks an app the android_world task needs (not a device failure: another phone would too)."""


def _check_apps(device: Device, aw_name: str, params: Params) -> None:
    # OpenAppTaskEval lists every app it may open; an instance opens one.
    one_app = aw_name == "OpenAppTaskEval"
    needed = {_package(params["app_name"])} if one_app else set(_template(aw_name).apps)
    listed = device.shell("pm list packages")
    installed = {line.removeprefix("package:").strip() for line in listed.splitlines() if line.startswith("package:")}
    missing = sorted(needed - installed)
    if missing:
        raise TaskUnavailableOnDevice(
            f"aw.{aw_name} needs {', '.join(missing)}, which {device!r} lacks; install the app (android_world's "
            f"emulator setup does) or, on droidrl's simulated phone, train on the {SUITE}-sim suite"
        )


def _expert(device: Device, params: Params) -> Action:
    with _live_lock:
        live = _live.get(device)
    if live is None:
        raise RuntimeError("the android_world task's expert runs after its setup on this device")
    if live.expert is None:
        from droidrl.envs.tasks import android_world_experts

        live.expert = android_world_experts.expert_for(live.task_name, params)
        if live.expert is None:
            raise NotImplementedError(f"no expert for android_world's {live.task_name} yet")
    return live.expert(device)


def _evaluate(device: Device, params: Params, answer: str | None) -> float:
    with _live_lock:
        live = _live.pop(device, None)
    if live is None:
        raise RuntimeError("evaluate() of an android_world task needs its setup() on the same device first")
    world = world_env(device)
    world.env.interaction_cache = answer or ""
    with _adb_failures_as_unavailable(world, f"aw.{live.task_name} is_successful/tear_down"):
        try:
            return float(live.instance.is_successful(world.env))
        finally:
            live.instance.tear_down(world.env)


@contextlib.contextmanager
def _adb_failures_as_unavailable(world: Any, what: str) -> Iterator[None]:
    """adb that stops answering mid-task is a dead device (the pool replaces it and retries the episode)."""
    from android_env.components import errors as android_env_errors

    try:
        yield
    except android_env_errors.AdbControllerError as error:
        raise DeviceUnavailable(world.address.serial, f"{what}: adb failed ({str(error)[:300]})") from error
