"""Latency of one agent step on the simulated phone, in-process and over adb, plus snapshot timings.

A step is what an RL environment does per action: a tap, then a screenshot (PNG) and a UI dump.
Both paths run side by side in this one process against two identical phones; the adb path goes
through Debian's real adb server and adbutils, exactly as a real emulator would be driven.
A second table compares adb with the emulator's gRPC service (what android_env uses) on one
`droidrl-emulator -grpc` process: screenshots/s and taps/s over each, and their ratios.

    python benchmarks/sim_step.py [--steps 200] [--io-steps 100]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import adbutils
from rich.console import Console
from rich.table import Table

from droidrl.envs.sim.adbd import adbd_in_thread
from droidrl.envs.sim.phone import Phone

ADB = "/usr/bin/adb"


def prepare(phone: Phone) -> tuple[int, int]:
    """Open Settings > Display after using a few apps, so snapshots hold a realistic state.

    Returns the centre of the Dark theme row, which each benchmark step taps (toggling the theme).
    """
    for package in ("com.google.android.contacts", "com.google.android.deskclock"):
        phone.launch(package)
    phone.launch("com.android.settings")
    phone.tap_node(text="Display")
    return phone.find(text="Dark theme").center


def percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))], statistics.fmean(ms)


def timed(fn: Callable[[], object], n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def emulator_io(steps: int) -> Table:
    """adb vs gRPC on one `droidrl-emulator -grpc` process: screenshots/s and taps/s, and their ratios."""
    import grpc
    from android_env.proto import emulator_controller_pb2 as pb
    from android_env.proto import emulator_controller_pb2_grpc as pb_grpc

    console_port, grpc_port, server_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HOME=home, ANDROID_AVD_HOME=f"{home}/avd", ADB_LOCAL_TRANSPORT_MAX_PORT="0")
        env["ANDROID_ADB_SERVER_PORT"] = str(server_port)
        adb = [ADB, "-P", str(server_port)]
        subprocess.run([*adb, "start-server"], env=env, check=True, capture_output=True)
        script = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "droidrl-emulator")
        ports = f"{console_port},{console_port + 1}"
        emulator = subprocess.Popen(
            [script, "-avd", "bench", "-ports", ports, "-grpc", str(grpc_port), "-no-snapshot", "-no-window"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            for line in emulator.stdout:
                if "Boot completed" in line:
                    break
            serial = f"emulator-{console_port}"
            subprocess.run([*adb, "-s", serial, "wait-for-device"], env=env, check=True, timeout=30)
            device = adbutils.AdbClient(host="127.0.0.1", port=server_port).device(serial)
            options = [("grpc.max_receive_message_length", -1)]
            channel = grpc.secure_channel(f"localhost:{grpc_port}", grpc.local_channel_credentials(), options=options)
            stub = pb_grpc.EmulatorControllerStub(channel)
            x, y = 540, 1300  # an empty spot of the home screen: taps change nothing, so every sample is alike

            def exec_out_screencap() -> bytes:
                conn = device.open_transport()
                conn.send_command("exec:screencap -p")
                conn.check_okay()
                return conn.read_until_close(encoding=None)

            def grpc_tap() -> None:
                stub.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y, pressure=1)]))
                stub.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y, pressure=0)]))

            png = pb.ImageFormat(format=pb.ImageFormat.PNG)
            rgba = pb.ImageFormat(format=pb.ImageFormat.RGBA8888)
            pairs = [
                ("screenshot", "adb exec-out screencap -p", exec_out_screencap),
                ("screenshot", "gRPC getScreenshot PNG", lambda: stub.getScreenshot(png)),
                ("screenshot", "gRPC getScreenshot RGBA8888", lambda: stub.getScreenshot(rgba)),
                ("tap", "adb shell input tap", lambda: device.click(x, y)),
                ("tap", "gRPC sendTouch down + up", grpc_tap),
            ]
            measured = [(kind, name, statistics.fmean(timed(fn, steps))) for kind, name, fn in pairs]
            channel.close()
        finally:
            emulator.terminate()
            emulator.wait(10)
            subprocess.run([*adb, "kill-server"], env=env, capture_output=True)

    table = Table(title=f"adb vs gRPC on one droidrl-emulator ({steps} samples each, 1080x2400)")
    for col in ("operation", "per second", "mean ms", "vs adb"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    baseline = {kind: mean for kind, name, mean in measured if name.startswith("adb")}
    for kind, name, mean in measured:
        table.add_row(name, f"{1 / mean:.1f}", f"{mean * 1000:.2f}", f"{baseline[kind] / mean:.2f}x")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="measured steps per path")
    parser.add_argument("--io-steps", type=int, default=100, help="samples per adb/gRPC operation")
    args = parser.parse_args()
    console = Console()
    rows: list[tuple[str, list[float]]] = []

    local = Phone()
    x, y = prepare(local)

    def local_step() -> None:
        local.tap(x, y)
        local.screenshot_png()
        local.ui_xml()

    rows.append(("in-process: tap + screenshot + xml", timed(local_step, args.steps)))
    rows.append(("in-process: screenshot (PNG)", timed(local.screenshot_png, args.steps)))
    rows.append(("in-process: ui xml", timed(local.ui_xml, args.steps)))
    local.save_snapshot("bench")
    rows.append(("in-process: snapshot save", timed(lambda: local.save_snapshot("bench"), args.steps)))
    rows.append(("in-process: snapshot load", timed(lambda: local.load_snapshot("bench"), args.steps)))
    size_kib = local.list_snapshots()[0].size / 1024

    remote = Phone()
    prepare(remote)
    with tempfile.TemporaryDirectory() as home, adbd_in_thread(remote) as adbd_port:
        server_port = free_port()
        env = dict(os.environ, HOME=home, ADB_LOCAL_TRANSPORT_MAX_PORT="0")
        adb = [ADB, "-P", str(server_port)]
        subprocess.run([*adb, "start-server"], env=env, check=True, capture_output=True)
        try:
            subprocess.run([*adb, "connect", f"127.0.0.1:{adbd_port}"], env=env, check=True, capture_output=True)
            device = adbutils.AdbClient(host="127.0.0.1", port=server_port).device(f"127.0.0.1:{adbd_port}")

            def adb_step() -> None:
                device.click(x, y)
                device.shell(["screencap", "-p"], encoding=None)
                device.dump_hierarchy()

            rows.append(("adb: tap + screenshot + xml", timed(adb_step, args.steps)))
            rows.append(("adb: input tap", timed(lambda: device.click(x, y), args.steps)))
            rows.append(
                (
                    "adb: screencap -p",
                    timed(lambda: device.shell(["screencap", "-p"], encoding=None), args.steps),
                )
            )
            rows.append(("adb: uiautomator dump + pull", timed(device.dump_hierarchy, args.steps)))
        finally:
            subprocess.run([*adb, "kill-server"], env=env, capture_output=True)

    table = Table(title=f"Simulated phone step latency ({args.steps} samples each, 1080x2400)")
    for col in ("operation", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for name, samples in rows:
        p50, p95, mean = percentiles(samples)
        table.add_row(name, f"{p50:.2f}", f"{p95:.2f}", f"{mean:.2f}")
    console.print(table)
    local_p50 = percentiles(rows[0][1])[0]
    adb_p50 = percentiles(next(s for n, s in rows if n.startswith("adb: tap +")))[0]
    console.print(f"snapshot size {size_kib:.0f} KiB; adb step / in-process step (p50) = {adb_p50 / local_p50:.2f}x")
    console.print(emulator_io(args.io_steps))


if __name__ == "__main__":
    main()
