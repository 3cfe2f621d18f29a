"""What is at a raw path, said precisely: "not found" only when nothing is there. A folder where a file is
expected, a file where the raw folder is expected, a symbolic link that loops or points nowhere, and a
compressed file named `.csv` each get their own message, so the fix is obvious from the one line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ktirt.errors import InputError

COMPRESSED = (
    (b"\x1f\x8b", "gzip-compressed", "gunzip"),
    (b"PK\x03\x04", "a zip archive", "unzip"),
    (b"PK\x05\x06", "a zip archive", "unzip"),
    (b"BZh", "bzip2-compressed", "bunzip2"),
    (b"\xfd7zXZ\x00", "xz-compressed", "unxz"),
    (b"(\xb5/\xfd", "zstd-compressed", "unzstd"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "7z x"),
)
"""leading bytes of the compressed formats a release may be downloaded in: (signature, what it is, the tool)"""


def present(path: Path) -> bool:
    """Whether anything is at `path`: a broken or looping link counts (Path.exists follows links)."""
    return path.exists() or path.is_symlink()


def _link_problem(path: Path) -> str | None:
    """What is wrong with `path` as a link, or None when it is not one or leads somewhere."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself): point it at the real file"
        return f"symbolic link to nothing (it points to '{os.readlink(path)}')"
    return None


def check_file(path: Path) -> None:
    """A readable regular file holding plain text, or one line saying what is there instead."""
    problem = _link_problem(path)
    if problem:
        raise InputError(problem, path)
    if path.is_dir():
        raise InputError("is a folder, not a file", path)
    if not path.exists():
        raise InputError("file not found", path)
    if not path.is_file():
        raise InputError("not a regular file (a device, pipe or socket)", path)
    with open(path, "rb") as f:
        head = f.read(8)
    for signature, what, tool in COMPRESSED:
        if head.startswith(signature):
            raise InputError(f"{what}: decompress it first (e.g. `{tool}`), then point prepare at the .csv", path)


def check_raw_folder(raw: Path) -> None:
    """data.raw_dir must be a folder (following links)."""
    problem = _link_problem(raw)
    if problem:
        raise InputError(problem.replace("file", "folder"), raw)
    if raw.is_dir():
        return
    if raw.exists():
        raise InputError("is a file, not a folder: data.raw_dir names the folder that holds the source's CSV files", raw)
    raise InputError("raw data folder not found (see README: real data)", raw)
