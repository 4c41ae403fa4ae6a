"""Typed configs: dataclass trees read from YAML and dotted `key=value` overrides, errors naming the key (typed.py)."""
