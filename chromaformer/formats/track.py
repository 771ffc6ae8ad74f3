"""What every track is (a named mark's signal over a genome, however stored), the
chromosome names one chromosome goes by, and quieting C libraries' own stderr lines."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

import numpy as np

_MITO = ("M", "MT")


def chrom_aliases(name: str) -> list[str]:
    """Names the same chromosome goes by: ``chr1``/``1``, ``chrM``/``MT``/``M``."""
    base = name[3:] if name.startswith("chr") else name
    bases = list(_MITO) if base in _MITO else [base]
    out = [name]
    for b in bases:
        for cand in (f"chr{b}", b):
            if cand not in out:
                out.append(cand)
    return out


class Track:
    """A named mark's signal over a genome."""

    kind = "track"

    def __init__(self, mark: str, path: str) -> None:
        self.mark = mark
        self.path = path

    def chroms(self) -> dict[str, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def resolve(self, chrom: str) -> Optional[str]:
        """This track's name for ``chrom`` (after ``chr``/``MT`` reconciliation), or None."""
        names = self.chroms()
        for cand in chrom_aliases(chrom):
            if cand in names:
                return cand
        return None

    def values(self, chrom: str, start: int, end: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def bin_sums(self, chrom: str, lows: np.ndarray, bins: int, bin_size: int) -> np.ndarray:
        out = np.empty((len(lows), bins), dtype=np.float64)
        for i, lo in enumerate(lows):
            v = self.values(chrom, int(lo), int(lo) + bins * bin_size)
            out[i] = v.reshape(bins, bin_size).sum(axis=1)
        return out

    def describe(self) -> str:
        return f"{self.mark} ({self.path})"


@contextlib.contextmanager
def c_stderr_silenced() -> Iterator[None]:
    """Send what C code writes to file descriptor 2 to /dev/null for a moment."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


__all__ = ["Track", "c_stderr_silenced", "chrom_aliases"]
