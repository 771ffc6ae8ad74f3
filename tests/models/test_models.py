"""Shapes, gradients, attention maps and rebuilding of every architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chromaformer.models import ARCHITECTURES, ModelConfig, build_model, load_model, save_checkpoint


def counts(batch=6, bins=100, marks=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((batch, bins, marks), 3.0), generator=g)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_shapes_gradients_and_attention(arch):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch)
    model = build_model(cfg)
    out = model(counts())
    assert out["logit"].shape == (6,) and torch.isfinite(out["logit"]).all()
    out["logit"].sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} gets no gradient"
    if cfg.has_attention:
        alpha, beta = out["bin_attention"], out["mark_attention"]
        assert alpha.shape == (6, 5, 100) and beta.shape == (6, 5)
        torch.testing.assert_close(alpha.sum(-1), torch.ones(6, 5))
        torch.testing.assert_close(beta.sum(-1), torch.ones(6))
        assert (alpha > 0).all() and alpha.std() > 0  # real maps, not zeros or constants
    else:
        assert set(out) == {"logit"}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_genes_are_independent_in_eval(arch):
    model = build_model(ModelConfig(arch=arch)).eval()
    x = counts(8)
    with torch.no_grad():
        full = model(x)["logit"]
        parts = torch.cat([model(x[:3])["logit"], model(x[3:])["logit"]])
    torch.testing.assert_close(full, parts, atol=1e-5, rtol=1e-5)


def test_other_bins_and_marks():
    for arch in ARCHITECTURES:
        cfg = ModelConfig(arch=arch, marks=tuple("abcdefg"), bins=40)
        out = build_model(cfg)(counts(3, 40, 7))
        assert out["logit"].shape == (3,)
        if cfg.has_attention:
            assert out["bin_attention"].shape == (3, 7, 40)


def test_input_transform_lives_in_the_model():
    torch.manual_seed(1)
    log_model = build_model(ModelConfig(arch="cnn", dropout=0.0)).eval()
    raw_model = build_model(ModelConfig(arch="cnn", dropout=0.0, input_transform="none")).eval()
    raw_model.load_state_dict(log_model.state_dict())
    x = counts()
    torch.testing.assert_close(log_model(x)["logit"], raw_model(torch.log1p(x))["logit"])


def test_config_rebuilds_model_from_checkpoint(tmp_path):
    torch.manual_seed(2)
    cfg = ModelConfig(arch="bilstm_attention_transformer", n_heads=2, dim_feedforward=32)
    assert cfg.arch == "hybrid"
    model = build_model(cfg).eval()
    save_checkpoint(tmp_path / "best.pt", model)
    again = load_model(tmp_path)  # a run folder works, as does the file
    assert not again.training and again.config == cfg
    x = counts()
    torch.testing.assert_close(model(x)["logit"], again(x)["logit"])
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_cnn_geometry_follows_the_bins_unless_given():
    from chromaformer.models.config import CNN_GEOMETRY_BINS
    from chromaformer.pretrained import resolve_model

    assert (ModelConfig(arch="cnn").cnn_kernel, ModelConfig(arch="cnn").cnn_pool) == (10, 5)
    short = ModelConfig(arch="cnn", bins=21)
    assert (short.cnn_kernel, short.cnn_pool) == (5, 2)
    edge = ModelConfig(arch="cnn", bins=CNN_GEOMETRY_BINS)
    assert (edge.cnn_kernel, edge.cnn_pool) == (10, 5)
    given = ModelConfig(arch="cnn", bins=21, cnn_kernel=10, cnn_pool=5)
    assert (given.cnn_kernel, given.cnn_pool) == (10, 5)
    # (21 - 5 + 1) // 2 = 8 pooled positions of 50 filters feed the dense layer
    assert build_model(short).mlp[1].in_features == 400
    assert build_model(given).mlp[1].in_features == 100
    # a stored config holds the resolved numbers: it rebuilds the same network
    again = ModelConfig.from_dict(given.to_dict())
    assert again == given and again.to_dict()["cnn_kernel"] == 10
    # the shipped e116 ensemble's cnn members store the geometry they were trained with,
    # the default for their 21 bins
    card = json.loads(Path(resolve_model("e116")).with_suffix(".model.json").read_text())
    members = [m for m in card["model_config"]["members"] if m["arch"] == "cnn"]
    for m in members:
        again = ModelConfig.from_dict(m)
        assert m["bins"] == 21 and (m["cnn_kernel"], m["cnn_pool"]) == (5, 2)
        assert again.mirror and (again.cnn_kernel, again.cnn_pool) == (5, 2)
    assert members
    with pytest.raises(ValueError, match="cnn_kernel and cnn_pool must be positive"):
        ModelConfig(arch="cnn", cnn_pool=-1)
    with pytest.raises(ValueError, match="the CNN needs at least 14 bins"):
        ModelConfig(arch="cnn", bins=12, cnn_kernel=10, cnn_pool=5)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_mirror_scores_a_profile_and_its_mirror_image_alike(arch):
    torch.manual_seed(3)
    x = counts(5, 21)
    plain = build_model(ModelConfig(arch=arch, bins=21)).eval()
    mirror = build_model(ModelConfig(arch=arch, bins=21, mirror=True)).eval()
    mirror.load_state_dict(plain.state_dict())  # the same weights: only forward differs
    a, b, p, q = mirror(x), mirror(x.flip(1)), plain(x), plain(x.flip(1))
    torch.testing.assert_close(a["logit"], b["logit"])
    torch.testing.assert_close(a["logit"], (p["logit"] + q["logit"]) / 2)
    assert not torch.allclose(p["logit"], q["logit"])  # the plain network is not symmetric
    if plain.config.has_attention:  # the maps: the mean of both passes, bins in order
        torch.testing.assert_close(a["bin_attention"], b["bin_attention"].flip(-1))
        torch.testing.assert_close(
            a["bin_attention"], (p["bin_attention"] + q["bin_attention"].flip(-1)) / 2
        )
        torch.testing.assert_close(a["bin_attention"].sum(-1), torch.ones(5, 5))
        torch.testing.assert_close(a["mark_attention"], b["mark_attention"])


def test_towers_are_independent_networks_averaged():
    """bilstm_attention is three towers by default, each from its own start, the output
    the log-odds of their mean probability and the maps' mean; the loss is the mean of
    each tower's own, so each tower's gradient is that of a network of its own; a stored
    config from before the field means one tower, as does the few-genes recipe."""
    from chromaformer.families import family_for
    from chromaformer.models.architectures import BiLSTMAttention
    from chromaformer.training.config import RECIPES

    assert ModelConfig(arch="bilstm_attention").towers == 3
    assert ModelConfig(arch="cnn").towers == ModelConfig(arch="hybrid").towers == 1
    old = ModelConfig(arch="bilstm_attention").to_dict()
    del old["towers"]
    assert ModelConfig.from_dict(old).towers == 1
    assert RECIPES["bins"]["few_genes_options"]["bilstm_attention"] == {"towers": 1}
    with pytest.raises(ValueError, match="towers must be positive"):
        ModelConfig(arch="cnn", towers=-1)

    torch.manual_seed(1)
    cfg = ModelConfig(arch="bilstm_attention", bins=21, mirror=True)
    model = build_model(cfg)
    x, y = counts(8, 21), torch.tensor([0.0, 1.0] * 4)
    out = model(x)
    towers = list(model.towers)
    assert len(towers) == 3 and all(isinstance(t, BiLSTMAttention) for t in towers)
    assert not torch.equal(towers[0].head.weight, towers[1].head.weight)  # own starts
    alone = [t(x) for t in towers]
    logits = torch.stack([o["logit"] for o in alone], dim=-1)
    torch.testing.assert_close(out["tower_logits"], logits)
    p = torch.sigmoid(logits).mean(-1)
    torch.testing.assert_close(torch.sigmoid(out["logit"]), p)
    assert not torch.allclose(out["logit"], logits.mean(-1))  # probabilities, not logits
    for key in ("bin_attention", "mark_attention"):
        torch.testing.assert_close(out[key], torch.stack([o[key] for o in alone]).mean(0))
    family = family_for(cfg)
    family.loss("clf", out, y, cfg).backward()
    one = ModelConfig(arch="bilstm_attention", bins=21, mirror=True, towers=1)
    single = build_model(one)
    single.load_state_dict(towers[1].state_dict())
    family.loss("clf", single(x), y, one).backward()
    for (name, mine), theirs in zip(towers[1].named_parameters(), single.parameters()):
        torch.testing.assert_close(mine.grad * 3, theirs.grad, msg=name)
    # regression: the mean of the towers' outputs, on the one target scale
    reg = ModelConfig(arch="bilstm_attention", bins=21, task="reg", towers=2)
    net = build_model(reg)
    out = net(x)
    torch.testing.assert_close(out["logit"], out["tower_logits"].mean(-1))


def test_bad_configs():
    with pytest.raises(ValueError, match="unknown architecture 'lstm'"):
        ModelConfig(arch="lstm")
    with pytest.raises(ValueError, match="must divide d_model"):
        ModelConfig(arch="hybrid", n_heads=5)
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        ModelConfig.from_dict({"arch": "cnn", "colour": 1})


class _Payload:
    """Unpickling this runs a command: what a hostile best.pt would carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_from_strangers_are_read_not_run(tmp_path):
    from click.testing import CliRunner

    from chromaformer.cli import main

    marker = tmp_path / "payload-ran"
    torch.save({"config": {}, "x": _Payload(marker)}, tmp_path / "evil.pt")
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 20)
    good = tmp_path / "good.pt"
    save_checkpoint(good, build_model(ModelConfig(arch="cnn", bins=20)))
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:300])
    for name, words in (
        ("evil.pt", "GLOBAL posix.system"),
        ("random.pt", "refused"),
        ("cut.pt", "checkpoint"),
    ):
        res = CliRunner().invoke(
            main, ["export", str(tmp_path / name), "-o", str(tmp_path / "x.onnx")]
        )
        assert res.exit_code == 1, (name, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {tmp_path / name}: "), res.output
        assert words in lines[0] and "Traceback" not in res.output
    assert not marker.exists()  # the payload never ran
    assert not (tmp_path / "x.onnx").exists()
