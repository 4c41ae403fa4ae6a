"""The device side of the adb wire protocol (what adbd in an emulator speaks), serving a simulated `Phone`.

Debian's real `adb` server (and adbutils through it) and the adb-shell package (straight to this port) drive
it over TCP exactly as they drive an emulator's adbd, `adb root` and its restart included.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import functools
import logging
import os
import socket
import stat as statmod
import struct
import threading
import weakref
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from droidrl.envs.sim import limits
from droidrl.envs.sim.shell_util import PendingInput

if TYPE_CHECKING:
    from droidrl.envs.sim.phone import Phone
    from droidrl.envs.sim.vfs import FileStat, FileWriter

log = logging.getLogger(__name__)

# ---- packet layer (adb/protocol.txt) -------------------------------------------------------------------
A_CNXN = 0x4E584E43  # CONNECT(version, maxdata, "system-identity-string")
A_AUTH = 0x48545541  # we never require auth, like an emulator's adbd
A_OPEN = 0x4E45504F  # OPEN(local-id, 0, "destination")
A_OKAY = 0x59414B4F  # READY(local-id, remote-id, "")
A_CLSE = 0x45534C43  # CLOSE(local-id, remote-id, "")
A_WRTE = 0x45545257  # WRITE(local-id, remote-id, "data")
A_SYNC = 0x434E5953  # only used on USB; ignored

A_VERSION_MIN = 0x01000000  # hosts at this version still want checksums on what we send
A_VERSION = 0x01000001  # skip checksums: adbd announces it to every host, and checks none it receives
MAX_PAYLOAD = 1024 * 1024  # adbd's MAX_PAYLOAD: the negotiated packet size is min(host's maxdata, this)
MIN_PAYLOAD = 4096  # MAX_PAYLOAD_V1: a floor for hosts that announce something silly

# Flow control of host -> service data. adbd writes a WRTE's payload into the service's socket and sends
# OKAY only once the socket took all of it; a service that reads slowly so throttles the host. ACK_WINDOW
# stands in for that socket buffer. A host that keeps writing without waiting for OKAY is cut off once a
# stream holds more than INBOUND_LIMIT bytes.
ACK_WINDOW = 256 * 1024
INBOUND_LIMIT = ACK_WINDOW + 2 * MAX_PAYLOAD
WRITE_HIGH_WATER = 256 * 1024  # bytes queued to a host's TCP socket before services wait for it to drain
# Open streams per connection. Each holds a socket in adbd; past its file limit a service cannot start and
# the host gets CLSE for the OPEN.
MAX_STREAMS = 4096

HEADER = struct.Struct("<6I")  # command, arg0, arg1, data_length, data_crc32 (byte sum), magic

# Only what this module implements. adb 29.0.6 (protocol 1.0.41) knows shell_v2, cmd, stat_v2,
# fixed_push_mkdir, apex, abb, fixed_push_symlink_timestamp and abb_exec; `cmd`, `abb*` and `apex`
# change how `adb install` talks to the device, which the simulated phone does not support, and
# the newer ls_v2 / sendrecv_v2 / delayed_ack are unknown to that adb. Without delayed_ack every WRTE
# waits for the peer's OKAY, in both directions.
FEATURES = ("shell_v2", "stat_v2", "fixed_push_mkdir")

# ---- shell protocol v2 (adb/shell_protocol.h): [id u8][length u32 LE][data] ------------------------------
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINDOW_SIZE = range(6)
SHELL_HEADER = struct.Struct("<BI")
SHELL_LINE_MAX = 1024 * 1024  # an interactive shell's input line longer than this ends the session

# ---- sync protocol (adb/file_sync_protocol.h, SYNC.TXT): 4-byte id + u32 LE --------------------------------
SYNC_HEADER = struct.Struct("<4sI")
SYNC_DATA_MAX = 64 * 1024  # the largest DATA chunk either side may send
SYNC_PATH_MAX = 1024
SYNC_STAT_V1 = struct.Struct("<4sIII")  # id, mode, size, mtime
SYNC_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")  # id, error, dev, ino, mode, nlink, uid, gid, size, a/m/ctime
SYNC_DENT = struct.Struct("<4sIIII")  # id, mode, size, mtime, namelen


class ProtocolError(Exception):
    """A packet no adb host would send; the connection it came on is dropped."""


class StreamClosed(Exception):
    """The host closed the stream (or the whole connection) while a service was still using it."""


@dataclass(frozen=True)
class Packet:
    command: int
    arg0: int
    arg1: int
    data: bytes


def encode_packet(command: int, arg0: int, arg1: int, data: bytes = b"", checksum: bool = True) -> bytes:
    """One adb packet: header with the byte-sum checksum (0 when the peer skips checksums) and the magic."""
    check = sum(data) & 0xFFFFFFFF if checksum else 0
    return HEADER.pack(command, arg0, arg1, len(data), check, command ^ 0xFFFFFFFF) + data


async def read_packet(reader: asyncio.StreamReader, max_payload: int = MAX_PAYLOAD) -> Packet:
    """Read one packet; raises ProtocolError for a bad magic or length (adbd's check_header), EOF errors at EOF.

    Checksums are never verified: adbd stopped checking them in 2017, even for hosts that still send them.
    """
    command, arg0, arg1, length, _checksum, magic = HEADER.unpack(await reader.readexactly(HEADER.size))
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic {magic:#010x} for command {command:#010x}")
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes is over the negotiated {max_payload}-byte limit")
    data = await reader.readexactly(length) if length else b""
    return Packet(command, arg0, arg1, data)


def connection_banner(phone: Phone) -> bytes:
    """The CNXN banner adbd sends: the device state, three product props and the feature list."""
    props = ";".join(
        f"{key}={phone.props.get(key, '')}" for key in ("ro.product.name", "ro.product.model", "ro.product.device")
    )
    return f"device::{props};features={','.join(FEATURES)}".encode()


# ---- streams -------------------------------------------------------------------------------------------
class Stream:
    """One OPENed service: bytes from the host in, flow-controlled WRTE packets out.

    Both directions follow the protocol's flow control: we send the next WRTE only after the host's OKAY
    for the previous one, and we send the OKAY for a host's WRTE only once the service has consumed its
    data (down to ACK_WINDOW), so neither side's data piles up here.
    """

    def __init__(self, conn: AdbdConnection, local_id: int, remote_id: int, service: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self.closed = False
        self.after_close: Callable[[], None] | None = None  # run once our CLSE is sent (adbd restarts)
        self._inbound = bytearray()
        self._ack_owed = False  # the host's last WRTE waits for our OKAY until the service reads it
        self._ignore_input = False
        self._data_arrived = asyncio.Event()
        # An OPEN implies the host is ready for our first WRTE; each later one waits for its OKAY.
        self._may_write = asyncio.Event()
        self._may_write.set()

    # -- called by the connection
    def feed(self, data: bytes) -> None:
        """A WRTE from the host: keep its data for the service, and acknowledge it if there is room."""
        if len(self._inbound) + len(data) > INBOUND_LIMIT:
            raise ProtocolError(f"host wrote {len(self._inbound) + len(data)} bytes to {self.service!r} unacknowledged")
        if not self._ignore_input:
            self._inbound += data
            self._data_arrived.set()
        self._ack_owed = True
        self._acknowledge()

    def ready(self) -> None:
        self._may_write.set()

    def mark_closed(self) -> None:
        self.closed = True
        self._data_arrived.set()
        self._may_write.set()

    def _acknowledge(self) -> None:
        if self._ack_owed and len(self._inbound) <= ACK_WINDOW and not self.closed:
            self._ack_owed = False
            self.conn.send(A_OKAY, self.local_id, self.remote_id)

    def _take(self, n: int) -> bytes:
        data = bytes(self._inbound[:n])
        del self._inbound[:n]
        self._acknowledge()
        return data

    # -- called by services
    def unread(self) -> int:
        """Bytes the host sent that the service has not read yet."""
        return len(self._inbound)

    def ignore_input(self) -> None:
        """For services that never read: drop what the host sends instead of buffering it."""
        self._ignore_input = True
        self._inbound.clear()
        self._acknowledge()

    async def read_some(self, limit: int = SYNC_DATA_MAX) -> bytes:
        """Up to `limit` bytes the host has sent (waiting for at least one); b"" once it closed."""
        while not self._inbound and not self.closed:
            self._data_arrived.clear()
            await self._data_arrived.wait()
        return self._take(limit)

    async def read_exactly(self, n: int) -> bytes:
        """Exactly n bytes from the host; raises StreamClosed if it closes first."""
        while len(self._inbound) < n:
            if self.closed:
                raise StreamClosed(self.service)
            self._data_arrived.clear()
            await self._data_arrived.wait()
        return self._take(n)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send data as WRTE packets of at most the negotiated payload, each after the host's OKAY."""
        view = memoryview(data)
        step = self.conn.max_payload
        for start in range(0, len(view), step):
            await self._may_write.wait()
            if self.closed:
                raise StreamClosed(self.service)
            self._may_write.clear()
            await self.conn.drain()  # nor more than WRITE_HIGH_WATER queued for a host that does not read
            self.conn.send(A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + step]))

    async def flushed(self) -> None:
        """Wait until the host acknowledged our last WRTE (or the stream closed)."""
        await self._may_write.wait()


Service = Callable[[Stream, "Phone"], Awaitable[None]]  # serves one stream until it returns (then CLSE)


# ---- the connection state machine ----------------------------------------------------------------------
# Every live connection of each phone, so `adb root` can restart "adbd": drop them all, as the real daemon's
# exit does. Connections may live on different event loops (threads), hence the lock.
_connections: weakref.WeakKeyDictionary[Phone, set[AdbdConnection]] = weakref.WeakKeyDictionary()
_connections_lock = threading.Lock()


def restart_adbd(phone: Phone) -> None:
    """What adbd's restart does to its hosts: every connection to `phone` is closed (they reconnect)."""
    with _connections_lock:
        connections = list(_connections.get(phone, ()))
    for conn in connections:
        with contextlib.suppress(RuntimeError):  # its event loop has just ended
            conn.loop.call_soon_threadsafe(conn.kick)


class AdbdConnection:
    """One TCP connection from an adb host: handshake, then streams multiplexed over packets."""

    def __init__(self, phone: Phone, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.phone = phone
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.online = False
        self.protocol_version = A_VERSION_MIN  # until the host's CNXN says otherwise
        self.max_payload = MAX_PAYLOAD  # what we accept before the handshake, like adbd
        self.streams: dict[int, Stream] = {}
        self._tasks: set[asyncio.Task] = set()
        self._next_id = 1
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        # One write call per packet, so packets of concurrent streams never interleave.
        if not self.writer.is_closing():
            checksum = self.protocol_version < A_VERSION
            self.writer.write(encode_packet(command, arg0, arg1, data, checksum))

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError as err:
            raise StreamClosed("connection lost") from err

    def kick(self) -> None:
        """Close the connection once what is queued for the host has gone out (adbd exiting)."""
        self.writer.close()
        self.loop.call_later(2, self.writer.transport.abort)  # a host that reads nothing more is cut off

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername")
        with _connections_lock:
            _connections.setdefault(self.phone, set()).add(self)
        try:
            while True:
                self.dispatch(await read_packet(self.reader, self.max_payload))
        except asyncio.IncompleteReadError as err:
            if err.partial:
                log.warning("adbd: connection from %s ended inside a packet; dropping it", peer)
        except ProtocolError as err:
            log.warning("adbd: dropping connection from %s: %s", peer, err)
        except ConnectionError:
            pass
        finally:
            with _connections_lock:
                _connections.get(self.phone, set()).discard(self)
            self.close_all_streams()
            for task in self._tasks:
                task.cancel()
            self.writer.close()

    def dispatch(self, packet: Packet) -> None:
        """Handle one packet as adbd's handle_packet does; anything it ignores is ignored here too."""
        if packet.command == A_CNXN:
            self.on_connect(packet)
        elif not self.online:
            return  # like adbd: nothing but CNXN counts before the handshake
        elif packet.command == A_OPEN:
            self.on_open(packet)
        elif packet.command == A_OKAY:
            self.on_okay(packet)
        elif packet.command == A_WRTE:
            stream = self.streams.get(packet.arg1)
            if stream is not None and packet.arg0 != 0 and stream.remote_id == packet.arg0:
                stream.feed(packet.data)
        elif packet.command == A_CLSE:
            stream = self.streams.get(packet.arg1)
            if stream is not None and packet.arg0 in (0, stream.remote_id):
                # adbd closes the service's socket, whose shutdown sends CLSE back to the host.
                del self.streams[packet.arg1]
                stream.mark_closed()
                self.send(A_CLSE, stream.local_id, stream.remote_id)
        # A_AUTH, A_SYNC and unknown commands with a valid magic are ignored, as adbd does.

    def on_connect(self, packet: Packet) -> None:
        self.close_all_streams()  # a second CNXN restarts the session
        self.protocol_version = min(packet.arg0, A_VERSION)
        self.max_payload = max(MIN_PAYLOAD, min(packet.arg1, MAX_PAYLOAD))
        self.online = True
        self.send(A_CNXN, A_VERSION, self.max_payload, connection_banner(self.phone))

    def on_open(self, packet: Packet) -> None:
        if packet.arg0 == 0:
            return
        if packet.arg1 != 0:
            # arg1 is the host's send buffer under delayed_ack, which we do not advertise: adbd refuses.
            self.send(A_CLSE, 0, packet.arg0)
            return
        name = packet.data.decode("utf-8", errors="replace").rstrip("\0")
        service = resolve_service(name)
        if service is None or len(self.streams) >= MAX_STREAMS:
            log.info("adbd: cannot open %r (unknown, or %d streams open)", name, len(self.streams))
            self.send(A_CLSE, 0, packet.arg0)
            return
        stream = Stream(self, self._next_id, packet.arg0, name)
        self._next_id += 1
        self.streams[stream.local_id] = stream
        self.send(A_OKAY, stream.local_id, stream.remote_id)
        task = asyncio.get_running_loop().create_task(self.run_service(stream, service))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_okay(self, packet: Packet) -> None:
        if packet.arg0 == 0 or packet.arg1 == 0:
            return
        stream = self.streams.get(packet.arg1)
        if stream is None:
            # An OKAY for a stream we no longer have: adbd tells the host to close its end.
            self.send(A_CLSE, packet.arg1, packet.arg0)
        elif stream.remote_id == packet.arg0:
            stream.ready()

    async def run_service(self, stream: Stream, service: Service) -> None:
        try:
            await service(stream, self.phone)
            if stream.after_close is None:
                await stream.flushed()  # adbd sees the service's EOF only once the host took its last WRTE
        except StreamClosed:
            pass
        except Exception:
            log.exception("adbd: service %r failed", stream.service)
        finally:
            if self.streams.pop(stream.local_id, None) is not None:
                self.send(A_CLSE, stream.local_id, stream.remote_id)
            stream.mark_closed()
            if stream.after_close is not None:
                stream.after_close()

    def close_all_streams(self) -> None:
        for stream in self.streams.values():
            stream.mark_closed()
        self.streams.clear()


# ---- services ------------------------------------------------------------------------------------------
def resolve_service(name: str) -> Service | None:
    """The coroutine serving an OPEN destination, or None (the host then gets CLSE) if we have none."""
    if name.startswith("shell"):
        args, colon, command = name[len("shell") :].partition(":")
        if not colon:
            return None
        return shell_service(args.split(","), command)
    if name.startswith("exec:"):
        return exec_service(name[len("exec:") :])
    if name.startswith("sync:"):
        return sync_service
    if name in ("root:", "unroot:"):
        return restart_service(as_root=name == "root:")
    return None


def restart_service(as_root: bool) -> Service:
    """`root:` / `unroot:`: adbd answers, and if it changes user, restarts (every connection drops).

    A userdebug or eng image allows root; a `user` build refuses as production adbd does.
    """

    async def serve(stream: Stream, phone: Phone) -> None:
        stream.ignore_input()
        if as_root and phone.adb_root:
            await stream.write(b"adbd is already running as root\n")
        elif as_root and phone.props.get("ro.build.type") == "user":
            await stream.write(b"adbd cannot run as root in production builds\n")
        elif not as_root and not phone.adb_root:
            await stream.write(b"adbd not running as root\n")
        else:
            phone.adb_root = as_root
            await stream.write(b"restarting adbd as root\n" if as_root else b"restarting adbd as non root\n")
            stream.after_close = functools.partial(restart_adbd, phone)

    return serve


# ---- running phone code off the event loop ---------------------------------------------------------
# Short locked calls (sync requests, stats) run one at a time in the phone's own worker thread, so a phone
# whose lock is busy ties up none of the threads that other phones served by this process need.
_workers: weakref.WeakKeyDictionary[Phone, concurrent.futures.ThreadPoolExecutor] = weakref.WeakKeyDictionary()
_workers_lock = threading.Lock()
# Shell command lines each run in a thread of their own (they may sleep or loop); a phone runs at most
# this many at once, as a real one runs out of processes, and refuses more at once instead of queueing.
MAX_SHELL_COMMANDS = 32
_shell_counts: dict[int, int] = {}


def _phone_worker(phone: Phone) -> concurrent.futures.ThreadPoolExecutor:
    """The one worker thread that runs a phone's locked calls (file transfers, stats); gone with the phone."""
    with _workers_lock:
        worker = _workers.get(phone)
        if worker is None:
            worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"phone-{id(phone):x}")
            _workers[phone] = worker
        return worker


async def on_phone(phone: Phone, fn: Callable[..., Any], *args: Any) -> Any:
    """Run fn(*args) holding the phone's lock in the phone's own worker thread, so the event loop never waits."""

    def call() -> Any:
        with phone.lock:
            return fn(*args)

    return await asyncio.get_running_loop().run_in_executor(_phone_worker(phone), call)


async def run_command(
    phone: Phone,
    command: str,
    hung_up: Callable[[], bool] | None = None,
    stdin: AsyncIterator[bytes] | None = None,
    output: Callable[[bytes], Awaitable[None]] | None = None,
) -> tuple[bytes, bytes, int]:
    """(stdout, stderr, exit code) of one command line; a crash of the simulated shell is exit code 1.

    The command line runs in a thread of its own under a `limits.Budget` (CPU time, memory); it takes
    the phone's lock only around its steps, so a `sleep` blocks neither other connections nor other
    phones. If the caller is cancelled (the connection went away), or `hung_up()` turns true (the host
    closed the stream, e.g. `lambda: stream.closed`), the command line is killed as SIGHUP kills it.
    `stdin` (the host's input) is what its commands read; with `output`, a command that streams
    (`logcat`) has its stdout sent as it goes, and the returned stdout is what it left at the end.
    """
    key = id(phone)
    with _workers_lock:
        if _shell_counts.get(key, 0) >= MAX_SHELL_COMMANDS:
            return b"", b"/system/bin/sh: can't fork: Try again\n", 1
        _shell_counts[key] = _shell_counts.get(key, 0) + 1
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[bytes, bytes, int]] = loop.create_future()
    budget = limits.Budget()
    pending = PendingInput() if stdin is not None else b""
    feeder = asyncio.ensure_future(_feed_stdin(stdin, pending)) if isinstance(pending, PendingInput) else None
    sink = _streaming_sink(loop, budget, output) if output is not None else None

    def settle(outcome: tuple[bytes, bytes, int]) -> None:
        if not done.done():
            done.set_result(outcome)

    def work() -> None:
        try:
            with limits.running(budget):  # the shell runs under the budget this thread holds
                result = phone.shell(command, stdin=pending, sink=sink)
            outcome = (result.stdout, result.stderr, result.exit_code)
        except Exception as err:
            log.exception("adbd: the simulated shell failed on %r", command)
            outcome = (b"", f"sh: internal error: {err}\n".encode(), 1)
        finally:
            with _workers_lock:
                _shell_counts[key] -= 1
                if not _shell_counts[key]:
                    del _shell_counts[key]
        with contextlib.suppress(RuntimeError):  # the event loop may be gone when an abandoned command ends
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=work, name=f"sh-{id(phone):x}", daemon=True).start()
    try:
        while hung_up is not None and not done.done():
            await asyncio.wait([done], timeout=0.2)
            # Input the host sent before closing (`adb exec-in`) is still the command's to read.
            if hung_up() and not (isinstance(pending, PendingInput) and pending.unread()):
                budget.cancel()  # it ends at its next step; its output goes nowhere
                break
        return await done
    except asyncio.CancelledError:
        budget.cancel()
        raise
    finally:
        if feeder is not None:
            feeder.cancel()


STDIN_BACKLOG = 1 << 20  # host input a command has not read yet; past it, the stream stops acknowledging


async def _feed_stdin(chunks: AsyncIterator[bytes], pending: PendingInput) -> None:
    """Pass the host's input to the command as it arrives; the end of it (or of the stream) is EOF."""
    try:
        async for chunk in chunks:
            pending.feed(chunk)
            while pending.backlog() > STDIN_BACKLOG:  # the command reads nothing for now: so do we
                await asyncio.sleep(0.05)
    finally:
        pending.close()


def _streaming_sink(
    loop: asyncio.AbstractEventLoop, budget: limits.Budget, output: Callable[[bytes], Awaitable[None]]
) -> Callable[[bytes], None]:
    """A sink the shell thread calls with streamed stdout: it waits until the data went out (flow control)."""

    def sink(data: bytes) -> None:
        future = asyncio.run_coroutine_threadsafe(output(data), loop)
        while True:
            try:
                future.result(timeout=0.2)
                return
            except concurrent.futures.TimeoutError:
                if budget.cancelled():
                    future.cancel()
                    budget.check()
            except Exception:  # the stream closed under it: the command is hung up
                budget.cancel()
                budget.check()

    return sink


def shell_service(args: list[str], command: str) -> Service:
    """`shell[,v2][,raw|,pty][,TERM=..]:CMD`, parsed like adbd's ShellService; empty CMD is interactive."""
    use_v2 = "v2" in args
    # adbd's default: a PTY for an interactive shell, raw output for a command; the last of `raw` and
    # `pty` wins. (A raw v1 command really runs on a PTY in raw mode, which translates nothing either.)
    pty = not command
    for arg in args:
        if arg in ("raw", "pty"):
            pty = arg == "pty"

    async def serve(stream: Stream, phone: Phone) -> None:
        if use_v2:
            out = ShellV2Writer(stream, pty)
            if command:
                # stdin packets are the command's stdin (`echo hi | adb shell 'cat > f'`), as adbd pipes them.
                result = await run_command(
                    phone, command, lambda: stream.closed, shell_v2_input(stream), out.streamed_stdout
                )
                await out.result(*result)
            else:
                await out.exit(await interactive_shell(phone, shell_v2_input(stream), out))
        elif command:
            stream.ignore_input()
            stdout, stderr, _ = await run_command(phone, command, lambda: stream.closed, output=stream.write)
            await stream.write(stdout)  # merged, in that order, without copying both into one buffer
            await stream.write(stderr)
        else:
            out = ShellV1Writer(stream, pty)
            await interactive_shell(phone, shell_v1_input(stream), out)

    return serve


def exec_service(command: str) -> Service:
    """`exec:CMD`: raw, binary-clean output and no packet framing (adbd merges stderr here too)."""

    async def serve(stream: Stream, phone: Phone) -> None:
        # What the host writes is the command's stdin (`adb exec-in`), ending when the host closes the
        # stream; run_command hangs the command up only once no input it was sent waits unread.
        stdin = shell_v1_input(stream)
        hung_up = lambda: stream.closed and not stream.unread()  # noqa: E731
        stdout, stderr, _ = await run_command(phone, command, hung_up, stdin, stream.write)
        await stream.write(stdout)
        await stream.write(stderr)

    return serve


def pty_output(data: bytes) -> bytes:
    """What a PTY in cooked mode does to output: newline becomes CR LF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def pty_echo(typed: bytes) -> bytes:
    """What a PTY echoes for typed input: Enter moves to a new line, Backspace erases a character."""
    return typed.replace(b"\r", b"\r\n").replace(b"\x7f", b"\b \b")


def erase_backspaces(line: bytes) -> bytes:
    kept = bytearray()
    for byte in line:
        if byte in (0x7F, 0x08):
            del kept[-1:]
        else:
            kept.append(byte)
    return bytes(kept)


class ShellV1Writer:
    """Output of a v1 interactive shell: stdout and stderr merged on the raw stream."""

    def __init__(self, stream: Stream, pty: bool) -> None:
        self.stream, self.pty = stream, pty

    async def echo(self, typed: bytes) -> None:
        if self.pty:
            await self.stream.write(pty_echo(typed))

    async def result(self, stdout: bytes, stderr: bytes, exit_code: int) -> None:
        for data in (stdout, stderr):
            await self.stream.write(pty_output(data) if self.pty else data)


class ShellV2Writer:
    """Output in shell protocol v2 packets; a PTY has only one output stream, so stderr joins stdout."""

    def __init__(self, stream: Stream, pty: bool) -> None:
        self.stream, self.pty = stream, pty

    async def packet(self, kind: int, data: bytes) -> None:
        step = self.stream.conn.max_payload - SHELL_HEADER.size  # one v2 packet per WRTE
        view = memoryview(data)
        for start in range(0, len(view), step):
            chunk = view[start : start + step]
            await self.stream.write(SHELL_HEADER.pack(kind, len(chunk)) + chunk)

    async def echo(self, typed: bytes) -> None:
        if self.pty:
            await self.packet(SHELL_STDOUT, pty_echo(typed))

    async def streamed_stdout(self, data: bytes) -> None:
        """Output a command streams while it runs (`logcat`), ahead of its result."""
        await self.packet(SHELL_STDOUT, pty_output(data) if self.pty else data)

    async def result(self, stdout: bytes, stderr: bytes, exit_code: int) -> None:
        if self.pty:
            stdout, stderr = pty_output(stdout + stderr), b""
        await self.packet(SHELL_STDOUT, stdout)
        await self.packet(SHELL_STDERR, stderr)
        await self.exit(exit_code)

    async def exit(self, exit_code: int) -> None:
        await self.stream.write(SHELL_HEADER.pack(SHELL_EXIT, 1) + bytes([exit_code & 0xFF]))


async def shell_v1_input(stream: Stream) -> AsyncIterator[bytes]:
    """Stdin of a v1 shell: the raw stream, until the host closes it."""
    while data := await stream.read_some():
        yield data


async def shell_v2_input(stream: Stream) -> AsyncIterator[bytes]:
    """Stdin of a v2 shell: the data of stdin packets, until a close-stdin packet or the stream's end.

    A packet's data is taken in pieces as it arrives (adbd's ShellProtocol::Read does the same), so a
    packet announcing gigabytes holds no more than a piece here.
    """
    while True:
        try:
            kind, length = SHELL_HEADER.unpack(await stream.read_exactly(SHELL_HEADER.size))
            if kind == SHELL_CLOSE_STDIN:
                return
            while length:
                data = await stream.read_exactly(min(length, SYNC_DATA_MAX))
                length -= len(data)
                if kind == SHELL_STDIN:
                    yield data
                # SHELL_WINDOW_SIZE and anything else is ignored: the simulated shell has no terminal.
        except StreamClosed:
            return


async def interactive_shell(phone: Phone, chunks: AsyncIterator[bytes], out: ShellV1Writer | ShellV2Writer) -> int:
    """Run the host's input line by line, without a prompt, until `exit` or the end of input.

    On a PTY the typed input is echoed (a person is typing). Returns the exit code of the session:
    that of `exit N`, else that of the last command.
    """
    pending = b""
    exit_code = 0

    async def run_line(line: bytes) -> int | None:
        nonlocal exit_code
        text = erase_backspaces(line).decode("utf-8", errors="replace").strip()
        words = text.split()
        if words and words[0] == "exit":
            return int(words[1]) if len(words) > 1 and words[1].isdigit() else exit_code
        if text:
            stdout, stderr, exit_code = await run_command(phone, text)
            await out.result(stdout, stderr, exit_code)
        return None

    async for chunk in chunks:
        await out.echo(chunk)
        # A terminal in raw mode sends CR for Enter; a pipe sends LF.
        pending += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if (code := await run_line(line)) is not None:
                return code
        if len(pending) > SHELL_LINE_MAX:  # no end of line in sight: stop rather than buffer it all
            await out.result(b"", b"/system/bin/sh: <stdin>: line too long\n", 1)
            return 1
    if (code := await run_line(pending)) is not None:
        return code
    return exit_code


# ---- sync: ---------------------------------------------------------------------------------------------
def _errno_of(err: OSError) -> int:
    """The errno a real filesystem would give; VirtualFS raises the OSError subclasses without one."""
    if err.errno:
        return err.errno
    for cls, code in (
        (FileNotFoundError, errno.ENOENT),
        (IsADirectoryError, errno.EISDIR),
        (NotADirectoryError, errno.ENOTDIR),
        (FileExistsError, errno.EEXIST),
        (PermissionError, errno.EACCES),
    ):
        if isinstance(err, cls):
            return code
    return errno.EIO


def _sync_frame(sync_id: bytes, value: int, data: bytes = b"") -> bytes:
    return SYNC_HEADER.pack(sync_id, value) + data


def _fail(message: str) -> bytes:
    return _sync_frame(b"FAIL", len(message.encode()), message.encode())


async def sync_service(stream: Stream, phone: Phone) -> None:
    """`sync:`: file requests until QUIT; any error is answered with FAIL and ends the service, as in adbd.

    Every reply frame goes out in a single write, because adbutils reads frame headers with raw recv().
    """
    while True:
        try:
            header = await stream.read_exactly(SYNC_HEADER.size)
        except StreamClosed:
            return
        sync_id, path_length = SYNC_HEADER.unpack(header)
        if path_length > SYNC_PATH_MAX:
            await stream.write(_fail("path too long"))
            return
        path = (await stream.read_exactly(path_length)).decode("utf-8", errors="surrogateescape")
        if sync_id == b"QUIT":
            return
        handler = SYNC_REQUESTS.get(sync_id)
        if handler is None:
            await stream.write(_fail(f"unknown command {int.from_bytes(sync_id, 'little'):08x}"))
            return
        if not await handler(stream, phone, path):
            return


async def sync_stat_v1(stream: Stream, phone: Phone, path: str) -> bool:
    st = await on_phone(phone, phone.fs.stat, path)
    mode, size, mtime = (st.mode, st.size, st.mtime) if st else (0, 0, 0)  # all zero: "no such file"
    await stream.write(SYNC_STAT_V1.pack(b"STAT", mode, size & 0xFFFFFFFF, mtime))
    return True


def _stat_v2_reply(sync_id: bytes, path: str, st: FileStat | None) -> bytes:
    if st is None:
        return SYNC_STAT_V2.pack(sync_id, errno.ENOENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    inode = zlib.crc32(path.encode())  # stable and distinct enough for `ls -i`-style callers
    return SYNC_STAT_V2.pack(sync_id, 0, 1, inode, st.mode, 1, 0, 0, st.size, st.mtime, st.mtime, st.mtime)


def _stat_v2_handler(sync_id: bytes) -> Callable[[Stream, Phone, str], Awaitable[bool]]:
    async def handle(stream: Stream, phone: Phone, path: str) -> bool:
        st = await on_phone(phone, phone.fs.stat, path)
        await stream.write(_stat_v2_reply(sync_id, path, st))
        return True

    return handle


def _list_entries(phone: Phone, path: str) -> list[tuple[str, FileStat]]:
    """Entries as readdir gives them, `.` and `..` included; empty for a missing or non-directory path."""
    fs = phone.fs
    if not fs.is_dir(path):
        return []
    parent = os.path.dirname(path.rstrip("/")) or "/"
    return [(".", fs.stat(path)), ("..", fs.stat(parent)), *fs.listdir(path)]


async def sync_list(stream: Stream, phone: Phone, path: str) -> bool:
    for name, st in await on_phone(phone, _list_entries, phone, path):
        encoded = name.encode("utf-8", errors="surrogateescape")
        dent = SYNC_DENT.pack(b"DENT", st.mode, st.size & 0xFFFFFFFF, st.mtime, len(encoded))
        await stream.write(dent + encoded)
    await stream.write(SYNC_DENT.pack(b"DONE", 0, 0, 0, 0))
    return True


async def sync_recv(stream: Stream, phone: Phone, path: str) -> bool:
    try:
        data = await on_phone(phone, phone.fs.read, path)
    except IsADirectoryError as err:
        # open(2) succeeds on a directory on Android and the first read(2) fails.
        await stream.write(_fail(f"read failed: {os.strerror(_errno_of(err))}"))
        return False
    except OSError as err:
        await stream.write(_fail(f"open failed: {os.strerror(_errno_of(err))}"))
        return False
    chunk_size = SYNC_DATA_MAX - SYNC_HEADER.size  # adbd's buffer holds the header and the chunk
    for start in range(0, len(data), chunk_size):
        chunk = data[start : start + chunk_size]
        await stream.write(_sync_frame(b"DATA", len(chunk), chunk))
    await stream.write(_sync_frame(b"DONE", 0))
    return True


def _parse_mode(text: str) -> int | None:
    """The mode after the last comma of a SEND path, read like strtoul(text, 0): 0x.. hex, 0.. octal."""
    text = text.strip()
    try:
        if text.lower().startswith("0x"):
            return int(text[2:], 16)
        if text.startswith("0") and len(text) > 1:
            return int(text[1:], 8)
        return int(text)
    except ValueError:
        return None


class _SendFailed(Exception):
    """A push that cannot go on; its message goes to the host in a FAIL frame."""


def _open_for_push(phone: Phone, path: str, perm: int) -> FileWriter:
    return phone.fs.open_writer(path, perm)  # creates parent directories, like adbd's secure_mkdirs


def _commit_push(phone: Phone, writer: FileWriter, mtime: int) -> None:
    writer.commit(mtime)
    phone.changed()  # e.g. a file manager on screen shows the new file


async def _receive_file(stream: Stream, phone: Phone, writer: FileWriter) -> int:
    """Write DATA frames to the file as they arrive, until DONE; returns DONE's mtime."""
    while True:
        sync_id, value = SYNC_HEADER.unpack(await stream.read_exactly(SYNC_HEADER.size))
        if sync_id == b"DONE":
            return value
        if sync_id != b"DATA":
            raise _SendFailed("invalid data message")
        if value > SYNC_DATA_MAX:
            raise _SendFailed("oversize data message")
        data = await stream.read_exactly(value)
        try:
            await on_phone(phone, writer.write, data)
        except OSError as err:  # ENOSPC: the phone's storage is full
            raise _SendFailed(f"write failed: {os.strerror(_errno_of(err))}") from err


async def _skip_rest_of_push(stream: Stream) -> None:
    """After a FAIL, adbd reads and drops the host's DATA frames until DONE, so the host gets to read it."""
    while True:
        sync_id, value = SYNC_HEADER.unpack(await stream.read_exactly(SYNC_HEADER.size))
        if sync_id != b"DATA" or value > SYNC_DATA_MAX:
            return
        await stream.read_exactly(value)


async def sync_send(stream: Stream, phone: Phone, spec: str) -> bool:
    """SEND: open the file first, then write each DATA chunk as it arrives (nothing is held here)."""
    path, comma, mode_text = spec.rpartition(",")
    if not comma:
        await stream.write(_fail("missing , in ID_SEND"))
        return False
    mode = _parse_mode(mode_text)
    if mode is None:
        await stream.write(_fail("bad mode"))
        return False
    # adbd keeps the permission bits and widens group and other like it (fs_config-free /data rule).
    perm = mode & 0o777
    perm |= (perm >> 3) & 0o070
    perm |= (perm >> 3) & 0o007
    writer = None
    try:
        if statmod.S_ISLNK(mode):
            raise _SendFailed(f"symlink failed: {os.strerror(errno.EOPNOTSUPP)}")
        try:
            writer = await on_phone(phone, _open_for_push, phone, path, perm)
        except NotADirectoryError as err:
            raise _SendFailed(f"secure_mkdirs failed: {os.strerror(_errno_of(err))}") from err
        except OSError as err:
            raise _SendFailed(f"couldn't create file: {os.strerror(_errno_of(err))}") from err
        mtime = await _receive_file(stream, phone, writer)
        await on_phone(phone, _commit_push, phone, writer, mtime)
    except _SendFailed as failed:
        await stream.write(_fail(str(failed)))
        with contextlib.suppress(StreamClosed):
            await _skip_rest_of_push(stream)
        return False
    finally:
        if writer is not None and not writer.committed:
            await on_phone(phone, writer.discard)  # a failed or abandoned push leaves no partial file
    await stream.write(_sync_frame(b"OKAY", 0))
    return True


SYNC_REQUESTS: dict[bytes, Callable[[Stream, Phone, str], Awaitable[bool]]] = {
    b"STAT": sync_stat_v1,
    b"STA2": _stat_v2_handler(b"STA2"),
    b"LST2": _stat_v2_handler(b"LST2"),
    b"LIST": sync_list,
    b"RECV": sync_recv,
    b"SEND": sync_send,
}


# ---- servers -------------------------------------------------------------------------------------------
async def serve_adbd(phone: Phone, host: str = "127.0.0.1", port: int = 5555) -> asyncio.Server:
    """Listen for adb hosts on host:port and serve `phone` to each; port 0 picks a free port."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # like adbd: small packets, no delay
        # Server shutdown cancels this task; run() has closed the socket by then, so end quietly.
        with contextlib.suppress(asyncio.CancelledError):
            await AdbdConnection(phone, reader, writer).run()

    return await asyncio.start_server(on_connection, host, port)


@contextlib.contextmanager
def adbd_in_thread(phone: Phone, host: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """Run `phone`'s adbd on its own event loop in a daemon thread; yields the port it listens on."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        try:
            server = await serve_adbd(phone, host, port)
        except OSError as err:
            state["error"] = err
            started.set()
            return
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        state["port"] = server.sockets[0].getsockname()[1]
        started.set()
        async with server:
            await state["stop"].wait()
        # asyncio.run() now cancels the connection tasks, which close their sockets.

    thread = threading.Thread(target=asyncio.run, args=(main(),), name=f"adbd-{port}", daemon=True)
    thread.start()
    started.wait()
    if "error" in state:
        thread.join()
        raise OSError(f"adbd cannot listen on {host}:{port}: {state['error']}") from state["error"]
    try:
        yield state["port"]
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=10)


def announce_to_adb_server(adb_port: int, server_port: int = 5037, host: str = "127.0.0.1") -> bool:
    """Tell a running adb server that an emulator's adbd listens on adb_port, as the emulator does at boot.

    The server then connects by itself and lists the device as `emulator-<adb_port - 1>`. Returns False
    if no adb server is listening (a real emulator ignores that too).
    """
    request = f"host:emulator:{adb_port}".encode()
    try:
        with socket.create_connection((host, server_port), timeout=2) as sock:
            sock.sendall(f"{len(request):04x}".encode() + request)  # the server sends no reply
    except OSError:
        return False
    return True
