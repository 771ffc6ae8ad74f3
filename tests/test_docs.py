"""Docs that run: every Python and shell example in README.md and docs/*.md is executed
(each page's examples in order, in one fresh folder), the public API table matches
``chromaformer.__all__``, and the README stays a newcomer's page (<= 12 KB)."""

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
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
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
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024
    table = (ROOT / "docs" / "python-api.md").read_text().split("```python")[0]
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
    for name in ("export", "benchmarks", "workflow"):  # the repository's tools
        (tmp_path / name).symlink_to(ROOT / name)
    for k, (lang, code) in enumerate(blocks, 1):
        if "node " in code and shutil.which("node") is None and not os.environ.get("CI"):
            pytest.skip("Node.js is not installed here (CI runs this)")
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
