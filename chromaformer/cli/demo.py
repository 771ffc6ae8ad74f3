"""``chromaformer demo``: the whole product on a built-in default, no download needed."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click
import numpy as np

from ..io import read_bins
from ..simulate import write_simulated
from ..summary import format_summary, summarize
from ._common import one_line_errors, threads_option


@click.command("demo")
@click.option("--out", default="chromaformer-demo", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the demo's files.")
@click.option("--genes", default=20000, show_default=True, type=click.IntRange(min=10),
              help="Genes in the simulated genome.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--train/--no-train", "do_train", default=False, show_default=True,
              help="Also split the genome into train/valid/test and train a model on it.")
@click.option("--model", default="hybrid", show_default=True, help="Architecture for --train.")
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(min=1))
@threads_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@one_line_errors
def demo(out: str, genes: int, seed: int, do_train: bool, model: str, epochs: int,
         threads: int, quiet: bool) -> None:
    """Simulate a genome, parse it with the C++ reader, and report what was read and
    how fast; with --train, train a model on it and report test metrics."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    genome = folder / "genome.csv"
    t0 = time.perf_counter()
    write_simulated(genome, genes, seed=seed)
    steps = 3 if do_train else 2
    click.echo(f"[1/{steps}] simulated {genes} genes -> {genome} "
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
        _train(folder, data, model, epochs, seed, steps, quiet)


def _train(folder: Path, data, model: str, epochs: int, seed: int, steps: int,
           quiet: bool) -> None:
    """Split the parsed genome 1/3 each into train/valid/test and train on it."""
    from ..io import write_bins
    from ..models import ModelConfig
    from ..training import TrainConfig, train

    root = folder / "data"
    thirds = np.array_split(np.arange(data.n_genes), 3)
    for split, idx in zip(("train", "valid", "test"), thirds):
        write_bins(root / "SIM" / "classification" / f"{split}.csv", data.counts[idx],
                   data.labels[idx], data.gene_ids[idx])
    run = folder / "runs" / model
    t0 = time.perf_counter()
    metrics = train(TrainConfig(data_root=str(root), cell_types=["SIM"], out=str(run),
                                epochs=epochs, batch_size=64, lr=1e-3, seed=seed, quiet=quiet),
                    ModelConfig(arch=model, marks=data.marks, bins=data.n_bins))
    test, base = metrics["test"], metrics["baseline_logreg"]
    click.echo(f"[3/{steps}] trained {model} for {epochs} epochs on {len(thirds[0])} genes in "
               f"{time.perf_counter() - t0:.0f} s ({metrics['device']}): test AUROC "
               f"{test['mean_auroc']:.4f}, AUPR {test['mean_aupr']:.4f} (logistic regression: "
               f"{base['mean_auroc']:.4f} / {base['mean_aupr']:.4f}) -> {run}")
