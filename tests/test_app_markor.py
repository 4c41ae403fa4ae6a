"""The simulated Markor app, driven through the phone's input API and checked through the notebook's files."""

import pytest

from droidrl.envs.sim.apps import launcher, markor
from droidrl.envs.sim.phone import Phone

PKG = markor.PACKAGE
NOTEBOOK = markor.NOTEBOOK
BACK, CTRL_LEFT, A, DEL = 4, 113, 29, 67


@pytest.fixture
def phone() -> Phone:
    phone = Phone(apps=[launcher.APP, markor.APP])
    phone.fs.write(f"{NOTEBOOK}/groceries.md", b"milk\neggs")
    phone.fs.write(f"{NOTEBOOK}/Zebra.txt", b"stripes")
    phone.fs.mkdir(f"{NOTEBOOK}/Work")
    return phone


def titles(phone: Phone) -> list[str]:
    return [n.text for w in phone.windows() for n in w.walk() if n.rid.endswith("ui__filesystem_item__title")]


def names(phone: Phone, path: str = NOTEBOOK) -> list[str]:
    return [name for name, _ in phone.fs.listdir(path)]


def long_press(phone: Phone, text: str) -> None:
    node = phone.find(text=text)
    phone.long_press(*node.center)


def create(phone: Phone, name: str, *, plain: bool = False) -> None:
    phone.tap_node(desc="Create a new file or folder")
    phone.tap_node(rid="new_file_dialog__name")
    phone.type_text(name)
    if plain:
        phone.tap_node(text="Plain text")
    phone.tap_node(text="OK")


def test_install_creates_the_empty_notebook_folder():
    phone = Phone(apps=[launcher.APP, markor.APP])
    assert phone.fs.is_dir(NOTEBOOK) and names(phone) == []
    phone.launch(PKG)
    assert phone.current_activity() == (PKG, markor.MAIN)
    assert phone.find(text="No files") is not None


def test_browser_lists_folders_first_then_files_by_name(phone):
    phone.tap_node(text="Markor")  # the launcher icon
    assert titles(phone) == ["Work", "groceries.md", "Zebra.txt"]
    assert phone.find(rid="toolbar").find(text="Markor") is not None


def test_create_markdown_note_with_text_saved_on_back(phone):
    phone.launch(PKG)
    create(phone, "todo")
    assert phone.current_activity() == (PKG, markor.EDITOR)
    assert phone.fs.read(f"{NOTEBOOK}/todo.md") == b""  # the dialog creates the file at once
    phone.tap_node(rid=markor.EDITOR_RID)
    phone.type_text("first line\nsecond line")
    phone.key(BACK)  # hides the keyboard
    phone.key(BACK)  # leaves the editor, which saves
    assert phone.fs.read(f"{NOTEBOOK}/todo.md") == b"first line\nsecond line"
    assert phone.current_activity() == (PKG, markor.MAIN)
    assert "todo.md" in titles(phone)


def test_plain_text_type_and_typed_extension(phone):
    phone.launch(PKG)
    create(phone, "memo", plain=True)
    phone.key(BACK)
    create(phone, "ideas.txt")  # a typed extension is kept, not doubled
    phone.key(BACK)
    assert {"memo.txt", "ideas.txt"} <= set(names(phone))
    assert "ideas.txt.md" not in names(phone)


def test_edit_existing_note_with_save_icon(phone):
    phone.launch(PKG)
    phone.tap_node(text="groceries.md")
    assert phone.find(rid=markor.EDITOR_RID).text == "milk\neggs"
    phone.tap_node(rid=markor.EDITOR_RID)
    phone.type_text("\nbread")  # typing appends at the end of the text
    phone.tap_node(desc="Save")
    assert phone.fs.read(f"{NOTEBOOK}/groceries.md") == b"milk\neggs\nbread"
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text("only this")
    phone.tap_node(desc="Navigate up")
    assert phone.fs.read(f"{NOTEBOOK}/groceries.md") == b"only this"


def test_delete_note_after_confirming(phone):
    phone.launch(PKG)
    long_press(phone, "Zebra.txt")
    assert phone.find(text="1 selected") is not None
    phone.tap_node(desc="Delete")
    assert "Zebra.txt" in phone.find(rid="android:id/message").text
    phone.tap_node(text="Cancel")
    assert "Zebra.txt" in names(phone)
    phone.tap_node(desc="Delete")
    phone.tap_node(text="OK")
    assert names(phone) == ["Work", "groceries.md"]
    assert phone.find(text="1 selected") is None


def test_create_folder_and_navigate_into_it(phone):
    phone.launch(PKG)
    phone.tap_node(desc="Create a new file or folder")
    phone.tap_node(rid="new_file_dialog__name")
    phone.type_text("Recipes")
    phone.tap_node(text="Folder")
    assert phone.fs.is_dir(f"{NOTEBOOK}/Recipes")
    phone.tap_node(text="Recipes")
    create(phone, "pie")
    phone.key(BACK)
    assert names(phone, f"{NOTEBOOK}/Recipes") == ["pie.md"]
    assert titles(phone) == ["pie.md"]
    phone.key(BACK)  # BACK climbs to the notebook root before leaving the app
    assert "Recipes" in titles(phone)
    phone.key(BACK)
    assert phone.current_activity()[0] == launcher.PACKAGE


def test_move_note_into_folder_and_rename(phone):
    phone.launch(PKG)
    long_press(phone, "groceries.md")
    phone.tap_node(desc="Move")
    phone.tap_node(text="Work")
    assert phone.find(text="Move to Work") is not None
    phone.tap_node(text="OK")
    assert names(phone, f"{NOTEBOOK}/Work") == ["groceries.md"]
    assert phone.fs.read(f"{NOTEBOOK}/Work/groceries.md") == b"milk\neggs"
    long_press(phone, "Zebra.txt")
    phone.tap_node(desc="Rename")
    phone.tap_node(rid="new_name")
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text("zebra.md")
    phone.tap_node(text="OK")
    assert names(phone) == ["Work", "zebra.md"]
    assert phone.fs.read(f"{NOTEBOOK}/zebra.md") == b"stripes"
