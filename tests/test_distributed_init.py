"""init_distributed alone on a busy machine: a port taken between picking and binding it costs a retry, not the run."""

from __future__ import annotations

import os
import subprocess
import sys

# In a fresh process (torch.distributed is initialised once per process): the first "free" port handed out is one
# another socket holds, as when another process binds it in between; the group of one must come up anyway.
PROBE = """
import socket
import torch.distributed as dist
from droidrl.trainer import learner

held = socket.socket()
held.bind(("127.0.0.1", 0))
held.listen()
taken = held.getsockname()[1]
ports = iter([taken])
real = learner._free_port
learner._free_port = lambda: next(ports, None) or real()
learner.init_distributed()
print(dist.get_world_size(), dist.get_backend(), learner.os.environ["MASTER_PORT"] != str(taken))
"""


def test_a_taken_port_is_retried_with_another() -> None:
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher} | {"DS_ACCELERATOR": "cpu"}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "1 gloo True"
