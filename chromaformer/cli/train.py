"""``chromaformer-train`` / ``chromaformer train`` and ``chromaformer-eval``.

The reference work's spellings also work (--model_type, --cell_types, --n_heads,
--dim_feedforward, --mode eval) for people switching over.
"""
from __future__ import annotations

import json
from typing import Any, Optional

import click

from ..errors import DataError
from ._common import one_line_errors, quiet_option, threads_option


class ManyValues(click.Option):
    """An option that takes every value up to the next option: ``--cell-types A B C``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("multiple", True)
        super().__init__(*args, **kwargs)

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            opt = parser._long_opt.get(name) or parser._short_opt.get(name)
            if opt is None:
                continue
            original = opt.process

            def process(value: Any, state: Any, _orig=original) -> None:
                values = [value]
                while state.rargs and not state.rargs[0].startswith("-"):
                    values.append(state.rargs.pop(0))
                for v in values:
                    for part in str(v).split(","):
                        if part:
                            _orig(part, state)

            opt.process = process


def _cell_types(values: tuple[str, ...]) -> list[str]:
    if not values:
        raise click.UsageError("name at least one cell type with --cell-types")
    return list(values)


def _print_metrics(metrics: dict[str, Any]) -> None:
    test, base = metrics["test"], metrics["baseline_logreg"]
    click.echo(f"{'cell type':<14}{'AUROC':>8}{'AUPR':>8}   {'LR AUROC':>9}{'LR AUPR':>9}")
    for ct, m in test["per_cell"].items():
        b = base["per_cell"][ct]
        click.echo(f"{ct:<14}{m['auroc']:>8.4f}{m['aupr']:>8.4f}   {b['auroc']:>9.4f}{b['aupr']:>9.4f}")
    click.echo(f"{'mean':<14}{test['mean_auroc']:>8.4f}{test['mean_aupr']:>8.4f}   "
               f"{base['mean_auroc']:>9.4f}{base['mean_aupr']:>9.4f}")
    if len(test["per_cell"]) > 1:
        click.echo(f"{'pooled':<14}{test['pooled']['auroc']:>8.4f}{test['pooled']['aupr']:>8.4f}   "
                   f"{base['pooled']['auroc']:>9.4f}{base['pooled']['aupr']:>9.4f}")


@click.command("train")
@click.option("--model", "--model_type", "model", default="hybrid", show_default=True,
              help="bilstm_attention | bilstm_transformer | hybrid "
                   "(= bilstm_attention_transformer) | cnn | chromoformer")
@click.option("--data-root", "--data_root", "data_root", default=None,
              type=click.Path(file_okay=False), help="Folder holding {EID}/classification/*.csv.")
@click.option("--task", type=click.Choice(["clf", "reg", "diff"]), default="clf",
              show_default=True, help="chromoformer: classification (expression >= median), "
              "regression of log2(RPKM+1), or log2 fold change between two cells (diff).")
@click.option("--meta", "metas", multiple=True, type=click.Path(dir_okay=False),
              help="chromoformer: the reference layout's meta.csv (twice for diff: cell A, "
                   "then cell B).")
@click.option("--npy-dir", "npy_dirs", multiple=True, type=click.Path(file_okay=False),
              help="chromoformer: the folder of {chrom}:{start}-{end}.npy (once per --meta).")
@click.option("--fold", default=1, show_default=True, type=click.IntRange(1, 4),
              help="chromoformer: validate on genes of split FOLD, train on the other three.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="chromoformer: keep binned inputs here and reuse them in later runs.")
@click.option("--cell-types", "--cell_types", "cell_types", cls=ManyValues,
              help="One or more cell types (space- or comma-separated).")
@click.option("--out", "--save_root", "out", default=None, type=click.Path(file_okay=False),
              help="Run folder (default: runs/<model>).")
@click.option("--mode", type=click.Choice(["train", "eval"]), default="train", show_default=True,
              help="eval: report the test metrics of the saved model in --out.")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="[default: 30; chromoformer 10]")
@click.option("--batch-size", "--batch_size", "batch_size", default=None,
              type=click.IntRange(min=1), help="[default: 16; chromoformer 64]")
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="[default: 2e-4; chromoformer 3e-5 (AdamW, x0.87 per epoch)]")
@click.option("--n-heads", "--n_heads", "n_heads", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--dim-feedforward", "--dim_feedforward", "dim_feedforward", default=256,
              show_default=True, type=click.IntRange(min=1))
@click.option("--n-layers", "--n_layers", "n_layers", default=2, show_default=True,
              type=click.IntRange(min=1), help="Transformer encoder layers.")
@click.option("--dropout", default=0.5, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--input-transform", type=click.Choice(["log1p", "none"]), default="log1p",
              show_default=True, help="none = AttentiveChrome's raw counts.")
@click.option("--clip", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Gradient-norm clip (0 = off).")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--patience", default=None, type=click.IntRange(min=1),
              help="Early stopping: epochs without a better validation AUROC.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--no-amp", is_flag=True, help="Disable mixed precision on CUDA.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch.")
@threads_option
@quiet_option
@one_line_errors
def train(model: str, data_root: Optional[str], task: str, metas: tuple[str, ...],
          npy_dirs: tuple[str, ...], fold: int, cache_dir: Optional[str],
          cell_types: tuple[str, ...], out: Optional[str], mode: str,
          epochs: Optional[int], batch_size: Optional[int], lr: Optional[float],
          n_heads: int, dim_feedforward: int,
          n_layers: int, dropout: float, input_transform: str, clip: float, seed: int,
          patience: Optional[int], device: str, no_amp: bool, resume: bool,
          threads: Optional[int], quiet: bool) -> None:
    """Train a model on one or more cell types of the benchmark layout, or Chromoformer
    (--model chromoformer --task clf|reg|diff --meta meta.csv --npy-dir DIR --fold K) on
    its reference layout.

    Keeps the checkpoint with the best mean per-cell validation AUROC and reports test
    AUROC/AUPR per cell type beside a logistic-regression baseline. Runs under
    ``torchrun --nproc_per_node N`` as DistributedDataParallel (NCCL on GPUs, gloo on CPU).
    Chromoformer keeps the best validation AUROC (clf) or MSE (reg, diff) of its fold.
    """
    from ..models import ModelConfig, canonical_arch
    from ..training import TrainConfig, evaluate_run
    from ..training import train as run_training

    if model == "chromoformer":
        _train_chromoformer(task, metas, npy_dirs, fold, cache_dir, out, epochs or 10,
                            batch_size or 64, lr or 3e-5, seed, device, threads, quiet)
        return
    if data_root is None:
        raise click.UsageError("--data-root is required (or --model chromoformer with --meta "
                               "and --npy-dir)")
    epochs, batch_size, lr = epochs or 30, batch_size or 16, lr or 2e-4
    cts = _cell_types(cell_types)
    try:
        arch = canonical_arch(model)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--model") from None
    out = out or f"runs/{arch}"
    if mode == "eval":
        metrics = evaluate_run(out, data_root, cts, device=device)
        _print_metrics(metrics)
        return
    from ..datasets import load_split

    probe = load_split(data_root, cts[:1], "valid", threads=threads)
    try:
        mc = ModelConfig(arch=arch, marks=probe.marks, bins=probe.counts.shape[1], n_heads=n_heads,
                         dim_feedforward=dim_feedforward, n_layers=n_layers, dropout=dropout,
                         input_transform=input_transform)
    except ValueError as err:
        raise DataError(str(err)) from None
    tc = TrainConfig(data_root=data_root, cell_types=cts, out=out, epochs=epochs,
                     batch_size=batch_size, lr=lr, clip=clip, seed=seed, device=device,
                     patience=patience, resume=resume, quiet=quiet, threads=threads, amp=not no_amp)
    metrics = run_training(tc, mc)
    if metrics:
        _print_metrics(metrics)
        click.echo(f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; "
                   f"{sum(metrics['epoch_seconds']) / len(metrics['epoch_seconds']):.1f} s/epoch "
                   f"on {metrics['device']}; run folder: {out}")


@click.command("eval")
@click.argument("run", type=click.Path(exists=True))
@click.option("--data-root", "--data_root", "data_root", required=True, type=click.Path(file_okay=False))
@click.option("--cell-types", "--cell_types", "cell_types", cls=ManyValues)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@one_line_errors
def evaluate(run: str, data_root: str, cell_types: tuple[str, ...], device: str, as_json: bool) -> None:
    """Report the test metrics of the saved model in RUN (a run folder or .pt file)."""
    from ..models import read_checkpoint
    from ..training import evaluate_run

    if read_checkpoint(run).get("config", {}).get("arch") == "chromoformer":
        raise DataError(f"{run}: a Chromoformer run: its validation metrics are in "
                        "metrics.json; score genes with chromaformer-export and "
                        "chromaformer-score --meta META --npy-dir DIR")
    metrics = evaluate_run(run, data_root, _cell_types(cell_types), device=device, plots=False)
    if as_json:
        click.echo(json.dumps(metrics, default=float))
    else:
        _print_metrics(metrics)


def _train_chromoformer(task: str, metas: tuple[str, ...], npy_dirs: tuple[str, ...], fold: int,
                        cache_dir: Optional[str], out: Optional[str], epochs: int,
                        batch_size: int, lr: float, seed: int, device: str,
                        threads: Optional[int], quiet: bool) -> None:
    from ..chromoformer_training import ChromoformerTrainConfig, train_chromoformer

    if not metas or not npy_dirs:
        raise click.UsageError("--model chromoformer needs --meta and --npy-dir")
    out = out or f"runs/chromoformer-{task}-fold{fold}"
    tc = ChromoformerTrainConfig(meta=list(metas), npy_dir=list(npy_dirs), out=out, task=task,
                                 fold=fold, epochs=epochs, batch_size=batch_size, lr=lr,
                                 seed=seed, device=device, quiet=quiet, threads=threads,
                                 cache_dir=cache_dir)
    res = train_chromoformer(tc)
    for row in res["history"]:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in row.items()
                            if k not in ("epoch", "seconds"))
        click.echo(f"epoch {row['epoch']:>3}  {metrics}  ({row['seconds']:.1f} s)")
    best = "  ".join(f"{k} {v:.4f}" for k, v in (res["best_valid"] or {}).items())
    click.echo(f"chromoformer {task}, fold {fold}: {res['genes']['train']} training / "
               f"{res['genes']['valid']} validation genes on {res['device']}; inputs binned in "
               f"{res['load_seconds']:.1f} s; best validation: {best}; run folder: {out}")


if __name__ == "__main__":  # python -m chromaformer.cli.train (used under torchrun)
    train()
