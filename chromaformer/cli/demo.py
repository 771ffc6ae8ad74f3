"""``chromaformer demo``: the whole product on a built-in default, no download needed."""

from __future__ import annotations

from typing import Optional

import click

from ._common import one_line_errors, threads_option


@click.command("demo")
@click.option(
    "--data",
    type=click.Choice(["real", "simulated"]),
    default="real",
    show_default=True,
    help="real: the bundled GM12878 (E116) tracks of 14,195 genes (prepare -> train -> "
    "export -> score); simulated: a simulated genome (--genes, --train-genes, --epochs).",
)
@click.option(
    "--out",
    default="chromaformer-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the demo's files.",
)
@click.option(
    "--genes",
    default=None,
    type=click.IntRange(min=30),
    help="Genes in the simulated genome  [default: 20000; chromoformer 400]",
)
@click.option(
    "--train-genes",
    default=None,
    type=click.IntRange(min=10),
    help="Genes used for training (plus a quarter as many each for validation "
    "and test); the rest of the genome is unseen until scoring  "
    "[default: 4000]",
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--train/--no-train",
    "do_train",
    default=True,
    show_default=True,
    help="--no-train: only simulate and parse.",
)
@click.option(
    "--model",
    default=None,
    help="Architecture to train [default: cnn on real data, hybrid on simulated]; "
    "chromoformer (with --data simulated) runs the same pipeline on a simulated set "
    "in Chromoformer's layout (3D interactions).",
)
@click.option(
    "--epochs",
    default=None,
    type=click.IntRange(min=1),
    help="Training epochs  [default: simulated 3; real data the recipe's 20, early "
    "stopping; fewer shortens the run]",
)
@threads_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@one_line_errors
def demo(
    data: str,
    out: str,
    genes: Optional[int],
    train_genes: Optional[int],
    seed: int,
    do_train: bool,
    model: Optional[str],
    epochs: Optional[int],
    threads: Optional[int],
    quiet: bool,
) -> None:
    """Run the product on built-in data: real GM12878 tracks (the default) or a
    simulated genome: prepare or parse, train, export, score."""
    from ..demo import run_demo

    run_demo(
        out,
        data=data,
        model=model,
        genes=genes,
        train_genes=train_genes,
        seed=seed,
        epochs=epochs,
        train=do_train,
        threads=threads,
        quiet=quiet,
        echo=click.echo,
    )
