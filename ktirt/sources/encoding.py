"""One text encoding per source file, decided from the whole file: a stray byte must not make every
accented name of a UTF-8 file be re-read in another encoding, nor a Windows file be half-decoded as UTF-8.

valid UTF-8 -> "utf8"; not UTF-8 and no valid UTF-8 multi-byte sequence anywhere -> "cp1252" (Windows-1252,
what several ASSISTments releases are: its curly quotes and dashes are the bytes 0x80-0x9F, which latin-1
would turn into invisible control characters inside names); both (UTF-8 text with a foreign byte) ->
InputError naming the first bad byte. A byte that is no character in Windows-1252 (0x81, 0x8D, 0x8F, 0x90,
0x9D) in a file that is not UTF-8 stops the run too: no encoding this reader knows fits that file.
The same pass notes whether some line holds a NUL byte (a damaged file; ktirt.sources.rows drops those lines).
The file is streamed in chunks, so a 2 GB action log is never held in memory for this.
"""

from __future__ import annotations

import codecs
import re
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ktirt.errors import InputError
from ktirt.read_ahead import started

CHUNK = 1 << 24
# a well-formed UTF-8 multi-byte sequence (RFC 3629); Windows-1252 text practically never holds one
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
NOT_CP1252 = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
"""the bytes Windows-1252 leaves undefined"""


@dataclass(frozen=True)
class Scan:
    encoding: str  # "utf8" or "cp1252"
    nul: bool  # some line holds a NUL byte


_cache: dict[tuple, Scan] = {}
_ahead: dict[tuple, Future] = {}


def scan(path: Path) -> Scan:
    """The file's encoding and whether it holds NUL bytes (cached per file size and modification time)."""
    path = Path(path)
    key = _key(path)
    if key in _ahead:  # wait for scan_ahead: its result is then in the cache; had it failed, the scan below raises
        _ahead.pop(key).exception()  # the same error here
    if key not in _cache:
        _cache[key] = _scan(path)
    return _cache[key]


def scan_ahead(path: Path) -> None:
    """Start scanning `path` on another thread, so that a large file's scan (1.3 s for EDM Cup's 2 GB action log)
    runs while the caller reads other files; the first `scan(path)` waits for it."""
    path = Path(path)
    key = _key(path)
    if key not in _cache and key not in _ahead:
        _ahead[key] = started(lambda: _cache.setdefault(key, _scan(path)))


def _key(path: Path) -> tuple:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def detect_encoding(path: Path) -> str:
    """'utf8' or 'cp1252' for the whole file."""
    return scan(path).encoding


def _scan(path: Path) -> Scan:
    bad, multibyte_before, nul = _first_invalid_utf8(path)
    if bad is None:
        return Scan("utf8", nul)
    if multibyte_before is None:
        found, undefined, nul_after = _rest_of_file(path, bad)
        nul = nul or nul_after
    else:
        found, undefined = multibyte_before, None
    if found is not None and (undefined is None or found < undefined):
        raise InputError(
            f"mixed text encodings: byte offset {bad} is not UTF-8, but byte offset {found} starts a UTF-8 character;"
            " re-save the whole file in one encoding (UTF-8)",
            path,
        )
    if undefined is not None:
        byte = _byte_at(path, undefined)
        raise InputError(f"byte 0x{byte:02X} at offset {undefined} is a character neither in UTF-8 nor in Windows-1252 "
                         "(cp1252): the file's encoding is unknown; re-save it as UTF-8", path)
    return Scan("cp1252", nul)


def _first_invalid_utf8(path: Path) -> tuple[int | None, int | None, bool]:
    """(offset of the first byte that is not UTF-8 or None, offset of a UTF-8 multi-byte character before it,
    whether a NUL byte comes before it)."""
    base, tail, multibyte, nul = 0, b"", None, False
    buffer = bytearray(CHUNK)  # read into again and again: a fresh 16 MiB per chunk was most of the scan's time
    with open(path, "rb") as f:
        while n := f.readinto(buffer):
            chunk = buffer if n == CHUNK else buffer[:n]
            data = tail + chunk if tail else chunk
            if data.isascii():  # UTF-8 without a multi-byte character: nothing to decode (most files, every chunk)
                nul = nul or b"\0" in chunk
                base, tail = base + len(data), b""
                continue
            try:
                text, used = codecs.utf_8_decode(data, "strict", False)
            except UnicodeDecodeError as exc:
                nul = nul or b"\0" in data[: exc.start]
                return base + exc.start, multibyte if multibyte is not None else _multibyte_in(data[: exc.start], base), nul
            nul = nul or b"\0" in chunk
            if multibyte is None and not text.isascii():
                multibyte = _multibyte_in(data[:used], base)
            base, tail = base + used, data[used:]
    return (base if tail else None), multibyte, nul  # a character cut off by the end of the file


def _multibyte_in(data: bytes, base: int) -> int | None:
    """Offset of the first well-formed UTF-8 multi-byte sequence in `data` (vectorised: a lead byte before a
    continuation byte, then the exact rule on those few places), or None."""
    if data.isascii():
        return None
    b = np.frombuffer(data, np.uint8)
    lead, cont = b[:-1], b[1:]
    for pos in np.flatnonzero((lead >= 0xC2) & (lead <= 0xF4) & (cont >= 0x80) & (cont <= 0xBF)):
        if _UTF8_MULTIBYTE.match(data, int(pos)):
            return base + int(pos)
    return None


def _rest_of_file(path: Path, start: int) -> tuple[int | None, int | None, bool]:
    """From `start` on: (offset of the first well-formed UTF-8 multi-byte sequence, of the first byte undefined
    in Windows-1252, each None if absent, and whether a NUL byte is there); stops at the first of the two."""
    with open(path, "rb") as f:
        f.seek(start)
        base, tail, nul = start, b"", False
        while chunk := f.read(CHUNK):
            data = tail + chunk
            nul = nul or b"\0" in data
            found = _multibyte_in(data, base)
            hits = np.flatnonzero(np.isin(np.frombuffer(data, np.uint8), NOT_CP1252))
            undefined = base + int(hits[0]) if len(hits) else None
            if found is not None or undefined is not None:
                return found, undefined, nul
            tail = data[-3:]  # a sequence may straddle two chunks
            base += len(data) - len(tail)
    return None, None, nul


def _byte_at(path: Path, offset: int) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(1)[0]
