"""``chromaformer-prepare``: signal tracks + a gene annotation -> model inputs.

Two layouts:

* ``benchmark``: the DeepChrome/AttentiveChrome bin CSV. Each gene gets ``bins`` bins
  of ``bin_size`` bp over TSS +- ``window``. Bins run 5'->3' on the gene's strand, so
  bin 1 is always the most upstream (as deepTools ``computeMatrix reference-point``):
  on + the window is ``[tss - window, tss + window)``, on - it is its mirror image
  ``[tss + 1 - window, tss + 1 + window)`` read backwards. Either way the TSS base is
  the first base of bin ``bins/2 + 1``. Bins beyond a chromosome end hold 0.
* ``chromoformer``: the reference layout of Chromoformer (Lee et al. 2022): a
  ``meta.csv`` and ``npy/{chrom}:{start}-{end}.npy`` arrays ``(marks, length)`` of
  per-base depth (float16) for each promoter (TSS +- 20 kb, genome orientation; the
  model reverses minus-strand genes itself) and each interacting region (pCRE).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .._util.atomic import check_outputs, temporary_folder
from .._util.system import bounded
from ..contract import read_model_info
from ..errors import DataError
from ..formats.annotation import Expression, Gene, read_genes, read_interactions
from ..formats.bincsv import write_bins
from ..formats.reads import BamTrack, ReadCounting
from ..formats.sidecars import (
    expression_sidecar_path,
    layout_record_path,
    tss_sidecar_path,
    write_expression_sidecar,
    write_tss_sidecar,
)
from ..formats.signal import RegionsTrack, open_track
from ..formats.track import Track, chrom_aliases
from ..layout import (
    BENCHMARK_BINS,
    BENCHMARK_MARKS,
    BIN_SIZE,
    CHROMOFORMER_HALF_WINDOW,
    CHROMOFORMER_I_MAX,
    CHROMOFORMER_MARKS,
    CHROMOFORMER_MAX_REGION,
    assign_folds,
    name_problem,
    parse_region,
    promoter_region,
    region_name,
    window_of,
)

FLOAT16_MAX = float(np.finfo(np.float16).max)
GENES_PER_TASK = 256
#: bp each side of the TSS by default: the benchmark's 100 bins of 100 bp
DEFAULT_WINDOW = window_of(BENCHMARK_BINS, BIN_SIZE)


@dataclass
class PrepareResult:
    output: str
    layout: str
    marks: tuple[str, ...]
    genes_in: int
    genes_written: int
    expressed: Optional[int]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    regions: int = 0  # chromoformer layout: pCRE files written


def order_marks(
    given: Sequence[str], layout: str, model_marks: Optional[Sequence[str]] = None
) -> tuple[str, ...]:
    """The output's mark order: the model's, else the layout's canonical order, then the rest."""
    if model_marks is not None:
        missing = [m for m in model_marks if m not in given]
        extra = [m for m in given if m not in model_marks]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"no --mark for {', '.join(missing)}")
            if extra:
                parts.append(f"{', '.join(extra)} not among its marks")
            raise DataError(f"the model expects marks {','.join(model_marks)}: {'; '.join(parts)}")
        return tuple(model_marks)
    canon = BENCHMARK_MARKS if layout == "benchmark" else CHROMOFORMER_MARKS
    return tuple([m for m in canon if m in given] + [m for m in given if m not in canon])


# Worker side: the tracks are module state of each worker process (set once by the
# initializer), so tasks carry only coordinates.
_TRACKS: list[Track] = []


def _init_worker(tracks: list[Track]) -> None:
    global _TRACKS
    _TRACKS = tracks


def _bin_task(task: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Sum every track over ``bins`` bins from each low edge; rows reversed on -."""
    idx, names, lows, minus, bins, bin_size = task
    out = np.zeros((len(idx), bins, len(_TRACKS)), dtype=np.float64)
    for m, (track, name) in enumerate(zip(_TRACKS, names)):
        if name is not None:
            out[:, :, m] = track.bin_sums(name, lows, bins, bin_size)
    out[minus] = out[minus, ::-1, :]
    return idx, out


def _region_task(task: tuple) -> int:
    """Write per-base arrays ``(marks, end - start)`` as float16 .npy files."""
    folder, regions = task
    for fname, names, start, end in regions:
        arr = np.zeros((len(_TRACKS), end - start), dtype=np.float64)
        for m, (track, name) in enumerate(zip(_TRACKS, names)):
            if name is not None:
                arr[m] = track.values(name, start, end)
        np.save(os.path.join(folder, fname), np.minimum(arr, FLOAT16_MAX).astype(np.float16))
    return len(regions)


def _run(
    tasks: list, fn: Callable, tracks: list[Track], jobs: int, done: Callable[[Any], None]
) -> None:
    jobs = bounded(jobs) or 1
    if jobs <= 1 or len(tasks) <= 1:
        _init_worker(tracks)
        for t in tasks:
            done(fn(t))
        return
    # spawn, not fork: a fork of a process that runs threads (torch, BLAS, a host
    # application) can inherit a held lock and hang forever
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(tracks,)
    ) as pool:
        for r in pool.map(fn, tasks):
            done(r)


def _resolve(
    genes: list[Gene], tracks: list[Track], missing: str, warnings: list[str]
) -> tuple[list[Gene], dict[str, list[Optional[str]]]]:
    """Each gene chromosome's name in each track; genes on absent contigs per ``missing``."""
    names: dict[str, list[Optional[str]]] = {}
    for chrom in dict.fromkeys(g.chrom for g in genes):
        names[chrom] = [t.resolve(chrom) for t in tracks]
    counts = Counter(g.chrom for g in genes)
    bad_genes = 0
    for m, t in enumerate(tracks):
        absent = {c: counts[c] for c, n in names.items() if n[m] is None}
        if absent:
            listed = ", ".join(
                f"{c} ({n})" for c, n in sorted(absent.items(), key=lambda kv: -kv[1])[:5]
            )
            more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
            what = {"skip": "left out", "zero": "given zero signal for this mark", "error": ""}[
                missing
            ]
            msg = (
                f"{sum(absent.values())} genes on {len(absent)} contigs absent from "
                f"{t.describe()}: {listed}{more}"
            )
            if missing == "error":
                raise DataError(
                    f"{msg} (--missing skip leaves them out, --missing zero "
                    "keeps them with zero signal)"
                )
            warnings.append(f"{msg}; {what}")
    if missing == "skip":
        keep = [g for g in genes if all(n is not None for n in names[g.chrom])]
        bad_genes = len(genes) - len(keep)
        if bad_genes:
            warnings.append(f"{bad_genes} genes left out in all: a contig absent from a track")
        genes = keep
    return genes, names


def _check_build(
    genes: list[Gene], names: dict[str, list[Optional[str]]], tracks: list[Track], path: str
) -> None:
    """Refuse an annotation whose TSSs lie past the tracks' chromosome ends: the two are
    of different genome builds (hg19 and hg38, say), and the bins would be garbage."""
    for m, t in enumerate(tracks):
        sizes = t.chroms()
        past = [
            g
            for g in genes
            if names[g.chrom][m] is not None and g.tss >= sizes[names[g.chrom][m]]  # type: ignore[index]
        ]
        if past:
            g = past[0]
            size = sizes[names[g.chrom][m]]  # type: ignore[index]
            raise DataError(
                f"{len(past)} genes of {path} lie past the end of their chromosome in "
                f"{t.describe()} (e.g. {g.gene_id} at {g.chrom}:{g.tss + 1:,}, and "
                f"{names[g.chrom][m]} is {size:,} bp there): the annotation and the tracks "
                "are of different genome builds (e.g. hg38 genes on hg19 tracks)"
            )


def reads_rule(bams: list[BamTrack]) -> str:
    return bams[0].counting.describe()


def _count_reads(
    tracks: list[Track],
    genes: list[Gene],
    names: dict[str, list[Optional[str]]],
    folder: str,
    jobs: int,
    quiet: bool,
    warnings: list[str],
) -> dict[Track, int]:
    """Count the reads of every BAM track on the chromosomes of ``genes``; the total
    counted per track."""
    from .._util.progress import bar

    totals: dict[Track, int] = {}
    wanted = list(dict.fromkeys(g.chrom for g in genes))
    for m, t in enumerate(tracks):
        if not isinstance(t, BamTrack):
            continue
        chroms = [names[c][m] for c in wanted if names[c][m] is not None]
        with bar(total=len(chroms), quiet=quiet, unit="chrom", desc=f"reads {t.mark}") as b:
            counted = t.count(
                [c for c in chroms if c is not None],
                folder,
                bounded(jobs) or 1,
                on_chrom=lambda c, n: b.update(1),
            )
        totals[t] = sum(counted.values())
        way = "" if t.indexed else " (no index: read in one pass; samtools index makes it parallel)"
        warnings.append(
            f"{t.mark} ({t.path}): {totals[t]:,} reads counted on {len(counted)} chromosomes{way}"
        )
    return totals


def _labels(
    genes: list[Gene],
    expression: Optional[str],
    threshold: str,
    warnings: list[str],
    column: Optional[str] = None,
    cell: Optional[str] = None,
) -> tuple[list[Gene], np.ndarray, Optional[np.ndarray]]:
    if expression is None:
        warnings.append(
            "no --expression: every label is 0, so the file is for scoring, not training "
            "(its layout record says it has no labels)"
        )
        return genes, np.zeros(len(genes), dtype=np.uint8), None
    try:
        expr = Expression(expression, column=column, cell=cell)
    except ValueError as err:
        raise DataError(str(err)) from None
    cut = expr.threshold(threshold)
    values = [expr.get(g.gene_id) for g in genes]
    keep = [i for i, v in enumerate(values) if v is not None]
    if len(keep) < len(genes):
        example = next(g.gene_id for g, v in zip(genes, values) if v is None)
        warnings.append(
            f"{len(genes) - len(keep)} genes have no value in {expression} "
            f"(e.g. {example}) and are left out"
        )
    if not keep:
        raise DataError(
            f"{expression}: none of the genes' ids appear in it (e.g. "
            f"{genes[0].gene_id}); expected the annotation's gene ids"
        )
    vals = np.array([values[i] for i in keep], dtype=np.float64)
    warnings.append(
        f"labels: {expr.described} of {expression} >= {cut:g} ({threshold}) -> "
        f"{int((vals >= cut).sum())} of {len(vals)} genes labelled 1"
    )
    return [genes[i] for i in keep], (vals >= cut).astype(np.uint8), vals


def _tasks_by_chrom(genes: list[Gene], per_task: int) -> list[np.ndarray]:
    by_chrom: dict[str, list[int]] = {}
    for i, g in enumerate(genes):
        by_chrom.setdefault(g.chrom, []).append(i)
    out = []
    for idx in by_chrom.values():
        idx_arr = np.array(sorted(idx, key=lambda i: genes[i].tss), dtype=np.int64)
        out.extend(np.array_split(idx_arr, max(1, -(-len(idx_arr) // per_task))))
    return out


def prepare(
    tracks: Sequence[tuple[str, str]],
    genes_path: str,
    output: str,
    *,
    layout: str = "benchmark",
    model: Optional[str] = None,
    model_marks: Optional[Sequence[str]] = None,
    window: Optional[int] = None,
    bin_size: Optional[int] = None,
    stat: str = "sum",
    read_length: Optional[float] = None,
    expression: Optional[str] = None,
    expression_column: Optional[str] = None,
    cell: Optional[str] = None,
    label_threshold: str = "median",
    interactions: Optional[str] = None,
    missing: str = "skip",
    feature: str = "auto",
    gene_id_attribute: Optional[str] = None,
    biotype: Optional[str] = None,
    reads: Optional[ReadCounting] = None,
    controls: Sequence[tuple[str, str]] = (),
    control_mode: str = "subtract",
    pseudocount: float = 1.0,
    blacklist: Optional[str] = None,
    decimals: Optional[int] = 3,
    jobs: int = 1,
    force: bool = False,
    progress: Optional[Callable[[int], None]] = None,
    on_start: Optional[Callable[[int], None]] = None,
    quiet: bool = True,
) -> PrepareResult:
    """Build model inputs from ``tracks`` (``(mark, path)`` pairs) over the genes of
    ``genes_path``. See the module docstring for the layouts. ``model``: an exported
    ``.onnx`` whose marks, bins and bin size the output must fit (``window`` and
    ``bin_size`` default to the model's, else to TSS +- 5 kb in 100 bp bins).

    A track may be a BAM: its reads are counted per bin as ``reads`` says (see
    :mod:`chromaformer.formats.reads`). ``controls`` (``(mark, path)``: an input track,
    any kind) normalise their mark per bin: ``subtract`` (treatment - scaled control) or
    ``log2ratio`` (log2((treatment + pseudocount) / (scaled control + pseudocount))),
    both floored at 0 (the bin CSV holds non-negative counts; depletion reads as 0); a
    BAM control is scaled by the ratio of the reads counted in treatment and control,
    another kind is taken as it is. ``blacklist``: a BED of regions whose bins are set
    to 0 for every mark. The benchmark layout only. ``quiet``: no progress bar for
    counting reads."""
    t0 = time.perf_counter()
    if model is not None:
        model_marks, window, bin_size = model_layout(model, layout, window, bin_size)
    if layout == "chromoformer" and (window is not None or bin_size is not None):
        raise DataError(
            "--window and --bin-size are for the benchmark layout (Chromoformer "
            "arrays are per base over TSS +- 20 kb)"
        )
    if stat == "mean" and read_length is not None:
        raise DataError("--read-length goes with --stat sum (it turns coverage into counts)")
    window = DEFAULT_WINDOW if window is None else window
    bin_size = BIN_SIZE if bin_size is None else bin_size
    if layout not in ("benchmark", "chromoformer"):
        raise ValueError(f"layout must be benchmark or chromoformer, got {layout!r}")
    if stat not in ("sum", "mean"):
        raise ValueError(f"stat must be sum or mean, got {stat!r}")
    if missing not in ("skip", "zero", "error"):
        raise ValueError(f"missing must be skip, zero or error, got {missing!r}")
    marks = [m for m, _ in tracks]
    if not marks:
        raise DataError("no tracks: give at least one mark (--mark NAME=FILE)")
    for what, path in (
        ("the genes", genes_path),
        ("--expression", expression),
        ("--interactions", interactions),
        ("--blacklist", blacklist),
    ):
        if path is not None and not os.path.isfile(path):
            raise DataError(f"{path}: no such file ({what})")
    for mark in marks:
        why = name_problem(mark, "mark name")
        if why:
            raise DataError(f"--mark {mark!r}: {why}")
    dup = [m for m, n in Counter(marks).items() if n > 1]
    if dup:
        raise DataError(f"--mark {dup[0]} is given twice")
    order = order_marks(marks, layout, model_marks)
    path_of = dict(tracks)
    if layout == "benchmark":
        if window <= 0 or bin_size <= 0 or (2 * window) % bin_size:
            raise DataError(
                f"--window {window} and --bin-size {bin_size}: the window "
                "(2 x window bp) must be a whole number of bins"
            )
        if interactions is not None:
            raise DataError("--interactions is for --layout chromoformer")
    out_path = Path(output)
    inputs = [genes_path, expression, interactions, model, blacklist]
    inputs += [*(p for _, p in tracks), *(p for _, p in controls)]
    if layout == "benchmark":
        check_outputs(
            [
                output,
                layout_record_path(output),
                tss_sidecar_path(output),
                expression_sidecar_path(output),
            ],
            inputs,
        )
    elif out_path.exists() and not out_path.is_dir():
        raise DataError(f"{output}: exists and is not a folder (the Chromoformer layout)")
    if layout == "chromoformer" and out_path.exists() and any(out_path.iterdir()) and not force:
        raise DataError(f"{output}: exists and is not empty (pass --force to replace it)")
    if control_mode not in ("subtract", "log2ratio"):
        raise ValueError(f"control_mode must be subtract or log2ratio, got {control_mode!r}")
    if pseudocount <= 0:
        raise DataError(f"--pseudocount must be > 0, got {pseudocount:g}")
    control_of = dict(controls)
    if len(control_of) < len(controls):
        raise DataError("--control names a mark twice")
    for cm in control_of:
        if cm not in path_of:
            raise DataError(f"--control {cm}: no --mark {cm} to normalise")
    opened = [open_track(m, path_of[m], reads) for m in order]
    ctrl_marks = [m for m in order if m in control_of]
    ctrl_tracks = [open_track(f"{m} control", control_of[m], reads) for m in ctrl_marks]
    bams = [t for t in opened + ctrl_tracks if isinstance(t, BamTrack)]
    if layout == "chromoformer" and (bams or ctrl_tracks or blacklist):
        raise DataError(
            "BAM input, --control and --blacklist are for the benchmark layout (the "
            "Chromoformer layout reads per-base depth: make a depth bigWig with deepTools "
            "bamCoverage for it)"
        )
    if read_length is not None and bams:
        raise DataError(
            f"--read-length turns coverage into counts; the reads of {bams[0].path} are "
            "counted already"
        )
    gene_set = read_genes(genes_path, feature, id_attribute=gene_id_attribute, biotype=biotype)
    warnings: list[str] = []
    if gene_set.filtered:
        warnings.append(
            f"{gene_set.filtered} records of {genes_path} are not {biotype} and are left out"
        )
    if gene_set.duplicates:
        warnings.append(
            f"{gene_set.duplicates} repeated gene ids in {genes_path} (e.g. "
            f"{gene_set.duplicate_example}): the first record of each is used"
        )
    if gene_set.unstranded:
        warnings.append(
            f"{gene_set.unstranded} genes of {genes_path} have strand '.' (unknown): read "
            "as +, their bins in genomic order (lower coordinates first), not flipped"
        )
    genes, names = _resolve(gene_set.genes, opened + ctrl_tracks, missing, warnings)
    _check_build(genes, names, opened + ctrl_tracks, genes_path)
    if expression is None and (expression_column is not None or cell is not None):
        raise DataError("--expression-column and --cell name a column of --expression")
    genes, labels, values = _labels(
        genes, expression, label_threshold, warnings, expression_column, cell
    )
    if not genes:
        raise DataError(f"{genes_path}: no gene is left to prepare")
    if on_start is not None:
        on_start(len(genes))
    common: dict[str, Any] = dict(
        output=output,
        layout=layout,
        marks=order,
        genes_in=len(gene_set.genes),
        genes_written=len(genes),
        expressed=None if values is None else int(labels.sum()),
        warnings=warnings,
    )
    if layout == "benchmark":
        every: list[Track] = opened + ctrl_tracks
        all_names = names
        if blacklist is not None:
            mask_track = RegionsTrack("blacklist", blacklist)
            every = every + [mask_track]
            all_names = {c: [*n, mask_track.resolve(c)] for c, n in names.items()}
        with tempfile.TemporaryDirectory(prefix="chromaformer-reads-") as tmp:
            totals = _count_reads(opened + ctrl_tracks, genes, names, tmp, jobs, quiet, warnings)
            counts = _benchmark(genes, all_names, every, window, bin_size, jobs, progress)
        n, k = len(opened), len(ctrl_tracks)
        if np.any(counts[:, :, : n + k] < 0):
            m = int(np.argwhere(counts[:, :, : n + k] < 0)[0][2])
            raise DataError(
                f"{every[m].describe()} has negative values (a fold-change or "
                "log-ratio track?): expected read coverage or signal >= 0"
            )
        if stat == "mean":
            counts[:, :, : n + k] /= bin_size
        elif read_length:
            counts[:, :, : n + k] /= read_length
        masked = counts[:, :, n + k] > 0 if blacklist is not None else None
        counts, control = counts[:, :, :n], counts[:, :, n : n + k]
        for j, mark in enumerate(ctrl_marks):
            i = order.index(mark)
            treat_t, ctrl_t = opened[i], ctrl_tracks[j]
            scale = 1.0
            if treat_t in totals and ctrl_t in totals and totals[ctrl_t] > 0:
                scale = totals[treat_t] / totals[ctrl_t]
            c = control[:, :, j] * scale
            x = counts[:, :, i]
            if control_mode == "subtract":
                counts[:, :, i] = np.maximum(x - c, 0)
            else:
                counts[:, :, i] = np.maximum(np.log2((x + pseudocount) / (c + pseudocount)), 0)
            warnings.append(
                f"{mark}: {control_mode} of its control {ctrl_t.path} (scaled by {scale:.4g}"
                f"{', the ratio of reads counted' if scale != 1.0 else ''}), floored at 0"
            )
        if masked is not None:
            counts[masked] = 0
            warnings.append(
                f"{int(masked.sum()):,} of {masked.size:,} bins overlap {blacklist} and are 0"
            )
        if decimals is not None:
            counts = np.round(counts, decimals)
        write_bins(
            output,
            counts.astype(np.float32),
            labels,
            [g.gene_id for g in genes],
            bin_size=bin_size,
            marks=order,
            record={
                "source": "chromaformer-prepare",
                "labels": values is not None,
                "stat": stat,
                **({"reads": reads_rule(bams)} if bams else {}),
                **(
                    {"control": dict(zip(ctrl_marks, (t.path for t in ctrl_tracks)))}
                    | {"control_mode": control_mode, "pseudocount": pseudocount}
                    if ctrl_tracks
                    else {}
                ),
                **({"blacklist": blacklist} if blacklist is not None else {}),
                "unknown_strand": "read as + (bins in genomic order)",
                "orientation": (
                    "genomic" if 2 * gene_set.unstranded > len(gene_set.genes) else "transcript"
                ),
                "chrom_sizes": _chrom_sizes(genes, names, opened),
                "tss": Path(tss_sidecar_path(output)).name,
            },
        )
        write_tss_sidecar(output, genes)
        if values is not None:  # the regression target, beside the 0/1 labels
            write_expression_sidecar(output, [g.gene_id for g in genes], values)
        return PrepareResult(seconds=time.perf_counter() - t0, **common)
    regions = _chromoformer(
        genes,
        names,
        opened,
        out_path,
        labels,
        values,
        interactions,
        jobs,
        force,
        progress,
        warnings,
    )
    return PrepareResult(seconds=time.perf_counter() - t0, regions=regions, **common)


def _chrom_sizes(
    genes: list[Gene], names: dict[str, list[Optional[str]]], tracks: list[Track]
) -> dict[str, int]:
    """The size of each chromosome with genes, as the tracks give it (the largest)."""
    sizes: dict[str, int] = {}
    for chrom in dict.fromkeys(g.chrom for g in genes):
        known = [
            t.chroms()[n] for t, n in zip(tracks, names[chrom]) if n is not None and n in t.chroms()
        ]
        if known:
            sizes[chrom] = int(max(known))
    return sizes


def _benchmark(
    genes: list[Gene],
    names: dict[str, list[Optional[str]]],
    tracks: list[Track],
    window: int,
    bin_size: int,
    jobs: int,
    progress: Optional[Callable[[int], None]],
) -> np.ndarray:
    bins = 2 * window // bin_size
    tss = np.array([g.tss for g in genes], dtype=np.int64)
    minus = np.array([g.strand == "-" for g in genes])
    lows = tss - window + minus  # the - window is the + window mirrored about the TSS base
    tasks = [
        (idx, names[genes[idx[0]].chrom], lows[idx], minus[idx], bins, bin_size)
        for idx in _tasks_by_chrom(genes, GENES_PER_TASK)
    ]
    counts = np.zeros((len(genes), bins, len(tracks)), dtype=np.float64)

    def done(result) -> None:
        idx, block = result
        counts[idx] = block
        if progress is not None:
            progress(len(idx))

    _run(tasks, _bin_task, tracks, jobs, done)
    return counts


def _chromoformer(
    genes: list[Gene],
    names: dict[str, list[Optional[str]]],
    tracks: list[Track],
    out_path: Path,
    labels: np.ndarray,
    values: Optional[np.ndarray],
    interactions: Optional[str],
    jobs: int,
    force: bool,
    progress: Optional[Callable[[int], None]],
    warnings: list[str],
) -> int:
    import pandas as pd

    contacts = read_interactions(interactions) if interactions else {}
    if interactions is None:
        warnings.append("no --interactions: genes get no pCREs (promoter only)")
    half = CHROMOFORMER_HALF_WINDOW
    too_long = trans = 0
    rows = []
    region_files: dict[str, tuple[str, list[Optional[str]], int, int]] = {}
    promoters: set[str] = set()
    folds = assign_folds(g.chrom for g in genes)
    for i, g in enumerate(genes):
        prom = promoter_region(g.chrom, g.tss)
        promoters.add(prom)
        region_files[prom] = (prom + ".npy", names[g.chrom], g.tss - half, g.tss + half)
        partners: dict[str, float] = {}
        for chrom, start, end, score in contacts.get(g.gene_id, ()):
            if chrom not in chrom_aliases(g.chrom):
                trans += 1
                continue
            if end - start > CHROMOFORMER_MAX_REGION:
                too_long += 1
                continue
            key = region_name(g.chrom, start, end)
            partners[key] = max(score, partners.get(key, -np.inf))
        best = sorted(partners.items(), key=lambda kv: -kv[1])[:CHROMOFORMER_I_MAX]
        for key, _ in best:
            _, start, end = parse_region(key)
            region_files.setdefault(key, (key + ".npy", names[g.chrom], start, end))
        rows.append(
            {
                "gene_id": g.gene_id,
                "expression": np.nan if values is None else values[i],
                "label": int(labels[i]),
                "chrom": g.chrom,
                "start": g.tss,
                "end": g.tss + 1,
                "strand": g.strand,
                "split": folds[g.chrom],
                "neighbors": ";".join(k for k, _ in best) or np.nan,
                "scores": ";".join(f"{s:g}" for _, s in best) or np.nan,
            }
        )
    if trans:
        warnings.append(f"{trans} contacts with another chromosome ignored")
    if too_long:
        warnings.append(
            f"{too_long} contacts with regions over {CHROMOFORMER_MAX_REGION} bp "
            "ignored (as the reference model does)"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # .NAME.cf-HOST-PID-RANDOM: one a killed run left is removed by the next run here
    with temporary_folder(out_path.parent, f".{out_path.name}.") as tmp:
        (tmp / "npy").mkdir(parents=True)
        items = list(region_files.values())
        step = max(1, min(64, len(items) // max(1, 8 * jobs)))
        tasks = [(str(tmp / "npy"), items[k : k + step]) for k in range(0, len(items), step)]
        genes_per_region = len(genes) / max(1, len(items))
        written = [0.0]

        def done(n: int) -> None:
            if progress is not None:
                before = int(written[0])
                written[0] += n * genes_per_region
                progress(int(written[0]) - before)

        _run(tasks, _region_task, tracks, jobs, done)
        meta = pd.DataFrame(
            rows,
            columns=[
                "gene_id",
                "expression",
                "label",
                "chrom",
                "start",
                "end",
                "strand",
                "split",
                "neighbors",
                "scores",
            ],
        )
        meta.to_csv(tmp / "meta.csv", index=False)
        if out_path.exists():  # the old folder goes only once the new one is whole
            with temporary_folder(out_path.parent, f".{out_path.name}.old-") as old:
                os.replace(out_path, old / "previous")
                os.replace(tmp, out_path)
        else:
            os.replace(tmp, out_path)
    return len(set(region_files) - promoters)


def model_layout(
    model: str, layout: str, window: Optional[int], bin_size: Optional[int]
) -> tuple[tuple[str, ...], Optional[int], Optional[int]]:
    """The marks, window and bin size a model expects, checked against the options."""
    info = read_model_info(model)
    if (info.family == "chromoformer") != (layout == "chromoformer"):
        raise DataError(f"{model}: a {info.architecture} model does not read the {layout} layout")
    if info.family == "chromoformer":
        return info.marks, window, bin_size
    if (info.bins * info.bin_size) % 2:  # 21 bins of 10 kb centre: TSS +- 105 kb
        raise DataError(f"{model}: {info.bins} bins of {info.bin_size} bp cannot centre on a TSS")
    m_window = window_of(info.bins, info.bin_size)
    for opt, given, want in (
        ("--window", window, m_window),
        ("--bin-size", bin_size, info.bin_size),
    ):
        if given is not None and given != want:
            raise DataError(
                f"{opt} {given} contradicts {model}, which expects {want} "
                f"({info.bins} bins of {info.bin_size} bp)"
            )
    return info.marks, m_window, info.bin_size
