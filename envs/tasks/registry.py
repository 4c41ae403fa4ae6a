"""The built-in task suite: every template by name, suites by app and difficulty, and task specs.

A task spec is what `AndroidEnv.reset(options={"task": ...})` and `droidrl play` accept: a `Task`,
a template name ("SystemWifiTurnOff", seeded by the reset seed), "Name:seed", or {"name", "seed"}.
Where android_world is importable, its 116 tasks join as `aw.<Name>` templates and `androidworld*` suites
(envs/tasks/android_world_suite.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from droidrl.envs.tasks import android_world_suite
from droidrl.envs.tasks.base import DIFFICULTIES, Task, TaskTemplate

# Modules under droidrl.envs.tasks that define `TEMPLATES: list[TaskTemplate]`.
TASK_MODULES = ["system", "contacts", "clock", "calendar", "markor", "expense", "sms", "files", "multi_app"]

TaskSpec = Task | str | Mapping[str, Any]


@cache
def templates() -> dict[str, TaskTemplate]:
    """Every built-in template by name, in module order."""
    found: dict[str, TaskTemplate] = {}
    for module_name in TASK_MODULES:
        module = importlib.import_module(f"droidrl.envs.tasks.{module_name}")
        for template in module.TEMPLATES:
            if template.name in found:
                raise ValueError(f"task name {template.name!r} is defined twice (second time in {module_name})")
            found[template.name] = template
    return found


def get_template(name: str) -> TaskTemplate:
    """The template called `name` (droidrl's, or android_world's `aw.Name`); the error lists close names."""
    if android_world_suite.is_android_world_name(name):
        return android_world_suite.get_template(name)
    all_templates = templates()
    if name in all_templates:
        return all_templates[name]
    lowered = {key.lower(): key for key in all_templates}
    if name.lower() in lowered:
        return all_templates[lowered[name.lower()]]
    close = [key for key in all_templates if name.lower() in key.lower()][:8]
    hint = f" Did you mean: {', '.join(close)}?" if close else " Run `droidrl tasks` for the list."
    raise KeyError(f"no task template named {name!r}.{hint}")


def suites() -> dict[str, list[str]]:
    """Named lists of template names: `all`, one per difficulty, operation/query, one per app package.

    With android_world importable, also its suites (`androidworld`, `androidworld-easy`, ...).
    """
    all_templates = templates()
    named: dict[str, list[str]] = {"all": list(all_templates)}
    for difficulty in DIFFICULTIES:
        named[difficulty] = [t.name for t in all_templates.values() if t.difficulty == difficulty]
    for kind in ("operation", "query"):
        named[kind] = [t.name for t in all_templates.values() if t.kind == kind]
    named["multi_app"] = [t.name for t in all_templates.values() if len(t.apps) > 1]
    for template in all_templates.values():
        for package in template.apps:
            named.setdefault(package, []).append(template.name)
    named.update(android_world_suite.suites())
    return named


def make_task(spec: TaskSpec, seed: int | None = None) -> Task:
    """A task instance from a spec; `seed` is used when the spec does not name one (default 0)."""
    if isinstance(spec, Task):
        return spec
    if isinstance(spec, str):
        name, sep, seed_text = spec.partition(":")
        if sep:
            try:
                seed = int(seed_text)
            except ValueError:
                raise ValueError(f"task spec {spec!r}: the part after ':' must be an integer seed") from None
        return get_template(name.strip()).instance(0 if seed is None else seed)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "seed"}
        if "name" not in spec or unknown:
            raise ValueError(f"task spec {dict(spec)!r}: give {{'name': ..., 'seed': ...}} and nothing else")
        chosen = spec.get("seed", seed)
        return get_template(str(spec["name"])).instance(0 if chosen is None else int(chosen))
    raise TypeError(f"a task spec is a Task, 'Name', 'Name:seed' or {{'name', 'seed'}}, got {type(spec).__name__}")
