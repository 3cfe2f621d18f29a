"""ktirt/sources/encoding.py's one pass over a file, chunk by chunk: ASCII chunks are not decoded, and wherever
the chunks fall (a character cut in two, a bad byte, a NUL before or after it) the scan gives what one chunk over
the whole file gives."""

import pytest

from ktirt.sources import encoding

FILES = {
    "ascii": b"a,b\n1,2\n" * 20,
    "utf8_late": b"a,b\n" + b"x,1\n" * 10 + "caf\u00e9,2\n".encode() + b"y,3\n" * 5,
    "cp1252_late": b"a,b\n" + b"x,1\n" * 10 + "caf\u00e9 \u2013 x,2\n".encode("cp1252") + b"y,3\n" * 5,
    "mixed": b"a,b\n" + b"x,1\n" * 6 + "\u00e9,2\n".encode() + b"x,1\n" * 6 + b"\xe9,3\n",
    "nul_before_bad_byte": b"a,b\n" + b"x,1\n" * 4 + b"x\0,1\n" + b"x,1\n" * 4 + b"\xe9,3\n",
    "nul_after_bad_byte": b"a,b\n" + b"x,1\n" * 4 + b"\xe9,3\n" + b"x,1\n" * 4 + b"x\0,1\n",
    "cut_at_end": b"a,b\n" + b"x,1\n" * 5 + "\u00e9".encode()[:1],
}


def _outcome(path, chunk, monkeypatch):
    monkeypatch.setattr(encoding, "CHUNK", chunk)
    encoding._cache.clear()
    try:
        return encoding._first_invalid_utf8(path), encoding._scan(path)
    except Exception as exc:  # the refusal itself must not depend on the chunks either
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("name", list(FILES))
def test_the_scan_does_not_depend_on_where_the_chunks_fall(name, tmp_path, monkeypatch):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(FILES[name])
    whole = _outcome(path, 1 << 20, monkeypatch)
    for chunk in (1, 2, 3, 5, 7, 16):
        assert _outcome(path, chunk, monkeypatch) == whole, chunk


def test_the_files_mean_what_they_say(tmp_path, monkeypatch):
    """The reference itself: each file scanned in one chunk is what it was written as."""
    seen = {}
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
        seen[name] = _outcome(tmp_path / name, 1 << 20, monkeypatch)
    assert seen["ascii"][1] == encoding.Scan("utf8", False)
    assert seen["utf8_late"][1] == encoding.Scan("utf8", False)
    assert seen["cp1252_late"][1] == encoding.Scan("cp1252", False)
    assert seen["mixed"][0] == "InputError"
    assert seen["nul_before_bad_byte"][0][2] is True and seen["nul_after_bad_byte"][0][2] is False
    assert seen["cut_at_end"][0][0] == len(FILES["cut_at_end"]) - 1
