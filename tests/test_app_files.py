"""The simulated Files app (DocumentsUI), driven through the phone's input API and checked through the files."""

import pytest

from droidrl.envs.sim.apps import files, launcher
from droidrl.envs.sim.phone import Phone

PKG = files.PACKAGE
BACK, CTRL_LEFT, A, DEL = 4, 113, 29, 67
DAY = 86400


@pytest.fixture
def phone() -> Phone:
    phone = Phone(apps=[launcher.APP, files.APP])
    now = phone.state.clock_ms // 1000
    phone.fs.write("/sdcard/Download/report.pdf", b"x" * 2500, mtime=now - 3 * DAY)
    phone.fs.write("/sdcard/Download/photo.jpg", b"y" * 512, mtime=now)
    phone.fs.write("/sdcard/Download/.hidden", b"z")
    return phone


def titles(phone: Phone) -> list[str]:
    return [n.text for w in phone.windows() for n in w.walk() if n.rid == "android:id/title" and n.text]


def names(phone: Phone, path: str) -> list[str]:
    return [name for name, _ in phone.fs.listdir(path)]


def select(phone: Phone, text: str) -> None:
    phone.long_press(*phone.find(text=text).center)


def open_download(phone: Phone) -> None:
    phone.tap_node(text="Files")  # the launcher icon
    phone.tap_node(text="Download")


def test_root_lists_storage_folders_and_navigates(phone):
    phone.tap_node(text="Files")
    assert phone.current_activity() == (PKG, files.FILES)
    assert phone.find(text="sdk_gphone64_x86_64") is not None  # the storage root is titled by device name
    assert {"Download", "Documents", "Pictures", "Music", "DCIM"} <= set(titles(phone))
    phone.tap_node(text="Download")
    assert titles(phone) == ["photo.jpg", "report.pdf"]  # dotfiles are hidden
    row = phone.find(text="report.pdf")
    assert row is not None
    assert phone.find(text="2.5 kB") is not None and phone.find(text="Oct 12") is not None
    assert phone.find(text="512 B") is not None and phone.find(text="15:34") is not None
    phone.tap_node(desc="Navigate up")
    assert "Download" in titles(phone)
    phone.key(BACK)
    assert phone.current_activity()[0] == launcher.PACKAGE


def test_delete_file_after_confirming(phone):
    open_download(phone)
    select(phone, "report.pdf")
    assert phone.find(text="1 selected") is not None
    phone.tap_node(desc="Delete")
    assert phone.find(text='Delete "report.pdf"?') is not None
    phone.tap_node(text="Delete")
    assert names(phone, "/sdcard/Download") == [".hidden", "photo.jpg"]
    assert titles(phone) == ["photo.jpg"]


def test_rename_file(phone):
    open_download(phone)
    select(phone, "photo.jpg")
    phone.tap_node(desc="More options")
    phone.tap_node(text="Rename")
    field = phone.find(rid="android:id/text1")
    assert field.text == "photo.jpg"
    phone.tap(*field.center)
    phone.key_combination([CTRL_LEFT, A])
    phone.key(DEL)
    phone.type_text("beach.jpg")
    phone.tap_node(text="OK")
    assert "beach.jpg" in names(phone, "/sdcard/Download")
    assert phone.fs.read("/sdcard/Download/beach.jpg") == b"y" * 512
    assert not phone.fs.exists("/sdcard/Download/photo.jpg")


def test_move_file_with_the_picker(phone):
    open_download(phone)
    mtime = phone.fs.stat("/sdcard/Download/report.pdf").mtime
    select(phone, "report.pdf")
    phone.tap_node(desc="More options")
    phone.tap_node(text="Move to\u2026")
    assert phone.current_activity() == (PKG, files.PICK)
    assert not phone.find(text="Move").enabled  # the source folder itself is not a destination
    phone.tap_node(desc="Navigate up")
    phone.tap_node(text="Documents")
    phone.tap_node(text="Move")
    assert phone.current_activity() == (PKG, files.FILES)
    assert not phone.fs.exists("/sdcard/Download/report.pdf")
    assert phone.fs.stat("/sdcard/Documents/report.pdf").mtime == mtime
    assert titles(phone) == ["photo.jpg"]


def test_copy_file_keeps_the_original(phone):
    open_download(phone)
    select(phone, "photo.jpg")
    phone.tap_node(desc="More options")
    phone.tap_node(text="Copy to\u2026")
    phone.tap_node(desc="Navigate up")
    phone.tap_node(text="Pictures")
    phone.tap_node(text="Copy")
    assert phone.fs.read("/sdcard/Pictures/photo.jpg") == phone.fs.read("/sdcard/Download/photo.jpg")


def test_new_folder_opens_it(phone):
    open_download(phone)
    phone.tap_node(desc="More options")
    phone.tap_node(text="New folder")
    phone.tap_node(rid="android:id/text1")
    phone.type_text("Receipts")
    phone.tap_node(text="OK")
    assert phone.fs.is_dir("/sdcard/Download/Receipts")
    assert phone.find(text="Receipts") is not None and phone.find(text="No items") is not None
    phone.key(BACK)
    assert titles(phone) == ["Receipts", "photo.jpg", "report.pdf"]


def test_select_all_and_delete_several(phone):
    open_download(phone)
    select(phone, "photo.jpg")
    phone.tap_node(text="report.pdf")  # in selection mode a tap adds to the selection
    assert phone.find(text="2 selected") is not None
    phone.tap_node(desc="Delete")
    phone.tap_node(text="Delete")
    assert names(phone, "/sdcard/Download") == [".hidden"]
