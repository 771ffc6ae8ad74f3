"""Every hostile or damaged bin CSV through the commands a user runs, end to end: the
streaming scorer (``chromaformer score`` with the shipped ``e116`` model) and the
whole-file reader (``chromaformer inspect``). Each must exit 1 with one line that names
the file (and the line and column where there is one) and says what was expected, and
leave nothing behind: no TSV, no hidden temporary file or folder. The Chromoformer inputs,
checkpoints and ``prepare`` cases have their own tests beside their code; this file holds
the bin-CSV cases of docs/guide/bad-input.md and the write-error path."""

from __future__ import annotations

import gzip
import resource
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from .._common import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "export" / "web" / "examples"
BINS = 21  # the shipped e116 model: 21 bins of 10 kb, 5 marks


def _rows(genes: int = 12) -> list[str]:
    with gzip.open(EXAMPLE / "e116-valid-300.csv.gz", "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(genes * BINS)]


def _text(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, 6, mtime=0)


def _cut_at_gene_boundary() -> bytes:
    rows = _rows()
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = z.compress(_text(rows[: 6 * BINS])) + z.flush(zlib.Z_FULL_FLUSH)
    return head  # 6 whole genes inflate; the member never ends


def _bomb() -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(_text(_rows(1)))]
    block = b"\n" * (1 << 20)
    out += [z.compress(block) for _ in range(200)]  # 200 MiB of blank lines in ~200 KB
    return b"".join(out) + z.flush()


def _edit(line: int, old: str, new: str) -> bytes:
    rows = _rows()
    rows[line - 1] = rows[line - 1].replace(old, new, 1)
    return _text(rows)


def _field(line: int, k: int, value: str) -> bytes:
    rows = _rows()
    parts = rows[line - 1].split(",")
    parts[k] = value
    rows[line - 1] = ",".join(parts)
    return _text(rows)


def _gene_id(gene: int, new: bytes) -> bytes:
    """Gene ``gene`` (1-based) renamed to ``new`` (bytes) on all its rows."""
    rows = _rows()
    old = rows[(gene - 1) * BINS].split(",", 1)[0]
    data = _text(rows)
    start = data.index(old.encode() + b",1,")
    end = start + len(_text(rows[(gene - 1) * BINS : gene * BINS]))
    return data[:start] + data[start:end].replace(old.encode(), new) + data[end:]


FULL_GZ = _gz(_text(_rows()))
LINE = 4 * BINS + 1  # the first line of gene 5

# name: (file name, bytes, where after the path ("" or ":LINE" or ":LINE:COL"), message)
CASES = {
    "gzip cut at a gene boundary": (
        "cut.csv.gz",
        _cut_at_gene_boundary,
        "",
        "invalid gzip data: the file is truncated",
    ),
    "gzip cut in its trailer": (
        "trailer.csv.gz",
        lambda: FULL_GZ[:-4],
        "",
        "invalid gzip data: the file is truncated",
    ),
    "gzip cut in the middle": (
        "middle.csv.gz",
        lambda: FULL_GZ[: len(FULL_GZ) * 3 // 5],
        "",
        "invalid gzip data: the file is truncated",
    ),
    "junk after the last gzip member": (
        "junk.csv.gz",
        lambda: FULL_GZ + b"junk\n",
        "",
        "invalid gzip data: the bytes after the last gzip member are not gzip data",
    ),
    "zero padding after the gzip member": (
        "padded.csv.gz",
        lambda: FULL_GZ + bytes(512),
        "",
        "invalid gzip data: the bytes after the last gzip member are not gzip data",
    ),
    "corrupt gzip data": (
        "corrupt.csv.gz",
        lambda: FULL_GZ[:200] + bytes(b ^ 0x5A for b in FULL_GZ[200:260]) + FULL_GZ[260:],
        "",
        "invalid gzip data: ",
    ),
    "decompression bomb": (
        "bomb.csv.gz",
        _bomb,
        "",
        "invalid gzip data: it inflates more than 100-fold (bin CSVs compress 4-12-fold); "
        "refused as a decompression bomb",
    ),
    "tab in a gene id": (
        "tab.csv",
        lambda: _gene_id(5, b"G\t5"),
        f":{LINE}:1",
        "GeneID (field 1): expected UTF-8 text without tabs or control characters, got 'G\\x095'",
    ),
    "NUL in a gene id": (
        "nul.csv",
        lambda: _gene_id(5, b"G\x005"),
        f":{LINE}:1",
        "GeneID (field 1): expected UTF-8 text without tabs or control characters, got 'G\\x005'",
    ),
    "gene id not UTF-8": (
        "latin1.csv",
        lambda: _gene_id(5, b"G\xe95"),
        f":{LINE}:1",
        "GeneID (field 1): expected UTF-8 text without tabs or control characters, got 'G\ufffd5'",
    ),
    "excerpt cut inside a UTF-8 character": (
        "utf8.csv",
        lambda: _field(LINE + 3, 3, "\u00e9" * 30),
        f":{LINE + 3}:",
        "field 4 (H3K36me3): expected a non-negative number, got '" + "\u00e9" * 12 + "...'",
    ),
    "count beyond float32": (
        "huge.csv",
        lambda: _field(LINE + 2, 4, "1e39"),
        f":{LINE + 2}:",
        "field 5 (H3K4me1): count '1e39' is beyond what float32 holds (3.4e38)",
    ),
    "infinite count": (
        "inf.csv",
        lambda: _field(LINE + 2, 6, "inf"),
        f":{LINE + 2}:",
        "field 7 (H3K9me3): expected a non-negative number, got 'inf'",
    ),
    "blank first line": (
        "blank.csv",
        lambda: b"\n" + _text(_rows()),
        ":1: ",
        "empty line (blank lines are allowed only at the end of the file)",
    ),
    "first gene that never ends": (
        "endless.csv",
        lambda: "".join(f"G,{b},1,2,3,4,5,1\n" for b in range(1, 1_000_002)).encode(),
        ":1:1",
        "the first gene runs past 1000000 rows: expected its GeneID to change",
    ),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_inputs")
    out = {}
    for name, (fname, make, _, _) in CASES.items():
        out[name] = d / fname
        out[name].write_bytes(make())
    return out


def _refused(res, path: Path, where: str, message: str) -> None:
    assert res.exit_code == 1, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"Error: {path}{where}"), lines[0]
    if where.endswith(":"):  # a column follows
        assert lines[0][len(f"Error: {path}{where}") :].split(":")[0].isdigit(), lines[0]
    assert message in lines[0], lines[0]
    assert "Traceback" not in res.output


@pytest.mark.parametrize("name", list(CASES))
def test_the_scorer_refuses_and_leaves_nothing(files, tmp_path, name):
    _, _, where, message = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    res = run_cli("score", files[name], "--model", "e116", "-o", out / "s.tsv", "--quiet")
    _refused(res, files[name], where, message)
    assert not list(out.iterdir())  # no TSV, no hidden temporary file or folder


@pytest.mark.parametrize("name", list(CASES))
def test_inspect_refuses_with_the_same_line(files, name):
    _, _, where, message = CASES[name]
    _refused(run_cli("inspect", files[name]), files[name], where, message)


def test_streaming_a_line_without_an_end(tmp_path):
    path = tmp_path / "noline.csv"
    path.write_bytes(b"G1,1," + b"7" * (17 << 20))
    out = tmp_path / "out"
    out.mkdir()
    res = run_cli("score", path, "--model", "e116", "-o", out / "s.tsv", "--quiet")
    _refused(res, path, ":1", "a line of more than 16 MiB without a line end")
    assert not list(out.iterdir())


def test_metadata_that_is_not_a_number(tmp_path):
    import onnx

    from chromaformer.pretrained import resolve_model

    model = onnx.load(resolve_model("e116"))
    for prop in model.metadata_props:
        if prop.key == "bins":
            prop.value = "abc"
    onnx.save(model, str(tmp_path / "m.onnx"))
    src = tmp_path / "in.csv"
    src.write_bytes(_text(_rows(2)))
    out = tmp_path / "out"
    out.mkdir()
    res = run_cli("score", src, "--model", tmp_path / "m.onnx", "-o", out / "s.tsv", "--quiet")
    _refused(res, tmp_path / "m.onnx", ": ", "metadata bins='abc': expected a positive integer")
    assert not list(out.iterdir())


def test_a_write_error_names_the_output_not_a_temporary(tmp_path):
    """The disk fills (here: a 4 KB file-size limit): the error names -o, nothing stays."""
    src = tmp_path / "in.csv"
    src.write_bytes(_text(_rows(300)))  # a TSV of ~10 KB
    out = tmp_path / "out"
    out.mkdir()

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    cmd = [sys.executable, "-m", "chromaformer.cli", "score", str(src), "--model", "e116"]
    res = subprocess.run(
        cmd + ["-o", str(out / "s.tsv"), "--quiet"],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip() == f"Error: {out / 's.tsv'}: File too large", res.stderr
    assert not list(out.iterdir())
