"""The simulated phone's adbd, driven by Debian's real adb, by adbutils, and by raw protocol packets."""

from __future__ import annotations

import contextlib
import os
import pty
import socket
import stat
import struct
import subprocess
import termios
import threading
import time
import tracemalloc
from types import SimpleNamespace

import adbutils
import pytest

from droidrl.envs.sim.adbd import adbd_in_thread, announce_to_adb_server


# ---- a minimal adb host for raw-protocol tests ---------------------------------------------------------
def _cmd(name: bytes) -> int:
    return int.from_bytes(name, "little")


CNXN, OPEN, OKAY, WRTE, CLSE = (_cmd(n) for n in (b"CNXN", b"OPEN", b"OKAY", b"WRTE", b"CLSE"))
HOST_MAX_PAYLOAD = 1024 * 1024
A_VERSION_MIN, A_VERSION = 0x01000000, 0x01000001  # the second skips checksums


class RawHost:
    """Speaks the adb packet protocol to adbd directly, the way the adb server does."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.version = A_VERSION

    def close(self) -> None:
        self.sock.close()

    def send(self, command: int, arg0: int = 0, arg1: int = 0, data: bytes = b"") -> None:
        header = struct.pack("<6I", command, arg0, arg1, len(data), sum(data), command ^ 0xFFFFFFFF)
        self.sock.sendall(header + data)

    def _read_exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"adbd closed the connection after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def recv(self) -> tuple[int, int, int, bytes]:
        command, arg0, arg1, length, checksum, magic = struct.unpack("<6I", self._read_exactly(24))
        assert magic == command ^ 0xFFFFFFFF
        data = self._read_exactly(length)
        # adbd sums the payload only for hosts older than A_VERSION (and for everything before the CNXN).
        assert checksum == (sum(data) & 0xFFFFFFFF if self.version < A_VERSION else 0)
        return command, arg0, arg1, data

    def connect(self, max_payload: int = HOST_MAX_PAYLOAD, version: int = A_VERSION) -> tuple[int, int, bytes]:
        self.version = version
        self.send(CNXN, version, max_payload, b"host::features=shell_v2\0")
        command, version, device_max_payload, banner = self.recv()
        assert command == CNXN
        return version, device_max_payload, banner

    def open(self, local_id: int, service: str) -> int:
        """OPEN a service and return adbd's id for the stream."""
        self.send(OPEN, local_id, 0, service.encode() + b"\0")
        command, remote_id, arg1, _ = self.recv()
        assert (command, arg1) == (OKAY, local_id)
        return remote_id

    def read_until_close(self, local_id: int) -> bytes:
        """Everything adbd writes on a stream (each WRTE acknowledged) until its CLSE."""
        data = b""
        while True:
            command, remote_id, arg1, payload = self.recv()
            assert arg1 == local_id
            if command == CLSE:
                return data
            if command == WRTE:
                data += payload
                self.send(OKAY, local_id, remote_id)

    def is_dropped(self) -> bool:
        """True once adbd has closed this TCP connection."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


@pytest.fixture
def raw_host(sim_phone_adbd):
    host = RawHost(sim_phone_adbd.port)
    yield host
    host.close()


def sync_request(sync_id: bytes, path: str | bytes) -> bytes:
    path = path.encode() if isinstance(path, str) else path
    return sync_id + struct.pack("<I", len(path)) + path


def expected_banner(phone) -> bytes:
    p = phone.props
    return (
        f"device::ro.product.name={p['ro.product.name']};ro.product.model={p['ro.product.model']};"
        f"ro.product.device={p['ro.product.device']};features=shell_v2,stat_v2,fixed_push_mkdir"
    ).encode()


# ---- raw protocol ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host_max", "host_version", "device_max"),
    [
        (1024 * 1024, A_VERSION, 1024 * 1024),
        (64 * 1024, A_VERSION, 64 * 1024),
        (8 * 1024 * 1024, A_VERSION, 1024 * 1024),  # adbd's MAX_PAYLOAD caps it
        (1024 * 1024, A_VERSION_MIN, 1024 * 1024),  # an old host (adb-shell): checksums in every reply
    ],
)
def test_cnxn_reply_has_version_max_payload_and_banner(raw_host, sim_phone_adbd, host_max, host_version, device_max):
    version, max_payload, banner = raw_host.connect(host_max, host_version)
    assert version == A_VERSION  # adbd always announces its own version
    assert max_payload == device_max
    assert banner == expected_banner(sim_phone_adbd.phone)


def test_open_before_cnxn_is_ignored_and_unknown_service_gets_close(raw_host):
    raw_host.send(OPEN, 7, 0, b"sync:\0")  # not online yet: adbd ignores it
    raw_host.connect()
    raw_host.send(OPEN, 8, 0, b"bogus-service:xyz\0")
    assert raw_host.recv() == (CLSE, 0, 8, b"")


def test_host_write_is_acknowledged_and_sync_stat_answers(raw_host, sim_phone_adbd):
    sim_phone_adbd.phone.fs.write("/sdcard/a.txt", b"12345", mtime=1_700_000_000)
    raw_host.connect()
    remote = raw_host.open(1, "sync:")
    raw_host.send(WRTE, 1, remote, sync_request(b"STAT", "/sdcard/a.txt"))
    assert raw_host.recv() == (OKAY, remote, 1, b"")
    command, _, _, reply = raw_host.recv()
    assert command == WRTE
    assert reply == b"STAT" + struct.pack("<III", stat.S_IFREG | 0o660, 5, 1_700_000_000)


def test_output_waits_for_the_hosts_okay(raw_host, sim_phone_adbd):
    content = os.urandom(20_000)
    sim_phone_adbd.phone.fs.write("/sdcard/blob", content)
    raw_host.connect(max_payload=4096)
    remote = raw_host.open(1, "sync:")
    raw_host.send(WRTE, 1, remote, sync_request(b"RECV", "/sdcard/blob"))
    assert raw_host.recv()[0] == OKAY
    command, _, _, first = raw_host.recv()
    assert command == WRTE and len(first) == 4096
    raw_host.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        raw_host.sock.recv(1)  # nothing more until we acknowledge
    raw_host.sock.settimeout(5)
    raw_host.send(OKAY, 1, remote)
    raw_host.send(WRTE, 1, remote, sync_request(b"QUIT", ""))
    frames, received = first + raw_host.read_until_close(1), b""
    while frames[:4] == b"DATA":
        (size,) = struct.unpack("<I", frames[4:8])
        received, frames = received + frames[8 : 8 + size], frames[8 + size :]
    assert frames == b"DONE\0\0\0\0"
    assert received == content


@pytest.mark.parametrize(
    "bad_bytes",
    [
        struct.pack("<6I", OPEN, 1, 0, 0, 0, 0x12345678),  # bad magic
        struct.pack("<6I", WRTE, 1, 1, 2 * 1024 * 1024, 0, WRTE ^ 0xFFFFFFFF),  # oversize payload
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # garbage
        b"CNXN\0\0\0\x01",  # truncated header, then EOF
    ],
    ids=["bad-magic", "oversize", "garbage", "truncated-header"],
)
def test_malformed_packet_drops_only_that_connection(sim_phone_adbd, bad_bytes):
    good, bad = RawHost(sim_phone_adbd.port), RawHost(sim_phone_adbd.port)
    try:
        good.connect()
        bad.connect()
        bad.sock.sendall(bad_bytes)
        if len(bad_bytes) < 24:
            bad.sock.shutdown(socket.SHUT_WR)  # a header cut short by the end of the connection
        assert bad.is_dropped()
        remote = good.open(1, "sync:")
        good.send(WRTE, 1, remote, sync_request(b"STAT", "/sdcard") + sync_request(b"QUIT", ""))
        assert good.read_until_close(1).startswith(b"STAT" + struct.pack("<I", stat.S_IFDIR | 0o771))
        late = RawHost(sim_phone_adbd.port)  # and the server still accepts new connections
        assert late.connect()[0] == 0x01000001
        late.close()
    finally:
        good.close()
        bad.close()


@pytest.mark.parametrize(
    ("request_bytes", "message"),
    [
        (b"STAT" + struct.pack("<I", 5000), "path too long"),
        (sync_request(b"XXXX", ""), "unknown command 58585858"),
        (sync_request(b"SEND", "/sdcard/x"), "missing , in ID_SEND"),
        # After a FAIL in a push, adbd reads on until the host's DONE before it closes the stream.
        (sync_request(b"SEND", "/sdcard/x,33188") + b"JUNK\0\0\0\0" + b"DONE\0\0\0\0", "invalid data message"),
        (
            sync_request(b"SEND", "/sdcard/x,33188") + b"DATA" + struct.pack("<I", 100_000) + b"DONE\0\0\0\0",
            "oversize data message",
        ),
        (sync_request(b"RECV", "/sdcard/missing.txt"), "open failed: No such file or directory"),
        (sync_request(b"RECV", "/sdcard"), "read failed: Is a directory"),
        (sync_request(b"SEND", "/sdcard,33188") + b"DONE\0\0\0\0", "couldn't create file: Is a directory"),
    ],
    ids=[
        "path-too-long",
        "unknown-id",
        "send-no-mode",
        "send-bad-frame",
        "send-oversize",
        "recv-missing",
        "recv-directory",
        "send-onto-directory",
    ],
)
def test_bad_sync_request_gets_fail_and_close(raw_host, request_bytes, message):
    raw_host.connect()
    remote = raw_host.open(1, "sync:")
    raw_host.send(WRTE, 1, remote, request_bytes)
    reply = raw_host.read_until_close(1)
    assert reply == b"FAIL" + struct.pack("<I", len(message)) + message.encode()


def test_truncated_sync_frame_leaves_no_file_and_connection_usable(raw_host, sim_phone_adbd):
    raw_host.connect()
    remote = raw_host.open(1, "sync:")
    truncated = sync_request(b"SEND", "/sdcard/part.bin,33188") + b"DATA" + struct.pack("<I", 1000) + b"x" * 10
    raw_host.send(WRTE, 1, remote, truncated)
    assert raw_host.recv() == (OKAY, remote, 1, b"")
    raw_host.send(CLSE, 1, remote)  # the host gives up in the middle of the frame
    assert raw_host.recv() == (CLSE, remote, 1, b"")  # adbd closes its end and says so
    remote = raw_host.open(2, "sync:")
    raw_host.send(WRTE, 2, remote, sync_request(b"STAT", "/sdcard/part.bin"))
    assert raw_host.recv()[0] == OKAY
    assert raw_host.recv()[3] == b"STAT" + bytes(12)  # all zero: no such file
    assert not sim_phone_adbd.phone.fs.exists("/sdcard/part.bin")


def test_open_with_a_delayed_ack_buffer_is_refused(raw_host):
    raw_host.connect()  # we advertise no delayed_ack, so OPEN's arg1 must be 0
    raw_host.send(OPEN, 5, 65536, b"shell:echo hi\0")
    assert raw_host.recv() == (CLSE, 0, 5, b"")
    assert raw_host.open(6, "shell:echo hi")  # the connection goes on


def test_packet_over_the_negotiated_max_payload_drops_the_connection(sim_phone_adbd):
    bad = RawHost(sim_phone_adbd.port)
    try:
        assert bad.connect(max_payload=4096)[1] == 4096
        remote = bad.open(1, "shell:")
        bad.send(WRTE, 1, remote, b"echo hi\n" * 1024)  # 8 KiB: more than this host said it takes
        assert bad.is_dropped()
    finally:
        bad.close()


def test_okay_for_a_closed_stream_gets_close(raw_host):
    raw_host.connect()
    raw_host.send(OKAY, 3, 99)  # adbd has no stream 99: it tells the host to close its end
    assert raw_host.recv() == (CLSE, 99, 3, b"")


def test_host_data_is_acknowledged_only_as_the_service_reads_it(sim_phone_adbd, monkeypatch):
    """A host that writes faster than the service reads is held back by withheld OKAYs, not buffered."""
    release = threading.Event()

    def slow_shell(command, **_):
        release.wait(20)
        return SimpleNamespace(stdout=b"", stderr=b"", exit_code=0)

    monkeypatch.setattr(sim_phone_adbd.phone, "shell", slow_shell)
    host = RawHost(sim_phone_adbd.port)
    tracemalloc.start()
    try:
        host.connect()
        remote = host.open(1, "shell,raw:")  # interactive, no echo: it reads on only when `sleep` is done
        host.send(WRTE, 1, remote, b"sleep 100\n")
        assert host.recv() == (OKAY, remote, 1, b"")
        block, acknowledged = b"#" * 65535 + b"\n", 0
        host.sock.settimeout(1)
        with contextlib.suppress(TimeoutError):
            for _ in range(1024):  # 64 MiB, as fast as adbd acknowledges
                host.send(WRTE, 1, remote, block)
                assert host.recv() == (OKAY, remote, 1, b"")
                acknowledged += len(block)
        peak = tracemalloc.get_traced_memory()[1]
        assert acknowledged <= 512 * 1024  # about one socket buffer's worth, then the host has to wait
        assert peak < 8 * 1024 * 1024
        release.set()  # the shell reads on, and the withheld OKAY comes
        host.sock.settimeout(10)
        assert host.recv() == (OKAY, remote, 1, b"")
    finally:
        tracemalloc.stop()
        release.set()
        host.close()


def test_root_restarts_adbd_and_drops_every_connection(sim_phone_adbd):
    phone = sim_phone_adbd.phone
    host, other = RawHost(sim_phone_adbd.port), RawHost(sim_phone_adbd.port)
    try:
        host.connect()
        other.connect()
        host.open(1, "root:")
        assert host.recv()[::3] == (WRTE, b"restarting adbd as root\n")
        assert host.recv()[0] == CLSE
        assert host.is_dropped() and other.is_dropped()  # adbd restarted: every host has to reconnect
        assert phone.adb_root
    finally:
        host.close()
        other.close()
    again = RawHost(sim_phone_adbd.port)
    try:
        again.connect()
        again.open(1, "shell:whoami; id")
        assert again.read_until_close(1) == (
            b"root\nuid=0(root) gid=0(root) groups=0(root),1004(input),1007(log),1011(adb),1015(sdcard_rw),"
            b"1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),"
            b"3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs) context=u:r:su:s0\n"
        )
        again.open(2, "root:")  # nothing to restart: the connection stays
        assert again.read_until_close(2) == b"adbd is already running as root\n"
        again.open(3, "unroot:")
        assert again.read_until_close(3) == b"restarting adbd as non root\n"
        assert again.is_dropped() and not phone.adb_root
    finally:
        again.close()


@pytest.mark.parametrize(
    ("service", "build_type", "reply"),
    [
        ("unroot:", "userdebug", b"adbd not running as root\n"),
        ("root:", "user", b"adbd cannot run as root in production builds\n"),
    ],
)
def test_root_services_that_change_nothing_keep_the_connection(raw_host, sim_phone_adbd, service, build_type, reply):
    sim_phone_adbd.phone.props["ro.build.type"] = build_type
    raw_host.connect()
    raw_host.open(1, service)
    assert raw_host.read_until_close(1) == reply
    raw_host.open(2, "shell:whoami")
    assert raw_host.read_until_close(2) == b"shell\n"
    assert not sim_phone_adbd.phone.adb_root


def test_root_state_belongs_to_the_phone_and_a_new_phone_starts_unrooted(sim_phone_adbd):
    from droidrl.envs.sim.phone import Phone

    host = RawHost(sim_phone_adbd.port)
    try:
        host.connect()
        host.open(1, "root:")
        assert host.read_until_close(1) == b"restarting adbd as root\n"
    finally:
        host.close()
    with adbd_in_thread(sim_phone_adbd.phone) as second_port:  # another adbd for the same phone
        second = RawHost(second_port)
        try:
            second.connect()
            second.open(1, "shell:whoami")
            assert second.read_until_close(1) == b"root\n"
        finally:
            second.close()
    assert not Phone().adb_root  # a cold boot starts adbd as shell


def test_slow_command_does_not_block_other_connections(sim_phone_adbd, monkeypatch):
    release = threading.Event()

    def slow_shell(command, **_):
        release.wait(10)
        return SimpleNamespace(stdout=b"done\n", stderr=b"", exit_code=0)

    monkeypatch.setattr(sim_phone_adbd.phone, "shell", slow_shell)
    busy, other = RawHost(sim_phone_adbd.port), RawHost(sim_phone_adbd.port)
    try:
        busy.connect()
        busy.open(1, "shell:sleep 100")
        start = time.monotonic()
        assert other.connect()[0] == 0x01000001  # the event loop still serves others
        other.send(OPEN, 1, 0, b"bogus:\0")
        assert other.recv() == (CLSE, 0, 1, b"")
        assert time.monotonic() - start < 2
        release.set()
        assert busy.read_until_close(1) == b"done\n"
    finally:
        release.set()
        busy.close()
        other.close()


# ---- the real adb ---------------------------------------------------------------------------------------
@pytest.fixture
def device(adb_server, sim_phone_adbd) -> str:
    """The phone, connected to the private adb server with `adb connect`; returns its serial."""
    result = adb_server.adb("connect", sim_phone_adbd.address)
    assert result.stdout.decode().startswith(f"connected to {sim_phone_adbd.address}"), result
    adb_server.wait_for_device(sim_phone_adbd.address)
    return sim_phone_adbd.address


@pytest.fixture
def adb(adb_server, device):
    """`adb -s <phone> ARGS`."""
    return lambda *args, input=b"": adb_server.adb("-s", device, *args, input=input)


@pytest.mark.adb
def test_adb_devices_lists_the_phone(adb_server, device, sim_phone_adbd):
    # Other sessions' emulators on this machine may show up too; only ours is looked at.
    assert f"{device}\tdevice" in adb_server.adb("devices").stdout.decode().splitlines()[1:]
    line = next(x for x in adb_server.adb("devices", "-l").stdout.decode().splitlines() if x.startswith(device))
    props = sim_phone_adbd.phone.props
    assert line.split() == [
        device,
        "device",
        f"product:{props['ro.product.name']}",
        f"model:{props['ro.product.model']}",
        f"device:{props['ro.product.device']}",
        line.split()[-1],  # transport_id:N, N counting every device this server has seen
    ]
    assert line.split()[-1].startswith("transport_id:")
    assert adb_server.adb("-s", device, "features").stdout.split() == [
        b"shell_v2",
        b"stat_v2",
        b"fixed_push_mkdir",
    ]


@pytest.mark.adb
@pytest.mark.parametrize(
    ("command", "stdout", "exit_code"),
    [("echo hi", b"hi\n", 0), ("exit 3", b"", 3), ("false", b"", 1), ("echo a; exit 42", b"a\n", 42)],
)
def test_adb_shell_output_and_exit_code(adb, command, stdout, exit_code):
    result = adb("shell", command)
    assert (result.stdout, result.stderr, result.returncode) == (stdout, b"", exit_code)


@pytest.mark.adb
def test_adb_shell_v2_keeps_stderr_apart(adb):
    result = adb("shell", "echo out; echo err >&2")
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")


@pytest.mark.adb
def test_adb_shell_without_v2_merges_output(adb):
    result = adb("shell", "-x", "echo out; echo err >&2")  # -x: the old `shell:` service, no exit code
    assert (result.stdout, result.returncode) == (b"out\nerr\n", 0)


@pytest.mark.adb
def test_adb_shell_reads_a_script_from_stdin(adb):
    result = adb("shell", input=b"echo one\necho two\nexit 4\necho never\n")
    assert (result.stdout, result.returncode) == (b"one\ntwo\n", 4)


@pytest.mark.adb
def test_adb_shell_on_a_terminal_echoes_and_exits(adb_server, device):
    leader, follower = pty.openpty()
    env = dict(adb_server.env, TERM="xterm-256color")
    args = [adb_server.adb_path, "-P", str(adb_server.port), "-s", device, "shell"]
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    try:
        deadline = time.monotonic() + 10
        while termios.tcgetattr(leader)[3] & termios.ICANON:  # wait for adb to put the terminal in raw mode
            assert time.monotonic() < deadline, "adb never switched the terminal to raw mode"
            time.sleep(0.01)
        os.write(leader, b"echo hx\x7fi\rexit 7\r")  # with a typo erased by Backspace
        assert proc.wait(10) == 7
        output = b""
        with contextlib.suppress(OSError):  # EIO once the terminal has no other end
            while chunk := os.read(leader, 4096):
                output += chunk
        assert output == b"echo hx\b \bi\r\nhi\r\nexit 7\r\n"  # echo, then output with CR LF
    finally:
        proc.kill()
        os.close(leader)


@pytest.mark.adb
def test_adb_exec_out_is_binary_exact(adb, sim_phone_adbd):
    content = bytes(range(256)) * 4 + b"\r\n\n\r"
    sim_phone_adbd.phone.fs.write("/data/local/tmp/all-bytes.bin", content)
    assert adb("exec-out", "cat /data/local/tmp/all-bytes.bin").stdout == content


@pytest.mark.adb
@pytest.mark.parametrize("size", [3_000_000, 0], ids=["3MB", "empty"])
def test_adb_push_pull_round_trip(adb, sim_phone_adbd, tmp_path, size):
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(os.urandom(size))
    remote = "/sdcard/Download/new/dir/file.bin"  # parents are created, as by a real adbd
    push = adb("push", str(src), remote)
    assert push.returncode == 0, push.stderr
    assert sim_phone_adbd.phone.fs.read(remote) == src.read_bytes()
    pull = adb("pull", remote, str(back))
    assert pull.returncode == 0, pull.stderr
    assert back.read_bytes() == src.read_bytes()


@pytest.mark.adb
def test_adb_pull_of_a_missing_file_fails(adb, tmp_path):
    result = adb("pull", "/sdcard/no-such-file.txt", str(tmp_path / "x"))
    assert result.returncode == 1
    assert b"No such file or directory" in result.stdout + result.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.adb
def test_adb_shell_ls_and_adb_ls(adb, sim_phone_adbd):
    sim_phone_adbd.phone.fs.write("/sdcard/Documents/notes.txt", b"hello")
    assert b"notes.txt" in adb("shell", "ls /sdcard/Documents").stdout.split()
    listing = adb("ls", "/sdcard/Documents").stdout.decode().splitlines()
    assert f"{stat.S_IFREG | 0o660:08x} 00000005" in next(line for line in listing if line.endswith("notes.txt"))


@pytest.mark.adb
def test_adb_server_discovers_a_phone_on_the_first_emulator_port(sim_phone, adb_server_factory):
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(adbd_in_thread(sim_phone, port=5555))
        except OSError as err:
            pytest.fail(f"port 5555 (the first emulator's adb port) is busy, so discovery cannot be tested: {err}")
        server = adb_server_factory(scan_emulators=True)  # probes 5555 once, at start
        server.wait_for_device("emulator-5554")
        assert server.adb("-s", "emulator-5554", "shell", "echo hi").stdout == b"hi\n"


@pytest.mark.adb
def test_announce_makes_a_running_adb_server_connect(sim_phone, adb_server):
    with adbd_in_thread(sim_phone, port=0) as port:
        serial = f"emulator-{port - 1}"
        assert serial not in adb_server.devices()
        assert announce_to_adb_server(port, server_port=adb_server.port)
        adb_server.wait_for_device(serial)
        assert adb_server.adb("-s", serial, "shell", "echo hi").stdout == b"hi\n"
    adb_server.adb("kill-server")
    assert not announce_to_adb_server(port, server_port=adb_server.port)


# ---- adbutils through the real adb server ---------------------------------------------------------------
@pytest.fixture
def adb_client(adb_server, monkeypatch) -> adbutils.AdbClient:
    monkeypatch.setenv("ADBUTILS_ADB_PATH", adb_server.adb_path)
    return adbutils.AdbClient(host="127.0.0.1", port=adb_server.port)


@pytest.mark.adb
def test_adbutils_device_list_and_shell(adb_client, device, sim_phone_adbd):
    # Other sessions' emulators on this machine may show up too; only ours is looked at.
    infos = [i for i in adb_client.list(extended=True) if i.serial == device]
    assert [(i.serial, i.state) for i in infos] == [(device, "device")]
    assert infos[0].tags["model"] == sim_phone_adbd.phone.props["ro.product.model"]
    d = adb_client.device(serial=device)
    assert device in [x.serial for x in adb_client.device_list()]
    assert d.shell("echo hi") == "hi"
    v1 = d.shell2("echo out; false")  # v1: adbutils appends `; echo X4EXIT:$?`
    assert (v1.output, v1.returncode) == ("out\n", 1)
    v2 = d.shell2("echo out; echo err >&2; exit 3", v2=True)
    assert (v2.stdout, v2.stderr, v2.returncode) == ("out\n", "err\n", 3)


@pytest.mark.adb
def test_adbutils_sync(adb_client, device, tmp_path):
    d = adb_client.device(serial=device)
    content = os.urandom(200_000)
    assert d.sync.push(content, "/sdcard/Download/blob.bin", mode=0o640) == len(content)
    info = d.sync.stat("/sdcard/Download/blob.bin")
    # adbd copies the owner's bits to group and the group's to other: a pushed 0640 file is 0666.
    assert (stat.S_ISREG(info.mode), stat.S_IMODE(info.mode), info.size) == (True, 0o666, len(content))
    assert not d.sync.exists("/sdcard/Download/nope.bin")
    names = [f.path for f in d.sync.list("/sdcard/Download")]
    assert names == [".", "..", "blob.bin"]
    assert d.sync.read_bytes("/sdcard/Download/blob.bin") == content
    d.sync.pull("/sdcard/Download/blob.bin", tmp_path / "blob.bin")
    assert (tmp_path / "blob.bin").read_bytes() == content
    with pytest.raises(adbutils.AdbError, match="No such file or directory"):
        d.sync.read_bytes("/sdcard/Download/nope.bin")


def test_an_endless_input_line_ends_the_interactive_shell(raw_host):
    raw_host.connect()
    remote = raw_host.open(1, "shell,raw:")
    sent, reply = 0, (OKAY, remote, 1, b"")
    while reply == (OKAY, remote, 1, b"") and sent < 4 * 1024 * 1024:  # no end of line, ever
        raw_host.send(WRTE, 1, remote, b"x" * 65536)
        sent += 65536
        reply = raw_host.recv()
    assert reply[0] == WRTE and reply[3] == b"/system/bin/sh: <stdin>: line too long\n"
    assert 1024 * 1024 < sent <= 1024 * 1024 + 2 * 65536  # given up just past 1 MiB, not buffered on
    raw_host.send(OKAY, 1, remote)
    assert raw_host.recv()[0] in (OKAY, CLSE)  # the last chunk's OKAY may come first


def test_streams_per_connection_are_bounded(raw_host):
    raw_host.connect()
    for local_id in range(1, 4097):  # sync streams stay open until the host closes them
        raw_host.send(OPEN, local_id, 0, b"sync:\0")
    replies = [raw_host.recv() for _ in range(4096)]
    assert all(command == OKAY for command, *_ in replies)
    raw_host.send(OPEN, 5000, 0, b"sync:\0")
    assert raw_host.recv() == (CLSE, 0, 5000, b"")  # like a service that cannot get a socket
    raw_host.send(CLSE, 1, replies[0][1])  # one closes: there is room again
    assert raw_host.recv() == (CLSE, replies[0][1], 1, b"")
    assert raw_host.open(5001, "sync:")


@pytest.mark.adb
def test_shared_storage_names_over_sync_and_shell(adb, sim_phone_adbd, tmp_path):
    sim_phone_adbd.phone.fs.write("/sdcard/Music/shared/notes.txt", b"hello")
    assert adb("shell", "ls /storage/emulated/0/Music/shared").stdout == b"notes.txt\n"
    echo = adb("shell", "echo /storage/emulated/0/Music/shared/*").stdout
    assert echo == b"/storage/emulated/0/Music/shared/notes.txt\n"
    names = [line.split()[-1] for line in adb("ls", "/storage").stdout.decode().splitlines()]
    assert sorted(names) == [".", "..", "emulated", "self"]
    pull = adb("pull", "/storage/emulated/0/Music/shared/notes.txt", str(tmp_path / "n.txt"))
    assert pull.returncode == 0, pull.stderr
    assert (tmp_path / "n.txt").read_bytes() == b"hello"
