"""``chromaformer demo`` as a library function: the whole product on a built-in default.

real (the default): the bundled GM12878 (E116) tracks -> prepare bin CSVs -> train ->
export -> score the validation genes, beside the baselines and the shipped model.
simulated: simulate a genome -> parse it (C++) -> train a model on part of it -> export to
ONNX -> score the whole genome with onnxruntime. chromoformer: the same in Chromoformer's
layout. Each step reports one line through ``echo``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .errors import DataError
from .layout import BIN_SIZE
from .metrics import describe_gap

#: The demo's defaults: genes in the simulated set per family, epochs, training genes,
#: and the architecture per data set.
DEMO: dict[str, Any] = {
    "genes": {"bins": 20000, "chromoformer": 400},
    "epochs": 3,
    "train_genes": 4000,
    "model": {"real": "cnn", "simulated": "hybrid"},
}
DATA_SETS = ("real", "simulated")


def verdict(metrics: dict[str, Any]) -> str:
    """How the model stands against each baseline, with the noise of the genes drawn:
    ``level with`` where the gap's bootstrap interval holds 0."""
    names = metrics["baseline_names"]
    parts = [describe_gap(names[k], g) for k, g in metrics.get("gaps", {}).items()]
    genes = metrics["genes"].get(metrics["evaluated_on"], 0)
    return (
        "the model is " + "; ".join(parts) + f" (AUROC; paired bootstrap over the {genes:,} "
        f"{metrics['evaluated_on']} genes)"
    )


def run_demo(
    out: str = "chromaformer-demo",
    *,
    data: str = "real",
    model: Optional[str] = None,
    genes: Optional[int] = None,
    train_genes: Optional[int] = None,
    seed: int = 1,
    epochs: Optional[int] = None,
    train: bool = True,
    threads: Optional[int] = None,
    quiet: bool = False,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns what it measured (metrics, paths, speeds).
    ``data``: ``real`` (the bundled E116 genes; ``model`` a bin architecture) or
    ``simulated`` (``genes``/``train_genes``/``epochs`` apply; ``model`` may be
    chromoformer)."""
    from .families import family_of

    if data not in DATA_SETS:
        raise ValueError(f"data must be one of {', '.join(DATA_SETS)}, got {data!r}")
    model = model or DEMO["model"][data]
    family = family_of(model)
    folder = Path(out)
    if data == "real":
        if family.name != "bins":
            raise DataError(
                f"the real-data demo trains a bin model, not {model} (use --data simulated)"
            )
        given = {"--genes": genes, "--train-genes": train_genes}
        extra = [k for k, v in given.items() if v is not None] + ([] if train else ["--no-train"])
        if extra:
            raise DataError(f"{', '.join(extra)}: for --data simulated, not the real-data demo")
        folder.mkdir(parents=True, exist_ok=True)
        return _real(folder, model, seed, epochs, threads, quiet, echo)
    folder.mkdir(parents=True, exist_ok=True)
    genes = genes or DEMO["genes"][family.name]
    epochs = epochs or DEMO["epochs"]
    if family.name == "chromoformer":
        return _chromoformer(folder, genes, epochs, seed, threads, quiet, echo)
    return _bins(
        folder,
        model,
        genes,
        train_genes or DEMO["train_genes"],
        seed,
        epochs,
        train,
        threads,
        quiet,
        echo,
    )


def _bins(
    folder: Path,
    model: str,
    genes: int,
    train_genes: int,
    seed: int,
    epochs: int,
    do_train: bool,
    threads: Optional[int],
    quiet: bool,
    echo: Callable[[str], Any],
) -> dict[str, Any]:
    from .data.summary import format_summary, summarize
    from .formats.bincsv import read_bins, write_bins
    from .simulate import write_simulated

    genome = folder / "genome.csv"
    steps = 5 if do_train else 2
    t0 = time.perf_counter()
    write_simulated(genome, genes, seed=seed)
    echo(
        f"[1/{steps}] simulated {genes:,} genes -> {genome} "
        f"({os.path.getsize(genome) / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)"
    )
    read_bins(genome, threads=threads)  # warm the page cache: time the parser, not the disk
    t0 = time.perf_counter()
    data = read_bins(genome, threads=threads)
    seconds = time.perf_counter() - t0
    size = os.path.getsize(genome)
    echo(
        f"[2/{steps}] parsed {genome}: {data.n_genes * data.n_bins:,} rows in "
        f"{seconds * 1e3:.0f} ms = {size / 1e6 / seconds:,.0f} MB/s, "
        f"{data.n_genes * data.n_bins / seconds / 1e6:.1f} M rows/s "
        f"-> counts {data.counts.dtype} {tuple(data.counts.shape)}"
    )
    echo(format_summary(summarize(data)))
    result: dict[str, Any] = {"genome": genome, "parse_seconds": seconds}
    if not do_train:
        return result
    from .export import export_onnx
    from .scoring import Scorer, score
    from .training import TrainConfig
    from .training import train as run_training

    # the first genes train / validate / test; the rest stay unseen until scoring
    n_eval = max(1, train_genes // 4)
    used = min(data.n_genes - 1, train_genes + 2 * n_eval)
    parts = np.array_split(np.arange(used), [train_genes, train_genes + n_eval])
    root = folder / "data"
    for split, idx in zip(("train", "valid", "test"), parts):
        write_bins(
            root / "SIM" / "classification" / f"{split}.csv",
            data.counts[idx],
            data.labels[idx],
            data.gene_ids[idx],
            bin_size=BIN_SIZE,
        )
    run = folder / "runs" / model
    t0 = time.perf_counter()
    metrics = run_training(
        TrainConfig(
            out=str(run),
            data_root=str(root),
            cell_types=["SIM"],
            epochs=epochs,
            min_steps=0,
            seed=seed,
            quiet=quiet,
            threads=threads,
        ),
        model,
    )
    test, bases = metrics["test"], metrics["baselines"]
    lr, gb = bases["linear"], bases["gradient_boosting"]
    echo(
        f"[3/5] trained {model} for {epochs} epochs on {len(parts[0]):,} genes in "
        f"{time.perf_counter() - t0:.0f} s ({metrics['device']}): test AUROC "
        f"{test['mean_auroc']:.4f}, AUPR {test['mean_aupr']:.4f} (logistic regression: "
        f"{lr['mean_auroc']:.4f} / {lr['mean_aupr']:.4f}, gradient boosting: "
        f"{gb['mean_auroc']:.4f} / {gb['mean_aupr']:.4f}) -> {run}"
    )
    echo(f"      {verdict(metrics)}")
    t0 = time.perf_counter()
    onnx_path = folder / f"{model}.onnx"
    report = export_onnx(run, onnx_path)
    echo(
        f"[4/5] exported {onnx_path} ({report.size_bytes / 1e3:,.0f} kB) and "
        f"{report.card.name} in {time.perf_counter() - t0:.0f} s"
    )
    from ._util.progress import bar

    scores_path = folder / "genome.scores.tsv"
    progress = bar(total=data.n_genes, quiet=quiet, unit="gene")
    res = score(
        Scorer(onnx_path, threads=threads),
        genome,
        scores_path,
        threads=threads,
        progress=lambda g, _done: progress.update(g),
    )
    progress.close()
    from sklearn.metrics import roc_auc_score

    unseen = np.arange(used, data.n_genes)
    held = (
        float(roc_auc_score(data.labels[unseen], res.values[unseen]))
        if len(unseen) > 1
        else float("nan")
    )
    echo(
        f"[5/5] scored {res.genes:,} genes in {res.seconds:.2f} s "
        f"({res.genes_per_second:,.0f} genes/s, onnxruntime CPU) -> {scores_path}"
        + (
            f"; AUROC {held:.4f} on the {len(unseen):,} genes never used in training"
            if len(unseen) > 1
            else ""
        )
    )
    result.update(
        metrics=metrics,
        model=onnx_path,
        scores=scores_path,
        unseen_auroc=held,
        genes_per_second=res.genes_per_second,
    )
    return result


def _chromoformer(
    folder: Path,
    genes: int,
    epochs: int,
    seed: int,
    threads: Optional[int],
    quiet: bool,
    echo: Callable[[str], Any],
) -> dict[str, Any]:
    """simulate (Chromoformer layout) -> train clf on folds 2-4 -> export -> score all."""
    from .export import export_onnx
    from .scoring import Scorer, score
    from .simulate import npy_bytes, simulate_chromoformer
    from .training import TrainConfig
    from .training import train as run_training

    data = folder / "chromoformer"
    t0 = time.perf_counter()
    meta = simulate_chromoformer(str(data), genes, seed=seed)
    echo(
        f"[1/4] simulated {genes:,} genes in Chromoformer's layout -> {data} "
        f"({int(meta.neighbors.fillna('').str.count(':').sum()):,} interacting "
        f"regions, {npy_bytes(str(data)) / 1e6:.0f} MB, {time.perf_counter() - t0:.1f} s)"
    )
    run = folder / "runs" / "chromoformer"
    tc = TrainConfig(
        out=str(run),
        meta=[str(data / "meta.csv")],
        npy_dir=[str(data / "npy")],
        fold=1,
        epochs=epochs,
        lr=1e-4,
        batch_size=32,
        seed=seed,
        threads=threads,
        quiet=quiet,
    )
    t0 = time.perf_counter()
    metrics = run_training(tc, "chromoformer")
    best = metrics["best_valid"]
    echo(
        f"[2/4] trained Chromoformer (clf) for {epochs} epochs on "
        f"{metrics['genes']['train']} genes in {time.perf_counter() - t0:.0f} s "
        f"({metrics['device']}): validation AUROC {best['mean_auroc']:.4f} on the "
        f"{metrics['genes']['valid']} genes of fold 1 (logistic regression: "
        f"{metrics['baseline']['mean_auroc']:.4f}) -> {run}"
    )
    t0 = time.perf_counter()
    rep = export_onnx(run, folder / "chromoformer.onnx")
    echo(
        f"[3/4] exported {rep.path} ({rep.size_bytes / 1e6:.1f} MB) in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    sc = score(
        Scorer(rep.path, threads=threads),
        ([str(data / "meta.csv")], [str(data / "npy")]),
        folder / "chromoformer.scores.tsv",
        threads=threads,
    )
    echo(
        f"[4/4] scored {sc.genes:,} genes in {sc.seconds:.1f} s "
        f"({sc.genes_per_second:,.0f} genes/s, onnxruntime CPU) -> {sc.output}; AUROC "
        f"{sc.metrics.get('auroc', float('nan')):.4f} over all genes (training folds "
        "included)"
    )
    return {
        "metrics": metrics,
        "model": rep.path,
        "scores": sc.output,
        "genes_per_second": sc.genes_per_second,
    }


def _real(
    folder: Path,
    model: str,
    seed: int,
    epochs: Optional[int],
    threads: Optional[int],
    quiet: bool,
    echo: Callable[[str], Any],
) -> dict[str, Any]:
    """GM12878 tracks -> prepare -> train on GC-MERGE's train genes -> export -> score
    the validation genes; the model beside the baselines and the shipped e116 model."""
    from .export import export_onnx
    from .prepare.real import E116_BIN_SIZE, prepare_e116
    from .pretrained import pretrained_names
    from .scoring import Scorer, score
    from .training import TrainConfig
    from .training import train as run_training

    root = folder / "e116"
    t0 = time.perf_counter()
    prepared = prepare_e116(root)
    echo(
        f"[1/4] prepared the bundled GM12878 (E116) tracks: "
        f"{prepared['train'].genes_written:,} train + {prepared['valid'].genes_written:,} "
        f"validation genes x 21 bins of {E116_BIN_SIZE // 1000} kb x 5 marks -> "
        f"{root} ({time.perf_counter() - t0:.1f} s)"
    )
    run = folder / "runs" / f"e116-{model}"
    t0 = time.perf_counter()
    metrics = run_training(
        TrainConfig(
            out=str(run),
            data_root=str(root),
            cell_types=["E116"],
            seed=seed,
            epochs=epochs,
            quiet=quiet,
            threads=threads,
        ),
        model,
    )
    test, bases = metrics["test"], metrics["baselines"]
    echo(
        f"[2/4] trained {model} on {metrics['genes']['train']:,} genes in "
        f"{time.perf_counter() - t0:.0f} s ({metrics['device']}, best epoch "
        f"{metrics['best_epoch']} of {metrics['epochs_run']}): validation AUROC "
        f"{test['mean_auroc']:.4f} (logistic regression {bases['linear']['mean_auroc']:.4f}, "
        f"gradient boosting {bases['gradient_boosting']['mean_auroc']:.4f}) -> {run}"
    )
    echo(f"      {verdict(metrics)}")
    t0 = time.perf_counter()
    onnx_path = folder / f"e116-{model}.onnx"
    report = export_onnx(run, onnx_path)
    echo(
        f"[3/4] exported {onnx_path} ({report.size_bytes / 1e3:,.0f} kB) and "
        f"{report.card.name} in {time.perf_counter() - t0:.0f} s"
    )
    valid = root / "E116" / "classification" / "valid.csv"
    res = score(
        Scorer(onnx_path, threads=threads),
        valid,
        folder / "e116-valid.scores.tsv",
        threads=threads,
    )
    line = (
        f"[4/4] scored the {res.genes:,} validation genes in {res.seconds:.2f} s "
        f"-> {res.output}: AUROC {res.metrics['auroc']:.4f}"
    )
    result: dict[str, Any] = {"metrics": metrics, "model": onnx_path, "scores": res.output}
    if "e116" in pretrained_names():
        shipped = score(
            Scorer("e116", threads=threads),
            valid,
            folder / "e116-valid.shipped.scores.tsv",
            threads=threads,
        )
        result["shipped_auroc"] = float(shipped.metrics["auroc"])
        line += f"; the shipped model (--model e116): {result['shipped_auroc']:.4f}"
    echo(line)
    return result
