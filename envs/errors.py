"""The errors that devices, the console client and the device checker raise; each message says what to do."""

from __future__ import annotations


class DroidrlEnvError(Exception):
    """Base class of every error raised by `droidrl.envs`."""


class DeviceUnavailable(DroidrlEnvError):
    """The device is dead, offline or unreachable: the caller should replace it (or restart it)."""

    def __init__(self, serial: str, reason: str) -> None:
        super().__init__(f"device {serial} is unavailable: {reason}. Restart the emulator or hand out another device.")
        self.serial = serial
        self.reason = reason


class DeviceCommandError(DroidrlEnvError):
    """The device is alive but a command on it failed (bad package, unreadable file, a refused request)."""


class FileNotFoundOnDevice(DeviceCommandError):
    """`pull` of a path that does not exist on the device (or is a directory)."""

    def __init__(self, serial: str, path: str, detail: str) -> None:
        super().__init__(f"cannot pull {path} from {serial}: {detail}")
        self.serial = serial
        self.path = path


class ConsoleError(DeviceCommandError):
    """The emulator console answered a command with `KO: ...`."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"emulator console refused {command!r}: {reply}")
        self.command = command
        self.reply = reply


class SnapshotError(DroidrlEnvError):
    """A snapshot could not be saved or loaded: missing, refused by `-read-only`, or a bad name."""


class ConsoleAuthError(DroidrlEnvError):
    """The emulator console rejected (or could not be given) the auth token: a configuration error."""


class DeviceContractError(DroidrlEnvError):
    """A device breaks the `Device` contract (raised by `envs.checker.check_device`)."""
