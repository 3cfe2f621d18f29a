"""One text encoding per source file, decided from the whole file: a stray byte must not make every
accented name of a UTF-8 file be re-read as latin-1, nor a latin-1 file be half-decoded as UTF-8.

valid UTF-8 -> "utf8"; not UTF-8 and no valid UTF-8 multi-byte sequence anywhere -> "latin-1" (several
ASSISTments releases); both (UTF-8 text with a foreign byte) -> InputError naming the first bad byte.
The file is streamed in chunks, so a 2 GB action log is never held in memory for this.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import numpy as np

from ktirt.errors import InputError

CHUNK = 1 << 24
# a well-formed UTF-8 multi-byte sequence (RFC 3629); plain latin-1 text practically never holds one
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_cache: dict[tuple, str] = {}


def detect_encoding(path: Path) -> str:
    """'utf8' or 'latin-1' for the whole file (cached per file size and modification time)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        _cache[key] = _detect(path)
    return _cache[key]


def _detect(path: Path) -> str:
    bad, multibyte_before = _first_invalid_utf8(path)
    if bad is None:
        return "utf8"
    found = multibyte_before if multibyte_before is not None else _first_utf8_multibyte(path, bad)
    if found is not None:
        raise InputError(
            f"mixed text encodings: byte offset {bad} is not UTF-8, but byte offset {found} starts a UTF-8 character;"
            " re-save the whole file in one encoding (UTF-8)",
            path,
        )
    return "latin-1"


def _first_invalid_utf8(path: Path) -> tuple[int | None, int | None]:
    """(offset of the first byte that is not UTF-8 or None, offset of a UTF-8 multi-byte character before it)."""
    base, tail, multibyte = 0, b"", None
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            data = tail + chunk
            try:
                text, used = codecs.utf_8_decode(data, "strict", False)
            except UnicodeDecodeError as exc:
                return base + exc.start, multibyte if multibyte is not None else _multibyte_in(data[: exc.start], base)
            if multibyte is None and not text.isascii():
                multibyte = _multibyte_in(data[:used], base)
            base, tail = base + used, data[used:]
    return (base if tail else None), multibyte  # a character cut off by the end of the file


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


def _first_utf8_multibyte(path: Path, start: int) -> int | None:
    """Offset of the first well-formed UTF-8 multi-byte sequence at or after `start`, or None."""
    with open(path, "rb") as f:
        f.seek(start)
        base, tail = start, b""
        while chunk := f.read(CHUNK):
            data = tail + chunk
            found = _multibyte_in(data, base)
            if found is not None:
                return found
            tail = data[-3:]  # a sequence may straddle two chunks
            base += len(data) - len(tail)
    return None
