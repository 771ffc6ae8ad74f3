"""Earlier module paths still import, with a one-line deprecation naming the new one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chromaformer._compat import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_warn_and_work(old):
    code = (
        f"import warnings, importlib\nwarnings.simplefilter('error')\n"
        f"try:\n    importlib.import_module({old!r})\nexcept DeprecationWarning as w:\n"
        f"    print(w)\nwarnings.simplefilter('ignore')\n"
        f"m = importlib.import_module({old!r})\n"
        f"new = importlib.import_module({MOVED[old]!r})\n"
        f"names = [n for n in vars(new) if not n.startswith('_')]\n"
        f"assert names and all(getattr(m, n) is getattr(new, n) for n in names)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{old} is now {MOVED[old]}"


def test_renamed_entry_points_still_answer():
    import chromaformer as cf
    from chromaformer.scoring import score, score_file

    assert score_file is score and cf.load_model is not None and cf.evaluate_run
