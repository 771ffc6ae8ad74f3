"""``chromaformer demo``: the whole product on a built-in default, no download needed.

simulate a genome -> parse it (C++) -> train a model on part of it -> export to ONNX ->
score the whole genome with onnxruntime, printing metrics, output paths and speed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import click
import numpy as np

from ..io import read_bins
from ..simulate import write_simulated
from ..summary import format_summary, summarize
from ._common import one_line_errors, threads_option


@click.command("demo")
@click.option("--out", default="chromaformer-demo", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the demo's files.")
@click.option("--genes", default=None, type=click.IntRange(min=30),
              help="Genes in the simulated genome  [default: 20000; chromoformer 400]")
@click.option("--train-genes", default=4000, show_default=True, type=click.IntRange(min=10),
              help="Genes used for training (plus a quarter as many each for validation "
                   "and test); the rest of the genome is unseen until scoring.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--train/--no-train", "do_train", default=True, show_default=True,
              help="--no-train: only simulate and parse.")
@click.option("--model", default="hybrid", show_default=True,
              help="Architecture to train; chromoformer runs its own pipeline on a simulated "
                   "set in Chromoformer's layout (3D interactions).")
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(min=1))
@threads_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@one_line_errors
def demo(out: str, genes: Optional[int], train_genes: int, seed: int, do_train: bool,
         model: str, epochs: int, threads: int, quiet: bool) -> None:
    """Simulate a genome and run the product on it: parse, train, export, score."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if model == "chromoformer":
        _chromoformer_demo(folder, genes or 400, epochs, seed, threads, quiet)
        return
    genes = genes or 20000
    genome = folder / "genome.csv"
    steps = 5 if do_train else 2
    t0 = time.perf_counter()
    write_simulated(genome, genes, seed=seed)
    click.echo(f"[1/{steps}] simulated {genes:,} genes -> {genome} "
               f"({os.path.getsize(genome) / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    read_bins(genome, threads=threads)  # warm the page cache: time the parser, not the disk
    t0 = time.perf_counter()
    data = read_bins(genome, threads=threads)
    seconds = time.perf_counter() - t0
    size = os.path.getsize(genome)
    click.echo(f"[2/{steps}] parsed {genome}: {data.n_genes * data.n_bins:,} rows in "
               f"{seconds * 1e3:.0f} ms = {size / 1e6 / seconds:,.0f} MB/s, "
               f"{data.n_genes * data.n_bins / seconds / 1e6:.1f} M rows/s "
               f"-> counts {data.counts.dtype} {tuple(data.counts.shape)}")
    click.echo(format_summary(summarize(data)))
    if do_train:
        _train_export_score(folder, genome, data, model, epochs, train_genes, seed, threads,
                            quiet)


def _train_export_score(folder: Path, genome: Path, data, model: str, epochs: int,
                        train_genes: int, seed: int, threads, quiet: bool) -> None:
    from ..io import write_bins
    from ..models import ModelConfig
    from ..onnx_export import export_onnx
    from ..scoring import Scorer, score_file
    from ..training import TrainConfig, train

    # the first genes train / validate / test; the rest stay unseen until scoring
    n_eval = max(1, train_genes // 4)
    used = min(data.n_genes - 1, train_genes + 2 * n_eval)
    parts = np.array_split(np.arange(used), [train_genes, train_genes + n_eval])
    root = folder / "data"
    for split, idx in zip(("train", "valid", "test"), parts):
        write_bins(root / "SIM" / "classification" / f"{split}.csv", data.counts[idx],
                   data.labels[idx], data.gene_ids[idx])
    run = folder / "runs" / model
    t0 = time.perf_counter()
    metrics = train(TrainConfig(data_root=str(root), cell_types=["SIM"], out=str(run),
                                epochs=epochs, batch_size=64, lr=1e-3, seed=seed, quiet=quiet),
                    ModelConfig(arch=model, marks=data.marks, bins=data.n_bins))
    test, base = metrics["test"], metrics["baseline_logreg"]
    click.echo(f"[3/5] trained {model} for {epochs} epochs on {len(parts[0]):,} genes in "
               f"{time.perf_counter() - t0:.0f} s ({metrics['device']}): test AUROC "
               f"{test['mean_auroc']:.4f}, AUPR {test['mean_aupr']:.4f} (logistic regression: "
               f"{base['mean_auroc']:.4f} / {base['mean_aupr']:.4f}) -> {run}")
    t0 = time.perf_counter()
    onnx_path = folder / f"{model}.onnx"
    report = export_onnx(run, onnx_path)
    click.echo(f"[4/5] exported {onnx_path} ({report.size_bytes / 1e3:,.0f} kB) and "
               f"{report.card.name} in {time.perf_counter() - t0:.0f} s")
    scorer = Scorer(onnx_path, threads=threads)
    out = folder / "genome.scores.tsv"
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=data.n_genes, unit="genes", leave=False,
                   file=click.get_text_stream("stderr"))
    res = score_file(scorer, genome, out, threads=threads,
                     progress=(lambda g, _b: bar.update(g)) if bar is not None else None)
    if bar is not None:
        bar.close()
    from sklearn.metrics import roc_auc_score

    probs = res.probabilities
    unseen = np.arange(used, data.n_genes)
    held = (f"; AUROC {roc_auc_score(data.labels[unseen], probs[unseen]):.4f} on the "
            f"{len(unseen):,} genes never used in training") if len(unseen) > 1 else ""
    click.echo(f"[5/5] scored {res.genes:,} genes in {res.seconds:.2f} s "
               f"({res.genes_per_second:,.0f} genes/s, onnxruntime CPU) -> {out}{held}")


def _chromoformer_demo(folder: Path, genes: int, epochs: int, seed: int,
                       threads: Optional[int], quiet: bool) -> None:
    """simulate (Chromoformer layout) -> train clf on folds 2-4 -> export -> score all."""
    from ..chromoformer_scoring import score_chromoformer
    from ..chromoformer_sim import npy_bytes, simulate_chromoformer
    from ..chromoformer_training import ChromoformerTrainConfig, train_chromoformer
    from ..onnx_export import export_onnx

    data = folder / "chromoformer"
    t0 = time.perf_counter()
    meta = simulate_chromoformer(str(data), genes, seed=seed)
    click.echo(f"[1/4] simulated {genes:,} genes in Chromoformer's layout -> {data} "
               f"({int(meta.neighbors.fillna('').str.count(':').sum()):,} interacting "
               f"regions, {npy_bytes(str(data)) / 1e6:.0f} MB, {time.perf_counter() - t0:.1f} s)")
    run = folder / "runs" / "chromoformer"
    tc = ChromoformerTrainConfig(meta=[str(data / "meta.csv")], npy_dir=[str(data / "npy")],
                                 out=str(run), task="clf", fold=1, epochs=epochs, lr=1e-4,
                                 batch_size=32, seed=seed, threads=threads, quiet=quiet)
    t0 = time.perf_counter()
    res = train_chromoformer(tc)
    best = res["best_valid"]
    click.echo(f"[2/4] trained Chromoformer (clf) for {epochs} epochs on "
               f"{res['genes']['train']} genes in {time.perf_counter() - t0:.0f} s "
               f"({res['device']}): validation AUROC {best['auroc']:.4f} on the "
               f"{res['genes']['valid']} genes of fold 1 -> {run}")
    t0 = time.perf_counter()
    rep = export_onnx(run, folder / "chromoformer.onnx")
    click.echo(f"[3/4] exported {rep.path} ({rep.size_bytes / 1e6:.1f} MB) in "
               f"{time.perf_counter() - t0:.0f} s")
    sc = score_chromoformer(str(rep.path), [str(data / "meta.csv")], [str(data / "npy")],
                            str(folder / "chromoformer.scores.tsv"), threads=threads)
    click.echo(f"[4/4] scored {sc.genes:,} genes in {sc.seconds:.1f} s "
               f"({sc.genes_per_second:,.0f} genes/s, onnxruntime CPU) -> {sc.output}; AUROC "
               f"{sc.metrics.get('auroc', float('nan')):.4f} over all genes (training folds "
               "included)")
