"""Task templates for Markor (net.gsantner.markor), after android_world's Markor* tasks.

Notes are files in the notebook folder; setups seed them with `seed_files` and checkers read them back
with `ls` / `cat`, checking the exact name and text and that every other note survived.
"""

from __future__ import annotations

import random

from droidrl.envs.actions import Action, Back, Finish, Launch, Type
from droidrl.envs.device import Device
from droidrl.envs.tasks.base import Params, TaskTemplate
from droidrl.envs.tasks.files import dialog_nodes, files_intact, is_dir, seed_files, selected_titles, toolbar_title
from droidrl.envs.tasks.screen import UiNode, UiView
from droidrl.envs.tasks.state import answer_matches, answer_number, list_dir, read_text

PKG = "net.gsantner.markor"
NOTEBOOK = "/sdcard/Documents/Markor"
EDITOR = "document__fragment__edit__highlighting_editor"
ITEM_TITLE = "ui__filesystem_item__title"
NAME_FIELD = "new_file_dialog__name"
FAB = "Create a new file or folder"

NOTE_TITLES = [
    "grocery_list",
    "meeting_notes",
    "trip_plan",
    "book_summary",
    "workout_log",
    "recipe_ideas",
    "project_todo",
    "budget_2023",
    "daily_journal",
    "gift_ideas",
    "reading_list",
    "study_guide",
    "code_snippets",
    "travel_checklist",
    "movie_watchlist",
    "garden_plan",
]
SENTENCES = [
    "Buy milk, eggs and fresh bread on the way home.",
    "Call the dentist on Monday to move the appointment.",
    "The quarterly report is due at the end of the month.",
    "Remember to water the plants twice a week.",
    "Finish reading chapter five before the book club.",
    "Pack the charger, passport and travel adapter.",
    "Run five kilometers on Tuesday and Thursday.",
    "Ask Maria about the budget for the new project.",
    "Try the lemon pasta recipe this weekend.",
    "Renew the library card before it expires.",
    "Back up the laptop to the external drive.",
    "Send the invitation list to the caterer.",
]
FOLDERS = [
    "BookNotes",
    "CodeSnippets",
    "DailyNotes",
    "FitnessPlans",
    "MeetingMinutes",
    "PersonalJournal",
    "RecipeCollections",
    "StudyGuides",
    "TravelItineraries",
    "WorkProjects",
]
HEADINGS = ["Summary", "Important", "To do", "Ideas", "Action items", "Draft"]


def _note_names(rng: random.Random, count: int) -> list[str]:
    return [f"{title}{rng.choice(['.md', '.txt'])}" for title in rng.sample(NOTE_TITLES, count)]


def _notes(rng: random.Random, count: int, folder: str = NOTEBOOK) -> dict[str, str]:
    return {f"{folder}/{name}": rng.choice(SENTENCES) for name in _note_names(rng, count)}


def _seed(device: Device, params: Params) -> None:
    folders = tuple(f"{NOTEBOOK}/{f}" for f in params.get("folders", []))
    seed_files(device, params["files"], clear=(NOTEBOOK,), folders=folders, ages=params.get("ages"))


# ---- shared expert moves ---------------------------------------------------------------------------------


def _title(view: UiView, name: str) -> UiNode | None:
    return view.find(text=name, rid=ITEM_TITLE)


def _button(view: UiView, label: str) -> UiNode | None:
    return next((n for n in dialog_nodes(view) if n.text == label and n.clickable), None)


def _start(view: UiView) -> Action | None:
    return Launch("Markor") if view.app != PKG else None


def _enter_text(view: UiView, node: UiNode, value: str) -> Action | None:
    """Tap the field, then type `value` into it; None once it holds `value`."""
    if node.text == value:
        return None
    return Type(value) if node.focused else view.tap(node)


def _edit_note(view: UiView, name: str, content: str) -> Action:
    """In the editor of `name`: replace the text with `content`, then save; else open `name` from the list."""
    editor = view.find(rid=EDITOR)
    if editor is not None and toolbar_title(view) == name:
        return _enter_text(view, editor, content) or view.tap(view.find(desc="Save"))
    if editor is None and _title(view, name) is not None:
        return view.tap(_title(view, name))
    return Back()


def _create_in_dialog(view: UiView, name: str, button: str) -> Action | None:
    """Fill the new-file dialog's name and press `button` (OK makes a file, Folder a folder)."""
    field = view.find(rid=NAME_FIELD)
    if field is None:
        return None
    return _enter_text(view, field, name) or view.tap(_button(view, button))


def _delete(view: UiView, names: list[str]) -> Action:
    """Select exactly `names` (long-press, then taps), press Delete and confirm."""
    if view.has(rid="android:id/message"):
        return view.tap(_button(view, "OK"))
    selected = selected_titles(view, ITEM_TITLE)
    if sorted(selected) == sorted(names):
        return view.tap(view.find(desc="Delete"))
    if any(name not in names for name in selected):
        return Back()  # clears a wrong selection
    todo = next(name for name in names if name not in selected)
    node = _title(view, todo)
    return view.long_press(node) if not selected else view.tap(node)


# ---- MarkorCreateNote --------------------------------------------------------------------------------------


def _create_params(rng: random.Random) -> Params:
    files = _notes(rng, rng.randint(1, 4))
    taken = {path.rsplit("/", 1)[1].rsplit(".", 1)[0] for path in files}
    title = rng.choice([t for t in NOTE_TITLES if t not in taken])
    return {"file_name": f"{title}{rng.choice(['.md', '.txt'])}", "text": rng.choice(SENTENCES), "files": files}


def _create_evaluate(device: Device, params: Params, answer: str | None) -> float:
    content = read_text(device, f"{NOTEBOOK}/{params['file_name']}")
    ok = content is not None and content.replace("\r", "").strip() == params["text"]
    return float(ok and files_intact(device, params["files"]))


def _create_expert(device: Device, params: Params) -> Action:
    if read_text(device, f"{NOTEBOOK}/{params['file_name']}") == params["text"]:
        return Finish()
    view = UiView.of(device)
    if (start := _start(view)) is not None:
        return start
    if (step := _create_in_dialog(view, params["file_name"], "OK")) is not None:
        return step
    if view.has(rid=EDITOR):
        return _edit_note(view, params["file_name"], params["text"])
    return view.tap(view.find(desc=FAB))


# ---- MarkorCreateNoteInFolder (hard) -----------------------------------------------------------------------


def _in_folder_params(rng: random.Random) -> Params:
    params = _create_params(rng)
    params["folder"] = rng.choice(FOLDERS)
    return params


def _in_folder_evaluate(device: Device, params: Params, answer: str | None) -> float:
    content = read_text(device, f"{NOTEBOOK}/{params['folder']}/{params['file_name']}")
    ok = content is not None and content.replace("\r", "").strip() == params["text"]
    return float(ok and files_intact(device, params["files"]))


def _in_folder_expert(device: Device, params: Params) -> Action:
    folder, name = params["folder"], params["file_name"]
    if read_text(device, f"{NOTEBOOK}/{folder}/{name}") == params["text"]:
        return Finish()
    view = UiView.of(device)
    if (start := _start(view)) is not None:
        return start
    made = is_dir(device, f"{NOTEBOOK}/{folder}")
    if (step := _create_in_dialog(view, name if made else folder, "OK" if made else "Folder")) is not None:
        return step
    if view.has(rid=EDITOR):
        return _edit_note(view, name, params["text"])
    title = toolbar_title(view)
    if title == (folder if made else "Markor"):
        return view.tap(view.find(desc=FAB))
    if made and _title(view, folder) is not None:
        return view.tap(_title(view, folder))
    return Back()


# ---- MarkorCreateFolder ------------------------------------------------------------------------------------


def _folder_params(rng: random.Random) -> Params:
    return {"folder": rng.choice(FOLDERS), "files": _notes(rng, rng.randint(1, 4))}


def _folder_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(is_dir(device, f"{NOTEBOOK}/{params['folder']}") and files_intact(device, params["files"]))


def _folder_expert(device: Device, params: Params) -> Action:
    if is_dir(device, f"{NOTEBOOK}/{params['folder']}"):
        return Finish()
    view = UiView.of(device)
    if (start := _start(view)) is not None:
        return start
    if (step := _create_in_dialog(view, params["folder"], "Folder")) is not None:
        return step
    fab = view.find(desc=FAB)
    return view.tap(fab) if fab is not None else Back()


# ---- MarkorDeleteNote / MarkorDeleteNewestNote / MarkorDeleteAllNotes ------------------------------------------


def _delete_params(rng: random.Random) -> Params:
    files = _notes(rng, rng.randint(2, 6))
    return {"file_name": rng.choice(sorted(files)).rsplit("/", 1)[1], "files": files}


def _newest_params(rng: random.Random) -> Params:
    files = _notes(rng, rng.randint(2, 6))
    # Distinct ages at least 5 minutes apart, so the list's minute-resolution dates tell them apart.
    ages = dict(zip(files, (5 * m for m in rng.sample(range(1, 200), len(files))), strict=True))
    newest = min(ages, key=ages.get)
    return {"file_name": newest.rsplit("/", 1)[1], "files": files, "ages": ages}


def _deleted(device: Device, params: Params) -> bool:
    return params["file_name"] not in list_dir(device, NOTEBOOK)


def _delete_evaluate(device: Device, params: Params, answer: str | None) -> float:
    others_ok = files_intact(device, params["files"], skip=(f"{NOTEBOOK}/{params['file_name']}",))
    return float(_deleted(device, params) and others_ok)


def _delete_expert(device: Device, params: Params) -> Action:
    if _deleted(device, params):
        return Finish()
    view = UiView.of(device)
    return _start(view) or _delete(view, [params["file_name"]])


def _all_params(rng: random.Random) -> Params:
    return {"files": _notes(rng, rng.randint(2, 6))}


def _all_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(list_dir(device, NOTEBOOK) == [] and is_dir(device, NOTEBOOK))


def _all_expert(device: Device, params: Params) -> Action:
    remaining = list_dir(device, NOTEBOOK)
    if not remaining:
        return Finish()
    view = UiView.of(device)
    return _start(view) or _delete(view, remaining)


# ---- MarkorEditNote / MarkorAddNoteHeader ------------------------------------------------------------------


def _edit_params(rng: random.Random) -> Params:
    files = _notes(rng, rng.randint(2, 5))
    path = rng.choice(sorted(files))
    edit_type = rng.choice(["footer", "replace"])
    addition = rng.choice([s for s in SENTENCES if s != files[path]])
    expected = f"{files[path]}\n{addition}" if edit_type == "footer" else addition
    how = "Add to the bottom of the note" if edit_type == "footer" else "Replace the text with"
    return {"file_name": path.rsplit("/", 1)[1], "files": files, "how": how, "text": addition, "expected": expected}


def _header_params(rng: random.Random) -> Params:
    files = _notes(rng, rng.randint(2, 5))
    path = rng.choice(sorted(files))
    heading = rng.choice(HEADINGS)
    return {
        "file_name": path.rsplit("/", 1)[1],
        "files": files,
        "heading": heading,
        "expected": f"# {heading}\n{files[path]}",
    }


def _edit_evaluate(device: Device, params: Params, answer: str | None) -> float:
    path = f"{NOTEBOOK}/{params['file_name']}"
    content = read_text(device, path)
    ok = content is not None and content.replace("\r", "").strip() == params["expected"]
    return float(ok and files_intact(device, params["files"], skip=(path,)))


def _edit_expert(device: Device, params: Params) -> Action:
    if read_text(device, f"{NOTEBOOK}/{params['file_name']}") == params["expected"]:
        return Finish()
    view = UiView.of(device)
    return _start(view) or _edit_note(view, params["file_name"], params["expected"])


# ---- MarkorMoveNote ----------------------------------------------------------------------------------------


def _move_params(rng: random.Random) -> Params:
    folders = rng.sample(FOLDERS, rng.randint(2, 5))
    source, destination = folders[0], folders[1]
    files = _notes(rng, rng.randint(1, 3), f"{NOTEBOOK}/{source}")
    files.update(_notes(rng, rng.randint(0, 2), f"{NOTEBOOK}/{destination}"))
    name = rng.choice(sorted(p for p in files if f"/{source}/" in p)).rsplit("/", 1)[1]
    if f"{NOTEBOOK}/{destination}/{name}" in files:  # a same-named note in the destination would block the move
        del files[f"{NOTEBOOK}/{destination}/{name}"]
    return {"file_name": name, "source": source, "destination": destination, "folders": folders, "files": files}


def _move_evaluate(device: Device, params: Params, answer: str | None) -> float:
    source = f"{NOTEBOOK}/{params['source']}/{params['file_name']}"
    arrived = read_text(device, f"{NOTEBOOK}/{params['destination']}/{params['file_name']}") == params["files"][source]
    left = params["file_name"] not in list_dir(device, f"{NOTEBOOK}/{params['source']}")
    return float(arrived and left and files_intact(device, params["files"], skip=(source,)))


def _move_expert(device: Device, params: Params) -> Action:
    name, source, destination = params["file_name"], params["source"], params["destination"]
    if name in list_dir(device, f"{NOTEBOOK}/{destination}"):
        return Finish()
    view = UiView.of(device)
    if (start := _start(view)) is not None:
        return start
    title = view.find(rid="android:id/alertTitle")
    if title is not None and title.text.startswith("Move to "):
        if title.text == f"Move to {destination}":
            return view.tap(_button(view, "OK"))
        row = next((n for n in dialog_nodes(view) if n.text == destination), None)
        return view.tap(row or next(n for n in dialog_nodes(view) if n.text == ".."))
    if selected_titles(view, ITEM_TITLE) == [name]:
        return view.tap(view.find(desc="Move"))
    if toolbar_title(view) == source and _title(view, name) is not None:
        return view.long_press(_title(view, name))
    if _title(view, source) is not None:
        return view.tap(_title(view, source))
    return Back()


# ---- queries: MarkorReadNote, MarkorCountNotes -------------------------------------------------------------


def _read_params(rng: random.Random) -> Params:
    files = _notes(rng, rng.randint(2, 6))
    path = rng.choice(sorted(files))
    return {"file_name": path.rsplit("/", 1)[1], "files": files, "text": files[path]}


def _read_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_matches(answer, params["text"]))


def _read_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if (start := _start(view)) is not None:
        return start
    editor = view.find(rid=EDITOR)
    if editor is not None and toolbar_title(view) == params["file_name"]:
        return Finish(editor.text)
    node = _title(view, params["file_name"])
    return view.tap(node) if node is not None and editor is None else Back()


def _count_params(rng: random.Random) -> Params:
    folders = rng.sample(FOLDERS, rng.randint(2, 4))
    count = rng.randint(1, 7)
    files = _notes(rng, count, f"{NOTEBOOK}/{folders[0]}")
    for other in folders[1:]:
        files.update(_notes(rng, rng.randint(0, 3), f"{NOTEBOOK}/{other}"))
    files.update(_notes(rng, rng.randint(0, 3)))
    return {"folder": folders[0], "folders": folders, "files": files, "count": count}


def _count_evaluate(device: Device, params: Params, answer: str | None) -> float:
    return float(answer_number(answer) == params["count"])


def _count_expert(device: Device, params: Params) -> Action:
    view = UiView.of(device)
    if (start := _start(view)) is not None:
        return start
    if toolbar_title(view) == params["folder"]:
        return Finish(str(len(view.find_all(rid=ITEM_TITLE))))
    node = _title(view, params["folder"])
    return view.tap(node) if node is not None else Back()


def _template(name: str, goal: str, difficulty: str, kind: str, params, evaluate, expert) -> TaskTemplate:
    return TaskTemplate(
        name=name,
        apps=(PKG,),
        goal=goal,
        difficulty=difficulty,
        kind=kind,
        params=params,
        setup=_seed,
        evaluate=evaluate,
        expert=expert,
    )


TEMPLATES = [
    _template(
        "MarkorCreateNote",
        "Create a new note in Markor named {file_name} with the following text: {text}",
        "medium",
        "operation",
        _create_params,
        _create_evaluate,
        _create_expert,
    ),
    _template(
        "MarkorCreateNoteInFolder",
        "In Markor, create a folder named {folder} and, inside it, a note named {file_name} with the"
        " following text: {text}",
        "hard",
        "operation",
        _in_folder_params,
        _in_folder_evaluate,
        _in_folder_expert,
    ),
    _template(
        "MarkorCreateFolder",
        "Create a new folder in Markor named {folder}.",
        "medium",
        "operation",
        _folder_params,
        _folder_evaluate,
        _folder_expert,
    ),
    _template(
        "MarkorDeleteNote",
        "Delete the note in Markor named {file_name}.",
        "easy",
        "operation",
        _delete_params,
        _delete_evaluate,
        _delete_expert,
    ),
    _template(
        "MarkorDeleteNewestNote",
        "Delete the newest note in Markor.",
        "easy",
        "operation",
        _newest_params,
        _delete_evaluate,
        _delete_expert,
    ),
    _template(
        "MarkorDeleteAllNotes",
        "Delete all my notes in Markor.",
        "medium",
        "operation",
        _all_params,
        _all_evaluate,
        _all_expert,
    ),
    _template(
        "MarkorEditNote",
        "Edit {file_name} in Markor. {how} {text}",
        "medium",
        "operation",
        _edit_params,
        _edit_evaluate,
        _edit_expert,
    ),
    _template(
        "MarkorAddNoteHeader",
        'In Markor, add the heading "# {heading}" as a new first line of the note {file_name}, keeping the'
        " rest of the note as it is.",
        "medium",
        "operation",
        _header_params,
        _edit_evaluate,
        _edit_expert,
    ),
    _template(
        "MarkorMoveNote",
        "In Markor, move the note {file_name} from {source} to {destination}.",
        "medium",
        "operation",
        _move_params,
        _move_evaluate,
        _move_expert,
    ),
    _template(
        "MarkorReadNote",
        "What is written in the note {file_name} in Markor? Answer with the note's text.",
        "easy",
        "query",
        _read_params,
        _read_evaluate,
        _read_expert,
    ),
    _template(
        "MarkorCountNotes",
        "How many notes are in the {folder} folder in Markor? Answer with a number.",
        "easy",
        "query",
        _count_params,
        _count_evaluate,
        _count_expert,
    ),
]
