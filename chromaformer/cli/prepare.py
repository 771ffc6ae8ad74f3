"""``chromaformer-prepare`` / ``chromaformer prepare``: bigWig/bedGraph + genes -> inputs."""

from __future__ import annotations

from typing import Optional

import click

from .._util.system import cores
from ._common import jobs_option, one_line_errors, quiet_option


def _mark_pair(text: str, flag: str = "--mark") -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise click.BadParameter(
            f"expected NAME=PATH (e.g. H3K4me3=k4me3.bw), got {text!r}", param_hint=flag
        )
    return name.strip(), path.strip()


@click.command("prepare")
@click.option(
    "--mark",
    "marks",
    multiple=True,
    required=True,
    metavar="NAME=PATH",
    help="A mark's signal: a bigWig, a bedGraph (plain or .gz) or a BAM of its "
    "reads (counted per bin, see --min-mapq). Repeat per mark, e.g. --mark "
    "H3K4me3=k4me3.bw --mark H3K27me3=k27me3.bam.",
)
@click.option(
    "--control",
    "controls",
    multiple=True,
    metavar="NAME=PATH",
    help="An input (control) track or BAM for mark NAME: its bins normalise that "
    "mark's (--control-mode). Repeat per mark.",
)
@click.option(
    "--control-mode",
    type=click.Choice(["subtract", "log2ratio"]),
    default="subtract",
    show_default=True,
    help="treatment - control, or log2((treatment + p) / (control + p)); both floored "
    "at 0. A BAM control is scaled by the ratio of reads counted.",
)
@click.option(
    "--pseudocount",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="p of --control-mode log2ratio.",
)
@click.option(
    "--blacklist",
    type=click.Path(dir_okay=False),
    help="BED of regions (e.g. the ENCODE blacklist) whose bins are set to 0.",
)
@click.option(
    "--min-mapq",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="BAM: count reads of at least this mapping quality (unmapped, QC-failed, "
    "secondary and supplementary alignments are never counted).",
)
@click.option("--keep-duplicates", is_flag=True, help="BAM: count reads flagged as duplicates too.")
@click.option(
    "--count-at",
    type=click.Choice(["fragment-centre", "5prime"]),
    default="fragment-centre",
    show_default=True,
    help="BAM: where a read counts: proper pairs once at their fragment's centre "
    "(other reads at their 5' end), or every read at its 5' end.",
)
@click.option(
    "--genes",
    "genes_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Gene annotation, told apart by content: GTF or GFF3 (Ensembl, GENCODE; "
    "gene or transcript records, 1-based), BED6 with strand (0-based) or a TSS "
    "table (header gene_id chrom tss strand; tss 0-based). Plain or .gz.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="Output bin CSV (.csv or .csv.gz), or a folder for --layout chromoformer.",
)
@click.option(
    "--layout",
    type=click.Choice(["benchmark", "chromoformer"]),
    default="benchmark",
    show_default=True,
    help="benchmark: the bin CSV of DeepChrome/AttentiveChrome (and of every "
    "chromaformer model but Chromoformer). chromoformer: meta.csv + npy/ "
    "per-base arrays of promoters (TSS +- 20 kb) and --interactions regions.",
)
@click.option(
    "--model",
    type=click.Path(),
    help="An exported .onnx: take the mark order, bins and bin size from it, so "
    "the file is sure to fit it.",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=None,
    help="bp each side of the TSS  [default: 5000]",
)
@click.option(
    "--bin-size", type=click.IntRange(min=1), default=None, help="bp per bin  [default: 100]"
)
@click.option(
    "--stat",
    type=click.Choice(["sum", "mean"]),
    default="sum",
    show_default=True,
    help="Per bin: sum of the track over the bin's bases (divided by "
    "--read-length when given), or its mean over all the bin's bases (no "
    "data = 0). The benchmark, and so every model trained on it, used READ "
    "COUNTS per bin: from a coverage (read depth) bigWig, use --stat sum "
    "--read-length <fragment length>. --stat mean suits normalised tracks "
    "(fold enrichment, CPM) and models you train on such files yourself.",
)
@click.option(
    "--read-length",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --stat sum: divide by this (the reads' extended length) to turn "
    "coverage into approximate read counts.",
)
@click.option(
    "--expression",
    type=click.Path(dir_okay=False),
    help="Expression table, gene id first (tab/comma separated). Labels become "
    "value >= --label-threshold; genes missing from it are left out. Its column: "
    "--expression-column, else what its header says: salmon quant.sf and RSEM "
    "-> TPM, featureCounts -> its one sample, one column named expression/TPM/"
    "FPKM/RPKM/value, or the second of two; anything else is an error.",
)
@click.option(
    "--expression-column",
    metavar="NAME|N",
    help="The --expression column to read: a header name, or a 1-based number.",
)
@click.option(
    "--cell",
    metavar="NAME",
    help="The cell's column of a genes x cells --expression matrix (e.g. E116 of "
    "Roadmap's 57epigenomes.RPKM.pc).",
)
@click.option(
    "--label-threshold",
    default="median",
    show_default=True,
    help="'median' (of all the table's values, as the benchmark) or a number.",
)
@click.option(
    "--interactions",
    type=click.Path(dir_okay=False),
    help="--layout chromoformer: promoter-region contacts, one per line: 'gene "
    "chrom:start-end score' or 'gene chrom start end score' (0-based). Each "
    "gene keeps its 8 highest-scoring regions on its own chromosome, <= 40 kb.",
)
@click.option(
    "--feature",
    type=click.Choice(["auto", "gene", "transcript"]),
    default="auto",
    show_default=True,
    help="GTF records to take TSSs from (auto: gene records if any, else one "
    "transcript per gene, the Ensembl_canonical one where tagged).",
)
@click.option(
    "--gene-id-attribute",
    metavar="NAME",
    help="GTF/GFF3: the attribute that names a gene  [default: gene_id; GFF3 "
    "without it: ID less 'gene:']; e.g. gene_name to match an expression table "
    "keyed by symbols.",
)
@click.option(
    "--biotype",
    metavar="NAME",
    help="GTF/GFF3: keep only genes of this biotype (gene_type, gene_biotype or "
    "biotype attribute), e.g. protein_coding.",
)
@click.option(
    "--missing",
    type=click.Choice(["skip", "zero", "error"]),
    default="skip",
    show_default=True,
    help="Genes on a contig a track lacks: leave them out (reported), keep them "
    "with zero signal for that mark, or stop.",
)
@click.option(
    "--decimals",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Round bin values to this many decimals (counts are integers anyway).",
)
@jobs_option(None, "Worker processes (default: the cores available).")
@click.option("--force", is_flag=True, help="--layout chromoformer: replace a non-empty folder.")
@quiet_option
@one_line_errors
def prepare(
    marks: tuple[str, ...],
    controls: tuple[str, ...],
    control_mode: str,
    pseudocount: float,
    blacklist: Optional[str],
    min_mapq: int,
    keep_duplicates: bool,
    count_at: str,
    genes_path: str,
    output: str,
    layout: str,
    model: Optional[str],
    window: Optional[int],
    bin_size: Optional[int],
    stat: str,
    read_length: Optional[float],
    expression: Optional[str],
    expression_column: Optional[str],
    cell: Optional[str],
    label_threshold: str,
    interactions: Optional[str],
    feature: str,
    gene_id_attribute: Optional[str],
    biotype: Optional[str],
    missing: str,
    decimals: int,
    jobs: Optional[int],
    force: bool,
    quiet: bool,
) -> None:
    """Turn a lab's own signal tracks and a gene annotation into model inputs.

    Each gene gets BINS bins of --bin-size bp over TSS +- --window, 5'->3' on its
    strand (bin 1 is upstream, as deepTools computeMatrix reference-point), windows
    running off a chromosome filled with 0. Chromosome names are reconciled between
    the annotation and each track (chr1 = 1, chrM = MT). Genes on contigs a track
    lacks are reported. The output appears only when complete.

    \b
    Example:
      chromaformer-prepare --mark H3K27me3=k27me3.bw --mark H3K36me3=k36me3.bw \\
        --mark H3K4me1=k4me1.bw --mark H3K4me3=k4me3.bw --mark H3K9me3=k9me3.bw \\
        --genes genes.gtf.gz --stat sum --read-length 200 \\
        --expression rpkm.tsv -o sample.csv
    """
    from ..formats.reads import ReadCounting
    from ..prepare import prepare as run

    pairs = [_mark_pair(m) for m in marks]
    control_pairs = [_mark_pair(m, "--control") for m in controls]
    reads = ReadCounting(
        min_mapq=min_mapq,
        keep_duplicates=keep_duplicates,
        fragment_centre=count_at == "fragment-centre",
    )
    from .._util.progress import bar as make_bar

    bar = None

    def on_start(n: int) -> None:
        nonlocal bar
        bar = make_bar(total=n, quiet=quiet, unit="gene", desc="prepare")

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    try:
        res = run(
            pairs,
            genes_path,
            output,
            layout=layout,
            model=model,
            window=window,
            bin_size=bin_size,
            stat=stat,
            read_length=read_length,
            expression=expression,
            expression_column=expression_column,
            cell=cell,
            label_threshold=label_threshold,
            interactions=interactions,
            missing=missing,
            feature=feature,
            gene_id_attribute=gene_id_attribute,
            biotype=biotype,
            reads=reads,
            controls=control_pairs,
            control_mode=control_mode,
            pseudocount=pseudocount,
            blacklist=blacklist,
            quiet=quiet,
            decimals=decimals,
            jobs=jobs or cores(),
            force=force,
            progress=progress,
            on_start=on_start,
        )
    finally:
        if bar is not None:
            bar.close()
    for w in res.warnings:
        click.echo(f"note: {w}", err=True)
    if not quiet:
        what = f"{res.genes_written:,} genes x {len(res.marks)} marks ({','.join(res.marks)})"
        if layout == "chromoformer":
            what += f", {res.regions:,} pCRE regions"
        click.echo(f"wrote {res.output}: {what} in {res.seconds:.1f} s", err=True)
