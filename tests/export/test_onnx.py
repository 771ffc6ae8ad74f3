"""Export -> onnx.checker -> onnxruntime parity for every architecture; the contract
(names, shapes, metadata, model card); variants and their accuracy bound."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import chromaformer as cf
from chromaformer.contract import card_path_for
from chromaformer.errors import DataError
from chromaformer.export import export_onnx
from chromaformer.models import ModelConfig
from chromaformer.models.grouped import GroupedPerMarkBiLSTM, is_recurrent_weight
from chromaformer.models.layers import PerMarkBiLSTM
from chromaformer.scoring import Scorer, session_options

from .._common import ARCHS, random_checkpoint


def _session(path):
    return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("arch", ARCHS)
def test_checker_contract_and_metadata(exported, arch):
    report, model, ckpt = exported[arch]
    path = report.path
    assert not list(path.parent.glob(f"{arch}.onnx*.data"))  # one self-contained file
    weights = 4 * sum(p.numel() for p in model.parameters())
    assert path.stat().st_size < weights + 200_000  # the weights plus a small graph
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,) = proto.graph.input
    assert inp.name == "counts" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # dynamic batch
    bins = model.config.bins
    assert [d.dim_value for d in dims[1:]] == [bins, 5]
    names = [o.name for o in proto.graph.output]
    expected = ["probability", "logit"] + (
        ["bin_attention", "mark_attention"] if model.config.has_attention else []
    )
    assert names == expected
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["marks"].split(",") == list(cf.BENCHMARK_MARKS)
    assert (meta["bins"], meta["bin_size"], meta["window"]) == (str(bins), "100", str(bins * 50))
    assert meta["family"] == "bins" and meta["inputs"] == meta["input"] == "counts"
    assert meta["architecture"] == arch and meta["chromaformer_version"] == cf.__version__
    assert meta["training_cell_types"] == ",".join(ckpt["cell_types"])
    assert meta["training_epoch"] == str(ckpt["epoch"])
    assert json.loads(meta["validation_metrics"])["mean_auroc"] == ckpt["valid"]["mean_auroc"]
    assert ModelConfig.from_dict(json.loads(meta["model_config"])) == model.config
    assert "highly expressed" in proto.doc_string
    # no stack traces or source paths from the exporter
    blob = path.read_bytes()
    for needle in (b"stack_trace", b"site-packages", os.getcwd().encode(), b".py:"):
        assert needle not in blob
    card = json.loads(card_path_for(path).read_text())
    assert card["metadata_props"] == meta
    assert card["schema"]["inputs"]["counts"]["marks"] == list(cf.BENCHMARK_MARKS)
    assert list(card["schema"]["outputs"]) == expected
    import hashlib

    assert card["onnx"]["sha256"] == hashlib.sha256(blob).hexdigest()


@pytest.mark.parametrize("arch", ARCHS)
def test_onnxruntime_matches_pytorch(exported, arch, real_counts):
    report, model, ckpt = exported[arch]
    sess = _session(report.path)
    bins = model.config.bins
    sim = cf.simulate_genome(1000, seed=5, bins=bins).counts
    for counts in (sim, real_counts) if bins == 100 else (sim,):
        for batch in (1, 7, 1000):
            x = counts[:batch]
            got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"counts": x})))
            with torch.no_grad():
                ref = model(torch.from_numpy(x))
            assert got["probability"].shape == (batch,)
            np.testing.assert_allclose(
                got["probability"], torch.sigmoid(ref["logit"]).numpy(), atol=1e-5, rtol=0
            )
            np.testing.assert_allclose(got["logit"], ref["logit"].numpy(), atol=1e-4, rtol=1e-5)
            if model.config.has_attention:
                assert got["bin_attention"].shape == (batch, 5, bins)
                np.testing.assert_allclose(
                    got["bin_attention"], ref["bin_attention"].numpy(), atol=1e-5, rtol=0
                )
                np.testing.assert_allclose(
                    got["mark_attention"], ref["mark_attention"].numpy(), atol=1e-5, rtol=0
                )


@pytest.mark.parametrize("marks,bins,hidden", [(5, 100, 32), (3, 17, 8), (7, 40, 16)])
def test_grouped_recurrence_equals_the_per_mark_lstms(marks, bins, hidden):
    torch.manual_seed(marks)
    layer = PerMarkBiLSTM(marks, hidden).eval()
    grouped = GroupedPerMarkBiLSTM(layer)
    x = torch.log1p(torch.poisson(torch.full((9, bins, marks), 4.0)))
    with torch.no_grad():
        emb, alpha = layer(x)
        emb2, alpha2 = grouped(x)
    assert emb2.shape == emb.shape and alpha2.shape == alpha.shape
    torch.testing.assert_close(emb2, emb, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(alpha2, alpha, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("d_model,heads,layers", [(64, 4, 2), (32, 2, 1)])
def test_export_encoder_layers_equal_pytorchs_transformer(d_model, heads, layers):
    """The marks' Transformer in its export form (attention scale on the queries) computes
    nn.TransformerEncoder's function; other kinds of layer are left as they are."""
    from torch import nn

    from chromaformer.models.grouped import ExportEncoderLayer, grouped_copy
    from chromaformer.models.layers import MarkTransformer

    torch.manual_seed(d_model + heads)
    block = MarkTransformer(5, d_model, heads, 2 * d_model, layers, 0.5).eval()
    export = grouped_copy(block)
    assert [type(m) for m in export.encoder] == [ExportEncoderLayer] * layers
    x = torch.randn(11, 5, d_model)
    with torch.no_grad():
        torch.testing.assert_close(export(x), block(x), atol=1e-6, rtol=1e-5)
    gelu = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 2, 32, activation="gelu", batch_first=True), 1
    )
    assert isinstance(grouped_copy(nn.Sequential(gelu))[0], nn.TransformerEncoder)


def test_export_is_byte_reproducible(tmp_path, exported):
    src, _ = random_checkpoint(tmp_path, "cnn")
    again = export_onnx(src, tmp_path / "again.onnx")
    assert again.path.read_bytes() == exported["cnn"][0].path.read_bytes()


def test_both_exporters_give_the_same_model(tmp_path, exported, real_counts):
    """The default TorchScript tracer and torch.export ("dynamo") give graphs that
    onnxruntime runs to the same outputs, with the same contract; an unknown tracer is
    refused before anything is written."""
    src, model = random_checkpoint(tmp_path, "cnn")
    dyn = export_onnx(src, tmp_path / "dynamo.onnx", exporter="dynamo")
    ts = exported["cnn"][0]
    assert dyn.metadata == ts.metadata
    onnx.checker.check_model(onnx.load(str(dyn.path)), full_check=True)
    x = real_counts[:200]
    a = _session(dyn.path).run(None, {"counts": x})
    b = _session(ts.path).run(None, {"counts": x})
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="exporter must be one of torchscript, dynamo"):
        export_onnx(src, tmp_path / "no.onnx", exporter="jit")
    assert not (tmp_path / "no.onnx").exists()


def test_int8_and_fp16_variants_are_checked_and_bounded(exported, tmp_path, monkeypatch):
    fp32 = exported["hybrid"][0].path
    for variant in ("int8", "fp16"):
        # int8 of this briefly trained model may exceed the AUROC bound (its
        # probabilities are bunched): force, then check what was measured
        rep = export_onnx(
            fp32, tmp_path / f"h-{variant}.onnx", variant=variant, force=variant == "int8"
        )
        check = rep.check
        assert check["genes"] == 800 and "bundled real sample" in check["sample"]
        assert 0 <= check["max_prob_diff"] <= (0.05 if variant == "int8" else 1e-3)
        assert {"auroc_fp32", "auroc_variant", "auroc_change"} <= set(check)
        proto = onnx.load(str(rep.path))
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["variant"] == variant and json.loads(meta["variant_check"]) == check
        if variant == "int8":  # the recurrence's gate matrices stay float32, the rest is int8
            gates = [i for i in proto.graph.initializer if is_recurrent_weight(i.name)]
            assert len(gates) == 4
            assert all(i.data_type == onnx.TensorProto.FLOAT for i in gates)
            assert any(n.op_type == "MatMulInteger" for n in proto.graph.node)
        scorer = Scorer(rep.path)
        assert scorer.info.variant == variant
        x = cf.simulate_genome(50, seed=2).counts
        ref = Scorer(fp32).predict(x)["probability"]
        assert np.abs(scorer.predict(x)["probability"] - ref).max() < 0.05
    # a variant beyond the bound is refused and nothing is written, unless forced
    import chromaformer.export.onnx as ex

    monkeypatch.setattr(ex, "MAX_PROB_DIFF", 0.0)
    target = tmp_path / "refused.onnx"
    with pytest.raises(DataError, match="moves probabilities"):
        export_onnx(fp32, target, variant="int8")
    assert not target.exists() and not card_path_for(target).exists()
    assert export_onnx(fp32, target, variant="int8", force=True).path.exists()
    with pytest.raises(DataError, match="not an fp32 model"):
        export_onnx(target, tmp_path / "twice.onnx", variant="fp16")


def test_normalisation_is_the_graphs_first_nodes(exported, real_counts):
    """The trained model standardises log1p counts with its training genes' statistics;
    the graph does it first, from its own constants, so scorers feed raw counts, and
    onnxruntime equals PyTorch within 1e-5 on counts of any scale."""
    import onnx
    from onnx import numpy_helper

    report, model, _ = exported["hybrid"]
    cfg = model.config
    assert cfg.input_transform == "standardize" and len(cfg.input_mean) == 5
    assert all(abs(m) > 0.05 for m in cfg.input_mean) and all(s != 1 for s in cfg.input_std)
    proto = onnx.load(str(report.path))
    consts = [numpy_helper.to_array(i) for i in proto.graph.initializer]
    consts += [
        numpy_helper.to_array(a.t)
        for n in proto.graph.node
        if n.op_type == "Constant"
        for a in n.attribute
        if a.name == "value"
    ]
    # the statistics are constants of the graph: the means and the 1/sd scales
    vectors = [v.ravel() for v in consts if v.size == 5]
    for stats in (cfg.input_mean, 1.0 / np.asarray(cfg.input_std)):
        assert any(np.allclose(v, np.float32(stats), rtol=1e-6) for v in vectors), stats
    sess = _session(report.path)
    for scale in (1.0, 100.0):
        x = real_counts[:64] * np.float32(scale)
        got = sess.run(["probability"], {"counts": x})[0]
        with torch.no_grad():
            ref = torch.sigmoid(model(torch.from_numpy(x))["logit"]).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_ensemble_of_runs_is_one_graph(tmp_path):
    """Several runs export as one graph whose probability is the mean of the members'
    (ORT == PyTorch), with attention averaged when all members have it; members of
    different layouts are refused."""
    from chromaformer.export import export_onnx
    from chromaformer.models.ensemble import ensemble_of

    from .._common import random_checkpoint

    a, ma = random_checkpoint(tmp_path, "cnn", seed=1, bins=20)
    (tmp_path / "b").mkdir()
    b, mb = random_checkpoint(tmp_path / "b", "cnn", seed=2, bins=20)
    report = export_onnx([a, b], tmp_path / "ens.onnx")
    assert report.metadata["architecture"] == "ensemble"
    assert report.metadata["ensemble"] == "ensemble of 2 cnn"
    x = cf.simulate_genome(300, seed=4, bins=20).counts
    got = _session(report.path).run(["probability", "logit"], {"counts": x})
    with torch.no_grad():
        p = (
            torch.sigmoid(ma(torch.from_numpy(x))["logit"])
            + torch.sigmoid(mb(torch.from_numpy(x))["logit"])
        ) / 2
        ens = ensemble_of([ma, mb])(torch.from_numpy(x))
    np.testing.assert_allclose(got[0], p.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(got[1], ens["logit"].numpy(), atol=1e-4, rtol=1e-5)
    (tmp_path / "c").mkdir()
    c, _ = random_checkpoint(tmp_path / "c", "cnn", seed=3, bins=30)
    with pytest.raises(cf.DataError, match="ensemble members disagree on their layout"):
        export_onnx([a, c], tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
