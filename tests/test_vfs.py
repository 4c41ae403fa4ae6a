"""The in-memory filesystem: POSIX-like errors, modes, sqlite files."""

import sqlite3
import stat

import pytest

from droidrl.envs.sim.vfs import VirtualFS, normpath


@pytest.fixture
def fs():
    return VirtualFS(clock=lambda: 1_697_384_040)


def test_base_layout(fs):
    assert fs.is_dir("/sdcard/Download") and fs.is_dir("/data/local/tmp")
    names = [name for name, _ in fs.listdir("/sdcard")]
    assert names == sorted(names) and "Download" in names


def test_write_read_stat(fs):
    fs.write("/sdcard/a/b/c.txt", b"hello", mode=0o644)
    st = fs.stat("/sdcard/a/b/c.txt")
    assert (st.size, stat.S_IMODE(st.mode), stat.S_ISREG(st.mode), st.mtime) == (
        5,
        0o644,
        True,
        1_697_384_040,
    )
    assert fs.read("sdcard//a/b/../b/c.txt") == b"hello"
    assert fs.is_dir("/sdcard/a/b")


def test_errors(fs):
    with pytest.raises(FileNotFoundError):
        fs.read("/nope")
    with pytest.raises(IsADirectoryError):
        fs.read("/sdcard")
    with pytest.raises(NotADirectoryError):
        fs.write("/sdcard/f", b"")
        fs.listdir("/sdcard/f")
    with pytest.raises(FileExistsError):
        fs.mkdir("/sdcard")
    with pytest.raises(FileNotFoundError):
        fs.mkdir("/x/y")


def test_rmtree_and_restore(fs):
    fs.write("/data/data/p/databases/x.db", b"1")
    saved = fs.state()
    fs.rmtree("/data/data/p")
    assert not fs.exists("/data/data/p/databases/x.db")
    fs.restore(saved)
    assert fs.read("/data/data/p/databases/x.db") == b"1"


def test_sqlite_round_trip_and_untouched_db_not_rewritten(fs):
    with fs.sqlite("/data/data/p/databases/t.db") as conn:
        conn.execute("CREATE TABLE t(a)")
        conn.execute("INSERT INTO t VALUES (42)")
    data = fs.read("/data/data/p/databases/t.db")
    assert data.startswith(b"SQLite format 3\x00")
    with fs.sqlite("/data/data/p/databases/t.db") as conn:
        assert conn.execute("SELECT a FROM t").fetchall() == [(42,)]
    assert fs.read("/data/data/p/databases/t.db") is data


def test_sqlite_on_garbage_names_the_file(fs):
    fs.write("/sdcard/bad.db", b"not a database at all" * 10)
    with (
        pytest.raises(sqlite3.DatabaseError, match=r"/sdcard/bad\.db: file is not a database"),
        fs.sqlite("/sdcard/bad.db"),
    ):
        pass


def test_normpath():
    assert normpath("sdcard/x/") == "/sdcard/x"
    assert normpath("/../..") == "/"


def test_storage_is_finite_and_a_write_beyond_it_fails_with_enospc(fs):
    import errno

    fs.capacity = fs.used() + 1000
    fs.write("/sdcard/a.bin", b"x" * 600)
    with pytest.raises(OSError) as failed:
        fs.write("/sdcard/b.bin", b"y" * 600)
    assert (failed.value.errno, failed.value.strerror) == (errno.ENOSPC, "No space left on device")
    assert not fs.exists("/sdcard/b.bin")
    fs.write("/sdcard/a.bin", b"x" * 1000)  # replacing a file counts only the difference
    fs.remove("/sdcard/a.bin")  # and removing one frees its space
    assert fs.free() == 1000
    writer = fs.open_writer("/sdcard/pushed.bin")  # a push claims space as data arrives
    writer.write(b"z" * 700)
    with pytest.raises(OSError, match="No space left on device"):
        fs.write("/sdcard/c.bin", b"c" * 400)
    writer.commit(mtime=5)
    assert (fs.read("/sdcard/pushed.bin"), fs.stat("/sdcard/pushed.bin").mtime, fs.free()) == (b"z" * 700, 5, 300)
    saved = fs.state()
    fs.rmtree("/sdcard")
    assert fs.free() == 1000
    fs.restore(saved)
    assert fs.free() == 300


def test_storage_parents_are_directories_and_sdcard_is_a_link(fs):
    assert fs.is_dir("/storage") and fs.is_dir("/storage/emulated") and fs.is_dir("/storage/self")
    assert [name for name, _ in fs.listdir("/storage")] == ["emulated", "self"]
    (zero,) = fs.listdir("/storage/emulated")
    assert zero[0] == "0" and zero[1].is_dir
    (primary,) = fs.listdir("/storage/self")
    assert primary[0] == "primary" and stat.S_ISLNK(primary[1].mode)
    assert stat.S_ISLNK(dict(fs.listdir("/"))["sdcard"].mode)
    assert fs.lstat("/sdcard").size == len("/storage/self/primary") and fs.lstat("/sdcard/").is_dir
    assert fs.readlink("/sdcard") == "/storage/self/primary" and fs.readlink("/sdcard/Download") is None
    assert fs.realpath("/storage/self/primary/Download") == "/storage/emulated/0/Download"
    files, nodes = fs.state()
    fs.restore((files, {k: v for k, v in nodes.items() if not k.startswith("/storage")}))  # an older state
    assert fs.is_dir("/storage/emulated")
