"""Draw the simulated phone's screen with Pillow from the positioned view trees, and encode it as PNG.

Only Pillow's bundled font (Aileron via `ImageFont.load_default`) is used, so screenshots are byte-identical
on every machine; icons are drawn shapes. Glyph, text and corner masks are cached, because RL steps redraw
mostly the same strings and sizes.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import struct
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from droidrl.envs.sim.ui import (
    BUTTON,
    CHECKBOX,
    EDIT,
    IMAGE,
    IMAGE_BUTTON,
    RADIO,
    SEEKBAR,
    SWITCH,
    TEXT,
    Metrics,
    Node,
    place_row,
    row_height,
)

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]


# ---- palettes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    """Theme colours (Material 3-like). Apps may name a field here as a node's `color` or `bg`."""

    background: RGB
    surface: RGB  # app bar, tab bar, status and navigation bars
    card: RGB  # dialogs
    text: RGB
    text2: RGB  # subtitles, hints, unselected tabs
    disabled: RGB
    divider: RGB
    outline: RGB
    accent: RGB
    on_accent: RGB
    accent_soft: RGB  # selected chips and tabs, highlighted rows
    on_accent_soft: RGB
    track_off: RGB  # switch and seek bar tracks when off / unfilled
    keyboard: RGB
    key: RGB
    key_action: RGB
    error: RGB


def _rgb(value: str) -> RGB:
    return ImageColor.getrgb(value)[:3]


LIGHT = Palette(
    background=_rgb("#ffffff"),
    surface=_rgb("#f0f4f9"),
    card=_rgb("#f0f4f9"),
    text=_rgb("#1f1f1f"),
    text2=_rgb("#5e6166"),
    disabled=_rgb("#a2a5a9"),
    divider=_rgb("#dadce0"),
    outline=_rgb("#747775"),
    accent=_rgb("#0b57d0"),
    on_accent=_rgb("#ffffff"),
    accent_soft=_rgb("#d3e3fd"),
    on_accent_soft=_rgb("#041e49"),
    track_off=_rgb("#e1e3e1"),
    keyboard=_rgb("#e3e7ec"),
    key=_rgb("#ffffff"),
    key_action=_rgb("#c2cad4"),
    error=_rgb("#b3261e"),
)
DARK = Palette(
    background=_rgb("#131314"),
    surface=_rgb("#1e1f20"),
    card=_rgb("#2b2d31"),
    text=_rgb("#e3e3e3"),
    text2=_rgb("#b4b8bc"),
    disabled=_rgb("#66696c"),
    divider=_rgb("#3c4043"),
    outline=_rgb("#8e918f"),
    accent=_rgb("#a8c7fa"),
    on_accent=_rgb("#062e6f"),
    accent_soft=_rgb("#0842a0"),
    on_accent_soft=_rgb("#d3e3fd"),
    track_off=_rgb("#444746"),
    keyboard=_rgb("#202124"),
    key=_rgb("#3c4043"),
    key_action=_rgb("#2d3034"),
    error=_rgb("#f2b8b5"),
)
TOAST_BG, TOAST_TEXT = _rgb("#303133"), _rgb("#ffffff")
# Launcher-tile and avatar colours; a letter always maps to the same one.
AVATAR_COLOURS = [
    _rgb(c) for c in ("#1a73e8", "#d93025", "#188038", "#e37400", "#9334e6", "#007b83", "#c5221f", "#5f6368")
]
SCRIM = 0.6  # brightness kept under a dialog (Android dims the windows below by 40%)
_SCRIM_LUT = [round(v * SCRIM) for v in range(256)] * 3


# ---- entry points ---------------------------------------------------------------------------------------


@dataclass
class _Canvas:
    im: Image.Image
    draw: ImageDraw.ImageDraw
    m: Metrics
    p: Palette


def screenshot(windows: list[Node], metrics: Metrics, *, dark: bool) -> Image.Image:
    """Draw the windows (bottom to top) into an RGB image of the display's size."""
    palette = DARK if dark else LIGHT
    im = Image.new("RGB", (metrics.width, metrics.height), palette.background)
    c = _Canvas(im, ImageDraw.Draw(im), metrics, palette)
    for window in windows:
        if window.kind in ("dialog", "system_dialog"):
            c.im = c.im.point(_SCRIM_LUT)
            c.draw = ImageDraw.Draw(c.im)
        _draw(c, window)
    return c.im


def png_bytes(image: Image.Image) -> bytes:
    """Encode an RGB image as PNG: no row filters, zlib level 1.

    Pillow's encoder tries all five PNG filters on every row, which costs ~40 ms on a 1080x2400 screen;
    unfiltered level-1 deflate takes ~12-15 ms. For flat UI the file is no bigger than Pillow's at level 1
    and ~20% bigger than at level 9 (a Settings screen: 124 KiB, against 136 and 103 KiB).
    """
    pixels = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    height, width, _ = pixels.shape
    rows = np.empty((height, 1 + 3 * width), np.uint8)
    rows[:, 0] = 0  # filter type "None" for every row
    rows[:, 1:] = pixels.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows, 1)),
            _chunk(b"IEND", b""),
        ]
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# ---- the tree walk --------------------------------------------------------------------------------------

Painter = Callable[[_Canvas, Node], None]


def _draw(c: _Canvas, node: Node) -> None:
    painter = _BY_KIND.get(node.kind) or _BY_CLASS.get(node.cls) or _paint_container
    painter(c, node)
    if node.kind in _DRAWS_OWN_CHILDREN:
        return
    # The list goes first so that rows overhanging its edges are covered by the app and tab bars.
    for child in sorted(node.children, key=lambda k: k.kind != "list"):
        _draw(c, child)


def _paint_container(c: _Canvas, node: Node) -> None:
    if node.bg:
        _fill(c, node.bounds, _colour(c, node.bg, c.p.background))


def _paint_list(c: _Canvas, node: Node) -> None:
    _paint_container(c, node)
    top, bottom = node.bounds[1], node.bounds[3]
    rows = [_unclipped(row, c.m, top, bottom) for row in node.children]
    for row in rows:
        _draw(c, row)
    thickness = max(1, c.m.dp(0.75))
    for row, below in itertools.pairwise(rows):
        y = row.bounds[3]
        if row.kind == below.kind == "item" and top <= y < bottom:
            c.draw.rectangle((row.bounds[0] + c.m.dp(16), y - thickness, row.bounds[2] - 1, y - 1), fill=c.p.divider)


def _unclipped(row: Node, m: Metrics, top: int, bottom: int) -> Node:
    """A row cut by the viewport edge, laid out again at its full size (its bounds were clamped).

    Drawing it whole and letting the bars cover the overhang keeps clipped widgets in proportion.
    """
    left, row_top, right, row_bottom = row.bounds
    natural = row_height(row, m, right - left)
    if row_bottom - row_top >= natural:
        return row
    cut_at_top = row_top <= top and row_bottom < bottom
    whole = _copy_tree(row)
    place_row(whole, m, left, row_bottom - natural if cut_at_top else row_top, right, natural)
    return whole


def _copy_tree(node: Node) -> Node:
    return dataclasses.replace(node, children=[_copy_tree(k) for k in node.children])


# ---- rows and bars --------------------------------------------------------------------------------------


def _paint_item(c: _Canvas, node: Node) -> None:
    if node.selected:
        _fill(c, node.bounds, c.p.accent_soft)
    else:
        _paint_container(c, node)


def _paint_header(c: _Canvas, node: Node) -> None:
    _paint_container(c, node)
    for child in node.children:  # preference-category titles are accent coloured
        _text(c, child.text, child.bounds, _colour(c, child.color, c.p.accent), _px(c, child.size), bold=True)


def _paint_bar(c: _Canvas, node: Node) -> None:
    _fill(c, node.bounds, _colour(c, node.bg, c.p.surface))


def _paint_tab_bar(c: _Canvas, node: Node) -> None:
    _fill(c, node.bounds, _colour(c, node.bg, c.p.surface))
    left, top, right, _ = node.bounds
    _fill(c, (left, top, right, top + max(1, c.m.dp(0.75))), c.p.divider)


def _paint_tab(c: _Canvas, node: Node) -> None:
    """A bottom-navigation item: optional glyph with a pill behind it when selected, label below."""
    left, top, right, bottom = node.bounds
    cx = (left + right) // 2
    selected = node.selected or node.checked
    colour = c.p.text if selected else c.p.text2
    label_px = _px(c, 13)
    if node.hint:
        pill_w, pill_h = c.m.dp(64), c.m.dp(32)
        pill = (cx - pill_w // 2, top + c.m.dp(8), cx + pill_w // 2, top + c.m.dp(8) + pill_h)
        if selected:
            _rrect(c, pill, pill_h // 2, c.p.accent_soft)
        _glyph(c, node.hint, pill, c.m.dp(24), c.p.on_accent_soft if selected else colour, fallback=node.text)
        label_box = (left, pill[3] + c.m.dp(2), right, bottom - c.m.dp(4))
        _text(c, node.text, label_box, colour, label_px, bold=selected, align="center")
        return
    label_px = _px(c, 15)
    width = min(_text_width(node.text, label_px, selected) + c.m.dp(32), right - left - c.m.dp(8))
    pill_h = c.m.dp(40)
    pill = (cx - width // 2, (top + bottom - pill_h) // 2, cx + width // 2, (top + bottom + pill_h) // 2)
    if selected:
        _rrect(c, pill, pill_h // 2, c.p.accent_soft)
    text_colour = c.p.on_accent_soft if selected else colour
    _text(
        c,
        node.text,
        (left + c.m.dp(4), top, right - c.m.dp(4), bottom),
        text_colour,
        label_px,
        bold=selected,
        align="center",
    )


def _paint_card(c: _Canvas, node: Node) -> None:
    _rrect(c, node.bounds, c.m.dp(28), _colour(c, node.bg, c.p.card))


def _paint_toast(c: _Canvas, node: Node) -> None:
    _rrect(c, node.bounds, (node.bounds[3] - node.bounds[1]) // 2, TOAST_BG)
    left, top, right, bottom = node.bounds
    inner = (left + c.m.dp(12), top, right - c.m.dp(12), bottom)
    for child in node.walk():
        if child.text:
            _text(c, child.text, inner, TOAST_TEXT, _px(c, child.size), align="center")
            break


_NAV_GLYPHS = {"nav_back": "◁", "nav_home": "○", "nav_recent_apps": "□"}


def _paint_nav_button(c: _Canvas, node: Node) -> None:
    _glyph(c, _NAV_GLYPHS[node.kind], node.bounds, c.m.dp(22), c.p.text)


def _paint_status_icon(c: _Canvas, node: Node) -> None:
    """A status-bar icon (kind "sb_wifi", "sb_airplane", ...), named by its `hint`."""
    left, _, right, _ = node.bounds
    glyph = node.hint or node.kind.removeprefix("sb_")
    _glyph(c, glyph, node.bounds, min(right - left, c.m.dp(18)), c.p.text, fallback=node.desc)


def _paint_battery(c: _Canvas, node: Node) -> None:
    """A full horizontal battery: outlined body, filled charge, nub on the right."""
    _, top, right, bottom = node.bounds
    colour = c.p.text
    h = c.m.dp(11)
    w = c.m.dp(22)
    y0 = (top + bottom - h) // 2
    x1 = right - c.m.dp(2)
    x0 = x1 - w
    stroke = max(1, c.m.dp(1.2))
    _rrect_outline(c, (x0, y0, x1, y0 + h), c.m.dp(2.5), stroke, colour)
    _fill(c, (x0 + 2 * stroke, y0 + 2 * stroke, x1 - 2 * stroke, y0 + h - 2 * stroke), colour)
    _fill(c, (x1, y0 + h // 3, x1 + c.m.dp(1.5), y0 + h - h // 3), colour)


def _paint_keyboard(c: _Canvas, node: Node) -> None:
    _fill(c, node.bounds, c.p.keyboard)


def _paint_key(c: _Canvas, node: Node) -> None:
    left, top, right, bottom = node.bounds
    gap = c.m.dp(3)
    key = (left + gap, top + c.m.dp(5), right - gap, bottom - c.m.dp(5))
    space = node.text == " "  # Gboard draws the space bar like a letter key, without a label
    _rrect(c, key, c.m.dp(6), c.p.key_action if node.kind == "key_action" and not space else c.p.key)
    if space:
        return
    if node.text in _GLYPHS:
        _glyph(c, node.text, key, c.m.dp(24), c.p.text)
    else:
        _text(c, node.text, key, c.p.text, _px(c, node.size), align="center")


def _paint_keypad(c: _Canvas, node: Node) -> None:
    """A round dial-pad key (the Clock timer keypad): tonal circle with a large digit or glyph."""
    left, top, right, bottom = node.bounds
    r = min(right - left, bottom - top) // 2 - c.m.dp(6)
    _circle(c, (left + right) // 2, (top + bottom) // 2, r, c.p.surface if node.enabled else c.p.background)
    colour = c.p.text if node.enabled else c.p.disabled
    if node.hint:
        _glyph(c, node.hint, node.bounds, c.m.dp(28), colour, fallback=node.desc)
    else:
        _text(c, node.text, node.bounds, colour, _px(c, node.size), align="center")


# ---- text -----------------------------------------------------------------------------------------------


def _paint_text(c: _Canvas, node: Node) -> None:
    """A TextView: one ellipsized line, or wrapped lines when its bounds are tall enough for several."""
    _paint_container(c, node)
    default = c.p.text if node.enabled else c.p.disabled
    px = _px(c, node.size)
    lines = max(1, (node.bounds[3] - node.bounds[1]) // _line_height(px))
    _text(
        c,
        node.text,
        node.bounds,
        _colour(c, node.color, default),
        px,
        bold=node.bold,
        align=node.align,
        max_lines=lines,
    )


def _paint_subtitle(c: _Canvas, node: Node) -> None:
    colour = _colour(c, node.color, c.p.text2 if node.enabled else c.p.disabled)
    _text(c, node.text, node.bounds, colour, _px(c, node.size), bold=node.bold, align=node.align)


def _paint_trailing(c: _Canvas, node: Node) -> None:
    """A widget at the end of a list row; a plain text there is a right-aligned secondary value."""
    if node.cls == TEXT:
        _text(
            c,
            node.text,
            node.bounds,
            _colour(c, node.color, c.p.text2),
            _px(c, node.size),
            bold=node.bold,
            align="right",
        )
    else:
        _BY_CLASS.get(node.cls, _paint_container)(c, node)


def _paint_avatar(c: _Canvas, node: Node) -> None:
    left, top, right, bottom = node.bounds
    d = min(right - left, bottom - top)
    letter = node.text[:1].upper()
    colour = _colour(c, node.bg, AVATAR_COLOURS[sum(map(ord, letter)) % len(AVATAR_COLOURS)])
    _circle(c, (left + right) // 2, (top + bottom) // 2, d // 2, colour)
    _text(c, letter, node.bounds, (255, 255, 255), _px(c, node.size), bold=True, align="center")


def _px(c: _Canvas, sp: float) -> int:
    return max(1, round(sp * c.m.density / 160))


def _line_height(px: int) -> int:
    return round(px * 1.4)  # matches ui.row_height's paragraph estimate


def _text(
    c: _Canvas,
    text: str,
    box: Box,
    colour: RGB,
    px: int,
    *,
    bold: bool = False,
    align: str = "left",
    max_lines: int = 1,
) -> None:
    """Draw text inside `box` (clipped to it), vertically centred, ellipsized with … when it overflows."""
    left, top, right, bottom = box
    if not text or right <= left or bottom <= top:
        return
    # No glyph is narrower than ~0.2 em, so more characters than this can never show; cutting here keeps
    # a model that types 100 KB into a field from stalling the render (layout is quadratic in length).
    limit = max_lines * (1 + (right - left) * 5 // max(1, px)) + 1
    lines = _layout(text[:limit], px, bold, right - left, max_lines)
    step = _line_height(px) if len(lines) > 1 else 0
    mask_h = _line_mask(lines[0], px, bold).height
    y = top + (bottom - top - mask_h - step * (len(lines) - 1)) // 2
    for line in lines:
        mask = _line_mask(line, px, bold)
        if align == "center":
            x = left + (right - left - mask.width) // 2
        elif align in ("right", "end"):
            x = right - mask.width
        else:
            x = left
        _paste(c, mask, x, y, colour, box)
        y += step


@functools.lru_cache(maxsize=64)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=px)


def _stroke(px: int, bold: bool) -> int:
    return max(1, round(px / 40)) if bold else 0  # the bundled font has no bold face: thicken the outline


@functools.lru_cache(maxsize=8192)
def _text_width(text: str, px: int, bold: bool) -> int:
    return math.ceil(_font(px).getlength(_readable(text))) + 2 * _stroke(px, bold)


@functools.lru_cache(maxsize=2048)  # ~10-40 KB each: bounded at tens of MB per process
def _line_mask(text: str, px: int, bold: bool) -> Image.Image:
    """One line of text as an alpha mask, one font line-height tall with the baseline at the ascent."""
    font = _font(px)
    stroke = _stroke(px, bold)
    ascent, descent = font.getmetrics()
    mask = Image.new("L", (max(1, _text_width(text, px, bold) + 1), ascent + descent + 2 * stroke))
    ImageDraw.Draw(mask).text(
        (stroke, stroke), _readable(text), font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    return mask


@functools.lru_cache(maxsize=4096)
def _layout(text: str, px: int, bold: bool, width: int, max_lines: int) -> tuple[str, ...]:
    """Greedy word wrap into at most `max_lines` lines; the last visible line is ellipsized."""
    if max_lines == 1:
        return (_ellipsize(" ".join(text.split("\n")), px, bold, width),)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if _text_width(candidate, px, bold) <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
        lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _ellipsize(" ".join(lines[max_lines - 1 :]), px, bold, width)]
    return tuple(_ellipsize(line, px, bold, width) for line in lines)


def _ellipsize(text: str, px: int, bold: bool, width: int) -> str:
    if _text_width(text, px, bold) <= width:
        return text
    lo, hi = 0, len(text)  # the longest prefix that fits with "…" is text[:lo]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _text_width(text[:mid].rstrip() + "…", px, bold) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


# The bundled font covers ASCII and a little punctuation only: strip accents and map common symbols.
_SUBSTITUTES = str.maketrans(
    dict.fromkeys("—–‐‑‒−", "-")  # dashes and the non-breaking hyphen in "Wi‑Fi"
    | dict.fromkeys("\u00a0\u2007\u2009\u202f", " ")  # no-break and narrow spaces (Android's "7:00\u202fAM")
    | {"•": "·", "×": "x", "÷": "/", "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L"}
    | {"©": "(c)", "®": "(R)", "€": "EUR", "£": "GBP"}
)


@functools.lru_cache(maxsize=8192)
def _readable(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text.translate(_SUBSTITUTES))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@functools.lru_cache(maxsize=1024)
def _has_glyph(ch: str) -> bool:
    """Whether the bundled font draws `ch` (rather than its empty-box "missing glyph")."""
    return _char_image(ch) != _char_image("\uffff")


@functools.lru_cache(maxsize=1024)
def _char_image(ch: str) -> bytes:
    im = Image.new("L", (48, 48))
    ImageDraw.Draw(im).text((8, 4), ch, font=_font(24), fill=255)
    return im.tobytes()


# ---- widgets --------------------------------------------------------------------------------------------


def _paint_button(c: _Canvas, node: Node) -> None:
    """Material buttons: "primary" filled, "secondary" outlined, "text_button" flat; all pill shaped."""
    left, top, right, bottom = node.bounds
    radius = (bottom - top) // 2
    px = _px(c, node.size)
    inner = (left + c.m.dp(12), top, right - c.m.dp(12), bottom)
    if node.kind == "secondary":
        _rrect_outline(c, node.bounds, radius, max(1, c.m.dp(1)), c.p.outline if node.enabled else c.p.disabled)
        colour = c.p.accent if node.enabled else c.p.disabled
    elif node.kind == "text_button":
        colour = c.p.accent if node.enabled else c.p.disabled
    else:
        fill = _colour(c, node.bg, c.p.accent) if node.enabled else _mix(c.p.background, c.p.text, 0.12)
        _rrect(c, node.bounds, radius, fill)
        colour = _colour(c, node.color, c.p.on_accent) if node.enabled else c.p.disabled
    _text(c, node.text, inner, colour, px, bold=node.bold, align="center")


def _paint_icon(c: _Canvas, node: Node) -> None:
    """An ImageButton or ImageView: its glyph (`hint`) centred; a `bg` makes it a filled circle."""
    left, top, right, bottom = node.bounds
    size = min(c.m.dp(24), right - left, bottom - top)
    colour = _colour(c, node.color, c.p.text if node.enabled else c.p.disabled)
    if node.bg:
        _circle(
            c,
            (left + right) // 2,
            (top + bottom) // 2,
            min(right - left, bottom - top) // 2,
            _colour(c, node.bg, c.p.accent),
        )
        colour = _colour(c, node.color, (255, 255, 255))
    _glyph(c, node.hint, node.bounds, size, colour, fallback=node.desc or node.text)


def _paint_fab(c: _Canvas, node: Node) -> None:
    left, top, right, bottom = node.bounds
    _circle(
        c,
        (left + right) // 2,
        (top + bottom) // 2,
        min(right - left, bottom - top) // 2,
        _colour(c, node.bg, c.p.accent),
    )
    colour = _colour(c, node.color, c.p.on_accent)
    _glyph(c, node.hint, node.bounds, c.m.dp(24), colour, fallback=node.desc or node.text or "+")


def _paint_app_icon(c: _Canvas, node: Node) -> None:
    """A launcher cell: a rounded tile in the app's colour with its glyph, and the label below."""
    left, top, right, _ = node.bounds
    size = min(c.m.dp(56), right - left - c.m.dp(8))
    x0, y0 = (left + right - size) // 2, top + c.m.dp(10)
    label = node.text or node.desc
    tile = _colour(c, node.bg, AVATAR_COLOURS[sum(map(ord, label[:1])) % len(AVATAR_COLOURS)])
    _rrect(c, (x0, y0, x0 + size, y0 + size), size * 3 // 10, tile)
    _glyph(c, node.hint, (x0, y0, x0 + size, y0 + size), size * 9 // 16, (255, 255, 255), fallback=label)
    label_box = (left + c.m.dp(2), y0 + size + c.m.dp(4), right - c.m.dp(2), y0 + size + c.m.dp(24))
    _text(c, label, label_box, _colour(c, node.color, c.p.text), _px(c, 12.5), align="center")


def _paint_switch(c: _Canvas, node: Node) -> None:
    """A Material 3 switch: 52x32 dp track; on = accent track, large light thumb on the right."""
    left, top, right, bottom = node.bounds
    w, h = c.m.dp(52), c.m.dp(32)
    x1 = right - max(0, (right - left - w) // 2)
    track = (x1 - w, (top + bottom - h) // 2, x1, (top + bottom + h) // 2)
    cy = (track[1] + track[3]) // 2
    enabled_alpha = 1.0 if node.enabled else 0.4
    if node.checked:
        _rrect(c, track, h // 2, _mix(c.p.background, c.p.accent, enabled_alpha))
        _circle(c, track[2] - h // 2, cy, c.m.dp(12), c.p.on_accent)
    else:
        _rrect(c, track, h // 2, c.p.track_off)
        _rrect_outline(c, track, h // 2, max(1, c.m.dp(2)), _mix(c.p.background, c.p.outline, enabled_alpha))
        _circle(c, track[0] + h // 2, cy, c.m.dp(8), _mix(c.p.background, c.p.outline, enabled_alpha))


def _paint_checkbox(c: _Canvas, node: Node) -> None:
    left, top, right, bottom = node.bounds
    s = c.m.dp(18)
    x0, y0 = (left + right - s) // 2, (top + bottom - s) // 2
    box = (x0, y0, x0 + s, y0 + s)
    if node.checked:
        _rrect(c, box, c.m.dp(2), c.p.accent)
        _glyph(c, "✓", box, s - c.m.dp(2), c.p.on_accent)
    else:
        _rrect_outline(c, box, c.m.dp(2), max(1, c.m.dp(2)), c.p.text2)


def _paint_radio(c: _Canvas, node: Node) -> None:
    left, top, right, bottom = node.bounds
    cx, cy = (left + right) // 2, (top + bottom) // 2
    colour = c.p.accent if node.checked else c.p.text2
    _paste(c, _ring(c.m.dp(20), max(1, c.m.dp(2))), cx - c.m.dp(20) // 2, cy - c.m.dp(20) // 2, colour)
    if node.checked:
        _circle(c, cx, cy, c.m.dp(5), colour)


def _paint_seekbar(c: _Canvas, node: Node) -> None:
    left, top, right, bottom = node.bounds
    cy = (top + bottom) // 2
    r = c.m.dp(10)
    x0, x1 = left + r, right - r
    xp = x0 + round((x1 - x0) * min(1.0, max(0.0, node.progress)))
    h = c.m.dp(4)
    _rrect(c, (x0, cy - h // 2, x1, cy - h // 2 + h), h // 2, c.p.track_off)
    _rrect(c, (x0, cy - h // 2, xp, cy - h // 2 + h), h // 2, c.p.accent)
    _circle(c, xp, cy, r, c.p.accent)


def _paint_chip(c: _Canvas, node: Node) -> None:
    """A filter chip (ToggleButton): 32 dp tall, outlined; selected = tonal fill and bold label."""
    left, top, right, bottom = node.bounds
    h = min(c.m.dp(32), bottom - top)
    chip = (left, (top + bottom - h) // 2, right, (top + bottom + h) // 2)
    on = node.checked or node.selected
    if on:
        _rrect(c, chip, c.m.dp(8), c.p.accent_soft)
    else:
        _rrect_outline(c, chip, c.m.dp(8), max(1, c.m.dp(1)), c.p.outline)
    colour = c.p.on_accent_soft if on else c.p.text
    inner = (left + c.m.dp(4), chip[1], right - c.m.dp(4), chip[3])
    _text(c, node.text, inner, colour, _px(c, node.size), bold=on, align="center")


def _paint_edit(c: _Canvas, node: Node) -> None:
    """An outlined text field: text or grey hint, bullets for passwords, an accent caret when focused."""
    left, top, right, bottom = node.bounds
    focused = node.focused
    stroke = max(1, c.m.dp(2 if focused else 1))
    _rrect_outline(c, node.bounds, c.m.dp(4), stroke, c.p.accent if focused else c.p.outline)
    px = _px(c, node.size)
    pad = c.m.dp(16)
    inner = (left + pad, top + stroke, right - pad, bottom - stroke)
    if not node.text:
        _text(c, node.hint, inner, c.p.text2, px)
        end = inner[0]
    elif node.password:
        end = _bullets(c, len(node.text), inner, px)
    elif (bottom - top) >= 2 * _line_height(px) + 2 * c.m.dp(8):
        _paint_multiline_edit(c, node, inner, px)
        return
    else:
        shown = node.text
        if focused:  # a focused field scrolls to keep the caret (at the end) visible
            # No glyph is narrower than ~0.2 em: only the last width*5/px characters can ever show.
            shown = shown[-(2 + (inner[2] - inner[0]) * 5 // max(1, px)) :]
            while len(shown) > 1 and _text_width(shown, px, False) > inner[2] - inner[0] - c.m.dp(4):
                shown = shown[1:]
        _text(c, shown, inner, _colour(c, node.color, c.p.text), px)
        end = inner[0] + min(
            _text_width(_ellipsize(shown, px, False, inner[2] - inner[0]), px, False), inner[2] - inner[0]
        )
    if focused:
        caret_h = round(px * 1.15)
        cy = (top + bottom) // 2
        _fill(c, (end + 1, cy - caret_h // 2, end + 1 + max(2, c.m.dp(1.5)), cy + caret_h // 2), c.p.accent)


def _paint_multiline_edit(c: _Canvas, node: Node, inner: Box, px: int) -> None:
    """A tall text field (a note editor): wrapped lines from the top, the caret after the last one."""
    left, top, right, bottom = inner
    top += c.m.dp(8)
    step = _line_height(px)
    capacity = max(1, (bottom - top) // step)
    limit = capacity * (1 + (right - left) * 5 // max(1, px)) + 1
    lines = _layout(node.text[:limit], px, False, right - left, capacity)
    box = (left, top, right, top + step * len(lines))
    _text(c, node.text, box, _colour(c, node.color, c.p.text), px, max_lines=len(lines))
    if node.focused:
        end = left + min(_text_width(lines[-1], px, False), right - left)
        caret_h = round(px * 1.15)
        cy = top + step * (len(lines) - 1) + step // 2
        _fill(c, (end + 1, cy - caret_h // 2, end + 1 + max(2, c.m.dp(1.5)), cy + caret_h // 2), c.p.accent)


def _bullets(c: _Canvas, count: int, box: Box, px: int) -> int:
    """Password dots; returns the x where the caret goes."""
    left, top, right, bottom = box
    r = max(2, px // 6)
    step = round(px * 0.6)
    cy = (top + bottom) // 2
    x = left
    for _ in range(min(count, max(1, (right - left) // step))):
        _circle(c, x + step // 2, cy, r, c.p.text)
        x += step
    return x


# ---- shapes ---------------------------------------------------------------------------------------------

_SUPERSAMPLE = 4  # masks are drawn this much larger and box-filtered down: anti-aliased edges


def _fill(c: _Canvas, box: Box, colour: RGB) -> None:
    left, top, right, bottom = box
    if right > left and bottom > top:
        c.draw.rectangle((left, top, right - 1, bottom - 1), fill=colour)


def _paste(c: _Canvas, mask: Image.Image, x: int, y: int, colour: RGB, clip: Box | None = None) -> None:
    """Blend `colour` through `mask` placed at (x, y), cut to `clip` and to the image."""
    cl, ct, cr, cb = clip if clip is not None else (0, 0, c.m.width, c.m.height)
    x0, y0 = max(x, cl, 0), max(y, ct, 0)
    x1, y1 = min(x + mask.width, cr, c.m.width), min(y + mask.height, cb, c.m.height)
    if x1 <= x0 or y1 <= y0:
        return
    if (x0, y0, x1, y1) != (x, y, x + mask.width, y + mask.height):
        mask = mask.crop((x0 - x, y0 - y, x1 - x, y1 - y))
    c.im.paste(colour, (x0, y0, x1, y1), mask)


def _rrect(c: _Canvas, box: Box, radius: int, colour: RGB) -> None:
    """A filled rounded rectangle: two plain rectangles plus four anti-aliased corner masks."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    if w <= 0 or h <= 0:
        return
    r = min(radius, w // 2, h // 2)
    if r < 2:
        _fill(c, box, colour)
        return
    _fill(c, (left + r, top, right - r, bottom), colour)
    _fill(c, (left, top + r, left + r, bottom - r), colour)
    _fill(c, (right - r, top + r, right, bottom - r), colour)
    tl, tr, bl, br = _corners(r)
    _paste(c, tl, left, top, colour)
    _paste(c, tr, right - r, top, colour)
    _paste(c, bl, left, bottom - r, colour)
    _paste(c, br, right - r, bottom - r, colour)


def _rrect_outline(c: _Canvas, box: Box, radius: int, stroke: int, colour: RGB) -> None:
    left, top, right, bottom = box
    if right - left > 0 and bottom - top > 0:
        _paste(c, _outline_mask(right - left, bottom - top, radius, stroke), left, top, colour)


def _circle(c: _Canvas, cx: int, cy: int, r: int, colour: RGB) -> None:
    if r > 0:
        _paste(c, _disc(2 * r), cx - r, cy - r, colour)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _colour(c: _Canvas, value: str, default: RGB) -> RGB:
    """A node's colour: a palette field name ("accent", "error"), a CSS colour, or the default."""
    if not value:
        return default
    if value in _PALETTE_FIELDS:
        return getattr(c.p, value)
    return _parse_colour(value) or default


_PALETTE_FIELDS = frozenset(f.name for f in dataclasses.fields(Palette))


@functools.lru_cache(maxsize=256)
def _parse_colour(value: str) -> RGB | None:
    try:
        return _rgb(value)
    except ValueError:
        return None


def _supersampled(w: int, h: int, draw: Callable[[ImageDraw.ImageDraw, int], None]) -> Image.Image:
    big = Image.new("L", (w * _SUPERSAMPLE, h * _SUPERSAMPLE))
    draw(ImageDraw.Draw(big), _SUPERSAMPLE)
    return big.resize((w, h), Image.Resampling.BOX)


@functools.lru_cache(maxsize=512)
def _disc(d: int) -> Image.Image:
    return _supersampled(d, d, lambda g, k: g.ellipse((0, 0, d * k - 1, d * k - 1), fill=255))


@functools.lru_cache(maxsize=256)
def _ring(d: int, stroke: int) -> Image.Image:
    return _supersampled(d, d, lambda g, k: g.ellipse((0, 0, d * k - 1, d * k - 1), outline=255, width=stroke * k))


@functools.lru_cache(maxsize=256)
def _corners(r: int) -> tuple[Image.Image, Image.Image, Image.Image, Image.Image]:
    disc = _disc(2 * r)
    return (
        disc.crop((0, 0, r, r)),
        disc.crop((r, 0, 2 * r, r)),
        disc.crop((0, r, r, 2 * r)),
        disc.crop((r, r, 2 * r, 2 * r)),
    )


@functools.lru_cache(maxsize=512)
def _outline_mask(w: int, h: int, radius: int, stroke: int) -> Image.Image:
    r = min(radius, w // 2, h // 2)
    return _supersampled(
        w,
        h,
        lambda g, k: g.rounded_rectangle((0, 0, w * k - 1, h * k - 1), r * k, outline=255, width=stroke * k),
    )


# ---- icons ----------------------------------------------------------------------------------------------
# Each glyph is drawn with white (255) into an s x s mask; coordinates are fractions of s.

GlyphFn = Callable[[ImageDraw.ImageDraw, int], None]


def _polyline(*points: tuple[float, float], width: float = 0.1, closed: bool = False) -> GlyphFn:
    def draw(g: ImageDraw.ImageDraw, s: int) -> None:
        xy = [(x * s, y * s) for x, y in points]
        if closed:
            xy.append(xy[0])
        g.line(xy, fill=255, width=max(1, round(width * s)), joint="curve")
        for x, y in (xy[0], xy[-1]):  # round caps
            r = width * s / 2
            g.ellipse((x - r, y - r, x + r, y + r), fill=255)

    return draw


def _shapes(*parts: GlyphFn) -> GlyphFn:
    def draw(g: ImageDraw.ImageDraw, s: int) -> None:
        for part in parts:
            part(g, s)

    return draw


def _dot(x: float, y: float, r: float) -> GlyphFn:
    return lambda g, s: g.ellipse(((x - r) * s, (y - r) * s, (x + r) * s, (y + r) * s), fill=255)


def _ring_at(x: float, y: float, r: float, width: float = 0.1) -> GlyphFn:
    return lambda g, s: g.ellipse(
        ((x - r) * s, (y - r) * s, (x + r) * s, (y + r) * s), outline=255, width=max(1, round(width * s))
    )


def _polygon(*points: tuple[float, float]) -> GlyphFn:
    return lambda g, s: g.polygon([(x * s, y * s) for x, y in points], fill=255)


def _wifi(g: ImageDraw.ImageDraw, s: int) -> None:
    g.pieslice((0.0, 0.3 * s, s, 1.3 * s), 225, 315, fill=255)  # a full-signal wedge


def _gear(g: ImageDraw.ImageDraw, s: int) -> None:
    for i in range(8):
        a = math.pi * i / 4
        x, y = 0.5 + 0.36 * math.cos(a), 0.5 + 0.36 * math.sin(a)
        g.ellipse(((x - 0.1) * s, (y - 0.1) * s, (x + 0.1) * s, (y + 0.1) * s), fill=255)
    g.ellipse((0.16 * s, 0.16 * s, 0.84 * s, 0.84 * s), fill=255)
    g.ellipse((0.36 * s, 0.36 * s, 0.64 * s, 0.64 * s), fill=0)


def _star(g: ImageDraw.ImageDraw, s: int) -> None:
    points = []
    for i in range(10):
        a = -math.pi / 2 + math.pi * i / 5
        r = 0.48 if i % 2 == 0 else 0.2
        points.append(((0.5 + r * math.cos(a)) * s, (0.54 + r * math.sin(a)) * s))
    g.polygon(points, fill=255)


_GLYPHS: dict[str, GlyphFn] = {
    "←": _shapes(_polyline((0.2, 0.5), (0.83, 0.5)), _polyline((0.45, 0.22), (0.17, 0.5), (0.45, 0.78))),
    "→": _shapes(_polyline((0.17, 0.5), (0.8, 0.5)), _polyline((0.55, 0.22), (0.83, 0.5), (0.55, 0.78))),
    "↑": _shapes(_polyline((0.5, 0.83), (0.5, 0.2)), _polyline((0.22, 0.45), (0.5, 0.17), (0.78, 0.45))),
    "↓": _shapes(_polyline((0.5, 0.17), (0.5, 0.8)), _polyline((0.22, 0.55), (0.5, 0.83), (0.78, 0.55))),
    "‹": _polyline((0.62, 0.2), (0.35, 0.5), (0.62, 0.8)),
    "›": _polyline((0.38, 0.2), (0.65, 0.5), (0.38, 0.8)),
    "+": _shapes(_polyline((0.5, 0.18), (0.5, 0.82)), _polyline((0.18, 0.5), (0.82, 0.5))),
    "−": _polyline((0.18, 0.5), (0.82, 0.5)),
    "⋮": _shapes(_dot(0.5, 0.2, 0.09), _dot(0.5, 0.5, 0.09), _dot(0.5, 0.8, 0.09)),
    "⋯": _shapes(_dot(0.2, 0.5, 0.09), _dot(0.5, 0.5, 0.09), _dot(0.8, 0.5, 0.09)),
    "☰": _shapes(
        _polyline((0.15, 0.27), (0.85, 0.27)),
        _polyline((0.15, 0.5), (0.85, 0.5)),
        _polyline((0.15, 0.73), (0.85, 0.73)),
    ),
    "🔍": _shapes(_ring_at(0.42, 0.42, 0.27, 0.1), _polyline((0.62, 0.62), (0.85, 0.85), width=0.12)),
    "✓": _polyline((0.16, 0.52), (0.4, 0.75), (0.85, 0.28), width=0.12),
    "✕": _shapes(_polyline((0.22, 0.22), (0.78, 0.78)), _polyline((0.78, 0.22), (0.22, 0.78))),
    "◁": _polyline((0.72, 0.15), (0.22, 0.5), (0.72, 0.85), width=0.09, closed=True),
    "○": _ring_at(0.5, 0.5, 0.38, 0.09),
    "□": _polyline((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), width=0.09, closed=True),
    "⌫": _shapes(
        _polyline((0.3, 0.22), (0.9, 0.22), (0.9, 0.78), (0.3, 0.78), (0.06, 0.5), width=0.08, closed=True),
        _polyline((0.47, 0.37), (0.73, 0.63), width=0.08),
        _polyline((0.73, 0.37), (0.47, 0.63), width=0.08),
    ),
    "⏎": _shapes(_polyline((0.8, 0.2), (0.8, 0.62), (0.2, 0.62)), _polyline((0.4, 0.42), (0.2, 0.62), (0.4, 0.82))),
    "⇧": _polyline(
        (0.5, 0.12),
        (0.88, 0.5),
        (0.66, 0.5),
        (0.66, 0.85),
        (0.34, 0.85),
        (0.34, 0.5),
        (0.12, 0.5),
        width=0.08,
        closed=True,
    ),
    "▶": _polygon((0.25, 0.15), (0.85, 0.5), (0.25, 0.85)),
    "⏸": _shapes(
        _polygon((0.22, 0.18), (0.4, 0.18), (0.4, 0.82), (0.22, 0.82)),
        _polygon((0.6, 0.18), (0.78, 0.18), (0.78, 0.82), (0.6, 0.82)),
    ),
    "■": _polygon((0.22, 0.22), (0.78, 0.22), (0.78, 0.78), (0.22, 0.78)),
    "★": _star,
    "⚙": _gear,
    "✎": _shapes(_polyline((0.2, 0.8), (0.75, 0.25), width=0.16), _polygon((0.12, 0.88), (0.15, 0.72), (0.28, 0.85))),
    "🗑": _shapes(
        _polyline((0.15, 0.25), (0.85, 0.25), width=0.08),
        _polyline((0.4, 0.25), (0.4, 0.13), (0.6, 0.13), (0.6, 0.25), width=0.07),
        _polyline((0.25, 0.3), (0.3, 0.87), (0.7, 0.87), (0.75, 0.3), width=0.08),
    ),
    "↻": _shapes(
        lambda g, s: g.arc((0.18 * s, 0.18 * s, 0.82 * s, 0.82 * s), 300, 240, fill=255, width=round(0.1 * s)),
        _polygon((0.62, 0.05), (0.9, 0.25), (0.6, 0.38)),
    ),
    "☎": _shapes(_polyline((0.25, 0.15), (0.2, 0.35), (0.45, 0.72), (0.75, 0.85), (0.87, 0.7), width=0.16)),
    "✉": _shapes(
        _polyline((0.12, 0.25), (0.88, 0.25), (0.88, 0.75), (0.12, 0.75), width=0.08, closed=True),
        _polyline((0.14, 0.28), (0.5, 0.55), (0.86, 0.28), width=0.08),
    ),
    "◷": _shapes(_ring_at(0.5, 0.5, 0.4, 0.09), _polyline((0.5, 0.25), (0.5, 0.5), (0.68, 0.62), width=0.09)),
    "◍": _shapes(
        _ring_at(0.5, 0.5, 0.4, 0.08),
        lambda g, s: g.ellipse((0.3 * s, 0.1 * s, 0.7 * s, 0.9 * s), outline=255, width=round(0.07 * s)),
        _polyline((0.1, 0.5), (0.9, 0.5), width=0.07),
    ),
    "👤": _shapes(
        _dot(0.5, 0.3, 0.19),
        lambda g, s: g.pieslice((0.12 * s, 0.56 * s, 0.88 * s, 1.3 * s), 180, 360, fill=255),
    ),
    "⏰": _shapes(
        _ring_at(0.5, 0.55, 0.34, 0.09),
        _polyline((0.5, 0.36), (0.5, 0.56), (0.64, 0.66), width=0.08),
        _polyline((0.12, 0.22), (0.28, 0.1), width=0.09),
        _polyline((0.88, 0.22), (0.72, 0.1), width=0.09),
    ),
    "⏱": _shapes(
        _ring_at(0.5, 0.57, 0.34, 0.09),
        _polyline((0.5, 0.57), (0.5, 0.38), width=0.08),
        _polyline((0.4, 0.08), (0.6, 0.08), width=0.09),
    ),
    "wifi": _wifi,
    "airplane": _shapes(
        _polygon((0.45, 0.05), (0.55, 0.05), (0.58, 0.95), (0.42, 0.95)),
        _polygon((0.5, 0.35), (0.95, 0.6), (0.95, 0.68), (0.5, 0.55), (0.05, 0.68), (0.05, 0.6)),
        _polygon((0.5, 0.8), (0.7, 0.92), (0.7, 0.97), (0.3, 0.97), (0.3, 0.92)),
    ),
    "bluetooth": _polyline((0.25, 0.3), (0.72, 0.7), (0.5, 0.88), (0.5, 0.12), (0.72, 0.3), (0.25, 0.7), width=0.09),
}
_GLYPHS.update(
    {
        "×": _GLYPHS["✕"],
        "🔎": _GLYPHS["🔍"],
        "⌕": _GLYPHS["🔍"],
        "✔": _GLYPHS["✓"],
        "-": _GLYPHS["−"],
        "<": _GLYPHS["‹"],
        ">": _GLYPHS["›"],
        "↵": _GLYPHS["⏎"],
        "✏": _GLYPHS["✎"],
        "⟳": _GLYPHS["↻"],
        "❚❚": _GLYPHS["⏸"],
    }
)


@functools.lru_cache(maxsize=1024)
def _glyph_mask(glyph: str, size: int) -> Image.Image:
    return _supersampled(size, size, lambda g, k: _GLYPHS[glyph](g, size * k))


def _glyph(c: _Canvas, glyph: str, box: Box, size: int, colour: RGB, fallback: str = "") -> None:
    """A drawn icon centred in `box`.

    Glyphs without a drawn shape are drawn as text when the font has them, else as the first letter of
    `fallback` (e.g. the content-desc), so no empty "missing glyph" boxes appear.
    """
    left, top, right, bottom = box
    if size <= 0:
        return
    if glyph in _GLYPHS:
        _paste(c, _glyph_mask(glyph, size), (left + right - size) // 2, (top + bottom - size) // 2, colour)
        return
    text = glyph if glyph and all(_has_glyph(ch) for ch in _readable(glyph)) else fallback[:1].upper()
    _text(c, text, box, colour, round(size * 0.9), bold=True, align="center")


# ---- dispatch tables ------------------------------------------------------------------------------------

_BY_KIND: dict[str, Painter] = {
    "app_bar": _paint_bar,
    "tab_bar": _paint_tab_bar,
    "tab": _paint_tab,
    "list": _paint_list,
    "item": _paint_item,
    "header": _paint_header,
    "title": _paint_text,
    "app_title": _paint_text,
    "subtitle": _paint_subtitle,
    "trailing": _paint_trailing,
    "avatar": _paint_avatar,
    "primary": _paint_button,
    "secondary": _paint_button,
    "text_button": _paint_button,
    "chip": _paint_chip,
    "fab": _paint_fab,
    "app_icon": _paint_app_icon,
    "dialog": _paint_card,
    "system_dialog": _paint_card,
    "toast": _paint_toast,
    "status_bar": _paint_bar,
    "sb_wifi": _paint_status_icon,
    "sb_airplane": _paint_status_icon,
    "sb_bluetooth": _paint_status_icon,
    "sb_battery": _paint_battery,
    "nav_bar": _paint_bar,
    "nav_back": _paint_nav_button,
    "nav_home": _paint_nav_button,
    "nav_recent_apps": _paint_nav_button,
    "keyboard": _paint_keyboard,
    "key": _paint_key,
    "key_action": _paint_key,
    "keypad": _paint_keypad,
}
_BY_CLASS: dict[str, Painter] = {
    TEXT: _paint_text,
    BUTTON: _paint_button,
    IMAGE_BUTTON: _paint_icon,
    IMAGE: _paint_icon,
    EDIT: _paint_edit,
    SWITCH: _paint_switch,
    CHECKBOX: _paint_checkbox,
    RADIO: _paint_radio,
    SEEKBAR: _paint_seekbar,
    "android.widget.ToggleButton": _paint_chip,
}
# Kinds whose painter draws their children itself (the list re-lays-out clipped rows, the toast and
# header recolour their text).
_DRAWS_OWN_CHILDREN = frozenset({"list", "header", "toast"})
