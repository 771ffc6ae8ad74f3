"""``chromaformer summarize``: the scored TSVs of many samples -> one genes x samples
table and per-sample metrics (the workflow's last step)."""

from __future__ import annotations

import click

from ._common import one_line_errors


def _sample(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise click.BadParameter(f"expected SAMPLE=SCORES.tsv, got {text!r}")
    return name, path


@click.command("summarize")
@click.argument("samples", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The genes x samples TSV; <output stem>.metrics.tsv gets one row per sample.",
)
@one_line_errors
def summarize(samples: tuple[str, ...], output: str) -> None:
    """Join SAMPLE=SCORES.tsv files (from chromaformer score) on gene id into one table,
    a column per sample in the order given, and write each sample's AUROC/AUPR (or MSE,
    Pearson r, R²) where its TSV has labels."""
    from ..scoring.summary import summarize as run

    res = run([_sample(s) for s in samples], output)
    click.echo(f"{res.samples} samples x {res.genes:,} genes -> {res.table}, {res.metrics}")
