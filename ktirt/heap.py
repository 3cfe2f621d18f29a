"""Giving freed memory back to the system while a stage streams the log: numpy's buffers live in glibc's heap,
Arrow's in its own pool (mimalloc), and both keep what a finished batch freed unless asked. Torch-free, so the data
stages use it without importing torch."""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager

import pyarrow as pa


@contextmanager
def freed_memory_returned():
    """While inside, glibc serves allocations of 1 MiB and more by mmap, so they go back to the system when freed:
    a stage working through the log batch after batch otherwise keeps freed batches in its heap (train_sakt's
    resident memory grew about 40 MB a batch). On leaving, the threshold goes to glibc's largest (32 MiB), so a
    training loop's same-sized buffers are reused from the heap, not mapped afresh at every step (mapping them
    halved SAKT's training speed). Nothing happens where the C library is not glibc."""
    _mmap_threshold(1 << 20)
    try:
        yield
    finally:
        _mmap_threshold(32 << 20)


@contextmanager
def heap_reused():
    """While inside, glibc serves every allocation from its heap, never by mmap: a stage that builds the same large
    arrays part after part (prepare) then reuses the pages the part before freed, where mapped afresh each array
    cost a page fault per 4 KiB and an unmapping that stops the other core (at EDM-Cup scale prepare spent 12 of its
    30 CPU seconds in the kernel). heap_trimmed still gives back what is free between parts. On leaving, glibc maps
    again. Nothing happens where the C library is not glibc.

    Nor does glibc give back the top of its heap on its own, at every free of a large block (above 128 KiB by
    default): a part's arrays, and the split's 16 MiB segments, were freed at the top, given back and faulted in
    afresh for the next (the kernel's share of prepare's CPU time at EDM-Cup scale 5-6 -> ~4 of ~20 s);
    heap_trimmed still gives it back between parts."""
    _glibc("mallopt", M_MMAP_MAX, 0)
    _glibc("mallopt", M_ARENA_MAX, 1)  # threads share the one heap: per-thread heaps left the peak ~0.1 GiB higher
    _glibc("mallopt", M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    try:
        yield
    finally:
        _glibc("mallopt", M_MMAP_MAX, 1 << 16)  # glibc's defaults (an arena bound of 0 is ignored: 8 per core)
        _glibc("mallopt", M_ARENA_MAX, 8 * (os.cpu_count() or 1))
        _glibc("mallopt", M_TRIM_THRESHOLD, 128 << 10)


def heap_trimmed() -> None:
    """Give the free memory of Arrow's pool and of glibc's heap (malloc_trim) back to the system: called after each
    batch or part of a stage that streams the log, whose freed batches would otherwise stay in its resident memory
    as free pages. glibc's part does nothing where the C library is not glibc. Arrow's jemalloc pool (prepare's) is
    not asked: in pyarrow 26 that gives nothing back at once (jemalloc's own decay does, about a second after a
    free) and cost prepare 0.3 s at EDM-Cup scale, for the same peak."""
    pool = pa.default_memory_pool()
    if pool.backend_name != "jemalloc":
        pool.release_unused()
    _glibc("malloc_trim", 0)


def _mmap_threshold(size: int) -> None:
    _glibc("mallopt", M_MMAP_THRESHOLD, size)


def _glibc(function: str, *args: int) -> None:
    """Call a glibc allocator function; nothing where the C library is not glibc."""
    try:
        getattr(ctypes.CDLL("libc.so.6"), function)(*args)
    except (OSError, AttributeError):
        pass


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -3, -4, -8
"""glibc's mallopt parameters (malloc.h)"""

TRIM_THRESHOLD = 512 << 20
"""free bytes at the top of glibc's heap that it keeps, inside heap_reused, until heap_trimmed gives them back"""
