"""GRPO-family losses and advantages, AdaGRPO parts (SPA, AdaPR), off-policy correction."""
