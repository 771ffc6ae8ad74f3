"""Helpers shared by the tests: where the real samples are, reference readings, small
writers, the CLI runner, and a small Chromoformer config (same code, fast to train and
export)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from click.testing import CliRunner

from chromaformer.data import PACKAGE_DATA

TOY = PACKAGE_DATA / "attentivechrome_toy" / "classification"
DEEPDIFF = PACKAGE_DATA / "deepdiff_sample"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
E003 = SHARED / "chromoformer_e003_sample"
ARCHS = ("bilstm_attention", "bilstm_transformer", "hybrid", "cnn")
#: A Chromoformer small enough to train and export in seconds; every code path is the
#: full model's (the reference-parity tests use the reference's own sizes).
SMALL_LAYER = dict(n_layers=1, n_heads=2, d_model=32, d_ff=32)
SMALL_CF = dict(
    d_emb=32, d_head=16, embed=SMALL_LAYER, pairwise=SMALL_LAYER, regulation=SMALL_LAYER
)


def run_cli(*args):
    """``chromaformer ARGS`` through click's runner (stdout and stderr kept apart)."""
    from chromaformer.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def pandas_reference(path: Path, bins: int = 100):
    """The straightforward pandas reading, reshaped: what read_bins must equal."""
    df = pd.read_csv(path, header=None, dtype={0: str})
    n_marks = df.shape[1] - 3
    counts = df.iloc[:, 2 : 2 + n_marks].to_numpy(np.float32).reshape(-1, bins, n_marks)
    labels = df.iloc[::bins, -1].to_numpy(np.uint8)
    ids = df.iloc[::bins, 0].to_numpy(str)
    return counts, labels, ids


def write_lines(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text(end.join(lines) + end)
    return path


def gene_rows(gene: str, label: int = 1, bins: int = 100, marks: int = 5, start: int = 0):
    """Valid rows of one gene: counts are (bin + mark) so values are checkable."""
    return [
        ",".join([gene, str(b + 1), *(str(b + m + start) for m in range(marks)), str(label)])
        for b in range(bins)
    ]


def random_checkpoint(folder, arch: str, seed: int = 3, **config):
    """A seeded random-weights checkpoint of ``arch`` with realistic metadata."""
    import torch

    from chromaformer.models import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch=arch, **config)).eval()
    path = folder / f"{arch}.pt"
    save_checkpoint(
        path, model, epoch=1, cell_types=["Cell1"], valid={"mean_auroc": 0.5, "mean_aupr": 0.5}
    )
    return path, model


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name``, filled by ``build(folder)`` once per test run: also when
    pytest-xdist spreads the tests over several workers (the README command does), the
    first worker to ask builds it under a file lock and the others wait and reuse it.
    A build that fails leaves no folder behind, so the next to ask tries again."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    folder, done = base / name, base / f"{name}.built"
    with FileLock(str(base / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                build(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            done.touch()
    return folder


ROOT = Path(__file__).resolve().parents[1]


def onnxruntime_headers() -> str:
    """The folder of onnxruntime's C headers: ONNXRUNTIME_INCLUDE_DIR (``.ci/run`` sets
    it), else what ``.ci/onnxruntime-headers`` finds or fetches; "" when neither can."""
    import subprocess

    given = os.environ.get("ONNXRUNTIME_INCLUDE_DIR", "")
    if given:
        return given
    res = subprocess.run(
        ["bash", str(ROOT / ".ci" / "onnxruntime-headers")], capture_output=True, text=True
    )
    return res.stdout.strip() if res.returncode == 0 else ""


def build_native(folder: Path) -> None:
    """Configure, build, ctest and install the C library and the native scorer (no Python
    extension) into ``folder/prefix``; the ctest log is kept in ``folder/ctest.log``."""
    import subprocess
    import sys

    headers = onnxruntime_headers()
    build, prefix = folder / "build", folder / "prefix"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-DCHROMAFORMER_PYTHON=OFF",
            f"-DCMAKE_INSTALL_PREFIX={prefix}",
            f"-DONNXRUNTIME_INCLUDE_DIR={headers}",
            f"-DPython_EXECUTABLE={sys.executable}",
        ],
        check=True,
        capture_output=True,
    )
    jobs = str(max(1, len(os.sched_getaffinity(0))))
    subprocess.run(["cmake", "--build", str(build), "-j", jobs], check=True, capture_output=True)
    ctest = subprocess.run(
        ["ctest", "--output-on-failure"], cwd=build, capture_output=True, text=True
    )
    (folder / "ctest.log").write_text(f"rc={ctest.returncode}\n{ctest.stdout}{ctest.stderr}")
    subprocess.run(["cmake", "--install", str(build)], check=True, capture_output=True)


class Native:
    """The installed C library and command of :func:`build_native`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.prefix = folder / "prefix"
        self.lib = self.prefix / "lib"
        self.scorer = self.prefix / "bin" / "chromaformer-score-native"
        self.ctest_log = (folder / "ctest.log").read_text()

    def require_scorer(self) -> Path:
        """The command, or a skip (a failure when CI is set) where onnxruntime's headers
        could not be had."""
        import pytest

        if not self.scorer.exists():
            if os.environ.get("CI"):
                pytest.fail("chromaformer-score-native was not built: no onnxruntime headers")
            pytest.skip("no onnxruntime headers: chromaformer-score-native not built")
        return self.scorer
