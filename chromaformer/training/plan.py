"""A training run's plan, from how many training genes it has and its recipe: batch size,
extra model options, passes per epoch, epochs, patience, the checkpoint's selection
metric and the peak learning rate, with the notes that say why. No torch: a pure
function of its inputs, so the few-genes rules are tested in milliseconds.

The few-genes rules (each applies where the recipe sets it; see the recipe's doc in
``training/config.py`` and docs/guide/training.md):

1. fewer training genes than one batch: the recipe's ``few_genes_batch_size`` and its
   ``few_genes_options`` (a smaller network; an option given is kept);
2. at least ``min_steps`` optimiser steps: each epoch makes several passes;
3. every step a full pass over the genes: epochs of at most ``few_genes_epoch_steps``
   steps (the same steps and patience in all), the validation log loss picking, and the
   recipe's ``few_genes_lr``;
4. a start from learned weights: the recipe's ``start_lr`` (:meth:`RunPlan.starting`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from ..metrics import FEW_GENES_SELECTION


@dataclass(frozen=True)
class RunPlan:
    genes: int  # training genes
    batch_size: int
    few_genes: bool  # fewer training genes than one of the recipe's batches
    full_pass: bool  # every optimiser step is a full pass over them
    options: dict[str, Any]  # model options: the given ones and the recipe's extra ones
    steps_per_pass: int
    passes: int  # passes over the training genes per epoch
    epochs: int
    patience: int
    selection: Optional[tuple[str, bool]]  # (metric, higher is better); None: the task's
    peak_lr: float
    notes: tuple[str, ...] = field(default=())

    @property
    def steps_per_epoch(self) -> int:
        return self.passes * self.steps_per_pass

    def starting(self, rc: Any) -> RunPlan:
        """The plan of a run that starts from learned weights: the recipe's
        ``start_lr``, which keeps what they know."""
        if rc.start_lr == self.peak_lr:
            return self
        note = (
            f"note: starting from learned weights: peak learning rate {rc.start_lr:g} in "
            f"place of {self.peak_lr:g}"
        )
        return dataclasses.replace(self, peak_lr=rc.start_lr, notes=self.notes + (note,))


def plan_run(
    genes: int,
    rc: Any,
    task: str,
    arch: Optional[str] = None,
    options: Optional[dict[str, Any]] = None,
) -> RunPlan:
    """The plan of a run on ``genes`` training genes under recipe ``rc`` (a resolved
    :class:`~chromaformer.training.config.Recipe`). ``arch``: the architecture whose
    model options the recipe may extend (None when the model's config is given whole,
    as on resume); ``options``: the model options given."""
    n = genes
    notes: list[str] = []
    few_genes = n < rc.batch_size
    batch_size = rc.batch_size
    if few_genes and rc.few_genes_batch_size < batch_size:
        batch_size = rc.few_genes_batch_size
        notes.append(
            f"note: {n} training genes, fewer than one batch ({rc.batch_size}): batches of "
            f"{batch_size} (the recipe's few_genes_batch_size)"
        )
    full_pass = n < batch_size
    opts = dict(options or {})
    if arch is not None and few_genes and rc.few_genes_options:
        extra = {k: v for k, v in rc.few_genes_options.get(arch, {}).items() if k not in opts}
        if extra:
            opts.update(extra)
            notes.append(
                f"note: {n} training genes, fewer than one batch ({rc.batch_size}): "
                + ", ".join(f"{k} {v}" for k, v in extra.items())
                + " (the recipe's few_genes_options)"
            )
    epochs = rc.epochs
    steps_per_pass = max(1, math.ceil(n / batch_size))
    passes = max(1, math.ceil(rc.min_steps / (epochs * steps_per_pass)))
    patience = 0 if rc.keep == "last" else rc.patience  # nothing to stop on
    selection: Optional[tuple[str, bool]] = None
    if full_pass and 0 < rc.few_genes_epoch_steps < passes * steps_per_pass:
        per_epoch = max(1, rc.few_genes_epoch_steps // steps_per_pass)
        scale = passes / per_epoch
        passes, epochs = per_epoch, math.ceil(epochs * scale)
        patience = math.ceil(patience * scale)
        selection = FEW_GENES_SELECTION.get(task)
    if passes > 1 or selection is not None:
        notes.append(
            f"note: {n} training genes give {steps_per_pass} optimiser steps per pass: each "
            f"epoch makes {passes} passes (at least {rc.min_steps} steps in {epochs} epochs)"
            + (f"; the lowest validation {selection[0]} picks the epoch" if selection else "")
        )
    peak_lr = rc.lr
    if full_pass and rc.few_genes_lr != rc.lr:
        peak_lr = rc.few_genes_lr
        notes.append(
            f"note: {n} training genes, fewer than one batch ({batch_size}): peak "
            f"learning rate {peak_lr:g} in place of {rc.lr:g}"
        )
    return RunPlan(
        genes=n,
        batch_size=batch_size,
        few_genes=few_genes,
        full_pass=full_pass,
        options=opts,
        steps_per_pass=steps_per_pass,
        passes=passes,
        epochs=epochs,
        patience=patience,
        selection=selection,
        peak_lr=peak_lr,
        notes=tuple(notes),
    )
