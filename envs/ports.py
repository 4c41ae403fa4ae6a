"""Free TCP ports for servers that clients may dial before they listen (the adb server).

A port from the kernel's ephemeral range can be handed out as the *source* port of a client that
dials it while nothing listens yet; TCP then connects the socket to itself and the client reads its
own request back (adb reports `protocol fault (status 30 30 30 63?!)`, i.e. "000c"). Ports below
the ephemeral range are never used as source ports, so such a self-connection cannot happen.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of automatic source ports (Linux default 32768..60999)."""
    try:
        low, high = _RANGE_FILE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_server_port(low: int = 20000) -> int:
    """A free port below the ephemeral range, chosen at random so parallel runs rarely collide."""
    high = min(ephemeral_range()[0], 65536)
    candidates = list(range(low, high)) if high > low else list(range(1024, 65536))
    rng = random.Random()
    for port in rng.sample(candidates, min(500, len(candidates))):
        if port_is_free(port):
            return port
    raise OSError(f"no free TCP port in {low}..{high - 1}")
