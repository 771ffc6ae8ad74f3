"""Where a network starts: the shipped starting weights a few-genes run takes, random
weights with init none, a checkpoint to fine-tune (and its refusals), and the builder
that makes the shipped weights."""

from __future__ import annotations

import json

import pytest
import torch

from chromaformer.errors import DataError
from chromaformer.models import ModelConfig, load_model
from chromaformer.models.checkpoint import read_checkpoint
from chromaformer.models.config import DATA_STATS, config_from_dict
from chromaformer.training import TrainConfig, train
from chromaformer.training.pretrain import build_starting_weights
from chromaformer.training.start import (
    START_DIR,
    START_GENES,
    resolve_start,
    shipped_start,
)

from .._common import ARCHS, run_cli
from .test_engine import _small_root

#: A rate so small that one epoch leaves every weight where it started.
STILL = 1e-30


def _weights(path):
    return read_checkpoint(path)["state_dict"]


def _close(a, b):
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-7) for k in a)


def test_a_few_genes_start_from_the_shipped_weights_of_their_model(tmp_path, capsys):
    """25 training genes, fewer than one batch: every architecture starts from the
    shipped weights made for the model it trains (the hybrid's few-genes size
    included), says so, and records the file; init none starts at random; the input
    normalisation is the run's own, not the simulated genes'."""
    root = _small_root(tmp_path)

    def run(out, arch, **kw):
        kw.setdefault("epochs", 1)
        tc = TrainConfig(out=str(tmp_path / out), data_root=str(root), cell_types=["C1"], **kw)
        return train(tc, arch, options=None)

    for arch in ARCHS:
        shipped = START_DIR / f"{arch}.pt"
        metrics = run(arch, arch, lr=STILL)
        assert metrics["start"] == str(shipped)
        assert f"the network starts from the shipped starting weights {arch}.pt" in (
            capsys.readouterr().err
        )
        assert _close(_weights(tmp_path / arch / "last.pt"), _weights(shipped)), arch
        ours = load_model(tmp_path / arch).config
        assert ours.input_mean != tuple(read_checkpoint(shipped)["config"]["input_mean"])
    # learned weights train at the recipe's start_lr (3e-4), also after a resume
    rate = run("rate", "cnn", epochs=2, stop_after=1)
    assert "peak learning rate 0.0003 in place of 0.003" in capsys.readouterr().err
    resumed = run("rate", "cnn", epochs=2, resume=True)
    assert (rate["peak_lr"], resumed["peak_lr"]) == (pytest.approx(3e-4), pytest.approx(3e-4))
    assert resumed["start"] == str(START_DIR / "cnn.pt")
    assert run("scratch-rate", "cnn", init="none")["peak_lr"] == pytest.approx(3e-3)
    scratch = run("scratch", "cnn", lr=STILL, init="none")
    assert scratch["start"] is None
    assert not _close(_weights(tmp_path / "scratch" / "last.pt"), _weights(START_DIR / "cnn.pt"))
    assert "starting weights" not in capsys.readouterr().err
    # the reference recipe keeps its random start
    assert run("reference", "cnn", recipe_name="attentivechrome")["start"] is None


def test_the_shipped_weights_are_for_few_genes_of_the_default_models_only(tmp_path):
    """auto finds shipped weights only for a few genes of a default model on their
    layout: not for one batch or more, another size or layout; a path is a checkpoint
    or a clear error."""
    few_hybrid = ModelConfig(arch="hybrid", bin_hidden=16)
    assert resolve_start("auto", few_hybrid, few_genes=True) == START_DIR / "hybrid.pt"
    assert resolve_start("auto", few_hybrid, few_genes=False) is None
    assert resolve_start("none", few_hybrid, few_genes=True) is None
    assert shipped_start(ModelConfig(arch="hybrid")) is None  # 32 hidden units
    assert shipped_start(ModelConfig(arch="cnn", bins=21, bin_size=10_000)) is None
    assert shipped_start(ModelConfig(arch="cnn", input_transform="log1p")) is None
    with pytest.raises(DataError, match="nothing.pt: no such checkpoint"):
        resolve_start(str(tmp_path / "nothing.pt"), few_hybrid, few_genes=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(DataError, match="best.pt: no such checkpoint"):
        resolve_start(str(run_dir), few_hybrid, few_genes=False)


def test_init_a_checkpoint_fine_tunes_it_and_refuses_another_model(tmp_path):
    """--init RUN starts a run of any size from RUN's weights (with the run's own input
    normalisation); a checkpoint of another architecture or layout, or none, is a one-line
    error naming the file and what differs, and writes no run folder."""
    root = _small_root(tmp_path)
    common = ["--data-root", root, "--cell-types", "C1", "--epochs", "1", "--quiet"]
    first = run_cli("train", "--model", "cnn", *common, "--init", "none", "--out", tmp_path / "a")
    assert first.exit_code == 0, first.output
    tuned = run_cli(
        "train", "--model", "cnn", *common, "--batch-size", "64", "--lr", STILL,
        "--init", tmp_path / "a", "--out", tmp_path / "b",
    )  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["start"] == str(tmp_path / "a" / "best.pt")
    assert _close(_weights(tmp_path / "b" / "last.pt"), _weights(tmp_path / "a" / "best.pt"))
    other = run_cli(
        "train", "--model", "bilstm_attention", *common, "--init", tmp_path / "a",
        "--out", tmp_path / "c",
    )  # fmt: skip
    assert other.exit_code != 0
    lines = other.stderr.strip().splitlines()
    assert len(lines) == 1, other.stderr
    assert (
        "a/best.pt: cannot start from this checkpoint: its arch is 'cnn', this run's is "
        in (lines[0])
    )
    assert not (tmp_path / "c").exists()
    wider = run_cli(
        "train", "--model", "cnn", "--model-config", '{"cnn_filters": 8}', *common,
        "--init", tmp_path / "a", "--out", tmp_path / "d",
    )  # fmt: skip
    assert wider.exit_code != 0 and "its weights do not fit this run's model" in wider.stderr
    missing = run_cli(
        "train", "--model", "cnn", *common, "--init", tmp_path / "x.pt", "--out", tmp_path / "e"
    )
    assert missing.exit_code != 0 and "x.pt: no such checkpoint" in missing.stderr


def test_the_builder_makes_what_auto_finds(tmp_path):
    """build_starting_weights trains on simulated genes and writes a checkpoint of the
    same model as the shipped one (the data statistics aside), with its provenance; the
    shipped files record the default simulated genes they came from."""
    made = build_starting_weights(
        tmp_path / "start",
        tmp_path / "work",
        ["hybrid"],
        genes={"train": (80, 11), "valid": (40, 12), "test": (40, 13)},
        epochs=1,
        quiet=True,
    )
    assert made == [tmp_path / "start" / "hybrid.pt"]
    built, shipped = read_checkpoint(made[0]), read_checkpoint(START_DIR / "hybrid.pt")

    def architecture(cfg):
        full = config_from_dict(cfg).to_dict()  # a field newer than the file: its default
        return {k: v for k, v in full.items() if k not in DATA_STATS}

    assert architecture(built["config"]) == architecture(shipped["config"])
    assert built["config"]["bin_hidden"] == 16  # the recipe's few-genes hybrid
    assert "train 80 (--seed 11)" in built["trained_on"]
    for split, (n, seed) in START_GENES.items():
        assert f"{split} {n} (--seed {seed})" in shipped["trained_on"]
    for arch in ARCHS:
        card = read_checkpoint(START_DIR / f"{arch}.pt")
        assert card["test"]["auroc"] > card["test"]["linear"], arch
