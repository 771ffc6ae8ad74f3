"""Readers for what ``chromaformer-prepare`` joins to the tracks: genes (GTF, GFF3, BED6
or a TSS table, told apart by content),
expression tables and promoter-region interaction tables. Every bad line raises a
:class:`FormatError` naming the file, the line and what was expected."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional
from urllib.parse import unquote

import numpy as np

from ..errors import FormatError
from ..layout import name_problem, parse_region
from .text import data_lines, open_text

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
    filtered: int = 0  # records of another biotype than the one asked for


#: GFF3 feature types of a gene record (Ensembl types non-coding genes apart)
_GFF3_GENES = ("gene", "ncRNA_gene", "pseudogene")
#: attributes that carry a gene's biotype, in GTF/GFF3 of GENCODE and Ensembl
_BIOTYPE_KEYS = ("gene_type", "gene_biotype", "biotype")
#: column names of a table of TSSs: gene, chromosome, 0-based TSS, strand
_TSS_COLUMNS = {
    "gene": ("gene_id", "gene", "id", "name"),
    "chrom": ("chrom", "chr", "chromosome", "seqname"),
    "tss": ("tss",),
    "strand": ("strand",),
}
KINDS = ("GTF", "GFF3", "BED", "TSS table")


def annotation_kind(path: str) -> str:
    """What ``path`` holds, by its content (any name, plain or gzip): ``GTF`` (field 9 of
    ``key "value";`` pairs), ``GFF3`` (``##gff-version 3``, or ``key=value;`` pairs),
    ``BED`` (6+ fields, integer start and end) or ``TSS table`` (a header naming gene_id,
    chrom, tss and strand columns)."""
    with open_text(path, "a gene annotation (GTF, GFF3, BED6 or a TSS table)") as fh:
        first = fh.readline()
    if first.startswith("##gff-version 3"):
        return "GFF3"
    for no, line in data_lines(path, "a gene annotation (GTF, GFF3, BED6 or a TSS table)"):
        f = line.split("\t")
        if len(f) >= 9:
            if _GTF_ATTR.search(f[8]):
                return "GTF"
            if "=" in f[8]:
                return "GFF3"
        names = [x.strip().lower() for x in (f if len(f) > 1 else line.split())]
        if _tss_columns(names) is not None:
            return "TSS table"
        g = f if len(f) >= 3 else line.split()
        if len(g) >= 3 and g[1].isdigit() and g[2].isdigit():
            return "BED"  # (its reader asks for the strand of BED6)
        raise FormatError(
            f"{path}:{no}: not a gene annotation: expected GTF or GFF3 (9 tab-separated "
            "fields), BED6 (chrom start end name score strand) or a TSS table (a header "
            f"gene_id chrom tss strand), found {len(f)} fields",
            path,
            no,
        )
    raise FormatError(f"{path}: no genes in the file (expected GTF, GFF3, BED6 lines)", path)


def _tss_columns(names: list[str]) -> Optional[dict[str, int]]:
    where: dict[str, int] = {}
    for key, options in _TSS_COLUMNS.items():
        hit = [i for i, n in enumerate(names) if n in options]
        if not hit:
            return None
        where[key] = hit[0]
    return where


def read_genes(
    path: str,
    feature: str = "auto",
    *,
    id_attribute: Optional[str] = None,
    biotype: Optional[str] = None,
) -> GeneSet:
    """Read TSSs from a GTF or GFF3 (``gene`` or ``transcript`` records), a BED6 file
    or a TSS table, told apart by content (:func:`annotation_kind`).

    GTF/GFF3 coordinates are 1-based: the TSS is ``start`` on + and ``end`` on -. BED
    is 0-based half-open: the TSS is ``start`` on + and ``end - 1`` on -. A TSS table
    (tab-separated, a header with gene_id, chrom, tss and strand columns) gives the
    0-based TSS itself. ``feature`` (GTF/GFF3): ``gene``, ``transcript``, or ``auto``
    (gene records if the file has any, else one transcript per gene: the one tagged
    ``Ensembl_canonical``, else the first listed). ``id_attribute`` (GTF/GFF3): the
    attribute that names a gene (default ``gene_id``; GFF3 without it: ``ID`` less its
    ``gene:`` prefix); e.g. ``gene_name`` to match a table keyed by symbols.
    ``biotype``: keep only genes of this biotype (``gene_type``/``gene_biotype``/
    ``biotype``), e.g. ``protein_coding``. Ids repeated within the chosen records keep
    their first record.
    """
    if feature not in ("auto", "gene", "transcript"):
        raise ValueError(f"feature must be auto, gene or transcript, got {feature!r}")
    kind = annotation_kind(path)
    if kind in ("GTF", "GFF3"):
        return _read_gff(path, feature, kind, id_attribute, biotype)
    for given, flag in ((id_attribute, "--gene-id-attribute"), (biotype, "--biotype")):
        if given is not None:
            raise FormatError(
                f"{path}: {flag} is for GTF/GFF3 attributes, and this is a {kind}", path
            )
    return _read_tss_table(path) if kind == "TSS table" else _read_bed(path)


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


def _gff3_attributes(text: str) -> dict[str, str]:
    out = {}
    for part in text.strip().strip(";").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[unquote(key)] = unquote(value)
    return out


def _gff_lines(path: str, kind: str) -> Iterator[tuple[int, str]]:
    for no, line in data_lines(path, f"a gene annotation ({kind})"):
        if kind == "GFF3" and line.startswith(">"):  # the ##FASTA section: no more features
            return
        yield no, line


def _read_gff(
    path: str, feature: str, kind: str, id_attribute: Optional[str], biotype: Optional[str]
) -> GeneSet:
    genes: list[Gene] = []
    tx_first: dict[str, Gene] = {}
    tx_canonical: dict[str, Gene] = {}
    tx_order: list[str] = []
    gff3 = kind == "GFF3"
    key = id_attribute or "gene_id"
    with_biotype = filtered = 0
    for no, line in _gff_lines(path, kind):
        f = line.split("\t")
        where = f"{path}:{no}"
        if len(f) < 9:
            raise FormatError(
                f"{where}: expected 9 tab-separated {kind} fields, found {len(f)}", path, no
            )
        ftype = f[2]
        if gff3:
            is_gene = ftype in _GFF3_GENES
            is_tx = not is_gene and (ftype in ("transcript", "mRNA") or ftype.endswith("RNA"))
        else:
            is_gene, is_tx = ftype == "gene", ftype == "transcript"
        if not (is_gene or is_tx):
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
                f"{where}: expected 1 <= start <= end ({kind} is 1-based), found {start}, {end}",
                path,
                no,
            )
        strand = f[6]
        if strand not in ("+", "-"):
            raise FormatError(
                f"{where}: expected strand + or - in field 7, found {strand!r}", path, no
            )
        attrs = _gff3_attributes(f[8]) if gff3 else dict(_GTF_ATTR.findall(f[8]))
        gid = attrs.get(key)
        if not gid and gff3 and id_attribute is None:
            ref = attrs.get("ID" if is_gene else "Parent", "")
            gid = ref.split(",")[0].removeprefix("gene:")
        if not gid:
            hint = " (Ensembl/GENCODE GFF3 genes carry gene_id or ID)" if gff3 else ""
            quoted = f"{key}=..." if gff3 else f'{key} "..."'
            raise FormatError(f"{where}: expected a {quoted} attribute in field 9{hint}", path, no)
        why = name_problem(gid, "gene id") or name_problem(f[0], "chromosome name")
        if why:  # caught here, before any work: the outputs could not hold it
            raise FormatError(f"{where}: {why}", path, no)
        if biotype is not None:
            kinds = [attrs[k] for k in _BIOTYPE_KEYS if k in attrs]
            with_biotype += bool(kinds)
            if biotype not in kinds:
                filtered += 1
                continue
        g = Gene(gid, f[0], start - 1 if strand == "+" else end - 1, strand, where)
        if is_gene:
            genes.append(g)
        else:
            if gid not in tx_first:
                tx_first[gid] = g
                tx_order.append(gid)
            if gid not in tx_canonical and "Ensembl_canonical" in f[8]:
                tx_canonical[gid] = g
    if biotype is not None and not with_biotype:
        raise FormatError(
            f"{path}: --biotype {biotype}: no record carries a biotype ("
            + ", ".join(_BIOTYPE_KEYS)
            + ")",
            path,
        )
    use_genes = feature == "gene" or (feature == "auto" and genes)
    if use_genes:
        if not genes:
            raise FormatError(
                f"{path}: no gene records (feature 'gene' in field 3); try --feature transcript",
                path,
            )
        kept, dup, example = _keep_first(genes)
        return GeneSet(
            kept, f"{kind} gene records", dup, duplicate_example=example, filtered=filtered
        )
    if not tx_order:
        raise FormatError(f"{path}: no gene or transcript records in field 3", path)
    return GeneSet(
        [tx_canonical.get(gid, tx_first[gid]) for gid in tx_order],
        f"{kind} transcript records (one per gene: Ensembl_canonical, else the first)",
        0,
        filtered=filtered,
    )


def _read_tss_table(path: str) -> GeneSet:
    """A header naming gene_id, chrom, tss (0-based) and strand columns, then one row per
    gene (tab-separated; other columns ignored)."""
    genes: list[Gene] = []
    cols: Optional[dict[str, int]] = None
    for no, line in data_lines(path, "a TSS table"):
        f = [x.strip() for x in line.split("\t")]
        where = f"{path}:{no}"
        if cols is None:
            cols = _tss_columns([x.lower() for x in f])
            assert cols is not None  # annotation_kind saw this header
            width = len(f)
            continue
        if len(f) != width:
            raise FormatError(
                f"{where}: expected {width} tab-separated fields as in the header, found {len(f)}",
                path,
                no,
            )
        gid, chrom, tss, strand = (f[cols[k]] for k in ("gene", "chrom", "tss", "strand"))
        if not tss.isdigit():
            raise FormatError(
                f"{where}: expected a 0-based TSS (a whole number >= 0) in column tss, "
                f"found {tss!r}",
                path,
                no,
            )
        if strand not in ("+", "-"):
            raise FormatError(f"{where}: expected strand + or -, found {strand!r}", path, no)
        why = name_problem(gid, "gene id") or name_problem(chrom, "chromosome name")
        if why:
            raise FormatError(f"{where}: {why}", path, no)
        genes.append(Gene(gid, chrom, int(tss), strand, where))
    if not genes:
        raise FormatError(f"{path}: no genes under the header", path)
    kept, dup, example = _keep_first(genes)
    return GeneSet(kept, "TSS table", dup, duplicate_example=example)


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


#: value columns that name themselves, lower-cased: a table with exactly one of them
#: (and no layout below) has its expression there
_VALUE_NAMES = ("expression", "tpm", "fpkm", "rpkm", "value")


@dataclass(frozen=True)
class _Layout:
    name: str  # for messages: "salmon quant.sf"
    header: tuple[str, ...]  # the first columns of its header, lower-cased
    value: Optional[str]  # its expression column, or None: the one sample column


#: tables known by their header's first columns; the gene id is the first column in all
_LAYOUTS = (
    _Layout("salmon quant.sf", ("name", "length", "effectivelength", "tpm", "numreads"), "TPM"),
    _Layout(
        "RSEM genes.results",
        ("gene_id", "transcript_id(s)", "length", "effective_length", "expected_count", "tpm"),
        "TPM",
    ),
    _Layout(
        "RSEM isoforms.results",
        ("transcript_id", "gene_id", "length", "effective_length", "expected_count", "tpm"),
        "TPM",
    ),
    _Layout("featureCounts", ("geneid", "chr", "start", "end", "strand", "length"), None),
)


def _shown(columns: list[str], limit: int = 8) -> str:
    more = f", ... ({len(columns)} in all)" if len(columns) > limit else ""
    return ", ".join(columns[:limit]) + more


class Expression:
    """``gene -> value`` from an expression table (tab, comma or space separated).

    The column is chosen, never guessed: ``column`` (a header name, or a 1-based number
    for a table without a header) or ``cell`` (a column of a genes x cells matrix such
    as Roadmap's ``57epigenomes.RPKM.pc``); else the layout the header names (salmon
    ``quant.sf`` and RSEM: TPM; featureCounts: its one sample column); else the one
    column called expression/TPM/FPKM/RPKM/value; else the second of a two-column
    table. Anything else is an error naming the columns. The gene id is the first
    column. Lookups fall back to Ensembl ids without their version suffix.
    ``described`` says which column of what was read."""

    def __init__(self, path: str, column: Optional[str] = None, cell: Optional[str] = None) -> None:
        if column is not None and cell is not None:
            raise ValueError("give --expression-column or --cell, not both")
        self.path = path
        self.values: dict[str, float] = {}
        rows = [
            (no, [x.strip() for x in _fields(line)])
            for no, line in data_lines(path, "an expression table (gene id, value)")
            if not line.startswith("#")  # featureCounts' command line
        ]
        if not rows:
            raise FormatError(f"{path}: no 'gene value' rows", path)
        head_no, head = rows[0]
        has_header = len(head) >= 2 and _number(head[1]) is None
        if len(head) < 2:
            raise FormatError(
                f"{path}:{head_no}: expected 'gene<TAB>value', found {len(head)} field",
                path,
                head_no,
            )
        k, self.described = self._choose(head, has_header, column or cell, cell is not None)
        data = rows[1:] if has_header else rows
        first_line: dict[str, int] = {}
        for no, f in data:
            if len(f) != len(head):
                raise FormatError(
                    f"{path}:{no}: expected {len(head)} fields as on line {head_no}, "
                    f"found {len(f)}",
                    path,
                    no,
                )
            v = _number(f[k])
            if v is None:
                raise FormatError(
                    f"{path}:{no}: expected a finite number in field {k + 1}"
                    + ("" if self.described.startswith("field") else f", the {self.described}")
                    + f", found {f[k]!r}",
                    path,
                    no,
                )
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

    def _choose(
        self, head: list[str], has_header: bool, want: Optional[str], is_cell: bool
    ) -> tuple[int, str]:
        """The value column's index and how it was chosen."""
        path = self.path
        flag = "--cell" if is_cell else "--expression-column"
        if not has_header:
            if want is None:
                if len(head) == 2:
                    return 1, "field 2"
                raise FormatError(
                    f"{path}: {len(head)} columns and no header: say which holds the "
                    f"expression with --expression-column N (1-based)",
                    path,
                )
            if want.isdigit() and 2 <= int(want) <= len(head):
                return int(want) - 1, f"field {want}"
            raise FormatError(
                f"{path}: no header, so {flag} must be a field number 2..{len(head)}, got {want!r}",
                path,
            )
        lower = [h.lower() for h in head]
        if want is not None:
            if want in head[1:]:
                return head.index(want, 1), f"column {want}"
            if want.isdigit() and 2 <= int(want) <= len(head) and not is_cell:
                return int(want) - 1, f"column {head[int(want) - 1]}"
            raise FormatError(
                f"{path}: no column {want!r} ({flag}); its columns: {_shown(head)}", path
            )
        for lay in _LAYOUTS:
            if tuple(lower[: len(lay.header)]) != lay.header:
                continue
            if lay.value is not None:
                return lower.index(lay.value.lower()), f"column {lay.value} (a {lay.name})"
            samples = head[len(lay.header) :]
            if len(samples) == 1:
                one = f"column {samples[0]} (the one sample of a {lay.name} table)"
                return len(lay.header), one
            raise FormatError(
                f"{path}: a {lay.name} table of {len(samples)} samples "
                f"({_shown(samples)}): say which with --expression-column NAME",
                path,
            )
        named = [i for i, h in enumerate(lower) if i > 0 and h in _VALUE_NAMES]
        if len(named) == 1:
            return named[0], f"column {head[named[0]]}"
        if len(head) == 2:
            return 1, f"column {head[1]}"
        what = (
            f"{len(named)} value columns ({_shown([head[i] for i in named])})"
            if named
            else f"{len(head)} columns ({_shown(head)})"
        )
        raise FormatError(
            f"{path}: {what}, none of them known as the expression: say which with "
            f"--expression-column NAME (or --cell NAME for a genes x cells matrix)",
            path,
        )

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
