"""The bin-CSV reader of Node and the browser: the C++ reader compiled to WebAssembly
(export/web/lib/wasmreader.mjs, built by export/wasm/build) against the JavaScript parser
it replaced (export/web/lib/bincsv.mjs at commit df6f263, taken from git), in Node and in
headless Chromium, in the same run, on simulated genomes (100 bins of 100 bp, and 21 bins
of 10 kb as e116 reads). Parsing only: the file's bytes are in memory and handed over in
1 MiB chunks; genes, labels and the sum of every count must agree.

Needs node, export/web/node_modules (npm ci) and Chromium.

    python benchmarks/wasm.py --genes 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "export" / "web" / "lib"
JS_PARSER_COMMIT = "df6f263"  # the last commit whose page and Node scorer parsed in JavaScript


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    args = ap.parse_args()

    import chromaformer as cf

    work = Path(args.dir or tempfile.mkdtemp(prefix="cf-wasm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    old = work / "bincsv.mjs"
    old.write_bytes(
        subprocess.run(
            ["git", "show", f"{JS_PARSER_COMMIT}:export/web/lib/bincsv.mjs"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
    )
    files = []
    for label, layout in (("100 bins", {}), ("21 bins (e116)", {"bins": 21, "bin_size": 10000})):
        path = work / f"genome_{layout.get('bins', 100)}_{args.genes}.csv"
        sim = cf.write_simulated(path, args.genes, seed=1, compress=False, **layout)
        files.append(
            {"path": str(path), "label": label, "bins": sim.counts.shape[1], "marks": sim.marks}
        )
    plan = {
        "old": str(old),
        "lib": str(LIB),
        "chromium": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
        "playwright": str(ROOT / "export" / "web" / "node_modules" / "playwright-core"),
        "rounds": args.rounds,
        "chunk_bytes": 1 << 20,
        "files": files,
    }
    (work / "plan.json").write_text(json.dumps(plan))
    got = json.loads(
        subprocess.run(
            ["node", str(ROOT / "benchmarks" / "wasm_parse.mjs"), str(work / "plan.json")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    rows = []
    for where in ("node", "chromium"):
        runs = got[where]["runs"]
        for f in files:
            mine = [r for r in runs if r["file"] == f["path"]]
            methods = list(dict.fromkeys(r["method"] for r in mine))
            seconds = {
                m: statistics.median(r["seconds"] for r in mine if r["method"] == m)
                for m in methods
            }
            outcome = {(r["genes"], r["ones"], r["sum"], r["first"]) for r in mine}
            js = seconds["JavaScript parser"]
            size_mb = Path(f["path"]).stat().st_size / 1e6
            for m in methods:
                rows.append(
                    {
                        "where": mine[0]["where"],
                        "file": f"{args.genes:,} genes, {f['label']}, {size_mb:.0f} MB",
                        "method": m,
                        "seconds (median)": round(seconds[m], 3),
                        "range": "{:.3f}-{:.3f}".format(
                            min(r["seconds"] for r in mine if r["method"] == m),
                            max(r["seconds"] for r in mine if r["method"] == m),
                        ),
                        "MB/s": round(size_mb / seconds[m]),
                        "time vs JavaScript": f"{seconds[m] / js:.2f}x",
                        "same genes, labels, counts": "yes" if len(outcome) == 1 else "NO",
                    }
                )
    for r in rows:
        print("| " + " | ".join(str(v) for v in r.values()) + " |")
    loads = {w: round(got[w]["load"], 3) for w in ("node", "chromium")}
    print(f"module load (s): {loads}")
    save(
        "wasm",
        "Parsing a bin CSV in Node and in headless Chromium: the C++ reader built to "
        "WebAssembly (what the page and the Node scorer use) against the JavaScript parser "
        f"it replaced (commit {JS_PARSER_COMMIT}), same bytes, same run, median of "
        f"{args.rounds} rounds; loading the WebAssembly module took {loads['node']} s in "
        f"Node and {loads['chromium']} s in Chromium (once per process)",
        {"tables": [rows], "rounds": args.rounds, "module_load_s": loads},
        folder=args.results,
    )
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
