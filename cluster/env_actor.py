"""`EnvActor`: a Ray actor hosting K devices, each behind an AndroidEnv, stepped concurrently.

Devices are fresh simulated phones (`SimDevice`) or, for given adb serials on the actor's node,
`AdbDevice`s. A device that dies is taken out of service; `replace` gives a simulated slot a new
phone, while a dead adb device is retired (relaunching emulators is the node's job, not this one's).
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import ray

from droidrl.envs.env import AndroidEnv
from droidrl.envs.errors import DeviceUnavailable, DroidrlEnvError
from droidrl.rollout.envpool import DeviceFailure, StepResult, to_observation

T = TypeVar("T")

HealthStatus = str  # "ok", "busy" (mid-call, so not probed) or "dead: <why>"
ReplaceOutcome = Literal["replaced", "kept", "retired"]
PROBE_TEXT = "droidrl-alive"


class _DeadPhone:
    """Stands in for a simulated phone that died: any use raises DeviceUnavailable, as a lost emulator's adb does."""

    def __init__(self, serial: str) -> None:
        self._serial = serial

    def __getattr__(self, name: str) -> Any:
        raise DeviceUnavailable(self._serial, "the simulated phone was killed (kill_device)")


@dataclass
class _Slot:
    id: str
    env: AndroidEnv | None  # None: an adb device that could not be reached
    serial: str | None  # the adb serial, or None for a simulated phone
    dead: str | None = None  # why the device is out of service; None while it works
    busy: bool = False  # a reset/step is running on it


@ray.remote(max_restarts=0)
class EnvActor:
    """K devices on one node, stepped concurrently in a thread pool; place it with a custom resource.

    Args:
        host_id: the prefix of this actor's device ids ("env3.0" gives "env3.0/0", "env3.0/1", ...).
        count: how many simulated phones to host (ignored when `serials` are given).
        serials: adb serials of emulators/phones on this node; each becomes an `AdbDevice`.
        env_config: `EnvConfig` fields for every AndroidEnv (not `screenshots`: use the argument).
        screenshots: False keeps observations text-only (the render is skipped entirely).
        adb: keyword arguments of `AdbDevice` (adb_host, adb_port, timeout_s, ...).
        threads: worker threads for env calls (default: one per device).
        call_timeout_s: a reset/step that takes longer counts as a dead (wedged) device.
        probe_timeout_s: a health probe that takes longer counts as a dead device.
    """

    def __init__(
        self,
        host_id: str,
        count: int = 0,
        serials: Sequence[str] = (),
        env_config: dict[str, Any] | None = None,
        screenshots: bool = False,
        adb: dict[str, Any] | None = None,
        threads: int | None = None,
        call_timeout_s: float = 300.0,
        probe_timeout_s: float = 10.0,
    ) -> None:
        env_config = dict(env_config or {})
        if "screenshots" in env_config:
            raise ValueError("give screenshots as EnvActor(screenshots=...), not inside env_config")
        if not serials and count < 1:
            raise ValueError(f"an env actor needs count >= 1 simulated phones or adb serials, got count={count}")
        self.host_id = host_id
        self.screenshots = screenshots
        self.env_config = {**env_config, "screenshots": screenshots}
        self.adb = dict(adb or {})
        self.call_timeout_s = call_timeout_s
        self.probe_timeout_s = probe_timeout_s
        self.replaced = 0
        self._slots: dict[str, _Slot] = {}
        for index, serial in enumerate(serials or [None] * count):
            slot = _Slot(id=f"{host_id}/{index}", env=None, serial=serial)
            try:
                slot.env = self._make_env(serial)
            except DroidrlEnvError as error:  # an unreachable emulator: report it, host the others
                slot.dead = str(error)
            self._slots[slot.id] = slot
        self._threads = ThreadPoolExecutor(max_workers=threads or len(self._slots), thread_name_prefix=host_id)

    def devices(self) -> list[str]:
        """Ids of the devices in service (an adb device unreachable at start is not among them)."""
        return [slot.id for slot in self._slots.values() if slot.dead is None]

    async def reset(self, device_id: str, task: str, seed: int) -> StepResult:
        """Roll the device back to `task` for instance `seed`; raises DeviceFailure if the device fails."""

        def run(env: AndroidEnv) -> StepResult:
            obs, info = env.reset(seed=seed, options={"task": task})
            return StepResult(to_observation(obs, env.device.size, self.screenshots), info=_plain(info))

        return await self._call(device_id, f"reset to {task!r}", run)

    async def step(self, device_id: str, action_text: str) -> StepResult:
        """Carry out the model's text on the device; raises DeviceFailure if the device fails."""

        def run(env: AndroidEnv) -> StepResult:
            obs, reward, terminated, truncated, info = env.step(action_text)
            observation = to_observation(obs, env.device.size, self.screenshots)
            return StepResult(observation, reward, terminated, truncated, _plain(info))

        return await self._call(device_id, "step", run)

    async def health(self) -> dict[str, HealthStatus]:
        """Probe every idle device (foreground app + a shell echo); a probe that fails or times out kills it."""
        slots = list(self._slots.values())
        statuses = await asyncio.gather(*(self._probe(slot) for slot in slots))
        return {slot.id: status for slot, status in zip(slots, statuses, strict=True)}

    async def replace(self, device_id: str) -> ReplaceOutcome:
        """Put a working device in the slot after a failure; says "replaced", "kept" or "retired".

        A simulated slot gets a new phone ("replaced"); an adb device that still works stays ("kept");
        a dead adb device is retired ("retired") until someone relaunches it.
        """
        slot = self._slot(device_id)
        if slot.busy:
            raise RuntimeError(f"{device_id} is mid-call; replace a device only after its episode let go of it")
        if slot.serial is not None:
            if slot.dead is None:
                return "kept"
            return "retired"
        slot.env = await asyncio.get_running_loop().run_in_executor(self._threads, self._make_env, None)
        slot.dead = None
        self.replaced += 1
        return "replaced"

    def kill_device(self, device_id: str) -> None:
        """Test hook: make a simulated phone die, so its next use raises DeviceUnavailable."""
        slot = self._slot(device_id)
        if slot.serial is not None or slot.env is None:
            raise ValueError(f"kill_device works on simulated phones only; {device_id} is adb {slot.serial}")
        slot.env.device.phone = _DeadPhone(device_id)

    def info(self) -> dict[str, Any]:
        """Process id, resident memory, and device counters of this actor."""
        return {
            "host_id": self.host_id,
            "pid": os.getpid(),
            "rss_mb": _rss_mb(),
            "devices": len(self._slots),
            "dead": {slot.id: slot.dead for slot in self._slots.values() if slot.dead is not None},
            "replaced": self.replaced,
        }

    # -- internals -----------------------------------------------------------------------------

    def _make_env(self, serial: str | None) -> AndroidEnv:
        if serial is None:
            return AndroidEnv(**self.env_config)  # a fresh simulated phone
        from droidrl.envs.adb_device import AdbDevice  # adbutils is needed only for real devices

        return AndroidEnv(device=AdbDevice(serial, **self.adb), **self.env_config)

    def _slot(self, device_id: str) -> _Slot:
        try:
            return self._slots[device_id]
        except KeyError:
            raise ValueError(f"{self.host_id} hosts no device {device_id!r}; it hosts {sorted(self._slots)}") from None

    async def _call(self, device_id: str, what: str, fn: Callable[[AndroidEnv], T]) -> T:
        slot = self._slot(device_id)
        if slot.dead is not None or slot.env is None:
            raise DeviceFailure(f"{device_id} is out of service ({slot.dead}); lease another device")
        if slot.busy:
            raise RuntimeError(f"{device_id} is already running a call; one episode may use a device at a time")
        slot.busy = True
        env = slot.env
        try:
            future = asyncio.get_running_loop().run_in_executor(self._threads, fn, env)
            return await asyncio.wait_for(future, self.call_timeout_s)
        except TimeoutError:
            # The thread may still be stuck in the device; the slot never touches that env again.
            slot.dead = f"{what} took longer than {self.call_timeout_s} s"
            raise DeviceFailure(f"{device_id}: {slot.dead}; the device counts as dead") from None
        except DeviceUnavailable as error:
            slot.dead = str(error)
            raise DeviceFailure(f"{device_id}: {error}") from None
        except DroidrlEnvError as error:
            # The device answered but refused (a missing snapshot, a failed command): this episode is
            # lost; the device stays, since the next reset rolls it back to a snapshot.
            raise DeviceFailure(f"{device_id}: {what} failed: {error}") from None
        finally:
            slot.busy = False

    async def _probe(self, slot: _Slot) -> HealthStatus:
        if slot.dead is not None or slot.env is None:
            return f"dead: {slot.dead}"
        if slot.busy:
            return "busy"
        device = slot.env.device

        def probe() -> None:
            device.current_app()
            reply = device.shell(f"echo {PROBE_TEXT}")
            if PROBE_TEXT not in reply:
                raise DeviceUnavailable(slot.id, f"shell echo answered {reply[:80]!r}")

        slot.busy = True
        try:
            future = asyncio.get_running_loop().run_in_executor(self._threads, probe)
            await asyncio.wait_for(future, self.probe_timeout_s)
        except TimeoutError:
            slot.dead = f"the health probe took longer than {self.probe_timeout_s} s"
        except DroidrlEnvError as error:
            slot.dead = f"the health probe failed: {error}"
        finally:
            slot.busy = False
        return "ok" if slot.dead is None else f"dead: {slot.dead}"


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    """info without the parsed Action object, which need not cross process boundaries."""
    return {key: value for key, value in info.items() if key != "parsed"}


def _rss_mb() -> float:
    """Resident memory of this process in MiB (the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
