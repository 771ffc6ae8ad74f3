"""libchromaformer as a C caller gets it: built and tested by CMake (ctest), installed,
linked by a C program through pkg-config and through CMake's find_package, and read
through ctypes against the Python reader: the same arrays from every bundled sample, the
same one-line message for every case of the bad-input corpus."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import chromaformer as cf
from chromaformer.layout import BENCHMARK_MARKS

from .._common import ROOT, gene_rows, write_lines
from ..cli.test_bad_input import CASES as SCORER_CASES
from ..formats.test_bincsv_errors import CASES as READER_CASES
from ..formats.test_bincsv_errors import base
from .capi import CError, Lib

EXAMPLE = ROOT / "examples" / "c" / "score.c"
E116_SAMPLE = ROOT / "export" / "web" / "examples" / "e116-valid-300.csv.gz"


@pytest.fixture(scope="module")
def lib(native):
    return Lib(native.lib / "libchromaformer.so")


def test_ctest_passes(native):
    assert native.ctest_log.startswith("rc=0"), native.ctest_log
    assert "100% tests passed, 0 tests failed out of 2" in native.ctest_log


def test_install_lays_out_header_libraries_and_package_files(native):
    p = native.prefix
    for f in (
        "include/chromaformer.h",
        "lib/libchromaformer.a",
        "lib/pkgconfig/chromaformer.pc",
        "lib/cmake/chromaformer/chromaformerConfig.cmake",
        "lib/cmake/chromaformer/chromaformerTargets.cmake",
    ):
        assert (p / f).is_file(), f
    assert (p / "lib/libchromaformer.so.0").is_file()
    exported = subprocess.run(
        ["nm", "-D", "--defined-only", str(p / "lib/libchromaformer.so")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    symbols = [s.split("@")[0] for s in exported if s.startswith("chromaformer_")]
    assert "chromaformer_reader_open" in symbols and "chromaformer_model_predict" in symbols
    # nothing of the C++ inside leaks out (the version script keeps it local)
    assert not [s for s in exported if s.startswith("_Z")]


def _pkg_config(native, *args):
    if shutil.which("pkg-config") is None and not os.environ.get("CI"):
        pytest.skip("pkg-config is not installed here (.ci/run installs it)")
    env = dict(os.environ, PKG_CONFIG_PATH=str(native.lib / "pkgconfig"))
    return subprocess.run(
        ["pkg-config", *args, "chromaformer"], env=env, capture_output=True, text=True, check=True
    ).stdout.split()


def test_the_example_builds_with_pkg_config_and_scores_like_chromaformer_score(native, tmp_path):
    """examples/c/score.c, compiled against the installed header and library alone (the
    source copied away from the tree), reads a real e116 file and scores it through the
    documented API: the TSV equals chromaformer-score's."""
    native.require_scorer()
    src = tmp_path / "score.c"
    shutil.copy(EXAMPLE, src)
    lines = len(EXAMPLE.read_text().splitlines())
    assert 40 <= lines <= 70, lines
    flags = _pkg_config(native, "--cflags", "--libs")
    assert f"-I{native.prefix}/include" in flags
    exe = tmp_path / "score"
    subprocess.run(
        ["cc", "-std=c99", "-Wall", "-Werror", str(src), *flags, "-o", str(exe)], check=True
    )
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True).stdout
    assert f"{native.lib}/libchromaformer.so.0" in ldd, ldd
    csv = tmp_path / "e116.csv"
    csv.write_bytes(gzip.decompress(E116_SAMPLE.read_bytes()))
    res = subprocess.run(
        [
            str(exe),
            str(csv),
            str(ROOT / "chromaformer/pretrained/e116.onnx"),
            str(tmp_path / "c.tsv"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"300 genes scored with chromaformer {cf.__version__}")
    ours = cf.score(cf.Scorer("e116"), csv, tmp_path / "py.tsv", metrics=False)
    assert ours.genes == 300
    assert (tmp_path / "c.tsv").read_bytes() == (tmp_path / "py.tsv").read_bytes()
    bad = subprocess.run(
        [
            str(exe),
            str(ROOT / "chromaformer/data/attentivechrome_toy/classification/valid.csv"),
            str(ROOT / "chromaformer/pretrained/e116.onnx"),
            str(tmp_path / "x.tsv"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "genes have 100 bins but e116.onnx expects 21" in bad.stderr
    assert not (tmp_path / "x.tsv").exists()


def test_a_cmake_project_finds_the_installed_package(native, tmp_path):
    """find_package(chromaformer) gives the shared and the static library; a program
    linked to each reads a bundled file."""
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(user C)\n"
        "find_package(chromaformer 0.1 REQUIRED)\n"
        "add_executable(shared count.c)\n"
        "target_link_libraries(shared PRIVATE chromaformer::chromaformer)\n"
        "add_executable(static count.c)\n"
        "target_link_libraries(static PRIVATE chromaformer::chromaformer_static)\n"
    )
    (tmp_path / "count.c").write_text(
        "#include <chromaformer.h>\n#include <stdio.h>\n"
        "int main(int argc, char** argv) {\n"
        "  char err[512]; chromaformer_reader* r; chromaformer_batch b; long long n = 0;\n"
        "  if (chromaformer_reader_open(argv[1], 0, 0, NULL, &r, err, sizeof err)) return 1;\n"
        "  while (!chromaformer_reader_next(r, 100, &b, err, sizeof err) && b.genes)"
        " n += b.genes;\n"
        '  chromaformer_reader_close(r); printf("%lld\\n", n); return err[0] != 0;\n}\n'
    )
    build = tmp_path / "build"
    subprocess.run(
        ["cmake", "-S", str(tmp_path), "-B", str(build), f"-DCMAKE_PREFIX_PATH={native.prefix}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    toy = ROOT / "chromaformer/data/attentivechrome_toy/classification/test.csv"
    want = cf.read_bins(toy).n_genes
    for exe in ("shared", "static"):
        out = subprocess.run([str(build / exe), str(toy)], capture_output=True, text=True)
        assert out.returncode == 0 and int(out.stdout) == want, (exe, out.stderr)


def test_the_c_reader_gives_the_python_readers_arrays(lib, real_files, sim_genome, tmp_path):
    gz = tmp_path / "sim.csv.gz"
    gz.write_bytes(gzip.compress(Path(sim_genome[0]).read_bytes()))
    assert lib.version() == cf.__version__
    for path in [*real_files, gz]:
        want = cf.read_bins(path)
        for genes in (37, 4096):
            parts = list(lib.read(path, genes, marks=BENCHMARK_MARKS))
            assert all(len(p[2]) <= genes for p in parts)
            counts = np.concatenate([p[0] for p in parts])
            assert np.array_equal(counts, want.counts), path
            assert np.array_equal(np.concatenate([p[1] for p in parts]), want.labels)
            assert [g for p in parts for g in p[2]] == list(want.gene_ids)


@pytest.mark.parametrize("name", list(READER_CASES))
def test_the_c_reader_refuses_as_the_python_reader(lib, tmp_path, name):
    transform = READER_CASES[name][0]
    path = write_lines(tmp_path / "bad.csv", transform(base()))
    with pytest.raises(cf.FormatError) as want:
        cf.read_bins(path, bins=100)
    for genes in (1, 50):
        with pytest.raises(CError) as got:
            for _ in lib.read(path, genes, bins=100, marks=BENCHMARK_MARKS):
                pass
        assert str(got.value) == str(want.value)
        assert got.value.status == 1  # CHROMAFORMER_ERR_FORMAT


@pytest.mark.parametrize("name", [n for n in SCORER_CASES if "never ends" not in n])
def test_the_c_reader_refuses_the_damaged_files_of_the_guide(lib, tmp_path, name):
    """docs/guide/bad-input.md's bin-CSV cases (gzip cut, bombs, bad bytes): the message
    of the Python streaming reader, word for word."""
    fname, make, _, _ = SCORER_CASES[name]
    path = tmp_path / fname
    path.write_bytes(make())
    with pytest.raises(cf.FormatError) as want:
        for _ in cf.iter_bins(path, 2048, integer_counts=False):
            pass
    with pytest.raises(CError) as got:
        for _ in lib.read(path, 2048, marks=BENCHMARK_MARKS, integer_counts=False):
            pass
    assert str(got.value) == str(want.value)


def test_missing_and_unreadable_inputs(lib, tmp_path):
    with pytest.raises(CError) as e:
        list(lib.read(tmp_path / "missing.csv"))
    assert e.value.status == 2
    assert str(e.value).endswith("cannot open file: No such file or directory")
    with pytest.raises(CError) as e:
        list(lib.read(tmp_path))
    assert "not a regular file" in str(e.value)


def test_write_scores_is_the_python_scorers_tsv(lib, tmp_path):
    from chromaformer.formats.scores import ScoresWriter

    rng = np.random.default_rng(3)
    vals = rng.random(500).astype(np.float32)
    vals[:3] = [0.0, 1.0, 1e-9]
    labels = (rng.random(500) > 0.5).astype(np.uint8)
    ids = np.array([f"ENSG{i:011d}" for i in range(500)])
    for lab in (labels, None):
        with open(tmp_path / "py.tsv", "w", newline="\n") as fh:
            w = ScoresWriter(fh, "probability", "clf")
            w.header(lab is not None)
            w.add(ids, vals, lab)
        lib.write_scores(tmp_path / "c.tsv", list(ids), vals, lab)
        assert (tmp_path / "c.tsv").read_bytes() == (tmp_path / "py.tsv").read_bytes()


def test_write_scores_refuses_and_leaves_the_old_file(lib, tmp_path):
    out = tmp_path / "s.tsv"
    out.write_text("old\n")
    out.chmod(0o640)
    for ids, vals, what in (
        (["A", "=HYPERLINK(1)"], [0.1, 0.2], "starts with '=': a spreadsheet would run it"),
        (["A", "B C"], [0.1, 0.2], "holds a comma, quote or whitespace"),
        (["A", "B"], [0.1, float("nan")], "expected a probability in [0, 1]"),
        (["A", "B"], [0.1, 1.5], "probability 1.5: expected a probability in [0, 1]"),
    ):
        with pytest.raises(CError) as e:
            lib.write_scores(out, ids, np.array(vals), None)
        assert e.value.status == 3 and what in str(e.value), str(e.value)
    assert out.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["s.tsv"]  # no temporary left
    lib.write_scores(out, ["A"], np.array([0.5]), np.array([1]))
    assert out.read_text() == "gene_id\tprobability\tlabel\nA\t0.5\t1\n"
    assert out.stat().st_mode & 0o777 == 0o640  # the file's permission bits kept
    link = tmp_path / "link.tsv"
    link.symlink_to(out)
    lib.write_scores(link, ["B"], np.array([0.25]), None)
    assert link.is_symlink() and out.read_text() == "gene_id\tprobability\nB\t0.25\n"
    lib.write_scores(Path("/dev/null"), ["B"], np.array([0.25]), None)
    assert Path("/dev/null").is_char_device()
    with pytest.raises(CError, match="a directory; an output must be a regular file"):
        lib.write_scores(tmp_path, ["B"], np.array([0.25]), None)


def test_the_c_reader_streams_a_genome_in_bounded_batches(lib, tmp_path):
    rows = [r for g in range(3000) for r in gene_rows(f"G{g}", label=g % 2)]
    path = write_lines(tmp_path / "big.csv", rows)
    sizes = [len(ids) for _, _, ids in lib.read(path, 256, threads=2)]
    assert sizes == [256] * 11 + [3000 - 11 * 256]
