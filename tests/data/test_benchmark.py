"""The benchmark layout: one or several cell types in one set that keeps the cell type."""

from __future__ import annotations

import numpy as np
import pytest

import chromaformer as cf
from chromaformer.data.benchmark import PACKAGE_DATA

from .._common import DEEPDIFF


def test_list_cell_types():
    assert cf.list_cell_types(DEEPDIFF) == ["Cell1", "Cell2"]
    assert cf.list_cell_types(PACKAGE_DATA) == ["attentivechrome_toy"]


def test_one_cell_type_is_not_copied():
    ds = cf.load_split(DEEPDIFF, ["Cell1"], "train")
    direct = cf.read_bins(DEEPDIFF / "Cell1" / "classification" / "train.csv")
    np.testing.assert_array_equal(ds.counts, direct.counts)
    assert len(ds) == 200 and set(ds.cell.tolist()) == {0}


def test_several_cell_types_keep_their_cell():
    sets = cf.load_benchmark(DEEPDIFF, ["Cell1", "Cell2"])
    assert set(sets) == {"train", "valid", "test"}
    train = sets["train"]
    assert len(train) == 400 and train.cell_types == ("Cell1", "Cell2")
    c2 = cf.read_bins(DEEPDIFF / "Cell2" / "classification" / "train.csv")
    np.testing.assert_array_equal(train.counts[train.of_cell("Cell2")], c2.counts)
    np.testing.assert_array_equal(train.labels[train.of_cell("Cell2")], c2.labels)
    # the same genes in both cells, with their own labels
    np.testing.assert_array_equal(train.gene_ids[:200], train.gene_ids[200:])
    assert train.counts.flags["C_CONTIGUOUS"] and train.marks == cf.BENCHMARK_MARKS


def test_unknown_cell_type_lists_what_exists():
    with pytest.raises(cf.DataError, match=r"unknown cell type 'E003'.*available: Cell1, Cell2"):
        cf.load_split(DEEPDIFF, ["Cell1", "E003"], "train")


def test_missing_split_and_mismatched_cells(tmp_path):
    for ct in ("E1", "E2"):
        (tmp_path / ct / "classification").mkdir(parents=True)
    cf.write_simulated(tmp_path / "E1" / "classification" / "train.csv", 20, seed=1)
    cf.write_simulated(tmp_path / "E2" / "classification" / "train.csv.gz", 20, seed=2, bins=50)
    with pytest.raises(cf.DataError, match=r"valid.csv: missing split file for cell type 'E1'"):
        cf.load_split(tmp_path, ["E1"], "valid")
    assert len(cf.load_split(tmp_path, ["E2"], "train")) == 20  # .csv.gz is found
    with pytest.raises(cf.DataError, match="50 bins x 5 marks, but E1 has 100 x 5"):
        cf.load_split(tmp_path, ["E1", "E2"], "train")
    with pytest.raises(cf.DataError, match="unknown split"):
        cf.load_split(tmp_path, ["E1"], "training")
