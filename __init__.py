"""droidrl: online reinforcement learning for GUI agents that operate Android phones."""

__version__ = "0.1.0"
