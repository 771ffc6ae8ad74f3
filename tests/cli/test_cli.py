"""The click commands, driven through CliRunner and as installed console scripts."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

import chromaformer as cf
from chromaformer.cli import main

from .._common import TOY, gene_rows, write_lines


def test_simulate_then_inspect(tmp_path):
    runner = CliRunner()
    out = tmp_path / "g.csv.gz"
    res = runner.invoke(main, ["simulate", "-o", str(out), "--genes", "120", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert "120 genes x 100 bins x 5 marks" in res.output
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    np_sim = cf.simulate_genome(120, seed=4)
    assert (cf.read_bins(out).counts == np_sim.counts).all()

    res = runner.invoke(main, ["inspect", str(out), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["genes"] == 120 and info["bins"] == 100 and info["expressed"] == 60
    assert set(info["per_mark"]) == set(cf.BENCHMARK_MARKS)


def test_inspect_real_file_text():
    res = CliRunner().invoke(main, ["inspect", str(TOY / "train.csv")])
    assert res.exit_code == 0
    assert "10 genes x 100 bins x 5 marks" in res.output
    assert "5 expressed (1), 5 silent (0)" in res.output
    assert "H3K4me3" in res.output


def test_inspect_bad_file_one_line_error(tmp_path):
    rows = gene_rows("A") + gene_rows("B")
    rows[150] = "B,51,NA,1,1,1,1,1"
    bad = write_lines(tmp_path / "bad.csv", rows)
    res = CliRunner().invoke(main, ["inspect", str(TOY / "train.csv"), str(bad)])
    assert res.exit_code == 1
    err_lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert err_lines == [
        f"Error: {bad}:151:6: field 3 (H3K27me3): expected a non-negative number, got 'NA'"
    ]
    assert "10 genes" in res.stdout  # the good file is still reported


def test_simulate_rejects_bad_options(tmp_path):
    res = CliRunner().invoke(main, ["simulate", "-o", str(tmp_path / "x.csv"), "--genes", "0"])
    assert res.exit_code == 2 and "--genes" in res.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "demo",
            "--data",
            "simulated",
            "--out",
            str(tmp_path),
            "--genes",
            "300",
            "--train-genes",
            "100",
            "--model",
            "cnn",
            "--epochs",
            "1",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "parsed" in res.output and "MB/s" in res.output
    assert cf.read_bins(tmp_path / "genome.csv").n_genes == 300
    assert "[3/5] trained cnn" in res.output and "test AUROC" in res.output
    assert "gradient boosting: 0." in res.output  # both baselines, on the simulated demo too
    assert re.search(r"the model is (level with|above|below) logistic regression", res.output)
    assert cf.read_bins(tmp_path / "data/SIM/classification/train.csv").n_genes == 100
    assert cf.read_bins(tmp_path / "data/SIM/classification/test.csv").n_genes == 25
    assert (tmp_path / "runs" / "cnn" / "best.pt").exists()
    assert "[4/5] exported" in res.output and (tmp_path / "cnn.onnx").exists()
    assert "[5/5] scored 300 genes" in res.output and "150 genes never used" in res.output
    import pandas as pd

    scores = pd.read_csv(tmp_path / "genome.scores.tsv", sep="\t")
    assert len(scores) == 300 and scores.probability.between(0, 1).all()


@pytest.mark.slow
def test_demo_real_data_is_the_default(tmp_path):
    """`chromaformer demo` as the README runs it: the bundled GM12878 tracks -> prepare ->
    train (the default recipe) -> export -> score, beside both baselines."""
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("[1/4] prepared the bundled GM12878 (E116) tracks: 11,689 train")
    assert "[2/4] trained cnn on 11,689 genes" in res.output
    assert "logistic regression" in res.output and "gradient boosting" in res.output
    assert (tmp_path / "e116-cnn.onnx").exists() and (tmp_path / "e116-cnn.model.json").exists()
    import pandas as pd

    # the edge over each baseline with its noise: "level with" where the interval holds 0
    verdict = re.search(
        r"the model is (level with|above|below) logistic regression \(([+-]0\.\d+); 95% "
        r"bootstrap interval ([+-]0\.\d+) to ([+-]0\.\d+)\); (level with|above|below) "
        r"gradient boosting",
        res.output,
    )
    assert verdict, res.output
    gap, low, high = map(float, verdict.group(2, 3, 4))
    assert low <= gap <= high
    assert (verdict.group(1) == "level with") == (low <= 0 <= high)
    auroc = float(re.search(r"validation AUROC (0\.\d+)", res.output).group(1))
    base = float(re.search(r"logistic regression (0\.\d+)", res.output).group(1))
    assert auroc >= base, res.output  # the default recipe beats the linear model here
    scores = pd.read_csv(tmp_path / "e116-valid.scores.tsv", sep="\t")
    assert len(scores) == 2506 and scores.probability.between(0, 1).all()
    card = json.loads((tmp_path / "e116-cnn.model.json").read_text())
    assert set(card["info"]["baselines"]) == {"logistic regression", "gradient boosting"}
    assert card["schema"]["inputs"]["counts"]["bin_size"] == 10000


@pytest.mark.slow
def test_demo_options_of_the_simulated_demo_are_errors_on_real_data(tmp_path):
    for args, named in (
        (["--genes", "300", "--no-train"], "--genes, --no-train"),
        (["--model", "chromoformer"], "not chromoformer (use --data simulated)"),
    ):
        res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d"), *args])
        assert res.exit_code == 1 and named in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_demo_real_data_takes_epochs(tmp_path):
    """--epochs shortens the real-data demo, as --help says."""
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--epochs", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "best epoch 1 of 1" in res.output


@pytest.mark.slow
def test_demo_no_train_only_parses(tmp_path):
    res = CliRunner().invoke(
        main, ["demo", "--data", "simulated", "--out", str(tmp_path), "--genes", "50", "--no-train"]
    )
    assert res.exit_code == 0, res.output
    assert "[2/2] parsed" in res.output and not (tmp_path / "runs").exists()


def test_console_scripts_and_no_torch_import(tmp_path):
    out = tmp_path / "s.csv"
    subprocess.run(["chromaformer-simulate", "-o", str(out), "--genes", "20", "-q"], check=True)
    probe = (
        f"import sys, runpy; sys.argv=['chromaformer','inspect',{str(out)!r}]\n"
        "try:\n    runpy.run_module('chromaformer.cli.__main__', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'inspect imported torch'\n"
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "20 genes" in res.stdout
    res = subprocess.run(
        ["chromaformer", "inspect", str(tmp_path / "none.csv")], capture_output=True, text=True
    )
    assert res.returncode == 1 and "cannot open file" in res.stderr
