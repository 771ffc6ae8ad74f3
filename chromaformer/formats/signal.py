"""Signal tracks (bigWig, bedGraph) read as exact per-base values and per-bin sums.

Both kinds answer the same two questions for a chromosome of the track:
``values(chrom, start, end)`` (one float per base, 0 where the track has no data or
the range runs off the chromosome) and ``bin_sums(chrom, lows, bins, bin_size)``
(the sum of those values over ``bins`` consecutive bins from each ``lows[i]``).
bigWig goes through pyBigWig's base-level reader; bedGraph is read once into
sorted interval arrays and answered from a running integral, so neither kind
approximates with zoom levels.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from ..errors import FormatError
from .reads import BamTrack
from .text import data_lines, open_text, sniff_binary
from .track import Track, c_stderr_silenced

BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")


class BigWigTrack(Track):
    """A bigWig file; the pyBigWig handle is reopened in each process that uses it."""

    kind = "bigWig"

    def __init__(self, mark: str, path: str) -> None:
        super().__init__(mark, path)
        self._bw = None
        self._pid = -1
        self._chroms = dict(self._handle().chroms())

    def _handle(self):
        if self._bw is None or self._pid != os.getpid():
            import pyBigWig

            try:
                with c_stderr_silenced():  # libBigWig prints its own lines on bad files
                    bw = pyBigWig.open(self.path)
            except RuntimeError:  # a cut or corrupt file: pyBigWig says only that it failed
                bw = None
            if bw is None or not bw.isBigWig():
                raise FormatError(f"{self.path}: not a readable bigWig file", self.path)
            self._bw, self._pid = bw, os.getpid()
        return self._bw

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_bw"], state["_pid"] = None, -1
        return state

    def chroms(self) -> dict[str, int]:
        return self._chroms

    def values(self, chrom: str, start: int, end: int) -> np.ndarray:
        out = np.zeros(end - start, dtype=np.float64)
        lo, hi = max(start, 0), min(end, self._chroms[chrom])
        if hi > lo:
            try:
                v = self._handle().values(chrom, lo, hi, numpy=True)
            except RuntimeError as err:  # damaged data blocks behind a sound header
                raise FormatError(
                    f"{self.path}: cannot read {chrom}:{lo}-{hi} of the bigWig ({err})", self.path
                ) from None
            out[lo - start : hi - start] = np.nan_to_num(v, nan=0.0)
        return out


class BedGraphTrack(Track):
    """A bedGraph file (plain or gzip): ``chrom start end value``, 0-based, half-open."""

    kind = "bedGraph"

    def __init__(self, mark: str, path: str) -> None:
        super().__init__(mark, path)
        self._data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._load()

    def _load(self) -> None:
        import pandas as pd

        try:
            df = pd.read_csv(
                self.path,
                sep=r"\s+",
                header=None,
                comment="#",
                skiprows=_header_lines(self.path),
                usecols=[0, 1, 2, 3],
                names=["c", "s", "e", "v"],
                dtype={"c": str, "s": np.int64, "e": np.int64, "v": np.float64},
                skip_blank_lines=True,
                engine="c",
            )
        except (ValueError, pd.errors.ParserError) as err:  # UnicodeDecodeError too
            raise _first_bad_bedgraph_line(self.path) or FormatError(
                f"{self.path}: not a bedGraph file ({err})", self.path
            ) from None
        bad = (df["s"] < 0) | (df["e"] <= df["s"]) | ~np.isfinite(df["v"])
        if bad.any():
            raise _first_bad_bedgraph_line(self.path) or FormatError(
                f"{self.path}: bad interval", self.path
            )
        for chrom, part in df.groupby("c", sort=False):
            order = np.argsort(part["s"].to_numpy(), kind="stable")
            s = part["s"].to_numpy()[order]
            e = part["e"].to_numpy()[order]
            v = part["v"].to_numpy()[order]
            if len(s) > 1 and np.any(s[1:] < e[:-1]):
                i = int(np.argmax(s[1:] < e[:-1])) + 1
                raise FormatError(
                    f"{self.path}: intervals overlap on {chrom} at {s[i]} (bedGraph intervals "
                    "must not overlap; merge them with bedtools merge or use a bigWig)",
                    self.path,
                )
            # integral[k] = sum of value * length over the first k intervals
            integral = np.concatenate([[0.0], np.cumsum(v * (e - s))])
            self._data[str(chrom)] = (s, e, v, integral)

    def chroms(self) -> dict[str, int]:
        return {c: int(d[1][-1]) for c, d in self._data.items()}

    def _cumulative(self, chrom: str, x: np.ndarray) -> np.ndarray:
        """The integral of the signal over [0, x) for every x."""
        s, e, v, integral = self._data[chrom]
        k = np.searchsorted(e, x, side="right")  # intervals wholly left of x
        out = integral[k]
        inside = k < len(s)
        kk = np.minimum(k, len(s) - 1)
        part = np.clip(x - s[kk], 0, None) * v[kk]
        return out + np.where(inside, part, 0.0)

    def bin_sums(self, chrom: str, lows: np.ndarray, bins: int, bin_size: int) -> np.ndarray:
        edges = np.asarray(lows, dtype=np.int64)[:, None] + np.arange(bins + 1) * bin_size
        edges = np.clip(edges, 0, None)
        cum = self._cumulative(chrom, edges.ravel()).reshape(edges.shape)
        return np.diff(cum, axis=1)

    def values(self, chrom: str, start: int, end: int) -> np.ndarray:
        s, e, v, _ = self._data[chrom]
        out = np.zeros(end - start, dtype=np.float64)
        i = np.searchsorted(e, start, side="right")
        j = np.searchsorted(s, end, side="left")
        for a, b, val in zip(s[i:j], e[i:j], v[i:j]):
            out[max(a, start) - start : min(b, end) - start] = val
        return out


class RegionsTrack(BedGraphTrack):
    """A BED of regions (a blacklist: ``chrom start end ...``, 0-based, half-open) as a
    track of 1 inside a region and 0 elsewhere; overlapping regions are merged."""

    kind = "regions"

    def _load(self) -> None:
        by_chrom: dict[str, list[tuple[int, int]]] = {}
        for no, line in data_lines(self.path, "a BED of regions (chrom start end)"):
            f = line.split("\t") if "\t" in line else line.split()
            try:
                start, end = int(f[1]), int(f[2])
            except (IndexError, ValueError):
                raise FormatError(
                    f"{self.path}:{no}: expected BED 'chrom start end' with integer start "
                    f"and end, found {line[:60]!r}",
                    self.path,
                    no,
                ) from None
            if start < 0 or end <= start:
                raise FormatError(
                    f"{self.path}:{no}: expected 0 <= start < end (BED is 0-based, "
                    f"half-open), found {start}, {end}",
                    self.path,
                    no,
                )
            by_chrom.setdefault(f[0], []).append((start, end))
        if not by_chrom:
            raise FormatError(f"{self.path}: no regions in the file", self.path)
        for chrom, iv in by_chrom.items():
            iv.sort()
            merged = [list(iv[0])]
            for a, b in iv[1:]:
                if a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            st = np.array([m[0] for m in merged], dtype=np.int64)
            en = np.array([m[1] for m in merged], dtype=np.int64)
            v = np.ones(len(st))
            self._data[chrom] = (st, en, v, np.concatenate([[0.0], np.cumsum(en - st)]))


def _first_bad_bedgraph_line(path: str) -> Optional[FormatError]:
    """Find and describe the first line of ``path`` that is not ``chrom start end value``."""
    for no, line in data_lines(path, "a bedGraph track"):
        f = line.split()
        why = None
        if len(f) < 4:
            why = f"expected 4 fields 'chrom start end value', found {len(f)}"
        else:
            try:
                s, e, val = int(f[1]), int(f[2]), float(f[3])
                if s < 0 or e <= s:
                    why = f"expected 0 <= start < end, found start {s}, end {e}"
                elif not np.isfinite(val):
                    why = f"expected a finite value, found {f[3]!r}"
            except ValueError:
                why = f"expected integer start/end and a numeric value, found {f[1:4]}"
        if why:
            return FormatError(f"{path}:{no}: {why}", path, no)
    return None


def _header_lines(path: str) -> int:
    """How many ``track``/``browser``/``#`` lines open the file."""
    n = 0
    with open_text(path, "a bedGraph track") as fh:
        for line in fh:
            if not line.startswith(("track", "browser", "#")):
                break
            n += 1
    return n


def open_track(mark: str, path: str, reads: Optional[Any] = None) -> Track:
    """Open ``path`` as a bigWig, a bedGraph or a BAM (its reads counted as ``reads``, a
    :class:`~chromaformer.formats.reads.ReadCounting`, says), by content (not by name)."""
    if not os.path.isfile(path):
        raise FormatError(f"{path}: no such file (the track given for {mark})", path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == BIGWIG_MAGIC:
        return BigWigTrack(mark, path)
    kind = sniff_binary(path)
    if kind is not None and kind.startswith("a BAM"):
        return BamTrack(mark, path, reads)
    if kind is not None:
        hint = (
            ": convert it to BAM (samtools view -b), or make a coverage track from it "
            "(deepTools bamCoverage -of bigwig)"
            if "aligned reads" in kind
            else ""
        )
        raise FormatError(
            f"{path}: {kind}, not a bigWig or bedGraph track (the track given for {mark}){hint}",
            path,
        )
    if head[:2] == b"\x1f\x8b" or _looks_like_text(path):
        return BedGraphTrack(mark, path)
    raise FormatError(
        f"{path}: neither a bigWig nor a bedGraph file (the track given for {mark})", path
    )


def _looks_like_text(path: str) -> bool:
    with open(path, "rb") as fh:
        chunk = fh.read(4096)
    try:
        chunk.decode("ascii")
    except UnicodeDecodeError:
        return False
    return True


def write_bigwig(
    path: str, chrom_sizes: dict[str, int], signal: dict[str, list[tuple[int, np.ndarray]]]
) -> None:
    """Write per-base values as a bigWig: ``signal[chrom]`` holds ``(offset, values)``
    pieces (non-overlapping). Runs of equal values become one interval; zeros are left
    out (no data reads back as 0). For tests, benchmarks and demos."""
    import pyBigWig

    bw = pyBigWig.open(os.fspath(path), "w")
    bw.addHeader(list(chrom_sizes.items()), maxZooms=0)
    for chrom in chrom_sizes:
        starts, ends, vals = [], [], []
        for offset, values in sorted(signal.get(chrom, []), key=lambda p: p[0]):
            v = np.asarray(values, dtype=np.float64)
            if not len(v):
                continue
            cut = np.flatnonzero(np.diff(v)) + 1
            s = np.concatenate([[0], cut])
            e = np.concatenate([cut, [len(v)]])
            keep = v[s] != 0
            starts.append(s[keep] + offset)
            ends.append(e[keep] + offset)
            vals.append(v[s][keep])
        if starts:
            s_all, e_all, v_all = (np.concatenate(x) for x in (starts, ends, vals))
            if len(s_all):
                bw.addEntries(
                    [chrom] * len(s_all), s_all.tolist(), ends=e_all.tolist(), values=v_all.tolist()
                )
    bw.close()
