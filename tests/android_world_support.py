"""Helpers for running android_world's tasks on the simulated phone: install, task census, envs, the 116-task table.

`python tests/android_world_support.py [OUT.md]` writes the closing-note table of all 116 tasks.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
THIRD_PARTY = REPO.parent / "shared" / "third_party" / "android_world"
TASK_SEED = 30  # android_world's default task_random_seed, MobileRL evaluates with it too
AW_PACKAGE = "android_world"

# Names in android_world's information-retrieval tasks (which list no app_names) -> the app they query.
IR_PREFIX_APPS = {
    "SimpleCalendar": "simple calendar pro",
    "Tasks": "tasks",
    "SportsTracker": "open tracks sports tracker",
    "Notes": "joplin",
}
# Packages that are not launcher apps but that the simulated phone may provide as helpers.
HELPER_PACKAGES = {"clipper": "ca.zgrs.clipper"}
# Helper APKs the harness installs (`adb install` of a test-built APK), as android_world's emulator_setup does.
HARNESS_INSTALLS = frozenset({"ca.zgrs.clipper"})


# ---- installing android_world -----------------------------------------------------------------------
def install_android_world(target: Path, source: Path = THIRD_PARTY) -> Path:
    """`pip install --no-deps --target` a copy of the pinned android_world source (its build writes next to it).

    Returns the site directory to put on sys.path. Its setup.py compiles the two IR protos with grpcio-tools
    and imports pkg_resources (setuptools < 81), both in the `androidworld` extra.
    """
    copy = target / "src"
    site = target / "site"
    shutil.copytree(source, copy)
    command = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--quiet"]
    result = subprocess.run([*command, "--target", str(site), str(copy)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"installing android_world from {source} failed:\n{result.stdout}\n{result.stderr}")
    return site


def import_android_world(cache: Path | None = None) -> str:
    """Make `import android_world` work: as installed, else installed from the pinned copy into `cache`.

    Returns where it was imported from. Raises FileNotFoundError when it is neither installed nor available
    in ../shared/third_party (callers turn that into a skip).
    """
    try:
        module = importlib.import_module(AW_PACKAGE)
        return str(Path(module.__file__).parent)
    except ImportError:
        pass
    if not (THIRD_PARTY / "setup.py").exists():
        raise FileNotFoundError(
            f"android_world is not installed and its pinned copy {THIRD_PARTY} is missing "
            "(CI checks it out beside the repository; users install it from its repository)"
        )
    base = Path(cache) if cache is not None else Path(tempfile.mkdtemp(prefix="android_world-"))
    site = base / "site"
    if not (site / AW_PACKAGE).exists():
        site = install_android_world(base)
    sys.path.insert(0, str(site))
    # Commands the tests start (python -m droidrl.eval, droidrl train, ...) import it too.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    importlib.invalidate_caches()
    module = importlib.import_module(AW_PACKAGE)
    return str(Path(module.__file__).parent)


# ---- the 116 tasks and which of them the simulated phone can run ---------------------------------------------
@dataclass(frozen=True)
class TaskInfo:
    """One android_world task: its registry name, the apps it needs, its difficulty."""

    name: str
    apps: tuple[str, ...]
    difficulty: str
    packages: tuple[str, ...]


def aw_registry() -> dict[str, Any]:
    """android_world's 116-task AndroidWorld family, name -> TaskEval class."""
    from android_world import registry

    return registry.TaskRegistry().get_registry(registry.TaskRegistry.ANDROID_WORLD_FAMILY)


def task_apps(name: str, cls: Any) -> tuple[str, ...]:
    """The app names a task needs (android_world's own names; IR tasks name none, so their prefix says)."""
    apps = tuple(a for a in cls.app_names if a)
    if apps:
        return apps
    for prefix, app in IR_PREFIX_APPS.items():
        if name.startswith(prefix):
            return (app,)
    return ()


def package_of(app: str) -> str:
    """The Android package android_world launches for an app name."""
    if app in HELPER_PACKAGES:
        return HELPER_PACKAGES[app]
    from android_world.env import adb_utils

    activity = adb_utils.get_adb_activity(app)
    if activity is None:
        raise KeyError(f"android_world knows no activity for app {app!r}")
    return adb_utils.extract_package_name(activity)


def task_census() -> list[TaskInfo]:
    """Every AndroidWorld task with its apps, their packages and its difficulty, in registry order."""
    metadata_path = Path(importlib.import_module(AW_PACKAGE).__file__).parent / "task_metadata.json"
    difficulty = {m["task_name"]: m["difficulty"] for m in json.loads(metadata_path.read_text())}
    tasks = []
    for name, cls in aw_registry().items():
        apps = task_apps(name, cls)
        tasks.append(TaskInfo(name, apps, difficulty.get(name, "?"), tuple(package_of(a) for a in apps)))
    return tasks


def phone_packages() -> set[str]:
    """Packages installed on a fresh simulated phone (`pm list packages`), plus the harness's helper APKs."""
    from droidrl.envs.sim.phone import Phone
    from droidrl.envs.sim_device import SimDevice

    out = SimDevice(Phone()).shell("pm list packages")
    installed = {line.removeprefix("package:").strip() for line in out.splitlines() if line.startswith("package:")}
    return installed | HARNESS_INSTALLS


def missing_packages(task: TaskInfo, installed: set[str], instance_params: dict[str, Any] | None = None) -> list[str]:
    """The packages this task (instance) needs that the phone lacks. OpenAppTaskEval needs only the app it opens."""
    if task.name == "OpenAppTaskEval" and instance_params is not None:
        return [p for p in [package_of(instance_params["app_name"])] if p not in installed]
    return [p for p in task.packages if p not in installed]


def suite_instances(names: list[str] | None = None, seed: int = TASK_SEED) -> dict[str, Any]:
    """android_world's own task instances (`create_suite(n_task_combinations=1, seed=seed)`), name -> instance."""
    from android_world import suite_utils

    suite = suite_utils.create_suite(aw_registry(), n_task_combinations=1, seed=seed, tasks=names)
    return {name: instances[0] for name, instances in suite.items()}


# ---- the closing-note table -----------------------------------------------------------------------------------
def load_statuses(path: Path) -> dict[str, str]:
    """Per-task outcomes a test run wrote (name -> 'passes' | 'xfail: reason' | 'fails: reason')."""
    return json.loads(path.read_text()) if path.exists() else {}


def task_table(statuses: dict[str, str] | None = None) -> str:
    """Markdown table of all 116 tasks: name, apps, difficulty, status on the simulated phone."""
    statuses = statuses or {}
    installed = phone_packages()
    instances = suite_instances()
    lines = [
        "| # | task | app(s) | difficulty | status |",
        "|---|---|---|---|---|",
    ]
    counts: dict[str, int] = {}
    for i, task in enumerate(task_census(), 1):
        missing = missing_packages(task, installed, instances[task.name].params)
        if missing:
            status = f"app missing from the simulated phone: {', '.join(missing)}"
            key = "app missing"
        else:
            status = statuses.get(task.name, "not run")
            key = status.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
        apps = ", ".join(task.apps) or "-"
        lines.append(f"| {i} | {task.name} | {apps} | {task.difficulty} | {status} |")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    intro = [
        "# android_world's 116 tasks on the simulated phone",
        "",
        f"Instances from `suite_utils.create_suite(n_task_combinations=1, seed={TASK_SEED})`; run by",
        "tests/test_android_world.py on `env_launcher.load_and_setup_env(emulator_setup=False)` over",
        "droidrl-emulator (initialize_task, is_successful 0 before / 1 after the expert, tear_down).",
        "The harness installs the clipper helper APK (ca.zgrs.clipper) as android_world's emulator_setup does.",
        "Generated by `AW_STATUS=status.json python tests/android_world_support.py OUT.md` from a test run.",
        "",
        f"{len(lines) - 2} tasks: {summary}.",
        "",
    ]
    return "\n".join([*intro, *lines, ""])


def main(argv: list[str]) -> int:
    import_android_world()
    statuses = load_statuses(Path(os.environ.get("AW_STATUS", REPO / ".aw_task_status.json")))
    text = task_table(statuses)
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    sys.exit(main(sys.argv[1:]))
