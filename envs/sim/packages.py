"""Which apps user 0 has: installed, uninstalled (for the user or entirely) and disabled packages.

Android keeps this per user in /data/system/users/0/package-restrictions.xml (`inst="false"` after
`pm uninstall --user 0`, `enabled="3"` after `pm disable-user`); the simulated phone keeps the same facts
in the same file, so snapshots carry them and a fresh phone (no file) has every app installed and enabled.
A user app removed entirely (`pm uninstall PKG`) is recorded there too, as a <deleted> entry.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone

RESTRICTIONS = "/data/system/users/0/package-restrictions.xml"
# PackageManager.COMPONENT_ENABLED_STATE_*
ENABLED_DEFAULT, ENABLED, DISABLED, DISABLED_USER = 0, 1, 2, 3

_ENTRY = re.compile(r'<(pkg|deleted) name="([^"]*)"(?: inst="(true|false)")?(?: enabled="(\d)")? />')


def _read(phone: Phone) -> dict[str, dict[str, object]]:
    if not phone.fs.is_file(RESTRICTIONS):
        return {}
    text = phone.fs.read(RESTRICTIONS).decode()
    entries: dict[str, dict[str, object]] = {}
    for kind, name, inst, enabled in _ENTRY.findall(text):
        entries[html.unescape(name)] = {
            "deleted": kind == "deleted",
            "installed": inst != "false",
            "enabled": int(enabled or 0),
        }
    return entries


def _write(phone: Phone, entries: dict[str, dict[str, object]]) -> None:
    lines = ["<?xml version='1.0' encoding='utf-8' standalone='yes' ?>", "<package-restrictions>"]
    for name, e in sorted(entries.items()):
        quoted = html.escape(name, quote=True)
        if e["deleted"]:
            lines.append(f'    <deleted name="{quoted}" />')
        else:
            lines.append(f'    <pkg name="{quoted}" inst="{str(e["installed"]).lower()}" enabled="{e["enabled"]}" />')
    lines.append("</package-restrictions>")
    phone.fs.makedirs("/data/system/users/0")
    phone.fs.write(RESTRICTIONS, ("\n".join(lines) + "\n").encode())
    phone.changed()


def _entry(phone: Phone, package: str) -> dict[str, object]:
    return _read(phone).get(package, {"deleted": False, "installed": True, "enabled": ENABLED_DEFAULT})


def exists(phone: Phone, package: str) -> bool:
    """Still on the device (for some user), if it was there: not removed by a full `pm uninstall`."""
    return not _entry(phone, package)["deleted"]


def installed(phone: Phone, package: str) -> bool:
    """Installed for user 0."""
    return exists(phone, package) and bool(_entry(phone, package)["installed"])


def enabled_state(phone: Phone, package: str) -> int:
    return int(_entry(phone, package)["enabled"])


def available(phone: Phone, package: str) -> bool:
    """Installed for user 0 and enabled: it can be launched, resolved and shown in the launcher."""
    return installed(phone, package) and enabled_state(phone, package) in (ENABLED_DEFAULT, ENABLED)


def set_state(
    phone: Phone,
    package: str,
    *,
    installed: bool | None = None,
    enabled: int | None = None,
    deleted: bool | None = None,
) -> None:
    entries = _read(phone)
    entry = entries.setdefault(package, {"deleted": False, "installed": True, "enabled": ENABLED_DEFAULT})
    if installed is not None:
        entry["installed"] = installed
    if enabled is not None:
        entry["enabled"] = enabled
    if deleted is not None:
        entry["deleted"] = deleted
    if not entry["deleted"] and entry["installed"] and entry["enabled"] == ENABLED_DEFAULT:
        del entries[package]  # back to the image's default: nothing to record
    _write(phone, entries)


def reinstalled(phone: Phone, package: str) -> None:
    """An APK of `package` was installed (`pm install`): whatever uninstall recorded no longer holds."""
    set_state(phone, package, installed=True, enabled=ENABLED_DEFAULT, deleted=False)
