"""Chromoformer through the toolkit's one engine and commands: export (ONNX parity with
PyTorch for clf, reg and diff) -> chromaformer-score, prepare --model, the demo, errors."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from chromaformer.data.chromoformer import joint_inputs, load_chromoformer
from chromaformer.models import load_model
from chromaformer.models.checkpoint import model_from_checkpoint
from chromaformer.training import predict

from .._common import E003
from .._common import run_cli as _run


def _sets(cells, task):
    a = load_chromoformer(str(cells / "A" / "meta.csv"), str(cells / "A" / "npy"))
    if task != "diff":
        return [a]
    return [a, load_chromoformer(str(cells / "B" / "meta.csv"), str(cells / "B" / "npy"))]


@pytest.mark.parametrize("task", ["clf", "reg", "diff"])
def test_onnx_matches_pytorch(cf_runs, cf_cells, task):
    d, cells = cf_runs, cf_cells
    model = load_model(d / task)
    sess = ort.InferenceSession(str(d / f"{task}.onnx"), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["architecture"] == "chromoformer" and meta["task"] == task
    assert [i.name for i in sess.get_inputs()] == model.input_names()
    sets = _sets(cells, task)
    if task == "clf" and (E003 / "meta.csv").exists():
        sets = [load_chromoformer(str(E003 / "meta.csv"), str(E003 / "npy"))]  # real genes
    no_regions = np.flatnonzero((sets[0].lengths > 0).sum(1) == 0)
    for idx in (no_regions[:1], np.arange(7), np.arange(len(sets[0]))):
        feeds = joint_inputs(sets, idx)
        got = sess.run(None, dict(zip(model.input_names(), feeds)))
        with torch.no_grad():
            want = model(*[torch.from_numpy(np.ascontiguousarray(x)) for x in feeds])
        for name, value in zip(model.output_names(), got):
            np.testing.assert_allclose(value, want[name].numpy(), atol=1e-5, err_msg=name)
    card = json.loads((d / f"{task}.model.json").read_text())
    assert card["info"]["task"] == task and card["schema"]["inputs"]


def test_score_cli_clf_and_diff(cf_runs, cf_cells, tmp_path):
    d, cells = cf_runs, cf_cells
    out = tmp_path / "clf.tsv"
    res = _run(
        "score",
        "--model",
        d / "clf.onnx",
        "--meta",
        cells / "A" / "meta.csv",
        "--npy-dir",
        cells / "A" / "npy",
        "-o",
        out,
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert "40 genes" in res.output and "AUROC" in res.output
    table = pd.read_csv(out, sep="\t", dtype={"gene_id": str})
    assert list(table.columns) == ["gene_id", "probability", "label"]
    sets = _sets(cells, "clf")
    want = predict(load_model(d / "clf"), joint_inputs(sets, slice(None)), batch_size=64)
    np.testing.assert_allclose(table.probability, want, atol=1e-5)
    assert table.label.tolist() == sets[0].labels.tolist()
    out = tmp_path / "diff.tsv"
    res = _run(
        "score",
        "--model",
        d / "diff.onnx",
        "--meta",
        cells / "A" / "meta.csv",
        "--meta",
        cells / "B" / "meta.csv",
        "--npy-dir",
        cells / "A" / "npy",
        "--npy-dir",
        cells / "B" / "npy",
        "-o",
        out,
        "--chunk-genes",
        "7",  # the genes are read and binned chunk by chunk: 6 chunks, the last of 5
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert "pearson_r" in res.output
    table = pd.read_csv(out, sep="\t")
    a, b = (pd.read_csv(cells / c / "meta.csv") for c in "AB")
    np.testing.assert_allclose(
        table.observed, np.log2(b.expression + 1) - np.log2(a.expression + 1), atol=1e-5
    )
    diff_sets = _sets(cells, "diff")
    whole = predict(load_model(d / "diff"), joint_inputs(diff_sets, slice(None)), batch_size=64)
    np.testing.assert_allclose(table.log2fc, np.asarray(whole).reshape(-1), atol=1e-5)


def test_score_cli_errors(cf_runs, cf_cells, tmp_path):
    d, cells = cf_runs, cf_cells
    out = tmp_path / "never.tsv"
    res = _run("score", cells / "A" / "meta.csv", "--model", d / "clf.onnx", "-o", out)
    assert res.exit_code == 1 and "a Chromoformer model" in res.output
    res = _run(
        "score",
        "--model",
        d / "diff.onnx",
        "--meta",
        cells / "A" / "meta.csv",
        "--npy-dir",
        cells / "A" / "npy",
        "-o",
        out,
    )
    assert res.exit_code == 1 and "give 2 --meta and 2 --npy-dir" in res.output
    bad = tmp_path / "meta.csv"
    meta = pd.read_csv(cells / "A" / "meta.csv")
    meta.loc[3, "start"] += 7  # its promoter file does not exist
    meta.to_csv(bad, index=False)
    res = _run(
        "score",
        "--model",
        d / "clf.onnx",
        "--meta",
        bad,
        "--npy-dir",
        cells / "A" / "npy",
        "-o",
        out,
    )
    assert res.exit_code == 1
    assert f"{bad}:5: no array" in res.output
    assert not out.exists()


@pytest.mark.reference
def test_reference_checkpoint_loads_for_export(tmp_path):
    """A checkpoint of the reference package ({'net': state_dict}) rebuilds our model."""
    chromoformer = pytest.importorskip("chromoformer")
    for cls, task in (
        (chromoformer.ChromoformerClassifier, "clf"),
        (chromoformer.ChromoformerRegressor, "reg"),
    ):
        ref = cls()
        torch.save({"net": ref.state_dict(), "epoch": 3}, tmp_path / f"{task}.pt")
        ckpt = torch.load(tmp_path / f"{task}.pt", weights_only=True)
        model = model_from_checkpoint(ckpt)
        assert model.config.task == task
        for k, v in ref.state_dict().items():
            assert torch.equal(model.state_dict()[k], v), k


def test_prepare_chromoformer_layout_for_a_model_then_score(cf_runs, tmp_path):
    """bigWigs -> chromaformer-prepare --layout chromoformer --model -> chromaformer-score."""
    from chromaformer.formats.signal import write_bigwig
    from chromaformer.layout import CHROMOFORMER_MARKS

    d = cf_runs
    rng = np.random.default_rng(3)
    args = []
    for m in reversed(CHROMOFORMER_MARKS):
        v = np.repeat(rng.poisson(2.0, 8000), 25).astype(np.float64)
        write_bigwig(str(tmp_path / f"{m}.bw"), {"chr2": 200_000}, {"chr2": [(0, v)]})
        args += ["--mark", f"{m}={tmp_path / f'{m}.bw'}"]
    bed = tmp_path / "g.bed"
    bed.write_text("chr2\t50000\t50001\tGA\t0\t+\nchr2\t120000\t120001\tGB\t0\t-\n")
    inter = tmp_path / "c.tsv"
    inter.write_text("GA\tchr2:90000-95000\t2.5\nGA\tchr2:10000-12000\t1.7\n")
    expr = tmp_path / "e.tsv"
    expr.write_text("GA\t12.5\nGB\t0.3\n")
    res = _run(
        "prepare",
        *args,
        "--genes",
        bed,
        "--layout",
        "chromoformer",
        "--model",
        d / "clf.onnx",
        "--interactions",
        inter,
        "--expression",
        expr,
        "-o",
        tmp_path / "layout",
        "-q",
    )
    assert res.exit_code == 0, res.output
    res = _run(
        "prepare",
        *args[:12],
        "--genes",
        bed,
        "--layout",
        "chromoformer",
        "--model",
        d / "clf.onnx",
        "-o",
        tmp_path / "layout2",
        "-q",
    )
    assert res.exit_code == 1 and "no --mark for" in res.output
    out = tmp_path / "s.tsv"
    res = _run(
        "score",
        "--model",
        d / "clf.onnx",
        "--meta",
        tmp_path / "layout" / "meta.csv",
        "--npy-dir",
        tmp_path / "layout" / "npy",
        "-o",
        out,
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, sep="\t")
    assert table.gene_id.tolist() == ["GA", "GB"] and table.label.tolist() == [1, 0]
    data = load_chromoformer(
        str(tmp_path / "layout" / "meta.csv"), str(tmp_path / "layout" / "npy")
    )
    assert data.lengths[0, :2].tolist() == [5000, 2000] and data.lengths[1].sum() == 0


@pytest.mark.slow
def test_demo_chromoformer_end_to_end(tmp_path):
    res = _run(
        "demo",
        "--data",
        "simulated",
        "--model",
        "chromoformer",
        "--genes",
        "40",
        "--epochs",
        "1",
        "--out",
        tmp_path,
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert "[4/4] scored 40 genes" in res.output and "AUROC" in res.output
    table = pd.read_csv(tmp_path / "chromoformer.scores.tsv", sep="\t")
    assert len(table) == 40 and table.probability.between(0, 1).all()
    assert json.loads((tmp_path / "chromoformer.model.json").read_text())["info"]["task"] == "clf"
