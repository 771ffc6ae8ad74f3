"""Docs that run and say what is: every Python and shell example in README.md, the guide
and the reference is executed (each page's examples in order, in one fresh folder); the
public API table matches ``chromaformer.__all__``; the README stays a newcomer's page
(<= 10 KB); the generated pages (docs/benchmarks, docs/reference/cli.md) equal their
generators' output; no page of the README, guide or reference carries a diary entry or
a machine timing, and every measured number in the README sits by a link to the
benchmark page it comes from; every relative link resolves."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import chromaformer as cf

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs" / "guide").glob("*.md")),
    *sorted((ROOT / "docs" / "reference").glob("*.md")),
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
RUN = {"python", "bash"}


def examples(page: Path) -> list[tuple[str, str]]:
    return [(lang, code) for lang, code in FENCE.findall(page.read_text()) if lang in RUN]


def _is_setup(code: str) -> bool:
    return code.lstrip().startswith("# 1. install")


def test_every_example_fence_is_runnable_or_plain_text():
    """A fence is python, bash (run below) or text (output shown): nothing unrun hides."""
    for page in PAGES:
        for lang, _ in FENCE.findall(page.read_text()):
            assert lang in RUN | {"text"}, f"{page.name}: a ```{lang} block"


def test_readme_setup_commands_are_what_ci_runs():
    (lang, setup), *_ = [(lang, c) for lang, c in examples(ROOT / "README.md") if _is_setup(c)]
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install torch==2.13.0 -e ".[train,onnx,test,workflow]"' in setup
    assert '"torch==2.13.0"' in ci and '-e ".[train,onnx,test' in ci
    assert "python -m pytest -q" in setup and "-m pytest -q" in ci
    assert "chromaformer demo" in setup  # run by tests/cli/test_cli.py::test_demo_*


def test_readme_is_short_and_the_api_table_is_all():
    assert len((ROOT / "README.md").read_bytes()) <= 10 * 1024
    table = (ROOT / "docs" / "reference" / "python-api.md").read_text().split("```python")[0]
    named = {
        n
        for row in table.splitlines()
        if row.startswith("| `")
        for n in re.findall(r"`(\w+)`", row.split("|")[1])
    }
    assert named == set(cf.__all__)
    for name in cf.__all__:
        assert getattr(cf, name) is not None, name


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_examples_run(page, tmp_path):
    blocks = [(lang, code) for lang, code in examples(page) if not _is_setup(code)]
    if not blocks:
        pytest.skip("no examples")
    names = ["export", "benchmarks", "workflow"]  # the repository's tools
    if page.name == "native.md":  # and what a build from a clone reads
        names += ["examples", "csrc", ".ci", "chromaformer", "CMakeLists.txt", "setup.py"]
        names += ["pyproject.toml", "README.md", "LICENSE"]
    for name in names:
        (tmp_path / name).symlink_to(ROOT / name)
    for k, (lang, code) in enumerate(blocks, 1):
        if "node " in code and shutil.which("node") is None and not os.environ.get("CI"):
            pytest.skip("Node.js is not installed here (CI runs this)")
        if (
            "auditwheel " in code
            and shutil.which("auditwheel") is None
            and not os.environ.get("CI")
        ):
            pytest.skip("auditwheel is not installed here (.ci/run installs it)")
        if (
            "export/wasm/build" in code
            and shutil.which("emcc") is None
            and not os.environ.get("CI")
        ):
            pytest.skip("emscripten is not installed here (.ci/run installs it)")
        if "snakemake " in code and shutil.which("snakemake") is None and not os.environ.get("CI"):
            pytest.skip("Snakemake is not installed here (the workflow extra; CI runs this)")
        cmd = (
            [sys.executable, "-c", code]
            if lang == "python"
            else ["bash", "-euo", "pipefail", "-c", code]
        )
        res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert res.returncode == 0, (
            f"{page.name}, example {k} ({lang}) failed:\n{code}\n"
            f"--- stdout\n{res.stdout[-2000:]}\n"
            f"--- stderr\n{res.stderr[-3000:]}"
        )


def _load_report():
    import importlib.util

    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_pages_are_what_report_py_writes():
    report = _load_report()
    pages = report.render()
    assert {"README.md", "demo.md", "accuracy.md", "parse.md", "score.md", "gpu.md"} <= set(pages)
    on_disk = {p.name: p.read_text() for p in (ROOT / "docs" / "benchmarks").glob("*.md")}
    assert on_disk == pages, "run: python benchmarks/report.py"
    # each section names its machine, command and result file, and the file exists
    for name, text in pages.items():
        if name != "README.md":
            assert text.startswith(report.HEADER)
            for file in re.findall(r"result file: `([^`]+)`", text):
                assert (ROOT / file).is_file(), (name, file)
            assert text.count("- command: `") == text.count("result file: `") >= 1, name


def test_the_cli_reference_is_what_the_commands_print():
    from chromaformer.cli.reference import render

    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    assert page == render(), "run: python -m chromaformer.cli.reference > docs/reference/cli.md"
    for name in ("score", "train", "prepare", "explain", "summarize"):
        assert f"## chromaformer {name}\n" in page


#: a diary entry: a date, a numbered session or work period, an account of attempts
DIARY = re.compile(
    r"\b20\d\d-\d\d-\d\d\b|\bsessions? \d+|work period|\bnot adopted\b|\bwas tried\b"
    r"|\bwe tried\b|\bdid not help\b|\bre-measured\b|\bmeasured (before|after)\b",
    re.I,
)
#: a machine timing or speed
TIMING = re.compile(
    r"\d[\d,.]*\s?(ms|µs|seconds|minutes|min|s)\b(?![-\w])|MB/s|GB/s|\d\s?genes/s"
    r"|\b\d[\d.]*x (faster|slower)\b|CPU-minutes",
)
#: a measured figure in prose: an AUROC-like decimal, a speed-up, a timing
MEASURED = re.compile(r"\b0\.\d{3,}\b|\b\d[\d.]*x\b|" + TIMING.pattern)


def _demo_block(readme: str) -> str:
    return readme.split("```text\n[1/4]", 1)[1].split("```", 1)[0]


def test_no_diary_and_no_machine_timings_in_the_readme_guide_and_reference():
    readme = (ROOT / "README.md").read_text()
    for page in PAGES:
        text = page.read_text()
        if page.name == "README.md":  # the demo's recorded output, checked below
            text = text.replace(_demo_block(text), "")
        for no, line in enumerate(text.splitlines(), 1):
            assert not DIARY.search(line), f"{page.relative_to(ROOT)}:{no}: {line}"
            assert not TIMING.search(line), f"{page.relative_to(ROOT)}:{no}: {line}"
    assert DIARY.search("as measured before the fix") and TIMING.search("took 4.49 s")
    assert TIMING.search("1,583 MB/s") and not TIMING.search("the 10-s window")
    assert TIMING.search(_demo_block(readme))  # the scan sees what the block holds


def test_every_measured_number_in_the_readme_sits_by_its_benchmark_page():
    """A paragraph of the README with a measured figure links to docs/benchmarks (or
    the paragraph just before it does, as the demo's output follows its link), and the
    demo's output is the one its benchmark recorded."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.split(r"\n\s*\n", readme)
    for k, block in enumerate(blocks):
        if block.startswith("```bash") or not MEASURED.search(block):
            continue
        around = block + (blocks[k - 1] if k else "")
        assert "](docs/benchmarks/" in around, block[:200]
    report = _load_report()
    demo = report.load()["demo"][0]  # the newest
    assert _demo_block(readme) == demo["results"]["output"].split("[1/4]", 1)[1]


def test_every_relative_link_resolves():
    pages = [*PAGES, *sorted((ROOT / "docs" / "benchmarks").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)}: {target}"
