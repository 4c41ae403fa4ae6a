"""Markor (net.gsantner.markor): a markdown notebook whose notes are plain files in shared storage.

The notebook is /sdcard/Documents/Markor (android_world's MARKOR_DATA, /storage/emulated/0/Documents/Markor),
so a checker reads notes with `adb shell cat` / `adb pull` exactly as on a phone.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from typing import TYPE_CHECKING

from droidrl.envs.sim.app import App, Ctx, IntentFilter
from droidrl.envs.sim.apps.files import document_path, entries, format_size, move_path, valid_name
from droidrl.envs.sim.ui import EDIT, LINEAR, RADIO, Dialog, Node, Screen, edit, icon_button, item, text

if TYPE_CHECKING:
    from droidrl.envs.sim.intents import Intent
    from droidrl.envs.sim.phone import Phone

PACKAGE = "net.gsantner.markor"
MAIN = ".activity.MainActivity"
EDITOR = ".activity.DocumentActivity"
NOTEBOOK = "/sdcard/Documents/Markor"
STORAGE = "/sdcard"  # the move dialog may climb this far
EDITOR_RID = "document__fragment__edit__highlighting_editor"
# New-file dialog types: (label, extension).
FILE_TYPES = [("Markdown", ".md"), ("Plain text", ".txt")]
KNOWN_EXTENSIONS = (".md", ".txt", ".markdown", ".text")


def install(phone: Phone) -> None:
    """Markor creates its notebook folder on first start; the notes in it belong to the user and survive."""
    phone.fs.makedirs(NOTEBOOK)


# ---- notebook browser (MainActivity) ---------------------------------------------------------------------


def _current_dir(ctx: Ctx) -> str:
    path = ctx.extra.get("dir", NOTEBOOK)
    while path != NOTEBOOK and not ctx.phone.fs.is_dir(path):
        path = posixpath.dirname(path)
    return path


def _describe(ctx: Ctx, is_dir: bool, size: int, mtime: int) -> str:
    when = dt.datetime.fromtimestamp(mtime, tz=ctx.now().tzinfo).strftime("%d.%m.%y %H:%M")
    return when if is_dir else f"{when}  {format_size(size)}"


def _close(ctx: Ctx) -> None:
    ctx.extra["dialog"] = None
    ctx.clear_focus()


def _open_dir(ctx: Ctx, path: str) -> None:
    ctx.extra.update(dir=path, selected=[])
    ctx.activity.scroll = 0


def _toggle(ctx: Ctx, name: str) -> None:
    selected = list(ctx.extra.get("selected", []))
    if name in selected:
        selected.remove(name)
    else:
        selected.append(name)
    ctx.extra["selected"] = selected


def main_screen(ctx: Ctx) -> Screen:
    path = _current_dir(ctx)
    listing = entries(ctx.phone.fs, path)
    names = [name for name, *_ in listing]
    selected = [n for n in ctx.extra.get("selected", []) if n in names]  # deleted elsewhere: dropped

    rows = []
    for name, is_dir, size, mtime in listing:

        def click(name: str = name, is_dir: bool = is_dir) -> None:
            target = posixpath.join(path, name)
            if selected:
                _toggle(ctx, name)
            elif is_dir:
                _open_dir(ctx, target)
            else:
                ctx.start(EDITOR, path=target)

        row = item(
            name,
            _describe(ctx, is_dir, size, mtime),
            on_click=click,
            on_long_click=lambda name=name: _toggle(ctx, name),
            rid="ui__filesystem_item__root",
            title_rid="ui__filesystem_item__title",
            subtitle_rid="ui__filesystem_item__description",
        )
        row.selected = name in selected
        rows.append(row)
    if not rows:
        rows.append(text("No files", align="center", rid="ui__filesystem_dialog__emptyHint"))

    def back() -> None:
        if selected:
            ctx.extra["selected"] = []
        else:
            _open_dir(ctx, posixpath.dirname(path))

    def open_dialog(kind: str) -> None:
        ctx.extra["dialog"] = kind
        if kind == "new":
            ctx.set_field("new_name", "")
            ctx.set_field("new_ext", FILE_TYPES[0][1])
        elif kind == "rename":
            ctx.set_field("rename", selected[0])
        elif kind == "move":
            ctx.extra["move_dir"] = path

    actions = []
    fab = None
    if selected:
        actions.append(icon_button("Delete", lambda: open_dialog("delete"), "action_delete_selected_items", "🗑"))
        actions.append(icon_button("Move", lambda: open_dialog("move"), "action_move_selected_items", "→"))
        if len(selected) == 1:
            actions.append(icon_button("Rename", lambda: open_dialog("rename"), "action_rename_selected_item", "✎"))
        title = f"{len(selected)} selected"
    else:
        fab = icon_button("Create a new file or folder", lambda: open_dialog("new"), "fab_add_new_item", "+")
        title = "Markor" if path == NOTEBOOK else posixpath.basename(path)
    has_up = bool(selected) or path != NOTEBOOK
    return Screen(
        title=title,
        rows=rows,
        up=back if has_up else None,
        actions=actions,
        fab=fab,
        dialog=_dialog(ctx, path, selected),
        on_back=back if has_up else None,
    )


def _dialog(ctx: Ctx, path: str, selected: list[str]) -> Dialog | None:
    kind = ctx.extra.get("dialog")
    close = lambda: _close(ctx)  # noqa: E731
    if kind == "new":
        return _new_file_dialog(ctx, path)
    if kind == "delete" and selected:
        what = f'"{selected[0]}"' if len(selected) == 1 else f"{len(selected)} items"
        return Dialog(
            title="Delete",
            message=f"Do you really want to delete {what}?",
            buttons=[("OK", lambda: _delete(ctx, path, selected)), ("Cancel", close)],
            on_cancel=close,
        )
    if kind == "rename" and len(selected) == 1:
        field = edit("rename", ctx.field("rename"), "Name", "new_name", focused=ctx.focused("rename"))
        ok = lambda: _rename(ctx, path, selected[0])  # noqa: E731
        return Dialog(title="Rename", rows=[field], buttons=[("OK", ok), ("Cancel", close)], on_cancel=close)
    if kind == "move" and selected:
        return _move_dialog(ctx, path, selected)
    return None


def _new_file_dialog(ctx: Ctx, path: str) -> Dialog:
    """Markor's NewFileDialog: name, extension and type; OK makes a file, Folder makes a folder."""
    name = edit("new_name", ctx.field("new_name"), "Name", "new_file_dialog__name", focused=ctx.focused("new_name"))
    ext = edit("new_ext", ctx.field("new_ext"), "Extension", "new_file_dialog__ext", focused=ctx.focused("new_ext"))
    rows = [name, ext]
    for label, extension in FILE_TYPES:
        chosen = ctx.field("new_ext") == extension
        radio = Node(cls=RADIO, checkable=True, checked=chosen, rid="new_file_dialog__type_radio")
        row = item(label, on_click=lambda e=extension: ctx.set_field("new_ext", e), trailing=radio)
        row.checkable, row.checked = True, chosen
        rows.append(row)

    def create_file() -> None:
        typed, extension = ctx.field("new_name").strip(), ctx.field("new_ext").strip()
        if extension and not extension.startswith("."):
            extension = "." + extension
        has_ext = typed.lower().endswith(KNOWN_EXTENSIONS) or (extension and typed.endswith(extension))
        filename = typed if has_ext else typed + extension
        if not valid_name(typed) or not valid_name(filename):
            ctx.toast("Please enter a valid name")
            return
        target = posixpath.join(path, filename)
        if ctx.phone.fs.is_dir(target):
            ctx.toast("A folder with this name already exists")
            return
        if not ctx.phone.fs.exists(target):
            ctx.phone.fs.write(target, b"")
        _close(ctx)
        ctx.start(EDITOR, path=target)

    def create_folder() -> None:
        typed = ctx.field("new_name").strip()
        target = posixpath.join(path, typed)
        if not valid_name(typed):
            ctx.toast("Please enter a valid name")
            return
        if ctx.phone.fs.exists(target):
            ctx.toast("A file or folder with this name already exists")
            return
        ctx.phone.fs.mkdir(target)
        _close(ctx)

    return Dialog(
        title="Create a new file or folder",
        rows=rows,
        buttons=[("OK", create_file), ("Cancel", lambda: _close(ctx)), ("Folder", create_folder)],
        on_cancel=lambda: _close(ctx),
    )


def _move_dialog(ctx: Ctx, path: str, selected: list[str]) -> Dialog:
    """Markor's folder chooser: ".." climbs, a folder opens, OK moves the selection into the shown folder."""
    fs = ctx.phone.fs
    target_dir = ctx.extra.get("move_dir", path)
    if not fs.is_dir(target_dir):
        target_dir = NOTEBOOK
    rows = []
    if target_dir != STORAGE:
        rows.append(item("..", on_click=lambda: ctx.extra.update(move_dir=posixpath.dirname(target_dir))))
    for name, is_dir, _, _ in entries(fs, target_dir):
        inside = posixpath.join(target_dir, name)
        if is_dir and not (target_dir == path and name in selected):
            rows.append(
                item(
                    name,
                    on_click=lambda inside=inside: ctx.extra.update(move_dir=inside),
                    rid="ui__filesystem_item__root",
                    title_rid="ui__filesystem_item__title",
                )
            )

    def move() -> None:
        failed = 0
        for name in selected:
            source, target = posixpath.join(path, name), posixpath.join(target_dir, name)
            if target_dir == path or fs.exists(target) or target.startswith(source + "/"):
                failed += 1
                continue
            move_path(fs, source, target)
        if failed:
            ctx.toast("Could not move all files")
        ctx.extra["selected"] = []
        _close(ctx)

    title = "Move to " + (posixpath.basename(target_dir) or "/")
    return Dialog(
        title=title, rows=rows, buttons=[("OK", move), ("Cancel", lambda: _close(ctx))], on_cancel=lambda: _close(ctx)
    )


def _delete(ctx: Ctx, path: str, selected: list[str]) -> None:
    for name in selected:
        target = posixpath.join(path, name)
        if ctx.phone.fs.exists(target):
            ctx.phone.fs.rmtree(target)
    ctx.extra["selected"] = []
    _close(ctx)


def _rename(ctx: Ctx, path: str, old: str) -> None:
    new = ctx.field("rename").strip()
    if new == old:
        _close(ctx)
        return
    if not valid_name(new) or ctx.phone.fs.exists(posixpath.join(path, new)):
        ctx.toast("Could not rename file")
        return
    move_path(ctx.phone.fs, posixpath.join(path, old), posixpath.join(path, new))
    ctx.extra["selected"] = []
    _close(ctx)


# ---- editor (DocumentActivity) ---------------------------------------------------------------------------


def _editor_box(value: str, focused: bool) -> Node:
    """A multi-line EditText that grows with its text (the editor scrolls as a whole)."""
    lines = sum(max(1, -(-len(line) // 38)) for line in value.split("\n"))
    box = Node(
        cls=EDIT,
        kind="edit",
        text=value,
        rid=EDITOR_RID,
        field="text",
        clickable=True,
        focusable=True,
        long_clickable=True,
        focused=focused,
        size=17,
    )
    return Node(cls=LINEAR, kind="edit_row", height=max(320, 26 * lines + 24), children=[box])


def editor_screen(ctx: Ctx) -> Screen:
    path = ctx.args.get("path", "")
    fs = ctx.phone.fs
    if "loaded" not in ctx.extra:
        # Runs once, like onCreate: the phone types into activity.fields, so the text must be there.
        content = fs.read(path).decode("utf-8", errors="replace") if fs.is_file(path) else ""
        ctx.extra["loaded"] = content
        ctx.set_field("text", content)

    def save() -> None:
        content = ctx.field("text")
        on_disk = fs.read(path).decode("utf-8", errors="replace") if fs.is_file(path) else None
        if content != on_disk and fs.is_dir(posixpath.dirname(path)):
            fs.write(path, content.encode("utf-8"))
        ctx.extra["loaded"] = content

    def save_and_close() -> None:
        save()  # Markor saves automatically when the document is left
        ctx.finish()

    def newline() -> None:
        ctx.set_field("text", ctx.field("text") + "\n")  # ENTER in the editor starts a new line

    actions = [icon_button("Save", save, "action_save", "✓")]
    rows = [_editor_box(ctx.field("text"), ctx.focused("text"))]
    return Screen(
        title=posixpath.basename(path),
        rows=rows,
        up=save_and_close,
        actions=actions,
        on_enter=newline,
        on_back=save_and_close,
    )


# ---- intents (the manifest's filters for text documents) --------------------------------------------------

_TEXT_TYPES = ("text/*", "text/plain", "text/plain+md", "text/markdown", "text/x-markdown")
_OPEN = ("android.intent.action.VIEW", "android.intent.action.EDIT")
INTENT_FILTERS = [
    IntentFilter(EDITOR, ("android.intent.action.SEND",), mime_types=("text/plain", "text/*")),
    IntentFilter(EDITOR, _OPEN, mime_types=(*_TEXT_TYPES, "text/htm", "text/html")),
    IntentFilter(
        EDITOR, _OPEN, schemes=("content", "file"), hosts=("*",), mime_types=(*_TEXT_TYPES, "application/octet-stream")
    ),
]


def on_intent(activity: str, intent: Intent) -> tuple[str, dict[str, object]]:
    """DocumentActivity opens the file a file: or external-storage document URI names."""
    return activity, {"path": document_path(intent.data or "")} if intent.data else {}


APP = App(
    package=PACKAGE,
    label="Markor",
    activities={MAIN: main_screen, EDITOR: editor_screen},
    intent_filters=INTENT_FILTERS,
    on_intent=on_intent,
    icon="✎",
    color="#37474f",
    version_name="2.11.1",
    install=install,
    permissions=["android.permission.WRITE_EXTERNAL_STORAGE"],
)
