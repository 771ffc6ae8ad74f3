"""Export a trained model to one self-contained, self-describing ONNX file.

The file's contract (input/output names and shapes, metadata keys) is written out in
``export/CONTRACT.md``; :mod:`chromaformer.scoring` and the Node.js scorer in
``export/node`` rely on nothing else.

Needs torch, onnx and onnxscript (``pip install chromaformer[export]``); scoring the
result needs only onnxruntime.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import onnx
import torch
from torch import nn

from . import __version__
from ._atomic import atomic_path
from .errors import DataError
from .models.checkpoint import model_from_checkpoint, read_checkpoint
from .models.config import ModelConfig
from .models.grouped import grouped_copy

PathLike = Union[str, os.PathLike]

OPSET = 18
INPUT = "counts"
OUTPUTS = ("probability", "logit", "bin_attention", "mark_attention")
VARIANTS = ("fp32", "int8", "fp16")
#: A variant whose probabilities move further than this from the float model's on the
#: check sample is refused (unless forced): beyond it, rankings of genes change.
MAX_PROB_DIFF = 0.02
#: ... and one whose AUROC on the (labelled) check sample drops by more than this.
MAX_AUROC_DROP = 0.005

DOC = ("Predicts whether a gene is highly expressed (probability that its expression "
       "is at or above the median of its cell type) from histone-modification read "
       "counts in {bins} bins of {bin_size} bp around its transcription start site "
       "(+-{window} bp), marks in the order {marks}.")


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    card: Path
    variant: str
    size_bytes: int
    metadata: dict[str, str]
    check: dict[str, Any] = field(default_factory=dict)


class _Exportable(nn.Module):
    """The model with tuple outputs in the contract's order, probability first."""

    def __init__(self, model: nn.Module, grouped: bool = True) -> None:
        super().__init__()
        self.model = grouped_copy(model) if grouped else model
        self.attention = model.config.has_attention

    def forward(self, counts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(counts)
        logit = out["logit"]
        if self.attention:
            return torch.sigmoid(logit), logit, out["bin_attention"], out["mark_attention"]
        return torch.sigmoid(logit), logit


def output_names(cfg: ModelConfig) -> tuple[str, ...]:
    return OUTPUTS if cfg.has_attention else OUTPUTS[:2]


def model_metadata(cfg: ModelConfig, ckpt: dict[str, Any], variant: str) -> dict[str, str]:
    """The ``metadata_props`` of an exported model: plain strings, JSON where nested."""
    valid = ckpt.get("valid") or {}
    return {
        "chromaformer_version": __version__,
        "task": "clf",
        "architecture": cfg.arch,
        "marks": ",".join(cfg.marks),
        "bins": str(cfg.bins),
        "bin_size": str(cfg.bin_size),
        "window": str(cfg.bins * cfg.bin_size // 2),
        "input_transform": cfg.input_transform,
        "input": INPUT,
        "outputs": ",".join(output_names(cfg)),
        "model_config": json.dumps(cfg.to_dict(), sort_keys=True),
        "training_cell_types": ",".join(ckpt.get("cell_types") or []),
        "training_epoch": str(ckpt.get("epoch", "")),
        "validation_metrics": json.dumps(
            {k: valid[k] for k in ("mean_auroc", "mean_aupr", "pooled") if k in valid},
            sort_keys=True),
        "variant": variant,
    }


def strip_debug_info(model: onnx.ModelProto) -> None:
    """Drop what the dynamo exporter records per node (stack traces, source paths,
    module names) and per value, so the file is small and byte-reproducible."""

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
    for fn in model.functions:
        fn.doc_string = ""
        for node in fn.node:
            node.doc_string = ""
            del node.metadata_props[:]


def _describe(model: onnx.ModelProto, cfg: ModelConfig, meta: dict[str, str]) -> None:
    _label(model, DOC.format(bins=cfg.bins, bin_size=cfg.bin_size, marks=", ".join(cfg.marks),
                             window=cfg.bins * cfg.bin_size // 2), meta, io_schema(cfg))


def _label(model: onnx.ModelProto, doc: str, meta: dict[str, str],
           schema: dict[str, Any]) -> None:
    """Doc string, producer, metadata_props, and a doc string per graph input/output."""
    model.doc_string = doc
    model.producer_name = "chromaformer"
    model.producer_version = __version__
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    docs = {name: f"{spec['dtype']} {spec['shape']}: {spec['doc']}"
            for name, spec in {**schema["inputs"], **schema["outputs"]}.items()}
    for v in list(model.graph.input) + list(model.graph.output):
        v.doc_string = docs.get(v.name, "")


def _torch_export(cfg: ModelConfig, model: nn.Module, grouped: bool = True) -> onnx.ModelProto:
    wrapper = _Exportable(model, grouped).eval()
    # batch >= 2 in the example: a batch of 1 gets specialised into the graph
    gen = torch.Generator().manual_seed(0)
    example = torch.poisson(torch.full((4, cfg.bins, cfg.n_marks), 3.0), generator=gen)
    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapper, (example,), input_names=[INPUT], output_names=list(output_names(cfg)),
            dynamic_shapes={"counts": {0: batch}}, dynamo=True, external_data=False,
            opset_version=OPSET, optimize=True, verbose=False)
    return program.model_proto


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the dynamo exporter's logging, warnings and prints; no grad."""
    noisy = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript",
             "torch._export", "torch._subclasses", "torch.onnx._internal")
    levels = {n: logging.getLogger(n).level for n in noisy}
    try:
        for n in noisy:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                torch.no_grad():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _check_sample(cfg: ModelConfig, genes: int = 2000) -> tuple[np.ndarray, Optional[np.ndarray], str]:
    """Inputs on which a variant is compared with the float model: the bundled real
    cells when the model takes the benchmark's marks and bins, else simulated genes."""
    from .constants import BENCHMARK_BINS, BENCHMARK_MARKS
    from .datasets import PACKAGE_DATA, load_split

    if tuple(cfg.marks) == tuple(BENCHMARK_MARKS) and cfg.bins == BENCHMARK_BINS:
        root = PACKAGE_DATA / "deepdiff_sample"
        counts, labels = [], []
        for split in ("valid", "test"):
            ds = load_split(root, ["Cell1", "Cell2"], split)
            counts.append(ds.counts)
            labels.append(ds.labels)
        return (np.concatenate(counts), np.concatenate(labels),
                "bundled real sample: deepdiff Cell1+Cell2 valid+test, 800 genes")
    from .simulate import simulate_genome

    sim = simulate_genome(genes, bins=cfg.bins, marks=cfg.n_marks, seed=11)
    return sim.counts, sim.labels, f"{genes} simulated genes"


def _compare(reference: bytes, candidate: bytes, cfg: ModelConfig) -> dict[str, Any]:
    import onnxruntime as ort
    from sklearn.metrics import roc_auc_score

    from .scoring import session_options

    counts, labels, source = _check_sample(cfg)
    probs = []
    for blob in (reference, candidate):
        sess = ort.InferenceSession(blob, session_options(), providers=["CPUExecutionProvider"])
        probs.append(sess.run(["probability"], {INPUT: counts})[0].astype(np.float64))
    diff = np.abs(probs[0] - probs[1])
    out: dict[str, Any] = {"sample": source, "genes": int(len(counts)),
                           "max_prob_diff": float(diff.max()), "mean_prob_diff": float(diff.mean())}
    if labels is not None and len(np.unique(labels)) == 2:
        a0, a1 = roc_auc_score(labels, probs[0]), roc_auc_score(labels, probs[1])
        out.update(auroc_fp32=float(a0), auroc_variant=float(a1), auroc_change=float(a1 - a0))
    return out


def _int8(model: onnx.ModelProto, workdir: Path) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre, out = workdir / "fp32.onnx", workdir / "pre.onnx", workdir / "int8.onnx"
    onnx.save(model, src)
    # quantize_dynamic needs the shapes that quant_pre_process infers on dynamo graphs;
    # reduce_range (7-bit weights) avoids the saturation that moves probabilities by ~0.3
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, reduce_range=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
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


def export_onnx(source: Union[PathLike, dict[str, Any]], out: PathLike, *, variant: str = "fp32",
                force: bool = False, grouped: bool = True) -> ExportReport:
    """Export a run folder or checkpoint to ``out`` (.onnx) plus a model card beside it
    (``<out stem>.model.json``). Both are written atomically. ``source`` may also be an
    fp32 .onnx from this function, to make an int8/fp16 variant of it.

    ``variant``: ``fp32`` (exact), ``int8`` (dynamic quantization of the MatMuls:
    smaller file) or ``fp16`` (half the size; for the CUDA provider). Variants are
    compared with the float model on a check sample; one that moves probabilities by
    more than :data:`MAX_PROB_DIFF` or AUROC by more than :data:`MAX_AUROC_DROP` raises
    :class:`DataError` unless ``force``. ``grouped=False`` exports the per-mark LSTMs
    as they train, one ONNX ``LSTM`` node each (slower; kept for comparison).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if not isinstance(source, dict) and str(source).endswith(".onnx"):
        # a variant of an exported model: no torch re-export needed
        proto = onnx.load(os.fspath(source))
        stored = {p.key: p.value for p in proto.metadata_props}
        if "model_config" not in stored or stored.get("variant", "fp32") != "fp32":
            raise DataError(f"{source}: not an fp32 model from chromaformer-export "
                            "(variants are made from the fp32 export or a run folder)")
        cfg = ModelConfig.from_dict(json.loads(stored["model_config"]))
        meta = {**stored, "variant": variant}
    else:
        ckpt = source if isinstance(source, dict) else read_checkpoint(source)
        model = model_from_checkpoint(ckpt)
        if getattr(model.config, "arch", "") == "chromoformer":
            if variant != "fp32":
                raise DataError(f"{variant} variants are not made for Chromoformer yet; "
                                "export fp32")
            return export_chromoformer(model, ckpt, out)
        cfg = model.config
        meta = model_metadata(cfg, ckpt, variant)
        proto = _torch_export(cfg, model, grouped)
        strip_debug_info(proto)
        _describe(proto, cfg, meta)
        onnx.checker.check_model(proto, full_check=True)
    check: dict[str, Any] = {}
    if variant != "fp32":
        reference = proto.SerializeToString()
        with tempfile.TemporaryDirectory(prefix="chromaformer-export-") as tmp:
            proto = _int8(proto, Path(tmp)) if variant == "int8" else _fp16(proto)
        strip_debug_info(proto)
        check = _compare(reference, proto.SerializeToString(), cfg)
        meta["variant_check"] = json.dumps(check, sort_keys=True)
        _describe(proto, cfg, meta)
        onnx.checker.check_model(proto)
        too_far = check["max_prob_diff"] > MAX_PROB_DIFF or \
            check.get("auroc_change", 0.0) < -MAX_AUROC_DROP
        if too_far and not force:
            raise DataError(
                f"{out}: the {variant} variant moves probabilities by up to "
                f"{check['max_prob_diff']:.4f} (bound {MAX_PROB_DIFF}) and AUROC by "
                f"{check.get('auroc_change', 0.0):+.4f} (bound -{MAX_AUROC_DROP}) on the "
                f"{check['sample']}; nothing written (--force writes it anyway)")
    blob = proto.SerializeToString()
    card_path = _write_model(out, blob, model_card(cfg, meta, proto, blob, check))
    return ExportReport(Path(out), card_path, variant, len(blob), meta, check)


def _onnx_facts(proto: onnx.ModelProto, blob: bytes) -> dict[str, Any]:
    return {"opset": OPSET, "ir_version": proto.ir_version, "bytes": len(blob),
            "sha256": hashlib.sha256(blob).hexdigest()}


def _write_model(out: PathLike, blob: bytes, card: dict[str, Any]) -> Path:
    """Write the model and its card beside it, both atomically; returns the card's path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    card_path = card_path_for(out)
    with atomic_path(card_path) as tmp_card, atomic_path(out) as tmp_model:
        Path(tmp_model).write_bytes(blob)
        Path(tmp_card).write_text(json.dumps(card, indent=2, default=float) + "\n")
    return card_path


def io_schema(cfg: ModelConfig) -> dict[str, Any]:
    """The graph's input and outputs: shape, dtype and meaning (card and doc strings)."""
    outputs = {
        "probability": {"shape": ["batch"], "dtype": "float32",
                        "doc": "P(expression >= median of the cell type)"},
        "logit": {"shape": ["batch"], "dtype": "float32", "doc": "log-odds of the same"},
        "bin_attention": {"shape": ["batch", cfg.n_marks, cfg.bins], "dtype": "float32",
                          "doc": "per-mark attention over bins; sums to 1 over bins"},
        "mark_attention": {"shape": ["batch", cfg.n_marks], "dtype": "float32",
                           "doc": "attention over marks; sums to 1"},
    }
    counts = {"shape": ["batch", cfg.bins, cfg.n_marks], "dtype": "float32",
              "doc": "raw read counts per bin (bin 1 upstream of the TSS on the gene's "
                     "strand), marks in `marks` order",
              "marks": list(cfg.marks), "bins": cfg.bins, "bin_size": cfg.bin_size,
              "window": cfg.bins * cfg.bin_size // 2, "input_transform": cfg.input_transform}
    return {"inputs": {INPUT: counts}, "outputs": {k: outputs[k] for k in output_names(cfg)}}


def card_path_for(model_path: PathLike) -> Path:
    p = Path(model_path)
    return p.with_name(p.stem + ".model.json")


def model_card(cfg: ModelConfig, meta: dict[str, str], proto: onnx.ModelProto, blob: bytes,
               check: dict[str, Any]) -> dict[str, Any]:
    """The same facts as the ONNX metadata, as JSON, in the spirit of kipoi's model.yaml:
    ``info`` + an input/output ``schema``."""
    return {
        "format": "chromaformer-model-card/1",
        "info": {"doc": proto.doc_string, "architecture": cfg.arch, "task": "clf",
                 "variant": meta["variant"], "chromaformer_version": __version__,
                 "training_cell_types": [c for c in meta["training_cell_types"].split(",") if c],
                 "training_epoch": meta["training_epoch"],
                 "validation_metrics": json.loads(meta["validation_metrics"]),
                 "license": "MIT"},
        "onnx": _onnx_facts(proto, blob),
        "schema": io_schema(cfg),
        "model_config": cfg.to_dict(),
        "metadata_props": meta,
        "variant_check": check,
    }


class _ChromoformerExportable(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.names = model.output_names()

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*xs)
        return tuple(out[n] for n in self.names)


CHROMOFORMER_DOC = (
    "chromaformer Chromoformer ({task}). Per gene: the promoter (TSS +- 20 kb) binned at "
    "{sizes} bp, log(mean depth + 1) per bin, 5'->3' on the gene's strand; up to {i_max} "
    "interacting regions binned alike, centred and zero-padded; their lengths in bp (0 = "
    "none) and interaction scores. Marks: {marks}. Dynamic batch.")


def chromoformer_io(cfg) -> dict[str, Any]:
    one: dict[str, Any] = {}
    for b in cfg.bin_sizes:
        n = cfg.window // b
        one[f"promoter_{b}"] = {"shape": ["batch", n, cfg.n_marks], "dtype": "float32",
                                "doc": f"promoter, {n} bins of {b} bp, log(mean depth + 1)"}
    for b in cfg.bin_sizes:
        n = cfg.window // b
        one[f"pcre_{b}"] = {"shape": ["batch", cfg.i_max, n, cfg.n_marks], "dtype": "float32",
                            "doc": f"interacting regions, {n} bins of {b} bp, centred"}
    one["pcre_lengths"] = {"shape": ["batch", cfg.i_max], "dtype": "int64",
                           "doc": "region lengths in bp; 0 = no region"}
    one["pcre_scores"] = {"shape": ["batch", cfg.i_max], "dtype": "float32",
                          "doc": "normalised interaction frequencies"}
    if cfg.task == "diff":
        inputs = {f"{k}_{c}": v for c in ("a", "b") for k, v in one.items()}
    else:
        inputs = one
    outputs = {
        "clf": {"logits": {"shape": ["batch", 2], "dtype": "float32",
                           "doc": "class logits (0: low, 1: high)"},
                "probability": {"shape": ["batch"], "dtype": "float32",
                                "doc": "P(expression >= median)"}},
        "reg": {"prediction": {"shape": ["batch"], "dtype": "float32",
                               "doc": "log2(RPKM + 1)"}},
        "diff": {"log2fc": {"shape": ["batch"], "dtype": "float32",
                            "doc": "log2 fold change of expression, cell b over cell a"}},
    }[cfg.task]
    return {"inputs": inputs, "outputs": outputs}


def export_chromoformer(model: nn.Module, ckpt: dict[str, Any], out: PathLike) -> ExportReport:
    """Export a Chromoformer (any task) with a dynamic batch; inputs as :meth:`input_names`."""
    cfg = model.config
    names = model.input_names()
    from .chromoformer_sim import example_inputs

    example = tuple(torch.from_numpy(x) for x in example_inputs(cfg, 4))
    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        program = torch.onnx.export(
            _ChromoformerExportable(model).eval(), example, input_names=names,
            output_names=model.output_names(),
            dynamic_shapes=(tuple({0: batch} for _ in example),), dynamo=True,
            external_data=False, opset_version=OPSET, optimize=True, verbose=False)
    proto = program.model_proto
    strip_debug_info(proto)
    valid = ckpt.get("valid") or {}
    meta = {
        "chromaformer_version": __version__, "architecture": "chromoformer",
        "task": cfg.task, "marks": ",".join(cfg.marks),
        "bin_sizes": ",".join(str(b) for b in cfg.bin_sizes), "window": str(cfg.window // 2),
        "i_max": str(cfg.i_max), "inputs": ",".join(names),
        "outputs": ",".join(model.output_names()),
        "model_config": json.dumps(cfg.to_dict(), sort_keys=True),
        "training_fold": str(ckpt.get("fold", "")), "training_epoch": str(ckpt.get("epoch", "")),
        "validation_metrics": json.dumps(valid, sort_keys=True, default=float),
        "variant": "fp32",
    }
    schema = chromoformer_io(cfg)
    _label(proto, CHROMOFORMER_DOC.format(
        task=cfg.task, sizes="/".join(str(b) for b in cfg.bin_sizes), i_max=cfg.i_max,
        marks=", ".join(cfg.marks)), meta, schema)
    onnx.checker.check_model(proto, full_check=True)
    blob = proto.SerializeToString()
    card = {"format": "chromaformer-model-card/1",
            "info": {"doc": proto.doc_string, "architecture": "chromoformer", "task": cfg.task,
                     "variant": "fp32", "chromaformer_version": __version__,
                     "validation_metrics": valid, "license": "MIT"},
            "onnx": _onnx_facts(proto, blob),
            "schema": schema, "model_config": cfg.to_dict(), "metadata_props": meta}
    card_path = _write_model(out, blob, card)
    return ExportReport(Path(out), card_path, "fp32", len(blob), meta, {})
