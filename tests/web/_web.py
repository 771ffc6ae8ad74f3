"""Where the page lives and whether its runtime is installed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parents[2] / "export" / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def node_ready() -> bool:
    """node and the page's npm packages (cd export/web && npm ci); required in CI."""
    ready = (
        shutil.which("node") is not None and (WEB_DIR / "node_modules" / "onnxruntime-web").is_dir()
    )
    if not ready and os.environ.get("CI"):
        raise AssertionError("CI must install export/web (see .ci/run)")
    return ready


def browser_ready() -> bool:
    """node_ready() and a Chromium (Debian's chromium); required in CI."""
    ready = (
        node_ready()
        and (WEB_DIR / "node_modules" / "playwright-core").is_dir()
        and Path(CHROMIUM).exists()
    )
    if not ready and os.environ.get("CI"):
        raise AssertionError(f"CI must install chromium at {CHROMIUM} (see .ci/run)")
    return ready
