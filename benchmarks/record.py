"""Where a benchmark's results go: ``benchmarks/results/<date>-<machine>/<name>.json``,
each holding what was measured, on what (machine, versions), when, with which command,
and the results. ``benchmarks/report.py`` turns these files into docs/benchmarks/.

The machine is named from what it has: its GPU when a run used one (``h100``), else its
cores (``cpu2``); ``--results DIR`` on a script writes elsewhere (a device machine
writes under its ``$OUT`` and the files are copied back)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "numpy", "scikit-learn", "pyBigWig")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> Optional[str]:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    return names[0] if out.returncode == 0 and names else None


def _commit() -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=RESULTS.parent,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(gpu_used: bool = False) -> dict[str, Any]:
    """The machine and versions a result was measured on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0.0
    versions = {"python": platform.python_version()}
    for name in ("chromaformer",) + PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    gpu = _gpu() if gpu_used else None
    return {
        "machine": {
            "cpu": _cpu(),
            "cores": cores,
            "memory_gib": round(mem),
            "gpu": gpu,
            "os": platform.platform(terse=True),
        },
        "versions": versions,
        "commit": _commit(),
    }


def machine_slug(env: dict[str, Any]) -> str:
    gpu = env["machine"].get("gpu")
    if gpu:
        for word in gpu.replace("NVIDIA", "").split():
            if any(c.isdigit() for c in word):
                return word.lower()
        return "gpu"
    return f"cpu{env['machine']['cores']}"


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Of a method's rounds (each with ``seconds`` and ``peak_mb``), the run of median
    seconds, with the range (``low``, ``high``), the count ``n`` and the peak memory of
    all; the first failure (a run with ``error``) if any failed."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["seconds"])
    mid = dict(ordered[(len(ordered) - 1) // 2])
    mid.update(
        low=ordered[0]["seconds"],
        high=ordered[-1]["seconds"],
        n=len(runs),
        peak_mb=max(r["peak_mb"] for r in runs),
    )
    return mid


def save(
    name: str,
    what: str,
    results: Any,
    *,
    gpu_used: bool = False,
    folder: Optional[str] = None,
    file: Optional[str] = None,
) -> Path:
    """Write ``results`` (JSON-able) as benchmark ``name`` (to ``<file or name>.json``);
    ``what`` is one paragraph of what was measured. Returns the path written."""
    env = environment(gpu_used)
    today = datetime.date.today().isoformat()
    root = Path(folder) if folder else RESULTS / f"{today}-{machine_slug(env)}"
    root.mkdir(parents=True, exist_ok=True)
    argv = [Path(sys.argv[0]).name] + sys.argv[1:]
    record = {
        "benchmark": name,
        "what": " ".join(what.split()),
        "date": today,
        "command": "python benchmarks/" + shlex.join(argv),
        **env,
        "results": results,
    }
    path = root / f"{file or name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    print(f"wrote {path}", file=sys.stderr)
    return path
