"""AndroidEnv: the gymnasium contract, episode rules, snapshot resets, and SimDevice == AdbDevice episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import AdbServer, ThreadedEmulator, device_fingerprint
from gymnasium.utils.env_checker import check_env

import droidrl.envs
from droidrl.envs.actions import Finish, Launch, format_action
from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.env import AndroidEnv, observation_size
from droidrl.envs.sim.phone import Phone
from droidrl.envs.sim_device import SimDevice
from droidrl.envs.tasks.base import TaskTemplate
from droidrl.envs.tasks.expert import expert_action
from droidrl.envs.tasks.registry import templates
from droidrl.envs.tasks.state import answer_matches, get_setting, put_setting

WIFI_OFF = "SystemWifiTurnOff"


def _play_expert(env: AndroidEnv) -> list[tuple]:
    """Step the task's expert through env.step as text; returns (obs, reward, terminated, truncated, info) per step."""
    steps = []
    while True:
        action = expert_action(env.task, env.device)
        steps.append(env.step(format_action(action)))
        if steps[-1][2] or steps[-1][3]:
            return steps


# ---- the gymnasium contract --------------------------------------------------------------------


def test_check_env_passes_with_timings_off() -> None:
    # Timings in info are wall-clock, so check_env's "same seed, same info" check needs them off.
    env = gym.make(droidrl.envs.ENV_ID, task=WIFI_OFF, timings=False, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)


def test_check_env_passes_with_default_options() -> None:
    # What a newcomer runs first: the registered id, nothing set (timings are opt-in for that reason).
    check_env(gym.make(droidrl.envs.ENV_ID).unwrapped)
    with pytest.raises(AssertionError, match="Deterministic step info"):
        check_env(gym.make(droidrl.envs.ENV_ID, timings=True).unwrapped)


def test_gymnasium_make_with_the_registered_id() -> None:
    env = gym.make(droidrl.envs.ENV_ID, task=WIFI_OFF, pixel_budget=100_000)
    obs, info = env.reset(seed=3)
    assert info["task"] == f"{WIFI_OFF}:3" and info["goal"] == "Turn off Wi-Fi."
    assert obs["screenshot"].dtype == np.uint8 and obs["screenshot"].shape == (471, 212, 3)
    assert obs["app"] == "com.google.android.apps.nexuslauncher" and obs["ui_xml"].startswith("<?xml")
    assert env.observation_space.contains(obs)
    env.close()


def test_observation_size_keeps_the_aspect_within_the_budget() -> None:
    assert observation_size((1080, 2400), None) == (1080, 2400)
    assert observation_size((1080, 2400), 10**7) == (1080, 2400)
    width, height = observation_size((1080, 2400), 500_000)
    assert width * height <= 500_000 and abs(height / width - 2400 / 1080) < 0.01


def test_a_bad_config_fails_naming_the_key() -> None:
    with pytest.raises(ValueError, match="max_steps must be at least 1"):
        AndroidEnv(max_steps=0)
    with pytest.raises(ValueError, match="interruptions is a probability"):
        AndroidEnv(interruptions=1.5)
    with pytest.raises(TypeError, match=r"unknown AndroidEnv option\(s\) \['max_step'\]"):
        AndroidEnv(max_step=3)
    with pytest.raises(ValueError, match="unknown suite 'nope'"):
        AndroidEnv(suite="nope")
    with pytest.raises(KeyError, match=r"no task template named 'SystemWifiTurnOf'\. Did you mean"):
        AndroidEnv().reset(options={"task": "SystemWifiTurnOf"})


def test_step_before_reset_and_after_the_end_asks_for_reset() -> None:
    env = AndroidEnv(task=WIFI_OFF)
    with pytest.raises(gym.error.ResetNeeded):
        env.step('do(action="Home")')
    env.reset(seed=0)
    env.step('finish(message="")')
    with pytest.raises(gym.error.ResetNeeded):
        env.step('do(action="Home")')


# ---- episode rules -----------------------------------------------------------------------------


def test_expert_episode_through_text_actions_scores_one() -> None:
    env = AndroidEnv(task=WIFI_OFF, timings=True)
    _, info = env.reset(seed=5)
    assert info["timings"]["restore_s"] >= 0 and "setup_s" in info["timings"]
    steps = _play_expert(env)
    _, reward, terminated, truncated, info = steps[-1]
    assert (reward, terminated, truncated, info["success"], info["end_reason"]) == (1.0, True, False, True, "finish")
    assert [s[4]["action"] for s in steps[:1]] == ['do(action="Launch", app="Settings")']
    assert all(s[4]["valid"] and s[1] == 0.0 for s in steps[:-1])
    assert get_setting(env.device, "global", "wifi_on") == "0"
    assert {"parse_s", "act_s", "observe_s"} <= set(steps[0][4]["timings"])


def test_malformed_output_is_an_invalid_step_and_too_many_end_the_episode() -> None:
    env = AndroidEnv(task=WIFI_OFF, max_invalid=3)
    env.reset(seed=0)
    first = env.step("I think I should tap the settings icon")
    assert first[1:4] == (0.0, False, False) and first[4]["valid"] is False
    assert first[4]["reason"].startswith("no action found") and first[4]["action"] is None
    env.step('do(action="Launch", app="NoSuchApp")')  # well-formed but refused: invalid too
    last = env.step('do(action="Tap", element=[5000, 1])')
    assert last[2] is True and last[1] == 0.0 and last[4]["end_reason"] == "3 invalid actions in a row"
    assert "outside the 0-999 grid" in last[4]["reason"]


def test_a_valid_action_resets_the_invalid_run() -> None:
    env = AndroidEnv(task=WIFI_OFF, max_invalid=2)
    env.reset(seed=0)
    for text in ("nonsense", 'do(action="Home")', "nonsense"):
        assert env.step(text)[2] is False


def test_unknown_app_launch_is_invalid_with_the_reason() -> None:
    env = AndroidEnv(task=WIFI_OFF)
    env.reset(seed=0)
    info = env.step('do(action="Launch", app="Chrome")')[4]  # known name, not installed on the phone
    assert info["valid"] is False and "not installed" in info["reason"]


def test_max_steps_truncates_and_the_checker_still_scores() -> None:
    env = AndroidEnv(task=WIFI_OFF, max_steps=5)
    env.reset(seed=0)
    results = []
    for _ in range(5):
        action = expert_action(env.task, env.device)
        if isinstance(action, Finish):
            action = Launch("Settings")  # never finish: the step limit ends the episode
        results.append(env.step(format_action(action)))
    _, reward, terminated, truncated, info = results[-1]
    assert (terminated, truncated, reward) == (False, True, 1.0)  # Wi-Fi is off although nobody said finish
    assert info["end_reason"] == "max_steps (5) reached" and info["answer"] is None


def test_query_answer_reaches_the_checker() -> None:
    def evaluate(device, params, answer):
        state = "on" if get_setting(device, "global", "wifi_on") == "1" else "off"
        return float(answer_matches(answer, state))

    template = TaskTemplate(
        name="WifiStateQuery",
        apps=("com.android.settings",),
        goal="Is Wi-Fi on or off?",
        difficulty="easy",
        kind="query",
        evaluate=evaluate,
        expert=lambda device, params: Finish("on"),
        setup=lambda device, params: put_setting(device, "global", "wifi_on", "1"),
    )
    env = AndroidEnv()
    env.reset(options={"task": template.instance(0)})
    assert env.step('finish(message="  ON! ")')[1] == 1.0
    env.reset(options={"task": template.instance(0)})
    assert env.step('finish(message="off")')[1] == 0.0


def test_reset_without_a_task_samples_the_suite_deterministically() -> None:
    first = [AndroidEnv(suite="easy").reset(seed=s)[1]["task"] for s in range(4)]
    again = [AndroidEnv(suite="easy").reset(seed=s)[1]["task"] for s in range(4)]
    assert first == again and len(set(first)) > 1
    assert all(templates()[task.split(":")[0]].difficulty == "easy" for task in first)


def test_json_actions_when_configured() -> None:
    env = AndroidEnv(task=WIFI_OFF, action_format="json")
    env.reset(seed=0)
    info = env.step('{"action_type": "open_app", "app_name": "Settings"}')[4]
    assert info["valid"] and info["action"] == 'do(action="Launch", app="Settings")'
    assert env.device.current_app() == "com.android.settings"


# ---- snapshots -----------------------------------------------------------------------------------


def test_reset_restores_a_dirty_device_exactly() -> None:
    env = AndroidEnv(task=WIFI_OFF, timings=True)
    env.reset(seed=2)
    clean = device_fingerprint(env.device)
    _play_expert(env)
    env.device.push("/sdcard/Download/junk.txt", b"dirt")
    put_setting(env.device, "global", "bluetooth_on", "1")
    assert device_fingerprint(env.device) != clean
    _, info = env.reset(seed=2)
    assert device_fingerprint(env.device) == clean
    assert info["timings"]["setup_s"] == 0.0  # the second reset only loads the task's own snapshot
    uncached = AndroidEnv(task=WIFI_OFF, cache_task_snapshots=False)
    uncached.reset(seed=2)
    assert device_fingerprint(uncached.device) == clean


def test_interruptions_appear_and_are_part_of_the_seeded_start() -> None:
    env = AndroidEnv(task=WIFI_OFF, interruptions=1.0)
    env.reset(seed=1)
    obs = env.step('do(action="Launch", app="Settings")')[0]
    assert "Don\u2019t allow" in obs["ui_xml"] or "No thanks" in obs["ui_xml"] or "Not now" in obs["ui_xml"]
    steps = _play_expert(env)
    assert steps[-1][1] == 1.0


# ---- SimDevice and AdbDevice play the same episode ----------------------------------------------


def _one_template_per_app() -> list[str]:
    chosen: dict[str, str] = {}
    for name, template in templates().items():
        chosen.setdefault(template.apps[0], name)
    return sorted(chosen.values())


@pytest.mark.adb
@pytest.mark.slow
def test_sim_and_adb_devices_give_identical_episodes(home, adb_server: AdbServer) -> None:
    emulator = ThreadedEmulator(Phone(), home)
    try:
        emulator.announce(adb_server)
        adb_env = AndroidEnv(AdbDevice(emulator.serial, adb_port=adb_server.port), wait_scale=0.0, interruptions=0.5)
        sim_env = AndroidEnv(SimDevice(), interruptions=0.5)
        for name in _one_template_per_app():
            for env in (sim_env, adb_env):
                env.reset(seed=11, options={"task": name})
            sim_steps, adb_steps = _play_expert(sim_env), _play_expert(adb_env)
            assert len(sim_steps) == len(adb_steps), name
            for i, (sim, adb) in enumerate(zip(sim_steps, adb_steps, strict=True)):
                where = f"{name} step {i}"
                assert np.array_equal(sim[0]["screenshot"], adb[0]["screenshot"]), where
                assert sim[0]["ui_xml"] == adb[0]["ui_xml"] and sim[0]["app"] == adb[0]["app"], where
                assert sim[1:4] == adb[1:4], where
                assert sim[4]["action"] == adb[4]["action"], where
            assert sim_steps[-1][1] == 1.0, name
    finally:
        emulator.kill()


def test_text_only_observations_skip_the_screenshot() -> None:
    env = AndroidEnv(task=WIFI_OFF, screenshots=False)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"ui_xml", "app"} and env.observation_space.contains(obs)
    obs = env.step('do(action="Launch", app="Settings")')[0]
    assert "Network &amp; internet" in obs["ui_xml"] and "screenshot" not in obs
