"""The console of a droidrl command: library chatter and tracebacks go to run_dir/logs/, one line per problem."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from droidrl.trainer.logs import (
    LOG_FILE,
    VERBOSE_ENV,
    child_env,
    ray_init_options,
    setup_logging,
    verbose_requested,
)

REMOTE_TRACEBACK = (
    "episode t-g0-e0 failed 3 times; last: ray.exceptions.RayTaskError(ValueError): "
    "ray::EnvActor.step() (pid=4242, ip=10.0.0.1)\n"
    "Traceback (most recent call last):\n"
    '  File "cluster/env_actor.py", line 120, in step\n'
    "ValueError: device local/3 is gone"
)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes the root logger and library loggers: put them back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate) for name in ("ray",)}
    environ = dict(os.environ)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, (saved, propagate) in libraries.items():
        logging.getLogger(name).handlers[:] = saved
        logging.getLogger(name).propagate = propagate
    os.environ.clear()
    os.environ.update(environ)


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False, color_system=None), out


def test_a_handled_failure_is_one_console_line_and_its_traceback_is_in_the_log(tmp_path: Path, restore_logging) -> None:
    console, out = _console()
    log_dir = setup_logging(tmp_path, console=console)
    collector = logging.getLogger("droidrl.rollout.collector")
    collector.warning("group %s (%s:%s) dropped: %s", "t-g000003", "SystemWifiTurnOff", 7, REMOTE_TRACEBACK)
    try:
        raise RuntimeError("health check: actor env-1 unreachable\nmore detail")
    except RuntimeError:
        logging.getLogger("droidrl.cluster.farm").exception("health check failed")
    collector.info("episode failure (device): local/3 is gone\nTraceback ...")  # retried: one line too
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("WARNING  group t-g000003 (SystemWifiTurnOff:7) dropped: episode t-g0-e0 failed")
    assert lines[0].rstrip().endswith(f"(details: {log_dir / LOG_FILE})") and "Traceback" not in out.getvalue()
    assert lines[1].startswith("ERROR    health check failed (details: ")
    assert lines[2].startswith("INFO     episode failure (device): local/3 is gone (details: ")
    logged = (log_dir / LOG_FILE).read_text()
    assert "ValueError: device local/3 is gone" in logged  # the remote traceback, in full
    assert 'raise RuntimeError("health check' in logged  # the local one too
    assert "episode failure (device)" in logged


def test_library_logs_go_to_the_file_and_only_their_errors_to_the_console(tmp_path: Path, restore_logging) -> None:
    ray_logger = logging.getLogger("ray")
    own = logging.StreamHandler(sys.stderr)  # what `import ray` attaches: its own console handler
    ray_logger.addHandler(own)
    ray_logger.propagate = False
    console, out = _console()
    log_dir = setup_logging(tmp_path, console=console)
    assert own not in ray_logger.handlers and ray_logger.propagate
    ray_logger.info("Started a local Ray instance.")
    logging.getLogger("vllm.platforms").warning("Triton is not installed. triton-cpu is expected on x86 CPUs.")
    logging.getLogger("transformers.modeling_utils").info("loading weights file model.safetensors")
    logging.getLogger("DeepSpeed").warning("Setting accelerator to CPU.")
    logging.getLogger("vllm.engine").error("EngineCore died")
    logging.getLogger("ray._private.authentication.authentication_token_setup").warning(
        "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out."
    )
    lines = out.getvalue().splitlines()
    assert [line.rstrip() for line in lines] == [
        "WARNING  DeepSpeed: Setting accelerator to CPU.",
        "ERROR    vllm: EngineCore died",
    ]
    logged = (log_dir / LOG_FILE).read_text()
    for text in ("Started a local Ray instance.", "Triton is not installed", "loading weights file"):
        assert text in logged
    assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == str(log_dir / "vllm-logging.json")
    assert child_env(log_dir)["TRANSFORMERS_VERBOSITY"] == "warning"
    assert ray_init_options(verbose_requested())["log_to_driver"] is False


def test_verbose_keeps_info_and_tracebacks_on_the_console(
    tmp_path: Path, restore_logging, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier test in the same process may have started Ray, which gives its logger its own stderr
    # handler and stops propagation; --verbose leaves library loggers as the library set them.
    ray_logger = logging.getLogger("ray")
    monkeypatch.setattr(ray_logger, "handlers", [])
    monkeypatch.setattr(ray_logger, "propagate", True)
    monkeypatch.setattr(ray_logger, "level", logging.NOTSET)
    monkeypatch.delenv(VERBOSE_ENV, raising=False)  # restored after the test
    console, out = _console()
    setup_logging(tmp_path, verbose=True, console=console)
    # Ray actors' own output reaches the console too (it was off even under --verbose).
    assert ray_init_options(verbose_requested()) == {}
    logging.getLogger("ray").info("Started a local Ray instance.")
    logging.getLogger("droidrl.rollout.collector").warning("dropped: %s", REMOTE_TRACEBACK)
    text = out.getvalue()
    assert "Started a local Ray instance." in text and "ValueError: device local/3 is gone" in text


@pytest.mark.slow
def test_a_short_train_run_prints_a_short_clean_console(tmp_path: Path) -> None:
    """`droidrl train` as a user runs it (transformers engine, phones in-process, 1 step): the console."""
    overrides = [
        "curriculum.tasks=[SystemWifiTurnOff]",
        "curriculum.eval_seeds=[1000000]",
        "rollout.engine=transformers",
        "rollout.max_model_len=2048",
        "env.ray=false",
        "env.phones=2",
        "collector.group_size=2",
        "collector.batch_size=1",
        "collector.max_concurrent_episodes=2",
        "eval.samples=1",
        "sft.epochs=1",
        "steps=1",
        "logging.wandb=disabled",
        f"run_dir={tmp_path / 'run'}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    done = subprocess.run(
        [sys.executable, "-m", "droidrl.train", *overrides], capture_output=True, text=True, timeout=900, env=env
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-3000:]
    assert "Traceback" not in console and "Exception ignored" not in console, console
    assert "droidrl train: 1 RL steps" in console
    assert len(console.splitlines()) <= 40, console  # two screens, summary table included
    logs = tmp_path / "run" / "logs"
    assert (logs / LOG_FILE).stat().st_size > 0
    assert (tmp_path / "run" / "report.html").is_file()
