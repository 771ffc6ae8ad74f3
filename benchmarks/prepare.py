"""chromaformer-prepare on a whole genome of 5 marks, against the obvious alternatives.

Builds a synthetic genome once (24 chromosomes, 3.1 Gb, 20,000 genes; each bigWig
holds base-level coverage in runs of 1-40 bp over +-12 kb around every TSS, about 12
million intervals per mark, like a ChIP-seq coverage track there), then times, in
this one run:

- ``chromaformer-prepare`` (pyBigWig base-level values, summed per bin) with --jobs 1
  and with all cores, end to end (CLI, TSV-free CSV written);
- pyBigWig ``stats(type="sum", nBins=100, exact=True)``, the call most scripts reach
  for, on a sample of genes (it is too slow for the whole genome), extrapolated;
- bedGraph input (the same signal as a gzip bedGraph) through chromaformer-prepare.

    python benchmarks/prepare.py [--genes 20000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from chromaformer.formats import write_bigwig
from chromaformer.layout import BENCHMARK_MARKS

GENOME = 3_100_000_000
FLANK = 12_000


def build(work: Path, genes: int, seed: int = 0) -> tuple[dict[str, Path], Path, Path]:
    rng = np.random.default_rng(seed)
    sizes = {f"chr{i}": GENOME // 24 for i in range(1, 25)}
    per = genes // len(sizes)
    tss = {
        c: np.sort(rng.choice(np.arange(FLANK, n - FLANK, 2 * FLANK), per, replace=False))
        for c, n in sizes.items()
    }
    with open(work / "genes.bed", "w") as fh:
        k = 0
        for c, ts in tss.items():
            for t in ts:
                fh.write(f"{c}\t{t}\t{t + 1}\tG{k:06d}\t0\t{'+-'[k % 2]}\n")
                k += 1
    tracks = {}
    bedgraph = work / f"{BENCHMARK_MARKS[0]}.bedGraph.gz"
    for m, mark in enumerate(BENCHMARK_MARKS):
        path = work / f"{mark}.bw"
        signal = {}
        bg = gzip.open(bedgraph, "wt", compresslevel=1) if m == 0 else None
        for c, ts in tss.items():
            pieces = []
            for t in ts:
                n = 2 * FLANK
                runs = rng.integers(1, 40, n // 10)
                vals = rng.poisson(3.0, len(runs)).astype(np.float64)
                v = np.repeat(vals, runs)[:n]
                pieces.append((int(t) - FLANK, np.pad(v, (0, n - len(v)))))
                if bg is not None:
                    cut = np.flatnonzero(np.diff(v)) + 1
                    s, e = np.r_[0, cut], np.r_[cut, len(v)]
                    keep = v[s] != 0
                    lo = int(t) - FLANK
                    bg.writelines(
                        f"{c}\t{a + lo}\t{b + lo}\t{v[a]:g}\n" for a, b in zip(s[keep], e[keep])
                    )
            signal[c] = pieces
        if bg is not None:
            bg.close()
        write_bigwig(str(path), sizes, signal)
        tracks[mark] = path
    return tracks, work / "genes.bed", bedgraph


def run_prepare(tracks: dict[str, Path], bed: Path, out: Path, jobs: int) -> float:
    args = [
        sys.executable,
        "-c",
        "from chromaformer.cli import main; main()",
        "prepare",
        "--genes",
        str(bed),
        "-o",
        str(out),
        "--jobs",
        str(jobs),
        "--quiet",
    ]
    for m, p in tracks.items():
        args += ["--mark", f"{m}={p}"]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def naive_stats(tracks: dict[str, Path], bed: Path, sample: int) -> float:
    """Seconds per gene (5 marks) for pyBigWig stats(exact=True, nBins=100)."""
    import pyBigWig

    genes = [line.split("\t") for line in open(bed)][:sample]
    handles = [pyBigWig.open(str(p)) for p in tracks.values()]
    t0 = time.perf_counter()
    for c, s, _, _, _, _ in genes:
        t = int(s)
        for bw in handles:
            bw.stats(c, t - 5000, t + 5000, type="sum", nBins=100, exact=True)
    return (time.perf_counter() - t0) / len(genes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--naive-sample", type=int, default=200)
    ap.add_argument("--workdir")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="cf-prepare-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if (work / "genes.bed").exists() and (work / f"{BENCHMARK_MARKS[-1]}.bw").exists():
        tracks = {m: work / f"{m}.bw" for m in BENCHMARK_MARKS}  # built by an earlier run
        bed, bedgraph = work / "genes.bed", work / f"{BENCHMARK_MARKS[0]}.bedGraph.gz"
    else:
        tracks, bed, bedgraph = build(work, a.genes)
    n = sum(1 for _ in open(bed))
    size = sum(p.stat().st_size for p in tracks.values()) / 1e6
    print(
        f"built {n:,} genes, 5 bigWigs ({size:.0f} MB) in {time.perf_counter() - t0:.0f} s; "
        f"{os.cpu_count()} cores",
        file=sys.stderr,
    )
    cores = len(os.sched_getaffinity(0))
    rows = []
    one = run_prepare(tracks, bed, work / "j1.csv", 1)
    rows.append(("chromaformer-prepare --jobs 1", one))
    if cores > 1:
        rows.append(
            (
                f"chromaformer-prepare --jobs {cores}",
                run_prepare(tracks, bed, work / "jn.csv", cores),
            )
        )
        assert (work / "j1.csv").read_bytes() == (work / "jn.csv").read_bytes()
    per_gene = naive_stats(tracks, bed, a.naive_sample)
    rows.append(
        (f"pyBigWig stats(exact, nBins=100), 1 process (from {a.naive_sample} genes)", per_gene * n)
    )
    mixed = dict(tracks)
    mixed[BENCHMARK_MARKS[0]] = bedgraph
    rows.append(
        (
            f"chromaformer-prepare --jobs {cores}, {BENCHMARK_MARKS[0]} as gzip bedGraph",
            run_prepare(mixed, bed, work / "bg.csv", cores),
        )
    )
    best = min(s for _, s in rows)
    print(f"\n{n:,} genes x 5 marks, bins of 100 bp over TSS +- 5 kb\n")
    print("| method | seconds | genes/s | vs fastest |\n|---|---:|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s:.1f} | {n / s:,.0f} | {s / best:.1f}x |")


if __name__ == "__main__":
    main()
