"""The curriculum: FCF weights and drops, difficulty admission, deterministic sampling, state and persistence."""

from __future__ import annotations

import json
import math
from collections import Counter
from types import SimpleNamespace

import pytest

from droidrl.curricula.config import CurriculumConfig
from droidrl.curricula.sampler import CurriculumSampler
from droidrl.curricula.stats import TaskStatsTable
from droidrl.rollout.collector import Group, TaskInstance

FAIL = [0.0, 0.0, 0.0, 0.0]
LEVELS = {"E1": "easy", "E2": "easy", "M1": "medium", "H1": "hard"}


def flat(**overrides) -> CurriculumSampler:
    """Two easy tasks, no difficulty curriculum."""
    config = CurriculumConfig(difficulty=False, **overrides)
    return CurriculumSampler(config, difficulties={"A": "easy", "B": "easy"})


def leveled(**overrides) -> CurriculumSampler:
    config = CurriculumConfig(admit_window=8, admit_threshold=0.5, **overrides)
    return CurriculumSampler(config, difficulties=LEVELS)


# -- FCF ---------------------------------------------------------------------------------------------


def test_fcf_weight_is_exp_minus_f_after_f_failed_epochs():
    sampler = flat()
    assert sampler.weights() == {"A": 1.0, "B": 1.0}
    for f in (1, 2, 3):
        sampler.update([("A", FAIL), ("B", [0.0, 1.0, 0.0, 0.0])])
        assert sampler.failures("A") == f
        assert sampler.weights()["A"] == pytest.approx(math.exp(-f))  # 0.3679, 0.1353, 0.0498
        assert sampler.weights()["B"] == 1.0
    stats = sampler.stats.get("A")
    assert (stats.attempts, stats.successes, stats.epochs, stats.failed_epochs, stats.last_step) == (12, 0, 3, 3, 2)
    assert sampler.stats.get("B").success_rate == pytest.approx(3 / 12)


def test_sampling_frequency_follows_fcf_weights():
    sampler = flat(seed=7)
    sampler.update([("A", FAIL)])  # A: e^-1, B: 1 -> P(A) = 0.2689
    counts = Counter(instance.task for _ in range(4000) for instance in sampler.sample(1))
    assert counts["A"] / 4000 == pytest.approx(math.exp(-1) / (1 + math.exp(-1)), abs=0.025)


def test_task_is_dropped_past_the_limit_and_never_sampled():
    sampler = flat()
    for _ in range(3):
        sampler.update([("A", FAIL)])
    assert not sampler.is_dropped("A")
    sampler.update([("A", FAIL)])  # f = 4 > fcf_max_failures = 3
    assert sampler.is_dropped("A") and sampler.weights()["A"] == 0.0
    assert {i.task for i in sampler.sample(50)} == {"B"}
    assert sampler.metrics()["curriculum/dropped_tasks"] == 1.0

    strict = flat(fcf_max_failures=1)
    strict.update([("A", FAIL)])
    assert strict.weights()["A"] == pytest.approx(math.exp(-1))
    strict.update([("A", FAIL)])
    assert strict.is_dropped("A")


def test_every_task_dropped_raises_a_clear_error():
    sampler = flat(fcf_max_failures=0)
    sampler.update([("A", FAIL), ("B", FAIL)])
    with pytest.raises(RuntimeError, match="fcf_max_failures"):
        sampler.sample(1)


def test_a_success_resets_f_even_for_a_dropped_task():
    sampler = flat()
    for _ in range(3):
        sampler.update([("A", FAIL)])
    sampler.update([("A", [0.0, 0.0, 1.0, 0.0])])
    assert sampler.failures("A") == 0 and sampler.weights()["A"] == 1.0
    for _ in range(4):
        sampler.update([("A", FAIL)])
    assert sampler.is_dropped("A")
    sampler.update([("A", [0.6])])  # a group still in flight when A was dropped; 0.6 >= success_threshold 0.5
    assert not sampler.is_dropped("A") and sampler.weights()["A"] == 1.0


def test_fcf_off_keeps_weight_one():
    sampler = flat(fcf=False)
    for _ in range(6):
        sampler.update([("A", FAIL)])
    assert sampler.failures("A") == 6 and sampler.weights()["A"] == 1.0


def test_eval_set_ignores_fcf_and_levels():
    sampler = leveled(fcf_max_failures=0, eval_seeds=[5, 6])
    sampler.update([("E1", FAIL)])
    assert sampler.is_dropped("E1") and sampler.admitted_levels() == ["easy"]
    assert sampler.eval_instances() == [TaskInstance(t, s) for t in ("E1", "E2", "M1", "H1") for s in (5, 6)]
    assert sampler.eval_instances(seeds=[9]) == [TaskInstance(t, 9) for t in ("E1", "E2", "M1", "H1")]


# -- difficulty curriculum ---------------------------------------------------------------------------


def test_next_level_is_admitted_when_the_window_reaches_the_threshold():
    sampler = leveled()
    assert sampler.admitted_levels() == ["easy"]
    assert {i.task for i in sampler.sample(40)} == {"E1", "E2"}
    sampler.update([("E1", [1.0, 1.0, 1.0, 1.0])])  # 4/4 = 1.0 but the window (8 episodes) is not full
    assert sampler.level == 0
    sampler.update([("E2", FAIL)])  # window 4/8 = 0.5 >= 0.5: admitted
    assert sampler.admitted_levels() == ["easy", "medium"]
    assert sampler.level_success_rate() == 0.0  # the window restarts for the new level
    assert {i.task for i in sampler.sample(60)} == {"E1", "E2", "M1"}


def test_level_stays_below_the_threshold_and_counts_only_the_newest_level():
    sampler = leveled()
    sampler.update([("E1", [1.0, 0.0, 0.0, 0.0]), ("E2", [0.0, 1.0, 0.0, 0.0])])
    assert sampler.level_success_rate() == 0.25 and sampler.level == 0
    sampler.update([("E1", [1.0, 1.0, 0.0, 0.0])])  # window [0,1,0,0,1,1,0,0]: 3/8
    assert sampler.level_success_rate() == 0.375 and sampler.level == 0
    sampler.update([("E1", [1.0, 1.0, 0.0, 0.0])])  # window [1,1,0,0,1,1,0,0]: 4/8
    assert sampler.level == 1
    sampler.update([("E1", [1.0] * 8)])  # easy successes no longer count toward admitting hard
    assert sampler.level == 1 and sampler.level_success_rate() == 0.0
    sampler.update([("M1", [1.0] * 8)])
    assert sampler.admitted_levels() == ["easy", "medium", "hard"]


def test_a_level_whose_tasks_are_all_dropped_admits_the_next():
    sampler = leveled(fcf_max_failures=1)
    sampler.update([("E1", FAIL), ("E2", FAIL)])
    assert sampler.level == 0
    sampler.update([("E1", FAIL), ("E2", FAIL)])
    assert sampler.admitted_levels() == ["easy", "medium"]
    assert {i.task for i in sampler.sample(10)} == {"M1"}


def test_difficulty_off_opens_every_level():
    sampler = leveled(difficulty=False)
    assert sampler.admitted_levels() == ["easy", "medium", "hard"]
    assert {i.task for i in sampler.sample(40)} == set(LEVELS)


# -- sampling, state, persistence --------------------------------------------------------------------


def test_sampling_is_deterministic_for_a_seed():
    tasks = {f"T{i}": "easy" for i in range(10)}
    one = CurriculumSampler(CurriculumConfig(seed=3, seed_pool=100), difficulties=tasks).sample(8)
    two = CurriculumSampler(CurriculumConfig(seed=3, seed_pool=100), difficulties=tasks).sample(8)
    other = CurriculumSampler(CurriculumConfig(seed=4, seed_pool=100), difficulties=tasks).sample(8)
    assert one == two and one != other
    assert len({i.task for i in one}) == 8  # without replacement within a batch
    assert all(0 <= i.seed < 100 for i in one)
    assert len(CurriculumSampler(CurriculumConfig(), difficulties={"A": "easy"}).sample(3)) == 3


def test_state_dict_round_trip_gives_the_same_next_samples():
    sampler = leveled(seed=11)
    stream = sampler.instances(batch_size=4)
    first = [next(stream) for _ in range(2)]  # two drawn instances wait in the sampler
    sampler.update([("E1", [1.0, 1.0, 1.0, 1.0]), ("E2", [1.0, 0.0, 0.0, 0.0])])  # admits medium
    state = json.loads(json.dumps(sampler.state_dict()))

    restored = leveled(seed=999)  # the seed is overwritten by the state
    restored.load_state_dict(state)
    assert first and restored.level == 1 and restored.stats.get("E1").successes == 4
    resumed = restored.instances(batch_size=4)
    assert [next(resumed) for _ in range(10)] == [next(stream) for _ in range(10)]
    assert restored.sample(8) == sampler.sample(8)
    assert restored.weights() == sampler.weights()


def test_lazy_instances_see_the_latest_weights():
    sampler = flat(fcf_max_failures=0)
    stream = iter(sampler)
    assert next(stream).task in {"A", "B"}
    sampler.update([("A", FAIL)])  # A dropped
    assert {next(stream).task for _ in range(30)} == {"B"}


def test_update_takes_collector_groups():
    sampler = flat()
    episodes = [SimpleNamespace(reward=0.0), SimpleNamespace(reward=0.0)]
    group = Group(group_id="g0", index=0, instance=TaskInstance("A:17", 17), episodes=episodes, start_version=0)
    sampler.update([group], step=42)
    assert sampler.failures("A") == 1 and sampler.stats.get("A").last_step == 42
    with pytest.raises(TypeError, match="update"):
        sampler.update([3])


def test_save_and_load_to_disk(tmp_path):
    sampler = flat(seed=5)
    sampler.update([("A", FAIL), ("B", [1.0, 0.0])], step=3)
    path = tmp_path / "run" / "curriculum.json"
    sampler.save(path)
    assert json.loads(path.read_text())["stats"]["tasks"]["A"]["failed_epochs"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["curriculum.json"]  # no temp file left behind

    restored = flat(seed=0)
    restored.load(path)
    assert restored.sample(6) == sampler.sample(6)

    sampler.stats.save(tmp_path / "stats.json")
    table = TaskStatsTable.load(tmp_path / "stats.json")
    assert table.get("B").success_rate == 0.5 and table.get("A").last_step == 3

    # A new run seeded with the old run's failure history keeps the drop (MobileRL's curriculum.init).
    for _ in range(3):
        sampler.update([("A", FAIL)])
    sampler.stats.save(tmp_path / "stats.json")
    next_run = flat(init_stats=str(tmp_path / "stats.json"))
    assert next_run.is_dropped("A") and next_run.failures("A") == 4


def test_load_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no curriculum state file"):
        flat().load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        flat().load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="level"):
        state = leveled().state_dict()
        CurriculumSampler(CurriculumConfig(), difficulties={"M": "medium"}).load_state_dict(state)


# -- config and the real suite -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"admit_threshold": 1.5}, "curriculum.admit_threshold"),
        ({"admit_window": 0}, "curriculum.admit_window"),
        ({"fcf_max_failures": "3"}, "curriculum.fcf_max_failures"),
        ({"fcf": "yes"}, "curriculum.fcf"),
        ({"levels": ["trivial"]}, "curriculum.levels"),
        ({"eval_seeds": []}, "curriculum.eval_seeds"),
        ({"tasks": []}, "curriculum.tasks"),
    ],
)
def test_bad_config_names_the_key(overrides, key):
    with pytest.raises((TypeError, ValueError), match=key):
        CurriculumConfig(**overrides)


def test_unknown_task_names_the_key():
    with pytest.raises(ValueError, match=r"curriculum\.tasks.*NoSuchTask"):
        CurriculumSampler(CurriculumConfig(tasks=["NoSuchTask"]))
    with pytest.raises(ValueError, match=r"curriculum\.eval_tasks"):
        CurriculumConfig(eval_tasks="no-such-suite").evaluation_tasks()
    with pytest.raises(ValueError, match=r"curriculum\.levels"):
        CurriculumSampler(CurriculumConfig(levels=["easy"]), difficulties=LEVELS)


def test_default_sampler_on_the_builtin_suite_starts_easy():
    from droidrl.envs.tasks.registry import suites, templates

    sampler = CurriculumSampler()
    assert sampler.levels == ["easy", "medium", "hard"] and sampler.tasks == suites()["all"]
    drawn = sampler.sample(16)
    assert {templates()[i.task].difficulty for i in drawn} == {"easy"}
    assert len(sampler.eval_instances()) == 2 * len(suites()["all"])

    held_in = CurriculumSampler(CurriculumConfig(tasks="easy", eval_tasks="medium"))
    assert held_in.levels == ["easy"] and len(held_in.eval_instances()) == 2 * len(suites()["medium"])
