"""Parse-ahead: a thread that runs an iterator ahead of its consumer."""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator, TypeVar

T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce ``items`` ahead in a thread, ``depth`` at most waiting: the C++ reader
    releases the GIL, so the next batch is parsed while the current one is scored.

    The thread is not a daemon, and it stops once the consumer stops (or the program's
    main thread ends): a daemon thread still inside the C++ reader when the interpreter
    shuts down aborts the process (SIGABRT) as it takes the GIL back. A signal (SIGTERM)
    that lands while the thread is starting still stops and joins it."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Hand ``item`` over unless the consumer has stopped; False if it has."""
        while not stop.is_set() and threading.main_thread().is_alive():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for b in items:
                if not put(b):
                    return
            put(done)
        except BaseException as err:  # handed to the consumer
            put(err)

    t = threading.Thread(target=work, name="chromaformer-parse")
    try:
        t.start()
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if t.is_alive():
            t.join()
