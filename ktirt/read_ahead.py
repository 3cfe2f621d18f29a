"""An iterator's next items made in a background thread while the caller works on the current one.

For producers that spend their time outside Python's lock: pyarrow's streaming CSV reader parses on one thread
and releases the lock while it does, so the next block of a large CSV is parsed on the second core while the
caller routes the current one. Items, and the producer's exception if it raises, come out in the producer's
order, so the results are those of the plain loop; at most `ahead` items are made before the caller asks for
them (memory: the caller's item and `ahead` more). `mapped_ahead` does the same for independent items, several
threads at a time: the segments of a large CSV (ktirt/sources/csv_segments.py). `started` begins one call on
another thread, for work the caller needs only later.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()


def read_ahead(items: Iterable[T], ahead: int = 1) -> Iterator[T]:
    """`items`, each made in a background thread while the caller holds the one before."""
    slots, ready, stop = threading.Semaphore(ahead + 1), queue.Queue(), threading.Event()  # the caller's + ahead

    def produce() -> None:
        source = iter(items)
        try:
            while slots.acquire() and not stop.is_set():
                item = next(source, _END)
                ready.put((item, None))
                if item is _END:
                    return
                del item  # the caller's now: not kept alive here while the next is made
        except BaseException as exc:  # handed to the caller, who raises it where the plain loop would
            ready.put((_END, exc))
        finally:
            getattr(source, "close", lambda: None)()

    worker = threading.Thread(target=produce, name="read_ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
            del item
            slots.release()
    finally:
        stop.set()
        slots.release()  # a producer waiting for a slot wakes, sees `stop` and ends
        worker.join()


def mapped_ahead(function: Callable[[T], R], items: Iterable[T], workers: int = 2) -> Iterator[R]:
    """`function(item)` for each item, in the items' order, made by `workers` threads while the caller holds the
    result before (memory: the caller's result and `workers` more). An item's error is raised where the plain loop
    would raise it: after the results before it."""
    items = iter(items)
    with ThreadPoolExecutor(workers, thread_name_prefix="mapped_ahead") as pool:
        pending = deque(pool.submit(function, item) for item in islice(items, workers))
        try:
            while pending:
                result = pending.popleft().result()
                pending.extend(pool.submit(function, item) for item in islice(items, 1))
                yield result
                del result
        finally:
            for future in pending:
                future.cancel()


def started(function: Callable[..., R], *args) -> Future:
    """`function(*args)` begun on another thread while the caller goes on; the future's `result()` waits for it and
    raises its error there, where the plain call would have been made."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="started")
    try:
        return pool.submit(function, *args)
    finally:
        pool.shutdown(wait=False)
