"""read_bins / iter_bins / write_bins against pandas, on real and simulated files."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import chromaformer as cf

from .._common import DEEPDIFF, TOY, gene_rows, pandas_reference, write_lines


def assert_same(bins: cf.Bins, ref) -> None:
    counts, labels, ids = ref
    assert bins.counts.dtype == np.float32 and bins.counts.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(bins.counts, counts)
    np.testing.assert_array_equal(bins.labels, labels)
    np.testing.assert_array_equal(bins.gene_ids, ids)


def test_real_files_equal_pandas(real_files):
    for path in real_files:
        got = cf.read_bins(path)
        assert got.counts.shape[1:] == (100, 5)
        assert got.marks == cf.BENCHMARK_MARKS
        assert_same(got, pandas_reference(path))


def test_real_gene_ids_keep_their_form():
    toy = cf.read_bins(TOY / "train.csv")
    assert toy.gene_ids[0] == "000003"  # zero padding survives
    cell = cf.read_bins(DEEPDIFF / "Cell1" / "classification" / "train.csv")
    assert all(g.startswith("ENSG") and len(g) == 15 for g in cell.gene_ids)
    assert cell.n_genes == 200


def test_simulated_equals_pandas_and_source(sim_genome):
    path, sim = sim_genome
    got = cf.read_bins(path)
    assert_same(got, pandas_reference(path))
    np.testing.assert_array_equal(got.counts, sim.counts)
    np.testing.assert_array_equal(got.gene_ids, sim.gene_ids)


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threads_equal_single_thread(sim_genome, threads):
    path, _ = sim_genome
    one = cf.read_bins(path, threads=1)
    many = cf.read_bins(path, threads=threads)
    np.testing.assert_array_equal(one.counts, many.counts)
    np.testing.assert_array_equal(one.labels, many.labels)
    np.testing.assert_array_equal(one.gene_ids, many.gene_ids)


def test_gzip_equals_plain(sim_genome, tmp_path):
    path, sim = sim_genome
    gz = tmp_path / "genome.csv.gz"
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    got = cf.read_bins(gz)
    np.testing.assert_array_equal(got.counts, sim.counts)
    np.testing.assert_array_equal(got.gene_ids, sim.gene_ids)


def test_concatenated_gzip_members(tmp_path):
    a, b = gene_rows("A"), gene_rows("B", label=0)
    gz = tmp_path / "two.csv.gz"
    gz.write_bytes(
        gzip.compress(("\n".join(a) + "\n").encode())
        + gzip.compress(("\n".join(b) + "\n").encode())
    )
    got = cf.read_bins(gz)
    assert list(got.gene_ids) == ["A", "B"] and list(got.labels) == [1, 0]


def test_truncated_gzip_is_an_error(sim_genome, tmp_path):
    path, _ = sim_genome
    data = gzip.compress(path.read_bytes()[:100000])
    bad = tmp_path / "cut.csv.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(cf.FormatError, match="gzip"):
        cf.read_bins(bad)


def _damaged_gzips(raw: bytes) -> dict[str, tuple[bytes, str]]:
    """Damaged .csv.gz files of ``raw`` (whole genes), with the message each must give."""
    lines = raw.split(b"\n")
    genes = b"\n".join(lines[:500]) + b"\n"  # 5 whole genes of 100 bins
    gz = gzip.compress(raw)
    cut = "invalid gzip data: the file is truncated"
    return {
        # the streaming reader used to stop quietly here and score the genes before the cut
        "cut at a gene boundary": (
            gzip.compress(genes) + gzip.compress(raw[len(genes) :])[:60],
            cut,
        ),
        "trailer missing": (gz[:-8], cut),
        "trailer half there": (gz[:-3], cut),
        "cut inside a block": (gz[: len(gz) // 2], cut),
        "junk after the last member": (gz + b"junk", "not gzip data"),
        "corrupt block": (gz[:400] + bytes([gz[400] ^ 0xFF]) + gz[401:], "invalid gzip data: "),
    }


@pytest.mark.parametrize("case", range(6))
def test_damaged_gzip_is_an_error_in_every_reader(sim_genome, tmp_path, case):
    path, _ = sim_genome
    raw = b"\n".join(path.read_bytes().split(b"\n")[:3000]) + b"\n"  # 30 genes
    name, (data, message) = list(_damaged_gzips(raw).items())[case]
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(data)
    for read in (
        lambda: cf.read_bins(bad),
        lambda: list(cf.iter_bins(bad, 4)),  # small batches: the error comes after some
        lambda: list(cf.iter_bins(bad, 1000)),
    ):
        with pytest.raises(cf.FormatError) as err:
            read()
        assert str(err.value).startswith(f"{bad}: ") and message in str(err.value), name
        assert "\n" not in str(err.value)


def test_crlf_missing_final_newline_trailing_blank_lines_and_bom(tmp_path):
    rows = gene_rows("G1") + gene_rows("G2", label=0)
    ref = cf.read_bins(write_lines(tmp_path / "ref.csv", rows))
    variants = {
        "crlf.csv": "\r\n".join(rows) + "\r\n",
        "nofinal.csv": "\n".join(rows),
        "crlf_nofinal.csv": "\r\n".join(rows),
        "blank.csv": "\n".join(rows) + "\n\n\r\n\n",
        "bom.csv": "\ufeff" + "\n".join(rows) + "\n",
    }
    for name, text in variants.items():
        (tmp_path / name).write_bytes(text.encode())
        got = cf.read_bins(tmp_path / name)
        np.testing.assert_array_equal(got.counts, ref.counts, err_msg=name)
        assert list(got.gene_ids) == ["G1", "G2"], name
        for batch_size in (1, 2):
            batches = list(cf.iter_bins(tmp_path / name, batch_size))
            assert sum(b.n_genes for b in batches) == 2, name


def test_bins_and_marks_are_inferred_or_required(tmp_path):
    path = write_lines(
        tmp_path / "seven.csv", gene_rows("A", bins=40, marks=7) + gene_rows("B", bins=40, marks=7)
    )
    got = cf.read_bins(path)
    assert got.counts.shape == (2, 40, 7)
    assert got.marks == tuple(f"mark{i}" for i in range(1, 8))
    named = cf.read_bins(path, marks=list("abcdefg"), bins=40)
    assert named.marks == tuple("abcdefg")
    with pytest.raises(cf.FormatError, match=r"expected 8 columns .* found 10") as e:
        cf.read_bins(path, marks=5)
    assert e.value.line == 1
    with pytest.raises(cf.FormatError, match="has 40 bins, expected 100") as e:
        cf.read_bins(path, bins=100)
    assert e.value.line == 41


def test_decimal_counts_when_allowed(tmp_path):
    rows = gene_rows("A")
    rows[3] = "A,4,1.5,0.25,2e-1,6,7,1"
    path = write_lines(tmp_path / "mean.csv", rows)
    with pytest.raises(cf.FormatError, match="integer count") as e:
        cf.read_bins(path)
    assert e.value.line == 4
    got = cf.read_bins(path, integer_counts=False)
    assert got.counts[0, 3].tolist() == [1.5, 0.25, np.float32(0.2), 6, 7]
    rows[3] = "A,4,-0.5,0,0,6,7,1"
    with pytest.raises(cf.FormatError, match="negative count"):
        cf.read_bins(write_lines(tmp_path / "neg.csv", rows), integer_counts=False)


@pytest.mark.parametrize("batch", [1, 7, 1000, 5000])
def test_iter_bins_equals_read_bins(sim_genome, tmp_path, batch):
    path, sim = sim_genome
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
    for source in (path, gz):
        parts = list(cf.iter_bins(source, batch, threads=2))
        assert all(p.n_genes == batch for p in parts[:-1])
        np.testing.assert_array_equal(np.concatenate([p.counts for p in parts]), sim.counts)
        np.testing.assert_array_equal(np.concatenate([p.gene_ids for p in parts]), sim.gene_ids)
        np.testing.assert_array_equal(np.concatenate([p.labels for p in parts]), sim.labels)


def test_write_bins_round_trip_and_gzip(tmp_path):
    sim = cf.simulate_genome(50, bins=20, seed=3, id_style="numeric")
    for name in ("a.csv", "a.csv.gz"):
        cf.write_bins(tmp_path / name, sim.counts, sim.labels, sim.gene_ids)
        back = cf.read_bins(tmp_path / name)
        np.testing.assert_array_equal(back.counts, sim.counts)
        assert back.gene_ids[0] == "000001"
    assert (tmp_path / "a.csv.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_write_bins_is_atomic(tmp_path, monkeypatch):
    sim = cf.simulate_genome(5, bins=10, seed=3)
    target = tmp_path / "out.csv.gz"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gzip, "open", broken)
    with pytest.raises(OSError, match="disk full"):
        cf.write_bins(target, sim.counts, sim.labels, sim.gene_ids)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dup_first", [True, False])
def test_every_reader_reports_the_earliest_of_a_repeated_id_and_a_bad_line(tmp_path, dup_first):
    rows = []
    for g in range(40):
        rows += gene_rows(f"g{g}", bins=10)
    rows[50:60] = gene_rows("g1", bins=10)  # gene 6 repeats g1: line 51
    bad = 301 if dup_first else 31  # a negative count in gene 31 or in gene 4
    rows[bad - 1] = rows[bad - 1].rsplit(",", 3)[0] + ",-1,0,1"
    src = write_lines(tmp_path / "two.csv", rows)
    want = f"{src}:51:1: gene 'g1' appears again" if dup_first else f"{src}:{bad}:"
    readers = [lambda t: cf.read_bins(src, bins=10, threads=t)]
    readers += [lambda t, n=n: list(cf.iter_bins(src, n, bins=10, threads=t)) for n in (1, 4, 1000)]
    for read in readers:
        for threads in (1, 2):
            with pytest.raises(cf.FormatError) as err:
                read(threads)
            assert str(err.value).startswith(want), str(err.value)


def test_streaming_a_line_that_never_ends_is_an_error_in_bounded_memory(tmp_path):
    src = tmp_path / "noline.csv"
    src.write_bytes(b"G1,1," + b"1" * (17 << 20))  # 17 MiB and no line end
    with pytest.raises(cf.FormatError) as err:
        list(cf.iter_bins(src, 64))
    assert str(err.value) == (
        f"{src}:1: a line of more than 16 MiB without a line end: not a row of the bin CSV"
    )


@pytest.fixture
def tiny_sizes():
    """The readers' chunk, block and read sizes shrunk to a few bytes, so that a small
    file is split across threads and refilled many times (restored afterwards)."""
    from chromaformer import _core

    _core._set_sizes(min_chunk=97, block=61, read=13)
    yield
    _core._set_sizes()


def test_tiny_chunks_and_blocks_read_the_same(sim_genome, tmp_path, tiny_sizes):
    path, sim = sim_genome
    small = tmp_path / "small.csv"
    small.write_bytes(b"\n".join(path.read_bytes().split(b"\n")[:20000]) + b"\n")  # 200 genes
    gz = tmp_path / "small.csv.gz"
    gz.write_bytes(gzip.compress(small.read_bytes()) + b"")
    for source in (small, gz):
        for threads in (1, 2, 5):
            got = cf.read_bins(source, threads=threads)
            np.testing.assert_array_equal(got.counts, sim.counts[:200])
            np.testing.assert_array_equal(got.gene_ids, sim.gene_ids[:200])
        for batch in (1, 7):
            parts = list(cf.iter_bins(source, batch, threads=3))
            np.testing.assert_array_equal(
                np.concatenate([p.counts for p in parts]), sim.counts[:200]
            )
    bad = small.read_bytes().split(b"\n")
    bad[12345] = bad[12345].replace(b",", b",x", 1)  # line 12346, inside a middle chunk
    (tmp_path / "bad.csv").write_bytes(b"\n".join(bad))
    messages = set()
    for read in (
        lambda: cf.read_bins(tmp_path / "bad.csv", threads=4),
        lambda: list(cf.iter_bins(tmp_path / "bad.csv", 3, threads=2)),
    ):
        with pytest.raises(cf.FormatError) as err:
            read()
        messages.add(str(err.value))
    assert len(messages) == 1 and ":12346:" in messages.pop()


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_trailing_blank_lines_after_a_full_batch(tmp_path, batch):
    # found by tests/fuzz: when the genes filled the last batch exactly, the next batch
    # was only blank lines and the streaming reader called them "empty line"
    src = tmp_path / "blank.csv"
    src.write_text("A,1,0,1,1,0,1,0\nB,1,0,1,1,0,1,1\n\n\n\r\n")
    parts = list(cf.iter_bins(src, batch))
    assert [g for p in parts for g in p.gene_ids] == ["A", "B"] == list(cf.read_bins(src).gene_ids)


def test_numbers_and_sizes_at_their_limits(tmp_path):
    """Counts beyond 2^24 round to float32 as documented; a 25-digit BinID is an error
    (the sanitizer step replays this: no signed overflow); bins or marks beyond 2^31 from
    Python are a ValueError, not an overflow in the readers."""
    path = write_lines(tmp_path / "big.csv", ["G1,1,16777217,0,0,0,0,1", "G1,2,1,1,1,1,1,1"])
    for got in (cf.read_bins(path).counts, next(iter(cf.iter_bins(path, 4))).counts):
        assert got.shape == (1, 2, 5) and got[0, 0, 0] == 16777216.0
    long_id = write_lines(
        tmp_path / "bid.csv", ["G1,1,1,1,1,1,1,1", "G1,1234567890123456789012345,1,1,1,1,1,1"]
    )
    for read in (lambda: cf.read_bins(long_id), lambda: list(cf.iter_bins(long_id, 1))):
        with pytest.raises(cf.FormatError, match=r"bid.csv:2:4: field 2 \(BinID\)"):
            read()
    for kw, what in ((dict(bins=2**62), "bins"), (dict(marks=2**40), "marks")):
        with pytest.raises(ValueError, match=f"{what}: expected at most 2\\^31"):
            cf.read_bins(path, **kw)
        with pytest.raises(ValueError, match=f"{what}: expected at most 2\\^31"):
            list(cf.iter_bins(path, 4, **kw))
