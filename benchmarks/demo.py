"""The README's main job: ``chromaformer demo`` (the default: real GM12878 data shipped
in the package) run in a fresh folder, its printed output and wall time recorded. The
README's demo output is this output (tests/test_docs.py checks it).

    python benchmarks/demo.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cf-demo-") as work:
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "chromaformer.cli", "demo"],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - t0
    print(res.stdout, end="")
    what = (
        "`chromaformer demo` in an empty folder: it prepares the bundled GM12878 tracks, "
        "trains the CNN with the default recipe, exports it, scores the validation genes "
        f"and compares with both baselines and the shipped model. Wall time {seconds:.0f} s."
    )
    save("demo", what, {"output": res.stdout, "seconds": round(seconds, 1)}, folder=args.results)


if __name__ == "__main__":
    main()
