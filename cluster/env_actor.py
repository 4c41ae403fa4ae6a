"""`EnvActor`: a Ray actor hosting K devices, each behind an AndroidEnv, stepped concurrently.

Devices are fresh simulated phones (`SimDevice`), Android emulators this actor launches and owns
(envs/emulators.py), or, for given adb serials on the actor's node, `AdbDevice`s. A device that dies is
taken out of service; `replace` gives a simulated slot a new phone and an emulator slot a relaunched
emulator, while a dead adb device is retired (someone else runs it).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import ray

from droidrl.envs.env import AndroidEnv
from droidrl.envs.errors import DeviceUnavailable, DroidrlEnvError
from droidrl.rollout.envpool import (
    CallTimeout,
    DeviceBusy,
    DeviceFailure,
    DeviceThreads,
    DeviceTimeout,
    StepResult,
    to_observation,
)

T = TypeVar("T")

HealthStatus = str  # "ok", "busy" (mid-call, so not probed), "skipped" (not asked for) or "dead: <why>"
ACTOR_HEALTH = "actor"  # health() key, present only when the actor itself needs a restart (stuck threads)
ReplaceOutcome = Literal["replaced", "kept", "retired"]
PROBE_TEXT = "droidrl-alive"


class _DeadPhone:
    """Stands in for a simulated phone that died: any use raises DeviceUnavailable, as a lost emulator's adb does."""

    def __init__(self, serial: str) -> None:
        self._serial = serial

    def __getattr__(self, name: str) -> Any:
        raise DeviceUnavailable(self._serial, "the simulated phone was killed (kill_device)")


class _StalledDevice:
    """Test hook: a device whose every method call hangs `seconds` first, as a wedged adb connection does."""

    def __init__(self, device: Any, seconds: float) -> None:
        self._device = device
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._device, name)
        if not callable(value):
            return value

        def stalled(*args: Any, **kwargs: Any) -> Any:
            time.sleep(self._seconds)
            return value(*args, **kwargs)

        return stalled


@dataclass
class _Slot:
    id: str
    env: AndroidEnv | None  # None: an adb device that could not be reached
    serial: str | None  # the adb serial, or None for a simulated phone
    dead: str | None = None  # why the device is out of service; None while it works
    busy: bool = False  # a reset/step is running on it
    emulator: Any = None  # the EmulatorInstance of an emulator slot (None: not launched, or not an emulator slot)
    probe: asyncio.Future | None = None  # a health probe running on it; a call waits for it to end


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
        emulator: an `envs.emulators.EmulatorConfig` (or its fields): the `count` slots are emulators this
            actor launches on ports leased on its node, relaunches when they die or hang, and kills at exit.
        threads: worker threads for env calls (default: one per device).
        call_timeout_s: a reset/step that takes longer counts as a dead (wedged) device.
        probe_timeout_s: a health probe that takes longer counts as a dead device.
        replace_timeout_s: making a new device for a slot that takes longer fails the replacement.
        max_stuck_threads: with more device threads stuck past their timeouts, health() asks for a restart
            of this actor (only a new process frees them); default: one per device.

    One device serves one call at a time: a reset/step that finds a health probe running on its device
    waits for it (probes are bounded by probe_timeout_s); one that finds another call raises DeviceBusy.
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
        emulator: Any = None,
        replace_timeout_s: float = 300.0,
        max_stuck_threads: int | None = None,
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
        self.replace_timeout_s = replace_timeout_s
        self.replaced = 0
        self.collisions = 0  # calls refused because another call held the device
        self._stalled_replacements: list[float] = []  # test hook: seconds the next replacements hang
        self._slots: dict[str, _Slot] = {}
        self.emulator = _emulator_config(emulator) if emulator is not None and not serials else None
        self.relaunched = 0  # emulators killed and booted anew after a death or a hang
        launched = _start_emulators(self.emulator, count) if self.emulator is not None else []
        for index, serial in enumerate(serials or [None] * count):
            slot = _Slot(id=f"{host_id}/{index}", env=None, serial=serial)
            try:
                if launched:
                    slot.emulator = None if isinstance(launched[index], Exception) else launched[index]
                slot.env = self._make_env(serial, launched[index] if launched else None)
            except DroidrlEnvError as error:  # an unreachable emulator: report it, host the others
                slot.dead = str(error)
            self._slots[slot.id] = slot
        self._threads = DeviceThreads(threads or len(self._slots), host_id)
        self.max_stuck_threads = max_stuck_threads if max_stuck_threads is not None else len(self._slots)

    def devices(self) -> list[str]:
        """Ids of the devices in service (an adb device unreachable at start is not among them)."""
        return [slot.id for slot in self._slots.values() if slot.dead is None]

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """How to reach each device other than through droidrl's Device (android_world's env: adb and gRPC).

        Serial and adb server host/port; for emulator slots also console/gRPC ports and the process id.
        """
        found: dict[str, dict[str, Any]] = {}
        for slot in self._slots.values():
            if slot.emulator is not None:
                found[slot.id] = slot.emulator.endpoint()
            elif slot.serial is not None:
                found[slot.id] = {
                    "serial": slot.serial,
                    "adb_host": self.adb.get("adb_host", "127.0.0.1"),
                    "adb_port": self.adb.get("adb_port", 5037),
                }
        return found

    def shutdown(self) -> None:
        """Kill this actor's emulators now (they also die with the actor's process: process group + PDEATHSIG)."""
        for slot in self._slots.values():
            if slot.emulator is not None:
                slot.emulator.close()
                slot.emulator = None
                slot.dead = "the actor shut its emulator down"

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

    async def health(self, device_ids: Sequence[str] | None = None) -> dict[str, HealthStatus]:
        """Probe idle devices (foreground app + a shell echo); a probe that fails or times out kills the device.

        device_ids: probe only these (the pool names the devices no episode holds); None: every idle one.
        The ACTOR_HEALTH key appears when too many threads are stuck: the actor wants a restart.
        """
        wanted = set(self._slots) if device_ids is None else set(device_ids)
        slots = [slot for slot in self._slots.values() if slot.id in wanted]
        statuses = await asyncio.gather(*(self._probe(slot) for slot in slots))
        report = dict.fromkeys(self._slots, "skipped")
        report.update(zip([slot.id for slot in slots], statuses, strict=True))
        if self._threads.stuck > self.max_stuck_threads:
            report[ACTOR_HEALTH] = f"dead: {self._threads.stuck} device threads are stuck past their timeouts"
        return report

    async def replace(self, device_id: str) -> ReplaceOutcome:
        """Put a working device in the slot after a failure; says "replaced", "kept" or "retired".

        A simulated slot gets a new phone ("replaced"); an adb device that still works stays ("kept");
        a dead adb device is retired ("retired") until someone relaunches it.
        """
        slot = self._slot(device_id)
        await self._probe_ended(slot)
        if slot.busy:
            raise DeviceBusy(f"{device_id} is mid-call; replace a device only after its episode let go of it")
        if self.emulator is not None and slot.serial is None:
            return await self._relaunch(slot)
        if slot.serial is not None:
            if slot.dead is None:
                return "kept"
            return "retired"
        slot.busy = True  # no call may use the slot while its new device is made
        stall_s = self._stalled_replacements.pop(0) if self._stalled_replacements else 0.0

        def make() -> AndroidEnv:
            time.sleep(stall_s)
            return self._make_env(None)

        try:
            slot.env = await self._threads.run(make, self.replace_timeout_s)
        except CallTimeout as error:
            slot.dead = f"making a new device: {error}"
            raise DeviceFailure(f"{device_id}: {slot.dead}") from None
        finally:
            slot.busy = False
        slot.dead = None
        self.replaced += 1
        return "replaced"

    def kill_device(self, device_id: str) -> None:
        """Test hook: make a simulated phone die, so its next use raises DeviceUnavailable."""
        slot = self._slot(device_id)
        if slot.serial is not None or slot.env is None:
            raise ValueError(f"kill_device works on simulated phones only; {device_id} is adb {slot.serial}")
        slot.env.device.phone = _DeadPhone(device_id)

    def stall_device(self, device_id: str, seconds: float) -> None:
        """Test hook: every later call on the device hangs `seconds` first (a wedged adb connection)."""
        slot = self._slot(device_id)
        if slot.env is None:
            raise ValueError(f"{device_id} has no device to stall")
        slot.env.device = _StalledDevice(slot.env.device, seconds)

    def stall_replacements(self, seconds: float, count: int = 1) -> None:
        """Test hook: the next `count` replacements of simulated phones hang `seconds` before making one."""
        self._stalled_replacements += [seconds] * count

    async def wedge(self, seconds: float) -> None:
        """Test hook: block this actor's event loop for `seconds`, as native code that never returns would."""
        time.sleep(seconds)

    def info(self) -> dict[str, Any]:
        """Process id, resident memory, and device counters of this actor."""
        return {
            "host_id": self.host_id,
            "pid": os.getpid(),
            "rss_mb": _rss_mb(),
            "devices": len(self._slots),
            "dead": {slot.id: slot.dead for slot in self._slots.values() if slot.dead is not None},
            "replaced": self.replaced,
            "relaunched": self.relaunched,
            "emulators": {
                slot.id: {**slot.emulator.endpoint(), **slot.emulator.counters()}
                for slot in self._slots.values()
                if slot.emulator is not None
            },
            "collisions": self.collisions,
            "stuck_threads": self._threads.stuck,  # abandoned past a timeout and still running
            "abandoned_threads": self._threads.abandoned,
        }

    # -- internals -----------------------------------------------------------------------------

    def _make_env(self, serial: str | None, emulator: Any = None) -> AndroidEnv:
        if self.emulator is not None and serial is None:
            return self._emulator_env(emulator)
        if serial is None:
            return AndroidEnv(**self.env_config)  # a fresh simulated phone
        from droidrl.envs.adb_device import AdbDevice  # adbutils is needed only for real devices

        return AndroidEnv(device=AdbDevice(serial, **self.adb), **self.env_config)

    def _emulator_env(self, emulator: Any) -> AndroidEnv:
        """An AndroidEnv over a launched emulator (`emulator`: its EmulatorInstance, or why its launch failed)."""
        from droidrl.envs.emulators import EmulatorDevice, inner_device_factory

        if isinstance(emulator, Exception):
            raise emulator
        if emulator is None:
            raise DeviceUnavailable("emulator", "it was not launched")
        device = EmulatorDevice(emulator, inner_device_factory(self.emulator, **self.adb))
        return AndroidEnv(device=device, **self.env_config)

    async def _relaunch(self, slot: _Slot) -> ReplaceOutcome:
        """Kill the slot's emulator (dead or hung) and boot a new one on its ports, with back-off.

        SIGKILL ends a stopped (hung) process too. Raises DeviceFailure if every try fails.
        """
        from droidrl.envs.emulators import EmulatorInstance

        def relaunch() -> AndroidEnv:
            if slot.emulator is None:
                slot.emulator = EmulatorInstance.start(self.emulator)
            else:
                slot.emulator.relaunch()
            return self._emulator_env(slot.emulator)

        slot.busy = True  # no call may use the slot while its emulator boots
        slot.env = None
        try:
            env = await asyncio.to_thread(relaunch)  # not the device threads: one may be stuck in the old emulator
        except DroidrlEnvError as error:  # the pool tries again (replace_attempts), then retires the slot
            slot.dead = f"relaunching its emulator failed: {error}"
            raise DeviceFailure(f"{slot.id}: {slot.dead}") from None
        finally:
            slot.busy = False
        slot.env, slot.dead = env, None
        self.replaced += 1
        self.relaunched += 1
        return "replaced"

    def _slot(self, device_id: str) -> _Slot:
        try:
            return self._slots[device_id]
        except KeyError:
            raise ValueError(f"{self.host_id} hosts no device {device_id!r}; it hosts {sorted(self._slots)}") from None

    async def _call(self, device_id: str, what: str, fn: Callable[[AndroidEnv], T]) -> T:
        slot = self._slot(device_id)
        await self._probe_ended(slot)
        if slot.dead is not None or slot.env is None:
            raise DeviceFailure(f"{device_id} is out of service ({slot.dead}); lease another device")
        if slot.busy:
            self.collisions += 1
            raise DeviceBusy(f"{device_id} is already running a call; one episode may use a device at a time")
        slot.busy = True
        env = slot.env
        try:
            return await self._threads.run(lambda: fn(env), self.call_timeout_s)
        except CallTimeout as error:
            # The thread may still be stuck in the device; the slot never touches that env again.
            slot.dead = f"{what}: {error}"
            raise DeviceTimeout(f"{device_id}: {slot.dead}; the device counts as dead") from None
        except DeviceUnavailable as error:
            slot.dead = str(error)
            raise DeviceFailure(f"{device_id}: {error}") from None
        except DroidrlEnvError as error:
            # The device answered but refused (a missing snapshot, a failed command): this episode is
            # lost; the device stays, since the next reset rolls it back to a snapshot.
            raise DeviceFailure(f"{device_id}: {what} failed: {error}") from None
        finally:
            slot.busy = False

    async def _probe_ended(self, slot: _Slot) -> None:
        """Wait for a health probe on the slot to end (a probe is bounded by its own timeout)."""
        if slot.probe is not None:
            await asyncio.shield(slot.probe)

    async def _probe(self, slot: _Slot) -> HealthStatus:
        if slot.dead is not None or slot.env is None:
            return f"dead: {slot.dead}"
        if slot.busy or slot.probe is not None:
            return "busy"
        device = slot.env.device
        emulator = slot.emulator

        def probe() -> None:
            if emulator is not None:  # the process runs and its gRPC service answers
                emulator.check(self.probe_timeout_s / 2)
            device.current_app()
            reply = device.shell(f"echo {PROBE_TEXT}")
            if PROBE_TEXT not in reply:
                raise DeviceUnavailable(slot.id, f"shell echo answered {reply[:80]!r}")

        slot.probe = asyncio.get_running_loop().create_future()
        try:
            await self._threads.run(probe, self.probe_timeout_s)
        except CallTimeout as error:
            if not error.started:  # every thread was busy with calls: nothing is known about the device
                return "busy"
            slot.dead = f"the health probe took longer than {self.probe_timeout_s} s"
        except DroidrlEnvError as error:
            slot.dead = f"the health probe failed: {error}"
        finally:
            slot.probe.set_result(None)
            slot.probe = None
        return "ok" if slot.dead is None else f"dead: {slot.dead}"


def _emulator_config(emulator: Any) -> Any:
    from droidrl.envs.emulators import EmulatorConfig

    return emulator if isinstance(emulator, EmulatorConfig) else EmulatorConfig(**emulator)


def _start_emulators(config: Any, count: int) -> list[Any]:
    """Launch `count` emulators at once; each entry is an EmulatorInstance or the error that stopped it.

    A configuration problem (no binary or /dev/kvm on this node, no free port slot) is raised: the actor fails.
    """
    from concurrent.futures import ThreadPoolExecutor as Launcher

    from droidrl.envs.emulators import EmulatorInstance

    def start(_: int) -> Any:
        try:
            return EmulatorInstance.start(config)
        except DroidrlEnvError as error:
            return error

    with Launcher(max_workers=count, thread_name_prefix="emulator-launch") as launcher:
        launched = list(launcher.map(start, range(count)))
    return launched


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
