"""The one exception bad input raises, so every stage reports it the same way, and the one-line form of any
error message."""

from __future__ import annotations

import errno
import os
import re
import unicodedata
from pathlib import Path

WHY = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system",
       errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EFBIG: "file too large",
       errno.EIO: "input/output error", errno.ENAMETOOLONG: "file name too long", errno.EISDIR: "is a folder",
       errno.ENOTDIR: "a parent is not a folder", errno.ENOENT: "its folder went away"}
"""the words for a failed write's errno"""
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class InputError(ValueError):
    """Unusable input: names the file and, where there is one, the column.

    Stages turn it into a one-line message and a non-zero exit before anything is written.
    """

    def __init__(self, message: str, path: str | Path | None = None, column: str | None = None):
        self.path = None if path is None else str(path)
        self.column = column
        self.reason = message
        where = []
        if self.path:
            where.append(self.path)
        if column:
            where.append(f"column '{column}'")
        super().__init__(": ".join([*where, message]))


class SettingsError(InputError):
    """An invalid setting (a params.yaml value); the stage names the settings file."""


class OutputError(InputError):
    """An output that cannot be written (disk full, read-only folder): names the real output, never its temporary.
    An InputError, so every place that reports bad input in one line reports this too."""

    def __init__(self, path: str | Path, why: str | OSError):
        super().__init__(f"cannot write: {why if isinstance(why, str) else os_reason(why)}", path)


def os_reason(exc: OSError) -> str:
    """Plain words for an OSError, also when the writer (pyarrow) gave its errno only inside the message."""
    code = exc.errno
    if code is None:
        found = re.search(r"errno (\d+)", str(exc), re.IGNORECASE)
        code = int(found[1]) if found else None
    if code in WHY:
        return WHY[code]
    return os.strerror(code).lower() if code else (exc.strerror or str(exc) or type(exc).__name__)


def one_line(text: str) -> str:
    """`text` with newlines and other control characters escaped (a newline in a student id or a file's value
    must not split the error line, nor a terminal escape reach the terminal)."""
    def escape(ch: str) -> str:
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
        return ch

    return "".join(map(escape, text))
