"""The private Ray cluster a run starts (cluster.launch.ensure_ray) listens on 127.0.0.1 only."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import uuid

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


# A first process holds a private cluster; a second joins it by RAY_ADDRESS=127.0.0.1:PORT, as benchmarks/chaos.py
# and a second droidrl command do. Ray used to rewrite that address to the routable IP, where nothing listens.
HOLDER = """
import sys, time, ray
from droidrl.cluster.launch import ensure_ray

ensure_ray(devices=1)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # hold the cluster until the test closes stdin
ray.shutdown()
"""
JOINER = """
import json, ray
from droidrl.cluster.launch import ensure_ray

ensure_ray(devices=1)

@ray.remote
def answer():
    return 42

print(json.dumps({"answer": ray.get(answer.remote()), "node": ray.util.get_node_ip_address()}))
ray.shutdown()
"""


def test_a_second_process_joins_the_private_cluster_by_its_loopback_address(tmp_path) -> None:
    # One auth token for both processes, as `ray job submit` and a joining CLI share one (Ray >= 2.59 wants it).
    token = tmp_path / "ray-auth-token"
    token.write_text(uuid.uuid4().hex)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        address = holder.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        joined = subprocess.run(
            [sys.executable, "-c", JOINER],
            capture_output=True,
            text=True,
            timeout=180,
            env=env | {"RAY_ADDRESS": address},
        )
        assert joined.returncode == 0, joined.stderr[-3000:]
        report = json.loads(joined.stdout.strip().splitlines()[-1])
        assert report == {"answer": 42, "node": "127.0.0.1"}
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
