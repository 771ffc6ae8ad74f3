"""``chromaformer.predict`` for notebooks: a numpy array, Bins, a long-format DataFrame,
a bin CSV or a deepTools matrix in, a DataFrame by gene id out, the same values as
``chromaformer-score`` on the same genes; data that does not fit the model is one line
naming its layout. A real exported model and a real computeMatrix run."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import chromaformer as cf
from chromaformer.errors import DataError
from chromaformer.formats.signal import write_bigwig
from chromaformer.layout import BENCHMARK_MARKS
from chromaformer.scoring import Scorer

from .._common import DEEPDIFF, run_cli, write_lines

REAL = DEEPDIFF / "Cell1" / "classification" / "test.csv"


def _cli_scores(model, src, tmp_path):
    out = tmp_path / "scores.tsv"
    res = run_cli("score", src, "--model", model, "-o", out, "--quiet")
    assert res.exit_code == 0, res.stderr
    return pd.read_csv(out, sep="\t", dtype={"gene_id": str}).set_index("gene_id")


def test_every_kind_of_data_gives_the_scores_of_the_cli(exported, tmp_path):
    model = exported["hybrid"][0].path
    want = _cli_scores(model, REAL, tmp_path)
    scorer = Scorer(model)
    bins = cf.read_bins(REAL)
    frame = bins.to_frame()
    assert list(frame.columns) == ["gene_id", "bin", *BENCHMARK_MARKS, "label"]
    assert len(frame) == bins.n_genes * 100 and frame["bin"].max() == 100
    # rows shuffled and mark columns in another order: read back by name
    shuffled = frame.sample(frac=1.0, random_state=1)[
        ["bin", "label", *reversed(BENCHMARK_MARKS), "gene_id"]
    ]
    assert np.array_equal(cf.Bins.from_frame(frame).counts, bins.counts)
    for data in (REAL, bins, frame, shuffled):
        got = cf.predict(scorer, data)
        assert got.index.name == "gene_id" and list(got.columns) == ["probability", "label"]
        got = got.loc[want.index]
        np.testing.assert_allclose(got["probability"], want["probability"], rtol=1e-5)
        assert (got["label"] == want["label"]).all()
    # a bare array: no labels; gene ids when given, else positions
    arr = cf.predict(model, bins.counts, gene_ids=bins.gene_ids)
    assert list(arr.columns) == ["probability"]
    np.testing.assert_allclose(arr.loc[want.index, "probability"], want["probability"], rtol=1e-5)
    assert list(cf.predict(scorer, bins.counts[:3]).index) == [0, 1, 2]


def test_what_does_not_fit_the_model_is_one_line_naming_its_layout(exported):
    scorer = Scorer(exported["hybrid"][0].path)
    bins = cf.read_bins(REAL)
    layout = r"hybrid.onnx takes \(genes, 100, 5\): 100 bins of 100 bp x the marks " + ",".join(
        BENCHMARK_MARKS
    )
    with pytest.raises(DataError, match=r"^counts of shape \(200, 50, 5\); " + layout + "$"):
        cf.predict(scorer, bins.counts[:, :50])
    with pytest.raises(DataError, match=r"^counts of shape \(100, 5\); "):
        cf.predict(scorer, bins.counts[0])
    bad = bins.counts.copy()
    bad[3, 7, 2] = np.nan
    with pytest.raises(DataError, match=r"^counts\[3, 7, 2\] is nan; expected finite"):
        cf.predict(scorer, bad)
    frame = bins.to_frame()
    with pytest.raises(DataError, match=r"^the DataFrame has no column H3K9me3; " + layout):
        cf.predict(scorer, frame.drop(columns="H3K9me3"))
    with pytest.raises(
        DataError,
        match=r"row 99: gene \S+ bin 100 again \(first at row 5\); expected bins 1..100 once",
    ):
        cf.predict(scorer, frame.assign(bin=frame["bin"].where(frame.index != 5, 100)))
    with pytest.raises(DataError, match=r"row 7: H3K4me3 is -1.0; expected a finite, non-neg"):
        cf.predict(scorer, frame.assign(H3K4me3=frame["H3K4me3"].where(frame.index != 7, -1.0)))
    with pytest.raises(DataError, match=r"gene ids for 200 genes"):
        cf.predict(scorer, bins.counts, gene_ids=["a"])
    with pytest.raises(DataError, match=r"predict takes a numpy array, Bins, a DataFrame"):
        cf.predict(scorer, [1, 2, 3])


def test_a_deeptools_matrix_scores_as_the_prepared_csv_of_its_bigwigs(exported, tmp_path):
    """computeMatrix over five bigWigs, scored by the CLI and by predict, gives what
    chromaformer-prepare + chromaformer-score give from the same bigWigs; a matrix of
    other bins is refused in one line."""
    exe = shutil.which("computeMatrix")
    if exe is None:
        pytest.skip("deepTools is not installed here (CI's test extra has it)")
    model = exported["hybrid"][0].path
    sizes = {"chr1": 120_000}
    rng = np.random.default_rng(8)
    paths = []
    for k, mark in enumerate(BENCHMARK_MARKS):
        v = (rng.poisson(1 + k, sizes["chr1"]) + 1).astype(float)
        write_bigwig(str(tmp_path / f"{mark}.bw"), sizes, {"chr1": [(0, v)]})
        paths.append(tmp_path / f"{mark}.bw")
    genes = [
        f"chr1\t{s}\t{s + 3000}\tg{s}\t0\t{'+-'[i % 2]}"
        for i, s in enumerate(range(10_000, 110_000, 9_000))
    ]
    write_lines(tmp_path / "genes.bed", genes)

    def matrix(out, size):
        args = ["reference-point", "-S", *paths, "-R", tmp_path / "genes.bed", "-b", 5000]
        args += ["-a", 5000, "-bs", size, "--samplesLabel", *BENCHMARK_MARKS, "-p", 1, "-o", out]
        subprocess.run([exe, *map(str, args)], check=True, capture_output=True)
        return out

    mx = matrix(tmp_path / "genes.matrix.gz", 100)
    marks = [a for m, p in zip(BENCHMARK_MARKS, paths) for a in ("--mark", f"{m}={p}")]
    genes_bed, csv = tmp_path / "genes.bed", tmp_path / "genes.csv"
    res = run_cli("prepare", *marks, "--genes", genes_bed, "--model", model, "-o", csv, "--quiet")
    assert res.exit_code == 0, res.stderr
    # read back, the prepared file says what its layout record says: marks, no labels
    prepared = cf.read_bins(csv)
    assert prepared.marks == BENCHMARK_MARKS and prepared.bin_size == 100
    assert not prepared.labelled and "label" not in prepared.to_frame().columns
    shown = run_cli("inspect", csv)
    assert "no labels (its layout record says the label column is a placeholder)" in shown.output
    want = _cli_scores(model, tmp_path / "genes.csv", tmp_path)
    got = _cli_scores(model, mx, tmp_path)
    assert list(got.columns) == ["probability"] and list(got.index) == list(want.index)
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=1e-4)
    frame = cf.predict(model, mx)
    np.testing.assert_allclose(frame["probability"], want["probability"], rtol=1e-4)
    wide = matrix(tmp_path / "wide.matrix.gz", 200)
    res = run_cli("score", wide, "--model", model, "-o", tmp_path / "w.tsv", "--quiet")
    assert res.exit_code != 0 and not (tmp_path / "w.tsv").exists()
    assert "wide.matrix.gz: 50 bins of 200 bp but hybrid.onnx expects 100 bins of 100 bp" in (
        res.stderr
    )
