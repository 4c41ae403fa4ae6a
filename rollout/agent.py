"""The multi-turn agent loop: one episode on one leased device, exact token ids in and out.

Each turn the agent builds the prompt ids (rollout.prompts), asks the engine for a completion,
sends the decoded text to the device, and records the turn as one step-wise sample: prompt ids,
response ids, sampled logprobs, per-token policy versions, the action text, the parsed action and
whether it was valid. Earlier responses enter later prompts as the exact ids the engine produced.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

from droidrl.envs.actions import Invalid, format_action, parse
from droidrl.rollout.engines.base import Completion, Engine, SamplingParams
from droidrl.rollout.envpool import DeviceLease, Observation, StepResult
from droidrl.rollout.prompts import Prompt, PromptBuilder, PromptConfig, PromptTooLong, Tokenizer
from droidrl.rollout.trajectory import Episode, Turn


class EpisodeFailure(Exception):
    """The episode was lost to the infrastructure (engine, timeout), not to the policy: retry it.

    `kind` is "engine" or "timeout". A dead device raises the pool's own DeviceFailure, unchanged, so
    it passes through the lease block and the pool sees it too.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class EpisodeStopped(Exception):
    """The caller asked the episode to stop (its group was dropped); raised at a turn boundary."""


@dataclass
class AgentConfig:
    """Limits of one episode.

    The env ends episodes on finish(), on its max_steps and on max_invalid consecutive invalid
    actions (EnvConfig); the agent adds wall-clock timeouts and optional caps.

    step_timeout_s bounds one engine call and one device call each; episode_timeout_s the whole
    episode. A timeout is an infrastructure failure (EpisodeFailure): the episode is retried, never
    scored. max_steps / max_invalid (total invalid actions): when reached before the env ends the
    episode, it ends with reward 0 and no checker verdict (None: leave it to the env).
    """

    prompt: PromptConfig = field(default_factory=PromptConfig)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    step_timeout_s: float = 300.0
    episode_timeout_s: float = 3600.0
    max_steps: int | None = None
    max_invalid: int | None = None

    def __post_init__(self) -> None:
        if self.step_timeout_s <= 0 or self.episode_timeout_s <= 0:
            raise ValueError(
                f"agent.step_timeout_s and episode_timeout_s must be > 0, got {self.step_timeout_s}, "
                f"{self.episode_timeout_s}"
            )
        for name in ("max_steps", "max_invalid"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"agent.{name} must be >= 1 or None, got {value}")


class Agent:
    """Runs episodes with one engine and one tokenizer; stateless between episodes (safe to share)."""

    def __init__(self, engine: Engine, tokenizer: Tokenizer, config: AgentConfig | None = None) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.config = config or AgentConfig()
        prompt = self.config.prompt
        context = _context_length(engine)
        if prompt.max_prompt_tokens is None and context is not None:
            # Leave room for the longest response, so the engine never refuses a prompt as too long.
            budget = max(16, context - self.config.sampling.max_tokens)
            prompt = replace(prompt, max_prompt_tokens=budget)
        self.prompts = PromptBuilder(tokenizer, prompt)
        # The engine must stop at the end-of-turn token, or a response runs into the next turn.
        stops = tuple(dict.fromkeys((*self.config.sampling.stop_token_ids, *self.prompts.chat.end_ids)))
        self.sampling = replace(self.config.sampling, stop_token_ids=stops)

    async def run_episode(
        self,
        lease: DeviceLease,
        task: str,
        seed: int,
        episode_id: str,
        session: str | None = None,
        stop: asyncio.Event | None = None,
    ) -> Episode:
        """Play `task` (instance `seed`) on `lease` to the end.

        Raises DeviceFailure when the device dies, EpisodeFailure when the engine fails or a call
        times out, and EpisodeStopped at the next turn boundary once `stop` is set (a device call is
        never abandoned halfway for it). `session` names the engine session (default: the episode
        id), so a router keeps its turns on one engine. A prompt over the token budget even without
        history ends the episode ("context overflow") with reward 0 and no checker verdict.
        """
        try:
            async with asyncio.timeout(self.config.episode_timeout_s):
                return await self._run(lease, task, seed, episode_id, session or episode_id, stop)
        except TimeoutError:  # only this deadline: step timeouts are raised as EpisodeFailure already
            raise EpisodeFailure(
                "timeout",
                f"episode {episode_id} ({task}) ran past agent.episode_timeout_s={self.config.episode_timeout_s}s",
            ) from None

    async def _run(
        self, lease: DeviceLease, task: str, seed: int, episode_id: str, session: str, stop: asyncio.Event | None
    ) -> Episode:
        started = time.perf_counter()
        first = await self._device(lease.reset(task, seed), f"reset {task}", lease)
        info = first.info
        task_id = str(info.get("task", task))
        episode = Episode(
            episode_id=episode_id,
            task=task_id,
            template=task_id.partition(":")[0],
            seed=seed,
            goal=str(info.get("goal", "")),
            difficulty=str(info.get("difficulty", "")),
            turns=[],
            reward=0.0,
            success=False,
            end_reason="",
            device=lease.id,
        )
        observations: list[Observation] = [first.observation]
        responses: list[list[int]] = []
        feedback: list[str | None] = []
        while True:
            if stop is not None and stop.is_set():
                raise EpisodeStopped(f"episode {episode_id} stopped by its collector")
            turn_index = len(responses)
            # The agent's own time per turn (prompt_s, agent_s: synchronous work on the event loop) is
            # recorded beside the engine's and the device's, so a benchmark can tell the three apart.
            prompt_started = time.perf_counter()
            try:
                prompt = self.prompts.build(episode.goal, observations, responses, feedback)
            except PromptTooLong as error:
                episode.end_reason = f"context overflow: {error}"
                break
            gen_started = time.perf_counter()
            completion = await self._generate(prompt.ids, prompt.images, session, turn_index)
            decode_started = time.perf_counter()
            text = self.tokenizer.decode(completion.token_ids, skip_special_tokens=True)
            env_started = time.perf_counter()
            result = await self._device(lease.step(text), f"step {turn_index} of {task_id}", lease)
            env_done = time.perf_counter()
            timings = {
                "prompt_s": gen_started - prompt_started,
                "generate_s": decode_started - gen_started,
                "env_s": env_done - env_started,
            }
            episode.engine = completion.engine or episode.engine
            episode.turns.append(self._turn(turn_index, prompt, completion, text, result, observations, timings))
            observations.append(result.observation)
            responses.append(completion.token_ids)  # Turn copied it; never mutated, so no second copy
            feedback.append(episode.turns[-1].reason)
            timings["agent_s"] = (env_started - decode_started) + (time.perf_counter() - env_done)
            if result.terminated or result.truncated:
                episode.reward = float(result.reward)
                episode.success = bool(result.info.get("success", result.reward >= 1.0))
                episode.end_reason = str(
                    result.info.get("end_reason", "terminated" if result.terminated else "truncated")
                )
                break
            cap = self._cap_reached(episode)
            if cap:
                episode.end_reason = cap
                break
        episode.screenshots = [obs.screenshot_png for obs in observations]
        episode.timings["episode_s"] = time.perf_counter() - started
        return episode

    def _turn(
        self,
        index: int,
        prompt: Prompt,
        completion: Completion,
        text: str,
        result: StepResult,
        observations: list[Observation],
        timings: dict[str, float],
    ) -> Turn:
        parsed = parse(text)
        action = result.info.get("action")
        if action is None and not isinstance(parsed, Invalid):
            action = format_action(parsed)
        if "valid" in result.info:  # the env knows more: an action can parse and still be refused
            valid, reason = bool(result.info["valid"]), result.info.get("reason")
        else:
            valid = not isinstance(parsed, Invalid)
            reason = parsed.reason if isinstance(parsed, Invalid) else None
        return Turn(
            index=index,
            prompt_ids=list(prompt.ids),
            response_ids=list(completion.token_ids),
            logprobs=list(completion.logprobs),
            versions=list(completion.versions),
            finish_reason=completion.finish_reason,
            action_text=text,
            action=action if valid else None,
            valid=valid,
            reason=None if valid else (reason or "invalid action"),
            image_turns=list(prompt.image_turns),
            app=observations[-1].app,
            timings=timings,
        )

    def _cap_reached(self, episode: Episode) -> str | None:
        config = self.config
        if config.max_steps is not None and episode.length >= config.max_steps:
            return f"agent.max_steps ({config.max_steps}) reached"
        if config.max_invalid is not None and episode.invalid_actions >= config.max_invalid:
            return f"agent.max_invalid ({config.max_invalid}) invalid actions"
        return None

    def turn_sampling(self, session: str, turn_index: int) -> SamplingParams:
        """The sampling of one turn; with a seed in the config, a seed of its own.

        The turn's seed is derived from the config's, the session (episode and attempt) and the turn,
        so a run replays exactly whatever the scheduling.
        """
        if self.sampling.seed is None:
            return self.sampling
        key = f"{self.sampling.seed}:{session}:{turn_index}".encode()
        return replace(self.sampling, seed=int.from_bytes(hashlib.sha256(key).digest()[:4], "little"))

    async def _generate(self, prompt_ids: list[int], images: list, session: str, turn_index: int) -> Completion:
        sampling = self.turn_sampling(session, turn_index)
        try:
            async with asyncio.timeout(self.config.step_timeout_s):
                completion = await self.engine.generate(prompt_ids, sampling, images or None, session=session)
        except TimeoutError:
            raise EpisodeFailure(
                "timeout", f"engine {self.engine.name} took over agent.step_timeout_s={self.config.step_timeout_s}s"
            ) from None
        except (asyncio.CancelledError, EpisodeFailure):
            raise
        except Exception as error:  # any engine error loses this episode only; the collector retries it
            raise EpisodeFailure(
                "engine", f"engine {self.engine.name} failed: {type(error).__name__}: {error}"
            ) from error
        if not completion.token_ids:
            raise EpisodeFailure("engine", f"engine {self.engine.name} returned an empty completion")
        return completion

    async def _device(self, call: Any, what: str, lease: DeviceLease) -> StepResult:
        try:
            async with asyncio.timeout(self.config.step_timeout_s):
                return await call
        except TimeoutError:
            raise EpisodeFailure(
                "timeout", f"device {lease.id}: {what} took over agent.step_timeout_s={self.config.step_timeout_s}s"
            ) from None


def _context_length(engine: Engine) -> int | None:
    """The engine's context window in tokens (max_model_len), when it says."""
    for owner in (engine, getattr(engine, "config", None)):
        value = getattr(owner, "max_model_len", None)
        if isinstance(value, int) and value > 0:
            return value
    return None
