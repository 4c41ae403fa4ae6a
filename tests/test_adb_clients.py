"""Independent adb clients against the simulated phone's adbd: adb-shell, adbutils, Debian's adb and android_env.

Each drives the phone the way it drives a real API 33 userdebug emulator: file transfers, `adb root`
(adbd restarts, the client waits for the device to come back), and flow control under a fast client.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import threading
import time
import tracemalloc
from types import SimpleNamespace

import adbutils
import pytest
from adb_shell.adb_device import AdbDeviceTcp

ROOT_ID = (
    "uid=0(root) gid=0(root) groups=0(root),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),"
    "1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),"
    "3009(readproc),3011(uhid),3012(readtracefs) context=u:r:su:s0"
)


# ---- adb-shell: a host-side protocol implementation of its own, straight to adbd's port ---------------------
@pytest.fixture
def adb_shell_device(sim_phone_adbd):
    device = AdbDeviceTcp("127.0.0.1", sim_phone_adbd.port, default_transport_timeout_s=10)
    assert device.connect(rsa_keys=None, auth_timeout_s=1)
    yield device
    device.close()


def test_adb_shell_push_pull_shell_byte_exact(adb_shell_device, sim_phone_adbd):
    content = os.urandom(4 * 1024 * 1024 + 123)  # many DATA frames and WRTE packets, an odd tail
    adb_shell_device.push(io.BytesIO(content), "/sdcard/Download/blob.bin", read_timeout_s=10)
    assert sim_phone_adbd.phone.fs.read("/sdcard/Download/blob.bin") == content
    back = io.BytesIO()
    adb_shell_device.pull("/sdcard/Download/blob.bin", back, read_timeout_s=10)
    assert back.getvalue() == content
    assert adb_shell_device.stat("/sdcard/Download/blob.bin")[1] == len(content)
    assert adb_shell_device.shell("echo hi; whoami", read_timeout_s=10) == "hi\nshell\n"
    # The same connection goes on with more transfers (each sync stream ended with CLSE both ways).
    adb_shell_device.push(io.BytesIO(b"small"), "/sdcard/small.txt", read_timeout_s=10)
    assert sim_phone_adbd.phone.fs.read("/sdcard/small.txt") == b"small"


# ---- Debian's adb -------------------------------------------------------------------------------------------
@pytest.mark.adb
def test_debian_adb_root_then_whoami(emulator, adb_server):
    adb = lambda *args: adb_server.adb("-s", emulator.serial, *args)  # noqa: E731
    assert adb("shell", "whoami").stdout == b"shell\n"
    root = adb("root")  # adbd restarts; the client waits for the device to go away and come back
    assert (root.returncode, root.stdout, root.stderr) == (0, b"restarting adbd as root\n", b"")
    assert adb("shell", "whoami").stdout == b"root\n"
    assert adb("shell", "id").stdout == ROOT_ID.encode() + b"\n"
    assert adb("root").stdout == b"adbd is already running as root\n"
    unroot = adb("unroot")
    assert (unroot.returncode, unroot.stdout) == (0, b"restarting adbd as non root\n")
    assert adb("shell", "whoami").stdout == b"shell\n"
    assert adb("unroot").stdout == b"adbd not running as root\n"
    assert adb_server.devices()[emulator.serial] == "device"


@pytest.mark.adb
def test_debian_adb_push_beyond_the_storage_fails(emulator, adb_server, tmp_path):
    fs = emulator.phone.fs
    in_files = sum(len(fs.read(path)) for path in fs.walk_files())
    fs.capacity = in_files + 2 * 1024 * 1024  # a phone whose storage is nearly full
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(8 * 1024 * 1024))
    push = adb_server.adb("-s", emulator.serial, "push", str(src), "/sdcard/big.bin")
    assert push.returncode == 1
    assert b"remote write failed: No space left on device" in push.stdout + push.stderr
    assert not fs.exists("/sdcard/big.bin") and fs.used() == in_files
    fs.capacity += 8 * 1024 * 1024  # room again: the same push now works
    assert adb_server.adb("-s", emulator.serial, "push", str(src), "/sdcard/big.bin").returncode == 0
    assert fs.read("/sdcard/big.bin") == src.read_bytes()


@pytest.mark.adb
def test_a_push_is_written_as_it_arrives(emulator, adb_server, tmp_path):
    """A push costs the phone about the file's size in memory: no second copy of it is built on the way."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(32 * 1024 * 1024))
    tracemalloc.start()
    try:
        push = adb_server.adb("-s", emulator.serial, "push", str(src), "/sdcard/big.bin")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert push.returncode == 0, push.stderr
    assert peak < 1.5 * 32 * 1024 * 1024, f"a 32 MiB push took {peak / 2**20:.0f} MiB"
    assert emulator.phone.fs.read("/sdcard/big.bin") == src.read_bytes()


@pytest.mark.adb
@pytest.mark.slow
def test_a_fast_client_is_throttled_not_buffered(emulator, adb_server, monkeypatch):
    """64 MiB piped into `adb shell` while the shell is busy: adbd withholds OKAYs instead of buffering it."""
    release = threading.Event()

    def busy_shell(command, **_):
        release.wait(30)
        return SimpleNamespace(stdout=b"", stderr=b"", exit_code=0)

    monkeypatch.setattr(emulator.phone, "shell", busy_shell)
    args = [adb_server.adb_path, "-P", str(adb_server.port), "-s", emulator.serial, "shell"]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    written = [0]

    def feed() -> None:
        line = b"#" * (1024 * 1024 - 1) + b"\n"
        try:
            proc.stdin.write(b"sleep 1000\n")
            for _ in range(64):
                proc.stdin.write(line)
                written[0] += len(line)
        except (BrokenPipeError, ValueError):
            pass

    tracemalloc.start()
    feeder = threading.Thread(target=feed, daemon=True)
    try:
        feeder.start()
        feeder.join(timeout=4)  # an adbd that acknowledges everything takes it all in well within this
        peak = tracemalloc.get_traced_memory()[1]
        assert feeder.is_alive(), "adbd acknowledged 64 MiB the busy shell never read"
        assert peak < 16 * 1024 * 1024, f"adbd's memory grew by {peak / 2**20:.0f} MiB"
        assert written[0] < 32 * 1024 * 1024  # pipes, socket buffers and one packet in the adb server, no more
    finally:
        tracemalloc.stop()
        release.set()
        proc.kill()
        proc.wait(10)
        feeder.join(timeout=10)


# ---- adbutils through the adb server ------------------------------------------------------------------------
@pytest.mark.adb
def test_adbutils_root(emulator, adb_server, monkeypatch):
    monkeypatch.setenv("ADBUTILS_ADB_PATH", adb_server.adb_path)
    client = adbutils.AdbClient(host="127.0.0.1", port=adb_server.port)
    device = client.device(serial=emulator.serial)
    assert device.shell("whoami") == "shell"
    assert device.root() == "restarting adbd as root\n"
    deadline = time.monotonic() + 10  # adbutils does not wait: the adb server reconnects within a second or two
    while adb_server.devices().get(emulator.serial) == "device":
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    adb_server.wait_for_device(emulator.serial)
    assert device.shell("whoami") == "root"
    assert device.root() == "adbd is already running as root\n"


# ---- android_world's set_root_if_needed through android_env's AdbController ------------------------------------
@pytest.mark.adb
def test_android_world_set_root_if_needed(emulator, adb_server):
    from android_env.components import adb_call_parser, adb_controller, config_classes
    from android_env.proto import adb_pb2

    adb_utils = pytest.importorskip("android_world.env.adb_utils")
    config = config_classes.AdbControllerConfig(
        adb_path=adb_server.adb_path, adb_server_port=adb_server.port, device_name=emulator.serial
    )
    parser = adb_call_parser.AdbCallParser(adb_controller.AdbController(config))
    env = SimpleNamespace(execute_adb_call=parser.parse)  # all of AndroidEnvInterface that adb_utils uses here

    # It runs `adb -P PORT -s SERIAL shell whoami`, and `adb ... root` unless the answer is `root`.
    first = adb_utils.set_root_if_needed(env, timeout_sec=30)
    assert first.status == adb_pb2.AdbResponse.Status.OK
    assert first.generic.output == b"restarting adbd as root\n"
    second = adb_utils.set_root_if_needed(env, timeout_sec=30)
    assert (second.status, second.generic.output) == (adb_pb2.AdbResponse.Status.OK, b"root\n")
    whoami = adb_utils.issue_generic_request(["shell", "id"], env)
    assert whoami.generic.output.decode() == ROOT_ID + "\n"


# ---- stdin and streaming output ---------------------------------------------------------------------------------
@pytest.mark.adb
def test_debian_adb_shell_and_exec_in_pass_stdin_to_the_command(emulator, adb_server, tmp_path):
    adb = lambda *args, **kw: adb_server.adb("-s", emulator.serial, *args, **kw)  # noqa: E731
    fs = emulator.phone.fs
    assert adb("shell", "cat > /sdcard/hi.txt", input=b"hi\n").returncode == 0
    assert fs.read("/sdcard/hi.txt") == b"hi\n"
    blob = os.urandom(3 * 1024 * 1024 + 7)  # past the unread-input backlog: flow control, not buffering
    done = adb("shell", "cat > /sdcard/blob.bin; echo $?", input=blob)
    assert (done.stdout, fs.read("/sdcard/blob.bin") == blob) == (b"0\n", True)
    assert adb("shell", "wc -l", input=b"a\nb\nc\n").stdout == b"3\n"
    assert adb("exec-in", "cat > /sdcard/exec.bin", input=blob[:100_000]).returncode == 0
    deadline = time.monotonic() + 10  # the client closes the stream once it has sent the data, not waiting
    while not (fs.exists("/sdcard/exec.bin") and fs.read("/sdcard/exec.bin") == blob[:100_000]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # A command that does not read stdin runs at once, though the host never closes its input.
    args = [adb_server.adb_path, "-P", str(adb_server.port), "-s", emulator.serial, "shell", "echo ran"]
    proc = subprocess.Popen(args, env=adb_server.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ran\n"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.adb
def test_debian_adb_logcat_clears_dumps_and_streams(emulator, adb_server):
    from droidrl.envs.sim import adbd

    adb = lambda *args: adb_server.adb("-s", emulator.serial, *args)  # noqa: E731
    assert adb("logcat", "-b", "all", "-c").returncode == 0  # android_env's AdbLogStream does this first
    assert adb("logcat", "-d").stdout == b""
    adb("shell", "am start -n com.android.settings/.Settings")
    dumped = adb("logcat", "-d", "-v", "threadtime", "ActivityTaskManager:I", "*:S")
    lines = dumped.stdout.decode().splitlines()
    assert dumped.returncode == 0 and lines[0] == "--------- beginning of main"
    assert re.fullmatch(
        r"\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} +\d+ +\d+ I ActivityTaskManager: "
        r"START u0 \{flg=0x10000000 cmp=com\.android\.settings/\.Settings\} from uid 2000",
        lines[1],
    ), lines
    assert adb("logcat", "-c").returncode == 0 and adb("logcat", "-d").stdout == b""
    # Without -d it streams: lines appear as activities start, until the host closes the stream.
    args = [adb_server.adb_path, "-P", str(adb_server.port), "-s", emulator.serial, "logcat", "-v", "epoch"]
    proc = subprocess.Popen([*args, "ActivityTaskManager:I", "*:S"], env=adb_server.env, stdout=subprocess.PIPE)
    try:
        time.sleep(1)  # logcat is waiting for lines by now
        adb("shell", "am start -n com.google.android.deskclock/com.android.deskclock.DeskClock")
        assert proc.stdout.readline() == b"--------- beginning of main\n"
        line = proc.stdout.readline().decode()
        assert re.fullmatch(r" +\d+\.\d{3} +\d+ +\d+ I ActivityTaskManager: START u0 .*deskclock.*\n", line), line
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10  # the closed stream hangs logcat up on the phone
    while adbd._shell_counts.get(id(emulator.phone)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not adbd._shell_counts.get(id(emulator.phone))
