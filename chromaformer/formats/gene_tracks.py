"""Per-gene values (scores, attributions, what-if effects) as genome-browser tracks:
BED, bedGraph and bigWig, placed at each gene's TSS.

Where genes are: a BED or GTF given by the user (read as ``chromaformer-prepare`` reads
it), or the TSS sidecar ``<name>.tss.bed`` that ``chromaformer-prepare`` writes beside
each bin CSV (BED6, one base per gene: its TSS), with the chromosome sizes of the
tracks in the layout record.

* **BED** (``.bed``): BED6, one interval per gene covering the model's window around the
  TSS (intervals of neighbouring genes may overlap, as BED allows); the name is the gene
  id, the score 0-1000 (a probability x 1000; other values scaled from their range).
* **bedGraph** (``.bedGraph``, ``.bedgraph``, ``.bg``) and **bigWig** (``.bw``,
  ``.bigWig``): the exact value over ``half_width`` bases each side of the TSS; where
  two genes' intervals would overlap they are cut at the midpoint between their TSSs,
  and genes sharing a TSS share one interval with their mean. Sorted by chromosome name
  then start (``LC_ALL=C sort -k1,1 -k2,2n``, what ``bedGraphToBigWig`` needs), non-overlapping,
  and within the chromosome sizes when they are known.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .._util.atomic import atomic_path
from .._util.system import PathLike
from ..contract import ModelInfo
from ..errors import DataError
from .sidecars import layout_record_path, read_layout_record, tss_sidecar_path

#: The ``--tracks`` formats of explain and perturb (each is also the file extension).
TRACK_FORMATS = ("bed", "bedGraph", "bw")
BED_SUFFIXES = (".bed",)
BEDGRAPH_SUFFIXES = (".bedgraph", ".bg")
BIGWIG_SUFFIXES = (".bw", ".bigwig")


@dataclass
class GenePositions:
    """Where each gene's TSS is, and the chromosome sizes when known."""

    chrom: dict[str, str]
    tss: dict[str, int]
    strand: dict[str, str]
    chrom_sizes: Optional[dict[str, int]]
    source: str


def gene_positions(csv_path: Optional[PathLike], genes: Optional[PathLike] = None) -> GenePositions:
    """Positions from ``genes`` (BED/GTF) or else the TSS sidecar of ``csv_path``."""
    from .annotation import read_genes

    csv = None if csv_path is None else os.fspath(csv_path)
    if genes is not None:
        path = os.fspath(genes)
    elif csv is not None and os.path.isfile(tss_sidecar_path(csv)):
        path = tss_sidecar_path(csv)
    else:
        raise DataError(
            f"{csv_path}: no gene positions for tracks: give --genes-bed (the BED/GTF the file was "
            f"prepared from), or prepare it with chromaformer-prepare, which writes "
            f"{Path(tss_sidecar_path(csv or 'x.csv')).name} beside it"
        )
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such gene annotation (expected BED6 or GTF)")
    gs = read_genes(path)
    sizes = None
    if csv_path is not None:
        record = read_layout_record(csv_path)
        if record and record.get("chrom_sizes"):
            sizes = {str(k): int(v) for k, v in record["chrom_sizes"].items()}
            for g in gs.genes:
                if g.chrom in sizes and g.tss >= sizes[g.chrom]:
                    raise DataError(
                        f"{layout_record_path(os.fspath(csv_path))}: chrom_sizes: "
                        f"{g.chrom} is {sizes[g.chrom]:,} bp, but gene {g.gene_id}'s TSS is at "
                        f"{g.tss:,} ({path}): expected the lengths of the tracks' chromosomes"
                    )
    return GenePositions(
        {g.gene_id: g.chrom for g in gs.genes},
        {g.gene_id: g.tss for g in gs.genes},
        {g.gene_id: g.strand for g in gs.genes},
        sizes,
        path,
    )


def check_track_format(tracks: str) -> None:
    """Raise :class:`DataError` unless ``tracks`` is one of :data:`TRACK_FORMATS`."""
    if tracks not in TRACK_FORMATS:
        raise DataError(f"--tracks must be one of {', '.join(TRACK_FORMATS)}, got {tracks!r}")


def tss_half_width(info: ModelInfo) -> int:
    """Bases each side of the TSS that a gene's bedGraph/bigWig interval covers: half a
    bin for bin models, 50 for Chromoformer."""
    return max(info.bin_size // 2, 1) if info.family == "bins" else 50


def track_kind(path: PathLike) -> str:
    """``bed``, ``bedgraph`` or ``bigwig``, from the file name."""
    name = os.fspath(path).lower()
    for kind, suffixes in (
        ("bed", BED_SUFFIXES),
        ("bedgraph", BEDGRAPH_SUFFIXES),
        ("bigwig", BIGWIG_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return kind
    raise DataError(
        f"{path}: a track is .bed, .bedGraph (.bg) or .bw (.bigWig); the name says which"
    )


def _placed(
    gene_ids: Sequence[str], values: np.ndarray, pos: GenePositions
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    missing = [g for g in gene_ids if g not in pos.tss]
    if missing:
        raise DataError(
            f"{pos.source}: no position for {len(missing)} of {len(gene_ids)} genes "
            f"(first: {missing[0]}); expected every scored gene in the annotation"
        )
    chroms = [pos.chrom[g] for g in gene_ids]
    tss = np.array([pos.tss[g] for g in gene_ids], dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(vals)
    order = sorted(np.flatnonzero(keep), key=lambda i: (chroms[i], tss[i]))
    idx = np.array(order, dtype=np.int64)
    return [chroms[i] for i in idx], tss[idx], vals[idx], idx


def intervals(
    gene_ids: Sequence[str],
    values: np.ndarray,
    pos: GenePositions,
    half_width: int,
) -> list[tuple[str, int, int, float]]:
    """bedGraph intervals: sorted, non-overlapping, within the chromosome sizes."""
    chroms, tss, vals, _ = _placed(gene_ids, values, pos)
    out: list[tuple[str, int, int, float]] = []
    k = 0
    while k < len(chroms):
        j = k
        while j < len(chroms) and chroms[j] == chroms[k]:
            j += 1
        c = chroms[k]
        # genes sharing a TSS: one interval, their mean
        uniq, first = np.unique(tss[k:j], return_index=True)
        bounds = np.append(first, j - k)
        means = np.array([vals[k + a : k + b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
        starts = np.maximum(uniq - half_width, 0)
        ends = uniq + half_width + 1
        mid = (uniq[:-1] + uniq[1:] + 1) // 2  # cut overlaps at the midpoint of the TSSs
        starts[1:] = np.maximum(starts[1:], np.minimum(mid, ends[:-1]))
        ends[:-1] = np.minimum(ends[:-1], starts[1:])
        if pos.chrom_sizes is not None and c in pos.chrom_sizes:
            ends = np.minimum(ends, pos.chrom_sizes[c])
        for s, e, v in zip(starts, ends, means):
            if e > s:
                out.append((c, int(s), int(e), float(v)))
        k = j
    return out


def write_track(
    path: PathLike,
    gene_ids: Sequence[str],
    values: np.ndarray,
    pos: GenePositions,
    *,
    half_width: int,
    window: int,
    name: str = "chromaformer",
    probability: bool = False,
) -> Path:
    """Write ``values`` (one per gene) as the track ``path`` names (see the module doc).
    ``window``: the model's bases each side of the TSS (the BED interval);
    ``half_width``: the bedGraph/bigWig interval's. Atomic."""
    kind = track_kind(path)
    target = Path(path)
    if kind == "bed":
        chroms, tss, vals, idx = _placed(gene_ids, values, pos)
        if probability:
            scores = np.clip(np.rint(vals * 1000), 0, 1000)
        else:
            lo, hi = (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 0.0)
            scores = np.rint((vals - lo) / (hi - lo) * 1000) if hi > lo else np.zeros(len(vals))
        with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(f'track name="{name}" useScore=1\n')
            for c, t, s, i in zip(chroms, tss, scores, idx):
                start = max(int(t) - window, 0)
                end = int(t) + window
                if pos.chrom_sizes is not None and c in pos.chrom_sizes:
                    end = min(end, pos.chrom_sizes[c])
                g = gene_ids[i]
                fh.write(f"{c}\t{start}\t{end}\t{g}\t{int(s)}\t{pos.strand[g]}\n")
        return target
    rows = intervals(gene_ids, values, pos, half_width)
    if kind == "bedgraph":
        with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(f'track type=bedGraph name="{name}"\n')
            fh.writelines(f"{c}\t{s}\t{e}\t{v:.7g}\n" for c, s, e, v in rows)
        return target
    import pyBigWig

    sizes: dict[str, int] = {}
    for c, _, e, _ in rows:
        sizes[c] = max(sizes.get(c, 0), e)
    if pos.chrom_sizes is not None:
        sizes.update({c: pos.chrom_sizes[c] for c in sizes if c in pos.chrom_sizes})
    with atomic_path(target) as tmp:
        bw = pyBigWig.open(os.fspath(tmp), "w")
        bw.addHeader(sorted(sizes.items()))
        for c in sorted(sizes):
            part = [r for r in rows if r[0] == c]
            bw.addEntries(
                [c] * len(part),
                [r[1] for r in part],
                ends=[r[2] for r in part],
                values=[r[3] for r in part],
            )
        bw.close()
    return target
