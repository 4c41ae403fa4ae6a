"""Task templates for the Settings app (com.android.settings), named after android_world's System* tasks."""

from __future__ import annotations

from droidrl.envs.actions import Action, Finish, Launch
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiView
from droidrl.envs.tasks.state import get_setting, put_setting

SETTINGS = "com.android.settings"
WIFI = "Wi\u2011Fi"  # Settings writes Wi-Fi with a non-breaking hyphen


def _wifi_setup(on_at_start: bool):
    def setup(device: Device, params: Params) -> None:
        put_setting(device, "global", "wifi_on", "1" if on_at_start else "0")

    return setup


def _wifi_evaluate(on: bool):
    def evaluate(device: Device, params: Params, answer: str | None) -> float:
        return float(get_setting(device, "global", "wifi_on") == ("1" if on else "0"))

    return evaluate


def _wifi_expert(on: bool):
    def expert(device: Device, params: Params) -> Action:
        if get_setting(device, "global", "wifi_on") == ("1" if on else "0"):
            return Finish()
        view = UiView.of(device)
        if view.app != SETTINGS:
            return Launch("Settings")
        if view.has(text=WIFI, rid="android:id/title"):  # the Internet page: the first switch is Wi-Fi's
            return view.tap(view.find(rid="android:id/switch_widget"))
        if view.has(text="Internet", rid="android:id/title"):
            return view.tap(view.find(text="Internet", rid="android:id/title"))
        return view.tap(view.find(text="Network & internet", rid="android:id/title"))

    return expert


TEMPLATES = [
    TaskTemplate(
        name="SystemWifiTurnOff",
        apps=(SETTINGS,),
        goal="Turn off Wi-Fi.",
        difficulty="easy",
        kind="operation",
        setup=_wifi_setup(True),
        evaluate=_wifi_evaluate(False),
        expert=_wifi_expert(False),
    ),
    TaskTemplate(
        name="SystemWifiTurnOn",
        apps=(SETTINGS,),
        goal="Turn on Wi-Fi.",
        difficulty="easy",
        kind="operation",
        setup=_wifi_setup(False),
        evaluate=_wifi_evaluate(True),
        expert=_wifi_expert(True),
    ),
]
