"""What a model family tells the engines: its input layout and how to load it, its
config, how to build the network, its example inputs for export, its metrics.

Training (:mod:`chromaformer.training`), export (:mod:`chromaformer.export`) and scoring
(:mod:`chromaformer.scoring`) are written once against :class:`Family`. This module and
the families' data and scoring parts import no torch; their training and export parts
import it when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

import numpy as np

from ..contract import TASKS, ModelInfo
from ..errors import DataError
from ..metrics import task_metrics
from ..models.config import AnyConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class Split:
    """Genes of one split, as the network takes them.

    inputs: the network's inputs, each ``(genes, ...)``, in graph input order.
    target: ``(genes,)`` 0/1 labels (clf) or values (reg, diff).
    groups: ``(genes,)`` index into ``group_names`` (the cell type, for per-cell metrics).
    features: ``(genes, f)`` flat features of the baseline (log1p counts).
    """

    name: str
    inputs: list[np.ndarray]
    target: np.ndarray
    gene_ids: np.ndarray
    groups: np.ndarray
    group_names: tuple[str, ...]
    features: np.ndarray

    def __len__(self) -> int:
        return int(len(self.target))


@dataclass
class TrainData:
    """What a family loads for a run: train and valid splits, the evaluation split
    (``test``, or the validation fold when the family has no test split), a description
    of the data for the model config, and notes for the user."""

    train: Split
    valid: Split
    evaluation: Split
    layout: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    """A batch of genes to score: their ids, the graph's feeds, and the observed truth
    (labels or values) when the input has it."""

    gene_ids: np.ndarray
    feeds: dict[str, np.ndarray]
    observed: Optional[np.ndarray]
    done: int = 0  # progress units consumed so far (see Family.progress_total)


class Family:
    """Base of the model families; subclasses fill in each part."""

    #: the family's name (a ``family`` metadata key and ``TrainConfig.family``)
    name: str = ""
    #: architectures of the family (``--model`` values)
    architectures: tuple[str, ...] = ()
    #: model options (``ModelConfig`` fields) a user may set for this family
    model_options: tuple[str, ...] = ()
    #: training options (``TrainConfig`` fields) that mean something for this family
    train_options: tuple[str, ...] = ()
    #: tasks the family trains for
    tasks: tuple[str, ...] = ("clf",)
    #: networks with parameters some forward passes do not use (DDP must know)
    unused_parameters: bool = False

    # --- data and config (no torch) ---------------------------------------------------
    def load(self, tc: Any, task: str) -> TrainData:
        """The data of a run (``tc``: a :class:`chromaformer.training.TrainConfig`)."""
        raise NotImplementedError

    def model_config(
        self, arch: str, task: str, layout: dict[str, Any], options: dict[str, Any]
    ) -> AnyConfig:
        raise NotImplementedError

    def check_layout(self, cfg: AnyConfig, layout: dict[str, Any], where: str) -> None:
        """Raise :class:`DataError` when data of ``layout`` do not fit ``cfg``."""

    def metrics(self, task: str, split: Split, pred: np.ndarray) -> dict[str, Any]:
        return task_metrics(task, split.target, pred, split.groups, split.group_names)

    # --- training (torch) -------------------------------------------------------------
    def loss(
        self, task: str, out: dict[str, torch.Tensor], y: torch.Tensor, cfg: Any = None
    ) -> torch.Tensor:
        """The loss summed over the batch (``cfg``: the model's config)."""
        raise NotImplementedError

    def prediction(self, task: str, out: dict[str, torch.Tensor], cfg: Any = None) -> torch.Tensor:
        """``(batch,)``: what the metrics read (P(class 1), or the predicted value)."""
        raise NotImplementedError

    def target_dtype(self, task: str) -> Any:
        return np.float32

    # --- export (torch) ---------------------------------------------------------------
    def input_names(self, cfg: AnyConfig) -> list[str]:
        raise NotImplementedError

    def output_names(self, cfg: AnyConfig) -> list[str]:
        raise NotImplementedError

    def example_inputs(self, cfg: AnyConfig, batch: int) -> list[np.ndarray]:
        raise NotImplementedError

    def export_module(self, model: Any, **options: Any) -> Any:
        """The network with tuple outputs in :meth:`output_names` order."""
        raise NotImplementedError

    def metadata(self, cfg: AnyConfig, ckpt: dict[str, Any]) -> dict[str, str]:
        """The family's own ``metadata_props`` (see :mod:`chromaformer.contract`)."""
        raise NotImplementedError

    def doc(self, cfg: AnyConfig) -> str:
        raise NotImplementedError

    def io_schema(self, cfg: AnyConfig) -> dict[str, Any]:
        raise NotImplementedError

    def check_sample(
        self, cfg: AnyConfig
    ) -> Optional[tuple[dict[str, np.ndarray], Optional[np.ndarray], str]]:
        """Feeds (and labels) on which an int8/fp16 variant is compared with fp32, or
        None when the family makes no variants."""
        return None

    # --- scoring (no torch) -----------------------------------------------------------
    def chunks(
        self, info: ModelInfo, source: Any, *, chunk_genes: int, threads: Optional[int]
    ) -> Iterator[Chunk]:
        """The genes of ``source`` in chunks fed to the graph; errors name the file."""
        raise NotImplementedError

    def progress_total(self, source: Any) -> tuple[Optional[int], str]:
        """The size of ``source`` in progress units, and the unit's name."""
        return None, "gene"

    # --- explaining (no torch) --------------------------------------------------------
    def mark_inputs(self, info: ModelInfo) -> list[str]:
        """The graph inputs whose last axis is the mark axis (in ``info.marks`` order),
        where a 0 means no signal: what removing a mark sets to 0."""
        raise NotImplementedError

    def position_inputs(self, info: ModelInfo) -> list[tuple[str, int]]:
        """The mark inputs whose second-to-last axis walks along the gene's window, 5'
        to 3', with the bases per bin of each; all span the same window. Occlusion
        removes a stretch of the genome from each of them at once."""
        raise NotImplementedError

    def explained_value(self, info: ModelInfo, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """``(genes,)`` float64: the value attributions explain (clf: the logit, additive
        where probabilities saturate; reg/diff: the prediction)."""
        raise NotImplementedError

    def explained_outputs(self, info: ModelInfo) -> list[str]:
        """The graph outputs :meth:`explained_value` reads."""
        raise NotImplementedError


def check_options(family: Family, given: Sequence[str]) -> None:
    """A clear error for family-specific options (model or data options, or a task other
    than clf) that do not apply to ``family``."""
    allowed = set(family.model_options) | set(family.train_options) | set(family.tasks)
    bad = [o for o in given if o not in allowed]
    if bad:
        names = [f"--task {o}" if o in TASKS else "--" + o.replace("_", "-") for o in bad]
        raise DataError(
            f"{', '.join(names)} "
            f"{'does' if len(bad) == 1 else 'do'} not apply to the "
            f"{family.name} family ({'/'.join(family.architectures)})"
        )
