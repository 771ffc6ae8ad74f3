"""The Snakemake workflow (workflow/Snakefile) on 3 simulated samples (bigWigs written
with pyBigWig) with --cores 2: a damaged sample fails alone with its one-line error while
the others finish; once mended, a re-run does only what is missing; and every output
equals what the commands give when run by hand. Required in CI (snakemake is in the
``workflow`` extra)."""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chromaformer.simulate import simulate_samples

from .._common import run_cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflow"
MARKS = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")


def _ready() -> bool:
    ready = importlib.util.find_spec("snakemake") is not None and shutil.which(
        "chromaformer-prepare"
    )
    if not ready and os.environ.get("CI"):
        raise AssertionError("CI must install the workflow extra (pip install -e '.[workflow]')")
    return bool(ready)


pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(not _ready(), reason="snakemake is not installed (the workflow extra)"),
]


def _snakemake(folder: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(WORKFLOW / "Snakefile")]
    cmd += ["--directory", str(folder), "--configfile", str(folder / "config.yaml")]
    return subprocess.run(
        cmd + ["--cores", "2"], capture_output=True, text=True, timeout=600, cwd=folder
    )


def test_workflow_runs_resumes_and_equals_the_commands_by_hand(tmp_path):
    wf = tmp_path / "wf"
    simulate_samples(wf, samples=3, genes=40, seed=2)
    config = (WORKFLOW / "config.example.yaml").read_text()
    (wf / "config.yaml").write_text(config)
    good = (wf / "sample2" / "H3K4me3.bw").read_bytes()
    (wf / "sample2" / "H3K4me3.bw").write_bytes(good[:300])  # a download cut short

    res = _snakemake(wf)
    assert res.returncode != 0
    out = wf / "results"
    # the damaged sample failed alone, with its one-line error shown
    assert "Error: sample2/H3K4me3.bw: not a readable bigWig file" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    for s in ("sample1", "sample3"):
        assert (out / s / "scores.tsv").exists() and (out / s / "scores.bedGraph").exists()
    assert not (out / "sample2").exists() or not list((out / "sample2").iterdir())
    assert not (out / "summary.tsv").exists()

    (wf / "sample2" / "H3K4me3.bw").write_bytes(good)
    done = {s: (out / s / "scores.tsv").stat().st_mtime_ns for s in ("sample1", "sample3")}
    res = _snakemake(wf)
    assert res.returncode == 0, res.stderr[-3000:]
    ran = re.findall(r"rule (\w+):", res.stderr)
    assert sorted(ran) == ["all", "prepare", "score", "summary"], ran  # only what was missing
    assert done == {s: (out / s / "scores.tsv").stat().st_mtime_ns for s in done}

    # by hand, the same commands (same file names, so the tracks' names agree)
    hand = tmp_path / "hand"
    pairs = []
    for s in ("sample1", "sample2", "sample3"):
        d = hand / s
        d.mkdir(parents=True)
        marks = [a for m in MARKS for a in ("--mark", f"{m}={wf / s / f'{m}.bw'}")]
        args = ["--genes", wf / "genes.bed", "--model", "e116"]
        args += ["--expression", wf / s / "expression.tsv", "--stat", "mean"]
        r = run_cli("prepare", *marks, *args, "-o", d / "bins.csv.gz", "--jobs", "1", "-q")
        assert r.exit_code == 0, r.output
        r = run_cli(
            "score",
            d / "bins.csv.gz",
            "--model",
            "e116",
            "-o",
            d / "scores.tsv",
            "--track",
            "bedGraph",
            "--no-metrics",
            "--quiet",
        )
        assert r.exit_code == 0, r.output
        for name in ("scores.tsv", "scores.bedGraph", "bins.tss.bed"):
            assert (d / name).read_bytes() == (out / s / name).read_bytes(), (s, name)
        with gzip.open(d / "bins.csv.gz") as a, gzip.open(out / s / "bins.csv.gz") as b:
            assert a.read() == b.read(), s
        pairs.append(f"{s}={d / 'scores.tsv'}")
    r = run_cli("summarize", *pairs, "-o", hand / "summary.tsv")
    assert r.exit_code == 0, r.output
    for name in ("summary.tsv", "summary.metrics.tsv"):
        assert (hand / name).read_bytes() == (out / name).read_bytes(), name
    table = (out / "summary.tsv").read_text().splitlines()
    assert table[0] == "gene_id\tsample1\tsample2\tsample3" and len(table) == 41
    metrics = [line.split("\t") for line in (out / "summary.metrics.tsv").read_text().splitlines()]
    assert metrics[0] == ["sample", "genes", "auroc", "aupr"]
    assert all(float(row[2]) > 0.8 for row in metrics[1:]), metrics  # e116 reads them
