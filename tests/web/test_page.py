"""The browser page (export/web) in a real headless Chromium driven by playwright-core,
served from 127.0.0.1 by export/web/serve.py (cross-origin isolated, so onnxruntime-web
runs multi-threaded): it scores the bundled real example in one click and an uploaded
.csv.gz with an exported model, its downloaded TSV equals the Python scorer's within 1e-5,
its attributions equal chromaformer.explain's, a bad file shows the Python reader's
one-line error, no request leaves the page's origin. Screenshots are taken each run
(CHROMAFORMER_SCREENSHOTS=DIR keeps them)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pandas as pd
import pytest

import chromaformer as cf
from chromaformer.explain import attribute
from chromaformer.scoring import Scorer

from .._common import DEEPDIFF
from ._web import CHROMIUM, WEB_DIR, browser_ready

pytestmark = [pytest.mark.node, pytest.mark.browser]

EXAMPLE = WEB_DIR / "examples" / "e116-valid-300.csv.gz"
DRIVER = WEB_DIR.parent.parent / "tests" / "web" / "drive.mjs"


def serve(root):
    """export/web/serve.py's server of ``root`` on a free port, in a thread."""
    spec = importlib.util.spec_from_file_location("chromaformer_web_serve", WEB_DIR / "serve.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    httpd = mod.server(str(root))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def drive(url, out, jobs, **extra) -> dict:
    """Runs tests/web/drive.mjs on ``jobs``; its report.json."""
    plan = {
        "url": url,
        "out": str(out),
        "chromium": CHROMIUM,
        "playwright": str(WEB_DIR / "node_modules" / "playwright-core"),
        "jobs": jobs,
        **extra,
    }
    (out / "plan.json").write_text(json.dumps(plan))
    res = subprocess.run(
        ["node", str(DRIVER), str(out / "plan.json")], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


def _same_tsv(page_tsv, python_tsv):
    a = pd.read_csv(page_tsv, sep="\t", dtype={"gene_id": str})
    b = pd.read_csv(python_tsv, sep="\t", dtype={"gene_id": str})
    assert list(a.columns) == list(b.columns) == ["gene_id", "probability", "label"]
    assert a.gene_id.tolist() == b.gene_id.tolist()
    assert a.label.tolist() == b.label.tolist()
    diff = float(np.abs(a.probability - b.probability).max())
    assert diff <= 1e-5, diff
    return diff


@pytest.mark.skipif(not browser_ready(), reason="chromium or export/web not installed")
def test_page_scores_explains_and_fails_like_the_python_scorer(exported, tmp_path):
    report_h = exported["hybrid"][0]
    hybrid = report_h.path
    card = report_h.card
    plain = DEEPDIFF / "Cell1" / "classification" / "test.csv"
    upload = tmp_path / "cell1-test.csv.gz"
    upload.write_bytes(gzip.compress(plain.read_bytes()))
    lines = plain.read_text().splitlines()
    parts = lines[150].split(",")  # line 151: field 5 (H3K4me1) says NA
    parts[4] = "NA"
    lines[150] = ",".join(parts)
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    gene = plain.read_text().splitlines()[1000].split(",")[0]  # gene 11
    cut = tmp_path / "cut.csv.gz"  # 50 whole genes, then a gzip member cut short
    whole = ("\n".join(plain.read_text().splitlines()[:5000]) + "\n").encode()
    cut.write_bytes(gzip.compress(whole) + gzip.compress(plain.read_bytes()[len(whole) :])[:80])

    out = tmp_path / "page"
    out.mkdir()
    httpd = serve(WEB_DIR)
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        report = drive(
            url,
            out,
            [
                {"name": "example", "example": True, "screenshot": True},
                {
                    "name": "upload",
                    "csv": str(upload),
                    "model": str(hybrid),
                    "card": str(card),
                    "explain": gene,
                    "screenshot": True,
                },
                {"name": "bad", "csv": str(bad), "model": str(hybrid), "screenshot": True},
                {"name": "cut", "csv": str(cut), "model": str(hybrid)},
            ],
            empty_screenshot=True,
        )
    finally:
        httpd.shutdown()
    keep = os.environ.get("CHROMAFORMER_SCREENSHOTS")
    if keep:
        for png in out.glob("*.png"):
            shutil.copy(png, keep)
    for png in ("empty", "example", "upload", "bad"):
        assert (out / f"{png}.png").stat().st_size > 10_000  # a rendered page, not a blank
    assert report["isolated"] is True  # serve.py's headers: multi-threaded WASM
    assert report["console"] == [] and report["foreign_requests"] == []
    example, up, err, truncated = report["jobs"]

    # one click: the bundled real genes and model, as the Python scorer scores them
    assert example["state"] == "scored"
    assert example["download_name"] == "e116-valid-300.scores.tsv"
    res = cf.score(Scorer("e116"), EXAMPLE, tmp_path / "example.py.tsv")
    _same_tsv(out / "example.tsv", tmp_path / "example.py.tsv")
    assert f"{res.metrics['auroc']:.4f}AUROC" in example["summary"]

    # an uploaded .csv.gz with the model and its card; one gene explained
    assert up["state"] == "scored"
    _same_tsv(out / "upload.tsv", cf.score(Scorer(hybrid), plain, tmp_path / "up.py.tsv").output)
    got = up["explained"]
    assert got["attention"] is True  # the hybrid has attention outputs: drawn too
    b = cf.read_bins(plain, integer_counts=False)
    k = list(b.gene_ids).index(gene)
    att = attribute(Scorer(hybrid), {"counts": b.counts[k : k + 1]})
    assert got["window"] == 5
    np.testing.assert_allclose(got["value"], att.value[0], atol=1e-4)
    np.testing.assert_allclose(got["shapley"], att.shapley[0], atol=1e-4)
    np.testing.assert_allclose(got["occlusion"], att.occlusion[0].ravel(), atol=1e-4)
    assert up["title"].startswith(f"{gene}: P(expressed) ")

    # a bad line: the one-line error of the Python reader, named by the file's name
    assert err["state"] == "error"
    with pytest.raises(cf.FormatError) as py_err:
        cf.read_bins(bad, marks=list(cf.BENCHMARK_MARKS), bins=100, integer_counts=False)
    assert err["error"] == str(py_err.value).replace(str(bad), "bad.csv.gz")
    assert err["error"].startswith("bad.csv.gz:151:") and "\n" not in err["error"]

    # a .gz cut at a gene boundary: an error, not a table of the genes before the cut
    assert truncated["state"] == "error"
    assert truncated["error"].startswith("cut.csv.gz: invalid gzip data: ")
