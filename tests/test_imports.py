"""Dependency direction: the environment packages never pull in the heavy training stack."""

import subprocess
import sys

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'ray', 'vllm', 'deepspeed', 'transformers', 'wandb'}:
            raise ImportError(f'envs must not import {name}')
sys.meta_path.insert(0, Block())
"""


def test_envs_import_without_training_stack():
    code = BLOCKER + (
        "import droidrl.envs.sim.phone, droidrl.envs.sim.shell, droidrl.envs.sim.adbd, "
        "droidrl.envs.sim.console, droidrl.envs.sim.emulator\n"
        "from droidrl.envs.sim.phone import Phone\n"
        "Phone().screenshot_png()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
