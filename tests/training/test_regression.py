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


def _train(root, out, *options):
    """``chromaformer train --model cnn --task reg`` on the simulated cell ``S``."""
    common = ["--model", "cnn", "--task", "reg", "--data-root", root, "--cell-types", "S"]
    return run_cli("train", *common, "--out", out, "--quiet", *options)


def test_cnn_regression_trains_exports_and_scores(reg_root, tmp_path):
    root, _ = reg_root
    run = tmp_path / "run"
    res = _train(root, run, "--epochs", 6)
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
    a = _train(root, tmp_path / "a", "--epochs", 1, "--seed", 3)
    b = _train(root, tmp_path / "b", "--epochs", 1, "--seed", 3, "--expression", rsem)
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    ma, mb = (json.loads((tmp_path / x / "metrics.json").read_text()) for x in "ab")
    assert ma["test"]["mse"] == pytest.approx(mb["test"]["mse"], rel=1e-4)


def test_seeds_average_into_a_regression_ensemble_and_cv_reports_folds(reg_root, tmp_path):
    """--seeds 2: mean +- sd over seeds beside the baselines, and the seeds' ensemble
    (the mean of their predictions) exported as one graph that scores the same; --cv 2:
    per-fold Pearson for the model and both baselines."""
    root, _ = reg_root
    out = tmp_path / "seeds"
    res = _train(root, out, "--epochs", 2, "--seeds", 2)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "cv.json").read_text())
    assert report["task"] == "reg" and report["metric"] == "mse"
    assert {"model", "linear", "gradient_boosting"} <= set(report["summary"])
    for part in report["summary"].values():
        assert set(part) >= {"mse", "pearson_r", "spearman"}, part
    assert "pearson_r" in res.output and "ensemble of the seeds" in res.output
    assert set(report["gaps"]) == {"linear", "gradient_boosting"}
    assert "Pearson r of the model minus each baseline's over every gene" in res.output
    assert "95% bootstrap interval" in res.output
    assert len(report["runs"]) == 2
    test = root / "S" / "classification" / "test.csv"
    counts = torch.from_numpy(cf.read_bins(test).counts)
    members = [predict(load_model(out / f"run-seed{s}"), [counts]) for s in (1, 2)]
    ens = load_model(out / "ensemble")
    np.testing.assert_allclose(predict(ens, [counts]), np.mean(members, axis=0), rtol=1e-5)
    onnx_path = tmp_path / "ens.onnx"
    assert run_cli("export", out / "ensemble", "-o", onnx_path, "--quiet").exit_code == 0
    scored = cf.predict(onnx_path, test)
    assert list(scored.columns) == ["prediction"]
    np.testing.assert_allclose(scored["prediction"], np.mean(members, axis=0), atol=2e-4)
    ens_metrics = json.loads((out / "ensemble" / "metrics.json").read_text())
    truth = pd.read_csv(root / "S" / "classification" / "test.expression.tsv", sep="\t")
    r = np.corrcoef(scored["prediction"], truth.expression)[0, 1]
    assert abs(r - ens_metrics["test"]["pearson_r"]) < 1e-3

    res = _train(root, tmp_path / "cv", "--epochs", 1, "--cv", 2)
    assert res.exit_code == 0, res.output
    cv = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert cv["folds"] == 2 and len(cv["runs"]) == 2
    for run in cv["runs"]:
        for part in (run["model"], *run["baselines"].values()):
            assert -1 <= part["pearson_r"] <= 1


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
