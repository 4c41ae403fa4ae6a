"""`droidrl eval [CONFIG] [key=value ...]`: a policy on a suite under a named protocol; results.json and report.html.

The policy is an HF model directory run with the project's engines (rollout.engine), or a running
OpenAI-compatible endpoint (`--endpoint URL --served-model NAME`, e.g. `vllm serve`; --model then names
the served model's directory for its tokenizer). An endpoint gets the protocol's observation: screenshots
go through its chat API as data URLs, which needs `vllm serve ... --trust-request-chat-template`; one
turn with a screenshot is tried before any episode, and a refusal stops there naming the fix. Every
episode is appended to <out>/episodes.jsonl as it finishes, so running the same command again after a
crash or a kill continues where it stopped. The settings tree is `droidrl train`'s (env.*, rollout.*,
model.*, resources.*); the flags below spell keys of it, and the protocol fixes the rest (step budget,
temperature, observation, prompt).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from droidrl.cli.common import CliError, console
from droidrl.cli.config_args import add_config_args, load

FLAGS = {  # flag -> the config keys it sets
    "model": ["model.path"],
    "engine": ["rollout.engine"],
    "phones": ["env.phones", "collector.max_concurrent_episodes"],
    "ray": ["env.ray"],
    "max_tokens": ["rollout.max_tokens"],
    "seed": ["seed"],
    "out": ["run_dir"],
}
BASE = ["run_dir=runs/eval"]  # the output folder unless told otherwise
MANIFEST = "eval.json"  # the settings an output folder's episodes were played with
log = logging.getLogger("droidrl.eval")


@dataclasses.dataclass
class EvalSetup:
    """Everything the evaluation is, resolved from the arguments before anything heavy starts."""

    config: Any  # trainer.config.TrainConfig
    protocol: Any  # eval.protocols.Protocol
    suite: str | list[str]
    instances: list
    runs: int
    out: Path
    policy: str
    model_dir: str
    observation: str
    system_prompt: str
    deviations: list[str]
    endpoint: str | None
    served_model: str | None
    task_seed: int = 30

    def fingerprint(self) -> dict[str, Any]:
        """What decides an episode: a rerun into the same folder must match it (runs may grow)."""
        return {
            "policy": self.policy,
            "protocol": self.protocol.name,
            "suite": self.suite,
            "task_seed": self.task_seed,
            "instances": [[i.task, i.seed] for i in self.instances],
            "observation": self.observation,
            "max_steps": self.protocol.max_steps,
            "temperature": self.protocol.temperature,
            "max_tokens": self.config.rollout.max_tokens,
            "system_prompt_sha256": hashlib.sha256(self.system_prompt.encode()).hexdigest()[:16],
            "seed": self.config.seed,
        }


def cmd_eval(args: argparse.Namespace) -> int:
    setup = resolve(args)
    from droidrl.trainer.logs import setup_logging

    setup_logging(setup.out, args.verbose, console)  # before vLLM, Ray and transformers are imported
    _file_only_logs()
    from droidrl.checkpoints.run_dir import RunDirBusy, lock_run_dir
    from droidrl.eval.runner import EvalAborted

    try:
        with lock_run_dir(setup.out):
            return _evaluate(setup, args)
    except RunDirBusy as err:
        raise CliError(str(err)) from None
    except KeyboardInterrupt:
        console.print("interrupted: every finished episode is kept; run the same command again to continue")
        return 130
    except EvalAborted as err:
        console.print(
            f"[red]evaluation stopped:[/] {err}; what finished is kept; run the command again to go on", soft_wrap=True
        )
        return 1


def resolve(args: argparse.Namespace) -> EvalSetup:
    """The evaluation's setup from the arguments; every problem is a CliError naming the flag or key."""
    from droidrl.eval.protocols import get_protocol
    from droidrl.eval.suites import suite_instances

    try:
        protocol = get_protocol(args.protocol)
    except ValueError as err:
        raise CliError(str(err)) from None
    config = load(args, FLAGS, BASE)
    if args.endpoint and not args.served_model:
        raise CliError("--endpoint needs --served-model: the model name the server serves (as in `vllm serve NAME`)")
    if args.endpoint and config.model.path is None:
        raise CliError("--endpoint needs --model: the served model's HF directory, for its tokenizer and chat template")
    runs = protocol.runs if args.runs is None else args.runs
    if runs < 1:
        raise CliError(f"--runs must be >= 1, got {runs}")
    suite: str | list[str] = args.suite
    if "," in suite:
        suite = [name.strip() for name in suite.split(",") if name.strip()]
    try:
        instances = suite_instances(suite, args.task_seed, args.combinations)
    except ValueError as err:
        raise CliError(str(err)) from None
    out = Path(config.run_dir)
    model_dir = config.model.path or str(out / "init")
    observation, deviations = _observation(protocol, config, args.observation, model_dir)
    system_prompt = protocol.system_prompt
    if args.system_prompt is not None:
        path = Path(args.system_prompt)
        if not path.is_file():
            raise CliError(f"--system-prompt: {path} is not a file")
        system_prompt = path.read_text(encoding="utf-8").strip()
        deviations.append(f"system prompt from {path}")
    if system_prompt is None:
        from droidrl.rollout.prompts import SYSTEM_PROMPT

        system_prompt = SYSTEM_PROMPT
    policy = f"{args.endpoint} ({args.served_model})" if args.endpoint else model_dir
    return EvalSetup(
        config=config,
        protocol=protocol,
        suite=suite,
        instances=instances,
        runs=runs,
        out=out,
        policy=policy,
        model_dir=model_dir,
        observation=observation,
        system_prompt=system_prompt,
        deviations=deviations,
        endpoint=args.endpoint,
        served_model=args.served_model,
        task_seed=args.task_seed,
    )


def _observation(protocol, config, requested: str | None, model_dir: str) -> tuple[str, list[str]]:
    """The observation the prompts show, and the deviations from the protocol that choosing it makes."""
    deviations: list[str] = []
    wanted = protocol.observation or config.model.observation
    if requested is not None and requested != wanted:
        deviations.append(f"observation {requested} (the protocol shows {wanted})")
        wanted = requested
    if wanted != "xml" and not _takes_images(model_dir):
        deviations.append(f"observation xml: the policy is text-only (the protocol shows {wanted})")
        wanted = "xml"
    # An endpoint takes screenshots too (OpenAIEngine sends them through its chat API); whether this one does is
    # checked before any episode (_check_endpoint), so no silent fall-back to XML is needed here.
    return wanted, deviations


def _takes_images(model_dir: str) -> bool:
    """Whether the HF config describes a vision-language model (it has a vision tower config)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return False  # no model yet: the tiny text policy made under <out>/init
    config = json.loads(path.read_text())
    return "vision_config" in config or "vision_tower" in config


# Loggers whose records go to the log file only. The collector's retries and drops: the runner prints one line
# per problem itself. absl: android_world's advisories ("Skipping app snapshot loading"), a dozen per episode.
FILE_ONLY_LOGGERS = ("droidrl.rollout.collector", "absl")


def _file_only_logs() -> None:
    """Send FILE_ONLY_LOGGERS to <out>/logs/droidrl.log and not to the console."""
    files = [h for h in logging.getLogger().handlers if getattr(h, "_droidrl", False)]
    files = [h for h in files if isinstance(h, logging.FileHandler)]
    for name in FILE_ONLY_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        for handler in files:
            if handler not in logger.handlers:
                logger.addHandler(handler)


def _check_manifest(setup: EvalSetup) -> None:
    """Refuse to mix episodes of different settings in one folder; write the manifest for a new one."""
    path = setup.out / MANIFEST
    mine = setup.fingerprint()
    if path.exists():
        theirs = json.loads(path.read_text())
        differ = [key for key in mine if theirs.get(key) != mine[key]]
        if differ:
            raise CliError(
                f"{setup.out} holds an evaluation with other settings ({', '.join(differ)} differ); "
                "use another --out, or the same settings to continue it"
            )
        return
    setup.out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(mine, indent=2) + "\n")
    tmp.replace(path)


def _meta(setup: EvalSetup) -> dict[str, Any]:
    config = setup.config
    from droidrl.eval.endpoint import CHAT_IMAGES, COMPLETIONS

    endpoint_api = None
    if setup.endpoint:
        endpoint_api = COMPLETIONS if setup.observation == "xml" else CHAT_IMAGES
    return {
        "policy": setup.policy,
        "endpoint": setup.endpoint,
        "served_model": setup.served_model,
        "endpoint_api": endpoint_api,
        "protocol": setup.protocol.to_dict() | {"system_prompt": setup.system_prompt},
        "suite": setup.suite,
        "task_seed": setup.task_seed,
        "instances": len(setup.instances),
        "runs": setup.runs,
        "deviations": setup.deviations,
        "settings": {
            "observation": setup.observation,
            "max_steps": setup.protocol.max_steps or "task's own",
            "temperature": setup.protocol.temperature,
            "max_tokens": config.rollout.max_tokens,
            "phones": config.env.phones,
            "ray": config.env.ray,
        },
    }


def _evaluate(setup: EvalSetup, args: argparse.Namespace) -> int:
    from droidrl.eval.report import build_results, write_report, write_results
    from droidrl.eval.runner import Plan
    from droidrl.eval.store import EpisodeStore

    if setup.endpoint and not args.report_only:
        asyncio.run(_start_endpoint(setup, check=True))  # before the folder is touched: a refusal leaves nothing
    _check_manifest(setup)
    store = EpisodeStore(setup.out)
    opened = store.open()
    if opened.torn_bytes:
        log.warning("episodes.jsonl: cut off a half-written last line (%d bytes); it runs again", opened.torn_bytes)
    if opened.duplicates:
        log.warning("episodes.jsonl: %d repeated episode lines ignored (the first of each is kept)", opened.duplicates)
    plan = Plan(setup.instances, setup.runs)
    planned = {key for key, _ in plan.episodes()}
    done = sum(key in planned for key in store.records)
    total = len(planned)
    console.print(
        f"droidrl eval: {setup.policy} on {_suite_name(setup.suite)} ({len(setup.instances)} instances x "
        f"{setup.runs} runs) under the {setup.protocol.name} protocol; {done} of {total} episodes already done",
        soft_wrap=True,  # one line per fact, whatever the terminal's width (and greppable in logs)
    )
    for deviation in setup.deviations:
        console.print(f"[yellow]deviation from the protocol:[/] {deviation}", soft_wrap=True)
    stats = None
    try:
        if done < total and not args.report_only:
            stats = asyncio.run(_play(setup, plan, store, done, total))
    finally:
        records = [r for key, r in store.records.items() if key in planned]
        results = build_results(_meta(setup), records, total)
        if stats is not None:
            results["this_invocation"] = dataclasses.asdict(stats)
        write_results(setup.out, results)
        if not args.no_report:
            with console.status("writing report.html"):
                write_report(setup.out, results, records)
    _print_results(results, setup.out)
    return 0 if results["complete"] else 1


async def _play(setup: EvalSetup, plan, store, done: int, total: int):
    from droidrl.cluster.launch import start_engine, start_pool
    from droidrl.eval.runner import run_plan

    config = setup.config
    if setup.endpoint is None and config.model.path is None:
        _init_tiny_model(setup)
    engine = await _start_endpoint(setup) if setup.endpoint else (await start_engine(config, setup.model_dir))[0]
    try:
        pool = await start_pool(_pool_config(setup))
        try:
            agent = _agent(setup, engine)
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                wins = sum(r["success"] for r in store)
                bar = progress.add_task(_progress_text(wins, done), total=total, completed=done)
                counts = {"wins": wins, "done": done}

                def on_episode(record: dict[str, Any]) -> None:
                    counts["wins"] += int(record["success"])
                    counts["done"] += 1
                    progress.update(bar, advance=1, description=_progress_text(counts["wins"], counts["done"]))

                return await run_plan(
                    agent,
                    pool,
                    setup.protocol,
                    plan,
                    store,
                    concurrency=config.collector.max_concurrent_episodes,
                    max_retries=config.collector.max_retries,
                    max_consecutive_drops=max(4, config.env.phones * 2),
                    on_episode=on_episode,
                    on_problem=log.warning,
                )
        finally:
            pool.close()
    finally:
        await engine.close()


def _progress_text(wins: int, done: int) -> str:
    rate = f"{wins / done:.0%}" if done else "–"
    return f"episodes (success {rate})"


def _init_tiny_model(setup: EvalSetup) -> None:
    from droidrl.models.presets import init_model

    if not (Path(setup.model_dir) / "config.json").exists():
        with console.status(f"no --model given: writing a {setup.config.model.preset} policy with random weights"):
            init_model(setup.config.model.preset, Path(setup.model_dir), seed=setup.config.seed)


def _pool_config(setup: EvalSetup):
    """The run's config with the protocol's step budget, and screenshots kept for the report's viewer."""
    config = setup.config
    env = dataclasses.replace(config.env, max_steps=setup.protocol.max_steps)
    # The pool keeps screenshots when the observation shows them; the viewer wants them for text policies too.
    model = dataclasses.replace(config.model, observation="both")
    return dataclasses.replace(config, env=env, model=model)


def _agent(setup: EvalSetup, engine):
    from droidrl.rollout.agent import Agent, AgentConfig
    from droidrl.rollout.engines.base import SamplingParams
    from droidrl.rollout.prompts import PromptConfig

    config, protocol = setup.config, setup.protocol
    prompt = PromptConfig(
        observation=setup.observation,
        image_turns=protocol.image_turns,
        xml_turns=protocol.xml_turns,
        max_history_turns=config.model.history,
        system_prompt=setup.system_prompt,
    )
    sampling = SamplingParams(
        temperature=protocol.temperature,
        top_p=config.rollout.top_p,
        max_tokens=config.rollout.max_tokens,
        seed=config.seed,
    )
    return Agent(engine, _tokenizer(setup), AgentConfig(prompt=prompt, sampling=sampling))


def _tokenizer(setup: EvalSetup):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(setup.model_dir)


async def _start_endpoint(setup: EvalSetup, check: bool = False):
    """An Engine over the OpenAI-compatible endpoint, which answers and serves the model (its own context window).

    With `check`: also one screenshot turn when the prompts show screenshots, and the engine comes back closed.
    Every problem is a one-line CliError naming the fix.
    """
    from droidrl.eval.endpoint import EndpointRefused, start_endpoint

    images = setup.observation != "xml"
    try:
        engine = await start_endpoint(
            setup.endpoint,
            setup.served_model,
            _tokenizer(setup) if check and images else None,
            images=check and images,
            concurrency=setup.config.env.phones,
        )
    except EndpointRefused as err:
        raise CliError(f"--endpoint {setup.endpoint}: {err}") from None
    if check:
        await engine.close()
    return engine


def _suite_name(suite: str | list[str]) -> str:
    return suite if isinstance(suite, str) else ",".join(suite)


def _print_results(results: dict[str, Any], out: Path) -> None:
    runs = [str(r) for r in range(int(results["runs"]))]
    table = Table(title=f"{results['protocol']['name']} protocol: success rate")
    for column in ("", "episodes", "mean of runs", "95% CI (runs)", "95% CI (Wilson)", *(f"run {r}" for r in runs)):
        table.add_column(column, justify="right")
    for name, figures in [("all", results["overall"]), *results["by_difficulty"].items()]:
        mean = figures["run_mean"]
        t95, wilson = figures["run_t95"], figures["wilson95"]
        per_run = [f"{figures['runs'][r]['success_rate']:.1%}" if r in figures["runs"] else "–" for r in runs]
        table.add_row(
            name,
            str(figures["episodes"]),
            "–" if mean is None else f"{mean:.1%}",
            "–" if t95 is None else f"{t95[0]:.1%}–{t95[1]:.1%}",
            f"{wilson[0]:.1%}–{wilson[1]:.1%}",
            *per_run,
        )
    console.print(table)
    state = "complete" if results["complete"] else "[yellow]partial[/]: run the same command again to continue"
    console.print(
        f"{results['finished_episodes']} of {results['planned_episodes']} episodes, {state}; "
        f"{out / 'results.json'}, {out / 'report.html'}",
        soft_wrap=True,
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    parser = sub.add_parser(
        "eval",
        help="evaluate a policy on a suite under a protocol (androidworld, mobilerl): results.json and report.html",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_args(parser)
    parser.add_argument("--model", help="HF model directory (model.path; default: a tiny model under OUT/init)")
    parser.add_argument(
        "--endpoint",
        help="an OpenAI-compatible server's base URL, e.g. http://localhost:8000/v1; screenshots (the protocol's "
        "observation for a vision model) go through its chat API and need `vllm serve ... "
        "--trust-request-chat-template`",
    )
    parser.add_argument("--served-model", help="the model name the endpoint serves (vllm serve's model name)")
    parser.add_argument("--protocol", default="androidworld", help="androidworld (default) or mobilerl")
    parser.add_argument("--suite", default="all", help="a suite (see droidrl tasks) or task names joined by commas")
    parser.add_argument("--runs", type=int, help="repeated runs of every instance (default: the protocol's, 3)")
    parser.add_argument("--task-seed", type=int, default=30, help="android_world's task_random_seed (default 30)")
    parser.add_argument("--combinations", type=int, default=1, help="instances per task (n_task_combinations)")
    parser.add_argument("--engine", choices=["auto", "vllm", "transformers"], help="rollout.engine")
    parser.add_argument("--phones", type=int, help="env.phones: devices, so episodes at once")
    parser.add_argument("--ray", action=argparse.BooleanOptionalAction, help="env.ray: phones in Ray env actors")
    parser.add_argument(
        "--observation", choices=["xml", "screenshot", "both"], help="override the protocol's (a deviation)"
    )
    parser.add_argument("--max-tokens", type=int, help="rollout.max_tokens: response tokens per turn")
    parser.add_argument("--system-prompt", help="a file with the system prompt a checkpoint was trained on")
    parser.add_argument("--seed", type=int, help="seed: the sampling seed of every turn derives from it")
    parser.add_argument("--out", help="run_dir: the output folder (default runs/eval); rerun to resume")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite results.json and report.html, play nothing (no endpoint)"
    )
    parser.add_argument("--no-report", action="store_true", help="skip report.html (results.json is always written)")
    parser.add_argument("--verbose", action="store_true", help="every library's console output, with tracebacks")
    parser.set_defaults(func=cmd_eval)
