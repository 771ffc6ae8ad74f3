"""Which marks and which positions drive a gene's prediction, from the exported model
alone (onnxruntime, no torch), for every family.

Two methods, both defined by removing signal (setting a mark's input to 0, "no reads"):

* **Mark Shapley values** (every family): the exact Shapley value of each mark in the
  game "the model's value with only these marks present". With M marks that is 2^M
  forward passes per gene (32 for the five benchmark marks), batched. It satisfies
  completeness: a gene's values sum to ``value - baseline``, the model's value on the
  real input minus its value with every mark removed.
* **Window occlusion** (bin models): for each mark and each window of ``window``
  consecutive bins, the drop in the value when that window of that mark is removed
  (``value - value(without it)``); every bin of the window gets the window's drop.
  Positive: the signal there raises the value. Not additive across windows.

The value explained is the model's logit for clf (additive where probabilities
saturate), the prediction for reg/diff (:meth:`Family.explained_value`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import DataError
from ..scoring.engine import Scorer

#: At most this many marks for exact Shapley values (2^M passes per gene).
MAX_SHAPLEY_MARKS = 10


@dataclass
class Attribution:
    """One batch of genes, explained."""

    value: np.ndarray  # (genes,) the explained value on the real input
    baseline: np.ndarray  # (genes,) with every mark removed
    shapley: np.ndarray  # (genes, marks); each row sums to value - baseline
    occlusion: Optional[np.ndarray] = None  # (genes, bins, marks), bin models only


def _coalitions(n_marks: int) -> np.ndarray:
    """Every subset of the marks as a boolean row (2^M, M); row 0 is the empty set and
    the last row all marks."""
    return np.array(list(itertools.product((False, True), repeat=n_marks)), dtype=bool)


def _shapley_weights(n_marks: int) -> np.ndarray:
    """w[s] = s! (M - s - 1)! / M!: the weight of a coalition of size s without the mark."""
    m = n_marks
    return np.array(
        [math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)]
    )


def _masked(feeds: dict[str, np.ndarray], names: list[str], keep: np.ndarray) -> dict:
    """``feeds`` repeated once per row of ``keep`` (variants x marks), with the marks
    not kept set to 0 in the mark inputs; genes vary fastest."""
    out = {}
    v = len(keep)
    for name, arr in feeds.items():
        tiled = np.tile(arr, (v,) + (1,) * (arr.ndim - 1))
        if name in names:
            mask = np.repeat(keep, len(arr), axis=0).astype(arr.dtype)  # (v*genes, marks)
            tiled = tiled * mask.reshape((len(tiled),) + (1,) * (arr.ndim - 2) + (-1,))
        out[name] = tiled
    return out


def _values(scorer: Scorer, feeds: dict[str, np.ndarray], batch_size: Optional[int]) -> np.ndarray:
    info, family = scorer.info, scorer.family
    res = scorer.run(feeds, family.explained_outputs(info), batch_size=batch_size)
    return family.explained_value(info, res)


def attribute(
    scorer: Scorer,
    feeds: dict[str, np.ndarray],
    *,
    window: Optional[int] = None,
    occlusion: bool = True,
    batch_size: Optional[int] = None,
) -> Attribution:
    """Mark Shapley values (and, for bin models, window occlusion) of the genes in
    ``feeds`` (the graph's inputs, each ``(genes, ...)``)."""
    info, family = scorer.info, scorer.family
    names = family.mark_inputs(info)
    n_marks = len(info.marks)
    if n_marks > MAX_SHAPLEY_MARKS:
        raise DataError(
            f"{info.path}: {n_marks} marks; exact Shapley values are made for at most "
            f"{MAX_SHAPLEY_MARKS} (2^marks forward passes per gene)"
        )
    genes = len(next(iter(feeds.values())))
    subsets = _coalitions(n_marks)
    v = _values(scorer, _masked(feeds, names, subsets), batch_size).reshape(len(subsets), genes)
    index = {tuple(row): i for i, row in enumerate(subsets)}
    weights = _shapley_weights(n_marks)
    phi = np.zeros((genes, n_marks))
    for i, row in enumerate(subsets):
        for m in np.flatnonzero(~row):
            with_m = row.copy()
            with_m[m] = True
            phi[:, m] += weights[row.sum()] * (v[index[tuple(with_m)]] - v[i])
    result = Attribution(value=v[-1], baseline=v[0], shapley=phi)
    if occlusion and info.family == "bins":
        result.occlusion = _occlusion(scorer, feeds, names[0], result.value, window, batch_size)
    return result


def default_window(bins: int) -> int:
    """Bins per occlusion window: at most 20 windows per mark."""
    return max(1, math.ceil(bins / 20))


def _occlusion(
    scorer: Scorer,
    feeds: dict[str, np.ndarray],
    name: str,
    value: np.ndarray,
    window: Optional[int],
    batch_size: Optional[int],
) -> np.ndarray:
    counts = feeds[name]
    genes, bins, marks = counts.shape
    w = window or default_window(bins)
    if w < 1 or w > bins:
        raise DataError(f"--window {w}: expected 1 to {bins} bins")
    starts = list(range(0, bins, w))
    variants = np.repeat(counts[None], len(starts) * marks, axis=0)  # (V, genes, bins, marks)
    for k, (s, m) in enumerate(itertools.product(starts, range(marks))):
        variants[k, :, s : s + w, m] = 0
    flat = {name: variants.reshape(-1, bins, marks)}
    occluded = _values(scorer, flat, batch_size).reshape(len(starts), marks, genes)
    drop = value[None, None, :] - occluded  # (windows, marks, genes)
    out = np.zeros((genes, bins, marks))
    for j, s in enumerate(starts):
        out[:, s : s + w, :] = drop[j].T[:, None, :]
    return out
