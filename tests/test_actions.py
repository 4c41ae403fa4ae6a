"""The action language: parsing (AutoGLM/MobileRL and android_world JSON), formatting, grid mapping."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droidrl.envs.actions import (
    APP_PACKAGES,
    CENTER,
    MAX_ACTION_CHARS,
    Action,
    ActionError,
    Back,
    CallApi,
    DoubleTap,
    Enter,
    Finish,
    Home,
    Invalid,
    Launch,
    LongPress,
    Note,
    Swipe,
    Tap,
    Type,
    Wait,
    format_action,
    parse,
    parse_json,
    resolve_app,
    swipe_in_direction,
    to_grid,
    to_pixels,
)

# ---------------------------------------------------------------------------------------------
# parse: text -> action

VALID = [
    # the AutoGLM-Phone action set
    ('do(action="Tap", element=[500, 320])', Tap((500, 320))),
    ('do(action="Tap", element=[500,320])', Tap((500, 320))),
    ('do(action="Tap", element=[0, 999])', Tap((0, 999))),
    ('do(action="Tap", element=[100, 200, 300, 401])', Tap((200, 300))),  # box centre, floored
    ('do(action="Tap", element=[10.4, 20.6])', Tap((10, 21))),
    ('do(action="Tap", element=(5, 6))', Tap((5, 6))),
    ('do(action="Tap", element=[050, 0100])', Tap((50, 100))),  # leading zeros, as MobileRL strips
    ('do(action="Tap", element=[0, 0.5])', Tap((0, 0))),
    ('do(action="Tap", element=[500, 320], message="重要操作")', Tap((500, 320))),
    ('do(action = "Tap" , element = [ 1 , 2 ] )', Tap((1, 2))),
    ("do(action='Tap', element=[1, 2])", Tap((1, 2))),
    ('do(\n  action="Tap",\n  element=[1, 2],\n)', Tap((1, 2))),
    ('do(action="Long Press", element=[1, 2])', LongPress((1, 2))),
    ('do(action="long_press", element=[1, 2])', LongPress((1, 2))),
    ('do(action="LongPress", element=[1, 2, 3, 4])', LongPress((2, 3))),
    ('do(action="Double Tap", element=[7, 8])', DoubleTap((7, 8))),
    ('do(action="Swipe", start=[500, 800], end=[500, 200])', Swipe((500, 800), (500, 200))),
    ('do(action="Swipe", start=[1, 2], end=[1, 2])', Swipe((1, 2), (1, 2))),
    # MobileRL's direction form: the finger moves that way from the element (or the centre)
    ('do(action="Swipe", direction="up")', Swipe(CENTER, (500, 300))),
    ('do(action="Swipe", direction="down", dist="short")', Swipe(CENTER, (500, 600))),
    ('do(action="Swipe", direction="left", dist="long")', Swipe(CENTER, (200, 500))),
    ('do(action="Swipe", direction="Right", dist="medium")', Swipe(CENTER, (700, 500))),
    (
        'do(action="Swipe", direction="up", dist="long", element=[100, 200, 150, 250])',
        Swipe((125, 225), (125, 0)),  # clamped at the top edge
    ),
    ('do(action="Swipe", direction="down", dist=50, element=[10, 10])', Swipe((10, 10), (10, 60))),
    ('do(action="Type", text="Hello World")', Type("Hello World")),
    ('do(action="Type_Name", text="Alice")', Type("Alice")),
    ('do(action="Type", text="你好，世界")', Type("你好，世界")),
    ('do(action="Type", text="emoji 🎉")', Type("emoji 🎉")),
    ('do(action="Type", text="tab\\there")', Type("tab\there")),
    ('do(action="Type", text="a\\nb")', Type("a\nb")),  # escaped newline
    ('do(action="Type", text="a\nb")', Type("a\nb")),  # raw newline inside the string
    ('do(action="Type", text="a\r\nb")', Type("a\r\nb")),
    ('do(action="Type", text="say \\"hi\\"")', Type('say "hi"')),
    ('do(action="Type", text=\'say "hi"\')', Type('say "hi"')),
    ('do(action="Type", text="C:\\\\dir")', Type("C:\\dir")),
    ('do(action="Type", text="\\u00e9")', Type("é")),
    ('do(action="Type", text="a" "b")', Type("ab")),
    ('do(action="Type", text="$(rm -rf /); `id`")', Type("$(rm -rf /); `id`")),
    ('do(action="Type", text=" ")', Type(" ")),
    ('do(action="Type", text="x", clear=False)', Type("x", clear=False)),
    ('do(action="Type", element=[3, 4], enter=True, text="x")', Type("x", focus=(3, 4), enter=True)),
    # the commonest model error: unescaped quotes in free text, repaired
    ('do(action="Type", text="He said "hi" to me")', Type('He said "hi" to me')),
    ('do(action="Type", text="6" screen")', Type('6" screen')),
    ("do(action='Type', text='it's fine')", Type("it's fine")),
    ('do(action="Type", text="quote " and newline\n")', Type('quote " and newline\n')),
    ('do(action="Type", text="a "b" \\c")', Type('a "b" \\c')),
    ('do(action="Type", text="ends in backslash "x" \\")', Type('ends in backslash "x" \\')),
    ('do(action="Type", text="brackets ) ( "q"")', Type('brackets ) ( "q"')),
    ('finish(message="The file "notes.md" is saved")', Finish('The file "notes.md" is saved')),
    ('do(action="Note", message="price "5$"")', Note('price "5$"')),
    ('do(action="Launch", app="Settings")', Launch("Settings")),
    ('do(action="Launch", app="设置")', Launch("设置")),
    ('do(action="Back")', Back()),
    ('do(action="Press Back")', Back()),
    ('do(action="back")', Back()),
    ('do(action="Home")', Home()),
    ('do(action="Enter")', Enter()),
    ('do(action="Press Enter")', Enter()),
    ('do(action="Wait", duration="2 seconds")', Wait(2)),
    ('do(action="Wait", duration="1 second")', Wait(1)),
    ('do(action="Wait", duration="1.5 seconds")', Wait(1.5)),
    ('do(action="Wait", duration="3s")', Wait(3)),
    ('do(action="Wait", duration="3")', Wait(3)),
    ('do(action="Wait", duration=3)', Wait(3)),
    ('do(action="Wait", duration=0)', Wait(0)),
    ('do(action="Wait")', Wait(1)),
    ('do(action="Note", message="True")', Note("True")),
    ('do(action="Note")', Note("")),
    ('do(action="Call_API", instruction="summarise the notes")', CallApi("summarise the notes")),
    ('finish(message="Task completed.")', Finish("Task completed.")),
    ("finish(message='done')", Finish("done")),
    ('finish(message="")', Finish("")),
    ("finish()", Finish("")),
    ("finish(message=None)", Finish("")),
    ("finish(message=42)", Finish("42")),
    ('finish(message="多行\n答案")', Finish("多行\n答案")),
    ('do(action="finish", message="ok")', Finish("ok")),
    # wrappers: reasoning, answer blocks, code fences, prefixes
    ('<think>tap it</think><answer>do(action="Tap", element=[1, 2])</answer>', Tap((1, 2))),
    ('<think>\nx\n</think>\n<answer>\ndo(action="Back")\n</answer>\n', Back()),
    ('reasoning only closed</think><answer>do(action="Home")</answer>', Home()),
    ('<answer>do(action="Back")', Back()),  # truncated after the action
    ('<answer>do(action="Back")</answer>trailing chat', Back()),
    ('<answer>\n```python\ndo(action="Back")\n```\n</answer>', Back()),
    ('Action: do(action="Tap", element=[1, 2])', Tap((1, 2))),
    ('I will go back. do(action="Back")', Back()),
    ('点击返回do(action="Back")', Back()),
    ('do(action="Tap", element=[1, 2])  # the OK button', Tap((1, 2))),
    ('<think>plan: do(action="Home")?</think><answer>do(action="Back")</answer>', Back()),
    ('<think>x</think>do(action="Type", text="<answer>")', Type("<answer>")),
    ('Action: do(action="Type", text="<think>")', Type("<think>")),
    ('Action: do(action="Type", text="a</think>b")', Type("a</think>b")),
    ('thinking, opened by the template</think>do(action="Back")', Back()),
    ('mentions do(action="Home") first</think><answer>do(action="Back")</answer>', Back()),
    ('<answer>do(action="Type", text="</answer>")</answer>', Type("</answer>")),
    ('<answer>finish(message="a)b(c")</answer>', Finish("a)b(c")),
    ('do(action="Type", text="<think>no</think>")', Type("<think>no</think>")),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_valid(text: str, expected: Action) -> None:
    assert parse(text) == expected


INVALID = [
    ("", "empty output"),
    ("   \n ", "empty output"),
    ("garbage", "no action found"),
    ("I think I am done.", "no action found"),
    ("<think>still thinking about the screen", "ended inside <think>"),
    ("<think>x</think><answer>tap the button</answer>", "<answer> block holds no"),
    ('{"action_type": "click", "index": 3}', "parse_json"),
    ('do(action="Tap", element=[1200, 5])', "x=1200 is outside the 0-999 grid"),
    ('do(action="Tap", element=[5, -1])', "y=-1 is outside"),
    ('do(action="Tap", element=[0, 1000])', "y=1000 is outside"),
    ('do(action="Tap", element=[999.6, 5])', "outside"),
    ('do(action="Tap", element=[1, 2, 3])', "got 3 values"),
    ('do(action="Tap", element=[1])', "got 1 values"),
    ('do(action="Tap", element=[])', "got 0 values"),
    ('do(action="Tap", element=[1, 2, 3, 4, 5])', "got 5 values"),
    ('do(action="Tap", element="[1, 2]")', "must be a list"),
    ('do(action="Tap", element=[x,y])', "element= must be a literal"),
    ('do(action="Tap", element=[True, 1])', "must be a number"),
    ('do(action="Tap", element=["1", 2])', "must be a number"),
    ('do(action="Tap", element=[nan, 2])', "must be a literal"),
    ('do(action="Tap", element=[1e999, 2])', "not a finite number"),
    ('do(action="Tap", element=[1, 2j])', "must be a number"),
    ('do(action="Tap", element=[' + "9" * 5000 + ", 2])", "malformed action"),
    ('do(action="Tap")', "Tap is missing element="),
    ('do(action="Tap", element=[1, 2], text="x")', "Tap does not take text="),
    ('do(action="Back", element=[1, 2])', "Back does not take element="),
    ('do(action="Click", element=[1, 2])', "unknown action 'Click'"),
    ('do(action="", element=[1, 2])', "unknown action ''"),
    ("do(action=Tap, element=[1, 2])", "action= must be a literal"),
    ("do(action=1)", 'needs action="Name"'),
    ('do("Tap", element=[1, 2])', "no action found"),  # not a do(action=...) call at all
    ('finish("done")', "keyword arguments only"),
    ('do(action="Tap", element=[1, 2], **extra)', "**arguments"),
    ('do(action="Tap", element=[1, 2], element=[3, 4])', "element= twice"),
    ('do(action="Type", text="")', "Type text is empty"),
    ('do(action="Type")', "Type is missing text="),
    ('do(action="Type", text=None)', "Type is missing text="),
    ('do(action="Type", text=123)', "must be a quoted string"),
    ('do(action="Type", text=b"bytes")', "must be a quoted string"),
    ('do(action="Type", text=f"{x}")', "must be a literal"),
    ('do(action="Type", text="x", clear="no")', "must be True or False"),
    ('do(action="Type", text="abc)', "unbalanced quotes"),
    ('do(action="Type", text="abc', "unbalanced quotes"),
    ('do(action="Tap", element=[1, 2)', "never closed"),
    ('do(action="Tap", element=[1, 2]', "never closed"),
    ('do(action="Swipe", start=[1, 2])', "Swipe is missing end="),
    ('do(action="Swipe")', "Swipe needs start="),
    ('do(action="Swipe", start=[1, 2], end=[3, 4], direction="up")', "does not take direction="),
    ('do(action="Swipe", direction="sideways")', "up, down, left, right"),
    ('do(action="Swipe", direction="up", dist="far")', "short, medium, long"),
    ('do(action="Swipe", direction="up", dist=-5)', "short, medium, long"),
    ('do(action="Launch")', "Launch is missing app="),
    ('do(action="Launch", app="  ")', "Launch app is empty"),
    ('do(action="Wait", duration="x seconds")', "number of seconds"),
    ('do(action="Wait", duration="forever")', "number of seconds"),
    ('do(action="Wait", duration="nan")', "between 0 and 60"),
    ('do(action="Wait", duration="-1 seconds")', "between 0 and 60"),
    ('do(action="Wait", duration="3600 seconds")', "between 0 and 60"),
    ('do(action="Wait", duration=True)', "number of seconds"),
    ('do(action="Call_API")', "Call_API is missing instruction="),
    ('do(action="Take_over", message="please log in")', "no human"),
    ('do(action="Interact")', "no user to ask"),
    ('finish(message="a", extra=1)', "finish does not take extra="),
    ("finish(message=[1])", "must be a quoted string"),
    ('do(action="Back")\ndo(action="Home")', "more than one action"),
    ('do(action="Back") then finish(message="x")', "more than one action"),
    ('<answer>do(action="Back")</answer><answer>do(action="Home")</answer>', "more than one action"),
    ('do(action="Tap" element=[1, 2])', "malformed action"),
    ('do(action="Tap", element=[1, 2]]', "malformed action"),
    ('do(action="Tap", element=[1, 2]\x00)', "malformed action"),
    ('do(action="Tap", element=[1, 2], message="a "b" c")', "malformed action"),  # only free text is repaired
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_parse_invalid(text: str, reason: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid), result
    assert reason in result.reason, result.reason


def test_parse_rejects_non_strings() -> None:
    assert isinstance(parse(None), Invalid)  # type: ignore[arg-type]
    assert isinstance(parse(b'do(action="Back")'), Invalid)  # type: ignore[arg-type]


# Outputs in the style AutoGLM-Phone-9B and MobileRL-9B produce (English and Chinese prompts).
MODEL_OUTPUTS = [
    (
        "<think>当前在手机桌面，用户要求打开设置，我应该直接使用Launch启动设置应用。</think>\n"
        '<answer>do(action="Launch", app="设置")</answer>',
        Launch("设置"),
    ),
    (
        "<think>\nThe screen shows the Clock app with tabs at the bottom. The task asks for an alarm at "
        "9:00, so I should open the Alarm tab, whose bounds are [41,889][201,960].\n</think>\n"
        '<answer>\ndo(action="Tap", element=[41, 889, 201, 960])\n</answer>',
        Tap((121, 924)),
    ),
    (
        "<think>The search box is focused and the keyboard is up. I will type the contact's name."
        '</think>\n<answer>do(action="Type", text="Alice Smith")</answer>',
        Type("Alice Smith"),
    ),
    (
        "<think>The list continues below the fold; I need to scroll to see the Bluetooth entry.</think>"
        '<answer>do(action="Swipe", start=[499, 800], end=[499, 300])</answer>',
        Swipe((499, 800), (499, 300)),
    ),
    (
        "<think>\nThe settings list is long. I will swipe up on the list to reveal more items.\n</think>\n"
        '<answer>\ndo(action="Swipe", direction="up", dist="medium", element=[0, 120, 999, 900])\n</answer>',
        Swipe((499, 510), (499, 310)),
    ),
    (
        '<think>页面还在加载中，等待一下。</think>\n<answer>do(action="Wait", duration="2 seconds")</answer>',
        Wait(2),
    ),
    (
        "<think>The note has been saved with the requested title; the task is complete.</think>\n"
        '<answer>finish(message="Task completed.")</answer>',
        Finish("Task completed."),
    ),
    (
        "<think>The stopwatch shows 00:12.45; the user asked how long it has run.</think>"
        '<answer>finish(message="The stopwatch shows "00:12.45".")</answer>',
        Finish('The stopwatch shows "00:12.45".'),
    ),
    (
        "<think>I need to write the note body.</think>"
        '<answer>do(action="Type", text="# Groceries\n- milk\n- eggs")</answer>',
        Type("# Groceries\n- milk\n- eggs"),
    ),
    (
        "<think>This is the payment button, a sensitive action.</think>"
        '<answer>do(action="Tap", element=[850, 950], message="重要操作")</answer>',
        Tap((850, 950)),
    ),
    (
        '<think>需要登录，用户需要接管。</think><answer>do(action="Take_over", message="请登录账号")</answer>',
        Invalid("no human"),
    ),
    (
        '<think>I will tap the button.</think><answer>do(action="Tap", element=[x,y])</answer>',
        Invalid("element= must be a literal"),
    ),
    (
        'The Wi-Fi toggle is at the top. Action: do(action="Tap", element=[880, 210])',
        Tap((880, 210)),
    ),
    (
        '<think>Open the drawer, then tap Settings.</think><answer>do(action="Tap", element=[30, 60])\n'
        'do(action="Tap", element=[200, 400])</answer>',
        Invalid("more than one action"),
    ),
    (
        "<think>I have checked everything and the alarm is set for 9:00 on weekdays, which is what the "
        "user wanted, so I",
        Invalid("ended inside <think>"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), MODEL_OUTPUTS)
def test_parse_model_outputs(text: str, expected: Action | Invalid) -> None:
    result = parse(text)
    if isinstance(expected, Invalid):
        assert isinstance(result, Invalid), result
        assert expected.reason in result.reason, result.reason
    else:
        assert result == expected


# ---------------------------------------------------------------------------------------------
# format_action and the round trip


FORMATTED = [
    (Tap((500, 320)), 'do(action="Tap", element=[500, 320])'),
    (LongPress((1, 2)), 'do(action="Long Press", element=[1, 2])'),
    (DoubleTap((0, 999)), 'do(action="Double Tap", element=[0, 999])'),
    (Swipe((500, 800), (500, 200)), 'do(action="Swipe", start=[500, 800], end=[500, 200])'),
    (Type("Hello World"), 'do(action="Type", text="Hello World")'),
    (Type('say "hi"\n'), 'do(action="Type", text="say \\"hi\\"\\n")'),
    (Type("x", (3, 4), False, True), 'do(action="Type", element=[3, 4], clear=False, enter=True, text="x")'),
    (Launch("Settings"), 'do(action="Launch", app="Settings")'),
    (Back(), 'do(action="Back")'),
    (Home(), 'do(action="Home")'),
    (Enter(), 'do(action="Enter")'),
    (Wait(2), 'do(action="Wait", duration="2 seconds")'),
    (Wait(1.5), 'do(action="Wait", duration="1.5 seconds")'),
    (Note("True"), 'do(action="Note", message="True")'),
    (CallApi("sum it up"), 'do(action="Call_API", instruction="sum it up")'),
    (Finish("你好"), 'finish(message="你好")'),
    (Finish("tab\there\x00"), 'finish(message="tab\\there\\x00")'),
]


@pytest.mark.parametrize(("action", "text"), FORMATTED)
def test_format_action(action: Action, text: str) -> None:
    assert format_action(action) == text
    assert parse(text) == action


def test_format_rejects_non_actions() -> None:
    with pytest.raises(ActionError):
        format_action(Invalid("x"))  # type: ignore[arg-type]


points = st.tuples(st.integers(0, 999), st.integers(0, 999))
# Any text, plus an alphabet aimed at the string machinery.
tricky_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("\"'\\\n\r\t\x00()[]{}<>=,;# xé中🎉\u2028\ufeff")), max_size=40),
    st.sampled_from(["</answer>", "<answer>", "<think>", "</think>", '")', 'do(action="Back")', "\\"]),
)
nonblank_text = tricky_text.filter(lambda s: s.strip() != "")
actions = st.one_of(
    st.builds(Tap, points),
    st.builds(LongPress, points),
    st.builds(DoubleTap, points),
    st.builds(Swipe, points, points),
    st.builds(Type, tricky_text.filter(bool), st.none() | points, st.booleans(), st.booleans()),
    st.builds(Launch, nonblank_text),
    st.just(Back()),
    st.just(Home()),
    st.just(Enter()),
    st.builds(Wait, st.floats(0, 60) | st.integers(0, 60)),
    st.builds(Finish, tricky_text),
    st.builds(Note, tricky_text),
    st.builds(CallApi, nonblank_text),
)


@given(actions)
@settings(max_examples=600, deadline=None)
def test_format_parse_round_trip(action: Action) -> None:
    text = format_action(action)
    assert parse(text) == action
    assert parse(f"<think>\nreasoning\n</think>\n<answer>\n{text}\n</answer>") == action
    assert parse(f"Action: {text}") == action


# ---------------------------------------------------------------------------------------------
# Robustness: parse never raises and stays fast


def _check_total(result: object) -> None:
    assert isinstance(result, Action | Invalid)
    if isinstance(result, Invalid):
        assert "internal parser error" not in result.reason, result.reason


@given(st.text(max_size=300))
@settings(max_examples=800, deadline=None)
def test_parse_never_raises_on_random_text(text: str) -> None:
    _check_total(parse(text))


def _mutate(text: str, data: st.DataObject) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 5)))
        insert = data.draw(st.sampled_from(["", '"', "'", "\\", "(", ")", "[", "]", ",", "=", "\n", "0", "é"]))
        text = text[:i] + insert + text[j:]
    return text


@given(actions, st.data())
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_never_raises_on_mutated_actions(action: Action, data: st.DataObject) -> None:
    mutated = _mutate(format_action(action), data)
    _check_total(parse(mutated))
    _check_total(parse(f"<think>x</think><answer>{mutated}</answer>"))


ADVERSARIAL = [
    '"' * 100_000,
    "'" * 100_000,
    "(" * 100_000,
    "[" * 100_000,
    "\\" * 100_000,
    "\x00" * 100_000,
    "do(action=" * 10_000,
    "finish(" * 15_000,
    "do(" * 30_000,
    "<answer>" * 12_000,
    "<think>" * 12_000,
    "</think>" * 12_000,
    "do " * 30_000 + "(",
    'do(action="Type", text="' + 'a"' * 50_000 + ")",
    'do(action="Type", text="' + '"' * 19_000 + '")',
    'do(action="Type", text="' + "\\" * 19_000 + '")',
    'do(action="Type", text="' + '\\"' * 9_000 + '")',
    'do(action="Tap", element=' + "[" * 19_000 + "]" * 19_000 + ")",
    'do(action="Tap", element=[' + "0" * 100_000 + ", 1])",
    'do(action="Tap", element=[' + "0" * 19_000 + "1, 1])",
    'do(action="Tap", element=[' + "9" * 19_000 + ", 1])",
    'do(action="Tap", element=[' + "1, " * 6_000 + "1])",
    'do(action="Wait", duration="' + "9" * 19_000 + ' seconds")',
    'do(action="Wait", duration=' + "9" * 4_000 + ".5)",
    'do(action="Tap", element=[1, 2])' * 3_000,
    "finish(message=" + "(" * 50_000,
    'finish(message="' + "x" * 19_990 + '")',
    "do(action='Type', text='" + "it's " * 3_900 + "')",
    "<think>" + "x" * 100_000,
    "x" * 1_000_000,
    "é中🎉" * 300_000,
    "do(action=" + " " * 100_000 + '"Back")',
    'do(action="Tap", element=[1, 2], ' + "k=1, " * 3_900 + ")",
    'do(action="Tap", element=[1e308, 1e308])',
    'do(action="Tap", element=[-0.0, 0])',
    'do(action="\u202eTap", element=[1, 2])',
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: f"{t[:12]!r}x{len(t)}")
def test_parse_adversarial_is_total_and_fast(text: str) -> None:
    started = time.perf_counter()
    result = parse(text)
    elapsed = time.perf_counter() - started
    _check_total(result)
    assert elapsed < 0.5, f"{elapsed:.3f}s"


def test_parse_is_quiet_and_light() -> None:
    # Odd model syntax (invalid escapes, `1if`) must not spam rollout logs with Python warnings,
    # and the parser must not drag in the training stack.
    code = r"""
import sys
from droidrl.envs.actions import parse
parse(r'do(action="Type", text="\c \641")')
parse('do(action="Tap", element=[1if 1 else 2, 3])')
assert not {"torch", "ray", "vllm"} & set(sys.modules)
"""
    result = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_parse_stays_quiet_after_the_warning_filters_are_reset() -> None:
    # pytest and Ray workers reset or prepend warning filters after droidrl is imported; a filter set at
    # import time alone let "SyntaxWarning: invalid decimal literal" reach the console then.
    code = r"""
import warnings
from droidrl.envs.actions import parse
warnings.resetwarnings()
warnings.simplefilter("default")
print(parse('do(action="Tap", element=[1a, 2])'))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "invalid decimal literal" in result.stdout  # reported as the invalid action's reason instead


def test_overlong_action_is_refused_with_a_reason() -> None:
    result = parse('do(action="Type", text="' + "a" * MAX_ACTION_CHARS + '")')
    assert isinstance(result, Invalid)
    assert "not closed within" in result.reason
    assert parse('do(action="Type", text="' + "a" * 10_000 + '")') == Type("a" * 10_000)


# ---------------------------------------------------------------------------------------------
# Grid <-> pixels


@pytest.mark.parametrize(
    ("point", "size", "pixel"),
    [
        ((0, 0), (1080, 2400), (0, 0)),
        ((999, 999), (1080, 2400), (1078, 2397)),
        ((500, 500), (1080, 2400), (540, 1200)),
        ((0, 0), (720, 1280), (0, 0)),
        ((999, 999), (720, 1280), (719, 1278)),
        ((500, 500), (720, 1280), (360, 640)),
        ((175, 175), (720, 1280), (126, 224)),  # Open-AutoGLM's float form gives x=125 here
    ],
)
def test_to_pixels_pins(point: tuple[int, int], size: tuple[int, int], pixel: tuple[int, int]) -> None:
    assert to_pixels(point, *size) == pixel


def test_to_pixels_is_open_autoglms_formula_without_float_error() -> None:
    for width in (720, 1080, 1280, 1440, 2400):
        for x in range(1000):
            exact = x * width // 1000
            assert to_pixels((x, 0), width, 100)[0] == exact
            assert int(x / 1000 * width) in (exact, exact - 1)  # the float form, one pixel short at worst
    assert int(175 / 1000 * 720) == 125 and to_pixels((175, 0), 720, 100)[0] == 126


@pytest.mark.parametrize(
    ("pixel", "size", "point"),
    [
        ((0, 0), (1080, 2400), (0, 0)),
        ((1078, 2397), (1080, 2400), (999, 999)),
        ((1079, 2399), (1080, 2400), (999, 999)),
        ((540, 1200), (1080, 2400), (500, 500)),
        ((719, 1279), (720, 1280), (999, 999)),
        ((360, 640), (720, 1280), (500, 500)),
        ((1, 1), (720, 1280), (2, 1)),
    ],
)
def test_to_grid_pins(pixel: tuple[int, int], size: tuple[int, int], point: tuple[int, int]) -> None:
    assert to_grid(pixel, *size) == point


@given(points)
@settings(max_examples=300, deadline=None)
def test_grid_pixel_grid_is_identity_on_screens_of_1000_pixels_or_more(point: tuple[int, int]) -> None:
    for width, height in ((1080, 2400), (1000, 1000), (1440, 3200)):
        assert to_grid(to_pixels(point, width, height), width, height) == point


@given(st.integers(0, 719), st.integers(0, 999))
@settings(max_examples=300, deadline=None)
def test_pixel_grid_pixel_is_identity_on_screens_of_1000_pixels_or_less(px: int, py: int) -> None:
    assert to_pixels(to_grid((px, py), 720, 1000), 720, 1000) == (px, py)
    # Larger screens have pixels no grid point reaches: the round trip lands on the next one reached.
    qx, qy = to_pixels(to_grid((px, py * 2), 1080, 2400), 1080, 2400)
    assert abs(qx - px) * 1000 < 1080 and abs(qy - py * 2) * 1000 < 2400


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (to_pixels, ((1000, 0), 1080, 2400)),
        (to_pixels, ((-1, 0), 1080, 2400)),
        (to_pixels, ([1, 2], 1080, 2400)),
        (to_pixels, ((1, 2), 0, 2400)),
        (to_grid, ((1080, 0), 1080, 2400)),
        (to_grid, ((0, -1), 1080, 2400)),
        (to_grid, ((1.5, 0), 1080, 2400)),
    ],
)
def test_mapping_rejects_bad_input(call, args) -> None:
    with pytest.raises(ActionError):
        call(*args)


# ---------------------------------------------------------------------------------------------
# Action values and helpers


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Tap((1000, 0)), "outside the 0-999 grid"),
        (lambda: Tap([1, 2]), "tuple of two ints"),
        (lambda: Tap((True, 2)), "tuple of two ints"),
        (lambda: Swipe((1, 2), (3, 1000)), "Swipe end"),
        (lambda: Type(""), "empty"),
        (lambda: Type(5), "quoted string"),
        (lambda: Type("x", clear=1), "True or False"),
        (lambda: Launch(""), "Launch app"),
        (lambda: Wait(-1), "between 0 and 60"),
        (lambda: Wait(float("nan")), "between 0 and 60"),
        (lambda: Wait(True), "between 0 and 60"),
        (lambda: Finish(None), "quoted string"),
        (lambda: CallApi(" "), "empty"),
    ],
)
def test_actions_validate_their_values(make, message: str) -> None:
    with pytest.raises(ActionError, match=message):
        make()


def test_actions_are_frozen_and_hashable() -> None:
    tap = Tap((1, 2))
    with pytest.raises(AttributeError):
        tap.point = (3, 4)  # type: ignore[misc]
    assert len({Tap((1, 2)), Tap((1, 2)), Back(), Back()}) == 2


def test_swipe_in_direction() -> None:
    assert swipe_in_direction("up") == Swipe((500, 500), (500, 300))
    assert swipe_in_direction("down", "long", (10, 900)) == Swipe((10, 900), (10, 999))
    assert swipe_in_direction("left", 5000, (10, 10)) == Swipe((10, 10), (0, 10))
    with pytest.raises(ActionError):
        swipe_in_direction("diagonal")


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("Settings", "com.android.settings"),
        ("settings", "com.android.settings"),
        ("  Clock  app ", "com.google.android.deskclock"),
        ("Pro Expense", "com.arduia.expense"),
        ("Expenses", "com.arduia.expense"),
        ("Simple SMS Messenger", "com.simplemobiletools.smsmessenger"),
        ("Messages", "com.simplemobiletools.smsmessenger"),
        ("Markor", "net.gsantner.markor"),
        ("Files", "com.google.android.documentsui"),
        ("Chrome", "com.android.chrome"),
        ("com.android.settings", "com.android.settings"),
        ("WeChat", None),
        ("", None),
    ],
)
def test_resolve_app(name: str, package: str | None) -> None:
    assert resolve_app(name) == package


def test_resolve_app_uses_the_given_table() -> None:
    installed = {"Clock": "com.example.clock"}
    assert resolve_app("clock", installed) == "com.example.clock"
    assert resolve_app("Settings", installed) is None
    assert "Contacts" in APP_PACKAGES
    assert parse('do(action="Launch", app="clock app")') == Launch("clock app")  # kept as said


# ---------------------------------------------------------------------------------------------
# android_world JSON actions

SIZE = (1080, 2400)
ELEMENTS = [(0, 0, 1080, 2400), (100, 200, 300, 400), (0, 2000, 1080, 2400)]

JSON_VALID = [
    ('{"action_type": "click", "x": 540, "y": 1200}', Tap((500, 500))),
    ('{"action_type": "click", "x": 0, "y": 0}', Tap((0, 0))),
    ('{"action_type": "click", "x": 1079, "y": 2399}', Tap((999, 999))),
    ('{"action_type": "click", "x": 540.7, "y": 1200.2}', Tap((500, 500))),
    ('{"action_type": "click", "index": 1}', Tap((186, 125))),  # centre (200, 300) px
    ('{"action_type": "click", "index": "1"}', Tap((186, 125))),
    ('{"action_type": "click", "index": 1, "x": null, "y": null}', Tap((186, 125))),
    ('{"action_type": "long_press", "index": 1}', LongPress((186, 125))),
    ('{"action_type": "double_tap", "x": 540, "y": 1200}', DoubleTap((500, 500))),
    ('{"action_type": "input_text", "text": "hello", "index": 1}', Type("hello", (186, 125), False, True)),
    (
        '{"action_type": "input_text", "text": "hi", "x": 540, "y": 1200, "clear_text": true}',
        Type("hi", (500, 500), True, True),
    ),
    ('{"action_type": "input_text", "text": "no focus"}', Type("no focus", None, False, True)),
    ('{"action_type": "input_text", "text": 5551234}', Type("5551234", None, False, True)),
    ('{"action_type": "keyboard_enter"}', Enter()),
    ('{"action_type": "navigate_home"}', Home()),
    ('{"action_type": "navigate_back"}', Back()),
    ('{"action_type": "open_app", "app_name": "Clock"}', Launch("Clock")),
    ('{"action_type": "wait"}', Wait(1)),
    ('{"action_type": "status", "goal_status": "complete"}', Finish("")),
    ('{"action_type": "status", "goal_status": "infeasible"}', Finish("infeasible")),
    ('{"action_type": "answer", "text": "The alarm is at 9:00"}', Finish("The alarm is at 9:00")),
    # scroll: the finger moves against the direction, from the centre to the far edge
    ('{"action_type": "scroll", "direction": "down"}', Swipe((500, 500), (500, 0))),
    ('{"action_type": "scroll", "direction": "up"}', Swipe((500, 500), (500, 999))),
    ('{"action_type": "scroll", "direction": "right"}', Swipe((500, 500), (0, 500))),
    ('{"action_type": "scroll", "direction": "left"}', Swipe((500, 500), (999, 500))),
    ('{"action_type": "scroll", "direction": "down", "index": 1}', Swipe((186, 125), (186, 84))),
    ('{"action_type": "scroll", "direction": "down", "index": 0}', Swipe((500, 500), (500, 0))),
    # swipe: android_world's actuation.py, horizontal quirk included
    ('{"action_type": "swipe", "direction": "down"}', Swipe((500, 0), (500, 999))),
    ('{"action_type": "swipe", "direction": "up"}', Swipe((500, 999), (500, 0))),
    ('{"action_type": "swipe", "direction": "left"}', Swipe((0, 500), (999, 500))),
    ('{"action_type": "swipe", "direction": "right"}', Swipe((999, 500), (0, 500))),
    # wrappers and Python-literal dicts, as android_world's extract_json accepts
    ("{'action_type': 'navigate_back'}", Back()),
    (
        'Reason: the list is long.\nAction: {"action_type": "scroll", "direction": "down"}',
        Swipe((500, 500), (500, 0)),
    ),
    ('<think>{"x": 1}</think><answer>{"action_type": "navigate_home"}</answer>', Home()),
    ('```json\n{"action_type": "answer", "text": "a}b\\n{c"}\n```', Finish("a}b\n{c")),
    ('{"action_type": "answer", "text": "line1\nline2"}', Finish("line1\nline2")),
    ('{"action_type": "click", "x": 540, "y": 1200, "text": "ignored"}', Tap((500, 500))),
]


@pytest.mark.parametrize(("text", "expected"), JSON_VALID)
def test_parse_json_valid(text: str, expected: Action) -> None:
    assert parse_json(text, SIZE, ELEMENTS) == expected


JSON_INVALID = [
    ("", "no JSON action found"),
    ("click the button", "no JSON action found"),
    ('{"action_type": "click"', "never closed"),
    ("{action_type: click}", "malformed JSON"),
    ("{}", 'needs "action_type"'),
    ('{"action_type": "fly"}', "unknown action_type 'fly'"),
    ('{"action_type": "unknown"}', "unknown action_type"),
    ('{"action_type": "click", "reason": "x"}', "unknown JSON action key"),
    ('{"action_type": "click"}', 'needs "index" or "x" and "y"'),
    ('{"action_type": "click", "x": 5}', "needs both x and y"),
    ('{"action_type": "click", "index": 1, "x": 5, "y": 5}', "either index or x and y"),
    ('{"action_type": "click", "x": 1080, "y": 5}', "outside the 1080x2400 screen"),
    ('{"action_type": "click", "x": -1, "y": 5}', "outside"),
    ('{"action_type": "click", "x": "5", "y": 5}', "number of pixels"),
    ('{"action_type": "click", "x": 1e999, "y": 5}', "number of pixels"),
    ('{"action_type": "click", "index": 3}', "out of range: the screen lists 3 elements"),
    ('{"action_type": "click", "index": -1}', "out of range"),
    ('{"action_type": "click", "index": true}', "element number"),
    ('{"action_type": "input_text", "text": ""}', 'non-empty "text"'),
    ('{"action_type": "input_text"}', 'non-empty "text"'),
    ('{"action_type": "input_text", "text": "x", "clear_text": "yes"}', "true or false"),
    ('{"action_type": "scroll"}', '"direction"'),
    ('{"action_type": "scroll", "direction": "diagonal"}', '"direction"'),
    ('{"action_type": "swipe", "direction": "UP"}', '"direction"'),
    ('{"action_type": "open_app"}', '"app_name"'),
    ('{"action_type": "status", "goal_status": "done"}', "complete or infeasible"),
    ('{"action_type": "answer"}', 'non-empty "text"'),
    ("[1, 2]", "no JSON action found"),
    ('{"action_type": "click", "index": ' + "9" * 5000 + "}", "malformed JSON"),
]


@pytest.mark.parametrize(("text", "reason"), JSON_INVALID)
def test_parse_json_invalid(text: str, reason: str) -> None:
    result = parse_json(text, SIZE, ELEMENTS)
    assert isinstance(result, Invalid), result
    assert reason in result.reason, result.reason


def test_parse_json_index_needs_elements() -> None:
    result = parse_json('{"action_type": "click", "index": 0}', SIZE)
    assert isinstance(result, Invalid) and "element list" in result.reason


@given(st.integers(0, 1079), st.integers(0, 2399))
@settings(max_examples=200, deadline=None)
def test_parse_json_click_lands_on_the_pixel_grid_point(px: int, py: int) -> None:
    action = parse_json(f'{{"action_type": "click", "x": {px}, "y": {py}}}', SIZE)
    assert action == Tap(to_grid((px, py), *SIZE))
    qx, qy = to_pixels(action.point, *SIZE)
    assert abs(qx - px) * 1000 < SIZE[0] and abs(qy - py) * 1000 < SIZE[1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
json_keys = st.sampled_from(
    ["action_type", "index", "x", "y", "text", "direction", "goal_status", "app_name", "clear_text", "other"]
)
action_types = st.sampled_from(
    [
        "click",
        "long_press",
        "double_tap",
        "input_text",
        "scroll",
        "swipe",
        "open_app",
        "status",
        "answer",
        "wait",
    ]
)


@given(action_types, st.dictionaries(json_keys, json_values, max_size=5))
@settings(max_examples=600, deadline=None)
@pytest.mark.slow
def test_parse_json_never_raises_on_random_objects(action_type: str, fields: dict) -> None:
    import json

    text = json.dumps({"action_type": action_type, **fields})
    _check_total(parse_json(text, SIZE, ELEMENTS))
    _check_total(parse_json(text, SIZE))


@given(st.text(max_size=300))
@settings(max_examples=500, deadline=None)
def test_parse_json_never_raises_on_random_text(text: str) -> None:
    _check_total(parse_json(text, SIZE, ELEMENTS))


@pytest.mark.parametrize(
    "text", [*ADVERSARIAL[:12], '{"a": ' * 20_000, "{" * 100_000, '{"action_type": "' + "a" * 100_000]
)
def test_parse_json_adversarial_is_total_and_fast(text: str) -> None:
    started = time.perf_counter()
    _check_total(parse_json(text, SIZE, ELEMENTS))
    assert time.perf_counter() - started < 0.5
