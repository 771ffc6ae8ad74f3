"""The installed libchromaformer through ctypes, as a C caller sees it (the tests'
binding, not the package's)."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np


class Options(ctypes.Structure):
    _fields_ = [
        ("threads", ctypes.c_int32),
        ("integer_counts", ctypes.c_int32),
        ("mark_names", ctypes.POINTER(ctypes.c_char_p)),
        ("n_mark_names", ctypes.c_int64),
    ]


class Batch(ctypes.Structure):
    _fields_ = [
        ("genes", ctypes.c_int64),
        ("bins", ctypes.c_int64),
        ("marks", ctypes.c_int64),
        ("counts", ctypes.POINTER(ctypes.c_float)),
        ("labels", ctypes.POINTER(ctypes.c_uint8)),
        ("gene_ids", ctypes.POINTER(ctypes.c_char_p)),
    ]


class CError(Exception):
    """A status other than CHROMAFORMER_OK and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Lib:
    def __init__(self, path: Path) -> None:
        self.c = c = ctypes.CDLL(str(path))
        vp, i64, sz, cp = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t, ctypes.c_char_p
        c.chromaformer_version.restype = cp
        c.chromaformer_reader_options_default.restype = Options
        c.chromaformer_reader_open.argtypes = [
            cp,
            i64,
            i64,
            ctypes.POINTER(Options),
            ctypes.POINTER(vp),
            cp,
            sz,
        ]
        c.chromaformer_reader_next.argtypes = [vp, i64, ctypes.POINTER(Batch), cp, sz]
        c.chromaformer_reader_close.argtypes = [vp]
        c.chromaformer_reader_bins.argtypes = [vp]
        c.chromaformer_reader_bins.restype = i64
        c.chromaformer_write_scores.argtypes = [
            cp,
            ctypes.POINTER(cp),
            ctypes.POINTER(ctypes.c_float),
            ctypes.POINTER(ctypes.c_uint8),
            i64,
            cp,
            sz,
        ]

    def version(self) -> str:
        return self.c.chromaformer_version().decode()

    def read(
        self,
        path: Path,
        genes: int = 4096,
        *,
        bins: int = 0,
        marks: Sequence[str] = (),
        integer_counts: bool = True,
        threads: int = 0,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
        """Each batch as (counts, labels, gene ids), copied out of the reader."""
        names = (ctypes.c_char_p * max(1, len(marks)))(*[m.encode() for m in marks])
        opts = Options(threads, int(integer_counts), names if marks else None, len(marks))
        reader = ctypes.c_void_p()
        err = ctypes.create_string_buffer(4096)
        st = self.c.chromaformer_reader_open(
            str(path).encode(), bins, 0, ctypes.byref(opts), ctypes.byref(reader), err, 4096
        )
        if st:
            raise CError(st, err.value.decode(errors="replace"))
        try:
            while True:
                b = Batch()
                st = self.c.chromaformer_reader_next(reader, genes, ctypes.byref(b), err, 4096)
                if st:
                    raise CError(st, err.value.decode(errors="replace"))
                if b.genes == 0:
                    return
                n = b.genes * b.bins * b.marks
                counts = np.ctypeslib.as_array(b.counts, (n,)).reshape(b.genes, b.bins, b.marks)
                labels = np.ctypeslib.as_array(b.labels, (b.genes,))
                ids = [b.gene_ids[i].decode() for i in range(b.genes)]
                yield counts.copy(), labels.copy(), ids
        finally:
            self.c.chromaformer_reader_close(reader)

    def write_scores(
        self, path: Path, ids: Sequence[str], values: np.ndarray, labels: Optional[np.ndarray]
    ) -> None:
        n = len(ids)
        arr = (ctypes.c_char_p * max(1, n))(*[i.encode() for i in ids])
        vals = np.ascontiguousarray(values, np.float32)
        lab = None if labels is None else np.ascontiguousarray(labels, np.uint8)
        err = ctypes.create_string_buffer(4096)
        st = self.c.chromaformer_write_scores(
            str(path).encode(),
            arr,
            vals.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            None if lab is None else lab.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
            n,
            err,
            4096,
        )
        if st:
            raise CError(st, err.value.decode(errors="replace"))
