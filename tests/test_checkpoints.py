"""Run checkpoints with the tiny-text policy on a CPU DeepSpeed learner: a resume restores weights, Adam
moments, LR schedule, version, RNGs, sampler, replay and buffered groups, and its next step equals the
uninterrupted one; a crash mid-save keeps the previous checkpoint; retention; damage detection; HF export."""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from droidrl.algorithms.adagrpo import PositiveReplay
from droidrl.algorithms.config import ReplayConfig
from droidrl.checkpoints import run_state
from droidrl.checkpoints.run_state import export_hf, find_latest, load_checkpoint, save_checkpoint
from droidrl.curricula.config import CurriculumConfig
from droidrl.curricula.sampler import CurriculumSampler
from droidrl.rollout.agent import Episode, Turn
from droidrl.rollout.collector import Group, TaskInstance
from droidrl.trainer.learner import Learner, LearnerConfig
from droidrl.trainer.samples import StepSample

# Warmup then linear decay: the LR after resume depends on the restored scheduler step.
SCHEDULE = {"lr": 1e-3, "lr_schedule": "linear", "warmup_steps": 2, "total_steps": 6}
TASKS = {"A": "easy", "B": "easy", "C": "easy"}


@dataclass
class Traj:
    """A replay item (module level, so it pickles)."""

    name: str
    reward: float
    length: int
    advantage: float


def _learner(model_dir: Path) -> Learner:
    return Learner(LearnerConfig(model=str(model_dir), **SCHEDULE))


def _fresh(samples: list[StepSample]) -> list[StepSample]:
    return [dataclasses.replace(s, old_logprobs=None) for s in samples]


def _weights(learner: Learner) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in learner.state_dict().items()}


def _adam_state(learner: Learner) -> list[dict[str, torch.Tensor]]:
    """The torch AdamW state (exp_avg, exp_avg_sq, step) under DeepSpeed's ZeRO wrapper, in parameter order."""
    inner = learner.optimizer.optimizer  # ZeRO-2 wraps the torch optimizer; its params are flat fp32 partitions
    return [
        {k: v.clone() if torch.is_tensor(v) else v for k, v in inner.state[p].items()}
        for group in inner.param_groups
        for p in group["params"]
    ]


@pytest.fixture(scope="module")
def samples() -> list[StepSample]:
    """Six step-wise samples of random ids, advantages +1 / -0.5; rollout logprobs are set by the first learner."""
    gen = torch.Generator().manual_seed(7)
    out = []
    for i in range(6):
        prompt = torch.randint(10, 500, (8 + i,), generator=gen).tolist()
        response = torch.randint(10, 500, (3 + i % 3,), generator=gen).tolist()
        out.append(StepSample(prompt, response, [0.0] * len(response), 1.0 if i % 3 == 0 else -0.5))
    return out


@pytest.fixture(scope="module")
def learner(model_dir: Path, samples: list[StepSample]) -> Learner:
    """A learner one step in (version 1), shared by the tests that only save; it fills the samples' rollout logprobs."""
    learner = _learner(model_dir)
    for sample, logprobs in zip(samples, learner.recompute_logprobs(_fresh(samples)), strict=True):
        sample.rollout_logprobs = logprobs
    learner.train_step(_fresh(samples))
    yield learner
    learner.close()


def _sampler() -> CurriculumSampler:
    return CurriculumSampler(CurriculumConfig(difficulty=False, seed=3, seed_pool=100), difficulties=TASKS)


def _replay() -> PositiveReplay:
    return PositiveReplay(ReplayConfig(capacity=4, top_ratio=0.5, max_age=3, replay_ratio=0.5))


def _group() -> Group:
    turn = Turn(0, [1, 2, 3], [4, 5], [-0.5, -0.25], [1, 1], "stop", "tap", "tap(1)", True, None, [0], "com.x")
    episode = Episode("e0", "A:5", "A", 5, "Open A", "easy", [turn], 1.0, True, "done", screenshots=[b"png"])
    return Group("g0", 0, TaskInstance("A", 5), [episode], start_version=1)


def test_resume_restores_everything_and_the_next_step_is_identical(model_dir, learner, samples, tmp_path) -> None:
    root = tmp_path / "ckpt"
    first = _learner(model_dir)
    first.train_step(_fresh(samples))
    first.train_step(_fresh(samples))  # version 2: the LR has left warmup, Adam moments are non-trivial
    sampler, replay = _sampler(), _replay()
    sampler.update([("A", [0.0, 0.0]), ("B", [1.0, 0.0])])
    sampler.sample(2)
    replay.step([Traj("P", 1.0, 3, 1.5), Traj("Q", 1.0, 4, 0.5), Traj("R", 0.0, 5, -1.0)])
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    path = save_checkpoint(
        root, 2, first, sampler, replay, buffered_groups=[_group()], counters={"accepted": 9, "trainer_version": 2}
    )
    assert path == root / "step-2" and (root / "latest").read_text().strip() == "step-2"
    expected_rng = (random.random(), np.random.rand(), torch.rand(1).item())
    saved = _weights(first)
    saved_adam = _adam_state(first)
    saved_lr = first.optimizer.param_groups[0]["lr"]
    # The uninterrupted run: one more step, then the sampler's and replay's next outputs.
    metrics = first.train_step(_fresh(samples))
    expected_weights = _weights(first)
    expected_instances = sampler.sample(5)
    expected_replay = [(r.item.name, r.advantage, r.age) for r in replay.step([Traj("S", 1.0, 2, 2.0)])]
    first.close()

    torch.manual_seed(99)  # perturb everything the checkpoint must restore
    random.seed(99)
    resumed = _learner(model_dir)
    assert any((resumed.state_dict()[k] != v).any() for k, v in saved.items())
    sampler2, replay2 = _sampler(), _replay()
    state = load_checkpoint(root, resumed, sampler2, replay2)

    assert state.path == path and state.step == 2 and state.version == 2 and resumed.version == 2
    assert resumed.steps == 2 and state.counters == {"accepted": 9, "trainer_version": 2}
    for name, tensor in saved.items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)
    adam = _adam_state(resumed)
    assert len(adam) == len(saved_adam) > 0
    for got, want in zip(adam, saved_adam, strict=True):
        assert set(got) >= {"exp_avg", "exp_avg_sq"}
        assert want["exp_avg"].abs().max() > 0
        torch.testing.assert_close(got["exp_avg"], want["exp_avg"], rtol=0, atol=0)
        torch.testing.assert_close(got["exp_avg_sq"], want["exp_avg_sq"], rtol=0, atol=0)
    # A fresh learner would be at warmup step 0 (lr 0.5e-3); the restored schedule is at step 2.
    assert resumed.optimizer.param_groups[0]["lr"] == saved_lr == pytest.approx(1e-3)
    assert resumed.scheduler.last_epoch == 2
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected_rng

    [group] = state.buffered_groups
    assert group.instance == TaskInstance("A", 5) and group.episodes[0].turns[0].logprobs == [-0.5, -0.25]
    assert group.episodes[0].screenshots == [b"png"] and group.start_version == 1

    again = resumed.train_step(_fresh(samples))
    assert again["lr"] == metrics["lr"] and resumed.version == 3
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.75e-3)  # the decay goes on
    for name, tensor in expected_weights.items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)
    assert sampler2.sample(5) == expected_instances
    assert [(r.item.name, r.advantage, r.age) for r in replay2.step([Traj("S", 1.0, 2, 2.0)])] == expected_replay
    resumed.close()

    class FakeCollector:
        def restore(self, trainer_version: int, accepted: int, next_index: int | None = None) -> None:
            self.restored = (trainer_version, accepted)

    collector = FakeCollector()
    state.restore_collector(collector)
    assert collector.restored == (2, 9)


def test_crash_mid_save_leaves_the_previous_checkpoint(learner, tmp_path, monkeypatch) -> None:
    root = tmp_path / "ckpt"
    good = save_checkpoint(root, 1, learner, counters={"accepted": 4})

    def crash(directory: Path, manifest: dict) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(run_state, "_write_manifest", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        save_checkpoint(root, 2, learner, counters={"accepted": 8})
    monkeypatch.undo()

    partial = root / ".tmp-step-2"
    assert (partial / "deepspeed").is_dir() and (partial / "run_state.pkl").is_file()  # half written
    assert not (root / "step-2").exists()
    assert (root / "latest").read_text().strip() == "step-1" and find_latest(root) == good
    state = load_checkpoint(root, learner)
    assert state.step == 1 and state.counters == {"accepted": 4} and learner.version == 1

    # The next save clears the leftovers.
    save_checkpoint(root, 2, learner)
    assert not partial.exists() and find_latest(root) == root / "step-2"


def test_retention_keeps_the_last_k_and_latest_falls_back(learner, tmp_path) -> None:
    root = tmp_path / "ckpt"
    for step in range(1, 5):
        save_checkpoint(root, step, learner, keep=2)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-3", "step-4"]
    assert find_latest(root) == root / "step-4"
    # A pointer to a checkpoint that is gone falls back to the highest complete one.
    (root / "latest").write_text("step-9\n")
    assert find_latest(root) == root / "step-4"
    assert find_latest(tmp_path / "nothing") is None
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        load_checkpoint(tmp_path / "nothing", learner)


def test_manifest_lists_files_and_detects_damage(learner, tmp_path) -> None:
    path = save_checkpoint(tmp_path / "ckpt", 5, learner, _sampler(), _replay(), counters={"accepted": 3})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["step"] == 5 and manifest["policy_version"] == 1
    assert manifest["counters"] == {"accepted": 3}
    files = manifest["files"]
    assert {"run_state.pkl", "sampler.json", "replay.pkl", "buffered_groups.pkl"} <= set(files)
    assert any(name.startswith("deepspeed/state/") and name.endswith("optim_states.pt") for name in files)
    for name, entry in files.items():
        assert (path / name).stat().st_size == entry["size"] and len(entry["sha256"]) == 64

    blob = path / "sampler.json"
    text = blob.read_text()
    blob.write_text(text.replace('"updates": 0', '"updates": 7'))  # same size, different bytes
    load_checkpoint(path, learner, verify="size")
    with pytest.raises(ValueError, match=r"sampler\.json does not match its sha256"):
        load_checkpoint(path, learner)
    blob.write_text(text + " ")
    with pytest.raises(ValueError, match=r"sampler\.json has"):
        load_checkpoint(path, learner, verify="size")


def test_export_hf_writes_the_current_policy(learner, tmp_path) -> None:
    from droidrl.models.presets import read_safetensors

    out = export_hf(learner, tmp_path / "release")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    exported = read_safetensors(out)
    for name, tensor in learner.state_dict().items():
        if name in exported:
            torch.testing.assert_close(exported[name], tensor, rtol=0, atol=0)
    assert exported.keys() <= learner.state_dict().keys() and len(exported) > 0


def test_zero3_resume_gives_the_same_next_step(model_dir, learner, samples, tmp_path) -> None:
    def zero3() -> Learner:
        return Learner(LearnerConfig(model=str(model_dir), zero_stage=3, **SCHEDULE))

    first = zero3()
    first.train_step(_fresh(samples))
    save_checkpoint(tmp_path / "ckpt", 1, first)
    first.train_step(_fresh(samples))
    expected = _weights(first)
    first.close()
    resumed = zero3()
    assert load_checkpoint(tmp_path / "ckpt", resumed).version == 1
    resumed.train_step(_fresh(samples))
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)
    resumed.close()


def _damage(path: Path, name: str = "run_state.pkl") -> None:
    """Flip one byte of a file in checkpoint `path` (same size: only the sha256 can tell)."""
    blob = path / name
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))


def _resumable_run(model_dir: Path, learner: Learner, tmp_path: Path, steps: int = 3):
    """A run directory with checkpoints step-1..steps (as `droidrl train` leaves it) and its config."""
    from droidrl.trainer.config import load_config

    run_dir = tmp_path / "run"
    for step in range(1, steps + 1):
        save_checkpoint(run_dir / "checkpoints", step, learner, counters={"accepted": step}, keep=None)
    (run_dir / "start.json").write_text(json.dumps({"policy": str(model_dir), "sft": None}))
    return run_dir, load_config(None, [f"run_dir={run_dir}", "logging.wandb=disabled"])


def test_resume_falls_back_to_the_newest_valid_checkpoint_with_a_warning(model_dir, learner, tmp_path, caplog) -> None:
    from droidrl.trainer.loop import Run

    run_dir, config = _resumable_run(model_dir, learner, tmp_path)
    root = run_dir / "checkpoints"
    _damage(root / "step-3")  # the newest: a sha256 mismatch
    (root / "step-2" / "buffered_groups.pkl").unlink()  # the one before: a missing file
    run = Run(config, resume=True)
    with caplog.at_level("WARNING", logger="droidrl"):
        assert run.prepare() == model_dir
    assert run.resume_path == root / "step-1"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        w.startswith("checkpoint step-3 is damaged (")
        and "run_state.pkl does not match its sha256" in w
        and w.endswith("resuming from step-1 instead")
        for w in warnings
    ), warnings
    assert any(w.startswith("checkpoint step-2 is damaged (") and "missing buffered_groups.pkl" in w for w in warnings)
    # The damaged newer checkpoints are kept for inspection but never loaded again.
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-1", "step-2.set-aside", "step-3.set-aside"]
    state = load_checkpoint(run.resume_path, learner)
    assert state.step == 1 and state.counters == {"accepted": 1}


def test_resume_from_picks_a_step_and_refuses_a_missing_or_damaged_one(model_dir, learner, tmp_path) -> None:
    from droidrl.checkpoints.run_state import NoUsableCheckpoint
    from droidrl.train import build_parser
    from droidrl.trainer.loop import Run

    assert build_parser().parse_args(["--resume-from", "2"]).resume_from == 2
    run_dir, config = _resumable_run(model_dir, learner, tmp_path)
    root = run_dir / "checkpoints"
    with pytest.raises(
        NoUsableCheckpoint, match=r"--resume-from 7: there is no checkpoint step-7 .*steps there: 1, 2, 3"
    ):
        Run(config, resume=False, resume_from=7).prepare()
    _damage(root / "step-1", "manifest.json")
    with pytest.raises(NoUsableCheckpoint, match=r"--resume-from 1: checkpoint step-1 is damaged"):
        Run(config, resume=False, resume_from=1).prepare()
    run = Run(config, resume=False, resume_from=2)
    run.prepare()
    assert run.resume and run.resume_path == root / "step-2"
    assert (root / "step-3.set-aside").is_dir() and not (root / "step-3").exists()  # a new history from step 2
    assert load_checkpoint(run.resume_path, learner).step == 2


def test_resume_with_every_checkpoint_damaged_says_so(model_dir, learner, tmp_path) -> None:
    from droidrl.checkpoints.run_state import NoUsableCheckpoint, select_checkpoint

    run_dir, _ = _resumable_run(model_dir, learner, tmp_path, steps=2)
    root = run_dir / "checkpoints"
    (root / "latest").write_text("step-1\n")  # a crash between step-2's rename and its pointer update
    assert select_checkpoint(root) == (root / "step-2", [])
    for step in (1, 2):
        _damage(root / f"step-{step}")
    with pytest.raises(NoUsableCheckpoint, match=r"no checkpoint under .* can be loaded: checkpoint step-2 is damaged"):
        select_checkpoint(root)
    assert select_checkpoint(root, verify="size")[0] == root / "step-2"  # size checks cannot see a flipped byte
