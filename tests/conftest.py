"""Session fixtures: the expensive artefacts (trained tiny models, exports) are built once
per test session and shared by every test that needs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import chromaformer as cf

from ._common import ARCHS, DEEPDIFF, SMALL_CF, TOY, built_once, random_checkpoint

# Under pytest-xdist the workers share the cores: each one's torch (and OpenMP) threads,
# set before anything imports torch and inherited by the commands tests run, are its share.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))

#: Markers that follow from the fixtures a test takes (the rest are set in the tests, by
#: ``@pytest.mark.X`` or a module's ``pytestmark``): the session fixtures that cost tens
#: of seconds make a test slow; the E003 sample in ../shared makes it a reference test.
FIXTURE_MARKS = {
    "slow": {"exported", "cf_runs", "cf_cells", "sim_root", "sim_model", "native"},
    "reference": {"e003", "e003_tracks"},
}


def pytest_collection_modifyitems(items):
    """Marks by fixture, for a quick subset (``-m "not slow"``) and the others."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for mark, fixtures in FIXTURE_MARKS.items():
            if names & fixtures:
                item.add_marker(getattr(pytest.mark, mark))


@pytest.fixture(scope="session", autouse=True)
def _build_ahead(request):
    """Under pytest-xdist each worker first builds its share of the costliest artefacts
    that the collected tests need, all at once, so that no test waits for another
    worker's build later; a run that needs none of them builds nothing."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if _WORKERS < 2 or not worker.startswith("gw"):
        return
    needed = {n for item in request.session.items for n in getattr(item, "fixturenames", ())}
    ahead = [name for name in ("exported", "cf_runs", "native") if name in needed]
    for name in ahead[int(worker[2:]) :: _WORKERS]:
        request.getfixturevalue(name)


@pytest.fixture
def many_cores(monkeypatch):
    """An 8-core machine, as far as thread counts go: a test of how a budget of 3 or 4
    threads is shared out runs as it would there (counts are cut to the cores)."""
    import chromaformer._util.system

    monkeypatch.setattr(chromaformer._util.system, "cores", lambda: 8)


@pytest.fixture(scope="session")
def real_files():
    files = sorted(TOY.glob("*.csv")) + sorted(DEEPDIFF.glob("Cell*/classification/*.csv"))
    assert len(files) == 9
    return files


@pytest.fixture(scope="session")
def sim_genome(tmp_path_factory):
    """3,000 simulated genes (~9 MB: several parser chunks)."""
    path = tmp_path_factory.mktemp("sim") / "genome.csv"
    sim = cf.write_simulated(path, 3000, seed=7)
    return path, sim


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory):
    """A benchmark-layout data root of two simulated cell types (E1, E2)."""
    root = tmp_path_factory.mktemp("simroot")
    for c, ct in enumerate(("E1", "E2")):
        for s, (split, genes) in enumerate((("train", 600), ("valid", 200), ("test", 200))):
            cf.write_simulated(
                root / ct / "classification" / f"{split}.csv",
                genes,
                seed=100 * c + s + 1,
                noise=0.5,
            )
    return root


def _trained_run(folder, arch: str):
    """A short real training on the bundled cells: realistic weights and metadata."""
    from chromaformer.models import load_model
    from chromaformer.training import TrainConfig, train

    run = folder / f"{arch}-run"
    train(
        TrainConfig(
            out=str(run),
            data_root=str(DEEPDIFF),
            cell_types=["Cell1", "Cell2"],
            epochs=3,
            batch_size=32,
            lr=2e-3,
            quiet=True,
            seed=2,
            plots=False,
        ),
        arch,
        options={"dropout": 0.2},
    )
    return run, load_model(run)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Each architecture exported once per test run, all over 100 bins: the hybrid
    from a short real training, the others with random weights. Maps each to (export
    report, the PyTorch model, its checkpoint)."""
    from chromaformer.export import ExportReport
    from chromaformer.models import model_from_checkpoint, read_checkpoint

    def build(folder):
        from chromaformer.export import export_onnx

        for arch in ARCHS:
            src = (
                _trained_run(folder, arch)[0]
                if arch == "hybrid"
                else random_checkpoint(folder, arch)[0]
            )
            report = export_onnx(src, folder / f"{arch}.onnx")
            fields = dict(vars(report), path=str(report.path), card=str(report.card), src=str(src))
            (folder / f"{arch}.report.json").write_text(json.dumps(fields, default=float))

    folder = built_once(tmp_path_factory, "export", build)
    out = {}
    for arch in ARCHS:
        fields = json.loads((folder / f"{arch}.report.json").read_text())
        ckpt = read_checkpoint(fields.pop("src"))
        fields.update(path=Path(fields["path"]), card=Path(fields["card"]))
        out[arch] = (ExportReport(**fields), model_from_checkpoint(ckpt), ckpt)
    return out


@pytest.fixture(scope="session")
def native(tmp_path_factory):
    """libchromaformer and chromaformer-score-native, configured, built and tested by
    CMake once per test run and installed (``cmake --install``) into a prefix of their
    own: the tests use the installed files, not the build tree."""
    from ._common import Native, build_native

    return Native(built_once(tmp_path_factory, "native", build_native))


@pytest.fixture(scope="session")
def real_counts():
    """All 1,200 real genes of the two bundled cells."""
    parts = [cf.load_split(DEEPDIFF, ["Cell1", "Cell2"], s) for s in ("train", "valid", "test")]
    return np.concatenate([p.counts for p in parts])


@pytest.fixture(scope="session")
def cf_cells(tmp_path_factory):
    """Two simulated cells (A, B) of one Chromoformer layout, 40 genes each."""

    def build(d):
        for name, seed in (("A", 1), ("B", 2)):
            cf.simulate_chromoformer(str(d / name), 40, seed=seed, layout_seed=5)

    return built_once(tmp_path_factory, "cf_cells", build)


@pytest.fixture(scope="session")
def cf_runs(cf_cells, tmp_path_factory):
    """Small Chromoformers: clf and diff trained 1 epoch through the engine, reg from
    seeded random weights; each exported once."""
    return built_once(tmp_path_factory, "cf_runs", lambda d: _cf_runs(cf_cells, d))


def _cf_runs(cf_cells, d):
    import torch

    from chromaformer.export import export_onnx
    from chromaformer.models import Chromoformer, ChromoformerConfig, save_checkpoint
    from chromaformer.training import TrainConfig, train

    a, b = cf_cells / "A", cf_cells / "B"
    train(
        TrainConfig(
            out=str(d / "clf"),
            meta=[str(a / "meta.csv")],
            npy_dir=[str(a / "npy")],
            fold=2,
            epochs=1,
            quiet=True,
            cache_dir=str(d / "cache"),
        ),
        ChromoformerConfig(task="clf", **SMALL_CF),
    )
    train(
        TrainConfig(
            out=str(d / "diff"),
            meta=[str(a / "meta.csv"), str(b / "meta.csv")],
            npy_dir=[str(a / "npy"), str(b / "npy")],
            epochs=1,
            quiet=True,
        ),
        ChromoformerConfig(task="diff", **SMALL_CF),
    )
    torch.manual_seed(4)
    (d / "reg").mkdir()
    save_checkpoint(d / "reg" / "best.pt", Chromoformer(ChromoformerConfig(task="reg", **SMALL_CF)))
    for task in ("clf", "reg", "diff"):
        export_onnx(d / task, d / f"{task}.onnx")
