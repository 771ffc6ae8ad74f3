"""Plain-or-gzip text files: one opener and one line reader for GTF, BED, bedGraph,
expression and interaction tables."""

from __future__ import annotations

import gzip
from typing import IO, Iterator

from .._base import PathLike


def open_text(path: PathLike) -> IO[str]:
    """Open a text file for reading, gunzipping it when its first bytes say gzip."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gz else open(path)


def data_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """``(1-based line number, line)`` of a plain or gzip text file, skipping blank lines
    and ``#``/``track``/``browser`` header lines (BED, GTF, bedGraph conventions)."""
    with open_text(path) as fh:
        for no, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            yield no, line
