"""Simulated apps; each module describes one app as data plus small screen functions."""

from __future__ import annotations

import importlib

from droidrl.envs.sim.app import App

# Module names under droidrl.envs.sim.apps, each exposing `APP`. Order is install order.
APP_MODULES = ["launcher", "settings", "contacts", "clock"]


def default_apps() -> list[App]:
    """Fresh `App` objects for every built-in app."""
    apps = []
    for name in APP_MODULES:
        try:
            module = importlib.import_module(f"droidrl.envs.sim.apps.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"droidrl.envs.sim.apps.{name}":
                raise
            continue  # TODO(lead): remove once every listed app exists
        apps.append(module.APP)
    return apps
