"""``chromaformer explain``: attributions of every gene of an input, streamed in bounded
memory through an exported model (onnxruntime, no torch), into one output folder.

Writes (each file atomically):

* ``importance.tsv``: per gene the explained value (clf: the logit) and the probability,
  the value with every mark removed (``baseline``), one Shapley value per mark (they sum
  to ``value - baseline``), the top mark, and the label when the input has one;
* ``attributions.npz``: the same as arrays, plus the ``(genes, bins, marks)`` window
  occlusion map (``map_bin_size`` bases per bin);
* with ``plots``: ``mark_importance.png`` (mean Shapley value per mark, expressed vs
  silent genes), ``profiles.png`` (the mean occlusion profile per mark around the
  TSS, expressed vs silent) and ``heatmap_<gene>.png`` for each gene of ``genes``;
* with ``tracks``: ``value.<ext>`` and ``shapley_<mark>.<ext>`` genome-browser tracks
  (see :mod:`chromaformer.formats.gene_tracks`).

Expressed vs silent: the input's labels when it has them, else the model's call
(probability >= 0.5; reg/diff: value above the median of the genes).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .._util.atomic import atomic_path, check_outputs, staged, temporary_folder
from .._util.prefetch import prefetch
from .._util.system import PathLike
from ..errors import DataError
from ..formats.npz import NpzStream
from ..scoring.engine import Scorer
from .attribution import attribute
from .plots import heatmap_name

#: Genes per explained chunk (each costs 2^marks + windows x marks forward passes).
EXPLAIN_CHUNK = {"bins": 256, "chromoformer": 16}


@dataclass
class ExplainResult:
    """What :func:`explain` wrote and found."""

    output: Path
    genes: int
    seconds: float
    marks: tuple[str, ...]
    #: mean Shapley value per mark over the expressed / silent genes
    importance: dict[str, dict[str, float]] = field(default_factory=dict)
    group_source: str = ""
    files: list[Path] = field(default_factory=list)

    @property
    def genes_per_second(self) -> float:
        return self.genes / self.seconds if self.seconds > 0 else float("inf")

    def ranking(self, group: str) -> list[str]:
        """Marks by mean Shapley value in ``group`` (expressed, silent), highest first."""
        imp = self.importance[group]
        return sorted(imp, key=lambda m: -imp[m])


class _Sums:
    """Running sums per group (0 silent, 1 expressed) for the plots: bounded memory."""

    def __init__(self) -> None:
        self.n = np.zeros(2)
        self.shapley: Optional[np.ndarray] = None
        self.occlusion: Optional[np.ndarray] = None

    def add(self, group: np.ndarray, shapley: np.ndarray, occlusion: Optional[np.ndarray]) -> None:
        if self.shapley is None:
            self.shapley = np.zeros((2, shapley.shape[1]))
            if occlusion is not None:
                self.occlusion = np.zeros((2, *occlusion.shape[1:]))
        for g in (0, 1):
            sel = group == g
            self.n[g] += sel.sum()
            self.shapley[g] += shapley[sel].sum(axis=0)
            if occlusion is not None and self.occlusion is not None:
                self.occlusion[g] += occlusion[sel].sum(axis=0)

    def mean(self, what: str) -> Optional[np.ndarray]:
        arr = getattr(self, what)
        if arr is None:
            return None
        return arr / np.maximum(self.n, 1).reshape((2,) + (1,) * (arr.ndim - 1))


def explain(
    model: PathLike,
    source: Any,
    output: PathLike,
    *,
    window: Optional[int] = None,
    occlusion: bool = True,
    genes: Sequence[str] = (),
    plots: bool = True,
    tracks: Optional[str] = None,
    gene_positions: Optional[PathLike] = None,
    batch_size: Optional[int] = None,
    threads: Optional[int] = None,
    device: str = "cpu",
    progress: Optional[Callable[[int], None]] = None,
) -> ExplainResult:
    """Explain every gene of ``source`` (a bin CSV, or ``(metas, npy_dirs)`` for
    Chromoformer) with ``model`` (.onnx or a shipped model's name) into the folder
    ``output``; see the module doc. ``genes``: ids whose heatmaps to draw (and which
    must be in the input). ``tracks``: bed, bedGraph or bw, placed by
    ``gene_positions`` (BED/GTF) or the input's TSS sidecar."""
    if tracks is not None:
        from ..formats.gene_tracks import check_track_format

        check_track_format(tracks)
    scorer = Scorer(model, device=device, threads=threads)
    info = scorer.info
    src = source if isinstance(source, tuple) else os.fspath(source)
    positions = None
    if tracks is not None:
        from ..formats.gene_tracks import gene_positions as read_positions

        if isinstance(src, tuple) and gene_positions is None:
            raise DataError("tracks of a Chromoformer input need --genes-bed (BED or GTF)")
        positions = read_positions(None if isinstance(src, tuple) else src, gene_positions)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    reads = list(src[0]) + list(src[1]) if isinstance(src, tuple) else [src]
    names = ["attributions.npz", "importance.tsv", "mark_importance.png", "profiles.png"]
    names += [heatmap_name(g) for g in genes]
    if tracks is not None:
        names += [f"value.{tracks}"] + [f"shapley_{m}.{tracks}" for m in info.marks]
    check_outputs([out / n for n in names], [*reads, gene_positions])
    made = not out.exists()
    try:
        with staged():  # every file of the folder, or none
            return _explain(
                scorer,
                src,
                out,
                window,
                occlusion,
                genes,
                plots,
                tracks,
                positions,
                batch_size,
                threads,
                progress,
            )
    except BaseException:
        if made:  # the folder this run made, left empty by the failure
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _explain(
    scorer: Scorer,
    src: Any,
    out: Path,
    window: Optional[int],
    occlusion: bool,
    genes: Sequence[str],
    plots: bool,
    tracks: Optional[str],
    positions: Any,
    batch_size: Optional[int],
    threads: Optional[int],
    progress: Optional[Callable[[int], None]],
) -> ExplainResult:
    info, family = scorer.info, scorer.family
    wanted = list(dict.fromkeys(genes))
    t0 = time.perf_counter()
    sums = _Sums()
    ids: list[np.ndarray] = []
    values: list[np.ndarray] = []
    shap: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    maps: dict[str, np.ndarray] = {}
    map_bin_size = 0
    n = 0
    marks = tuple(info.marks)
    out.mkdir(parents=True, exist_ok=True)
    with temporary_folder(out, ".chromaformer-explain-") as tmp:
        npz = NpzStream(Path(tmp))
        rows_path = Path(tmp) / "rows.tsv"
        with open(rows_path, "w", encoding="utf-8", newline="\n") as fh:
            chunks = family.chunks(
                info, src, chunk_genes=EXPLAIN_CHUNK[info.family], threads=threads
            )
            for part in prefetch(chunks):
                att = attribute(
                    scorer, part.feeds, window=window, occlusion=occlusion, batch_size=batch_size
                )
                p = None
                if info.task == "clf":
                    p = 1.0 / (1.0 + np.exp(-att.value))
                if n == 0:
                    head = ["gene_id", "value"] + (["probability"] if p is not None else [])
                    head += ["baseline"] + [f"shapley_{m}" for m in marks] + ["top_mark"]
                    if part.observed is not None:
                        head.append("label" if info.task == "clf" else "observed")
                    fh.write("\t".join(head) + "\n")
                top = np.array(marks)[np.argmax(att.shapley, axis=1)]
                cols = [part.gene_ids, np.char.mod("%.6g", att.value)]
                if p is not None:
                    cols.append(np.char.mod("%.6g", p))
                cols.append(np.char.mod("%.6g", att.baseline))
                cols += [np.char.mod("%.6g", att.shapley[:, m]) for m in range(len(marks))]
                cols.append(top)
                if part.observed is not None:
                    obs = part.observed
                    cols.append(obs.astype(str) if info.task == "clf" else np.char.mod("%.6g", obs))
                    labels.append(np.asarray(obs, np.float64))
                fh.write("".join("\t".join(r) + "\n" for r in zip(*cols)))
                npz.add("value", att.value)
                npz.add("baseline", att.baseline)
                npz.add("shapley", att.shapley.astype(np.float32))
                if att.occlusion is not None:
                    map_bin_size = att.map_bin_size
                    npz.add("occlusion", att.occlusion.astype(np.float32))
                    for g in wanted:
                        hit = np.flatnonzero(part.gene_ids == g)
                        if len(hit):
                            maps[g] = att.occlusion[hit[0]]
                ids.append(part.gene_ids)
                values.append(att.value)
                shap.append(att.shapley)
                # groups need every gene for the reg/diff median: kept as the small arrays
                sums_group = _group(info.task, part.observed, att.value, p)
                if sums_group is not None:
                    sums.add(sums_group, att.shapley, att.occlusion)
                n += len(att.value)
                if progress is not None:
                    progress(len(att.value))
        if n == 0:
            raise DataError(f"{src}: no genes to explain")
        all_ids = np.concatenate(ids)
        missing = [g for g in wanted if g not in set(all_ids.tolist())]
        if missing:
            raise DataError(f"{src}: no gene {missing[0]!r} in the input (asked for by --genes)")
        all_values = np.concatenate(values)
        group_source = "labels" if labels and info.task == "clf" else "the model's call"
        if sums.shapley is None:  # reg/diff without labels: above/below the median
            grp = (all_values > np.median(all_values)).astype(int)
            sums.add(grp, np.concatenate(shap), None)
            group_source = "value above the median"
        files: list[Path] = []
        extra: dict[str, np.ndarray] = {"gene_id": all_ids, "marks": np.array(marks)}
        if labels:
            extra["label"] = np.concatenate(labels)
        if map_bin_size:
            extra["map_bin_size"] = np.array(map_bin_size)
        with atomic_path(out / "attributions.npz") as t:
            npz.write(Path(t), extra)
        files.append(out / "attributions.npz")
        with atomic_path(out / "importance.tsv") as t:
            os.replace(rows_path, t)
        files.append(out / "importance.tsv")
    mean_shap = sums.mean("shapley")
    assert mean_shap is not None
    importance = {
        name: {m: float(mean_shap[g][k]) for k, m in enumerate(marks)}
        for g, name in ((1, "expressed"), (0, "silent"))
    }
    if plots:
        from .plots import plot_heatmap, plot_importance, plot_profiles

        title = f"{Path(info.path).name} ({info.architecture})"
        files.append(plot_importance(out, marks, importance, sums.n, title))
        prof = sums.mean("occlusion")
        if prof is not None:
            files.append(plot_profiles(out, marks, prof, sums.n, map_bin_size, title))
        for g, amap in maps.items():
            files.append(plot_heatmap(out, g, marks, amap, map_bin_size, title))
    if positions is not None and tracks is not None:
        from ..formats.gene_tracks import tss_half_width, write_track

        half = tss_half_width(info)
        win = info.window
        allv = np.concatenate(shap)
        gl = [str(g) for g in all_ids]
        files.append(
            write_track(
                out / f"value.{tracks}",
                gl,
                all_values,
                positions,
                half_width=half,
                window=win,
                name=f"{info.architecture} {'logit' if info.task == 'clf' else 'value'}",
            )
        )
        for k, m in enumerate(marks):
            files.append(
                write_track(
                    out / f"shapley_{m}.{tracks}",
                    gl,
                    allv[:, k],
                    positions,
                    half_width=half,
                    window=win,
                    name=f"Shapley {m}",
                )
            )
    return ExplainResult(out, n, time.perf_counter() - t0, marks, importance, group_source, files)


def _group(
    task: str, observed: Optional[np.ndarray], value: np.ndarray, prob: Optional[np.ndarray]
) -> Optional[np.ndarray]:
    """1 expressed, 0 silent: labels when present, else the model's call (clf); None for
    reg/diff without observed values (grouped by the median once all are seen)."""
    if observed is not None and task == "clf":
        return np.asarray(observed).astype(int)
    if prob is not None:
        return (prob >= 0.5).astype(int)
    return None
