"""Chromoformer's layout from strangers: damaged or hostile meta.csv and .npy files give
one-line errors naming the file (and the line of meta.csv); nothing is unpickled; arrays
in another byte order read as the same numbers."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

import chromaformer as cf

from .._common import run_cli


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("cf_inputs") / "base"
    cf.simulate_chromoformer(str(d), 6, seed=1, layout_seed=5)
    return d


def _copy(base, tmp_path):
    d = tmp_path / "set"
    shutil.copytree(base, d)
    return d


def _promoter(d):
    meta = pd.read_csv(d / "meta.csv", dtype=str)
    r = meta.iloc[0]
    tss = int(r.start)
    return d / "npy" / f"{r.chrom}:{tss - 20000}-{tss + 20000}.npy"


def _pcre(d):
    meta = pd.read_csv(d / "meta.csv", dtype=str)
    i = meta.neighbors.notna().idxmax()
    return meta, i, d / "npy" / (meta.loc[i, "neighbors"].split(";")[0] + ".npy")


def _truncated(d):
    p = _promoter(d)
    p.write_bytes(p.read_bytes()[:200])
    return p, "not a readable .npy array"


def _pickled(d):
    p = _promoter(d)
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return p, "not a readable .npy array (Object arrays cannot be loaded"


def _bad_depth(d, dtype, mark, base, value, message):
    """The promoter array as ``dtype`` with ``value`` at (mark, base); its error."""
    p = _promoter(d)
    a = np.load(p).astype(dtype)
    a[mark, base] = value
    np.save(p, a)
    return p, message


def _negative(d):
    msg = "mark 1, base 6: expected a finite, non-negative read depth, found -1.0"
    return _bad_depth(d, np.float32, 0, 5, -1, msg)


def _infinite(d):
    msg = "mark 3, base 10: expected a finite, non-negative read depth, found inf"
    return _bad_depth(d, np.float32, 2, 9, np.inf, msg)


def _nan_half(d):
    # float16, as the reference layout stores depth (checked and binned as float32)
    msg = "mark 2, base 21: expected a finite, non-negative read depth, found nan"
    return _bad_depth(d, np.float16, 1, 20, np.nan, msg)


def _text(d):
    p = _promoter(d)
    np.save(p, np.array([["a", "b"]] * 7))
    return p, "expected numbers (read depth), found dtype <U1"


def _booleans(d):
    p = _promoter(d)
    np.save(p, np.load(p) > 0)
    return p, "expected numbers (read depth), found dtype bool"


def _complex(d):
    p = _promoter(d)
    np.save(p, np.load(p).astype(np.complex64))
    return p, "expected numbers (read depth), found dtype complex64"


def _start(d):
    meta = pd.read_csv(d / "meta.csv", dtype=str)
    meta.loc[2, "start"] = "12x"
    meta.to_csv(d / "meta.csv", index=False)
    return d / "meta.csv", ":4: start: expected a non-negative integer, found '12x'"


def _scores(d):
    meta, i, _ = _pcre(d)
    meta.loc[i, "scores"] = ";".join(["abc"] * len(meta.loc[i, "neighbors"].split(";")))
    meta.to_csv(d / "meta.csv", index=False)
    return d / "meta.csv", f":{i + 2}: scores: expected finite numbers, found 'abc'"


def _long_pcre(d):
    _, _, p = _pcre(d)
    a = np.load(p)
    np.save(p, np.tile(a, (1, 60000 // a.shape[1] + 1)))
    return p, "bases; a region holds at most 40000"


DAMAGES = [
    _truncated,
    _pickled,
    _negative,
    _infinite,
    _nan_half,
    _text,
    _booleans,
    _complex,
    _start,
    _scores,
    _long_pcre,
]


@pytest.mark.parametrize("damage", DAMAGES, ids=[f.__name__[1:] for f in DAMAGES])
def test_damaged_inputs_are_one_line_errors(base, tmp_path, damage):
    d = _copy(base, tmp_path)
    where, message = damage(d)
    with pytest.raises((cf.FormatError, cf.DataError)) as err:
        cf.load_chromoformer(str(d / "meta.csv"), str(d / "npy"))
    text = str(err.value)
    assert text.startswith(str(where)) and message in text and "\n" not in text, text
    # the same through the command a user runs: exit 1, that one line, no run folder
    run = tmp_path / "run"
    res = run_cli(
        "train",
        "--model",
        "chromoformer",
        "--meta",
        d / "meta.csv",
        "--npy-dir",
        d / "npy",
        "--out",
        run,
        "--quiet",
    )
    assert res.exit_code == 1, res.output
    assert res.stderr.strip() == f"Error: {text}", res.stderr
    assert not run.exists()


def test_integer_and_fortran_arrays_read_as_the_numbers_they_hold(base, tmp_path):
    d = _copy(base, tmp_path)
    for name in os.listdir(d / "npy"):
        a = np.load(d / "npy" / name)
        np.save(d / "npy" / name, np.asfortranarray(np.rint(a).astype(np.int16)))
        np.save(base.parent / f"f32-{name}", np.rint(a).astype(np.float32))
    ref_dir = _copy(base, tmp_path / "r")
    for name in os.listdir(ref_dir / "npy"):
        shutil.copy(base.parent / f"f32-{name}", ref_dir / "npy" / name)
    got = cf.load_chromoformer(str(d / "meta.csv"), str(d / "npy"))
    ref = cf.load_chromoformer(str(ref_dir / "meta.csv"), str(ref_dir / "npy"))
    for b in ref.promoters:
        np.testing.assert_array_equal(got.promoters[b], ref.promoters[b])
        np.testing.assert_array_equal(got.pcres[b], ref.pcres[b])


def test_arrays_in_another_byte_order_read_as_the_same_numbers(base, tmp_path):
    d = _copy(base, tmp_path)
    for name in os.listdir(d / "npy"):  # float16, once native and once big-endian
        a = np.load(d / "npy" / name).astype("<f2")
        np.save(base.parent / f"native-{name}", a)
        np.save(d / "npy" / name, a.astype(">f2"))
    native = _copy(base, tmp_path / "n")
    for name in os.listdir(native / "npy"):
        shutil.copy(base.parent / f"native-{name}", native / "npy" / name)
    big = cf.load_chromoformer(str(d / "meta.csv"), str(d / "npy"))
    ref = cf.load_chromoformer(str(native / "meta.csv"), str(native / "npy"))
    assert set(big.promoters) == set(ref.promoters) == {2000, 500, 100}
    for b in ref.promoters:
        assert np.abs(ref.promoters[b]).max() > 0
        np.testing.assert_array_equal(big.promoters[b], ref.promoters[b])
        np.testing.assert_array_equal(big.pcres[b], ref.pcres[b])
