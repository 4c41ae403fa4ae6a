"""Write one episode as a self-contained HTML page: each step's screenshot with its action drawn on it."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from droidrl.envs.actions import Action, DoubleTap, LongPress, Swipe, Tap, to_pixels

THUMB_WIDTH = 360
MARK = (230, 40, 40)


@dataclass
class StepView:
    """What the page shows for one step: the screen the action was chosen on, and what happened."""

    screenshot: np.ndarray
    action_text: str
    parsed: Action | None
    valid: bool
    reason: str | None
    reward: float
    app: str


def annotate(screenshot: np.ndarray, action: Action | None) -> Image.Image:
    """The screenshot with a circle on a tap / long press and an arrow for a swipe."""
    image = Image.fromarray(screenshot).convert("RGB")
    draw = ImageDraw.Draw(image)
    width, height = image.size
    radius = max(6, width // 30)
    match action:
        case Tap(point) | LongPress(point) | DoubleTap(point):
            x, y = to_pixels(point, width, height)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=MARK, width=max(2, radius // 3))
        case Swipe(start, end):
            x1, y1 = to_pixels(start, width, height)
            x2, y2 = to_pixels(end, width, height)
            draw.line((x1, y1, x2, y2), fill=MARK, width=max(2, radius // 2))
            draw.ellipse((x2 - radius, y2 - radius, x2 + radius, y2 + radius), fill=MARK)
    return image


def thumbnail_png(image: Image.Image, width: int = THUMB_WIDTH) -> bytes:
    """`image` scaled to `width` pixels wide (aspect kept), as PNG bytes."""
    scale = width / image.width
    thumb = image.resize((width, max(1, int(image.height * scale))), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return buffer.getvalue()


def write_episode_html(
    out_dir: Path, title: str, goal: str, steps: list[StepView], final: np.ndarray, summary: str
) -> Path:
    """Write `index.html` and one PNG per step into out_dir; returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cards = []
    for i, step in enumerate(steps):
        name = f"step_{i:03d}.png"
        (out_dir / name).write_bytes(thumbnail_png(annotate(step.screenshot, step.parsed)))
        status = "ok" if step.valid else f"invalid: {html.escape(step.reason or '')}"
        cards.append(
            f'<figure><img src="{name}" alt="step {i}"><figcaption><b>{i + 1}.</b> '
            f"<code>{html.escape(step.action_text)}</code><br><small>{html.escape(step.app)} · {status}"
            f" · reward {step.reward:g}</small></figcaption></figure>"
        )
    (out_dir / "final.png").write_bytes(thumbnail_png(Image.fromarray(final)))
    cards.append('<figure><img src="final.png" alt="final screen"><figcaption>final screen</figcaption></figure>')
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; background: #f6f7f9; }}
.steps {{ display: flex; flex-wrap: wrap; gap: 16px; }}
figure {{ margin: 0; width: {THUMB_WIDTH}px; background: white; padding: 8px; border-radius: 8px;
  box-shadow: 0 1px 3px #0002; }}
img {{ width: 100%; border-radius: 4px; }} code {{ word-break: break-all; }}
</style></head><body>
<h1>{html.escape(title)}</h1><p><b>Goal:</b> {html.escape(goal)}</p><p>{html.escape(summary)}</p>
<div class="steps">{"".join(cards)}</div></body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
