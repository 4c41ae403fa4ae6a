"""Carry out a parsed action on a `Device`: grid points become pixels, app names become packages."""

from __future__ import annotations

import time
from collections.abc import Mapping

from droidrl.envs.actions import (
    APP_PACKAGES,
    Action,
    Back,
    CallApi,
    DoubleTap,
    Enter,
    Finish,
    Home,
    Launch,
    LongPress,
    Note,
    Swipe,
    Tap,
    Type,
    Wait,
    resolve_app,
    to_pixels,
)
from droidrl.envs.device import Device
from droidrl.envs.errors import DeviceCommandError

SWIPE_MS = 300
LONG_PRESS_MS = 1000
DOUBLE_TAP_GAP_S = 0.05


class ActionRefused(Exception):
    """A well-formed action the device cannot carry out (an app that is not installed): an invalid step."""


def perform(
    device: Device,
    action: Action,
    *,
    apps: Mapping[str, str] = APP_PACKAGES,
    wait_scale: float = 1.0,
) -> None:
    """Do `action` on `device`. `Finish`, `Note` and `CallApi` change nothing.

    `wait_scale` multiplies the seconds of `Wait` (0 on a simulated phone whose clock does not run).
    Raises ActionRefused for an app name that maps to no installed package.
    """
    width, height = device.size
    match action:
        case Tap(point):
            device.tap(*to_pixels(point, width, height))
        case DoubleTap(point):
            x, y = to_pixels(point, width, height)
            device.tap(x, y)
            time.sleep(DOUBLE_TAP_GAP_S * wait_scale)
            device.tap(x, y)
        case LongPress(point):
            device.long_press(*to_pixels(point, width, height), LONG_PRESS_MS)
        case Swipe(start, end):
            device.swipe(*to_pixels(start, width, height), *to_pixels(end, width, height), SWIPE_MS)
        case Type(text, focus, clear, enter):
            if focus is not None:
                device.tap(*to_pixels(focus, width, height))
            if clear:
                device.clear_text()
            device.type_text(text)
            if enter:
                device.key("ENTER")
        case Launch(app):
            package = resolve_app(app, apps)
            if package is None:
                raise ActionRefused(f"unknown app {app!r}; known apps: {', '.join(sorted(set(apps)))}")
            try:
                device.launch(package)
            except DeviceCommandError as error:
                raise ActionRefused(f"app {app!r} ({package}) is not installed on this device") from error
        case Back():
            device.key("BACK")
        case Home():
            device.key("HOME")
        case Enter():
            device.key("ENTER")
        case Wait(seconds):
            time.sleep(seconds * wait_scale)
        case Finish() | Note() | CallApi():
            pass
        case _:
            raise TypeError(f"not an action: {action!r}")
