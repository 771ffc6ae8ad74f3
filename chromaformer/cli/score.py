"""``chromaformer-score`` / ``chromaformer score``: bin CSVs + an .onnx -> probabilities."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import click

from ..errors import DataError
from ._common import one_line_errors, quiet_option, threads_option


@click.command("score")
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--model", "-m", required=True, type=click.Path(dir_okay=False),
              help="An .onnx file from chromaformer-export.")
@click.option("-o", "--output", type=click.Path(),
              help="Output TSV (one input) or folder (several inputs). Default: "
                   "<input>.scores.tsv beside each input.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="cuda needs onnxruntime-gpu and a GPU.")
@click.option("--batch-size", default=1024, show_default=True, type=click.IntRange(min=1),
              help="Genes per onnxruntime call.")
@click.option("--chunk-genes", default=2048, show_default=True, type=click.IntRange(min=1),
              help="Genes parsed per streamed chunk: memory is bounded by a few chunks.")
@click.option("--attention", is_flag=True,
              help="Also write the attention maps (<output stem>.attention.npz: gene_id, "
                   "marks, bin_attention [genes, marks, bins], mark_attention [genes, marks]).")
@click.option("--meta", "metas", multiple=True, type=click.Path(dir_okay=False),
              help="Chromoformer models: the reference layout's meta.csv (twice for diff: "
                   "cell a, then cell b) in place of INPUT files.")
@click.option("--npy-dir", "npy_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Chromoformer models: the folder of {chrom}:{start}-{end}.npy, once per "
                   "--meta.")
@click.option("--no-labels", is_flag=True,
              help="Leave the input's label column out of the output (and no metrics).")
@threads_option
@quiet_option
@one_line_errors
def score(inputs: tuple[str, ...], model: str, output: Optional[str], device: str,
          batch_size: int, chunk_genes: int, attention: bool, metas: tuple[str, ...],
          npy_dirs: tuple[str, ...], no_labels: bool, threads: Optional[int],
          quiet: bool) -> None:
    """Score INPUT bin CSVs (plain or .gz; the benchmark format) with an exported model.

    Each input gets a TSV with a header row: gene_id, probability, and the input's
    label. Files of any size stream through in chunks of whole genes, so memory stays
    bounded (about 1 GB peak for a 20k- or a 200k-gene file, mostly
    onnxruntime's working memory) and parsing overlaps inference. When
    the labels take both values, AUROC and AUPR are printed. Outputs appear only when
    complete: a bad line anywhere leaves no output file.
    """
    if metas or npy_dirs:
        if inputs:
            raise click.UsageError("give INPUT bin CSVs or --meta/--npy-dir, not both")
        if attention:
            raise click.UsageError("--attention is for the bin-CSV models")
        _score_chromoformer(model, metas, npy_dirs, output, device, threads, quiet)
        return
    if not inputs:
        raise click.UsageError("no INPUT files (or --meta/--npy-dir for a Chromoformer model)")
    from ..scoring import Scorer, model_summary, score_file

    scorer = Scorer(model, device=device, threads=threads)
    if not quiet:
        click.echo(f"model {model}: {model_summary(scorer.info)}; device {device}", err=True)
    targets = _targets(inputs, output)
    for src, out in zip(inputs, targets):
        attn = out.with_name(out.name.removesuffix(".tsv").removesuffix(".scores")
                             + ".attention.npz") if attention else None
        bar = None
        if not quiet:
            from tqdm import tqdm

            bar = tqdm(total=_size(src), unit="B", unit_scale=True, desc=Path(src).name,
                       leave=False, file=click.get_text_stream("stderr"))
        seen = [0]

        def progress(genes: int, bytes_read: int, _bar=bar, _seen=seen) -> None:
            if _bar is not None:
                _bar.update(max(0, bytes_read - _seen[0]))
                _seen[0] = bytes_read

        try:
            res = score_file(scorer, src, out, attention=attn, batch_size=batch_size,
                             genes_per_chunk=chunk_genes, threads=threads,
                             labels=not no_labels, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        line = (f"{src}: {res.genes:,} genes in {res.seconds:.2f} s "
                f"({res.genes_per_second:,.0f} genes/s) -> {res.output}")
        if res.attention:
            line += f", {res.attention}"
        if res.metrics:
            line += f"; AUROC {res.metrics['auroc']:.4f}, AUPR {res.metrics['aupr']:.4f}"
        click.echo(line)


def _size(path: str) -> Optional[int]:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _targets(inputs: tuple[str, ...], output: Optional[str]) -> list[Path]:
    """Where each input's TSV goes: beside it, the -o file, or in the -o folder."""
    from ..scoring import default_output, output_names

    for src in inputs:
        if not os.path.isfile(src):
            raise DataError(f"{src}: no such input file")
    if output is None:
        return [default_output(s) for s in inputs]
    out = Path(output)
    if len(inputs) == 1 and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: several inputs need -o to be a folder, not a file")
    out.mkdir(parents=True, exist_ok=True)
    return [out / f"{name}.scores.tsv" for name in output_names(inputs)]


def _score_chromoformer(model: str, metas: tuple[str, ...], npy_dirs: tuple[str, ...],
                        output: Optional[str], device: str, threads: Optional[int],
                        quiet: bool) -> None:
    from ..chromoformer_scoring import score_chromoformer

    if not metas or len(metas) != len(npy_dirs):
        raise click.UsageError("give one --npy-dir per --meta")
    out = output or str(Path(metas[-1]).with_suffix(".scores.tsv"))
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(unit="gene", desc="chromoformer", leave=False,
                   file=click.get_text_stream("stderr"))
    try:
        res = score_chromoformer(model, metas, npy_dirs, out, device=device, threads=threads,
                                 progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    line = (f"{res.genes:,} genes: inputs binned in {res.load_seconds:.2f} s, scored in "
            f"{res.seconds:.2f} s ({res.genes_per_second:,.0f} genes/s) -> {res.output}")
    if res.metrics:
        line += "; " + ", ".join(f"{k} {v:.4f}" for k, v in res.metrics.items())
    click.echo(line)
