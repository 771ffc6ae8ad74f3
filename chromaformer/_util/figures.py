"""Figures written as PNG files: matplotlib's object API, no pyplot. No global state is
touched: the backend of a user's session (a notebook's inline one) stays as it is, and
figures drawn in threads do not meet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .atomic import atomic_path


def figure(**kwargs: Any) -> Any:
    """A new ``matplotlib.figure.Figure`` (``figsize=...``); draw with ``fig.subplots``."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_png(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Lay ``fig`` out and write it to ``path`` as PNG, atomically (Agg renders it)."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
