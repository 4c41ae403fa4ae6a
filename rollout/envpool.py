"""Where episodes get devices: the `EnvPool` contract, its observation record, and an in-process pool.

The collector leases a device, resets it to a task, steps it with the model's text, and hands it
back. `cluster.env_pool.RayEnvPool` meets the same contract with devices in Ray actors.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

from droidrl.envs.env import AndroidEnv
from droidrl.envs.errors import DroidrlEnvError


class DeviceFailure(Exception):
    """The device (or the actor hosting it) died during a call; the pool has taken it out of service.

    The episode on it is lost and must be retried on another device.
    """


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
    def __init__(self, env: AndroidEnv, device_id: str, screenshots: bool) -> None:
        self.id = device_id
        self.env = env
        self.screenshots = screenshots
        self.pending: asyncio.Future | None = None  # the env call running in a worker thread

    async def reset(self, task: str, seed: int) -> StepResult:
        obs, info = await self._call(lambda: self.env.reset(seed=seed, options={"task": task}))
        return StepResult(to_observation(obs, self.env.device.size, self.screenshots), info=_plain(info))

    async def step(self, action_text: str) -> StepResult:
        obs, reward, terminated, truncated, info = await self._call(lambda: self.env.step(action_text))
        observation = to_observation(obs, self.env.device.size, self.screenshots)
        return StepResult(observation, reward, terminated, truncated, _plain(info))

    async def _call(self, fn):
        # Shielded: when the caller gives up (a timeout, a dropped group) the env call still runs in its
        # thread, and the pool must not hand the device out until it has finished.
        self.pending = asyncio.ensure_future(asyncio.to_thread(fn))
        try:
            return await asyncio.shield(self.pending)
        except DroidrlEnvError as error:
            raise DeviceFailure(f"{self.id}: {error}") from error


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    """info without the parsed Action object, which need not cross process boundaries."""
    return {key: value for key, value in info.items() if key != "parsed"}


class LocalEnvPool:
    """`count` simulated phones in this process, each behind an AndroidEnv (for tests and laptops)."""

    def __init__(self, count: int, screenshots: bool = False, **env_config: Any) -> None:
        if count < 1:
            raise ValueError(f"an env pool needs at least one device, got count={count}")
        self.screenshots = screenshots
        self.env_config = dict(env_config, screenshots=screenshots)
        self._free: asyncio.Queue[_LocalLease] | None = None
        self._leases = [_LocalLease(AndroidEnv(**self.env_config), f"local/{i}", screenshots) for i in range(count)]
        self._failures = 0
        self._replaced = 0

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[DeviceLease]:
        if self._free is None:  # created lazily, inside the running event loop
            self._free = asyncio.Queue()
            for lease in self._leases:
                self._free.put_nowait(lease)
        lease = await self._free.get()
        try:
            yield lease
        except DeviceFailure:
            self._failures += 1
            # A simulated phone that failed is replaced by a fresh one, as a farm relaunches an emulator.
            lease.env = AndroidEnv(**self.env_config)
            self._replaced += 1
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
        free = self._free.qsize() if self._free is not None else len(self._leases)
        return {"devices": len(self._leases), "free": free, "replaced": self._replaced, "failures": self._failures}
