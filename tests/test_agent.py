"""Prompt building (format, compressed XML, history policy) and the agent loop's exact token-in/token-out."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from droidrl.envs.env import AndroidEnv
from droidrl.models.corpus import SYSTEM_PROMPT
from droidrl.rollout.agent import Agent, AgentConfig, Episode, EpisodeFailure, EpisodeStopped
from droidrl.rollout.engines.base import Completion, SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import LocalEnvPool, Observation, to_observation
from droidrl.rollout.prompts import (
    SCREEN_INFO,
    ChatFormat,
    PromptBuilder,
    PromptConfig,
    PromptTooLong,
    app_name,
    compress_xml,
)

WIFI_OFF = "SystemWifiTurnOff"
GOAL = "Turn off Wi-Fi."


@pytest.fixture(scope="module")
def screens() -> list[Observation]:
    """Four real screens with screenshots: home, Settings, Network & internet, back to Settings."""
    env = AndroidEnv(pixel_budget=20_000)
    obs, _ = env.reset(seed=0, options={"task": "ContactsAddContact"})  # starts on the home screen
    size = env.device.size
    shots = [to_observation(obs, size, screenshots=True)]
    for action in ('do(action="Launch", app="Settings")', None, 'do(action="Back")'):
        if action is None:  # tap "Network & internet" where the compressed XML says it is
            action = f'do(action="Tap", element={_box(compress_xml(shots[-1].ui_xml, size), "Network & internet")})'
        obs, *_ = env.step(action)
        shots.append(to_observation(obs, size, screenshots=True))
    return shots


def _box(compressed: str, text: str) -> list[int]:
    line = next(line for line in compressed.splitlines() if f'"{text}"' in line)
    return [int(v) for v in re.search(r"\[(\d+),(\d+),(\d+),(\d+)\]", line).groups()]


# ---- compressed UI XML ---------------------------------------------------------------------------


def test_compressed_xml_keeps_meaningful_nodes_with_grid_boxes(screens: list[Observation]) -> None:
    home, settings = screens[0], screens[1]
    text = compress_xml(settings.ui_xml, settings.size)
    lines = text.splitlines()
    assert len(text) < len(settings.ui_xml) / 5  # far smaller than the dump
    assert 'TextView "Network & internet" id=title [39,110,961,135]' in lines[2]
    assert lines[1].startswith("LinearLayout [0,97,999,175] click")  # the clickable row, its texts indented
    assert lines[2].startswith("  ")
    assert 'ImageButton desc="Back" id=back' in text and "click long-click" in text
    assert "FrameLayout" not in text  # plain layout containers are left out
    # Tapping the centre of a box does what the line says: the launcher's Settings icon opens Settings.
    assert app_name(home.app) == "System Home" and app_name(settings.app) == "Settings"
    assert _box(compress_xml(home.ui_xml, home.size), "Settings") == [250, 167, 500, 280]


def test_compressed_xml_is_cut_at_a_line_and_says_so(screens: list[Observation]) -> None:
    text = compress_xml(screens[1].ui_xml, screens[1].size, max_chars=300)
    assert len(text) < 360 and re.search(r"\n\.\.\. \(\d+ more elements not shown\)$", text)
    assert compress_xml("<hierarchy", (10, 10)).startswith("(the UI hierarchy could not be read")


def test_tap_on_a_compressed_box_reaches_the_screen_it_names(screens: list[Observation]) -> None:
    network = compress_xml(screens[2].ui_xml, screens[2].size)
    assert network.splitlines()[1] == 'TextView "Network & internet" [136,40,961,83]'
    assert 'TextView "Internet" id=title' in network and 'Switch "OFF" id=switch_widget' in network


# ---- the chat format and prompt text -------------------------------------------------------------


def test_chat_format_is_read_off_the_tokenizer_template(tokenizer) -> None:
    chat = ChatFormat.from_tokenizer(tokenizer)
    assert chat.system_open == "<|im_start|>system\n"
    assert chat.system_to_user == chat.assistant_to_user == "<|im_end|>\n<|im_start|>user\n"
    assert chat.user_to_assistant == "<|im_end|>\n<|im_start|>assistant\n"
    assert chat.end_ids == (tokenizer.convert_tokens_to_ids("<|im_end|>"),)
    assert chat.image_placeholder == "<|vision_start|><|image_pad|><|vision_end|>"


def test_first_turn_matches_the_chat_template_exactly(tokenizer, screens: list[Observation]) -> None:
    builder = PromptBuilder(tokenizer, PromptConfig(observation="xml"))
    prompt = builder.build(GOAL, screens[:1], [])
    user = f'{GOAL}\n\n{{"current_app": "System Home"}}\n\n' + compress_xml(screens[0].ui_xml, screens[0].size)
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    expected = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)["input_ids"]
    assert prompt.ids == list(expected)
    assert prompt.images == [] and prompt.first_turn == 0


def test_later_turns_are_screen_info_with_the_responses_verbatim(tokenizer, screens: list[Observation]) -> None:
    builder = PromptBuilder(tokenizer, PromptConfig(observation="xml", xml_turns=1))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    launch = [*tokenizer.encode('<answer>do(action="Launch", app="Settings")</answer>'), end]
    # Ids no re-encoding would give: the tags spelled out byte by byte, and a response cut by max_tokens.
    odd = [tokenizer.convert_tokens_to_ids(c) for c in "<answer>"] + [77, 77, 77]
    prompt = builder.build(GOAL, screens[:3], [launch, odd], feedback=[None, "no action found"])
    text = tokenizer.decode(prompt.ids)
    assert text.count(SCREEN_INFO) == 2 and text.count(GOAL) == 1
    assert '{"current_app": "Settings"}' in text
    assert "Your previous action was invalid: no action found" in text
    assert _find(prompt.ids, launch) >= 0 and _find(prompt.ids, odd) >= 0
    # A turn cut by max_tokens is closed with <|im_end|>; a stopped one is not closed twice.
    after_odd = _find(prompt.ids, odd) + len(odd)
    assert prompt.ids[after_odd] == end
    after_launch = _find(prompt.ids, launch) + len(launch)
    assert prompt.ids[after_launch] != end
    # Only the current screen keeps its XML: older screens shrink to their app.
    assert "Connected devices" not in text and "Pro Expense" not in text and "Internet" in text
    assert prompt.ids[-4:] == tokenizer.encode("<|im_start|>assistant\n")


class CountingTokenizer:
    """A tokenizer that counts the text it is asked to encode."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.encoded = tokenizer, []

    def __getattr__(self, name: str):
        return getattr(self.tokenizer, name)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        self.encoded.append(text)
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens)


def test_each_turn_tokenizes_only_text_it_has_not_seen(tokenizer, screens: list[Observation]) -> None:
    counting = CountingTokenizer(tokenizer)
    chat = ChatFormat.from_tokenizer(tokenizer)
    config = PromptConfig(observation="xml", xml_turns=1)
    cached = PromptBuilder(counting, config, chat=chat)
    plain = PromptBuilder(tokenizer, config, chat=chat, cache=False)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    responses = [[*tokenizer.encode('<answer>do(action="Back")</answer>'), end] for _ in screens[1:]]
    for turn in range(len(screens)):
        counting.encoded.clear()
        prompt = cached.build(GOAL, screens[: turn + 1], responses[:turn])
        assert prompt.ids == plain.build(GOAL, screens[: turn + 1], responses[:turn]).ids  # the same ids
        # The whole history is not re-tokenized: turn t encodes at most its new screen's segment and the
        # previous screen's, which just lost its XML (turn 0: the system prompt and the first screen).
        # Screen 3 is screen 1 again (Back): its segment is already known.
        assert len(counting.encoded) == (0 if turn == 3 else 2)
        if turn > 0:
            assert sum(len(text) for text in counting.encoded) < len(tokenizer.decode(prompt.ids))
    # Built again (a retry, the lock-step baseline, a token-budget pass): nothing is tokenized twice.
    counting.encoded.clear()
    cached.build(GOAL, screens, responses[: len(screens) - 1])
    assert counting.encoded == []


def test_images_stay_only_for_the_last_k_screens(model_dir: Path, screens: list[Observation]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    builder = PromptBuilder(tokenizer, PromptConfig(observation="both", image_turns=2, xml_turns=1))
    responses = [tokenizer.encode('<answer>do(action="Back")</answer><|im_end|>')] * 3
    prompt = builder.build(GOAL, screens, responses)
    assert prompt.image_turns == [2, 3]
    assert len(prompt.images) == 2 and all(isinstance(i, np.ndarray) and i.dtype == np.uint8 for i in prompt.images)
    assert np.array_equal(prompt.images[1], screens[3].screenshot())
    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert prompt.ids.count(pad) == 2
    text = tokenizer.decode(prompt.ids)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    # Placeholders sit at the start of the last two user turns, before their screen info.
    user_turns = text.split("<|im_start|>user\n")[1:]
    assert [t.startswith("<|vision_start|>") for t in user_turns] == [False, False, True, True]
    with pytest.raises(ValueError, match=r"image_turns must be >= 1"):
        PromptConfig(observation="screenshot", image_turns=0)


def test_screenshot_only_prompts_show_no_xml(tokenizer, screens: list[Observation]) -> None:
    builder = PromptBuilder(tokenizer, PromptConfig(observation="screenshot", image_turns=1))
    prompt = builder.build(GOAL, screens[:2], [tokenizer.encode('<answer>do(action="Home")</answer>')])
    text = tokenizer.decode(prompt.ids)
    assert prompt.image_turns == [1] and "TextView" not in text and "[39,110,961,135]" not in text


def test_token_budget_leaves_out_whole_old_turns(tokenizer, screens: list[Observation]) -> None:
    responses = [tokenizer.encode('<answer>do(action="Back")</answer><|im_end|>')] * 3
    full = PromptBuilder(tokenizer, PromptConfig(observation="both", image_turns=2)).build(GOAL, screens, responses)
    budget = len(full.ids) - 5
    cut = PromptBuilder(tokenizer, PromptConfig(observation="both", image_turns=2, max_prompt_tokens=budget))
    prompt = cut.build(GOAL, screens, responses)
    assert len(prompt.ids) <= budget and prompt.first_turn == 1
    text = tokenizer.decode(prompt.ids)
    assert text.startswith("<|im_start|>system\n" + SYSTEM_PROMPT)
    assert text.split("<|im_start|>user\n")[1].startswith(GOAL)  # the goal moves to the first turn kept
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == len(prompt.images) == 2
    history = PromptBuilder(tokenizer, PromptConfig(max_history_turns=1)).build(GOAL, screens, responses)
    assert history.first_turn == 2
    with pytest.raises(PromptTooLong, match="max_prompt_tokens=100"):
        PromptBuilder(tokenizer, PromptConfig(max_prompt_tokens=100)).build(GOAL, screens, responses)


def _find(haystack: list[int], needle: list[int]) -> int:
    """The start of `needle` as a contiguous run in `haystack`, or -1."""
    for i in range(len(haystack) - len(needle) + 1):
        if haystack[i : i + len(needle)] == needle:
            return i
    return -1


# ---- the agent loop: exact token-in/token-out ----------------------------------------------------


@pytest.fixture(scope="module")
def engine(model_dir: Path):
    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir)))
    yield engine
    asyncio.run(engine.close())


class RecordingEngine:
    """The real engine, with every request and completion kept for inspection."""

    def __init__(self, engine: TransformersEngine) -> None:
        self.engine, self.name = engine, engine.name
        self.calls: list[tuple[list[int], Completion]] = []

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(self, prompt_ids, sampling, images=None, session=None):
        completion = await self.engine.generate(prompt_ids, sampling, images, session)
        self.calls.append((list(prompt_ids), completion))
        return completion


def run_episode(agent: Agent, steps: int = 3, task: str = WIFI_OFF, **agent_kwargs) -> Episode:
    pool = LocalEnvPool(1, screenshots=False, max_steps=steps, max_invalid=steps)

    async def run() -> Episode:
        async with pool.lease() as lease:
            return await agent.run_episode(lease, task, 0, "ep-0", **agent_kwargs)

    return asyncio.run(run())


@pytest.mark.parametrize("xml_turns", [1, 10])
def test_each_prompt_holds_the_previous_responses_verbatim(engine, tokenizer, xml_turns: int) -> None:
    recorder = RecordingEngine(engine)
    config = AgentConfig(prompt=PromptConfig(xml_turns=xml_turns), sampling=SamplingParams(max_tokens=8))
    episode = run_episode(Agent(recorder, tokenizer, config))
    assert episode.length == 3 and len(recorder.calls) == 3
    assert episode.end_reason in ("max_steps (3) reached", "3 invalid actions in a row")
    for t, turn in enumerate(episode.turns):
        sent, completion = recorder.calls[t]
        assert turn.prompt_ids == sent  # the record holds exactly what the engine was given
        assert turn.response_ids == completion.token_ids and turn.logprobs == completion.logprobs
        assert turn.versions == completion.versions == [0] * len(completion.token_ids)
        assert turn.action_text == tokenizer.decode(completion.token_ids, skip_special_tokens=True)
        assert turn.valid is False and turn.reason and turn.action is None  # random weights: no action
    for t in range(2):
        prompt, response = recorder.calls[t][0], recorder.calls[t][1].token_ids
        following = recorder.calls[t + 1][0]
        assert _find(following, response) >= 0  # turn t's response ids, verbatim, in turn t+1's prompt
        if xml_turns == 10:  # nothing shrinks: each prompt extends the previous prompt + response exactly
            assert following[: len(prompt) + len(response)] == prompt + response
    # The agent stops the engine at the end-of-turn token.
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in Agent(recorder, tokenizer, config).sampling.stop_token_ids


def test_agent_caps_timeouts_and_stop(engine, tokenizer) -> None:
    sampling = SamplingParams(max_tokens=4)
    # The prompt budget defaults to the engine's context minus the longest response.
    assert Agent(engine, tokenizer, AgentConfig(sampling=sampling)).prompts.config.max_prompt_tokens == 16384 - 4
    capped = run_episode(Agent(engine, tokenizer, AgentConfig(sampling=sampling, max_invalid=1)), steps=5)
    assert capped.length == 1 and capped.end_reason == "agent.max_invalid (1) invalid actions"
    assert capped.reward == 0.0 and capped.invalid_actions == 1
    with pytest.raises(EpisodeFailure, match=r"episode_timeout_s=0\.05") as failure:
        run_episode(Agent(engine, tokenizer, AgentConfig(sampling=sampling, episode_timeout_s=0.05)), steps=50)
    assert failure.value.kind == "timeout"
    stop = asyncio.Event()
    stop.set()
    with pytest.raises(EpisodeStopped):
        run_episode(Agent(engine, tokenizer, AgentConfig(sampling=sampling)), stop=stop)
