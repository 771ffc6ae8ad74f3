"""chromaformer-prepare on small real bigWig/bedGraph files built from known values, and a
round trip through the real Chromoformer E003 sample (per-base depth -> bigWig -> bins)."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import chromaformer as cf
from chromaformer.cli import main
from chromaformer.formats.annotation import read_genes
from chromaformer.formats.sidecars import read_layout_record
from chromaformer.formats.signal import open_track, write_bigwig
from chromaformer.formats.track import chrom_aliases
from chromaformer.layout import CHROMOFORMER_MARKS, assign_folds

from .._common import SHARED, built_once, write_lines

E003 = SHARED / "chromoformer_e003_sample"
SIZES = {"chr1": 60_000, "chr2": 30_000, "chrM": 16_569}
MARKS = ("H3K4me3", "H3K27me3", "H3K9me3")  # deliberately not in the benchmark's order
# (gene, chrom, 0-based TSS, strand): middle of chr1 on both strands, clipped at both ends
# of chr2, on chrM (named MT in one track) and on a contig no track has.
GENES = [
    ("gA", "chr1", 20_000, "+"),
    ("gB", "chr1", 40_123, "-"),
    ("gC", "chr2", 1_500, "+"),
    ("gD", "chr2", 28_700, "-"),
    ("gE", "chrM", 8_000, "+"),
    ("gF", "chrUn_x", 500, "+"),
]


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _read(path, **kw):
    return cf.read_bins(path, integer_counts=False, **kw)


def _dense(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for c, n in SIZES.items():
        runs = rng.integers(1, 60, n)
        vals = rng.integers(0, 9, n) * (rng.random(n) < 0.7)
        out[c] = np.repeat(vals, runs)[:n].astype(np.float64)
    return out


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    """Per-base truth, and bigWig + bedGraph files of it. The H3K9me3 bigWig names its
    chromosomes 1, 2, MT (Ensembl style) while the genes say chr1, chr2, chrM."""
    d = tmp_path_factory.mktemp("tracks")
    truth, bw, bg = {}, {}, {}
    for k, mark in enumerate(MARKS):
        dense = _dense(10 + k)
        truth[mark] = dense
        rename = (lambda c: {"chr1": "1", "chr2": "2", "chrM": "MT"}[c]) if k == 2 else str
        bw[mark] = d / f"{mark}.bw"
        write_bigwig(
            str(bw[mark]),
            {rename(c): n for c, n in SIZES.items()},
            {rename(c): [(0, v)] for c, v in dense.items()},
        )
        bg[mark] = d / f"{mark}.bedGraph.gz"
        with gzip.open(bg[mark], "wt") as fh:
            fh.write("track type=bedGraph\n")
            for c, v in dense.items():
                cut = np.flatnonzero(np.diff(v)) + 1
                s, e = np.r_[0, cut], np.r_[cut, len(v)]
                for a, b in zip(s, e):
                    if v[a]:
                        fh.write(f"{rename(c)}\t{a}\t{b}\t{v[a]:g}\n")
    bed = write_lines(d / "tss.bed", [f"{c}\t{t}\t{t + 1}\t{g}\t0\t{s}" for g, c, t, s in GENES])
    return truth, bw, bg, bed


def expected_bins(dense: np.ndarray, tss: int, strand: str, window=5000, bin_size=100):
    """Straight from the per-base array: the window 5'->3' on the gene's strand."""
    n = len(dense)
    padded = np.concatenate([np.zeros(window + 1), dense, np.zeros(window + 1)])
    if strand == "+":
        seq = padded[tss - window + window + 1 : tss + window + window + 1]
    else:  # bases tss+window .. tss-window+1, downwards
        seq = padded[tss - window + 1 + window + 1 : tss + window + 1 + window + 1][::-1]
    assert len(seq) == 2 * window and n > 0
    return seq.reshape(-1, bin_size).sum(axis=1)


def _cut(path, target):
    target.write_bytes(path.read_bytes()[:300])  # a download that stopped early
    return target


def _mark_args(paths):
    out = []
    for m in MARKS:
        out += ["--mark", f"{m}={paths[m]}"]
    return out


def test_bins_strands_clipping_prefixes_and_missing_contig(tracks, tmp_path):
    truth, bw, _, bed = tracks
    out = tmp_path / "sample.csv"
    res = _run("prepare", *_mark_args(bw), "--genes", bed, "-o", out, "--jobs", "1")
    assert res.exit_code == 0, res.output
    # gF's contig is in no track: reported once per track, left out, not silently dropped
    assert "1 genes on 1 contigs absent from H3K9me3" in res.output
    assert "chrUn_x (1)" in res.output
    assert "every label is 0" in res.output
    order = ("H3K27me3", "H3K4me3", "H3K9me3")  # the benchmark's order, not the command's
    assert "3 marks (H3K27me3,H3K4me3,H3K9me3)" in res.output
    data = _read(out, marks=order)
    assert list(data.gene_ids) == ["gA", "gB", "gC", "gD", "gE"]
    assert data.counts.shape == (5, 100, 3)
    assert not data.labels.any()
    for i, (g, c, tss, strand) in enumerate(GENES[:5]):
        for j, mark in enumerate(data.marks):
            np.testing.assert_array_equal(
                data.counts[i, :, j],
                expected_bins(truth[mark][c], tss, strand),
                err_msg=f"{g} {mark}",
            )
    # clipping really happened: gC's first bins and gD's first (upstream, high coordinate)
    # bins lie off the chromosome
    assert not data.counts[2, :35].any() and data.counts[2, 40:].any()
    assert not data.counts[3, :25].any() and data.counts[3, 30:].any()
    # every gene has its strand: the record says the bins run 5'->3'
    assert read_layout_record(out)["orientation"] == "transcript"


def test_minus_strand_reads_the_mirror_window_backwards(tmp_path):
    # a single base of signal 10 bp downstream of each TSS lands in the same bin on both
    # strands: bin 51 (the TSS base opens bin 51)
    sig = np.zeros(30_000)
    sig[10_010] = 7  # + gene at 10_000: 10 bp downstream
    sig[19_990] = 5  # - gene at 20_000: 10 bp downstream is 10 bp lower
    path = tmp_path / "one.bw"
    write_bigwig(str(path), {"chr1": 30_000}, {"chr1": [(0, sig)]})
    bed = write_lines(
        tmp_path / "g.bed", ["chr1\t10000\t10001\tp\t0\t+", "chr1\t19000\t20001\tm\t0\t-"]
    )
    out = tmp_path / "o.csv"
    res = _run("prepare", "--mark", f"H3K4me3={path}", "--genes", bed, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    data = _read(out)
    assert np.flatnonzero(data.counts[0, :, 0]).tolist() == [50]
    assert np.flatnonzero(data.counts[1, :, 0]).tolist() == [50]
    assert data.counts[0, 50, 0] == 7 and data.counts[1, 50, 0] == 5


def test_bedgraph_gtf_and_parallel_jobs_agree_with_bigwig_bed(tracks, tmp_path):
    truth, bw, bg, bed = tracks
    # the same genes as GTF gene records: 1-based, TSS = start on +, end on -
    gtf_lines = ["#!genome-build test"]
    for g, c, t, s in GENES:
        start, end = (t + 1, t + 2000) if s == "+" else (t - 1999, t + 1)
        gtf_lines.append(
            f'{c}\ttest\tgene\t{start}\t{end}\t.\t{s}\t.\tgene_id "{g}"; gene_name "N{g}";'
        )
        gtf_lines.append(f'{c}\ttest\texon\t{start}\t{end}\t.\t{s}\t.\tgene_id "{g}";')
    gtf = write_lines(tmp_path / "genes.gtf", gtf_lines)
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv.gz"
    assert _run("prepare", *_mark_args(bw), "--genes", bed, "-o", a, "-q", "-j", "1").exit_code == 0
    res = _run("prepare", *_mark_args(bg), "--genes", gtf, "-o", b, "-q", "-j", "1")
    assert res.exit_code == 0, res.output
    res = _run("prepare", *_mark_args(bw), "--genes", gtf, "-o", c, "-q", "-j", "2")
    assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(c.read_bytes()) == a.read_bytes()


def test_gtf_transcripts_pick_the_canonical_one(tmp_path):
    gtf = write_lines(
        tmp_path / "t.gtf",
        [
            'chr1\tt\ttranscript\t100\t900\t.\t+\t.\tgene_id "G1"; transcript_id "T1";',
            'chr1\tt\ttranscript\t300\t900\t.\t+\t.\tgene_id "G1"; transcript_id "T2"; '
            'tag "Ensembl_canonical";',
            'chr1\tt\ttranscript\t500\t800\t.\t-\t.\tgene_id "G2"; transcript_id "T3";',
            'chr1\tt\ttranscript\t500\t700\t.\t-\t.\tgene_id "G2"; transcript_id "T4";',
        ],
    )
    gs = read_genes(str(gtf))
    assert [(g.gene_id, g.tss, g.strand) for g in gs.genes] == [("G1", 299, "+"), ("G2", 799, "-")]
    assert "transcript" in gs.source


def test_missing_contig_policies(tracks, tmp_path):
    _, bw, _, bed = tracks
    out = tmp_path / "z.csv"
    res = _run("prepare", *_mark_args(bw), "--genes", bed, "-o", out, "--missing", "zero")
    assert res.exit_code == 0, res.output
    data = _read(out)
    assert data.gene_ids[-1] == "gF" and not data.counts[-1].any()
    out2 = tmp_path / "e.csv"
    res = _run("prepare", *_mark_args(bw), "--genes", bed, "-o", out2, "--missing", "error")
    assert res.exit_code == 1
    assert "chrUn_x" in res.output and "--missing skip" in res.output
    assert not out2.exists()


def test_a_repeated_bed_name_is_reported_with_both_lines(tracks, tmp_path):
    _, bw, _, bed = tracks
    dup = write_lines(
        tmp_path / "dup.bed", bed.read_text().splitlines() + ["chr1\t900\t901\tgB\t0\t+"]
    )
    out = tmp_path / "d.csv"
    res = _run("prepare", *_mark_args(bw), "--genes", dup, "-o", out, "--missing", "zero")
    assert res.exit_code == 0, res.output
    assert f"1 repeated gene ids in {dup} (e.g. 'gB' at {dup}:7, first at line 2)" in res.output
    data = _read(out)
    assert list(data.gene_ids).count("gB") == 1
    assert (
        _run(
            "prepare",
            *_mark_args(bw),
            "--genes",
            bed,
            "-o",
            tmp_path / "r.csv",
            "--missing",
            "zero",
        ).exit_code
        == 0
    )
    ref = _read(tmp_path / "r.csv")  # the first gB record's bins, not the repeat's
    np.testing.assert_array_equal(data.counts, ref.counts)


def test_stat_mean_read_length_and_decimals(tracks, tmp_path):
    truth, bw, _, bed = tracks
    s, m, r = tmp_path / "s.csv", tmp_path / "m.csv", tmp_path / "r.csv"
    for out, extra in (
        (s, []),
        (m, ["--stat", "mean", "--decimals", "6"]),
        (r, ["--read-length", "36", "--decimals", "2"]),
    ):
        res = _run("prepare", *_mark_args(bw), "--genes", bed, "-o", out, "-q", *extra)
        assert res.exit_code == 0, res.output
    total = _read(s).counts.astype(np.float64)
    np.testing.assert_allclose(_read(m).counts, total / 100, atol=1e-6)
    np.testing.assert_allclose(_read(r).counts, np.round(total / 36, 2), atol=1e-4)
    res = _run(
        "prepare",
        *_mark_args(bw),
        "--genes",
        bed,
        "-o",
        tmp_path / "x.csv",
        "--stat",
        "mean",
        "--read-length",
        "36",
    )
    assert res.exit_code == 1 and "--read-length goes with --stat sum" in res.output


def test_labels_from_expression_median_and_versions(tracks, tmp_path):
    _, bw, _, bed = tracks
    # versioned Ensembl-style ids in the table still match; gE has no value (left out);
    # the median is over every value of the table, extra genes included
    expr = write_lines(
        tmp_path / "expr.tsv",
        ["gene\tTPM", "gA.3\t10", "gB\t0.5", "gC\t3", "gD\t2.9", "other1\t100", "other2\t0"],
    )
    out = tmp_path / "l.csv"
    res = _run("prepare", *_mark_args(bw), "--genes", bed, "-o", out, "--expression", expr)
    assert res.exit_code == 0, res.output
    assert "1 genes have no value" in res.output and "column TPM of " in res.output
    assert ">= 2.95 (median)" in res.output
    data = _read(out)
    assert list(data.gene_ids) == ["gA", "gB", "gC", "gD"]
    assert data.labels.tolist() == [1, 0, 1, 0]
    # the continuous values beside it: the regression target (--task reg)
    side = pd.read_csv(tmp_path / "l.expression.tsv", sep="\t")
    assert side.gene_id.tolist() == ["gA", "gB", "gC", "gD"]
    assert side.expression.tolist() == [10, 0.5, 3, 2.9]
    out2 = tmp_path / "l2.csv"
    res = _run(
        "prepare",
        *_mark_args(bw),
        "--genes",
        bed,
        "-o",
        out2,
        "--expression",
        expr,
        "--label-threshold",
        "1",
        "-q",
    )
    assert res.exit_code == 0, res.output
    assert _read(out2).labels.tolist() == [1, 0, 1, 1]


@pytest.mark.parametrize(
    "case, args_fn, message",
    [
        (
            "bad strand",
            lambda d, bw: [
                "--genes",
                write_lines(d / "b.bed", ["chr1\t100\t101\tg1\t0\t+", "chr1\t200\t201\tg2\t0\t*"]),
            ],
            "b.bed:2: expected strand +, - or . in field 6, found '*'",
        ),
        (
            "bed3",
            lambda d, bw: ["--genes", write_lines(d / "b3.bed", ["chr1\t100\t101"])],
            "b3.bed:1: expected BED6",
        ),
        (
            "gtf coordinates",
            lambda d, bw: [
                "--genes",
                write_lines(d / "g.gtf", ['chr1\tt\tgene\tx\t9\t.\t+\t.\tgene_id "A";']),
            ],
            "g.gtf:1: expected integer start and end",
        ),
        (
            "gtf comma in gene_id",
            lambda d, bw: [
                "--genes",
                write_lines(d / "c.gtf", ['chr1\tt\tgene\t9\t20\t.\t+\t.\tgene_id "G1,2";']),
            ],
            "c.gtf:1: gene id 'G1,2' holds a comma, quote or whitespace",
        ),
        ("no file", lambda d, bw: ["--genes", d / "nope.bed"], "nope.bed"),
        (
            "bad bedGraph",
            lambda d, bw: [
                "--genes",
                write_lines(d / "ok.bed", ["chr1\t100\t101\tg1\t0\t+"]),
                "--mark",
                f"H3K36me3={write_lines(d / 'x.bedGraph', ['chr1 0 10 1', 'chr1 10 5 2'])}",
            ],
            "x.bedGraph:2: expected 0 <= start < end",
        ),
        (
            "cut bigWig",
            lambda d, bw: [
                "--genes",
                write_lines(d / "ok3.bed", ["chr1\t100\t101\tg1\t0\t+"]),
                "--mark",
                f"H3K27ac={_cut(next(iter(bw.values())), d / 'cut.bw')}",
            ],
            "cut.bw: not a readable bigWig file",
        ),
        (
            "expression",
            lambda d, bw: [
                "--genes",
                write_lines(d / "ok2.bed", ["chr1\t100\t101\tgA\t0\t+"]),
                "--expression",
                write_lines(d / "e.tsv", ["gA\t1", "gB\tlots"]),
            ],
            "e.tsv:2: expected a finite number in field 2, found",
        ),
    ],
)
def test_bad_input_is_one_line_with_file_and_line(tracks, tmp_path, case, args_fn, message):
    _, bw, _, _ = tracks
    out = tmp_path / "never.csv"
    res = _run("prepare", *_mark_args(bw), *args_fn(tmp_path, bw), "-o", out, "-q")
    assert res.exit_code == 1, res.output
    lines = [x for x in res.output.splitlines() if x.startswith("Error")]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]


def test_mark_syntax_and_duplicates(tracks, tmp_path):
    _, bw, _, bed = tracks
    res = _run("prepare", "--mark", str(bw["H3K4me3"]), "--genes", bed, "-o", tmp_path / "o")
    assert res.exit_code == 2 and "expected NAME=PATH" in res.output
    res = _run(
        "prepare",
        "--mark",
        f"H3K4me3={bw['H3K4me3']}",
        "--mark",
        f"H3K4me3={bw['H3K27me3']}",
        "--genes",
        bed,
        "-o",
        tmp_path / "o",
    )
    assert res.exit_code == 1 and "--mark H3K4me3 is given twice" in res.output


def test_chrom_aliases():
    assert chrom_aliases("chr1") == ["chr1", "1"]
    assert chrom_aliases("1") == ["1", "chr1"]
    assert set(chrom_aliases("chrM")) == {"chrM", "chrMT", "M", "MT"}
    assert set(chrom_aliases("MT")) >= {"chrM", "MT"}


def test_prepared_file_fits_and_scores_with_a_model(exported, tmp_path):
    """--model takes marks, bins and bin size from the model: the output scores as is."""
    report, model, _ = exported["hybrid"]
    rng = np.random.default_rng(5)
    marks = list(cf.BENCHMARK_MARKS)
    rng_copy = np.random.default_rng(5)
    for _ in range(3):  # H3K4me3 is the 4th track drawn
        rng_copy.integers(0, 6, 4000)
    paths = {}
    for m in marks:
        v = np.repeat(rng.integers(0, 6, 4000), 25).astype(np.float64)
        paths[m] = tmp_path / f"{m}.bw"
        write_bigwig(str(paths[m]), {"chr5": 100_000}, {"chr5": [(0, v)]})
    bed = write_lines(
        tmp_path / "g.bed",
        [f"chr5\t{t}\t{t + 1}\tG{t}\t0\t{'+-'[t % 2]}" for t in range(10_000, 90_000, 4_001)],
    )
    out = tmp_path / "fit.csv"
    args = []
    for m in reversed(marks):  # the command line's order does not matter
        args += ["--mark", f"{m}={paths[m]}"]
    res = _run("prepare", *args, "--genes", bed, "--model", report.path, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    data = _read(out)
    assert data.counts.shape == (20, 100, 5)
    np.testing.assert_array_equal(  # columns in the model's order
        data.counts[0, :, 3],
        np.round(
            expected_bins(np.repeat(rng_copy.integers(0, 6, 4000), 25).astype(float), 10_000, "+"),
            3,
        ),
    )
    res = _run("score", out, "--model", report.path, "-o", tmp_path / "s.tsv", "--quiet")
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "s.tsv", sep="\t")) == 20
    # a model mismatch is named before any work is done
    res = _run("prepare", *args[:8], "--genes", bed, "--model", report.path, "-o", out)
    assert res.exit_code == 1 and "no --mark for" in res.output
    res = _run(
        "prepare", *args, "--genes", bed, "--model", report.path, "-o", out, "--bin-size", "50"
    )
    assert res.exit_code == 1 and "--bin-size 50 contradicts" in res.output


def test_chromoformer_layout_selects_regions(tracks, tmp_path):
    truth, bw, _, _ = tracks
    bed = write_lines(
        tmp_path / "g.bed", ["chr1\t25000\t25001\tgA\t0\t+", "chr1\t35000\t35001\tgB\t0\t-"]
    )
    rows = [f"gA\tchr1:{1000 * k}-{1000 * k + 500}\t{k}" for k in range(1, 11)]
    rows += [
        "gA\tchr2:100-600\t99",  # another chromosome: ignored
        "gA\tchr1\t0\t50000\t98",  # over 40 kb: ignored
        "gB\t1\t50000\t51000\t1.5",
    ]  # Ensembl-style name, 5-column form
    inter = write_lines(tmp_path / "contacts.tsv", ["gene\tregion\tscore"] + rows)
    out = tmp_path / "cf"
    res = _run(
        "prepare",
        *_mark_args(bw),
        "--genes",
        bed,
        "--layout",
        "chromoformer",
        "--interactions",
        inter,
        "-o",
        out,
        "-j",
        "2",
    )
    assert res.exit_code == 0, res.output
    assert "1 contacts with another chromosome" in res.output
    assert "1 contacts with regions over 40000 bp" in res.output
    meta = pd.read_csv(out / "meta.csv")
    assert list(meta.columns) == [
        "gene_id",
        "expression",
        "label",
        "chrom",
        "start",
        "end",
        "strand",
        "split",
        "neighbors",
        "scores",
    ]
    a = meta.iloc[0]
    assert a.neighbors.split(";") == [
        f"chr1:{1000 * k}-{1000 * k + 500}" for k in range(10, 2, -1)
    ]  # top 8 by score
    assert a.scores == "10;9;8;7;6;5;4;3"
    assert meta.iloc[1].neighbors == "chr1:50000-51000"
    order = [m for m in CHROMOFORMER_MARKS if m in MARKS]
    prom = np.load(out / "npy" / "chr1:15000-55000.npy")
    assert prom.dtype == np.float16 and prom.shape == (3, 40000)
    for j, m in enumerate(order):
        np.testing.assert_array_equal(prom[j], truth[m]["chr1"][15000:55000])
        np.testing.assert_array_equal(
            np.load(out / "npy" / "chr1:50000-51000.npy")[j], truth[m]["chr1"][50000:51000]
        )
    assert len(os.listdir(out / "npy")) == 2 + 8 + 1
    res = _run("prepare", *_mark_args(bw), "--genes", bed, "--layout", "chromoformer", "-o", out)
    assert res.exit_code == 1 and "--force" in res.output


def test_folds_keep_chromosomes_whole_and_balanced():
    from chromaformer.formats.annotation import Gene

    genes = [Gene(f"g{i}", f"chr{1 + i % 7}", i, "+", "") for i in range(700)]
    folds = assign_folds(g.chrom for g in genes)
    assert set(folds.values()) == {1, 2, 3, 4}
    sizes = np.bincount([folds[g.chrom] for g in genes])[1:]
    assert sizes.max() - sizes.min() <= 100


# ------------------------------------------------------------ real data round trip


@pytest.fixture(scope="session")
def e003_tracks(tmp_path_factory):
    """The E003 sample's per-base depth (promoters and pCREs) as one bigWig per mark,
    plus a TSS BED and an interactions table from its meta.csv."""
    if not (E003 / "meta.csv").exists():
        pytest.skip("../shared/data/chromoformer_e003_sample is absent")
    meta = pd.read_csv(E003 / "meta.csv")
    d = built_once(tmp_path_factory, "e003_tracks", lambda d: _write_e003_tracks(meta, d))
    return meta, _e003_bigwigs(d), d / "tss.bed", d / "contacts.tsv", d / "expr.csv"


def _e003_bigwigs(d):
    return {m: d / f"E003_{m}.bw" for m in CHROMOFORMER_MARKS}


def _write_e003_tracks(meta, d):
    pieces: dict[str, dict[int, np.ndarray]] = {}
    for f in sorted((E003 / "npy").glob("*.npy")):
        chrom, span = f.stem.split(":")
        start = int(span.split("-")[0])
        pieces.setdefault(chrom, {})[start] = np.load(f).astype(np.float64)
    signal: dict[str, dict[str, list]] = {m: {} for m in CHROMOFORMER_MARKS}
    sizes = {}
    for chrom, parts in pieces.items():
        # merge overlapping files into clusters (dense per cluster, not per chromosome)
        clusters: list[list[int]] = []
        for s in sorted(parts):
            if clusters and s < max(t + parts[t].shape[1] for t in clusters[-1]):
                clusters[-1].append(s)
            else:
                clusters.append([s])
        for cluster in clusters:
            lo = cluster[0]
            hi = max(s + parts[s].shape[1] for s in cluster)
            dense = np.zeros((7, hi - lo))
            for s in cluster:  # overlapping files agree where they overlap
                a = parts[s]
                seg = dense[:, s - lo : s - lo + a.shape[1]]
                both = (seg != 0) & (a != 0)
                assert np.array_equal(seg[both], a[both])
                np.maximum(seg, a, out=seg)
            for j, m in enumerate(CHROMOFORMER_MARKS):
                signal[m].setdefault(chrom, []).append((lo, dense[j]))
        sizes[chrom] = max(s + a.shape[1] for s, a in parts.items()) + 1000
    for m, path in _e003_bigwigs(d).items():
        write_bigwig(str(path), sizes, signal[m])
    write_lines(
        d / "tss.bed",
        [f"{r.chrom}\t{r.start}\t{r.end}\t{r.gene_id}\t0\t{r.strand}" for r in meta.itertuples()],
    )
    contacts = []
    for r in meta.itertuples():
        if isinstance(r.neighbors, str):
            for n, s in zip(r.neighbors.split(";"), r.scores.split(";")):
                contacts.append(f"{r.gene_id}\t{n}\t{s}")
    write_lines(d / "contacts.tsv", contacts)
    write_lines(
        d / "expr.csv",
        ["gene_id,expression"] + [f"{r.gene_id},{r.expression}" for r in meta.itertuples()],
    )


def test_e003_roundtrip_benchmark_layout_equals_numpy(e003_tracks, tmp_path):
    meta, paths, bed, _, expr = e003_tracks
    out = tmp_path / "e003.csv"
    args = []
    for m in CHROMOFORMER_MARKS:
        args += ["--mark", f"{m}={paths[m]}"]
    res = _run("prepare", *args, "--genes", bed, "--expression", expr, "-o", out, "--decimals", "6")
    assert res.exit_code == 0, res.output
    assert "(H3K27me3,H3K36me3,H3K4me1,H3K4me3,H3K9me3,H3K27ac,H3K9ac)" in res.output
    data = _read(out, marks=cf.BENCHMARK_MARKS + ("H3K27ac", "H3K9ac"))
    assert list(data.gene_ids) == list(meta.gene_id)
    for i, r in enumerate(meta.itertuples()):
        arr = np.load(E003 / "npy" / f"{r.chrom}:{r.start - 20000}-{r.start + 20000}.npy")
        arr = arr.astype(np.float64)
        # TSS at column 20000: + reads columns 15000..24999, - reads 25000..15001 downwards
        win = arr[:, 15000:25000] if r.strand == "+" else arr[:, 15001:25001][:, ::-1]
        direct = win.reshape(7, 100, 100).sum(axis=2)
        for j, m in enumerate(data.marks):
            np.testing.assert_allclose(
                data.counts[i, :, j], direct[CHROMOFORMER_MARKS.index(m)], rtol=1e-6
            )
    assert (
        data.labels.tolist() == (meta.expression >= meta.expression.median()).astype(int).tolist()
    )


def test_e003_roundtrip_chromoformer_layout_reproduces_the_sample(e003_tracks, tmp_path):
    meta, paths, bed, inter, expr = e003_tracks
    out = tmp_path / "layout"
    args = []
    for m in reversed(CHROMOFORMER_MARKS):
        args += ["--mark", f"{m}={paths[m]}"]
    res = _run(
        "prepare",
        *args,
        "--genes",
        bed,
        "--layout",
        "chromoformer",
        "--interactions",
        inter,
        "--expression",
        expr,
        "-o",
        out,
        "-q",
        "-j",
        "2",
    )
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out / "meta.csv")
    for col in ("gene_id", "chrom", "start", "end", "strand", "neighbors"):
        assert got[col].fillna("").tolist() == meta[col].fillna("").tolist(), col
    assert [
        [float(x) for x in str(s).split(";")] if isinstance(s, str) else [] for s in got.scores
    ] == [[float(x) for x in str(s).split(";")] if isinstance(s, str) else [] for s in meta.scores]
    np.testing.assert_allclose(got.expression, meta.expression)
    files = sorted(p.name for p in (out / "npy").iterdir())
    assert files == sorted(p.name for p in (E003 / "npy").iterdir())
    for name in files:
        a, b = np.load(out / "npy" / name), np.load(E003 / "npy" / name)
        assert a.dtype == b.dtype == np.float16 and a.shape == b.shape
        assert np.array_equal(a, b), name


def test_track_sniffing_and_errors(tmp_path):
    with pytest.raises(cf.FormatError, match="no such file"):
        open_track("H3K4me3", str(tmp_path / "none.bw"))
    junk = tmp_path / "junk.bw"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(cf.FormatError, match="neither a bigWig nor a bedGraph"):
        open_track("H3K4me3", str(junk))
    overl = write_lines(tmp_path / "o.bedGraph", ["chr1\t0\t10\t1", "chr1\t5\t20\t2"])
    with pytest.raises(cf.FormatError, match="overlap on chr1 at 5"):
        open_track("H3K4me3", str(overl))


def test_bundled_e116_tracks_prepare_to_the_gcmerge_bin_csvs(tmp_path):
    """prepare on the real GM12878 bedGraphs + BED (strand '.') + labels gives GC-MERGE's
    own bin CSVs byte for byte (../shared), with a layout record of 10 kb bins."""
    import json

    from chromaformer.prepare.real import prepare_e116

    results = prepare_e116(tmp_path)
    assert {k: r.genes_written for k, r in results.items()} == {"train": 11689, "valid": 2506}
    assert any("strand '.' (unknown): read as +" in w for w in results["train"].warnings)
    folder = tmp_path / "E116" / "classification"
    record = json.loads((folder / "valid.layout.json").read_text())
    assert (record["bins"], record["bin_size"], record["window"]) == (21, 10000, 105000)
    assert record["orientation"] == "genomic"  # strand '.' throughout: bins in genomic order
    shared = SHARED / "gcmerge_e116" / "E116" / "classification"
    if not shared.exists():
        pytest.skip("../shared/data/gcmerge_e116 is not here")
    for split in ("train", "valid"):
        assert (folder / f"{split}.csv").read_bytes() == (shared / f"{split}.csv").read_bytes()
