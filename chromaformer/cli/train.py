"""``chromaformer-train`` / ``chromaformer train`` and ``chromaformer-eval``.

The reference work's spellings also work (--model_type, --cell_types, --n_heads,
--dim_feedforward, --mode eval) for people switching over. Defaults live in the
library's configs (``chromaformer.training.RECIPES``, the model configs); an option
given here that does not apply to the chosen model family is an error.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import click

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


#: CLI option -> (TrainConfig or model-config field, where it goes)
FAMILY_OPTIONS = {
    "data_root": "train",
    "cell_types": "train",
    "meta": "train",
    "npy_dir": "train",
    "fold": "train",
    "cache_dir": "train",
    "bin_size": "train",
    "expression": "train",
    "n_heads": "model",
    "dim_feedforward": "model",
    "n_layers": "model",
    "dropout": "model",
    "input_transform": "model",
}


@click.command("train")
@click.option(
    "--model",
    "--model_type",
    "model",
    default="hybrid",
    show_default=True,
    help="bilstm_attention | bilstm_transformer | hybrid "
    "(= bilstm_attention_transformer) | cnn | chromoformer",
)
@click.option(
    "--data-root",
    "--data_root",
    "data_root",
    default=None,
    type=click.Path(file_okay=False),
    help="bin models: the folder holding {EID}/classification/*.csv.",
)
@click.option(
    "--cell-types",
    "--cell_types",
    "cell_types",
    cls=ManyValues,
    help="bin models: one or more cell types (space- or comma-separated).",
)
@click.option(
    "--task",
    type=click.Choice(["clf", "reg", "diff"]),
    default=None,
    help="clf (expression >= median; the default), reg (the expression level: bin "
    "models from --expression or the .expression.tsv beside each split; chromoformer "
    "log2(RPKM+1)), or for chromoformer diff (log2 fold change between two cells).",
)
@click.option(
    "--expression",
    type=click.Path(dir_okay=False),
    help="bin models, --task reg: a table of every split's targets (gene id first; its "
    "column as chromaformer-prepare --expression finds it). Default: "
    "<split>.expression.tsv beside each split file.",
)
@click.option(
    "--meta",
    "meta",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="chromoformer: the reference layout's meta.csv (twice for diff: cell A, then cell B).",
)
@click.option(
    "--npy-dir",
    "npy_dir",
    multiple=True,
    type=click.Path(file_okay=False),
    help="chromoformer: the folder of {chrom}:{start}-{end}.npy (once per --meta).",
)
@click.option(
    "--fold",
    default=None,
    type=click.IntRange(1, 4),
    help="chromoformer: validate on genes of split FOLD, train on the other three  [default: 1]",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="chromoformer: keep binned inputs here and reuse them in later runs.",
)
@click.option(
    "--out",
    "--save_root",
    "out",
    default=None,
    type=click.Path(file_okay=False),
    help="Run folder (default: runs/<model>[-<task>-fold<k>]).",
)
@click.option(
    "--mode",
    type=click.Choice(["train", "eval"]),
    default="train",
    show_default=True,
    help="eval: report the metrics of the saved model in --out, train nothing.",
)
@click.option(
    "--bin-size",
    "bin_size",
    default=None,
    type=click.IntRange(min=1),
    help="bin models: bp per bin of the data (default: the .layout.json that "
    "chromaformer-prepare writes beside its files; 100 for 100-bin files without one).",
)
@click.option(
    "--recipe",
    "recipe_name",
    default=None,
    type=click.Choice(["bins", "attentivechrome", "chromoformer"]),
    help="Training recipe: bins (the bin models' default: AdamW, warm-up + cosine, "
    "early stopping), attentivechrome (the benchmark's: Adam 2e-4, batch 16, 30 "
    "epochs), chromoformer (the reference's). Options below override its values.",
)
@click.option(
    "--epochs",
    default=None,
    type=click.IntRange(min=1),
    help="[default: the recipe's: 20 (bins); chromoformer 10]. A number given here "
    "is trained as is, without --min-steps' extra passes unless that is given too.",
)
@click.option(
    "--min-steps",
    "min_steps",
    default=None,
    type=click.IntRange(min=0),
    help="At least this many optimiser steps: on few genes each epoch makes several "
    "passes over them; when every step is a full pass over them (fewer genes than the "
    "batch trained) an epoch is at most 10 steps (more epochs, "
    "--patience scaled alike) and the lowest validation log loss picks the epoch "
    "[default: 1500; 0 for attentivechrome and chromoformer]",
)
@click.option(
    "--batch-size",
    "--batch_size",
    "batch_size",
    default=None,
    type=click.IntRange(min=1),
    help="[default: 64, and 8 when the training genes are fewer than 64; attentivechrome "
    "16]. A batch given is the batch at any number of genes.",
)
@click.option(
    "--lr",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Peak learning rate, at any number of genes and from any start [default: "
    "3e-3, and 3e-4 when the training genes are fewer than the batch trained (every step a "
    "full pass) or the network starts from learned weights (--init); attentivechrome "
    "2e-4; chromoformer 3e-5]",
)
@click.option(
    "--weight-decay",
    "weight_decay",
    default=None,
    type=click.FloatRange(min=0),
    help="[default: 0.01; attentivechrome 0]",
)
@click.option(
    "--clip",
    default=None,
    type=click.FloatRange(min=0),
    help="Gradient-norm clip, 0 = off  [default: 1.0; chromoformer 0]",
)
@click.option(
    "--ema",
    default=None,
    type=click.FloatRange(min=0, max=1, max_open=True),
    help="Exponential moving average of the weights, decay per step (e.g. 0.999): the "
    "average is validated and kept; 0 = off  [default: 0]",
)
@click.option(
    "--keep",
    default=None,
    type=click.Choice(["best", "last"]),
    help="Which epoch's weights the run keeps: best = the best validation metric (the "
    "validation split then picks the model: its figure is optimistic); last = the end of "
    "the schedule (no early stopping: the validation split picks nothing and is a "
    "held-out figure; --cv trains each fold on every gene outside it)  [default: best]",
)
@click.option("--seed", default=None, type=int, help="[default: 1; chromoformer 123]")
@click.option(
    "--patience",
    default=None,
    type=click.IntRange(min=0),
    help="Early stopping: epochs without a better validation metric, 0 = off "
    "[default: 8; attentivechrome and chromoformer 0]",
)
@click.option(
    "--init",
    default=None,
    metavar="auto|none|CHECKPOINT",
    help="Where the network starts: auto = the shipped starting weights learned on "
    "simulated genes when the training genes are fewer than one batch and the model and "
    "layout are the defaults' (bin models, 100 bins of 100 bp, the benchmark marks), else "
    "random; none = random; a checkpoint (.pt or run folder) of the same architecture and "
    "layout = fine-tune it, at any number of genes  [default: auto; attentivechrome and "
    "chromoformer none]",
)
@click.option(
    "--n-heads",
    "--n_heads",
    "n_heads",
    default=None,
    type=click.IntRange(min=1),
    help="bin models: transformer heads  [default: 4]",
)
@click.option(
    "--dim-feedforward",
    "--dim_feedforward",
    "dim_feedforward",
    default=None,
    type=click.IntRange(min=1),
    help="bin models  [default: 256]",
)
@click.option(
    "--n-layers",
    "--n_layers",
    "n_layers",
    default=None,
    type=click.IntRange(min=1),
    help="bin models: transformer layers  [default: 2]",
)
@click.option(
    "--dropout",
    default=None,
    type=click.FloatRange(0, 1, max_open=True),
    help="bin models  [default: 0.5]",
)
@click.option(
    "--input-transform",
    type=click.Choice(["standardize", "log1p", "none"]),
    default=None,
    help="bin models: standardize = log1p, then per mark the training genes' mean and "
    "sd (stored in the model); none = AttentiveChrome's raw counts  [default: standardize]",
)
@click.option(
    "--model-config",
    default=None,
    metavar="JSON",
    help="Model hyperparameters as a JSON object or a .json file, any family: e.g. "
    '\'{"d_emb": 64, "d_head": 64}\' for Chromoformer (its config\'s fields, the '
    "reference's names). Unknown fields are an error.",
)
@click.option(
    "--cv",
    "cv",
    default=None,
    type=click.IntRange(min=2),
    help="K-fold cross-validation over the train+valid genes (the test split untouched): "
    "per-fold and mean +- sd metrics beside the baselines, out-of-fold predictions in "
    "OUT/oof.tsv, the summary in OUT/cv.json.",
)
@click.option(
    "--seeds",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Train this many seeds (from --seed up) per fold, or on the run's own split: "
    "mean +- sd over seeds.",
)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--no-amp", is_flag=True, help="Disable mixed precision on CUDA.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch.")
@click.option(
    "--stop-after",
    "stop_after",
    default=None,
    type=click.IntRange(min=1),
    help="Train at most N epochs in this call, then stop as if interrupted; --resume "
    "continues on the same schedule (for jobs with a time limit).",
)
@threads_option
@quiet_option
@one_line_errors
def train(
    model: str,
    model_config: Optional[str],
    task: Optional[str],
    out: Optional[str],
    mode: str,
    device: str,
    no_amp: bool,
    resume: bool,
    stop_after: Optional[int],
    cv: Optional[int],
    seeds: int,
    threads: Optional[int],
    quiet: bool,
    **given: Any,
) -> None:
    """Train a model on one or more cell types of the benchmark layout (--data-root,
    --cell-types), or Chromoformer (--model chromoformer --task clf|reg|diff --meta
    meta.csv --npy-dir DIR --fold K) on its reference layout.

    Keeps the checkpoint with the best validation metric (mean per-cell AUROC, or MSE
    for reg/diff; --keep last: the last epoch's) and reports the evaluation split's
    metrics (the test split; for Chromoformer the validation fold) beside a logistic/ridge
    regression baseline. Runs under ``torchrun --nproc_per_node N`` as
    DistributedDataParallel (NCCL on GPUs, gloo on CPU).
    """
    from ..families import check_options, family_of
    from ..training.config import TrainConfig

    family = family_of(model)
    given = {k: v for k, v in given.items() if v not in (None, ())}
    check_options(family, [k for k in given if k in FAMILY_OPTIONS] + ([task] if task else []))
    task = task or "clf"
    options = {k: v for k, v in given.items() if FAMILY_OPTIONS.get(k) == "model"}
    if model_config is not None:  # any family; its config checks the fields
        from ..models.config import parse_model_options

        try:
            options.update(parse_model_options(model_config))
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--model-config") from None
    fields: dict[str, Any] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in given.items() if k not in options
    }
    out = out or (
        f"runs/{family.architectures[0] if family.name != 'bins' else model}"
        + (f"-{task}-fold{given.get('fold', 1)}" if family.name != "bins" else "")
    )
    if mode == "eval":
        from ..training import evaluate_run, format_metrics

        if resume:
            raise click.UsageError("--resume trains; --mode eval only reports")
        click.echo(
            format_metrics(
                evaluate_run(
                    out,
                    data_root=given.get("data_root"),
                    cell_types=fields.get("cell_types"),
                    device=device,
                    plots=False,  # reports; writes nothing into the run folder
                )
            )
        )
        return
    from ..training import format_metrics, format_run
    from ..training import train as run_training

    tc = TrainConfig(
        out=out,
        family=family.name,
        device=device,
        amp=not no_amp,
        resume=resume,
        stop_after=stop_after,
        quiet=quiet,
        threads=threads,
        **fields,
    )
    if cv is not None or seeds > 1:
        from ..training import cross_validate, format_cv

        if resume:
            raise click.UsageError("--resume continues one run; not with --cv or --seeds")
        result = cross_validate(tc, model, folds=cv, seeds=seeds, task=task, options=options)
        if result:
            click.echo(format_cv(result))
            click.echo(f"per-run metrics: {out}/cv.json; out-of-fold predictions: {out}/oof.tsv")
        return
    ctx = click.get_current_context()
    model_given = ctx.get_parameter_source("model") != click.core.ParameterSource.DEFAULT
    metrics = run_training(tc, model, task=task, options=options, model_given=model_given)
    if metrics:
        click.echo(format_metrics(metrics))
        click.echo(format_run(metrics, out))


@click.command("eval")
@click.argument("run", type=click.Path(exists=True))
@click.option(
    "--data-root",
    "--data_root",
    "data_root",
    default=None,
    type=click.Path(file_okay=False),
    help="bin models: evaluate on this benchmark root (default: the run's own).",
)
@click.option(
    "--cell-types",
    "--cell_types",
    "cell_types",
    cls=ManyValues,
    help="bin models: cell types (default: the run's own).",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@one_line_errors
def evaluate(
    run: str, data_root: Optional[str], cell_types: tuple[str, ...], device: str, as_json: bool
) -> None:
    """Report the metrics of the saved model in RUN (a run folder or .pt file) on its
    evaluation split, beside the baseline, for any model family."""
    from ..training import evaluate_run, format_metrics

    metrics = evaluate_run(
        run, data_root=data_root, cell_types=list(cell_types) or None, device=device, plots=False
    )
    click.echo(json.dumps(metrics, default=float) if as_json else format_metrics(metrics))


if __name__ == "__main__":  # python -m chromaformer.cli.train (used under torchrun)
    train()
