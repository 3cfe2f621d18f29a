"""A large CSV parsed on two cores, in file order: the file is cut at line ends into segments of about
BLOCK_BYTES, and each segment is parsed by pyarrow on its own thread (ktirt/read_ahead.py: mapped_ahead) while
the caller works on the blocks before it.

pyarrow's streaming reader parses one block at a time on one thread: for EDM Cup's action log (2 GB at 35,000
students) that was the split's bottleneck, the routing of the blocks waiting on it. A segment is parsed as a
whole small file (the header's names given, its first line the file's header only in the first segment), so the
blocks, their values and their errors are those of the streaming reader's, in the same order. A line end ends a
row unless it lies inside a quoted value: a segment holding an odd number of quote marks may have been cut inside
one, so from that segment on the file goes to the streaming reader (as does a file whose first MiB holds no line
end: old Mac line ends, or none). Memory: the segments being parsed and the caller's, each a block.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ktirt.read_ahead import mapped_ahead
from ktirt.sources.tables import conversion_error, convert_options, csv_blocks, read_options

_LOOK = 1 << 20
"""bytes read at a time to find the line end after a cut"""


def csv_blocks_in_parallel(source: Path | pa.NativeFile, path: Path, header: list[str], types: dict,
                           forms: dict[str, str], workers: int = 2) -> Iterator[pa.RecordBatch]:
    """The blocks `csv_blocks` gives, parsed `workers` segments at a time."""
    file = source if isinstance(source, pa.NativeFile) else pa.OSFile(str(source))
    try:
        size = file.size()
        if size > _LOOK and b"\n" not in file.read_at(_LOOK, 0):
            yield from csv_blocks(source, path, header, types, forms)
            return

        def parse(segment: tuple[int, int]) -> tuple[int, list[pa.RecordBatch] | None]:
            start, end = segment
            data = file.read_at(end - start, start)
            if _quote_marks(data) % 2:  # the cut may lie inside a quoted value: left to the streaming reader
                return start, None
            options = _options(path, header, start)
            options.block_size = max(options.block_size, end - start)
            try:
                return start, pacsv.read_csv(pa.BufferReader(data), read_options=options,
                                             convert_options=convert_options(types)).to_batches()
            except pa.ArrowInvalid as exc:  # pyarrow numbers the rows of the segment, the streaming reader none
                raise conversion_error(path, header, pa.ArrowInvalid(re.sub(r"Row #\d+: ", "", str(exc))),
                                       forms) from None

        step = read_options(path, header).block_size  # BLOCK_BYTES
        parsed = mapped_ahead(parse, _segments(file, size, step), workers)
        for start, batches in parsed:
            if batches is None:  # cutting might split a row in two: the streaming reader reads on, one thread
                parsed.close()  # after the segments still being parsed, which read the file too
                file.seek(start)
                yield from csv_blocks(file, path, header, types, forms, _options(path, header, start))
                return
            yield from batches
    finally:
        if file is not source:
            file.close()


def _quote_marks(data: bytes) -> int:
    """How many `"` bytes `data` holds: numpy's vector compare a MiB at a time (bytes.count takes 6x as long, and
    EDM Cup quotes every text value: 0.7 s of the split's CPU at EDM-Cup scale)."""
    values = np.frombuffer(data, np.uint8)
    return sum(int(np.count_nonzero(values[i:i + _LOOK] == _QUOTE)) for i in range(0, len(values), _LOOK))


_QUOTE = ord('"')


def _options(path: Path, header: list[str], start: int) -> pacsv.ReadOptions:
    """read_options for a part of the file from byte `start` (a line's start): the header skipped only at 0."""
    options = read_options(path, header)
    options.skip_rows, options.use_threads = (1 if start == 0 else 0), False
    return options


def _segments(file: pa.NativeFile, size: int, step: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges of about `step` bytes covering the file, each ending just after a line end (the
    last at the file's end)."""
    start = 0
    while start < size:
        end = min(start + step, size)
        while end < size:
            window = file.read_at(min(_LOOK, size - end), end)
            found = window.find(b"\n")
            end += found + 1 if found >= 0 else len(window)
            if found >= 0:
                break
        yield start, end
        start = end
