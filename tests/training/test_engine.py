"""The one training engine, on both families: learning, seeds, resume (bit-identical),
early stopping, torchrun DDP == one process, eval mode, degenerate folds, CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

import chromaformer as cf
from chromaformer.models import ChromoformerConfig, load_model
from chromaformer.training import TrainConfig, train

from .._common import DEEPDIFF, SMALL_CF, run_cli


def run(root, out, arch="cnn", epochs=2, options=None, **kw):
    tc = TrainConfig(
        data_root=str(root),
        cell_types=kw.pop("cell_types", ["E1", "E2"]),
        out=str(out),
        epochs=epochs,
        quiet=True,
        **kw,
    )
    return train(tc, arch, options=options)


def run_cf(cells, out, task="clf", epochs=2, **kw):
    metas = [str(cells / c / "meta.csv") for c in ("A", "B")[: 2 if task == "diff" else 1]]
    npys = [str(cells / c / "npy") for c in ("A", "B")[: len(metas)]]
    tc = TrainConfig(out=str(out), meta=metas, npy_dir=npys, epochs=epochs, quiet=True, **kw)
    return train(tc, ChromoformerConfig(task=task, **SMALL_CF))


def state(out):
    return torch.load(out / "last.pt", weights_only=True)["state_dict"]


def same_state(a, b):
    sa, sb = state(a), state(b)
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        assert torch.equal(v, sb[k]), k


def test_hybrid_learns_the_simulated_genome(sim_root, tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    matplotlib.use("pdf")  # a user's own backend: drawing the PNG curves leaves it alone
    try:
        metrics = run(
            sim_root,
            tmp_path,
            arch="hybrid",
            epochs=3,
            batch_size=32,
            lr=2e-3,
            options={"n_layers": 1},
        )
        assert matplotlib.get_backend() == "pdf"
    finally:
        matplotlib.use(backend)
    assert metrics["test"]["mean_auroc"] > 0.8, metrics["test"]
    assert set(metrics["test"]["per_cell"]) == {"E1", "E2"}
    assert metrics["baseline_name"] == "logistic regression"
    assert 0.8 < metrics["baseline"]["mean_auroc"] <= 1
    for name in (
        "best.pt",
        "last.pt",
        "metrics.json",
        "log.csv",
        "config.json",
        "roc.png",
        "pr.png",
    ):
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
    same_state(tmp_path / "a", tmp_path / "b")
    assert a["test"] != c["test"]


def test_resume_continues_where_it_stopped(sim_root, tmp_path):
    full = run(sim_root, tmp_path / "full", epochs=3, seed=5)
    run(sim_root, tmp_path / "cut", epochs=3, seed=5, stop_after=1)  # "killed" after one epoch
    resumed = run(sim_root, tmp_path / "cut", epochs=3, seed=5, resume=True)
    assert resumed["epochs_run"] == 3
    same_state(tmp_path / "full", tmp_path / "cut")
    assert resumed["test"] == full["test"]


def test_chromoformer_resume_is_bit_identical_and_early_stopping(cf_cells, tmp_path):
    full = run_cf(cf_cells, tmp_path / "full", epochs=3, seed=5, fold=2)
    run_cf(cf_cells, tmp_path / "cut", epochs=3, seed=5, fold=2, stop_after=1)
    resumed = run_cf(cf_cells, tmp_path / "cut", epochs=3, seed=5, fold=2, resume=True)
    same_state(tmp_path / "full", tmp_path / "cut")
    timeless = [
        [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in m["history"]]
        for m in (resumed, full)
    ]
    assert timeless[0] == timeless[1] and resumed["epochs_run"] == 3
    # the learning rate follows the reference's StepLR(0.87) through the resume
    lrs = [h["lr"] for h in resumed["history"]]
    assert lrs == pytest.approx([3e-5, 3e-5 * 0.87, 3e-5 * 0.87**2])
    # patience 1 with a validation metric that cannot improve (lr 0) stops after 2 epochs
    stopped = run_cf(cf_cells, tmp_path / "stop", epochs=5, lr=1e-12, patience=1, fold=2)
    assert stopped["epochs_run"] == 2 and stopped["best_epoch"] == 1


def test_chromoformer_reg_and_diff_report_regression_metrics(cf_cells, tmp_path):
    for task in ("reg", "diff"):
        m = run_cf(cf_cells, tmp_path / task, task=task, epochs=1)
        assert m["task"] == task and m["baseline_name"] == "ridge regression"
        assert {"mse", "pearson_r", "r2"} <= set(m["test"]) and m["test"]["genes"] > 0
        assert {"valid_mse", "train_loss", "lr"} <= set(m["history"][0])
        again = cf.evaluate_run(tmp_path / task)  # eval mode: trains nothing
        assert again["test"] == pytest.approx(m["test"])


def test_chromoformer_set_in_one_split_gets_folds_by_chromosome(cf_cells, tmp_path):
    meta = pd.read_csv(cf_cells / "A" / "meta.csv")
    meta["split"] = 1  # as the reference's own demo data
    meta.to_csv(tmp_path / "meta.csv", index=False)
    tc = TrainConfig(
        out=str(tmp_path / "run"),
        meta=[str(tmp_path / "meta.csv")],
        npy_dir=[str(cf_cells / "A" / "npy")],
        epochs=1,
        quiet=True,
    )
    m = train(tc, ChromoformerConfig(**SMALL_CF))
    assert "folds assigned by whole chromosomes" in m["notes"][0]
    assert m["genes"]["train"] + m["genes"]["valid"] == 40 and m["genes"]["valid"] == 10


def test_cli_train_and_eval_with_reference_spellings(sim_root, tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "--model_type",
        "bilstm_attention",
        "--data_root",
        str(sim_root),
        "--cell_types",
        "E1",
        "E2",
        "--epochs",
        "1",
        "--batch_size",
        "64",
        "--out",
        str(out),
    ]
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    assert "E1" in res.output and "mean" in res.output and "LR AUROC" in res.output
    model = load_model(out)
    assert model.config.arch == "bilstm_attention"
    # its default: three towers in one network, said in a note
    assert model.config.towers == len(model.towers) == 3
    assert "note: bilstm_attention is 3 towers in one network" in res.output
    before = (out / "best.pt").stat().st_mtime_ns
    res = run_cli(*args[:-2], "--out", str(out), "--mode", "eval", "--quiet")
    assert res.exit_code == 0 and "E2" in res.output
    assert (out / "best.pt").stat().st_mtime_ns == before  # eval trains nothing
    res = run_cli("eval", out, "--data-root", sim_root, "--cell-types", "E2", "--json")
    assert res.exit_code == 0, res.output
    assert list(json.loads(res.output)["test"]["per_cell"]) == ["E2"]


def test_cli_chromoformer_train_then_eval_mode(cf_cells, tmp_path):
    out = tmp_path / "cf"
    a = cf_cells / "A"
    base = [
        "train",
        "--model",
        "chromoformer",
        "--meta",
        a / "meta.csv",
        "--npy-dir",
        a / "npy",
        "--fold",
        "2",
        "--out",
        out,
    ]
    res = run_cli(*base, "--epochs", "1", "--quiet", "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 0, res.output
    assert "valid split" in res.output and "LR AUROC" in res.output
    assert len(list((tmp_path / "cache").glob("chromoformer-*.npz"))) == 1  # binned once
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert {"best.pt", "roc.png"} <= set(before)
    res = run_cli(*base, "--mode", "eval")
    assert res.exit_code == 0 and "fold2" in res.output, res.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # only reports
    res = run_cli("eval", out, "--json")
    assert json.loads(res.output)["evaluated_on"] == "valid"


def test_cli_model_config_is_checked(sim_root, tmp_path):
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        sim_root,
        "--cell-types",
        "E1",
        "--model-config",
        '{"d_emb": 8}',
        "--out",
        tmp_path / "x",
    )
    assert res.exit_code == 1 and "d_emb" in res.output
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        sim_root,
        "--cell-types",
        "E1",
        "--model-config",
        "[1, 2",
        "--out",
        tmp_path / "x",
    )
    assert res.exit_code == 2 and "not a JSON object" in res.output
    assert not (tmp_path / "x").exists()


def test_cli_options_of_the_other_family_are_errors(sim_root, cf_cells, tmp_path):
    a = cf_cells / "A"
    res = run_cli(
        "train",
        "--model",
        "chromoformer",
        "--meta",
        a / "meta.csv",
        "--npy-dir",
        a / "npy",
        "--dropout",
        "0.1",
        "--n-heads",
        "2",
        "--out",
        tmp_path / "x",
    )
    assert res.exit_code == 1
    assert "--dropout, --n-heads do not apply to the chromoformer family" in res.output
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        sim_root,
        "--cell-types",
        "E1",
        "--fold",
        "2",
        "--out",
        tmp_path / "y",
    )
    assert res.exit_code == 1 and "--fold does not apply to the bins family" in res.output
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        sim_root,
        "--cell-types",
        "E1",
        "--task",
        "diff",
        "--out",
        tmp_path / "y",
    )
    assert res.exit_code == 1 and "--task diff does not apply to the bins family" in res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_clear_errors(sim_root, tmp_path):
    base = ["train", "--data-root", str(sim_root), "--epochs", "1", "--out", str(tmp_path / "r")]
    res = run_cli(*base, "--cell-types", "E1", "E9")
    assert res.exit_code == 1
    assert "unknown cell type 'E9'" in res.output and "available: E1, E2" in res.output
    if not torch.cuda.is_available():
        res = run_cli(*base, "--cell-types", "E1", "--device", "cuda")
        assert res.exit_code == 1 and "CUDA is not available" in res.output
    res = run_cli(*base, "--cell-types", "E1", "--model", "gru")
    assert res.exit_code == 1 and "unknown model 'gru'" in res.output
    # a model trained on 100-bin data cannot evaluate data of other bins
    run(sim_root, tmp_path / "m", epochs=1)
    other = tmp_path / "other"
    for split in ("train", "valid", "test"):
        cf.write_simulated(other / "X" / "classification" / f"{split}.csv", 30, bins=50)
    res = run_cli("eval", tmp_path / "m", "--data-root", other, "--cell-types", "X")
    assert res.exit_code == 1 and "50 bins x 5 marks but the model expects 100 bins" in res.output


def test_progress_bars_only_on_a_terminal(sim_root, tmp_path):
    """A run whose stderr is not a terminal (a log file; here click's captured stream)
    gets the epoch lines and no bar redraws."""
    common = ["--model", "cnn", "--data-root", sim_root, "--cell-types", "E1", "--epochs", "2"]
    res = run_cli("train", *common, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    text = res.stderr
    assert "epoch 1/2: loss" in text and "epoch 2/2: loss" in text
    assert "\r" not in text and "gene/s" not in text


def test_real_sample_trains_to_a_useful_model(tmp_path):
    metrics = run(
        DEEPDIFF, tmp_path, arch="cnn", epochs=4, batch_size=16, lr=1e-3, cell_types=["Cell1"]
    )
    assert metrics["test"]["per_cell"]["Cell1"]["auroc"] > 0.85


def _torchrun(tmp_path, common):
    threads = torch.get_num_threads()
    try:  # one process: this one (the same command, without a launcher)
        single = run_cli("train", *common, "--out", tmp_path / "one")
    finally:
        torch.set_num_threads(threads)
    assert single.exit_code == 0, single.output
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "chromaformer.cli.train",
            *map(str, common),
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    _two_nodes(tmp_path / "nodes", common, env)
    one = state(tmp_path / "one")
    for run in ("two", "nodes"):  # 2 processes on one host; 2 nodes of 1 process each
        other = state(tmp_path / run)
        for k in one:
            torch.testing.assert_close(one[k], other[k], atol=2e-5, rtol=1e-4)
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m2["world_size"] == 2
    assert json.loads((tmp_path / "nodes" / "metrics.json").read_text())["world_size"] == 2
    return m1, m2


def _two_nodes(out, common, env):
    """``torchrun --nnodes 2``: two launchers, as on two machines, meeting at a c10d
    rendezvous on 127.0.0.1 (gloo), one process each."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
    launch += ["--nproc_per_node", "1", "--rdzv_backend", "c10d"]
    launch += ["--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "chromaformer-test"]
    cmd = ["-m", "chromaformer.cli.train", *map(str, common), "--out", str(out)]
    nodes = [
        subprocess.Popen(
            [*launch, "--node_rank", str(rank), *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in (0, 1)
    ]
    for rank, node in enumerate(nodes):
        _, err = node.communicate(timeout=600)
        assert node.returncode == 0, f"node {rank}: {err[-3000:]}"


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one(sim_root, tmp_path):
    m1, m2 = _torchrun(
        tmp_path,
        [
            "--model",
            "bilstm_attention",
            "--data-root",
            sim_root,
            "--cell-types",
            "E1",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--seed",
            "2",
            "--quiet",
            "--threads",
            "1",
        ],
    )
    assert m1["test"]["mean_auroc"] == pytest.approx(m2["test"]["mean_auroc"], abs=1e-4)


@pytest.mark.slow
def test_torchrun_chromoformer_two_cpu_processes_match_one(cf_cells, tmp_path):
    """Chromoformer under DDP (a small one, given through --model-config)."""
    a = cf_cells / "A"
    m1, m2 = _torchrun(
        tmp_path,
        [
            "--model",
            "chromoformer",
            "--meta",
            a / "meta.csv",
            "--npy-dir",
            a / "npy",
            "--fold",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--quiet",
            "--threads",
            "1",
            "--model-config",
            json.dumps(SMALL_CF),
        ],
    )
    assert m1["test"]["mean_auroc"] == pytest.approx(m2["test"]["mean_auroc"], abs=1e-4)
    assert load_model(tmp_path / "two").config.d_emb == SMALL_CF["d_emb"]


def _small_root(tmp_path, genes=25):
    """~50 real genes (deepdiff Cell1) in the benchmark layout: small-data CV."""
    root = tmp_path / "small"
    for split in ("train", "valid", "test"):
        ds = cf.load_split(DEEPDIFF, ["Cell1"], split)
        n = genes if split != "test" else 10
        cf.write_bins(
            root / "C1" / "classification" / f"{split}.csv",
            ds.counts[:n],
            ds.labels[:n],
            ds.gene_ids[:n],
            bin_size=100,
        )
    return root


def test_cv_folds_out_of_fold_predictions_and_baselines(tmp_path):
    from chromaformer.training import cross_validate, format_cv

    root = _small_root(tmp_path)
    tc = TrainConfig(
        out=str(tmp_path / "cv"), data_root=str(root), cell_types=["C1"], quiet=True, min_steps=40
    )
    result = cross_validate(tc, "cnn", folds=5, seeds=2)
    assert result["folds"] == 5 and result["seeds"] == 2 and len(result["runs"]) == 10
    assert result["split"] == "stratified by label"
    for run_ in result["runs"]:
        assert set(run_["baselines"]) == {"linear", "gradient_boosting"}
        assert run_["genes"]["train"] + run_["genes"]["valid"] + run_["scored"] == 50
        # the run folder's metrics: the model and the baselines cv.json reports for it
        folder = tmp_path / "cv" / f"fold{run_['fold']}-seed{run_['seed']}"
        saved = json.loads((folder / "metrics.json").read_text())
        assert saved["baselines"] == run_["baselines"] and saved["test"] == run_["model"]
    oof = pd.read_csv(tmp_path / "cv" / "oof.tsv", sep="\t")
    # every train+valid gene scored once per seed, never a test gene
    assert len(oof) == 100 and oof.groupby("seed").gene_id.nunique().tolist() == [50, 50]
    test_ids = set(cf.load_split(root, ["C1"], "test").gene_ids)
    assert not test_ids & set(oof.gene_id)
    assert sorted(oof.fold.unique()) == [1, 2, 3, 4, 5]
    assert list(oof.columns) == [
        "gene_id",
        "fold",
        "seed",
        "observed",
        "model",
        "linear",
        "gradient_boosting",
    ]
    summary = result["summary"]
    assert summary["model"]["mean_auroc"]["n"] == 10
    assert summary["model"]["pooled_auroc"]["n"] == 2
    seeds_mean = oof.groupby("gene_id").agg(observed=("observed", "first"), p=("model", "mean"))
    assert summary["model"]["pooled_auroc_seeds_averaged"] == pytest.approx(
        roc_auc_score(seeds_mean.observed, seeds_mean.p)
    )
    assert json.loads((tmp_path / "cv" / "cv.json").read_text())["summary"] == json.loads(
        json.dumps(summary)
    )
    table = format_cv(result)
    assert "5-fold cross-validation" in table and "gradient boosting" in table
    assert "the seeds averaged" in table


def test_cv_by_chromosome_keeps_chromosomes_whole():
    from chromaformer.training.cv import assign_cv_folds

    chroms = np.array(["chr1"] * 30 + ["chr2"] * 20 + ["chr3"] * 20 + ["chr4"] * 10)
    folds, how = assign_cv_folds(np.zeros(80), 3, 0, "clf", chroms)
    assert how == "by chromosome"
    for c in np.unique(chroms):
        assert len(set(folds[chroms == c])) == 1
    assert sorted(np.bincount(folds)) == [20, 30, 30]


def test_cli_cv_and_seeds(tmp_path):
    root = _small_root(tmp_path)
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        root,
        "--cell-types",
        "C1",
        "--cv",
        "3",
        "--seeds",
        "2",
        "--min-steps",
        "20",
        "--out",
        tmp_path / "cv",
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert "3-fold cross-validation (stratified by label), 2 seed(s)" in res.output
    assert "logistic regression" in res.output and "gradient boosting" in res.output
    assert (tmp_path / "cv" / "fold3-seed2" / "best.pt").exists()
    # the gap to each baseline over every gene scored, with its interval and verdict
    assert "AUROC of the model minus each baseline's over every gene scored" in res.output
    report = json.loads((tmp_path / "cv" / "cv.json").read_text())
    for name, gap in report["gaps"].items():
        assert gap["low"] <= gap["gap"] <= gap["high"], name
        verdict = (
            "level with"
            if gap["low"] <= 0 <= gap["high"]
            else ("above" if gap["gap"] > 0 else "below")
        )
        assert f"  {verdict} {dict(report['baseline_names'])[name]} (" in res.output


def test_recipe_standardises_inputs_and_extends_short_runs(tmp_path):
    """The default recipe: per-mark log1p statistics of the training genes in the model's
    config; at least min_steps optimiser steps on small data; the attentivechrome recipe
    and --input-transform log1p give the earlier behaviour."""
    root = _small_root(tmp_path)
    tc = TrainConfig(
        out=str(tmp_path / "r"),
        data_root=str(root),
        cell_types=["C1"],
        quiet=True,
        min_steps=25,
        patience=0,
        few_genes_batch_size=64,
    )
    metrics = train(tc, "cnn")
    # 25 genes = 1 batch of 64 per pass: each of the 20 epochs makes 2 passes
    assert metrics["epochs_run"] == 20 and metrics["optimizer_steps"] == 40
    cfg = load_model(tmp_path / "r").config
    logs = np.log1p(cf.load_split(root, ["C1"], "train").counts.astype(np.float64))
    assert cfg.input_transform == "standardize"
    np.testing.assert_allclose(cfg.input_mean, logs.mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(cfg.input_std, logs.std(axis=(0, 1)), rtol=1e-6)
    ref = TrainConfig(out=str(tmp_path / "a"), recipe_name="attentivechrome").for_family("bins")
    assert (ref.lr, ref.batch_size, ref.epochs, ref.optimizer) == (2e-4, 16, 30, "adam")
    with pytest.raises(ValueError, match="unknown recipe 'chromoformer' for the bins family"):
        TrainConfig(out="x", recipe_name="chromoformer").for_family("bins")
    plain = train(
        TrainConfig(
            out=str(tmp_path / "p"),
            data_root=str(root),
            cell_types=["C1"],
            quiet=True,
            epochs=2,
        ),
        "cnn",
        options={"input_transform": "log1p"},
    )
    assert plain["epochs_run"] == 2  # epochs given: trained as given
    assert load_model(tmp_path / "p").config.input_mean == ()


def test_the_engine_trains_the_plan_on_fewer_genes_than_a_batch(tmp_path, capsys):
    """What plan_run gives for 25 training genes (tests/training/test_plan.py has the
    rules) is what the engine trains: the batch, the smaller hybrid, epochs of 10 full
    passes picked by the validation log loss, the lower rate, and the notes on stderr."""
    from chromaformer.training.plan import plan_run

    root = _small_root(tmp_path)
    kw = dict(data_root=str(root), cell_types=["C1"], patience=0)
    tc = TrainConfig(out=str(tmp_path / "few"), min_steps=400, few_genes_batch_size=64, **kw)
    plan = plan_run(25, tc.for_family("bins").recipe, "clf", "hybrid")
    few = train(tc, "hybrid", options=None)
    err = capsys.readouterr().err
    for note in plan.notes:
        assert note in err
    assert (few["batch_size"], few["epochs_run"]) == (plan.batch_size, plan.epochs) == (64, 40)
    assert few["optimizer_steps"] == plan.epochs * plan.steps_per_epoch == 400
    assert few["peak_lr"] == pytest.approx(plan.peak_lr) == pytest.approx(3e-4)
    last = torch.load(tmp_path / "few" / "last.pt", weights_only=True)
    assert last["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(3e-4)
    losses = [h["valid_log_loss"] for h in few["history"]]
    assert few["best_epoch"] == int(np.argmin(losses)) + 1
    best = torch.load(tmp_path / "few" / "best.pt", weights_only=True)
    assert best["epoch"] == few["best_epoch"]
    model = load_model(tmp_path / "few")
    assert model.config.bin_hidden == model.bins.lstms[0].hidden_size == 16
    # the recipe's own batches of 8: 4 steps per pass, 2 passes per epoch, random start
    tc8 = TrainConfig(out=str(tmp_path / "b8"), min_steps=160, init="none", **kw)
    eight = train(tc8, "bilstm_attention")
    assert (eight["batch_size"], eight["epochs_run"], eight["optimizer_steps"]) == (8, 20, 160)
    assert load_model(tmp_path / "b8").config.towers == 1  # the recipe's few-genes options
    assert eight["peak_lr"] == pytest.approx(3e-3)
    aurocs = [h["valid_mean_auroc"] for h in eight["history"]]
    assert eight["best_valid"]["mean_auroc"] == max(aurocs)


def test_bin_size_comes_from_the_record_or_an_option_never_a_guess(tmp_path):
    ds = cf.load_split(DEEPDIFF, ["Cell1"], "train")
    root = tmp_path / "wide"
    for split in ("train", "valid", "test"):
        cf.write_bins(
            root / "W" / "classification" / f"{split}.csv",
            ds.counts[:40, :21],
            ds.labels[:40],
            ds.gene_ids[:40],
        )
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        root,
        "--cell-types",
        "W",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert res.exit_code == 1
    assert "21 bins per gene and no layout record" in res.output
    assert "--bin-size" in res.output
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        root,
        "--cell-types",
        "W",
        "--epochs",
        "1",
        "--bin-size",
        "10000",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "run").config.bin_size == 10000
    # a layout record that disagrees with the option is an error naming the file
    cf.write_bins(
        root / "W" / "classification" / "train.csv",
        ds.counts[:40, :21],
        ds.labels[:40],
        ds.gene_ids[:40],
        bin_size=5000,
    )
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        root,
        "--cell-types",
        "W",
        "--epochs",
        "1",
        "--bin-size",
        "10000",
        "--out",
        tmp_path / "run2",
        "--quiet",
    )
    assert res.exit_code == 1 and "was prepared with 5000 bp bins" in res.output


def test_report_names_a_baseline_that_beats_the_model():
    from chromaformer.training import format_metrics

    cell = {"auroc": 0.7, "aupr": 0.7, "genes": 10}
    m = {
        "task": "clf",
        "test": {"per_cell": {"A": cell}, "mean_auroc": 0.7, "mean_aupr": 0.7, "pooled": cell},
        "baseline": {"per_cell": {"A": cell}, "mean_auroc": 0.7, "mean_aupr": 0.7},
        "baseline_name": "logistic regression",
        "baselines": {
            "linear": {"mean_auroc": 0.65},
            "gradient_boosting": {"mean_auroc": 0.8},
        },
        "baseline_names": {
            "linear": "logistic regression",
            "gradient_boosting": "gradient boosting",
        },
    }
    text = format_metrics(m)
    assert text.splitlines()[-1] == (
        "note: the gradient boosting baseline beats this model on mean_auroc (0.7000)"
    )


def test_seeds_on_the_runs_own_split_make_an_exportable_ensemble(tmp_path):
    from chromaformer.export import export_onnx

    root = _small_root(tmp_path)
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        root,
        "--cell-types",
        "C1",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--out",
        tmp_path / "s",
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert "the run's own split, 2 seed(s)" in res.output
    assert "ensemble of the seeds" in res.output
    ens = json.loads((tmp_path / "s" / "ensemble" / "metrics.json").read_text())
    assert ens["model"] == "ensemble of 2 cnn" and set(ens["baselines"]) == {
        "linear",
        "gradient_boosting",
    }
    report = export_onnx(tmp_path / "s" / "ensemble", tmp_path / "ens.onnx")
    card = json.loads(report.card.read_text())
    assert card["info"]["validation_metrics"]["mean_auroc"] == pytest.approx(
        ens["best_valid"]["mean_auroc"]
    )


def test_selection_ties_go_to_the_lower_log_loss():
    """On few validation genes AUROC ties often; the barely trained first epoch must not
    win every tie."""
    from chromaformer.metrics import evaluate, is_better

    labels = np.array([0, 0, 1, 1])
    groups = np.zeros(4, dtype=np.int16)
    vague = evaluate(labels, np.array([0.45, 0.48, 0.52, 0.55]), groups, ["A"])
    sure = evaluate(labels, np.array([0.05, 0.1, 0.9, 0.95]), groups, ["A"])
    worse = evaluate(labels, np.array([0.05, 0.95, 0.9, 0.1]), groups, ["A"])
    assert vague["mean_auroc"] == sure["mean_auroc"] == 1.0
    assert sure["log_loss"] < vague["log_loss"]
    assert is_better("clf", sure, vague) and not is_better("clf", vague, sure)
    assert not is_better("clf", worse, vague)  # AUROC still decides first
    assert is_better("clf", vague, worse)


def test_predictions_keep_the_order_of_confident_logits():
    """A model that has memorised few genes gives logits far beyond float32's sigmoid
    range; its probabilities must not collapse into ties (which lower AUROC)."""
    import torch

    from chromaformer.models.checkpoint import build_network
    from chromaformer.models.config import ModelConfig
    from chromaformer.training import predict

    torch.manual_seed(0)
    net = build_network(ModelConfig(arch="cnn", bins=20)).eval()
    with torch.no_grad():
        last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.mul_(1500.0)  # logits of tens to hundreds, on both sides of 0
        x = np.random.default_rng(0).poisson(3.0, (64, 20, 5)).astype(np.float32)
        last.bias.sub_(float(np.median(net(torch.from_numpy(x))["logit"].numpy())))
        logits = net(torch.from_numpy(x))["logit"].numpy()
    p = predict(net, [x])
    assert (torch.sigmoid(torch.from_numpy(logits)) == 1.0).sum() > 5  # float32 saturates
    assert p.dtype == np.float64
    below = (logits < 30) & (logits > -700)  # float64 keeps the rank of each of these
    assert below.sum() > 30 and np.abs(logits[below]).max() > 40
    assert np.array_equal(np.argsort(p[below]), np.argsort(logits[below]))
    assert len(np.unique(p[below])) == below.sum()


@pytest.mark.parametrize("valid", [dict(bins=20), dict(marks=["a", "b", "c", "d"])])
def test_a_valid_split_of_another_layout_names_both_files(tmp_path, valid):
    from chromaformer.errors import DataError
    from chromaformer.training import TrainConfig, train

    d = tmp_path / "R" / "E1" / "classification"
    cf.write_simulated(d / "train.csv", 30, seed=1)
    cf.write_simulated(d / "valid.csv", 10, seed=2, **valid)
    want = f"{d / 'valid.csv'}: {valid.get('bins', 100)} bins x {len(valid.get('marks', 'abcde'))} "
    with pytest.raises(DataError) as err:
        train(
            TrainConfig(
                out=str(tmp_path / "run"),
                data_root=str(tmp_path / "R"),
                cell_types=["E1"],
                epochs=1,
                quiet=True,
            ),
            "cnn",
        )
    assert str(err.value).startswith(want) and f"(as in {d / 'train.csv'})" in str(err.value)
    assert not (tmp_path / "run").exists()
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        tmp_path / "R",
        "--cell-types",
        "E1",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert res.exit_code == 1 and res.stderr.strip() == f"Error: {err.value}", res.output
    assert not (tmp_path / "run").exists()


def test_ema_keeps_the_validated_average_and_resumes_it(tmp_path):
    """--ema: validation judges the weights' moving average and best.pt keeps it (not
    the raw weights, which last.pt keeps with the average for --resume); the report's
    validation metric is best.pt's own; a resumed run continues the same average."""
    import torch

    from chromaformer.models.checkpoint import model_from_checkpoint, read_checkpoint
    from chromaformer.training.engine import predict

    root = _small_root(tmp_path, genes=120)
    common = dict(data_root=str(root), cell_types=["C1"], epochs=3, batch_size=16, quiet=True)
    common.update(plots=False, min_steps=0, patience=0, ema=0.9)
    m = train(TrainConfig(out=str(tmp_path / "e"), **common), "cnn")
    best, last = (
        read_checkpoint(tmp_path / "e" / "best.pt"),
        read_checkpoint(tmp_path / "e" / "last.pt"),
    )
    assert last["ema"] is not None and int(last["ema"]["n_averaged"]) == 3 * 8  # every step
    w = "conv.weight"
    avg = last["ema"][f"module.{w}"]
    if m["best_epoch"] == 3:
        assert torch.equal(best["state_dict"][w], avg)
    assert not torch.equal(avg, last["state_dict"][w])
    valid = cf.load_split(root, ["C1"], "valid")
    probs = predict(model_from_checkpoint(best), [torch.from_numpy(valid.counts)])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(valid.labels, probs) == pytest.approx(m["best_valid"]["mean_auroc"])
    # two epochs, then --resume for the third: the same average as three at once
    train(TrainConfig(out=str(tmp_path / "r"), stop_after=2, **common), "cnn")
    train(TrainConfig(out=str(tmp_path / "r"), resume=True, **common), "cnn")
    again = read_checkpoint(tmp_path / "r" / "last.pt")["ema"]
    torch.testing.assert_close(again[f"module.{w}"], avg)


def test_keep_last_keeps_the_schedules_end_and_validation_picks_nothing(tmp_path):
    """--keep last: best.pt is the last epoch's weights even where validation was worse
    (no early stop, whatever --patience says); the report says the validation figure is
    held out. --keep best on the same seed keeps its best epoch."""
    from chromaformer.models.checkpoint import read_checkpoint

    root = _small_root(tmp_path, genes=60)
    common = dict(data_root=str(root), cell_types=["C1"], epochs=6, batch_size=8, quiet=True)
    common.update(plots=False, min_steps=0, patience=1, lr=0.05)
    last = train(TrainConfig(out=str(tmp_path / "last"), keep="last", **common), "cnn")
    best = train(TrainConfig(out=str(tmp_path / "best"), **common), "cnn")
    assert last["epochs_run"] == 6 and last["best_epoch"] == 6
    kept, final = (read_checkpoint(tmp_path / "last" / f) for f in ("best.pt", "last.pt"))
    for k, v in final["state_dict"].items():
        assert torch.equal(kept["state_dict"][k], v), k
    history = json.loads((tmp_path / "last" / "metrics.json").read_text())
    assert history["best_valid"]["mean_auroc"] == pytest.approx(
        [r for r in history["history"] if r["epoch"] == 6][0]["valid_mean_auroc"]
    )
    # the same seed with --keep best: an epoch of its best validation AUROC
    aurocs = [r["valid_mean_auroc"] for r in best["history"]]
    assert aurocs[best["best_epoch"] - 1] == max(aurocs)
    assert "(--keep last): a held-out figure" not in " ".join(best.get("notes", []))
    # the model card says which: the last epoch, or the epoch the validation genes chose
    from chromaformer.export.onnx import _run_facts

    assert "last epoch (--keep last: the " in _run_facts(tmp_path / "last")["trained_on"]
    assert "best epoch chosen on " in _run_facts(tmp_path / "best")["trained_on"]
    with pytest.raises(ValueError, match="keep must be one of best, last"):
        TrainConfig(out="x", family="bins", keep="first")


def test_cv_keep_last_trains_on_every_gene_outside_the_fold(tmp_path):
    """--cv with --keep last: each fold's model sees every gene outside its fold, as the
    baselines do; with several seeds the report gives each seed's gap alone as well,
    equal to the gap computed from oof.tsv by hand."""
    from chromaformer.metrics import metric_gap
    from chromaformer.training import cross_validate, format_cv

    root = _small_root(tmp_path)
    tc = TrainConfig(
        out=str(tmp_path / "cv"),
        data_root=str(root),
        cell_types=["C1"],
        quiet=True,
        min_steps=40,
        keep="last",
    )
    result = cross_validate(tc, "cnn", folds=5, seeds=2)
    for run_ in result["runs"]:
        assert run_["genes"]["train"] + run_["scored"] == 50
        assert run_["best_epoch"] == run_["epochs_run"]
    oof = pd.read_csv(tmp_path / "cv" / "oof.tsv", sep="\t")
    for seed in (1, 2):
        rows = oof[oof.seed == seed]
        expect = metric_gap(
            "clf",
            rows.observed.to_numpy(),
            rows.model.to_numpy(),
            rows.gradient_boosting.to_numpy(),
        )
        got = result["gaps_per_seed"][str(seed)]["gradient_boosting"]
        assert got["gap"] == pytest.approx(expect["gap"])
        assert (got["low"], got["high"]) == pytest.approx((expect["low"], expect["high"]))
    table = format_cv(result)
    assert "seed 1 alone:" in table and "seed 2 alone:" in table


def test_bins_in_genomic_order_train_a_mirror_model_unless_told(tmp_path):
    """A layout record of bins in genomic order (strand unknown) makes the default model
    mirror-symmetric, said in a note; the option turns it off; no record, no mirror."""
    ds = cf.load_split(DEEPDIFF, ["Cell1"], "train")
    root = tmp_path / "g"

    def write(record):
        for split in ("train", "valid"):
            cf.write_bins(
                root / "G" / "classification" / f"{split}.csv",
                ds.counts[:60, :21],
                ds.labels[:60],
                ds.gene_ids[:60],
                bin_size=10000,
                record=record,
            )

    def train_cli(out, *extra):
        res = run_cli(
            "train", "--model", "cnn", "--data-root", root, "--cell-types", "G",
            "--epochs", "1", "--out", tmp_path / out, *extra,
        )  # fmt: skip
        return res, tmp_path / out

    write({"orientation": "genomic"})
    res, out = train_cli("m")
    assert res.exit_code == 0, res.output
    assert "the bins run in genomic order" in res.output and "mirror" in res.output
    model = load_model(out)
    assert model.config.mirror
    x = torch.from_numpy(ds.counts[:8, :21].astype(np.float32))
    torch.testing.assert_close(model(x)["logit"], model(x.flip(1))["logit"])
    res, out = train_cli("off", "--model-config", '{"mirror": false}', "--quiet")
    assert res.exit_code == 0, res.output
    assert not load_model(out).config.mirror
    write({"orientation": "transcript"})
    res, out = train_cli("t", "--quiet")
    assert res.exit_code == 0 and not load_model(out).config.mirror
    write({"orientation": "sideways"})
    res, _ = train_cli("bad", "--quiet")
    assert res.exit_code == 1
    assert "train.layout.json: orientation: expected one of transcript, genomic" in res.output
