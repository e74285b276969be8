"""The interpreter's cyclic garbage collector while a send runs. A job's helper (layer 3).

A send makes and drops a few dozen small objects a message (claims, settlements, replies,
the parts of a message), none held in a reference cycle, so reference counting frees every
one; yet each 700 allocations the collector walks the young objects, and now and then all
of them, the modules' own included. While a send runs, what existed before it is frozen
(a full collection skips it) and a young collection waits for 10,000 allocations; both are
put back when the process's last send ends. Measured with bench/send.py (4 connections,
12 KB): 8 to 10% less of the interpreter's time.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG = 10_000  # allocations between young collections while a send runs (Python's default: 700)


class _Sends:
    """How many sends of this process are running; what the first found and changed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.saved = gc.get_threshold()  # the thresholds before the first send
        self.set: tuple[int, ...] = ()   # what the first send set them to ((): it left them)
        self.froze = False               # whether the first send froze the heap


_sends = _Sends()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect less often for the block (see the module); nests, and is safe across threads.
    What is not this module's own is left as found: a heap another part of the program
    froze, a collector turned off, thresholds changed meanwhile."""
    try:
        with _sends.lock:
            _sends.running += 1
            if _sends.running == 1:
                _begin()
        yield
    finally:
        with _sends.lock:
            _sends.running -= 1
            if _sends.running == 0:
                _end()


def _begin() -> None:
    """Raise the young threshold and freeze the heap, unless collection is off (threshold
    0) or the heap was frozen by someone else."""
    _sends.saved, _sends.set, _sends.froze = gc.get_threshold(), (), False
    if not _sends.saved[0]:
        return
    if gc.get_freeze_count() == 0:
        gc.freeze()
        _sends.froze = True
    _sends.set = (max(_sends.saved[0], YOUNG), *_sends.saved[1:])
    gc.set_threshold(*_sends.set)


def _end() -> None:
    if _sends.set and gc.get_threshold() == _sends.set:  # changed meanwhile: the change stands
        gc.set_threshold(*_sends.saved)
    if _sends.froze:
        gc.unfreeze()
