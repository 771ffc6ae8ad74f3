"""The bin-CSV reader of the browser page and the Node scorer (the C++ reader built to
WebAssembly, export/web/lib/wasmreader.mjs: no zlib, its own number parser, its input
streamed through a staging file) is the Python reader: on every rule of the format
(docs/guide/data-format.md) both accept the same files with the same values, and reject the same
files with the same one-line message (file, line, column, what was expected)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import chromaformer as cf

from ._web import WEB_DIR, node_ready

pytestmark = pytest.mark.node

MARKS = list(cf.BENCHMARK_MARKS)
BINS = 3


def _good() -> list[str]:
    rng = np.random.default_rng(3)
    rows = []
    for g, label in zip(("G1", "G2", "G3", "G4"), (1, 0, 0, 1)):
        for b in range(1, BINS + 1):
            counts = ",".join(str(int(v)) for v in rng.integers(0, 30, len(MARKS)))
            rows.append(f"{g},{b},{counts},{label}")
    return rows


def _cases() -> dict[str, bytes]:
    good = _good()

    def text(rows, end="\n"):
        return ("\n".join(rows) + end).encode()

    def edit(i, value):
        rows = list(good)
        rows[i] = value
        return text(rows)

    def field(i, k, value):
        parts = good[i].split(",")
        parts[k] = value
        return edit(i, ",".join(parts))

    return {
        # accepted
        "plain": text(good),
        "crlf": text(good).replace(b"\n", b"\r\n"),
        "bom": b"\xef\xbb\xbf" + text(good),
        "no final newline": text(good, end=""),
        "trailing blank lines": text(good) + b"\n\r\n\n",
        "decimal count": field(4, 3, "1.5"),
        "exponent count": field(5, 2, "2e3"),
        "largest float32 count": field(5, 4, "3.4e38"),
        "non-ASCII gene ids": text([r.replace("G", "Gé", 1) for r in good]),
        # rejected
        "header row": text(["GeneID,BinID," + ",".join(MARKS) + ",Label"] + good),
        "extra column": edit(4, good[4] + ",7"),
        "missing column": edit(3, good[3].rsplit(",", 1)[0]),
        "non-integer BinID": field(1, 1, "2.0"),
        "negative count": field(2, 4, "-1"),
        "NA count": field(2, 3, "NA"),
        "empty count": field(6, 2, ""),
        "plus sign": field(6, 2, "+4"),
        "infinite count": field(6, 5, "inf"),
        "count beyond float32": field(6, 5, "1e39"),
        "blank first line": b"\n" + text(good),
        "too few bins": text(good[:4] + good[5:]),
        "too many bins": text(good[:3] + [good[2]] + good[3:]),
        "BinIDs out of order": text(good[:1] + [good[2], good[1]] + good[3:]),
        "label not 0/1": field(7, 7, "2"),
        "label changes in a gene": field(8, 7, "1"),
        "gene repeated": text(good + good[:3]),
        "empty file": b"",
        "only blank lines": b"\n\n",
        "blank line inside": text(good[:5] + [""] + good[5:]),
        "last gene cut": text(good[:-1]),
        "empty GeneID": field(9, 0, ""),
        "long field": field(1, 3, "x" * 40),
        "two CRs": edit(4, good[4] + "\r\r"),
        "tab in a gene id": text(
            good[:3] + [r.replace("G2", "G\t2") for r in good[3:6]] + good[6:]
        ),
        "NUL in a gene id": text(
            good[:6] + [r.replace("G3", "G\x003") for r in good[6:9]] + good[9:]
        ),
        "invalid UTF-8 in a gene id": text(good[:3]).replace(b"G1", b"G\xff1", 3) + text(good[3:]),
        "long non-ASCII field": field(1, 3, "\u00e9" * 30),
        # numbers as std::from_chars reads them (WebAssembly has its own parser for them)
        **{
            f"count {v!r}": field(4, 3, v)
            for v in (
                ".5",
                "5.",
                "1.5e+3",
                "2E-2",
                "-0",
                "0.0e0",
                "1e-400",
                "1e",
                "1e+",
                ".",
                "-",
                "0x10",
                " 5",
                "5 ",
                "NaN",
                "-inf",
                "Infinity",
                "nan(x)",
                "1e999",
                "-1e999",
                "1.2.3",
                "1e5.5",
                "4_0",
            )
        },
    }


@pytest.mark.skipif(not node_ready(), reason="export/web not installed (cd export/web && npm ci)")
def test_wasm_reader_is_as_strict_as_the_python_reader(tmp_path):
    cases = _cases()
    files = []
    for k, data in enumerate(cases.values()):
        p = tmp_path / f"case{k:02d}.csv"
        p.write_bytes(data)
        files.append(p)
    # 5-byte chunks: lines, CRLFs and the BOM split across chunks read the same
    for chunk in (65536, 5):
        _compare(cases, files, _read_js(tmp_path, files, chunk))


def _read_js(tmp_path, files, chunk_bytes):
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "marks": MARKS,
                "bins": BINS,
                "files": [str(f) for f in files],
                "chunk_bytes": chunk_bytes,
            }
        )
    )
    res = subprocess.run(
        ["node", str(WEB_DIR.parent.parent / "tests" / "web" / "read_bins.mjs"), str(plan)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _compare(cases, files, js):
    accepted = rejected = 0
    for (name, _), path, got in zip(cases.items(), files, js):
        try:
            b = cf.read_bins(path, bins=BINS, marks=MARKS, integer_counts=False)
        except cf.FormatError as err:
            assert not got["ok"], f"{name}: the C++ reader rejects it ({err}), JS accepts it"
            assert got["message"] == str(err), name
            assert "\n" not in got["message"]
            rejected += 1
            continue
        assert got["ok"], f"{name}: the C++ reader accepts it, JS says {got.get('message')}"
        assert got["ids"] == list(b.gene_ids), name
        assert got["labels"] == b.labels.tolist(), name
        np.testing.assert_array_equal(np.array(got["counts"], np.float32), b.counts.ravel())
        accepted += 1
    assert (accepted, rejected) == (14, 46)
