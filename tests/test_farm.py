"""RayEnvPool on a local Ray cluster: 256 phones in 8 actors, dead devices, dead actors, resource placement."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import ray

from droidrl.cluster.env_actor import EnvActor
from droidrl.cluster.env_pool import AdbHost, FarmError, RayEnvPool
from droidrl.envs.tasks.registry import suites
from droidrl.rollout.envpool import DeviceFailure

RAY_TOKEN = Path.home() / ".ray" / "auth_token"  # read before any test moves HOME
ANDROID = 300  # units of the custom resource the local cluster offers
LAUNCHER = "com.google.android.apps.nexuslauncher"
SETTINGS = "com.android.settings"
# Real actions, each observable: Settings comes to the front, scrolls, and Home leaves it.
ACTIONS = [
    'do(action="Launch", app="Settings")',
    'do(action="Swipe", element=[500, 700], direction="up")',
    'do(action="Home")',
]


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(
        num_cpus=2,
        resources={"android": ANDROID},
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def tasks(count: int) -> list[str]:
    names = suites()["all"]
    return [names[i % len(names)] for i in range(count)]


async def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def test_256_phones_in_8_actors_lease_reset_and_step_concurrently():
    async def main() -> dict:
        pool = RayEnvPool(actors=8, devices_per_actor=32, health_interval_s=None)
        started = time.perf_counter()
        await pool.start()
        start_s = time.perf_counter() - started
        assert pool.stats()["devices"] == 256
        # The actors hold 8 x 32 units of the custom resource while they live.
        await wait_until(lambda: ray.available_resources().get("android", 0) == ANDROID - 256)

        all_leased = asyncio.Barrier(256)
        names = tasks(256)

        async def episode(i: int) -> tuple[str, list[str]]:
            async with pool.lease() as device:
                await all_leased.wait()  # every device is held at once
                result = await device.reset(names[i], seed=i)
                assert result.observation.screenshot_png is None
                assert result.observation.ui_xml.startswith("<?xml")
                assert result.info["task"].startswith(names[i])
                apps = []
                for action in ACTIONS:
                    result = await device.step(action)
                    assert result.info["valid"], result.info["reason"]
                    apps.append(result.observation.app)
                return device.id, apps

        started = time.perf_counter()
        results = await asyncio.gather(*(episode(i) for i in range(256)))
        run_s = time.perf_counter() - started
        assert len({device_id for device_id, _ in results}) == 256
        for _, apps in results:
            assert apps[0] == SETTINGS and apps[1] == SETTINGS and apps[2] == LAUNCHER
        stats = pool.stats()
        assert stats == {**stats, "devices": 256, "free": 256, "busy": 0, "failures": 0, "replaced": 0}
        info = await pool.actor_info()
        pool.close()
        return {"start_s": start_s, "run_s": run_s, "rss_mb": [round(i["rss_mb"]) for i in info]}

    figures = asyncio.run(main())
    rss = figures["rss_mb"]
    print(
        f"\n256 phones / 8 actors: start {figures['start_s']:.1f} s, 256 resets + 768 steps {figures['run_s']:.1f} s, "
        f"actor RSS {min(rss)}-{max(rss)} MiB (total {sum(rss)} MiB)"
    )
    assert len(rss) == 8


def test_a_device_killed_mid_episode_fails_the_call_and_is_replaced():
    async def main() -> None:
        async with RayEnvPool(actors=2, devices_per_actor=3, health_interval_s=0.5) as pool:
            victim = None
            with pytest.raises(DeviceFailure, match="killed"):
                async with pool.lease() as device:
                    victim = device.id
                    await device.reset(tasks(1)[0], seed=1)
                    await device.step(ACTIONS[0])
                    await pool.actor_of(device.id).kill_device.remote(device.id)
                    await device.step(ACTIONS[1])  # the phone is gone: DeviceFailure
            assert pool.stats()["failures"] == 1
            await wait_until(lambda: pool.stats()["replaced"] == 1)
            stats = pool.stats()
            assert (stats["devices"], stats["free"], stats["busy"]) == (6, 6, 0)

            # All six devices work again, the victim's slot included (with a fresh phone).
            async def episode(i: int) -> str:
                async with pool.lease() as device:
                    await device.reset(tasks(6)[i], seed=i)
                    assert (await device.step(ACTIONS[0])).observation.app == SETTINGS
                    await asyncio.sleep(0.2)  # hold it, so the six leases are six devices
                    return device.id

            assert victim in set(await asyncio.gather(*(episode(i) for i in range(6))))

            # An idle device that dies is found by the periodic health check and replaced before anyone leases it.
            idle = next(iter(pool._slots))
            await pool.actor_of(idle).kill_device.remote(idle)
            await wait_until(lambda: pool.stats()["replaced"] == 2)
            assert pool.stats()["unhealthy"] == 1
            stats = pool.stats()
            assert (stats["devices"], stats["free"], stats["failures"], stats["restarted_actors"]) == (6, 6, 1, 0)

    asyncio.run(main())


def test_a_cancelled_episode_frees_its_device_only_after_the_actor_finishes_the_call():
    # The env sleeps settle_s after every action: a step takes about 1 s inside the actor.
    async def main() -> None:
        async with RayEnvPool(actors=1, devices_per_actor=1, health_interval_s=None, env={"settle_s": 1.0}) as pool:

            async def episode() -> None:
                async with pool.lease() as device:
                    await device.reset(tasks(1)[0], seed=1)
                    await device.step(ACTIONS[0])

            first = asyncio.create_task(episode())
            await wait_until(lambda: pool.stats()["busy"] == 1)
            await asyncio.sleep(0.3)  # inside reset or step: the actor is running a call
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            assert pool.stats()["busy"] == 1  # not handed out while the actor still runs the cancelled call
            # The next episode gets the device once the call is over, and its calls are accepted.
            async with pool.lease() as device:
                result = await device.reset(tasks(1)[0], seed=2)
                assert result.observation.app
            assert pool.stats()["free"] == 1

    asyncio.run(main())


def test_an_actor_killed_mid_batch_fails_only_its_episodes_and_is_restarted():
    async def main() -> None:
        async with RayEnvPool(actors=3, devices_per_actor=3, health_interval_s=None, env={"max_steps": 50}) as pool:
            victim = pool.actors()[0]
            victim_devices = {d for d in pool._slots if pool.actor_of(d) == victim}
            assert len(victim_devices) == 3
            all_reset = asyncio.Barrier(10)  # nine episodes and the killer

            async def episode(i: int) -> tuple[str, str | None]:
                async with pool.lease() as device:
                    try:
                        await device.reset(tasks(9)[i], seed=i)
                        await all_reset.wait()
                        for step in range(12):
                            await device.step(ACTIONS[step % len(ACTIONS)])
                            await asyncio.sleep(0.05)
                    except DeviceFailure as failure:
                        return device.id, str(failure)
                    return device.id, None

            async def killer() -> None:
                await all_reset.wait()
                await asyncio.sleep(0.1)  # the episodes are mid-way through their steps
                ray.kill(victim)

            outcomes, _ = await asyncio.gather(asyncio.gather(*(episode(i) for i in range(9))), killer())
            failed = {device_id for device_id, failure in outcomes if failure is not None}
            assert failed == victim_devices
            assert all("env0.0" in failure for _, failure in outcomes if failure is not None)

            await wait_until(lambda: pool.stats()["restarted_actors"] == 1, timeout=60)
            stats = pool.stats()
            assert (stats["devices"], stats["free"], stats["actors"], stats["failures"]) == (9, 9, 3, 3)
            assert {d for d in pool._slots if d.startswith("env0.")} == {"env0.1/0", "env0.1/1", "env0.1/2"}

            # The new actor's devices serve episodes like the others.
            async def episode_again(i: int) -> str:
                async with pool.lease() as device:
                    await device.reset(tasks(9)[i], seed=i)
                    await asyncio.sleep(0.2)
                    return device.id

            assert {"env0.1/0", "env0.1/1", "env0.1/2"} <= set(
                await asyncio.gather(*(episode_again(i) for i in range(9)))
            )

    asyncio.run(main())


def test_the_custom_resource_decides_placement():
    # An actor asking for more "android" than the cluster has stays pending; one that fits starts.
    too_big = EnvActor.options(num_cpus=0, resources={"android": ANDROID + 1}).remote("big", count=1)
    fits = EnvActor.options(num_cpus=0, resources={"android": 1}).remote("small", count=1)
    ready, pending = ray.wait([too_big.devices.remote()], timeout=3)
    assert (ready, len(pending)) == ([], 1)
    assert ray.get(fits.devices.remote(), timeout=60) == ["small/0"]
    ray.kill(too_big)
    ray.kill(fits)

    async def main() -> None:
        pool = RayEnvPool(actors=1, devices_per_actor=ANDROID + 1, start_timeout_s=2, health_interval_s=None)
        with pytest.raises(FarmError, match=r"'android': 301\.0.*android=300 in all"):
            await pool.start()

    asyncio.run(main())


def actor_env(home: Path) -> dict[str, str]:
    """Environment for an actor reaching the test's emulator, whose console token lives in `home`.

    The actor reads the token from $HOME, as `adb emu` does; Ray's own token stays where Ray put it.
    """
    env = {"HOME": str(home)}
    if RAY_TOKEN.exists():
        env["RAY_AUTH_TOKEN_PATH"] = str(RAY_TOKEN)
    return env


@pytest.mark.adb
def test_an_adb_device_serves_episodes_and_is_retired_when_its_emulator_dies(emulator, adb_server, home):
    async def main() -> None:
        pool = RayEnvPool(
            actors=0,
            adb_hosts=[AdbHost([emulator.serial])],
            adb={"adb_port": adb_server.port, "timeout_s": 10},
            actor_options={"runtime_env": {"env_vars": actor_env(home)}},
            health_interval_s=None,
        )
        async with pool:
            async with pool.lease() as device:
                assert device.id == "env0.0/0"
                result = await device.reset(tasks(1)[0], seed=3)
                assert result.info["task"].startswith(tasks(1)[0])
                assert (await device.step(ACTIONS[0])).observation.app == SETTINGS
            with pytest.raises(DeviceFailure, match=f"{emulator.serial} is unavailable"):
                async with pool.lease() as device:
                    emulator.kill()
                    await device.step(ACTIONS[1])
            # Relaunching emulators is not the farm's job: the device is retired and reported.
            await wait_until(lambda: pool.stats()["retired"] == 1)
            stats = pool.stats()
            assert (stats["devices"], stats["free"], stats["replaced"], stats["failures"]) == (0, 0, 0, 1)

    asyncio.run(main())
