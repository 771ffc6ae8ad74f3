"""Score bin CSVs with an exported model through onnxruntime (no torch needed).

Genes stream through in batches (:class:`~chromaformer.io.BinStream`), so memory stays
bounded by a few batches whatever the file size; parsing the next batch (C++, GIL
released) overlaps inference on the current one (onnxruntime, GIL released).
"""
from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from ._atomic import atomic_path
from .errors import DataError
from .io import Bins, BinStream

PathLike = Union[str, os.PathLike]
INPUT = "counts"
REQUIRED_KEYS = ("marks", "bins", "bin_size", "architecture", "outputs")


def session_options(threads: Optional[int] = None) -> Any:
    """onnxruntime session options for a chromaformer model.

    Graphs are optimised at the EXTENDED level, not ALL: onnxruntime 1.31's layout
    optimisations crash (segfault) on fp16 graphs while creating a CPU session, and
    measured on the fp32 hybrid they gain nothing (5,637 vs 4,733 genes/s at batch 1024
    on the 2-core development machine).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return opts


@dataclass
class ModelInfo:
    """What an exported model says about itself (its ``metadata_props``)."""

    path: str
    marks: tuple[str, ...]
    bins: int
    bin_size: int
    architecture: str
    outputs: tuple[str, ...]
    variant: str
    metadata: dict[str, str]

    @property
    def has_attention(self) -> bool:
        return "bin_attention" in self.outputs

    @classmethod
    def from_metadata(cls, path: str, meta: dict[str, str]) -> "ModelInfo":
        missing = [k for k in REQUIRED_KEYS if k not in meta]
        if missing:
            raise DataError(f"{path}: not a chromaformer model: its metadata lacks "
                            f"{', '.join(missing)} (export it with chromaformer-export)")
        return cls(path, tuple(meta["marks"].split(",")), int(meta["bins"]),
                   int(meta["bin_size"]), meta["architecture"],
                   tuple(meta["outputs"].split(",")), meta.get("variant", "fp32"), dict(meta))


def open_session(model: PathLike, device: str = "cpu", threads: Optional[int] = None):
    """An onnxruntime session on ``cpu`` or ``cuda`` and the model's metadata, with
    clear errors for a missing file, a non-model and a missing CUDA provider."""
    import onnxruntime as ort

    path = os.fspath(model)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such model file (expected an .onnx file from "
                        "chromaformer-export)")
    if device not in ("cpu", "cuda"):
        raise DataError(f"--device must be cpu or cuda, got {device!r}")
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise DataError(
                "--device cuda: this onnxruntime has no CUDA provider (it has "
                f"{', '.join(available)}); install onnxruntime-gpu in place of "
                "onnxruntime: pip uninstall -y onnxruntime && pip install onnxruntime-gpu")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(path, session_options(threads), providers=providers)
    except Exception as err:  # not ONNX, or not a model this runtime can run
        raise DataError(f"{path}: not a loadable ONNX model: "
                        f"{str(err).splitlines()[0]}") from None
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise DataError("--device cuda: onnxruntime-gpu is installed but could not start "
                        "its CUDA provider (no GPU visible, or CUDA/cuDNN libraries "
                        "missing); run with --device cpu")
    return session, dict(session.get_modelmeta().custom_metadata_map)


class Scorer:
    """An onnxruntime session over one exported model, on ``cpu`` or ``cuda``."""

    def __init__(self, model: PathLike, *, device: str = "cpu",
                 threads: Optional[int] = None) -> None:
        path = os.fspath(model)
        self.session, meta = open_session(path, device, threads)
        if meta.get("architecture") == "chromoformer":
            raise DataError(f"{path}: a Chromoformer model: it scores genes of the reference "
                            "layout (--meta META.csv --npy-dir DIR), not bin CSVs")
        self.info = ModelInfo.from_metadata(path, meta)
        self.device = device

    def check_layout(self, source: str, bins: int, marks: int) -> None:
        """A clear error when a file does not fit the model."""
        info = self.info
        if marks != len(info.marks):
            raise DataError(
                f"{source}: the file has {marks} mark columns but {Path(info.path).name} "
                f"expects {len(info.marks)} ({','.join(info.marks)}, in that order)")
        if bins != info.bins:
            raise DataError(
                f"{source}: genes have {bins} bins but {Path(info.path).name} expects "
                f"{info.bins} bins of {info.bin_size} bp")

    def predict(self, counts: np.ndarray, *, attention: bool = False,
                batch_size: int = 1024) -> dict[str, np.ndarray]:
        """Probabilities (and attention maps) for counts ``(genes, bins, marks)``."""
        names = ["probability"]
        if attention and self.info.has_attention:
            names += ["bin_attention", "mark_attention"]
        x = np.ascontiguousarray(counts, dtype=np.float32)
        parts = [self.session.run(names, {INPUT: x[i:i + batch_size]})
                 for i in range(0, len(x), batch_size)]
        if not parts:
            return {n: np.empty((0,), np.float32) for n in names}
        return {n: np.concatenate([p[k] for p in parts]) for k, n in enumerate(names)}


@dataclass
class ScoreResult:
    """One scored input."""

    input: str
    output: Path
    genes: int
    seconds: float
    probabilities: np.ndarray
    attention: Optional[Path] = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def genes_per_second(self) -> float:
        return self.genes / self.seconds if self.seconds > 0 else float("inf")


def _prefetch(batches: Iterator[Bins], depth: int = 2) -> Iterator[Bins]:
    """Parse ahead in a thread: the C++ reader releases the GIL, so the next batch is
    parsed while the current one is scored."""
    q: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for b in batches:
                while not stop.is_set():
                    try:
                        q.put(b, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as err:  # handed to the consumer
            q.put(err)

    t = threading.Thread(target=work, daemon=True, name="chromaformer-parse")
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


class _NpzStream:
    """Writes arrays of unknown final length to an .npz with bounded memory: chunks go
    to raw temporary files, then into the zip with an .npy header."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, Any] = {}
        self.meta: dict[str, tuple[np.dtype, tuple[int, ...], int]] = {}

    def add(self, name: str, arr: np.ndarray) -> None:
        if name not in self.files:
            self.files[name] = open(self.folder / f"{name}.raw", "wb")
            self.meta[name] = (arr.dtype, arr.shape[1:], 0)
        dtype, tail, n = self.meta[name]
        self.files[name].write(np.ascontiguousarray(arr, dtype=dtype).tobytes())
        self.meta[name] = (dtype, tail, n + len(arr))

    def write(self, target: Path, extra: dict[str, np.ndarray]) -> None:
        for f in self.files.values():
            f.close()
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, (dtype, tail, n) in self.meta.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as out, \
                        open(self.folder / f"{name}.raw", "rb") as raw:
                    np.lib.format.write_array_header_2_0(
                        out, {"descr": np.lib.format.dtype_to_descr(dtype),
                              "fortran_order": False, "shape": (n, *tail)})
                    while chunk := raw.read(1 << 24):
                        out.write(chunk)
            for name, arr in extra.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, np.asarray(arr), allow_pickle=False)


def score_file(scorer: Scorer, source: PathLike, output: PathLike, *,
               attention: Optional[PathLike] = None, batch_size: int = 1024,
               genes_per_chunk: int = 2048, threads: Optional[int] = None,
               labels: bool = True, progress: Optional[Callable[[int, int], None]] = None
               ) -> ScoreResult:
    """Score one bin CSV (plain or gzip) into a TSV ``gene_id, probability[, label]``.

    Outputs are written to temporaries and renamed into place at the end: a bad line
    anywhere in the input leaves no output file. ``progress(genes, bytes_read)`` is
    called after each chunk.
    """
    src = os.fspath(source)
    out = Path(output)
    attn_path = Path(attention) if attention is not None else None
    if attn_path is not None and not scorer.info.has_attention:
        raise DataError(f"{scorer.info.path}: the {scorer.info.architecture} architecture "
                        "has no attention maps to write")
    t0 = time.perf_counter()
    stream = BinStream(src, genes_per_chunk, threads=threads, integer_counts=False)
    all_labels: list[np.ndarray] = []
    all_probs: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    genes = 0
    with tempfile.TemporaryDirectory(prefix=".chromaformer-score-",
                                     dir=out.parent if out.parent.exists() else None) as tmp, \
            atomic_path(out) as tmp_out:
        npz = _NpzStream(Path(tmp)) if attn_path is not None else None
        with open(tmp_out, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("gene_id\tprobability\tlabel\n" if labels else "gene_id\tprobability\n")
            for batch in _prefetch(iter(stream)):
                if genes == 0:
                    scorer.check_layout(src, batch.n_bins, batch.n_marks)
                res = scorer.predict(batch.counts, attention=npz is not None,
                                     batch_size=batch_size)
                prob = res["probability"]
                cols = [batch.gene_ids, np.char.mod("%.7g", prob)]
                if labels:
                    cols.append(batch.labels.astype(str))
                fh.write("".join("\t".join(row) + "\n" for row in zip(*cols)))
                if npz is not None:
                    npz.add("bin_attention", res["bin_attention"])
                    npz.add("mark_attention", res["mark_attention"])
                    ids.append(batch.gene_ids)
                all_probs.append(prob)
                all_labels.append(batch.labels)
                genes += batch.n_genes
                if progress is not None:
                    progress(batch.n_genes, stream.bytes_read)
        if genes == 0:
            raise DataError(f"{src}: no genes to score")
        if npz is not None and attn_path is not None:
            gene_ids = np.concatenate(ids)
            with atomic_path(attn_path) as tmp_npz:
                npz.write(Path(tmp_npz), {"gene_id": gene_ids,
                                          "marks": np.array(scorer.info.marks)})
    seconds = time.perf_counter() - t0
    probs, lab = np.concatenate(all_probs), np.concatenate(all_labels)
    result = ScoreResult(src, out, genes, seconds, probs, attn_path)
    if labels and len(np.unique(lab)) == 2:
        from .metrics import auroc_aupr

        result.metrics = auroc_aupr(lab, probs)
    return result


def default_output(source: PathLike, suffix: str = ".scores.tsv") -> Path:
    """``sample.csv`` / ``sample.csv.gz`` -> ``sample.scores.tsv`` beside it."""
    p = Path(source)
    name = p.name
    for ext in (".csv.gz", ".csv", ".gz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + suffix)


def output_names(sources: Sequence[PathLike]) -> list[str]:
    """Distinct output stems for several inputs: the shortest trailing path parts that
    tell them apart (``E003/classification/test.csv`` -> ``E003_classification_test``)."""
    parts = [list(Path(default_output(s, "")).parts) for s in sources]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["_".join(p[-depth:]).lstrip("_/") for p in parts]
        if len(set(names)) == len(names):
            return names
    raise DataError("the same input is named twice")


def model_summary(info: ModelInfo) -> str:
    meta = info.metadata
    cells = meta.get("training_cell_types") or "?"
    valid = json.loads(meta.get("validation_metrics") or "{}")
    auroc = f", valid AUROC {valid['mean_auroc']:.4f}" if "mean_auroc" in valid else ""
    return (f"{info.architecture} ({info.variant}), {len(info.marks)} marks x {info.bins} bins "
            f"of {info.bin_size} bp, trained on {cells}{auroc}")
