"""LocalEnvPool: leases, observations, replacement of failed phones, and no reuse while a call still runs."""

from __future__ import annotations

import asyncio
import time

import pytest

from droidrl.envs.errors import DeviceUnavailable
from droidrl.rollout.envpool import DeviceFailure, LocalEnvPool


def test_lease_reset_step_give_text_only_observations():
    async def main():
        pool = LocalEnvPool(2)
        async with pool.lease() as lease:
            first = await lease.reset("SystemWifiTurnOff", 3)
            step = await lease.step('do(action="Launch", app="Settings")')
        return first, step, pool.stats()

    first, step, stats = asyncio.run(main())
    assert first.info["goal"] == "Turn off Wi-Fi." and first.observation.screenshot_png is None
    assert step.observation.app == "com.android.settings" and step.info["valid"] and "parsed" not in step.info
    assert stats == {"devices": 2, "free": 2, "replaced": 0, "failures": 0, "call_timeouts": 0, "lease_timeouts": 0}


def test_a_failed_phone_is_replaced_by_a_fresh_one():
    async def main():
        pool = LocalEnvPool(1)

        def dead(*args, **kwargs):
            raise DeviceUnavailable("sim-x", "emulator process died")

        with pytest.raises(DeviceFailure, match="emulator process died"):
            async with pool.lease() as lease:  # the failure leaves the lease: the pool sees it
                await lease.reset("SystemWifiTurnOff", 0)
                old_env = lease.env
                old_env.device.ui_xml = dead
                await lease.step('do(action="Home")')
        async with pool.lease() as lease:
            assert lease.env is not old_env
            result = await lease.reset("SystemWifiTurnOff", 0)
        return result, pool.stats()

    result, stats = asyncio.run(main())
    assert result.info["task"] == "SystemWifiTurnOff:0"
    assert stats["failures"] == 1 and stats["replaced"] == 1


def test_a_device_whose_call_was_abandoned_is_not_leased_until_the_call_ends():
    async def main():
        pool = LocalEnvPool(1)
        async with pool.lease() as lease:
            await lease.reset("SystemWifiTurnOff", 0)
            real_step = lease.env.step

            def slow_step(text):
                time.sleep(0.5)
                return real_step(text)

            lease.env.step = slow_step
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await lease.step('do(action="Home")')
        started = time.perf_counter()
        async with pool.lease():
            waited = time.perf_counter() - started
        return waited

    assert asyncio.run(main()) >= 0.3  # the next episode waited for the abandoned step to finish
