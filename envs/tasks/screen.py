"""Read a `uiautomator dump` into nodes that experts and checkers can search, and aim actions at them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from droidrl.envs.actions import LongPress, Swipe, Tap, Type, to_grid
from droidrl.envs.device import Device

_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")


@dataclass(frozen=True)
class UiNode:
    """One node of the dump, with the attributes experts and checkers look at."""

    text: str
    rid: str
    desc: str
    cls: str
    package: str
    bounds: tuple[int, int, int, int]
    checked: bool
    checkable: bool
    clickable: bool
    enabled: bool
    focused: bool
    selected: bool
    scrollable: bool

    @property
    def center(self) -> tuple[int, int]:
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2

    @property
    def visible(self) -> bool:
        left, top, right, bottom = self.bounds
        return right > left and bottom > top


def _node(element: ET.Element) -> UiNode:
    match = _BOUNDS.fullmatch(element.get("bounds", ""))
    bounds = tuple(int(v) for v in match.groups()) if match else (0, 0, 0, 0)
    flag = element.get
    return UiNode(
        text=flag("text", ""),
        rid=flag("resource-id", ""),
        desc=flag("content-desc", ""),
        cls=flag("class", ""),
        package=flag("package", ""),
        bounds=bounds,  # type: ignore[arg-type]
        checked=flag("checked") == "true",
        checkable=flag("checkable") == "true",
        clickable=flag("clickable") == "true",
        enabled=flag("enabled") == "true",
        focused=flag("focused") == "true",
        selected=flag("selected") == "true",
        scrollable=flag("scrollable") == "true",
    )


class UiView:
    """The nodes of one screen in document order, plus the screen size for the 0-999 grid."""

    def __init__(self, xml: str, size: tuple[int, int], app: str = "") -> None:
        self.size = size
        self.app = app
        root = ET.fromstring(xml.encode("utf-8"))
        self.nodes = [_node(element) for element in root.iter("node")]

    @classmethod
    def of(cls, device: Device) -> UiView:
        """The device's current screen."""
        return cls(device.ui_xml(), device.size, device.current_app())

    def find_all(
        self,
        text: str | None = None,
        rid: str | None = None,
        desc: str | None = None,
        cls: str | None = None,
        contains: str | None = None,
    ) -> list[UiNode]:
        """Visible nodes matching every given attribute exactly (`rid` may be the short id after ':id/').

        `contains` matches a substring of the text or the content-desc, case-insensitively.
        """
        found = []
        for node in self.nodes:
            if not node.visible:
                continue
            if text is not None and node.text != text:
                continue
            if desc is not None and node.desc != desc:
                continue
            if cls is not None and not node.cls.endswith(cls):
                continue
            if rid is not None and node.rid != rid and not node.rid.endswith(f":id/{rid}"):
                continue
            if contains is not None and contains.lower() not in f"{node.text}\n{node.desc}".lower():
                continue
            found.append(node)
        return found

    def find(self, **match: str) -> UiNode | None:
        """The first visible node matching (see `find_all`), or None."""
        nodes = self.find_all(**match)
        return nodes[0] if nodes else None

    def has(self, **match: str) -> bool:
        return self.find(**match) is not None

    def texts(self) -> list[str]:
        """Every non-empty text on screen, in document order."""
        return [node.text for node in self.nodes if node.text and node.visible]

    def focused_field(self) -> UiNode | None:
        """The EditText that holds keyboard focus, if any."""
        for node in self.nodes:
            if node.focused and node.cls.endswith("EditText"):
                return node
        return None

    @property
    def keyboard_open(self) -> bool:
        return any(node.package == "com.google.android.inputmethod.latin" for node in self.nodes)

    def grid(self, node: UiNode) -> tuple[int, int]:
        """The node's centre on the 0-999 grid, in a cell whose pixel lands inside the node."""
        return to_grid(node.center, *self.size)

    def tap(self, node: UiNode) -> Tap:
        return Tap(self.grid(node))

    def long_press(self, node: UiNode) -> LongPress:
        return LongPress(self.grid(node))

    def fill(self, rid: str, value: str) -> Tap | Type | Swipe | None:
        """The next step to make the field `rid` hold `value`: scroll to it, tap it, type; None once it does."""
        field = self.find(rid=rid)
        if field is None:
            return self.scroll_down()
        if field.text == value:
            return None
        focused = self.focused_field()
        if focused is None or focused.rid != field.rid:
            return self.tap(field)
        return Type(value)

    def scroll_down(self) -> Swipe:
        """A finger swipe up the middle of the screen, which shows what is below."""
        return Swipe((500, 700), (500, 300))

    def scroll_up(self) -> Swipe:
        return Swipe((500, 300), (500, 700))
