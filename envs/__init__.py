"""Android devices, the action language, the gymnasium environment, tasks and suites."""

import gymnasium

# `gymnasium.make("droidrl/AndroidSim-v0", task="SystemWifiTurnOff")` after `import droidrl.envs`
# (or `gymnasium.make("droidrl.envs:droidrl/AndroidSim-v0")`, which imports this module itself).
ENV_ID = "droidrl/AndroidSim-v0"
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="droidrl.envs.env:AndroidEnv", disable_env_checker=False)
