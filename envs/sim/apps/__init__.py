"""Simulated apps; each module describes one app as data plus small screen functions."""

from __future__ import annotations

import importlib

from droidrl.envs.sim.app import App

# Module names under droidrl.envs.sim.apps, each exposing `APP`. Order is install order.
APP_MODULES = ["launcher", "settings", "contacts", "clock", "markor", "files", "calendar", "sms", "expense"]


def default_apps() -> list[App]:
    """Fresh `App` objects for every built-in app."""
    return [importlib.import_module(f"droidrl.envs.sim.apps.{name}").APP for name in APP_MODULES]
