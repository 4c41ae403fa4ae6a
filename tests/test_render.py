"""The screenshot renderer, on window lists built by hand from ui.py's helpers (no apps involved)."""

import io

import numpy as np
import pytest
from PIL import Image

from droidrl.envs.sim import render
from droidrl.envs.sim.ui import (
    BUTTON,
    FRAME,
    IMAGE,
    IMAGE_BUTTON,
    RADIO,
    TEXT,
    Dialog,
    Metrics,
    Node,
    Screen,
    button,
    checkbox,
    chips,
    edit,
    grid,
    header,
    icon_button,
    item,
    layout_dialog,
    layout_screen,
    slider,
    switch_item,
    text,
)

M = Metrics(1080, 2400, 420)


def noop() -> None:
    pass


def status_bar(m: Metrics) -> Node:
    bar = Node(cls=FRAME, kind="status_bar", bounds=(0, 0, m.width, m.status_bar))
    bar.children = [
        Node(cls=TEXT, text="15:34", size=14, bounds=(m.dp(16), 0, m.dp(96), m.status_bar)),
        Node(
            cls=IMAGE,
            kind="sb_wifi",
            hint="wifi",
            bounds=(m.width - m.dp(90), 0, m.width - m.dp(68), m.status_bar),
        ),
        Node(
            cls=IMAGE,
            kind="sb_battery",
            hint="battery",
            bounds=(m.width - m.dp(60), 0, m.width - m.dp(16), m.status_bar),
        ),
    ]
    return bar


def nav_bar(m: Metrics) -> Node:
    top = m.height - m.nav_bar
    bar = Node(cls=FRAME, kind="nav_bar", bounds=(0, top, m.width, m.height))
    for i, kind in enumerate(["nav_back", "nav_home", "nav_recent_apps"]):
        cx = (i + 1) * m.width // 4
        bar.children.append(Node(cls=IMAGE_BUTTON, kind=kind, bounds=(cx - m.dp(36), top, cx + m.dp(36), m.height)))
    return bar


def windows_for(screen: Screen, m: Metrics = M, *, scroll: int = 0, keyboard: bool = False) -> list[Node]:
    root, _ = layout_screen(screen, m, "org.example", scroll, keyboard)
    return [root, status_bar(m), nav_bar(m)]


def settings_screen(wifi: bool = True, title: str = "Network & internet") -> Screen:
    rows = [header("Connections")]
    rows.append(item(title, "Mobile, Wi‑Fi, hotspot", on_click=noop, rid="network"))
    rows.append(switch_item("Wi-Fi", wifi, noop, rid="wifi"))
    rows += [item(f"Setting {i}", f"Summary {i}", on_click=noop) for i in range(20)]
    return Screen(title="Settings", rows=rows, up=noop)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def node_with(windows: list[Node], **attrs: object) -> Node:
    for window in windows:
        for node in window.walk():
            if all(getattr(node, k) == v for k, v in attrs.items()):
                return node
    raise LookupError(attrs)


def test_screenshot_is_rgb_at_display_size() -> None:
    image = render.screenshot(windows_for(settings_screen()), M, dark=False)
    assert image.mode == "RGB"
    assert image.size == (1080, 2400)
    small = Metrics(480, 800, 160)
    assert render.screenshot(windows_for(settings_screen(), small), small, dark=True).size == (480, 800)


def test_same_windows_give_identical_bytes_with_warm_or_cold_caches() -> None:
    first = render.png_bytes(render.screenshot(windows_for(settings_screen()), M, dark=False))
    for cached in vars(render).values():
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
    second = render.png_bytes(render.screenshot(windows_for(settings_screen()), M, dark=False))
    assert first == second


def test_png_round_trips_through_pil() -> None:
    image = render.screenshot(windows_for(settings_screen()), M, dark=False)
    decoded = Image.open(io.BytesIO(render.png_bytes(image)))
    assert decoded.format == "PNG" and decoded.mode == "RGB" and decoded.size == image.size
    assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_switch_state_changes_only_pixels_inside_the_switch() -> None:
    on_windows = windows_for(settings_screen(wifi=True))
    on = pixels(render.screenshot(on_windows, M, dark=False))
    off = pixels(render.screenshot(windows_for(settings_screen(wifi=False)), M, dark=False))
    changed = np.argwhere((on != off).any(axis=2))
    assert len(changed) > 500
    left, top, right, bottom = node_with(on_windows, kind="switch").bounds
    assert changed[:, 0].min() >= top and changed[:, 0].max() < bottom
    assert changed[:, 1].min() >= left and changed[:, 1].max() < right


def test_dark_theme_changes_the_background() -> None:
    screen = Screen(title="Empty", rows=[text("Hello")])
    light = render.screenshot(windows_for(screen), M, dark=False)
    dark = render.screenshot(windows_for(screen), M, dark=True)
    empty_spot = (M.width // 2, M.height // 2)
    assert light.getpixel(empty_spot) == render.LIGHT.background
    assert dark.getpixel(empty_spot) == render.DARK.background


def test_text_is_drawn_inside_its_bounds_and_clipped_to_them() -> None:
    long_title = "A very long preference title that cannot possibly fit on one line of the phone screen"
    windows = windows_for(settings_screen(title=long_title))
    image = pixels(render.screenshot(windows, M, dark=False))
    title = node_with(windows, text=long_title)
    left, top, right, bottom = title.bounds
    inked = (image[top:bottom] != render.LIGHT.background).any(axis=2)
    assert inked[:, left:right].sum() > 1000
    assert not inked[:, right:].any()  # ellipsized, not spilling over the row's padding


def test_accented_text_draws_like_its_base_letters() -> None:
    """The bundled font lacks accented letters; they are drawn without accents instead of as boxes."""

    def draw(title: str) -> np.ndarray:
        return pixels(render.screenshot(windows_for(Screen(title=title, rows=[])), M, dark=False))

    assert np.array_equal(draw("Café"), draw("Cafe"))
    assert not np.array_equal(draw("Café"), draw("Caf"))


def test_scrolling_shifts_rows_cut_by_the_viewport_without_squashing_them() -> None:
    """Rows half under the app bar are drawn whole and covered, so a scroll is a pure shift."""
    shift = 37
    still = pixels(render.screenshot(windows_for(settings_screen()), M, dark=False))
    scrolled = pixels(render.screenshot(windows_for(settings_screen(), scroll=shift), M, dark=False))
    top, bottom = M.status_bar + M.app_bar, M.height - M.nav_bar
    assert np.array_equal(scrolled[top : bottom - shift], still[top + shift : bottom])


def test_dialog_dims_what_is_below_it() -> None:
    screen = Screen(title="Alarm", rows=[text("Hello")])
    plain = render.screenshot(windows_for(screen), M, dark=False)
    card = layout_dialog(
        Dialog(title="Delete?", message="Gone for good.", buttons=[("Delete", noop)]), M, "org.example"
    )
    dimmed = render.screenshot([*windows_for(screen), card], M, dark=False)
    corner = (M.width // 2, card.bounds[3] + M.dp(100))
    assert sum(dimmed.getpixel(corner)) < sum(plain.getpixel(corner)) * 0.7
    inside = (card.bounds[0] + M.dp(8), card.center[1])
    assert dimmed.getpixel(inside) == render.LIGHT.card


def test_every_widget_kind_draws_deterministically() -> None:
    """Smoke test over all the painters: app bar, tabs, FAB, rows, dialog, toast and keyboard."""
    cells = [
        Node(cls=TEXT, text=name, kind="app_icon", bg="#1a73e8", hint=glyph)
        for name, glyph in [("Clock", "◷"), ("Mail", "✉"), ("Odd", "☃")]
    ]
    tabs = [Node(cls=TEXT, text="Alarm", hint="⏰", selected=True), Node(cls=TEXT, text="Timer")]
    rows = [
        item("Zoe", "Avatar row", avatar="Zoe", trailing=checkbox(True)),
        item("Radio", trailing=Node(cls=RADIO, checkable=True, checked=True)),
        item("Value", trailing=Node(cls=TEXT, text="On", size=14)),
        slider("Volume", 0.3, lambda _: None),
        chips([("Mon", True, noop), ("Tue", False, noop)]),
        edit("q", "", "Search", "search"),
        edit("p", "hunter2", "Password", "pw", password=True, focused=True),
        button("Save", noop),
        button("Cancel", noop, primary=False),
        Node(
            cls="android.widget.LinearLayout",
            kind="button_row",
            height=64,
            children=[Node(cls=BUTTON, kind="keypad", text="7", size=28)],
        ),
        text("Paragraph " * 40),
        grid(cells),
    ]
    screen = Screen(
        title="All",
        rows=rows,
        up=noop,
        tabs=tabs,
        actions=[icon_button("More", noop, glyph="⋮")],
        fab=icon_button("Add", noop, glyph="+"),
    )
    windows = windows_for(screen, keyboard=True)
    toast = Node(cls="android.widget.Toast", kind="toast", bounds=(300, 1900, 780, 2010))
    toast.children.append(Node(cls=TEXT, text="Saved", size=14, bounds=toast.bounds))
    keyboard = Node(cls=FRAME, kind="keyboard", bounds=(0, 1600, 1080, 2274))
    keyboard.children = [
        Node(cls=BUTTON, kind="key", text="q", size=22, bounds=(0, 1610, 108, 1740)),
        Node(cls=BUTTON, kind="key_action", text="⌫", bounds=(108, 1610, 270, 1740)),
        Node(cls=BUTTON, kind="key_action", text=" ", bounds=(270, 1610, 700, 1740)),
    ]
    windows += [
        layout_dialog(Dialog(title="Pick", rows=[item("One")], buttons=[("OK", noop)]), M, "x"),
        toast,
        keyboard,
    ]
    windows[-3].kind = "system_dialog"
    first = render.screenshot(windows, M, dark=True)
    assert first.tobytes() == render.screenshot(windows, M, dark=True).tobytes()


@pytest.mark.parametrize("glyph", ["←", "+", "⋮", "🔍", "◁", "○", "□", "⌫", "⏎", "✓"])
def test_icon_glyphs_are_drawn_as_shapes(glyph: str) -> None:
    button_node = Node(cls=IMAGE_BUTTON, hint=glyph, bounds=(0, 0, 200, 200))
    image = pixels(render.screenshot([button_node], Metrics(200, 200, 420), dark=False))
    assert (image != render.LIGHT.background).any(axis=2).sum() > 100
