"""The bin-CSV family: AttentiveChrome (BiLSTM + attention), BiLSTM + Transformer, their
hybrid and the DeepChrome CNN, over ``(genes, bins, marks)`` raw counts."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Iterator, Optional

import numpy as np

from ..contract import BINS_INPUT, BINS_OUTPUTS, ModelInfo
from ..data.benchmark import PACKAGE_DATA, CellDataset, load_split, split_path
from ..errors import DataError
from ..formats.bincsv import BinStream
from ..formats.sidecars import layout_record_path, read_layout_record
from ..layout import (
    BENCHMARK_BINS,
    BENCHMARK_MARKS,
    BIN_SIZE,
    formula_like,
    name_problem,
    window_of,
)
from ..models.config import ARCHITECTURES, ModelConfig
from .base import Chunk, Family, Split, TrainData

DOC = (
    "Predicts {what} from histone-modification read "
    "counts in {bins} bins of {bin_size} bp around its transcription start site "
    "(+-{window} bp), marks in the order {marks}."
)
WHAT = {
    "clf": "whether a gene is highly expressed (probability that its expression is at or "
    "above the median of its cell type)",
    "reg": "a gene's expression level (on the scale of the training targets: {target})",
}


def _split(ds: CellDataset, target: Optional[np.ndarray] = None) -> Split:
    flat = np.log1p(ds.counts.reshape(len(ds), -1))
    y = ds.labels if target is None else target.astype(np.float32)
    return Split(ds.split, [ds.counts], y, ds.gene_ids, ds.cell, ds.cell_types, flat)


def _subset(ds: CellDataset, keep: np.ndarray) -> CellDataset:
    return replace(
        ds,
        counts=ds.counts[keep],
        labels=ds.labels[keep],
        gene_ids=ds.gene_ids[keep],
        cell=ds.cell[keep],
    )


class BinsFamily(Family):
    name = "bins"
    architectures = ARCHITECTURES
    model_options = ("n_heads", "dim_feedforward", "n_layers", "dropout", "input_transform")
    train_options = ("data_root", "cell_types", "bin_size", "expression")
    tasks = ("clf", "reg")

    def load(self, tc: Any, task: str) -> TrainData:
        if task not in self.tasks:
            raise DataError(
                f"task {task}: the bin-CSV models classify (clf) and regress (reg); diff "
                "is Chromoformer's (--model chromoformer)"
            )
        if getattr(tc, "expression", None) and task != "reg":
            raise DataError("--expression gives the targets of --task reg")
        if not tc.data_root:
            raise DataError(
                "the bin-CSV models need --data-root (the benchmark layout "
                "{EID}/classification/{train,valid,test}.csv)"
            )
        if not tc.cell_types:
            raise DataError("name at least one cell type with --cell-types")
        notes: list[str] = []
        splits = ["train", "valid"]
        missing = [ct for ct in tc.cell_types if not split_path(tc.data_root, ct, "test").exists()]
        if not missing:
            splits.append("test")
        else:
            notes.append(
                f"no test split for {', '.join(missing)}: metrics are reported on the "
                + (
                    "validation split, which picks nothing (--keep last): a held-out figure"
                    if tc.keep == "last"
                    else "validation split, which also picks the best epoch (optimistic)"
                )
            )
        sets = {s: load_split(tc.data_root, tc.cell_types, s, threads=tc.threads) for s in splits}
        targets: dict[str, Optional[np.ndarray]] = {s: None for s in sets}
        if task == "reg":
            for s in splits:
                sets[s], targets[s] = self._targets(tc, sets[s], s, notes)
        train = sets["train"]
        bins = int(train.counts.shape[1])
        records = {
            str(path): read_layout_record(path)
            for path in (split_path(tc.data_root, ct, "train") for ct in tc.cell_types)
        }
        bin_size, note = self._bin_size(tc, bins, records)
        if note:
            notes.append(note)
        orientation = self._orientation(records)
        if orientation == "genomic":
            notes.append(
                "the layout records say the bins run in genomic order (the strand of most "
                "genes unknown): the model scores each gene's bins as given and reversed "
                "alike (mirror, the default there; --model-config '{\"mirror\": false}' "
                "turns it off)"
            )
        logs = np.log1p(train.counts.astype(np.float64))
        layout = {
            "marks": train.marks,
            "bins": bins,
            "bin_size": bin_size,
            "input_mean": [float(v) for v in logs.mean(axis=(0, 1))],
            "input_std": [float(max(v, 1e-3)) for v in logs.std(axis=(0, 1))],
            "orientation": orientation,
        }
        first = split_path(tc.data_root, tc.cell_types[0], "train")
        for split, ds in sets.items():
            here = split_path(tc.data_root, tc.cell_types[0], split)
            self.check_data(ds, layout, f"{here}", f"as in {first}")
        if task == "reg":
            y = np.asarray(targets["train"], np.float64)
            layout["target_mean"], layout["target_std"] = float(y.mean()), float(max(y.std(), 1e-6))
            layout["target"] = self._target_name(tc)
        ev = "test" if "test" in sets else "valid"
        return TrainData(
            _split(train, targets["train"]),
            _split(sets["valid"], targets["valid"]),
            _split(sets[ev], targets[ev]),
            layout,
            notes=notes,
            info={"cell_types": list(tc.cell_types)},
        )

    @staticmethod
    def _target_name(tc: Any) -> str:
        from pathlib import Path

        if getattr(tc, "expression", None):
            return Path(tc.expression).name
        return "the .expression.tsv beside each split"

    def _targets(
        self, tc: Any, ds: CellDataset, split: str, notes: list[str]
    ) -> tuple[CellDataset, np.ndarray]:
        """The genes of ``ds`` that have a target, and their targets: from
        ``tc.expression`` (one table, one cell type) or the ``.expression.tsv`` sidecar
        beside each cell type's split file (written by chromaformer-prepare)."""
        import os

        from ..formats.annotation import Expression
        from ..formats.sidecars import expression_sidecar_path

        values = np.full(len(ds), np.nan)
        for i, ct in enumerate(ds.cell_types):
            if tc.expression:
                if len(ds.cell_types) > 1:
                    raise DataError(
                        f"--expression gives one table for {len(ds.cell_types)} cell types: "
                        "put each cell type's targets beside its files (<split>.expression.tsv)"
                    )
                table = Expression(tc.expression)
            else:
                path = expression_sidecar_path(str(split_path(tc.data_root, ct, split)))
                if not os.path.exists(path):
                    raise DataError(
                        f"{path}: no expression targets for --task reg: give --expression "
                        "TABLE, or prepare the files with chromaformer-prepare --expression "
                        "(it writes them there)"
                    )
                table = Expression(path)
            mine = np.flatnonzero(ds.cell == i)
            for k in mine:
                v = table.get(str(ds.gene_ids[k]))
                if v is not None:
                    values[k] = v
        keep = ~np.isnan(values)
        if not keep.any():
            raise DataError(
                f"{split}: none of the {len(ds):,} genes has an expression target (e.g. "
                f"{ds.gene_ids[0]}): expected the bin CSVs' gene ids"
            )
        if not keep.all():
            example = ds.gene_ids[np.flatnonzero(~keep)[0]]
            notes.append(
                f"{split}: {int((~keep).sum()):,} of {len(ds):,} genes have no expression "
                f"target (e.g. {example}) and are left out"
            )
            ds = _subset(ds, keep)
        return ds, values[keep]

    @staticmethod
    def _orientation(records: dict[str, Optional[dict]]) -> Optional[str]:
        """The orientation the layout records of every cell type's training file share
        (``genomic``: bins in genomic order, strand unknown), else None."""
        found = {None if r is None else r.get("orientation") for r in records.values()}
        return found.pop() if len(found) == 1 else None

    def _bin_size(
        self, tc: Any, bins: int, layout_records: dict[str, Optional[dict]]
    ) -> tuple[int, Optional[str]]:
        """The bin size of the training data: ``--bin-size``, else the layout record that
        ``chromaformer-prepare`` wrote beside the files (``layout_records``: each training
        file's, None where it has none), else the benchmark's 100 bp for 100-bin files
        (said in a note); anything else is an error, not a guess."""
        records = {p: int(r["bin_size"]) for p, r in layout_records.items() if r is not None}
        if tc.bin_size:
            for name, size in records.items():
                if size != tc.bin_size:
                    raise DataError(
                        f"--bin-size {tc.bin_size}: {name} was prepared with {size} bp bins "
                        "(its .layout.json)"
                    )
            return int(tc.bin_size), None
        if len(set(records.values())) > 1:
            raise DataError(f"cell types prepared with different bin sizes: {records}")
        if records:
            return next(iter(records.values())), None
        if bins == BENCHMARK_BINS:
            return BIN_SIZE, (
                f"no layout record beside the data: taking the benchmark's {BIN_SIZE} bp bins "
                "(--bin-size says otherwise)"
            )
        raise DataError(
            f"{split_path(tc.data_root, tc.cell_types[0], 'train')}: {bins} bins per gene "
            "and no layout record (.layout.json) says how wide they are; pass --bin-size BP "
            "(e.g. 10000), or make the files with chromaformer-prepare, which records it"
        )

    def check_data(self, ds: CellDataset, layout: dict[str, Any], where: str, ref: str) -> None:
        got: dict[str, Any] = {"marks": ds.marks, "bins": int(ds.counts.shape[1])}
        if got["bins"] != layout["bins"] or len(got["marks"]) != len(layout["marks"]):
            raise DataError(
                f"{where}: {got['bins']} bins x {len(got['marks'])} marks per gene, "
                f"expected {layout['bins']} x {len(layout['marks'])} ({ref})"
            )

    def model_config(
        self, arch: str, task: str, layout: dict[str, Any], options: dict[str, Any]
    ) -> ModelConfig:
        try:
            reg = (
                {"target_mean": layout["target_mean"], "target_std": layout["target_std"]}
                if task == "reg"
                else {}
            )
            cfg = ModelConfig(
                arch=arch,
                marks=layout["marks"],
                bins=layout["bins"],
                bin_size=layout.get("bin_size", BIN_SIZE),
                task=task,
                extra={"target": layout["target"]} if task == "reg" else {},
                **reg,
                **{"mirror": layout.get("orientation") == "genomic", **options},
            )
            if cfg.input_transform == "standardize" and not cfg.input_mean:
                cfg = replace(cfg, input_mean=layout["input_mean"], input_std=layout["input_std"])
            return cfg
        except (TypeError, ValueError) as err:
            raise DataError(str(err)) from None

    def check_layout(self, cfg: Any, layout: dict[str, Any], where: str) -> None:
        bins, marks = layout["bins"], len(layout["marks"])
        if bins != cfg.bins or marks != cfg.n_marks:
            raise DataError(
                f"{where}: the data have {bins} bins x {marks} marks but the model "
                f"expects {cfg.bins} bins x {cfg.n_marks} marks "
                f"({', '.join(cfg.marks)})"
            )
        size = layout.get("bin_size")
        if size is not None and size != cfg.bin_size:
            raise DataError(
                f"{where}: the data have bins of {size} bp but the model was trained on "
                f"{cfg.bin_size} bp bins"
            )

    # --- training ---------------------------------------------------------------------
    def loss(self, task: str, out: dict, y: Any, cfg: Any = None) -> Any:
        import torch.nn.functional as F

        # each tower learns from its own loss (the mean over towers keeps the scale of one)
        logits = out.get("tower_logits", out["logit"][:, None]).float()  # (batch, towers)
        if task == "reg":  # on the standardised scale the head learns
            z = (y - cfg.target_mean) / cfg.target_std
            target = z[:, None].expand_as(logits)
            return F.mse_loss(logits, target, reduction="sum") / logits.shape[1]
        target = y[:, None].expand_as(logits)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        return loss / logits.shape[1]

    def prediction(self, task: str, out: dict, cfg: Any = None) -> Any:
        import torch

        if task == "reg":
            return out["logit"].double() * cfg.target_std + cfg.target_mean
        # float64: a float32 sigmoid saturates to exactly 0 or 1 beyond |logit| ~ 17 (or 88),
        # and the ties it makes between genes would lower AUROC
        return torch.sigmoid(out["logit"].double())

    # --- export -----------------------------------------------------------------------
    def input_names(self, cfg: Any) -> list[str]:
        return [BINS_INPUT]

    def output_names(self, cfg: Any) -> list[str]:
        head = ["prediction"] if cfg.task == "reg" else list(BINS_OUTPUTS[:2])
        return head + (list(BINS_OUTPUTS[2:]) if cfg.has_attention else [])

    def example_inputs(self, cfg: Any, batch: int) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        return [rng.poisson(3.0, (batch, cfg.bins, cfg.n_marks)).astype(np.float32)]

    def export_module(self, model: Any, grouped: bool = True, **options: Any) -> Any:
        from ..models.exportable import BinsExportable

        return BinsExportable(model, grouped)

    def metadata(self, cfg: Any, ckpt: dict[str, Any]) -> dict[str, str]:
        return {
            "bins": str(cfg.bins),
            "bin_size": str(cfg.bin_size),
            "window": str(window_of(cfg.bins, cfg.bin_size)),
            "input_transform": cfg.input_transform,
            "input": BINS_INPUT,
            "training_cell_types": ",".join(ckpt.get("cell_types") or []),
            **({"ensemble": cfg.description} if cfg.arch == "ensemble" else {}),
        }

    def doc(self, cfg: Any) -> str:
        what = WHAT[cfg.task].format(target=cfg.extra.get("target", "expression"))
        return DOC.format(
            what=what,
            bins=cfg.bins,
            bin_size=cfg.bin_size,
            marks=", ".join(cfg.marks),
            window=window_of(cfg.bins, cfg.bin_size),
        )

    def io_schema(self, cfg: Any) -> dict[str, Any]:
        outputs = {
            "probability": {
                "shape": ["batch"],
                "dtype": "float32",
                "doc": "P(expression >= median of the cell type)",
            },
            "logit": {"shape": ["batch"], "dtype": "float32", "doc": "log-odds of the same"},
            "prediction": {
                "shape": ["batch"],
                "dtype": "float32",
                "doc": "the predicted expression, on the scale of the training targets",
            },
            "bin_attention": {
                "shape": ["batch", cfg.n_marks, cfg.bins],
                "dtype": "float32",
                "doc": "per-mark attention over bins; sums to 1 over bins",
            },
            "mark_attention": {
                "shape": ["batch", cfg.n_marks],
                "dtype": "float32",
                "doc": "attention over marks; sums to 1",
            },
        }
        counts = {
            "shape": ["batch", cfg.bins, cfg.n_marks],
            "dtype": "float32",
            "doc": (
                "raw read counts per bin (bins in genomic order or 5'->3' on the gene's "
                "strand: the model scores a profile and its mirror image alike)"
                if cfg.mirror
                else "raw read counts per bin (bin 1 upstream of the TSS on the gene's strand)"
            )
            + ", marks in `marks` order",
            "marks": list(cfg.marks),
            "bins": cfg.bins,
            "bin_size": cfg.bin_size,
            "window": window_of(cfg.bins, cfg.bin_size),
            "input_transform": cfg.input_transform,
        }
        return {
            "inputs": {BINS_INPUT: counts},
            "outputs": {k: outputs[k] for k in self.output_names(cfg)},
        }

    def check_sample(
        self, cfg: Any
    ) -> Optional[tuple[dict[str, np.ndarray], Optional[np.ndarray], str]]:
        """The bundled real cells when the model takes the benchmark's marks and bins,
        else 2,000 random count profiles (no labels); None for a regression model (the
        check compares probabilities)."""
        if cfg.task == "reg":
            return None
        if tuple(cfg.marks) == BENCHMARK_MARKS and cfg.bins == BENCHMARK_BINS:
            root = PACKAGE_DATA / "deepdiff_sample"
            parts = [load_split(root, ["Cell1", "Cell2"], s) for s in ("valid", "test")]
            return (
                {BINS_INPUT: np.concatenate([p.counts for p in parts])},
                np.concatenate([p.labels for p in parts]),
                "bundled real sample: deepdiff Cell1+Cell2 valid+test, 800 genes",
            )
        rng = np.random.default_rng(11)
        depth = rng.gamma(1.0, 4.0, (2000, 1, cfg.n_marks))
        counts = rng.poisson(depth * rng.gamma(1.0, 1.0, (2000, cfg.bins, cfg.n_marks)))
        return {BINS_INPUT: counts.astype(np.float32)}, None, "2,000 random count profiles"

    # --- scoring ----------------------------------------------------------------------
    def chunks(
        self, info: ModelInfo, source: Any, *, chunk_genes: int, threads: Optional[int]
    ) -> Iterator[Chunk]:
        from pathlib import Path

        from ..formats.deeptools import is_matrix

        if is_matrix(source):
            yield from self._matrix_chunks(info, source, chunk_genes)
            return
        record = read_layout_record(source)
        if record is not None:
            check_record_fits(record, info, source)
        labelled = record is None or record.get("labels", True)
        values = self._observed(info, source) if info.task == "reg" else None
        stream = BinStream(source, chunk_genes, threads=threads, integer_counts=False)
        first = True
        done = 0  # genes before this batch
        for batch in _named_short_first_gene(stream, source, info, chunk_genes):
            if first:
                first = False
                name = Path(info.path).name
                if batch.n_marks != len(info.marks):
                    raise DataError(
                        f"{source}: the file has {batch.n_marks} mark columns but {name} "
                        f"expects {len(info.marks)} ({','.join(info.marks)}, in that order)"
                    )
                if batch.n_bins != info.bins:
                    raise DataError(
                        f"{source}: genes have {batch.n_bins} bins but {name} "
                        f"expects {info.bins} bins of {info.bin_size} bp"
                    )
            bad = formula_like(batch.gene_ids)
            if bad >= 0:
                gene = str(batch.gene_ids[bad])
                raise DataError(
                    f"{source}:{(done + bad) * batch.n_bins + 1}: "
                    f"{name_problem(gene, 'gene id') or 'bad gene id'}: expected a gene id"
                )
            done += len(batch.gene_ids)
            labels = batch.labels if labelled else None
            if info.task == "reg":
                labels = None if values is None else self._values_of(values, batch.gene_ids)
            yield Chunk(batch.gene_ids, {BINS_INPUT: batch.counts}, labels, stream.bytes_read)

    def _matrix_chunks(self, info: ModelInfo, source: Any, chunk_genes: int) -> Iterator[Chunk]:
        """A deepTools matrix's genes (read whole: computeMatrix files are held in memory
        by deepTools too), its samples put in the model's mark order by name."""
        from pathlib import Path

        from ..formats.deeptools import read_matrix

        bins = read_matrix(source, marks=info.marks)
        name = Path(info.path).name
        if bins.n_bins != info.bins or bins.bin_size != info.bin_size:
            raise DataError(
                f"{source}: {bins.n_bins} bins of {bins.bin_size} bp but {name} expects "
                f"{info.bins} bins of {info.bin_size} bp (computeMatrix -b/-a/--binSize)"
            )
        values = self._observed(info, source) if info.task == "reg" else None
        size = os.path.getsize(source)
        for lo in range(0, bins.n_genes, chunk_genes):
            ids = bins.gene_ids[lo : lo + chunk_genes]
            labels = None if values is None else self._values_of(values, ids)
            done = size * min(lo + chunk_genes, bins.n_genes) // bins.n_genes
            yield Chunk(ids, {BINS_INPUT: bins.counts[lo : lo + chunk_genes]}, labels, done)

    @staticmethod
    def _observed(info: ModelInfo, source: Any) -> Optional[Any]:
        """A regression model's truth: the ``.expression.tsv`` beside ``source``, if any."""
        import os

        from ..formats.annotation import Expression
        from ..formats.sidecars import expression_sidecar_path

        path = expression_sidecar_path(os.fspath(source))
        return Expression(path) if os.path.exists(path) else None

    @staticmethod
    def _values_of(table: Any, gene_ids: np.ndarray) -> np.ndarray:
        out = np.empty(len(gene_ids), np.float64)
        for k, g in enumerate(gene_ids):
            v = table.get(str(g))
            if v is None:
                raise DataError(f"{table.path}: no expression for gene {g} (of the scored file)")
            out[k] = v
        return out

    def mark_inputs(self, info: ModelInfo) -> list[str]:
        return [BINS_INPUT]

    def position_inputs(self, info: ModelInfo) -> list[tuple[str, int]]:
        return [(BINS_INPUT, info.bin_size)]

    def explained_outputs(self, info: ModelInfo) -> list[str]:
        return ["logit"] if info.task == "clf" else [info.primary_output]

    def explained_value(self, info: ModelInfo, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(outputs[self.explained_outputs(info)[0]], np.float64).reshape(-1)

    def progress_total(self, source: Any) -> tuple[Optional[int], str]:
        import os

        try:
            return os.path.getsize(source), "B"
        except OSError:
            return None, "B"


def check_record_fits(record: dict[str, Any], info: ModelInfo, source: Any) -> None:
    """Refuse a prepared file whose layout record (``.layout.json``) says its bins or marks
    are not the model's: another bin size or bin count, other marks, or the same marks in
    another order."""
    from pathlib import Path

    where = layout_record_path(str(source))
    name = Path(info.path).name
    if int(record["bin_size"]) != info.bin_size or int(record.get("bins", info.bins)) != info.bins:
        raise DataError(
            f"{source}: prepared as {record.get('bins', '?')} bins of {record['bin_size']} bp "
            f"({where}) but {name} expects {info.bins} bins of {info.bin_size} bp"
        )
    marks = record.get("marks")
    if marks is not None and list(marks) != list(info.marks):
        raise DataError(
            f"{source}: its mark columns are {','.join(marks)} ({where}) but {name} expects "
            f"{','.join(info.marks)}, in that order"
        )


def _named_short_first_gene(
    stream: BinStream, source: Any, info: ModelInfo, chunk_genes: int
) -> Iterator[Any]:
    """``stream``'s batches; where the bins inferred from a short first gene make the
    next gene the one blamed, the file is read again with the model's bin count so the
    error names the short gene."""
    from ..errors import FormatError

    try:
        yield from stream
    except FormatError as err:
        if "inferred from the first gene" not in str(err) or stream.bins == info.bins:
            raise
        for _ in BinStream(source, chunk_genes, threads=1, bins=info.bins):
            pass
        raise
