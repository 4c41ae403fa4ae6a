"""Tiny APKs for tests: a zip holding a binary (AXML) AndroidManifest.xml, as aapt2 writes one.

`build_apk("com.google.androidenv.accessibilityforwarder")` stands in for the APK android_env downloads.
"""

from __future__ import annotations

import io
import struct
import zipfile

ANDROID_NS = "http://schemas.android.com/apk/res/android"
STRING_POOL, XML, START_NS, END_NS, START_EL, END_EL = 0x0001, 0x0003, 0x0100, 0x0101, 0x0102, 0x0103
TYPE_STRING, TYPE_INT_DEC = 0x03, 0x10
NO_INDEX = 0xFFFFFFFF


class _Pool:
    def __init__(self) -> None:
        self.strings: list[str] = []

    def __call__(self, text: str) -> int:
        if text not in self.strings:
            self.strings.append(text)
        return self.strings.index(text)

    def chunk(self) -> bytes:
        data = b""
        offsets = []
        for text in self.strings:
            offsets.append(len(data))
            data += struct.pack("<H", len(text)) + text.encode("utf-16-le") + b"\0\0"
        data += b"\0" * (-len(data) % 4)
        header = 28
        strings_start = header + 4 * len(self.strings)
        body = struct.pack(f"<{len(offsets)}I", *offsets) + data
        return (
            struct.pack("<HHIIIIII", STRING_POOL, header, header + len(body), len(self.strings), 0, 0, strings_start, 0)
            + body
        )


def axml(elements: list[tuple[str, dict[str, str | int], int]]) -> bytes:
    """Binary XML of (name, attributes, depth) elements in document order; `android:` attrs get the namespace."""
    pool = _Pool()
    pool("android")
    pool(ANDROID_NS)
    body = b""
    ns = struct.pack("<HHIII", START_NS, 16, 24, 1, NO_INDEX) + struct.pack("<II", pool("android"), pool(ANDROID_NS))
    body += ns
    stack: list[str] = []
    for name, attrs, depth in elements:
        while len(stack) > depth:
            body += struct.pack("<HHIII", END_EL, 16, 24, 1, NO_INDEX) + struct.pack("<II", NO_INDEX, pool(stack.pop()))
        packed = b""
        for key, value in attrs.items():
            android = key.startswith("android:")
            key = key.removeprefix("android:")
            ns_index = pool(ANDROID_NS) if android else NO_INDEX
            if isinstance(value, int):
                packed += struct.pack("<IIIHBBI", ns_index, pool(key), NO_INDEX, 8, 0, TYPE_INT_DEC, value)
            else:
                index = pool(value)
                packed += struct.pack("<IIIHBBI", ns_index, pool(key), index, 8, 0, TYPE_STRING, index)
        ext = struct.pack("<IIHHHHHH", NO_INDEX, pool(name), 20, 20, len(attrs), 0, 0, 0)
        size = 16 + len(ext) + len(packed)
        body += struct.pack("<HHIII", START_EL, 16, size, 1, NO_INDEX) + ext + packed
        stack.append(name)
    while stack:
        body += struct.pack("<HHIII", END_EL, 16, 24, 1, NO_INDEX) + struct.pack("<II", NO_INDEX, pool(stack.pop()))
    body += struct.pack("<HHIII", END_NS, 16, 24, 1, NO_INDEX) + struct.pack("<II", pool("android"), pool(ANDROID_NS))
    strings = pool.chunk()
    return struct.pack("<HHI", XML, 8, 8 + len(strings) + len(body)) + strings + body


def build_apk(package: str, *, version_name: str = "1.0", services: tuple[str, ...] = ()) -> bytes:
    """A minimal APK (zip) whose AndroidManifest.xml names `package`."""
    elements: list[tuple[str, dict[str, str | int], int]] = [
        ("manifest", {"android:versionCode": 1, "android:versionName": version_name, "package": package}, 0),
        ("uses-sdk", {"android:minSdkVersion": 24, "android:targetSdkVersion": 33}, 1),
        ("application", {"android:label": package.rsplit(".", 1)[-1]}, 1),
    ]
    elements += [("service", {"android:name": name}, 2) for name in services]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("AndroidManifest.xml", axml(elements))
        archive.writestr("classes.dex", b"dex\n035\0" + b"\0" * 104)
        archive.writestr("resources.arsc", b"\x02\x00\x0c\x00" + b"\0" * 8)
        # Real APKs are megabytes. Size matters to android_env on Python < 3.12: it writes the APK blob to a
        # temporary file without flushing before `adb install`, so a file under io's 8 KiB buffer arrives empty.
        archive.writestr(zipfile.ZipInfo("assets/padding.bin"), b"\0" * 32 * 1024, zipfile.ZIP_STORED)
    return buffer.getvalue()


FORWARDER_PACKAGE = "com.google.androidenv.accessibilityforwarder"


def forwarder_apk() -> bytes:
    """What android_env's `_get_accessibility_forwarder_apk` downloads, as far as an installer can tell."""
    return build_apk(FORWARDER_PACKAGE, services=(f"{FORWARDER_PACKAGE}.AccessibilityForwarder",))
