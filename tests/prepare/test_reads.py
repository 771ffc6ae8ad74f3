"""chromaformer-prepare from BAM files the tests write with pysam from known reads: each
read counted once where it is anchored (5' end, or the fragment centre of a proper pair),
MAPQ, duplicate, secondary, supplementary and QC filters, chromosome names reconciled,
indexed (parallel by chromosome) or not (one pass); input normalisation and a blacklist;
a genome-build mismatch refused."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import chromaformer as cf
from chromaformer.cli import main

from .._common import write_lines

pysam = pytest.importorskip("pysam")

SIZES = {"1": 50_000, "2": 20_000}  # Ensembl names; the genes say chr1, chr2
GENES = [("gA", "chr1", 10_000, "+"), ("gB", "chr1", 30_000, "-"), ("gC", "chr2", 600, "+")]
BIN, WINDOW = 200, 1000  # 10 bins of 200 bp per gene


def _reads(seed: int) -> list[dict]:
    """Reads of known anchors and flags: (chrom, 0-based start, length, reverse,
    mapq, flag extras, paired partner)."""
    rng = np.random.default_rng(seed)
    out = []
    for chrom, size in SIZES.items():
        for _ in range(1500 if chrom == "1" else 400):
            start = int(rng.integers(0, size - 200))
            out.append(
                dict(
                    chrom=chrom,
                    start=start,
                    length=int(rng.integers(30, 80)),
                    reverse=bool(rng.random() < 0.5),
                    mapq=int(rng.choice([0, 5, 10, 30, 60])),
                    extra=int(rng.choice([0, 0, 0, 0, 0x400, 0x100, 0x800, 0x200])),
                )
            )
        # proper pairs: fragment [s, s + tlen), the leftmost mate forward
        for _ in range(300 if chrom == "1" else 100):
            s = int(rng.integers(0, size - 600))
            tlen = int(rng.integers(150, 500))
            out.append(dict(chrom=chrom, pair=(s, tlen), mapq=60, extra=0))
    return out


def _write_bam(path, reads, index=True):
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": c, "LN": n} for c, n in SIZES.items()],
    }
    unsorted = str(path) + ".unsorted.bam"
    with pysam.AlignmentFile(unsorted, "wb", header=header) as bam:
        tid = {c: i for i, c in enumerate(SIZES)}
        for k, r in enumerate(reads):
            mates = []
            if "pair" in r:
                s, tlen = r["pair"]
                mates = [
                    (s, 50, False, 0x1 | 0x2 | 0x40 | 0x20, tlen, s + tlen - 50),
                    (s + tlen - 50, 50, True, 0x1 | 0x2 | 0x80 | 0x10, -tlen, s),
                ]
            else:
                flag = (0x10 if r["reverse"] else 0) | r["extra"]
                mates = [(r["start"], r["length"], r["reverse"], flag, 0, -1)]
            for start, length, _, flag, tlen, mpos in mates:
                a = pysam.AlignedSegment()
                a.query_name = f"r{k}"
                a.query_sequence = "A" * length
                a.flag = flag
                a.reference_id = tid[r["chrom"]]
                a.reference_start = start
                a.mapping_quality = r["mapq"]
                a.cigartuples = [(0, length)]
                a.query_qualities = pysam.qualitystring_to_array("I" * length)
                if flag & 0x1:
                    a.next_reference_id = tid[r["chrom"]]
                    a.next_reference_start = mpos
                    a.template_length = tlen
                bam.write(a)
        # one unmapped read
        u = pysam.AlignedSegment()
        u.query_name, u.query_sequence, u.flag = "u", "ACGT", 0x4
        bam.write(u)
    pysam.sort("-o", str(path), unsorted)
    if index:
        pysam.index(str(path))
    return path


def _anchors(reads, min_mapq=10, keep_duplicates=False, centre=True):
    """The reads' counted positions, per chromosome, by the rules the docs state."""
    out = {c: [] for c in SIZES}
    for r in reads:
        if "pair" in r:
            s, tlen = r["pair"]
            if centre:
                out[r["chrom"]].append(s + tlen // 2)
            else:
                out[r["chrom"]] += [s, s + tlen - 1]  # 5' ends: the forward start, reverse end
            continue
        if r["mapq"] < min_mapq or r["extra"] & (0x100 | 0x800 | 0x200):
            continue
        if r["extra"] & 0x400 and not keep_duplicates:
            continue
        out[r["chrom"]].append(r["start"] + r["length"] - 1 if r["reverse"] else r["start"])
    return {c: np.array(v) for c, v in out.items()}


def _expected(anchors, genes=GENES):
    bins = 2 * WINDOW // BIN
    rows = []
    for _, chrom, tss, strand in genes:
        a = anchors[chrom.removeprefix("chr")]
        lo = tss - WINDOW + (strand == "-")
        edges = lo + np.arange(bins + 1) * BIN
        n = np.array([((a >= x) & (a < y)).sum() for x, y in zip(edges[:-1], edges[1:])])
        rows.append(n[::-1] if strand == "-" else n)
    return np.array(rows, dtype=np.float32)


@pytest.fixture(scope="module")
def bams(tmp_path_factory):
    d = tmp_path_factory.mktemp("bams")
    treat, ctrl = _reads(1), _reads(2)[:1200]
    return {
        "treat": (_write_bam(d / "k4me3.bam", treat), treat),
        "noindex": (_write_bam(d / "k4me3_noidx.bam", treat, index=False), treat),
        "ctrl": (_write_bam(d / "input.bam", ctrl), ctrl),
        "genes": write_lines(
            d / "genes.bed", [f"{c}\t{t}\t{t + 1}\t{g}\t0\t{s}" for g, c, t, s in GENES]
        ),
    }


def _prepare(bams, out, *extra, mark="treat"):
    args = ["prepare", "--mark", f"H3K4me3={bams[mark][0]}", "--genes", bams["genes"]]
    args += ["--window", WINDOW, "--bin-size", BIN, "-o", out, "--decimals", 4, *extra]
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("which", ["treat", "noindex"])
def test_bam_reads_are_counted_per_bin_exactly(bams, tmp_path, which):
    res = _prepare(bams, tmp_path / "o.csv", "--jobs", 2, mark=which)
    assert res.exit_code == 0, res.output
    got = cf.read_bins(tmp_path / "o.csv", integer_counts=False)
    assert list(got.gene_ids) == ["gA", "gB", "gC"]
    want = _expected(_anchors(bams[which][1]))
    np.testing.assert_array_equal(got.counts[:, :, 0], want)
    assert want.sum() > 50  # the windows hold reads
    assert "reads counted on 2 chromosomes" in res.output
    assert ("no index: read in one pass" in res.output) == (which == "noindex")


def test_bam_filters_are_options_with_stated_defaults(bams, tmp_path):
    reads = bams["treat"][1]
    res = _prepare(
        bams, tmp_path / "o.csv", "--min-mapq", 0, "--keep-duplicates", "--count-at", "5prime"
    )
    assert res.exit_code == 0, res.output
    got = cf.read_bins(tmp_path / "o.csv", integer_counts=False).counts[:, :, 0]
    want = _expected(_anchors(reads, min_mapq=0, keep_duplicates=True, centre=False))
    np.testing.assert_array_equal(got, want)
    default = _expected(_anchors(reads))
    assert not np.array_equal(want, default)  # the options change what is counted


def test_control_normalisation_and_blacklist(bams, tmp_path):
    treat, ctrl = bams["treat"][1], bams["ctrl"][1]
    black = write_lines(tmp_path / "black.bed", ["1\t9400\t9700", "1\t9650\t9801"])
    out = tmp_path / "n.csv"
    res = _prepare(
        bams,
        out,
        "--control",
        f"H3K4me3={bams['ctrl'][0]}",
        "--control-mode",
        "log2ratio",
        "--pseudocount",
        2,
        "--blacklist",
        black,
    )
    assert res.exit_code == 0, res.output
    got = cf.read_bins(out, integer_counts=False).counts[:, :, 0]
    t, c = _expected(_anchors(treat)), _expected(_anchors(ctrl))
    na, nc = (sum(len(v) for v in _anchors(x).values()) for x in (treat, ctrl))
    want = np.maximum(np.log2((t + 2) / (c * (na / nc) + 2)), 0)
    # gA's window is 9000..11000: bins 2 and 3 (9400-9800) and 4 (9800-10000) are hit
    want[0, 2:5] = 0
    np.testing.assert_allclose(got, np.round(want, 4), atol=1e-4)
    assert "3 of 30 bins overlap" in res.output
    res = _prepare(bams, tmp_path / "s.csv", "--control", f"H3K4me3={bams['ctrl'][0]}")
    got = cf.read_bins(tmp_path / "s.csv", integer_counts=False).counts[:, :, 0]
    np.testing.assert_allclose(got, np.round(np.maximum(t - c * (na / nc), 0), 4), atol=1e-4)


def test_hg38_genes_on_an_hg19_sized_bam_are_refused(bams, tmp_path):
    genes = write_lines(
        tmp_path / "g.bed", ["chr1\t10000\t10001\tgA\t0\t+", "chr2\t45000\t45001\tgZ\t0\t+"]
    )
    args = [
        "prepare",
        "--mark",
        f"H3K4me3={bams['treat'][0]}",
        "--genes",
        genes,
        "-o",
        tmp_path / "x.csv",
    ]
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 1
    assert "1 genes of" in res.output and "lie past the end of their chromosome" in res.output
    assert "gZ at chr2:45,001, and 2 is 20,000 bp there" in res.output
    assert "different genome builds" in res.output
    assert not (tmp_path / "x.csv").exists()
