"""The simulated phone: apps, renderer, shell, adbd and emulator-console servers."""
