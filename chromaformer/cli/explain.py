"""``chromaformer explain`` and ``chromaformer perturb``: which marks drive each gene's
prediction, and what a change of the input does, from an exported model (no torch)."""

from __future__ import annotations

from typing import Any, Optional

import click

from ..errors import DataError
from ..formats.gene_tracks import TRACK_FORMATS
from ._common import (
    genes_bed_option,
    one_line_errors,
    quiet_option,
    size_option_type,
    threads_option,
)

_MODEL = click.option(
    "--model",
    "-m",
    required=True,
    type=click.Path(),
    help="An .onnx file from chromaformer-export, or a shipped model's name (e.g. e116).",
)
_META = click.option(
    "--meta",
    "metas",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Chromoformer models: meta.csv (twice for diff) in place of INPUT.",
)
_NPY = click.option(
    "--npy-dir",
    "npy_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Chromoformer models: the .npy folder, once per --meta.",
)
_TRACKS = click.option(
    "--tracks",
    type=click.Choice(TRACK_FORMATS),
    default=None,
    help="Also write genome-browser tracks, placed at each gene's TSS.",
)
_DEVICE = click.option(
    "--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True
)
_BATCH = click.option(
    "--batch-size",
    default=None,
    type=size_option_type,
    help="Rows per onnxruntime call  [default: 512, 8192 on cuda; chromoformer 64]",
)


def _source(input_: Optional[str], metas: tuple, npy_dirs: tuple) -> Any:
    if metas or npy_dirs:
        if input_:
            raise DataError("give an INPUT bin CSV or --meta/--npy-dir, not both")
        if len(metas) != len(npy_dirs):
            raise click.UsageError("give one --npy-dir per --meta")
        return (list(metas), list(npy_dirs))
    if not input_:
        raise click.UsageError("no INPUT bin CSV (or --meta/--npy-dir for Chromoformer)")
    return input_


@click.command("explain")
@click.argument("input_", metavar="INPUT", required=False, type=click.Path(dir_okay=False))
@_MODEL
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Output folder."
)
@click.option(
    "--genes",
    default="",
    help="Comma-separated gene ids to draw a (bins x marks) heatmap of.",
)
@click.option(
    "--window",
    default=None,
    type=click.IntRange(min=1),
    help="Bins per occlusion window  [default: at most 20 windows]",
)
@click.option("--no-occlusion", is_flag=True, help="Mark Shapley values only (faster).")
@click.option("--no-plots", is_flag=True, help="No PNG figures.")
@_TRACKS
@genes_bed_option
@_META
@_NPY
@_DEVICE
@_BATCH
@threads_option
@quiet_option
@one_line_errors
def explain(
    input_: Optional[str],
    model: str,
    output: str,
    genes: str,
    window: Optional[int],
    no_occlusion: bool,
    no_plots: bool,
    tracks: Optional[str],
    genes_bed: Optional[str],
    metas: tuple,
    npy_dirs: tuple,
    device: str,
    batch_size: Optional[int],
    threads: Optional[int],
    quiet: bool,
) -> None:
    """Explain every gene of INPUT (a bin CSV) with an exported model: exact Shapley
    values of the marks (they sum to the model's logit minus its logit with every mark
    removed) and window occlusion maps (every family); figures, and optionally tracks.
    Writes OUTPUT/importance.tsv, OUTPUT/attributions.npz and PNGs."""
    from .._util.progress import bar
    from ..explain import explain as run

    source = _source(input_, metas, npy_dirs)
    progress = bar(quiet=quiet, unit="gene", desc="explain")
    try:
        res = run(
            model,
            source,
            output,
            window=window,
            occlusion=not no_occlusion,
            genes=[g for g in genes.split(",") if g],
            plots=not no_plots,
            tracks=tracks,
            gene_positions=genes_bed,
            batch_size=batch_size,
            threads=threads,
            device=device,
            progress=progress.update,
        )
    finally:
        progress.close()
    click.echo(
        f"{res.genes:,} genes in {res.seconds:.1f} s ({res.genes_per_second:,.0f} genes/s) "
        f"-> {res.output}/"
    )
    for group in ("expressed", "silent"):
        ranked = res.ranking(group)
        imp = res.importance[group]
        click.echo(
            f"{group} genes ({res.group_source}): "
            + ", ".join(f"{m} {imp[m]:+.3f}" for m in ranked)
        )
    for f in res.files:
        click.echo(f"  {f}")


@click.command("perturb")
@click.argument("input_", metavar="INPUT", required=False, type=click.Path(dir_okay=False))
@_MODEL
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output TSV.")
@click.option(
    "--set",
    "changes",
    multiple=True,
    help="A change, repeatable: MARK=0 (removed), MARK*FACTOR (scaled), MARK=other "
    "(from --other), all=other.",
)
@click.option(
    "--other",
    type=click.Path(dir_okay=False),
    default=None,
    help="A second bin CSV of the same genes (another cell); alone: every mark from it.",
)
@click.option("--plot", is_flag=True, help="Also draw the effects' distribution (PNG).")
@click.option(
    "--top",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Genes of largest effect to print.",
)
@_TRACKS
@genes_bed_option
@_META
@_NPY
@_DEVICE
@_BATCH
@threads_option
@quiet_option
@one_line_errors
def perturb(
    input_: Optional[str],
    model: str,
    output: str,
    changes: tuple,
    other: Optional[str],
    plot: bool,
    top: int,
    tracks: Optional[str],
    genes_bed: Optional[str],
    metas: tuple,
    npy_dirs: tuple,
    device: str,
    batch_size: Optional[int],
    threads: Optional[int],
    quiet: bool,
) -> None:
    """What-if scoring: score every gene of INPUT before and after changes of its marks
    (--set), or against another sample of the same genes (--other). Writes a TSV of
    before, after, difference and rank, sorted by the size of the effect."""
    from .._util.progress import bar
    from ..explain import perturb as run

    source = _source(input_, metas, npy_dirs)
    progress = bar(quiet=quiet, unit="gene", desc="perturb")
    try:
        res = run(
            model,
            source,
            output,
            list(changes),
            other=other,
            tracks=tracks,
            gene_positions=genes_bed,
            plot=plot,
            batch_size=batch_size,
            threads=threads,
            device=device,
            progress=progress.update,
        )
    finally:
        progress.close()
    diff = res.difference
    what = ", ".join(str(c) for c in res.changes)
    click.echo(
        f"what if {what}: {res.genes:,} genes in {res.seconds:.1f} s; {res.column} "
        f"difference mean {diff.mean():+.4f}, up {(diff > 0).sum():,}, down {(diff < 0).sum():,}"
        f" -> {res.output}"
    )
    order = (-abs(diff)).argsort(kind="stable")[:top]
    for i in order:
        click.echo(
            f"  {res.gene_ids[i]}\t{res.before[i]:.4f} -> {res.after[i]:.4f} ({diff[i]:+.4f})"
        )
    for f in res.files[1:]:
        click.echo(f"  {f}")
