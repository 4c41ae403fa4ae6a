"""The snapshot format: a phone's state as JSON plus its files' bytes; decoding it can never run code.

Layout: MAGIC, an 8-byte little-endian header length, the JSON header (snapshot info, props, the
`PhoneState` fields, the filesystem's nodes and the length of each file), then every file's contents,
back to back in header order. Values that JSON has no type for (tuples, bytes, sets, dicts with
non-string keys, the state's own dataclasses) are tagged objects; decoding builds nothing but those
types, and anything malformed is a `SnapshotError`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from typing import Any

from droidrl.envs.sim.state import Activity, Focus, PhoneState

MAGIC = b"DROIDRL-SNAPSHOT\x00\x01"
_LENGTH = struct.Struct("<Q")
_TAG = "\x00t"  # a key no state dict uses: marks a tagged value
_CLASSES: dict[str, type] = {"Activity": Activity, "Focus": Focus}


class SnapshotError(ValueError):
    """The bytes are not a snapshot this phone wrote: corrupt, truncated, or another program's file."""


# ---- values ---------------------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _TAG not in value:
            return {k: _encode(v) for k, v in value.items()}
        return {_TAG: "dict", "v": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [_encode(v) for v in value]}
    if isinstance(value, bytes | bytearray):
        return {_TAG: "bytes", "v": base64.b64encode(value).decode()}
    if isinstance(value, set | frozenset):
        return {_TAG: type(value).__name__, "v": [_encode(v) for v in value]}
    name = type(value).__name__
    if _CLASSES.get(name) is type(value):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TAG: name, "v": fields}
    raise TypeError(f"a snapshot cannot hold a {type(value).__qualname__} ({value!r:.80})")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if _TAG not in value:
        return {k: _decode(v) for k, v in value.items()}
    tag, body = value[_TAG], value.get("v")
    if tag == "dict" and isinstance(body, list):
        return {_hashable(_decode(k)): _decode(v) for k, v in body}
    if tag == "tuple" and isinstance(body, list):
        return tuple(_decode(v) for v in body)
    if tag == "bytes" and isinstance(body, str):
        return base64.b64decode(body, validate=True)
    if tag in ("set", "frozenset") and isinstance(body, list):
        items = (_hashable(_decode(v)) for v in body)
        return set(items) if tag == "set" else frozenset(items)
    if tag in _CLASSES and isinstance(body, dict):
        return _build(_CLASSES[tag], {k: _decode(v) for k, v in body.items()})
    raise SnapshotError(f"unknown value tag {tag!r}")


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        raise SnapshotError(f"unhashable key {value!r:.80}") from None
    return value


def _build(cls: type, values: dict[str, Any]) -> Any:
    """One of the state's dataclasses from its field values; fields it lacks take their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in values.items() if k in names})
    except TypeError as err:
        raise SnapshotError(f"bad {cls.__name__}: {err}") from None


# ---- whole snapshots ----------------------------------------------------------------------------------
def encode(
    state: PhoneState, fs: tuple[dict[str, bytes], dict[str, tuple[int, int]]], props: dict, info: dict
) -> bytes:
    """The snapshot bytes of a phone's state (whose own `fs` field is ignored), files, props and info."""
    files, nodes = fs
    paths = list(files)
    header = {
        "info": info,
        "props": props,
        "state": {f.name: _encode(getattr(state, f.name)) for f in dataclasses.fields(state) if f.name != "fs"},
        "nodes": [[path, mode, mtime] for path, (mode, mtime) in nodes.items()],
        "files": [[path, len(files[path])] for path in paths],
    }
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return b"".join([MAGIC, _LENGTH.pack(len(text)), text, *(files[p] for p in paths)])


def _header(data: bytes) -> tuple[dict[str, Any], int]:
    if not data.startswith(MAGIC):
        raise SnapshotError("not a droidrl snapshot (bad magic)")
    start = len(MAGIC) + _LENGTH.size
    if len(data) < start:
        raise SnapshotError("truncated header")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if start + length > len(data):
        raise SnapshotError("truncated header")
    try:
        header = json.loads(data[start : start + length].decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise SnapshotError(f"corrupt header: {err}") from None
    if not isinstance(header, dict):
        raise SnapshotError("corrupt header")
    return header, start + length


def read_info(data: bytes) -> dict[str, Any]:
    """The info a snapshot was saved with (name, created, vm_clock_ms), without decoding its state."""
    header, _ = _header(data)
    info = header.get("info")
    if not isinstance(info, dict):
        raise SnapshotError("no snapshot info")
    return info


def decode(data: bytes) -> tuple[PhoneState, dict[str, str]]:
    """(state with its `fs` filled in, props) from snapshot bytes; raises SnapshotError for anything else."""
    header, offset = _header(data)
    try:
        files: dict[str, bytes] = {}
        for path, size in header["files"]:
            if not isinstance(path, str) or not isinstance(size, int) or size < 0 or offset + size > len(data):
                raise SnapshotError(f"bad file entry {path!r:.80}")
            files[path] = data[offset : offset + size]
            offset += size
        if offset != len(data):
            raise SnapshotError("trailing bytes after the files")
        nodes = {}
        for path, mode, mtime in header["nodes"]:
            if not (isinstance(path, str) and isinstance(mode, int) and isinstance(mtime, int)):
                raise SnapshotError(f"bad node {path!r:.80}")
            nodes[path] = (mode, mtime)
        props = header["props"]
        if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
            raise SnapshotError("bad props")
        fields = header["state"]
        if not isinstance(fields, dict):
            raise SnapshotError("bad state")
        state = _build(PhoneState, {k: _decode(v) for k, v in fields.items()} | {"fs": (files, nodes)})
    except (KeyError, TypeError, ValueError, RecursionError) as err:
        if isinstance(err, SnapshotError):
            raise
        raise SnapshotError(f"corrupt snapshot: {err!r:.200}") from None
    if not set(files) <= set(nodes):
        raise SnapshotError("a file without its node")
    return state, props
