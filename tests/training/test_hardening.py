"""Training's refusals of the hardening issue: a run folder has one writer at a time, a
resume needs a whole last.pt and the run's own model, labels of one class are refused
before any epoch, and evaluation genes that are training genes are warned about."""

from __future__ import annotations

import shutil
import subprocess
import sys

import chromaformer as cf
from chromaformer._util.atomic import folder_lock

from .._common import run_cli


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "chromaformer.cli", "train", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_second_training_into_a_locked_run_folder_is_refused(sim_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with folder_lock(out, "training"):  # a first run, in this process
        res = _cli("--model", "cnn", "--data-root", sim_root, "--cell-types", "E1", "--out", out)
    assert res.returncode == 1, res.stderr
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "is writing into this folder now" in err, err
    assert "training (pid" in err
    assert not list(out.iterdir())  # the refused run wrote nothing; the lock went with its run


def test_resume_refuses_a_truncated_last_pt_and_another_model(sim_root, tmp_path):
    out = tmp_path / "run"
    base = ["--data-root", sim_root, "--cell-types", "E1", "--out", out, "--epochs", "2"]
    res = run_cli("train", "--model", "cnn", *base, "--stop-after", "1", "--quiet")
    assert res.exit_code == 0, res.output + res.stderr
    res = run_cli("train", "--model", "hybrid", *base, "--resume", "--quiet")
    assert res.exit_code == 1
    assert "is a cnn run, not hybrid; leave --model out" in res.stderr
    res = run_cli("train", *base, "--resume", "--quiet")  # --model left out: the run's
    assert res.exit_code == 0, res.stderr
    last = out / "last.pt"
    last.write_bytes(last.read_bytes()[:2000])
    res = run_cli("train", "--model", "cnn", *base, "--resume", "--quiet")
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().startswith(f"Error: {last}: not a readable checkpoint"), res.stderr


def test_labels_of_one_class_are_refused_before_any_epoch(tmp_path):
    root = tmp_path / "root"
    for split, seed in (("train", 1), ("valid", 2), ("test", 3)):
        path = root / "E1" / "classification" / f"{split}.csv"
        cf.write_simulated(path, 100, seed=seed)
    train = root / "E1" / "classification" / "train.csv"
    lines = train.read_text().splitlines()
    train.write_text("\n".join(ln[:-1] + "0" for ln in lines) + "\n")
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        root,
        "--cell-types",
        "E1",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert res.exit_code == 1, res.output
    assert "every one of the 100 training genes has label 0" in res.stderr
    assert not (tmp_path / "run").exists()


def test_evaluation_genes_that_are_training_genes_are_warned_about(tmp_path):
    root = tmp_path / "root"
    first = root / "E1" / "classification" / "train.csv"
    cf.write_simulated(first, 120, seed=1)
    for split in ("valid", "test"):
        shutil.copy(first, first.with_name(f"{split}.csv"))
    res = run_cli(
        "train",
        "--model",
        "cnn",
        "--data-root",
        root,
        "--cell-types",
        "E1",
        "--out",
        tmp_path / "run",
        "--epochs",
        "1",
        "--quiet",
    )
    assert res.exit_code == 0, res.stderr
    assert "warning: 120 of the 120 valid genes are also training genes" in res.output + res.stderr
