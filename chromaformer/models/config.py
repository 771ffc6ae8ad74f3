"""One config per model family: every hyperparameter, the marks and the layout, saved
inside checkpoints and ONNX metadata (no torch here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Union, cast

from ..contract import TASKS
from ..layout import (
    BENCHMARK_BINS,
    BENCHMARK_MARKS,
    BIN_SIZE,
    CHROMOFORMER_BIN_SIZES,
    CHROMOFORMER_I_MAX,
    CHROMOFORMER_MARKS,
    CHROMOFORMER_WINDOW,
    name_problem,
)

#: Architecture names; the reference work's spellings map onto ours.
ARCHITECTURES = ("bilstm_attention", "bilstm_transformer", "hybrid", "cnn")
#: What a bin model does to raw counts before its first layer (see ModelConfig).
INPUT_TRANSFORMS = ("standardize", "log1p", "none")
#: The config fields a run learns from its own training genes (not the architecture).
DATA_STATS = ("input_mean", "input_std", "target_mean", "target_std")
ALIASES = {
    "bilstm_attention_transformer": "hybrid",
    "attentivechrome": "bilstm_attention",
    "deepchrome": "cnn",
}


#: The CNN's kernel and pool when the config leaves them 0, by the layout's bins:
#: DeepChrome's 10 and 5, made for 100 bins, from ``CNN_GEOMETRY_BINS`` bins up; below,
#: 5 and 2 (on 21 bins of 10 kb, 10 and 5 leave 2 pooled positions; 5 and 2 leave 8 and
#: score higher in cross-validation: docs/benchmarks/accuracy.md). A config, once made,
#: holds the resolved numbers, so a stored model keeps its own.
CNN_GEOMETRY_BINS = 50
CNN_GEOMETRY = {"long": (10, 5), "short": (5, 2)}


def cnn_geometry(bins: int) -> tuple[int, int]:
    """The CNN's default (kernel, pool) on ``bins`` bins."""
    return CNN_GEOMETRY["long" if bins >= CNN_GEOMETRY_BINS else "short"]


#: The towers of an architecture when the config leaves them 0 (see ModelConfig): one
#: network, but three for bilstm_attention, whose single network is level with gradient
#: boosting in cross-validation and whose three towers are above it
#: (docs/benchmarks/accuracy.md). A config, once made, holds the resolved number; a
#: stored config from before the field means one.
DEFAULT_TOWERS = {"bilstm_attention": 3}


def canonical_arch(name: str) -> str:
    """Our name for an architecture, accepting the reference work's spellings."""
    arch = ALIASES.get(name, name)
    if arch not in ARCHITECTURES:
        known = ", ".join(list(ARCHITECTURES) + list(ALIASES))
        raise ValueError(f"unknown architecture {name!r}; expected one of {known}")
    return arch


@dataclass
class ModelConfig:
    """Architecture plus every hyperparameter, the marks in column order and the bins.

    ``input_transform``: what the network sees of the raw counts. It runs inside the
    model (and as the first nodes of its exported graph), so both take raw counts.

    - ``standardize`` (default): log1p, then per mark ``(x - input_mean) / input_std``,
      the mean and standard deviation of log1p counts over the training genes and bins
      (computed by training and stored here; empty = 0 and 1). Counts of 0-20 (100 bp
      bins) and of thousands (10 kb bins) then reach the network on the same scale.
    - ``log1p``: log1p only (this project's earlier default).
    - ``none``: raw counts (AttentiveChrome's own recipe).

    ``task``: ``clf`` (the head's output is the logit of expression >= the cell's
    median) or ``reg`` (the head's output is the expression standardised by the training
    genes' ``target_mean`` and ``target_std``; the prediction is ``output * target_std +
    target_mean``, in the exported graph too).

    ``mirror``: the output is the mean of the network's on the bins as given and on the
    bins reversed, so a profile and its mirror image score alike: for genes whose strand
    is unknown (bins in genomic order, as in the shared E116 CSVs), where a gene read
    from either strand is the same gene. Off where bins run 5'->3' on the gene's strand.

    ``towers``: the network is that many copies of the architecture in one, each from
    its own random start and trained on its own loss in the same run, and the output is
    their average (the logit of their mean probability; a regression's mean output;
    the attention maps' mean): seed averaging inside one model, at that many times the
    cost. 0 (default): by the architecture (``DEFAULT_TOWERS``).
    """

    arch: str = "hybrid"
    marks: tuple[str, ...] = BENCHMARK_MARKS
    bins: int = BENCHMARK_BINS
    bin_size: int = BIN_SIZE
    input_transform: str = "standardize"
    input_mean: tuple[float, ...] = ()
    input_std: tuple[float, ...] = ()
    task: str = "clf"
    target_mean: float = 0.0
    target_std: float = 1.0
    # bin level (per mark BiLSTM + bin attention)
    bin_hidden: int = 32
    # mark level (BiLSTM + mark attention)
    mark_hidden: int = 16
    # transformer over mark embeddings
    n_heads: int = 4
    dim_feedforward: int = 256
    n_layers: int = 2
    dropout: float = 0.5
    # DeepChrome CNN (kernel and pool 0: chosen by the bins, see CNN_GEOMETRY)
    cnn_filters: int = 50
    cnn_kernel: int = 0
    cnn_pool: int = 0
    cnn_hidden: tuple[int, ...] = (625, 125)
    mirror: bool = False
    towers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.arch = canonical_arch(self.arch)
        self.marks = tuple(self.marks)
        for m in self.marks:
            if name_problem(str(m), "mark name"):
                raise ValueError(name_problem(str(m), "mark name"))
        self.cnn_hidden = tuple(self.cnn_hidden)
        if self.cnn_kernel < 0 or self.cnn_pool < 0:
            raise ValueError("cnn_kernel and cnn_pool must be positive (0: chosen by the bins)")
        kernel, pool = cnn_geometry(self.bins)
        self.cnn_kernel = int(self.cnn_kernel) or kernel
        self.cnn_pool = int(self.cnn_pool) or pool
        if self.towers < 0:
            raise ValueError("towers must be positive (0: chosen by the architecture)")
        self.towers = int(self.towers) or DEFAULT_TOWERS.get(self.arch, 1)
        self.input_mean = tuple(float(v) for v in self.input_mean)
        self.input_std = tuple(float(v) for v in self.input_std)
        if self.input_transform not in INPUT_TRANSFORMS:
            raise ValueError(
                f"input_transform must be one of {', '.join(INPUT_TRANSFORMS)}, "
                f"got {self.input_transform!r}"
            )
        for name in ("input_mean", "input_std"):
            stats = getattr(self, name)
            if stats and (self.input_transform != "standardize" or len(stats) != len(self.marks)):
                raise ValueError(
                    f"{name} takes one value per mark ({len(self.marks)}) and only with "
                    f"input_transform 'standardize'"
                )
        if self.task not in ("clf", "reg"):
            raise ValueError(f"task must be clf or reg for the bin models, got {self.task!r}")
        if not self.target_std > 0:
            raise ValueError("target_std must be positive")
        if any(not v > 0 for v in self.input_std):
            raise ValueError("input_std must be positive")
        if self.bins < 1 or not self.marks:
            raise ValueError("bins and marks must be positive")
        d_model = 2 * self.bin_hidden
        if self.arch in ("bilstm_transformer", "hybrid") and d_model % self.n_heads:
            raise ValueError(
                f"n_heads={self.n_heads} must divide d_model={d_model} (2 x bin_hidden)"
            )
        if self.arch == "cnn" and self.bins < self.cnn_kernel + self.cnn_pool - 1:
            raise ValueError(f"the CNN needs at least {self.cnn_kernel + self.cnn_pool - 1} bins")

    @property
    def n_marks(self) -> int:
        return len(self.marks)

    @property
    def d_model(self) -> int:
        return 2 * self.bin_hidden

    @property
    def has_attention(self) -> bool:
        return self.arch in ("bilstm_attention", "hybrid")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["marks"] = list(self.marks)
        d["cnn_hidden"] = list(self.cnn_hidden)
        d["input_mean"], d["input_std"] = list(self.input_mean), list(self.input_std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        return cls(**{"towers": 1, **d})  # stored before towers existed: one network


@dataclass
class ChromoformerConfig:
    """Chromoformer: task, marks, resolutions and the three transformers' sizes (the
    reference's names; ``window`` is the whole promoter span in bp)."""

    task: str = "clf"
    marks: tuple[str, ...] = CHROMOFORMER_MARKS
    bin_sizes: tuple[int, ...] = CHROMOFORMER_BIN_SIZES
    window: int = CHROMOFORMER_WINDOW
    i_max: int = CHROMOFORMER_I_MAX
    d_emb: int = 128
    d_head: int = 128
    embed: dict = field(default_factory=lambda: dict(n_layers=1, n_heads=2, d_model=128, d_ff=128))
    pairwise: dict = field(
        default_factory=lambda: dict(n_layers=2, n_heads=2, d_model=128, d_ff=256)
    )
    regulation: dict = field(
        default_factory=lambda: dict(n_layers=6, n_heads=8, d_model=256, d_ff=256)
    )
    arch: str = "chromoformer"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        self.marks = tuple(self.marks)
        self.bin_sizes = tuple(int(b) for b in self.bin_sizes)
        for b in self.bin_sizes:
            if self.window % b:
                raise ValueError(f"window {self.window} is not a whole number of {b} bp bins")
        self.embed = {**self.embed, "d_model": self.d_emb}  # as the reference does
        if self.pairwise["d_model"] != self.d_emb:
            raise ValueError(
                f"pairwise d_model {self.pairwise['d_model']} must equal d_emb "
                f"{self.d_emb} (its outputs join the promoter's embedding)"
            )
        for name in ("embed", "pairwise", "regulation"):
            kw = getattr(self, name)
            if kw["d_model"] % kw["n_heads"]:
                raise ValueError(
                    f"{name}: d_model {kw['d_model']} is not divisible by {kw['n_heads']} heads"
                )

    @property
    def n_bins(self) -> dict[int, int]:
        return {b: self.window // b for b in self.bin_sizes}

    @property
    def n_marks(self) -> int:
        return len(self.marks)

    @property
    def has_attention(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["marks"], d["bin_sizes"] = list(self.marks), list(self.bin_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChromoformerConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def checked(cls, **options: Any) -> ChromoformerConfig:
        """A config from user options: unknown fields are an error."""
        unknown = set(options) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown Chromoformer config fields: {', '.join(sorted(unknown))}")
        return cls(**options)


@dataclass
class EnsembleConfig:
    """Several bin models of one layout (marks, bins, bin size) and task averaged into one:
    each gene's probability (or regression prediction) is the mean of the members' (see
    :class:`~chromaformer.models.ensemble.Ensemble`). Typically the seeds of one
    architecture (``--seeds N``), or several architectures."""

    members: tuple[ModelConfig, ...] = ()
    arch: str = "ensemble"

    def __post_init__(self) -> None:
        self.members = tuple(
            m if isinstance(m, ModelConfig) else ModelConfig.from_dict(m) for m in self.members
        )
        if len(self.members) < 2:
            raise ValueError("an ensemble needs at least two member models")
        first = self.members[0]
        for m in self.members[1:]:
            if m.task != first.task:
                raise ValueError(
                    f"ensemble members disagree on their task: {first.task} vs {m.task}"
                )
            if (m.marks, m.bins, m.bin_size) != (first.marks, first.bins, first.bin_size):
                raise ValueError(
                    f"ensemble members disagree on their layout: {first.bins} bins of "
                    f"{first.bin_size} bp x {','.join(first.marks)} vs {m.bins} bins of "
                    f"{m.bin_size} bp x {','.join(m.marks)}"
                )

    marks = property(lambda self: self.members[0].marks)
    bins = property(lambda self: self.members[0].bins)
    bin_size = property(lambda self: self.members[0].bin_size)
    n_marks = property(lambda self: self.members[0].n_marks)
    has_attention = property(lambda self: all(m.has_attention for m in self.members))

    #: the members' task; a regression ensemble's output is already on the targets'
    #: scale (the mean of the members' predictions), so its own target scale is 0 and 1
    task = property(lambda self: self.members[0].task)
    target_mean = property(lambda self: 0.0)
    target_std = property(lambda self: 1.0)
    extra = property(lambda self: self.members[0].extra)
    #: mirror-symmetric when every member is
    mirror = property(lambda self: all(m.mirror for m in self.members))

    @property
    def input_transform(self) -> str:
        kinds = {m.input_transform for m in self.members}
        return kinds.pop() if len(kinds) == 1 else "per member"

    @property
    def description(self) -> str:
        """``ensemble of 3 bilstm_attention + 3 cnn``."""
        counts: dict[str, int] = {}
        for m in self.members:
            counts[m.arch] = counts.get(m.arch, 0) + 1
        return "ensemble of " + " + ".join(f"{n} {a}" for a, n in counts.items())

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnsembleConfig:
        return cls(members=tuple(d["members"]))


AnyConfig = Union[ModelConfig, ChromoformerConfig, EnsembleConfig]


def parse_model_options(text: str) -> dict[str, Any]:
    """Model options from a JSON object or the path of a .json file (``--model-config``)."""
    import json
    import os

    source = text
    if os.path.isfile(text):
        with open(text) as fh:
            source = fh.read()
    try:
        options = json.loads(source)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--model-config: not a JSON object ({err.msg} at line {err.lineno})"
        ) from None
    if not isinstance(options, dict):
        raise ValueError("--model-config: expected a JSON object of model config fields")
    return options


def config_of(model: Any) -> AnyConfig:
    """The config a network carries (``model.config``), typed."""
    return cast(AnyConfig, model.config)


def config_from_dict(d: dict[str, Any]) -> AnyConfig:
    """The config of either family from its ``to_dict()`` (the family follows ``arch``)."""
    if d.get("arch") == "chromoformer":
        return ChromoformerConfig.from_dict(d)
    if d.get("arch") == "ensemble":
        return EnsembleConfig.from_dict(d)
    return ModelConfig.from_dict(d)
