"""Plain-text reports of a run's metrics (what ``chromaformer-train`` and the demo print).
No torch."""

from __future__ import annotations

from typing import Any

from ..metrics import SELECTION, beaten_by, describe_gap


def format_metrics(metrics: dict[str, Any]) -> str:
    """The evaluation split's metrics beside the baselines': per cell type (clf) or MSE,
    Pearson r and R² (reg, diff); one more line when a baseline beats the model."""
    text = _table(metrics)
    bases = metrics.get("baselines") or {}
    names = metrics.get("baseline_names") or {}
    if bases and "gradient_boosting" in bases and metrics.get("task", "clf") == "clf":
        key = SELECTION[metrics.get("task", "clf")][0]
        gb = bases["gradient_boosting"]
        text += f"\n{names.get('gradient_boosting', 'gradient boosting')}: {key} {gb[key]:.4f}"
    gaps = metrics.get("gaps") or {}
    if gaps:
        what = metrics.get("gap_metric", "AUROC")
        text += f"\n{what} of the model minus each baseline's, same genes (paired bootstrap):"
        for k, gap in gaps.items():
            text += "\n  " + describe_gap(names.get(k, k), gap)
    beaten = beaten_by(metrics.get("task", "clf"), metrics["test"], bases)
    if beaten:
        key = SELECTION[metrics.get("task", "clf")][0]
        text += "\n" + beaten_note(beaten, f"this model on {key} ({metrics['test'][key]:.4f})")
    return text


def beaten_note(beaten: list[str], what: str) -> str:
    """``note: the X (and the Y) baseline(s) beat(s) <what>``."""
    many = len(beaten) > 1
    return (
        f"note: the {' and the '.join(beaten)} baseline{'s' if many else ''} "
        f"beat{'' if many else 's'} {what}"
    )


def _table(metrics: dict[str, Any]) -> str:
    test, base = metrics["test"], metrics["baseline"]
    name = metrics.get("baseline_name", "baseline")
    split = metrics.get("evaluated_on", "test")
    if metrics.get("task", "clf") != "clf":
        keys = ("mse", "pearson_r", "spearman", "r2")
        names = metrics.get("baseline_names") or {}
        rows = [("model", test)] + [
            (names.get(k, k), m) for k, m in (metrics.get("baselines") or {"": base}).items()
        ]
        if not metrics.get("baselines"):
            rows[1] = (name, base)
        lines = [f"{'':<18}" + "".join(f"{k:>11}" for k in keys)] + [
            f"{label[:18]:<18}" + "".join(f"{m.get(k, float('nan')):>11.4f}" for k in keys)
            for label, m in rows
        ]
        return f"{split} split ({test['genes']} genes):\n" + "\n".join(lines)
    short = "LR" if name == "logistic regression" else "base"
    lines = [
        f"{split} split; {short} = {name}",
        f"{'cell type':<14}{'AUROC':>8}{'AUPR':>8}   {short + ' AUROC':>9}{short + ' AUPR':>9}",
    ]
    for ct, m in test["per_cell"].items():
        b = base["per_cell"][ct]
        lines.append(
            f"{ct:<14}{m['auroc']:>8.4f}{m['aupr']:>8.4f}   {b['auroc']:>9.4f}{b['aupr']:>9.4f}"
        )
    lines.append(
        f"{'mean':<14}{test['mean_auroc']:>8.4f}{test['mean_aupr']:>8.4f}   "
        f"{base['mean_auroc']:>9.4f}{base['mean_aupr']:>9.4f}"
    )
    if len(test["per_cell"]) > 1:
        lines.append(
            f"{'pooled':<14}{test['pooled']['auroc']:>8.4f}"
            f"{test['pooled']['aupr']:>8.4f}   {base['pooled']['auroc']:>9.4f}"
            f"{base['pooled']['aupr']:>9.4f}"
        )
    return "\n".join(lines)


def format_run(metrics: dict[str, Any], out: str) -> str:
    """One line: best epoch, speed, device and the run folder."""
    secs = metrics["epoch_seconds"]
    return (
        f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; "
        f"{sum(secs) / max(len(secs), 1):.1f} s/epoch on {metrics['device']} "
        f"({metrics['genes']['train']:,} training genes); run folder: {out}"
    )
