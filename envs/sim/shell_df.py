"""toybox `df` on the simulated phone: an API 33 emulator's mounts, with /data and shared storage as the VFS.

The phone has one storage (`VirtualFS.capacity`, `used()`): /data and /storage/emulated (FUSE over /data)
report it, as they share the userdata partition on a device. The read-only partitions are full, as on
an emulator image; tmpfs mounts are half the guest's RAM.
"""

from __future__ import annotations

from dataclasses import dataclass

from droidrl.envs.sim.shell_util import Context, getopt

BLOCK = 4096  # f_frsize of the emulator's filesystems
_TMPFS_BLOCKS = 250_253  # half of a 2 GB guest's RAM, in 4 KiB pages


@dataclass(frozen=True)
class Mount:
    device: str
    dir: str
    blocks: int  # in BLOCK units
    used: int


# In creation order, overmounts and bind mounts already left out (toybox shows the earliest of those).
_FIXED = (
    Mount("/dev/block/dm-0", "/", 1_520_566, 1_520_566),
    Mount("tmpfs", "/dev", _TMPFS_BLOCKS, 300),
    Mount("tmpfs", "/mnt", _TMPFS_BLOCKS, 0),
    Mount("/dev/block/vde1", "/metadata", 22_740, 302),
    Mount("/dev/block/dm-1", "/system_ext", 78_450, 78_450),
    Mount("/dev/block/dm-2", "/product", 205_595, 205_595),
    Mount("/dev/block/dm-3", "/vendor", 80_085, 80_085),
    Mount("tmpfs", "/apex", _TMPFS_BLOCKS, 0),
    Mount("tmpfs", "/linkerconfig", _TMPFS_BLOCKS, 212),
)
_DATA_DEVICES = (("/dev/block/dm-5", "/data"), ("/dev/fuse", "/storage/emulated"))


def mounts(fs: object) -> list[Mount]:
    """The mount table df walks: the fixed partitions, then userdata and its FUSE view of the VFS."""
    blocks = fs.capacity // BLOCK  # type: ignore[attr-defined]
    used = min(blocks, -(-fs.used() // BLOCK))  # type: ignore[attr-defined]  # files take whole blocks
    return [*_FIXED, *(Mount(device, path, blocks, used) for device, path in _DATA_DEVICES)]


def _mount_of(path: str, table: list[Mount]) -> Mount:
    """The mount a path lives on; shared storage's names are views of /storage/emulated."""
    if path == "/sdcard" or path.startswith(("/sdcard/", "/storage/self", "/mnt/sdcard")):
        path = "/storage/emulated"
    best = table[0]
    for mount in table:
        prefix = mount.dir.rstrip("/") + "/"
        if (path == mount.dir or path.startswith(prefix)) and len(mount.dir) >= len(best.dir):
            best = mount
    return best


def human_readable(num: int, unit_base: int = 1024) -> str:
    """toybox's human_readable(): three digits at most, one decimal for single digits (5.8G, 977M, 0)."""
    snap, unit = 0, 0
    while num > 999:
        snap, num = num, (num + unit_base // 2) // unit_base
        unit += 1
    text = str(num)
    if unit and len(text) == 1:
        whole = snap // unit_base
        tenths = ((snap - whole * unit_base) * 100 + 50) // unit_base // 10
        text = f"{whole}.{tenths}"
    if unit:
        letter = " kMGTPE"[unit]
        text += letter.upper() if unit_base == 1024 else letter
    return text


def _row(mount: Mount, units: int, human: int) -> list[str]:
    size, used = mount.blocks * BLOCK, mount.used * BLOCK
    avail = size - used
    numbers = [size // units, used // units, avail // units]
    fields = [human_readable(n, human) if human else str(n) for n in numbers]
    total = numbers[1] + numbers[2]
    percent = 0 if not total else -(-numbers[1] * 100 // total)  # rounded up, as toybox does
    return [mount.device, *fields, f"{percent}%", mount.dir]


def df(ctx: Context, args: list[str]) -> int:
    """`df [-HhkP] [-t TYPE] [FILE...]`: toybox's table, columns as wide as their widest entry."""
    opts, names = getopt("df", args, "HPkha", valued="t")
    human = 1000 if "H" in opts else 1024 if "h" in opts else 0
    units = 1 if human else 512 if "P" in opts and "k" not in opts else 1024
    table = mounts(ctx.fs)
    status = 0
    if names:
        shown = []
        for name in names:
            path = ctx.path(name)
            if not ctx.fs.exists(path):
                ctx.err(f"df: '{name}': No such file or directory")
                status = 1
            else:
                shown.append(_mount_of(path, table))
    else:
        shown = table
    if "t" in opts:  # the emulator's filesystems by type: tmpfs, fuse, and ext4 for the block devices
        kinds = {"tmpfs": "tmpfs", "/dev/fuse": "fuse"}
        shown = [m for m in shown if kinds.get(m.device, "ext4") in opts["t"]]
    rows = [_row(m, units, human) for m in shown]
    header = ["Filesystem", "Size", "Used", "Avail", "Use%", "Mounted on"]
    if not human:
        header[1] = "512-blocks" if units == 512 else "1024-blocks" if "P" in opts else "1K-blocks"
        header[3] = "Available"
        if "P" in opts:
            header[4] = "Capacity"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    widths[0] = max(widths[0], 14 + bool(human))
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), *(row[i].rjust(widths[i]) for i in range(1, 5)), row[5]]
        ctx.out(" ".join(cells))
    return status
