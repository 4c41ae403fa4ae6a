"""View nodes, screen descriptions and the layout that turns a screen into positioned nodes.

Apps describe a screen as a `Screen` (title, rows, buttons, a dialog) using the row helpers below;
`layout_screen` places it on the display. The positioned tree is what is drawn, dumped as
uiautomator XML and hit-tested, so the three always agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Handler = Callable[[], None]

# Real Android class names, so XML consumers see what they would on a phone.
TEXT = "android.widget.TextView"
BUTTON = "android.widget.Button"
IMAGE_BUTTON = "android.widget.ImageButton"
IMAGE = "android.widget.ImageView"
EDIT = "android.widget.EditText"
SWITCH = "android.widget.Switch"
CHECKBOX = "android.widget.CheckBox"
RADIO = "android.widget.RadioButton"
SEEKBAR = "android.widget.SeekBar"
FRAME = "android.widget.FrameLayout"
LINEAR = "android.widget.LinearLayout"
VIEW_GROUP = "android.view.ViewGroup"
RECYCLER = "androidx.recyclerview.widget.RecyclerView"


@dataclass
class Node:
    """One view. Bounds are pixels (left, top, right, bottom), filled in by the layout."""

    cls: str = FRAME
    text: str = ""
    rid: str = ""  # resource-id; a short name ("title") is qualified with the app package at layout
    desc: str = ""  # content-desc
    package: str = ""
    bounds: tuple[int, int, int, int] = (0, 0, 0, 0)
    clickable: bool = False
    long_clickable: bool = False
    checkable: bool = False
    checked: bool = False
    enabled: bool = True
    focusable: bool = False
    focused: bool = False
    scrollable: bool = False
    password: bool = False
    selected: bool = False
    children: list[Node] = field(default_factory=list)
    on_click: Handler | None = None
    on_long_click: Handler | None = None
    # Layout and look; not part of the XML.
    kind: str = ""  # row kind (layout) or widget look (renderer)
    height: float = 0.0  # dp; rows only
    size: float = 16.0  # text size in sp
    bold: bool = False
    color: str = ""  # text colour override ("" = theme)
    bg: str = ""  # background fill ("" = none)
    align: str = "left"
    hint: str = ""  # EditText hint shown when empty
    progress: float = 0.0  # SeekBar position in [0, 1]
    field: str = ""  # EditText: the key of its text in the activity's fields
    on_progress: Callable[[float], None] | None = None  # SeekBar: called with the new position

    def walk(self):
        """Depth-first pre-order over this node and its descendants."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, *, rid: str = "", text: str = "", desc: str = "") -> Node | None:
        """First descendant whose resource-id ends with `rid` / whose text or content-desc equals."""
        for node in self.walk():
            if rid and not (node.rid == rid or node.rid.endswith("/" + rid)):
                continue
            if text and node.text != text:
                continue
            if desc and node.desc != desc:
                continue
            return node
        return None

    @property
    def center(self) -> tuple[int, int]:
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2


@dataclass
class Dialog:
    """A modal dialog owned by a screen. `buttons` are (label, handler) pairs, positive first."""

    title: str = ""
    message: str = ""
    rows: list[Node] = field(default_factory=list)  # list items, radio options or edit fields
    buttons: list[tuple[str, Handler]] = field(default_factory=list)
    on_cancel: Handler | None = None  # tap outside / BACK; None means not cancelable


@dataclass
class Screen:
    """What an app wants on the display; `layout_screen` decides where everything goes."""

    title: str = ""
    rows: list[Node] = field(default_factory=list)
    up: Handler | None = None  # show a navigate-up arrow that calls this
    actions: list[Node] = field(default_factory=list)  # app-bar icons, right-aligned
    fab: Node | None = None
    tabs: list[Node] = field(default_factory=list)  # bottom navigation items
    bottom: list[Node] = field(default_factory=list)  # rows pinned under the list, above the keyboard (a composer)
    dialog: Dialog | None = None
    app_bar: bool = True
    on_enter: Handler | None = None  # IME action (ENTER) in a focused field, e.g. run a search
    on_back: Handler | None = None  # BACK when no keyboard or dialog is up; None finishes the activity
    rid_prefix: str = ""  # package used to qualify short resource-ids


# ---- row helpers: apps build screens from these ---------------------------------------------------


def item(
    title: str,
    subtitle: str = "",
    *,
    on_click: Handler | None = None,
    on_long_click: Handler | None = None,
    trailing: Node | None = None,
    avatar: str = "",
    rid: str = "",
    title_rid: str = "android:id/title",
    subtitle_rid: str = "android:id/summary",
    enabled: bool = True,
) -> Node:
    """A list row: optional round avatar, a title, an optional subtitle and a trailing widget."""
    children = []
    if avatar:
        children.append(Node(cls=TEXT, text=avatar[:1].upper(), kind="avatar", size=18, rid="avatar"))
    children.append(Node(cls=TEXT, text=title, rid=title_rid, kind="title", size=17, enabled=enabled))
    if subtitle:
        children.append(Node(cls=TEXT, text=subtitle, rid=subtitle_rid, kind="subtitle", size=14))
    if trailing is not None:
        trailing.kind = trailing.kind or "trailing"
        children.append(trailing)
    return Node(
        cls=LINEAR,
        kind="item",
        height=72 if subtitle else 56,
        rid=rid,
        children=children,
        clickable=on_click is not None,
        focusable=on_click is not None,
        long_clickable=on_long_click is not None,
        on_click=on_click,
        on_long_click=on_long_click,
        enabled=enabled,
    )


def switch(checked: bool, rid: str = "android:id/switch_widget") -> Node:
    """A trailing on/off switch; the row it sits in handles the click, as in Android preferences."""
    return Node(cls=SWITCH, kind="switch", checkable=True, checked=checked, rid=rid, text="ON" if checked else "OFF")


def checkbox(checked: bool, rid: str = "android:id/checkbox") -> Node:
    return Node(cls=CHECKBOX, kind="checkbox", checkable=True, checked=checked, rid=rid)


def switch_item(title: str, checked: bool, on_toggle: Handler, subtitle: str = "", rid: str = "") -> Node:
    """A preference row with a switch; tapping anywhere on it toggles."""
    row = item(title, subtitle, on_click=on_toggle, trailing=switch(checked), rid=rid)
    row.checkable, row.checked = True, checked
    return row


def header(text: str, rid: str = "android:id/title") -> Node:
    return Node(
        cls=LINEAR,
        kind="header",
        height=48,
        children=[Node(cls=TEXT, text=text, rid=rid, size=14, bold=True)],
    )


def edit(field_key: str, value: str, hint: str, rid: str, *, password: bool = False, focused: bool = False) -> Node:
    """An EditText bound to the activity field `field_key`; the phone focuses it on tap."""
    box = Node(
        cls=EDIT,
        kind="edit",
        text=value,
        hint=hint,
        rid=rid,
        field=field_key,
        clickable=True,
        focusable=True,
        long_clickable=True,
        focused=focused,
        password=password,
        size=17,
    )
    return Node(cls=LINEAR, kind="edit_row", height=64, children=[box])


def button(text: str, on_click: Handler, rid: str = "", *, primary: bool = True, enabled: bool = True) -> Node:
    btn = Node(
        cls=BUTTON,
        text=text,
        rid=rid,
        clickable=enabled,
        focusable=True,
        on_click=on_click if enabled else None,
        kind="primary" if primary else "secondary",
        enabled=enabled,
        size=16,
        bold=True,
    )
    return Node(cls=LINEAR, kind="button_row", height=64, children=[btn])


def buttons(*pairs: tuple[str, Handler, str]) -> Node:
    """A row of equal-width buttons from (label, handler, resource-id) triples."""
    children = [
        Node(
            cls=BUTTON,
            text=t,
            rid=r,
            clickable=True,
            focusable=True,
            on_click=h,
            kind="secondary",
            size=16,
            bold=True,
        )
        for t, h, r in pairs
    ]
    return Node(cls=LINEAR, kind="button_row", height=64, children=children)


def text(
    value: str, *, size: float = 16, bold: bool = False, rid: str = "", color: str = "", align: str = "left"
) -> Node:
    """A paragraph; its height grows with the number of wrapped lines."""
    return Node(
        cls=LINEAR,
        kind="text_row",
        children=[Node(cls=TEXT, text=value, rid=rid, size=size, bold=bold, color=color, align=align)],
    )


def big_text(value: str, rid: str = "", size: float = 56) -> Node:
    """A large centred read-out (the timer and stopwatch displays)."""
    return Node(
        cls=LINEAR,
        kind="text_row",
        height=size * 2.2,
        children=[Node(cls=TEXT, text=value, rid=rid, size=size, align="center")],
    )


def slider(title: str, progress: float, on_progress: Callable[[float], None], rid: str = "android:id/seekbar") -> Node:
    bar = Node(
        cls=SEEKBAR,
        kind="seekbar",
        rid=rid,
        progress=progress,
        on_progress=on_progress,
        focusable=True,
        clickable=True,
        scrollable=False,
    )
    bar.text = f"{round(progress * 100)}"
    return Node(
        cls=LINEAR,
        kind="slider_row",
        height=88,
        children=[Node(cls=TEXT, text=title, rid="android:id/title", size=17), bar],
    )


def chips(options: list[tuple[str, bool, Handler]], rid: str = "") -> Node:
    """Small toggle chips in one row (e.g. alarm repeat days): (label, selected, handler)."""
    children = [
        Node(
            cls="android.widget.ToggleButton",
            text=label,
            kind="chip",
            checkable=True,
            checked=sel,
            selected=sel,
            clickable=True,
            on_click=h,
            rid=rid,
            size=14,
            align="center",
        )
        for label, sel, h in options
    ]
    return Node(cls=LINEAR, kind="chips_row", height=56, children=children)


def grid(cells: list[Node], columns: int = 4, cell_height: float = 104) -> Node:
    """Launcher-style icon grid: each cell is a Node with `text` (label) and a click handler."""
    rows = -(-len(cells) // columns) if cells else 0
    return Node(cls=VIEW_GROUP, kind="grid", height=rows * cell_height, children=cells, progress=columns)


def icon_button(desc: str, on_click: Handler, rid: str = "", glyph: str = "") -> Node:
    """An app-bar or FAB icon; `glyph` is what the renderer draws, `desc` the content-desc."""
    return Node(
        cls=IMAGE_BUTTON,
        desc=desc,
        rid=rid,
        clickable=True,
        focusable=True,
        on_click=on_click,
        text="",
        hint=glyph or desc[:1],
    )


def spacer(height: float = 16) -> Node:
    return Node(cls=VIEW_GROUP, kind="spacer", height=height)


# ---- layout ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    """Display geometry; `dp(x)` converts density-independent pixels to device pixels."""

    width: int
    height: int
    density: int  # dpi

    def dp(self, value: float) -> int:
        return round(value * self.density / 160)

    @property
    def status_bar(self) -> int:
        return self.dp(24)

    @property
    def nav_bar(self) -> int:
        return self.dp(48)

    @property
    def app_bar(self) -> int:
        return self.dp(64)

    @property
    def keyboard(self) -> int:
        return self.dp(268)

    @property
    def tab_bar(self) -> int:
        return self.dp(72)


def qualify(rid: str, package: str) -> str:
    if not rid or ":" in rid:
        return rid
    return f"{package}:id/{rid}"


def _text_lines(text: str, size_px: int, width_px: int) -> int:
    """Wrapped line count for `text`, using the renderer's average glyph width (0.52 em)."""
    per_line = max(1, int(width_px / (0.52 * size_px)))
    return sum(max(1, -(-len(line) // per_line)) for line in text.split("\n"))


def row_height(row: Node, m: Metrics, width: int) -> int:
    if row.kind == "text_row" and not row.height:
        child = row.children[0]
        size_px = m.dp(child.size)
        lines = _text_lines(child.text, size_px, width - m.dp(32))
        return lines * round(size_px * 1.4) + m.dp(16)
    return m.dp(row.height)


def place_row(row: Node, m: Metrics, left: int, top: int, right: int, height: int) -> None:
    """Position a row and its children inside (left, top, right, top + height)."""
    row.bounds = (left, top, right, top + height)
    pad = m.dp(16)
    bottom = top + height
    kids = row.children
    if row.kind == "item":
        x = left + pad
        texts = [k for k in kids if k.kind in ("title", "subtitle")]
        for k in kids:
            if k.kind == "avatar":
                size = m.dp(40)
                k.bounds = (x, top + (height - size) // 2, x + size, top + (height + size) // 2)
                x += size + pad
        trailing = [k for k in kids if k.kind not in ("title", "subtitle", "avatar")]
        text_right = right - pad
        for k in trailing:
            w = m.dp(56) if k.cls in (SWITCH, CHECKBOX, RADIO, IMAGE_BUTTON) else m.dp(96)
            k.bounds = (
                right - pad - w,
                top + (height - m.dp(40)) // 2,
                right - pad,
                top + (height + m.dp(40)) // 2,
            )
            text_right = k.bounds[0] - m.dp(8)
        line = m.dp(24)
        y = top + (height - line * len(texts)) // 2
        for k in texts:
            k.bounds = (x, y, text_right, y + line)
            y += line
    elif row.kind == "grid":
        columns = int(row.progress) or 4
        cell_w = (right - left) // columns
        cell_h = m.dp(104)
        for i, k in enumerate(kids):
            r, c = divmod(i, columns)
            k.bounds = (left + c * cell_w, top + r * cell_h, left + (c + 1) * cell_w, top + (r + 1) * cell_h)
    elif row.kind == "slider_row":
        kids[0].bounds = (left + pad, top + m.dp(8), right - pad, top + m.dp(40))
        kids[1].bounds = (left + pad, top + m.dp(44), right - pad, bottom - m.dp(8))
    elif row.kind in ("button_row", "chips_row"):
        gap = m.dp(8)
        n = max(1, len(kids))
        w = (right - left - 2 * pad - (n - 1) * gap) // n
        for i, k in enumerate(kids):
            x = left + pad + i * (w + gap)
            k.bounds = (x, top + m.dp(8), x + w, bottom - m.dp(8))
    else:  # header, edit_row, text_row and anything with a single child spanning the row
        for k in kids:
            k.bounds = (left + pad, top + m.dp(4), right - pad, bottom - m.dp(4))


def _clip(node: Node, top: int, bottom: int) -> None:
    for n in node.walk():
        left, t, right, b = n.bounds
        n.bounds = (left, max(t, top), right, max(min(b, bottom), max(t, top)))


def layout_screen(screen: Screen, m: Metrics, package: str, scroll: int, keyboard: bool) -> tuple[Node, int]:
    """Lay out an app window covering the display; returns (root, clamped scroll offset).

    Rows scrolled fully out of the viewport are left out of the tree, as a RecyclerView recycles them.
    """
    root = Node(cls=FRAME, package=package, bounds=(0, 0, m.width, m.height))
    content = Node(cls=LINEAR, rid="android:id/content", bounds=(0, m.status_bar, m.width, m.height - m.nav_bar))
    root.children.append(content)
    top = m.status_bar
    if screen.app_bar:
        bar = Node(cls=VIEW_GROUP, rid="toolbar", kind="app_bar", bounds=(0, top, m.width, top + m.app_bar))
        x = m.dp(4)
        if screen.up is not None:
            up = icon_button("Navigate up", screen.up, glyph="←")
            up.bounds = (x, top + m.dp(8), x + m.dp(48), top + m.dp(56))
            bar.children.append(up)
            x += m.dp(52)
        else:
            x = m.dp(16)
        title = Node(
            cls=TEXT,
            text=screen.title,
            kind="app_title",
            size=22,
            bounds=(x, top + m.dp(12), m.width - m.dp(16), top + m.dp(52)),
        )
        bar.children.append(title)
        right = m.width - m.dp(4)
        for action in reversed(screen.actions):
            width = m.dp(48) if action.cls == IMAGE_BUTTON else m.dp(88)
            action.bounds = (right - width, top + m.dp(8), right, top + m.dp(56))
            right -= width + m.dp(4)
            bar.children.append(action)
        if screen.actions:
            title.bounds = (title.bounds[0], title.bounds[1], right, title.bounds[3])
        content.children.append(bar)
        top += m.app_bar

    bottom = m.height - m.nav_bar - (m.keyboard if keyboard else 0)
    tabs_top = bottom
    if screen.tabs and not keyboard:
        tabs_top = bottom - m.tab_bar
    pinned = [(row, row_height(row, m, m.width)) for row in screen.bottom]
    list_bottom = max(top, tabs_top - sum(h for _, h in pinned))
    viewport = Node(cls=RECYCLER, rid="list", kind="list", bounds=(0, top, m.width, list_bottom))
    heights = [row_height(r, m, m.width) for r in screen.rows]
    total = sum(heights)
    max_scroll = max(0, total - (list_bottom - top))
    scroll = min(max(scroll, 0), max_scroll)
    viewport.scrollable = max_scroll > 0
    y = top - scroll
    for row, h in zip(screen.rows, heights, strict=True):
        if y + h > top and y < list_bottom:
            place_row(row, m, 0, y, m.width, h)
            if y < top or y + h > list_bottom:
                _clip(row, top, list_bottom)
            viewport.children.append(row)
        y += h
    content.children.append(viewport)
    y = list_bottom
    for row, h in pinned:
        place_row(row, m, 0, y, m.width, h)
        content.children.append(row)
        y += h

    if screen.tabs and not keyboard:
        bar = Node(cls=FRAME, rid="bottom_navigation", kind="tab_bar", bounds=(0, tabs_top, m.width, bottom))
        w = m.width // len(screen.tabs)
        for i, tab in enumerate(screen.tabs):
            tab.bounds = (i * w, tabs_top, (i + 1) * w, bottom)
            tab.kind = tab.kind or "tab"
            bar.children.append(tab)
        content.children.append(bar)
    if screen.fab is not None:
        size = m.dp(56)
        fx, fy = m.width - m.dp(16) - size, tabs_top - m.dp(16) - size
        screen.fab.bounds = (fx, fy, fx + size, fy + size)
        screen.fab.kind = "fab"
        content.children.append(screen.fab)

    for node in root.walk():
        node.package = package
        node.rid = qualify(node.rid, screen.rid_prefix or package)
    return root, scroll


def layout_dialog(dialog: Dialog, m: Metrics, package: str, *, keyboard: bool = False) -> Node:
    """A centred dialog card; its buttons use the framework ids button1 (positive), button2, button3."""
    width = m.width - m.dp(64)
    left = (m.width - width) // 2
    inner_w = width - m.dp(48)
    parts: list[tuple[Node, int]] = []
    if dialog.title:
        parts.append((Node(cls=TEXT, text=dialog.title, rid="android:id/alertTitle", size=20, bold=True), m.dp(48)))
    if dialog.message:
        h = _text_lines(dialog.message, m.dp(16), inner_w) * round(m.dp(16) * 1.4) + m.dp(12)
        parts.append((Node(cls=TEXT, text=dialog.message, rid="android:id/message", size=16), h))
    rows_h = [row_height(r, m, width) for r in dialog.rows]
    height = m.dp(24) + sum(h for _, h in parts) + sum(rows_h) + (m.dp(64) if dialog.buttons else m.dp(8))
    area_top, area_bottom = m.status_bar, m.height - m.nav_bar - (m.keyboard if keyboard else 0)
    top = max(area_top, area_top + (area_bottom - area_top - height) // 2)  # centred above the keyboard
    card = Node(
        cls=FRAME,
        rid="android:id/parentPanel",
        kind="dialog",
        package=package,
        bounds=(left, top, left + width, top + height),
    )
    y = top + m.dp(20)
    for node, h in parts:
        node.bounds = (left + m.dp(24), y, left + width - m.dp(24), y + h)
        card.children.append(node)
        y += h
    for row, h in zip(dialog.rows, rows_h, strict=True):
        place_row(row, m, left + m.dp(8), y, left + width - m.dp(8), h)
        card.children.append(row)
        y += h
    ids = ["android:id/button1", "android:id/button2", "android:id/button3"]
    x = left + width - m.dp(16)
    for (label, handler), rid in zip(dialog.buttons, ids, strict=False):
        w = max(m.dp(72), m.dp(12) * len(label) + m.dp(24))
        btn = Node(
            cls=BUTTON,
            text=label,
            rid=rid,
            clickable=True,
            focusable=True,
            on_click=handler,
            kind="text_button",
            size=15,
            bold=True,
        )
        btn.bounds = (x - w, y + m.dp(8), x, y + m.dp(56))
        card.children.append(btn)
        x -= w + m.dp(8)
    for node in card.walk():
        node.package = package
        node.rid = qualify(node.rid, package)
    return card
