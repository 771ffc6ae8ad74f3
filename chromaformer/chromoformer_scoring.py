"""Scoring genes of Chromoformer's reference layout with an exported Chromoformer (no torch)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ._atomic import atomic_path
from .chromoformer_data import ChromoformerSet, joint_inputs, load_chromoformer
from .errors import DataError
from .scoring import open_session

OUTPUT_OF = {"clf": "probability", "reg": "prediction", "diff": "log2fc"}


@dataclass
class ChromoformerScore:
    output: str
    genes: int
    seconds: float
    load_seconds: float
    values: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def genes_per_second(self) -> float:
        return self.genes / self.seconds if self.seconds else float("inf")


def score_chromoformer(model: str, metas: Sequence[str], npy_dirs: Sequence[str], out: str, *,
                       device: str = "cpu", threads: Optional[int] = None,
                       batch_size: int = 64, cache_dir: Optional[str] = None,
                       progress: Optional[Callable[[int], None]] = None) -> ChromoformerScore:
    """Write ``gene_id``, the model's output and (when the meta has it) the observed
    value as TSV, atomically. ``diff`` takes two metas / npy dirs: cell a, then cell b."""
    session, meta = open_session(model, device, threads)
    if meta.get("architecture") != "chromoformer":
        raise DataError(f"{model}: not a Chromoformer model (--meta/--npy-dir are for "
                        "Chromoformer; score bin CSVs as INPUT arguments)")
    task = meta["task"]
    want = 2 if task == "diff" else 1
    if len(metas) != want or len(npy_dirs) != want:
        raise DataError(f"{model} is a {task} model: give {want} --meta and {want} --npy-dir")
    bin_sizes = [int(b) for b in meta["bin_sizes"].split(",")]
    n_marks = len(meta["marks"].split(","))
    i_max = int(meta["i_max"])
    t0 = time.perf_counter()
    sets = [load_chromoformer(metas[0], npy_dirs[0], bin_sizes=bin_sizes, i_max=i_max,
                              channels=n_marks, threads=threads, cache_dir=cache_dir)]
    if task == "diff":
        sets.append(load_chromoformer(metas[1], npy_dirs[1], genes=sets[0].gene_ids,
                                      bin_sizes=bin_sizes, i_max=i_max, channels=n_marks,
                                      threads=threads, cache_dir=cache_dir))
    load_s = time.perf_counter() - t0
    names = [i.name for i in session.get_inputs()]
    key = OUTPUT_OF[task]
    t1 = time.perf_counter()
    values = []
    n = len(sets[0])
    for k in range(0, n, batch_size):
        idx = np.arange(k, min(n, k + batch_size))
        res = session.run([key], dict(zip(names, joint_inputs(sets, idx))))
        values.append(res[0])
        if progress is not None:
            progress(len(idx))
    scores = np.concatenate(values)
    seconds = time.perf_counter() - t1
    observed, column = _observed(task, sets)
    metrics: dict[str, float] = {}
    if observed is not None:
        from .chromoformer_training import task_metrics

        ok = ~np.isnan(observed.astype(np.float64))
        if task != "clf" or len(np.unique(observed[ok])) == 2:
            metrics = task_metrics(task, observed[ok], scores[ok])
    with atomic_path(out) as tmp:
        with open(tmp, "w") as fh:
            fh.write("gene_id\t" + key + (f"\t{column}" if column else "") + "\n")
            for i, g in enumerate(sets[0].gene_ids):
                row = f"{g}\t{scores[i]:.7g}"
                if column:
                    row += f"\t{observed[i]:.7g}" if task != "clf" else f"\t{observed[i]}"
                fh.write(row + "\n")
    return ChromoformerScore(os.fspath(out), n, seconds, load_s, scores, metrics)


def _observed(task: str, sets: list[ChromoformerSet]) -> tuple[Optional[np.ndarray], str]:
    if task == "clf":
        return sets[0].labels, "label"
    a = np.log2(sets[0].expression + 1.0)
    if task == "reg":
        return (a, "observed") if not np.isnan(a).all() else (None, "")
    fc = np.log2(sets[1].expression + 1.0) - a
    return (fc, "observed") if not np.isnan(fc).all() else (None, "")
