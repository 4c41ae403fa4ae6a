"""The async collector: groups of G episodes per task instance, streamed out as they finish, under a staleness bound.

A group is admitted only while `accepted + running <= (max_staleness + trainer_version + 1) * batch_size`
(AReaL's capacity rule, counted in groups): with max_staleness = 0 no group of the next batch starts
before the trainer has moved to the next version, which is synchronous RL exactly. An episode lost to
the infrastructure (a dead device, an engine error, a timeout) is retried on a fresh lease; when its
retries run out the whole group is dropped and counted, never trained on as reward 0.

The retry contract (what an EnvPool or an Engine must raise to get an episode retried):
- `rollout.envpool.DeviceFailure`, from a lease's reset/step or from `pool.lease()` itself: the device
  (or its actor) is gone; the pool takes it out of service, the episode reruns on another lease.
- `rollout.agent.EpisodeFailure` ("engine" or "timeout"): the agent raises it for ANY exception out of
  `engine.generate` (so an engine or router error type needs no registration here), for an empty
  completion and for an engine or device call past `agent.step_timeout_s`. One exception: when its
  cause is the router's `NoEngineAvailable` (every engine failed and none came back) the stream raises
  CollectorFailed at once, naming why, instead of dropping groups until max_consecutive_drops.
- Anything else out of a lease (or out of the agent's own code) is a bug or a bad task spec: retrying
  would fail the same way, so the group is dropped at once (counted as failure kind "error").
A new retryable device-side error should subclass DeviceFailure (or be wrapped into one by the pool)
rather than be listed here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sized
from dataclasses import asdict, dataclass, field

from droidrl.rollout.agent import Agent, EpisodeFailure, EpisodeStopped
from droidrl.rollout.engines.router import NoEngineAvailable
from droidrl.rollout.envpool import DeviceFailure, EnvPool
from droidrl.rollout.trajectory import Episode, Group, TaskInstance

log = logging.getLogger(__name__)


@dataclass
class CollectorConfig:
    """How groups are run.

    group_size: G episodes per instance. batch_size: B groups per trainer step (the unit of the
    staleness rule). max_concurrent_episodes: episodes in flight at once. max_staleness: eta, how many trainer
    versions a group may lag the version that trains on it. max_retries: re-runs of one episode after
    infrastructure failures before its group is dropped.
    """

    group_size: int = 8
    batch_size: int = 8
    max_concurrent_episodes: int = 16
    max_staleness: int = 0
    max_retries: int = 2
    # Stop the stream (CollectorFailed) after this many groups in a row are dropped: something is broken
    # for good (a dead engine, no devices), and retrying forever would only hide it. None: never.
    max_consecutive_drops: int | None = None

    def __post_init__(self) -> None:
        for name in ("group_size", "batch_size", "max_concurrent_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"collector.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_consecutive_drops is not None and self.max_consecutive_drops < 1:
            raise ValueError(f"collector.max_consecutive_drops must be >= 1 or null, got {self.max_consecutive_drops}")
        if self.max_staleness < 0 or self.max_retries < 0:
            raise ValueError(
                f"collector.max_staleness and max_retries must be >= 0, got {self.max_staleness}, {self.max_retries}"
            )


@dataclass
class CollectorStats:
    """Counters since the collector was made."""

    groups_admitted: int = 0
    groups_finished: int = 0  # delivered to the stream
    groups_dropped: int = 0
    groups_discarded: int = 0  # delivered, then thrown away by the trainer (no signal, refill mode)
    episodes: int = 0  # finished episodes, in delivered and dropped groups
    retried: int = 0  # episode re-runs after infrastructure failures
    failures: dict[str, int] = field(default_factory=dict)  # by kind: device, engine, timeout, error
    turns: int = 0
    invalid_actions: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0
    last_error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


_END = object()  # stream queue marker: every instance has been admitted
_DROPPED = object()  # stream queue marker: a group finished without a result


class CollectorFailed(RuntimeError):
    """Too many groups in a row were dropped (collector.max_consecutive_drops): the run cannot go on."""


class GroupDropped(Exception):
    """An episode of the group ran out of retries (or hit a bug): the group will not be trained on."""


class Collector:
    """Runs groups of episodes with one agent on one env pool and streams finished groups."""

    def __init__(self, agent: Agent, pool: EnvPool, config: CollectorConfig | None = None, run_id: str = "run"):
        self.agent = agent
        self.pool = pool
        self.config = config or CollectorConfig()
        self.run_id = run_id
        self.stats = CollectorStats()
        self._version = 0
        self._accepted = 0  # groups finished (delivered) so far: AReaL's "accepted"
        self._running = 0  # groups admitted and not yet finished or dropped
        self._waiting_episodes = 0  # episodes admitted that wait for a concurrency slot
        self._next_index = 0
        self._consecutive_drops = 0
        self._streams = 0  # streams running now; they share the episode slots
        self._slots: asyncio.Semaphore | None = None
        self._wake: asyncio.Event | None = None

    # -- the trainer's side ---------------------------------------------------------------------

    @property
    def trainer_version(self) -> int:
        return self._version

    def set_trainer_version(self, version: int) -> None:
        """The trainer now holds policy `version` (it has consumed `version` batches); admits more groups."""
        if version < self._version:
            raise ValueError(f"the trainer version only goes up: {self._version} -> {version}")
        self._version = version
        self._notify()

    def restore(self, trainer_version: int, accepted: int, next_index: int | None = None) -> None:
        """After a resume: the trainer's version and the groups already accepted (trained on or buffered).

        Without it a fresh collector would count from zero and run `trainer_version` batches ahead.
        `next_index` numbers the next admitted group (default `accepted`: nothing was in flight), so
        group and episode ids, and the per-turn sampling seeds derived from them, continue the run.
        """
        if trainer_version < 0 or accepted < 0:
            raise ValueError(f"restore needs trainer_version and accepted >= 0, got {trainer_version}, {accepted}")
        self._version = trainer_version
        self._accepted = accepted
        self._next_index = accepted if next_index is None else next_index
        self._notify()

    @property
    def accepted(self) -> int:
        """Groups finished and delivered so far (trained on, or buffered by the trainer)."""
        return self._accepted

    @property
    def next_index(self) -> int:
        """The admission index the next group will get."""
        return self._next_index

    def discard(self, count: int) -> None:
        """The trainer threw away `count` delivered groups (DAPO refill).

        They no longer count as accepted, so as many new groups may start under the staleness bound.
        """
        if not 0 <= count <= self._accepted:
            raise ValueError(f"discard(count): count must be in [0, {self._accepted}], got {count}")
        self._accepted -= count
        self.stats.groups_discarded += count
        self._notify()

    def capacity(self) -> int:
        """How many more groups the staleness bound admits now."""
        config = self.config
        bound = (config.max_staleness + self._version + 1) * config.batch_size
        return bound - (self._accepted + self._running)

    # -- the stream -----------------------------------------------------------------------------

    async def stream(self, instances: Iterable[TaskInstance | tuple[str, int]]) -> AsyncIterator[Group]:
        """Run a group per instance and yield each group as it finishes (dropped groups are not yielded).

        Instances are taken from the iterable only when a group can be admitted, so a lazy curriculum
        sampler sees its latest weights. Closing the stream early (`contextlib.aclosing`, or `aclose()`)
        cancels the groups still running.
        """
        if self._streams == 0:  # made here, in the running loop: a later asyncio.run gets fresh ones
            self._slots = asyncio.Semaphore(self.config.max_concurrent_episodes)
            self._wake = asyncio.Event()
        self._streams += 1
        # Every admitted group puts exactly one item: the Group, or _DROPPED; the admitter puts _END last.
        finished: asyncio.Queue[Group | Exception | object] = asyncio.Queue()
        running: set[asyncio.Task] = set()
        admitted = 0

        async def admit() -> None:
            nonlocal admitted
            try:
                # Wait first, then take the instance: nothing is drawn from a sampler before it can run,
                # so a checkpoint of the sampler between steps holds every instance not yet started.
                # A sized collection ends without waiting for capacity after its last instance.
                remaining = len(instances) if isinstance(instances, Sized) else None
                items = _instances(instances)
                while remaining is None or remaining > 0:
                    await self._wait_for_capacity()
                    item = next(items, None)
                    if item is None:
                        break
                    if remaining is not None:
                        remaining -= 1
                    index = self._next_index
                    self._next_index += 1
                    self._running += 1
                    self.stats.groups_admitted += 1
                    admitted += 1
                    task = asyncio.create_task(self._group(item, index, self._version, finished))
                    running.add(task)
                    task.add_done_callback(running.discard)
            except Exception as error:  # the instance iterable failed: the reader raises it
                finished.put_nowait(error)
            finished.put_nowait(_END)

        admitter = asyncio.create_task(admit())
        done = 0
        all_admitted = False
        try:
            while not (all_admitted and done == admitted):
                item = await finished.get()
                if item is _END:
                    all_admitted = True
                elif isinstance(item, Exception):
                    raise item
                else:
                    done += 1
                    if isinstance(item, Group):
                        yield item
                    else:
                        self._check_drops()
        finally:
            admitter.cancel()
            for task in list(running):
                task.cancel()
            await asyncio.gather(admitter, *running, return_exceptions=True)
            self._streams -= 1

    async def collect(self, instances: Iterable[TaskInstance | tuple[str, int]]) -> list[Group]:
        """All finished groups of `instances`, in finishing order."""
        return [group async for group in self.stream(instances)]

    # -- internals ------------------------------------------------------------------------------

    def _check_drops(self) -> None:
        limit = self.config.max_consecutive_drops
        if limit is not None and self._consecutive_drops >= limit:
            raise CollectorFailed(
                f"{self._consecutive_drops} groups in a row were dropped (collector.max_consecutive_drops={limit}); "
                f"failures so far {self.stats.failures}; last error: {self.stats.last_error}"
            )

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _wait_for_capacity(self) -> None:
        assert self._wake is not None
        # Admit only when the staleness bound allows it and the previous group's episodes all hold a
        # slot: a group admitted early would record a start version older than its real start.
        while self.capacity() < 1 or self._waiting_episodes > 0:
            self._wake.clear()
            await self._wake.wait()

    async def _group(self, instance: TaskInstance, index: int, start_version: int, out: asyncio.Queue) -> None:
        group_id = f"{self.run_id}-g{index:06d}"
        stop = asyncio.Event()  # set when one episode fails for good: the others stop at their next turn
        self._waiting_episodes += self.config.group_size
        try:
            results = await asyncio.gather(
                *(self._episode(instance, f"{group_id}-e{j}", stop) for j in range(self.config.group_size)),
                return_exceptions=True,
            )
        finally:
            self._running -= 1
            self._notify()
        failed = [r for r in results if isinstance(r, BaseException)]
        fatal = next((r for r in failed if isinstance(r, CollectorFailed)), None)
        if fatal is not None:  # the stream raises it: the run stops now, not after max_consecutive_drops
            out.put_nowait(fatal)
            return
        if failed:
            cause = next((r for r in failed if not isinstance(r, EpisodeStopped)), failed[0])
            self.stats.groups_dropped += 1
            self._consecutive_drops += 1
            log.warning("group %s (%s:%s) dropped: %s", group_id, instance.task, instance.seed, cause)
            out.put_nowait(_DROPPED)
            return
        # No await between `_running -= 1` and here: the admitter sees both counts change together.
        self._accepted += 1
        self._consecutive_drops = 0
        self.stats.groups_finished += 1
        out.put_nowait(Group(group_id, index, instance, list(results), start_version))

    async def _episode(self, instance: TaskInstance, episode_id: str, stop: asyncio.Event) -> Episode:
        assert self._slots is not None
        waiting = True
        try:
            async with self._slots:
                self._waiting_episodes -= 1
                waiting = False
                self._notify()
                return await self._attempts(instance, episode_id, stop)
        except BaseException:
            stop.set()
            raise
        finally:
            if waiting:  # cancelled before it got a slot
                self._waiting_episodes -= 1
                self._notify()

    async def _attempts(self, instance: TaskInstance, episode_id: str, stop: asyncio.Event) -> Episode:
        attempts = 1 + self.config.max_retries
        failures: list[str] = []
        for attempt in range(attempts):
            if stop.is_set():
                raise EpisodeStopped(f"episode {episode_id} stopped: another episode of its group failed")
            try:
                async with self.pool.lease() as lease:
                    episode = await self.agent.run_episode(
                        lease, instance.task, instance.seed, episode_id, session=f"{episode_id}-a{attempt}", stop=stop
                    )
            except EpisodeFailure as failure:
                if isinstance(failure.__cause__, NoEngineAvailable):  # no engine left: retries cannot help
                    raise CollectorFailed(str(failure.__cause__)) from failure.__cause__
                self._failed(failure.kind, str(failure))
                failures.append(str(failure))
            except DeviceFailure as failure:  # the device died (mid-episode, or while being handed out)
                self._failed("device", str(failure))
                failures.append(str(failure))
            except (asyncio.CancelledError, EpisodeStopped):
                raise
            except Exception as error:  # a bug or a bad task spec: retrying would fail the same way
                message = f"{type(error).__name__}: {error}"
                self._failed("error", message)
                raise GroupDropped(f"episode {episode_id} failed: {message}") from error
            else:
                episode.attempts = attempt + 1
                self._count(episode)
                return episode
            if attempt + 1 < attempts:
                self.stats.retried += 1
        raise GroupDropped(f"episode {episode_id} failed {attempts} times; last: {failures[-1]}")

    def _failed(self, kind: str, message: str) -> None:
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1
        self.stats.last_error = message
        log.info("episode failure (%s): %s", kind, message)

    def _count(self, episode: Episode) -> None:
        stats = self.stats
        stats.episodes += 1
        stats.turns += episode.length
        stats.invalid_actions += episode.invalid_actions
        stats.prompt_tokens += sum(len(turn.prompt_ids) for turn in episode.turns)
        stats.response_tokens += episode.tokens


def _instances(items: Iterable[TaskInstance | tuple[str, int]]) -> Iterator[TaskInstance]:
    for item in items:
        if isinstance(item, TaskInstance):
            yield item
        elif isinstance(item, tuple) and len(item) == 2:
            yield TaskInstance(str(item[0]), int(item[1]))
        else:
            raise TypeError(f"a task instance is TaskInstance(task, seed) or a (task, seed) tuple, got {item!r}")
