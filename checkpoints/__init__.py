"""Atomic save/resume of a whole run, HF export, loading released checkpoints."""
