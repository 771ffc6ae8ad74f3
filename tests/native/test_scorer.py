"""chromaformer-score-native against chromaformer-score: the same TSV for the same model
and input (every bin architecture and the shipped e116 ensemble), the same outputs'
names, and the same one-line refusal for each bad input, model and output."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import chromaformer as cf

from .._common import ARCHS, ROOT, TOY, run_cli
from ..cli.test_bad_input import CASES as SCORER_CASES

E116 = ROOT / "chromaformer" / "pretrained" / "e116.onnx"
E116_SAMPLE = ROOT / "export" / "web" / "examples" / "e116-valid-300.csv.gz"


def native_run(native, *args):
    exe = native.require_scorer()
    return subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, errors="replace"
    )


def _same_tsv(a: Path, b: Path) -> float:
    """The largest probability difference of two scored TSVs whose genes, labels, header
    and formatting agree (the probability column aside)."""
    x, y = (pd.read_csv(p, sep="\t", dtype={"gene_id": str}) for p in (a, b))
    assert list(x.columns) == list(y.columns)
    assert x.gene_id.tolist() == y.gene_id.tolist()
    if "label" in x:
        assert x.label.tolist() == y.label.tolist()
    return float(np.abs(x.probability - y.probability).max())


def test_every_bin_architecture_scores_as_the_python_scorer(native, exported, tmp_path):
    src = TOY / "valid.csv"
    gz = tmp_path / "valid.csv.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    for arch in ARCHS:
        model = exported[arch][0].path
        for inp in (src, gz):
            res = native_run(native, inp, "--model", model, "-o", tmp_path / "n.tsv", "--quiet")
            assert res.returncode == 0 and res.stderr == "", res.stderr
            cf.score(cf.Scorer(model), inp, tmp_path / "p.tsv", metrics=False)
            assert _same_tsv(tmp_path / "n.tsv", tmp_path / "p.tsv") <= 1e-6, arch
            # the threads change nothing
            native_run(
                native,
                inp,
                "--model",
                model,
                "-o",
                tmp_path / "t.tsv",
                "-q",
                "--threads",
                "1",
                "--chunk-genes",
                "7",
            )
            assert (tmp_path / "t.tsv").read_bytes() == (tmp_path / "n.tsv").read_bytes()


def test_the_shipped_e116_ensemble_scores_byte_for_byte(native, tmp_path):
    csv = tmp_path / "e116.csv.gz"
    csv.write_bytes(E116_SAMPLE.read_bytes())
    res = native_run(native, csv, "--model", E116)
    assert res.returncode == 0, res.stderr
    assert f"{csv}: 300 genes -> {tmp_path / 'e116.scores.tsv'}" in res.stderr
    py = run_cli("score", csv, "--model", "e116", "-o", tmp_path / "py.tsv", "--quiet")
    assert py.exit_code == 0, py.output
    assert (tmp_path / "e116.scores.tsv").read_bytes() == (tmp_path / "py.tsv").read_bytes()


def test_a_prepared_genome_without_labels_follows_its_layout_record(native, tmp_path):
    """A genome prepared from tracks has a layout record (no labels): the native TSV has
    no label column either, like chromaformer-score's."""
    from chromaformer.prepare.real import prepare_e116

    out = prepare_e116(tmp_path / "p", splits=("valid",))
    valid = next(Path(tmp_path / "p").rglob("valid.csv*"))
    record = cf.formats.sidecars.read_layout_record(valid)
    assert record is not None, out
    res = native_run(native, valid, "--model", E116, "-o", tmp_path / "n.tsv", "-q")
    assert res.returncode == 0, res.stderr
    run_cli("score", valid, "--model", "e116", "-o", tmp_path / "p.tsv", "--quiet")
    assert (tmp_path / "n.tsv").read_bytes() == (tmp_path / "p.tsv").read_bytes()
    # a record naming other marks is refused with the Python scorer's message
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "g.csv").write_bytes(gzip.decompress(E116_SAMPLE.read_bytes()))
    cf.formats.sidecars.write_layout_record(
        str(fake / "g.csv"), 21, 10000, ["a", "b", "c", "d", "e"], {"labels": False}
    )
    _refused_alike(native, tmp_path, fake / "g.csv", "--model", E116)


def _refused_alike(native, tmp_path, *args, out=None):
    out = out or tmp_path / "refused.tsv"
    py = run_cli(
        "score",
        *args[:-2],
        "--model",
        "e116" if args[-1] == E116 else args[-1],
        "-o",
        out,
        "--quiet",
    )
    nat = native_run(native, *args, "-o", out, "--quiet")
    assert py.exit_code == 1 and nat.returncode == 1
    want = py.stderr.strip().splitlines()
    got = nat.stderr.strip().splitlines()
    assert len(got) == 1 and got == want, (got, want)
    return got[0]


@pytest.mark.parametrize("name", [n for n in SCORER_CASES if "never ends" not in n])
def test_bad_files_are_refused_word_for_word(native, tmp_path, name):
    fname, make, _, _ = SCORER_CASES[name]
    path = tmp_path / fname
    path.write_bytes(make())
    line = _refused_alike(native, tmp_path, path, "--model", E116)
    assert line.startswith(f"Error: {path}")
    assert sorted(os.listdir(tmp_path)) == [fname]  # no output, no temporary


def test_bad_models_inputs_and_outputs_are_refused_word_for_word(native, tmp_path):
    csv = tmp_path / "g.csv"
    csv.write_bytes(gzip.decompress(E116_SAMPLE.read_bytes()))
    toy = TOY / "valid.csv"
    lines = [
        _refused_alike(native, tmp_path, toy, "--model", E116),  # 100 bins for 21
        _refused_alike(native, tmp_path, tmp_path / "missing.csv", "--model", E116),
        _refused_alike(native, tmp_path, csv, "--model", tmp_path / "none.onnx"),
        _refused_alike(native, tmp_path, csv, "--model", toy),  # not ONNX
        _refused_alike(native, tmp_path, csv, "--model", E116, out=csv),  # the input itself
    ]
    assert "genes have 100 bins but e116.onnx expects 21 bins of 10000 bp" in lines[0]
    assert "refusing to overwrite an input" in lines[-1]
    formula = tmp_path / "formula.csv"
    formula.write_text(csv.read_text().replace("ENSG", "=ENSG", 21 * 3)[: 10**6])
    _refused_alike(native, tmp_path, formula, "--model", E116)


def test_several_inputs_go_to_a_folder_under_the_python_scorers_names(native, tmp_path):
    a, b = tmp_path / "A" / "valid.csv", tmp_path / "B" / "valid.csv.gz"
    for p in (a, b):
        p.parent.mkdir()
    a.write_bytes(gzip.decompress(E116_SAMPLE.read_bytes()))
    b.write_bytes(E116_SAMPLE.read_bytes())
    res = native_run(native, a, b, "--model", E116, "-o", tmp_path / "n/", "-q")
    assert res.returncode == 0, res.stderr
    py = run_cli("score", a, b, "--model", "e116", "-o", tmp_path / "p/", "--quiet")
    assert py.exit_code == 0, py.output
    names = sorted(os.listdir(tmp_path / "n"))
    assert (
        names == sorted(os.listdir(tmp_path / "p")) == ["A_valid.scores.tsv", "B_valid.scores.tsv"]
    )
    for n in names:
        assert (tmp_path / "n" / n).read_bytes() == (tmp_path / "p" / n).read_bytes()


def test_help_version_and_usage_errors(native):
    assert native_run(native, "--version").stdout.strip() == (
        f"chromaformer-score-native {cf.__version__}"
    )
    assert "Usage: chromaformer-score-native INPUT..." in native_run(native, "--help").stdout
    for args, what in (
        ((), "Missing argument 'INPUT...'."),
        (("x.csv",), "Missing option '--model'."),
        (("x.csv", "--model", "m", "--threads", "0"), "'--threads'"),
        (("x.csv", "--model", "m", "--device", "tpu"), "'--device'"),
        (("x.csv", "--bogus"), "No such option: --bogus"),
    ):
        res = native_run(native, *args)
        assert res.returncode == 1 and what in res.stderr, res.stderr
