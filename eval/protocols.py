"""Named evaluation protocols: the episode budget, sampling, observation and scoring rules a published number used.

- `androidworld`: android_world's runner (`suite_utils._run_task`): each task's own step budget
  (`int(10 * complexity)` for android_world's tasks, the per-difficulty budget for droidrl's templates),
  and a score only when the agent declared the episode finished; anything else scores 0.
- `mobilerl`: MobileRL's evaluation: up to 50 rounds, temperature 0, the last 2 screenshots plus the
  compressed UI XML of the current screen, its `do(...)`/`finish(...)` action format on the 0-999 grid,
  the checker's verdict at the end of the episode, the mean of 3 runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# MobileRL's action set (bounding-box setting), in this project's words. A released checkpoint does best with
# the exact prompt it was trained on: `droidrl eval --system-prompt FILE` takes that text.
MOBILERL_SYSTEM_PROMPT = """You are an agent that operates an Android phone to complete the user's task.
Each turn you get the task, the current app, the last screenshots and the current screen's UI elements, each
with its box [x1,y1,x2,y2] on a 0-999 grid ([0,0] top-left, [999,999] bottom-right).
Think inside <think></think>, then give exactly one action inside <answer></answer>, one of:
- do(action="Tap", element=[x1,y1,x2,y2])  tap the centre of the box
- do(action="Long Press", element=[x1,y1,x2,y2])
- do(action="Type", text="...")  replace the focused field's text
- do(action="Swipe", direction="up|down|left|right", dist="short|medium|long", element=[x1,y1,x2,y2])
- do(action="Launch", app="Settings")
- do(action="Back")
- do(action="Home")
- do(action="Wait", duration="2 seconds")
- finish(message="...")  the task is done; for a question, the message is the answer."""


@dataclass(frozen=True)
class Protocol:
    """How episodes of one evaluation run and score.

    max_steps: the step budget of every episode (None: the task's own). temperature: sampling temperature.
    observation: what the prompt shows (None: the model's own `model.observation`). image_turns / xml_turns:
    the last K screens keep their screenshot / XML. requires_finish: an episode the agent did not end with
    finish() scores 0 whatever the checker says. system_prompt: None for the project's prompt. runs: the
    default number of repeated runs.
    """

    name: str
    summary: str
    max_steps: int | None
    temperature: float
    observation: str | None
    image_turns: int
    xml_turns: int
    requires_finish: bool
    system_prompt: str | None = None
    runs: int = 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROTOCOLS: dict[str, Protocol] = {
    "androidworld": Protocol(
        name="androidworld",
        summary="android_world's runner: each task's step budget, a score only when the agent finished",
        max_steps=None,
        temperature=0.0,
        observation=None,
        image_turns=1,
        xml_turns=1,
        requires_finish=True,
    ),
    "mobilerl": Protocol(
        name="mobilerl",
        summary="MobileRL: 50 rounds, temperature 0, last 2 screenshots + XML, bbox actions, mean of 3 runs",
        max_steps=50,
        temperature=0.0,
        observation="both",
        image_turns=2,
        xml_turns=1,
        requires_finish=False,
        system_prompt=MOBILERL_SYSTEM_PROMPT,
    ),
}


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`; the error lists the known ones."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; protocols: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocol_score(protocol: Protocol, reward: float, end_reason: str) -> float:
    """The episode's score under `protocol`: the checker's reward, or 0 where finish() was needed and did not come.

    android_world's runner scores `is_successful` only when the agent said it was done.
    """
    if protocol.requires_finish and end_reason != "finish":
        return 0.0
    if reward != reward:  # NaN from a checker counts as 0, as MobileRL's task does
        return 0.0
    return float(reward)
