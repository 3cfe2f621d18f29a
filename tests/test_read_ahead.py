"""ktirt/read_ahead.py: the items of the plain loop (or map), in its order, at most `ahead` made before they are asked
for, the producer's error raised where the loop would raise it, and a caller that stops early stops the producer."""

import threading
import time

import pytest

from ktirt.read_ahead import mapped_ahead, read_ahead


def test_the_items_of_the_plain_loop_in_order():
    assert list(read_ahead(iter(range(1000)))) == list(range(1000))
    assert list(read_ahead([])) == []


@pytest.mark.parametrize("ahead", [1, 3])
def test_at_most_ahead_items_are_made_before_they_are_asked_for(ahead):
    made, asked = [], 0

    def counted():
        for k in range(20):
            made.append(k)
            yield k

    for k in read_ahead(counted(), ahead):
        asked += 1
        time.sleep(0.01)  # the producer has time to run as far ahead as it may
        assert len(made) <= asked + ahead
    assert made == list(range(20))


def test_the_next_item_is_made_while_the_caller_holds_one():
    """What makes it worth a thread: while the caller works on item 0, item 1 gets made (a plain loop would wait)."""
    made = [threading.Event() for _ in range(3)]

    def producer():
        for k in range(3):
            made[k].set()
            yield k

    for k in read_ahead(producer()):
        if k == 0:
            assert made[1].wait(10)


def test_the_producers_error_comes_after_the_items_before_it():
    def failing():
        yield 1
        yield 2
        raise ValueError("bad block")

    seen = []
    with pytest.raises(ValueError, match="bad block"):
        for k in read_ahead(failing()):
            seen.append(k)
    assert seen == [1, 2]


def test_a_caller_that_stops_early_stops_the_producer():
    closed = threading.Event()

    def endless():
        try:
            k = 0
            while True:
                yield k
                k += 1
        finally:
            closed.set()

    items = read_ahead(endless())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed.wait(5)
    assert not [t for t in threading.enumerate() if t.name == "read_ahead"]


def test_mapped_ahead_gives_the_plain_maps_results_in_order():
    def slow_square(k):
        time.sleep(0.001 * (k % 3))  # later items may finish first
        return k * k

    assert list(mapped_ahead(slow_square, range(50))) == [k * k for k in range(50)]
    assert list(mapped_ahead(slow_square, [])) == []


def test_mapped_ahead_works_on_the_next_items_while_the_caller_holds_one():
    started = [threading.Event() for _ in range(3)]

    def work(k):
        started[k].set()
        return k

    for k in mapped_ahead(work, range(3)):
        if k == 0:
            assert started[1].wait(10) and started[2].wait(10)


def test_mapped_ahead_raises_an_items_error_after_the_results_before_it():
    def work(k):
        if k == 5:
            raise ValueError("bad segment")
        return k

    seen = []
    with pytest.raises(ValueError, match="bad segment"):
        for k in mapped_ahead(work, range(10)):
            seen.append(k)
    assert seen == [0, 1, 2, 3, 4]
