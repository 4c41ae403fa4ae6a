"""A `Router`: one `Engine` over several, keeping each episode on one engine and routing around engines that fail.

The first turn of a session goes to the least-loaded serving engine (fewest requests in flight, then fewest
sessions); later turns of that session go to the same engine. An engine whose `generate` or weight update
fails stops serving at once: its sessions move to the others and the failed call raises `EngineUnavailable`
(the agent turns it into a retryable episode failure). In the background the engine is brought back, with
back-off: `revive` (the cluster's actor restart, when given) checks it and restarts it if its process is
gone, then it gets the last published weights, and only at that version does it serve again. An engine
that cannot be brought back `RouterConfig.max_tries` times in a row is given up; when every engine is
given up, calls raise `NoEngineAvailable`, naming why. Weight updates fan out to the serving engines and
report the ones that failed; the router's version is the oldest a serving engine holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from droidrl.rollout.engines.base import Completion, Engine, SamplingParams

log = logging.getLogger(__name__)

# Checks an engine that failed and restarts it when it is gone; True when it restarted it. The router then
# brings it to the last published weights before it serves again.
Revive = Callable[[Engine], Awaitable[bool]]


class EngineUnavailable(RuntimeError):
    """A generate failed because its engine failed (or none is serving at the moment): retry the episode."""


class NoEngineAvailable(EngineUnavailable):
    """Every engine failed and none could be brought back: nothing can generate, the run cannot go on."""


@dataclass
class RouterConfig:
    """How the router treats engines that fail.

    retry_after_s: the pause before the first try to bring a failed engine back; it doubles with every
    failure in a row of that engine, up to max_retry_after_s. max_tries: tries to bring it back in a row
    (failed tries, and failures right after it came back, with no successful generate between them)
    before the engine is given up. update_timeout_s bounds one engine's
    weight update, revive_timeout_s one check-and-restart (a large vLLM engine loads for minutes).
    hang_after_s: a generate with no answer by then counts as a failure of its engine (a wedged engine is
    checked and restarted instead of taking every retry); keep it below agent.step_timeout_s.
    """

    retry_after_s: float = 2.0
    max_retry_after_s: float = 60.0
    max_tries: int = 5
    update_timeout_s: float = 600.0
    revive_timeout_s: float = 900.0
    hang_after_s: float = 240.0

    def __post_init__(self) -> None:
        for name in ("retry_after_s", "max_retry_after_s", "update_timeout_s", "revive_timeout_s", "hang_after_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"router.{name} must be > 0, got {getattr(self, name)}")
        if self.max_tries < 1:
            raise ValueError(f"router.max_tries must be >= 1, got {self.max_tries}")


@dataclass
class RouterStats:
    """Counters since the router was made (the loop logs them as engine/* metrics)."""

    engine_failures: int = 0  # an engine went from serving to failed
    failed_requests: int = 0  # generate calls that failed on their engine (each one an episode to retry)
    weight_update_failures: int = 0  # engines whose weight update failed or timed out
    sessions_moved: int = 0  # pinned sessions moved off a failed engine
    restarts: int = 0  # engine processes restarted (by `revive`)
    recoveries: int = 0  # failed engines serving again, at the published version
    recovery_failures: int = 0  # tries to bring an engine back that failed
    engines_lost: int = 0  # engines given up for good

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class WeightUpdateReport:
    """What one `update_weights` did: engines updated, engines that failed it (name -> why), engines away."""

    version: int
    updated: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    recovering: list[str] = field(default_factory=list)  # get the version before they serve again


@dataclass
class _Health:
    serving: bool = True
    lost: bool = False
    failures_in_row: int = 0  # failures and failed tries since the last successful generate: the back-off
    epoch: int = 0  # bumped when the engine comes back: a late failure from before then does not count
    reason: str = ""
    task: asyncio.Task | None = None


class Router:
    """Sticky, least-loaded routing of `generate` over the serving `engines`; weight updates go to all of them."""

    def __init__(
        self,
        engines: Sequence[Engine],
        name: str = "router",
        max_sessions: int = 100_000,
        config: RouterConfig | None = None,
        revive: Revive | None = None,
    ) -> None:
        if not engines:
            raise ValueError("Router needs at least one engine")
        names = [engine.name for engine in engines]
        if len(set(names)) != len(names):
            raise ValueError(f"Router engines need distinct names, got {names}")
        self.engines = list(engines)
        self.name = name
        self.max_sessions = max_sessions
        self.config = config or RouterConfig()
        self.stats = RouterStats()
        self.last_update: WeightUpdateReport | None = None
        self._revive = revive
        self._health = [_Health() for _ in self.engines]
        self._published: tuple[Path, int] | None = None  # the last weights given to update_weights
        self._fatal: NoEngineAvailable | None = None
        self._changed: asyncio.Event | None = None  # set when an engine comes back or is given up
        self._in_flight = [0] * len(self.engines)
        self._sessions_per_engine = [0] * len(self.engines)
        self._sessions: OrderedDict[str, int] = OrderedDict()  # session -> engine index, oldest first

    @property
    def version(self) -> int:
        """The oldest version a serving engine holds: every completion from now on is at least this new."""
        serving = [e.version for e, h in zip(self.engines, self._health, strict=True) if h.serving]
        return min(serving) if serving else min(engine.version for engine in self.engines)

    @property
    def load(self) -> int:
        """Requests in flight over all engines."""
        return sum(self._in_flight)

    def loads(self) -> dict[str, int]:
        """Requests in flight per engine name."""
        return {engine.name: n for engine, n in zip(self.engines, self._in_flight, strict=True)}

    def serving(self) -> dict[str, bool]:
        """Per engine name: whether it takes turns now (False while it is brought back, or once given up)."""
        return {engine.name: h.serving for engine, h in zip(self.engines, self._health, strict=True)}

    def engine_for(self, session: str) -> str | None:
        """The name of the engine a session is pinned to, or None before its first turn."""
        index = self._sessions.get(session)
        return None if index is None else self.engines[index].name

    def end_session(self, session: str) -> None:
        """Forget a finished episode, so it no longer counts towards its engine's sessions."""
        index = self._sessions.pop(session, None)
        if index is not None:
            self._sessions_per_engine[index] -= 1

    async def generate(
        self,
        prompt_ids: list[int],
        sampling: SamplingParams,
        images: list[np.ndarray] | None = None,
        session: str | None = None,
    ) -> Completion:
        """Generate on the session's engine (least-loaded for a new or absent session).

        Raises EngineUnavailable when the engine fails (the episode is retried; its next turn, or its
        retry, goes to another engine), NoEngineAvailable when every engine was given up. While no engine
        serves and one is being brought back, it waits (the agent's step timeout bounds the wait).
        """
        if not any(h.serving for h in self._health):
            await self._until_serving()
        index = self._pick(session)
        engine, health = self.engines[index], self._health[index]
        epoch = health.epoch
        self._in_flight[index] += 1
        try:
            async with asyncio.timeout(self.config.hang_after_s):
                completion = await engine.generate(prompt_ids, sampling, images, session=session)
        except Exception as error:
            self.stats.failed_requests += 1
            why = _describe(error, self.config.hang_after_s)
            self._failed(index, epoch, f"generate failed: {why}")
            raise EngineUnavailable(f"engine {engine.name} failed ({why}); its sessions move on") from error
        finally:
            self._in_flight[index] -= 1
        if health.epoch == epoch:
            health.failures_in_row = 0
        return completion

    async def update_weights(self, source: Path, version: int) -> WeightUpdateReport:
        """Update every serving engine concurrently, each within `update_timeout_s`; report the ones that failed.

        A failed engine stops serving and is brought to `version` before it serves again; engines away
        already get it on their way back. Raises NoEngineAvailable only when every engine was given up.
        """
        self._published = (Path(source), version)
        targets = [i for i, h in enumerate(self._health) if h.serving]
        epochs = [self._health[i].epoch for i in targets]
        results = await asyncio.gather(*(self._update_one(i, source, version) for i in targets), return_exceptions=True)
        failed: dict[str, str] = {}
        for i, epoch, result in zip(targets, epochs, results, strict=True):
            if isinstance(result, BaseException):
                self.stats.weight_update_failures += 1
                failed[self.engines[i].name] = _describe(result, self.config.update_timeout_s)
                self._failed(i, epoch, f"weight update to version {version} failed: {failed[self.engines[i].name]}")
        report = WeightUpdateReport(
            version,
            updated=[self.engines[i].name for i in targets if self.engines[i].name not in failed],
            failed=failed,
            recovering=[
                e.name for e, h in zip(self.engines, self._health, strict=True) if not h.serving and not h.lost
            ],
        )
        self.last_update = report
        if self._fatal is not None:
            raise self._fatal
        return report

    async def close(self) -> None:
        """Stop bringing engines back and close every engine (a failure to close one is logged, not raised)."""
        tasks = [h.task for h in self._health if h.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results = await asyncio.gather(*(engine.close() for engine in self.engines), return_exceptions=True)
        for engine, result in zip(self.engines, results, strict=True):
            if isinstance(result, Exception):
                log.debug("closing engine %s: %s", engine.name, _describe(result, 0))

    # -- routing ------------------------------------------------------------------------------------

    def _pick(self, session: str | None) -> int:
        moved = False
        if session is not None and session in self._sessions:
            index = self._sessions[session]
            if self._health[index].serving:
                self._sessions.move_to_end(session)
                return index
            self.end_session(session)  # its engine failed: the session moves
            moved = True
        serving = [i for i, h in enumerate(self._health) if h.serving]
        index = min(serving, key=lambda i: (self._in_flight[i], self._sessions_per_engine[i], i))
        if session is not None:
            self._sessions[session] = index
            self._sessions_per_engine[index] += 1
            self.stats.sessions_moved += moved
            if len(self._sessions) > self.max_sessions:  # episodes that never called end_session
                self.end_session(next(iter(self._sessions)))
        return index

    async def _until_serving(self) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        while not any(h.serving for h in self._health):
            if self._fatal is not None:
                raise self._fatal
            self._changed.clear()
            await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- failures and recovery ----------------------------------------------------------------------

    async def _update_one(self, index: int, source: Path, version: int) -> None:
        await asyncio.wait_for(self.engines[index].update_weights(source, version), self.config.update_timeout_s)

    def _failed(self, index: int, epoch: int, reason: str) -> None:
        """Engine `index` failed a call it got at `epoch`: stop routing to it and bring it back in the background."""
        health, name = self._health[index], self.engines[index].name
        if health.epoch != epoch or not health.serving:
            return  # already being brought back, or a late failure from before it came back
        health.serving = False
        health.reason = reason
        self.stats.engine_failures += 1
        others = sum(h.serving for h in self._health)
        # The one console line for this problem; the recovery shows in the engine/* counters (debug log: its steps).
        log.warning("engine %s failed (%s); %d other engine(s) serve while it is brought back", name, reason, others)
        health.task = asyncio.create_task(self._recover(index), name=f"recover-{name}")

    async def _recover(self, index: int) -> None:
        health, engine, config = self._health[index], self.engines[index], self.config
        while True:
            health.failures_in_row += 1
            if health.failures_in_row > config.max_tries:  # failing again and again: restarts do not help
                self._give_up(index)
                return
            await asyncio.sleep(min(config.retry_after_s * 2 ** (health.failures_in_row - 1), config.max_retry_after_s))
            try:
                await self._bring_back(engine)
            except Exception as error:
                self.stats.recovery_failures += 1
                health.reason = f"bringing it back failed: {_describe(error, config.revive_timeout_s)}"
                log.warning("engine %s: %s; trying again", engine.name, health.reason)
                continue
            health.serving = True
            health.epoch += 1
            health.task = None
            self.stats.recoveries += 1
            log.debug("engine %s serves again at version %d", engine.name, engine.version)
            self._notify()
            return

    async def _bring_back(self, engine: Engine) -> None:
        restarted = self._revive is not None and await asyncio.wait_for(
            self._revive(engine), self.config.revive_timeout_s
        )
        if restarted:
            self.stats.restarts += 1
            log.debug("engine %s restarted (restart %d of this run)", engine.name, self.stats.restarts)
        # The published version may move on while this one loads: catch up until it holds the newest.
        while self._published is not None and engine.version < self._published[1]:
            source, version = self._published
            await asyncio.wait_for(engine.update_weights(source, version), self.config.update_timeout_s)

    def _give_up(self, index: int) -> None:
        health, name = self._health[index], self.engines[index].name
        health.lost, health.task = True, None
        self.stats.engines_lost += 1
        left = sum(not h.lost for h in self._health)
        log.error(
            "engine %s given up after %d tries (%s); %d engine(s) left",
            name,
            self.config.max_tries,
            health.reason,
            left,
        )
        if left == 0:
            reasons = "; ".join(f"{e.name}: {h.reason}" for e, h in zip(self.engines, self._health, strict=True))
            self._fatal = NoEngineAvailable(f"no engine can be brought back ({reasons})")
        self._notify()


def _describe(error: BaseException, timeout_s: float) -> str:
    """One short line (Ray's actor errors run over many lines): what the console and the counters' reason show."""
    if isinstance(error, TimeoutError) and timeout_s:
        return f"no answer within {timeout_s:g}s"
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text[:200]}{'...' if len(text) > 200 or len(lines) > 1 else ''}"
