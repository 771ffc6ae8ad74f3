"""deepTools ``computeMatrix reference-point`` output (``matrix.gz``) read as model input.

The file: a first line ``@`` + JSON of the run's parameters (per-sample lists of
``upstream``, ``downstream``, ``body``, ``bin size``, ``ref point``; ``bin avg type``;
``sample_labels`` and ``sample_boundaries``), then one row per region, ``chrom, start,
end, name, score, strand`` and each sample's bins one after the other (5'->3' on the
region's strand: deepTools reverses minus-strand regions, as ``chromaformer-prepare``
does). ``nan`` (no data) reads as 0.

The marks are the sample labels (``computeMatrix --samplesLabel H3K4me3 ...``), the genes
the region names. A bin's value is its sum over the bin, what ``chromaformer-prepare``
computes from the same bigWig: deepTools' default ``--averageTypeBins mean`` times the bin
size, or ``sum`` as it is; other averages (max, median...) are refused. So is a
``scale-regions`` matrix (its bins are not at fixed distances from the TSS).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Optional, Sequence

import numpy as np

from .._util.system import PathLike
from ..errors import FormatError
from .bincsv import Bins
from .text import open_text

#: What ``matrix.gz`` files begin with once inflated.
HEADER_START = "@{"
#: The bin averages that give a bin's sum (``mean`` times the bin size).
SUMMABLE = ("mean", "sum")


def is_matrix(path: PathLike) -> bool:
    """Whether ``path`` is a deepTools matrix (by content: its first line's ``@{``)."""
    import gzip
    import zlib

    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else open(path, "rb") as raw:
            return raw.read(2) == HEADER_START.encode()
    except (OSError, EOFError, zlib.error):  # not readable: the bin CSV reader says why
        return False


def _one(header: dict[str, Any], key: str, path: str) -> Any:
    """A per-sample header entry that must be the same for every sample."""
    if key not in header:
        raise FormatError(f"{path}:1: no {key!r} in the header: not a computeMatrix file", path, 1)
    value = header[key]
    values = value if isinstance(value, list) else [value]
    if not values or any(v != values[0] for v in values):
        raise FormatError(
            f"{path}:1: the samples differ in {key!r} ({values}): one layout for every mark",
            path,
            1,
        )
    return values[0]


def _layout(header: dict[str, Any], path: str) -> tuple[int, int, list[str], str]:
    """(bins per sample, bin size, sample labels, bin average) from the header."""
    if _one(header, "body", path) != 0:
        raise FormatError(
            f"{path}:1: a scale-regions matrix; the models take bins at fixed distances "
            "from the TSS: make it with computeMatrix reference-point",
            path,
            1,
        )
    point = str(_one(header, "ref point", path))
    if point not in ("TSS", "center"):
        raise FormatError(
            f"{path}:1: reference point {point}; the models take bins around the TSS "
            "(computeMatrix reference-point --referencePoint TSS)",
            path,
            1,
        )
    size = int(_one(header, "bin size", path))
    span = sum(
        int(_one(header, k, path))
        for k in ("upstream", "downstream", "unscaled 5 prime", "unscaled 3 prime")
        if k in header
    )
    if size < 1 or span % size or span == 0:
        raise FormatError(
            f"{path}:1: upstream + downstream ({span} bp) is not a whole number of bins of "
            f"{size} bp",
            path,
            1,
        )
    labels = [str(s) for s in header.get("sample_labels", [])]
    bounds = [int(b) for b in header.get("sample_boundaries", [])]
    bins = span // size
    if not labels or bounds != [k * bins for k in range(len(labels) + 1)]:
        raise FormatError(
            f"{path}:1: sample_boundaries {bounds} do not give {bins} bins to each of the "
            f"samples {labels}",
            path,
            1,
        )
    average = str(header.get("bin avg type", "mean"))
    if average not in SUMMABLE:
        raise FormatError(
            f"{path}:1: bins averaged by {average}; the models take each bin's sum: make it "
            "with computeMatrix --averageTypeBins mean (the default) or sum",
            path,
            1,
        )
    return bins, size, labels, average


def read_matrix(path: PathLike, marks: Optional[Sequence[str]] = None) -> Bins:
    """A ``computeMatrix reference-point`` matrix as :class:`Bins` (``labelled`` False,
    ``bin_size`` from the header). ``marks``: the columns wanted, in that order, found
    among the sample labels by name (else the samples in the file's order).

    Raises :class:`FormatError` naming the file, line and what was expected.
    """
    p = os.fspath(path)
    with open_text(p, "a deepTools matrix") as fh:
        first = fh.readline()
        if not first.startswith(HEADER_START):
            raise FormatError(
                f"{p}:1: expected a computeMatrix header ('@{{...}}'), got {first[:40]!r}", p, 1
            )
        try:
            header = json.loads(first[1:])
        except json.JSONDecodeError as err:
            raise FormatError(f"{p}:1: the header is not JSON ({err.msg})", p, 1) from None
        if not isinstance(header, dict):
            raise FormatError(f"{p}:1: the header is not a JSON object", p, 1)
        bins, size, samples, average = _layout(header, p)
        order = _columns(samples, marks, p)
        width = 6 + bins * len(samples)
        ids: list[str] = []
        rows: list[np.ndarray] = []
        seen: dict[str, int] = {}
        for no, line in enumerate(fh, start=2):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != width:
                raise FormatError(
                    f"{p}:{no}: expected {width} tab-separated fields (6 region columns and "
                    f"{bins} bins x {len(samples)} samples), got {len(fields)}",
                    p,
                    no,
                )
            name = fields[3]
            if name in seen:
                raise FormatError(
                    f"{p}:{no}: region {name} again (first on line {seen[name]}): one "
                    "region per gene (computeMatrix -R with one TSS per gene)",
                    p,
                    no,
                )
            seen[name] = no
            ids.append(name)
            rows.append(_values(fields[6:], p, no))
    if not ids:
        raise FormatError(f"{p}: no regions after the header", p)
    flat = np.stack(rows)  # (genes, samples * bins), sample-major
    counts = flat.reshape(len(ids), len(samples), bins).transpose(0, 2, 1)[:, :, order]
    if average == "mean":
        counts = counts * size
    return Bins(
        np.ascontiguousarray(counts, dtype=np.float32),
        np.zeros(len(ids), np.uint8),
        np.array(ids, dtype=str),
        tuple(samples[i] for i in order),
        p,
        labelled=False,
        bin_size=size,
    )


def _columns(samples: list[str], marks: Optional[Sequence[str]], path: str) -> list[int]:
    if marks is None:
        return list(range(len(samples)))
    missing = [m for m in marks if m not in samples]
    if missing:
        raise FormatError(
            f"{path}:1: no sample {missing[0]} among the samples {', '.join(samples)} "
            f"(expected {', '.join(marks)}: computeMatrix --samplesLabel names them)",
            path,
            1,
        )
    return [samples.index(m) for m in marks]


def _values(fields: list[str], path: str, no: int) -> np.ndarray:
    try:
        vals = np.array([float(v) for v in fields], dtype=np.float64)
    except ValueError:
        bad = next(v for v in fields if not _is_float(v))
        raise FormatError(f"{path}:{no}: expected a number, got {bad[:20]!r}", path, no) from None
    vals[np.isnan(vals)] = 0.0  # no data: no signal
    if not np.all(np.isfinite(vals)) or np.any(vals < 0):
        bad_v = next(v for v in vals if not (math.isfinite(v) and v >= 0))
        raise FormatError(
            f"{path}:{no}: value {bad_v}: the models take non-negative signal (not a "
            "log-ratio or subtracted track)",
            path,
            no,
        )
    return vals


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = ["is_matrix", "read_matrix"]
