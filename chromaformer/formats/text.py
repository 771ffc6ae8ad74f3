"""Plain-or-gzip text files: one opener and one line reader for GTF, BED, bedGraph,
expression and interaction tables. A binary file given where text is expected (a BAM,
a bigWig) and text that is not UTF-8 are refused with one line naming the file (and the
line), never a ``UnicodeDecodeError``."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from typing import Any, Iterator, Optional

from .._util.system import PathLike
from ..errors import FormatError

#: what the first bytes of a file (inflated, for gzip/BGZF) say it is, where that is a
#: binary format a user may give in place of a text file
_MAGIC = (
    (b"BAM\x01", "a BAM file (aligned reads)"),
    (b"CRAM", "a CRAM file (aligned reads)"),
    (b"BCF\x02", "a BCF file (variants)"),
    (b"\x26\xfc\x8f\x88", "a bigWig file"),
    (b"\x88\x8f\xfc\x26", "a bigWig file"),
    (b"\x87\x89\xf2\xeb", "a bigBed file"),
    (b"\xeb\xf2\x89\x87", "a bigBed file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x89HDF", "an HDF5 file"),
)


def sniff_binary(path: PathLike) -> Optional[str]:
    """What a known binary format ``path`` is in (``"a BAM file (aligned reads)"``...),
    or None when it is none of them (text, or gzip of text)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error:
            return None  # a damaged gzip: its reader says so
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    return None


def open_text(path: PathLike, what: str = "text") -> Any:
    """Open a text file for reading, gunzipping it when its first bytes say gzip; a known
    binary format is refused (``what``: the kind of text expected, for the error)."""
    kind = sniff_binary(path)
    if kind is not None:
        raise FormatError(
            f"{os.fspath(path)}: {kind}, not {what}", os.fspath(path), reason=f"{kind}"
        )
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    raw: Any = gzip.open(path, "rb") if gz else open(path, "rb")
    return _Utf8(raw, os.fspath(path), what)


class _Utf8(io.TextIOBase):
    """UTF-8 lines of a binary stream, one at a time, so that a byte that is not UTF-8
    is named with its line."""

    def __init__(self, raw: Any, path: str, what: str) -> None:
        self._raw, self._path, self._what, self._no = raw, path, what, 0

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        try:
            data = self._raw.readline()
        except (OSError, EOFError, zlib.error) as err:  # a damaged gzip
            raise FormatError(
                f"{self._path}: not a readable gzip file ({err})", self._path
            ) from None
        if not data:
            return ""
        self._no += 1
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            byte = data[err.start]
            raise FormatError(
                f"{self._path}:{self._no}: byte 0x{byte:02x} at column {err.start + 1} is not "
                f"UTF-8 text: expected {self._what} (a binary file, or another encoding?)",
                self._path,
                self._no,
                err.start + 1,
            ) from None

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return self

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        self._raw.close()
        super().close()


def data_lines(path: PathLike, what: str = "text") -> Iterator[tuple[int, str]]:
    """``(1-based line number, line)`` of a plain or gzip text file, skipping blank lines
    and ``#``/``track``/``browser`` header lines (BED, GTF, bedGraph conventions)."""
    with open_text(path, what) as fh:
        for no, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            yield no, line
