"""The exported model's contract, defined once: tensor names, metadata keys, the model card.

Export writes these names, the Python scorer, ``chromaformer-prepare --model`` and
``export/node`` read them; ``export/CONTRACT.md`` documents them and a test checks that
it names every key here and no other. No torch, no onnx: scoring imports this.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ._util.atomic import atomic_path
from ._util.system import PathLike
from .errors import DataError
from .layout import name_problem

OPSET = 18
CARD_FORMAT = "chromaformer-model-card/1"
VARIANTS = ("fp32", "int8", "fp16")
TASKS = ("clf", "reg", "diff")
FAMILIES = ("bins", "chromoformer")

# --- tensor names ----------------------------------------------------------------------
#: The bin-CSV models' one input: raw counts (batch, bins, marks).
BINS_INPUT = "counts"
#: Their outputs, in graph order (attention outputs only for attention architectures).
BINS_OUTPUTS = ("probability", "logit", "bin_attention", "mark_attention")
ATTENTION_OUTPUTS = ("bin_attention", "mark_attention")
#: Chromoformer's outputs per task, in graph order.
CHROMOFORMER_OUTPUTS = {
    "clf": ("logits", "probability"),
    "reg": ("prediction",),
    "diff": ("log2fc",),
}
#: The one value per gene a scorer writes, per task (the TSV's second column).
PRIMARY_OUTPUT = {"clf": "probability", "reg": "prediction", "diff": "log2fc"}
#: What is written beside it when the input carries the truth.
OBSERVED_COLUMN = {"clf": "label", "reg": "observed", "diff": "observed"}
CELL_SUFFIXES = ("a", "b")  # diff models take every input twice: cell a, then cell b


def chromoformer_input_names(bin_sizes: tuple[int, ...], task: str) -> list[str]:
    """Chromoformer's inputs in graph order (per cell for ``diff``)."""
    one = (
        [f"promoter_{b}" for b in bin_sizes]
        + [f"pcre_{b}" for b in bin_sizes]
        + ["pcre_lengths", "pcre_scores"]
    )
    if task == "diff":
        return [f"{n}_{c}" for c in CELL_SUFFIXES for n in one]
    return one


# --- metadata_props (all values are strings) ------------------------------------------
#: Keys every export carries.
COMMON_KEYS = (
    "chromaformer_version",
    "family",
    "architecture",
    "task",
    "marks",
    "inputs",
    "outputs",
    "model_config",
    "training_epoch",
    "validation_metrics",
    "variant",
)
#: Keys of the bin-CSV models (``input`` repeats ``inputs`` for older readers).
BINS_KEYS = ("bins", "bin_size", "window", "input_transform", "input", "training_cell_types")
#: Keys of Chromoformer models.
CHROMOFORMER_KEYS = ("bin_sizes", "window", "i_max", "training_fold")
#: Written by int8/fp16 variants only.
VARIANT_KEYS = ("variant_check",)
#: Written by ensembles (architecture ``ensemble``) only: what the members are.
ENSEMBLE_KEYS = ("ensemble",)
#: Top-level keys of the model card.
CARD_KEYS = ("format", "info", "onnx", "schema", "model_config", "metadata_props", "variant_check")


def family_of_metadata(meta: dict[str, str]) -> str:
    """The model family of a file's metadata (files before the ``family`` key: from
    the architecture)."""
    if "family" in meta:
        return meta["family"]
    return "chromoformer" if meta.get("architecture") == "chromoformer" else "bins"


@dataclass
class ModelInfo:
    """What an exported model says about itself (its ``metadata_props``)."""

    path: str
    family: str
    architecture: str
    task: str
    marks: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    variant: str
    metadata: dict[str, str]

    @classmethod
    def from_metadata(cls, path: str, meta: dict[str, str]) -> ModelInfo:
        family = family_of_metadata(meta)
        required = ("architecture", "marks", "outputs") + (
            ("bins", "bin_size") if family == "bins" else ("bin_sizes", "i_max", "inputs")
        )
        missing = [k for k in required if k not in meta]
        if family not in FAMILIES or missing:
            raise DataError(
                f"{path}: not a chromaformer model: its metadata lacks "
                f"{', '.join(missing) or 'a known family'} (export it with "
                "chromaformer-export)"
            )
        for key in ("bins", "bin_size", "window", "i_max", "bin_sizes"):
            if key in meta and not all(v.isdigit() and int(v) > 0 for v in meta[key].split(",")):
                raise DataError(
                    f"{path}: metadata {key}={meta[key][:40]!r}: expected "
                    f"{'comma-separated ' if key == 'bin_sizes' else 'a '}positive integer"
                    f"{'s' if key == 'bin_sizes' else ''} (export it with chromaformer-export)"
                )
        for m in meta["marks"].split(","):
            if name_problem(m, "mark name"):
                raise DataError(f"{path}: metadata marks: {name_problem(m, 'mark name')}")
        inputs = meta.get("inputs") or meta.get("input") or BINS_INPUT
        return cls(
            path,
            family,
            meta["architecture"],
            meta.get("task", "clf"),
            tuple(meta["marks"].split(",")),
            tuple(inputs.split(",")),
            tuple(meta["outputs"].split(",")),
            meta.get("variant", "fp32"),
            dict(meta),
        )

    @property
    def has_attention(self) -> bool:
        return all(n in self.outputs for n in ATTENTION_OUTPUTS)

    @property
    def primary_output(self) -> str:
        return PRIMARY_OUTPUT[self.task]

    @property
    def bins(self) -> int:
        return int(self.metadata["bins"])

    @property
    def bin_size(self) -> int:
        return int(self.metadata["bin_size"])

    @property
    def window(self) -> int:
        return int(self.metadata["window"])

    @property
    def bin_sizes(self) -> tuple[int, ...]:
        return tuple(int(b) for b in self.metadata["bin_sizes"].split(","))

    @property
    def i_max(self) -> int:
        return int(self.metadata["i_max"])

    def summary(self) -> str:
        """One line: what the model is and what it was trained on."""
        meta = self.metadata
        valid = json.loads(meta.get("validation_metrics") or "{}")
        score = next(
            (
                f", valid {k} {valid[k]:.4f}"
                for k in ("mean_auroc", "auroc", "mse")
                if isinstance(valid.get(k), (int, float))
            ),
            "",
        )
        if self.family == "bins":
            shape = f"{len(self.marks)} marks x {self.bins} bins of {self.bin_size} bp"
            trained = meta.get("training_cell_types") or "?"
        else:
            shape = (
                f"{len(self.marks)} marks at {'/'.join(map(str, self.bin_sizes))} bp, "
                f"up to {self.i_max} interacting regions"
            )
            trained = f"fold {meta.get('training_fold') or '?'}"
        return (
            f"{self.architecture} {self.task} ({self.variant}), {shape}, trained on "
            f"{trained}{score}"
        )


# --- the model card ---------------------------------------------------------------------
def card_path_for(model_path: PathLike) -> Path:
    """``model.onnx`` -> ``model.model.json`` beside it."""
    p = Path(model_path)
    return p.with_name(p.stem + ".model.json")


def write_model(out: PathLike, blob: bytes, card: dict[str, Any]) -> Path:
    """Write the model and its card beside it, both atomically; returns the card's path."""
    unknown = set(card) - set(CARD_KEYS)
    if unknown:
        raise ValueError(f"model card keys not in the contract: {', '.join(sorted(unknown))}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    card_path = card_path_for(out)
    with atomic_path(card_path) as tmp_card, atomic_path(out) as tmp_model:
        Path(tmp_model).write_bytes(blob)
        Path(tmp_card).write_text(json.dumps(card, indent=2, default=float) + "\n")
    return card_path


def read_card(path: PathLike) -> dict[str, Any]:
    """The model card of ``path`` (a ``.onnx`` or its ``.model.json``), checked."""
    p = Path(path)
    card = card_path_for(p) if p.suffix == ".onnx" else p
    try:
        data = json.loads(card.read_text())
    except FileNotFoundError:
        raise DataError(
            f"{card}: no model card (chromaformer-export writes one beside the .onnx)"
        ) from None
    except json.JSONDecodeError as err:
        raise DataError(f"{card}:{err.lineno}: not JSON: {err.msg}") from None
    if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
        raise DataError(f"{card}: expected a model card of format {CARD_FORMAT}")
    return data


def model_file(model: PathLike) -> str:
    """The path of the exported model ``model`` names (a file, or a shipped model's name),
    checked: a run folder, a checkpoint or a model card is refused with what to give
    instead, a missing file with what was expected."""
    from .pretrained import resolve_model

    path = resolve_model(model)
    kind = (
        "a run folder"
        if os.path.isdir(path)
        else "a training checkpoint"
        if path.endswith(".pt")
        else "a model card"
        if path.endswith(".model.json")
        else ""
    )
    if kind:
        run = path if os.path.isdir(path) else os.path.dirname(path) or "."
        if path.endswith(".model.json"):
            raise DataError(
                f"{path}: {kind}, not the model: give the .onnx beside it "
                f"({path.removesuffix('.model.json')}.onnx)"
            )
        raise DataError(
            f"{path}: {kind}, not an exported model: export it first: "
            f"chromaformer-export {run} -o model.onnx"
        )
    if not os.path.isfile(path):
        raise DataError(
            f"{path}: no such model file (expected an .onnx file from chromaformer-export)"
        )
    return path


def read_model_info(model: PathLike) -> ModelInfo:
    """The :class:`ModelInfo` of an ``.onnx`` file or a shipped model's name, without
    keeping a session: from the model card beside it when there is one, else from the
    file's own metadata (what ``prepare --model`` fits its output to)."""
    path = model_file(model)
    if card_path_for(path).is_file():
        props = read_card(path).get("metadata_props")
        if isinstance(props, dict):
            return ModelInfo.from_metadata(path, {str(k): str(v) for k, v in props.items()})
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as err:  # not ONNX, or not a model this runtime can run
        raise DataError(f"{path}: not a loadable ONNX model: {str(err).splitlines()[0]}") from None
    return ModelInfo.from_metadata(path, dict(session.get_modelmeta().custom_metadata_map))


def metadata_keys(family: str, variant: str = "fp32") -> tuple[str, ...]:
    """Every metadata key an export of ``family`` carries."""
    own = BINS_KEYS if family == "bins" else CHROMOFORMER_KEYS
    return COMMON_KEYS + own + (VARIANT_KEYS if variant != "fp32" else ())


def check_metadata(
    meta: dict[str, str], family: str, variant: str = "fp32", where: Optional[str] = None
) -> None:
    """Raise if ``meta`` does not carry exactly the contract's keys (export's self-check)."""
    want = set(metadata_keys(family, variant))
    if meta.get("architecture") == "ensemble":
        want |= set(ENSEMBLE_KEYS)
    if set(meta) != want:
        raise ValueError(
            f"{where or 'export'}: metadata keys differ from the contract: "
            f"missing {sorted(want - set(meta))}, extra {sorted(set(meta) - want)}"
        )
