"""A `Router`: one `Engine` over several, keeping each episode on one engine so its prefix cache stays warm.

The first turn of a session goes to the least-loaded engine (fewest requests in flight, then fewest
sessions); later turns of that session go to the same engine. Weight updates fan out to every engine, and
the router's version is the oldest any engine holds, so it advances only when all of them have the new one.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from droidrl.rollout.engines.base import Completion, Engine, SamplingParams


class Router:
    """Sticky, least-loaded routing of `generate` over `engines`; control calls go to all of them."""

    def __init__(self, engines: Sequence[Engine], name: str = "router", max_sessions: int = 100_000) -> None:
        if not engines:
            raise ValueError("Router needs at least one engine")
        names = [engine.name for engine in engines]
        if len(set(names)) != len(names):
            raise ValueError(f"Router engines need distinct names, got {names}")
        self.engines = list(engines)
        self.name = name
        self.max_sessions = max_sessions
        self._in_flight = [0] * len(self.engines)
        self._sessions_per_engine = [0] * len(self.engines)
        self._sessions: OrderedDict[str, int] = OrderedDict()  # session -> engine index, oldest first

    @property
    def version(self) -> int:
        """The oldest version any engine holds: every completion from now on is at least this new."""
        return min(engine.version for engine in self.engines)

    @property
    def load(self) -> int:
        """Requests in flight over all engines."""
        return sum(self._in_flight)

    def loads(self) -> dict[str, int]:
        """Requests in flight per engine name."""
        return {engine.name: n for engine, n in zip(self.engines, self._in_flight, strict=True)}

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
        """Generate on the session's engine (least-loaded for a new or absent session)."""
        index = self._pick(session)
        self._in_flight[index] += 1
        try:
            return await self.engines[index].generate(prompt_ids, sampling, images, session=session)
        finally:
            self._in_flight[index] -= 1

    async def update_weights(self, source: Path, version: int) -> None:
        """Update every engine concurrently; raises (naming them) if any engine failed."""
        results = await asyncio.gather(
            *(engine.update_weights(source, version) for engine in self.engines), return_exceptions=True
        )
        failed = [(e.name, r) for e, r in zip(self.engines, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            detail = "; ".join(f"{name}: {type(error).__name__}: {error}" for name, error in failed)
            raise RuntimeError(
                f"weight update to version {version} failed on {len(failed)}/{len(self.engines)} engines "
                f"({detail}); the router stays at version {self.version} until every engine has it"
            ) from failed[0][1]

    async def close(self) -> None:
        """Close every engine."""
        await asyncio.gather(*(engine.close() for engine in self.engines))

    def _pick(self, session: str | None) -> int:
        if session is not None and session in self._sessions:
            self._sessions.move_to_end(session)
            return self._sessions[session]
        index = min(range(len(self.engines)), key=lambda i: (self._in_flight[i], self._sessions_per_engine[i], i))
        if session is not None:
            self._sessions[session] = index
            self._sessions_per_engine[index] += 1
            if len(self._sessions) > self.max_sessions:  # episodes that never called end_session
                self.end_session(next(iter(self._sessions)))
        return index
