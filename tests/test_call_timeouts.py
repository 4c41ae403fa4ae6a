"""Every call that crosses a process or a device ends in time with a defined outcome, and leaks no slot.

adb: a TCP proxy in front of a real adb server that, once told to, accepts a request and never answers
it (as a wedged adbd or adb server does). In-process pool: an env call that never returns, a lease
nobody frees. Ray pool (a real local cluster): a device thread stuck for minutes, a replacement that
hangs, an actor whose event loop is blocked. Each test guards its waits generously; none asserts a
duration, only that the call came back and what it said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import ray

from droidrl.cluster.env_pool import RayEnvPool
from droidrl.envs.adb_device import AdbDevice
from droidrl.envs.errors import DeviceUnavailable
from droidrl.rollout.envpool import CallTimeout, DeviceFailure, DeviceThreads, LocalEnvPool, NoFreeDevice

TASK = "SystemWifiTurnOff"
LAUNCH = 'do(action="Launch", app="Settings")'
GUARD_S = 30.0  # a call still running after this has no timeout (they are all 1-5 s here)


def returns(fn: Callable[[], Any], guard_s: float = GUARD_S) -> dict[str, Any]:
    """Run fn in a thread; fail the test if it has not returned within guard_s. {"value": ...} or {"error": ...}."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(guard_s)
    assert not thread.is_alive(), f"still waiting after {guard_s} s: the call has no timeout"
    return outcome


# ---- adb: a server that accepts and never answers ------------------------------------------------------------
class StallingProxy:
    """Forwards TCP connections to an adb server; a request containing `hang_on` is swallowed, never answered."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.hang_on: bytes | None = None  # b"": every new request hangs
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._forward, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._forward, args=(upstream, client, False), daemon=True).start()

    def _forward(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        hung = False
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:  # pass the end on (adb's plain shell reads until the connection closes)
                if not hung:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                return
            if from_client and self.hang_on is not None and self.hang_on in data:
                hung = True  # keep reading, answer nothing, close nothing
            if not hung:
                try:
                    sink.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def proxy(emulator, adb_server) -> Iterator[StallingProxy]:
    stalling = StallingProxy(adb_server.port)
    yield stalling
    stalling.close()


@pytest.fixture
def slow_adb(emulator, proxy: StallingProxy) -> AdbDevice:
    return AdbDevice(emulator.serial, adb_port=proxy.port, timeout_s=1)


@pytest.mark.parametrize(
    ("what", "hang_on", "call"),
    [
        ("pull", b"sync:", lambda device: device.pull("/sdcard/Download")),
        ("push", b"sync:", lambda device: device.push("/sdcard/Download/x.txt", b"hello")),
        ("ui dump", b"sync:", lambda device: device.ui_xml()),
        ("current app", b"dumpsys", lambda device: device.current_app()),
    ],
)
def test_an_adb_request_that_is_never_answered_makes_the_device_unavailable(slow_adb, proxy, what, hang_on, call):
    assert slow_adb.current_app()  # answers while the proxy forwards
    proxy.hang_on = hang_on
    outcome = returns(lambda: call(slow_adb))
    assert isinstance(outcome.get("error"), DeviceUnavailable), f"{what}: {outcome}"
    assert "1s" in str(outcome["error"]) or "timed out" in str(outcome["error"])
    proxy.hang_on = None
    assert slow_adb.current_app()  # the device itself was fine: the next request works


def test_an_adb_server_that_accepts_and_never_answers_is_reported_not_waited_for(emulator, proxy):
    proxy.hang_on = b""
    outcome = returns(lambda: AdbDevice(emulator.serial, adb_port=proxy.port, timeout_s=1))
    assert isinstance(outcome.get("error"), DeviceUnavailable), outcome
    assert f"port {proxy.port}" in str(outcome["error"]) and "timeout" in str(outcome["error"])


# ---- threads, and the in-process pool ----------------------------------------------------------------------
def test_a_stuck_thread_is_abandoned_and_its_place_goes_to_the_next_call():
    release = threading.Event()

    async def main() -> tuple[int, int, int]:
        threads = DeviceThreads(1, "t")
        with pytest.raises(CallTimeout, match=r"no answer within 0\.2 s") as timeout:
            await threads.run(lambda: release.wait(GUARD_S), 0.2)
        assert timeout.value.started
        stuck_meanwhile = threads.stuck
        value = await threads.run(lambda: 7, GUARD_S)  # the one place is free although its thread hangs
        release.set()
        for _ in range(200):
            if threads.stuck == 0:
                break
            await asyncio.sleep(0.05)
        return stuck_meanwhile, value, threads.stuck

    assert asyncio.run(main()) == (1, 7, 0)


def test_a_local_env_call_that_never_returns_fails_the_episode_and_the_phone_is_replaced():
    release = threading.Event()

    async def main() -> dict[str, int]:
        pool = LocalEnvPool(1, call_timeout_s=1.0)
        with pytest.raises(DeviceFailure, match="step: no answer within 1 s"):
            async with pool.lease() as lease:
                await lease.reset(TASK, 0)
                lease.env.step = lambda text: release.wait(GUARD_S)  # a wedged device
                await lease.step(LAUNCH)
        async with asyncio.timeout(GUARD_S):
            async with pool.lease() as lease:  # at once, with a fresh phone
                assert (await lease.reset(TASK, 1)).info["task"] == f"{TASK}:1"
        release.set()
        return pool.stats()

    stats = asyncio.run(main())
    assert (stats["call_timeouts"], stats["failures"], stats["replaced"], stats["free"]) == (1, 1, 1, 1)


def test_a_local_lease_that_finds_no_free_device_in_time_raises_and_is_counted():
    async def main() -> dict[str, int]:
        pool = LocalEnvPool(1, lease_timeout_s=0.3)
        async with pool.lease():
            with pytest.raises(NoFreeDevice, match=r"no device became free within 0\.3 s"):
                async with pool.lease():
                    pass
        async with pool.lease():  # the held device is free again
            pass
        return pool.stats()

    stats = asyncio.run(main())
    assert (stats["lease_timeouts"], stats["free"]) == (1, 1)


# ---- the Ray pool ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(
        num_cpus=2,
        resources={"android": 16},
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        await asyncio.sleep(0.1)


@pytest.mark.slow
def test_a_device_thread_stuck_for_minutes_neither_blocks_the_replacement_nor_leaks(ray_cluster):
    # One device, one thread: the stuck call used to keep the only thread, so the replacement queued
    # behind it and the slot stayed "replacing" for as long as the device hung.
    async def main() -> None:
        pool = RayEnvPool(
            actors=1,
            devices_per_actor=1,
            threads_per_actor=1,
            call_timeout_s=5,
            max_stuck_threads=0,
            health_interval_s=None,
        )
        async with pool:
            with pytest.raises(DeviceFailure, match="step: no answer within 5 s"):
                async with pool.lease() as device:
                    await device.reset(TASK, 1)
                    await pool.actor_of(device.id).stall_device.remote(device.id, 600)
                    await device.step(LAUNCH)
            await wait_until(lambda: pool.stats()["replaced"] == 1, "the stuck device replaced")
            assert (pool.stats()["call_timeouts"], pool.stats()["wedged_actors"]) == (1, 0)
            async with pool.lease() as device:
                assert (await device.reset(TASK, 2)).info["task"] == f"{TASK}:2"
            (info,) = await pool.actor_info()
            assert (info["stuck_threads"], info["abandoned_threads"], info["dead"]) == (1, 1, {})
            # Only a new process frees a stuck thread: past max_stuck_threads the health check restarts the actor.
            await pool.check_health()
            await wait_until(lambda: pool.stats()["restarted_actors"] == 1, "the actor restarted")
            stats = pool.stats()
            assert (stats["wedged_actors"], stats["free"], stats["devices"]) == (1, 1, 1)
            assert set(pool._slots) == {"env0.1/0"}

    asyncio.run(main())


@pytest.mark.slow
def test_a_replacement_that_hangs_is_retried_then_the_slot_is_retired(ray_cluster):
    async def main() -> None:
        pool = RayEnvPool(
            actors=1, devices_per_actor=2, replace_timeout_s=5, replace_attempts=2, health_interval_s=None
        )

        async def fail_device(device_id: str | None = None) -> str:
            with pytest.raises(DeviceFailure, match="killed"):
                async with pool.lease() as device:
                    await device.reset(TASK, 1)
                    await pool.actor_of(device.id).kill_device.remote(device.id)
                    await device.step(LAUNCH)
            return device.id

        async with pool:
            actor = pool.actors()[0]
            await actor.stall_replacements.remote(600, count=1)  # the first try hangs, the retry works
            first = await fail_device()
            await wait_until(lambda: pool.stats()["replaced"] == 1, "replaced on the second try")
            assert (pool.stats()["replace_failures"], pool.stats()["free"]) == (1, 2)

            await actor.stall_replacements.remote(600, count=2)  # both tries hang: the slot is given up
            second = await fail_device()
            await wait_until(lambda: pool.stats()["retired"] == 1, "retired after two failed tries")
            stats = pool.stats()
            assert (stats["replace_failures"], stats["devices"], stats["free"], stats["busy"]) == (3, 1, 1, 0)
            assert {slot.state for slot in pool._slots.values()} == {"free", "retired"}  # none left "replacing"
            assert first in pool._slots and second in pool._slots

    asyncio.run(main())


@pytest.mark.slow
def test_an_actor_that_never_answers_a_step_is_restarted_and_the_episode_fails_retryably(ray_cluster):
    async def main() -> None:
        pool = RayEnvPool(
            actors=1,
            devices_per_actor=2,
            call_timeout_s=5,
            probe_timeout_s=0.5,
            actor_grace_s=2,
            health_interval_s=None,
        )
        async with pool:
            with pytest.raises(DeviceFailure, match=r"did not answer step within 7\.5 s"):
                async with pool.lease() as device:
                    await device.reset(TASK, 1)
                    pool.actor_of(device.id).wedge.remote(600)  # its event loop blocks, as in native code
                    await device.step(LAUNCH)
            stats = pool.stats()
            assert (stats["call_timeouts"], stats["wedged_actors"], stats["failures"]) == (1, 1, 1)
            await wait_until(lambda: pool.stats()["restarted_actors"] == 1, "the wedged actor restarted")
            async with pool.lease() as device:
                assert device.id.startswith("env0.1/")
                assert (await device.reset(TASK, 2)).info["task"] == f"{TASK}:2"

    asyncio.run(main())
