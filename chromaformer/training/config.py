"""What a training run needs besides the model config, with each family's recipe.

Every training default lives here, once: the CLI, the demo and the library read them
from :data:`RECIPES` through :class:`TrainConfig`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple, Optional

#: The training recipes. ``bins`` (the bin models' default; see docs/benchmarks/accuracy.md):
#: AdamW 3e-3 with weight decay, batch 64, 5% linear warm-up then cosine decay, 20 epochs
#: of at least 1,500 optimiser steps in all (on few genes an epoch makes several passes
#: over them), early stopping after 8 epochs without a better validation AUROC. Fewer
#: training genes than one batch (64): batches of 8 (``few_genes_batch_size``), so that
#: steps are noisy mini-batch steps rather than full passes, and the hybrid's per-mark
#: BiLSTMs have 16 hidden units in place of 32 and bilstm_attention is one network, not
#: three towers (``few_genes_options``: the shipped starting weights are of one); the rest
#: as above.
#: Fewer training genes than the batch trained, so that every step is a full pass over
#: them: a peak rate of 3e-4 (``few_genes_lr``), and an epoch of at most 10 optimiser
#: steps (more, shorter epochs: the same steps, the same patience in steps) with the
#: lowest validation log loss picking the checkpoint (``few_genes_epoch_steps``).
#: Fewer training genes than one batch, on the benchmark layout: the network starts from
#: the shipped weights learned on simulated genes (``init`` auto; see training/start.py),
#: and any run that starts from learned weights trains at a peak rate of 3e-4
#: (``start_lr``), which keeps what they know.
#: ``attentivechrome``: the benchmark's own (Adam 2e-4, batch 16, 30 epochs, constant).
#: ``chromoformer``: the reference's (AdamW 3e-5, x0.87 per epoch, batch 64, 10 epochs,
#: no clipping).
#: ``ema``: 0, or the decay per optimiser step of an exponential moving average of the
#: weights; the average is what validation judges and best.pt keeps (last.pt keeps the
#: raw weights and the average, for --resume).
#: ``keep``: which epoch's weights the run keeps: ``best`` (the best validation metric;
#: the validation split then picks the model, so its figure flatters it) or ``last`` (the
#: end of the schedule: the validation split picks nothing and stays a held-out figure;
#: no early stopping).
RECIPES: dict[str, dict[str, Any]] = {
    "bins": dict(
        epochs=20,
        batch_size=64,
        lr=3e-3,
        few_genes_batch_size=8,
        few_genes_lr=3e-4,
        few_genes_epoch_steps=10,
        few_genes_options={"hybrid": {"bin_hidden": 16}, "bilstm_attention": {"towers": 1}},
        init="auto",
        start_lr=3e-4,
        optimizer="adamw",
        weight_decay=0.01,
        schedule="cosine",
        warmup=0.05,
        lr_gamma=1.0,
        min_steps=1500,
        patience=8,
        clip=1.0,
        ema=0.0,
        keep="best",
        seed=1,
        eval_batch_size=2048,
    ),
    "attentivechrome": dict(
        epochs=30,
        batch_size=16,
        lr=2e-4,
        init="none",
        optimizer="adam",
        weight_decay=0.0,
        schedule="step",
        warmup=0.0,
        lr_gamma=1.0,
        min_steps=0,
        patience=0,
        clip=1.0,
        ema=0.0,
        keep="best",
        seed=1,
        eval_batch_size=2048,
    ),
    "chromoformer": dict(
        epochs=10,
        batch_size=64,
        lr=3e-5,
        init="none",
        optimizer="adamw",
        weight_decay=0.01,
        schedule="step",
        warmup=0.0,
        lr_gamma=0.87,
        min_steps=0,
        patience=0,
        clip=0.0,
        ema=0.0,
        keep="best",
        seed=123,
        eval_batch_size=256,
    ),
}
#: Which family each recipe trains (a family's own name is its default recipe).
RECIPE_FAMILY = {"bins": "bins", "attentivechrome": "bins", "chromoformer": "chromoformer"}
OPTIMIZERS = ("adam", "adamw")
#: step: x lr_gamma per epoch; cosine: linear warm-up over ``warmup`` of the steps, then
#: cosine decay to 0 over the rest.
SCHEDULES = ("step", "cosine")
#: Which epoch a run keeps (see ``keep`` above).
KEEPS = ("best", "last")


class Recipe(NamedTuple):
    """A run's resolved training recipe (no ``None`` left)."""

    epochs: int
    batch_size: int
    lr: float
    few_genes_batch_size: int
    few_genes_lr: float
    few_genes_epoch_steps: int
    few_genes_options: dict[str, dict[str, Any]]
    init: str
    start_lr: float
    optimizer: str
    weight_decay: float
    schedule: str
    warmup: float
    lr_gamma: float
    min_steps: int
    patience: int
    clip: float
    ema: float
    keep: str
    seed: int
    eval_batch_size: int


@dataclass
class TrainConfig:
    """A run: where its data are, where it writes, and the recipe. Recipe fields left
    ``None`` take the family's value from :data:`RECIPES`. Saved in ``config.json``.

    bins: ``data_root`` + ``cell_types`` (the benchmark layout). chromoformer: ``meta``
    and ``npy_dir`` (one each, two for diff) and the validation ``fold``.
    ``recipe_name`` names the recipe (default: the family's); ``patience`` 0 = no early
    stop. ``epochs`` given means exactly that many (``min_steps`` then defaults to 0).
    ``few_genes_batch_size``: the batch when the training genes are fewer than one
    ``batch_size``; a ``batch_size`` given is the batch at any size (this then defaults to
    it). The ``few_genes_*`` settings below apply when the training genes are fewer than
    the batch trained, whichever it is.
    ``few_genes_lr``: the peak rate when the training genes are fewer than the batch;
    an ``lr`` given is the rate at any size (``few_genes_lr`` then defaults to it).
    ``few_genes_epoch_steps``: with training genes fewer than the batch, at most this many
    optimiser steps per epoch, the epochs and the patience scaled up to the same steps,
    and the checkpoint picked by :data:`~chromaformer.metrics.FEW_GENES_SELECTION`
    (0 = off). ``few_genes_options``: per architecture, the model options used where not
    given when the training genes are fewer than one ``batch_size`` (``{}`` = none).
    ``init``: where the network starts: ``auto`` (the shipped starting weights when the
    training genes are fewer than one ``batch_size`` and some were made for this model and
    layout, else random), ``none`` (random), or a checkpoint file or run folder whose
    weights a run of any size starts from (fine-tuning; same architecture and layout).
    ``start_lr``: the peak rate of a run that starts from learned weights (either kind);
    an ``lr`` given is the rate at any start (``start_lr`` then defaults to it).
    ``stop_after``: train at most this many epochs in this call, then stop as if
    interrupted (``resume`` continues on the same schedule), e.g. within a job's time limit.
    """

    out: str
    family: Optional[str] = None
    data_root: Optional[str] = None
    cell_types: list[str] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    npy_dir: list[str] = field(default_factory=list)
    fold: int = 1
    cache_dir: Optional[str] = None
    bin_size: Optional[int] = None
    expression: Optional[str] = None
    recipe_name: Optional[str] = None
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    few_genes_batch_size: Optional[int] = None
    few_genes_lr: Optional[float] = None
    few_genes_epoch_steps: Optional[int] = None
    few_genes_options: Optional[dict[str, dict[str, Any]]] = None
    init: Optional[str] = None
    start_lr: Optional[float] = None
    optimizer: Optional[str] = None
    weight_decay: Optional[float] = None
    schedule: Optional[str] = None
    warmup: Optional[float] = None
    lr_gamma: Optional[float] = None
    min_steps: Optional[int] = None
    clip: Optional[float] = None
    ema: Optional[float] = None
    keep: Optional[str] = None
    seed: Optional[int] = None
    eval_batch_size: Optional[int] = None
    device: str = "auto"
    amp: bool = True
    patience: Optional[int] = None
    resume: bool = False
    stop_after: Optional[int] = None
    quiet: bool = False
    threads: Optional[int] = None
    plots: bool = True

    def __post_init__(self) -> None:
        self.cell_types = list(self.cell_types)
        self.meta, self.npy_dir = list(self.meta), list(self.npy_dir)
        if self.family is not None:
            if self.family not in RECIPES:
                raise ValueError(
                    f"unknown model family {self.family!r}; expected one of {', '.join(RECIPES)}"
                )
            name = self.recipe_name or self.family
            if RECIPE_FAMILY.get(name) != self.family:
                known = [r for r, f in RECIPE_FAMILY.items() if f == self.family]
                raise ValueError(
                    f"unknown recipe {name!r} for the {self.family} family; "
                    f"expected one of {', '.join(known)}"
                )
            if self.epochs is not None and self.min_steps is None:
                self.min_steps = 0  # a number of epochs given is the number trained
            if self.batch_size is not None and self.few_genes_batch_size is None:
                self.few_genes_batch_size = self.batch_size  # a batch given is the batch
            if self.lr is not None and self.few_genes_lr is None:
                self.few_genes_lr = self.lr  # a rate given is the rate trained
            if self.lr is not None and self.start_lr is None:
                self.start_lr = self.lr
            for key, value in RECIPES[name].items():
                if getattr(self, key) is None:
                    setattr(self, key, copy.deepcopy(value))
            if self.few_genes_batch_size is None:  # a recipe without one: its batch
                self.few_genes_batch_size = self.batch_size
            if self.few_genes_lr is None:  # a recipe without one: its lr at any size
                self.few_genes_lr = self.lr
            if self.few_genes_epoch_steps is None:  # a recipe without one: epochs as usual
                self.few_genes_epoch_steps = 0
            if self.few_genes_options is None:  # a recipe without them: the same model
                self.few_genes_options = {}
            if self.init is None:  # a recipe without one: random weights
                self.init = "none"
            if self.start_lr is None:  # a recipe without one: its lr from any start
                self.start_lr = self.lr
            if self.optimizer not in OPTIMIZERS:
                raise ValueError(
                    f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
                )
            if self.schedule not in SCHEDULES:
                raise ValueError(
                    f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
                )
            if self.keep not in KEEPS:
                raise ValueError(f"keep must be one of {', '.join(KEEPS)}, got {self.keep!r}")

    def for_family(self, family: str) -> TrainConfig:
        """This config with ``family``'s recipe filling the fields left ``None``."""
        if self.family not in (None, family):
            raise ValueError(
                f"this run's TrainConfig is for the {self.family} family, not {family}"
            )
        return TrainConfig.from_dict({**self.to_dict(), "family": family})

    @property
    def recipe(self) -> Recipe:
        """The resolved recipe (after :meth:`for_family`), typed."""
        if self.family is None:
            raise ValueError("TrainConfig.recipe: no family yet (call for_family)")
        return Recipe(**{k: getattr(self, k) for k in Recipe._fields})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
