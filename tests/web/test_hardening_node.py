"""The runtimes outside Python under the hardening issue's findings: the Node.js scorer
never replaces a device, a FIFO or its input, tells apart two inputs of one stem, refuses
gzip followed by padding and a model card that is not its model's, and names a missing
``npm ci``; the page's server answers ``/%00`` and refuses to start without the page's
packages, and the page itself says so in Chromium instead of hanging."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ._web import CHROMIUM, WEB_DIR, browser_ready

pytestmark = pytest.mark.node

NODE_DIR = WEB_DIR.parent / "node"
SCORE_JS = NODE_DIR / "score.js"
MODEL = WEB_DIR.parents[1] / "chromaformer" / "pretrained" / "e116.onnx"
EXAMPLE = WEB_DIR / "examples" / "e116-valid-300.csv.gz"


def _node_ready() -> bool:
    ready = (
        shutil.which("node") is not None
        and (NODE_DIR / "node_modules" / "onnxruntime-node").is_dir()
    )
    if not ready and os.environ.get("CI"):
        raise AssertionError("CI must install export/node (see .ci/run)")
    return ready


needs_node = pytest.mark.skipif(not _node_ready(), reason="export/node not installed (npm ci)")


def _csv(path: Path, genes: int = 12) -> Path:
    with gzip.open(EXAMPLE, "rt") as fh:
        rows = [next(fh) for _ in range(genes * 21)]
    path.write_text("".join(rows))
    return path


def _node(*args, script=SCORE_JS, **kw):
    return subprocess.run(
        ["node", str(script), *map(str, args), "--model", str(kw.pop("model", MODEL))],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def _one_line(res) -> str:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    return err


@needs_node
def test_node_never_overwrites_its_input(tmp_path):
    src = _csv(tmp_path / "s.csv")
    before = src.read_bytes()
    link = tmp_path / "l.csv"
    link.symlink_to(src)
    hard = tmp_path / "h.csv"
    os.link(src, hard)
    for out in (src, link, hard):
        assert "is the input" in _one_line(_node(src, "-o", out))
    assert src.read_bytes() == before


@needs_node
def test_node_writes_into_a_fifo_and_a_device_and_through_a_symlink(tmp_path):
    src = _csv(tmp_path / "s.csv")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    res = _node(src, "-o", fifo, "--quiet")
    reader.join(60)
    assert res.returncode == 0, res.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got[0].count(b"\n") == 13
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        open(null, "wb").close()
    except OSError:
        pytest.skip("mknod is not allowed here (a private /dev/null is needed)")
    res = _node(src, "-o", null, "--quiet")
    assert res.returncode == 0, res.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    real = tmp_path / "real.tsv"
    real.write_text("old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.tsv"
    link.symlink_to(real)
    assert _node(src, "-o", link, "--quiet").returncode == 0
    assert link.is_symlink() and real.read_text().startswith("gene_id\tprobability")
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640


@needs_node
def test_node_writes_into_a_dev_stdout_redirect_without_replacing_it(tmp_path):
    src = _csv(tmp_path / "s.csv")
    out = tmp_path / "log.tsv"
    out.write_text("kept\n")
    with open(out, "ab") as fh:
        res = subprocess.run(
            ["node", str(SCORE_JS), str(src), "--model", str(MODEL), "-o", "/dev/stdout"],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "kept" and lines[1].startswith("gene_id\tprobability")
    assert len(lines) == 14 and "-> /dev/stdout" in res.stderr


@needs_node
def test_node_two_inputs_of_one_stem_and_a_trailing_slash(tmp_path):
    plain = _csv(tmp_path / "s.csv", 5)
    packed = tmp_path / "s.csv.gz"
    packed.write_bytes(gzip.compress(_csv(tmp_path / "x.csv", 7).read_bytes()))
    res = _node(plain, packed, "--quiet")
    assert res.returncode == 0, res.stderr
    assert len((tmp_path / "s.csv.scores.tsv").read_text().splitlines()) == 6
    assert len((tmp_path / "s.csv.gz.scores.tsv").read_text().splitlines()) == 8
    res = _node(plain, "-o", f"{tmp_path / 'dir'}/", "--quiet")
    assert res.returncode == 0 and (tmp_path / "dir" / "s.scores.tsv").is_file(), res.stderr


@needs_node
def test_node_refuses_gzip_padding_and_a_card_of_another_model(tmp_path):
    padded = tmp_path / "p.csv.gz"
    padded.write_bytes(gzip.compress(_csv(tmp_path / "x.csv").read_bytes()) + bytes(512))
    err = _one_line(_node(padded))
    assert "the bytes after the last gzip member are not gzip data" in err
    assert not (tmp_path / "p.scores.tsv").exists()
    model = tmp_path / "m.onnx"
    shutil.copy(MODEL, model)
    card = json.loads(MODEL.with_name("e116.model.json").read_text())
    card["schema"]["inputs"]["counts"]["marks"] = list(
        reversed(card["schema"]["inputs"]["counts"]["marks"])
    )
    (tmp_path / "m.model.json").write_text(json.dumps(card))
    err = _one_line(_node(tmp_path / "x.csv", model=model))
    assert "m.model.json: disagrees with" in err and "marks" in err


@needs_node
def test_node_caps_threads_and_names_a_missing_install(tmp_path):
    src = _csv(tmp_path / "s.csv")
    res = _node(src, "--threads", "100000", "-o", tmp_path / "a.tsv", "--quiet")
    assert res.returncode == 0 and "is more than the" in res.stderr, res.stderr
    bare = tmp_path / "node"
    bare.mkdir()
    shutil.copy(SCORE_JS, bare / "score.js")  # no node_modules beside it
    (tmp_path / "web" / "lib").mkdir(parents=True)
    err = _one_line(_node(src, script=bare / "score.js"))
    assert "onnxruntime-node is not installed" in err and "npm ci" in err


def _serve_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("chromaformer_web_serve", WEB_DIR / "serve.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bare_page(tmp_path: Path) -> Path:
    """The page's own files, without node_modules (npm ci not run)."""
    page = tmp_path / "web"
    page.mkdir()
    for name in ("index.html", "app.mjs", "worker.mjs", "style.css", "serve.py"):
        shutil.copy(WEB_DIR / name, page / name)
    shutil.copytree(WEB_DIR / "lib", page / "lib")
    return page


def test_the_pages_server_answers_a_nul_path_and_refuses_to_start_bare(tmp_path):
    httpd = _serve_module().server(str(WEB_DIR))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host, port = httpd.server_address[:2]
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://{host}:{port}/%00", timeout=30)
        assert err.value.code == 400
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=30) as r:
            assert r.status == 200
    finally:
        httpd.shutdown()
    page = _bare_page(tmp_path)
    res = subprocess.run(
        [sys.executable, str(page / "serve.py"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert "node_modules/onnxruntime-web is missing" in res.stderr and "npm ci" in res.stderr


@pytest.mark.skipif(not browser_ready(), reason="chromium or export/web not installed")
def test_the_page_says_what_is_missing_instead_of_hanging(tmp_path):
    page = _bare_page(tmp_path)
    httpd = _serve_module().server(str(page))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host, port = httpd.server_address[:2]
    out = tmp_path / "out"
    out.mkdir()
    plan = {
        "url": f"http://{host}:{port}/",
        "out": str(out),
        "chromium": CHROMIUM,
        "playwright": str(WEB_DIR / "node_modules" / "playwright-core"),
        "jobs": [],
        "expect_failure": True,
        "timeout_ms": 60000,
    }
    (out / "plan.json").write_text(json.dumps(plan))
    try:
        res = subprocess.run(
            [
                "node",
                str(WEB_DIR.parents[1] / "tests" / "web" / "drive.mjs"),
                str(out / "plan.json"),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        httpd.shutdown()
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "failed"
    assert "onnxruntime-web could not be loaded" in report["error"] and "npm ci" in report["error"]
