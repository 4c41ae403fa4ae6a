"""`droidrl-emulator`: simulated phones behind the Android emulator's command line, adbd and console ports.

Scripts written for `emulator -avd NAME -ports 5554,5555 -no-window ...` run unchanged: each phone gets
an adbd port and a console port, tells a running adb server about itself, and keeps its snapshots in
the AVD directory across runs (quickboot `default_boot` included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

from droidrl.envs.device import check_snapshot_name
from droidrl.envs.sim.adbd import announce_to_adb_server, serve_adbd
from droidrl.envs.sim.console import serve_console
from droidrl.envs.sim.phone import Phone
from droidrl.envs.sim.snapshot import SnapshotError

HOST = "127.0.0.1"
FIRST_CONSOLE_PORT = 5554
MAX_EMULATORS = 64  # how many even console ports (from 5554) are tried when no port is given
QUICKBOOT_SNAPSHOT = "default_boot"
GPU_MODES = (
    "auto",
    "auto-no-window",
    "host",
    "on",
    "off",
    "guest",
    "mesa",
    "swiftshader",
    "swiftshader_indirect",
    "angle",
    "angle_indirect",
    "swangle",
    "swangle_indirect",
    "lavapipe",
)
TOUCH_SCREEN_MODES = ("touch", "multi-touch", "no-touch")  # what the real `-screen` takes

# Real emulator options that make no difference to a simulated phone: accepted and ignored.
IGNORED_OPTIONS_WITH_VALUE = (
    "-accel",
    "-adb-path",
    "-cache",
    "-data",
    "-initdata",
    "-kernel",
    "-network-user-mode-options",
    "-ramdisk",
    "-system",
    "-vendor",
    "-wifi-user-mode-options",
    "-camera-back",
    "-camera-front",
    "-cores",
    "-dns-server",
    "-feature",
    "-http-proxy",
    "-idle-grpc-timeout",
    "-logcat",
    "-memory",
    "-netdelay",
    "-netspeed",
    "-partition-size",
    "-prop",
    "-sdcard",
    "-selinux",
    "-skin",
    "-sysdir",
    "-timezone",
)
IGNORED_FLAGS = (
    "-allow-host-audio",
    "-delay-adb",
    "-grpc-use-jwt",
    "-grpc-use-token",
    "-no-boot-anim",
    "-no-audio",
    "-noaudio",
    "-no-cache",
    "-no-metrics",
    "-no-passive-gps",
    "-no-skin",
    "-noskin",
    "-no-window",
    "-qt-hide-window",
    "-show-kernel",
    "-writable-system",
)


class EmulatorError(Exception):
    """A problem the user must fix (a port in use, a locked AVD); printed as one ERROR line."""


def say(level: str, message: str, stream: IO[str] | None = None) -> None:
    """One log line in the emulator's `LEVEL   | message` format (flushed: tests and scripts read it live)."""
    print(f"{level:<8}| {message}", file=stream or sys.stdout, flush=True)


# ---- command line -------------------------------------------------------------------------------------
@dataclass
class Options:
    """The parsed command line; ports are None where the emulator picks free ones."""

    avd: str
    console_port: int | None
    adb_port: int | None
    port_flag: str  # the flag that chose the ports ("-ports", "-port" or "" when picked), for messages
    count: int
    width: int | None
    height: int | None
    density: int | None
    read_only: bool
    snapshot: str | None
    snapshot_load: bool
    snapshot_save: bool
    wipe_data: bool
    verbose: bool
    grpc_port: int | None = None


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as the emulator does (one ERROR line, exit status 1)."""

    def error(self, message: str) -> NoReturn:
        say("ERROR", f"{message}. Run '{self.prog} -help' for the options.", sys.stderr)
        sys.exit(1)


def _port(text: str) -> int:
    try:
        port = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1-65535")
    return port


def _ports(text: str) -> tuple[int, int]:
    console, comma, adb = text.partition(",")
    if not comma:
        raise argparse.ArgumentTypeError(f"'{text}' must be <console-port>,<adb-port>, e.g. 5554,5555")
    ports = _port(console), _port(adb)
    if ports[0] == ports[1]:
        raise argparse.ArgumentTypeError(f"'{text}': both ports are identical")
    return ports


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _screen(text: str) -> tuple[int, int] | None:
    if text in TOUCH_SCREEN_MODES:
        return None  # the real emulator's touch-mode values mean nothing here
    width, x, height = text.lower().partition("x")
    if not x or not width.isdigit() or not height.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' must be WIDTHxHEIGHT in pixels, e.g. 1080x2400")
    return int(width), int(height)


def _gpu(text: str) -> str:
    if text not in GPU_MODES:
        raise argparse.ArgumentTypeError(f"unknown GPU mode '{text}'; one of: {', '.join(GPU_MODES)}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="droidrl-emulator",
        description="Run simulated Android phones that adb, `adb emu` and telnet see as emulators.",
        epilog="Other emulator options (-no-window, -no-audio, -no-boot-anim, -camera-back, -memory, -skin, "
        "-partition-size, -qemu ...) are accepted and ignored.",
        add_help=False,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("-help", "-h", "--help", action="help", help="show this help and exit")
    add("-avd", metavar="NAME", help="the AVD name (required); `@NAME` works too")
    add("-list-avds", action="store_true", help="list the AVDs that have a directory and exit")
    add("-ports", type=_ports, metavar="CONSOLE,ADB", help="console and adb ports of the (first) phone")
    add("-port", type=_port, metavar="CONSOLE", help="console port of the (first) phone; adb is one above")
    add("-count", type=_positive, default=1, metavar="N", help="run N phones on consecutive port pairs")
    add("-screen", type=_screen, metavar="WxH", help="screen size in pixels (default 1080x2400)")
    add("-density", type=_positive, metavar="DPI", help="screen density (default 420)")
    add("-read-only", action="store_true", help="never write snapshots; console save/load/delete refused")
    add("-snapshot", metavar="NAME", help="boot from snapshot NAME and save to it on exit")
    add("-no-snapshot-load", action="store_true", help="cold boot: do not load the boot snapshot")
    add("-no-snapshot-save", action="store_true", help="do not save the boot snapshot on exit")
    add("-no-snapshot", action="store_true", help="neither load nor save the boot snapshot")
    add("-wipe-data", action="store_true", help="delete the AVD's saved snapshots first (cold boot)")
    add("-gpu", type=_gpu, metavar="MODE", help="accepted for compatibility; rendering is always software")
    add("-grpc", type=_port, metavar="PORT", help="serve the gRPC EmulatorController on PORT (phone i: PORT+i)")
    add(
        "-verbose",
        action="store_true",
        help="more log lines (adbd debug messages, the adb server announcement)",
    )
    add("-version", action="store_true", help="print the version and exit")
    for flag in IGNORED_OPTIONS_WITH_VALUE:
        add(flag, action="append", metavar="VALUE", help=argparse.SUPPRESS)
    for flag in IGNORED_FLAGS:
        add(flag, action="store_true", help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the emulator command line (everything after `-qemu` belongs to QEMU and is ignored)."""
    if "-qemu" in argv:
        argv = argv[: argv.index("-qemu")]
    argv = [a for arg in argv for a in (("-avd", arg[1:]) if arg.startswith("@") and len(arg) > 1 else (arg,))]
    return build_parser().parse_args(argv)


def to_options(args: argparse.Namespace) -> Options:
    if args.port is not None and args.ports is not None:
        raise EmulatorError("options -port and -ports cannot be used together.")
    if args.avd is None:
        raise EmulatorError("No AVD specified. Use '-avd NAME' (or '@NAME'); any name works for a simulated phone.")
    if args.snapshot is not None:
        try:
            check_snapshot_name(args.snapshot)  # a name is a file in the AVD's snapshots/, never a path
        except ValueError as err:
            raise EmulatorError(f"-snapshot: {err}") from None
    console_port, adb_port, port_flag = None, None, ""
    if args.ports is not None:
        (console_port, adb_port), port_flag = args.ports, "-ports"
    elif args.port is not None:
        console_port, adb_port, port_flag = args.port, args.port + 1, "-port"
    width, height = args.screen if args.screen else (None, None)
    return Options(
        avd=args.avd,
        console_port=console_port,
        adb_port=adb_port,
        port_flag=port_flag,
        count=args.count,
        width=width,
        height=height,
        density=args.density,
        read_only=args.read_only,
        snapshot=args.snapshot,
        snapshot_load=not (args.no_snapshot_load or args.no_snapshot or args.wipe_data),
        snapshot_save=not (args.no_snapshot_save or args.no_snapshot or args.read_only),
        wipe_data=args.wipe_data,
        verbose=args.verbose,
        grpc_port=args.grpc,
    )


# ---- the AVD directory --------------------------------------------------------------------------------
def avd_home() -> Path:
    """Where AVDs live: $ANDROID_AVD_HOME, else $ANDROID_EMULATOR_HOME/avd, else ~/.android/avd."""
    if os.environ.get("ANDROID_AVD_HOME"):
        return Path(os.environ["ANDROID_AVD_HOME"])
    if os.environ.get("ANDROID_EMULATOR_HOME"):
        return Path(os.environ["ANDROID_EMULATOR_HOME"]) / "avd"
    return Path(os.path.expanduser("~")) / ".android" / "avd"


def snapshot_dir(avd_dir: Path, index: int) -> Path:
    """Phone 0 uses the AVD's own `snapshots/`; with -count N, phone i > 0 gets `instance-<i>/snapshots`."""
    return avd_dir / "snapshots" if index == 0 else avd_dir / f"instance-{index}" / "snapshots"


def lock_avd(avd_dir: Path) -> IO[bytes]:
    """Hold a lock on the AVD for this process, so two emulators never write the same snapshots."""
    lock = (avd_dir / "droidrl-emulator.lock").open("wb")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise EmulatorError(
            f"AVD '{avd_dir.stem}' is already in use by another emulator ({avd_dir}). Running multiple "
            "emulators with the same AVD needs -read-only; or start one emulator with -count N."
        ) from None
    return lock


def wipe(avd_dir: Path) -> None:
    shutil.rmtree(avd_dir / "snapshots", ignore_errors=True)
    for instance in avd_dir.glob("instance-*"):
        shutil.rmtree(instance, ignore_errors=True)


# ---- one phone ----------------------------------------------------------------------------------------
@dataclass
class Emulator:
    """One running phone and its two servers."""

    phone: Phone
    console_port: int
    adb_port: int
    servers: tuple[asyncio.Server, asyncio.Server]

    @property
    def serial(self) -> str:
        return f"emulator-{self.console_port}"


def make_phone(options: Options, snapshots: Path) -> Phone:
    """Build a phone and load its boot snapshot (the named one, else quickboot's `default_boot`)."""
    screen = {}
    if options.width is not None:
        screen = {"width": options.width, "height": options.height}
    if options.density is not None:
        screen["density"] = options.density
    try:
        phone = Phone(**screen, avd_name=options.avd, snapshot_dir=snapshots)
    except ValueError as err:
        raise EmulatorError(f"-screen/-density: {err}") from None
    if options.snapshot_load:
        name = options.snapshot or QUICKBOOT_SNAPSHOT
        try:
            phone.load_snapshot(name)
            say("INFO", f"Loaded snapshot '{name}' from {snapshots}")
        except KeyError:
            if options.snapshot:
                say("WARNING", f"Snapshot '{name}' not found in {snapshots}; cold booting")
        except SnapshotError as err:  # corrupt or another program's file: never trusted, never fatal
            say("WARNING", f"Failed to load snapshot '{name}' from {snapshots} ({err}); cold booting")
    return phone


async def start_servers(
    phone: Phone, console_port: int, adb_port: int, options: Options, on_kill: Callable[[], object]
) -> tuple[asyncio.Server, asyncio.Server]:
    """adbd first, then the console (the emulator's order); nothing stays bound if either port is taken.

    Raises OSError whose message names the port that could not be bound.
    """
    try:
        adbd = await serve_adbd(phone, HOST, adb_port)
    except OSError as err:
        raise OSError(err.errno, f"adb port {adb_port}: {_reason(err)}") from err
    try:
        console = await serve_console(phone, HOST, console_port, read_only=options.read_only, on_kill=on_kill)
    except OSError as err:
        adbd.close()
        raise OSError(err.errno, f"console port {console_port}: {_reason(err)}") from err
    return adbd, console


def _reason(err: OSError) -> str:
    return os.strerror(err.errno).lower() if err.errno else str(err)


async def start_emulators(phones: list[Phone], options: Options, on_kill: Callable[[], object]) -> list[Emulator]:
    """Bind each phone's port pair: consecutive pairs from -ports/-port, else the first free even ports."""
    emulators: list[Emulator] = []
    candidates = iter(range(FIRST_CONSOLE_PORT, FIRST_CONSOLE_PORT + 2 * MAX_EMULATORS, 2))
    try:
        for i, phone in enumerate(phones):
            if options.console_port is not None:
                console_port, adb_port = options.console_port + 2 * i, options.adb_port + 2 * i
                try:
                    servers = await start_servers(phone, console_port, adb_port, options, on_kill)
                except OSError as err:
                    raise EmulatorError(
                        f"{options.port_flag}: cannot listen on {err.strerror} (another emulator?). "
                        "Choose free ports, or leave out -port/-ports to pick free ones."
                    ) from None
            else:
                for console_port in candidates:
                    adb_port = console_port + 1
                    try:
                        servers = await start_servers(phone, console_port, adb_port, options, on_kill)
                        break
                    except OSError:
                        continue
                else:
                    raise EmulatorError("It seems too many emulator instances are running on this machine. Aborting.")
            emulators.append(Emulator(phone, console_port, adb_port, servers))
    except BaseException:
        for emulator in emulators:
            for server in emulator.servers:
                server.close()
        raise
    return emulators


def start_grpc(emulators: list[Emulator], options: Options, on_shutdown: Callable[[], object]) -> list:
    """With -grpc PORT: phone i serves the EmulatorController and SnapshotService on PORT + i."""
    if options.grpc_port is None:
        return []
    from droidrl.envs.sim.grpc_server import GrpcServer  # grpc and android_env's stubs load only when asked

    servers: list[GrpcServer] = []
    try:
        for i, emulator in enumerate(emulators):
            port = options.grpc_port + i
            servers.append(
                GrpcServer(emulator.phone, port, read_only=options.read_only, on_shutdown=on_shutdown).start()
            )
            say("INFO", f"Started GRPC server at 127.0.0.1:{port}, security: Insecure")
    except OSError as err:
        for server in servers:
            server.stop(None)
        for emulator in emulators:
            for server in emulator.servers:
                server.close()
        raise EmulatorError(f"-grpc: cannot listen on {err.strerror}. Choose a free port.") from None
    return servers


def wait_listed(serial: str, server_port: int, timeout_s: float = 3.0) -> bool:
    """Poll the adb server's `host:devices` until it lists `serial` as a device (False on timeout)."""
    request = b"host:devices"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, server_port), timeout=1) as sock:
                sock.sendall(f"{len(request):04x}".encode() + request)
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
            if f"{serial}\tdevice".encode() in reply:
                return True
        except OSError:
            return False
        time.sleep(0.02)
    return False


def adb_server_port() -> int:
    value = os.environ.get("ANDROID_ADB_SERVER_PORT", "")
    return int(value) if value.isdigit() else 5037


async def run(options: Options) -> int:
    """Start every phone, serve until SIGTERM/SIGINT or a console `kill`, then save and shut down."""
    started = time.monotonic()
    home = avd_home()
    avd_dir = home / f"{options.avd}.avd"
    avd_dir.mkdir(parents=True, exist_ok=True)
    lock = None if options.read_only else lock_avd(avd_dir)
    try:
        if options.wipe_data:
            wipe(avd_dir)
            say("INFO", f"Wiped the saved state of AVD '{options.avd}'")
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_ignore_cancelled_connections)
        phones = [
            await loop.run_in_executor(None, make_phone, options, snapshot_dir(avd_dir, i))
            for i in range(options.count)
        ]
        stop = asyncio.Event()
        emulators = await start_emulators(phones, options, on_kill=stop.set)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        server_port = adb_server_port()
        for emulator in emulators:
            if options.console_port is not None and emulator.adb_port != emulator.console_port + 1:
                say(
                    "WARNING",
                    f"adb port {emulator.adb_port} is not console port + 1: adb will list this phone as "
                    f"emulator-{emulator.adb_port - 1} and `adb emu` will look for its console there.",
                )
            say("INFO", f"Listening for console connections on port: {emulator.console_port}")
            say("INFO", f"Serial number of this emulator (for ADB): {emulator.serial}")
            announced = await asyncio.to_thread(announce_to_adb_server, emulator.adb_port, server_port)
            if announced and options.grpc_port is not None:
                # gRPC clients (android_env) take `booted` to mean adb can reach the device, as it can once a
                # real emulator has booted: wait until the adb server has connected to this adbd.
                await asyncio.to_thread(wait_listed, emulator.serial, server_port)
            if options.verbose:
                say("INFO", f"adb server on port {server_port} {'told' if announced else 'not running'}")
            say(
                "INFO",
                f"{emulator.serial} ready: avd {options.avd}, console port {emulator.console_port}, "
                f"adb port {emulator.adb_port}, {emulator.phone.width}x{emulator.phone.height} "
                f"@ {emulator.phone.density}dpi",
            )
        grpc_servers = start_grpc(emulators, options, on_shutdown=lambda: loop.call_soon_threadsafe(stop.set))
        say("INFO", f"Boot completed in {int((time.monotonic() - started) * 1000)} ms")

        await stop.wait()
        say("INFO", "Shutting down")
        for server in grpc_servers:
            await asyncio.to_thread(server.stop)
        await close_servers(emulators)
        if options.snapshot_save:
            name = options.snapshot or QUICKBOOT_SNAPSHOT
            for emulator in emulators:
                await asyncio.to_thread(emulator.phone.save_snapshot, name)
            say("INFO", f"Saved snapshot '{name}' on exit")
        return 0
    finally:
        if lock is not None:
            lock.close()


def _ignore_cancelled_connections(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # Shutdown cancels connection handlers on purpose; Python 3.11's asyncio streams would log each
    # one as an error ("Exception in callback ... CancelledError"), which 3.12 no longer does.
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


async def close_servers(emulators: list[Emulator]) -> None:
    """Stop listening and end every open adb/console connection, as the emulator's exit would."""
    for emulator in emulators:
        for server in emulator.servers:
            server.close()
    connections = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in connections:
        task.cancel()
    await asyncio.gather(*connections, return_exceptions=True)
    for emulator in emulators:
        for server in emulator.servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `droidrl-emulator` command; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.version:
        print("droidrl-emulator (simulated Android emulator) 0.1.0")
        return 0
    if args.list_avds:
        home = avd_home()
        for path in sorted(home.glob("*.avd")) if home.is_dir() else []:
            print(path.stem)
        return 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)-8s| %(name)s: %(message)s",
    )
    try:
        return asyncio.run(run(to_options(args)))
    except EmulatorError as err:
        say("ERROR", str(err), sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
