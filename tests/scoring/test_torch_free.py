"""Scoring needs no torch: ``chromaformer-score`` and ``chromaformer.scoring`` run, for
both model families, in a process where importing torch fails (the base install)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from .._common import DEEPDIFF

# torch made uninstallable: any 'import torch' fails as where it is not installed
NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def _no_torch(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH + code, *map(str, args)], capture_output=True, text=True
    )


def test_the_blocker_blocks():
    res = _no_torch("import torch")
    assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr


CLI = "from chromaformer.cli import main; main(sys.argv[1:])"


def test_score_cli_without_torch_bin_models(exported, tmp_path):
    src = DEEPDIFF / "Cell1" / "classification" / "test.csv"
    model = exported["hybrid"][0].path
    res = _no_torch(CLI, "score", src, "--model", model, "-o", tmp_path / "b.tsv", "--quiet")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(tmp_path / "b.tsv", sep="\t")) == 200
    # without labels there are no metrics to compute: scikit-learn is not even imported
    quiet = "from chromaformer.cli import main\nmain(sys.argv[1:], standalone_mode=False)\n"
    res = _no_torch(
        quiet + "print(sorted(m for m in ('sklearn', 'torch') if m in sys.modules))",
        "score",
        src,
        "--model",
        model,
        "-o",
        tmp_path / "n.tsv",
        "--no-labels",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout
    # --no-metrics: the same TSV as the default, labels and all, but no AUROC and no import
    assert (
        "AUROC" in _no_torch(CLI, "score", src, "--model", model, "-o", tmp_path / "d.tsv").stdout
    )
    res = _no_torch(
        quiet + "print(sorted(m for m in ('sklearn', 'torch') if m in sys.modules))",
        *("score", src, "--model", model, "-o", tmp_path / "m.tsv", "--no-metrics"),
    )
    assert res.returncode == 0, res.stderr
    assert "AUROC" not in res.stdout and "200 genes" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout
    assert (tmp_path / "m.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert pd.read_csv(tmp_path / "m.tsv", sep="\t").columns[-1] == "label"
    res = _no_torch(CLI, "prepare", "--help")
    assert res.returncode == 0, res.stderr


def test_score_cli_without_torch_chromoformer(cf_runs, cf_cells, tmp_path):
    a = cf_cells / "A"
    args = ["--meta", a / "meta.csv", "--npy-dir", a / "npy", "-o", tmp_path / "c.tsv"]
    res = _no_torch(CLI, "score", "--model", cf_runs / "clf.onnx", *args, "--quiet")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(tmp_path / "c.tsv", sep="\t")) == 40


def test_scoring_library_without_torch(cf_runs, cf_cells, tmp_path):
    code = (
        "import chromaformer as cf\n"
        "from chromaformer.scoring import Scorer, score\n"
        "s = Scorer(sys.argv[1])\n"
        "r = score(s, ([sys.argv[2]], [sys.argv[3]]), sys.argv[4])\n"
        "print(s.info.family, r.genes, sorted(r.metrics))\n"
        "print('torch' in sys.modules)\n"
    )
    a = cf_cells / "A"
    res = _no_torch(code, cf_runs / "reg.onnx", a / "meta.csv", a / "npy", tmp_path / "r.tsv")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == [
        "chromoformer 40 ['genes', 'mse', 'pearson_r', 'r2', 'spearman']",
        "False",
    ]


def test_explain_and_perturb_without_torch_both_families(exported, cf_runs, cf_cells, tmp_path):
    src = DEEPDIFF / "Cell1" / "classification" / "test.csv"
    model = exported["hybrid"][0].path
    res = _no_torch(
        CLI, "explain", src, "-m", model, "-o", tmp_path / "b", "--window", "50", "--no-plots", "-q"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1].startswith("expressed genes (labels): ")
    a = cf_cells / "A"
    # 8 of the cell's genes: Chromoformer pays 128 Shapley + 140 occlusion passes a gene
    pd.read_csv(a / "meta.csv").head(8).to_csv(tmp_path / "meta8.csv", index=False)
    cf_args = ["--meta", tmp_path / "meta8.csv", "--npy-dir", a / "npy"]
    res = _no_torch(CLI, "explain", "-m", cf_runs / "clf.onnx", *cf_args, "-o", tmp_path / "c")
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(tmp_path / "c" / "importance.tsv", sep="\t")
    assert len(table) == 8
    shap = table[[c for c in table.columns if c.startswith("shapley_")]].to_numpy()
    assert shap.shape[1] == 7  # Chromoformer's seven marks, one Shapley value each
    assert abs(shap.sum(1) - (table.value - table.baseline)).max() < 1e-3
    assert (tmp_path / "c" / "mark_importance.png").exists()
    assert (tmp_path / "c" / "profiles.png").exists()  # occlusion of the promoter
    with np.load(tmp_path / "c" / "attributions.npz") as z:
        assert z["occlusion"].shape == (8, 20, 7) and int(z["map_bin_size"]) == 2000
    res = _no_torch(
        CLI,
        "perturb",
        "-m",
        cf_runs / "clf.onnx",
        *cf_args,
        "--set",
        "all=0",
        "-o",
        tmp_path / "p.tsv",
        "-q",
    )
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(tmp_path / "p.tsv", sep="\t")) == 8


def test_every_module_scoring_explain_and_the_formats_import_loads_without_torch():
    """Each module of ``formats``, ``scoring`` and ``explain``, and every module of the
    package their import loads (the walk of tests/test_imports.py), imports with torch
    uninstallable, and none pulls torch in."""
    from ..test_imports import _graph, _modules

    graph, _ = _graph(on_import=True)
    wings = ("chromaformer.formats", "chromaformer.scoring", "chromaformer.explain")
    todo = [m for m in _modules() if m.startswith(wings)]
    seen: set[str] = set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    assert {"chromaformer.formats.bincsv", "chromaformer.contract"} <= seen
    code = (
        "import importlib\n"
        "for m in sys.argv[1:]:\n"
        "    importlib.import_module(m)\n"
        "print('torch' in sys.modules, len(sys.argv) - 1)\n"
    )
    res = _no_torch(code, *sorted(seen))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", str(len(seen))]
