"""``chromaformer inspect``: validate bin CSV files and summarise them."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Optional

import click

from ..data.summary import format_summary, summarize
from ..errors import FormatError
from ..formats.bincsv import read_bins
from ._common import threads_option


@click.command("inspect")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--bins",
    type=click.IntRange(min=1),
    default=None,
    help="Require this many bins per gene (default: from the first gene).",
)
@click.option(
    "--marks", default=None, help="Comma-separated mark names the files must have, in column order."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@threads_option
def inspect(
    files: tuple[str, ...],
    bins: Optional[int],
    marks: Optional[str],
    as_json: bool,
    threads: Optional[int],
) -> None:
    """Validate FILES (bin CSV, plain or .gz) and print genes, bins, marks, label
    balance and per-mark count summaries. A bad file gets a one-line error naming the
    line and what was expected, and the exit status is 1.
    """
    mark_list = [m.strip() for m in marks.split(",")] if marks else None
    failed = 0
    for path in files:
        t0 = time.perf_counter()
        try:
            data = read_bins(
                path, threads=threads, bins=bins, marks=mark_list, integer_counts=False
            )
        except FormatError as err:
            click.echo(f"Error: {err}", err=True)
            failed += 1
            continue
        seconds = time.perf_counter() - t0
        summary = summarize(data)
        size = os.path.getsize(path)
        summary["bytes"] = size
        summary["seconds"] = seconds
        if as_json:
            click.echo(json.dumps(summary))
        else:
            click.echo(format_summary(summary))
            click.echo(
                f"  read {size / 1e6:.1f} MB in {seconds * 1e3:.0f} ms "
                f"({size / 1e6 / max(seconds, 1e-9):.0f} MB/s)"
            )
    if failed:
        sys.exit(1)
