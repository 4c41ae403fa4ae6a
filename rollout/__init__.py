"""Inference engines, the multi-turn agent loop, the async collector and trajectory records."""
