"""Export a trained model of any family to one self-contained, self-describing ONNX file.

The family says what its graph takes and returns (:mod:`chromaformer.families`); the
names and metadata keys are the contract's (:mod:`chromaformer.contract`, documented in
``export/CONTRACT.md``); the trace, the stripping, the metadata, the model card, the
int8/fp16 variants and their check against fp32 are written here once.

Needs torch and onnx, and onnxscript for ``exporter="dynamo"`` (all in
``pip install "chromaformer[onnx]"``); scoring the result needs only onnxruntime.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import onnx
import torch

from .._util.atomic import check_outputs
from .._util.system import PathLike
from .._version import __version__
from ..contract import (
    CARD_FORMAT,
    OPSET,
    VARIANTS,
    card_path_for,
    check_metadata,
    write_model,
)
from ..errors import DataError
from ..families import Family, family_for
from ..metrics import HEADLINE_METRIC
from ..models.checkpoint import model_from_checkpoint, read_checkpoint
from ..models.config import AnyConfig, config_from_dict, config_of
from ..models.grouped import is_recurrent_weight

#: A variant whose probabilities move further than this from the float model's on the
#: check sample is refused (unless forced): beyond it, rankings of genes change.
MAX_PROB_DIFF = 0.02
#: ... and one whose AUROC on the (labelled) check sample drops by more than this.
MAX_AUROC_DROP = 0.005


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    card: Path
    variant: str
    size_bytes: int
    metadata: dict[str, str]
    check: dict[str, Any] = field(default_factory=dict)


def model_metadata(
    family: Family, cfg: AnyConfig, ckpt: dict[str, Any], variant: str
) -> dict[str, str]:
    """The ``metadata_props`` of an export: the contract's common keys and the family's."""
    valid = {k: v for k, v in (ckpt.get("valid") or {}).items() if k != "per_cell"}
    return {
        "chromaformer_version": __version__,
        "family": family.name,
        "architecture": cfg.arch,
        "task": cfg.task,
        "marks": ",".join(cfg.marks),
        "inputs": ",".join(family.input_names(cfg)),
        "outputs": ",".join(family.output_names(cfg)),
        "model_config": json.dumps(cfg.to_dict(), sort_keys=True),
        "training_epoch": str(ckpt.get("epoch", "")),
        "validation_metrics": json.dumps(valid, sort_keys=True, default=float),
        "variant": variant,
        **family.metadata(cfg, ckpt),
    }


def strip_debug_info(model: onnx.ModelProto) -> None:
    """Drop what the exporters record per node (stack traces, source paths, module
    names) and per value, so the file is small and byte-reproducible."""

    def graph(g: onnx.GraphProto) -> None:
        g.doc_string = ""
        del g.metadata_props[:]
        for v in list(g.value_info) + list(g.input) + list(g.output):
            v.doc_string = ""
            del v.metadata_props[:]
        for init in g.initializer:
            del init.metadata_props[:]
            init.doc_string = ""
        for node in g.node:
            node.doc_string = ""
            del node.metadata_props[:]
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    graph(attr.g)
                for sub in attr.graphs:
                    graph(sub)

    graph(model.graph)
    del model.graph.value_info[:]  # shape annotations are re-inferred by every runtime
    _short_names(model.graph)
    for fn in model.functions:
        fn.doc_string = ""
        for node in fn.node:
            node.doc_string = ""
            del node.metadata_props[:]


def _short_names(g: onnx.GraphProto) -> None:
    """Name the graph's intermediate values ``v0, v1, ...`` in node order and drop node
    names: tracers name them by module path (``/model/bins/MatMul_37_output_0``), a
    third of a 100-bin LSTM model's file. Inputs, outputs and initializers keep theirs."""
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    keep |= {i.name for i in g.initializer}
    rename: dict[str, str] = {}
    fresh = (f"v{n}" for n in itertools.count())
    for node in g.node:
        node.name = ""
        for k, name in enumerate(node.output):
            if name and name not in keep:
                rename[name] = next(v for v in fresh if v not in keep)
                node.output[k] = rename[name]

    def inputs(nodes: Any) -> None:  # subgraphs may read the outer graph's values
        for node in nodes:
            for k, name in enumerate(node.input):
                node.input[k] = rename.get(name, name)
            for attr in node.attribute:
                for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                    inputs(sub.node)

    inputs(g.node)


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporters' logging, warnings and prints; no grad."""
    noisy = (
        "torch.onnx",
        "torch.export",
        "torch._dynamo",
        "torch.fx",
        "onnxscript",
        "torch._export",
        "torch._subclasses",
        "torch.onnx._internal",
    )
    levels = {n: logging.getLogger(n).level for n in noisy}
    try:
        for n in noisy:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _int8(model: onnx.ModelProto, workdir: Path) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre, out = workdir / "fp32.onnx", workdir / "pre.onnx", workdir / "int8.onnx"
    onnx.save(model, src)
    # quant_pre_process: onnx shape inference and folding (onnxruntime's symbolic shape
    # inference cannot read the TorchScript tracer's reshapes; none is needed);
    # reduce_range (7-bit weights) avoids the saturation that moves probabilities by ~0.3
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    # the recurrence's gate matrices stay float32: quantized, their rounding compounds
    # over the 100 steps (measured on the default hybrid: max |p - p_fp32| 0.147 with
    # them, 0.013 without; the MatMuls of the attention and heads are still int8)
    graph = onnx.load(str(pre))
    recurrent = []
    for k, node in enumerate(graph.graph.node):
        node.name = node.name or f"node{k}"
        if node.op_type == "MatMul" and any(is_recurrent_weight(i) for i in node.input):
            recurrent.append(node.name)
    onnx.save(graph, str(pre))
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(pre),
            str(out),
            weight_type=QuantType.QInt8,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=recurrent,
        )
    return onnx.load(str(out))


def _fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # inputs/outputs stay float32 (the contract); the LSTM op has no fp16 CPU kernel
        half = convert_float_to_float16(model, keep_io_types=True, op_block_list=["LSTM"])
    # the converter inserts one Cast per (value, blocked consumer): a value that feeds a
    # blocked node twice gets two identical Cast nodes; keep one
    seen: set[bytes] = set()
    keep = []
    for node in half.graph.node:
        key = node.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            keep.append(node)
    del half.graph.node[:]
    half.graph.node.extend(_toposort(keep, half.graph))
    return half


def _toposort(nodes: list, graph: onnx.GraphProto) -> list:
    """Nodes in an order where each input is produced before use (the fp16 converter
    appends its input Casts at the end, which onnx.checker rejects)."""
    ready = {v.name for v in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(nodes), []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError("the fp16 graph has a cycle or an undefined input")
        pending = rest
    return ordered


def _label(model: onnx.ModelProto, family: Family, cfg: AnyConfig, meta: dict[str, str]) -> None:
    """Doc string, producer, metadata_props, and a doc string per graph input/output."""
    check_metadata(meta, family.name, meta["variant"])
    schema = family.io_schema(cfg)
    model.doc_string = family.doc(cfg)
    model.producer_name = "chromaformer"
    model.producer_version = __version__
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    docs = {
        name: f"{spec['dtype']} {spec['shape']}: {spec['doc']}"
        for name, spec in {**schema["inputs"], **schema["outputs"]}.items()
    }
    for v in list(model.graph.input) + list(model.graph.output):
        v.doc_string = docs.get(v.name, "")


#: The tracers :func:`export_onnx` can use (``exporter=``): TorchScript's (the default)
#: or torch.export's ("dynamo"). Both give standard opset-18 graphs that agree with
#: PyTorch within 1e-5 (tested); the TorchScript tracer exports 10-25x faster and
#: onnxruntime runs both graphs at the same speed within noise (``benchmarks/export.py``;
#: the figures are in docs/guide/export.md).
EXPORTERS = ("torchscript", "dynamo")


@contextlib.contextmanager
def _no_mha_fastpath():
    """nn.TransformerEncoderLayer's inference fast path is one fused op that the
    TorchScript tracer cannot export; the math path computes the same function."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _torch_export(
    family: Family, model: torch.nn.Module, exporter: str = "torchscript", **options: Any
) -> onnx.ModelProto:
    cfg = config_of(model)
    wrapper = family.export_module(model, **options).eval()
    # batch >= 2 in the example: a batch of 1 gets specialised into the graph
    example = tuple(torch.from_numpy(x) for x in family.example_inputs(cfg, 4))
    names, outputs = family.input_names(cfg), family.output_names(cfg)
    if exporter == "torchscript":
        buf = io.BytesIO()
        with _quiet_exporter(), _no_mha_fastpath():
            torch.onnx.export(
                wrapper,
                example,
                buf,  # type: ignore[arg-type]  # the TorchScript exporter writes file objects
                input_names=names,
                output_names=outputs,
                dynamic_axes={n: {0: "batch"} for n in names + outputs},
                dynamo=False,
                opset_version=OPSET,
            )
        return onnx.load_from_string(buf.getvalue())
    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapper,
            example,
            input_names=names,
            output_names=outputs,
            dynamic_shapes=(tuple({0: batch} for _ in example),),
            dynamo=True,
            external_data=False,
            opset_version=OPSET,
            optimize=True,
            verbose=False,
        )
    if program is None:  # only without dynamo; kept for the type checker
        raise RuntimeError("torch.onnx.export returned no program")
    return program.model_proto


def _compare(reference: bytes, candidate: bytes, family: Family, cfg: AnyConfig) -> dict[str, Any]:
    import onnxruntime as ort
    from sklearn.metrics import roc_auc_score

    from ..scoring.session import session_options

    sample = family.check_sample(cfg)
    assert sample is not None
    feeds, labels, source = sample
    key = family.output_names(cfg)[0]
    probs = []
    for blob in (reference, candidate):
        sess = ort.InferenceSession(blob, session_options(), providers=["CPUExecutionProvider"])
        probs.append(sess.run([key], feeds)[0].astype(np.float64))
    diff = np.abs(probs[0] - probs[1])
    out: dict[str, Any] = {
        "sample": source,
        "genes": int(len(probs[0])),
        "max_prob_diff": float(diff.max()),
        "mean_prob_diff": float(diff.mean()),
    }
    if labels is not None and len(np.unique(labels)) == 2:
        a0, a1 = roc_auc_score(labels, probs[0]), roc_auc_score(labels, probs[1])
        out.update(auroc_fp32=float(a0), auroc_variant=float(a1), auroc_change=float(a1 - a0))
    return out


def export_onnx(
    source: Union[PathLike, dict[str, Any], Sequence[PathLike]],
    out: PathLike,
    *,
    variant: str = "fp32",
    force: bool = False,
    grouped: bool = True,
    exporter: str = "torchscript",
) -> ExportReport:
    """Export a run folder or checkpoint (any family) to ``out`` (.onnx) plus a model card
    beside it (``<out stem>.model.json``), both written atomically. ``source`` may also
    be an fp32 .onnx from this function, to make an int8/fp16 variant of it, or a list
    of bin-model runs of one layout (e.g. the seeds of ``--seeds N``): they are exported
    as one ensemble graph whose probability is the mean of theirs.

    ``variant``: ``fp32`` (exact), ``int8`` (dynamic quantization of the MatMuls:
    smaller file) or ``fp16`` (half the size; for the CUDA provider). Variants are
    compared with the float model on the family's check sample; one that moves
    probabilities by more than :data:`MAX_PROB_DIFF` or AUROC by more than
    :data:`MAX_AUROC_DROP` raises :class:`DataError` unless ``force``. ``grouped=False``
    exports a bin model's per-mark LSTMs as they train, one ONNX ``LSTM`` node each
    (slower; kept for comparison). ``exporter``: the tracer, one of :data:`EXPORTERS`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    sources: list[Any] = list(source) if isinstance(source, (list, tuple)) else [source]
    reads: list[PathLike] = [s for s in sources if not isinstance(s, dict)]
    reads += [Path(s) / name for s in list(reads) for name in ("best.pt", "last.pt")]
    check_outputs([out, card_path_for(out)], reads)
    src: Union[PathLike, dict[str, Any]]
    if isinstance(source, (list, tuple)):
        facts = _ensemble_facts(source)
        src = source[0] if len(source) == 1 else _ensemble_checkpoint(source)
    else:
        src = source  # type: ignore[assignment]
        facts = _run_facts(src)
    if not isinstance(src, dict) and str(src).endswith(".onnx"):
        # a variant of an exported model: no torch re-export needed
        proto = onnx.load(os.fspath(src))
        stored = {p.key: p.value for p in proto.metadata_props}
        if "model_config" not in stored or stored.get("variant", "fp32") != "fp32":
            raise DataError(
                f"{src}: not an fp32 model from chromaformer-export "
                "(variants are made from the fp32 export or a run folder)"
            )
        cfg = config_from_dict(json.loads(stored["model_config"]))
        family = family_for(cfg)
        meta = {**stored, "variant": variant}
        meta.setdefault("family", family.name)
        meta.setdefault("inputs", ",".join(family.input_names(cfg)))
    else:
        ckpt = src if isinstance(src, dict) else read_checkpoint(src)
        model = model_from_checkpoint(ckpt)
        cfg = config_of(model)
        family = family_for(cfg)
        meta = model_metadata(family, cfg, ckpt, "fp32")
        proto = _torch_export(family, model, exporter, grouped=grouped)
        strip_debug_info(proto)
        _label(proto, family, cfg, meta)
        onnx.checker.check_model(proto, full_check=True)
        meta = {**meta, "variant": variant}
    if variant != "fp32" and family.check_sample(cfg) is None:
        raise DataError(
            f"{variant} variants are not made for {family.name} {cfg.task} models yet "
            "(their check compares probabilities); export fp32"
        )
    check: dict[str, Any] = {}
    if variant != "fp32":
        reference = proto.SerializeToString()
        with tempfile.TemporaryDirectory(prefix="chromaformer-export-") as tmp:
            proto = _int8(proto, Path(tmp)) if variant == "int8" else _fp16(proto)
        strip_debug_info(proto)
        check = _compare(reference, proto.SerializeToString(), family, cfg)
        meta["variant_check"] = json.dumps(check, sort_keys=True)
        _label(proto, family, cfg, meta)
        onnx.checker.check_model(proto)
        too_far = (
            check["max_prob_diff"] > MAX_PROB_DIFF
            or check.get("auroc_change", 0.0) < -MAX_AUROC_DROP
        )
        if too_far and not force:
            raise DataError(
                f"{out}: the {variant} variant moves probabilities by up to "
                f"{check['max_prob_diff']:.4f} (bound {MAX_PROB_DIFF}) and AUROC by "
                f"{check.get('auroc_change', 0.0):+.4f} (bound -{MAX_AUROC_DROP}) on the "
                f"{check['sample']}; nothing written (--force writes it anyway)"
            )
    blob = proto.SerializeToString()
    card = model_card(family, cfg, meta, proto, blob, check)
    card["info"].update(facts)
    card_path = write_model(out, blob, card)
    return ExportReport(Path(out), card_path, variant, len(blob), meta, check)


def _ensemble_checkpoint(sources: Sequence[PathLike]) -> dict[str, Any]:
    """One checkpoint dict of an :class:`~chromaformer.models.ensemble.Ensemble` of the
    bin models in ``sources`` (run folders or .pt files)."""
    from ..models.ensemble import ensemble_of

    ckpts = [read_checkpoint(s) for s in sources]
    models = [model_from_checkpoint(c) for c in ckpts]
    try:
        ens = ensemble_of(models)
    except ValueError as err:
        raise DataError(f"{', '.join(map(str, sources))}: {err}") from None
    cells = sorted({c for ck in ckpts for c in (ck.get("cell_types") or [])})
    return {"config": config_of(ens).to_dict(), "state_dict": ens.state_dict(), "cell_types": cells}


def _ensemble_facts(sources: Sequence[PathLike]) -> dict[str, Any]:
    """The members' run facts (one entry per source) for an ensemble's card."""
    members = [{"source": str(s), **_run_facts(s)} for s in sources]
    return {"ensemble_members": members} if len(sources) > 1 else _run_facts(sources[0])


def _run_facts(source: Any) -> dict[str, Any]:
    """What the run folder's metrics.json says of the data and the baselines (when the
    source is a run folder): the card then shows the model beside them."""
    if isinstance(source, dict) or not Path(source).is_dir():
        return {}
    path = Path(source) / "metrics.json"
    if not path.exists():
        return {}
    m = json.loads(path.read_text())
    key = HEADLINE_METRIC[m.get("task", "clf")][0]
    config = Path(source) / "config.json"
    train = json.loads(config.read_text()).get("train", {}) if config.exists() else {}
    valid = f"{m['genes']['valid']:,} validation genes"
    picked = (
        f"the schedule's last epoch (--keep last: the {valid} picked nothing)"
        if train.get("keep") == "last"
        else f"best epoch chosen on {valid}"
    )
    names = m.get("baseline_names") or {}
    gaps = {names.get(k, k): g for k, g in (m.get("gaps") or {}).items()}
    return {
        "trained_on": (
            f"{', '.join(m.get('cell_types', []))}: {m['genes']['train']:,} training genes, "
            f"{picked}"
        ),
        "evaluation": {
            "split": m.get("evaluated_on"),
            "genes": m["genes"].get(m.get("evaluated_on", "test")),
            "model": {key: m["test"].get(key)},
            **{names.get(k, k): {key: b.get(key)} for k, b in (m.get("baselines") or {}).items()},
            **({"gaps": gaps} if gaps else {}),
        },
        "baselines": {names.get(k, k): b.get(key) for k, b in (m.get("baselines") or {}).items()},
    }


def model_card(
    family: Family,
    cfg: AnyConfig,
    meta: dict[str, str],
    proto: onnx.ModelProto,
    blob: bytes,
    check: dict[str, Any],
) -> dict[str, Any]:
    """The same facts as the ONNX metadata, as JSON, in the spirit of kipoi's model.yaml:
    ``info`` + an input/output ``schema``."""
    info: dict[str, Any] = {
        "doc": proto.doc_string,
        "family": family.name,
        "architecture": cfg.arch,
        "task": cfg.task,
        "variant": meta["variant"],
        "chromaformer_version": __version__,
        "training_epoch": meta["training_epoch"],
        "validation_metrics": json.loads(meta["validation_metrics"]),
        "license": "MIT",
    }
    if "training_cell_types" in meta:
        info["training_cell_types"] = [c for c in meta["training_cell_types"].split(",") if c]
    if "training_fold" in meta:
        info["training_fold"] = meta["training_fold"]
    return {
        "format": CARD_FORMAT,
        "info": info,
        "onnx": {
            "opset": OPSET,
            "ir_version": proto.ir_version,
            "bytes": len(blob),
            "sha256": hashlib.sha256(blob).hexdigest(),
        },
        "schema": family.io_schema(cfg),
        "model_config": cfg.to_dict(),
        "metadata_props": meta,
        "variant_check": check,
    }


__all__ = [
    "ExportReport",
    "MAX_AUROC_DROP",
    "MAX_PROB_DIFF",
    "card_path_for",
    "export_onnx",
    "model_card",
    "model_metadata",
    "strip_debug_info",
]
