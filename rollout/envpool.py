"""Where episodes get devices: the `EnvPool` contract, its observation record, and an in-process pool.

The collector leases a device, resets it to a task, steps it with the model's text, and hands it
back. `cluster.env_pool.RayEnvPool` meets the same contract with devices in Ray actors.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from droidrl.envs.env import AndroidEnv
from droidrl.envs.errors import DroidrlEnvError

T = TypeVar("T")


class DeviceFailure(Exception):
    """The device (or the actor hosting it) died during a call; the pool has taken it out of service.

    The episode on it is lost and must be retried on another device.
    """


class DeviceTimeout(DeviceFailure):
    """A call on the device ran past its timeout; the device counts as dead and is replaced."""


class DeviceBusy(DeviceFailure):
    """Another call holds the device; the device is fine, this episode retries on another one."""


class NoFreeDevice(RuntimeError):
    """No device became free within the pool's lease timeout."""


class CallTimeout(TimeoutError):
    """A blocking device call ran past its timeout; `started` says whether it ever got a thread."""

    def __init__(self, timeout_s: float, started: bool) -> None:
        super().__init__(f"no answer within {timeout_s:g} s" if started else f"no thread free within {timeout_s:g} s")
        self.started = started


class DeviceThreads:
    """Daemon threads for blocking device calls: at most `workers` at once, each call bounded by a timeout.

    A call stuck past its timeout keeps its thread (Python cannot stop it), so that thread is abandoned:
    its place goes to the next call, `stuck` counts abandoned threads still running, and being a daemon
    it cannot hold up the process's exit.
    """

    def __init__(self, workers: int, name: str) -> None:
        if workers < 1:
            raise ValueError(f"need at least one worker thread, got {workers}")
        self.workers = workers
        self.name = name
        self.abandoned = 0  # threads abandoned in all
        self._stuck = 0
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._places: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def stuck(self) -> int:
        """Abandoned threads that have not returned yet."""
        return self._stuck

    async def run(self, fn: Callable[[], T], timeout_s: float | None) -> T:
        """fn() in a worker thread; raises CallTimeout if it has not returned within timeout_s."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a semaphore belongs to one event loop
            self._loop, self._places = loop, asyncio.Semaphore(self.workers)
        places = self._places
        assert places is not None
        deadline = None if timeout_s is None else loop.time() + timeout_s
        try:
            await asyncio.wait_for(places.acquire(), timeout_s)
        except TimeoutError:
            raise CallTimeout(timeout_s or 0.0, started=False) from None
        call = _ThreadCall(loop, places)
        thread = threading.Thread(target=call.work, args=(fn, self), name=f"{self.name}-{next(self._numbers)}")
        thread.daemon = True
        thread.start()
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            return await asyncio.wait_for(asyncio.shield(call.done), remaining)
        except TimeoutError:
            with self._lock:
                if not call.finished:
                    call.abandoned = True
                    self._stuck += 1
                    self.abandoned += 1
            if not call.abandoned:  # it returned just now: take its answer
                return await call.done
            places.release()  # its place goes to the next call
            raise CallTimeout(timeout_s or 0.0, started=True) from None

    def _returned(self, call: _ThreadCall) -> bool:
        """Called by a worker thread as it ends; says whether the call was abandoned meanwhile."""
        with self._lock:
            call.finished = True
            if call.abandoned:
                self._stuck -= 1
            return call.abandoned


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class _ThreadCall:
    """One call's hand-over between its worker thread and the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, places: asyncio.Semaphore) -> None:
        self.loop = loop
        self.places = places
        self.done: asyncio.Future = loop.create_future()
        self.done.add_done_callback(_retrieved)  # an answer nobody awaits any more is not an error
        self.finished = False
        self.abandoned = False

    def work(self, fn: Callable[[], Any], threads: DeviceThreads) -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (fn(), None)
        except BaseException as error:  # handed to the awaiting coroutine
            outcome = (None, error)
        if threads._returned(self):
            return  # nobody waits for it any more, and its place was already given back
        with contextlib.suppress(RuntimeError):  # the event loop closed meanwhile
            self.loop.call_soon_threadsafe(self._settle, outcome)

    def _settle(self, outcome: tuple[Any, BaseException | None]) -> None:
        self.places.release()
        if self.done.cancelled():
            return
        result, error = outcome
        if error is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(result)


@dataclass
class Observation:
    """What the agent sees after a reset or a step, small enough to cross process boundaries."""

    app: str
    ui_xml: str
    screenshot_png: bytes | None = None  # None when the pool was asked for text only
    size: tuple[int, int] = (0, 0)  # the screen's (width, height) in pixels

    def screenshot(self) -> np.ndarray | None:
        """The screenshot as a uint8 HxWx3 array, or None."""
        if self.screenshot_png is None:
            return None
        return np.asarray(Image.open(io.BytesIO(self.screenshot_png)).convert("RGB"))


@dataclass
class StepResult:
    observation: Observation
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class DeviceLease(Protocol):
    """One device, held by one episode at a time."""

    id: str

    async def reset(self, task: str, seed: int) -> StepResult:
        """Roll the device back to `task` ("Name" or "Name:seed") for instance `seed`; raises DeviceFailure."""
        ...

    async def step(self, action_text: str) -> StepResult:
        """Carry out the model's text; raises DeviceFailure."""
        ...


class EnvPool(Protocol):
    """A set of devices handed out to episodes."""

    def lease(self) -> contextlib.AbstractAsyncContextManager[DeviceLease]:
        """Wait for a free healthy device; it goes back to the pool when the block ends."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters: devices, free, replaced, failures."""
        ...

    async def start(self) -> None:
        """Bring the devices up (a pool of remote actors launches them; an in-process one has nothing to do)."""
        ...

    def close(self) -> None:
        """Release the devices."""
        ...


def to_observation(obs: dict[str, Any], size: tuple[int, int], screenshots: bool) -> Observation:
    """An AndroidEnv observation as an `Observation` (the screenshot PNG-encoded, or dropped)."""
    png = None
    if screenshots:
        buffer = io.BytesIO()
        Image.fromarray(obs["screenshot"]).save(buffer, format="PNG", compress_level=1)
        png = buffer.getvalue()
    return Observation(app=obs["app"], ui_xml=obs["ui_xml"], screenshot_png=png, size=size)


class _LocalLease:
    def __init__(self, pool: LocalEnvPool, env: AndroidEnv, device_id: str) -> None:
        self.id = device_id
        self.env = env
        self.pool = pool
        self.screenshots = pool.screenshots
        self.pending: asyncio.Future | None = None  # the env call running in a worker thread

    async def reset(self, task: str, seed: int) -> StepResult:
        obs, info = await self._call(f"reset to {task!r}", lambda env: env.reset(seed=seed, options={"task": task}))
        return StepResult(to_observation(obs, self.env.device.size, self.screenshots), info=_plain(info))

    async def step(self, action_text: str) -> StepResult:
        obs, reward, terminated, truncated, info = await self._call("step", lambda env: env.step(action_text))
        observation = to_observation(obs, self.env.device.size, self.screenshots)
        return StepResult(observation, reward, terminated, truncated, _plain(info))

    async def _call(self, what: str, fn: Callable[[AndroidEnv], T]) -> T:
        # Shielded: when the caller gives up (a timeout, a dropped group) the env call still runs in its
        # thread, and the pool must not hand the device out until it has finished (or timed out).
        env = self.env
        self.pending = asyncio.ensure_future(self.pool._threads.run(lambda: fn(env), self.pool.call_timeout_s))
        try:
            return await asyncio.shield(self.pending)
        except CallTimeout as error:
            # A stuck thread keeps the old phone; the lease block's end gives the slot a fresh one.
            self.pool._counters["call_timeouts"] += 1
            raise DeviceTimeout(f"{self.id}: {what}: {error}; the device counts as dead") from None
        except DroidrlEnvError as error:
            raise DeviceFailure(f"{self.id}: {error}") from error


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    """info without the parsed Action object, which need not cross process boundaries."""
    return {key: value for key, value in info.items() if key != "parsed"}


class LocalEnvPool:
    """`count` simulated phones in this process, each behind an AndroidEnv (for tests and laptops).

    Args:
        call_timeout_s: a reset/step running longer fails with DeviceFailure; its phone is replaced.
        lease_timeout_s: lease() waiting longer for a free device raises NoFreeDevice (None: no limit).
        env_config: AndroidEnv (EnvConfig) fields.
    """

    def __init__(
        self,
        count: int,
        screenshots: bool = False,
        *,
        call_timeout_s: float = 300.0,
        lease_timeout_s: float | None = 600.0,
        **env_config: Any,
    ) -> None:
        if count < 1:
            raise ValueError(f"an env pool needs at least one device, got count={count}")
        for name, value in (("call_timeout_s", call_timeout_s), ("lease_timeout_s", lease_timeout_s)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.screenshots = screenshots
        self.call_timeout_s = call_timeout_s
        self.lease_timeout_s = lease_timeout_s
        self.env_config = dict(env_config, screenshots=screenshots)
        self._free: asyncio.Queue[_LocalLease] | None = None
        self._leases = [_LocalLease(self, AndroidEnv(**self.env_config), f"local/{i}") for i in range(count)]
        self._threads = DeviceThreads(count, "local-env")
        self._counters = {"failures": 0, "replaced": 0, "call_timeouts": 0, "lease_timeouts": 0}

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[DeviceLease]:
        """Wait for a free device (at most lease_timeout_s); it goes back to the pool when the block ends."""
        if self._free is None:  # created lazily, inside the running event loop
            self._free = asyncio.Queue()
            for lease in self._leases:
                self._free.put_nowait(lease)
        try:
            lease = await asyncio.wait_for(self._free.get(), self.lease_timeout_s)
        except TimeoutError:
            self._counters["lease_timeouts"] += 1
            raise NoFreeDevice(
                f"no device became free within {self.lease_timeout_s} s ({self.stats()}); "
                "lease fewer at once or raise lease_timeout_s"
            ) from None
        try:
            yield lease
        except DeviceFailure:
            self._counters["failures"] += 1
            # A simulated phone that failed is replaced by a fresh one, as a farm relaunches an emulator.
            lease.env = AndroidEnv(**self.env_config)
            self._counters["replaced"] += 1
            raise
        finally:
            if lease.pending is not None and not lease.pending.done():
                lease.pending.add_done_callback(lambda _: self._free.put_nowait(lease))
            else:
                self._free.put_nowait(lease)

    async def start(self) -> None:
        """Nothing to start: the phones were made with the pool."""

    def close(self) -> None:
        """Nothing to release: the phones live as long as the pool object."""

    def stats(self) -> dict[str, int]:
        """devices, free, replaced, failures, call_timeouts (calls past call_timeout_s), lease_timeouts."""
        free = self._free.qsize() if self._free is not None else len(self._leases)
        c = self._counters
        return {
            "devices": len(self._leases),
            "free": free,
            "replaced": c["replaced"],
            "failures": c["failures"],
            "call_timeouts": c["call_timeouts"],
            "lease_timeouts": c["lease_timeouts"],
        }
