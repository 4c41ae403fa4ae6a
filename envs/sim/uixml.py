"""The uiautomator XML dump of a phone's windows, attribute for attribute as `uiautomator dump` writes it."""

from __future__ import annotations

import re
from xml.sax.saxutils import quoteattr

from droidrl.envs.sim.ui import Node

# Attribute order of a real dump (UiAutomator's AccessibilityNodeInfoDumper).
_BOOLS = (
    ("checkable", "checkable"),
    ("checked", "checked"),
    ("clickable", "clickable"),
    ("enabled", "enabled"),
    ("focusable", "focusable"),
    ("focused", "focused"),
    ("scrollable", "scrollable"),
    ("long-clickable", "long_clickable"),
    ("password", "password"),
    ("selected", "selected"),
)


# XML 1.0 forbids these; uiautomator replaces them with "." (stripInvalidXMLChars) and so do we.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _clean(value: str) -> str:
    return _INVALID_XML.sub(".", value)


def _visible_text(node: Node) -> str:
    # An empty EditText reports its hint as text (API 26+), and password text is masked.
    if node.cls.endswith("EditText"):
        if not node.text:
            return node.hint
        if node.password:
            return "•" * len(node.text)
    return node.text


def _write(node: Node, index: int, depth: int, out: list[str]) -> None:
    left, top, right, bottom = node.bounds
    attrs = [
        f"index={quoteattr(str(index))}",
        f"text={quoteattr(_clean(_visible_text(node)))}",
        f"resource-id={quoteattr(node.rid)}",
        f"class={quoteattr(node.cls)}",
        f"package={quoteattr(node.package)}",
        f"content-desc={quoteattr(_clean(node.desc))}",
    ]
    attrs += [f'{name}="{str(getattr(node, attr)).lower()}"' for name, attr in _BOOLS]
    attrs.append(f'bounds="[{left},{top}][{right},{bottom}]"')
    pad = "  " * depth
    if not node.children:
        out.append(f"{pad}<node {' '.join(attrs)} />")
        return
    out.append(f"{pad}<node {' '.join(attrs)}>")
    for i, child in enumerate(node.children):
        _write(child, i, depth + 1, out)
    out.append(f"{pad}</node>")


def hierarchy_xml(windows: list[Node], rotation: int = 0) -> str:
    """All windows as one `<hierarchy>`: one root `<node>` per window, bottom to top."""
    out = ["<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>", f'<hierarchy rotation="{rotation}">']
    for i, window in enumerate(windows):
        _write(window, i, 1, out)
    out.append("</hierarchy>")
    return "\n".join(out) + "\n"
