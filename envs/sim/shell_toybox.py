"""The simulated shell's toybox tools: files, text, `test`/`[`, date, sleep, users, `sh`/`su` and sqlite3."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import errno
import fnmatch
import hashlib
import math
import posixpath
import re
import sqlite3
import stat as statmod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import regex as regex_module  # like `re`, but its matching can time out and runs without the GIL

from droidrl.envs.sim import limits
from droidrl.envs.sim.shell_android import _uid
from droidrl.envs.sim.shell_util import CommandError, Context, getopt


def _read(ctx: Context, cmd: str, name: str) -> bytes | None:
    """The bytes of file `name` (`-` is stdin), or None after printing toybox's error."""
    if name == "-":
        return ctx.stdin
    path = ctx.path(name)
    if path == "/dev/null":
        return b""
    if not ctx.fs.exists(path):
        ctx.err(f"{cmd}: {name}: No such file or directory")
        return None
    if ctx.fs.is_dir(path):
        ctx.err(f"{cmd}: {name}: Is a directory")
        return None
    return ctx.fs.read(path)


def _lines(data: bytes) -> list[bytes]:
    """Lines with their newline kept; a last line without one stays as it is."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _walk(fs: Any, top: str) -> Iterator[str]:
    """Every path under directory `top` (not `top` itself), parents before children, names sorted."""
    for name, st in fs.listdir(top):
        path = posixpath.join(top, name)
        yield path
        if st.is_dir:
            yield from _walk(fs, path)


# ==== files =============================================================================================


# vold's tmpfs and its links are root's; /storage/emulated (the FUSE mount) is group everybody (AID 9997).
_STORAGE_OWNERS = {
    "/storage": ("root", "root"),
    "/storage/self": ("root", "root"),
    "/storage/emulated": ("root", "everybody"),
    "/storage/self/primary": ("root", "root"),
}


def _owner(path: str) -> tuple[str, str]:
    """Owner and group `ls -l` shows; only the column positions matter to parsers."""
    if path in _STORAGE_OWNERS:
        return _STORAGE_OWNERS[path]
    if path.startswith(("/sdcard", "/storage")):
        return "root", "media_rw"
    m = re.match(r"/data/data/([^/]+)", path)
    if m:
        user = f"u0_a{_uid(m.group(1)) - 10000}" if _uid(m.group(1)) >= 10000 else "system"
        return user, user
    if path.startswith("/data/local/tmp"):
        return "shell", "shell"
    return "root", "root"


def _blocks(size: int, is_dir: bool) -> int:
    """1 KiB blocks of a file on a 4 KiB-block filesystem (the `total` line of ls -l)."""
    return 4 if is_dir else math.ceil(size / 4096) * 4


def _ls(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("ls", args, "1aAdlRrtSsFhnuciCx")
    status = 0
    files, dirs = [], []
    for name in names or ["."]:
        # As toybox: a symbolic link named on the command line is followed unless -l, -n, -d or -F.
        follow = not ({"l", "n", "d", "F"} & opts.keys())
        st = ctx.fs.stat(ctx.path(name)) if follow else ctx.fs.lstat(ctx.raw_path(name))
        if st is None:
            ctx.err(f"ls: {name}: No such file or directory")
            status = 1
        elif st.is_dir and "d" not in opts:
            dirs.append(name)
        else:
            files.append((name, ctx.path(name), st))
    if files:
        _ls_entries(ctx, files, opts, with_total=False)
    show_header = len(names) > 1 or "R" in opts
    for n, name in enumerate(dirs):
        _ls_dir(ctx, name, opts, show_header, first=n == 0 and not files)
    return status


def _ls_dir(ctx: Context, name: str, opts: dict[str, Any], header: bool, first: bool) -> None:
    path = ctx.path(name)
    if header:
        ctx.out(("" if first else "\n") + f"{name}:")
    entries = [
        (child, posixpath.join(path, child), st)
        for child, st in ctx.fs.listdir(path)
        if not child.startswith(".") or "a" in opts or "A" in opts
    ]
    if "a" in opts:
        parent = ctx.fs.stat(posixpath.dirname(path)) or ctx.fs.stat(path)
        entries = [(".", path, ctx.fs.stat(path)), ("..", posixpath.dirname(path), parent), *entries]
    _ls_entries(ctx, entries, opts, with_total=True)
    if "R" in opts:
        for child, _, st in entries:
            if st.is_dir and child not in (".", ".."):
                _ls_dir(ctx, posixpath.join(name, child), opts, header=True, first=False)


def _ls_entries(ctx: Context, entries: list[tuple[str, str, Any]], opts: dict[str, Any], with_total: bool) -> None:
    if "t" in opts:
        entries = sorted(entries, key=lambda e: -e[2].mtime)
    elif "S" in opts:
        entries = sorted(entries, key=lambda e: -e[2].size)
    if "r" in opts:
        entries = entries[::-1]
    suffix = (lambda st: "/" if st.is_dir else "") if "F" in opts else (lambda st: "")
    if "l" not in opts and "n" not in opts:
        for name, _, st in entries:
            ctx.out(name + suffix(st))
        return
    if with_total:
        ctx.out(f"total {sum(_blocks(st.size, st.is_dir) for _, _, st in entries)}")
    tz = ctx.phone.now().tzinfo
    full_time = opts.get("l", 0) >= 2  # toybox: -ll is --full-time
    rows = []
    for name, path, st in entries:
        when = dt.datetime.fromtimestamp(st.mtime, tz)
        is_link = statmod.S_ISLNK(st.mode)
        target = f" -> {ctx.fs.readlink(path)}" if is_link else ""
        stamp = when.strftime("%Y-%m-%d %H:%M:%S.000000000 %z") if full_time else when.strftime("%Y-%m-%d %H:%M")
        user, group = _owner(path)
        rows.append(
            (
                statmod.filemode(st.mode),
                "2" if st.is_dir else "1",
                *(("root", "root") if is_link else (user, group)),
                str(st.size),
                stamp,
                name + suffix(st) + target,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for mode, links, user, group, size, stamp, name in rows:
        ctx.out(
            f"{mode} {links:>{widths[1]}} {user:<{widths[2]}} {group:<{widths[3]}} {size:>{widths[4]}} {stamp} {name}"
        )


def _cat(ctx: Context, args: list[str]) -> int:
    _, names = getopt("cat", args, "uvteAsn")
    status = 0
    for name in names or ["-"]:
        data = _read(ctx, "cat", name)
        if data is None:
            status = 1
        else:
            ctx.stdout += data
    return status


def _rm(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("rm", args, "fiRrvd")
    if not names and "f" not in opts:
        raise CommandError('rm: Needs 1 argument (see "rm --help")')
    status = 0
    for name in names:
        path = ctx.path(name)
        if path == "/":
            ctx.err("rm: /: Device or resource busy")
            status = 1
        elif not ctx.fs.exists(path):
            if "f" not in opts:
                ctx.err(f"rm: {name}: No such file or directory")
                status = 1
        elif ctx.fs.is_dir(path):
            if "r" in opts or "R" in opts or ("d" in opts and not ctx.fs.listdir(path)):
                ctx.fs.rmtree(path)
            else:
                ctx.err(f"rm: {name}: Is a directory")
                status = 1
        else:
            ctx.fs.remove(path)
    return status


def _restorecon(ctx: Context, args: list[str]) -> int:
    """toybox `restorecon [-D] [-F] [-R] [-n] [-v] FILE...`: labels are not modelled, so success is silent."""
    _, names = getopt("restorecon", args, "DFRnrv")
    if not names:
        raise CommandError("restorecon: Need 1 argument")
    status = 0
    for name in names:
        if not ctx.fs.exists(ctx.path(name)):
            ctx.err(f"restorecon: restorecon failed: {name}: No such file or directory")
            status = 1
    return status


def _rmdir(ctx: Context, args: list[str]) -> int:
    _, names = getopt("rmdir", args, "p")
    status = 0
    for name in names:
        path = ctx.path(name)
        if not ctx.fs.is_dir(path):
            ctx.err(f"rmdir: {name}: {'Not a directory' if ctx.fs.exists(path) else 'No such file or directory'}")
            status = 1
        elif ctx.fs.listdir(path):
            ctx.err(f"rmdir: {name}: Directory not empty")
            status = 1
        else:
            ctx.fs.rmtree(path)
    return status


def _mkdir(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("mkdir", args, "pv", valued="mZ")
    if not names:
        raise CommandError('mkdir: Needs 1 argument (see "mkdir --help")')
    status = 0
    for name in names:
        path = ctx.path(name)
        try:
            if "p" in opts:
                ctx.fs.makedirs(path)
            else:
                ctx.fs.mkdir(path)
        except FileExistsError:
            ctx.err(f"mkdir: {name}: File exists")
            status = 1
        except FileNotFoundError:
            ctx.err(f"mkdir: {name}: No such file or directory")
            status = 1
        except NotADirectoryError:
            ctx.err(f"mkdir: {name}: Not a directory")
            status = 1
    return status


def _touch(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("touch", args, "acmh", valued="drt")
    status = 0
    for name in names:
        path = ctx.path(name)
        if ctx.fs.is_file(path):
            st = ctx.fs.stat(path)
            ctx.fs.write(path, ctx.fs.read(path), mode=st.mode)  # a new mtime, same contents
        elif ctx.fs.is_dir(path) or "c" in opts:
            continue
        elif ctx.fs.is_dir(posixpath.dirname(path)):
            ctx.fs.write(path, b"")
        else:
            ctx.err(f"touch: {name}: No such file or directory")
            status = 1
    return status


def _copy_tree(fs: Any, src: str, dst: str) -> None:
    """Copy a file or a directory tree, keeping modes and modification times."""
    if not fs.is_dir(src):
        st = fs.stat(src)
        fs.write(dst, fs.read(src), mode=st.mode, mtime=st.mtime)
        return
    fs.makedirs(dst)
    for path in list(_walk(fs, src)):
        target = dst + path[len(src) :]
        if fs.is_dir(path):
            fs.makedirs(target)
        else:
            st = fs.stat(path)
            fs.write(target, fs.read(path), mode=st.mode, mtime=st.mtime)


def _transfer(ctx: Context, cmd: str, args: list[str], flags: str, move: bool) -> int:
    """cp and mv: SOURCE... DEST, into DEST when it is a directory; `dir/.` copies a directory's contents."""
    opts, names = getopt(cmd, args, flags)
    if len(names) < 2:
        raise CommandError(f'{cmd}: Needs 2 arguments (see "{cmd} --help")')
    *sources, dest = names
    dest_path = ctx.path(dest)
    into_dir = ctx.fs.is_dir(dest_path)
    if len(sources) > 1 and not into_dir:
        raise CommandError(f"{cmd}: '{dest}' not directory")
    recursive = move or any(f in opts for f in "rRa")
    status = 0
    for source in sources:
        src = ctx.path(source)
        contents_only = source == "." or source.endswith("/.")
        target = dest_path if not into_dir or contents_only else posixpath.join(dest_path, posixpath.basename(src))
        if not ctx.fs.exists(src):
            ctx.err(f"{cmd}: {source}: No such file or directory")
            status = 1
        elif ctx.fs.is_dir(src) and not recursive:
            ctx.err(f"{cmd}: Skipped dir '{source}'")
            status = 1
        elif target == src or target.startswith(src + "/"):
            ctx.err(f"{cmd}: {source}: Invalid argument")
            status = 1
        elif not ctx.fs.is_dir(posixpath.dirname(target)):
            ctx.err(f"{cmd}: {dest}: No such file or directory")
            status = 1
        else:
            try:
                _move_tree(ctx.fs, src, target) if move else _copy_tree(ctx.fs, src, target)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                shown = dest if not into_dir or contents_only else posixpath.join(dest, posixpath.basename(src))
                ctx.err(f"{cmd}: {shown}: No space left on device")  # toybox goes on with the next source
                status = 1
    return status


def _move_tree(fs: Any, src: str, target: str) -> None:
    """mv inside the phone's storage is a rename: it needs no free space, even on a full disk."""
    files = list(fs.walk_files(src)) if fs.is_dir(src) else [src]
    moving = sum(fs.stat(p).size for p in files)
    fs.capacity += moving  # the copy's bytes are freed again by the rmtree below
    try:
        _copy_tree(fs, src, target)
    finally:
        fs.capacity -= moving
    fs.rmtree(src)


def _cp(ctx: Context, args: list[str]) -> int:
    return _transfer(ctx, "cp", args, "rRafpnvidLPHl", move=False)


def _mv(ctx: Context, args: list[str]) -> int:
    return _transfer(ctx, "mv", args, "fivnT", move=True)


def _chmod(ctx: Context, args: list[str]) -> int:
    _, names = getopt("chmod", args, "Rfv")
    if len(names) < 2:
        raise CommandError('chmod: Needs 2 arguments (see "chmod --help")')
    mode, *paths = names
    status = 0
    for name in paths:
        path = ctx.path(name)
        if not ctx.fs.exists(path):
            ctx.err(f"chmod: {name}: No such file or directory")
            status = 1
        elif ctx.fs.is_file(path) and re.fullmatch(r"[0-7]{3,4}", mode):
            st = ctx.fs.stat(path)
            ctx.fs.write(path, ctx.fs.read(path), mode=int(mode, 8), mtime=st.mtime)
    return status


def _stat(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("stat", args, "fLt", valued="c")
    fmt = opts.get("c", [None])[-1]
    status = 0
    for name in names:
        st = ctx.fs.stat(ctx.path(name))
        if st is None:
            ctx.err(f"stat: {name}: No such file or directory")
            status = 1
            continue
        if fmt is None:
            kind = "directory" if st.is_dir else "regular file"
            ctx.out(
                f"  File: `{name}'\n  Size: {st.size}\t Blocks: {_blocks(st.size, st.is_dir) * 2}\t "
                f"IO Blocks: 512\t{kind}"
            )
            continue
        fields = {
            "s": str(st.size),
            "n": name,
            "Y": str(st.mtime),
            "a": format(st.mode & 0o7777, "o"),
            "A": statmod.filemode(st.mode),
            "F": "directory" if st.is_dir else "regular file",
            "U": _owner(ctx.path(name))[0],
            "G": _owner(ctx.path(name))[1],
            "%": "%",
        }
        ctx.out(re.sub(r"%(.)", lambda m, f=fields: f.get(m.group(1), m.group(0)), fmt))
    return status


def _checksum(algorithm: str) -> Callable[[Context, list[str]], int]:
    def command(ctx: Context, args: list[str]) -> int:
        _, names = getopt(f"{algorithm}sum", args, "bcs")
        status = 0
        for name in names or ["-"]:
            data = _read(ctx, f"{algorithm}sum", name)
            if data is None:
                status = 1
            else:
                ctx.out(f"{hashlib.new(algorithm, data).hexdigest()}  {name}")
        return status

    return command


def _find(ctx: Context, args: list[str]) -> int:
    """toybox `find [PATH...] [EXPRESSION]`: tests, `! -a -o ( )`, -print, -delete and -exec, as toybox 0.8.

    As in toybox (not GNU), -mindepth/-maxdepth are tests where they stand, -delete walks depth-first and
    does not replace the default -print, and a bad predicate stops the command before anything runs.
    """
    split = next((i for i, a in enumerate(args) if a[:1] in ("-", "!", "(")), len(args))
    roots, spec = args[:split] or ["."], _FindParser(args[split:]).parse()
    status = 0
    for root in roots:
        path = ctx.path(root)
        if not ctx.fs.exists(path):
            ctx.err(f"find: '{root}': No such file or directory")
            status = 1
            continue
        status |= _find_visit(ctx, spec, path, root, 0)
    for command, names in spec.batches:
        if names:
            status |= 1 if _find_exec(ctx, command, names) else 0
            names.clear()
    return status


@dataclass
class _FindSpec:
    """A parsed find expression: the tree, whether it walks depth-first, prints by default, and -exec + batches."""

    expr: Any = None
    depth_first: bool = False
    has_action: bool = False
    max_depth: float = math.inf
    batches: list[tuple[list[str], list[str]]] = field(default_factory=list)


class _FindParser:
    """Recursive descent over toybox's grammar: `expr := and (-o and)*`, `and := unary ([-a] unary)*`."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos, self.spec = tokens, 0, _FindSpec()

    def parse(self) -> _FindSpec:
        if self.tokens:
            self.spec.expr = self._or()
            if self.pos < len(self.tokens):
                raise CommandError(f"find: bad arg '{self.tokens[self.pos]}'")
        return self.spec

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _or(self) -> Any:
        node = self._and()
        while self._peek() in ("-o", "-or"):
            self._next()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._unary()
        while self._peek() not in (None, "-o", "-or", ")"):
            if self._peek() in ("-a", "-and"):
                self._next()
            node = ("and", node, self._unary())
        return node

    def _unary(self) -> Any:
        token = self._peek()
        if token is None:
            raise CommandError(f"find: bad arg '{self.tokens[-1]}'")
        self._next()
        if token in ("!", "-not"):
            return ("not", self._unary())
        if token == "(":
            node = self._or()
            if self._peek() != ")":
                raise CommandError(f"find: bad arg '{token}'")
            self._next()
            return node
        return self._primary(token)

    def _arg(self, token: str) -> str:
        if self._peek() is None:
            raise CommandError(f"find: '{token}' needs 1 arg")
        return self._next()

    def _primary(self, token: str) -> Any:
        spec = self.spec
        if token in _FIND_NOARG:
            if token in ("-delete", "-depth"):
                spec.depth_first = True
            if token == "-print":
                spec.has_action = True
            return (token,)
        if token in ("-exec", "-execdir", "-ok", "-okdir"):
            return self._exec(token)
        if token not in _FIND_ONEARG:
            raise CommandError(f"find: bad arg '{token}'")
        value = self._arg(token)
        if token == "-type":
            bad = next((c for c in value if c != "," and c not in "bcdlpfs"), None)
            if bad is not None:
                raise CommandError(f"find: bad -type '{bad}'")
        elif token in ("-mindepth", "-maxdepth"):
            if not re.fullmatch(r"-?\d+", value):
                raise CommandError(f"find: not integer '{value}'")
            if token == "-maxdepth":
                spec.max_depth = min(spec.max_depth, int(value))
        return (token, value)

    def _exec(self, token: str) -> Any:
        if self._peek() in (None, ";"):
            raise CommandError(f"find: '{token[1:]}' needs 1 arg")
        command: list[str] = []
        while True:
            arg = self._peek()
            if arg is None:
                missing = "\\;" if "{}" in command else "{}"
                raise CommandError(f"find: -exec without {missing}")
            self._next()
            if arg == ";":
                break
            command.append(arg)
            if arg == "{}" and self._peek() == "+":
                self._next()
                self.spec.has_action = True
                batch: list[str] = []
                self.spec.batches.append((command, batch))
                return ("-exec+", command, batch)
        self.spec.has_action = True
        return ("-exec", command)


_FIND_NOARG = {"-print", "-print0", "-delete", "-depth", "-true", "-false", "-empty", "-xdev", "-prune", "-quit"}
_FIND_ONEARG = {"-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-type", "-mindepth"}
_FIND_ONEARG |= {"-maxdepth", "-newer", "-user", "-group", "-perm", "-size", "-mtime", "-mmin"}


def _find_visit(ctx: Context, spec: _FindSpec, path: str, shown: str, depth: int) -> int:
    """Evaluate the expression on `path` and (within -maxdepth) below it; pre-order, or post-order for -delete."""
    status = 0
    is_dir = ctx.fs.is_dir(path)
    if not spec.depth_first:
        status |= _find_match(ctx, spec, path, shown, depth)
    if is_dir and depth < spec.max_depth and ctx.fs.is_dir(path):
        for name, st in ctx.fs.listdir(path):
            child = posixpath.join(path, name)
            if statmod.S_ISLNK(st.mode):  # a link met on the way down is not followed (/sdcard under /)
                status |= _find_match(ctx, spec, child, shown.rstrip("/") + "/" + name, depth + 1)
                continue
            status |= _find_visit(ctx, spec, child, shown.rstrip("/") + "/" + name, depth + 1)
    if spec.depth_first:
        status |= _find_match(ctx, spec, path, shown, depth)
    return status


def _find_match(ctx: Context, spec: _FindSpec, path: str, shown: str, depth: int) -> int:
    result = True if spec.expr is None else _find_eval(ctx, spec.expr, path, shown, depth)
    if result and not spec.has_action:
        ctx.out(shown)
    return 0


def _find_eval(ctx: Context, node: Any, path: str, shown: str, depth: int) -> bool:
    kind = node[0]
    if kind == "and":
        return _find_eval(ctx, node[1], path, shown, depth) and _find_eval(ctx, node[2], path, shown, depth)
    if kind == "or":
        return _find_eval(ctx, node[1], path, shown, depth) or _find_eval(ctx, node[2], path, shown, depth)
    if kind == "not":
        return not _find_eval(ctx, node[1], path, shown, depth)
    return _find_primary(ctx, node, path, shown, depth)


def _find_primary(ctx: Context, node: Any, path: str, shown: str, depth: int) -> bool:
    kind, arg = node[0], (node[1] if len(node) > 1 else "")
    st = ctx.fs.stat(path)
    if st is None:
        return False
    if kind in ("-name", "-iname"):
        name = posixpath.basename(shown.rstrip("/")) or shown
        return _find_glob(name, arg, kind == "-iname")
    if kind in ("-path", "-ipath", "-wholename", "-iwholename"):
        return _find_glob(shown, arg, kind[1] == "i")
    if kind == "-type":
        return any(c == ("d" if st.is_dir else "f") for c in arg)
    if kind == "-mindepth":
        return depth >= int(arg)
    if kind == "-maxdepth":
        return depth <= int(arg)
    if kind == "-newer":
        ref = ctx.fs.stat(ctx.path(arg))
        if ref is None:
            raise CommandError(f"find: '{arg}': No such file or directory")
        return st.mtime > ref.mtime
    if kind == "-empty":
        return not ctx.fs.listdir(path) if st.is_dir else st.size == 0
    if kind in ("-print", "-print0"):
        ctx.out(shown, end="\n" if kind == "-print" else "\0")
        return True
    if kind == "-delete":
        return _find_delete(ctx, path)
    if kind == "-exec":
        return _find_exec(ctx, node[1], [shown]) == 0
    if kind == "-exec+":
        node[2].append(shown)
        return True
    if kind == "-false":
        return False
    if kind in ("-user", "-group"):
        return arg in _owner(path)
    if kind in ("-size", "-mtime", "-mmin", "-perm"):
        return _find_number(kind, arg, st, ctx.phone.state.clock_ms // 1000)
    return True  # -true -depth -xdev -prune -quit


def _find_glob(name: str, pattern: str, icase: bool) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower()) if icase else fnmatch.fnmatchcase(name, pattern)


def _find_number(kind: str, arg: str, st: Any, now: int) -> bool:
    """-size N[c] (512-byte blocks), -mtime N (days), -mmin N, -perm MODE with toybox's +N / -N comparisons."""
    if kind == "-perm":
        return (st.mode & 0o7777) == int(arg.lstrip("-/") or "0", 8)
    sign, digits = (arg[0], arg[1:]) if arg[:1] in ("+", "-") else ("", arg)
    unit = 1 if kind == "-size" and digits.endswith("c") else 0
    digits = digits.rstrip("ck")
    if not digits.isdigit():
        raise CommandError(f"find: {arg} not [+-]N")
    if kind == "-size":
        value = st.size if unit else -(-st.size // 512)
    else:
        value = (now - st.mtime) // (86400 if kind == "-mtime" else 60)
    want = int(digits)
    return value > want if sign == "+" else value < want if sign == "-" else value == want


def _find_delete(ctx: Context, path: str) -> bool:
    """unlinkat: files go, empty directories go, a non-empty directory stays and the test is false."""
    if ctx.fs.is_dir(path):
        if ctx.fs.listdir(path) or path in ("/", "/sdcard"):
            return False
        ctx.fs.rmtree(path)
    else:
        ctx.fs.remove(path)
    return True


def _find_exec(ctx: Context, command: list[str], names: list[str]) -> int:
    """Run an -exec command with `{}` replaced by the matched path(s); its output goes to find's output."""
    argv: list[str] = []
    for arg in command:
        argv += names if arg == "{}" else [arg]
    return ctx.run_argv(argv)


def _readlink(ctx: Context, args: list[str]) -> int:
    """toybox `readlink [-efmnqsz] FILE...`: a link's target, or with -f/-e/-m the path with links resolved.

    Quietly exits 1 for a file that is not a link (without -f) or a path that does not resolve.
    """
    opts, names = getopt("readlink", args, "efmnqsvz")
    if not names:
        raise CommandError('readlink: Needs 1 argument (see "readlink --help")')
    status = 0
    for name in names:
        if {"f", "e", "m"} & opts.keys():
            path = ctx.path(name)
            # -f: all but the last component must exist, -e: all of it, -m: none of it
            need = path if "e" in opts else posixpath.dirname(path) if "f" in opts else None
            found = need is None or ctx.fs.is_dir(need) or (need == path and ctx.fs.exists(path))
            text = ctx.fs.realpath(path) if found else None
        else:
            text = ctx.fs.readlink(ctx.raw_path(name))
        if text is None:
            status = 1
            continue
        ctx.out(text, end="" if "n" in opts else "\0" if "z" in opts else "\n")
    return status


def _realpath(ctx: Context, args: list[str]) -> int:
    """toybox `realpath FILE...`: each path with `.`, `..` and links resolved; it must exist."""
    _, names = getopt("realpath", args, "")
    if not names:
        raise CommandError('realpath: Needs 1 argument (see "realpath --help")')
    status = 0
    for name in names:
        path = ctx.path(name)
        if not ctx.fs.exists(path):
            ctx.err(f"realpath: {name}: No such file or directory")
            status = 1
        else:
            ctx.out(ctx.fs.realpath(path))
    return status


def _pwd(ctx: Context, args: list[str]) -> int:
    ctx.out(ctx.cwd)
    return 0


# ==== text ==============================================================================================


def _backslash_escapes(text: str) -> tuple[str, bool]:
    r"""mksh echo/print escapes; returns (text, stopped) where `\c` stops all further output."""
    simple = {
        "a": "\a",
        "b": "\b",
        "e": "\x1b",
        "f": "\f",
        "n": "\n",
        "r": "\r",
        "t": "\t",
        "v": "\v",
        "\\": "\\",
    }
    out, i = [], 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1 : i + 2]
        if c != "\\" or not nxt:
            out.append(c)
            i += 1
        elif nxt == "c":
            return "".join(out), True
        elif nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "0":
            digits = re.match(r"[0-7]{0,3}", text[i + 2 :]).group()
            out.append(chr(int(digits or "0", 8)))
            i += 2 + len(digits)
        else:
            out.append(c)
            i += 1
    return "".join(out), False


def _echo(ctx: Context, args: list[str]) -> int:
    """mksh's echo: -n, -e (the default) and -E; backslash escapes are interpreted."""
    newline, escapes = True, True
    while args and re.fullmatch(r"-[neE]+", args[0]):
        for flag in args[0][1:]:
            newline = newline and flag != "n"
            escapes = {"e": True, "E": False}.get(flag, escapes)
        args = args[1:]
    text, stopped = _backslash_escapes(" ".join(args)) if escapes else (" ".join(args), False)
    ctx.stdout += text.encode("utf-8", "surrogateescape")
    if newline and not stopped:
        ctx.stdout += b"\n"
    return 0


_PRINTF_SPEC = re.compile(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([diouxXcsfeEgGb%])")


def _printf(ctx: Context, args: list[str]) -> int:
    if not args:
        raise CommandError('printf: Needs 1 argument (see "printf --help")')
    fmt, values = args[0], list(args[1:])
    status = 0
    while True:
        consumed = False

        def convert(m: re.Match[str]) -> str:
            nonlocal consumed, status
            flags, width, precision, conv = m.groups()
            if conv == "%":
                return "%"
            # `%999999999s` would build the whole padding before printing it: bound it as a stream is bound.
            limits.check_size(max(int(width[:12] or 0), int((precision or "")[:12] or 0)), limits.STREAM_LIMIT)
            value = values.pop(0) if values else ""
            consumed = True
            if conv == "b":
                return _backslash_escapes(value)[0]
            spec = f"%{flags}{width}{'.' + precision if precision is not None else ''}"
            if conv in "sc":
                return (spec + "s") % (value[:1] if conv == "c" else value)
            try:
                number = float(value or 0) if conv in "feEgG" else int(value or 0, 0)
            except ValueError:
                ctx.err(f"printf: invalid number '{value}'")
                status, number = 1, 0
            return (spec + ("d" if conv in "iu" else conv)) % number

        text = _PRINTF_SPEC.sub(convert, _backslash_escapes(fmt)[0])
        ctx.stdout += text.encode("utf-8", "surrogateescape")
        if not values or not consumed:
            return status


def _grep_regex(pattern: str, opts: dict[str, Any]) -> str:
    """Translate a grep pattern (BRE, or ERE with -E, or fixed with -F) into a Python regex."""
    regex = re.escape(pattern) if "F" in opts else _posix_regex(pattern, extended="E" in opts)
    if "w" in opts:
        regex = rf"(?<!\w)(?:{regex})(?!\w)"
    if "x" in opts:
        regex = rf"^(?:{regex})$"
    return regex


_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
}  # fmt: skip


def _posix_regex(pattern: str, extended: bool) -> str:
    r"""POSIX regex to Python: bracket expressions and classes; BRE's `\(` `\{` `\|` `\+` are operators."""
    out, i = [], 0
    bre_ops = {"(": "(", ")": ")", "{": "{", "}": "}", "|": "|", "+": "+", "?": "?"}
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            end = i + 1 + (pattern[i + 1 : i + 2] == "^")
            end += pattern[end : end + 1] == "]"
            end = pattern.find("]", end)
            while end > 0 and pattern[end - 1 : end] == ":" and "[:" in pattern[i + 1 : end]:
                end = pattern.find("]", end + 1)
            if end < 0:
                out.append(r"\[")
                i += 1
                continue
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            body = re.sub(r"\[:(\w+):\]", lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)), body)
            out.append(f"[{body}]")
            i = end + 1
        elif c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(
                bre_ops[nxt] if not extended and nxt in bre_ops else {"<": r"\b", ">": r"\b"}.get(nxt, "\\" + nxt)
            )
            i += 2
        elif not extended and c in bre_ops:
            out.append("\\" + c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _grep(ctx: Context, args: list[str]) -> int:
    opts, operands = getopt("grep", args, "EFivcoqnlLhHsrRwxZz", valued="emABC")
    patterns = opts.get("e") or ([operands.pop(0)] if operands else None)
    if patterns is None:
        raise CommandError('grep: Needs 1 argument (see "grep --help")', 2)
    flags = regex_module.I if "i" in opts else 0
    try:
        source = "|".join(f"(?:{_grep_regex(p, opts)})" for pat in patterns for p in pat.split("\n"))
        regex = regex_module.compile(source, flags | regex_module.VERSION0)
    except (regex_module.error, re.error) as e:
        raise CommandError(f"grep: bad regex '{patterns[0]}': {e}", 2) from e
    names = operands or ["-"]
    if "r" in opts or "R" in opts:
        names = [n for name in names for n in _grep_files(ctx, name)]
    show_names = ("H" in opts or len(names) > 1 or "r" in opts or "R" in opts) and "h" not in opts
    max_count = int(opts["m"][-1]) if "m" in opts else None
    matched, error = False, False
    for name in names:
        data = _read(ctx, "grep", name) if "s" not in opts else _read_quietly(ctx, name)
        if data is None:
            error = True
            continue
        found = _grep_data(ctx, regex, data, opts, name if show_names else None, max_count)
        matched = matched or found
        if matched and "q" in opts:
            return 0
    return 2 if error and not matched else (0 if matched else 1)


def _grep_files(ctx: Context, name: str) -> list[str]:
    path = ctx.path(name)
    if not ctx.fs.is_dir(path):
        return [name]
    return [name.rstrip("/") + p[len(path) :] for p in _walk(ctx.fs, path) if ctx.fs.is_file(p)]


def _read_quietly(ctx: Context, name: str) -> bytes | None:
    stderr = ctx.stderr
    ctx.stderr = bytearray()
    try:
        return _read(ctx, "grep", name)
    finally:
        ctx.stderr = stderr


def _search(regex: Any, line: str) -> Any:
    """`regex.search`, bounded by the command line's CPU budget and without the GIL.

    Python's `re` backtracks (`(a*)*b` on a long line takes exponential time) and holds the GIL, which
    no budget check can interrupt, stalling every phone in the process. Toybox's regexec (bionic's
    NetBSD regex) does not blow up that way, so a runaway match here ends the command as a process
    past its CPU limit would, while other threads keep running.
    """
    try:
        return regex.search(line, concurrent=True, timeout=limits.cpu_left())
    except TimeoutError:
        limits.cpu_exceeded()


def _grep_data(
    ctx: Context,
    regex: Any,
    data: bytes,
    opts: dict[str, Any],
    name: str | None,
    max_count: int | None,
) -> bool:
    prefix = f"{name}:" if name else ""
    count = 0
    for number, raw in enumerate(_lines(data), start=1):
        line = raw.rstrip(b"\n").decode("utf-8", "surrogateescape")
        hit = _search(regex, line)
        if bool(hit) == ("v" in opts):
            continue
        count += 1
        if "q" in opts or "l" in opts or "L" in opts or "c" in opts:
            pass
        elif "o" in opts and "v" not in opts:
            try:
                for m in regex.finditer(line, concurrent=True, timeout=limits.cpu_left()):
                    if m.group():
                        ctx.stdout += f"{prefix}{m.group()}\n".encode("utf-8", "surrogateescape")
            except TimeoutError:
                limits.cpu_exceeded()
        else:
            line_no = f"{number}:" if "n" in opts else ""
            ctx.stdout += f"{prefix}{line_no}{line}\n".encode("utf-8", "surrogateescape")
        if max_count is not None and count >= max_count:
            break
    if "c" in opts:
        ctx.out(f"{prefix}{count}")
    if ("l" in opts and count) or ("L" in opts and not count):
        ctx.out(name or "(standard input)")
    return count > 0


def _head_tail(ctx: Context, cmd: str, args: list[str]) -> int:
    args = [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in args]  # `head -5`
    opts, names = getopt(cmd, args, "qvf", valued="nc")
    count_arg = (opts.get("n") or opts.get("c") or ["10"])[-1]
    by_bytes = "c" in opts
    status = 0
    for n, name in enumerate(names or ["-"]):
        data = _read(ctx, cmd, name)
        if data is None:
            status = 1
            continue
        if len(names) > 1 and "q" not in opts:
            ctx.out(("\n" if n else "") + f"==> {name} <==")
        chunks = list(data) if by_bytes else _lines(data)
        ctx.stdout += b"".join(bytes([c]) if by_bytes else c for c in _slice(cmd, chunks, count_arg))
    return status


def _slice(cmd: str, items: list[Any], count: str) -> list[Any]:
    if not re.fullmatch(r"[+-]?\d+", count):
        raise CommandError(f"{cmd}: Not integer '{count}'")
    n = int(count)
    if cmd == "head":
        return items[:n]  # a negative count is "all but the last N"
    if count.startswith("+"):
        return items[max(n - 1, 0) :]
    return items[-abs(n) :] if n else []


def _head(ctx: Context, args: list[str]) -> int:
    return _head_tail(ctx, "head", args)


def _tail(ctx: Context, args: list[str]) -> int:
    return _head_tail(ctx, "tail", args)


def _wc(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("wc", args, "lwcm")
    chosen = [f for f in "lwcm" if f in opts] or ["l", "w", "c"]
    status = 0
    for name in names or ["-"]:
        data = _read(ctx, "wc", name)
        if data is None:
            status = 1
            continue
        counts = {
            "l": data.count(b"\n"),
            "w": len(data.split()),
            "c": len(data),
            "m": len(data.decode("utf-8", "replace")),
        }
        line = " ".join(str(counts[f]) for f in chosen)
        ctx.out(line if name == "-" else f"{line} {name}")
    return status


def _base64(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("base64", args, "di", valued="w")
    data = _read(ctx, "base64", names[0] if names else "-")
    if data is None:
        return 1
    if "d" in opts:
        try:
            ctx.stdout += base64.b64decode(re.sub(rb"\s", b"", data) + b"==", validate=False)
        except (binascii.Error, ValueError):
            ctx.err("base64: bad input")
            return 1
        return 0
    encoded = base64.b64encode(data).decode()
    width = int(opts.get("w", ["76"])[-1])
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)] if width else [encoded]
    ctx.out("\n".join(lines) if encoded else "", end="\n" if encoded else "")
    return 0


def _sort(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("sort", args, "rnuf")
    data = b"".join(d for d in (_read(ctx, "sort", n) for n in names or ["-"]) if d is not None)
    lines = [line.rstrip(b"\n") for line in _lines(data)]

    def key(line: bytes) -> Any:
        if "n" in opts:
            m = re.match(rb"\s*(-?\d+(?:\.\d+)?)", line)
            return (float(m.group(1)) if m else 0.0, line)
        return line.lower() if "f" in opts else line

    lines = sorted(set(lines) if "u" in opts else lines, key=key, reverse="r" in opts)
    ctx.stdout += b"".join(line + b"\n" for line in lines)
    return 0


def _tee(ctx: Context, args: list[str]) -> int:
    opts, names = getopt("tee", args, "ai")
    status = 0
    for name in names:
        path = ctx.path(name)
        if not ctx.fs.is_dir(posixpath.dirname(path)) or ctx.fs.is_dir(path):
            ctx.err(f"tee: {name}: No such file or directory")
            status = 1
        elif "a" in opts:
            ctx.fs.append(path, ctx.stdin)
        else:
            ctx.fs.write(path, ctx.stdin)
    ctx.stdout += ctx.stdin
    return status


# ==== test / [ ===========================================================================================


def _test(ctx: Context, args: list[str]) -> int:
    try:
        return 0 if _test_expr(ctx, list(args)) else 1
    except (ValueError, IndexError) as e:
        raise CommandError(f"test: {e or 'syntax error'}", 2) from e


def _bracket(ctx: Context, args: list[str]) -> int:
    if not args or args[-1] != "]":
        raise CommandError("[: missing ]", 2)
    return _test(ctx, args[:-1])


_FILE_TESTS: dict[str, Callable[[Any, str], bool]] = {
    "-e": lambda fs, p: fs.exists(p),
    "-f": lambda fs, p: fs.is_file(p),
    "-d": lambda fs, p: fs.is_dir(p),
    "-s": lambda fs, p: fs.is_file(p) and fs.stat(p).size > 0,
    "-r": lambda fs, p: fs.exists(p),
    "-w": lambda fs, p: fs.exists(p),
    "-x": lambda fs, p: fs.is_dir(p),
    "-L": lambda fs, p: False,
    "-h": lambda fs, p: False,
}
_INT_TESTS: dict[str, Callable[[int, int], bool]] = {
    "-eq": lambda a, b: a == b,
    "-ne": lambda a, b: a != b,
    "-lt": lambda a, b: a < b,
    "-le": lambda a, b: a <= b,
    "-gt": lambda a, b: a > b,
    "-ge": lambda a, b: a >= b,
}


def _test_expr(ctx: Context, args: list[str]) -> bool:
    """POSIX test with `!`, -a and -o (lowest), unary file/string tests and binary comparisons."""
    if "-o" in args[1:-1]:
        i = args.index("-o", 1)
        return _test_expr(ctx, args[:i]) or _test_expr(ctx, args[i + 1 :])
    if "-a" in args[1:-1]:
        i = args.index("-a", 1)
        return _test_expr(ctx, args[:i]) and _test_expr(ctx, args[i + 1 :])
    if args and args[0] == "!" and len(args) > 1:
        return not _test_expr(ctx, args[1:])
    if len(args) == 0:
        return False
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, value = args
        if op in _FILE_TESTS:
            return _FILE_TESTS[op](ctx.fs, ctx.path(value))
        if op in ("-z", "-n"):
            return (value == "") == (op == "-z")
        raise ValueError(f"{op}: unknown operand")
    left, op, right = args[0], args[1], args[2]
    if len(args) == 3 and op in ("=", "==", "!="):
        return (left == right) == (op != "!=")
    if len(args) == 3 and op in _INT_TESTS:
        if not (re.fullmatch(r"\s*-?\d+\s*", left) and re.fullmatch(r"\s*-?\d+\s*", right)):
            raise ValueError("bad number")
        return _INT_TESTS[op](int(left), int(right))
    raise ValueError("syntax error")


# ==== system: date, sleep, users, sqlite3, sh ========================================================

_DATE_FORMAT = "%a %b %e %H:%M:%S %Z %Y"  # toybox date's default


def _date(ctx: Context, args: list[str]) -> int:
    """`date [-u] [+FORMAT]`; `date -s STRING` or `date MMDDhhmm[[CC]YY][.ss]` set the device clock."""
    opts, operands = getopt("date", args, "uR", valued="sdrD")
    now = ctx.phone.now()
    if "u" in opts:
        now = now.astimezone(dt.UTC)
    setting = opts.get("s", [None])[-1]
    fmt = next((o[1:] for o in operands if o.startswith("+")), None)
    positional = [o for o in operands if not o.startswith("+")]
    if positional:
        setting = positional[0]
    if "d" in opts:
        now = _parse_date(opts["d"][-1], now)
        if now is None:
            raise CommandError(f"date: bad date '{opts['d'][-1]}'")
    if setting is not None:
        new = _parse_date(setting, now)
        if new is None:
            raise CommandError(f"date: bad date '{setting}'")
        ctx.phone.set_clock(int(new.timestamp() * 1000))
        now = new
    ctx.out(_strftime(now, fmt or _DATE_FORMAT))
    return 0


def _strftime(when: dt.datetime, fmt: str) -> str:
    fmt = fmt.replace("%s", str(int(when.timestamp()))).replace("%N", f"{when.microsecond * 1000:09d}")
    return when.strftime(fmt)


def _parse_date(text: str, now: dt.datetime) -> dt.datetime | None:
    """toybox date's inputs: @EPOCH, MMDDhhmm[[CC]YY][.ss], or YYYY-MM-DD [hh:mm[:ss]] / hh:mm[:ss]."""
    tz = now.tzinfo
    if re.fullmatch(r"@-?\d+(\.\d+)?", text):
        return dt.datetime.fromtimestamp(float(text[1:]), tz)
    m = re.fullmatch(r"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d|\d{4})?(?:\.(\d\d))?", text)
    try:
        if m:
            month, day, hour, minute, year, second = m.groups()
            if year is None:
                full_year = now.year
            elif len(year) == 4:
                full_year = int(year)
            else:
                full_year = (1900 if int(year) >= 69 else 2000) + int(year)  # POSIX two-digit years
            return dt.datetime(full_year, int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz)
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
            try:
                return dt.datetime.strptime(text, fmt).replace(tzinfo=tz)
            except ValueError:
                pass
        for fmt in ("%H:%M:%S", "%H:%M"):
            try:
                t = dt.datetime.strptime(text, fmt)
                return now.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=0)
            except ValueError:
                pass
    except ValueError:
        return None
    return None


def _sleep(ctx: Context, args: list[str]) -> int:
    total = 0.0
    for arg in args:
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", arg)
        if not m:
            raise CommandError(f"sleep: Not a number '{arg}'")
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    limits.sleep(total)  # waits without the phone's lock; a killed command line stops sleeping
    return 0


# The supplementary groups adbd gives its shell, as root or as shell (toybox `id` lists the gid first).
_ADBD_GROUPS = (
    "1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),"
    "3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs)"
)


def _whoami(ctx: Context, args: list[str]) -> int:
    ctx.out("root" if ctx.phone.adb_root else "shell")  # adbd's uid after `adb root` / `adb unroot`
    return 0


def _id(ctx: Context, args: list[str]) -> int:
    if ctx.phone.adb_root:
        ctx.out(f"uid=0(root) gid=0(root) groups=0(root),{_ADBD_GROUPS} context=u:r:su:s0")
    else:
        ctx.out(f"uid=2000(shell) gid=2000(shell) groups=2000(shell),{_ADBD_GROUPS} context=u:r:shell:s0")
    return 0


def _uname(ctx: Context, args: list[str]) -> int:
    fields = {"s": "Linux", "n": "localhost", "r": "5.15.41-android13-8-00055-g4f5025129fe8-ab8949913"}
    fields |= {"v": "#1 SMP PREEMPT Mon Aug 15 18:33:14 UTC 2022", "m": "x86_64", "o": "Toybox"}
    opts, _ = getopt("uname", args, "snrvmoa")
    chosen = "snrvmo" if "a" in opts else "".join(f for f in "snrvmo" if f in opts) or "s"
    ctx.out(" ".join(fields[f] for f in chosen))
    return 0


def _true(ctx: Context, args: list[str]) -> int:
    return 0


def _false(ctx: Context, args: list[str]) -> int:
    return 1


def _sh(ctx: Context, args: list[str]) -> int:
    """`sh -c SCRIPT` (a subshell); `sh` alone reads the script from stdin."""
    if args[:1] == ["-c"]:
        return ctx.run_script(args[1] if len(args) > 1 else "")
    if not args:
        return ctx.run_script(ctx.stdin.decode("utf-8", "surrogateescape"))
    data = _read(ctx, "sh", args[0])
    return 127 if data is None else ctx.run_script(data.decode("utf-8", "surrogateescape"))


def _su(ctx: Context, args: list[str]) -> int:
    """`su [UID] [COMMAND...]` / `su -c SCRIPT` as on userdebug emulators (the shell already acts as root)."""
    if args[:1] in (["0"], ["root"]):
        args = args[1:]
    if args[:1] == ["-c"]:
        return ctx.run_script(" ".join(args[1:]))
    return ctx.run_argv(args) if args else 0


# ---- sqlite3 --------------------------------------------------------------------------------------


def _sqlite3(ctx: Context, args: list[str]) -> int:
    """`sqlite3 [-header] [-separator S] [-json|-csv|-line] DB [SQL]` against a database file in the VFS."""
    options, operands = _sqlite_options(args)
    if not operands:
        ctx.err("Error: the simulated sqlite3 needs a database file argument")
        return 1
    path = ctx.path(operands[0])
    sql = " ".join(operands[1:]) if len(operands) > 1 else ctx.stdin.decode("utf-8", "surrogateescape")
    if not ctx.fs.is_dir(posixpath.dirname(path)) or ctx.fs.is_dir(path):
        ctx.err(f'Error: unable to open database "{operands[0]}": unable to open database file')
        return 1
    status = 1
    try:
        with ctx.fs.sqlite(path) as conn:
            status = _sqlite_run(ctx, conn, sql, options)
    except sqlite3.DatabaseError as e:
        if "unable to serialize" not in str(e):
            ctx.err(f"Error: {str(e).split(': ')[-1]}")
            return 1
        # A database with no pages cannot be serialised; sqlite3 leaves an empty file in that case.
        if not ctx.fs.exists(path):
            ctx.fs.write(path, b"")
    return status


def _sqlite_options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    options = {"mode": "list", "separator": "|", "header": "off", "nullvalue": ""}
    operands, it = [], iter(args)
    for arg in it:
        name = arg.lstrip("-")
        if arg.startswith("-") and name in ("json", "csv", "line", "list", "column", "tabs"):
            options["mode"] = name
        elif arg.startswith("-") and name in ("header", "noheader"):
            options["header"] = "on" if name == "header" else "off"
        elif arg.startswith("-") and name in ("separator", "nullvalue", "cmd"):
            options[name] = next(it, "")
        elif arg.startswith("-") and name in ("batch", "bail", "echo", "readonly", "interactive"):
            continue
        else:
            operands.append(arg)
    if options["mode"] == "csv":
        options["separator"] = ","
    if options["mode"] == "tabs":
        options["separator"] = "\t"
    return options, operands


def _sqlite_run(ctx: Context, conn: sqlite3.Connection, sql: str, options: dict[str, str]) -> int:
    """Run each statement in turn like the CLI: print rows, stop at the first error (earlier ones stick)."""
    for statement in _sql_statements(sql):
        if statement.startswith("."):
            _sqlite_dot_command(ctx, conn, statement)
            continue
        try:
            cursor = conn.execute(statement)
            rows = cursor.fetchall()
        except sqlite3.DatabaseError as e:
            limits.check()  # "interrupted" by the progress handler: the command line's budget is spent
            if isinstance(e, sqlite3.OperationalError):
                ctx.err(f"Error: in prepare, {e}")
            elif _sqlite_code(e) == _SQLITE_AUTH and str(e) == "not authorized":
                ctx.err(f"Error: in prepare, {e} ({_SQLITE_AUTH})")  # the authorizer refuses at prepare time
            else:
                ctx.err(f"Error: stepping, {e} ({_sqlite_code(e)})")
            return 1
        if cursor.description:
            _sqlite_print(ctx, [d[0] for d in cursor.description], rows, options)
    return 0


_SQLITE_AUTH = 23


def _sqlite_code(error: sqlite3.DatabaseError) -> int:
    return getattr(error, "sqlite_errorcode", 1) & 0xFF


def _sql_statements(sql: str) -> Iterator[str]:
    """Split a script into complete statements (sqlite3.complete_statement knows about quotes)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        if not pending.strip() and line.strip().startswith("."):
            yield line.strip()
            continue
        for piece in re.split(r"(?<=;)", line):
            pending += piece
            if pending.strip() and sqlite3.complete_statement(pending):
                yield pending.strip()
                pending = ""
    if pending.strip():
        yield pending.strip()


def _sqlite_dot_command(ctx: Context, conn: sqlite3.Connection, command: str) -> None:
    name = command.split()[0]
    if name == ".tables":
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        if tables:
            ctx.out("  ".join(tables))
    elif name == ".schema":
        for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"):
            ctx.out(f"{sql};")
    else:
        ctx.err(f'Error: unknown command or invalid arguments:  "{name[1:]}". Enter ".help" for help')


def _sqlite_value(value: Any, null: str) -> str:
    """A value as the sqlite3 shell prints it (REAL with %.15g and a .0 on whole numbers)."""
    if value is None:
        return null
    if isinstance(value, float):
        text = f"{value:.15g}"
        return text + ".0" if re.fullmatch(r"-?\d+", text) else text
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _sqlite_print(ctx: Context, names: list[str], rows: list[tuple], options: dict[str, str]) -> None:
    mode, sep, null = options["mode"], options["separator"], options["nullvalue"]
    if mode == "json":
        if rows:
            import json

            body = ",\n".join(json.dumps(dict(zip(names, row, strict=True)), separators=(",", ":")) for row in rows)
            ctx.out(f"[{body}]")
        return
    if mode == "line":
        width = max(len(n) for n in names)
        for n, row in enumerate(rows):
            ctx.out(
                ("\n" if n else "")
                + "\n".join(f"{k:>{width}} = {_sqlite_value(v, null)}" for k, v in zip(names, row, strict=True))
            )
        return
    if options["header"] == "on" and rows:
        ctx.out(sep.join(names))
    for row in rows:
        ctx.out(sep.join(_sqlite_value(v, null) for v in row))
