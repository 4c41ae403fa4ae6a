"""The `droidrl` command.

`droidrl train` is the main job; `droidrl tasks` lists the task suite and `droidrl play` shows a
task solved by its expert. The RL loop does not exist yet, so today it boots a farm of
simulated phones with `droidrl-emulator`, checks each one through Debian's real adb, prints what is
running, and stops them (or keeps them up with --serve).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from droidrl.envs.actions import format_action
from droidrl.envs.ports import free_server_port, port_is_free

console = Console()


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


# ---- farm ---------------------------------------------------------------------------------------------
def _free_port_run(count: int, start: int = 15554) -> int:
    """First even port P from `start` such that P .. P + 2*count - 1 are all free."""
    for base in range(start, 60000, 2):
        if all(port_is_free(p) for p in range(base, base + 2 * count)):
            return base
    raise CliError(f"no run of {2 * count} free ports above {start}")


@dataclass
class Farm:
    """A private adb server plus one `droidrl-emulator` process serving `count` phones."""

    adb: list[str]
    env: dict[str, str]
    process: subprocess.Popen[str]
    serials: list[str]
    console_ports: list[int]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        subprocess.run([*self.adb, "kill-server"], env=self.env, capture_output=True, timeout=30)


def start_farm(count: int, workdir: Path) -> Farm:
    adb_binary = shutil.which("adb")
    if adb_binary is None:
        raise CliError("the `adb` binary is missing: install Debian's package (apt-get install adb)")
    server_port = free_server_port()  # never an ephemeral port: see envs/ports.py
    env = dict(
        os.environ,
        HOME=str(workdir),  # console token and adb keys stay inside the run directory
        ANDROID_AVD_HOME=str(workdir / "avd"),
        ANDROID_ADB_SERVER_PORT=str(server_port),
        ADB_LOCAL_TRANSPORT_MAX_PORT="0",  # the farm announces itself; don't probe other emulators
    )
    adb = [adb_binary, "-P", str(server_port)]
    subprocess.run([*adb, "start-server"], env=env, check=True, capture_output=True, timeout=60)
    base = _free_port_run(count)
    command = [
        sys.executable,
        "-m",
        "droidrl.envs.sim.emulator",
        "-avd",
        "droidrl_farm",
        "-count",
        str(count),
        "-ports",
        f"{base},{base + 1}",
        "-no-window",
        "-no-snapshot",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = 0
    for line in process.stdout:
        if " ready: " in line:
            ready += 1
            if ready == count:
                break
        if line.startswith("ERROR"):
            raise CliError(f"droidrl-emulator failed: {line.strip()}")
    if ready < count:
        raise CliError(f"droidrl-emulator exited with {process.wait()} after starting {ready}/{count} phones")
    ports = [base + 2 * i for i in range(count)]
    return Farm(adb, env, process, [f"emulator-{p}" for p in ports], ports)


@dataclass
class PhoneCheck:
    serial: str
    console_port: int
    boot_completed: str
    screenshot: str
    ui_nodes: int
    wifi_toggled: bool
    snapshot_restored: bool
    step_ms: float


def _adb(farm: Farm, serial: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*farm.adb, "-s", serial, *args], env=farm.env, capture_output=True, timeout=60)


def check_phone(farm: Farm, serial: str, console_port: int) -> PhoneCheck:
    """Drive one phone through adb like an agent would and verify the effects through adb too."""
    boot = _adb(farm, serial, "shell", "getprop", "sys.boot_completed").stdout.decode().strip()
    _adb(farm, serial, "emu", "avd", "snapshot", "save", "farm_check")
    started = time.perf_counter()
    png = _adb(farm, serial, "exec-out", "screencap", "-p").stdout
    xml = _adb(farm, serial, "shell", "uiautomator dump /sdcard/window_dump.xml && cat /sdcard/window_dump.xml").stdout
    step_ms = (time.perf_counter() - started) * 1000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    before = _adb(farm, serial, "shell", "settings get global wifi_on").stdout.decode().strip()
    _adb(farm, serial, "shell", "am start -n com.android.settings/.Settings")
    # The same bytes an agent sees: find the rows by text in the dump and tap their centres.
    toggled = _tap_text(farm, serial, "Network & internet") and _tap_text(farm, serial, "Internet")
    toggled = toggled and _tap_text(farm, serial, "Wi\u2011Fi")  # Android writes Wi-Fi with a non-breaking hyphen
    after = _adb(farm, serial, "shell", "settings get global wifi_on").stdout.decode().strip()
    _adb(farm, serial, "emu", "avd", "snapshot", "load", "farm_check")
    restored = _adb(farm, serial, "shell", "settings get global wifi_on").stdout.decode().strip() == before
    return PhoneCheck(
        serial,
        console_port,
        boot,
        f"{width}x{height} {len(png) // 1024}KiB",
        xml.count(b"<node "),
        toggled and before != after,
        restored,
        step_ms,
    )


def _tap_text(farm: Farm, serial: str, text: str) -> bool:
    dump = _adb(
        farm,
        serial,
        "shell",
        "uiautomator dump /sdcard/window_dump.xml >/dev/null && cat /sdcard/window_dump.xml",
    )
    node = next((n for n in ET.fromstring(dump.stdout).iter("node") if n.get("text") == text), None)
    if node is None:
        return False
    left, top, right, bottom = map(int, re.findall(r"\d+", node.get("bounds")))
    _adb(farm, serial, "shell", "input", "tap", str((left + right) // 2), str((top + bottom) // 2))
    return True


def cmd_farm(args: argparse.Namespace) -> int:
    if args.phones < 1:
        raise CliError(f"--phones must be >= 1, got {args.phones}")
    console.print(
        f"[bold]droidrl farm[/]: boots {args.phones} simulated phones as emulator processes, checks each one "
        "through the real adb, and reports."
    )
    with tempfile.TemporaryDirectory(prefix="droidrl-farm-") as tmp:
        started = time.perf_counter()
        with console.status(f"starting {args.phones} simulated phones (droidrl-emulator)"):
            farm = start_farm(args.phones, Path(tmp))
        try:
            boot_s = time.perf_counter() - started
            checks = []
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("checking phones over adb", total=len(farm.serials))
                for serial, port in zip(farm.serials, farm.console_ports, strict=True):
                    checks.append(check_phone(farm, serial, port))
                    progress.advance(task)
            _print_checks(checks, boot_s, farm)
            if args.serve:
                console.print(
                    f"Serving until Ctrl-C. Use: [bold]adb -P {farm.env['ANDROID_ADB_SERVER_PORT']} devices[/]"
                    f" (HOME={tmp} for `adb emu`)."
                )
                try:
                    farm.process.wait()
                except KeyboardInterrupt:
                    pass
        finally:
            farm.stop()
    ok = all(c.boot_completed == "1" and c.wifi_toggled and c.snapshot_restored for c in checks)
    return 0 if ok else 1


def _print_checks(checks: list[PhoneCheck], boot_s: float, farm: Farm) -> None:
    table = Table(
        title=f"Simulated phone farm: {len(checks)} phones up in {boot_s:.1f} s "
        f"(adb server port {farm.env['ANDROID_ADB_SERVER_PORT']})"
    )
    for col in ("serial", "adb port", "booted", "screenshot", "nodes", "Wi-Fi tap", "snapshot", "obs ms"):
        table.add_column(col, no_wrap=True)
    for c in checks:
        table.add_row(
            c.serial,
            str(c.console_port + 1),
            c.boot_completed,
            c.screenshot,
            str(c.ui_nodes),
            _mark(c.wifi_toggled),
            _mark(c.snapshot_restored),
            f"{c.step_ms:.0f}",
        )
    console.print(table)
    console.print(
        "Wi-Fi tap: tapping rows found in the UI dump turned Wi-Fi off (settings get global wifi_on); "
        "snapshot: `adb emu avd snapshot load` brought it back; obs ms: screencap + uiautomator dump."
    )


def _mark(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]NO[/]"


# ---- tasks and play ----------------------------------------------------------------------------------------
def cmd_tasks(args: argparse.Namespace) -> int:
    from droidrl.envs.sim.apps import default_apps
    from droidrl.envs.tasks.registry import suites, templates

    all_suites = suites()
    if args.suite not in all_suites:
        raise CliError(f"unknown suite {args.suite!r}; suites: {', '.join(sorted(all_suites))}")
    labels = {app.package: app.label for app in default_apps()}
    table = Table(title=f"Suite {args.suite!r}: {len(all_suites[args.suite])} task templates")
    for col in ("name", "apps", "difficulty", "kind", "max steps", "goal (seed 0)"):
        table.add_column(col, overflow="fold")
    for name in all_suites[args.suite]:
        task = templates()[name].instance(0)
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
        table.add_row(str(info["step"]), text, obs["app"], _mark(info["valid"]), f"{reward:g}", f"{step_ms:.0f}")
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


# ---- entry point ----------------------------------------------------------------------------------------
def cmd_model_init(args: argparse.Namespace) -> int:
    from droidrl.models.presets import init_model  # imports torch: only when asked

    out = init_model(args.preset, Path(args.out), seed=args.seed)
    console.print(f"wrote {args.preset} (seed {args.seed}) to [bold]{out}[/]")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    import asyncio

    from droidrl.rollout.run import RolloutConfig

    model = args.model
    if model is None:
        model = str(Path(args.out) / "tiny-text")
        if not (Path(model) / "config.json").exists():
            from droidrl.models.presets import init_model

            with console.status("no --model given: writing a tiny-text policy with random weights"):
                init_model("tiny-text", Path(model))
    try:
        config = RolloutConfig(
            model=model,
            engine=args.engine,
            suite=args.suite,
            tasks=args.tasks,
            group_size=args.group_size,
            phones=args.phones,
            ray=args.ray,
            observation=args.observation,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            seed=args.seed,
            out=args.out,
        )
    except ValueError as err:
        raise CliError(str(err)) from None
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"{config.tasks} groups x {config.group_size} episodes", total=config.tasks)
        summary = asyncio.run(_rollout(config, on_group=lambda group: progress.advance(bar)))
    _print_rollout(summary)
    return 0


async def _rollout(config, on_group):
    from droidrl.cluster.launch import build_engine, engine_kind, open_pool
    from droidrl.rollout.run import run_rollout

    kind = engine_kind(config.engine)
    engine = await build_engine(kind, config.model, config.phones)
    try:
        screenshots = config.observation != "xml"
        pool = await open_pool(config.phones, screenshots, config.ray, 32, {}, health_interval_s=None)
        try:
            return await run_rollout(config, engine, kind, pool, on_group=on_group)
        finally:
            pool.close()
    finally:
        await engine.close()


def _print_rollout(summary) -> None:
    table = Table(title=f"Rollout with {summary.engine}: {summary.seconds:.1f} s")
    for col in ("difficulty", "episodes", "success rate"):
        table.add_column(col, justify="right")
    for difficulty, (wins, total) in sorted(summary.by_difficulty.items()):
        table.add_row(difficulty, str(total), f"{wins / total:.1%}")
    console.print(table)
    stats = summary.stats
    invalid = stats["invalid_actions"] / max(1, stats["turns"])
    console.print(
        f"{stats['episodes']} episodes, {stats['turns']} turns, invalid actions {invalid:.1%}, "
        f"{stats['response_tokens'] / summary.seconds:.0f} generated tokens/s; retried {stats['retried']}, "
        f"dropped groups {stats['groups_dropped']}; records: {summary.records}"
    )


def cmd_sft(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from droidrl.envs.tasks.registry import suites
    from droidrl.rollout.prompts import PromptConfig
    from droidrl.rollout.records import write_groups
    from droidrl.trainer.sft import (
        SFTConfig,
        collect_demonstrations,
        demonstration_samples,
        load_demonstrations,
        run_sft,
    )

    out = Path(args.out)
    model_out = out / "model"
    if model_out.exists():
        raise CliError(f"{model_out} already exists; pick another --out or remove it")
    model = args.model or str(out / "tiny-text")
    if args.model is None and not (Path(model) / "config.json").exists():
        from droidrl.models.presets import init_model

        with console.status("no --model given: writing a tiny-text policy with random weights"):
            init_model("tiny-text", Path(model))
    try:
        config = SFTConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size)
    except ValueError as err:
        raise CliError(str(err)) from None
    if args.demos:
        missing = [p for p in args.demos if not Path(p).exists()]
        if missing:
            raise CliError(f"--demos file(s) not found: {', '.join(missing)}")
        try:
            demos = load_demonstrations(args.demos)
        except ValueError as err:
            raise CliError(str(err)) from None
        source = f"{len(args.demos)} Parquet file(s)"
    else:
        if args.suite not in suites():
            raise CliError(f"unknown suite {args.suite!r}; suites: {', '.join(sorted(suites()))}")
        templates = suites()[args.suite]
        count = max(1, min(args.tasks, len(templates)))
        # Spread over the suite (which lists templates app by app), not its first few templates.
        names = [templates[i * len(templates) // count] for i in range(count)]
        tokenizer = AutoTokenizer.from_pretrained(model)
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("expert demonstrations", total=len(names) * args.seeds)
            groups = collect_demonstrations(
                names,
                list(range(args.seeds)),
                tokenizer,
                PromptConfig(observation=args.observation),
                on_episode=lambda episode: progress.advance(bar),
            )
        records = write_groups(groups, out / "demonstrations.parquet", run_id="sft", batch_id=0)
        demos = demonstration_samples(groups)
        solved = sum(e.success for g in groups for e in g.episodes)
        source = f"{solved}/{len(groups)} solved expert episodes ({records})"
    steps_per_epoch = -(-len(demos) // config.batch_size)
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"SFT on {len(demos)} turns", total=config.epochs * steps_per_epoch)
        result = run_sft(
            model, model_out, demos, config.epochs, config.lr, config, on_step=lambda epoch, m: progress.advance(bar)
        )
    table = Table(title=f"SFT: {result.steps} steps, {result.seconds:.1f} s")
    for col in ("epoch", "response NLL (token mean)"):
        table.add_column(col, justify="right")
    table.add_row("first (1)", f"{result.epoch_losses[0]:.4f}")
    table.add_row(f"last ({len(result.epoch_losses)})", f"{result.epoch_losses[-1]:.4f}")
    console.print(table)
    console.print(f"data: {source}; {result.samples} turns, {result.tokens} response tokens")
    console.print(f"model: [bold]{result.model_dir}[/]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="droidrl", description="Online RL for Android GUI agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    # Listed for the help text only: main() hands `train ...` to droidrl.train's own parser.
    sub.add_parser("train", help="the main job: SFT warm start then online RL (see droidrl train --help)")
    farm = sub.add_parser("farm", help="boot a farm of simulated phones and check each one through the real adb")
    farm.add_argument("--phones", type=int, default=4, help="simulated phones to start (default 4)")
    farm.add_argument("--serve", action="store_true", help="keep the farm running until Ctrl-C")
    farm.set_defaults(func=cmd_farm)
    tasks = sub.add_parser("tasks", help="list the built-in task suites and templates")
    tasks.add_argument("--suite", default="all", help="a suite: all, easy, medium, hard, query, a package ...")
    tasks.set_defaults(func=cmd_tasks)
    play = sub.add_parser("play", help="play a task with its expert and write an HTML trajectory viewer")
    play.add_argument("task", help="a template name, or Name:seed")
    play.add_argument("--seed", type=int, default=0, help="instance seed (default 0)")
    play.add_argument("--interruptions", type=float, default=0.0, help="probability of app interruption dialogs")
    play.add_argument("--out", help="folder for the viewer (default runs/play/NAME-SEED)")
    play.set_defaults(func=cmd_play)
    model = sub.add_parser("model", help="tiny policy models with random weights (CPU runs and tests)")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    init = model_sub.add_parser("init", help="write a randomly initialised model with the project's tokenizer")
    init.add_argument("--preset", choices=["tiny-text", "tiny-vl"], default="tiny-text", help="model preset")
    init.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    init.add_argument("out", help="folder to write the Hugging Face model directory to")
    init.set_defaults(func=cmd_model_init)
    rollout = sub.add_parser("rollout", help="a policy plays a task suite; writes Parquet records and a summary")
    rollout.add_argument("--model", help="HF model directory (default: a tiny-text policy written under --out)")
    rollout.add_argument("--engine", choices=["auto", "vllm", "transformers"], default="auto")
    rollout.add_argument("--suite", default="easy", help="task suite (see droidrl tasks)")
    rollout.add_argument("--tasks", type=int, default=8, help="task instances, one group each (default 8)")
    rollout.add_argument("--group-size", type=int, default=2, help="episodes per task instance (default 2)")
    rollout.add_argument("--phones", type=int, default=8, help="simulated phones, episodes in flight (default 8)")
    rollout.add_argument("--ray", action="store_true", help="host the phones in Ray actors (local cluster)")
    rollout.add_argument("--observation", choices=["xml", "screenshot", "both"], default="xml")
    rollout.add_argument("--temperature", type=float, default=1.0)
    rollout.add_argument("--max-tokens", type=int, default=64, help="response tokens per turn")
    rollout.add_argument("--seed", type=int, default=0, help="draws the task instances")
    rollout.add_argument("--out", default="runs/rollout", help="folder for turns.parquet (default runs/rollout)")
    rollout.set_defaults(func=cmd_rollout)
    sft = sub.add_parser("sft", help="SFT warm start: behaviour cloning on expert (or given) demonstrations")
    sft.add_argument("--model", help="HF model directory (default: a tiny-text policy written under --out)")
    sft.add_argument("--suite", default="easy", help="task suite the expert demonstrates (see droidrl tasks)")
    sft.add_argument("--tasks", type=int, default=8, help="templates of the suite to demonstrate (default 8)")
    sft.add_argument("--seeds", type=int, default=2, help="instances (seeds 0..K-1) per template (default 2)")
    sft.add_argument("--demos", nargs="+", help="trajectory Parquet files to clone instead of expert episodes")
    sft.add_argument("--epochs", type=int, default=3, help="passes over the demonstrations (default 3)")
    sft.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    sft.add_argument("--batch-size", type=int, default=8, help="samples per optimizer step (default 8)")
    sft.add_argument("--observation", choices=["xml", "screenshot", "both"], default="xml")
    sft.add_argument("--out", default="runs/sft", help="run folder; the model goes to OUT/model (default runs/sft)")
    sft.set_defaults(func=cmd_sft)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:  # its own parser: a config file, dotted overrides and options in any order
        from droidrl.train import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        console.print(f"[red]error:[/] {err}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
