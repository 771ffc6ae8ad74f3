"""Progress bars on stderr that draw only on a terminal: a run whose stderr goes to a
log file gets the per-epoch lines, not thousands of bar redraws. ``quiet`` silences
them everywhere."""

from __future__ import annotations

import sys
from typing import Any, Optional

from tqdm import tqdm


def bar(total: Optional[float] = None, *, quiet: bool = False, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr; disabled when ``quiet`` or when stderr is not a terminal."""
    kwargs.setdefault("leave", False)
    return tqdm(total=total, file=sys.stderr, disable=True if quiet else None, **kwargs)
