"""The emulator gRPC service (`droidrl-emulator -grpc PORT`) through android-env's own stubs."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
from android_env.proto import emulator_controller_pb2 as pb
from android_env.proto import emulator_controller_pb2_grpc as pb_grpc
from android_env.proto import snapshot_service_pb2 as snap_pb
from android_env.proto import snapshot_service_pb2_grpc as snap_grpc
from android_env.proto.a11y import a11y_pb2_grpc
from android_env.wrappers.a11y import a11y_servicer
from apk_support import build_apk, forwarder_apk
from conftest import free_port
from google.protobuf import empty_pb2
from PIL import Image

from droidrl.envs.sim.a11y import wait_until
from droidrl.envs.sim.apk import ApkError, read_manifest
from droidrl.envs.sim.grpc_server import GrpcServer, keep_aspect
from droidrl.envs.sim.phone import Phone

KEY = pb.KeyboardEvent


class Client:
    """A channel as android_env's EmulatorSimulator opens it (local credentials, unlimited messages)."""

    def __init__(self, port: int) -> None:
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self.channel = grpc.secure_channel(f"localhost:{port}", grpc.local_channel_credentials(), options=options)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.emu = pb_grpc.EmulatorControllerStub(self.channel)
        self.snap = snap_grpc.SnapshotServiceStub(self.channel)

    def pixels(self, **fmt: int) -> np.ndarray:
        image = self.emu.getScreenshot(pb.ImageFormat(format=pb.ImageFormat.RGBA8888, **fmt))
        return np.frombuffer(image.image, np.uint8).reshape(image.format.height, image.format.width, 4)

    def tap(self, x: int, y: int, hold_s: float = 0.0) -> None:
        self.emu.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y, pressure=1)]))
        time.sleep(hold_s)
        self.emu.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y, pressure=0)]))

    def key(self, **event: object) -> None:
        self.emu.sendKey(pb.KeyboardEvent(**event))


@pytest.fixture
def served() -> Iterator[tuple[Phone, Client, GrpcServer]]:
    phone = Phone()
    server = GrpcServer(phone, free_port()).start()
    client = Client(server.port)
    yield phone, client, server
    client.channel.close()
    server.stop(None)


def screencap(phone: Phone) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(phone.shell("screencap -p").stdout)).convert("RGB"))


def test_status_reports_a_booted_phone_and_its_hardware(served) -> None:
    phone, client, _ = served
    status = client.emu.getStatus(empty_pb2.Empty())
    assert status.booted
    config = {e.key: e.value for e in status.hardwareConfig.entry}
    assert (config["hw.lcd.width"], config["hw.lcd.height"], config["hw.lcd.density"]) == ("1080", "2400", "420")
    assert config["avd.name"] == phone.avd_name
    time.sleep(0.05)
    assert client.emu.getStatus(empty_pb2.Empty()).uptime > status.uptime >= 0
    displays = client.emu.getDisplayConfigurations(empty_pb2.Empty()).displays
    assert [(d.display, d.width, d.height, d.dpi) for d in displays] == [(0, 1080, 2400, 420)]


def test_screenshots_in_every_format_match_screencap(served) -> None:
    phone, client, _ = served
    phone.launch("com.android.settings")
    expected = screencap(phone)
    rgba = client.pixels()
    assert rgba.shape == (2400, 1080, 4) and (rgba[:, :, 3] == 255).all()
    assert np.array_equal(rgba[:, :, :3], expected)

    rgb = client.emu.getScreenshot(pb.ImageFormat(format=pb.ImageFormat.RGB888))
    assert (rgb.format.format, rgb.format.width, rgb.format.height) == (pb.ImageFormat.RGB888, 1080, 2400)
    assert np.array_equal(np.frombuffer(rgb.image, np.uint8).reshape(2400, 1080, 3), expected)

    png = client.emu.getScreenshot(pb.ImageFormat(format=pb.ImageFormat.PNG))
    assert png.image.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.image)).convert("RGB")), expected)
    assert png.format.rotation.rotation == pb.Rotation.PORTRAIT


@pytest.mark.parametrize(
    ("want", "got"),
    [((540, 1200), (540, 1200)), ((270, 1000), (270, 600)), ((1000, 600), (270, 600)), ((0, 500), (1080, 2400))],
)
def test_screenshot_scaling_keeps_the_aspect_ratio_as_the_emulator_does(served, want, got) -> None:
    _, client, _ = served
    image = client.emu.getScreenshot(pb.ImageFormat(format=pb.ImageFormat.RGB888, width=want[0], height=want[1]))
    assert (image.format.width, image.format.height) == got
    assert len(image.image) == got[0] * got[1] * 3
    assert keep_aspect(1080, 2400, 540, 1200) == (540, 1200)


def test_touch_taps_the_element_under_the_finger(served) -> None:
    phone, client, _ = served
    x, y = phone.find(text="Settings").center
    client.tap(x, y)
    assert phone.current_activity() == ("com.android.settings", ".Settings")
    x, y = phone.find(text="Display").center
    client.emu.sendMouse(pb.MouseEvent(x=x, y=y, buttons=1))
    client.emu.sendMouse(pb.MouseEvent(x=x, y=y, buttons=0))
    assert phone.find(text="Dark theme") is not None
    before = phone.state.input_events
    client.emu.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y, pressure=0)]))  # a lift with no finger down
    assert phone.state.input_events == before


def test_a_drag_or_a_held_finger_is_not_a_tap(served) -> None:
    phone, client, _ = served
    phone.launch("com.android.settings")
    x, y = phone.find(text="Display").center
    events = phone.state.input_events
    client.emu.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y, pressure=1)]))
    client.emu.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y - 600, pressure=1)]))
    client.emu.sendTouch(pb.TouchEvent(touches=[pb.Touch(x=x, y=y - 600, pressure=0)]))
    assert phone.state.input_events == events + 1  # one gesture
    client.tap(x, y, hold_s=0.6)  # past the long-press timeout: the row has no long-click action
    assert phone.find(text="Dark theme") is None
    client.tap(x, y)
    assert phone.find(text="Dark theme") is not None


def test_keys_by_code_name_and_text(served) -> None:
    phone, client, _ = served
    phone.launch("com.android.settings")
    client.key(codeType=KEY.XKB, eventType=KEY.keypress, keyCode=158 + 8)  # evdev KEY_BACK
    assert phone.current_activity()[0] == "com.google.android.apps.nexuslauncher"
    phone.launch("com.android.settings")
    client.key(key="GoHome", eventType=KEY.keypress)
    assert phone.current_activity()[0] == "com.google.android.apps.nexuslauncher"


def test_typing_goes_into_the_focused_field(served) -> None:
    phone, client, _ = served
    phone.launch("com.google.android.contacts")
    edit = next(n for w in phone.windows() for n in w.walk() if n.cls == "android.widget.EditText")
    client.tap(*edit.center)
    client.key(text="wi")
    client.key(codeType=KEY.Evdev, eventType=KEY.keydown, keyCode=42)  # shift down
    client.key(codeType=KEY.Evdev, eventType=KEY.keypress, keyCode=33)  # f
    client.key(codeType=KEY.Evdev, eventType=KEY.keyup, keyCode=42)
    client.key(key="i", eventType=KEY.keypress)
    client.key(key="Backspace", eventType=KEY.keypress)
    client.key(key="i", eventType=KEY.keydown)
    client.key(key="i", eventType=KEY.keyup)  # the character was typed on the way down only
    edit = next(n for w in phone.windows() for n in w.walk() if n.cls == "android.widget.EditText")
    assert edit.text == "wiFi"


def test_snapshot_service_saves_lists_loads_and_deletes(served) -> None:
    phone, client, _ = served
    save = client.snap.SaveSnapshot(snap_pb.SnapshotPackage(snapshot_id="home"))
    assert save.success and save.snapshot_id == "home"
    phone.launch("com.android.settings")
    listed = client.snap.ListSnapshots(snap_pb.SnapshotFilter(statusFilter=snap_pb.SnapshotFilter.All))
    assert [s.snapshot_id for s in listed.snapshots] == ["home"] and listed.snapshots[0].size > 0
    assert client.snap.LoadSnapshot(snap_pb.SnapshotPackage(snapshot_id="home")).success
    assert phone.current_activity()[0] == "com.google.android.apps.nexuslauncher"
    listed = client.snap.ListSnapshots(snap_pb.SnapshotFilter())
    assert listed.snapshots[0].status == snap_pb.SnapshotDetails.Loaded

    missing = client.snap.LoadSnapshot(snap_pb.SnapshotPackage(snapshot_id="nope"))
    assert not missing.success and b"nope" in missing.err
    bad = client.snap.SaveSnapshot(snap_pb.SnapshotPackage(snapshot_id="../escape"))
    assert not bad.success and bad.err
    assert client.snap.DeleteSnapshot(snap_pb.SnapshotPackage(snapshot_id="home")).success
    assert not client.snap.ListSnapshots(snap_pb.SnapshotFilter()).snapshots
    assert not client.snap.DeleteSnapshot(snap_pb.SnapshotPackage(snapshot_id="home")).success


def test_unknown_methods_are_unimplemented_and_bad_arguments_invalid(served) -> None:
    _, client, _ = served
    with pytest.raises(grpc.RpcError) as err:
        client.emu.getBattery(empty_pb2.Empty())
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as err:
        next(client.emu.streamAudio(pb.AudioFormat()))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as err:
        client.snap.PullSnapshot(snap_pb.SnapshotPackage(snapshot_id="x")).next()
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    no_such = client.channel.unary_unary("/android.emulation.control.EmulatorController/noSuchMethod")
    with pytest.raises(grpc.RpcError) as err:
        no_such(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED

    displays = pb.DisplayConfigurations()
    displays.displays.add(display=7, width=720, height=1280, dpi=320)
    with pytest.raises(grpc.RpcError) as err:
        client.emu.setDisplayConfigurations(displays)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "[1, 3]" in err.value.details()
    garbage = client.channel.unary_unary("/android.emulation.control.EmulatorController/getScreenshot")
    with pytest.raises(grpc.RpcError) as err:
        garbage(b"\xff\xff\xff\xff")  # not a protobuf: the server cannot parse the request
    assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    assert client.emu.getStatus(empty_pb2.Empty()).booted  # the channel still works


def test_a_garbage_http2_connection_does_not_break_other_clients(served) -> None:
    _, client, server = served
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x07\x00\x00\x00\x00\x00garb" * 3)
        raw.sendall(b"\x17" * 4096)
        raw.settimeout(5)
        try:
            while raw.recv(4096):
                pass  # the server answers GOAWAY and closes this connection
        except (TimeoutError, ConnectionResetError):
            pass
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.emu.getStatus(empty_pb2.Empty()).booted
    fresh = Client(server.port)
    assert fresh.pixels(width=108, height=240).shape == (240, 108, 4)
    fresh.channel.close()


def test_shutdown_request_reaches_the_emulator(served) -> None:
    phone = Phone()
    stopped: list[bool] = []
    server = GrpcServer(phone, free_port(), on_shutdown=lambda: stopped.append(True)).start()
    client = Client(server.port)
    assert client.emu.getVmState(empty_pb2.Empty()).state == pb.VmRunState.RUNNING
    client.emu.setVmState(pb.VmRunState(state=pb.VmRunState.SHUTDOWN))
    assert stopped == [True]
    client.channel.close()
    server.stop(None)


def test_a_taken_port_is_an_error() -> None:
    phone = Phone()
    first = GrpcServer(phone, free_port()).start()
    try:
        with pytest.raises(OSError, match="gRPC port"):
            GrpcServer(phone, first.port).start()
    finally:
        first.stop(None)


# ---- the accessibility forwarder: the device side of android_env's A11yGrpcWrapper ---------------------
FORWARDER = "com.google.androidenv.accessibilityforwarder"
RECEIVER = f"{FORWARDER}/{FORWARDER}.FlagsBroadcastReceiver"
SERVICE = f"{FORWARDER}/{FORWARDER}.AccessibilityForwarder"


@pytest.fixture
def a11y_server() -> Iterator[tuple[a11y_servicer.A11yServicer, int]]:
    """android_env's own A11yServicer behind a gRPC server, as A11yGrpcWrapper starts it on the host."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = a11y_servicer.A11yServicer(latest_forest_only=False)
    a11y_pb2_grpc.add_A11yServiceServicer_to_server(servicer, server)
    port = free_port()
    server.add_secure_port(f"[::]:{port}", grpc.local_server_credentials())
    server.start()
    servicer.resume()
    yield servicer, port
    server.stop(None)


def install_forwarder(phone: Phone) -> None:
    phone.fs.write("/data/local/tmp/forwarder.apk", forwarder_apk())
    result = phone.shell("pm install -r -t -g /data/local/tmp/forwarder.apk")
    assert (result.exit_code, result.stdout) == (0, b"Success\n")


def test_pm_install_reads_the_package_from_the_binary_manifest() -> None:
    phone = Phone()
    assert FORWARDER not in phone.shell("pm list packages").stdout.decode()
    install_forwarder(phone)
    assert f"package:{FORWARDER}\n" in phone.shell("pm list packages").stdout.decode()
    assert phone.shell(f"pm path {FORWARDER}").exit_code == 0

    phone.fs.write("/data/local/tmp/other.apk", build_apk("com.example.notsimulated"))
    other = phone.shell("pm install /data/local/tmp/other.apk")
    assert other.exit_code == 1
    assert other.stdout.startswith(b"Failure [INSTALL_FAILED_NO_MATCHING_ABIS")
    assert "com.example.notsimulated" not in phone.shell("pm list packages").stdout.decode()
    phone.fs.write("/data/local/tmp/junk.apk", b"PK\x03\x04 not really a zip")
    junk = phone.shell("pm install /data/local/tmp/junk.apk")
    assert junk.exit_code == 1 and junk.stdout.startswith(b"Failure [INSTALL_PARSE_FAILED_NOT_APK")
    missing = phone.shell("pm install /data/local/tmp/none.apk")
    assert missing.exit_code == 1 and b"Unable to open file: /data/local/tmp/none.apk" in missing.stderr


@pytest.mark.parametrize("cut", [0, 8, 40, 100, 200])
def test_a_truncated_or_corrupt_manifest_is_an_apk_error(cut: int) -> None:
    manifest = zipfile.ZipFile(io.BytesIO(forwarder_apk())).read("AndroidManifest.xml")
    with pytest.raises(ApkError):
        parse_axml_manifest(manifest[:cut])
    corrupt = bytearray(manifest)
    corrupt[8:16] = b"\xff" * 8  # the string pool header
    with pytest.raises(ApkError):
        parse_axml_manifest(bytes(corrupt))


def parse_axml_manifest(xml: bytes) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("AndroidManifest.xml", xml)
    return read_manifest(buffer.getvalue()).package


def test_forwarder_streams_forests_of_the_current_ui_once_enabled(a11y_server) -> None:
    servicer, port = a11y_server
    phone = Phone()
    install_forwarder(phone)
    set_grpc = f'am broadcast -a accessibility_forwarder.intent.action.SET_GRPC --ei "port" {port} --es "host" 10.0.2.2'
    phone.shell(f"{set_grpc} -n {RECEIVER}")
    phone.shell(f"am broadcast -a accessibility_forwarder.intent.action.ENABLE_ACCESSIBILITY_TREE_LOGS -n {RECEIVER}")
    time.sleep(0.5)
    assert not servicer.gather_forests()  # the service is not enabled yet

    phone.shell(f"settings put secure enabled_accessibility_services {SERVICE}")
    phone.shell("settings put secure accessibility_enabled 1")
    assert wait_until(lambda: servicer._received_forests, 5)
    forest = servicer.gather_forests()[-1]
    texts = {n.text for w in forest.windows for n in w.tree.nodes}
    assert {"Settings", "Clock", "Contacts"} <= texts  # the launcher's icons
    app = forest.windows[0]
    assert app.window_type == app.TYPE_APPLICATION and app.is_active
    settings = next(n for n in app.tree.nodes if n.text == "Settings")
    assert settings.is_clickable and settings.is_visible_to_user and 16 in [a.id for a in settings.actions]
    node = phone.find(text="Settings")
    assert (settings.bounds_in_screen.left, settings.bounds_in_screen.bottom) == (node.bounds[0], node.bounds[3])
    assert all(child < len(app.tree.nodes) for n in app.tree.nodes for child in n.child_ids)
    assert app.tree.nodes[0].depth == 0 and max(n.depth for n in app.tree.nodes) >= 2

    phone.tap(*node.center)
    received = servicer._received_events
    assert wait_until(lambda: any(e.event.get("event_type") == "TYPE_WINDOW_STATE_CHANGED" for e in received), 5)
    servicer.gather_forests()
    assert wait_until(lambda: servicer._received_forests, 5)
    texts = {n.text for w in servicer.gather_forests()[-1].windows for n in w.tree.nodes}
    assert "Network & internet" in texts  # the tree follows the UI

    phone.shell(f"am broadcast -a accessibility_forwarder.intent.action.DISABLE_ACCESSIBILITY_TREE_LOGS -n {RECEIVER}")
    time.sleep(0.3)
    servicer.gather_forests()
    time.sleep(0.4)
    assert not servicer.gather_forests()  # tree logs off: no more forests


def test_forwarder_needs_installing_an_explicit_receiver_and_the_network(a11y_server) -> None:
    servicer, port = a11y_server
    phone = Phone()
    set_grpc = f"am broadcast -a accessibility_forwarder.intent.action.SET_GRPC --ei port {port} -n {RECEIVER}"
    enable = f"am broadcast -a accessibility_forwarder.intent.action.ENABLE_ACCESSIBILITY_TREE_LOGS -n {RECEIVER}"
    phone.shell(f"settings put secure enabled_accessibility_services {SERVICE}")
    phone.shell(set_grpc)
    phone.shell(enable)
    time.sleep(0.4)
    assert not servicer.gather_forests()  # not installed: nothing receives the broadcasts

    install_forwarder(phone)
    phone.shell(f"am broadcast -a accessibility_forwarder.intent.action.SET_GRPC --ei port {port}")  # implicit
    phone.shell(enable.replace(f" -n {RECEIVER}", ""))
    time.sleep(0.4)
    assert not servicer.gather_forests()  # manifest receivers get no implicit broadcasts

    phone.shell("settings put global airplane_mode_on 1")
    phone.shell(set_grpc)  # host defaults to 10.0.2.2
    phone.shell(enable)
    time.sleep(0.4)
    assert not servicer.gather_forests()  # airplane mode: the host is unreachable
    phone.shell("settings put global airplane_mode_on 0")
    assert wait_until(lambda: servicer._received_forests, 5)


def test_a_rotated_display_comes_back_in_the_panels_frame_and_touches_map_to_it(served) -> None:
    phone, client, _ = served
    phone.shell("settings put system user_rotation 1")  # landscape, as android_world's rotation tasks set it
    logical = screencap(phone)
    assert logical.shape == (1080, 2400, 3)
    panel = client.pixels()[:, :, :3]
    assert panel.shape == (2400, 1080, 3)  # the emulator's framebuffer keeps the panel's portrait shape
    assert np.array_equal(panel, np.rot90(logical, k=-1))  # content turned on the panel (clockwise here)
    from droidrl.envs.sim import services

    x, y = services.logical_to_physical(phone, *phone.find(text="Settings").center)
    client.tap(int(x), int(y))
    assert phone.current_activity() == ("com.android.settings", ".Settings")


def test_read_only_emulator_refuses_snapshot_saves() -> None:
    phone = Phone()
    server = GrpcServer(phone, free_port(), read_only=True).start()
    client = Client(server.port)
    try:
        reply = client.snap.SaveSnapshot(snap_pb.SnapshotPackage(snapshot_id="s"))
        assert not reply.success and b"-read-only" in reply.err
        assert not phone.list_snapshots()
    finally:
        client.channel.close()
        server.stop(None)


def emulator_script() -> str:
    return str(Path(sys.executable).parent / "droidrl-emulator")


@pytest.mark.slow
def test_droidrl_emulator_takes_android_envs_launch_flags_and_serves_grpc(tmp_path: Path) -> None:
    console, grpc_port = free_port(), free_port()
    env = dict(os.environ, HOME=str(tmp_path), ANDROID_AVD_HOME=str(tmp_path / "avd"))
    env.update(ANDROID_SDK_ROOT=str(tmp_path / "sdk"), ANDROID_ADB_SERVER_PORT=str(free_port()))
    # Exactly what EmulatorLauncher.launch_emulator_process builds (restrict_network and a snapshot included).
    args = ["-adb-path", "/usr/bin/adb", "-gpu", "swangle_indirect", "-no-audio", "-show-kernel", "-verbose"]
    args += [
        "-avd",
        "launched",
        "-grpc",
        str(grpc_port),
        "-no-skin",
        "-no-window",
        "-ports",
        f"{console},{console + 1}",
    ]
    args += ["-snapshot", "clean", "-feature", "AllowSnapshotMigration,MigratableSnapshotSave"]
    args += ["-network-user-mode-options", "restrict=y", "-wifi-user-mode-options", "restrict=y"]
    process = subprocess.Popen([emulator_script(), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = Client(grpc_port)
        assert client.emu.getStatus(empty_pb2.Empty()).booted
        assert client.pixels(width=540, height=1200).shape == (1200, 540, 4)
        client.emu.setVmState(pb.VmRunState(state=pb.VmRunState.SHUTDOWN))
        assert process.wait(10) == 0
        client.channel.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read().decode()
    assert f"Started GRPC server at 127.0.0.1:{grpc_port}" in output
    assert "Saved snapshot 'clean' on exit" in output  # -snapshot NAME saves on exit, as the emulator does

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        busy = subprocess.run(
            [emulator_script(), "-avd", "busy", "-grpc", str(busy_port), "-ports", f"{console},{console + 1}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert busy.returncode == 1
    assert f"-grpc: cannot listen on gRPC port {busy_port}" in busy.stderr


def test_stream_screenshot_sends_a_frame_per_screen_change(served) -> None:
    phone, client, _ = served
    stream = client.emu.streamScreenshot(pb.ImageFormat(format=pb.ImageFormat.RGB888, width=108, height=240))
    first = next(stream)
    assert (first.format.width, first.format.height) == (108, 240)
    phone.launch("com.android.settings")
    second = next(stream)
    assert second.seq > first.seq and second.image != first.image
    stream.cancel()
    assert client.emu.getStatus(empty_pb2.Empty()).booted
