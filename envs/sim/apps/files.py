"""The Files app (DocumentsUI, com.google.android.documentsui): browse shared storage and manage files.

Select, delete, rename, move or copy files and create folders; every operation changes the phone's real files.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import urllib.parse
from typing import TYPE_CHECKING

from droidrl.envs.sim.app import App, Ctx, IntentFilter
from droidrl.envs.sim.ui import BUTTON, TEXT, Dialog, Node, Screen, edit, icon_button, item, text
from droidrl.envs.sim.vfs import VirtualFS

if TYPE_CHECKING:
    from droidrl.envs.sim.intents import Intent

PACKAGE = "com.google.android.documentsui"
# DocumentsUI's classes live in com.android.documentsui, so the framework names them in full.
FILES = "com.android.documentsui.files.FilesActivity"
PICK = "com.android.documentsui.picker.PickActivity"
ROOT = "/sdcard"  # the "internal storage" root the app opens on
ELLIPSIS = "\u2026"


# ---- file operations (shared with Markor, which keeps its notes in the same storage) ---------------------


def entries(fs: VirtualFS, path: str, *, hidden: bool = False) -> list[tuple[str, bool, int, int]]:
    """(name, is_dir, size, mtime) of a folder's children: folders first, then by name ignoring case."""
    if not fs.is_dir(path):
        return []
    found = [(name, st.is_dir, st.size, st.mtime) for name, st in fs.listdir(path) if hidden or name[:1] != "."]
    return sorted(found, key=lambda e: (not e[1], e[0].casefold(), e[0]))


def copy_path(fs: VirtualFS, src: str, dst: str) -> None:
    """Copy a file or folder tree, keeping contents, modes and modification times."""
    st = fs.stat(src)
    if not st.is_dir:
        fs.write(dst, fs.read(src), mode=st.mode, mtime=st.mtime)
        return
    fs.makedirs(dst)
    for name, _, _, _ in entries(fs, src, hidden=True):
        copy_path(fs, posixpath.join(src, name), posixpath.join(dst, name))


def move_path(fs: VirtualFS, src: str, dst: str) -> None:
    """rename(2): the entry keeps its contents and modification time under its new path."""
    copy_path(fs, src, dst)
    fs.rmtree(src)


def valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def format_size(size: int) -> str:
    """Formatter.formatFileSize (SI units since Android O): 512 B, 1.2 kB, 34 kB, 5.6 MB."""
    value, unit = float(size), "B"
    for next_unit in ("kB", "MB", "GB"):
        if value < 900:
            break
        value, unit = value / 1000, next_unit
    if unit == "B":
        return f"{size} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def format_date(ctx: Ctx, mtime: int) -> str:
    """DocumentsUI's date column: the time for today, "Oct 15" this year, else a numeric date."""
    now = ctx.now()
    when = dt.datetime.fromtimestamp(mtime, tz=now.tzinfo)
    if when.date() == now.date():
        if ctx.setting("system", "time_12_24", "24") == "12":
            return when.strftime("%I:%M %p").lstrip("0")
        return when.strftime("%H:%M")
    if when.year == now.year:
        return when.strftime("%b %-d")
    return when.strftime("%-m/%-d/%y")


# ---- the browser (FilesActivity) -------------------------------------------------------------------------


def _storage_name(ctx: Ctx) -> str:
    return ctx.setting("global", "device_name", "sdk_gphone64_x86_64")


def _title(ctx: Ctx, path: str) -> str:
    return _storage_name(ctx) if path == ROOT else posixpath.basename(path)


def _current_dir(ctx: Ctx, default: str = ROOT) -> str:
    """The folder on screen; a folder deleted behind the app's back falls back to its nearest parent."""
    path = ctx.extra.get("dir", ctx.args.get("dir", default))  # args: the folder an intent opened
    while path != ROOT and not ctx.phone.fs.is_dir(path):
        path = posixpath.dirname(path)
    return path


def _close(ctx: Ctx) -> None:
    ctx.extra["dialog"] = None
    ctx.clear_focus()


def _open_dir(ctx: Ctx, path: str) -> None:
    ctx.extra.update(dir=path, selected=[], dialog=None)
    ctx.activity.scroll = 0


def _toggle(ctx: Ctx, name: str) -> None:
    selected = list(ctx.extra.get("selected", []))
    if name in selected:
        selected.remove(name)
    else:
        selected.append(name)
    ctx.extra["selected"] = selected


def _size_node(size: int) -> Node:
    return Node(cls=TEXT, text=format_size(size), rid="size", size=14)


def files_screen(ctx: Ctx) -> Screen:
    fs = ctx.phone.fs
    path = _current_dir(ctx)
    listing = entries(fs, path)
    names = [name for name, *_ in listing]
    selected = [n for n in ctx.extra.get("selected", []) if n in names]  # deleted elsewhere: dropped

    rows = []
    for name, is_dir, size, mtime in listing:

        def click(name: str = name, is_dir: bool = is_dir) -> None:
            if selected:
                _toggle(ctx, name)
            elif is_dir:
                _open_dir(ctx, posixpath.join(path, name))
            else:
                ctx.toast("Can't open file")  # no viewer app is installed for documents

        row = item(
            name,
            format_date(ctx, mtime),
            on_click=click,
            on_long_click=lambda name=name: _toggle(ctx, name),
            trailing=None if is_dir else _size_node(size),
            rid="item_root",
            subtitle_rid="date",
        )
        row.selected = name in selected
        rows.append(row)
    if not rows:
        rows.append(text("No items", align="center", rid="message"))

    def up() -> None:
        if selected:
            ctx.extra["selected"] = []
        else:
            _open_dir(ctx, posixpath.dirname(path))

    def menu() -> None:
        ctx.extra["dialog"] = "menu"

    if selected:
        actions = [
            icon_button("Delete", lambda: ctx.extra.update(dialog="delete"), "action_menu_delete", "🗑"),
            icon_button("More options", menu, glyph="⋮"),
        ]
        title = f"{len(selected)} selected"
    else:
        actions = [icon_button("More options", menu, glyph="⋮")]
        title = _title(ctx, path)
    has_up = bool(selected) or path != ROOT
    return Screen(
        title=title,
        rows=rows,
        up=up if has_up else None,
        actions=actions,
        dialog=_dialog(ctx, path, selected),
        on_back=up if has_up else None,
    )


def _dialog(ctx: Ctx, path: str, selected: list[str]) -> Dialog | None:
    kind = ctx.extra.get("dialog")
    close = lambda: _close(ctx)  # noqa: E731
    if kind == "menu":
        return Dialog(rows=_menu_rows(ctx, path, selected), on_cancel=close)
    if kind == "delete" and selected:
        message = f'Delete "{selected[0]}"?' if len(selected) == 1 else f"Delete {len(selected)} items?"
        return Dialog(message=message, buttons=[("Delete", lambda: _delete(ctx, path, selected)), ("Cancel", close)])
    if kind == "rename" and len(selected) == 1:
        field = edit("rename", ctx.field("rename"), "", "android:id/text1", focused=ctx.focused("rename"))
        ok = lambda: _rename(ctx, path, selected[0])  # noqa: E731
        return Dialog(title="Rename", rows=[field], buttons=[("OK", ok), ("Cancel", close)], on_cancel=close)
    if kind == "new_folder":
        focused = ctx.focused("folder_name")
        field = edit("folder_name", ctx.field("folder_name"), "Folder name", "android:id/text1", focused=focused)
        ok = lambda: _new_folder(ctx, path)  # noqa: E731
        return Dialog(title="New folder", rows=[field], buttons=[("OK", ok), ("Cancel", close)], on_cancel=close)
    return None


def _menu_rows(ctx: Ctx, path: str, selected: list[str]) -> list[Node]:
    """The overflow menu: folder actions, or what applies to the selection (action mode)."""

    def select_all() -> None:
        ctx.extra["selected"] = [name for name, *_ in entries(ctx.phone.fs, path)]
        _close(ctx)

    def new_folder() -> None:
        ctx.set_field("folder_name", "")
        ctx.extra["dialog"] = "new_folder"

    def pick(mode: str) -> None:
        _close(ctx)
        ctx.extra["selected"] = []  # the action mode ends when the picker opens
        ctx.start(PICK, mode=mode, src=path, names=list(selected))

    def rename() -> None:
        ctx.set_field("rename", selected[0])
        ctx.extra["dialog"] = "rename"

    def row(title: str, handler, rid: str) -> Node:
        return item(title, on_click=handler, rid=rid)

    if not selected:
        return [row("New folder", new_folder, "option_menu_create_dir"), row("Select all", select_all, "select_all")]
    rows = [
        row("Select all", select_all, "action_menu_select_all"),
        row(f"Copy to{ELLIPSIS}", lambda: pick("copy"), "action_menu_copy_to"),
        row(f"Move to{ELLIPSIS}", lambda: pick("move"), "action_menu_move_to"),
    ]
    if len(selected) == 1:
        rows.append(row("Rename", rename, "action_menu_rename"))
    return rows


def _delete(ctx: Ctx, path: str, selected: list[str]) -> None:
    for name in selected:
        target = posixpath.join(path, name)
        if ctx.phone.fs.exists(target):
            ctx.phone.fs.rmtree(target)
    ctx.extra["selected"] = []
    _close(ctx)
    ctx.toast(f"Deleted {len(selected)} item{'s' if len(selected) > 1 else ''}")


def _rename(ctx: Ctx, path: str, old: str) -> None:
    new = ctx.field("rename").strip()
    fs = ctx.phone.fs
    if new == old:
        _close(ctx)
        return
    if not valid_name(new):
        ctx.toast("Invalid name")
        return
    if fs.exists(posixpath.join(path, new)):
        ctx.toast("A file with this name already exists")
        return
    move_path(fs, posixpath.join(path, old), posixpath.join(path, new))
    ctx.extra["selected"] = []
    _close(ctx)


def _new_folder(ctx: Ctx, path: str) -> None:
    name = ctx.field("folder_name").strip()
    target = posixpath.join(path, name)
    if not valid_name(name):
        ctx.toast("Invalid name")
        return
    if ctx.phone.fs.exists(target):
        ctx.toast("Couldn't create folder")
        return
    ctx.phone.fs.mkdir(target)
    _open_dir(ctx, target)  # DocumentsUI opens the folder it just created
    ctx.clear_focus()


# ---- the destination picker (PickActivity, for "Copy to…" / "Move to…") --------------------------------


def pick_screen(ctx: Ctx) -> Screen:
    fs = ctx.phone.fs
    mode, src, names = ctx.args.get("mode", "copy"), ctx.args.get("src", ROOT), ctx.args.get("names", [])
    path = _current_dir(ctx, default=src)  # the picker opens on the folder the files come from
    moving_into_itself = any(
        path == posixpath.join(src, n) or path.startswith(posixpath.join(src, n) + "/") for n in names
    )

    rows = []
    for name, is_dir, size, mtime in entries(fs, path):
        target = posixpath.join(path, name)
        row = item(
            name,
            format_date(ctx, mtime),
            on_click=(lambda target=target: _pick_open(ctx, target)) if is_dir else None,
            trailing=None if is_dir else _size_node(size),
            rid="item_root",
            subtitle_rid="date",
            enabled=is_dir,  # files are shown greyed out: only a folder can be the destination
        )
        rows.append(row)
    if not rows:
        rows.append(text("No items", align="center", rid="message"))

    def done() -> None:
        failed = 0
        for name in names:
            source, target = posixpath.join(src, name), posixpath.join(path, name)
            if not fs.exists(source) or fs.exists(target):
                failed += 1
                continue
            (move_path if mode == "move" else copy_path)(fs, source, target)
        if failed:
            ctx.toast(f"Couldn't {mode} {failed} item{'s' if failed > 1 else ''}")
        ctx.finish()

    label = {"move": "Move", "open": "Select"}.get(mode, "Copy")
    can_drop = path != src and not moving_into_itself
    bottom = [
        Node(
            cls=BUTTON, text="Cancel", rid="android:id/button2", clickable=True, on_click=ctx.finish, kind="secondary"
        ),
        Node(
            cls=BUTTON,
            text=label,
            rid="android:id/button1",
            clickable=can_drop,
            enabled=can_drop,
            on_click=done if can_drop else None,
            kind="primary",
        ),
    ]
    up = (lambda: _pick_open(ctx, posixpath.dirname(path))) if path != ROOT else None
    return Screen(title=_title(ctx, path), rows=rows, up=up, tabs=bottom, on_back=up)


def _pick_open(ctx: Ctx, path: str) -> None:
    ctx.extra["dir"] = path
    ctx.activity.scroll = 0


# ---- intents (DocumentsUI's filters; its launcher icon is LauncherActivity, which opens FilesActivity) ----

LAUNCHER_ACTIVITY = "com.android.documentsui.LauncherActivity"
_DOC_TYPES = ("vnd.android.document/root", "vnd.android.document/directory")
_OPENABLE = ("android.intent.category.DEFAULT", "android.intent.category.OPENABLE")
_A = "android.intent.action."
INTENT_FILTERS = [
    IntentFilter(LAUNCHER_ACTIVITY, ("android.intent.action.MAIN",), ("android.intent.category.LAUNCHER",)),
    IntentFilter(FILES, ("android.intent.action.VIEW", "android.provider.action.BROWSE"), mime_types=_DOC_TYPES),
    IntentFilter(PICK, (_A + "OPEN_DOCUMENT", _A + "GET_CONTENT"), _OPENABLE, mime_types=("*/*",)),
    IntentFilter(PICK, ("android.intent.action.CREATE_DOCUMENT",), _OPENABLE, mime_types=("*/*",)),
    IntentFilter(PICK, ("android.intent.action.OPEN_DOCUMENT_TREE",)),
]


def document_path(uri: str) -> str:
    """The /sdcard path of a file: URI or an external-storage document URI (`.../document/primary%3ADownload`)."""
    scheme, _, rest = uri.partition(":")
    rest = urllib.parse.unquote(rest)
    if scheme == "file":
        return posixpath.normpath(rest.removeprefix("//")) if rest.startswith(("//", "/")) else ""
    # a tree URI may name a document inside it (`tree/primary:A/document/primary:A/b.md`): the last id counts
    doc = re.search(r"/document/primary:([^?#]*)$", rest) or re.search(r"/tree/primary:([^?#/]*)$", rest)
    return posixpath.join(ROOT, doc.group(1)).rstrip("/") if doc else ""


def on_intent(activity: str, intent: Intent) -> tuple[str, dict[str, object]]:
    if activity == PICK:  # the picker of OPEN_DOCUMENT / GET_CONTENT: nothing to copy or move
        return PICK, {"mode": "open", "names": []}
    path = document_path(intent.data or "")
    return activity, {"dir": path} if path else {}


APP = App(
    package=PACKAGE,
    label="Files",
    activities={FILES: files_screen, PICK: pick_screen},
    intent_filters=INTENT_FILTERS,
    aliases={LAUNCHER_ACTIVITY: FILES},
    on_intent=on_intent,
    icon="☰",
    color="#1a73e8",
    version_name="13-9464187",
    permissions=["android.permission.MANAGE_EXTERNAL_STORAGE"],
)
