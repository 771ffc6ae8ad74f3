"""Scoring with an exported model through onnxruntime, for every family (no torch).

The family turns its input (bin CSVs; Chromoformer's layout) into chunks of graph feeds
(:meth:`chromaformer.families.Family.chunks`); here, once: the session, the overlap of
reading the next chunk with scoring this one, the atomic TSV, optional attention maps
(bounded memory), and metrics when the input carries the truth.
"""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .._util.atomic import atomic_path, check_outputs, staged, temporary_folder
from .._util.prefetch import prefetch
from .._util.system import PathLike, bounded, cores
from ..contract import ATTENTION_OUTPUTS, ModelInfo
from ..errors import DataError
from ..families import Chunk, get_family
from ..formats.npz import NpzStream
from ..formats.scores import ScoresWriter, both_classes
from ..metrics import auroc_aupr, import_in_background, regression_metrics
from .session import open_session, thread_plan

#: Genes per onnxruntime call and per streamed chunk, per family (Chromoformer's
#: pairwise attention needs far more memory per gene). On CPU calls run side by side
#: (:func:`~chromaformer.scoring.session.thread_plan`): 512 genes per call scored a 20,000
#: genome as fast as 1,024, in 54% of the peak memory on one thread and 62-68% with two
#: calls side by side.
BATCH_SIZE = {"bins": 512, "chromoformer": 64}
#: The families whose CPU calls run side by side. Not Chromoformer: 2,000 genes on the
#: 2-core machine took 13.2 s and 1.79 GB so, against 11.7 s and 1.07 GB one call at a
#: time (its time goes to reading the per-base arrays, its memory to pairwise attention).
SIDE_BY_SIDE = ("bins",)
CHUNK_GENES = {"bins": 2048, "chromoformer": 256}
#: The same on the CUDA provider, where a bin model's 100 recurrence steps are bound by
#: kernel launches below some thousands of genes per call (a trained hybrid on an H100,
#: 20,000 genes: 104,533 genes/s at batch 1024, 242,700 at 4,096, 353,897 at 16,384).
CUDA_BATCH_SIZE = {"bins": 8192, "chromoformer": 64}
CUDA_CHUNK_GENES = {"bins": 16384, "chromoformer": 256}
#: Machines with at least this many cores import scikit-learn for the metrics in a
#: thread while the genome is scored; smaller ones after it, where every core is busy
#: inferring (see benchmarks/score.py).
BACKGROUND_IMPORT_CORES = 4


class Scorer:
    """An onnxruntime session over one exported model (any family), on cpu or cuda."""

    def __init__(
        self, model: PathLike, *, device: str = "cpu", threads: Optional[int] = None
    ) -> None:
        threads = bounded(threads)  # never more threads than cores
        #: onnxruntime calls side by side (each with the session's intra-op threads)
        self.calls, intra = thread_plan(threads, device)
        self.session, self.info = open_session(model, device, intra)
        if self.calls > 1 and self.info.family not in SIDE_BY_SIDE:
            self.calls = 1  # the family runs one call at a time with every thread
            self.session, self.info = open_session(model, device, threads)
        self.family = get_family(self.info.family)
        self.device = device
        self._pool: Optional[ThreadPoolExecutor] = None

    @property
    def batch_size(self) -> int:
        """Genes per onnxruntime call unless told otherwise: by family and device."""
        return (CUDA_BATCH_SIZE if self.device == "cuda" else BATCH_SIZE)[self.info.family]

    @property
    def chunk_genes(self) -> int:
        """Genes per streamed chunk unless told otherwise: by family and device, and at
        least one batch for each call side by side."""
        if self.device == "cuda":
            return CUDA_CHUNK_GENES[self.info.family]
        return max(CHUNK_GENES[self.info.family], self.batch_size * self.calls)

    def submit(
        self,
        feeds: dict[str, np.ndarray],
        names: Sequence[str],
        *,
        batch_size: Optional[int] = None,
    ) -> Callable[[], dict[str, np.ndarray]]:
        """Start computing outputs ``names`` for ``feeds`` (each ``(genes, ...)``), in
        batches; the returned function waits for them. With calls side by side the
        batches go to the scorer's worker threads, so a caller can hand over the next
        chunk before it collects this one and no thread waits at a chunk's end."""
        size = batch_size or self.batch_size
        n = len(next(iter(feeds.values())))
        outputs = list(names)

        def call(i: int) -> list[np.ndarray]:
            return self.session.run(outputs, {k: v[i : i + size] for k, v in feeds.items()})

        starts = range(0, n, size)
        if self.calls > 1 and len(starts) > 1:  # onnxruntime's run releases the GIL
            futures = [self._workers().submit(call, i) for i in starts]

            def collect() -> dict[str, np.ndarray]:
                return _join(names, [f.result() for f in futures])

            return collect
        parts = [call(i) for i in starts]
        return lambda: _join(names, parts)

    def run(
        self,
        feeds: dict[str, np.ndarray],
        names: Sequence[str],
        *,
        batch_size: Optional[int] = None,
    ) -> dict[str, np.ndarray]:
        """Outputs ``names`` for ``feeds`` (each ``(genes, ...)``), in batches."""
        return self.submit(feeds, names, batch_size=batch_size)()

    def _workers(self) -> ThreadPoolExecutor:
        """The threads that make the calls side by side, started on first use and kept
        for the scorer's life (idle, they cost nothing; they end when the scorer is
        collected or the process exits)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.calls, thread_name_prefix="chromaformer-ort")
        return self._pool

    def predict(
        self, counts: np.ndarray, *, attention: bool = False, batch_size: Optional[int] = None
    ) -> dict[str, np.ndarray]:
        """A bin model's probabilities (and attention maps) for counts
        ``(genes, bins, marks)``."""
        if self.info.family != "bins":
            raise DataError(
                f"{self.info.path}: a {self.info.family} model; use Scorer.run with its feeds"
            )
        names = [self.info.primary_output]
        if attention and self.info.has_attention:
            names += list(ATTENTION_OUTPUTS)
        feeds = {self.info.inputs[0]: np.ascontiguousarray(counts, dtype=np.float32)}
        return self.run(feeds, names, batch_size=batch_size)


def _join(names: Sequence[str], parts: list[list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Each output's batches, concatenated in order."""
    if not parts:
        return {k: np.empty((0,), np.float32) for k in names}
    return {k: np.concatenate([p[j] for p in parts]) for j, k in enumerate(names)}


@dataclass
class ScoreResult:
    """One scored input."""

    input: str
    output: Path
    genes: int
    seconds: float
    values: np.ndarray
    column: str = "probability"
    attention: Optional[Path] = None
    metrics: dict[str, Any] = field(default_factory=dict)
    track: Optional[Path] = None

    @property
    def probabilities(self) -> np.ndarray:
        return self.values

    @property
    def genes_per_second(self) -> float:
        return self.genes / self.seconds if self.seconds > 0 else float("inf")


def _metrics(task: str, observed: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    if task == "clf":
        return auroc_aupr(observed, values) if len(np.unique(observed)) == 2 else {}
    ok = ~np.isnan(observed.astype(np.float64))
    return regression_metrics(observed[ok], values[ok]) if ok.sum() > 1 else {}


@staged()
def score(
    scorer: Scorer,
    source: Any,
    output: PathLike,
    *,
    attention: Optional[PathLike] = None,
    batch_size: Optional[int] = None,
    genes_per_chunk: Optional[int] = None,
    threads: Optional[int] = None,
    labels: bool = True,
    metrics: bool = True,
    progress: Optional[Callable[[int, int], None]] = None,
    track: Optional[PathLike] = None,
    genes_bed: Optional[PathLike] = None,
) -> ScoreResult:
    """Score one input into a TSV ``gene_id, <output>[, label|observed]``.

    ``source``: a bin CSV path (plain or gzip) for the bin models; ``(metas, npy_dirs)``
    for Chromoformer (two of each for diff: cell a, then cell b). Outputs are written to
    temporaries and renamed into place at the end: a bad line anywhere in the input
    leaves no output file. ``progress(genes, done)`` is called after each chunk (``done``
    in the family's progress units: bytes read, or genes). ``track``: also write the
    scores as a genome-browser track there (``.bed``, ``.bedGraph`` or ``.bw``, see
    :mod:`chromaformer.formats.gene_tracks`), each gene placed by ``genes_bed`` (BED/GTF) or by the
    TSS sidecar that ``chromaformer-prepare`` writes beside a bin CSV. ``labels``: write
    the input's label/observed column; ``metrics``: and, where it holds the truth, compute
    the metrics (AUROC/AUPR need scikit-learn, about a second's import: a caller that
    computes them elsewhere, as ``chromaformer summarize`` does, passes False).
    """
    info: ModelInfo = scorer.info
    family = scorer.family
    src = source if isinstance(source, tuple) else os.fspath(source)
    out = Path(output)
    attn_path = Path(attention) if attention is not None else None
    if attn_path is not None and not info.has_attention:
        raise DataError(
            f"{info.path}: the {info.architecture} architecture has no attention maps to write"
        )
    reads = list(src[0]) + list(src[1]) if isinstance(src, tuple) else [src]
    check_outputs([out, attn_path, track], reads + [genes_bed])
    positions = None
    if track is not None:  # read where the genes are before any work
        from ..formats.gene_tracks import gene_positions, track_kind

        track_kind(track)
        if isinstance(src, tuple) and genes_bed is None:
            raise DataError("a track of a Chromoformer input needs --genes-bed (BED or GTF)")
        positions = gene_positions(None if isinstance(src, tuple) else src, genes_bed)
    key = info.primary_output
    names = [key] + (list(ATTENTION_OUTPUTS) if attn_path is not None else [])
    chunk = genes_per_chunk or scorer.chunk_genes
    t0 = time.perf_counter()
    with (
        (  # where --attention's arrays gather
            temporary_folder(
                out.parent if out.parent.exists() else tempfile.gettempdir(),
                ".chromaformer-score-",
            )
            if attn_path is not None
            else contextlib.nullcontext()
        ) as tmp,
        atomic_path(out) as tmp_out,
    ):
        npz = NpzStream(tmp) if tmp is not None else None
        with open(tmp_out, "w", encoding="utf-8", newline="\n") as fh:
            rows = _Rows(fh, info, key, labels=labels, metrics=metrics, npz=npz)
            # a chunk's calls are handed over before the chunk before it is written, so
            # the calls side by side never wait for the writing or at a chunk's end
            pending: collections.deque = collections.deque()
            for part in prefetch(family.chunks(info, src, chunk_genes=chunk, threads=threads)):
                pending.append((part, scorer.submit(part.feeds, names, batch_size=batch_size)))
                if len(pending) > 1:
                    rows.add(*_collect(pending.popleft()), progress)
            while pending:
                rows.add(*_collect(pending.popleft()), progress)
        genes, ids, values, truth = rows.genes, rows.ids, rows.values, rows.truth
        if genes == 0:
            raise DataError(f"{_describe(src)}: no genes to score")
        if npz is not None and attn_path is not None:
            with atomic_path(attn_path) as tmp_npz:
                npz.write(
                    Path(tmp_npz), {"gene_id": np.concatenate(ids), "marks": np.array(info.marks)}
                )
        if positions is not None and track is not None:
            from ..formats.gene_tracks import tss_half_width, write_track

            write_track(
                track,
                [str(g) for g in np.concatenate(ids)],
                np.concatenate(values),
                positions,
                half_width=tss_half_width(info),
                window=info.window,
                name=f"{Path(_describe(src)).name} {info.architecture} {key}",
                probability=key == "probability",
            )
        all_values = np.concatenate(values)
        seconds = time.perf_counter() - t0
        found = _metrics(info.task, np.concatenate(truth), all_values) if truth else {}
    result = ScoreResult(_describe(src), out, genes, seconds, all_values, key, attn_path)
    result.track = Path(track) if track is not None else None
    result.metrics = found
    return result


def _collect(item: tuple[Chunk, Callable[[], dict[str, np.ndarray]]]) -> tuple[Chunk, dict]:
    part, outputs = item
    return part, outputs()


def check_values(info: ModelInfo, key: str, vals: np.ndarray, genes: int) -> np.ndarray:
    """The model's ``key`` output for ``genes`` genes, checked before anything is written:
    one finite value per gene (a probability in [0, 1] for a classifier)."""
    where = f"{info.path}: the model's output {key!r}"
    if vals.shape != (genes,):
        raise DataError(
            f"{where} has shape {tuple(vals.shape)} for {genes} genes; expected ({genes},)"
        )
    bad = ~np.isfinite(vals)
    if key == "probability":
        bad |= (vals < 0) | (vals > 1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        what = "a probability in [0, 1]" if key == "probability" else "a finite number"
        raise DataError(f"{where} is {vals[k]!r} for gene {k + 1} of a chunk; expected {what}")
    return vals


class _Rows:
    """Writes a scored TSV chunk by chunk, and keeps what the end of the run needs: the
    genes' ids and values, and their truth when metrics are wanted."""

    def __init__(
        self,
        fh: Any,
        info: ModelInfo,
        key: str,
        *,
        labels: bool,
        metrics: bool,
        npz: Optional[NpzStream],
    ) -> None:
        self.info, self.key = info, key
        self.out = ScoresWriter(fh, key, info.task)
        self.labels, self.metrics, self.npz = labels, metrics, npz
        self.genes = 0
        self.ids: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []
        self.truth_has_both = False

    def add(
        self,
        part: Chunk,
        res: dict[str, np.ndarray],
        progress: Optional[Callable[[int, int], None]],
    ) -> None:
        info, key = self.info, self.key
        vals = check_values(info, key, res[key], len(part.gene_ids))
        if self.genes == 0:
            self.out.header(self.labels and part.observed is not None)
        observed = part.observed if self.out.column else None
        if observed is not None and self.metrics:
            self._keep_truth(observed)
        self.out.add(part.gene_ids, vals, observed)
        if self.npz is not None:
            for name in ATTENTION_OUTPUTS:
                self.npz.add(name, res[name])
        self.ids.append(part.gene_ids)
        self.values.append(vals)
        self.genes += len(vals)
        if progress is not None:
            progress(len(vals), part.done)

    def _keep_truth(self, obs: np.ndarray) -> None:
        if self.info.task == "clf" and not self.truth_has_both:
            # AUROC at the end needs scikit-learn, once both classes are seen (a genome
            # prepared without expression is all 0s: no metrics, and no import to pay
            # for); where a core is spare, import it while the rest is scored
            self.truth_has_both = both_classes(obs, self.truth)
            if self.truth_has_both and cores() >= BACKGROUND_IMPORT_CORES:
                import_in_background()
        self.truth.append(obs)


def _describe(source: Any) -> str:
    return ",".join(source[0]) if isinstance(source, tuple) else str(source)
