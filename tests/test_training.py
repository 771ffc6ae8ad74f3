"""Training end to end on simulated genomes: learning, seeds, resume, CLI, DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from chromaformer.cli import main
from chromaformer.models import ModelConfig, load_model
from chromaformer.training import TrainConfig, train
from conftest import DEEPDIFF


def run(root, out, arch="cnn", epochs=2, **kw):
    model_kw = {k: kw.pop(k) for k in ("dropout", "n_heads", "dim_feedforward", "n_layers")
                if k in kw}
    tc = TrainConfig(data_root=str(root), cell_types=kw.pop("cell_types", ["E1", "E2"]),
                     out=str(out), epochs=epochs, quiet=True, **kw)
    return train(tc, ModelConfig(arch=arch, **model_kw))


def state(out):
    return torch.load(out / "last.pt", weights_only=False)["state_dict"]


def test_hybrid_learns_the_simulated_genome(sim_root, tmp_path):
    metrics = run(sim_root, tmp_path, arch="hybrid", epochs=3, batch_size=32, lr=2e-3,
                  n_layers=1)
    assert metrics["test"]["mean_auroc"] > 0.8, metrics["test"]
    assert set(metrics["test"]["per_cell"]) == {"E1", "E2"}
    assert 0.8 < metrics["baseline_logreg"]["mean_auroc"] <= 1
    for name in ("best.pt", "last.pt", "metrics.json", "log.csv", "config.json", "roc.png", "pr.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test"]["mean_auroc"] == pytest.approx(metrics["test"]["mean_auroc"])
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 4
    model = load_model(tmp_path)
    assert model.config.arch == "hybrid" and model.config.n_layers == 1


def test_same_seed_same_numbers_other_seed_other_numbers(sim_root, tmp_path):
    a = run(sim_root, tmp_path / "a", seed=3, epochs=1)
    b = run(sim_root, tmp_path / "b", seed=3, epochs=1)
    c = run(sim_root, tmp_path / "c", seed=4, epochs=1)
    assert a["test"] == b["test"]
    for k, v in state(tmp_path / "a").items():
        assert torch.equal(v, state(tmp_path / "b")[k]), k
    assert a["test"] != c["test"]


def test_resume_continues_where_it_stopped(sim_root, tmp_path):
    full = run(sim_root, tmp_path / "full", epochs=3, seed=5)
    run(sim_root, tmp_path / "cut", epochs=1, seed=5)  # "killed" after one epoch
    resumed = run(sim_root, tmp_path / "cut", epochs=3, seed=5, resume=True)
    assert resumed["epochs_run"] == 3
    for k, v in state(tmp_path / "full").items():
        assert torch.equal(v, state(tmp_path / "cut")[k]), k
    assert resumed["test"] == full["test"]


def test_cli_train_and_eval_with_reference_spellings(sim_root, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--model_type", "bilstm_attention", "--data_root", str(sim_root),
            "--cell_types", "E1", "E2", "--epochs", "1", "--batch_size", "64",
            "--out", str(out), "--quiet"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "E1" in res.output and "mean" in res.output and "LR AUROC" in res.output
    assert load_model(out).config.arch == "bilstm_attention"
    res = CliRunner().invoke(main, args[:-3] + ["--out", str(out), "--mode", "eval"])
    assert res.exit_code == 0 and "E2" in res.output
    res = CliRunner().invoke(main, ["eval", str(out), "--data-root", str(sim_root),
                                    "--cell-types", "E2", "--json"])
    assert res.exit_code == 0, res.output
    assert list(json.loads(res.output)["test"]["per_cell"]) == ["E2"]


def test_cli_clear_errors(sim_root, tmp_path):
    base = ["train", "--data-root", str(sim_root), "--epochs", "1", "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(main, base + ["--cell-types", "E1", "E9"])
    assert res.exit_code == 1
    assert "unknown cell type 'E9'" in res.output and "available: E1, E2" in res.output
    if not torch.cuda.is_available():
        res = CliRunner().invoke(main, base + ["--cell-types", "E1", "--device", "cuda"])
        assert res.exit_code == 1 and "CUDA is not available" in res.output
    res = CliRunner().invoke(main, base + ["--cell-types", "E1", "--model", "gru"])
    assert res.exit_code == 2 and "unknown architecture 'gru'" in res.output
    # a model trained on 100-bin data cannot evaluate data of other bins
    run(sim_root, tmp_path / "m", epochs=1)
    other = tmp_path / "other"
    from chromaformer import write_simulated
    for split in ("train", "test"):
        write_simulated(other / "X" / "classification" / f"{split}.csv", 30, bins=50)
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "m"), "--data-root", str(other),
                                    "--cell-types", "X"])
    assert res.exit_code == 1 and "50 bins x 5 marks but the model expects 100 bins" in res.output


def test_real_sample_trains_to_a_useful_model(tmp_path):
    metrics = run(DEEPDIFF, tmp_path, arch="cnn", epochs=4, batch_size=16, lr=1e-3,
                  cell_types=["Cell1"])
    assert metrics["test"]["per_cell"]["Cell1"]["auroc"] > 0.85


def test_torchrun_two_cpu_processes_match_one(sim_root, tmp_path):
    common = ["--model", "bilstm_attention", "--data-root", str(sim_root), "--cell-types", "E1",
              "--epochs", "1", "--batch-size", "32", "--seed", "2", "--quiet", "--threads", "1"]
    single = subprocess.run([sys.executable, "-m", "chromaformer.cli.train", *common,
                             "--out", str(tmp_path / "one")], capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "chromaformer.cli.train", *common,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = state(tmp_path / "one"), state(tmp_path / "two")
    for k in one:
        torch.testing.assert_close(one[k], two[k], atol=2e-5, rtol=1e-4)
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m2["world_size"] == 2
    assert m1["test"]["mean_auroc"] == pytest.approx(m2["test"]["mean_auroc"], abs=1e-4)
