"""Clipper (ca.zgrs.clipper): the clipboard helper android_world drives through `am broadcast clipper.get|set`.

Not part of the stock image: it is installed with its APK (`adb install clipper.apk`). Its one activity says
the service started and how to use it; its receiver (services.clipper_receive) answers the broadcasts,
and Android 10+ hands it the clipboard only while this activity is in the foreground.
"""

from __future__ import annotations

from droidrl.envs.sim.app import App, Ctx
from droidrl.envs.sim.ui import Screen, text

PACKAGE = "ca.zgrs.clipper"
MAIN = ".Main"
USAGE = (
    "Usage: You can copy to or paste from clipboard from adb shell using the following commands:\n"
    "* am broadcast -a clipper.set -e text 'This may be pasted now'\n"
    "* am broadcast -a clipper.get"
)


def main_screen(ctx: Ctx) -> Screen:
    rows = [
        text("Clipper service is started!", bold=True, rid=f"{PACKAGE}:id/head"),
        text(USAGE, rid=f"{PACKAGE}:id/sub"),
    ]
    return Screen(title="Clipper", rows=rows)


APP = App(package=PACKAGE, label="Clipper", activities={MAIN: main_screen}, icon="C", color="#5f6368")
