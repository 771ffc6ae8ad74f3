"""``chromaformer demo``: the whole product on a built-in default, no download needed."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click

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
@threads_option
@one_line_errors
def demo(out: str, genes: int, seed: int, threads: int) -> None:
    """Simulate a genome, parse it with the C++ reader, and report what was read and
    how fast."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    genome = folder / "genome.csv"
    t0 = time.perf_counter()
    write_simulated(genome, genes, seed=seed)
    click.echo(f"[1/2] simulated {genes} genes -> {genome} "
               f"({os.path.getsize(genome) / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    read_bins(genome, threads=threads)  # warm the page cache: time the parser, not the disk
    t0 = time.perf_counter()
    data = read_bins(genome, threads=threads)
    seconds = time.perf_counter() - t0
    size = os.path.getsize(genome)
    click.echo(f"[2/2] parsed {genome}: {data.n_genes * data.n_bins:,} rows in "
               f"{seconds * 1e3:.0f} ms = {size / 1e6 / seconds:,.0f} MB/s, "
               f"{data.n_genes * data.n_bins / seconds / 1e6:.1f} M rows/s "
               f"-> counts {data.counts.dtype} {tuple(data.counts.shape)}")
    click.echo(format_summary(summarize(data)))
