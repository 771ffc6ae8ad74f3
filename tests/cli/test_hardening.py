"""Outputs that must never destroy anything, counts that must never exhaust the machine,
and the one-line refusals of the hardening issue: each test names the finding it guards.
The commands run end to end (click's runner, or a subprocess where a signal, a limit or
a second process is needed) on the shipped ``e116`` model and real GM12878 rows."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from .._common import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "export" / "web" / "examples"
BINS = 21


def _rows(genes: int = 12) -> list[str]:
    with gzip.open(EXAMPLE / "e116-valid-300.csv.gz", "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(genes * BINS)]


def _csv(path: Path, genes: int = 12, rows: list[str] | None = None) -> Path:
    path.write_text("\n".join(rows if rows is not None else _rows(genes)) + "\n")
    return path


def _score(*args):
    return run_cli("score", *args, "--model", "e116", "--quiet")


def _one_line(res) -> str:
    err = res.stderr.strip()
    assert res.exit_code == 1, (res.exit_code, res.output, res.stderr)
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    assert "Traceback" not in res.output + res.stderr
    return err


def _no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".") and "cf-" in p.name]


# --- outputs that are not regular files ------------------------------------------------


def test_o_naming_a_fifo_writes_into_it_and_keeps_it_a_fifo(tmp_path):
    src = _csv(tmp_path / "s.csv")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    res = _score(src, "-o", fifo)
    reader.join(60)
    assert res.exit_code == 0, res.output + res.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    lines = got[0].decode().splitlines()
    assert lines[0].startswith("gene_id\tprobability") and len(lines) == 13
    _no_temporaries(tmp_path)


def test_o_naming_a_character_device_writes_into_it(tmp_path):
    """A private copy of /dev/null (made with mknod where allowed, else /dev/null itself,
    which only root could have replaced): it stays a character device."""
    src = _csv(tmp_path / "s.csv")
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        with open(null, "wb") as fh:
            fh.write(b"")
    except OSError:
        null = Path("/dev/null")
    before = os.stat(null)
    res = _score(src, "-o", null)
    assert res.exit_code == 0, res.output + res.stderr
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino


@pytest.mark.parametrize("kind", ["socket", "directory"])
def test_o_naming_a_socket_or_a_folder_is_refused(tmp_path, kind):
    src = _csv(tmp_path / "s.csv")
    target = tmp_path / kind
    if kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(target))
    else:
        target.mkdir()
        (target / "keep").write_text("x")
    res = _score(src, src, "-o", target) if kind == "directory" else _score(src, "-o", target)
    if kind == "socket":
        err = _one_line(res)
        assert f"{target}: a socket" in err
        assert stat.S_ISSOCK(os.lstat(target).st_mode)
        sock.close()
    else:  # two inputs into a folder: fine, and the folder's file stays
        assert (target / "keep").read_text() == "x"


def test_a_symlinked_o_is_written_through(tmp_path):
    src = _csv(tmp_path / "s.csv")
    real = tmp_path / "real.tsv"
    real.write_text("old\n")
    link = tmp_path / "link.tsv"
    link.symlink_to(real)
    res = _score(src, "-o", link)
    assert res.exit_code == 0, res.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("gene_id\tprobability")


def test_a_dev_stdout_alias_is_written_into_not_replaced(tmp_path):
    """``-o /dev/stdout`` with stdout redirected to a file: the shell's file gets the
    TSV; nothing replaces /dev/stdout's target."""
    src = _csv(tmp_path / "s.csv")
    out = tmp_path / "redirected.tsv"
    out.write_text("kept\n")
    with open(out, "ab") as fh:  # the shell's >>: what the file held stays
        res = subprocess.run(
            [sys.executable, "-m", "chromaformer.cli", "score", str(src), "--model", "e116"]
            + ["-o", "/dev/stdout", "--no-metrics"],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "kept" and lines[1].startswith("gene_id\tprobability")
    assert len(lines) == 14  # the report line went to stderr, not into the TSV
    assert "-> /dev/stdout" in res.stderr


# --- outputs that are inputs -----------------------------------------------------------


@pytest.mark.parametrize("how", ["same", "hardlink", "symlink"])
def test_o_equal_to_the_input_is_refused(tmp_path, how):
    src = _csv(tmp_path / "s.csv")
    before = src.read_bytes()
    target = {"same": src, "hardlink": tmp_path / "h.csv", "symlink": tmp_path / "l.csv"}[how]
    if how == "hardlink":
        os.link(src, target)
    elif how == "symlink":
        target.symlink_to(src)
    err = _one_line(_score(src, "-o", target))
    assert "is the input" in err and str(target) in err
    assert src.read_bytes() == before
    _no_temporaries(tmp_path)


def test_summarize_and_perturb_refuse_to_overwrite_an_input(tmp_path):
    src = _csv(tmp_path / "s.csv")
    assert _score(src, "-o", tmp_path / "a.tsv").exit_code == 0
    before = (tmp_path / "a.tsv").read_bytes()
    err = _one_line(run_cli("summarize", f"a={tmp_path / 'a.tsv'}", "-o", tmp_path / "a.tsv"))
    assert "is the input" in err
    err = _one_line(
        run_cli("perturb", src, "--model", "e116", "--set", "H3K4me3=0", "-o", src, "--quiet")
    )
    assert "is the input" in err
    assert (tmp_path / "a.tsv").read_bytes() == before


# --- default outputs that collide ------------------------------------------------------


def test_two_inputs_of_one_stem_get_two_outputs(tmp_path):
    plain = _csv(tmp_path / "s.csv", 6)
    packed = tmp_path / "s.csv.gz"
    packed.write_bytes(gzip.compress(_csv(tmp_path / "other.csv", 9).read_bytes()))
    res = _score(plain, packed)
    assert res.exit_code == 0, res.stderr
    a = (tmp_path / "s.csv.scores.tsv").read_text().splitlines()
    b = (tmp_path / "s.csv.gz.scores.tsv").read_text().splitlines()
    assert (len(a), len(b)) == (7, 10)
    out = tmp_path / "out"
    res = _score(plain, packed, "-o", out)
    assert res.exit_code == 0, res.stderr
    assert len(list(out.glob("*.scores.tsv"))) == 2


def test_the_same_input_twice_is_refused(tmp_path):
    src = _csv(tmp_path / "s.csv")
    link = tmp_path / "again.csv"
    link.symlink_to(src)
    err = _one_line(_score(src, link))
    assert "given twice" in err


def test_a_trailing_slash_means_a_folder(tmp_path):
    src = _csv(tmp_path / "s.csv")
    res = _score(src, "-o", f"{tmp_path / 'dir'}/")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "dir" / "s.scores.tsv").is_file()


# --- file modes and temporaries --------------------------------------------------------


def test_outputs_keep_to_the_umask_and_keep_an_existing_files_mode(tmp_path):
    src = _csv(tmp_path / "s.csv")
    old = os.umask(0o077)
    try:
        assert _score(src, "-o", tmp_path / "a.tsv").exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.tsv").st_mode) == 0o600
    keep = tmp_path / "b.tsv"
    keep.write_text("x")
    os.chmod(keep, 0o640)
    assert _score(src, "-o", keep).exit_code == 0
    assert stat.S_IMODE(os.stat(keep).st_mode) == 0o640


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path):
    """A temporary named for a process that no longer runs (what kill -9 leaves) goes
    at the next write beside it; a live process's temporary stays."""
    from chromaformer._util import atomic as _atomic

    src = _csv(tmp_path / "s.csv")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".a.tsv.cf-{_atomic._HOST}-{dead.pid}-0123456789ab.tmp"
    live = tmp_path / f".a.tsv.cf-{_atomic._HOST}-{os.getpid()}-0123456789ab.tmp"
    stale.write_text("partial")
    live.write_text("busy")
    assert _score(src, "-o", tmp_path / "a.tsv").exit_code == 0
    assert not stale.exists() and live.exists()


def test_a_permission_error_names_the_output_not_the_temporary(tmp_path, monkeypatch):
    """The temporary cannot be made (a read-only folder; root ignores modes, so the
    refusal is simulated at the open): the error names -o."""
    from chromaformer._util import atomic as _atomic

    real_open = os.open

    def deny(path, *args, **kwargs):
        if ".cf-" in os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    src = _csv(tmp_path / "s.csv")
    monkeypatch.setattr(_atomic.os, "open", deny)
    err = _one_line(_score(src, "-o", tmp_path / "a.tsv"))
    assert err == f"Error: {tmp_path / 'a.tsv'}: Permission denied"


# --- counts that could exhaust the machine ---------------------------------------------


def test_threads_and_jobs_are_cut_to_the_cores(tmp_path):
    from chromaformer._util.system import cores

    src = _csv(tmp_path / "s.csv")
    res = _score(src, "--threads", "100000", "-o", tmp_path / "a.tsv")
    assert res.exit_code == 0, res.stderr
    assert f"--threads 100000 is more than the {cores()} cores available" in res.stderr
    res = run_cli("score", src, src, "--model", "e116", "-j", "5000", "--quiet")
    assert "--jobs 5000 is more than" in res.stderr


def test_chunk_sizes_that_would_overflow_are_refused(tmp_path):
    src = _csv(tmp_path / "s.csv")
    res = _score(src, "--chunk-genes", str(2**62), "-o", tmp_path / "a.tsv")
    assert res.exit_code == 2 and "--chunk-genes" in res.stderr and "Traceback" not in res.stderr
    import chromaformer as cf
    from chromaformer.formats.bincsv import BinStream

    with pytest.raises(cf.DataError, match="genes per batch must be"):
        BinStream(src, 2**62)


def test_blank_lines_are_not_kept_in_memory(tmp_path):
    """300 genes and then 256 MiB of blank lines stream in bounded memory (the reader
    keeps none of the skipped lines): the peak RSS of a subprocess."""
    src = tmp_path / "blank.csv"
    with open(src, "wb") as fh:
        fh.write(gzip.decompress((EXAMPLE / "e116-valid-300.csv.gz").read_bytes()))
        block = b"\n" * (1 << 20)
        for _ in range(256):
            fh.write(block)
    code = (
        "from chromaformer.formats.bincsv import BinStream\n"
        f"n = sum(len(b.gene_ids) for b in BinStream({str(src)!r}, 64))\n"
        # VmHWM, not ru_maxrss: the latter starts from the parent's size at the fork
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')]\n"
        "print(n, hwm[0].split()[1])\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    genes, rss_kb = map(int, res.stdout.split())
    assert genes == 300
    assert rss_kb < 200 * 1024, f"peak RSS {rss_kb / 1024:.0f} MiB for 256 MiB of blank lines"


def test_rows_after_a_run_of_blank_lines_are_still_refused(tmp_path):
    rows = _rows(4)
    text = "\n".join(rows[: 2 * BINS]) + "\n" + "\n" * 5000 + "\n".join(rows[2 * BINS :]) + "\n"
    src = tmp_path / "gap.csv"
    src.write_text(text)
    import chromaformer as cf
    from chromaformer.formats.bincsv import BinStream

    with pytest.raises(cf.FormatError, match=rf":{2 * BINS + 1}: empty line"):
        for _ in BinStream(src, 1):
            pass


# --- models whose outputs or graphs are wrong ------------------------------------------


def _e116_with(tmp_path: Path, name: str, edit) -> Path:
    """The shipped model, its graph or metadata changed by ``edit(model)``."""
    import onnx

    from chromaformer.pretrained import resolve_model

    model = onnx.load(resolve_model("e116"))
    edit(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


def _scaled_probability(factor: float):
    """A graph whose ``probability`` is the real one times ``factor`` (NaN, 2...)."""
    from onnx import helper

    def edit(model):
        g = model.graph
        for node in g.node:
            node.output[:] = ["p_raw" if o == "probability" else o for o in node.output]
        g.initializer.append(helper.make_tensor("k", 1, [], [factor]))
        g.node.append(helper.make_node("Mul", ["p_raw", "k"], ["probability"]))

    return edit


def _set_meta(key: str, value: str):
    def edit(model):
        for p in model.metadata_props:
            if p.key == key:
                p.value = value

    return edit


@pytest.mark.parametrize(
    "name, edit, message",
    [
        ("nan", _scaled_probability(float("nan")), "expected a probability in [0, 1]"),
        ("above-one", _scaled_probability(2.0), "expected a probability in [0, 1]"),
        ("input-name", _set_meta("inputs", "reads"), "graph inputs counts, metadata reads"),
        ("reg", _set_meta("task", "reg"), "task=reg needs the output 'prediction'"),
        ("bins", _set_meta("bins", "100"), "the metadata says (genes, 100 bins, 5 marks)"),
    ],
)
def test_a_model_that_disagrees_or_outputs_nonsense_publishes_nothing(
    tmp_path, name, edit, message
):
    src = _csv(tmp_path / "s.csv")
    model = _e116_with(tmp_path, name, edit)
    for args in (
        ("score", src, "--model", model, "-o", tmp_path / "a.tsv", "--track", "bed"),
        ("perturb", src, "--model", model, "--set", "H3K4me3=0", "-o", tmp_path / "w.tsv"),
    ):
        err = _one_line(run_cli(*args, "--quiet", "--genes-bed", _genes_bed(tmp_path)))
        assert message in err, err
    assert not (tmp_path / "a.tsv").exists() and not (tmp_path / "w.tsv").exists()
    assert not (tmp_path / "a.bed").exists()


def _genes_bed(tmp_path: Path) -> Path:
    ids = [r.split(",", 1)[0] for r in _rows()[::BINS]]
    bed = tmp_path / "genes.bed"
    bed.write_text(
        "".join(
            f"chr1\t{1000 * (i + 1)}\t{1000 * (i + 1) + 1}\t{g}\t0\t+\n" for i, g in enumerate(ids)
        )
    )
    return bed


def test_a_two_dimensional_output_is_refused(tmp_path):
    from onnx import helper

    def edit(model):
        g = model.graph
        for node in g.node:
            node.output[:] = ["p_raw" if o == "probability" else o for o in node.output]
        g.initializer.append(helper.make_tensor("axes", 7, [1], [1]))
        g.node.append(helper.make_node("Unsqueeze", ["p_raw", "axes"], ["probability"]))
        out = next(o for o in g.output if o.name == "probability")
        out.type.tensor_type.shape.dim.add().dim_value = 1

    model = _e116_with(tmp_path, "2d", edit)
    err = _one_line(_score_with(tmp_path, model))
    assert "expected one value per gene" in err


def _score_with(tmp_path, model):
    return run_cli(
        "score", _csv(tmp_path / "s.csv"), "--model", model, "-o", tmp_path / "a.tsv", "--quiet"
    )


# --- summarize's inputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "row, message",
    [
        ("g2\tnan\t1", "probability: expected a probability in [0, 1], found 'nan'"),
        ("g2\tinf\t1", "found 'inf'"),
        ("g2\t-0.2\t1", "found '-0.2'"),
        ("g2\t0.4\t2", "label: expected 0 or 1, found '2'"),
        ("=HYPERLINK(1)\t0.4\t1", "a spreadsheet would run it as a formula"),
    ],
)
def test_summarize_refuses_values_that_are_not_probabilities(tmp_path, row, message):
    tsv = tmp_path / "a.tsv"
    tsv.write_text(f"gene_id\tprobability\tlabel\ng1\t0.5\t0\n{row}\n")
    err = _one_line(run_cli("summarize", f"a={tsv}", "-o", tmp_path / "sum.tsv"))
    assert f"{tsv}:3: " in err and message in err
    assert not list(p for p in tmp_path.iterdir() if p.name.startswith("sum"))


# --- layout records --------------------------------------------------------------------


def _with_record(tmp_path: Path, record: dict) -> Path:
    src = _csv(tmp_path / "s.csv")
    (tmp_path / "s.layout.json").write_text(json.dumps(record))
    return src


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bin_size": 200}, "prepared as 21 bins of 200 bp"),
        ({"marks": ["H3K4me3", "H3K27me3", "H3K36me3", "H3K4me1", "H3K9me3"]}, "in that order"),
        ({"chrom_sizes": [1, 2]}, "chrom_sizes: expected an object"),
        ({"chrom_sizes": {"chr1": "big"}}, "chrom_sizes: chr1: expected a positive integer"),
        ({"bin_size": "10kb"}, "bin_size: expected a positive integer"),
    ],
)
def test_the_scorer_reads_the_layout_record(tmp_path, change, message):
    record = {
        "format": "chromaformer-bins-layout/1",
        "bins": 21,
        "bin_size": 10000,
        "marks": ["H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3"],
    }
    src = _with_record(tmp_path, {**record, **change})
    err = _one_line(_score(src, "-o", tmp_path / "a.tsv"))
    assert message in err, err
    assert not (tmp_path / "a.tsv").exists()


def test_chrom_sizes_too_small_for_the_genes_are_refused(tmp_path):
    record = {"bins": 21, "bin_size": 10000, "chrom_sizes": {"chr1": 500}}
    src = _with_record(tmp_path, record)
    err = _one_line(
        _score(
            src,
            "-o",
            tmp_path / "a.tsv",
            "--track",
            "bedGraph",
            "--genes-bed",
            _genes_bed(tmp_path),
        )
    )
    assert "chrom_sizes: chr1 is 500 bp" in err
    assert not (tmp_path / "a.tsv").exists()


def test_an_unlabelled_prepared_file_has_no_label_column(tmp_path):
    src = _with_record(tmp_path, {"bins": 21, "bin_size": 10000, "labels": False})
    res = _score(src, "-o", tmp_path / "a.tsv")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "a.tsv").read_text().splitlines()[0] == "gene_id\tprobability"


# --- perturb ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["H3K4me3*1e40", "H3K4me3*1e37"])
def test_perturb_refuses_a_factor_that_overflows_float32(tmp_path, spec):
    src = _csv(tmp_path / "s.csv")
    err = _one_line(
        run_cli("perturb", src, "--model", "e116", "--set", spec, "-o", tmp_path / "w.tsv")
    )
    assert "overflow" in err and "float32" in err
    assert not (tmp_path / "w.tsv").exists()


def test_explain_and_perturb_publish_nothing_when_the_tracks_fail(tmp_path):
    """Gene positions missing for one gene: found only when the track is written, at
    the end; the TSV, npz and figures written before it never appear."""
    src = _csv(tmp_path / "s.csv")
    bed = _genes_bed(tmp_path)
    bed.write_text("".join(bed.read_text().splitlines(keepends=True)[:-1]))
    out = tmp_path / "explain"
    err = _one_line(
        run_cli(
            "explain",
            src,
            "--model",
            "e116",
            "-o",
            out,
            "--tracks",
            "bed",
            "--genes-bed",
            bed,
            "--quiet",
        )
    )
    assert "no position for 1 of 12 genes" in err
    assert not out.exists()
    err = _one_line(
        run_cli(
            "perturb",
            src,
            "--model",
            "e116",
            "--set",
            "H3K4me3=0",
            "-o",
            tmp_path / "w.tsv",
            "--tracks",
            "bed",
            "--genes-bed",
            bed,
            "--plot",
            "--quiet",
        )
    )
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("w.")]


# --- names that would break the outputs ------------------------------------------------


def test_gene_ids_that_a_spreadsheet_would_run_are_refused(tmp_path):
    rows = _rows(3)
    gene = rows[BINS].split(",", 1)[0]
    rows[BINS : 2 * BINS] = [r.replace(gene, "=HYPERLINK(1)", 1) for r in rows[BINS : 2 * BINS]]
    src = _csv(tmp_path / "s.csv", rows=rows)
    err = _one_line(_score(src, "-o", tmp_path / "a.tsv"))
    assert f"{src}:{BINS + 1}: gene id '=HYPERLINK(1)' starts with '='" in err


def test_annotation_names_with_spaces_and_marks_with_tabs_are_refused(tmp_path):
    import chromaformer as cf
    from chromaformer.formats.annotation import read_genes

    bed = tmp_path / "g.bed"
    bed.write_text("chr 1\t100\t101\tG1\t0\t+\n")
    with pytest.raises(cf.FormatError, match=r"g.bed:1: chromosome name 'chr 1' holds"):
        read_genes(str(bed))
    res = run_cli(
        "prepare",
        "--mark",
        f"H3K4me3\tx={tmp_path / 't.bedGraph'}",
        "--genes",
        bed,
        "-o",
        tmp_path / "o.csv",
    )
    assert "mark name" in _one_line(res)


# --- text that is not text -------------------------------------------------------------


def test_a_bam_given_as_a_track_and_a_latin1_annotation_are_named(tmp_path):
    """A damaged BAM file (BGZF: gzip of 'BAM\\1'...) as a track, and an annotation in
    Latin-1: one line each, naming the file (and the line)."""
    import chromaformer as cf
    from chromaformer.formats.annotation import read_genes
    from chromaformer.formats.signal import open_track

    bam = tmp_path / "reads.bam"
    bam.write_bytes(gzip.compress(b"BAM\x01" + bytes(range(256)) * 8))
    with pytest.raises(cf.FormatError, match="reads.bam: not a readable BAM file"):
        open_track("H3K4me3", str(bam))
    latin = tmp_path / "genes.bed"
    latin.write_bytes("chr1\t100\t101\tG1\t0\t+\nchr1\t200\t201\tG\xe92\t0\t+\n".encode("latin-1"))
    with pytest.raises(cf.FormatError, match=r"genes.bed:2: byte 0xe9 at column 15 is not UTF-8"):
        read_genes(str(latin))


def test_stdin_and_fifos_as_inputs_say_what_is_accepted(tmp_path):
    err = _one_line(_score("-", "-o", tmp_path / "a.tsv"))
    assert "reading standard input is not supported" in err
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    err = _one_line(_score(fifo, "-o", tmp_path / "a.tsv"))
    assert "not a regular file" in err


def test_a_short_first_gene_is_named(tmp_path):
    rows = _rows(3)
    del rows[BINS - 1]
    src = _csv(tmp_path / "s.csv", rows=rows)
    gene = rows[0].split(",", 1)[0]
    err = _one_line(_score(src, "-o", tmp_path / "a.tsv"))
    assert f"gene '{gene}' has 20 bins, expected 21" in err


def test_jobs_one_and_two_refuse_a_bad_input_alike(tmp_path):
    good = _csv(tmp_path / "good.csv")
    rows = _rows()
    rows[30] = rows[30].replace(",", ";", 1)
    bad = _csv(tmp_path / "bad.csv", rows=rows)
    errs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        res = run_cli("score", good, bad, "--model", "e116", "-o", out, "-j", jobs, "--quiet")
        errs.append(_one_line(res))
        assert not (out / "bad.scores.tsv").exists()
    assert errs[0] == errs[1]


def test_help_works_for_every_script(tmp_path):
    for script in ("chromaformer-score", "chromaformer-train", "chromaformer-prepare"):
        exe = shutil.which(script)
        assert exe, script
        res = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.startswith(f"Usage: {script}"), res.stderr


def test_model_given_a_run_folder_or_checkpoint_says_export_first(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"")
    for model in (run, run / "best.pt"):
        src = _csv(tmp_path / "s.csv")
        err = _one_line(run_cli("score", src, "-o", tmp_path / "a.tsv", "--model", model))
        assert "export it first: chromaformer-export" in err, err


def test_score_tracks_named_genes_bed_in_the_error(tmp_path):
    src = _csv(tmp_path / "s.csv")
    err = _one_line(_score(src, "-o", tmp_path / "a.tsv", "--track", "bed"))
    assert "give --genes-bed" in err


def test_values_never_written_as_nan(tmp_path):
    """A what-if of a huge but float32-safe factor gives finite probabilities only."""
    src = _csv(tmp_path / "s.csv")
    res = run_cli(
        "perturb",
        src,
        "--model",
        "e116",
        "--set",
        "H3K4me3*1e30",
        "-o",
        tmp_path / "w.tsv",
        "--quiet",
    )
    if res.exit_code == 0:
        vals = np.loadtxt(tmp_path / "w.tsv", skiprows=1, usecols=(1, 2, 3))
        assert np.isfinite(vals).all()
    else:
        assert "overflow" in _one_line(res)
