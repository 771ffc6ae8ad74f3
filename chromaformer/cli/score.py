"""``chromaformer-score`` / ``chromaformer score``: an exported model + its inputs ->
one TSV per input (bin CSVs for the bin models, --meta/--npy-dir for Chromoformer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import click

from .._util.atomic import own_descriptor
from ..errors import DataError
from ..formats.gene_tracks import TRACK_FORMATS
from ._common import (
    genes_bed_option,
    jobs_option,
    one_line_errors,
    quiet_option,
    size_option_type,
    threads_option,
)


@click.command("score")
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--model",
    "-m",
    required=True,
    type=click.Path(),
    help="An .onnx file from chromaformer-export, or the name of a shipped model "
    "(chromaformer models), e.g. e116.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Output TSV (one input) or folder (several inputs). Default: "
    "<input>.scores.tsv beside each input (Chromoformer: beside the last "
    "--meta).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="cuda needs onnxruntime-gpu and a GPU.",
)
@click.option(
    "--batch-size",
    default=None,
    type=size_option_type,
    help="Genes per onnxruntime call  [default: 512, 8192 on cuda; chromoformer 64]",
)
@click.option(
    "--chunk-genes",
    default=None,
    type=size_option_type,
    help="Genes read per streamed chunk: memory is bounded by a few chunks  "
    "[default: 2048, 16384 on cuda; chromoformer 256]",
)
@click.option(
    "--attention",
    is_flag=True,
    help="Attention models: also write the attention maps (<output "
    "stem>.attention.npz: gene_id, marks, bin_attention [genes, marks, "
    "bins], mark_attention [genes, marks]).",
)
@click.option(
    "--meta",
    "metas",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Chromoformer models: the reference layout's meta.csv (twice for diff: "
    "cell a, then cell b) in place of INPUT files.",
)
@click.option(
    "--npy-dir",
    "npy_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Chromoformer models: the folder of {chrom}:{start}-{end}.npy, once per --meta.",
)
@click.option(
    "--no-labels",
    is_flag=True,
    help="Leave the input's label/observed column out of the output (and no metrics).",
)
@click.option(
    "--no-metrics",
    is_flag=True,
    help="Keep the label/observed column but compute no metrics (no scikit-learn "
    "import: about a second per input; chromaformer summarize computes them later).",
)
@click.option(
    "--track",
    type=click.Choice(TRACK_FORMATS),
    default=None,
    help="Also write the scores as a genome-browser track (<output stem>.<format>), "
    "each gene at its TSS.",
)
@genes_bed_option
@jobs_option(
    1,
    "Score this many inputs at once, each in its own process with its own "
    "onnxruntime session (the cores shared out between them; --threads sets each one's).",
)
@threads_option
@quiet_option
@one_line_errors
def score(
    inputs: tuple[str, ...],
    model: str,
    output: Optional[str],
    device: str,
    batch_size: Optional[int],
    chunk_genes: Optional[int],
    attention: bool,
    metas: tuple[str, ...],
    npy_dirs: tuple[str, ...],
    no_labels: bool,
    no_metrics: bool,
    track: Optional[str],
    genes_bed: Optional[str],
    jobs: int,
    threads: Optional[int],
    quiet: bool,
) -> None:
    """Score INPUT bin CSVs (plain or .gz; the benchmark format) or, for a Chromoformer
    model, the genes of --meta/--npy-dir, with an exported model. No torch needed.

    Each input gets a TSV with a header row: gene_id, the model's output (probability;
    Chromoformer reg: prediction, diff: log2fc) and the input's label or observed value.
    Bin CSVs of any size stream through in chunks of whole genes, so memory stays
    bounded, and reading overlaps inference. When the input carries the truth, AUROC
    and AUPR (or MSE, Pearson r, R²) are printed, unless --no-metrics. Outputs appear
    only when complete: a bad line anywhere leaves no output file.
    """
    from .._util.progress import bar
    from ..formats.scores import output_paths
    from ..scoring import Scorer
    from ..scoring import score as run

    scorer = Scorer(model, device=device, threads=threads)
    info = scorer.info
    if info.family == "bins":
        if metas or npy_dirs:
            raise DataError(
                f"{model}: a {info.architecture} model scores bin CSVs (INPUT "
                "files); --meta/--npy-dir are for Chromoformer models"
            )
        if not inputs:
            raise click.UsageError("no INPUT bin CSV files")
        sources: list = list(inputs)
        targets = output_paths(inputs, output)
    else:
        if inputs:
            raise DataError(
                f"{model}: a Chromoformer model scores genes of its reference "
                "layout (--meta META.csv --npy-dir DIR), not bin CSVs"
            )
        if not metas or len(metas) != len(npy_dirs):
            raise click.UsageError("give --meta and one --npy-dir per --meta")
        sources = [(list(metas), list(npy_dirs))]
        if output and (output.endswith("/") or Path(output).is_dir()):
            targets = [Path(output) / Path(metas[-1]).with_suffix(".scores.tsv").name]
        else:
            targets = [Path(output) if output else Path(metas[-1]).with_suffix(".scores.tsv")]
    if attention and not info.has_attention:
        raise DataError(
            f"{model}: the {info.architecture} architecture has no attention "
            "maps (--attention is for bilstm_attention and hybrid)"
        )
    if not quiet:
        click.echo(f"model {model}: {info.summary()}; device {device}", err=True)

    def extras(out: Path) -> dict[str, Any]:
        stem = out.name.removesuffix(".tsv")
        return {
            "attention": out.with_name(stem.removesuffix(".scores") + ".attention.npz")
            if attention
            else None,
            "track": out.with_name(f"{stem}.{track}") if track else None,
        }

    if jobs > 1 and len(sources) > 1:
        from ..scoring.many import score_many

        progress = bar(total=len(sources), quiet=quiet, unit="file", desc="inputs")

        def done(res: Any) -> None:
            click.echo(_report(res))
            progress.update(1)

        try:
            score_many(
                model,
                sources,
                targets,
                jobs=jobs,
                device=device,
                threads=threads,
                done=done,
                per_input=[extras(out) for out in targets],
                batch_size=batch_size,
                genes_per_chunk=chunk_genes,
                labels=not no_labels,
                metrics=not no_metrics,
                genes_bed=genes_bed,
            )
        finally:
            progress.close()
        return
    # a TSV on stdout (-o /dev/stdout, -o /dev/fd/1): the report lines go to stderr
    to_stdout = any(own_descriptor(t) == 1 for t in targets)
    for src, out in zip(sources, targets):
        total, unit = scorer.family.progress_total(src)
        progress = bar(
            total=total,
            quiet=quiet,
            unit=unit,
            unit_scale=unit == "B",
            desc=Path(src if isinstance(src, str) else src[0][-1]).name,
        )
        try:
            res = run(
                scorer,
                src,
                out,
                batch_size=batch_size,
                genes_per_chunk=chunk_genes,
                threads=threads,
                labels=not no_labels,
                metrics=not no_metrics,
                progress=_advance(progress),
                genes_bed=genes_bed,
                **extras(out),
            )
        finally:
            progress.close()
        click.echo(_report(res), err=to_stdout)


def _report(res: Any) -> str:
    """One input's line: genes, speed, outputs and metrics."""
    line = (
        f"{res.input}: {res.genes:,} genes in {res.seconds:.2f} s "
        f"({res.genes_per_second:,.0f} genes/s) -> {res.output}"
    )
    for extra in (res.attention, res.track):
        if extra:
            line += f", {extra}"
    if res.metrics:
        line += "; " + ", ".join(
            f"{k.upper() if k in ('auroc', 'aupr') else k} {v:.4f}"
            for k, v in res.metrics.items()
            if k != "genes"
        )
    return line


def _advance(progress: Any) -> Callable[[int, int], None]:
    """A score() progress callback that moves ``progress`` to the units done so far."""

    def update(genes: int, done: int) -> None:
        progress.update(done - progress.n)

    return update
