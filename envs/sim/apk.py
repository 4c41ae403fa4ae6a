"""Reading an APK's identity: its AndroidManifest.xml in Android's binary XML (AXML) format, from the zip.

`pm install` uses this to learn which package an APK holds. Only the structure is trusted: every
offset and length is checked against the data, and anything malformed is an `ApkError`, never a crash.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field

# ResChunk_header types (frameworks/base/libs/androidfw/include/androidfw/ResourceTypes.h)
RES_STRING_POOL_TYPE = 0x0001
RES_XML_TYPE = 0x0003
RES_XML_START_NAMESPACE_TYPE = 0x0100
RES_XML_END_NAMESPACE_TYPE = 0x0101
RES_XML_START_ELEMENT_TYPE = 0x0102
RES_XML_END_ELEMENT_TYPE = 0x0103
RES_XML_CDATA_TYPE = 0x0104
RES_XML_RESOURCE_MAP_TYPE = 0x0180
UTF8_FLAG = 1 << 8
NO_INDEX = 0xFFFFFFFF

# Res_value data types an attribute value can have
TYPE_STRING = 0x03
TYPE_INT_DEC = 0x10
TYPE_INT_HEX = 0x11
TYPE_INT_BOOLEAN = 0x12

MAX_MANIFEST_BYTES = 8 * 1024 * 1024  # a real manifest is a few KiB; refuse to inflate a bomb
CHUNK = struct.Struct("<HHI")  # type, header size, chunk size


class ApkError(ValueError):
    """The APK (or its manifest) cannot be parsed; the message says why."""


@dataclass
class Element:
    """One XML element of the manifest: its name and attributes (values as strings or ints)."""

    name: str
    attrs: dict[str, str | int] = field(default_factory=dict)
    depth: int = 0


@dataclass
class Manifest:
    """What an installer needs from AndroidManifest.xml."""

    package: str
    version_code: int = 0
    version_name: str = ""
    elements: list[Element] = field(default_factory=list)

    def components(self, kind: str) -> list[str]:
        """Names of the <activity>/<service>/<receiver>/<provider> elements, as written."""
        return [str(e.attrs.get("name", "")) for e in self.elements if e.name == kind]


def _string_pool(data: bytes, offset: int, size: int) -> list[str]:
    if size < 28:
        raise ApkError("string pool header is truncated")
    count, _styles, flags, strings_start, _ = struct.unpack_from("<IIIII", data, offset + 8)
    if count > size // 4:
        raise ApkError("string pool claims more strings than it can hold")
    header_size = CHUNK.unpack_from(data, offset)[1]
    offsets_at = offset + header_size
    if offsets_at + 4 * count > offset + size:
        raise ApkError("string pool offsets run past the chunk")
    base = offset + strings_start
    end = offset + size
    utf8 = bool(flags & UTF8_FLAG)
    strings = []
    for (rel,) in struct.iter_unpack("<I", data[offsets_at : offsets_at + 4 * count]):
        strings.append(_utf8_string(data, base + rel, end) if utf8 else _utf16_string(data, base + rel, end))
    return strings


def _length(data: bytes, at: int, end: int, unit: int) -> tuple[int, int]:
    """A string pool length: one unit, or two when the high bit is set; returns (length, next offset)."""
    fmt, high = ("<B", 0x80) if unit == 1 else ("<H", 0x8000)
    if at + unit > end:
        raise ApkError("string runs past the string pool")
    (first,) = struct.unpack_from(fmt, data, at)
    if not first & high:
        return first, at + unit
    if at + 2 * unit > end:
        raise ApkError("string runs past the string pool")
    (second,) = struct.unpack_from(fmt, data, at + unit)
    return ((first & (high - 1)) << (8 * unit)) | second, at + 2 * unit


def _utf8_string(data: bytes, at: int, end: int) -> str:
    _chars, at = _length(data, at, end, 1)
    nbytes, at = _length(data, at, end, 1)
    if at + nbytes > end:
        raise ApkError("string runs past the string pool")
    return data[at : at + nbytes].decode("utf-8", errors="replace")


def _utf16_string(data: bytes, at: int, end: int) -> str:
    nchars, at = _length(data, at, end, 2)
    if at + 2 * nchars > end:
        raise ApkError("string runs past the string pool")
    return data[at : at + 2 * nchars].decode("utf-16-le", errors="replace")


def _value(strings: list[str], raw: int, dtype: int, value: int) -> str | int:
    if raw != NO_INDEX and raw < len(strings):
        return strings[raw]
    if dtype == TYPE_STRING and value < len(strings):
        return strings[value]
    if dtype == TYPE_INT_BOOLEAN:
        return int(value != 0)
    return value


def parse_axml(data: bytes) -> list[Element]:
    """The elements of a binary XML document in document order (attribute names without namespace)."""
    if len(data) < CHUNK.size:
        raise ApkError("binary XML is truncated")
    kind, header_size, total = CHUNK.unpack_from(data, 0)
    if kind != RES_XML_TYPE or header_size < CHUNK.size or total > len(data):
        raise ApkError("not a binary XML document")
    strings: list[str] = []
    elements: list[Element] = []
    depth = 0
    at = header_size
    while at + CHUNK.size <= total:
        kind, header_size, size = CHUNK.unpack_from(data, at)
        if size < CHUNK.size or header_size > size or at + size > total:
            raise ApkError(f"bad chunk at offset {at}")
        if kind == RES_STRING_POOL_TYPE:
            strings = _string_pool(data, at, size)
        elif kind == RES_XML_START_ELEMENT_TYPE:
            elements.append(_start_element(data, at, size, strings, depth))
            depth += 1
        elif kind == RES_XML_END_ELEMENT_TYPE:
            depth -= 1
        at += size
    return elements


def _start_element(data: bytes, at: int, size: int, strings: list[str], depth: int) -> Element:
    ext = at + 16  # ResXMLTree_node: chunk header, line number, comment
    if ext + 20 > at + size:
        raise ApkError("element header is truncated")
    _ns, name, attr_start, attr_size, attr_count = struct.unpack_from("<IIHHH", data, ext)
    if name >= len(strings) or attr_size < 20:
        raise ApkError("element refers to a missing string")
    element = Element(strings[name], depth=depth)
    first = ext + attr_start
    if first + attr_count * attr_size > at + size:
        raise ApkError("attributes run past their element")
    for i in range(attr_count):
        _ans, aname, raw, _vsize, _res0, dtype, value = struct.unpack_from("<IIIHBBI", data, first + i * attr_size)
        if aname < len(strings):
            element.attrs[strings[aname]] = _value(strings, raw, dtype, value)
    return element


def read_manifest(apk: bytes) -> Manifest:
    """The manifest of an APK file's bytes; raises ApkError when it is not an APK or has no usable manifest."""
    try:
        with zipfile.ZipFile(io.BytesIO(apk)) as archive:
            try:
                info = archive.getinfo("AndroidManifest.xml")
            except KeyError:
                raise ApkError("no AndroidManifest.xml in the archive") from None
            if info.file_size > MAX_MANIFEST_BYTES:
                raise ApkError("AndroidManifest.xml is too large")
            xml = archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as err:
        raise ApkError(f"not a zip archive ({err})") from None
    except (OSError, RuntimeError, struct.error) as err:
        raise ApkError(f"unreadable archive ({err})") from None
    try:
        elements = parse_axml(xml)
    except struct.error as err:
        raise ApkError(f"truncated binary XML ({err})") from None
    if not elements or elements[0].name != "manifest":
        raise ApkError("the root element is not <manifest>")
    root = elements[0].attrs
    package = root.get("package")
    if not isinstance(package, str) or not package:
        raise ApkError("<manifest> has no package attribute")
    code = root.get("versionCode", 0)
    return Manifest(
        package=package,
        version_code=code if isinstance(code, int) else 0,
        version_name=str(root.get("versionName", "")),
        elements=elements,
    )
