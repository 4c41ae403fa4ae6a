"""`droidrl tasks`: the built-in task suites and their templates."""

from __future__ import annotations

import argparse

from rich.table import Table

from droidrl.cli.common import CliError, console


def cmd_tasks(args: argparse.Namespace) -> int:
    from droidrl.envs.sim.apps import default_apps
    from droidrl.envs.tasks.registry import get_template, suites

    all_suites = suites()
    if args.suite not in all_suites:
        raise CliError(f"unknown suite {args.suite!r}; suites: {', '.join(sorted(all_suites))}")
    labels = {app.package: app.label for app in default_apps()}
    table = Table(title=f"Suite {args.suite!r}: {len(all_suites[args.suite])} task templates")
    for col in ("name", "apps", "difficulty", "kind", "max steps", "goal (seed 0)"):
        table.add_column(col, overflow="fold")
    for name in all_suites[args.suite]:
        task = get_template(name).instance(0)  # droidrl's templates and android_world's (aw.Name)
        apps = ", ".join(labels.get(p, p) for p in task.apps)
        table.add_row(name, apps, task.difficulty, task.template.kind, str(task.max_steps), task.goal)
    console.print(table)
    counts = Table(title="Suites")
    counts.add_column("suite")
    counts.add_column("templates", justify="right")
    for suite, names in all_suites.items():
        counts.add_row(labels.get(suite, suite), str(len(names)))
    console.print(counts)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    tasks = sub.add_parser("tasks", help="list the built-in task suites and templates")
    tasks.add_argument("--suite", default="all", help="a suite: all, easy, medium, hard, query, a package ...")
    tasks.set_defaults(func=cmd_tasks)
