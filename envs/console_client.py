"""A client for the Android emulator console (telnet port 5554+): auth, one command, its `OK` or `KO:`."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import BinaryIO

from droidrl.envs.errors import ConsoleAuthError, ConsoleError

TOKEN_FILE_NAME = ".emulator_console_auth_token"
AUTH_REQUIRED = "Android Console: Authentication required"


def default_token_path() -> Path:
    """`$HOME/.emulator_console_auth_token` (the file `adb emu` reads too)."""
    return Path(os.path.expanduser("~")) / TOKEN_FILE_NAME


class EmulatorConsole:
    """The console of one emulator on host:port; `command("avd snapshot load x")` returns the reply text.

    Each command gets a fresh connection, as `adb emu` does: a failed snapshot load answers with two
    `KO:` lines, and reading a connection to its end never leaves one behind for the next command.

    Raises OSError when nothing answers on the port, ConsoleAuthError when the token file is missing or
    does not match, and ConsoleError (with the KO lines) when the console refuses the command.
    """

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        token_path: str | os.PathLike[str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.token_path = Path(token_path) if token_path is not None else None

    def command(self, command: str) -> str:
        """Run one console command; returns its output without the final `OK` (CR LF turned into LF)."""
        if any(c in command for c in "\r\n\0"):
            raise ValueError(f"a console command is one line, got {command!r}")
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            reader = sock.makefile("rb")
            banner = _read_reply(reader)
            if banner is None:
                raise ConnectionError(f"emulator console {self.host}:{self.port} closed without a banner")
            if any(line.startswith(AUTH_REQUIRED) for line in banner[0]):
                self._authenticate(sock, reader)
            # `quit` after the command makes the console close once it has answered, so reading to the
            # end collects every line of the reply, including the extra `KO:` lines of a failed load.
            sock.sendall(command.encode() + b"\nquit\n")
            lines = [raw.decode("utf-8", errors="replace").rstrip("\r\n") for raw in reader]
        errors = [line for line in lines if line.startswith("KO")]
        if errors:
            raise ConsoleError(command, " / ".join(errors))
        if not lines or lines[-1] != "OK":
            raise ConnectionError(f"emulator console {self.host}:{self.port} closed while running {command!r}")
        return "".join(line + "\n" for line in lines[:-1])

    def _authenticate(self, sock: socket.socket, reader: BinaryIO) -> None:
        path = self.token_path or default_token_path()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConsoleAuthError(
                f"the emulator console on port {self.port} requires authentication, but the token file "
                f"{path} cannot be read ({err.strerror}). Copy ~/.emulator_console_auth_token of the user "
                f"running the emulator to {path} (or point HOME at its directory)."
            ) from None
        sock.sendall(b"auth " + token.encode() + b"\n")
        reply = _read_reply(reader)
        if reply is None or not reply[1]:
            said = " / ".join(reply[0]) if reply else "the connection was closed"
            raise ConsoleAuthError(
                f"the emulator console on port {self.port} rejected the token in {path} ({said}). "
                f"Fix {path}: it must hold the contents of ~/.emulator_console_auth_token of the user "
                "running the emulator; this is a configuration problem, not a device failure."
            )


def _read_reply(reader: BinaryIO) -> tuple[list[str], bool] | None:
    """Lines up to the one ending a reply: `OK` (True) or a `KO: ...` line (False); None if closed first."""
    lines: list[str] = []
    for raw in reader:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line == "OK":
            return lines, True
        lines.append(line)
        if line.startswith("KO"):
            return lines, False
    return None
