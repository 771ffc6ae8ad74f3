"""Facts every layer shares, stated once: what a path argument may be, and how many
cores and threads this process may use (never more threads than cores)."""

from __future__ import annotations

import os
from typing import Optional, Union

#: A path argument: a string or any ``os.PathLike`` of one.
PathLike = Union[str, "os.PathLike[str]"]


def cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def bounded(count: Optional[int]) -> Optional[int]:
    """A thread or job count cut to :func:`cores` (None stays None): more threads than
    cores only slow a run, and a count in the thousands can exhaust the machine."""
    return None if count is None else max(1, min(int(count), cores()))


def env_threads() -> Optional[int]:
    """The thread budget that ``OMP_NUM_THREADS`` gives this process, or None when it is
    unset or not a positive integer. It is how a job is given its share of a machine
    (Snakemake sets it to a rule's ``threads``; SLURM job scripts commonly set it from
    ``$SLURM_CPUS_PER_TASK``), and PyTorch already keeps to it: the parsers and the
    onnxruntime sessions do too, where no explicit ``threads`` is given."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return bounded(n) if n > 0 else None
