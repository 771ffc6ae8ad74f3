"""Aligned reads (BAM, through pysam) as a signal track of read counts.

The benchmark's data count reads per bin (AttentiveChrome: ``bedtools multicov`` over
the bins): each read counts once, in the bin that holds its anchor, which is

* its 5' end for a single-end read (``reference_start`` on +, ``reference_end - 1`` on -);
* the centre of the fragment for a properly paired read (counted once, from the leftmost
  mate: ``reference_start + template_length // 2``; the other mate is not counted).

Reads are filtered by mapping quality (``min_mapq``, default 10) and by their flags:
unmapped, QC-failed, secondary and supplementary alignments are never counted;
duplicates are dropped unless ``keep_duplicates``. The anchors of each chromosome are
counted once, in parallel over chromosomes (an indexed BAM), or in one pass through the
file (no index), and kept as sorted int32 arrays in a folder the track then reads.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import FormatError
from .track import Track, c_stderr_silenced

_UNMAPPED, _QCFAIL, _SECONDARY, _SUPPLEMENTARY, _DUPLICATE = 0x4, 0x200, 0x100, 0x800, 0x400
_PAIRED, _PROPER = 0x1, 0x2


@dataclass(frozen=True)
class ReadCounting:
    """How reads of a BAM become counts (see the module docstring)."""

    min_mapq: int = 10
    keep_duplicates: bool = False
    fragment_centre: bool = True  # proper pairs at their fragment's centre, else 5' ends

    def describe(self) -> str:
        dup = "duplicates kept" if self.keep_duplicates else "duplicates dropped"
        where = (
            "proper pairs at the fragment centre, other reads at their 5' end"
            if self.fragment_centre
            else "every read at its 5' end"
        )
        return f"MAPQ >= {self.min_mapq}, {dup}, no secondary/supplementary; {where}"


def _skip_mask(c: ReadCounting) -> int:
    mask = _UNMAPPED | _QCFAIL | _SECONDARY | _SUPPLEMENTARY
    return mask if c.keep_duplicates else mask | _DUPLICATE


def _anchor(read, centre: bool) -> Optional[int]:
    """The read's counted position, or None when its mate counts for the pair."""
    flag = read.flag
    if centre and flag & _PAIRED and flag & _PROPER:
        tlen = read.template_length
        if tlen > 0:
            return read.reference_start + tlen // 2
        if tlen < 0:
            return None  # the rightmost mate: its pair is counted from the other
        # tlen 0: mates on one base, or unknown: count the first mate's start
        return read.reference_start if flag & 0x40 else None
    if flag & 0x10:  # reverse strand: the 5' end is the last aligned base
        return read.reference_end - 1
    return read.reference_start


def _open(path: str):
    import pysam

    try:
        with c_stderr_silenced():  # htslib's own warnings: the error below says it all
            return pysam.AlignmentFile(path, "rb")
    except (ValueError, OSError) as err:
        raise FormatError(f"{path}: not a readable BAM file ({err})", path) from None


def _count_chrom(args: tuple[str, str, ReadCounting, str]) -> tuple[str, int]:
    """Anchors of one chromosome (an indexed BAM), saved as ``folder/<n>.npy``."""
    path, chrom, c, out = args
    skip, centre = _skip_mask(c), c.fragment_centre
    pos = []
    with _open(path) as bam:
        for read in bam.fetch(chrom):
            if read.flag & skip or read.mapping_quality < c.min_mapq:
                continue
            a = _anchor(read, centre)
            if a is not None:
                pos.append(a)
    arr = np.sort(np.asarray(pos, dtype=np.int32))
    np.save(out, arr)
    return chrom, len(arr)


class BamTrack(Track):
    """Read counts of a BAM file: ``values`` per base (reads anchored there) and
    ``bin_sums`` per bin (reads anchored in the bin), once :meth:`count` has run."""

    kind = "BAM"

    def __init__(self, mark: str, path: str, counting: Optional[ReadCounting] = None) -> None:
        super().__init__(mark, path)
        self.counting = counting or ReadCounting()
        with _open(path) as bam:
            self._sizes = dict(zip(bam.references, (int(n) for n in bam.lengths)))
            self.indexed = bam.has_index()
            if not self._sizes:
                raise FormatError(f"{path}: a BAM without reference sequences in its header", path)
        self._files: dict[str, str] = {}
        self._cache: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}  # workers map the arrays themselves
        return state

    def chroms(self) -> dict[str, int]:
        return self._sizes

    def describe(self) -> str:
        return f"{self.mark} ({self.path}, reads counted: {self.counting.describe()})"

    def count(
        self,
        chroms: Sequence[str],
        folder: str,
        jobs: int = 1,
        on_chrom: Optional[Callable[[str, int], None]] = None,
    ) -> dict[str, int]:
        """Count the anchors of ``chroms`` (this BAM's names) into ``folder``; returns
        the reads counted per chromosome. Parallel over chromosomes when indexed."""
        chroms = list(dict.fromkeys(chroms))
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, f"{self.kind}-{uuid.uuid4().hex[:12]}")
        outs = {c: f"{stem}-{i}.npy" for i, c in enumerate(chroms)}
        counted: dict[str, int] = {}
        if not self.indexed:
            counted = self._count_one_pass(outs, on_chrom)
        else:
            tasks = [(self.path, c, self.counting, outs[c]) for c in chroms]
            if jobs <= 1 or len(tasks) <= 1:
                results = map(_count_chrom, tasks)
                for chrom, n in results:
                    counted[chrom] = n
                    if on_chrom:
                        on_chrom(chrom, n)
            else:
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                    for chrom, n in pool.map(_count_chrom, tasks):
                        counted[chrom] = n
                        if on_chrom:
                            on_chrom(chrom, n)
        self._files.update(outs)
        return counted

    def _count_one_pass(
        self, outs: dict[str, str], on_chrom: Optional[Callable[[str, int], None]]
    ) -> dict[str, int]:
        c = self.counting
        skip, centre = _skip_mask(c), c.fragment_centre
        pos: dict[str, list[int]] = {k: [] for k in outs}
        with _open(self.path) as bam:
            for read in bam.fetch(until_eof=True):
                if read.flag & skip or read.mapping_quality < c.min_mapq:
                    continue
                chrom = read.reference_name
                if chrom not in pos:
                    continue
                a = _anchor(read, centre)
                if a is not None:
                    pos[chrom].append(a)
        counted = {}
        for chrom, out in outs.items():
            arr = np.sort(np.asarray(pos.pop(chrom), dtype=np.int32))
            np.save(out, arr)
            counted[chrom] = len(arr)
            if on_chrom:
                on_chrom(chrom, len(arr))
        return counted

    def _anchors(self, chrom: str) -> np.ndarray:
        if chrom not in self._cache:
            if chrom not in self._files:
                raise RuntimeError(f"{self.path}: reads of {chrom} not counted (call count())")
            self._cache[chrom] = np.load(self._files[chrom], mmap_mode="r")
        return self._cache[chrom]

    def bin_sums(self, chrom: str, lows: np.ndarray, bins: int, bin_size: int) -> np.ndarray:
        a = self._anchors(chrom)
        edges = np.asarray(lows, dtype=np.int64)[:, None] + np.arange(bins + 1) * bin_size
        at = np.searchsorted(a, edges, side="left")
        return np.diff(at, axis=1).astype(np.float64)

    def values(self, chrom: str, start: int, end: int) -> np.ndarray:
        a = self._anchors(chrom)
        lo, hi = np.searchsorted(a, [start, end], side="left")
        return np.bincount(np.asarray(a[lo:hi]) - start, minlength=end - start).astype(np.float64)
