"""Dataclass configs from plain YAML data and dotted command-line overrides; every error names the key.

`from_dict(cls, data, key)` builds a dataclass tree, rejecting unknown keys (with a close match when
there is one) and wrong types; `apply_overrides(data, ["trainer.lr=1e-6", ...])` edits plain data
before it is built, so an override is checked exactly like the YAML it replaces.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Sequence
from typing import Any

import yaml


class ConfigError(ValueError):
    """One or more config values are wrong; each problem starts with its dotted key (all are in `problems`)."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            listed = "\n".join(f"  {problem}" for problem in self.problems)
            super().__init__(f"{len(self.problems)} problems:\n{listed}")


def collect(problems: list[str], check: typing.Callable[[], Any]) -> Any:
    """Run `check`; a ConfigError it raises joins `problems` (so every error is reported at once)."""
    try:
        return check()
    except ConfigError as err:
        problems.extend(err.problems)
        return None


def fail(key: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{key}: {message}")


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    origin = typing.get_origin(hint)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(hint))}]"
    return getattr(hint, "__name__", str(hint))


def check_type(key: str, value: Any, hint: Any) -> Any:
    """Return `value` converted to `hint` (int -> float, list -> tuple only), or raise naming the key."""
    if hint is Any:
        return value
    is_union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    options = typing.get_args(hint) if is_union else (hint,)
    if value is None:
        if type(None) in options:
            return None
        fail(key, f"must not be null; expected {_type_name(hint)}")
    if len(options) == 1 and dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key)
    for option in options:
        converted = _convert(key, value, option)
        if converted is not _NO_MATCH:
            return converted
    fail(key, f"expected {_type_name(hint)}, got {type(value).__name__} {value!r}")


_NO_MATCH = object()


def _convert(key: str, value: Any, option: Any) -> Any:
    origin = typing.get_origin(option)
    if dataclasses.is_dataclass(option):
        return from_dict(option, value, key) if isinstance(value, dict | option) else _NO_MATCH
    if origin is list and isinstance(value, list | tuple):
        (item,) = typing.get_args(option) or (Any,)
        return [check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is tuple and isinstance(value, list | tuple):
        items = typing.get_args(option)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(check_type(f"{key}[{i}]", v, items[0]) for i, v in enumerate(value))
        if len(items) != len(value):
            fail(key, f"expected {len(items)} values ({_type_name(option)}), got {len(value)}: {value!r}")
        return tuple(check_type(f"{key}[{i}]", v, t) for i, (v, t) in enumerate(zip(value, items, strict=True)))
    if origin is dict and isinstance(value, dict):
        _, item = typing.get_args(option) or (str, Any)
        return {str(k): check_type(f"{key}.{k}", v, item) for k, v in value.items()}
    if option is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if option is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO_MATCH
    if option is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-6 (no dot) as text
            value = _number(value)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return _NO_MATCH
        if not math.isfinite(value):  # nan passes every range check (all comparisons are false)
            fail(key, f"must be a finite number; got {value!r}")
        return float(value)
    if option is str:
        return value if isinstance(value, str) else _NO_MATCH
    return _NO_MATCH


def settable_fields(cls: type) -> list[str]:
    """The fields a config file may set: all but those listed in the class's `FILLED_BY_RUN`."""
    filled = getattr(cls, "FILLED_BY_RUN", ())
    return [f.name for f in dataclasses.fields(cls) if f.name not in filled]


def from_dict(cls: type, data: Any, key: str) -> Any:
    """Build dataclass `cls` from nested dicts; every error names the dotted key (e.g. algorithm.loss.clip_c).

    A validation error raised by the class itself (`__post_init__`) is re-raised as a ConfigError; the
    classes of this project already name their own key in such messages.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        fail(key, f"expected a mapping of {cls.__name__} fields, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = settable_fields(cls)
    where = f"under {key}" if key else "at the top level"
    problems: list[str] = []  # every wrong key of the tree, reported together
    for name in data:
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"did you mean {_join(key, close[0])}? " if close else ""
            problems.append(f"{_join(key, name)}: unknown key; {hint}valid keys {where}: {', '.join(names)}")
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        if name not in names:
            continue
        # A partly given section keeps the defaults its parent chose for the rest of it.
        factory = defaults[name].default_factory
        if isinstance(value, dict) and factory is not dataclasses.MISSING:
            default = factory()
            if dataclasses.is_dataclass(default):
                value = _merge(to_dict(default), value)
        checked = collect(problems, lambda name=name, value=value: check_type(_join(key, name), value, hints[name]))
        kwargs[name] = checked
    if problems:
        raise ConfigError(problems)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        message = str(err)
        raise ConfigError(message if not key or message.startswith(key) else f"{key}: {message}") from err


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            value = _merge(merged[name], value)
        merged[name] = value
    return merged


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else str(name)


def to_dict(config: Any) -> Any:
    """Plain data (for YAML) of a config tree, leaving out fields the run fills in."""
    if dataclasses.is_dataclass(config):
        return {name: to_dict(getattr(config, name)) for name in settable_fields(type(config))}
    if isinstance(config, list | tuple):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def load_yaml(text: str) -> Any:
    """YAML text as plain data (safe types only); a key given twice is a ConfigError naming it and its lines.

    Plain PyYAML silently keeps the last of duplicate keys, so a stray second `lr:` would win unseen.
    """
    problems: list[str] = []
    _find_duplicates(yaml.compose(text, Loader=yaml.SafeLoader), "", problems)
    if problems:
        raise ConfigError(problems)
    return yaml.safe_load(text)


def _find_duplicates(node: yaml.Node | None, key: str, problems: list[str]) -> None:
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _find_duplicates(item, f"{key}[{i}]", problems)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        name = _join(key, key_node.value) if isinstance(key_node, yaml.ScalarNode) else key
        line = key_node.start_mark.line + 1
        if isinstance(key_node, yaml.ScalarNode):
            if name in seen:
                problems.append(f"{name}: given twice, on lines {seen[name]} and {line}; keep one")
            seen.setdefault(name, line)
        _find_duplicates(value_node, name, problems)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=VALUE` -> (["a", "b", "c"], VALUE parsed as YAML: 1e-6, true, null, [easy, medium], 'text')."""
    if "=" not in text:
        raise ConfigError(f"{text}: an override is KEY=VALUE with a dotted key, e.g. trainer.lr=1e-6")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"{key}: not a dotted key (e.g. trainer.lr)")
    try:
        # YAML reads 1e-6 as a string (no dot); numbers in either spelling are numbers here.
        value = load_yaml(raw) if raw.strip() else ""
        if isinstance(value, str) and raw.strip()[:1] not in ("'", '"'):
            value = _number(value)
    except yaml.YAMLError as err:
        raise ConfigError(f"{key}: cannot read the value {raw!r}: {err}") from err
    return parts, value


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set each dotted override in nested plain data (in place, creating sections); returns `data`."""
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[: depth + 1])}: is a value, not a section; cannot set {text}")
            node = child
        node[parts[-1]] = value
    return data
