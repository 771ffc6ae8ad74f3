"""Many inputs at once: one onnxruntime session per worker process, the cores shared out
between them (``chromaformer score --jobs N``). Each input's outputs stay atomic; the
first input that fails stops the run with its own error, and the inputs that finished
before it keep their outputs, as when they are scored one after another."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Optional, Sequence

from .._util.system import PathLike, bounded, cores, env_threads
from .engine import Scorer, ScoreResult, score

_WORKER: dict[str, Any] = {}


def _start(model: str, device: str, threads: int) -> None:
    _WORKER["scorer"] = Scorer(model, device=device, threads=threads)
    _WORKER["threads"] = threads


def _one(source: str, output: str, options: dict[str, Any]) -> ScoreResult:
    return score(_WORKER["scorer"], source, output, threads=_WORKER["threads"], **options)


def score_many(
    model: PathLike,
    sources: Sequence[PathLike],
    outputs: Sequence[PathLike],
    *,
    jobs: int,
    device: str = "cpu",
    threads: Optional[int] = None,
    done: Optional[Callable[[ScoreResult], None]] = None,
    per_input: Optional[Sequence[dict[str, Any]]] = None,
    **options: Any,
) -> list[ScoreResult]:
    """Score ``sources[i]`` into ``outputs[i]`` in ``jobs`` worker processes (spawned: no
    onnxruntime state is forked), each with ``threads`` threads for parsing and inference
    (default: ``OMP_NUM_THREADS``, else the cores, divided by ``jobs``). ``done(result)``
    is called in this process as each input finishes. ``options``:
    :func:`chromaformer.scoring.score`'s keywords for every input; ``per_input[i]``:
    those of input i alone (its ``track`` or ``attention`` path)."""
    jobs = bounded(jobs) or 1
    per_job = bounded(threads) or max(1, (env_threads() or cores()) // jobs)
    results: dict[int, ScoreResult] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(sources))),
        mp_context=ctx,
        initializer=_start,
        initargs=(os.fspath(model), device, per_job),
    ) as pool:
        futures: dict[Future, int] = {
            pool.submit(
                _one, os.fspath(s), os.fspath(o), {**options, **(per_input[i] if per_input else {})}
            ): i
            for i, (s, o) in enumerate(zip(sources, outputs))
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in sorted(finished, key=futures.__getitem__):
                err = fut.exception()
                if err is not None:  # the rest is cancelled; running inputs finish
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise err
                res = fut.result()
                results[futures[fut]] = res
                if done is not None:
                    done(res)
    return [results[i] for i in sorted(results)]


__all__ = ["cores", "score_many"]
