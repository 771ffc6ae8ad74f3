"""Shared fixtures: the real samples shipped in the package and simulated genomes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import chromaformer as cf
from chromaformer.datasets import PACKAGE_DATA

TOY = PACKAGE_DATA / "attentivechrome_toy" / "classification"
DEEPDIFF = PACKAGE_DATA / "deepdiff_sample"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pandas_reference(path: Path, bins: int = 100):
    """The straightforward pandas reading, reshaped: what read_bins must equal."""
    df = pd.read_csv(path, header=None, dtype={0: str})
    n_marks = df.shape[1] - 3
    counts = df.iloc[:, 2 : 2 + n_marks].to_numpy(np.float32).reshape(-1, bins, n_marks)
    labels = df.iloc[::bins, -1].to_numpy(np.uint8)
    ids = df.iloc[::bins, 0].to_numpy(str)
    return counts, labels, ids


@pytest.fixture(scope="session")
def real_files() -> list[Path]:
    files = sorted(TOY.glob("*.csv")) + sorted(DEEPDIFF.glob("Cell*/classification/*.csv"))
    assert len(files) == 9
    return files


@pytest.fixture(scope="session")
def sim_genome(tmp_path_factory) -> tuple[Path, cf.Bins]:
    """3,000 simulated genes (~9 MB: several parser chunks)."""
    path = tmp_path_factory.mktemp("sim") / "genome.csv"
    sim = cf.write_simulated(path, 3000, seed=7)
    return path, sim


def write_lines(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text(end.join(lines) + end)
    return path


def gene_rows(gene: str, label: int = 1, bins: int = 100, marks: int = 5, start: int = 0):
    """Valid rows of one gene: counts are (bin + mark) so values are checkable."""
    return [
        ",".join([gene, str(b + 1), *(str(b + m + start) for m in range(marks)), str(label)])
        for b in range(bins)
    ]


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory) -> Path:
    """A benchmark-layout data root of two simulated cell types (E1, E2)."""
    root = tmp_path_factory.mktemp("simroot")
    for c, ct in enumerate(("E1", "E2")):
        for s, (split, genes) in enumerate((("train", 600), ("valid", 200), ("test", 200))):
            cf.write_simulated(root / ct / "classification" / f"{split}.csv", genes,
                               seed=100 * c + s + 1, noise=0.5)
    return root


ARCHS = ("bilstm_attention", "bilstm_transformer", "hybrid", "cnn")


def _random_checkpoint(folder, arch: str, seed: int = 3):
    import torch

    from chromaformer.models import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch=arch)).eval()
    path = folder / f"{arch}.pt"
    save_checkpoint(path, model, epoch=1, cell_types=["Cell1"],
                    valid={"mean_auroc": 0.5, "mean_aupr": 0.5})
    return path, model


def _trained_run(folder, arch: str):
    """A short real training on the bundled cells: realistic weights and metadata."""
    from chromaformer.models import ModelConfig, load_model
    from chromaformer.training import TrainConfig, train

    run = folder / f"{arch}-run"
    train(TrainConfig(data_root=str(DEEPDIFF), cell_types=["Cell1", "Cell2"], out=str(run),
                      epochs=3, batch_size=32, lr=2e-3, quiet=True, seed=2),
          ModelConfig(arch=arch, dropout=0.2))
    return run, load_model(run)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Each architecture exported once per test session (20-50 s each here); the hybrid
    from a short real training, the others with random weights."""
    from chromaformer.models import read_checkpoint
    from chromaformer.onnx_export import export_onnx

    folder = tmp_path_factory.mktemp("export")
    out = {}
    for arch in ARCHS:
        src, model = (_trained_run(folder, arch) if arch == "hybrid"
                      else _random_checkpoint(folder, arch))
        report = export_onnx(src, folder / f"{arch}.onnx")
        out[arch] = (report, model, read_checkpoint(src))
    return out


@pytest.fixture(scope="session")
def real_counts():
    """All 1,200 real genes of the two bundled cells."""
    from chromaformer.datasets import load_split

    parts = [load_split(DEEPDIFF, ["Cell1", "Cell2"], s) for s in ("train", "valid", "test")]
    return np.concatenate([p.counts for p in parts])


