"""The home screen (Pixel launcher): an icon grid of the installed apps, and the recent-apps overview."""

from __future__ import annotations

from droidrl.envs.sim import packages
from droidrl.envs.sim.app import App, Ctx
from droidrl.envs.sim.ui import TEXT, Node, Screen, button, grid, item, spacer, text

PACKAGE = "com.google.android.apps.nexuslauncher"


def home_screen(ctx: Ctx) -> Screen:
    cells = []
    for app in sorted(ctx.phone.apps.values(), key=lambda a: a.label.lower()):
        if not app.launcher or app.package == PACKAGE or not packages.available(ctx.phone, app.package):
            continue  # uninstalled or disabled apps have no icon
        cells.append(
            Node(
                cls=TEXT,
                text=app.label,
                desc=app.label,
                kind="app_icon",
                bg=app.color,
                hint=app.icon or app.label[:1],
                clickable=True,
                long_clickable=True,
                on_click=lambda pkg=app.package: ctx.phone.launch(pkg),
                size=13,
                align="center",
            )
        )
    return Screen(app_bar=False, rows=[spacer(24), grid(cells)], rid_prefix=PACKAGE)


def overview_screen(ctx: Ctx) -> Screen:
    """APP_SWITCH: recent tasks newest first; tapping one brings it back."""
    rows = []
    for pkg in reversed(ctx.phone.state.recents):
        app = ctx.phone.apps[pkg]
        running = pkg in ctx.phone.state.tasks
        rows.append(
            item(
                app.label,
                "Running" if running else "",
                avatar=app.label,
                rid="snapshot",
                on_click=lambda pkg=pkg: ctx.phone.launch(pkg),
            )
        )
    if rows:
        rows.append(button("Clear all", lambda: _clear_all(ctx), rid="clear_all", primary=False))
    else:
        rows.append(text("No recent items", align="center", rid="recents_empty"))
    return Screen(title="Recent apps", rows=rows, rid_prefix=PACKAGE)


def _clear_all(ctx: Ctx) -> None:
    phone = ctx.phone
    for pkg in list(phone.state.recents):
        phone.state.tasks.pop(pkg, None)
    phone.state.recents.clear()
    phone.state.overview = False


APP = App(
    package=PACKAGE,
    label="Pixel Launcher",
    activities={".NexusLauncherActivity": home_screen},
    launcher=False,
    version_name="13",
)
