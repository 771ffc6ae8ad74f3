"""``chromaformer simulate`` / ``chromaformer-simulate``: write a simulated genome."""

from __future__ import annotations

import time
from typing import Optional

import click

from ..layout import BENCHMARK_BINS, BENCHMARK_MARKS, BIN_SIZE
from ._common import one_line_errors


@click.command("simulate")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="Output bin CSV (.csv, or .csv.gz to compress); a folder for --layout chromoformer.",
)
@click.option(
    "--layout",
    type=click.Choice(["benchmark", "chromoformer", "tracks"]),
    default="benchmark",
    show_default=True,
    help="chromoformer: Chromoformer's reference layout (meta.csv "
    "+ npy/ of per-base depth for promoters and interacting regions). tracks: a folder "
    "of --samples samples as a lab has them (a bigWig per mark, genes.bed, an "
    "expression table each, samples.tsv): the workflow's input.",
)
@click.option(
    "--samples",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="tracks: how many samples.",
)
@click.option(
    "--layout-seed",
    type=int,
    default=None,
    help="chromoformer: share genes, regions and a base expression level between "
    "cells simulated with different --seed (for the diff task).",
)
@click.option("--genes", default=20000, show_default=True, type=click.IntRange(min=1))
@click.option("--bins", default=BENCHMARK_BINS, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--bin-size",
    default=BIN_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Bin width in bp (sets the TSS distances the profiles see).",
)
@click.option(
    "--marks",
    default=",".join(BENCHMARK_MARKS),
    show_default=True,
    help="Comma-separated mark names, in column order.",
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--noise",
    default=0.8,
    show_default=True,
    type=click.FloatRange(min=0),
    help="How blurred the marks' view of expression is (0 = labels readable).",
)
@click.option(
    "--id-style",
    type=click.Choice(["ensembl", "numeric"]),
    default="ensembl",
    show_default=True,
    help="ENSG00000123456 or zero-padded 000123 ids.",
)
@click.option(
    "--gzip",
    "compress",
    is_flag=True,
    default=None,
    help="Compress (default: when the output ends in .gz).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing.")
@one_line_errors
def simulate(
    output: str,
    layout: str,
    layout_seed: Optional[int],
    samples: int,
    genes: int,
    bins: int,
    bin_size: int,
    marks: str,
    seed: int,
    noise: float,
    id_style: str,
    compress: bool,
    quiet: bool,
) -> None:
    """Write a simulated genome in the benchmark's bin-CSV format.

    Seeded and realistic: counts fitted to the real Roadmap samples, with expressed
    genes carrying an H3K4me3 peak at the TSS and H3K36me3 over the gene body, and
    silent genes H3K27me3/H3K9me3, blurred by noise so the task is not trivial.
    """
    if layout == "tracks":
        from ..simulate import simulate_samples

        t0 = time.perf_counter()
        sheet = simulate_samples(output, samples=samples, genes=genes, seed=seed)
        if not quiet:
            click.echo(
                f"wrote {sheet} and {samples} samples' bigWigs: {genes} genes, seed {seed}, "
                f"in {time.perf_counter() - t0:.1f} s"
            )
        return
    if layout == "chromoformer":
        from ..simulate import npy_bytes, simulate_chromoformer

        t0 = time.perf_counter()
        meta = simulate_chromoformer(output, genes, seed=seed, layout_seed=layout_seed, noise=noise)
        if not quiet:
            click.echo(
                f"wrote {output}/meta.csv and npy/: {len(meta)} genes, "
                f"{int(meta.neighbors.fillna('').str.count(':').sum())} interacting "
                f"regions, {npy_bytes(output) / 1e6:.0f} MB of arrays, seed {seed}, in "
                f"{time.perf_counter() - t0:.1f} s"
            )
        return
    names = tuple(m.strip() for m in marks.split(",") if m.strip())
    if not names:
        raise click.BadParameter("name at least one mark", param_hint="--marks")
    from ..simulate import write_simulated

    t0 = time.perf_counter()
    sim = write_simulated(
        output,
        genes,
        bins=bins,
        marks=names,
        seed=seed,
        noise=noise,
        id_style=id_style,
        compress=compress,
        bin_size=bin_size,
    )
    if not quiet:
        click.echo(
            f"wrote {output}: {sim.n_genes} genes x {sim.n_bins} bins x {sim.n_marks} marks "
            f"({', '.join(sim.marks)}), {int(sim.labels.sum())} expressed, "
            f"seed {seed}, in {time.perf_counter() - t0:.1f} s"
        )
