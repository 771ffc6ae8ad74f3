"""Regression (``--task reg``) for the bin models: targets from the ``.expression.tsv``
beside each split (what chromaformer-prepare writes) or one ``--expression`` table, the
report beside ridge regression and gradient boosting, the task in the exported contract,
scoring that writes ``prediction`` and ``observed`` with Pearson, Spearman and R²."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

import chromaformer as cf
from chromaformer.models import load_model
from chromaformer.training.engine import predict

from .._common import run_cli

SPLITS = {"train": (500, 1), "valid": (150, 2), "test": (150, 3)}


def _targets(sim, rng):
    """A learnable level: H3K4me3 and H3K36me3 near the TSS, less H3K27me3, plus noise."""
    c = np.log1p(sim.counts[:, 40:60, :].sum(axis=1))
    return 0.8 * c[:, 3] + 0.4 * c[:, 1] - 0.3 * c[:, 0] + rng.normal(0, 0.25, len(c))


@pytest.fixture(scope="module")
def reg_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reg")
    rng = np.random.default_rng(0)
    folder = root / "S" / "classification"
    folder.mkdir(parents=True)
    table = []
    for split, (n, seed) in SPLITS.items():
        sim = cf.simulate_genome(n, seed=seed)
        ids = [f"{split}-{g}" for g in sim.gene_ids]  # one table can hold every split
        cf.write_bins(folder / f"{split}.csv", sim.counts, sim.labels, ids, marks=sim.marks)
        y = _targets(sim, rng)
        pd.DataFrame({"gene_id": ids, "expression": y}).to_csv(
            folder / f"{split}.expression.tsv", sep="\t", index=False
        )
        table += list(zip(ids, y))
    # the same targets as one table in another layout (an RSEM genes.results)
    rsem = root / "genes.results"
    with open(rsem, "w") as fh:
        fh.write("gene_id\ttranscript_id(s)\tlength\teffective_length\texpected_count\tTPM\tFPKM\n")
        fh.writelines(f"{g}\tT\t1000\t900\t10\t{v:.6f}\t{v:.6f}\n" for g, v in table)
    return root, rsem


def test_cnn_regression_trains_exports_and_scores(reg_root, tmp_path):
    root, _ = reg_root
    run = tmp_path / "run"
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--task",
        "reg",
        "--data-root",
        root,
        "--cell-types",
        "S",
        "--epochs",
        6,
        "--out",
        run,
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    for row in ("model", "ridge regression", "gradient boosting"):
        assert row in res.output
    assert "pearson_r" in res.output and "spearman" in res.output
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "reg" and m["test"]["genes"] == 150
    assert m["test"]["pearson_r"] > 0.7, m["test"]  # the level is learnable
    assert set(m["baselines"]) == {"linear", "gradient_boosting"}
    assert m["baselines"]["linear"]["spearman"] > 0

    onnx_path = tmp_path / "reg.onnx"
    res = run_cli("export", run, "-o", onnx_path, "--quiet")
    assert res.exit_code == 0, res.output
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["task"] == "reg" and meta["outputs"] == "prediction"
    card = json.loads(onnx_path.with_suffix(".model.json").read_text())
    assert "expression level" in card["info"]["doc"]

    test = root / "S" / "classification" / "test.csv"
    out = tmp_path / "scores.tsv"
    res = run_cli("score", test, "--model", onnx_path, "-o", out)
    assert res.exit_code == 0, res.output
    assert "pearson_r" in res.output and "spearman" in res.output
    got = pd.read_csv(out, sep="\t")
    assert list(got.columns) == ["gene_id", "prediction", "observed"]
    truth = pd.read_csv(root / "S" / "classification" / "test.expression.tsv", sep="\t")
    np.testing.assert_allclose(got.observed, truth.expression, atol=1e-6)
    # onnxruntime's predictions are the PyTorch model's, on the real scale
    model = load_model(run / "best.pt")
    eager = predict(model, [torch.from_numpy(cf.read_bins(test).counts)])
    np.testing.assert_allclose(got.prediction, eager, atol=2e-4)
    r = np.corrcoef(got.prediction, got.observed)[0, 1]
    assert abs(r - m["test"]["pearson_r"]) < 1e-3
    assert abs(got.prediction.mean() - truth.expression.mean()) < 0.5  # not standardised


def test_one_expression_table_of_another_layout_gives_the_targets(reg_root, tmp_path):
    root, rsem = reg_root
    a = run_cli(
        "train",
        "--model",
        "cnn",
        "--task",
        "reg",
        "--data-root",
        root,
        "--cell-types",
        "S",
        "--epochs",
        1,
        "--seed",
        3,
        "--out",
        tmp_path / "a",
        "--quiet",
    )
    b = run_cli(
        "train",
        "--model",
        "cnn",
        "--task",
        "reg",
        "--data-root",
        root,
        "--cell-types",
        "S",
        "--epochs",
        1,
        "--seed",
        3,
        "--out",
        tmp_path / "b",
        "--quiet",
        "--expression",
        rsem,
    )
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    ma, mb = (json.loads((tmp_path / x / "metrics.json").read_text()) for x in "ab")
    assert ma["test"]["mse"] == pytest.approx(mb["test"]["mse"], rel=1e-4)


def test_regression_errors_name_what_is_missing(reg_root, tmp_path):
    root, _ = reg_root
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--expression",
        root / "genes.results",
        "--data-root",
        root,
        "--cell-types",
        "S",
        "--out",
        tmp_path / "x",
    )
    assert res.exit_code == 1 and "--expression gives the targets of --task reg" in res.output
    bare = tmp_path / "bare" / "S" / "classification"
    bare.mkdir(parents=True)
    for split, (_, seed) in SPLITS.items():
        cf.write_simulated(bare / f"{split}.csv", 50, seed=seed)
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--task",
        "reg",
        "--data-root",
        tmp_path / "bare",
        "--cell-types",
        "S",
        "--out",
        tmp_path / "y",
    )
    assert res.exit_code == 1
    assert "train.expression.tsv: no expression targets for --task reg" in res.output
