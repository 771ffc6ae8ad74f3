"""Every bad-input case: a FormatError naming the file, the line and what was expected."""

from __future__ import annotations

import os

import pytest

import chromaformer as cf

from .._common import gene_rows, write_lines

HEADER = "GeneID,BinID,H3K27me3,H3K36me3,H3K4me1,H3K4me3,H3K9me3,Label"


def base() -> list[str]:
    return gene_rows("A") + gene_rows("B", label=0) + gene_rows("C")


def edit(i: int, old: str, new: str):
    """Replace the first `old` after the gene id in line i (1-based)."""

    def f(rows):
        gene, rest = rows[i - 1].split(",", 1)
        rows[i - 1] = gene + "," + rest.replace(old, new, 1)
        return rows

    return f


def swap(i: int, j: int):
    def f(rows):
        rows[i - 1], rows[j - 1] = rows[j - 1], rows[i - 1]
        return rows

    return f


CASES = {
    # name: (transform, line, column or None, text in the message)
    "header row": (lambda r: [HEADER] + r, 1, 8, "header"),
    "too few columns": (
        lambda r: r[:149] + [r[149].rsplit(",", 2)[0] + ",0"] + r[150:],
        150,
        None,
        "expected 8 columns (GeneID,BinID,5 mark counts,Label), found 7",
    ),
    "too many columns": (lambda r: r[:149] + [r[149] + ",0"] + r[150:], 150, None, "found 9"),
    "decimal count": (
        lambda r: r[:119] + ["B,20,1.5,2,3,4,5,0"] + r[120:],
        120,
        6,
        "field 3 (H3K27me3): expected a non-negative integer count, got '1.5'",
    ),
    "negative count": (
        lambda r: r[:119] + ["B,20,1,-2,3,4,5,0"] + r[120:],
        120,
        8,
        "field 4 (H3K36me3): negative count '-2'",
    ),
    "NA count": (
        lambda r: r[:119] + ["B,20,1,2,NA,4,5,0"] + r[120:],
        120,
        10,
        "field 5 (H3K4me1): expected a non-negative integer count, got 'NA'",
    ),
    "empty count": (
        lambda r: r[:119] + ["B,20,1,2,3,,5,0"] + r[120:],
        120,
        12,
        "field 6 (H3K4me3): empty field",
    ),
    "empty gene id": (lambda r: r[:119] + [",20,1,2,3,4,5,0"] + r[120:], 120, 1, "empty GeneID"),
    "non-integer BinID": (
        lambda r: r[:119] + ["B,x,1,2,3,4,5,0"] + r[120:],
        120,
        3,
        "field 2 (BinID): expected an integer, got 'x'",
    ),
    "gene with too few bins": (
        lambda r: r[:199] + r[200:],
        200,
        None,
        "gene 'B' has 99 bins, expected 100 (gene 'C' starts here)",
    ),
    "gene with too many bins": (
        lambda r: r[:200] + ["B,101,1,1,1,1,1,0"] + r[200:],
        201,
        None,
        "gene 'B' has more than 100 bins",
    ),
    "BinIDs out of order": (
        swap(110, 111),
        110,
        None,
        "BinIDs out of order in gene 'B': expected BinID 10, got 11",
    ),
    "label changes inside a gene": (
        lambda r: r[:149] + [r[149][:-1] + "1"] + r[150:],
        150,
        None,
        "label changes inside gene 'B' (from 0 to 1)",
    ),
    "label not 0/1": (
        lambda r: r[:149] + [r[149][:-1] + "2"] + r[150:],
        150,
        None,
        "field 8 (Label): expected 0 or 1, got '2'",
    ),
    "gene repeated non-consecutively": (
        lambda r: r + gene_rows("A"),
        301,
        1,
        "gene 'A' appears again (its first block starts at line 1)",
    ),
    "blank line inside": (lambda r: r[:100] + [""] + r[100:], 101, None, "empty line"),
    "file ends inside a gene": (
        lambda r: r[:250],
        250,
        None,
        "gene 'C' has 50 bins, expected 100 (the file ends)",
    ),
}


def check(err: cf.FormatError, path, line, column, text):
    msg = str(err)
    assert "\n" not in msg
    assert err.path == os.fspath(path)
    assert err.line == line
    assert msg.startswith(f"{path}:{line}:" if line else f"{path}: ")
    if column is not None:
        assert err.column == column and msg.startswith(f"{path}:{line}:{column}: ")
    assert text in msg, msg


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(tmp_path, name):
    transform, line, column, text = CASES[name]
    path = write_lines(tmp_path / "bad.csv", transform(base()))
    with pytest.raises(cf.FormatError) as e:
        cf.read_bins(path, bins=100)
    check(e.value, path, line, column, text)
    assert isinstance(e.value, ValueError)
    # The streaming reader reports the same error, whatever the batch size.
    for batch in (1, 2, 50):
        with pytest.raises(cf.FormatError) as e2:
            for _ in cf.iter_bins(path, batch, bins=100):
                pass
        assert str(e2.value) == str(e.value), (batch, str(e2.value))


def test_inferred_bins_say_so(tmp_path):
    path = write_lines(tmp_path / "bad.csv", base()[:199] + base()[200:])
    with pytest.raises(cf.FormatError, match="inferred from the first gene"):
        cf.read_bins(path)


def test_empty_file(tmp_path):
    for text in ("", "\n\n", "\r\n"):
        path = tmp_path / "empty.csv"
        path.write_text(text)
        with pytest.raises(cf.FormatError, match="empty file") as e:
            cf.read_bins(path)
        assert e.value.line is None
        with pytest.raises(cf.FormatError, match="empty file"):
            list(cf.iter_bins(path))


def test_unreadable_file(tmp_path):
    with pytest.raises(cf.FormatError, match="cannot open file: No such file") as e:
        cf.read_bins(tmp_path / "missing.csv")
    assert e.value.path.endswith("missing.csv") and e.value.line is None
    with pytest.raises(cf.FormatError, match="not a regular file"):
        cf.read_bins(tmp_path)
    with pytest.raises(cf.FormatError, match="cannot open"):
        list(cf.iter_bins(tmp_path / "missing.csv"))


def test_errors_across_parser_chunks_are_the_earliest(sim_genome, tmp_path):
    """Several threads, errors in different chunks: the earliest line always wins."""
    path, _ = sim_genome
    lines = path.read_text().splitlines()
    n = len(lines)
    cases = {
        # an error late in the file and one early: the early one is reported
        "two errors": ({n * 3 // 4: "X", n // 4 + 3: "Y"}, n // 4 + 3 + 1),
    }
    for label, (edits, want_line) in cases.items():
        rows = list(lines)
        for i, bad in edits.items():
            rows[i] = rows[i].rsplit(",", 1)[0] + "," + bad
        bad_path = write_lines(tmp_path / "bad.csv", rows)
        messages = set()
        for threads in (1, 2, 4, 8):
            with pytest.raises(cf.FormatError) as e:
                cf.read_bins(bad_path, threads=threads)
            assert e.value.line == want_line, (label, threads)
            messages.add(str(e.value))
        assert len(messages) == 1


def test_gene_cut_at_every_chunk_boundary(sim_genome, tmp_path):
    """A row dropped anywhere: every thread count reports the same, earliest line."""
    path, _ = sim_genome
    lines = path.read_text().splitlines()
    for drop in (len(lines) // 2 + 37, len(lines) // 3 + 50):
        rows = lines[:drop] + lines[drop + 1 :]
        bad_path = write_lines(tmp_path / "cut.csv", rows)
        got = {str(_raises(bad_path, t)) for t in (1, 2, 3, 4, 8)}
        assert len(got) == 1
        msg = got.pop()
        assert f":{drop + 1}: BinIDs out of order" in msg
        assert f"expected BinID {drop % 100 + 1}, got {drop % 100 + 2}" in msg


def _raises(path, threads):
    with pytest.raises(cf.FormatError) as e:
        cf.read_bins(path, threads=threads)
    return e.value


def test_runs_of_blank_lines_stream_in_bounded_batches(tmp_path):
    """Blank lines at the end are skipped without being kept (the streaming reader drops
    a run of them as it reads on); rows after such a run are still refused at the first
    blank line; a batch size whose line count would overflow is refused."""
    from chromaformer.formats.bincsv import BinStream

    rows = [r for g in range(6) for r in gene_rows(f"g{g}", bins=4)]
    ok = tmp_path / "ok.csv"
    ok.write_text("\n".join(rows) + "\n" + "\n" * 300000)
    for per in (1, 4, 5, 100):
        assert sum(len(b.gene_ids) for b in BinStream(ok, per)) == 6
    gap = tmp_path / "gap.csv"
    gap.write_text("\n".join(rows[:8]) + "\n" + "\n" * 300000 + "\n".join(rows[8:]) + "\n")
    for per in (1, 2, 3):
        with pytest.raises(cf.FormatError, match=r"gap.csv:9: empty line"):
            for _ in BinStream(gap, per):
                pass
    with pytest.raises(cf.DataError, match="genes per batch must be 1.."):
        BinStream(ok, 2**62)
    from chromaformer import _core

    with pytest.raises(ValueError, match="genes_per_batch must be"):
        _core.BatchReader(str(ok), 2**40)
