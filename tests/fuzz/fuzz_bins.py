"""Fuzz the bin-CSV readers with atheris: whatever the bytes, every reader (the whole-file
reader with 1 and 3 threads, the streaming reader with batches of 1 and 4 genes) must
either read the same genes, counts and labels, or raise the same one-line FormatError;
anything else (a crash, another exception, a disagreement) is a finding.

Each input is one flags byte and a body. The flags choose: gzip the body (bit 0), as two
members (bit 1), cut the gzip file short (bit 2), tiny chunk/block/read sizes so that a
few hundred bytes reach the multi-threaded, refill and boundary paths (bit 3), and
integer-only counts (bit 4).

With CHROMAFORMER_LIB naming an installed libchromaformer.so, its C reader
(chromaformer_reader_open/next, called through ctypes in batches of 3 genes) is a fifth
reader that must agree, message for message.

    python tests/fuzz/fuzz_bins.py NEW_DIR tests/fuzz/corpus -runs=6000 -seed=1    # CI
    python tests/fuzz/fuzz_bins.py NEW_DIR tests/fuzz/corpus -max_total_time=3600  # by hand
    python tests/fuzz/fuzz_bins.py --replay tests/fuzz/corpus   # each file once, no atheris
                                                                 # (.ci/sanitize runs this)

libFuzzer writes inputs that reach new code into the first folder (keep the repository's
corpus second). The seed corpus: rows of the bundled real samples and small edge cases.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile

import numpy as np

REPLAY = "--replay" in sys.argv
if REPLAY:  # under a sanitizer build: no fuzzing engine, the same checks
    import chromaformer as cf
    from chromaformer import _core
else:
    import atheris

    with atheris.instrument_imports():
        import chromaformer as cf
        from chromaformer import _core

PATH = os.path.join(tempfile.mkdtemp(prefix="cf-fuzz-"), "input.csv")
C_LIB = None
if os.environ.get("CHROMAFORMER_LIB"):
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "capi", os.path.join(os.path.dirname(__file__), "..", "native", "capi.py")
    )
    assert _spec is not None and _spec.loader is not None
    _capi = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_capi)
    C_LIB = _capi.Lib(os.environ["CHROMAFORMER_LIB"])
    C_ERROR = _capi.CError
TINY = dict(min_chunk=7, block=5, read=3)


def _body(flags: int, body: bytes) -> bytes:
    if not flags & 1:
        return body
    if flags & 2:
        half = len(body) // 2
        data = gzip.compress(body[:half], 1, mtime=0) + gzip.compress(body[half:], 1, mtime=0)
    else:
        data = gzip.compress(body, 6, mtime=0)
    if flags & 4:
        data = data[: max(0, len(data) - 1 - (flags >> 5))]
    return data


def _outcome(read):
    try:
        got = read()
    except cf.FormatError as err:
        text = str(err)
        assert "\n" not in text and text.startswith(PATH), text
        return ("error", text)
    except Exception as err:
        if C_LIB is None or not isinstance(err, C_ERROR):
            raise
        text = str(err)
        assert "\n" not in text and text.startswith(PATH), text
        return ("error", text)
    if isinstance(got, tuple):  # the C reader's batches
        if not got[0]:
            return ("error", "no batches")
        return got[1:]
    if isinstance(got, list):
        if not got:
            return ("error", "no batches")
        return (
            "ok",
            np.concatenate([b.counts for b in got]).tobytes(),
            np.concatenate([b.labels for b in got]).tobytes(),
            [g for b in got for g in b.gene_ids],
        )
    return ("ok", got.counts.tobytes(), got.labels.tobytes(), list(got.gene_ids))


def test_one_input(data: bytes) -> None:
    if not data:
        return
    flags, body = data[0], data[1:]
    with open(PATH, "wb") as fh:
        fh.write(_body(flags, body))
    ints = bool(flags & 16)
    _core._set_sizes(**TINY) if flags & 8 else _core._set_sizes()
    readers = {
        "read_bins, 1 thread": lambda: cf.read_bins(PATH, threads=1, integer_counts=ints),
        "read_bins, 3 threads": lambda: cf.read_bins(PATH, threads=3, integer_counts=ints),
        "iter_bins, 1 gene": lambda: list(cf.iter_bins(PATH, 1, threads=2, integer_counts=ints)),
        "iter_bins, 4 genes": lambda: list(cf.iter_bins(PATH, 4, threads=1, integer_counts=ints)),
    }
    if C_LIB is not None:
        readers["C reader, 3 genes"] = lambda: _c_read(ints)
    outcomes = {name: _outcome(read) for name, read in readers.items()}
    if flags & 5 == 5:  # a cut gzip file: every reader must refuse it. Which error comes
        # first differs: the whole-file reader sees the cut before any line, a streaming
        # reader the bad lines of batches it completed before reaching the cut.
        for name, got in outcomes.items():
            assert got[0] == "error", f"{name} read a cut gzip file without error"
        return
    first = next(iter(outcomes.values()))
    for name, got in outcomes.items():
        if got != first:
            raise AssertionError(
                f"readers disagree: read_bins (1 thread) {first[0]} "
                f"{first[1] if first[0] == 'error' else ''} / {name} {got[0]} "
                f"{got[1] if got[0] == 'error' else ''}"
            )


def _c_read(ints: bool) -> tuple:
    """The C reader's batches as (any batch, counts, labels, ids)."""
    assert C_LIB is not None
    parts = list(C_LIB.read(PATH, 3, threads=2, integer_counts=ints, marks=cf.BENCHMARK_MARKS))
    if not parts:
        return (False,)
    return (
        True,
        "ok",
        np.concatenate([p[0] for p in parts]).tobytes(),
        np.concatenate([p[1] for p in parts]).tobytes(),
        [g for p in parts for g in p[2]],
    )


def replay(folders: list[str]) -> None:
    files = sorted(os.path.join(d, f) for d in folders for f in os.listdir(d))
    for path in files:
        with open(path, "rb") as fh:
            test_one_input(fh.read())
    print(f"replayed {len(files)} inputs: every reader agreed")


if __name__ == "__main__":
    if REPLAY:
        replay([a for a in sys.argv[1:] if a != "--replay"])
    else:
        atheris.Setup(sys.argv, test_one_input)
        atheris.Fuzz()
