"""The trajectory contract every stage reads: a task instance, an agent turn, an episode, a group of episodes.

`curricula` draws `TaskInstance`s, `rollout` produces `Turn`s, `Episode`s and `Group`s, `trainer`
turns them into step-wise samples (trainer.samples) and `rollout.records` into Parquet rows; the
record columns are derived from these fields (rollout.records.COLUMNS).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class TaskInstance:
    """One task instance: a template name (or any task spec string) and the seed that fixes its parameters."""

    task: str
    seed: int


@dataclass
class Turn:
    """One agent turn: a step-wise training sample and what the device made of it."""

    index: int
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    versions: list[int]
    finish_reason: str
    action_text: str  # the decoded response, as sent to the device
    action: str | None  # the canonical action string (envs.actions.format_action); None when invalid
    valid: bool
    reason: str | None  # why the action was invalid or refused
    image_turns: list[int]  # the screens whose screenshots are in the prompt, in order
    app: str  # the foreground package the turn saw
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Episode:
    """A finished episode: its turns, the checker's reward, and the screens it saw (PNG, by index)."""

    episode_id: str
    task: str  # the instance id, "Name:seed"
    template: str
    seed: int
    goal: str
    difficulty: str
    turns: list[Turn]
    reward: float
    success: bool
    end_reason: str
    screenshots: list[bytes | None] = field(default_factory=list)  # screen i's PNG (None: not kept)
    device: str = ""
    engine: str = ""
    attempts: int = 1  # 1 + the times it was retried after an infrastructure failure
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.turns)

    @property
    def invalid_actions(self) -> int:
        return sum(not turn.valid for turn in self.turns)

    @property
    def tokens(self) -> int:
        """Response tokens sampled in this episode."""
        return sum(len(turn.response_ids) for turn in self.turns)

    @property
    def min_version(self) -> int:
        """The oldest policy version among its sampled tokens (-1 when it sampled none)."""
        versions = [v for turn in self.turns for v in turn.versions]
        return min(versions) if versions else -1


@dataclass
class Group:
    """G finished episodes of one task instance; `start_version` is the trainer version when it was admitted."""

    group_id: str
    index: int  # admission order in the stream
    instance: TaskInstance
    episodes: list[Episode]
    start_version: int

    @property
    def rewards(self) -> list[float]:
        return [episode.reward for episode in self.episodes]

    @property
    def min_version(self) -> int:
        """The oldest engine policy version among its tokens."""
        versions = [e.min_version for e in self.episodes if e.min_version >= 0]
        return min(versions) if versions else -1
