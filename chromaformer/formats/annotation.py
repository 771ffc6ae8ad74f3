"""Readers for what ``chromaformer-prepare`` joins to the tracks: genes (GTF or BED),
expression tables and promoter-region interaction tables. Every bad line raises a
:class:`FormatError` naming the file, the line and what was expected."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import FormatError
from ..layout import name_problem, parse_region
from .text import data_lines

_GTF_ATTR = re.compile(r'(\S+)\s+"([^"]*)"')
_VERSION = re.compile(r"\.\d+$")


@dataclass(frozen=True)
class Gene:
    """A gene's TSS: ``tss`` is the 0-based coordinate of its first transcribed base."""

    gene_id: str
    chrom: str
    tss: int
    strand: str
    where: str  # "path:line", for messages


@dataclass
class GeneSet:
    genes: list[Gene]
    source: str  # "GTF gene records", "GTF transcript records", "BED"
    duplicates: int  # records whose id was already seen (the first one is kept)
    unstranded: int = 0  # BED records with strand '.', read as + (see _read_bed)
    duplicate_example: str = ""  # "'G7' at genes.bed:12, first at line 3"


def _is_gtf(path: str) -> bool:
    name = path.lower().removesuffix(".gz")
    if name.endswith((".gtf", ".gff", ".gff2")):
        return True
    if name.endswith(".bed"):
        return False
    for _, line in data_lines(path, "a gene annotation (GTF or BED)"):
        f = line.split("\t")
        return len(f) >= 9 and "gene_id" in f[8]
    raise FormatError(f"{path}: no genes in the file (expected GTF or BED6 lines)", path)


def read_genes(path: str, feature: str = "auto") -> GeneSet:
    """Read TSSs from a GTF (``gene`` or ``transcript`` records) or a BED6 file.

    GTF coordinates are 1-based: the TSS is ``start`` on + and ``end`` on -. BED is
    0-based half-open: the TSS is ``start`` on + and ``end - 1`` on -. ``feature``
    (GTF only): ``gene``, ``transcript``, or ``auto`` (gene records if the file has
    any, else one transcript per gene: the one tagged ``Ensembl_canonical``, else the
    first listed). Ids repeated within the chosen records keep their first record.
    """
    if feature not in ("auto", "gene", "transcript"):
        raise ValueError(f"feature must be auto, gene or transcript, got {feature!r}")
    if _is_gtf(path):
        return _read_gtf(path, feature)
    return _read_bed(path)


def _keep_first(records: list[Gene]) -> tuple[list[Gene], int, str]:
    """The first record of each id, how many were dropped and an example of one."""
    first: dict[str, Gene] = {}
    example = ""
    for g in records:
        if g.gene_id not in first:
            first[g.gene_id] = g
        elif not example:
            line = first[g.gene_id].where.rsplit(":", 1)[1]
            example = f"{g.gene_id!r} at {g.where}, first at line {line}"
    out = list(first.values())
    return out, len(records) - len(out), example


def _read_gtf(path: str, feature: str) -> GeneSet:
    genes: list[Gene] = []
    tx_first: dict[str, Gene] = {}
    tx_canonical: dict[str, Gene] = {}
    tx_order: list[str] = []
    for no, line in data_lines(path, "a gene annotation (GTF or BED)"):
        f = line.split("\t")
        where = f"{path}:{no}"
        if len(f) < 9:
            raise FormatError(
                f"{where}: expected 9 tab-separated GTF fields, found {len(f)}", path, no
            )
        kind = f[2]
        if kind not in ("gene", "transcript"):
            continue
        try:
            start, end = int(f[3]), int(f[4])
        except ValueError:
            raise FormatError(
                f"{where}: expected integer start and end in fields 4-5, found {f[3]!r}, {f[4]!r}",
                path,
                no,
            ) from None
        if start < 1 or end < start:
            raise FormatError(
                f"{where}: expected 1 <= start <= end (GTF is 1-based), found {start}, {end}",
                path,
                no,
            )
        strand = f[6]
        if strand not in ("+", "-"):
            raise FormatError(
                f"{where}: expected strand + or - in field 7, found {strand!r}", path, no
            )
        attrs = dict(_GTF_ATTR.findall(f[8]))
        gid = attrs.get("gene_id")
        if not gid:
            raise FormatError(f'{where}: expected a gene_id "..." attribute in field 9', path, no)
        why = name_problem(gid, "gene id") or name_problem(f[0], "chromosome name")
        if why:  # caught here, before any work: the outputs could not hold it
            raise FormatError(f"{where}: {why}", path, no)
        g = Gene(gid, f[0], start - 1 if strand == "+" else end - 1, strand, where)
        if kind == "gene":
            genes.append(g)
        else:
            if gid not in tx_first:
                tx_first[gid] = g
                tx_order.append(gid)
            if gid not in tx_canonical and 'tag "Ensembl_canonical"' in f[8]:
                tx_canonical[gid] = g
    use_genes = feature == "gene" or (feature == "auto" and genes)
    if use_genes:
        if not genes:
            raise FormatError(
                f"{path}: no gene records (feature 'gene' in field 3); try --feature transcript",
                path,
            )
        kept, dup, example = _keep_first(genes)
        return GeneSet(kept, "GTF gene records", dup, duplicate_example=example)
    if not tx_order:
        raise FormatError(f"{path}: no gene or transcript records in field 3", path)
    return GeneSet(
        [tx_canonical.get(gid, tx_first[gid]) for gid in tx_order],
        "GTF transcript records (one per gene: Ensembl_canonical, else the first)",
        0,
    )


def _read_bed(path: str) -> GeneSet:
    """BED6 genes. Strand ``.`` (unknown, as in GC-MERGE's gene positions) is read as
    ``+``: the TSS is ``start`` and the bins stay in genomic order (not flipped); the
    count is reported so the user sees it."""
    genes: list[Gene] = []
    unstranded = 0
    for no, line in data_lines(path, "a gene annotation (GTF or BED)"):
        f = line.split("\t") if "\t" in line else line.split()
        where = f"{path}:{no}"
        if len(f) < 6:
            raise FormatError(
                f"{where}: expected BED6 'chrom start end name score strand' "
                f"(the strand is needed), found {len(f)} fields",
                path,
                no,
            )
        try:
            start, end = int(f[1]), int(f[2])
        except ValueError:
            raise FormatError(
                f"{where}: expected integer start and end in fields 2-3, found {f[1]!r}, {f[2]!r}",
                path,
                no,
            ) from None
        if start < 0 or end <= start:
            raise FormatError(
                f"{where}: expected 0 <= start < end (BED is 0-based, half-open), "
                f"found {start}, {end}",
                path,
                no,
            )
        strand = f[5]
        if strand == ".":
            strand, unstranded = "+", unstranded + 1
        if strand not in ("+", "-"):
            raise FormatError(
                f"{where}: expected strand +, - or . in field 6, found {strand!r}", path, no
            )
        why = name_problem(f[3], "gene id") or name_problem(f[0], "chromosome name")
        if why:
            raise FormatError(f"{where}: {why}", path, no)
        genes.append(Gene(f[3], f[0], start if strand == "+" else end - 1, strand, where))
    if not genes:
        raise FormatError(f"{path}: no genes in the file (expected BED6 lines)", path)
    kept, dup, example = _keep_first(genes)
    return GeneSet(kept, "BED", dup, unstranded, example)


def _fields(line: str) -> list[str]:
    if "\t" in line:
        return line.split("\t")
    if "," in line:
        return line.split(",")
    return line.split()


def _number(text: str) -> Optional[float]:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


class Expression:
    """``gene -> value`` from a two-column table (tab, comma or space separated; an
    optional header). Lookups fall back to Ensembl ids without their version suffix."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.values: dict[str, float] = {}
        first_line: dict[str, int] = {}
        first = True
        for no, line in data_lines(path, "an expression table (gene id, value)"):
            f = [x.strip() for x in _fields(line)]
            if len(f) < 2:
                raise FormatError(
                    f"{path}:{no}: expected 'gene<TAB>value', found {len(f)} field", path, no
                )
            v = _number(f[1])
            if v is None:
                if first:  # a header
                    first = False
                    continue
                raise FormatError(
                    f"{path}:{no}: expected a finite number in field 2, found {f[1]!r}", path, no
                )
            first = False
            if f[0] in first_line:
                raise FormatError(
                    f"{path}:{no}: gene {f[0]} is listed twice (first on line {first_line[f[0]]})",
                    path,
                    no,
                )
            first_line[f[0]] = no
            self.values[f[0]] = v
        if not self.values:
            raise FormatError(f"{path}: no 'gene value' rows", path)
        self._unversioned = {_VERSION.sub("", k): v for k, v in self.values.items()}

    def get(self, gene_id: str) -> Optional[float]:
        if gene_id in self.values:
            return self.values[gene_id]
        return self._unversioned.get(_VERSION.sub("", gene_id))

    def threshold(self, spec: str) -> float:
        """``median`` (of every value in the table, as the benchmark) or a number."""
        if spec == "median":
            return float(np.median(list(self.values.values())))
        v = _number(spec)
        if v is None:
            raise ValueError(f"--label-threshold must be 'median' or a number, got {spec!r}")
        return v


def read_interactions(path: str) -> dict[str, list[tuple[str, int, int, float]]]:
    """Promoter-region contacts: ``gene region score`` with region ``chrom:start-end``, or
    ``gene chrom start end score`` (0-based, half-open; an optional header)."""
    out: dict[str, list[tuple[str, int, int, float]]] = {}
    first = True
    for no, line in data_lines(path, "a table of promoter interactions"):
        f = [x.strip() for x in (line.split("\t") if "\t" in line else line.split())]
        where = f"{path}:{no}"
        if len(f) == 3:
            try:
                chrom, start, end = parse_region(f[1])
            except ValueError:
                if first:
                    first = False
                    continue
                raise FormatError(
                    f"{where}: expected a region chrom:start-end in field 2, found {f[1]!r}",
                    path,
                    no,
                ) from None
            score = _number(f[2])
        elif len(f) == 5:
            try:
                chrom, start, end = f[1], int(f[2]), int(f[3])
            except ValueError:
                if first:
                    first = False
                    continue
                raise FormatError(
                    f"{where}: expected integer start and end in fields 3-4, "
                    f"found {f[2]!r}, {f[3]!r}",
                    path,
                    no,
                ) from None
            score = _number(f[4])
        else:
            raise FormatError(
                f"{where}: expected 'gene chrom:start-end score' or 'gene chrom "
                f"start end score', found {len(f)} fields",
                path,
                no,
            )
        first = False
        if score is None:
            raise FormatError(
                f"{where}: expected a finite score in the last field, found {f[-1]!r}", path, no
            )
        if start < 0 or end <= start:
            raise FormatError(f"{where}: expected 0 <= start < end, found {start}, {end}", path, no)
        out.setdefault(f[0], []).append((chrom, start, end, score))
    return out
