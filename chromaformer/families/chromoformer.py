"""The Chromoformer family (Lee et al. 2022): clf / reg / diff over the reference layout
(``meta.csv`` + ``{chrom}:{start}-{end}.npy``), cross-validated by chromosome.

Folds follow the reference: genes carry a ``split`` (1-4, whole chromosomes); fold k
trains on the other three and validates on split k. A meta whose split column does not
name at least two folds (the reference's own demo data put every gene in one split)
gets folds by chromosome, or by gene order when it has one chromosome, with a note.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..contract import (
    CHROMOFORMER_OUTPUTS,
    PRIMARY_OUTPUT,
    ModelInfo,
    chromoformer_input_names,
)
from ..data.chromoformer import ChromoformerSet, joint_inputs, load_chromoformer, read_meta
from ..errors import DataError
from ..layout import CHROMOFORMER_FOLDS, assign_folds, formula_like, name_problem
from ..models.config import ChromoformerConfig
from .base import Chunk, Family, Split, TrainData

DOC = (
    "chromaformer Chromoformer ({task}). Per gene: the promoter (TSS +- 20 kb) binned at "
    "{sizes} bp, log(mean depth + 1) per bin, 5'->3' on the gene's strand; up to {i_max} "
    "interacting regions binned alike, centred and zero-padded; their lengths in bp (0 = "
    "none) and interaction scores. Marks: {marks}. Dynamic batch."
)


def cells_for(task: str) -> int:
    """How many cells' inputs a task takes (2 for diff: cell a, then cell b)."""
    return 2 if task == "diff" else 1


def load_sets(
    metas: Sequence[str],
    npy_dirs: Sequence[str],
    task: str,
    *,
    bin_sizes: Optional[Sequence[int]] = None,
    i_max: Optional[int] = None,
    channels: Optional[int] = None,
    threads: Optional[int] = None,
    cache_dir: Optional[str] = None,
    progress: Any = None,
    genes: Optional[Sequence[str]] = None,
    tables: Optional[Sequence[Any]] = None,
) -> list[ChromoformerSet]:
    """The binned sets of a task: one cell, or for diff cell a then cell b restricted to
    the genes both metas hold, in cell a's order. ``genes``: only these (from
    :func:`task_genes`), in this order; ``tables``: the metas already read."""
    want = cells_for(task)
    if len(metas) != want or len(npy_dirs) != want:
        raise DataError(
            f"task {task} takes {want} --meta and {want} --npy-dir "
            f"(got {len(metas)} and {len(npy_dirs)})"
        )
    kw: dict[str, Any] = dict(
        channels=channels, threads=threads, cache_dir=cache_dir, progress=progress
    )
    if bin_sizes is not None:
        kw["bin_sizes"] = tuple(bin_sizes)
    if i_max is not None:
        kw["i_max"] = i_max
    if genes is None and task == "diff":  # the genes both cells hold, in cell a's order
        genes, tables = task_genes(metas, task)
    if genes is None:
        return [load_chromoformer(metas[0], npy_dirs[0], **kw)]
    given = tables or [None] * want
    return [
        load_chromoformer(m, d, genes=genes, meta_table=t, **kw)
        for m, d, t in zip(metas, npy_dirs, given)
    ]


def task_genes(metas: Sequence[str], task: str) -> tuple[list[str], list[Any]]:
    """The genes a task scores, in cell a's order (for diff: those cell b also holds),
    and the metas read (to pass on as ``load_sets(tables=...)``)."""
    tables = [read_meta(m) for m in metas[: cells_for(task)]]
    genes = [str(g) for g in tables[0].gene_id]
    if task == "diff":
        other = set(tables[1].gene_id)
        genes = [g for g in genes if g in other]
        if not genes:
            raise DataError(f"{metas[0]} and {metas[1]} share no gene id")
    return genes, tables


def observed(task: str, sets: Sequence[ChromoformerSet]) -> Optional[np.ndarray]:
    """The truth of ``task`` per gene, when the metas carry it (else None)."""
    if task == "clf":
        return sets[0].labels if sets[0].has_labels else None
    a = np.log2(sets[0].expression + 1.0)
    value = a if task == "reg" else np.log2(sets[1].expression + 1.0) - a
    return None if np.isnan(value).all() else value


def training_folds(s: ChromoformerSet, folds: int = CHROMOFORMER_FOLDS) -> tuple[np.ndarray, str]:
    """Each gene's fold 1..folds: the meta's split column when it names at least two
    folds, else whole chromosomes (balanced), else gene order; and a note saying which."""
    named = np.unique(s.split[(s.split >= 1) & (s.split <= folds)])
    if len(named) >= 2:
        return s.split, ""
    chroms = list(s.chroms)
    if len(set(chroms)) >= 2:
        by_chrom = assign_folds(chroms, folds)
        split = np.array([by_chrom[c] for c in chroms], dtype=np.int64)
        how = f"whole chromosomes ({len(set(chroms))}) balanced over {folds} folds"
    else:
        split = np.arange(len(s)) % folds + 1
        how = f"gene order (one chromosome): gene i in fold i mod {folds} + 1"
    what = f"only split {named[0]}" if len(named) else "no split column"
    return split, (
        f"the meta has {what}: folds assigned by {how}; fold k validates on "
        "them as in the reference"
    )


class ChromoformerFamily(Family):
    name = "chromoformer"
    architectures = ("chromoformer",)
    model_options = ()
    train_options = ("meta", "npy_dir", "fold", "cache_dir")
    tasks = ("clf", "reg", "diff")
    unused_parameters = True  # reference-parity parameters that no forward pass reads

    def load(self, tc: Any, task: str) -> TrainData:
        if not tc.meta or not tc.npy_dir:
            raise DataError("Chromoformer needs --meta and --npy-dir (its reference layout)")
        if not 1 <= tc.fold <= CHROMOFORMER_FOLDS:
            raise DataError(f"--fold must be 1-{CHROMOFORMER_FOLDS}, got {tc.fold}")
        t0 = time.perf_counter()
        sets = load_sets(tc.meta, tc.npy_dir, task, threads=tc.threads, cache_dir=tc.cache_dir)
        load_s = time.perf_counter() - t0
        target = observed(task, sets)
        if target is None or np.isnan(np.asarray(target, np.float64)).any():
            need = "a label" if task == "clf" else "an expression value"
            raise DataError(f"{tc.meta[-1]}: task {task} needs {need} for every gene")
        split, note = training_folds(sets[0])
        val = np.flatnonzero(split == tc.fold)
        train = np.flatnonzero((split != tc.fold) & (split >= 1) & (split <= CHROMOFORMER_FOLDS))
        if not len(val) or not len(train):
            raise DataError(
                f"fold {tc.fold}: {len(train)} training and {len(val)} validation "
                "genes (the meta's split column assigns genes to folds 1-4)"
            )
        cells = (f"fold{tc.fold}",)

        def part(name: str, idx: np.ndarray) -> Split:
            feats = np.concatenate(
                [s.promoters[s.bin_sizes[0]][idx].reshape(len(idx), -1) for s in sets], axis=1
            )
            return Split(
                name,
                joint_inputs(sets, idx),
                np.asarray(target)[idx],
                np.asarray(sets[0].gene_ids)[idx],
                np.zeros(len(idx), dtype=np.int16),
                cells,
                feats,
            )

        valid = part("valid", val)
        n_marks = sets[0].promoters[sets[0].bin_sizes[0]].shape[-1]
        return TrainData(
            part("train", train),
            valid,
            valid,
            {"channels": int(n_marks), "bin_sizes": sets[0].bin_sizes},
            notes=[note] if note else [],
            info={"fold": tc.fold, "load_seconds": load_s, "cell_types": [str(m) for m in tc.meta]},
        )

    def model_config(
        self, arch: str, task: str, layout: dict[str, Any], options: dict[str, Any]
    ) -> ChromoformerConfig:
        try:
            cfg = ChromoformerConfig.checked(**{"task": task, **options})
        except (TypeError, ValueError) as err:
            raise DataError(str(err)) from None
        if layout["channels"] != cfg.n_marks:  # arrays of other marks than the reference's
            cfg.marks = tuple(f"mark{i + 1}" for i in range(layout["channels"]))
        return cfg

    def check_layout(self, cfg: Any, layout: dict[str, Any], where: str) -> None:
        if layout["channels"] != cfg.n_marks or tuple(layout["bin_sizes"]) != cfg.bin_sizes:
            raise DataError(
                f"{where}: arrays of {layout['channels']} marks binned at "
                f"{layout['bin_sizes']}, but the model takes {cfg.n_marks} marks "
                f"at {cfg.bin_sizes}"
            )

    # --- training ---------------------------------------------------------------------
    def loss(self, task: str, out: dict, y: Any, cfg: Any = None) -> Any:
        import torch.nn.functional as F

        if task == "clf":
            return F.cross_entropy(out["logits"].float(), y, reduction="sum")
        return F.mse_loss(out[PRIMARY_OUTPUT[task]].float(), y, reduction="sum")

    def prediction(self, task: str, out: dict, cfg: Any = None) -> Any:
        return out[PRIMARY_OUTPUT[task]].float()

    def target_dtype(self, task: str) -> Any:
        return np.int64 if task == "clf" else np.float32

    # --- export -----------------------------------------------------------------------
    def input_names(self, cfg: Any) -> list[str]:
        return chromoformer_input_names(cfg.bin_sizes, cfg.task)

    def output_names(self, cfg: Any) -> list[str]:
        return list(CHROMOFORMER_OUTPUTS[cfg.task])

    def example_inputs(self, cfg: Any, batch: int, seed: int = 0) -> list[np.ndarray]:
        """Plausible inputs (export tracing, benchmarks): log-depth bins, a varying number
        of regions per gene (none in the first), their lengths and scores."""
        rng = np.random.default_rng(seed)
        lengths = rng.integers(1000, cfg.window, (batch, cfg.i_max))
        lengths[:, cfg.i_max // 2 :] = 0
        lengths[0, :] = 0  # a gene without regions
        one = [
            np.log1p(rng.gamma(1.0, 2.0, (batch, cfg.window // b, cfg.n_marks))).astype(np.float32)
            for b in cfg.bin_sizes
        ]
        one += [
            np.log1p(rng.gamma(1.0, 2.0, (batch, cfg.i_max, cfg.window // b, cfg.n_marks))).astype(
                np.float32
            )
            for b in cfg.bin_sizes
        ]
        one += [
            lengths.astype(np.int64),
            (1.5 + rng.exponential(0.5, (batch, cfg.i_max)) * (lengths > 0)).astype(np.float32),
        ]
        return one * cells_for(cfg.task)

    def export_module(self, model: Any, **options: Any) -> Any:
        from ..models.exportable import DictExportable

        return DictExportable(model, self.output_names(model.config))

    def metadata(self, cfg: Any, ckpt: dict[str, Any]) -> dict[str, str]:
        return {
            "bin_sizes": ",".join(str(b) for b in cfg.bin_sizes),
            "window": str(cfg.window // 2),
            "i_max": str(cfg.i_max),
            "training_fold": str(ckpt.get("fold", "")),
        }

    def doc(self, cfg: Any) -> str:
        return DOC.format(
            task=cfg.task,
            sizes="/".join(str(b) for b in cfg.bin_sizes),
            i_max=cfg.i_max,
            marks=", ".join(cfg.marks),
        )

    def io_schema(self, cfg: Any) -> dict[str, Any]:
        one: dict[str, Any] = {}
        for b in cfg.bin_sizes:
            n = cfg.window // b
            one[f"promoter_{b}"] = {
                "shape": ["batch", n, cfg.n_marks],
                "dtype": "float32",
                "doc": f"promoter, {n} bins of {b} bp, log(mean depth + 1)",
            }
        for b in cfg.bin_sizes:
            n = cfg.window // b
            one[f"pcre_{b}"] = {
                "shape": ["batch", cfg.i_max, n, cfg.n_marks],
                "dtype": "float32",
                "doc": f"interacting regions, {n} bins of {b} bp, centred",
            }
        one["pcre_lengths"] = {
            "shape": ["batch", cfg.i_max],
            "dtype": "int64",
            "doc": "region lengths in bp; 0 = no region",
        }
        one["pcre_scores"] = {
            "shape": ["batch", cfg.i_max],
            "dtype": "float32",
            "doc": "normalised interaction frequencies",
        }
        names = self.input_names(cfg)
        specs = list(one.values()) * cells_for(cfg.task)
        outputs = {
            "logits": {
                "shape": ["batch", 2],
                "dtype": "float32",
                "doc": "class logits (0: low, 1: high)",
            },
            "probability": {
                "shape": ["batch"],
                "dtype": "float32",
                "doc": "P(expression >= median)",
            },
            "prediction": {"shape": ["batch"], "dtype": "float32", "doc": "log2(RPKM + 1)"},
            "log2fc": {
                "shape": ["batch"],
                "dtype": "float32",
                "doc": "log2 fold change of expression, cell b over cell a",
            },
        }
        return {
            "inputs": dict(zip(names, specs)),
            "outputs": {k: outputs[k] for k in self.output_names(cfg)},
        }

    # --- scoring ----------------------------------------------------------------------
    def chunks(
        self, info: ModelInfo, source: Any, *, chunk_genes: int, threads: Optional[int]
    ) -> Iterator[Chunk]:
        metas, npy_dirs = source
        if len(metas) != len(npy_dirs):
            raise DataError("give one --npy-dir per --meta")
        want = cells_for(info.task)
        if len(metas) != want:
            raise DataError(
                f"{info.path} is a {info.task} model: give {want} --meta and {want} --npy-dir"
            )
        # chunk by chunk: memory stays bounded by a chunk's arrays, and the next chunk is
        # read and binned while this one is scored
        genes, tables = task_genes(metas, info.task)
        with_truth: Optional[bool] = None
        for k in range(0, len(genes), chunk_genes):
            part = genes[k : k + chunk_genes]
            sets = load_sets(
                metas,
                npy_dirs,
                info.task,
                bin_sizes=info.bin_sizes,
                i_max=info.i_max,
                channels=len(info.marks),
                threads=threads,
                genes=part,
                tables=tables,
            )
            truth = observed(info.task, sets)
            if with_truth is None:  # as the first chunk has it (all-NaN chunks: NaN)
                with_truth = truth is not None
            if with_truth and truth is None:
                truth = np.full(len(part), np.nan)
            ids = np.asarray(sets[0].gene_ids)
            bad = formula_like(ids)
            if bad >= 0:
                raise DataError(
                    f"{metas[0]}: {name_problem(str(ids[bad]), 'gene id') or 'bad gene id'} "
                    f"(gene {k + bad + 1})"
                )
            yield Chunk(
                ids,
                dict(zip(info.inputs, joint_inputs(sets, np.arange(len(part))))),
                truth if with_truth else None,
                k + len(part),
            )

    def progress_total(self, source: Any) -> tuple[Optional[int], str]:
        return len(read_meta(source[0][0])), "gene"

    # --- explaining -------------------------------------------------------------------
    def mark_inputs(self, info: ModelInfo) -> list[str]:
        # log1p signal of the promoter and its pCREs at each resolution (both cells for diff)
        return [
            n
            for n in info.inputs
            if n.startswith(("promoter_", "pcre_")) and "_len" not in n and "_scores" not in n
        ]

    def position_inputs(self, info: ModelInfo) -> list[tuple[str, int]]:
        # the promoter at every resolution (both cells for diff); pCREs lie elsewhere
        return [(n, int(n.split("_")[1])) for n in info.inputs if n.startswith("promoter_")]

    def explained_outputs(self, info: ModelInfo) -> list[str]:
        return ["logits"] if info.task == "clf" else [info.primary_output]

    def explained_value(self, info: ModelInfo, outputs: dict[str, np.ndarray]) -> np.ndarray:
        if info.task == "clf":  # two-class logits: the log-odds of class 1
            z = np.asarray(outputs["logits"], np.float64)
            return z[:, 1] - z[:, 0]
        return np.asarray(outputs[info.primary_output], np.float64).reshape(-1)
