"""The agent's system prompt and the text the project's tokenizer is trained on.

The corpus is what a policy reads and writes on the simulated phone: UI XML of the screens the
experts visit, task goals, canonical action strings and the system prompt. It is deterministic
(fixed templates and seeds) and cached on disk, keyed by a hash of the code that produces it.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from functools import cache
from pathlib import Path

# The policy's system prompt, MobileRL / AutoGLM-Phone style. A plain constant: prompt builders
# import it, and the tokenizer is trained on it so its phrases are cheap to encode.
SYSTEM_PROMPT = """You are a phone-use agent. You operate an Android phone to complete the user's task.
Each turn you see the current screen (a screenshot and/or its UI hierarchy) and the task.
First think step by step inside <think></think>, then give exactly one action inside <answer></answer>.

Screen coordinates are on a 0-999 grid: [0, 0] is the top-left corner and [999, 999] the bottom-right
corner, whatever the real screen size.

Actions:
- do(action="Launch", app="xxx")  Open an app by name, e.g. app="Contacts".
- do(action="Tap", element=[x, y])  Tap the point [x, y].
- do(action="Type", text="xxx")  Clear the focused input field and type the text. Tap the field first.
- do(action="Swipe", start=[x1, y1], end=[x2, y2])  Swipe from start to end; the finger moving up
  scrolls the content to show what is below.
- do(action="Long Press", element=[x, y])  Press and hold the point [x, y].
- do(action="Double Tap", element=[x, y])  Tap the point [x, y] twice quickly.
- do(action="Back")  Press the system Back button.
- do(action="Home")  Go to the home screen.
- do(action="Enter")  Press the Enter key.
- do(action="Wait", duration="x seconds")  Wait for the screen to settle.
- finish(message="xxx")  End the task. For a question, the message is the answer.

Rules:
- Give one action per turn, exactly in the form above.
- Close dialogs and pop-ups that are in the way before you continue.
- If the target is not visible, swipe to find it.
- When the task is done, call finish(message="...") at once."""

# Enough seeds to vary names, dates and amounts; small enough to run in a few seconds.
CORPUS_SEEDS = (0, 1, 2)
_TEXT_ATTR = re.compile(r'(?:text|content-desc)="([^"]+)"')


def _source_fingerprint() -> str:
    """A hash of everything that decides the corpus: this module and the simulated phone + tasks."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    files = [Path(__file__).resolve(), root / "envs" / "actions.py"]
    for folder in ("envs/sim", "envs/tasks"):
        files += sorted((root / folder).rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where generated artefacts (corpus, tokenizer) are kept: $DROIDRL_CACHE or ~/.cache/droidrl."""
    return Path(os.environ.get("DROIDRL_CACHE", Path.home() / ".cache" / "droidrl"))


def build_corpus(seeds: tuple[int, ...] = CORPUS_SEEDS) -> list[str]:
    """Generate the corpus documents by running every template's expert on a simulated phone."""
    from droidrl.envs.actions import Finish, format_action
    from droidrl.envs.execute import perform
    from droidrl.envs.sim_device import SimDevice
    from droidrl.envs.tasks.expert import expert_action
    from droidrl.envs.tasks.registry import templates

    device = SimDevice()
    device.save_snapshot("corpus-base")
    docs = [SYSTEM_PROMPT]
    seen_xml: set[str] = set()
    for name, template in templates().items():
        for seed in seeds:
            device.load_snapshot("corpus-base")
            task = template.instance(seed)
            task.setup(device)
            docs.append(task.goal)
            actions: list[str] = []
            for _ in range(task.max_steps):
                xml = device.ui_xml()
                if xml not in seen_xml:  # screens repeat a lot (home screen): keep each once
                    seen_xml.add(xml)
                    # XML is big and repetitive: one seed teaches its structure; the visible
                    # texts of every seed add the names, dates and amounts.
                    if seed == seeds[0]:
                        docs.append(xml)
                    docs.append("\n".join(html.unescape(t) for t in _TEXT_ATTR.findall(xml)))
                action = expert_action(task, device)
                actions.append(format_action(action))
                if isinstance(action, Finish):
                    break
                perform(device, action, wait_scale=0.0)
            # One line per turn, wrapped as the policy writes it.
            docs.append("\n".join(f"<answer>{a}</answer>" for a in actions))
            docs.append(f"{name}: {task.goal}\n" + "\n".join(actions))
    return docs


@cache
def corpus() -> list[str]:
    """The tokenizer's training text (cached on disk; regenerated when the apps or tasks change)."""
    path = cache_dir() / f"corpus-{_source_fingerprint()}.txt"
    separator = "\n\x1e\n"  # record separator: never produced by the apps
    if path.exists():
        return path.read_text(encoding="utf-8").split(separator)
    docs = build_corpus()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(separator.join(docs), encoding="utf-8")
    tmp.replace(path)  # atomic: concurrent test sessions never read half a file
    return docs
