"""``chromaformer-export`` / ``chromaformer export``: a run or checkpoint -> one .onnx."""

from __future__ import annotations

import time

import click

from ._common import one_line_errors


@click.command("export")
@click.argument("source", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The .onnx file to write; a model card <name>.model.json goes beside it.",
)
@click.option(
    "--int8",
    "variant",
    flag_value="int8",
    help="Dynamic int8 quantization of the MatMuls (7-bit range): about 30% "
    "smaller; no faster on CPU.",
)
@click.option(
    "--fp16",
    "variant",
    flag_value="fp16",
    help="Half-precision weights and arithmetic (inputs/outputs stay float32): "
    "half the size, meant for the CUDA provider.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write an int8/fp16 variant even when it moves probabilities beyond "
    "the bounds (0.02 max, or -0.005 AUROC) on the check sample.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@one_line_errors
def export(
    source: tuple[str, ...], output: str, variant: str | None, force: bool, quiet: bool
) -> None:
    """Export SOURCE (a run folder from chromaformer-train, a .pt checkpoint, or - for
    --int8/--fp16 - an fp32 .onnx from this command) to one self-contained ONNX file.
    Several bin-model runs of one layout (e.g. runs/x/run-seed1 runs/x/run-seed2 ... of
    --seeds N) are exported as one ensemble: its probability is the mean of theirs. The
    file has a dynamic batch, input ``counts`` float32 [batch, bins,
    marks] of raw counts, outputs ``probability`` and ``logit`` [batch] (and
    ``bin_attention``, ``mark_attention`` for attention models). The marks, bins, bin
    size, architecture, training cell types and validation metrics are in the file's
    metadata; chromaformer-score and export/node read them from there."""
    from ..export import export_onnx

    t0 = time.perf_counter()
    report = export_onnx(
        source[0] if len(source) == 1 else list(source),
        output,
        variant=variant or "fp32",
        force=force,
    )
    if quiet:
        return
    click.echo(
        f"wrote {report.path} ({report.size_bytes / 1e3:,.0f} kB, {report.variant}, "
        f"{report.metadata.get('ensemble', report.metadata['architecture'])}) and "
        f"{report.card} in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    chk = report.check
    if chk:
        line = (
            f"against fp32 on the {chk['sample']}: max |dp| {chk['max_prob_diff']:.5f}, "
            f"mean {chk['mean_prob_diff']:.5f}"
        )
        if "auroc_change" in chk:
            line += f", AUROC {chk['auroc_fp32']:.4f} -> {chk['auroc_variant']:.4f}"
        click.echo(line)
