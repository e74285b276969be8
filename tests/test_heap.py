"""The collector while a send runs (jobs/heap.py): young collections wait longer and what
existed before is frozen; both come back as they were when the process's last send ends,
even when sends overlap on threads or end with an error."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from digest.jobs.heap import YOUNG, fewer_collections


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(*before)


def test_a_send_collects_less_and_puts_the_collector_back() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def failing_send() -> None:
    with fewer_collections():
        assert gc.get_threshold()[0] == YOUNG
        raise RuntimeError("this send failed")


def test_overlapping_sends_put_it_back_when_the_last_ends() -> None:
    inside, release = threading.Event(), threading.Event()

    def other_send() -> None:
        with fewer_collections():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_send)
    thread.start()
    assert inside.wait(10)
    with pytest.raises(RuntimeError):
        failing_send()
    assert gc.get_threshold()[0] == YOUNG  # the other send still runs
    release.set()
    thread.join()
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_a_collector_turned_off_stays_off() -> None:
    gc.set_threshold(0)
    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_what_another_part_of_the_program_set_is_left_as_it_is() -> None:
    """A heap frozen before the send stays frozen after it; thresholds changed during the
    send stay changed."""
    gc.freeze()
    with fewer_collections():
        gc.set_threshold(500, 5, 5)
    assert gc.get_freeze_count() > 0  # not unfrozen (the count falls only as frozen objects die)
    assert gc.get_threshold() == (500, 5, 5)
