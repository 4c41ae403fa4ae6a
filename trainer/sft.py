"""SFT warm start: behaviour cloning on expert demonstrations, recorded exactly as the RL agent sees its turns.

Demonstrations are played by the real agent loop (rollout.agent.Agent) with an `ExpertEngine` in place
of a policy: the engine answers each prompt with the task expert's next action, wrapped as the model
should write it, so prompts, history and records are byte-for-byte those of an RL rollout. They are
written with rollout.records.write_groups (the rollout Parquet format), and any trajectory Parquet
file (human demonstrations too) loads back as step-wise samples for `Learner.sft_step`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from droidrl.envs.actions import format_action
from droidrl.envs.env import AndroidEnv
from droidrl.envs.tasks.expert import expert_action
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.engines.base import Completion, SamplingParams
from droidrl.rollout.envpool import LocalEnvPool
from droidrl.rollout.prompts import ChatFormat, PromptConfig, Tokenizer
from droidrl.rollout.trajectory import Episode, Group, TaskInstance
from droidrl.trainer.samples import StepSample, sample_from_turn, samples_from_groups

EXPERT_ENGINE = "expert"  # the engine name demonstrations carry: their ids were not sampled by a model
EXPERT_VERSION = -1  # the per-token policy version of demonstration tokens: no policy produced them
RESPONSE_FORMAT = "<answer>{action}</answer>"  # as models.corpus.SYSTEM_PROMPT asks the model to answer


class ExpertEngine:
    """An `Engine` whose completion is the task expert's next action on the episode's device.

    `bind(session, env)` tells it which AndroidEnv an episode (session) plays on. Its tokens carry
    logprob 0.0 and version -1 (EXPERT_VERSION): they come from no engine.
    """

    name = EXPERT_ENGINE

    def __init__(
        self, tokenizer: Tokenizer, response_format: str = RESPONSE_FORMAT, max_model_len: int | None = None
    ) -> None:
        if "{action}" not in response_format:
            raise ValueError(f"response_format must contain '{{action}}', got {response_format!r}")
        self.tokenizer = tokenizer
        self.response_format = response_format
        # The policy engine's context window: the Agent derives the prompt token budget from it, so
        # demonstrations drop old turns exactly where an RL rollout with that engine would.
        self.max_model_len = max_model_len
        self.end_ids = list(ChatFormat.from_tokenizer(tokenizer).end_ids)
        self._envs: dict[str, AndroidEnv] = {}

    @property
    def version(self) -> int:
        return EXPERT_VERSION

    def bind(self, session: str, env: AndroidEnv) -> None:
        self._envs[session] = env

    def unbind(self, session: str) -> None:
        self._envs.pop(session, None)

    def response_text(self, env: AndroidEnv) -> str:
        """The expert's answer on `env`'s current screen, as the model should write it (without end token)."""
        if env.task is None:
            raise RuntimeError("the expert engine was asked for an action before the episode's env was reset")
        return self.response_format.format(action=format_action(expert_action(env.task, env.device)))

    async def generate(
        self, prompt_ids: list[int], sampling: SamplingParams, images: Any = None, session: str | None = None
    ) -> Completion:
        env = self._envs.get(session or "")
        if env is None:
            raise RuntimeError(f"the expert engine has no device bound to session {session!r}; call bind() first")
        ids = list(self.tokenizer.encode(self.response_text(env), add_special_tokens=False)) + self.end_ids
        return Completion(ids, [0.0] * len(ids), [EXPERT_VERSION] * len(ids), "stop", engine=EXPERT_ENGINE)

    async def update_weights(self, source: Path, version: int) -> None:
        raise RuntimeError("the expert engine has no weights to update")

    async def close(self) -> None:
        self._envs.clear()


async def collect_demonstrations_async(
    tasks: Iterable[str | TaskInstance | tuple[str, int]],
    seeds: Sequence[int] | None,
    tokenizer: Tokenizer,
    prompt_config: PromptConfig | None = None,
    on_episode: Callable[[Episode], None] | None = None,
    agent_config: AgentConfig | None = None,
    max_model_len: int | None = None,
    **env_config: Any,
) -> list[Group]:
    """One group of one expert episode per task instance (see `collect_demonstrations`)."""
    agent_config = agent_config or AgentConfig()
    if prompt_config is not None:
        agent_config = dataclasses.replace(agent_config, prompt=prompt_config)
    prompt_config = agent_config.prompt
    engine = ExpertEngine(tokenizer, max_model_len=max_model_len)
    agent = Agent(engine, tokenizer, agent_config)
    pool = LocalEnvPool(1, screenshots=prompt_config.uses_images, **env_config)
    groups: list[Group] = []
    for index, instance in enumerate(_instances(tasks, seeds)):
        episode_id = f"demo-{index:05d}-{instance.task}-{instance.seed}"
        async with pool.lease() as lease:
            engine.bind(episode_id, lease.env)  # a LocalEnvPool lease holds its AndroidEnv: the expert reads it
            try:
                episode = await agent.run_episode(lease, instance.task, instance.seed, episode_id)
            finally:
                engine.unbind(episode_id)
        episode.engine = EXPERT_ENGINE
        groups.append(Group(f"demo-{index:05d}", index, instance, [episode], EXPERT_VERSION))
        if on_episode is not None:
            on_episode(episode)
    return groups


def collect_demonstrations(
    tasks: Iterable[str | TaskInstance | tuple[str, int]],
    seeds: Sequence[int] | None,
    tokenizer: Tokenizer,
    prompt_config: PromptConfig | None = None,
    on_episode: Callable[[Episode], None] | None = None,
    agent_config: AgentConfig | None = None,
    max_model_len: int | None = None,
    **env_config: Any,
) -> list[Group]:
    """Play each task instance's expert through the agent loop; one single-episode Group per instance.

    `tasks` are template names combined with every seed of `seeds`, or (task, seed) pairs /
    TaskInstances when `seeds` is None. Each turn is recorded exactly as an RL rollout records it:
    the prompt ids PromptBuilder gives (with `prompt_config`), and as response the ids of
    RESPONSE_FORMAT around the canonical action text, then the end-of-turn token. For prompts identical
    to an RL run's, pass its agent config (or prompt config) and its engine's max_model_len (the Agent
    derives the prompt token budget from both). `env_config` goes to AndroidEnv (e.g.
    interruptions=0.3). Episodes the expert fails are kept (success False).
    """
    return asyncio.run(
        collect_demonstrations_async(
            tasks, seeds, tokenizer, prompt_config, on_episode, agent_config, max_model_len, **env_config
        )
    )


def _instances(
    tasks: Iterable[str | TaskInstance | tuple[str, int]], seeds: Sequence[int] | None
) -> list[TaskInstance]:
    out: list[TaskInstance] = []
    for task in tasks:
        if isinstance(task, TaskInstance):
            out.append(task)
        elif isinstance(task, tuple):
            out.append(TaskInstance(str(task[0]), int(task[1])))
        elif seeds is None:
            raise ValueError(f"task {task!r} has no seed: pass seeds=[...] or (task, seed) pairs")
        else:
            out.extend(TaskInstance(task, int(seed)) for seed in seeds)
    return out


def demonstration_samples(groups: Sequence[Group], successful_only: bool = True) -> list[StepSample]:
    """The valid turns of the (successful) episodes of `groups` as StepSamples with advantage 1."""
    kept = [
        Group(
            g.group_id,
            g.index,
            g.instance,
            [e for e in g.episodes if e.success or not successful_only],
            g.start_version,
        )
        for g in groups
    ]
    samples = samples_from_groups(kept, [[1.0] * len(g.episodes) for g in kept])
    valid = {(e.episode_id, t.index) for g in kept for e in g.episodes for t in e.turns if t.valid}
    return [s for s in samples if (s.episode_id, s.turn) in valid]


def load_demonstrations(
    paths: Sequence[Path | str] | Path | str, successful_only: bool = True, valid_only: bool = True
) -> list[StepSample]:
    """Step-wise samples from trajectory Parquet files (rollout records, expert or human demonstrations).

    successful_only keeps the turns of episodes whose `success` is true; valid_only drops turns whose
    action was invalid (cloning them would teach the mistake). Every sample has advantage 1.
    """
    from droidrl.rollout.records import load_images, read_turns, turn_from_row

    if isinstance(paths, str | Path):
        paths = [paths]
    samples: list[StepSample] = []
    for path in paths:
        frame = read_turns(path)
        for _, row in frame.iterrows():
            if (successful_only and not row.success) or (valid_only and not row.valid) or len(row.response_ids) == 0:
                continue
            # The same Turn -> sample code as RL, with the screenshots the prompt showed.
            turn = turn_from_row(row)
            samples.append(sample_from_turn(turn, 1.0, str(row.episode_id), str(row.task_id), load_images(path, row)))
    if not samples:
        raise ValueError(
            f"no demonstration turns in {[str(p) for p in paths]} (successful_only={successful_only}, "
            f"valid_only={valid_only}); check the files hold successful episodes"
        )
    return samples


@dataclass
class SFTConfig:
    """How behaviour cloning trains: `batch_size` samples per optimizer step, `epochs` passes over the data."""

    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 8
    max_tokens_per_micro_batch: int = 8192
    zero_stage: int = 2
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"sft.epochs and sft.batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"sft.lr must be > 0, got {self.lr}")


@dataclass
class SFTResult:
    """What `run_sft` did: the token-mean NLL of each epoch (mean over its steps, token-weighted) and the export."""

    model_dir: Path
    epoch_losses: list[float]
    steps: int
    samples: int
    tokens: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # every step's metrics


def run_sft(
    model_dir: Path | str,
    out_dir: Path | str,
    demos: Sequence[StepSample],
    epochs: int = 3,
    lr: float = 1e-4,
    config: SFTConfig | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> SFTResult:
    """Behaviour-clone `demos` into the model at `model_dir`; export the result as an HF model dir at `out_dir`.

    Each epoch shuffles the samples (seeded) and takes one `Learner.sft_step` per `batch_size` of them.
    `epochs` and `lr` override `config`'s. `on_step(epoch, metrics)` is called after every step.
    """
    from droidrl.trainer.learner import Learner, LearnerConfig

    if not demos:
        raise ValueError("run_sft got no demonstrations; collect or load some first")
    config = SFTConfig(**{**(config.__dict__ if config else {}), "epochs": epochs, "lr": lr})
    started = time.perf_counter()
    learner = Learner(
        LearnerConfig(
            model=str(model_dir),
            lr=config.lr,
            zero_stage=config.zero_stage,
            grad_clip=config.grad_clip,
            max_tokens_per_micro_batch=config.max_tokens_per_micro_batch,
            seed=config.seed,
        )
    )
    rng = random.Random(config.seed)
    order = list(range(len(demos)))
    epoch_losses: list[float] = []
    history: list[dict[str, float]] = []
    try:
        for epoch in range(config.epochs):
            rng.shuffle(order)
            nll_sum = tokens = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = [demos[i] for i in order[start : start + config.batch_size]]
                metrics = learner.sft_step(batch)
                metrics["epoch"] = float(epoch)
                history.append(metrics)
                nll_sum += metrics["nll"] * metrics["tokens"]
                tokens += metrics["tokens"]
                if on_step is not None:
                    on_step(epoch, metrics)
            epoch_losses.append(nll_sum / tokens if tokens else math.nan)
        out = learner.export_weights(Path(out_dir))
    finally:
        learner.close()
    return SFTResult(
        model_dir=out,
        epoch_losses=epoch_losses,
        steps=len(history),
        samples=len(demos),
        tokens=sum(len(s.response_ids) for s in demos),
        seconds=time.perf_counter() - started,
        history=history,
    )
