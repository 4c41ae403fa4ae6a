"""Emulator farms under Ray (`env.backend: emulator`), with droidrl-emulator as the SDK's `emulator` binary.

Env actors launch their emulators on ports leased per node, boot them (sys.boot_completed, package
manager), reset them to the AVD's snapshot over gRPC, relaunch a killed or hung one while its episode is
retried elsewhere, restart them periodically, and leave no process behind when an actor is killed.
Private adb server, ports far from 5554-5585, a local Ray cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from conftest import AdbServer

from droidrl.cluster.env_pool import RayEnvPool
from droidrl.config.typed import ConfigError
from droidrl.envs.emulators import (
    EmulatorConfig,
    EmulatorConfigError,
    EmulatorDevice,
    EmulatorInstance,
    EmulatorLaunchError,
    check_host,
    emulator_command,
    inner_device_factory,
    lease_ports,
)
from droidrl.envs.errors import DeviceUnavailable, SnapshotError
from droidrl.envs.sim.farm import free_port_run
from droidrl.rollout.envpool import DeviceFailure

pytestmark = pytest.mark.slow  # Ray actors and emulator processes

BINARY = str(Path(sys.executable).parent / "droidrl-emulator")
TASK = "SystemWifiTurnOff"
LAUNCHER = "com.google.android.apps.nexuslauncher"
SETTINGS = "com.android.settings"


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(
        num_cpus=2,
        resources={"android": 50},
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        # Ray would kill a dead worker's children itself; off, so the tests see droidrl's own cleanup
        # (process group + PR_SET_PDEATHSIG), which also covers a killed driver or a worker outside Ray.
        _system_config={"kill_child_processes_on_worker_exit": False},
    )
    yield
    ray.shutdown()


@pytest.fixture
def emulator_config(tmp_path: Path, adb_server: AdbServer) -> EmulatorConfig:
    """droidrl-emulator as the emulator binary, on a private adb server and ports outside 5554-5585."""
    console_base = free_port_run(8, start=21000)
    return EmulatorConfig(
        binary=BINARY,
        avd="farmtest",
        avd_home=str(tmp_path / "avd"),
        adb_port=adb_server.port,
        console_port_base=console_base,
        grpc_port_base=free_port_run(4, start=console_base + 40),  # past the 16 slots `droidrl farm` uses
        max_per_node=4,
        lease_dir=str(tmp_path / "leases"),
        boot_timeout_s=120,
        backoff_s=0.5,
        restart_every=None,
    )


def farm(config: EmulatorConfig, **overrides) -> RayEnvPool:
    options = dict(
        actors=1,
        devices_per_actor=2,
        emulator=config,
        adb={"timeout_s": 5.0},
        call_timeout_s=30.0,
        probe_timeout_s=10.0,
        health_interval_s=None,
        start_timeout_s=240.0,
    )
    return RayEnvPool(**{**options, **overrides})


async def endpoints(pool: RayEnvPool) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for actor in pool.actors():
        found.update(await actor.endpoints.remote())
    return found


async def wait_until(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def run_episode(pool: RayEnvPool, on_reset=None, tries: int = 3) -> tuple[list[str], list[str]]:
    """Reset, open Settings, go Home; a DeviceFailure retries the episode on a leased device, as the collector does.

    Returns (device ids tried, the apps the finished try saw).
    """
    tried: list[str] = []
    for _ in range(tries):
        async with pool.lease() as device:
            tried.append(device.id)
            try:
                await device.reset(TASK, seed=3)
                if on_reset is not None:
                    await on_reset(device.id)
                apps = []
                for action in ('do(action="Launch", app="Settings")', 'do(action="Home")'):
                    result = await device.step(action)
                    assert result.info["valid"], result.info
                    apps.append(result.observation.app)
                return tried, apps
            except DeviceFailure:
                continue
    raise AssertionError(f"the episode failed on every try: {tried}")


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ---- no Ray: the launcher itself ---------------------------------------------------------------------------
def test_missing_binary_or_kvm_is_a_config_error_naming_the_key(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(EmulatorConfigError, match=r"^binary: .*/nowhere/emulator is not an executable"):
        check_host(EmulatorConfig(binary=str(tmp_path / "nowhere" / "emulator")))
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    with pytest.raises(EmulatorConfigError, match=r"^binary: no emulator binary: set env.emulator.binary"):
        check_host(EmulatorConfig())
    # A real emulator (any binary but droidrl-emulator) needs KVM.
    fake_sdk_emulator = tmp_path / "sdk" / "emulator" / "emulator"
    fake_sdk_emulator.parent.mkdir(parents=True)
    fake_sdk_emulator.write_text("#!/bin/sh\nexit 1\n")
    fake_sdk_emulator.chmod(0o755)
    no_kvm = EmulatorConfig(sdk_root=str(tmp_path / "sdk"), kvm_device=str(tmp_path / "kvm"))
    with pytest.raises(EmulatorConfigError, match=r"^kvm_device: .*/kvm does not exist: the Android emulator needs"):
        check_host(no_kvm)
    assert check_host(EmulatorConfig(binary=BINARY, kvm_device=str(tmp_path / "kvm"))) == BINARY  # the sim: no KVM

    # The same problems stop `droidrl train` before anything starts, and a farm before any actor does.
    from droidrl.trainer.config import load_config

    with pytest.raises(ConfigError, match=r"env\.emulator\.binary: .*nowhere.* is not an executable"):
        load_config(None, ["env.backend=emulator", f"env.emulator.binary={tmp_path / 'nowhere'}"])
    with pytest.raises(ConfigError, match=r"env\.emulator\.kvm_device: .* does not exist"):
        load_config(None, ["env.backend=emulator", f"env.emulator.sdk_root={tmp_path / 'sdk'}",
                           f"env.emulator.kvm_device={tmp_path / 'kvm'}"])  # fmt: skip
    with pytest.raises(ValueError, match=r"^emulator\.binary: .*nowhere"):
        RayEnvPool(actors=1, devices_per_actor=1, emulator={"binary": str(tmp_path / "nowhere")})
    with pytest.raises(ConfigError, match=r"env\.serials: backend adb needs env\.phones=8 serials; got 0"):
        load_config(None, ["env.backend=adb"])
    with pytest.raises(ConfigError, match=r"env\.ray: env\.backend=emulator runs its devices in Ray env actors"):
        load_config(None, ["env.backend=emulator", f"env.emulator.binary={BINARY}", "env.ray=false"])


def test_port_leases_never_collide_and_free_with_their_holder(emulator_config: EmulatorConfig) -> None:
    first, second = lease_ports(emulator_config), lease_ports(emulator_config)
    base = emulator_config.console_port_base
    assert (first.console_port, first.adb_port) == (base, base + 1)
    assert (second.console_port, second.adb_port) == (base + 2, base + 3)
    assert second.grpc_port == first.grpc_port + 1
    first.release()
    third = lease_ports(emulator_config)
    assert third.console_port == base  # a released slot is leased again
    command = emulator_command(emulator_config, BINARY, third.console_port, third.grpc_port)
    expected = [
        "-read-only",
        "-no-window",
        "-no-audio",
        "-no-boot-anim",
        "-gpu swangle_indirect",
        f"-ports {base},{base + 1}",
        f"-grpc {third.grpc_port}",
        "-snapshot droidrl-base",
    ]
    for flags in expected:
        assert flags in " ".join(command)
    second.release()
    third.release()


def test_instance_boots_resets_to_the_snapshot_and_restarts_periodically(emulator_config: EmulatorConfig) -> None:
    emulator_config.restart_every = 2
    snapshot = Path(emulator_config.avd_home) / "farmtest.avd" / "snapshots" / "droidrl-base.snap"
    assert not snapshot.exists()
    instance = EmulatorInstance.start(emulator_config)
    try:
        assert snapshot.is_file()  # the AVD had none: one writable cold boot saved it (gRPC SaveSnapshot)
        device = EmulatorDevice(instance, inner_device_factory(emulator_config, timeout_s=10.0))
        assert device.shell("getprop sys.boot_completed").strip() == "1"
        assert "package:" in device.shell("pm path android")
        device.save_snapshot("droidrl-base")  # the AVD's own snapshot: nothing to save
        with pytest.raises(SnapshotError, match="-read-only"):
            device.save_snapshot("task-x")
        first_pid = instance.pid
        for episode in range(3):
            device.load_snapshot("droidrl-base")
            # What the previous episode changed is gone after the reset.
            assert device.shell("settings get global droidrl_marker").strip() == "null", episode
            device.shell("settings put global droidrl_marker 1")
        assert instance.periodic_restarts == 1 and instance.pid != first_pid  # the third reset relaunched
        assert not alive(first_pid)
        instance.check()

        # The slot's Device can be envs/grpc_device's GrpcDevice (screen and input over the emulator's gRPC).
        over_grpc = dataclasses.replace(emulator_config, device="grpc")
        grpc_device = EmulatorDevice(instance, inner_device_factory(over_grpc, timeout_s=10.0))
        assert type(grpc_device.inner).__name__ == "GrpcDevice"
        assert grpc_device.screenshot().shape == (2400, 1080, 3)
        grpc_device.launch(SETTINGS)
        assert grpc_device.current_app() == SETTINGS
        grpc_device.load_snapshot("droidrl-base")
        assert grpc_device.current_app() == LAUNCHER

        # An emulator that cannot come up: each relaunch tries launch_attempts times with back-off, then says why.
        instance.config = dataclasses.replace(emulator_config, launch_attempts=2, extra_args=["-screen", "bad"])
        launches = instance.launches
        with pytest.raises(EmulatorLaunchError, match=r"exited with status 1 while booting.*WIDTHxHEIGHT"):
            instance.relaunch()
        assert instance.launches == launches + 2 and instance.pid is None
        with pytest.raises(DeviceUnavailable, match="not running"):
            instance.check()
    finally:
        instance.close()
    assert instance.pid is None


def test_no_emulator_outlives_its_killed_owner_process(emulator_config: EmulatorConfig, tmp_path: Path) -> None:
    """The owner dies by SIGKILL (no atexit, no cleanup code runs): PR_SET_PDEATHSIG takes its emulator along."""
    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from droidrl.envs.emulators import EmulatorConfig, EmulatorInstance\n"
        f"instance = EmulatorInstance.start(EmulatorConfig(**{dataclasses.asdict(emulator_config)!r}))\n"
        "print(instance.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        emulator_pid = int(owner.stdout.readline())
        assert alive(emulator_pid)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 30
    while alive(emulator_pid):
        assert time.monotonic() < deadline, f"emulator {emulator_pid} outlived its SIGKILLed owner"
        time.sleep(0.1)


# ---- under Ray: env actors own their emulators ---------------------------------------------------------------
def test_farm_boots_emulators_resets_them_and_exposes_adb_endpoints(
    emulator_config: EmulatorConfig, adb_server: AdbServer
) -> None:
    async def main() -> None:
        pool = farm(emulator_config, actors=2, devices_per_actor=1)  # two actors on one node: leased ports differ
        await pool.start()
        try:
            found = await endpoints(pool)
            assert len(found) == 2
            serials = {e["serial"] for e in found.values()}
            base = emulator_config.console_port_base
            assert serials == {f"emulator-{base}", f"emulator-{base + 2}"}
            assert all(e["adb_port"] == adb_server.port for e in found.values())
            # Reachable with the real adb through the node's adb server (android_world's env is built so).
            listed = adb_server.devices()
            assert all(listed.get(serial) == "device" for serial in serials)
            for serial in serials:
                assert adb_server.adb("-s", serial, "shell", "getprop", "sys.boot_completed").stdout.strip() == b"1"

            async def mark(device_id: str) -> None:  # state an episode leaves behind, outside the task
                serial = found[device_id]["serial"]
                adb_server.adb("-s", serial, "shell", "settings", "put", "global", "droidrl_marker", "1")

            for _ in range(3):
                _, apps = await run_episode(pool, on_reset=mark)
                assert apps == [SETTINGS, LAUNCHER]
            for serial in serials:  # reset loaded the AVD's snapshot: the marks are gone once reset again
                async with pool.lease() as device:
                    await device.reset(TASK, seed=1)
                    serial = found[device.id]["serial"]
                    got = adb_server.adb("-s", serial, "shell", "settings", "get", "global", "droidrl_marker")
                    assert got.stdout.strip() == b"null"
            infos = await pool.actor_info()
            assert len({info["pid"] for info in infos}) == 2
            assert [info["relaunched"] for info in infos] == [0, 0]
            assert [e["launches"] for info in infos for e in info["emulators"].values()] == [1, 1]
        finally:
            pool.close()

    asyncio.run(main())


def test_emulator_killed_mid_episode_is_relaunched_and_the_episode_retried(emulator_config: EmulatorConfig) -> None:
    async def main() -> None:
        pool = farm(emulator_config)
        await pool.start()
        try:
            before = await endpoints(pool)
            killed: list[str] = []

            async def kill_once(device_id: str) -> None:
                if not killed:
                    killed.append(device_id)
                    os.kill(before[device_id]["pid"], signal.SIGKILL)

            tried, apps = await run_episode(pool, on_reset=kill_once)
            assert apps == [SETTINGS, LAUNCHER]  # the retry finished the episode
            assert tried[0] == killed[0] and len(tried) == 2
            await wait_until(lambda: _async(pool.stats()["replaced"] == 1))
            after = await endpoints(pool)
            relaunched = after[killed[0]]
            assert relaunched["serial"] == before[killed[0]]["serial"]  # same leased ports
            assert relaunched["pid"] != before[killed[0]]["pid"] and alive(relaunched["pid"])
            (info,) = await pool.actor_info()
            assert info["relaunched"] == 1 and info["emulators"][killed[0]]["relaunches"] == 1
            assert pool.stats()["failures"] == 1 and pool.stats()["devices"] == 2
            _, apps = await run_episode(pool)  # the relaunched emulator serves episodes again
            assert apps == [SETTINGS, LAUNCHER]
        finally:
            pool.close()

    asyncio.run(main())


def test_hung_emulator_is_detected_by_timeout_and_replaced(emulator_config: EmulatorConfig) -> None:
    async def main() -> None:
        pool = farm(emulator_config)
        await pool.start()
        try:
            before = await endpoints(pool)
            stopped: list[int] = []

            async def hang_once(device_id: str) -> None:
                if not stopped:
                    stopped.append(before[device_id]["pid"])
                    os.kill(stopped[0], signal.SIGSTOP)  # alive, but answers nothing

            tried, apps = await run_episode(pool, on_reset=hang_once)
            assert apps == [SETTINGS, LAUNCHER] and len(tried) == 2
            await wait_until(lambda: _async(pool.stats()["replaced"] == 1))
            assert not alive(stopped[0])  # the stopped process was killed, not left behind

            # An idle emulator that hangs between episodes: the health probe times out and it is replaced.
            idle = await endpoints(pool)
            victim = sorted(idle)[1]
            os.kill(idle[victim]["pid"], signal.SIGSTOP)
            await pool.check_health()
            await wait_until(lambda: _async(pool.stats()["replaced"] == 2))
            assert pool.stats()["unhealthy"] == 1
            assert not alive(idle[victim]["pid"])
            after = await endpoints(pool)
            assert all(alive(e["pid"]) for e in after.values())
            (info,) = await pool.actor_info()
            assert info["relaunched"] == 2
        finally:
            pool.close()

    asyncio.run(main())


def test_no_emulator_outlives_a_killed_env_actor(emulator_config: EmulatorConfig) -> None:
    async def main() -> None:
        pool = farm(emulator_config)
        await pool.start()
        try:
            (actor,) = pool.actors()
            pids = [e["pid"] for e in (await endpoints(pool)).values()]
            assert all(alive(pid) for pid in pids)
            ray.kill(actor, no_restart=True)
            await wait_until(lambda: _async(not any(alive(pid) for pid in pids)), timeout=60)
        finally:
            pool.close()
        # The killed actor's port leases went with it: a new holder gets the first slot again.
        lease = lease_ports(emulator_config)
        assert lease.console_port == emulator_config.console_port_base
        lease.release()

    asyncio.run(main())


async def _async(value: bool) -> bool:
    return value


# ---- `droidrl farm --backend emulator` -------------------------------------------------------------------------
def _droidrl_farm(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="160", HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "droidrl.cli", "farm", "--backend", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_droidrl_farm_checks_an_emulator_farm(emulator_config: EmulatorConfig, tmp_path: Path) -> None:
    flags = [
        f"--binary={BINARY}",
        f"--avd-home={emulator_config.avd_home}",
        f"--adb-port={emulator_config.adb_port}",
        f"--console-port-base={emulator_config.console_port_base}",
        f"--grpc-port-base={emulator_config.grpc_port_base}",
        f"--lease-dir={emulator_config.lease_dir}",
    ]
    result = _droidrl_farm("--phones", "2", *flags, home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if "emulator-" in line and "1080x2400" in line]
    assert len(rows) == 2
    for row in rows:
        assert row.count("yes") == 2  # the Wi-Fi tap took effect, and the reset to the snapshot undid it
    assert "Traceback" not in result.stdout + result.stderr

    missing = _droidrl_farm("--phones", "1", f"--binary={tmp_path / 'no-emulator'}", home=tmp_path)
    assert missing.returncode == 2
    assert "--binary: " in missing.stdout and "is not an executable emulator binary" in missing.stdout
    assert "Traceback" not in missing.stdout + missing.stderr


def test_train_config_with_the_emulator_backend_starts_an_emulator_pool(emulator_config: EmulatorConfig) -> None:
    """`env.backend=emulator` (YAML or dotted overrides) reaches the env actors through cluster.launch.start_pool."""
    from droidrl.cluster.launch import start_pool
    from droidrl.trainer.config import env_options, load_config

    fields = ("binary", "avd", "avd_home", "adb_port", "console_port_base", "grpc_port_base", "lease_dir")
    overrides = [f"env.emulator.{name}={getattr(emulator_config, name)}" for name in fields]
    sizes = ["env.phones=2", "env.phones_per_actor=2", "collector.max_concurrent_episodes=2"]
    config = load_config(None, ["env.backend=emulator", *sizes, *overrides])
    assert env_options(config)["settle_s"] == 0.5  # real screens animate after an action

    async def main() -> None:
        pool = await start_pool(config)
        try:
            assert pool.stats()["devices"] == 2
            found = await endpoints(pool)
            assert {e["serial"] for e in found.values()} == {
                f"emulator-{emulator_config.console_port_base}",
                f"emulator-{emulator_config.console_port_base + 2}",
            }
            _, apps = await run_episode(pool)
            assert apps == [SETTINGS, LAUNCHER]
        finally:
            pool.close()

    asyncio.run(main())
