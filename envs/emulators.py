"""Android emulator processes for env actors: launch, boot wait, snapshot reset, health, relaunch, cleanup.

`EmulatorInstance` owns one emulator process (the SDK's `emulator`, or `droidrl-emulator` in tests) on
ports leased per node, so actors on one node never collide; `EmulatorDevice` is the `Device` of its slot.
Instances share one AVD with `-read-only` and boot from its base snapshot; `check_host` refuses a missing
binary or /dev/kvm before any work starts.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from droidrl.envs.device import check_snapshot_name
from droidrl.envs.errors import DeviceUnavailable, DroidrlEnvError, SnapshotError
from droidrl.envs.ports import port_is_free

GPU_MODES = (
    "auto",
    "auto-no-window",
    "host",
    "swiftshader_indirect",
    "swangle_indirect",
    "angle_indirect",
    "guest",
    "off",
)
DEVICE_KINDS = ("adb", "grpc")
SIM_EMULATOR = "droidrl-emulator"  # the simulated phone's flag-compatible binary: needs no KVM
ADB_DISCOVERY_PORTS = range(5554, 5586)  # the console ports an adb server finds by itself


class EmulatorConfigError(ValueError):
    """An emulator setting that cannot work on this host; `key` names the EmulatorConfig field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass
class EmulatorConfig:
    """How env actors launch their emulators (`env.backend: emulator`); K per actor, ports leased per node."""

    binary: str | None = None  # None: $ANDROID_SDK_ROOT/emulator/emulator; a bare name is looked up on PATH
    sdk_root: str | None = None  # None: $ANDROID_SDK_ROOT, else $ANDROID_HOME
    avd: str = "droidrl"  # one AVD shared by every instance on a node (-read-only)
    avd_home: str | None = None  # ANDROID_AVD_HOME for the emulators; None: the environment's / ~/.android/avd
    snapshot: str = "droidrl-base"  # the AVD snapshot every instance boots from and resets to
    prepare_snapshot: bool = True  # no such snapshot yet: cold-boot the AVD once (writable) and save it
    gpu: str = "swangle_indirect"  # -gpu mode (android_env's default; swiftshader_indirect on older SDKs)
    adb_port: int = 5037  # the node's adb server (started when none answers)
    adb_binary: str | None = None  # None: $SDK/platform-tools/adb, else `adb` on PATH
    console_port_base: int = 5554  # instance i of a node: console base+2i, adb base+2i+1 (adb finds 5554-5585)
    grpc_port_base: int = 8554  # instance i of a node: gRPC base+i
    max_per_node: int = 16  # port slots per node (16 keeps 5554-5585 discoverable by adb)
    boot_timeout_s: float = 300.0  # process start to `sys.boot_completed` + package manager up
    launch_attempts: int = 3  # tries per (re)launch before the slot is given up
    backoff_s: float = 2.0  # first wait between tries; doubles each try
    restart_every: int | None = 200  # relaunch after this many episodes (contains the emulator's memory growth)
    device: str = "adb"  # the slot's Device: AdbDevice, or "grpc" for envs/grpc_device.GrpcDevice
    kvm_device: str = "/dev/kvm"
    require_kvm: bool | None = None  # None: required unless the binary is droidrl-emulator
    lease_dir: str | None = None  # per-node port leases (lock files); None: <tmp>/droidrl-emulators-<uid>
    log_dir: str | None = None  # emulator output files; None: <lease_dir>/logs
    extra_args: list[str] = field(default_factory=list)  # more emulator flags, e.g. ["-memory", "4096"]

    def __post_init__(self) -> None:
        check_snapshot_name(self.snapshot)
        if self.gpu not in GPU_MODES:
            raise EmulatorConfigError("gpu", f"must be one of {', '.join(GPU_MODES)}; got {self.gpu!r}")
        if self.device not in DEVICE_KINDS:
            raise EmulatorConfigError("device", f"must be one of {', '.join(DEVICE_KINDS)}; got {self.device!r}")
        for name in ("adb_port", "console_port_base", "grpc_port_base"):
            if not 1024 <= getattr(self, name) <= 65000:
                raise EmulatorConfigError(name, f"must be a port in 1024-65000; got {getattr(self, name)!r}")
        if self.console_port_base % 2:
            raise EmulatorConfigError(
                "console_port_base", f"must be even (console even, adb odd); got {self.console_port_base}"
            )
        for name in ("max_per_node", "launch_attempts"):
            if getattr(self, name) < 1:
                raise EmulatorConfigError(name, f"must be >= 1; got {getattr(self, name)!r}")
        for name in ("boot_timeout_s", "backoff_s"):
            if not getattr(self, name) > 0:
                raise EmulatorConfigError(name, f"must be > 0; got {getattr(self, name)!r}")
        if self.restart_every is not None and self.restart_every < 1:
            raise EmulatorConfigError("restart_every", f"must be >= 1 or null; got {self.restart_every!r}")
        console_end = self.console_port_base + 2 * self.max_per_node
        if self.grpc_port_base < console_end and self.console_port_base < self.grpc_port_base + self.max_per_node:
            raise EmulatorConfigError(
                "grpc_port_base",
                f"gRPC ports {self.grpc_port_base}+ overlap the console/adb ports "
                f"{self.console_port_base}-{console_end - 1}",
            )


# ---- host checks (config validation) -------------------------------------------------------------------
def sdk_root(config: EmulatorConfig) -> Path | None:
    root = config.sdk_root or os.environ.get("ANDROID_SDK_ROOT") or os.environ.get("ANDROID_HOME")
    return Path(root) if root else None


def resolve_binary(config: EmulatorConfig) -> str:
    """The emulator executable's path; raises EmulatorConfigError('binary') saying where it was looked for."""
    if config.binary is None:
        root = sdk_root(config)
        if root is None:
            raise EmulatorConfigError(
                "binary",
                "no emulator binary: set env.emulator.binary, or env.emulator.sdk_root / $ANDROID_SDK_ROOT "
                "(install it with `sdkmanager emulator`)",
            )
        path = root / "emulator" / "emulator"
    elif os.sep in config.binary:
        path = Path(config.binary)
    else:
        found = shutil.which(config.binary)
        if found is None:
            raise EmulatorConfigError("binary", f"{config.binary!r} is not on PATH")
        path = Path(found)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise EmulatorConfigError(
            "binary",
            f"{path} is not an executable emulator binary (install it with `sdkmanager emulator`, or point "
            "env.emulator.binary at it)",
        )
    return str(path)


def resolve_adb(config: EmulatorConfig) -> str:
    root = sdk_root(config)
    candidates = [config.adb_binary] if config.adb_binary else []
    if root is not None:
        candidates.append(str(root / "platform-tools" / "adb"))
    candidates.append(shutil.which("adb") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EmulatorConfigError(
        "adb_binary", "no adb binary: install platform-tools (`sdkmanager platform-tools`) or Debian's adb"
    )


def needs_kvm(config: EmulatorConfig, binary: str) -> bool:
    if config.require_kvm is not None:
        return config.require_kvm
    return Path(binary).name != SIM_EMULATOR


def check_host(config: EmulatorConfig) -> str:
    """Refuse, before any work starts, what would make every launch fail; returns the binary's path."""
    binary = resolve_binary(config)
    if needs_kvm(config, binary):
        kvm = config.kvm_device
        if not os.path.exists(kvm):
            raise EmulatorConfigError(
                "kvm_device",
                f"{kvm} does not exist: the Android emulator needs KVM (an x86_64 Linux host with virtualization "
                "on; in a container pass --device /dev/kvm). GPU nodes often lack it: run emulators on CPU nodes",
            )
        if not os.access(kvm, os.R_OK | os.W_OK):
            raise EmulatorConfigError(
                "kvm_device", f"{kvm} is not readable and writable by this user: add it to the kvm group"
            )
    resolve_adb(config)
    return binary


def avd_dir(config: EmulatorConfig) -> Path:
    """The AVD's directory: <avd_home>/<avd>.avd (ANDROID_AVD_HOME, ANDROID_EMULATOR_HOME/avd, ~/.android/avd)."""
    if config.avd_home:
        home = Path(config.avd_home)
    elif os.environ.get("ANDROID_AVD_HOME"):
        home = Path(os.environ["ANDROID_AVD_HOME"])
    elif os.environ.get("ANDROID_EMULATOR_HOME"):
        home = Path(os.environ["ANDROID_EMULATOR_HOME"]) / "avd"
    else:
        home = Path.home() / ".android" / "avd"
    return home / f"{config.avd}.avd"


def has_snapshot(config: EmulatorConfig) -> bool:
    """The AVD holds the base snapshot (the emulator's snapshots/<name>/ or droidrl-emulator's <name>.snap)."""
    snapshots = avd_dir(config) / "snapshots"
    return (snapshots / config.snapshot).is_dir() or (snapshots / f"{config.snapshot}.snap").is_file()


def lease_dir(config: EmulatorConfig) -> Path:
    path = Path(config.lease_dir) if config.lease_dir else Path("/tmp") / f"droidrl-emulators-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- per-node port leases ------------------------------------------------------------------------------
@dataclass
class PortLease:
    """Console/adb/gRPC ports held through an flock on a file in the node's lease dir (freed when the holder dies)."""

    index: int
    console_port: int
    adb_port: int
    grpc_port: int
    file: IO[str]

    @property
    def serial(self) -> str:
        return f"emulator-{self.console_port}"

    def record(self, pgid: int | None) -> None:
        """Write the emulator's process group, so the next holder can kill it if it outlived its owner."""
        self.file.seek(0)
        self.file.truncate()
        if pgid is not None:
            self.file.write(f"{pgid} {_start_time(pgid)}\n")
        self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            self.record(None)
            self.file.close()  # closing drops the flock


def lease_ports(config: EmulatorConfig) -> PortLease:
    """The first free port slot of this node; raises EmulatorConfigError('max_per_node') if none is left."""
    directory = lease_dir(config)
    for index in range(config.max_per_node):
        console = config.console_port_base + 2 * index
        grpc_port = config.grpc_port_base + index
        handle = (directory / f"ports-{console}.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _kill_leftover(handle)
        if all(_bindable(p) for p in (console, console + 1, grpc_port)):
            return PortLease(index, console, console + 1, grpc_port, handle)
        handle.close()  # a process outside droidrl holds a port: skip the slot
    raise EmulatorConfigError(
        "max_per_node",
        f"all {config.max_per_node} emulator port slots of this node (console ports from "
        f"{config.console_port_base}) are leased or in use; lower devices per node or raise max_per_node",
    )


def _bindable(port: int) -> bool:
    """Nothing listens on the port (as the emulator binds it: SO_REUSEADDR, so closed connections don't count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def _kill_leftover(handle: IO[str]) -> None:
    """A lease file naming a live process group outlived its holder (an emulator's child, say): end it."""
    handle.seek(0)
    fields = handle.read().split()
    if len(fields) == 2 and fields[0].isdigit() and fields[1] != "?" and _start_time(int(fields[0])) == fields[1]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(fields[0]), signal.SIGKILL)


# ---- processes ------------------------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
# Popen runs on this one long-lived thread: PR_SET_PDEATHSIG fires when the *thread* that forked the child
# exits, so a short-lived worker thread would take its emulator with it.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-spawner")
_LIVE: set[EmulatorInstance] = set()
_LIVE_LOCK = threading.Lock()


def _die_with_parent() -> None:  # runs in the child between fork and exec: no allocation, no locks
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _spawn(command: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: one killpg ends the emulator and its qemu
            preexec_fn=_die_with_parent,
        )
        return process

    return _SPAWNER.submit(start).result()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the emulator's whole process group (it works on a SIGSTOPped one too) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


@atexit.register
def _kill_all() -> None:
    """At interpreter exit (an actor shutting down), no emulator outlives its owner."""
    with _LIVE_LOCK:
        instances = list(_LIVE)
    for instance in instances:
        instance.close()


def ensure_adb_server(config: EmulatorConfig) -> None:
    """Start the node's adb server on config.adb_port unless one answers there (it serves every instance)."""
    if not port_is_free(config.adb_port):
        return
    env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(config.adb_port))
    result = subprocess.run(
        [resolve_adb(config), "-P", str(config.adb_port), "start-server"], env=env, capture_output=True, timeout=60
    )
    if result.returncode != 0:
        raise EmulatorLaunchError(f"adb start-server on port {config.adb_port} failed: {result.stderr.decode()[-300:]}")


class EmulatorLaunchError(DroidrlEnvError):
    """An emulator did not come up (exited, or not booted in time); the message quotes its last output."""


@dataclass(eq=False)
class EmulatorInstance:
    """One emulator process on leased ports; `launch()` boots it, `relaunch()` replaces it, `close()` ends it."""

    config: EmulatorConfig
    lease: PortLease
    binary: str
    process: subprocess.Popen[bytes] | None = None
    launches: int = 0  # processes started (first launch included)
    relaunches: int = 0  # after a death, a hang or a refused snapshot load
    periodic_restarts: int = 0  # after `restart_every` episodes
    episodes: int = 0  # resets since the current process booted
    log_path: Path | None = None
    writable: bool = False  # the one-time boot that saves the base snapshot (not -read-only)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, config: EmulatorConfig) -> EmulatorInstance:
        """Lease ports on this node and boot an emulator there (preparing the base snapshot first if asked)."""
        binary = check_host(config)
        ensure_adb_server(config)
        ensure_base_snapshot(config, binary)
        instance = cls(config, lease_ports(config), binary)
        with _LIVE_LOCK:
            _LIVE.add(instance)
        try:
            instance.launch()
        except BaseException:
            instance.close()
            raise
        return instance

    @property
    def serial(self) -> str:
        return self.lease.serial

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def endpoint(self) -> dict[str, Any]:
        """How other code reaches this emulator (android_world's env over adb + gRPC, a viewer, a debugger)."""
        return {
            "serial": self.serial,
            "adb_host": "127.0.0.1",
            "adb_port": self.config.adb_port,
            "console_port": self.lease.console_port,
            "grpc_port": self.lease.grpc_port,
            "pid": self.pid,
        }

    def counters(self) -> dict[str, int]:
        return {
            "launches": self.launches,
            "relaunches": self.relaunches,
            "periodic_restarts": self.periodic_restarts,
            "episodes": self.episodes,
        }

    def command(self) -> list[str]:
        lease = self.lease
        return emulator_command(self.config, self.binary, lease.console_port, lease.grpc_port, writable=self.writable)

    def launch(self, attempts: int | None = None) -> float:
        """Start the process and wait for boot, retrying with back-off; returns the seconds of the last try.

        attempts: tries before EmulatorLaunchError (default config.launch_attempts).
        """
        delay = self.config.backoff_s
        attempts = attempts or self.config.launch_attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._launch_once()
            except EmulatorLaunchError:
                self.kill()
                if attempt == attempts:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def relaunch(self, periodic: bool = False, attempts: int | None = None) -> float:
        """Kill the current process (dead, hung or due) and boot a new one on the same ports."""
        with self._lock:
            self.kill()
            if periodic:
                self.periodic_restarts += 1
            else:
                self.relaunches += 1
            return self.launch(attempts)

    def kill(self) -> None:
        if self.process is not None:
            _kill_group(self.process)
            self.process = None
        self.lease.record(None)

    def close(self) -> None:
        """Kill the emulator and give its ports back."""
        self.kill()
        self.lease.release()
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def check(self, timeout_s: float = 5.0) -> None:
        """Health between episodes: the process runs and answers gRPC getStatus; raises DeviceUnavailable."""
        if self.process is None:
            raise DeviceUnavailable(self.serial, "the emulator is not running (killed, or its relaunch failed)")
        if self.process.poll() is not None:
            code = self.process.returncode
            raise DeviceUnavailable(self.serial, f"the emulator process exited (status {code}){self._log_tail()}")
        if not self._grpc_status(timeout_s):
            raise DeviceUnavailable(self.serial, f"gRPC getStatus on port {self.lease.grpc_port} got no answer")

    def restore(self) -> float:
        """Back to the base snapshot for a new episode (gRPC LoadSnapshot, else a relaunch); returns seconds."""
        started = time.perf_counter()
        self.episodes += 1
        every = self.config.restart_every
        # One try each: inside an episode's reset a failure should reach the actor (which relaunches with
        # back-off while the episode is retried elsewhere), not hold the reset through every retry.
        if every is not None and self.episodes > every:
            self.relaunch(periodic=True, attempts=1)  # boots from the base snapshot: the restore comes with it
            self.episodes = 1
            return time.perf_counter() - started
        if not self._load_snapshot():
            self.relaunch(attempts=1)  # the emulator refuses snapshot loads (e.g. a -read-only real emulator)
            self.episodes = 1
        return time.perf_counter() - started

    # -- internals -------------------------------------------------------------------------------------

    def _launch_once(self) -> float:
        started = time.monotonic()
        logs = Path(self.config.log_dir) if self.config.log_dir else lease_dir(self.config) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{self.serial}.log"
        with self.log_path.open("wb") as log:
            self.process = _spawn(self.command(), emulator_env(self.config), log)
        self.launches += 1
        self.lease.record(self.process.pid)
        self.episodes = 0
        wait_booted(self, started + self.config.boot_timeout_s)
        return time.monotonic() - started

    def _channel(self) -> Any:
        import grpc  # grpcio and android_env's stubs load only for emulator slots

        return grpc.insecure_channel(f"127.0.0.1:{self.lease.grpc_port}")

    def _grpc_status(self, timeout_s: float) -> bool:
        import grpc
        from android_env.proto import emulator_controller_pb2_grpc as controller
        from google.protobuf import empty_pb2

        with self._channel() as channel:
            try:
                return controller.EmulatorControllerStub(channel).getStatus(empty_pb2.Empty(), timeout=timeout_s).booted
            except grpc.RpcError:
                return False

    def _load_snapshot(self) -> bool:
        """gRPC SnapshotService.LoadSnapshot (android_env's way); False if the emulator refuses it."""
        import grpc
        from android_env.proto import snapshot_service_pb2 as snapshots
        from android_env.proto import snapshot_service_pb2_grpc as snapshot_grpc

        request = snapshots.SnapshotPackage(snapshot_id=self.config.snapshot)
        with self._channel() as channel:
            try:
                reply = snapshot_grpc.SnapshotServiceStub(channel).LoadSnapshot(
                    request, timeout=self.config.boot_timeout_s
                )
            except grpc.RpcError as err:
                raise DeviceUnavailable(self.serial, f"gRPC LoadSnapshot failed ({err.code().name})") from None
        if not reply.success:
            return False
        wait_ready(self, time.monotonic() + self.config.boot_timeout_s)
        return True

    def _log_tail(self, lines: int = 5) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_bytes()[-4000:].decode(errors="replace").strip().splitlines()[-lines:]
        return "; its last output: " + " | ".join(tail) if tail else ""


def emulator_command(
    config: EmulatorConfig, binary: str, console_port: int, grpc_port: int, *, writable: bool = False
) -> list[str]:
    """The emulator command line of one instance (`writable`: the one-time boot that saves the base snapshot)."""
    command = [binary, "-avd", config.avd, "-no-window", "-no-audio", "-no-boot-anim", "-gpu", config.gpu]
    command += ["-ports", f"{console_port},{console_port + 1}", "-grpc", str(grpc_port)]
    if writable:
        command += ["-no-snapshot-load", "-no-snapshot-save"]
    else:
        command += ["-read-only", "-snapshot", config.snapshot, "-no-snapshot-save"]
    return command + list(config.extra_args)


def emulator_env(config: EmulatorConfig) -> dict[str, str]:
    env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(config.adb_port))
    root = sdk_root(config)
    if root is not None:
        env["ANDROID_SDK_ROOT"] = str(root)
    env["ANDROID_AVD_HOME"] = str(avd_dir(config).parent)
    env["ANDROID_EMULATOR_KVM_DEVICE"] = config.kvm_device
    return env


def _adb_device(config: EmulatorConfig, serial: str, timeout_s: float) -> Any:
    import adbutils

    return adbutils.AdbClient(host="127.0.0.1", port=config.adb_port, socket_timeout=timeout_s).device(serial=serial)


def wait_booted(instance: EmulatorInstance, deadline: float) -> None:
    """Until adb lists the device, `sys.boot_completed` is 1 and the package manager answers (`pm path android`)."""
    wait_ready(instance, deadline, package_manager=True)


def wait_ready(instance: EmulatorInstance, deadline: float, package_manager: bool = False) -> None:
    last = "adb does not list it yet"
    while True:
        process = instance.process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            raise EmulatorLaunchError(
                f"{instance.serial} exited with status {code} while booting{instance._log_tail()}"
            )
        try:
            device = _adb_device(instance.config, instance.serial, timeout_s=10)
            if device.get_state() == "device":
                last = "sys.boot_completed is not 1"
                if device.shell("getprop sys.boot_completed", timeout=10).strip() == "1":
                    last = "the package manager does not answer"
                    if not package_manager or "package:" in device.shell("pm path android", timeout=10):
                        return
        except Exception as err:  # adbutils raises several types while a device comes up; keep polling
            last = f"adb: {err}"
        if time.monotonic() > deadline:
            raise EmulatorLaunchError(
                f"{instance.serial} not booted within {instance.config.boot_timeout_s:.0f} s ({last})"
                f"{instance._log_tail()}"
            )
        time.sleep(0.2)


def ensure_base_snapshot(config: EmulatorConfig, binary: str) -> None:
    """Make the AVD's base snapshot once per node (cold boot, writable, save over gRPC) unless it exists."""
    if has_snapshot(config):
        return
    if not config.prepare_snapshot:
        raise EmulatorConfigError(
            "snapshot",
            f"AVD {config.avd!r} ({avd_dir(config)}) has no snapshot {config.snapshot!r}; save one (see "
            "`droidrl farm --backend emulator --prepare`) or set env.emulator.prepare_snapshot=true",
        )
    with (lease_dir(config) / f"prepare-{config.avd}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one preparation per node; the others wait and find it made
        if not has_snapshot(config):
            prepare_base_snapshot(config, binary)


def prepare_base_snapshot(config: EmulatorConfig, binary: str | None = None) -> float:
    """Cold-boot the AVD writable, save `config.snapshot` over gRPC, shut it down; returns seconds."""
    import grpc
    from android_env.proto import snapshot_service_pb2 as snapshots
    from android_env.proto import snapshot_service_pb2_grpc as snapshot_grpc

    started = time.monotonic()
    binary = binary or check_host(config)
    ensure_adb_server(config)
    instance = EmulatorInstance(config, lease_ports(config), binary, writable=True)
    with _LIVE_LOCK:
        _LIVE.add(instance)
    try:
        instance.launch()
        request = snapshots.SnapshotPackage(snapshot_id=config.snapshot)
        with instance._channel() as channel:
            try:
                reply = snapshot_grpc.SnapshotServiceStub(channel).SaveSnapshot(request, timeout=config.boot_timeout_s)
            except grpc.RpcError as err:
                raise EmulatorLaunchError(f"gRPC SaveSnapshot on {instance.serial} failed: {err.code().name}") from None
        if not reply.success:
            raise EmulatorLaunchError(
                f"saving snapshot {config.snapshot!r} failed: {reply.err.decode(errors='replace')}"
            )
    finally:
        instance.close()
    return time.monotonic() - started


# ---- the Device of an emulator slot ----------------------------------------------------------------------
class EmulatorDevice:
    """The `Device` of an emulator slot: adb (or gRPC) for everything, resets through the instance.

    The instances share one AVD read-only, so the only snapshot is the AVD's base one: `save_snapshot` of
    it is a no-op (it is already there) and any other save is refused; `load_snapshot` of it restores over
    gRPC, or relaunches, and starts the periodic restart when it is due.
    """

    def __init__(self, instance: EmulatorInstance, make_inner: Callable[[EmulatorInstance], Any]) -> None:
        self.instance = instance
        self._make_inner = make_inner
        self.inner = make_inner(instance)
        self.last_restore_s: float | None = None

    @property
    def serial(self) -> str:
        return self.instance.serial

    @property
    def adb_port(self) -> int:
        """The adb server that lists this emulator (with `serial`, what android_world's env is built over)."""
        return self.instance.config.adb_port

    @property
    def grpc_port(self) -> int:
        return self.instance.lease.grpc_port

    @property
    def console_port(self) -> int:
        return self.instance.lease.console_port

    @property
    def size(self) -> tuple[int, int]:
        return self.inner.size

    def screenshot(self) -> np.ndarray:
        return self.inner.screenshot()

    def ui_xml(self) -> str:
        return self.inner.ui_xml()

    def tap(self, x: int, y: int) -> None:
        self.inner.tap(x, y)

    def long_press(self, x: int, y: int, duration_ms: int = 1000) -> None:
        self.inner.long_press(x, y, duration_ms)

    def swipe(self, x1: int, y1: int, x2: int, y2: int, duration_ms: int = 300) -> None:
        self.inner.swipe(x1, y1, x2, y2, duration_ms)

    def type_text(self, text: str) -> None:
        self.inner.type_text(text)

    def clear_text(self) -> None:
        self.inner.clear_text()

    def key(self, key: int | str) -> None:
        self.inner.key(key)

    def launch(self, package: str) -> None:
        self.inner.launch(package)

    def current_app(self) -> str:
        return self.inner.current_app()

    def pull(self, path: str) -> bytes:
        return self.inner.pull(path)

    def push(self, path: str, data: bytes) -> None:
        self.inner.push(path, data)

    def shell(self, cmd: str) -> str:
        return self.inner.shell(cmd)

    def save_snapshot(self, name: str) -> None:
        check_snapshot_name(name)
        if name != self.instance.config.snapshot:
            raise SnapshotError(
                f"{self.serial} runs -read-only (its AVD is shared): it cannot save snapshot {name!r}; only the "
                f"AVD's base snapshot {self.instance.config.snapshot!r} exists (set cache_task_snapshots=False)"
            )

    def load_snapshot(self, name: str) -> float:
        check_snapshot_name(name)
        if name != self.instance.config.snapshot:
            raise SnapshotError(
                f"{self.serial} has only the base snapshot {self.instance.config.snapshot!r}, not {name!r}"
            )
        try:
            seconds = self.instance.restore()
        except EmulatorLaunchError as err:
            raise DeviceUnavailable(self.serial, str(err)) from None
        old, self.inner = self.inner, self._make_inner(self.instance)  # a fresh client: nothing cached from before
        if hasattr(old, "close"):  # GrpcDevice holds a channel
            old.close()
        self.last_restore_s = seconds
        return seconds

    def __repr__(self) -> str:
        return f"EmulatorDevice({self.serial}, adb port {self.adb_port}, gRPC {self.instance.lease.grpc_port})"


def inner_device_factory(config: EmulatorConfig, **adb: Any) -> Callable[[EmulatorInstance], Any]:
    """Builds the slot's inner Device: `AdbDevice` (adb: its keyword arguments), or the gRPC device."""

    def make(instance: EmulatorInstance) -> Any:
        options = {k: v for k, v in adb.items() if k not in ("adb_port", "adb_host")}
        if config.device == "grpc":
            from droidrl.envs.grpc_device import GrpcDevice

            allowed = {k: v for k, v in options.items() if k in ("timeout_s", "ready_timeout_s")}
            return GrpcDevice(instance.serial, instance.lease.grpc_port, adb_port=config.adb_port, **allowed)
        from droidrl.envs.adb_device import AdbDevice

        return AdbDevice(instance.serial, adb_port=config.adb_port, console_port=instance.lease.console_port, **options)

    return make
