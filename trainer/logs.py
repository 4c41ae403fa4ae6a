"""Logging for droidrl commands: everything in full under run_dir/logs/, and a quiet console.

The console shows droidrl's own warnings and third-party ones (vLLM, DeepSpeed, Ray, transformers,
torch, wandb) at WARNING or above, each as one line; tracebacks and INFO go to the log files only.
`verbose=True` leaves every library's own console output as it is, with tracebacks.

Libraries each have their own switch, so this sets all of them: Python logging handlers for the ones
that log in this process, and environment variables (`child_env`) for the ones that read them at
import, in this process and in the processes it starts (vLLM's engine core, Ray actors through
`runtime_env={"env_vars": child_env(...)}`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Top-level logger names of the libraries whose INFO belongs in the log file, not on the console.
LIBRARIES = (
    "vllm",
    "DeepSpeed",
    "deepspeed",
    "ray",
    "transformers",
    "torch",
    "wandb",
    "huggingface_hub",
    "httpx",
    "urllib3",
    "filelock",
    "asyncio",
    "py.warnings",
    "accelerate",
    "safetensors",
    "absl",  # android_world's task code logs through absl
)
# Libraries whose warnings are advisories a user cannot act on (vLLM on a CPU: no Triton, no tcmalloc, eager
# mode, ... about ten lines in each of its processes at every start): on the console only from ERROR up.
# droidrl's own INFO records are the handled failures (a retried episode): one line each, worth seeing.
CONSOLE_LEVELS = {
    "droidrl": logging.INFO,
    "vllm": logging.ERROR,
    "py.warnings": logging.ERROR,
    "absl": logging.ERROR,  # android_world's task chatter ("Clearing app data ..."); failures reach us as errors
    # "Token authentication is enabled for this Ray cluster": a notice about the private cluster, not a problem.
    "ray._private.authentication": logging.ERROR,
}
LOG_FILE = "droidrl.log"  # this process's log (all libraries), in run_dir/logs/
VLLM_LOG_FILE = "vllm.log"  # vLLM's, from this process and its engine-core process
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"


class OneLine(logging.Formatter):
    """The first line of a record's message, cut to the console's width, without traceback.

    When something was left out, the line ends by saying which file has it in full.
    """

    def __init__(self, details: Path | None, width: Callable[[], int] | None = None) -> None:
        super().__init__("%(message)s")
        self.details = _short_path(details) if details is not None else None
        self.width = width

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().strip()
        first = message.splitlines()[0] if message else ""
        origin = "" if record.name.startswith("droidrl") else f"{record.name.split('.')[0]}: "
        cut = first != message or record.exc_info is not None
        suffix = f" (details: {self.details})" if self.details is not None else ""
        text = origin + first
        room = self.width() if self.width is not None else 200
        if len(text) + (len(suffix) if cut else 0) > room:
            text, cut = text[: max(20, room - len(suffix) - 1)] + "…", True
        return text + (suffix if cut else "")


def _short_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it (shorter on the console)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


VERBOSE_ENV = "DROIDRL_VERBOSE"


def verbose_requested() -> bool:
    """Whether this process (or the `droidrl` command that started it) runs with --verbose."""
    return os.environ.get(VERBOSE_ENV) == "1"


def child_env(log_dir: Path, verbose: bool = False) -> dict[str, str]:
    """Environment variables that quiet the libraries in processes started from here (and in this one)."""
    if verbose:  # DROIDRL_VERBOSE: cluster.launch.ensure_ray keeps Ray's actor output on the console then
        return {"TRANSFORMERS_VERBOSITY": "info", VERBOSE_ENV: "1"}
    return {
        "VLLM_CONFIGURE_LOGGING": "1",
        "VLLM_LOGGING_CONFIG_PATH": str(_vllm_config(log_dir)),
        "TRANSFORMERS_VERBOSITY": "warning",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bars follow it too
        "WANDB_SILENT": "true",
        "RAY_DEDUP_LOGS": "1",
        "TORCH_CPP_LOG_LEVEL": "ERROR",  # c10's "[W...] Warning: NUMA binding ..." in vLLM's engine process
        "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",  # child processes only
    }


def ray_init_options(verbose: bool = False) -> dict[str, Any]:
    """Keyword arguments for `ray.init` that keep Ray's start-up and its actors' output off the console."""
    if verbose:
        return {}
    return {"log_to_driver": False, "logging_level": logging.WARNING}


def _vllm_config(log_dir: Path) -> Path:
    """A logging dictConfig for vLLM (VLLM_LOGGING_CONFIG_PATH): INFO to vllm.log, errors to stderr."""
    path = log_dir / "vllm-logging.json"
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"file": {"format": FILE_FORMAT}, "console": {"format": "vllm: %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_dir / VLLM_LOG_FILE),
                "formatter": "file",
                "level": "DEBUG",
            },
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "console",
                "level": logging.getLevelName(CONSOLE_LEVELS["vllm"]),
            },
        },
        "loggers": {"vllm": {"handlers": ["file", "console"], "level": "INFO", "propagate": False}},
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1))
    return path


def setup_logging(run_dir: Path, verbose: bool = False, console: Any = None) -> Path:
    """Send all logging to run_dir/logs/droidrl.log and WARNING+ (one line each) to `console`.

    `console` is a rich Console (the one the progress bars draw on, so lines never tear them); None
    writes to stderr. Returns the log directory. Call it before the heavy libraries are imported.
    """
    log_dir = Path(run_dir) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for key, value in child_env(log_dir, verbose).items():
        os.environ.setdefault(key, value)  # the user's own setting wins
    if not verbose:
        os.environ.pop(VERBOSE_ENV, None)  # a second call in one process (tests) must not stay verbose
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_droidrl", False)]:
        root.removeHandler(handler)  # a second call (tests, a second command) replaces, never doubles
        handler.close()
    to_file = logging.FileHandler(log_dir / LOG_FILE, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(FILE_FORMAT))
    to_file.setLevel(logging.DEBUG if verbose else logging.INFO)
    on_console = _console_handler(console, log_dir / LOG_FILE, verbose)
    for handler in (to_file, on_console):
        handler._droidrl = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # warnings.warn from libraries: into the log, not onto the console
    if not verbose:
        _quiet_imports(log_dir)
        tame_library_loggers()
    return log_dir


def _console_handler(console: Any, details: Path, verbose: bool) -> logging.Handler:
    if console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=console, show_path=False, show_time=False, markup=False, rich_tracebacks=False
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setLevel(logging.INFO)
        return handler
    handler.setLevel(logging.INFO)  # _console_worthy sets the bar per library
    # RichHandler puts the level (9 columns) before the message; keep the record on one console line.
    width = (lambda: console.width - 10) if console is not None else None
    handler.setFormatter(OneLine(details, width))
    handler.addFilter(_console_worthy)
    return handler


def _console_worthy(record: logging.LogRecord) -> bool:
    """Whether a record reaches the console: CONSOLE_LEVELS raises the bar for some loggers (longest prefix wins)."""
    name = record.name
    while name not in CONSOLE_LEVELS and "." in name:
        name = name.rsplit(".", 1)[0]
    return record.levelno >= CONSOLE_LEVELS.get(name, logging.WARNING)


_import_log: Any = None  # stays open for the process: handlers created at import may hold it


def _quiet_imports(log_dir: Path) -> None:
    """Import the libraries that print at import time, with that output going to logs/imports.log."""
    global _import_log
    if _import_log is None:
        _import_log = open(log_dir / "imports.log", "a", encoding="utf-8")  # noqa: SIM115
    # Console handlers the libraries create meanwhile capture this stream; tame_library_loggers drops them.
    with contextlib.redirect_stdout(_import_log), contextlib.redirect_stderr(_import_log):
        for name in ("deepspeed", "transformers", "ray"):
            if importlib.util.find_spec(name) is not None:
                with contextlib.suppress(Exception):
                    __import__(name)
    if importlib.util.find_spec("transformers") is not None:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.enable_propagation()
        hf_logging.disable_progress_bar()


def tame_library_loggers() -> None:
    """Route the libraries' own console handlers through the root handlers (file + quiet console).

    Libraries attach a handler to stdout/stderr to their logger and stop propagation (DeepSpeed,
    Ray, transformers, vLLM); this removes those console handlers (file handlers stay) and lets the
    records propagate. Safe to call again after a library was imported late.
    """
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] not in LIBRARIES:
            continue
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.FileHandler):  # a console handler of the library's own
                logger.removeHandler(handler)
        if "." not in name:
            logger.propagate = True
            if logger.level in (logging.NOTSET,) or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
