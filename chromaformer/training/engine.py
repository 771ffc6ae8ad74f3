"""The one training loop, for every model family, on one process or under torchrun (DDP).

The family (:mod:`chromaformer.families`) says how to load its data, build its config and
network, compute its loss and metrics; everything else is here, once: seeds, device,
AMP, DDP, gradient clipping, the learning-rate schedule, early stopping, resume,
best/last checkpoints, atomic run-folder outputs and progress.

Inputs are contiguous tensors; batches are index slices of a seeded permutation (no
per-sample Python). ``last.pt`` holds everything needed to resume bit-identically.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

from .._util.atomic import folder_lock
from .._util.progress import bar
from .._util.system import bounded
from ..errors import DataError
from ..families import Family, Split, TrainData, family_for
from ..metrics import (
    BASELINE_NAME,
    BASELINES,
    GAP_METRIC,
    SELECTION,
    fit_baselines,
    is_better,
    metric_gap,
)
from ..models.checkpoint import (
    LAST,
    build_network,
    model_from_checkpoint,
    read_checkpoint,
)
from ..models.config import AnyConfig, canonical_arch, config_from_dict, config_of
from .config import TrainConfig
from .plan import plan_run
from .run_folder import scalars, write_config, write_epoch, write_json
from .start import START_DIR, load_start, resolve_start

ModelSpec = Union[str, AnyConfig]
#: Inputs moved to the GPU once when they take less than this; else batch by batch.
DEVICE_RESIDENT_BYTES = 4 << 30


def resolve_device(name: Union[str, torch.device]) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a clear error for missing CUDA. Under
    torchrun, ``cuda`` (or ``auto`` on a GPU machine) is each process's own GPU,
    ``cuda:LOCAL_RANK``, so NCCL sees one GPU per process."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        local = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(local)
        return local
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(
            f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
            f"cuda build: {torch.version.cuda or 'none'}); use --device cpu"
        )
    if name != "cpu" and not name.startswith("cuda"):
        raise DataError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


class _Dist:
    """Process group facts; a single process when not launched by torchrun."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world > 1
        self.device = device
        if self.active and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def from_main(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank: a decision that all ranks must take alike."""
        if not self.active:
            return flag
        t = torch.tensor([1 if flag else 0], device=self.device)
        torch.distributed.broadcast(t, src=0)
        return bool(t.item())


def _tensors(arrays: Sequence[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Zero-copy CPU tensors, moved to the GPU once when they fit."""
    ts = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    if device.type == "cuda" and sum(t.nbytes for t in ts) < DEVICE_RESIDENT_BYTES:
        ts = [t.to(device) for t in ts]
    return ts


def _take(
    ts: Sequence[torch.Tensor], idx: torch.Tensor, device: torch.device
) -> list[torch.Tensor]:
    return [t[idx.to(t.device)].to(device, non_blocking=True) for t in ts]


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    inputs: Sequence[Union[np.ndarray, torch.Tensor]],
    *,
    batch_size: int = 2048,
    device: Union[str, torch.device, None] = None,
) -> np.ndarray:
    """What the metrics read for each gene (P(class 1), or the predicted value), in eval
    mode, batched. ``inputs`` are the network's inputs, each ``(genes, ...)``."""
    cfg = config_of(model)
    family = family_for(cfg)
    dev = resolve_device(device) if device is not None else next(model.parameters()).device
    ts = [torch.as_tensor(x) for x in inputs]
    n = len(ts[0])
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, n, batch_size):
        xs = [t[i : i + batch_size].to(dev) for t in ts]
        out.append(family.prediction(cfg.task, model(*xs), cfg).double().cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.empty(0, np.float64)


def lr_factor(
    schedule: str, steps_per_epoch: int, epochs: int, warmup: float, gamma: float
) -> Callable[[int], float]:
    """The learning-rate multiplier of optimiser step ``s`` (a LambdaLR stepped once per
    batch): ``step`` = ``gamma`` per epoch; ``cosine`` = linear warm-up over ``warmup``
    of all steps, then cosine decay to 0."""
    total = steps_per_epoch * epochs
    warm = int(warmup * total)

    def step_rule(s: int) -> float:
        return float(gamma ** (s // steps_per_epoch))

    def cosine_rule(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm))))

    return cosine_rule if schedule == "cosine" else step_rule


def check_training_labels(family: str, task: str, data: TrainData, tc: TrainConfig) -> None:
    """Refuse, before any epoch, training labels of one class (a classifier has nothing
    to learn, and the metrics would fail only at the end)."""
    if task != "clf":
        return
    classes = np.unique(np.asarray(data.train.target))
    if len(classes) < 2:
        where = tc.data_root or tc.meta or "the training data"
        only = int(classes[0]) if len(classes) else "none"
        raise DataError(
            f"{where}: every one of the {len(data.train)} training genes has label {only}: "
            "expected both expressed (1) and silent (0) genes (a file prepared without "
            "--expression is for scoring, not training)"
        )


def held_out_notes(data: TrainData) -> list[str]:
    """A warning for each evaluation split that shares genes with the training split (the
    same id and the same signal): its figures would not be held-out figures."""

    def keys(split: Any) -> set[tuple[str, int]]:
        flat = np.ascontiguousarray(split.features)
        return {(str(g), hash(row.tobytes())) for g, row in zip(split.gene_ids, flat)}

    seen = keys(data.train)
    notes = []
    for split in {id(s): s for s in (data.valid, data.evaluation)}.values():
        shared = len(keys(split) & seen)
        if shared:
            notes.append(
                f"warning: {shared:,} of the {len(split):,} {split.name} genes are also "
                "training genes (the same id and signal): its figures are not held out "
                "(make the splits from different genes, or simulate them with different seeds)"
            )
    return notes


def _say(tc: TrainConfig, dist: _Dist, text: str) -> None:
    """A note on stderr (rank 0 only); --quiet silences notes, never warnings."""
    if dist.main and (not tc.quiet or text.startswith("warning:")):
        print(text, file=sys.stderr)


def train(
    tc: TrainConfig,
    model: ModelSpec = "hybrid",
    *,
    task: str = "clf",
    options: Optional[dict[str, Any]] = None,
    data: Optional[TrainData] = None,
    baselines: Optional[dict[str, np.ndarray]] = None,
    model_given: bool = True,
) -> dict[str, Any]:
    """Train ``model`` (an architecture name, or a config object) on ``tc``'s data;
    returns (and writes) the run's metrics. ``task``/``options`` apply to a name:
    the task (clf; reg, diff for Chromoformer) and model hyperparameters. ``data``:
    splits already loaded by the family (cross-validation passes its folds);
    ``baselines``: each baseline's predictions on its evaluation split, fitted by the
    caller (cross-validation fits them once per fold, not once per seed), else fitted
    here on the training split.

    Writes into ``tc.out``: best.pt, last.pt, config.json, log.csv, metrics.json (and
    roc.png, pr.png for clf), holding the folder's lock (a second run into it is refused
    while this one runs). With ``tc.resume`` a ``model`` name other than the run's is
    refused unless ``model_given`` is False (the command line's default, not a choice).
    Raises DataError/FormatError on bad data or options.
    """
    # one writer per run folder: the main process (rank 0 under torchrun) holds its lock
    main = int(os.environ.get("RANK", "0")) == 0
    with folder_lock(tc.out, "training") if main else contextlib.nullcontext():
        return _train(tc, model, task, options, data, baselines, model_given)


def _train(
    tc: TrainConfig,
    model: ModelSpec,
    task: str,
    options: Optional[dict[str, Any]],
    data: Optional[TrainData],
    baselines: Optional[dict[str, np.ndarray]],
    model_given: bool,
) -> dict[str, Any]:
    family = family_for(model)
    tc = tc.for_family(family.name)
    rc = tc.recipe
    device = resolve_device(tc.device)
    if tc.threads:
        torch.set_num_threads(bounded(tc.threads) or 1)
    out = Path(tc.out)
    dist = _Dist(device)
    state: Optional[dict[str, Any]] = None
    mc: Optional[AnyConfig] = None if isinstance(model, str) else model
    if tc.resume:
        last_path = out / LAST
        if not last_path.exists():
            raise DataError(f"{last_path}: nothing to resume (no last.pt in {out})")
        state = read_checkpoint(last_path)
        if not isinstance(state.get("config"), dict) or "state_dict" not in state:
            raise DataError(f"{last_path}: not a run's last.pt (no config or weights)")
        mc = config_from_dict(state["config"])
        if isinstance(model, str) and model_given:
            asked = canonical_arch(model) if family.name == "bins" else model
            if asked != mc.arch:
                raise DataError(
                    f"--resume: {out} is a {mc.arch} run, not {asked}; leave --model out "
                    "to continue it, or give another --out"
                )
    if mc is not None:
        task = mc.task
    if data is None:
        data = family.load(tc, task)
    check_training_labels(family.name, task, data, tc)
    for note in data.notes:
        _say(tc, dist, f"note: {note}")
    for warning in held_out_notes(data):
        _say(tc, dist, warning)
    n = len(data.train)
    if mc is None:  # a name: the recipe may extend its model options
        arch = canonical_arch(str(model)) if family.name == "bins" else str(model)
        plan = plan_run(n, rc, task, arch, options)
        mc = family.model_config(arch, task, data.layout, plan.options)
        towers = getattr(mc, "towers", 1)
        if towers > 1 and "towers" not in plan.options:
            _say(
                tc,
                dist,
                f"note: {mc.arch} is {towers} towers in one network, each from its own "
                "random start and trained on its own loss, their probabilities averaged "
                "(its default; --model-config '{\"towers\": 1}': one, at "
                f"1/{towers} of the cost)",
            )
    else:  # a config given whole (or resumed): its options stand
        plan = plan_run(n, rc, task)
    family.check_layout(mc, data.layout, "the training data")

    torch.manual_seed(rc.seed)
    np.random.seed(rc.seed)
    network = build_network(mc).to(device)
    start_from: Optional[Path]
    if state is not None:
        network.load_state_dict(state["state_dict"])
        start_from = Path(state["start"]) if state.get("start") else None  # for its rate
    else:
        start_from = resolve_start(rc.init, mc, plan.few_genes)
        if start_from is not None:
            load_start(network, start_from, mc)
            shipped = start_from.parent == START_DIR
            _say(
                tc,
                dist,
                (
                    f"note: {n} training genes, fewer than one batch ({rc.batch_size}): the "
                    f"network starts from the shipped starting weights {start_from.name} "
                    "(--init none: random)"
                    if shipped
                    else f"note: the network starts from the weights of {start_from}"
                ),
            )
    net: torch.nn.Module = network
    if dist.active:
        net = torch.nn.parallel.DistributedDataParallel(
            network,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=family.unused_parameters,
        )
    for note in plan.notes:
        _say(tc, dist, note)
    if start_from is not None:  # learned weights: the recipe's start_lr
        started = plan.starting(rc)
        for note in started.notes[len(plan.notes) :]:
            _say(tc, dist, note)
        plan = started
    batch_size, passes, epochs = plan.batch_size, plan.passes, plan.epochs
    patience, selection, peak_lr = plan.patience, plan.selection, plan.peak_lr
    steps_per_epoch = plan.steps_per_epoch
    opt_class = torch.optim.AdamW if rc.optimizer == "adamw" else torch.optim.Adam
    opt = opt_class(network.parameters(), lr=peak_lr, weight_decay=rc.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_factor(rc.schedule, steps_per_epoch, epochs, rc.warmup, rc.lr_gamma)
    )
    use_amp = tc.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    start_epoch, best_epoch, stale = 0, -1, 0
    best_valid: Optional[dict[str, Any]] = None
    history: list[dict[str, Any]] = []
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, best_epoch = state["epoch"], state["best_epoch"]
        best_valid, history, stale = state["best_valid"], state["history"], state["stale"]
        torch.set_rng_state(state["rng"])
        if scaler.is_enabled() and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])

    ema = None
    if rc.ema > 0:  # the weights' moving average, updated after every optimiser step
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(rc.ema), use_buffers=True)
        if state is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
    judged = network if ema is None else ema.module

    x_train = _tensors(data.train.inputs, device)
    y_train = torch.from_numpy(data.train.target.astype(family.target_dtype(task)))
    if x_train[0].device.type == device.type:
        y_train = y_train.to(device)
    key = (selection or SELECTION[task])[0]
    if dist.main:
        write_config(out, tc.to_dict(), mc.to_dict())
    extra = {
        "cell_types": data.info.get("cell_types", []),
        "fold": data.info.get("fold"),
        "task": task,
        "train_config": tc.to_dict(),
        "start": None if start_from is None else str(start_from),
    }

    for epoch in range(start_epoch, epochs):
        if tc.stop_after is not None and epoch - start_epoch >= tc.stop_after:
            _say(tc, dist, f"stopped after {tc.stop_after} epochs (--resume continues)")
            break
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]  # the epoch's first step's rate (logged)
        net.train()
        gen = torch.Generator().manual_seed(rc.seed * 100_003 + epoch)
        batches = [
            perm[start : start + batch_size]
            for perm in (torch.randperm(n, generator=gen) for _ in range(passes))
            for start in range(0, n, batch_size)
        ]
        total, seen = 0.0, 0
        progress = bar(
            total=n * passes,
            quiet=tc.quiet or not dist.main,
            unit="gene",
            desc=f"epoch {epoch + 1}/{epochs}",
        )
        for idx in batches:
            global_n = len(idx)
            if dist.active:
                idx = idx.tensor_split(dist.world)[dist.rank]
            xs = _take(x_train, idx, device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                outputs = net(*xs)
            # sum / global batch * world: DDP's mean over ranks gives the global mean
            loss = family.loss(task, outputs, y_train[idx.to(y_train.device)].to(device), mc)
            loss = loss * (dist.world / global_n)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if rc.clip and rc.clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(network.parameters(), rc.clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            if ema is not None:
                ema.update_parameters(network)
            total += float(loss.detach()) * global_n / dist.world
            seen += global_n
            progress.update(global_n)
            progress.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
        progress.close()
        train_seconds = time.perf_counter() - t0
        valid: dict[str, Any] = {}
        improved = False
        if dist.main:  # validation on rank 0 alone; the others take its decision
            valid = family.metrics(
                task,
                data.valid,
                predict(
                    judged, data.valid.inputs, batch_size=tc.recipe.eval_batch_size, device=device
                ),
            )
            # keep last: every epoch replaces the kept weights, validation picks nothing
            improved = rc.keep == "last" or is_better(task, valid, best_valid, selection)
        improved = dist.from_main(improved)
        if improved:
            best_valid, best_epoch, stale = valid, epoch + 1, 0
        else:
            stale += 1
        row = {
            "epoch": epoch + 1,
            "train_loss": total / max(seen, 1),
            **scalars("valid_", valid),
            "lr": lr,
            "epoch_seconds": train_seconds,
        }
        history.append(row)
        if dist.main:
            resume = {
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "best_valid": best_valid,
                "best_epoch": best_epoch,
                "stale": stale,
                "rng": torch.get_rng_state(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "ema": ema.state_dict() if ema is not None else None,
            }
            write_epoch(
                out,
                network,
                history,
                improved=improved,
                valid=valid,
                resume=resume,
                extra=extra,
                judged=judged,
            )
        if dist.main:
            _say(
                tc,
                dist,
                f"epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f}, valid "
                f"{key} {valid[key]:.4f}{' *' if improved else ''} ({train_seconds:.1f} s)",
            )
        dist.barrier()
        if patience and stale >= patience:
            _say(tc, dist, f"early stop: no improvement for {patience} epochs")
            break

    if not dist.main:
        return {}
    metrics = evaluate_model(
        out,
        family,
        tc,
        data,
        model_from_checkpoint(read_checkpoint(out)),
        device,
        plots=tc.plots,
        baselines=baselines,
    )
    metrics.update(
        {
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "optimizer_steps": len(history) * steps_per_epoch,
            "peak_lr": peak_lr,
            "batch_size": batch_size,
            "epoch_seconds": [h["epoch_seconds"] for h in history],
            "history": history,
            "best_valid": best_valid,
            "notes": data.notes,
            "start": extra["start"],
            "device": str(device),
            "world_size": dist.world,
            **data.info,
        }
    )
    write_json(out / "metrics.json", metrics)
    return metrics


def evaluate_model(
    run: Path,
    family: Family,
    tc: TrainConfig,
    data: Any,
    model: torch.nn.Module,
    device: torch.device,
    plots: bool,
    baselines: Optional[dict[str, np.ndarray]] = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on the evaluation split beside the task's baselines (their
    predictions there when given, else fitted on the training split)."""
    cfg = config_of(model)
    task = cfg.task
    ev: Split = data.evaluation
    scores = predict(
        model.to(device), ev.inputs, batch_size=tc.recipe.eval_batch_size, device=device
    )
    bases = baselines
    if bases is None:
        bases = fit_baselines(task, data.train.features, data.train.target, ev.features)
    base_metrics = {k: family.metrics(task, ev, p) for k, p in bases.items()}
    name = str(getattr(cfg, "arch", family.name))
    result: dict[str, Any] = {
        "model": name,
        "family": family.name,
        "task": task,
        "cell_types": list(ev.group_names),
        "evaluated_on": ev.name,
        "genes": {"train": len(data.train), "valid": len(data.valid), ev.name: len(ev)},
        "test": family.metrics(task, ev, scores),
        "baseline": base_metrics["linear"],
        "baseline_name": BASELINE_NAME[task],
        "baselines": base_metrics,
        "baseline_names": dict(BASELINES[task]),
    }
    if task in ("clf", "reg"):  # the gaps to the baselines, with the noise of the genes
        result["gaps"] = {k: metric_gap(task, ev.target, scores, p) for k, p in bases.items()}
        result["gap_metric"] = GAP_METRIC[task]
    if plots and task == "clf" and run.is_dir():
        from .plots import plot_curves

        names = dict(BASELINES[task])
        plot_curves(
            run,
            ev.target,
            scores,
            ev.groups,
            ev.group_names,
            name,
            ev.name,
            baselines={names[k]: p for k, p in bases.items()},
        )
    return result


def evaluate_run(
    run: Union[str, os.PathLike],
    *,
    data_root: Optional[str] = None,
    cell_types: Optional[Sequence[str]] = None,
    device: str = "cpu",
    plots: bool = True,
    quiet: bool = True,
) -> dict[str, Any]:
    """Metrics of a saved run on its evaluation split (test; Chromoformer: its validation
    fold) beside the baseline. The data are the run's own (``config.json``) unless
    ``data_root``/``cell_types`` name others."""
    run = Path(run)
    ckpt = read_checkpoint(run)
    model = model_from_checkpoint(ckpt)
    family = family_for(config_of(model))
    saved = run / "config.json" if run.is_dir() else run.parent / "config.json"
    given = {k: v for k, v in (("data_root", data_root), ("cell_types", cell_types)) if v}
    if saved.exists():
        base = json.loads(saved.read_text())["train"]
    elif isinstance(ckpt.get("train_config"), dict):
        base = ckpt["train_config"]
    else:
        base = {"out": str(run)}
    tc = TrainConfig.from_dict({**base, **given, "quiet": quiet}).for_family(family.name)
    data = family.load(tc, config_of(model).task)
    family.check_layout(config_of(model), data.layout, "the evaluation data")
    return evaluate_model(
        run if run.is_dir() else run.parent, family, tc, data, model, resolve_device(device), plots
    )
