"""`droidrl farm`: boot simulated phones as emulator processes and check each one through the real adb."""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress
from rich.table import Table

from droidrl.cli.common import CliError, console, mark
from droidrl.envs.sim.farm import Farm, FarmStartError, start_farm


@dataclass
class PhoneCheck:
    serial: str
    console_port: int
    boot_completed: str
    screenshot: str
    ui_nodes: int
    wifi_toggled: bool
    snapshot_restored: bool
    step_ms: float


def _adb(farm: Farm, serial: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*farm.adb, "-s", serial, *args], env=farm.env, capture_output=True, timeout=60)


def check_phone(farm: Farm, serial: str, console_port: int) -> PhoneCheck:
    """Drive one phone through adb like an agent would and verify the effects through adb too."""
    boot = _adb(farm, serial, "shell", "getprop", "sys.boot_completed").stdout.decode().strip()
    _adb(farm, serial, "emu", "avd", "snapshot", "save", "farm_check")
    started = time.perf_counter()
    png = _adb(farm, serial, "exec-out", "screencap", "-p").stdout
    xml = _adb(farm, serial, "shell", "uiautomator dump /sdcard/window_dump.xml && cat /sdcard/window_dump.xml").stdout
    step_ms = (time.perf_counter() - started) * 1000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    before = _adb(farm, serial, "shell", "settings get global wifi_on").stdout.decode().strip()
    _adb(farm, serial, "shell", "am start -n com.android.settings/.Settings")
    # The same bytes an agent sees: find the rows by text in the dump and tap their centres.
    toggled = _tap_text(farm, serial, "Network & internet") and _tap_text(farm, serial, "Internet")
    toggled = toggled and _tap_text(farm, serial, "Wi\u2011Fi")  # Android writes Wi-Fi with a non-breaking hyphen
    after = _adb(farm, serial, "shell", "settings get global wifi_on").stdout.decode().strip()
    _adb(farm, serial, "emu", "avd", "snapshot", "load", "farm_check")
    restored = _adb(farm, serial, "shell", "settings get global wifi_on").stdout.decode().strip() == before
    return PhoneCheck(
        serial,
        console_port,
        boot,
        f"{width}x{height} {len(png) // 1024}KiB",
        xml.count(b"<node "),
        toggled and before != after,
        restored,
        step_ms,
    )


def _tap_text(farm: Farm, serial: str, text: str) -> bool:
    dump = _adb(
        farm,
        serial,
        "shell",
        "uiautomator dump /sdcard/window_dump.xml >/dev/null && cat /sdcard/window_dump.xml",
    )
    node = next((n for n in ET.fromstring(dump.stdout).iter("node") if n.get("text") == text), None)
    if node is None:
        return False
    left, top, right, bottom = map(int, re.findall(r"\d+", node.get("bounds")))
    _adb(farm, serial, "shell", "input", "tap", str((left + right) // 2), str((top + bottom) // 2))
    return True


def cmd_farm(args: argparse.Namespace) -> int:
    if args.phones < 1:
        raise CliError(f"--phones must be >= 1, got {args.phones}")
    console.print(
        f"[bold]droidrl farm[/]: boots {args.phones} simulated phones as emulator processes, checks each one "
        "through the real adb, and reports."
    )
    with tempfile.TemporaryDirectory(prefix="droidrl-farm-") as tmp:
        started = time.perf_counter()
        with console.status(f"starting {args.phones} simulated phones (droidrl-emulator)"):
            try:
                farm = start_farm(args.phones, Path(tmp))
            except FarmStartError as err:
                raise CliError(str(err)) from None
        try:
            boot_s = time.perf_counter() - started
            checks = []
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("checking phones over adb", total=len(farm.serials))
                for serial, port in zip(farm.serials, farm.console_ports, strict=True):
                    checks.append(check_phone(farm, serial, port))
                    progress.advance(task)
            _print_checks(checks, boot_s, farm)
            if args.serve:
                console.print(
                    f"Serving until Ctrl-C. Use: [bold]adb -P {farm.env['ANDROID_ADB_SERVER_PORT']} devices[/]"
                    f" (HOME={tmp} for `adb emu`)."
                )
                try:
                    farm.process.wait()
                except KeyboardInterrupt:
                    pass
        finally:
            farm.stop()
    ok = all(c.boot_completed == "1" and c.wifi_toggled and c.snapshot_restored for c in checks)
    return 0 if ok else 1


def _print_checks(checks: list[PhoneCheck], boot_s: float, farm: Farm) -> None:
    table = Table(
        title=f"Simulated phone farm: {len(checks)} phones up in {boot_s:.1f} s "
        f"(adb server port {farm.env['ANDROID_ADB_SERVER_PORT']})"
    )
    for col in ("serial", "adb port", "booted", "screenshot", "nodes", "Wi-Fi tap", "snapshot", "obs ms"):
        table.add_column(col, no_wrap=True)
    for c in checks:
        table.add_row(
            c.serial,
            str(c.console_port + 1),
            c.boot_completed,
            c.screenshot,
            str(c.ui_nodes),
            mark(c.wifi_toggled),
            mark(c.snapshot_restored),
            f"{c.step_ms:.0f}",
        )
    console.print(table)
    console.print(
        "Wi-Fi tap: tapping rows found in the UI dump turned Wi-Fi off (settings get global wifi_on); "
        "snapshot: `adb emu avd snapshot load` brought it back; obs ms: screencap + uiautomator dump."
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    farm = sub.add_parser("farm", help="boot a farm of simulated phones and check each one through the real adb")
    farm.add_argument("--phones", type=int, default=4, help="simulated phones to start (default 4)")
    farm.add_argument("--serve", action="store_true", help="keep the farm running until Ctrl-C")
    farm.set_defaults(func=cmd_farm)
