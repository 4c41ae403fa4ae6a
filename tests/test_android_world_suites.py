"""android_world's registry as droidrl suites: names and counts, android_world's own instances, its protocol
through `AndroidEnv` on the simulated phone (expert 1, empty finish 0, no finish 0, a query's answer from
finish(message=...)), the clear error without android_world, and `droidrl train` with android_world tasks.

android_world is made importable at session start by tests/conftest.py (from ../shared/third_party); where it
is absent these tests skip, except the one that checks the error a user gets then (it runs a Python without it).
"""

from __future__ import annotations

import collections
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from droidrl.envs.actions import Finish, format_action
from droidrl.envs.env import AndroidEnv
from droidrl.envs.sim_device import SimDevice
from droidrl.envs.tasks import android_world_suite as aws
from droidrl.envs.tasks.registry import get_template, make_task, suites

needs_android_world = pytest.mark.skipif(not aws.available(), reason="android_world is not importable")
REPO = Path(__file__).resolve().parents[1]


def _registry() -> dict:
    from android_world import registry

    return registry.TaskRegistry().get_registry(registry.TaskRegistry.ANDROID_WORLD_FAMILY)


# ---- names, counts, instances -----------------------------------------------------------------------------------
@needs_android_world
def test_suites_list_the_registry_by_difficulty_kind_and_app() -> None:
    import android_world

    named = suites()
    aw = named["androidworld"]
    assert len(aw) == 116 and len(set(aw)) == 116
    assert {name.removeprefix("aw.") for name in aw} == set(_registry())
    assert "aw.SystemWifiTurnOff" not in named["all"]  # droidrl's own suites are unchanged
    metadata = json.loads((Path(android_world.__file__).parent / "task_metadata.json").read_text())
    by_difficulty = collections.Counter(row["difficulty"] for row in metadata)
    assert by_difficulty == {"easy": 61, "medium": 36, "hard": 19}
    for difficulty, count in by_difficulty.items():
        assert len(named[f"androidworld-{difficulty}"]) == count
        assert all(get_template(n).difficulty == difficulty for n in named[f"androidworld-{difficulty}"])
    # Query tasks are android_world's information-retrieval tasks: 25 of them read the agent's answer.
    assert (len(named["androidworld-operation"]), len(named["androidworld-query"])) == (91, 25)
    # Per app (android_world's app names; its IR tasks name none, their registry prefix says which app).
    counts = {
        name.removeprefix("androidworld-"): len(v) for name, v in named.items() if name.startswith("androidworld-")
    }
    assert counts["markor"] == 17 and counts["simple_calendar_pro"] == 17 and counts["settings"] == 15
    assert counts["broccoli_app"] == 13 and counts["pro_expense"] == 9 and counts["joplin"] == 4
    from_registry = collections.Counter(app for cls in _registry().values() for app in cls.app_names if app)
    assert counts["markor"] == from_registry["markor"] and counts["settings"] == from_registry["settings"]
    # The tasks droidrl's simulated phone has every app for (no Broccoli, OsmAnd, VLC, Tasks, ... there).
    assert counts["sim"] == 62 and "aw.SystemWifiTurnOff" in named["androidworld-sim"]
    assert "aw.RecipeAddSingleRecipe" not in named["androidworld-sim"]


@needs_android_world
def test_instances_are_android_world_suite_instances() -> None:
    """suite_tasks(n, seed) names exactly create_suite(n_task_combinations=n, seed=seed)'s instances."""
    from android_world import suite_utils

    registry = _registry()
    names = ["SystemWifiTurnOff", "SimpleCalendarEventsOnDate", "MarkorCreateNote", "ExpenseAddMultiple"]
    for task_random_seed in (30, 7):
        suite = suite_utils.create_suite({n: registry[n] for n in names}, n_task_combinations=3, seed=task_random_seed)
        for name in names:
            ids = [i for i in aws.suite_tasks("androidworld", 3, task_random_seed) if i.startswith(f"aw.{name}:")]
            assert len(ids) == 3
            for task_id, expected in zip(ids, suite[name], strict=True):
                state = random.getstate()
                task = make_task(task_id)
                assert random.getstate() == state  # android_world's seeding leaves this process's random alone
                assert task.id == task_id and task.goal == expected.goal
                assert task.params == expected.params and task.seed == expected.params["seed"]
    assert len(aws.suite_tasks("androidworld")) == 116
    assert make_task("aw.MarkorCreateNote", 5).goal == make_task("aw.MarkorCreateNote:5").goal


@needs_android_world
def test_step_budget_kind_and_apps_follow_android_world() -> None:
    registry = _registry()
    for name in ("SystemWifiTurnOff", "MarkorCreateNote", "SimpleCalendarEventsOnDate", "ExpenseAddMultiple"):
        task = make_task(f"aw.{name}:0")
        assert task.max_steps == int(10 * registry[name].complexity)  # suite_utils._allocate_step_budget
    assert (make_task("aw.SystemWifiTurnOff:0").max_steps, make_task("aw.ExpenseAddMultiple:0").max_steps) == (10, 60)
    assert get_template("aw.SimpleCalendarEventsOnDate").kind == "query"
    assert get_template("aw.SystemWifiTurnOff").kind == "operation"
    assert get_template("aw.SystemWifiTurnOff").apps == ("com.android.settings",)
    assert get_template("aw.SimpleCalendarEventsOnDate").apps == ("com.simplemobiletools.calendar.pro",)


@needs_android_world
def test_bad_names_fail_clearly_and_suites_mix_in_curricula() -> None:
    from droidrl.curricula.config import CurriculumConfig, resolve_tasks

    with pytest.raises(KeyError, match=r"aw\.SystemWifiTurnOff"):
        get_template("aw.SystemWifiTurnOf")
    with pytest.raises(ValueError, match=r"curriculum\.tasks.*SystemWifiTurnOf"):
        resolve_tasks(["aw.SystemWifiTurnOf"], "tasks")
    with pytest.raises(ValueError, match="instance seed"):
        make_task("aw.SystemWifiTurnOff:-1")
    mixed = CurriculumConfig(tasks=["androidworld-settings", "SystemWifiTurnOn", "aw.MarkorCreateNote"])
    names = mixed.training_tasks()
    assert names[:15] == suites()["androidworld-settings"] and names[15:] == ["SystemWifiTurnOn", "aw.MarkorCreateNote"]
    from droidrl.curricula.sampler import CurriculumSampler

    sampler = CurriculumSampler(mixed)
    assert sampler.difficulties["aw.MarkorCreateNote"] == get_template("aw.MarkorCreateNote").difficulty


@needs_android_world
def test_training_on_the_simulated_phone_refuses_tasks_it_cannot_run_before_any_work() -> None:
    from droidrl.trainer.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"curriculum\.tasks: 54 android_world task\(s\) need apps.*androidworld-sim"):
        load_config(None, ["curriculum.tasks=androidworld", "logging.wandb=disabled"])
    config = load_config(None, ["curriculum.tasks=[androidworld-sim, SystemWifiTurnOn]", "logging.wandb=disabled"])
    assert len(config.curriculum.training_tasks()) == 63


def test_android_world_tasks_without_android_world_fail_before_work_naming_the_key(tmp_path: Path) -> None:
    """A Python without android_world (its import blocked, as where it is not installed): the check refuses."""
    script = (
        "import sys\n"
        "sys.modules['android_world'] = None  # import android_world now raises ImportError\n"
        "from droidrl.envs.tasks import android_world_suite as aws\n"
        "assert not aws.available()\n"
        "from droidrl.envs.tasks.registry import suites\n"
        "assert 'androidworld' not in suites() and 'all' in suites()\n"
        "from droidrl.trainer.config import ConfigError, load_config\n"
        "try:\n"
        "    load_config(None, ['curriculum.tasks=[androidworld, SystemWifiTurnOn]', 'logging.wandb=disabled'])\n"
        "except ConfigError as err:\n"
        "    print('ERROR', err)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("ERROR") and "curriculum.tasks: android_world tasks were requested" in out, out
    assert "not importable" in out and "Traceback" not in result.stderr


# ---- episodes through AndroidEnv on the simulated phone ---------------------------------------------------------
@pytest.fixture
def aw_env(home: Path) -> AndroidEnv:
    """A fresh simulated phone (served over adb to android_world on this process's private adb server)."""
    if not aws.available():
        pytest.skip("android_world is not importable")
    return AndroidEnv(device=SimDevice())


def _expert_episode(env: AndroidEnv, task: str, *, send_finish: bool = True) -> tuple[float, dict, int]:
    """The task's expert until it finishes (its Finish sent as finish(...) text); (reward, last info, actions)."""
    env.reset(options={"task": task})
    for count in range(env.task.max_steps + 1):
        action = env.task.expert(env.device)
        if isinstance(action, Finish) and not send_finish:
            raise AssertionError("the episode should have been truncated before the expert's finish")
        _, reward, terminated, truncated, info = env.step(format_action(action))
        if terminated or truncated:
            return reward, info, count + 1
    raise AssertionError(f"{task}: the expert did not finish within {env.task.max_steps} steps")


@pytest.mark.slow
@pytest.mark.parametrize("task", ["aw.SystemWifiTurnOff:0", "aw.SystemBluetoothTurnOn:0", "aw.ContactsAddContact:0"])
def test_expert_scores_1_and_empty_finish_0(aw_env: AndroidEnv, task: str) -> None:
    reward, info, _ = _expert_episode(aw_env, task)
    assert (reward, info["end_reason"], info["success"]) == (1.0, "finish", True)
    _, info = aw_env.reset(options={"task": task})
    assert info["max_steps"] == make_task(task).max_steps
    _, reward, terminated, _, info = aw_env.step('finish(message="")')
    assert (reward, terminated, info["success"]) == (0.0, True, False)


def test_a_task_whose_app_the_phone_lacks_fails_its_reset_naming_the_app(aw_env: AndroidEnv) -> None:
    with pytest.raises(aws.TaskUnavailableOnDevice, match=r"com\.flauschcode\.broccoli.*androidworld-sim"):
        aw_env.reset(options={"task": "aw.RecipeAddSingleRecipe:0"})


@pytest.mark.slow
def test_no_finish_scores_0_even_in_the_goal_state(aw_env: AndroidEnv, home: Path) -> None:
    task = "aw.SystemWifiTurnOff:0"
    _, _, actions = _expert_episode(aw_env, task)
    short = AndroidEnv(device=SimDevice(), max_steps=actions - 1)  # truncated right after the last UI action
    reward, info, _ = _expert_episode(short, task, send_finish=False)
    assert info["end_reason"] == f"max_steps ({actions - 1}) reached"
    assert info["checker"] == 1.0 and reward == 0.0  # the state is right; android_world's runner still says 0
    # droidrl's own templates keep scoring truncated episodes by their checker.
    droidrl_task = AndroidEnv(device=SimDevice(), max_steps=actions - 1)
    reward, info, _ = _expert_episode(droidrl_task, "SystemWifiTurnOff:0", send_finish=False)
    assert reward == 1.0 and "checker" not in info


@pytest.mark.slow
def test_query_task_takes_its_answer_from_finish_message(aw_env: AndroidEnv) -> None:
    task = "aw.SimpleCalendarEventsOnDate:0"
    reward, info, _ = _expert_episode(aw_env, task)
    assert reward == 1.0 and info["answer"]  # the expert read the calendar and answered in finish(message=...)
    answer = info["answer"]
    aw_env.reset(options={"task": task})
    _, reward, _, _, info = aw_env.step(format_action(Finish(message="Nothing at all")))
    assert (reward, info["answer"]) == (0.0, "Nothing at all")
    aw_env.reset(options={"task": task})
    _, reward, _, _, _ = aw_env.step(format_action(Finish(message=answer)))  # the right answer, no UI action
    assert reward == 1.0


# ---- droidrl train with android_world tasks in the curriculum ----------------------------------------------------
@pytest.mark.slow
def test_train_runs_with_android_world_tasks_in_the_curriculum(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not aws.available():
        pytest.skip("android_world is not importable")
    # A private HOME for the simulated console's token, with the user's compiled torch extensions (DeepSpeed's
    # CPU ops): a fresh cache would rebuild them with ninja for minutes.
    monkeypatch.setenv("XDG_CACHE_HOME", os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    if not aws.available():
        pytest.skip("android_world is not importable")
    from droidrl.cluster.launch import train
    from droidrl.trainer.config import load_config

    run_dir = tmp_path / "run"
    overrides = [
        "curriculum.tasks=[aw.SystemWifiTurnOff, SystemWifiTurnOn]",
        "curriculum.eval_seeds=[1000000]",
        "curriculum.difficulty=false",
        "rollout.engine=transformers",
        "rollout.max_model_len=2048",
        "env.ray=false",
        "env.max_steps=2",
        "logging.wandb=disabled",
        f"run_dir={run_dir}",
        f"model.path={model_dir}",
        "steps=2",
        "env.phones=2",
        "collector.group_size=2",
        "collector.batch_size=2",
        "collector.max_concurrent_episodes=2",
    ]
    summary = train(load_config(None, overrides))
    assert summary.steps == 2
    evals = json.loads((run_dir / "evals.json").read_text())
    assert [e["step"] for e in evals] == [0, 2]
    text = "\n".join(p.read_text(errors="replace") for p in run_dir.rglob("*.json*"))
    assert "aw.SystemWifiTurnOff" in text


# ---- on a droidrl-emulator process (the `emulator` backend's phone), by adb and by gRPC --------------------------
@pytest.fixture
def emulator_process(home: Path, adb_server, tmp_path: Path):
    """`droidrl-emulator` on a free console/adb/gRPC port set outside 5554-5585, announced to a private adb server."""
    if not aws.available():
        pytest.skip("android_world is not importable")
    from conftest import free_port, free_port_pair

    console, grpc_port = free_port_pair(), free_port()
    script = Path(sys.executable).parent / "droidrl-emulator"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "droidrl.envs.sim.emulator"]
    command += ["-avd", "AwSuite", "-ports", f"{console},{console + 1}", "-grpc", str(grpc_port), "-no-window"]
    env = dict(adb_server.env, HOME=str(home), ANDROID_AVD_HOME=str(tmp_path / "avd"))
    log = (tmp_path / "emulator.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        adb_server.wait_for_device(f"emulator-{console}", timeout=120)
        yield {"serial": f"emulator-{console}", "adb_port": adb_server.port, "grpc_port": grpc_port}
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["adb", "grpc"])
def test_android_world_task_on_a_droidrl_emulator_process(emulator_process: dict, kind: str) -> None:
    from droidrl.envs.adb_device import AdbDevice

    serial, adb_port = emulator_process["serial"], emulator_process["adb_port"]
    if kind == "adb":
        device = AdbDevice(serial, adb_port=adb_port)
    else:
        from droidrl.envs.grpc_device import GrpcDevice

        device = GrpcDevice(serial, emulator_process["grpc_port"], adb_port=adb_port)
    env = AndroidEnv(device=device, settle_s=0.0)
    reward, info, _ = _expert_episode(env, "aw.SystemWifiTurnOff:0")
    assert (reward, info["end_reason"]) == (1.0, "finish")
    env.reset(options={"task": "aw.SystemWifiTurnOff:0"})
    _, reward, *_ = env.step('finish(message="")')
    assert reward == 0.0


def test_the_private_adb_server_dies_with_its_process(tmp_path: Path) -> None:
    """A process that served a simulated phone to android_world and is SIGKILLed leaves no adb server behind."""
    if not aws.available():
        pytest.skip("android_world is not importable")
    script = (
        "import os, signal\n"
        "from droidrl.envs.sim_device import SimDevice\n"
        "from droidrl.envs.tasks import android_world_bridge as bridge\n"
        "device = SimDevice()\n"
        "world = bridge.world_env(device)\n"
        "assert world.env.controller.execute_adb_call is not None\n"
        "print(bridge.private_adb_server_pid(), world.address.serial, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = dict(os.environ, HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == -9, result.stderr
    pid_text, serial = result.stdout.split()
    assert serial.startswith("emulator-")
    pid = int(pid_text)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "adb" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the adb server {pid} outlived its process"
        time.sleep(0.1)
