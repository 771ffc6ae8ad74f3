"""onnxruntime sessions over exported models (no torch): options, providers, and what
the model says about itself."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Optional

from .._util.system import PathLike, cores, env_threads
from ..contract import ModelInfo, model_file
from ..errors import DataError

DEVICES = ("cpu", "cuda")


#: Most onnxruntime calls side by side on CPU (see :func:`thread_plan`).
MAX_CONCURRENT_RUNS = 4


def thread_plan(threads: Optional[int] = None, device: str = "cpu") -> tuple[int, Optional[int]]:
    """``(calls side by side, intra-op threads of each)`` for a thread budget.

    On CPU the budget (``threads``, else ``OMP_NUM_THREADS``, else the cores) goes first
    to whole calls side by side, up to :data:`MAX_CONCURRENT_RUNS`, each on one thread,
    and only then to threads within a call. A bin model's recurrence is 100 small steps,
    and one call spread over threads synchronises them at every step, so calls side by
    side on one thread each infer faster, with the same bits (see benchmarks/score.py).
    On CUDA: one call at a time, and ``threads`` as given (onnxruntime's
    default when None).
    """
    if device == "cuda":
        return 1, threads
    budget = threads or env_threads() or cores()
    calls = max(1, min(budget, MAX_CONCURRENT_RUNS))
    return calls, max(1, budget // calls)


def session_options(threads: Optional[int] = None) -> Any:
    """onnxruntime session options for a chromaformer model.

    Graphs are optimised at the EXTENDED level, not ALL: onnxruntime 1.31's layout
    optimisations crash (segfault) on fp16 graphs while creating a CPU session, and on
    the fp32 hybrid they gain nothing (see benchmarks/score.py).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    threads = threads or env_threads()  # else onnxruntime's default: the physical cores
    if threads:
        opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return opts


def _load_cuda_libraries(ort: Any) -> None:
    """onnxruntime-gpu from PyPI finds CUDA and cuDNN from the ``nvidia-*`` wheels (its
    ``[cuda,cudnn]`` extras, or PyTorch's) only once they are loaded: ``preload_dlls``
    loads them, or finds them on ``LD_LIBRARY_PATH``. Its messages go to stderr; if it
    fails, the session falls back to CPU and :func:`open_session` says so."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:  # onnxruntime < 1.21: the libraries must be on the loader's path
        return
    with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(Exception):
        preload()


def open_session(
    model: PathLike, device: str = "cpu", threads: Optional[int] = None
) -> tuple[Any, ModelInfo]:
    """An onnxruntime session on ``cpu`` or ``cuda`` and the model's :class:`ModelInfo`,
    with clear errors for a missing file, a non-model and a missing CUDA provider."""
    import onnxruntime as ort

    path = model_file(model)
    if device not in DEVICES:
        raise DataError(f"--device must be cpu or cuda, got {device!r}")
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise DataError(
                "--device cuda: this onnxruntime has no CUDA provider (it has "
                f"{', '.join(available)}); install onnxruntime-gpu in place of "
                "onnxruntime: pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
            )
        _load_cuda_libraries(ort)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(path, session_options(threads), providers=providers)
    except Exception as err:  # not ONNX, or not a model this runtime can run
        raise DataError(f"{path}: not a loadable ONNX model: {str(err).splitlines()[0]}") from None
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise DataError(
            "--device cuda: onnxruntime-gpu is installed but could not start "
            "its CUDA provider (no GPU visible, or CUDA/cuDNN libraries "
            "missing); run with --device cpu"
        )
    meta = dict(session.get_modelmeta().custom_metadata_map)
    info = ModelInfo.from_metadata(path, meta)
    check_graph(session, info)
    return session, info


def check_graph(session: Any, info: ModelInfo) -> None:
    """Refuse, in one line, a model whose graph disagrees with its metadata: other input
    names, a task whose output the graph lacks, outputs the metadata names but the graph
    lacks, a bin model's input not ``(genes, bins, marks)`` as recorded, or a primary
    output that is not one value per gene."""
    where = f"{info.path}: the graph and its metadata disagree"
    ins = [i.name for i in session.get_inputs()]
    outs = {o.name: o for o in session.get_outputs()}
    if sorted(ins) != sorted(info.inputs):
        raise DataError(f"{where}: graph inputs {','.join(ins)}, metadata {','.join(info.inputs)}")
    key = info.primary_output
    if key not in outs:
        raise DataError(
            f"{where}: task={info.task} needs the output {key!r}, the graph has {','.join(outs)}"
        )
    missing = [o for o in info.outputs if o not in outs]
    if missing:
        raise DataError(f"{where}: metadata outputs {','.join(missing)} are not in the graph")
    shape = outs[key].shape
    if len(shape) != 1:
        raise DataError(
            f"{where}: the output {key!r} has shape {list(shape)}; expected one value per "
            "gene, (genes,)"
        )
    if info.family == "bins":
        dims = session.get_inputs()[0].shape
        want = [None, info.bins, len(info.marks)]
        if len(dims) != 3 or any(
            isinstance(d, int) and w is not None and d != w for d, w in zip(dims, want)
        ):
            raise DataError(
                f"{where}: the input {ins[0]!r} has shape {list(dims)}; the metadata says "
                f"(genes, {info.bins} bins, {len(info.marks)} marks)"
            )
