"""The private Ray cluster a run starts (cluster.launch.ensure_ray) listens on 127.0.0.1 only."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # starts a Ray cluster

# In a fresh process (this one may already hold a Ray cluster): start the run's private cluster, make it
# start workers (a task) and an actor, then list every listening TCP socket of this process tree.
PROBE = """
import json, os, psutil, ray
from ray._private import ray_constants
from droidrl.cluster.launch import ensure_ray

flag = ray_constants.ENABLE_RAY_CLUSTER
ensure_ray(devices=1)

@ray.remote
def pid():
    return os.getpid()

@ray.remote
class Echo:
    def pid(self):
        return os.getpid()

echo = Echo.remote()
workers = [ray.get(pid.remote()), ray.get(echo.pid.remote())]
tree = {p.pid: p.name() for p in psutil.Process().children(recursive=True)} | {os.getpid(): "driver"}
listening = [
    [c.laddr.ip, c.laddr.port, tree[c.pid]]
    for c in psutil.net_connections(kind="inet")
    if c.status == psutil.CONN_LISTEN and c.pid in tree
]
print(json.dumps({
    "listening": listening,
    "workers_in_tree": all(w in tree for w in workers),
    "node": ray.util.get_node_ip_address(),
    "restored": ray_constants.ENABLE_RAY_CLUSTER == flag and "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ,
}))
ray.shutdown()
"""


def test_the_private_cluster_listens_on_loopback_only() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    listening = report["listening"]
    names = {name for _, _, name in listening}
    assert {"gcs_server", "raylet"} <= names and report["workers_in_tree"], listening  # the servers were seen
    wide = [s for s in listening if not ipaddress.ip_address(s[0].removeprefix("::ffff:")).is_loopback]
    assert not wide, f"listening beyond loopback: {wide}"
    assert report["node"] == "127.0.0.1"
    assert report["restored"]  # this process joins real clusters as before afterwards
