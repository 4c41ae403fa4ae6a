"""`droidrl farm`: boot a farm (simulated phones, or emulators as env actors launch them) and check each phone over adb.

`--backend sim` (default) runs droidrl-emulator's simulated phones behind a private adb server;
`--backend emulator` launches the SDK's emulator (or any flag-compatible binary) the way env actors do:
one AVD shared -read-only, leased ports, boot wait, reset to the AVD's snapshot over gRPC.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress
from rich.table import Table

from droidrl.cli.common import CliError, console, mark
from droidrl.envs.emulators import (
    EmulatorConfig,
    EmulatorConfigError,
    EmulatorInstance,
    EmulatorLaunchError,
    check_host,
    prepare_base_snapshot,
)
from droidrl.envs.sim.farm import Farm, FarmStartError, start_farm

# EmulatorConfig fields as `droidrl farm --backend emulator` flags (a config error names the flag).
EMULATOR_FLAGS = {
    "binary": "--binary",
    "sdk_root": "--sdk-root",
    "avd": "--avd",
    "avd_home": "--avd-home",
    "snapshot": "--snapshot",
    "gpu": "--gpu",
    "adb_port": "--adb-port",
    "console_port_base": "--console-port-base",
    "grpc_port_base": "--grpc-port-base",
    "boot_timeout_s": "--boot-timeout",
    "lease_dir": "--lease-dir",
    "kvm_device": "--kvm-device",
}


@dataclass
class AdbServer:
    """How to run `adb` against the farm's adb server (a `Farm` is one too)."""

    adb: list[str]
    env: dict[str, str]


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
    reset_ms: float


def _adb(farm: Farm | AdbServer, serial: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*farm.adb, "-s", serial, *args], env=farm.env, capture_output=True, timeout=60)


def check_phone(
    farm: Farm | AdbServer, serial: str, console_port: int, restore: Callable[[], object] | None = None
) -> PhoneCheck:
    """Drive one phone through adb like an agent would and verify the effects through adb too.

    `restore`: how the phone goes back to its snapshot (an emulator farm's reset); None: `adb emu avd
    snapshot save/load` of a check snapshot.
    """
    boot = _adb(farm, serial, "shell", "getprop", "sys.boot_completed").stdout.decode().strip()
    if restore is None:
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
    started = time.perf_counter()
    if restore is None:
        _adb(farm, serial, "emu", "avd", "snapshot", "load", "farm_check")
    else:
        restore()
    reset_ms = (time.perf_counter() - started) * 1000
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
        reset_ms,
    )


def _tap_text(farm: Farm | AdbServer, serial: str, text: str) -> bool:
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
    if args.backend == "emulator":
        return cmd_emulator_farm(args)
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


def emulator_config(args: argparse.Namespace) -> EmulatorConfig:
    """The EmulatorConfig the flags give, checked on this host (a problem names its flag)."""
    fields = {name: getattr(args, name) for name in EMULATOR_FLAGS if getattr(args, name) is not None}
    try:
        config = EmulatorConfig(**fields, restart_every=None)
        check_host(config)
    except EmulatorConfigError as err:
        flag = EMULATOR_FLAGS.get(err.key, f"env.emulator.{err.key}")
        raise CliError(f"{flag}: {str(err).removeprefix(f'{err.key}: ')}") from None
    except ValueError as err:  # a bad snapshot name
        raise CliError(f"--snapshot: {err}") from None
    return config


def start_emulators(config: EmulatorConfig, count: int) -> list[EmulatorInstance]:
    """Launch `count` emulators at once, as an env actor does; all or none (the others are killed)."""
    with ThreadPoolExecutor(max_workers=count) as launcher:
        futures = [launcher.submit(EmulatorInstance.start, config) for _ in range(count)]
    instances, errors = [], []
    for future in futures:
        try:
            instances.append(future.result())
        except (EmulatorLaunchError, EmulatorConfigError) as err:
            errors.append(err)
    if errors:
        for instance in instances:
            instance.close()
        raise CliError(f"{len(errors)} of {count} emulators did not start: {errors[0]}")
    return instances


def cmd_emulator_farm(args: argparse.Namespace) -> int:
    config = emulator_config(args)
    console.print(
        f"[bold]droidrl farm[/]: launches {args.phones} emulators of AVD {config.avd!r} (-read-only, snapshot "
        f"{config.snapshot!r}) as env actors do, checks each one through adb, and reports."
    )
    if args.prepare:
        with console.status(f"cold-booting {config.avd!r} once to save snapshot {config.snapshot!r}"):
            try:
                seconds = prepare_base_snapshot(config)
            except (EmulatorLaunchError, EmulatorConfigError) as err:
                raise CliError(f"--prepare: {err}") from None
        console.print(f"saved snapshot {config.snapshot!r} of AVD {config.avd!r} in {seconds:.1f} s")
    started = time.perf_counter()
    with console.status(f"launching {args.phones} emulators ({Path(args.binary or 'emulator').name})"):
        instances = start_emulators(config, args.phones)
    try:
        boot_s = time.perf_counter() - started
        adb_env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(config.adb_port))
        farm = AdbServer([_adb_binary(config), "-P", str(config.adb_port)], adb_env)
        checks = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("checking emulators over adb", total=len(instances))
            for instance in instances:
                checks.append(check_phone(farm, instance.serial, instance.lease.console_port, instance.restore))
                progress.advance(task)
        _print_checks(checks, boot_s, farm, kind="Emulator")
        for instance in instances:
            console.print(f"{instance.serial}: pid {instance.pid}, gRPC port {instance.lease.grpc_port}, "
                          f"log {instance.log_path}")  # fmt: skip
        if args.serve:
            console.print(f"Serving until Ctrl-C. Use: [bold]adb -P {config.adb_port} devices[/]")
            try:
                while all(instance.pid is not None for instance in instances):
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        for instance in instances:
            instance.close()
    ok = all(c.boot_completed == "1" and c.wifi_toggled and c.snapshot_restored for c in checks)
    return 0 if ok else 1


def _adb_binary(config: EmulatorConfig) -> str:
    from droidrl.envs.emulators import resolve_adb

    return resolve_adb(config)


def _print_checks(
    checks: list[PhoneCheck], boot_s: float, farm: Farm | AdbServer, kind: str = "Simulated phone"
) -> None:
    table = Table(
        title=f"{kind} farm: {len(checks)} phones up in {boot_s:.1f} s "
        f"(adb server port {farm.env['ANDROID_ADB_SERVER_PORT']})"
    )
    for col in ("serial", "adb port", "booted", "screenshot", "nodes", "Wi-Fi tap", "snapshot", "obs ms", "reset ms"):
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
            f"{c.reset_ms:.0f}",
        )
    console.print(table)
    reset = "`adb emu avd snapshot load`" if kind == "Simulated phone" else "the reset to the AVD's snapshot (gRPC)"
    console.print(
        "Wi-Fi tap: tapping rows found in the UI dump turned Wi-Fi off (settings get global wifi_on); "
        f"snapshot: {reset} brought it back (reset ms); obs ms: screencap + uiautomator dump."
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    farm = sub.add_parser("farm", help="boot a farm (simulated phones or emulators) and check each phone over adb")
    farm.add_argument("--phones", type=int, default=4, help="phones (or emulators) to start (default 4)")
    farm.add_argument("--serve", action="store_true", help="keep the farm running until Ctrl-C")
    farm.add_argument(
        "--backend",
        choices=("sim", "emulator"),
        default="sim",
        help="sim: droidrl-emulator's simulated phones; emulator: launch emulators as env actors do (default sim)",
    )
    emulator = farm.add_argument_group("--backend emulator (env.emulator.* of the training config)")
    emulator.add_argument("--binary", help="emulator binary (default $ANDROID_SDK_ROOT/emulator/emulator)")
    emulator.add_argument("--sdk-root", dest="sdk_root", help="Android SDK (default $ANDROID_SDK_ROOT)")
    emulator.add_argument("--avd", help="the AVD every instance shares read-only (default droidrl)")
    emulator.add_argument("--avd-home", dest="avd_home", help="where AVDs live (default ~/.android/avd)")
    emulator.add_argument("--snapshot", help="the AVD snapshot instances boot from and reset to (droidrl-base)")
    emulator.add_argument("--gpu", help="-gpu mode (default swangle_indirect)")
    emulator.add_argument("--adb-port", dest="adb_port", type=int, help="the node's adb server port (5037)")
    emulator.add_argument("--console-port-base", dest="console_port_base", type=int, help="first console port (5554)")
    emulator.add_argument("--grpc-port-base", dest="grpc_port_base", type=int, help="first gRPC port (8554)")
    emulator.add_argument("--boot-timeout", dest="boot_timeout_s", type=float, help="seconds per boot (300)")
    emulator.add_argument("--lease-dir", dest="lease_dir", help="per-node port lease files")
    emulator.add_argument("--kvm-device", dest="kvm_device", help="KVM device (default /dev/kvm)")
    emulator.add_argument(
        "--prepare", action="store_true", help="cold-boot the AVD once and save --snapshot first (after AVD setup)"
    )
    farm.set_defaults(func=cmd_farm)
