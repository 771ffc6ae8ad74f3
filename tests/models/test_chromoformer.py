"""Chromoformer: binning of the real E003 sample against numpy and the reference dataset,
masks, strand reversal, weight parity with the reference package (chromoformer==1.1.3,
test-only), the three tasks' shapes. The GPL sample is read from ../shared only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from chromaformer.data.chromoformer import load_chromoformer, read_meta
from chromaformer.errors import DataError, FormatError
from chromaformer.models.chromoformer import (
    Chromoformer,
    ChromoformerConfig,
    load_reference_state,
    region_valid,
)

from .._common import SHARED, write_lines

E003 = SHARED / "chromoformer_e003_sample"
needs_e003 = pytest.mark.skipif(
    not (E003 / "meta.csv").exists(), reason="../shared/data/chromoformer_e003_sample is absent"
)


@pytest.fixture(scope="module")
def e003():
    if not (E003 / "meta.csv").exists():
        pytest.skip("../shared/data/chromoformer_e003_sample is absent")
    return pd.read_csv(E003 / "meta.csv"), load_chromoformer(
        str(E003 / "meta.csv"), str(E003 / "npy")
    )


def _log_mean_bins(arr: np.ndarray, size: int) -> np.ndarray:
    n = -(-arr.shape[1] // size)
    return np.stack(
        [
            np.log(arr[:, i * size : (i + 1) * size].astype(np.float64).mean(1) + 1)
            for i in range(n)
        ],
        axis=1,
    )


def test_binning_equals_numpy_with_strand_and_centring(e003):
    meta, data = e003
    assert len(data) == 30 and data.promoters[100].shape == (30, 400, 7)
    assert data.pcres[2000].shape == (30, 8, 20, 7)
    for i, r in enumerate(meta.itertuples()):
        prom = np.load(E003 / "npy" / f"{r.chrom}:{r.start - 20000}-{r.start + 20000}.npy")
        for size in (2000, 500, 100):
            want = _log_mean_bins(prom, size)
            if r.strand == "-":
                want = want[:, ::-1]  # 5'->3': upstream first on the minus strand too
            np.testing.assert_allclose(data.promoters[size][i], want.T, atol=1e-6)
        neigh = r.neighbors.split(";") if isinstance(r.neighbors, str) else []
        assert (data.lengths[i] > 0).sum() == len(neigh)
        for k, region in enumerate(neigh):
            arr = np.load(E003 / "npy" / f"{region}.npy")
            s, e = (int(x) for x in region.split(":")[1].split("-"))
            assert data.lengths[i, k] == e - s
            for size in (2000, 500, 100):
                want = _log_mean_bins(arr, size).T
                n, width = len(want), 40000 // size
                left = -(-(width - n) // 2)  # ceil: the reference's left pad
                got = data.pcres[size][i, k]
                np.testing.assert_allclose(got[left : left + n], want, atol=1e-6)
                assert not got[:left].any() and not got[left + n :].any()
        np.testing.assert_allclose(
            data.scores[i, : len(neigh)],
            [float(x) for x in r.scores.split(";")] if neigh else [],
            rtol=1e-6,
        )
        assert not data.pcres[100][i, len(neigh) :].any()


def test_region_valid_masks_centre_each_region():
    lengths = torch.tensor([[40000, 1, 3999, 0]])
    v = region_valid(lengths, 2000, 20)[0]
    assert v[0].all()
    assert v[1].tolist() == [i == 10 for i in range(20)]  # 1 bin: left pad ceil(19/2)=10
    assert v[2].sum() == 2 and v[2, 9] and v[2, 10]
    assert not v[3].any()


def _perturbed_reference(cls, seed=0):
    """The reference model from PyPI, its weights all moved off their initial values
    (gamma_f included, so the contact bias is exercised)."""
    ref = cls().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return ref


@needs_e003
@pytest.mark.parametrize("task", ["clf", "reg"])
@pytest.mark.reference
def test_reference_parity_on_real_inputs(e003, task, monkeypatch):
    chromoformer = pytest.importorskip("chromoformer")  # the reference, test-only
    # the reference hard-codes .cuda() for its positional encoding: a no-op here
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    meta, data = e003
    ref_cls = (
        chromoformer.ChromoformerClassifier if task == "clf" else chromoformer.ChromoformerRegressor
    )
    ref = _perturbed_reference(ref_cls)
    ds = chromoformer.ChromoformerDataset(
        str(E003 / "meta.csv"), str(E003 / "npy"), list(meta.gene_id), regression=True
    )
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    # the reference dataset's tensors are ours, and so are its masks
    for size in (2000, 500, 100):
        np.testing.assert_allclose(
            batch["promoter_feats"][size][:, 0].numpy(), data.promoters[size], atol=1e-6
        )
        np.testing.assert_allclose(batch["pcre_feats"][size].numpy(), data.pcres[size], atol=1e-6)
        ours = ~region_valid(torch.from_numpy(data.lengths), size, 40000 // size)
        ref_mask = batch["pcre_pad_masks"][size][:, :, 0]
        assert torch.equal(ours.unsqueeze(2).expand_as(ref_mask), ref_mask)
    model = Chromoformer(ChromoformerConfig(task=task)).eval()
    load_reference_state(model, {"net": ref.state_dict()})  # a reference checkpoint
    with torch.no_grad():
        want = ref(
            batch["promoter_feats"],
            batch["promoter_pad_masks"],
            batch["pcre_feats"],
            batch["pcre_pad_masks"],
            batch["interaction_masks"],
            batch["interaction_freq"],
        )
        got = model(*[torch.from_numpy(x) for x in data.inputs()])
    if task == "clf":
        np.testing.assert_allclose(got["logits"].numpy(), want.numpy(), atol=1e-5)
        np.testing.assert_allclose(
            got["probability"].numpy(), torch.softmax(want, -1)[:, 1].numpy(), atol=1e-5
        )
    else:
        np.testing.assert_allclose(got["prediction"].numpy(), want[:, 0].numpy(), atol=1e-5)
    assert want.abs().max() > 0.05  # the comparison is not between zeros


def test_missing_pcres_are_masked_out(e003):
    """A gene with zero pCREs: whatever sits in its pCRE slots cannot change the output."""
    _, data = e003
    model = Chromoformer(ChromoformerConfig()).eval()
    i = int(np.flatnonzero((data.lengths > 0).sum(1) == 0)[0])
    xs = [torch.from_numpy(x[i : i + 1].copy()) for x in data.inputs()]
    with torch.no_grad():
        base = model(*xs)["logits"]
        for k in range(3, 6):
            xs[k] = torch.randn_like(xs[k]) * 3
        xs[7] = torch.rand_like(xs[7]) * 5  # scores of absent regions are ignored too
        assert torch.allclose(model(*xs)["logits"], base, atol=1e-6)
        xs[6][0, 0] = 5000  # ... but a present region does count
        assert not torch.allclose(model(*xs)["logits"], base, atol=1e-4)


def test_tasks_shapes_and_diff_antisymmetry(e003):
    _, data = e003
    xs = [torch.from_numpy(x[:4]) for x in data.inputs()]
    torch.manual_seed(0)
    clf = Chromoformer(ChromoformerConfig(task="clf")).eval()
    reg = Chromoformer(ChromoformerConfig(task="reg")).eval()
    diff = Chromoformer(ChromoformerConfig(task="diff")).eval()
    diff.load_state_dict(reg.state_dict())  # a reg model is a diff model's starting point
    other = [torch.from_numpy(x[4:8]) for x in data.inputs()]
    with torch.no_grad():
        assert clf(*xs)["logits"].shape == (4, 2)
        p = reg(*xs)["prediction"]
        assert p.shape == (4,)
        fc = diff(*xs, *other)["log2fc"]
        assert fc.shape == (4,)
        torch.testing.assert_close(diff(*other, *xs)["log2fc"], -fc)
        torch.testing.assert_close(fc, reg(*other)["prediction"] - p)
    assert len(diff.input_names()) == 16 and diff.input_names()[0] == "promoter_2000_a"


def test_meta_errors_name_file_and_line(tmp_path):
    bad = write_lines(
        tmp_path / "meta.csv",
        [
            "gene_id,label,expression,chrom,start,end,strand,split,neighbors,scores",
            "G1,1,3.0,chr1,50000,50001,+,1,chr1:1000-2000,2.0",
            "G2,0,0.1,chr1,90000,90001,*,1,,",
        ],
    )
    with pytest.raises(FormatError, match=r"meta.csv:3: expected strand \+ or -"):
        read_meta(str(bad))
    bad2 = write_lines(
        tmp_path / "m2.csv",
        [
            "gene_id,chrom,start,end,strand,neighbors,scores",
            "G1,chr1,50000,50001,+,chr1:1000-2000;chr1:3000-4000,2.0",
        ],
    )
    with pytest.raises(FormatError, match="m2.csv:2: expected as many scores as neighbors"):
        read_meta(str(bad2))
    ok = write_lines(
        tmp_path / "m3.csv", ["gene_id,chrom,start,end,strand", "G1,chr1,50000,50001,+"]
    )
    (tmp_path / "npy").mkdir()
    with pytest.raises(DataError, match=r"m3.csv:2: no array .*chr1:30000-70000.npy"):
        load_chromoformer(str(ok), str(tmp_path / "npy"))
