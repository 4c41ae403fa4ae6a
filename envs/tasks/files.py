"""Task templates for the Files app (com.google.android.documentsui), after android_world's Files* tasks.

Setups seed real files in shared storage; checkers read them back over the Device API (`ls`, `cat`).
`seed_files` is shared with the Markor tasks, whose notes are files too.
"""

from __future__ import annotations

import posixpath
import random
import shlex

from droidrl.envs.actions import Action, Back, Finish, Launch, Type
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.screen import UiNode, UiView
from droidrl.envs.tasks.state import answer_number, list_dir, read_text

PKG = "com.google.android.documentsui"
STORAGE = "/sdcard"
STORAGE_NAME = "sdk_gphone64_x86_64"  # the storage root's title: Settings > global > device_name
FOLDERS = ["Download", "Documents", "Pictures", "Music", "Movies", "DCIM"]
FILE_NAMES = [
    "receipt_march.pdf",
    "vacation_photo.jpg",
    "meeting_notes.txt",
    "song_demo.mp3",
    "contract_draft.docx",
    "budget_2023.xlsx",
    "resume.pdf",
    "screenshot_0412.png",
    "lecture_recording.m4a",
    "boarding_pass.pdf",
    "family_video.mp4",
    "invoice_1187.pdf",
    "wallpaper.png",
    "recipe_lasagna.txt",
    "podcast_ep12.mp3",
    "tax_return.pdf",
]
NEW_NAMES = ["archive_old.pdf", "final_version.txt", "backup_copy.jpg", "renamed_file.pdf", "important.docx"]
NEW_FOLDERS = ["Receipts", "Projects", "Travel", "Backups", "Invoices", "Screenshots", "Family", "Archive"]
DAY_MINUTES = 24 * 60


# ---- seeding and reading files (shared with the Markor tasks) --------------------------------------------


def seed_files(
    device: Device,
    files: dict[str, str],
    *,
    clear: tuple[str, ...] = (),
    folders: tuple[str, ...] = (),
    ages: dict[str, int] | None = None,
) -> None:
    """Empty the `clear` folders, create `folders`, then write `files` (path -> text).

    Each file's modification time is `ages[path]` minutes before the device clock (0 by default). The
    clock is stepped with `date -s` while the files are touched, as android_world advances the system
    time between notes, and put back afterwards, so mtimes do not depend on the host's clock.
    """
    script = [f"rm -rf {shlex.quote(d)} && mkdir -p {shlex.quote(d)}" for d in clear]
    script += [f"mkdir -p {shlex.quote(d)}" for d in folders]
    if script:
        device.shell("; ".join(script))
    for path, content in files.items():
        device.push(path, content.encode("utf-8"))
    now = int(device.shell("date +%s").strip())
    touches = []
    for path in files:
        when = now - 60 * (ages or {}).get(path, 0)
        touches.append(f"date -s @{when} >/dev/null; touch {shlex.quote(path)}")
    if touches:
        device.shell("; ".join([*touches, f"date -s @{now} >/dev/null"]))


def is_dir(device: Device, path: str) -> bool:
    return device.shell(f"test -d {shlex.quote(path)} && echo yes").strip() == "yes"


def files_intact(device: Device, files: dict[str, str], skip: tuple[str, ...] = ()) -> bool:
    """Every seeded file other than `skip` still exists with its original text."""
    return all(read_text(device, path) == text for path, text in files.items() if path not in skip)


def toolbar_title(view: UiView) -> str:
    """The app bar's title text (the folder an explorer shows)."""
    bar = view.find(rid="toolbar")
    if bar is None:
        return ""
    for node in view.nodes:
        if node.cls.endswith("TextView") and node.text and _inside(node, bar) and node.rid == "":
            return node.text
    return ""


def dialog_nodes(view: UiView) -> list[UiNode]:
    """The visible nodes of an open app dialog ([] when none is open)."""
    card = view.find(rid="android:id/parentPanel")
    return [n for n in view.nodes if n.visible and _inside(n, card)] if card else []


def selected_titles(view: UiView, title_rid: str) -> list[str]:
    """Titles of the list rows shown as selected."""
    rows = [n for n in view.nodes if n.selected and n.visible]
    return [n.text for n in view.find_all(rid=title_rid) if any(_inside(n, row) for row in rows)]


def _inside(node: UiNode, box: UiNode | None) -> bool:
    if box is None:
        return False
    left, top, right, bottom = box.bounds
    x, y = node.center
    return left <= x < right and top <= y < bottom


def _file_text(rng: random.Random, name: str) -> str:
    """Deterministic file contents; sizes vary so the size column differs between files."""
    words = ["alpha", "report", "draft", "summary", "data", "final", "notes", "media", "page", "copy"]
    return f"{name}\n" + " ".join(rng.choice(words) for _ in range(rng.randint(5, 400)))


def _random_files(rng: random.Random, folder: str, names: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    files = {f"{STORAGE}/{folder}/{name}": _file_text(rng, name) for name in names}
    ages = {path: rng.randint(0, 40) * DAY_MINUTES + rng.randint(0, 600) for path in files}
    return files, ages


# ---- shared expert moves ---------------------------------------------------------------------------------


def _title_node(view: UiView, text: str) -> UiNode | None:
    return view.find(text=text, rid="android:id/title")


def _go_to(view: UiView, folder: str) -> Action:
    """From the storage root or any folder, the next move towards top-level `folder`."""
    if toolbar_title(view) == STORAGE_NAME and _title_node(view, folder):
        return view.tap(_title_node(view, folder))
    up = view.find(desc="Navigate up")
    return view.tap(up) if up else Back()


def _select_only(view: UiView, name: str) -> Action | None:
    """Long-press `name` when nothing is selected; None once exactly it is selected."""
    selected = selected_titles(view, "android:id/title")
    if selected == [name]:
        return None
    if selected:
        return view.tap(view.find(desc="Navigate up"))  # clears the selection
    return view.long_press(_title_node(view, name))


def _menu_item(view: UiView, label: str) -> UiNode | None:
    return next((n for n in dialog_nodes(view) if n.text == label), None)


def _fill_dialog_field(view: UiView, value: str, ok: str = "OK") -> Action:
    """In a one-field dialog: tap the field, type `value`, then press `ok`."""
    field = next(n for n in dialog_nodes(view) if n.cls.endswith("EditText"))
    if field.text == value:
        return view.tap(next(n for n in dialog_nodes(view) if n.text == ok and n.clickable))
    if field.focused:
        return Type(value)
    return view.tap(field)


def _start(view: UiView) -> Action | None:
    """Launch Files when it is not in front; None when it is."""
    return Launch("Files") if view.app != PKG else None


# ---- FilesDeleteFile ---------------------------------------------------------------------------------------


def _delete_params(rng: random.Random) -> Params:
    folder = rng.choice(FOLDERS[:5])
    names = rng.sample(FILE_NAMES, rng.randint(3, 6))
    files, ages = _random_files(rng, folder, names)
    other = rng.choice([f for f in FOLDERS[:5] if f != folder])
    extra, extra_ages = _random_files(rng, other, rng.sample(FILE_NAMES, 2))
    return {
        "folder": folder,
        "file_name": names[0],
        "storage": STORAGE_NAME,
        "files": {**files, **extra},
        "ages": {**ages, **extra_ages},
        "clear": [],  # Documents holds the Markor notebook: add files, delete nothing
    }


def _seed(device: Device, params: Params) -> None:
    clear = tuple(f"{STORAGE}/{f}" for f in params["clear"])
    seed_files(device, params["files"], clear=clear, ages=params["ages"])


def _delete_evaluate(device: Device, params: Params, answer: str | None) -> float:
    path = f"{STORAGE}/{params['folder']}/{params['file_name']}"
    gone = params["file_name"] not in list_dir(device, f"{STORAGE}/{params['folder']}")
    return float(gone and files_intact(device, params["files"], skip=(path,)))


def _delete_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    name = params["file_name"]
    if name not in list_dir(device, f"{STORAGE}/{params['folder']}"):
        return Finish()
    if (start := _start(view)) is not None:
        return start
    confirm = _menu_item(view, "Delete")
    if confirm is not None and confirm.clickable:
        return view.tap(confirm)
    if toolbar_title(view) != params["folder"] and not selected_titles(view, "android:id/title"):
        return _go_to(view, params["folder"])
    select = _select_only(view, name)
    return select or view.tap(view.find(desc="Delete"))


# ---- FilesRenameFile ---------------------------------------------------------------------------------------


def _rename_params(rng: random.Random) -> Params:
    params = _delete_params(rng)
    ext = posixpath.splitext(params["file_name"])[1]
    params["new_name"] = posixpath.splitext(rng.choice(NEW_NAMES))[0] + ext
    return params


def _rename_evaluate(device: Device, params: Params, answer: str | None) -> float:
    folder = f"{STORAGE}/{params['folder']}"
    old = f"{folder}/{params['file_name']}"
    names = list_dir(device, folder)
    renamed = (
        params["file_name"] not in names and read_text(device, f"{folder}/{params['new_name']}") == params["files"][old]
    )
    return float(renamed and files_intact(device, params["files"], skip=(old,)))


def _rename_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if params["new_name"] in list_dir(device, f"{STORAGE}/{params['folder']}"):
        return Finish()
    if (start := _start(view)) is not None:
        return start
    if view.has(text="Rename", rid="android:id/alertTitle"):
        return _fill_dialog_field(view, params["new_name"])
    if (rename := _menu_item(view, "Rename")) is not None:
        return view.tap(rename)
    if toolbar_title(view) != params["folder"] and not selected_titles(view, "android:id/title"):
        return _go_to(view, params["folder"])
    select = _select_only(view, params["file_name"])
    return select or view.tap(view.find(desc="More options"))


# ---- FilesMoveFile -----------------------------------------------------------------------------------------


def _move_params(rng: random.Random) -> Params:
    params = _delete_params(rng)
    params["destination"] = rng.choice([f for f in FOLDERS[:5] if f != params["folder"]])
    return params


def _moved(device: Device, params: Params, destination: str) -> bool:
    source = f"{STORAGE}/{params['folder']}/{params['file_name']}"
    arrived = read_text(device, f"{destination}/{params['file_name']}") == params["files"][source]
    return arrived and params["file_name"] not in list_dir(device, f"{STORAGE}/{params['folder']}")


def _move_evaluate(device: Device, params: Params, answer: str | None) -> float:
    source = f"{STORAGE}/{params['folder']}/{params['file_name']}"
    done = _moved(device, params, f"{STORAGE}/{params['destination']}")
    return float(done and files_intact(device, params["files"], skip=(source,)))


def _picker_step(view: UiView, path: list[str]) -> Action:
    """In the Move-to picker: walk from the storage root down `path` (top-level folder first), then Move."""
    title = toolbar_title(view)
    if title == path[-1]:
        return view.tap(view.find(text="Move", rid="android:id/button1"))
    step = path[0] if title == STORAGE_NAME else path[path.index(title) + 1] if title in path else None
    node = _title_node(view, step) if step else None
    return view.tap(node) if node is not None else view.tap(view.find(desc="Navigate up"))


def _move_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if _moved(device, params, f"{STORAGE}/{params['destination']}"):
        return Finish()
    if (start := _start(view)) is not None:
        return start
    if view.has(text="Move", rid="android:id/button1") and not dialog_nodes(view):
        return _picker_step(view, [params["destination"]])
    if (move := _menu_item(view, "Move to\u2026")) is not None:
        return view.tap(move)
    if toolbar_title(view) != params["folder"] and not selected_titles(view, "android:id/title"):
        return _go_to(view, params["folder"])
    select = _select_only(view, params["file_name"])
    return select or view.tap(view.find(desc="More options"))


# ---- FilesCreateFolder -------------------------------------------------------------------------------------


def _folder_params(rng: random.Random) -> Params:
    params = _delete_params(rng)
    params["new_folder"] = rng.choice(NEW_FOLDERS)
    return params


def _folder_evaluate(device: Device, params: Params, answer: str | None) -> float:
    made = is_dir(device, f"{STORAGE}/{params['folder']}/{params['new_folder']}")
    return float(made and files_intact(device, params["files"]))


def _folder_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if is_dir(device, f"{STORAGE}/{params['folder']}/{params['new_folder']}"):
        return Finish()
    if (start := _start(view)) is not None:
        return start
    if view.has(text="New folder", rid="android:id/alertTitle"):
        return _fill_dialog_field(view, params["new_folder"])
    if (new := _menu_item(view, "New folder")) is not None:
        return view.tap(new)
    if toolbar_title(view) != params["folder"]:
        return _go_to(view, params["folder"])
    return view.tap(view.find(desc="More options"))


# ---- FilesMoveFileToNewFolder (hard) -----------------------------------------------------------------------


def _new_folder_move_evaluate(device: Device, params: Params, answer: str | None) -> float:
    source = f"{STORAGE}/{params['folder']}/{params['file_name']}"
    target = f"{STORAGE}/{params['destination']}/{params['new_folder']}"
    return float(_moved(device, params, target) and files_intact(device, params["files"], skip=(source,)))


def _new_folder_move_params(rng: random.Random) -> Params:
    params = _move_params(rng)
    params["new_folder"] = rng.choice(NEW_FOLDERS)
    return params


def _new_folder_move_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    target = f"{STORAGE}/{params['destination']}/{params['new_folder']}"
    if _moved(device, params, target):
        return Finish()
    if (start := _start(view)) is not None:
        return start
    if not is_dir(device, target):
        if view.has(text="New folder", rid="android:id/alertTitle"):
            return _fill_dialog_field(view, params["new_folder"])
        if (new := _menu_item(view, "New folder")) is not None:
            return view.tap(new)
        if toolbar_title(view) != params["destination"]:
            return _go_to(view, params["destination"])
        return view.tap(view.find(desc="More options"))
    if view.has(text="Move", rid="android:id/button1") and not dialog_nodes(view):
        return _picker_step(view, [params["destination"], params["new_folder"]])
    if (move := _menu_item(view, "Move to\u2026")) is not None:
        return view.tap(move)
    if toolbar_title(view) != params["folder"] and not selected_titles(view, "android:id/title"):
        return _go_to(view, params["folder"])
    select = _select_only(view, params["file_name"])
    return select or view.tap(view.find(desc="More options"))


# ---- FilesCountFiles (query) -------------------------------------------------------------------------------


def _count_params(rng: random.Random) -> Params:
    folder = rng.choice(["Download", "Music", "Pictures", "Movies"])
    files, ages = _random_files(rng, folder, rng.sample(FILE_NAMES, rng.randint(2, 8)))
    other = rng.choice([f for f in ["Download", "Music", "Pictures", "Movies"] if f != folder])
    extra, extra_ages = _random_files(rng, other, rng.sample(FILE_NAMES, rng.randint(1, 4)))
    subfolders = rng.sample(NEW_FOLDERS, rng.randint(0, 2))  # folders are not files
    return {
        "folder": folder,
        "storage": STORAGE_NAME,
        "count": len(files),
        "files": {**files, **extra},
        "ages": {**ages, **extra_ages},
        "clear": [folder, other],
        "subfolders": [f"{STORAGE}/{folder}/{name}" for name in subfolders],
    }


def _count_setup(device: Device, params: Params) -> None:
    clear = tuple(f"{STORAGE}/{f}" for f in params["clear"])
    seed_files(device, params["files"], clear=clear, folders=tuple(params["subfolders"]), ages=params["ages"])


def _count_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_number(answer) == params["count"])


def _count_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if (start := _start(view)) is not None:
        return start
    if toolbar_title(view) == params["folder"]:
        sizes = view.find_all(rid="size")  # only files show a size
        return Finish(str(len(sizes)))
    return _go_to(view, params["folder"])


WHERE = "in the {folder} folder within the {storage} storage area"
TEMPLATES = [
    TaskTemplate(
        name="FilesDeleteFile",
        apps=(PKG,),
        goal="Delete the file {file_name} from the Android filesystem located " + WHERE + ".",
        difficulty="medium",
        kind="operation",
        params=_delete_params,
        setup=_seed,
        evaluate=_delete_evaluate,
        expert=_delete_expert,
    ),
    TaskTemplate(
        name="FilesRenameFile",
        apps=(PKG,),
        goal="Using the Files app, rename the file {file_name} " + WHERE + " to {new_name}.",
        difficulty="medium",
        kind="operation",
        params=_rename_params,
        setup=_seed,
        evaluate=_rename_evaluate,
        expert=_rename_expert,
    ),
    TaskTemplate(
        name="FilesMoveFile",
        apps=(PKG,),
        goal=(
            "Move the file {file_name} from {folder} within the {storage} storage area to the {destination}"
            " folder within the same {storage} storage area in the Android filesystem."
        ),
        difficulty="medium",
        kind="operation",
        params=_move_params,
        setup=_seed,
        evaluate=_move_evaluate,
        expert=_move_expert,
    ),
    TaskTemplate(
        name="FilesCreateFolder",
        apps=(PKG,),
        goal="Using the Files app, create a new folder named {new_folder} " + WHERE + ".",
        difficulty="medium",
        kind="operation",
        params=_folder_params,
        setup=_seed,
        evaluate=_folder_evaluate,
        expert=_folder_expert,
    ),
    TaskTemplate(
        name="FilesMoveFileToNewFolder",
        apps=(PKG,),
        goal=(
            "Using the Files app, create a folder named {new_folder} inside the {destination} folder of the"
            " {storage} storage area, then move the file {file_name} from {folder} into it."
        ),
        difficulty="hard",
        kind="operation",
        params=_new_folder_move_params,
        setup=_seed,
        evaluate=_new_folder_move_evaluate,
        expert=_new_folder_move_expert,
    ),
    TaskTemplate(
        name="FilesCountFiles",
        apps=(PKG,),
        goal="How many files are " + WHERE + "? Do not count folders. Answer with a number.",
        difficulty="easy",
        kind="query",
        params=_count_params,
        setup=_count_setup,
        evaluate=_count_evaluate,
        expert=_count_expert,
    ),
]
