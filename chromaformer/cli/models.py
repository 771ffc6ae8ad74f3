"""``chromaformer models``: the models shipped with the package."""

from __future__ import annotations

import json

import click

from ._common import one_line_errors


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@one_line_errors
def models(as_json: bool) -> None:
    """List the shipped pretrained models: name, architecture, layout, what they were
    trained on, the validation AUROC (Pearson r for regression) beside the baselines,
    and the path to pass anywhere a model file is taken (or use the name:
    chromaformer-score genes.csv --model NAME)."""
    from ..pretrained import list_models

    found = list_models()
    if as_json:
        click.echo(json.dumps(found, indent=2, default=float))
        return
    for m in found:
        counts = next(iter(m["layout"].values()))
        valid, base = m["validation"], m["baselines"]
        click.echo(
            f"{m['name']}: {m['architecture']} ({m['task']}), {counts['bins']} bins of "
            f"{counts['bin_size']:,} bp, marks {','.join(counts['marks'])}\n"
            f"  trained on: {m['trained_on']}\n"
            f"  validation {m['metric_name']} {valid.get(m['metric'], float('nan')):.4f}"
            + "".join(f"; {k} {v:.4f}" for k, v in base.items())
            + f"\n  {m['path']}"
        )
