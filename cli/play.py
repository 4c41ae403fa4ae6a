"""`droidrl play`: a task solved by its expert, with an HTML trajectory viewer."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.table import Table

from droidrl.cli.common import CliError, console, mark
from droidrl.envs.actions import format_action


def cmd_play(args: argparse.Namespace) -> int:
    from droidrl.envs.actions import Invalid
    from droidrl.envs.env import AndroidEnv
    from droidrl.envs.tasks.expert import expert_action
    from droidrl.envs.tasks.registry import make_task
    from droidrl.envs.viewer import StepView, write_episode_html

    try:
        task = make_task(args.task, args.seed)
        env = AndroidEnv(interruptions=args.interruptions, timings=True)
    except (KeyError, ValueError) as err:
        raise CliError(str(err).strip("'\"")) from None
    obs, info = env.reset(options={"task": task})
    console.print(f"[bold]{task.id}[/] ({task.difficulty}, {task.template.kind}): {task.goal}")
    table = Table(title=f"{task.id}: expert trajectory")
    for col in ("step", "action", "app after", "valid", "reward", "ms"):
        table.add_column(col, overflow="fold")
    views: list[StepView] = []
    started = time.perf_counter()
    while True:
        action = expert_action(env.task, env.device)
        text = format_action(action)
        before = obs["screenshot"]
        obs, reward, terminated, truncated, info = env.step(text)
        parsed = None if isinstance(info["parsed"], Invalid) else info["parsed"]
        views.append(StepView(before, text, parsed, info["valid"], info["reason"], reward, obs["app"]))
        step_ms = sum(info["timings"].values()) * 1000
        table.add_row(str(info["step"]), text, obs["app"], mark(info["valid"]), f"{reward:g}", f"{step_ms:.0f}")
        if terminated or truncated:
            break
    console.print(table)
    summary = (
        f"reward {reward:g} ({info['end_reason']}) in {info['step']} steps, "
        f"{time.perf_counter() - started:.2f} s; reset restore {env.config.base_snapshot}"
    )
    out = Path(args.out) if args.out else Path("runs") / "play" / f"{task.name}-{task.seed}"
    page = write_episode_html(out, task.id, task.goal, views, obs["screenshot"], summary)
    console.print(f"{'[green]solved[/]' if reward == 1.0 else '[red]not solved[/]'}: {summary}")
    console.print(f"trajectory viewer: {page}")
    return 0 if reward == 1.0 else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    play = sub.add_parser("play", help="play a task with its expert and write an HTML trajectory viewer")
    play.add_argument("task", help="a template name, or Name:seed")
    play.add_argument("--seed", type=int, default=0, help="instance seed (default 0)")
    play.add_argument("--interruptions", type=float, default=0.0, help="probability of app interruption dialogs")
    play.add_argument("--out", help="folder for the viewer (default runs/play/NAME-SEED)")
    play.set_defaults(func=cmd_play)
