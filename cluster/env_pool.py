"""`RayEnvPool`: the `EnvPool` contract over a farm of `EnvActor`s, replacing dead devices and actors.

N actors of K devices each are placed by a custom Ray resource (default "android"), which device
hosts offer and GPU hosts do not: `ray start --resources='{"android": 64}'`. A device that fails
mid-call is replaced by its actor, an actor that dies by a new actor with fresh devices; in both
cases the episode gets a `DeviceFailure` and the collector retries it on another device.

Every actor call is bounded: the actor bounds a reset/step (call_timeout_s), a probe (probe_timeout_s)
and a replacement (replace_timeout_s) itself, and an actor that does not answer within that plus
actor_grace_s is wedged and restarted. Health probes run only on devices no episode holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from droidrl.cluster.env_actor import ACTOR_HEALTH, EnvActor
from droidrl.envs.env import EnvConfig
from droidrl.rollout.envpool import DeviceBusy, DeviceFailure, DeviceTimeout, NoFreeDevice, StepResult

log = logging.getLogger(__name__)


class FarmError(RuntimeError):
    """The farm cannot hand out devices: actors not placeable, no device free in time, or closed."""


class LeaseTimeout(FarmError, NoFreeDevice):
    """No device became free within lease_timeout_s."""


@dataclass
class AdbHost:
    """Emulators/phones already running on one node, reached by their adb serials."""

    serials: list[str]
    node_ip: str | None = None  # pin the actor to this node (Ray's built-in "node:<ip>" resource)


def _emulator_config(emulator: Any, env: dict[str, Any]) -> Any:
    """The farm's EmulatorConfig; its envs reset to the AVD's one snapshot and cache no task snapshots.

    Binary and /dev/kvm are checked here when this host runs the emulators (no RAY_ADDRESS: a local
    cluster); otherwise each actor checks its own node when it starts.
    """
    from droidrl.envs.emulators import EmulatorConfig, check_host

    try:
        config = emulator if isinstance(emulator, EmulatorConfig) else EmulatorConfig(**emulator)
        if "RAY_ADDRESS" not in os.environ:
            check_host(config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"emulator.{error}") from None
    if env.get("cache_task_snapshots"):
        raise ValueError("env: cache_task_snapshots must be False for emulators (they share one AVD read-only)")
    if env.setdefault("base_snapshot", config.snapshot) != config.snapshot:
        raise ValueError(f"env: base_snapshot must be the AVD's snapshot emulator.snapshot={config.snapshot!r}")
    env["cache_task_snapshots"] = False
    return config


@dataclass
class FarmConfig:
    """How many device hosts, where they run, and how devices are watched."""

    actors: int = 1  # env actors hosting simulated phones
    devices_per_actor: int = 8  # K simulated phones per actor
    adb_hosts: list[AdbHost] = field(default_factory=list)  # one more actor per host of real devices
    resource: str = "android"  # custom Ray resource; an actor asks for one unit per device it hosts
    actor_cpus: float = 0.0  # CPUs reserved per actor; the device resource already sizes a node's load
    screenshots: bool = False  # False: text-only observations (no render, nothing to ship)
    env: dict[str, Any] = field(default_factory=dict)  # EnvConfig fields for every AndroidEnv
    adb: dict[str, Any] = field(default_factory=dict)  # AdbDevice arguments (adb_host, adb_port, timeout_s)
    emulator: Any = None  # envs.emulators.EmulatorConfig (or its fields): each of `actors` launches K emulators
    actor_options: dict[str, Any] = field(default_factory=dict)  # more Ray .options(): runtime_env, ...
    threads_per_actor: int | None = None  # env-call threads per actor (default: one per device)
    call_timeout_s: float = 300.0  # a reset/step running longer marks its device dead
    probe_timeout_s: float = 10.0  # a per-device health probe running longer marks it dead
    replace_timeout_s: float = 300.0  # making a new device for a slot running longer fails that replacement
    replace_attempts: int = 3  # failed replacements of one device before its slot is retired
    actor_grace_s: float = 30.0  # an actor silent this long past a call's own timeout is wedged: restarted
    max_stuck_threads: int | None = None  # per actor; more device threads stuck past a timeout restart it
    health_interval_s: float | None = 30.0  # seconds between health checks; None: no periodic check
    health_timeout_s: float = 60.0  # an actor whose health() does not answer in time counts as dead
    start_timeout_s: float = 120.0  # an actor not up in this time counts as unplaceable
    lease_timeout_s: float | None = 600.0  # lease() waiting longer for a free device raises FarmError

    def __post_init__(self) -> None:
        if self.actors < 0 or (self.actors and self.devices_per_actor < 1):
            raise ValueError(
                f"need actors >= 0 and devices_per_actor >= 1, got {self.actors} x {self.devices_per_actor}"
            )
        if self.actors == 0 and not self.adb_hosts:
            raise ValueError("the farm has no devices: set actors >= 1 or list adb_hosts")
        self.adb_hosts = [AdbHost(**h) if isinstance(h, dict) else h for h in self.adb_hosts]
        if self.emulator is not None:
            self.emulator = _emulator_config(self.emulator, self.env)
        for host in self.adb_hosts:
            if not host.serials:
                raise ValueError("an adb host lists no serials; give at least one, e.g. ['emulator-5554']")
        unknown = set(self.env) - set(EnvConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown EnvConfig field(s) in env: {sorted(unknown)}")
        if "screenshots" in self.env:
            raise ValueError("set FarmConfig.screenshots, not env['screenshots']")
        clash = {"num_cpus", "resources", "max_restarts"} & set(self.actor_options)
        if clash:
            raise ValueError(f"actor_options may not set {sorted(clash)}: use actor_cpus and resource instead")
        for name in (
            "call_timeout_s",
            "probe_timeout_s",
            "health_timeout_s",
            "start_timeout_s",
            "replace_timeout_s",
            "actor_grace_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.replace_attempts < 1:
            raise ValueError(f"replace_attempts must be at least 1, got {self.replace_attempts}")


SlotState = Literal["free", "busy", "replacing", "retired"]


@dataclass(eq=False)
class _Host:
    """One EnvActor generation: index i keeps its place in the farm across restarts."""

    index: int
    generation: int
    serials: list[str] | None  # None: simulated phones
    node_ip: str | None
    actor: Any = None
    up: bool = False

    @property
    def name(self) -> str:
        return f"env{self.index}.{self.generation}"


@dataclass(eq=False)
class _Slot:
    """One device as the pool sees it."""

    id: str
    host: _Host
    state: SlotState = "free"
    queued: bool = False  # in the free queue (possibly stale: lease() skips slots that are not free)


class _RayLease:
    """The handle one episode holds; it stops working when the block ends or the device fails."""

    def __init__(self, pool: RayEnvPool, slot: _Slot) -> None:
        self.id = slot.id
        self._pool = pool
        self._slot = slot
        self.active = True
        self.pending: Any = None  # a call the episode stopped awaiting (cancelled) that the actor still runs

    async def reset(self, task: str, seed: int) -> StepResult:
        return await self._pool._call(self, "reset", task, seed)

    async def step(self, action_text: str) -> StepResult:
        return await self._pool._call(self, "step", action_text)


class RayEnvPool:
    """Devices in Ray `EnvActor`s behind the `EnvPool` contract; call inside one asyncio event loop.

    Needs `ray.init(...)` first. `await start()` (or the first `lease()`) places the actors.
    """

    def __init__(self, config: FarmConfig | None = None, **overrides: Any) -> None:
        if config is not None and overrides:
            raise ValueError(f"give a FarmConfig or its fields, not both (got {sorted(overrides)})")
        self.config = config if config is not None else FarmConfig(**overrides)
        if not ray.is_initialized():
            raise FarmError("Ray is not running: call ray.init(...) (or ray.init(address='auto')) first")
        self._hosts: list[_Host] = [_Host(i, 0, None, None) for i in range(self.config.actors)]
        for i, adb_host in enumerate(self.config.adb_hosts, start=self.config.actors):
            self._hosts.append(_Host(i, 0, list(adb_host.serials), adb_host.node_ip))
        self._slots: dict[str, _Slot] = {}
        self._free: asyncio.Queue[_Slot] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._start_lock: asyncio.Lock | None = None
        self._started = False
        self._closed = False
        # Actors get names (droidrl-env-<pool>-env<i>.<generation>) so operators and benchmarks/chaos.py can reach
        # them with ray.get_actor; the pool part keeps two pools of one job from colliding.
        self.name_prefix = f"droidrl-env-{uuid.uuid4().hex[:8]}"
        self.counters = {
            "replaced": 0,  # devices given a new phone after a failure
            "restarted_actors": 0,  # actors started anew after one died
            "failures": 0,  # DeviceFailures raised to episodes
            "unhealthy": 0,  # idle devices a health check found dead
            "retired": 0,  # devices out for good (dead adb devices)
            "restart_failures": 0,  # replacement actors that could not be started in time
            "collisions": 0,  # calls refused because another call held the device (the episode retries)
            "call_timeouts": 0,  # resets/steps past their timeout: the device is replaced (or its wedged actor)
            "replace_failures": 0,  # replacements that failed or timed out (retried, then the slot retired)
            "lease_timeouts": 0,  # leases that found no free device within lease_timeout_s
            "wedged_actors": 0,  # actors restarted because they stopped answering or had too many stuck threads
        }

    # -- EnvPool contract ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[_RayLease]:
        """Wait for a free healthy device; it goes back to the pool when the block ends (unless it failed)."""
        await self.start()
        slot = await self._next_free()
        slot.state = "busy"
        handle = _RayLease(self, slot)
        try:
            yield handle
        finally:
            handle.active = False
            if slot.state == "busy" and handle.pending is not None:
                # The episode was cancelled mid-call: the device is free only once its actor finishes that call.
                self._spawn(self._release_after(slot, handle.pending))
            elif slot.state == "busy":  # not failed meanwhile: back to the pool
                self._release(slot)

    def stats(self) -> dict[str, int]:
        """Counters: devices in service, free, busy, replaced, restarted_actors, failures, and more."""
        states = [slot.state for slot in self._slots.values()]
        return {
            "devices": sum(state != "retired" for state in states),
            "free": states.count("free"),
            "busy": states.count("busy"),
            "actors": sum(host.up for host in self._hosts),
            **self.counters,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Place every actor and wait until its devices are up; raises FarmError if one cannot be placed."""
        if self._closed:
            raise FarmError("this RayEnvPool is closed; make a new one")
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            self._free = asyncio.Queue()
            try:
                await asyncio.gather(*(self._launch(host) for host in self._hosts))
            except BaseException:
                self.close()
                raise
            self._started = True
            if self.config.health_interval_s is not None:
                self._spawn(self._health_loop())

    def close(self) -> None:
        """Stop the health checks and kill every actor (their devices go with them)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for host in self._hosts:
            host.up = False
            if host.actor is not None:
                ray.kill(host.actor, no_restart=True)
        for slot in self._slots.values():
            if slot.state != "retired":
                slot.state = "retired"

    async def __aenter__(self) -> RayEnvPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def actors(self) -> list[Any]:
        """Handles of the live actors, in farm order (for inspection and tests)."""
        return [host.actor for host in self._hosts if host.up]

    def actor_of(self, device_id: str) -> Any:
        """The handle of the actor hosting `device_id` (for inspection and tests)."""
        try:
            return self._slots[device_id].host.actor
        except KeyError:
            raise ValueError(f"the pool has no device {device_id!r}") from None

    async def actor_info(self) -> list[dict[str, Any]]:
        """`EnvActor.info()` of every live actor that answers within health_timeout_s: pid, RSS in MiB, ..."""
        calls = [_await(host.actor.info.remote()) for host in self._hosts if host.up]
        answers = await asyncio.gather(
            *(asyncio.wait_for(call, self.config.health_timeout_s) for call in calls), return_exceptions=True
        )
        return [answer for answer in answers if isinstance(answer, dict)]

    async def check_health(self) -> None:
        """Probe every live actor once: replace idle dead devices, restart actors that do not answer."""
        await asyncio.gather(*(self._check_host(host) for host in self._hosts if host.up))

    # -- internals -----------------------------------------------------------------------------

    async def _launch(self, host: _Host) -> None:
        """Start the host's actor and put its devices in the pool; raises FarmError if it is not up in time."""
        config = self.config
        count = len(host.serials) if host.serials is not None else config.devices_per_actor
        resources = {config.resource: float(count)}
        if host.node_ip is not None:
            resources[f"node:{host.node_ip}"] = 0.001
        options = {**config.actor_options, "num_cpus": config.actor_cpus, "resources": resources}
        options.setdefault("name", f"{self.name_prefix}-{host.name}")
        host.actor = EnvActor.options(**options).remote(
            host.name,
            count=count,
            serials=host.serials or (),
            env_config=config.env,
            screenshots=config.screenshots,
            adb=config.adb,
            threads=config.threads_per_actor,
            call_timeout_s=config.call_timeout_s,
            probe_timeout_s=config.probe_timeout_s,
            emulator=config.emulator if host.serials is None else None,
            replace_timeout_s=config.replace_timeout_s,
            max_stuck_threads=config.max_stuck_threads,
        )
        try:
            device_ids = await asyncio.wait_for(_await(host.actor.devices.remote()), config.start_timeout_s)
        except (TimeoutError, GetTimeoutError):
            ray.kill(host.actor, no_restart=True)  # a pending actor would grab the resource later
            raise FarmError(
                f"env actor {host.name} was not up within {config.start_timeout_s} s. Either it cannot be "
                f"placed: it asks for {resources} and {config.actor_cpus} CPUs, the cluster has "
                f"{_cluster_offer(config.resource)}; give device nodes the resource "
                f"(ray start --resources='{{\"{config.resource}\": N}}') or lower devices_per_actor. Or its "
                f"worker did not start (see raylet.out in the Ray session's logs), or start_timeout_s is too short."
            ) from None
        except RayActorError as error:
            raise FarmError(f"env actor {host.name} died while starting: {error}") from None
        if host.serials is not None and len(device_ids) < len(host.serials):
            self.counters["retired"] += len(host.serials) - len(device_ids)
            log.warning("%s: %d of its adb devices are unreachable", host.name, len(host.serials) - len(device_ids))
        host.up = True
        for device_id in device_ids:
            self._slots[device_id] = slot = _Slot(device_id, host)
            self._release(slot)

    async def _next_free(self) -> _Slot:
        assert self._free is not None
        while True:
            try:
                slot = await asyncio.wait_for(self._free.get(), self.config.lease_timeout_s)
            except TimeoutError:
                self.counters["lease_timeouts"] += 1
                raise LeaseTimeout(
                    f"no device became free within {self.config.lease_timeout_s} s (pool: {self.stats()}); "
                    "lease fewer at once, add actors, or raise lease_timeout_s"
                ) from None
            slot.queued = False
            if slot.state == "free":  # slots of dead actors or devices may still sit in the queue
                return slot

    async def _release_after(self, slot: _Slot, call: Any) -> None:
        try:
            await asyncio.wait_for(_await(call), self._answer_bound(self.config.call_timeout_s))
        except TimeoutError:
            self.counters["wedged_actors"] += 1
            slot.state = "retired"
            self._host_died(slot.host, f"an abandoned call on {slot.id} got no answer")
        except Exception:  # the call's own failure was the cancelled episode's to see
            pass
        if slot.state == "busy":
            self._release(slot)

    def _release(self, slot: _Slot) -> None:
        """Mark the slot free and queue it (once: a slot may still sit in the queue from before)."""
        slot.state = "free"
        if not slot.queued:
            assert self._free is not None
            slot.queued = True
            self._free.put_nowait(slot)

    async def _call(self, handle: _RayLease, method: str, *args: Any) -> StepResult:
        slot = handle._slot
        if not handle.active:
            raise RuntimeError(f"the lease on {slot.id} has ended; lease a device again")
        if slot.state != "busy":  # its actor died under this episode
            self.counters["failures"] += 1
            raise DeviceFailure(f"{slot.id} was taken out of service; retry the episode on another device")
        host = slot.host
        bound = self._answer_bound(self.config.call_timeout_s)
        try:
            return await asyncio.wait_for(_tracked(handle, getattr(host.actor, method).remote(slot.id, *args)), bound)
        except TimeoutError:
            # The actor bounds the call itself, so no answer at all means its process is wedged.
            handle.pending = None  # the actor is killed below: there is no call left to wait for
            self.counters["failures"] += 1
            self.counters["call_timeouts"] += 1
            self.counters["wedged_actors"] += 1
            slot.state = "retired"
            self._host_died(host, f"{method} on {slot.id} got no answer within {bound:g} s")
            raise DeviceFailure(
                f"{slot.id}: its env actor {host.name} did not answer {method} within {bound:g} s; "
                "a new actor is starting; retry the episode on another device"
            ) from None
        except RayActorError as error:
            self.counters["failures"] += 1
            slot.state = "retired"
            self._host_died(host, f"{method} on {slot.id}: {type(error).__name__}")
            raise DeviceFailure(
                f"{slot.id}: its env actor {host.name} died ({type(error).__name__}); "
                "a new actor is starting; retry the episode on another device"
            ) from None
        except DeviceBusy as error:  # another call holds the device: it is fine, and goes back at the block's end
            self.counters["failures"] += 1
            self.counters["collisions"] += 1
            raise DeviceFailure(f"{_cause(error)}; retry the episode on another device") from None
        except DeviceFailure as error:  # raised in the actor; Ray wraps it, keeping the class
            self.counters["failures"] += 1
            self.counters["call_timeouts"] += isinstance(error, DeviceTimeout)
            if slot.state == "busy":  # not already retired by its actor's death
                slot.state = "replacing"
                self._spawn(self._replace(slot))
            raise DeviceFailure(f"{_cause(error)} (the pool is replacing this device)") from None

    async def _replace(self, slot: _Slot) -> None:
        """Ask the slot's actor for a working device in it, then free the slot (or retire it).

        A replacement that fails is retried (replace_attempts in all) before the slot is retired; an
        actor that does not answer at all is wedged and restarted.
        """
        host = slot.host
        bound = self._answer_bound(self.config.replace_timeout_s)
        attempts = self.config.replace_attempts
        for attempt in range(1, attempts + 1):
            try:
                outcome = await asyncio.wait_for(_await(host.actor.replace.remote(slot.id)), bound)
            except RayActorError:
                slot.state = "retired"
                self._host_died(host, f"replace({slot.id}) found the actor dead")
                return
            except TimeoutError:
                self.counters["replace_failures"] += 1
                self.counters["wedged_actors"] += 1
                slot.state = "retired"
                self._host_died(host, f"replace({slot.id}) got no answer within {bound:g} s")
                return
            except Exception as error:  # the new device did not come up (in time), or the slot was busy
                self.counters["replace_failures"] += 1
                log.warning("%s: replacement %d of %d failed: %s", slot.id, attempt, attempts, _cause(error))
                if attempt < attempts and host.up and not self._closed:
                    await asyncio.sleep(min(2.0**attempt, 30.0))
                continue
            break
        else:
            if slot.state == "replacing":
                slot.state = "retired"
                self.counters["retired"] += 1
                log.warning("%s is retired: %d replacements failed", slot.id, attempts)
            return
        if not slot.host.up:  # the actor died meanwhile; its restart brings fresh devices
            slot.state = "retired"
            return
        if outcome == "retired":
            slot.state = "retired"
            self.counters["retired"] += 1
            log.warning("%s is dead and retired: relaunch the emulator and restart the farm to use it", slot.id)
            return
        self.counters["replaced"] += outcome == "replaced"
        self._release(slot)

    def _host_died(self, host: _Host, why: str) -> None:
        """Take the actor's devices out of service and start a new actor in its place (once per death)."""
        if not host.up or self._closed:
            return
        host.up = False
        log.warning("env actor %s died (%s); starting a replacement", host.name, why)
        ray.kill(host.actor, no_restart=True)  # it may be wedged rather than dead
        for slot in self._slots.values():
            if slot.host is host:
                slot.state = "retired"  # busy ones fail on their next call
        self._spawn(self._restart(host))

    async def _restart(self, old: _Host) -> None:
        """Start the next generation of a dead actor; retry with backoff while the pool is open."""
        delay = 1.0
        while not self._closed:
            host = _Host(old.index, old.generation + 1, old.serials, old.node_ip)
            try:
                await self._launch(host)
            except FarmError as error:
                self.counters["restart_failures"] += 1
                log.warning("%s; retrying in %.0f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 60.0)
                old = host  # the next try gets the next generation, so device ids never repeat
                continue
            self._hosts[host.index] = host
            for device_id in [d for d, s in self._slots.items() if s.host.index == host.index and s.host is not host]:
                del self._slots[device_id]  # forget the dead actor's devices (stale queue entries are skipped)
            self.counters["restarted_actors"] += 1
            if self._closed:  # closed while starting
                ray.kill(host.actor, no_restart=True)
            return

    async def _check_host(self, host: _Host) -> None:
        # Only devices no episode holds are probed: a probe must never meet an episode's call.
        free = [device_id for device_id, slot in self._slots.items() if slot.host is host and slot.state == "free"]
        try:
            report = await asyncio.wait_for(_await(host.actor.health.remote(free)), self.config.health_timeout_s)
        except (RayActorError, TimeoutError) as error:
            self.counters["wedged_actors"] += isinstance(error, TimeoutError)
            self._host_died(host, f"health check: {type(error).__name__}")
            return
        actor_status = report.pop(ACTOR_HEALTH, "ok")
        if actor_status.startswith("dead"):
            self.counters["wedged_actors"] += 1
            self._host_died(host, actor_status)
            return
        for device_id, status in report.items():
            slot = self._slots.get(device_id)
            if slot is not None and slot.state == "free" and status.startswith("dead"):
                self.counters["unhealthy"] += 1
                slot.state = "replacing"  # leave it in the queue: lease() skips it
                self._spawn(self._replace(slot))

    async def _health_loop(self) -> None:
        assert self.config.health_interval_s is not None
        while not self._closed:
            await asyncio.sleep(self.config.health_interval_s)
            try:
                await self.check_health()
            except Exception:  # a bug here must not stop future checks
                log.exception("health check failed")

    def _answer_bound(self, call_timeout_s: float) -> float:
        """How long to wait for an actor's answer to a call it bounds by call_timeout_s itself.

        The call may first wait for a health probe on its device; past this bound the actor is wedged.
        """
        return call_timeout_s + self.config.probe_timeout_s + self.config.actor_grace_s

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _tracked(handle: _RayLease, call: Any) -> Any:
    """Await an actor call, leaving it on `handle.pending` if the episode is cancelled meanwhile."""
    handle.pending = call
    try:
        result = await call
    except asyncio.CancelledError:  # the actor goes on with the call; lease() frees the device after it
        raise
    except BaseException:
        handle.pending = None
        raise
    handle.pending = None
    return result


async def _await(ref: Any) -> Any:
    """An ObjectRef as a coroutine (asyncio.wait_for wants one)."""
    return await ref


def _cause(error: BaseException) -> str:
    """The message of the exception an actor raised, without Ray's traceback wrapper."""
    cause = getattr(error, "cause", None)
    return str(cause if cause is not None else error)


def _cluster_offer(resource: str) -> str:
    total = ray.cluster_resources()
    return f"{resource}={total.get(resource, 0):g} in all ({ray.available_resources().get(resource, 0):g} free)"
