"""deepTools computeMatrix matrices (``matrix.gz``) as model input: real computeMatrix
runs on bigWigs the tests write, read back to exactly what ``chromaformer-prepare`` makes
of the same bigWigs (bins, strand, marks by name); what cannot be read as bins around
the TSS is refused with one line naming the file and line."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from chromaformer.errors import FormatError
from chromaformer.formats.bincsv import read_bins
from chromaformer.formats.deeptools import is_matrix, read_matrix
from chromaformer.formats.signal import write_bigwig
from chromaformer.prepare import prepare

from .._common import write_lines

SIZES = {"chr1": 200_000, "chr2": 100_000}
GENES = [
    "chr1\t50000\t60000\tgA\t0\t+",
    "chr1\t120000\t130000\tgB\t0\t-",
    "chr2\t40000\t41000\tgC\t0\t+",
]
MARKS = ("H3K27me3", "H3K4me3")


def _computematrix(*args):
    exe = shutil.which("computeMatrix")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("deepTools' computeMatrix is not installed (the test extra has it)")
        pytest.skip("deepTools is not installed here (CI runs this)")
    subprocess.run([exe, *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    """Two bigWigs covering every base (as bamCoverage writes them), one with gaps (no
    data on every tenth kb), and a genes BED with a minus-strand gene."""
    d = tmp_path_factory.mktemp("deeptools")
    rng = np.random.default_rng(5)
    for mark in MARKS:
        signal = {c: [(0, (rng.poisson(2, n) + 1).astype(float))] for c, n in SIZES.items()}
        write_bigwig(str(d / f"{mark}.bw"), SIZES, signal)
    gappy = {}
    for c, n in SIZES.items():
        v = (rng.poisson(2, n) + 1).astype(float)
        v[(np.arange(n) // 1000) % 10 == 0] = 0.0  # write_bigwig leaves zeros out
        gappy[c] = [(0, v)]
    write_bigwig(str(d / "gappy.bw"), SIZES, gappy)
    write_lines(d / "genes.bed", GENES)
    return d


def _prepared(d, tracks, name):
    prepare(tracks, str(d / "genes.bed"), str(d / name), window=1000, bin_size=100)
    return read_bins(d / name, integer_counts=False, marks=[m for m, _ in tracks])


@pytest.fixture(scope="module")
def ref_matrix(tracks):
    """computeMatrix over both fully covered bigWigs, the samples in the other order than
    the tests ask for them (they are put in order by name)."""
    d = tracks
    out = d / "ref.matrix.gz"
    _computematrix(
        "reference-point", "-S", d / "H3K4me3.bw", d / "H3K27me3.bw", "-R", d / "genes.bed",
        "-b", 1000, "-a", 1000, "-bs", 100, "--samplesLabel", "H3K4me3", "H3K27me3",
        "-p", 1, "-o", out,
    )  # fmt: skip
    return out


def test_a_computematrix_matrix_reads_as_prepare_makes_the_same_bigwigs(tracks, ref_matrix):
    d, out = tracks, ref_matrix
    assert is_matrix(out) and not is_matrix(d / "genes.bed")
    got = read_matrix(out, marks=MARKS)
    want = _prepared(d, [(m, str(d / f"{m}.bw")) for m in MARKS], "ref.csv")
    assert list(got.gene_ids) == ["gA", "gB", "gC"] == list(want.gene_ids)
    assert got.marks == MARKS and got.bin_size == 100 and got.counts.shape == (3, 20, 2)
    assert not got.labelled
    # %f in the file: six decimals of each bin's mean, times 100 bp
    np.testing.assert_allclose(got.counts, want.counts, atol=1e-3)
    assert got.counts.sum() > 3 * 20 * 2 * 100  # every base >= 1: real sums, not zeros
    # the file's own order when no marks are asked for
    assert read_matrix(out).marks == ("H3K4me3", "H3K27me3")


def test_sums_over_a_track_with_gaps_need_average_type_sum(tracks):
    """deepTools' mean is over the bases a bigWig covers, so a track with gaps is read
    exactly with --averageTypeBins sum (and the mean of a fully covered one above)."""
    d = tracks
    out = d / "gappy.matrix.gz"
    _computematrix(
        "reference-point", "-S", d / "gappy.bw", "-R", d / "genes.bed", "-b", 1000, "-a",
        1000, "-bs", 100, "--samplesLabel", "H3K4me3", "--averageTypeBins", "sum",
        "--missingDataAsZero", "-p", 1, "-o", out,
    )  # fmt: skip
    got = read_matrix(out)
    want = _prepared(d, [("H3K4me3", str(d / "gappy.bw"))], "gappy.csv")
    assert (want.counts == 0).any()  # the gaps fall in the genes' windows
    np.testing.assert_allclose(got.counts, want.counts, atol=1e-3)


def _edited(src, dst, header=None, rows=None):
    with gzip.open(src, "rt") as fh:
        lines = fh.read().splitlines()
    head = json.loads(lines[0][1:])
    if header:
        head.update(header)
    body = lines[1:] if rows is None else rows(lines[1:])
    with gzip.open(dst, "wt") as fh:
        fh.write("@" + json.dumps(head, separators=(",", ":")) + "\n")
        fh.write("\n".join(body) + "\n")
    return dst


def test_what_is_not_bins_around_the_tss_is_refused_by_line(tracks, ref_matrix):
    d = tracks
    _computematrix(
        "scale-regions", "-S", d / "H3K4me3.bw", "-R", d / "genes.bed", "-b", 1000,
        "-a", 1000, "-m", 2000, "-bs", 100, "-p", 1, "-o", d / "scaled.gz",
    )  # fmt: skip
    with pytest.raises(FormatError, match=r"scaled.gz:1: a scale-regions matrix.*reference-point"):
        read_matrix(d / "scaled.gz")
    _computematrix(
        "reference-point", "-S", d / "H3K4me3.bw", "-R", d / "genes.bed", "-b", 1000,
        "-a", 1000, "-bs", 100, "--averageTypeBins", "max", "-p", 1, "-o", d / "max.gz",
    )  # fmt: skip
    with pytest.raises(FormatError, match=r"max.gz:1: bins averaged by max.*sum"):
        read_matrix(d / "max.gz")
    ref = ref_matrix
    with pytest.raises(FormatError, match=r"ref.matrix.gz:1: no sample H3K9me3 among the samples"):
        read_matrix(ref, marks=["H3K9me3"])

    def dup(rows):
        return rows + [rows[0]]

    with pytest.raises(FormatError, match=r"dup.gz:5: region gA again \(first on line 2\)"):
        read_matrix(_edited(ref, d / "dup.gz", rows=dup))

    def negative(rows):
        f = rows[1].split("\t")
        f[7] = "-0.5"
        return [rows[0], "\t".join(f), rows[2]]

    with pytest.raises(FormatError, match=r"neg.gz:3: value -0.5: .*non-negative"):
        read_matrix(_edited(ref, d / "neg.gz", rows=negative))

    def short(rows):
        return [rows[0], rows[1].rsplit("\t", 1)[0]]

    with pytest.raises(FormatError, match=r"short.gz:3: expected 46 tab-separated fields"):
        read_matrix(_edited(ref, d / "short.gz", rows=short))
    with pytest.raises(FormatError, match=r"tes.gz:1: reference point TES"):
        read_matrix(_edited(ref, d / "tes.gz", header={"ref point": ["TES", "TES"]}))
    with pytest.raises(FormatError, match=r"genes.bed:1: expected a computeMatrix header"):
        read_matrix(d / "genes.bed")
