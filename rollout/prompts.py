"""Prompt building for the phone agent: the chat pieces as exact token ids, compressed UI XML, history policy.

The prompt of turn t is rebuilt from its parts every turn (MobileRL / AutoGLM-Phone format): the
system prompt, the goal with the first screen, a `** Screen Info **` user turn per later screen,
and between them the model's earlier responses as the EXACT ids the engine produced. Text parts
are tokenized one segment at a time (the text between two responses), so no past response is ever
decoded and re-encoded. Old screens shrink (screenshot and XML dropped, the app kept), so the
history is not append-only: every turn is its own step-wise training sample.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from droidrl.envs.actions import APP_PACKAGES, GRID_MAX, GRID_SIZE
from droidrl.models.corpus import SYSTEM_PROMPT
from droidrl.rollout.envpool import Observation

__all__ = [
    "SYSTEM_PROMPT",
    "ChatFormat",
    "Prompt",
    "PromptBuilder",
    "PromptConfig",
    "PromptTooLong",
    "app_name",
    "compress_xml",
]

ObservationMode = Literal["screenshot", "xml", "both"]
SCREEN_INFO = "** Screen Info **"
HOME_APP = "System Home"  # what Open-AutoGLM reports when the foreground app is no known app
# The launchers android_world and the simulated phone use; both mean "the home screen".
_LAUNCHERS = frozenset({"com.google.android.apps.nexuslauncher", "com.android.launcher3"})


class Tokenizer(Protocol):
    """What the prompt builder needs from a tokenizer (a transformers tokenizer has all of it)."""

    chat_template: Any

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


class PromptTooLong(ValueError):
    """Even with every earlier turn dropped, the prompt is over the token budget."""


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass
class PromptConfig:
    """What the model sees each turn.

    observation: "screenshot" (images only), "xml" (compressed UI XML only) or "both" (MobileRL's
      `with_xml`). image_turns: the last K screens keep their screenshot (MobileRL `picture_round`
      2; AutoGLM-Phone keeps 1). xml_turns: the last N screens keep their compressed XML; older
      screens become one line naming the app. max_history_turns: older whole turns (screen and
      response) are left out. max_prompt_tokens: the oldest whole turns are left out until the
      prompt fits; a turn is never cut, so image tokens are never split.
    """

    observation: ObservationMode = "xml"
    image_turns: int = 2
    xml_turns: int = 1
    max_history_turns: int | None = None
    max_prompt_tokens: int | None = None
    max_xml_chars: int = 6000  # a longer compressed XML is cut at a line end, with a note saying so
    system_prompt: str = SYSTEM_PROMPT
    feedback: bool = True  # tell the model when its previous action was invalid, and why

    def __post_init__(self) -> None:
        if self.observation not in ("screenshot", "xml", "both"):
            raise ValueError(f"prompt.observation must be 'screenshot', 'xml' or 'both', got {self.observation!r}")
        if self.observation != "xml" and self.image_turns < 1:
            raise ValueError(
                f"prompt.observation={self.observation!r} shows screenshots, so prompt.image_turns must be >= 1 "
                f"(got {self.image_turns})"
            )
        if self.image_turns < 0 or self.xml_turns < 0:
            raise ValueError(f"prompt.image_turns and xml_turns must be >= 0, got {self.image_turns}, {self.xml_turns}")
        if self.observation != "screenshot" and self.xml_turns < 1:
            raise ValueError(f"prompt.observation={self.observation!r} shows UI XML, so prompt.xml_turns must be >= 1")
        if self.max_history_turns is not None and self.max_history_turns < 0:
            raise ValueError(f"prompt.max_history_turns must be >= 0 or None, got {self.max_history_turns}")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 16:
            raise ValueError(f"prompt.max_prompt_tokens must be >= 16 or None, got {self.max_prompt_tokens}")
        if self.max_xml_chars < 100:
            raise ValueError(f"prompt.max_xml_chars must be >= 100, got {self.max_xml_chars}")

    @property
    def uses_images(self) -> bool:
        return self.observation in ("screenshot", "both")

    @property
    def uses_xml(self) -> bool:
        return self.observation in ("xml", "both")


# ---------------------------------------------------------------------------------------------
# The chat template, cut into pieces

_SENTINELS = ("\x02SYS\x03", "\x02USR1\x03", "\x02AST\x03", "\x02USR2\x03")


@dataclass(frozen=True)
class ChatFormat:
    """The fixed text around messages, read off a tokenizer's chat template.

    A conversation renders as `system_open + SYSTEM + system_to_user + USER + user_to_assistant`,
    then the response, then `assistant_to_user + USER + user_to_assistant`, and so on. `end_text`
    (`end_ids`) is the token that closes an assistant turn (the engine's stop token); a response that
    already ends with it is followed by the rest of `assistant_to_user` only. `image_placeholder` is what the
    template writes for one image in a user message (None: the template has no images).
    """

    system_open: str
    system_to_user: str
    user_to_assistant: str
    assistant_to_user: str
    end_text: str
    end_ids: tuple[int, ...]
    image_placeholder: str | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> ChatFormat:
        """Render a probe conversation with the tokenizer's chat template and cut it at the contents."""
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "the tokenizer has no chat_template; save the model directory with a tokenizer_config.json "
                "that sets one (droidrl.models.presets.init_model does)"
            )
        sys_s, usr1, ast_s, usr2 = _SENTINELS
        messages = [
            {"role": "system", "content": sys_s},
            {"role": "user", "content": usr1},
            {"role": "assistant", "content": ast_s},
            {"role": "user", "content": usr2},
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        positions = [text.find(s) for s in _SENTINELS]
        if any(p < 0 for p in positions) or positions != sorted(positions):
            raise ValueError("the chat template does not render system, user and assistant messages in order")
        cuts = [(p, p + len(s)) for p, s in zip(positions, _SENTINELS, strict=True)]
        system_open = text[: cuts[0][0]]
        system_to_user = text[cuts[0][1] : cuts[1][0]]
        user_to_assistant = text[cuts[1][1] : cuts[2][0]]
        assistant_to_user = text[cuts[2][1] : cuts[3][0]]
        tail = text[cuts[3][1] :]
        if tail != user_to_assistant:
            raise ValueError(
                "the chat template closes the first and the last user message differently "
                f"({user_to_assistant!r} vs {tail!r}); droidrl needs a template that renders each turn alike"
            )
        end_text, end_ids = _leading_special(tokenizer, assistant_to_user)
        return cls(
            system_open=system_open,
            system_to_user=system_to_user,
            user_to_assistant=user_to_assistant,
            assistant_to_user=assistant_to_user,
            end_text=end_text,
            end_ids=end_ids,
            image_placeholder=_image_placeholder(tokenizer),
        )


def _leading_special(tokenizer: Tokenizer, text: str) -> tuple[str, tuple[int, ...]]:
    """The special token `text` starts with (the end-of-turn token) and its ids, or ("", ())."""
    specials = getattr(tokenizer, "all_special_tokens", None) or []
    added = getattr(tokenizer, "get_added_vocab", lambda: {})()
    for token in sorted({*specials, *added}, key=len, reverse=True):
        if token and text.startswith(token):
            return token, tuple(tokenizer.encode(token, add_special_tokens=False))
    return "", ()


def _image_placeholder(tokenizer: Tokenizer) -> str | None:
    """The text a template writes for one image, by rendering a user message with and without one."""
    probe = "\x02IMG\x03"
    try:
        with_image = tokenizer.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": probe}]}],
            tokenize=False,
        )
        plain = tokenizer.apply_chat_template([{"role": "user", "content": probe}], tokenize=False)
    except Exception:  # a text-only template may reject list contents
        return None
    if not isinstance(with_image, str) or probe not in with_image:
        return None
    before_with = with_image[: with_image.index(probe)]
    before_plain = plain[: plain.index(probe)] if probe in plain else ""
    if not before_with.startswith(before_plain) or before_with == before_plain:
        return None
    return before_with[len(before_plain) :]


# ---------------------------------------------------------------------------------------------
# UI XML compression

_TEXT_CLASSES_EDIT = ("EditText", "AutoCompleteTextView")


def compress_xml(xml: str, size: tuple[int, int], max_chars: int = 6000) -> str:
    """A uiautomator dump as compact lines: one per meaningful node, bounds on the 0-999 grid.

    A node is kept if it has text or a content-desc, or can be clicked, long-pressed, scrolled,
    checked or typed into. A line reads `Class "text" desc="..." id=name [x1,y1,x2,y2] flags`,
    indented by the number of kept ancestors; the box can be given to Tap as element=[...]. Zero-size
    nodes and off-screen nodes are left out; package prefixes of resource-ids are dropped.
    """
    try:
        root = ET.fromstring(xml.encode("utf-8") if xml.lstrip().startswith("<?xml") else xml)
    except ET.ParseError as error:
        return f"(the UI hierarchy could not be read: {error})"
    width, height = size
    if width <= 0 or height <= 0:
        width, height = _hierarchy_size(root)
    lines: list[str] = []
    _walk(root, 0, width, height, lines)
    text = "\n".join(lines) if lines else "(no UI elements)"
    if len(text) > max_chars:
        cut = text.rfind("\n", 0, max_chars)
        kept = text[: cut if cut > 0 else max_chars]
        text = f"{kept}\n... ({text.count(chr(10)) - kept.count(chr(10))} more elements not shown)"
    return text


_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")


def _hierarchy_size(root: ET.Element) -> tuple[int, int]:
    """The screen size as the largest right/bottom edge in the dump (when the caller does not know it)."""
    width = height = 1
    for node in root.iter("node"):
        match = _BOUNDS.fullmatch(node.get("bounds", ""))
        if match:
            width = max(width, int(match[3]))
            height = max(height, int(match[4]))
    return width, height


def _walk(element: ET.Element, depth: int, width: int, height: int, lines: list[str]) -> None:
    for node in element.findall("node"):
        line = _node_line(node, width, height)
        if line is not None:
            lines.append("  " * depth + line)
        _walk(node, depth + (line is not None), width, height, lines)


def _node_line(node: ET.Element, width: int, height: int) -> str | None:
    match = _BOUNDS.fullmatch(node.get("bounds", ""))
    if match is None:
        return None
    left, top, right, bottom = (int(v) for v in match.groups())
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, width), min(bottom, height)
    if right <= left or bottom <= top:
        return None  # zero-size or off-screen: nothing to see or tap
    cls = node.get("class", "").rsplit(".", 1)[-1]
    text = node.get("text", "").strip()
    desc = node.get("content-desc", "").strip()
    rid = node.get("resource-id", "").rsplit("/", 1)[-1]
    flags = [name for attr, name in _FLAGS if node.get(attr) == "true"]
    editable = cls.endswith(_TEXT_CLASSES_EDIT)
    if node.get("checkable") == "true":
        flags.append("checked" if node.get("checked") == "true" else "unchecked")
    if node.get("enabled") == "false":
        flags.append("disabled")
    interactive = editable or any(f in flags for f in ("click", "long-click", "scroll", "checked", "unchecked"))
    if not (text or desc or interactive):
        return None
    parts = [cls or "node"]
    if text:
        parts.append(json.dumps(text, ensure_ascii=False))
    if desc and desc != text:
        parts.append(f"desc={json.dumps(desc, ensure_ascii=False)}")
    if rid:
        parts.append(f"id={rid}")
    x1, y1 = _grid(left, width), _grid(top, height)
    x2, y2 = _grid(right - 1, width), _grid(bottom - 1, height)
    parts.append(f"[{x1},{y1},{x2},{y2}]")
    parts.extend(flags)
    return " ".join(parts)


_FLAGS = (
    ("clickable", "click"),
    ("long-clickable", "long-click"),
    ("scrollable", "scroll"),
    ("focused", "focused"),
    ("selected", "selected"),
    ("password", "password"),
)


def _grid(pixel: int, extent: int) -> int:
    """A pixel coordinate on the 0-999 grid (the inverse of actions.to_pixels, as actions.to_grid)."""
    return min(GRID_MAX, -(-pixel * GRID_SIZE // extent))


def app_name(package: str) -> str:
    """The name a model says for the foreground package ("Settings"), as the `current_app` field shows it."""
    if package in _LAUNCHERS or not package:
        return HOME_APP
    for name, known in APP_PACKAGES.items():
        if known == package:
            return name  # APP_PACKAGES lists each app's common name first
    return package


# ---------------------------------------------------------------------------------------------
# Building prompts


@dataclass
class Prompt:
    """One turn's model input: exact ids, the images in placeholder order, and what was left out."""

    ids: list[int]
    images: list[np.ndarray]
    image_turns: list[int]  # for each image, the index of the screen (turn) it shows
    first_turn: int  # the earliest screen still in the prompt (> 0 when old turns were left out)
    text_segments: list[str] = field(default_factory=list)  # the rendered text between responses


class PromptBuilder:
    """Builds each turn's prompt ids from the goal, the screens so far and the exact earlier responses."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        config: PromptConfig | None = None,
        chat: ChatFormat | None = None,
        cache: bool = True,
    ):
        self.tokenizer = tokenizer
        self.config = config or PromptConfig()
        self.chat = chat or ChatFormat.from_tokenizer(tokenizer)
        if self.config.uses_images and self.chat.image_placeholder is None:
            raise ValueError(
                f"prompt.observation={self.config.observation!r} needs images, but this tokenizer's chat template "
                "has no image placeholder; use observation='xml' for a text-only model"
            )
        self._system_ids: list[int] | None = None
        # One builder serves every episode of an agent. A segment's ids depend on its text alone, and a
        # screen's compressed XML on its dump alone, so both are cached: a turn tokenizes only the text it
        # has not seen (its new screen), whatever the history policy; the bounds keep memory flat.
        self._segment_ids = _Bounded(1024 if cache else 0)
        self._xml_text = _Bounded(256 if cache else 0)

    def screen_text(
        self, goal: str | None, observation: Observation, show_xml: bool, show_image: bool, feedback: str | None
    ) -> str:
        """The content of one user turn: goal or `** Screen Info **`, the current_app JSON, and the screen."""
        head = goal if goal is not None else SCREEN_INFO
        if feedback and self.config.feedback:
            head += f"\n\nYour previous action was invalid: {feedback}"
        text = f"{head}\n\n{json.dumps({'current_app': app_name(observation.app)}, ensure_ascii=False)}"
        if show_xml:
            text += "\n\n" + self.compressed_xml(observation)
        if show_image:
            text = (self.chat.image_placeholder or "") + text
        return text

    def compressed_xml(self, observation: Observation) -> str:
        """`compress_xml` of the screen, computed once per distinct dump."""
        key = (observation.ui_xml, tuple(observation.size), self.config.max_xml_chars)
        text = self._xml_text.get(key)
        if text is None:
            text = self._xml_text.put(
                key, compress_xml(observation.ui_xml, observation.size, self.config.max_xml_chars)
            )
        return text

    def encode(self, segment: str) -> tuple[int, ...]:
        """The ids of one text segment (the tokenizer's `encode` without special tokens), cached by text."""
        ids = self._segment_ids.get(segment)
        if ids is None:
            ids = self._segment_ids.put(segment, tuple(self.tokenizer.encode(segment, add_special_tokens=False)))
        return ids

    def build(
        self,
        goal: str,
        observations: Sequence[Observation],
        responses: Sequence[Sequence[int]],
        feedback: Sequence[str | None] | None = None,
    ) -> Prompt:
        """The prompt for turn t = len(responses): screens 0..t and the responses to screens 0..t-1.

        `feedback[i]` is why response i was invalid (None when it was valid); it is shown with screen i+1.
        """
        if len(observations) != len(responses) + 1:
            raise ValueError(
                f"a prompt needs one more screen than responses; got {len(observations)} screens and "
                f"{len(responses)} responses"
            )
        feedback = list(feedback) if feedback is not None else [None] * len(responses)
        turn = len(responses)
        first = 0
        if self.config.max_history_turns is not None:
            first = max(0, turn - self.config.max_history_turns)
        while True:
            prompt = self._build_from(first, goal, observations, responses, feedback)
            budget = self.config.max_prompt_tokens
            if budget is None or len(prompt.ids) <= budget:
                return prompt
            if first == turn:
                raise PromptTooLong(
                    f"turn {turn}'s prompt has {len(prompt.ids)} tokens with no history, over "
                    f"prompt.max_prompt_tokens={budget}; lower prompt.max_xml_chars or raise the budget"
                )
            first += 1  # leave out the oldest whole turn: never cut inside a turn (or an image)

    def _build_from(
        self,
        first: int,
        goal: str,
        observations: Sequence[Observation],
        responses: Sequence[Sequence[int]],
        feedback: Sequence[str | None],
    ) -> Prompt:
        chat, config = self.chat, self.config
        turn = len(responses)
        ids = list(self._system_prefix())
        segments: list[str] = []
        images: list[np.ndarray] = []
        image_turns: list[int] = []
        pending = chat.system_to_user
        for i in range(first, turn + 1):
            age = turn - i  # 0 for the current screen
            show_image = config.uses_images and age < config.image_turns
            show_xml = config.uses_xml and age < config.xml_turns
            if show_image:
                screenshot = observations[i].screenshot()
                if screenshot is None:
                    raise ValueError(
                        f"screen {i} has no screenshot but prompt.observation={config.observation!r} shows images; "
                        "create the env pool with screenshots=True"
                    )
                images.append(screenshot)
                image_turns.append(i)
            note = feedback[i - 1] if i > 0 else None
            text = self.screen_text(goal if i == first else None, observations[i], show_xml, show_image, note)
            segment = pending + text + chat.user_to_assistant
            segments.append(segment)
            ids.extend(self.encode(segment))
            if i < turn:
                response = list(responses[i])
                ids.extend(response)  # verbatim: the exact ids the engine sampled
                pending = chat.assistant_to_user
                if chat.end_ids and _ends_with(response, chat.end_ids):
                    pending = pending[len(chat.end_text) :]  # the response already closed its turn
        return Prompt(ids=ids, images=images, image_turns=image_turns, first_turn=first, text_segments=segments)

    def _system_prefix(self) -> list[int]:
        if self._system_ids is None:
            text = self.chat.system_open + self.config.system_prompt
            self._system_ids = self.tokenizer.encode(text, add_special_tokens=False)
        return self._system_ids


class _Bounded:
    """A dict that forgets its oldest entries past `size` (the builder's caches)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self.items.get(key)

    def put(self, key: Any, value: Any) -> Any:
        if self.size == 0:
            return value
        if len(self.items) >= self.size:
            del self.items[next(iter(self.items))]
        self.items[key] = value
        return value


def _ends_with(ids: Sequence[int], suffix: Sequence[int]) -> bool:
    return len(ids) >= len(suffix) and list(ids[len(ids) - len(suffix) :]) == list(suffix)
