"""An in-memory POSIX-like filesystem for one simulated phone, with sqlite databases stored as files.

Files are immutable ``bytes`` values in a dict, so copying the whole filesystem for a snapshot is a
shallow dict copy. Apps keep state in real sqlite databases whose bytes live here, which is what lets
a checker pull ``/data/data/<pkg>/databases/x.db`` over adb and query it like on a real phone.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import posixpath
import sqlite3
import stat as statmod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from droidrl.envs.sim import limits

DIR_MODE = statmod.S_IFDIR | 0o771
FILE_MODE = statmod.S_IFREG | 0o660

# The size of the phone's storage (/data, which /sdcard lives on). The files are kept in host memory,
# so this is also what bounds how much memory a phone's files can take. 2 GiB is the data partition
# of an AVD created with the default `disk.dataPartition.size`.
DEFAULT_CAPACITY = 2 * 1024**3

# The directories every phone starts with (a subset of a real userdebug emulator image).
BASE_DIRS = (
    "/sdcard",
    "/sdcard/Download",
    "/sdcard/Pictures",
    "/sdcard/DCIM",
    "/sdcard/Documents",
    "/sdcard/Music",
    "/sdcard/Movies",
    "/data/local/tmp",
    "/data/data",
    "/data/system",
    "/system/bin",
    "/system/app",
    "/proc",
)


@dataclass(frozen=True)
class FileStat:
    """What `stat` reports: full st_mode (type bits included), size in bytes, mtime in epoch seconds."""

    mode: int
    size: int
    mtime: int

    @property
    def is_dir(self) -> bool:
        return statmod.S_ISDIR(self.mode)


# Android's shared storage has several names; the phone keeps files under the shortest one.
STORAGE_ALIASES = ("/storage/emulated/0", "/storage/self/primary", "/mnt/sdcard")

# The directories above shared storage (vold's tmpfs and the FUSE mount on API 33): path -> permission bits.
# Each has one child that is a name of /sdcard, which listdir shows (STORAGE_CHILDREN).
STORAGE_DIRS = {"/storage": 0o755, "/storage/emulated": 0o711, "/storage/self": 0o755}
STORAGE_CHILDREN = {"/storage/emulated": "0", "/storage/self": "primary"}

# Symbolic links of a stock API 33 image (path -> what readlink prints); /mnt/user/0/primary in turn
# points at /storage/emulated/0, the one real directory (REAL_STORAGE).
SYMLINKS = {"/sdcard": "/storage/self/primary", "/storage/self/primary": "/mnt/user/0/primary"}
REAL_STORAGE = "/storage/emulated/0"
LINK_MODE = statmod.S_IFLNK | 0o777


def normpath(path: str) -> str:
    """Absolute, normalised path; `sdcard/x`, `/sdcard//x/` and `/storage/emulated/0/x` all become `/sdcard/x`."""
    path = posixpath.normpath("/" + path.lstrip("/"))
    if path == "//":
        return "/"
    for alias in STORAGE_ALIASES:
        if path == alias or path.startswith(alias + "/"):
            return "/sdcard" + path[len(alias) :]
    return path


class VirtualFS:
    """Files and directories of one phone. Not thread-safe; the owning `Phone` serialises access."""

    def __init__(self, clock: Callable[[], int], capacity: int = DEFAULT_CAPACITY) -> None:
        self._clock = clock
        self.capacity = capacity  # bytes of file data the storage holds; a write beyond it fails with ENOSPC
        self._used = 0  # bytes in files
        self._claimed = 0  # bytes promised to writers still receiving data (pushes in progress)
        self._files: dict[str, bytes] = {}
        self._nodes: dict[str, tuple[int, int]] = {"/": (DIR_MODE, 0)}  # path -> (mode, mtime)
        for d in BASE_DIRS:
            self.makedirs(d)
        self._add_storage_dirs()

    def _add_storage_dirs(self) -> None:
        for d, mode in STORAGE_DIRS.items():
            self._nodes.setdefault(d, (statmod.S_IFDIR | mode, self._clock()))

    # ---- snapshots -------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, bytes], dict[str, tuple[int, int]]]:
        """A copy of the whole filesystem, cheap because file contents are immutable bytes."""
        return dict(self._files), dict(self._nodes)

    def restore(self, state: tuple[dict[str, bytes], dict[str, tuple[int, int]]]) -> None:
        files, nodes = state
        self._files, self._nodes = dict(files), dict(nodes)
        self._used = sum(map(len, self._files.values()))
        self._add_storage_dirs()  # a state saved before /storage was a directory

    # ---- queries -----------------------------------------------------------------------------
    def stat(self, path: str) -> FileStat | None:
        path = normpath(path)
        node = self._nodes.get(path)
        if node is None:
            return None
        mode, mtime = node
        size = len(self._files[path]) if path in self._files else 4096
        return FileStat(mode, size, mtime)

    def lstat(self, path: str) -> FileStat | None:
        """As `stat`, but a symbolic link (`/sdcard`, `/storage/self/primary`, no trailing slash) is itself."""
        raw = posixpath.normpath("/" + path.lstrip("/"))
        if raw in SYMLINKS and not path.endswith("/"):
            _mode, mtime = self._nodes["/sdcard"]
            return FileStat(LINK_MODE, len(SYMLINKS[raw]), mtime)
        return self.stat(path)

    def readlink(self, path: str) -> str | None:
        """The target of the symbolic link at `path`, None when it is not one."""
        return None if path.endswith("/") else SYMLINKS.get(posixpath.normpath("/" + path.lstrip("/")))

    def realpath(self, path: str) -> str:
        """`path` with every link resolved: shared storage's names all become /storage/emulated/0."""
        path = normpath(path)
        if path == "/sdcard" or path.startswith("/sdcard/"):
            return REAL_STORAGE + path[len("/sdcard") :]
        return path

    def exists(self, path: str) -> bool:
        return normpath(path) in self._nodes

    def is_dir(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and st.is_dir

    def is_file(self, path: str) -> bool:
        return normpath(path) in self._files

    def listdir(self, path: str) -> list[tuple[str, FileStat]]:
        """Direct children of a directory, sorted by name."""
        path = normpath(path)
        st = self.stat(path)
        if st is None:
            raise FileNotFoundError(path)
        if not st.is_dir:
            raise NotADirectoryError(path)
        prefix = path.rstrip("/") + "/"
        children = []
        for p in self._nodes:
            if p != path and p.startswith(prefix) and "/" not in p[len(prefix) :]:
                children.append((p[len(prefix) :], self.lstat(p)))
        if path in STORAGE_CHILDREN:
            name = STORAGE_CHILDREN[path]
            children.append((name, self.lstat(f"{path}/{name}")))
        return sorted(children)

    def read(self, path: str) -> bytes:
        path = normpath(path)
        if path in self._files:
            return self._files[path]
        if path in self._nodes:
            raise IsADirectoryError(path)
        raise FileNotFoundError(path)

    def used(self) -> int:
        """Bytes taken by files (and by pushes still in progress)."""
        return self._used + self._claimed

    def free(self) -> int:
        return max(0, self.capacity - self.used())

    def walk_files(self, top: str = "/") -> Iterator[str]:
        prefix = normpath(top).rstrip("/") + "/"
        yield from sorted(p for p in self._files if p.startswith(prefix))

    # ---- changes -------------------------------------------------------------------------------
    def makedirs(self, path: str, mode: int = 0o771) -> None:
        path = normpath(path)
        parts = [p for p in path.split("/") if p]
        cur = ""
        for part in parts:
            cur += "/" + part
            if cur in self._files:
                raise NotADirectoryError(cur)
            if cur not in self._nodes:
                self._nodes[cur] = (statmod.S_IFDIR | mode, self._clock())

    def mkdir(self, path: str, mode: int = 0o771) -> None:
        path = normpath(path)
        if path in self._nodes:
            raise FileExistsError(path)
        parent = posixpath.dirname(path)
        if not self.is_dir(parent):
            raise FileNotFoundError(parent)
        self._nodes[path] = (statmod.S_IFDIR | mode, self._clock())

    def write(self, path: str, data: bytes, mode: int = 0o660, mtime: int | None = None) -> None:
        """Create or replace a file; parent directories are created (as adbd does for a push)."""
        path = normpath(path)
        if self.is_dir(path):
            raise IsADirectoryError(path)
        self.makedirs(posixpath.dirname(path))
        data = bytes(data)
        old = len(self._files.get(path, b""))
        self._check_space(path, len(data) - old)
        self._files[path] = data
        self._used += len(data) - old
        self._nodes[path] = (statmod.S_IFREG | (mode & 0o7777), self._clock() if mtime is None else mtime)

    def append(self, path: str, data: bytes) -> None:
        old = self._files.get(normpath(path), b"")
        self.write(path, old + data)

    def remove(self, path: str) -> None:
        path = normpath(path)
        if path not in self._nodes:
            raise FileNotFoundError(path)
        if path not in self._files:
            raise IsADirectoryError(path)
        self._used -= len(self._files[path])
        del self._files[path], self._nodes[path]

    def rmtree(self, path: str) -> None:
        path = normpath(path)
        if path not in self._nodes:
            raise FileNotFoundError(path)
        prefix = path.rstrip("/") + "/"
        for p in [p for p in self._nodes if p == path or p.startswith(prefix)]:
            self._nodes.pop(p)
            self._used -= len(self._files.pop(p, b""))

    # ---- space -------------------------------------------------------------------------------
    def _check_space(self, path: str, grow: int) -> None:
        if grow > 0 and self.used() + grow > self.capacity:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    def open_writer(self, path: str, mode: int = 0o660) -> FileWriter:
        """Start writing `path` piece by piece, as adbd writes a push.

        The old file is replaced at once by an empty one (parents created), space is claimed as data
        arrives, and `commit()` stores the contents.
        """
        path = normpath(path)
        if self.is_file(path):
            self.remove(path)  # adbd unlinks a regular file before receiving the new one
        self.write(path, b"", mode)
        return FileWriter(self, path, mode & 0o7777)

    # ---- sqlite ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def sqlite(self, path: str) -> Iterator[sqlite3.Connection]:
        """Open the database file at `path` (created if absent); changes are written back on exit.

        The database is a real sqlite file: `read(path)` returns bytes that `sqlite3` on a host can
        open after an `adb pull`.
        """
        path = normpath(path)
        conn = sqlite3.connect(":memory:", uri=False)
        if self._files.get(path):
            try:
                conn.deserialize(self._files[path])
                conn.execute("PRAGMA schema_version")  # deserialize accepts anything; this reads the header
            except sqlite3.DatabaseError as err:
                conn.close()
                raise sqlite3.DatabaseError(f"{path}: file is not a database") from err
        confine_sqlite(conn)
        try:
            yield conn
            conn.commit()
            try:
                data = conn.serialize()
            except sqlite3.OperationalError:
                data = b""  # a database with no pages yet: sqlite3 leaves an empty file too
            if data != self._files.get(path):
                self.write(path, data)
        finally:
            conn.close()


class FileWriter:
    """A file receiving data (an adb push): each chunk claims storage space or fails with ENOSPC."""

    def __init__(self, fs: VirtualFS, path: str, mode: int) -> None:
        self.fs, self.path, self.mode = fs, path, mode
        self.committed = False
        # BytesIO grows one bytes object and hands it over at commit without a copy, so a push costs
        # about its size in memory, not twice that.
        self._data = io.BytesIO()
        self._size = 0

    def write(self, chunk: bytes) -> None:
        self.fs._check_space(self.path, len(chunk))
        self.fs._claimed += len(chunk)
        self._data.write(chunk)
        self._size += len(chunk)

    def commit(self, mtime: int | None = None) -> None:
        """Store what was written as the file's contents, with this mtime (None: now)."""
        data = self._data.getvalue()
        self._release()
        self.fs.write(self.path, data, self.mode, mtime)
        self.committed = True

    def discard(self) -> None:
        """Give up: the partial file is removed, as adbd unlinks a failed push."""
        self._release()
        if self.fs.is_file(self.path):
            self.fs.remove(self.path)

    def _release(self) -> None:
        self.fs._claimed -= self._size
        self._size = 0
        data, self._data = self._data, io.BytesIO()
        data.close()


# ---- sqlite confinement -----------------------------------------------------------------------------
# Every database the phone opens (the `sqlite3` tool, `content`, the apps) comes through `sqlite()` above
# and lives in host memory; SQL must not reach the host's files, settings or memory beyond the phone's own.
SQLITE_MAX_BYTES = 256 << 20  # one database's size (its pages); the storage quota applies on write-back
SQLITE_MAX_VALUE = 64 << 20  # one string or blob (SQLITE_LIMIT_LENGTH)
_SQLITE_PRAGMAS_DENIED = {
    "temp_store_directory",  # would put temporary files in any host directory
    "data_store_directory",
    "soft_heap_limit",  # process-wide: would starve every other phone's databases
    "hard_heap_limit",
    "threads",
}
_SQLITE_PRAGMAS_FIXED = {"temp_store", "max_page_count", "page_size", "writable_schema", "mmap_size"}  # readable only
_SQLITE_FUNCTIONS_DENIED = {"load_extension", "fts3_tokenizer"}


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    """Deny what reaches outside the in-memory database: ATTACH of a file (VACUUM INTO is one), extensions."""
    if action == sqlite3.SQLITE_ATTACH:
        # Plain VACUUM attaches a temporary database (""), which temp_store=MEMORY keeps in memory.
        return sqlite3.SQLITE_OK if arg1 in ("", ":memory:") else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _SQLITE_PRAGMAS_DENIED or (name in _SQLITE_PRAGMAS_FIXED and arg2 is not None):
            return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQLITE_FUNCTIONS_DENIED:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def confine_sqlite(conn: sqlite3.Connection) -> None:
    """Keep a connection inside host memory and the command's budget; denied SQL fails `not authorized`."""
    if hasattr(conn, "enable_load_extension"):  # absent where Python's sqlite3 cannot load extensions at all
        conn.enable_load_extension(False)
    conn.execute("PRAGMA temp_store = MEMORY")  # sorts, temp tables and VACUUM never touch the host's /tmp
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {max(1, SQLITE_MAX_BYTES // page_size)}")
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_MAX_VALUE)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 1)  # VACUUM's own temporary database
    _confined_handlers(conn)


def _confined_handlers(conn: sqlite3.Connection) -> None:
    conn.set_authorizer(_sqlite_authorizer)
    conn.set_progress_handler(limits.sqlite_progress, 10_000)  # a runaway query stops with its command line


@contextlib.contextmanager
def stricter_sqlite(
    conn: sqlite3.Connection, authorizer: Callable[..., int], progress: Callable[[], int], every: int
) -> Iterator[sqlite3.Connection]:
    """Add checks on top of the confinement for a while (a provider running user SQL fragments).

    A statement must pass both authorizers, and either progress handler may stop it; on exit the
    confinement's own handlers are back, so later SQL on the connection is confined as before.
    """

    def both(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        verdict = _sqlite_authorizer(action, arg1, arg2, db, source)
        return verdict if verdict != sqlite3.SQLITE_OK else authorizer(action, arg1, arg2, db, source)

    conn.set_authorizer(both)
    conn.set_progress_handler(lambda: limits.sqlite_progress() or progress(), every)
    try:
        yield conn
    finally:
        _confined_handlers(conn)
