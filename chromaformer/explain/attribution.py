"""Which marks and which positions drive a gene's prediction, from the exported model
alone (onnxruntime, no torch), for every family.

Two methods, both defined by removing signal (setting a mark's input to 0, "no reads"):

* **Mark Shapley values** (every family): the exact Shapley value of each mark in the
  game "the model's value with only these marks present". With M marks that is 2^M
  forward passes per gene (32 for the five benchmark marks), batched. It satisfies
  completeness: a gene's values sum to ``value - baseline``, the model's value on the
  real input minus its value with every mark removed.
* **Window occlusion** (every family): for each mark and each window of ``window``
  consecutive bins, the drop in the value when that window of that mark is removed
  (``value - value(without it)``); every bin of the window gets the window's drop.
  Positive: the signal there raises the value. Not additive across windows. The map's
  bins are those of the coarsest input that walks along the gene's window
  (:meth:`Family.position_inputs`): the bin models' bins; Chromoformer's 2 kb promoter
  bins, a window removed from the promoter at every resolution at once (its pCREs lie
  elsewhere in the genome and are left as they are).

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
    occlusion: Optional[np.ndarray] = None  # (genes, bins, marks)
    #: bases per bin of the occlusion map
    map_bin_size: int = 0


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
    """Mark Shapley values (and window occlusion) of the genes in ``feeds`` (the
    graph's inputs, each ``(genes, ...)``)."""
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
    if occlusion:
        result.occlusion, result.map_bin_size = _occlusion(
            scorer, feeds, family.position_inputs(info), result.value, window, batch_size
        )
    return result


def default_window(bins: int) -> int:
    """Bins per occlusion window: at most 20 windows per mark."""
    return max(1, math.ceil(bins / 20))


def _occlusion(
    scorer: Scorer,
    feeds: dict[str, np.ndarray],
    inputs: list[tuple[str, int]],
    value: np.ndarray,
    window: Optional[int],
    batch_size: Optional[int],
) -> tuple[np.ndarray, int]:
    """``(genes, bins, marks)`` drops on the grid of the coarsest of ``inputs`` (name,
    bases per bin; each ``(genes, ..., bins, marks)`` over the same span), and its bin
    size. A window is removed from every input at once."""
    size = max(b for _, b in inputs)
    first, b0 = inputs[0]
    genes, marks = len(feeds[first]), feeds[first].shape[-1]
    bins = feeds[first].shape[-2] * b0 // size
    for name, b in inputs:
        if size % b or feeds[name].shape[-2] * b != bins * size:
            raise DataError(f"{name}: {b} bp bins do not tile the {bins * size} bp window")
    w = window or default_window(bins)
    if w < 1 or w > bins:
        raise DataError(f"--window {w}: expected 1 to {bins} bins")
    starts = list(range(0, bins, w))
    keys = list(itertools.product(starts, range(marks)))
    flat = {}
    for name, arr in feeds.items():
        variants = np.repeat(arr[None], len(keys), axis=0)  # (V, genes, ...)
        for b in [b for n, b in inputs if n == name]:
            r = size // b  # input bins per map bin
            for k, (s, m) in enumerate(keys):
                variants[k, ..., s * r : (s + w) * r, m] = 0
        flat[name] = variants.reshape((-1,) + arr.shape[1:])
    occluded = _values(scorer, flat, batch_size).reshape(len(starts), marks, genes)
    drop = value[None, None, :] - occluded  # (windows, marks, genes)
    out = np.zeros((genes, bins, marks))
    for j, s in enumerate(starts):
        out[:, s : s + w, :] = drop[j].T[:, None, :]
    return out, size
