"""Conformance checks for any `Device` (SimDevice, AdbDevice, a new backend); typed errors, no asserts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from droidrl.envs.device import Device
from droidrl.envs.errors import DeviceContractError

CHECK_SNAPSHOT = "droidrl-check"
CHECK_FILE = "/data/local/tmp/droidrl-check.bin"
_PAYLOAD = bytes(range(256)) * 3 + "ü中😀\r\n\0".encode()  # every byte value, then multi-byte text


def check_device(device: Device, *, snapshots: bool = True) -> None:
    """Check size, screenshot, UI XML, push/pull and (if `snapshots`) a snapshot round trip.

    It leaves a snapshot named `droidrl-check` behind and ends in that snapshot's state.

    Raises:
        DeviceContractError: the first rule the device breaks, with what it returned instead.
    """
    width, height = check_size(device)
    check_screenshot(device, width, height)
    check_ui_xml(device, width, height)
    check_push_pull(device)
    if snapshots:
        check_snapshot_round_trip(device)
    device.shell(f"rm -f {CHECK_FILE}")


def check_size(device: Device) -> tuple[int, int]:
    size = device.size
    if not (
        isinstance(size, tuple)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise DeviceContractError(f"size must be (width, height) as two positive ints, got {size!r}")
    return size


def check_screenshot(device: Device, width: int, height: int) -> None:
    image = device.screenshot()
    if not isinstance(image, np.ndarray):
        raise DeviceContractError(f"screenshot() must return a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise DeviceContractError(
            f"screenshot() returned dtype {image.dtype}; the Device contract needs uint8 RGB "
            "(convert with np.asarray(image, dtype=np.uint8))"
        )
    if image.shape != (height, width, 3):
        raise DeviceContractError(
            f"screenshot() has shape {image.shape}; size is {width}x{height}, so it must be "
            f"({height}, {width}, 3) (height, width, RGB)"
        )


def check_ui_xml(device: Device, width: int, height: int) -> None:
    text = device.ui_xml()
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as err:
        raise DeviceContractError(f"ui_xml() is not well-formed XML: {err}") from None
    if root.tag != "hierarchy" or len(root) == 0:
        raise DeviceContractError(
            f"ui_xml() must be a uiautomator dump: a <hierarchy> of window <node>s, got <{root.tag}> "
            f"with {len(root)} children"
        )
    boxes = [_bounds(node.get("bounds", "")) for node in root]
    if None in boxes:
        bad = next(node.get("bounds") for node, box in zip(root, boxes, strict=True) if box is None)
        raise DeviceContractError(f"ui_xml() has a window with bounds {bad!r}; expected '[left,top][right,bottom]'")
    cover = (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
    if cover != (0, 0, width, height):
        raise DeviceContractError(
            f"ui_xml() windows cover [{cover[0]},{cover[1]}][{cover[2]},{cover[3]}]; size is "
            f"{width}x{height}, so they must cover [0,0][{width},{height}]"
        )


def check_push_pull(device: Device) -> None:
    device.push(CHECK_FILE, _PAYLOAD)
    back = device.pull(CHECK_FILE)
    if back != _PAYLOAD:
        raise DeviceContractError(
            f"pull({CHECK_FILE!r}) returned {len(back)} bytes that differ from the {len(_PAYLOAD)} bytes "
            "pushed; push and pull must round-trip any bytes unchanged"
        )


def check_snapshot_round_trip(device: Device) -> None:
    """Save, then change a file and the screen, then load: both must be back as saved."""
    before = b"saved with the snapshot"
    device.push(CHECK_FILE, before)
    saved_xml = device.ui_xml()
    device.save_snapshot(CHECK_SNAPSHOT)
    device.push(CHECK_FILE, b"written after the snapshot")
    device.key("APP_SWITCH")  # the recent-apps screen: a different UI on any phone
    seconds = device.load_snapshot(CHECK_SNAPSHOT)
    if not isinstance(seconds, float) or seconds < 0:
        raise DeviceContractError(
            f"load_snapshot() must return the seconds the restore took as a float >= 0, got {seconds!r}"
        )
    restored_xml = device.ui_xml()
    if restored_xml != saved_xml:
        line, saved, now = _first_difference(saved_xml, restored_xml)
        raise DeviceContractError(
            f"load_snapshot({CHECK_SNAPSHOT!r}) did not restore the UI: ui_xml() line {line} is {now!r}, "
            f"was {saved!r} when the snapshot was saved"
        )
    content = device.pull(CHECK_FILE)
    if content != before:
        raise DeviceContractError(
            f"load_snapshot({CHECK_SNAPSHOT!r}) did not restore {CHECK_FILE}: it holds {content!r}, "
            f"was {before!r} when the snapshot was saved"
        )


def _bounds(text: str) -> tuple[int, int, int, int] | None:
    parts = text.replace("][", ",").strip("[]").split(",")
    if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
        return None
    left, top, right, bottom = (int(p) for p in parts)
    return left, top, right, bottom


def _first_difference(a: str, b: str) -> tuple[int, str, str]:
    """(1-based line number, line in a, line in b) of the first line where a and b differ."""
    lines_a, lines_b = a.splitlines(), b.splitlines()
    for i in range(max(len(lines_a), len(lines_b))):
        left = lines_a[i] if i < len(lines_a) else ""
        right = lines_b[i] if i < len(lines_b) else ""
        if left != right:
            return i + 1, left.strip()[:120], right.strip()[:120]
    return 0, "", ""
