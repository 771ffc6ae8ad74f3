"""Cross-validation and seed repeats through the one engine, for every model family.

``cross_validate(tc, model, folds=K, seeds=N)`` pools the genes of the train and valid
splits (the test split is never touched), cuts them into K folds (stratified by label for
clf; by chromosome when the family knows the genes' chromosomes and there are at least K
of them), and for each fold k and seed trains on the other folds but one, picks the best
epoch on that one (fold k+1), and scores fold k; with ``keep="last"`` (nothing to pick)
it trains on every other fold and keeps the schedule's last epoch. The baselines are
fitted once per fold, on all genes outside fold k; each run folder's metrics report those
same baselines. ``folds=None`` repeats the run's own split ``seeds`` times instead.

Writes into ``tc.out``: one run folder per fold and seed (``fold1-seed1/`` ...),
``cv.json`` (per-run metrics of the model and the baselines, mean and sd) and
``oof.tsv`` (every gene's out-of-fold prediction, beside the baselines'). Seeds of a
bin model on the run's own split are also averaged into one ensemble run
(``ensemble/``, see :mod:`chromaformer.training.ensemble`), ready to export.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._util.atomic import atomic_path, folder_lock
from ..errors import DataError
from ..families import Split, TrainData, family_for
from ..metrics import (
    BASELINES,
    GAP_METRIC,
    SELECTION,
    beaten_by,
    describe_gap,
    fit_baselines,
    metric_gap,
)
from ..models.checkpoint import model_from_checkpoint, read_checkpoint
from .config import TrainConfig
from .engine import ModelSpec, predict, resolve_device, train
from .report import beaten_note

#: Shown beside the selection metric (mse) for regression: what a lab compares.
REG_SHOWN = ("pearson_r", "spearman")


def _shown(task: str, key: str) -> tuple[str, ...]:
    """The metrics a report gives per run: the selection metric, and for reg REG_SHOWN."""
    return (key, *REG_SHOWN) if task == "reg" else (key,)


def _concat(a: Split, b: Split, name: str) -> Split:
    if a.group_names != b.group_names:
        raise DataError("train and valid splits name different cell types")
    return Split(
        name,
        [np.concatenate([x, y]) for x, y in zip(a.inputs, b.inputs)],
        np.concatenate([a.target, b.target]),
        np.concatenate([a.gene_ids, b.gene_ids]),
        np.concatenate([a.groups, b.groups]),
        a.group_names,
        np.concatenate([a.features, b.features]),
    )


def _take(s: Split, idx: np.ndarray, name: str) -> Split:
    return Split(
        name,
        [x[idx] for x in s.inputs],
        s.target[idx],
        s.gene_ids[idx],
        s.groups[idx],
        s.group_names,
        s.features[idx],
    )


def assign_cv_folds(
    target: np.ndarray, k: int, seed: int, task: str, chroms: Optional[np.ndarray] = None
) -> tuple[np.ndarray, str]:
    """A fold (0..k-1) per gene and how they were cut: whole chromosomes (balanced by
    gene count) when ``chroms`` has at least ``k`` of them, else stratified by label
    (clf) or at random."""
    n = len(target)
    if k < 2 or k > n:
        raise DataError(f"--cv {k}: need 2 <= K <= the number of genes ({n})")
    if chroms is not None and len(np.unique(chroms)) >= k:
        names, counts = np.unique(chroms, return_counts=True)
        load = np.zeros(k)
        fold_of = {}
        for i in np.argsort(-counts, kind="stable"):  # largest first, onto the lightest fold
            f = int(np.argmin(load))
            fold_of[names[i]] = f
            load[f] += counts[i]
        return np.array([fold_of[c] for c in chroms]), "by chromosome"
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = np.empty(n, dtype=np.int64)
    labels = np.asarray(target)
    if task == "clf" and np.bincount(labels.astype(np.int64)).min() >= k:
        splitter: Any = StratifiedKFold(k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(n), labels)
        how = "stratified by label"
    else:
        parts = KFold(k, shuffle=True, random_state=seed).split(np.zeros(n))
        how = "at random"
    for f, (_, test) in enumerate(parts):
        folds[test] = f
    return folds, how


def _summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(np.nanmean(v)) if len(v) else float("nan"),
        "sd": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0,
        "n": int(len(v)),
    }


def cross_validate(
    tc: TrainConfig,
    model: ModelSpec = "hybrid",
    *,
    folds: Optional[int] = 5,
    seeds: int = 1,
    task: str = "clf",
    options: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """K-fold cross-validation (``folds``) and/or ``seeds`` repeats; see the module doc.
    Returns (and writes to ``tc.out/cv.json``) the per-run and summary metrics. Holds
    ``tc.out``'s lock while it runs (rank 0 under torchrun)."""
    main = int(os.environ.get("RANK", "0")) == 0
    with folder_lock(tc.out, "cross-validation") if main else contextlib.nullcontext():
        return _cross_validate(tc, model, folds, seeds, task, options)


def _cross_validate(
    tc: TrainConfig,
    model: ModelSpec,
    folds: Optional[int],
    seeds: int,
    task: str,
    options: Optional[dict[str, Any]],
) -> dict[str, Any]:
    family = family_for(model)
    tc = tc.for_family(family.name)
    if seeds < 1:
        raise DataError(f"--seeds {seeds}: expected at least 1")
    out = Path(tc.out)
    task = getattr(model, "task", task)
    data = family.load(tc, task)
    key, _ = SELECTION[task]
    base_names = dict(BASELINES[task])
    runs: list[dict[str, Any]] = []
    oof: list[tuple[str, int, int, float, float, dict[str, float]]] = []
    notes = list(data.notes)
    plans: list[tuple[str, TrainData, Split, int]] = []
    if folds is None:
        plans.append(("run", data, data.evaluation, -1))
        how = "the run's own split"
    else:
        pool = _concat(data.train, data.valid, "cv")
        assignment, how = assign_cv_folds(
            pool.target, folds, int(tc.seed or 0), task, data.info.get("chroms")
        )
        last = tc.recipe.keep == "last"
        for f in range(folds):
            te = np.flatnonzero(assignment == f)
            if last:  # nothing is selected: train on every gene outside fold k (as the
                # baselines are fitted); its per-epoch validation figures are fold k's
                tr, va = np.flatnonzero(assignment != f), te
            else:  # fold k+1 picks the epoch
                valid_fold = (f + 1) % folds
                tr = np.flatnonzero((assignment != f) & (assignment != valid_fold))
                va = np.flatnonzero(assignment == valid_fold)
            plans.append(
                (
                    f"fold{f + 1}",
                    replace(
                        data,
                        train=_take(pool, tr, "train"),
                        valid=_take(pool, va, "valid"),
                        evaluation=_take(pool, te, f"fold {f + 1}"),
                        notes=[],
                    ),
                    _take(pool, np.flatnonzero(assignment != f), "train+valid"),
                    f,
                )
            )
    device = resolve_device(tc.device)
    for name, fold_data, outside, f in plans:
        ev = fold_data.evaluation
        # the baselines see every gene outside the scored fold (the model: all but its
        # validation fold); on the run's own split they see the training genes
        fit_on = outside if f >= 0 else fold_data.train
        base_preds = fit_baselines(task, fit_on.features, fit_on.target, ev.features)
        base_metrics = {k: family.metrics(task, ev, p) for k, p in base_preds.items()}
        for s in range(seeds):
            seed = int(tc.seed or 0) + s
            run_dir = out / f"{name}-seed{seed}"
            run_tc = replace(tc, out=str(run_dir), seed=seed, resume=False, plots=False)
            metrics = train(
                run_tc, model, task=task, options=options, data=fold_data, baselines=base_preds
            )
            if not metrics:  # a non-main DDP rank
                continue
            net = model_from_checkpoint(read_checkpoint(run_dir))
            pred = predict(net.to(device), ev.inputs, batch_size=tc.recipe.eval_batch_size)
            m = family.metrics(task, ev, pred)
            runs.append(
                {
                    "fold": f + 1 if f >= 0 else None,
                    "seed": seed,
                    "genes": {"train": len(fold_data.train), "valid": len(fold_data.valid)},
                    "scored": len(ev),
                    "best_epoch": metrics["best_epoch"],
                    "epochs_run": metrics["epochs_run"],
                    "model": m,
                    "baselines": base_metrics,
                }
            )
            for i in range(len(ev)):
                oof.append(
                    (
                        str(ev.gene_ids[i]),
                        f + 1,
                        seed,
                        float(ev.target[i]),
                        float(pred[i]),
                        {k: float(p[i]) for k, p in base_preds.items()},
                    )
                )
    if not runs:
        return {}
    result = _report(task, key, runs, oof, base_names, folds, seeds, how, notes, family.name)
    if folds is None and seeds > 1 and family.name == "bins":
        from .ensemble import ensemble_run

        members = [out / f"run-seed{r['seed']}" for r in runs]
        ens = ensemble_run(
            members, out / "ensemble", device=tc.device if tc.device != "auto" else "cpu"
        )
        shown = _shown(task, key)
        result["ensemble"] = {"run": str(out / "ensemble"), **{m: ens["test"][m] for m in shown}}
    result["model_name"] = str(getattr(model, "arch", model))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "cv.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    with atomic_path(out / "oof.tsv") as tmp, open(tmp, "w") as fh:
        fh.write("\t".join(["gene_id", "fold", "seed", "observed", "model", *base_names]) + "\n")
        for gene, fold, seed, obs, p, b in oof:
            fh.write(
                # every digit: a probability within 1e-6 of 0 or 1 keeps its rank
                f"{gene}\t{fold if fold > 0 else ''}\t{seed}\t{obs:g}\t{p!r}\t"
                + "\t".join(repr(b[k]) for k in base_names)
                + "\n"
            )
    return result


def _report(
    task: str,
    key: str,
    runs: list[dict[str, Any]],
    oof: list,
    base_names: dict[str, str],
    folds: Optional[int],
    seeds: int,
    how: str,
    notes: list[str],
    family: str,
) -> dict[str, Any]:
    """Mean and sd over runs of the selection metric (and AUPR for clf), for the model
    and each baseline; for clf also the pooled out-of-fold AUROC per seed and, with
    several seeds, that of their predictions averaged per gene."""
    from ..metrics import auroc_aupr

    shown = _shown(task, key)

    def values(pick, metric=key) -> list[float]:
        return [float(pick(r).get(metric, float("nan"))) for r in runs]

    summary: dict[str, Any] = {
        "model": {m: _summary(values(lambda r: r["model"], m)) for m in shown}
    }
    for b in base_names:
        summary[b] = {m: _summary(values(lambda r, b=b: r["baselines"][b], m)) for m in shown}
    if task == "clf":
        summary["model"]["mean_aupr"] = _summary(
            [float(r["model"].get("mean_aupr", float("nan"))) for r in runs]
        )
        pooled: dict[str, list[float]] = {"model": [], **{b: [] for b in base_names}}
        for seed in sorted({row[2] for row in oof}):
            rows = [row for row in oof if row[2] == seed]
            y = np.array([row[3] for row in rows])
            pooled["model"].append(auroc_aupr(y, np.array([row[4] for row in rows]))["auroc"])
            for b in base_names:
                pooled[b].append(auroc_aupr(y, np.array([row[5][b] for row in rows]))["auroc"])
        for name, vals in pooled.items():
            summary[name]["pooled_auroc"] = _summary(vals)
        if seeds > 1:  # the seeds' predictions averaged per gene: their ensemble's AUROC
            genes: dict[str, list] = {}
            for row in oof:
                genes.setdefault(row[0], [row[3], []])[1].append(row[4])
            y = np.array([v[0] for v in genes.values()])
            mean = np.array([np.mean(v[1]) for v in genes.values()])
            summary["model"]["pooled_auroc_seeds_averaged"] = auroc_aupr(y, mean)["auroc"]
    seed_list = sorted({row[2] for row in oof})
    return {
        "gaps": _pooled_gaps(task, oof, base_names),
        # each seed's model alone (a single model's edge, not the seeds' ensemble's)
        "gaps_per_seed": (
            {str(sd): _pooled_gaps(task, oof, base_names, sd) for sd in seed_list}
            if len(seed_list) > 1
            else {}
        ),
        "task": task,
        "family": family,
        "folds": folds,
        "seeds": seeds,
        "split": how,
        "metric": key,
        "baseline_names": base_names,
        "summary": summary,
        "runs": runs,
        "notes": notes,
    }


def _pooled_gaps(
    task: str, oof: list, base_names: dict[str, str], seed: Optional[int] = None
) -> dict[str, Any]:
    """Each baseline's gap to the model over every gene scored (pooled out of fold, the
    seeds' predictions averaged per gene, or ``seed``'s alone), with its paired bootstrap
    interval."""
    if task not in GAP_METRIC or not oof:
        return {}
    genes: dict[str, list] = {}
    for gene, _, s, obs, p, b in oof:
        if seed is not None and s != seed:
            continue
        genes.setdefault(gene, [obs, [], b])[1].append(p)
    y = np.array([v[0] for v in genes.values()])
    model = np.array([np.mean(v[1]) for v in genes.values()])
    return {
        b: metric_gap(task, y, model, np.array([v[2][b] for v in genes.values()]))
        for b in base_names
    }


def format_cv(result: dict[str, Any]) -> str:
    """The summary table: mean +- sd of the selection metric per run (and pooled
    out-of-fold AUROC for clf), the model beside each baseline."""
    key = result["metric"]
    names = {"model": result.get("model_name", "model"), **result["baseline_names"]}
    what = (
        f"{result['folds']}-fold cross-validation ({result['split']})"
        if result["folds"]
        else "the run's own split"
    )
    lines = [f"{what}, {result['seeds']} seed(s); {key}: mean +- sd over runs"]
    pooled = result["task"] == "clf"
    head = "pooled out-of-fold AUROC" if result["folds"] else "pooled AUROC"
    more = [m for m in REG_SHOWN if m in result["summary"]["model"]]
    lines.append(
        f"{'':<22}{key:>20}" + (f"{head:>28}" if pooled else "") + "".join(f"{m:>24}" for m in more)
    )
    for k, label in names.items():
        s = result["summary"][k]
        row = f"{label[:22]:<22}{s[key]['mean']:>12.4f} +- {s[key]['sd']:.4f}"
        row += "".join(f"{s[m]['mean']:>16.4f} +- {s[m]['sd']:.4f}" for m in more)
        if pooled:
            p = s["pooled_auroc"]
            row += f"{p['mean']:>18.4f} +- {p['sd']:.4f}"
        lines.append(row)
    averaged = result["summary"]["model"].get("pooled_auroc_seeds_averaged")
    if averaged is not None:
        lines.append(
            f"{'the seeds averaged':<22}{'':>20}{averaged:>18.4f}"
            "   (per gene, as in one ensemble model)"
        )
    if "ensemble" in result:
        ens = result["ensemble"]
        lines.append(
            f"{'ensemble of the seeds':<22}{ens[key]:>12.4f}"
            + "".join(f"{ens[m]:>25.4f}" for m in more if m in ens)
            + f"   (one model: {ens['run']})"
        )
    gaps = result.get("gaps") or {}
    if gaps:
        lines.append(
            f"{GAP_METRIC[result['task']]} of the model minus each baseline's over every gene "
            "scored (seeds averaged; paired bootstrap):"
        )
        lines += [f"  {describe_gap(names.get(k, k), g)}" for k, g in gaps.items()]
    for seed, seed_gaps in (result.get("gaps_per_seed") or {}).items():
        lines.append(f"  seed {seed} alone:")
        lines += [f"    {describe_gap(names.get(k, k), g)}" for k, g in seed_gaps.items()]
    means = {k: {key: s[key]["mean"]} for k, s in result["summary"].items()}
    model = means.pop("model")
    beaten = beaten_by(result["task"], model, means)
    if beaten:
        lines.append(beaten_note(beaten, "the model here"))
    return "\n".join(lines)
