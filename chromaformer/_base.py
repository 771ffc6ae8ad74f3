"""Facts every layer shares, stated once: what a path argument may be, and how many
cores this process may use."""

from __future__ import annotations

import os
from typing import Union

#: A path argument: a string or any ``os.PathLike`` of one.
PathLike = Union[str, "os.PathLike[str]"]


def cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
