"""Gene annotations (GTF, GFF3 of Ensembl and GENCODE, BED6, a TSS table: told apart by
content) and expression tables (salmon, RSEM, featureCounts, a Roadmap genes x cells
matrix, two columns), in the layouts those tools write; an unknown or ambiguous table is
an error naming its columns, never a guess."""

from __future__ import annotations

import gzip

import pytest

from chromaformer.errors import FormatError
from chromaformer.formats.annotation import Expression, annotation_kind, read_genes

from .._common import write_lines

# Ensembl 110's GFF3 (Homo_sapiens.GRCh38.110.gff3), its own lines: genes carry ID=gene:...
# and gene_id, transcripts only Parent; a biotype; non-coding genes typed ncRNA_gene.
ENSEMBL_GFF3 = [
    "##gff-version 3",
    "##sequence-region   1 1 248956422",
    "#!genome-build  GRCh38.p14",
    "1\tensembl_havana\tgene\t65419\t71585\t.\t+\t.\tID=gene:ENSG00000186092;Name=OR4F5;"
    "biotype=protein_coding;description=olfactory receptor family 4 subfamily F member 5 "
    "[Source:HGNC Symbol%3BAcc:HGNC:14825];gene_id=ENSG00000186092;"
    "logic_name=ensembl_havana_gene_homo_sapiens;version=7",
    "1\tensembl_havana\tmRNA\t65419\t71585\t.\t+\t.\tID=transcript:ENST00000641515;"
    "Parent=gene:ENSG00000186092;Name=OR4F5-201;biotype=protein_coding;"
    "tag=basic,Ensembl_canonical,MANE_Select;transcript_id=ENST00000641515;version=2",
    "1\tensembl_havana\texon\t65419\t65433\t.\t+\t.\tParent=transcript:ENST00000641515;"
    "Name=ENSE00003812156;constitutive=0;ensembl_end_phase=-1;ensembl_phase=-1;"
    "exon_id=ENSE00003812156;rank=1;version=1",
    "###",
    "1\thavana\tncRNA_gene\t29554\t31109\t.\t+\t.\tID=gene:ENSG00000243485;Name=MIR1302-2HG;"
    "biotype=lncRNA;gene_id=ENSG00000243485;logic_name=havana_homo_sapiens;version=5",
    "1\thavana\tlnc_RNA\t29554\t31097\t.\t+\t.\tID=transcript:ENST00000473358;"
    "Parent=gene:ENSG00000243485;Name=MIR1302-2HG-202;biotype=lncRNA;tag=basic;"
    "transcript_id=ENST00000473358;version=1",
    "###",
    "1\tensembl_havana\tgene\t944203\t959309\t.\t-\t.\tID=gene:ENSG00000188976;Name=NOC2L;"
    "biotype=protein_coding;gene_id=ENSG00000188976;logic_name=ensembl_havana_gene_homo_sapiens;"
    "version=11",
    "###",
    "##FASTA",
    ">1",
    "NNNNNNNNNN",
]

# GENCODE 44's GFF3 (gencode.v44.basic.annotation.gff3): chr names, versioned ids in ID
# and gene_id, gene_type and gene_name.
GENCODE_GFF3 = [
    "##gff-version 3",
    "#description: evidence-based annotation of the human genome (GRCh38), version 44",
    "chr1\tHAVANA\tgene\t11869\t14409\t.\t+\t.\tID=ENSG00000290825.1;gene_id=ENSG00000290825.1;"
    "gene_type=lncRNA;gene_name=DDX11L2;level=2;tag=overlaps_pseudogene",
    "chr1\tHAVANA\ttranscript\t11869\t14409\t.\t+\t.\tID=ENST00000456328.2;"
    "Parent=ENSG00000290825.1;gene_id=ENSG00000290825.1;transcript_id=ENST00000456328.2;"
    "gene_type=lncRNA;gene_name=DDX11L2;transcript_type=lncRNA;transcript_name=DDX11L2-202;"
    "level=2;transcript_support_level=1;tag=basic,Ensembl_canonical",
    "chr1\tENSEMBL\tgene\t65419\t71585\t.\t+\t.\tID=ENSG00000186092.7;"
    "gene_id=ENSG00000186092.7;gene_type=protein_coding;gene_name=OR4F5;level=2",
    "chr1\tHAVANA\tgene\t944203\t959309\t.\t-\t.\tID=ENSG00000188976.11;"
    "gene_id=ENSG00000188976.11;gene_type=protein_coding;gene_name=NOC2L;level=2",
]

GTF = [
    "#!genome-build GRCh38.p14",
    '1\tensembl_havana\tgene\t65419\t71585\t.\t+\t.\tgene_id "ENSG00000186092"; '
    'gene_version "7"; gene_name "OR4F5"; gene_source "ensembl_havana"; '
    'gene_biotype "protein_coding";',
    '1\thavana\tgene\t29554\t31109\t.\t+\t.\tgene_id "ENSG00000243485"; gene_version "5"; '
    'gene_name "MIR1302-2HG"; gene_source "havana"; gene_biotype "lncRNA";',
]


def test_ensembl_gff3_genes_their_tss_and_the_fasta_tail(tmp_path):
    path = write_lines(tmp_path / "Homo_sapiens.GRCh38.110.gff3", ENSEMBL_GFF3)
    assert annotation_kind(str(path)) == "GFF3"
    gs = read_genes(str(path))
    assert gs.source == "GFF3 gene records"
    got = {g.gene_id: (g.chrom, g.tss, g.strand) for g in gs.genes}
    # 1-based start on +, end on -, as 0-based TSSs
    assert got == {
        "ENSG00000186092": ("1", 65418, "+"),
        "ENSG00000243485": ("1", 29553, "+"),
        "ENSG00000188976": ("1", 959308, "-"),
    }
    # protein-coding only, and symbols as ids (Name= in Ensembl's GFF3)
    coding = read_genes(str(path), biotype="protein_coding", id_attribute="Name")
    assert [g.gene_id for g in coding.genes] == ["OR4F5", "NOC2L"]
    assert coding.filtered == 2  # the lncRNA gene and its transcript
    # transcripts: Parent=gene:... gives the gene
    tx = read_genes(str(path), feature="transcript")
    assert {g.gene_id for g in tx.genes} == {"ENSG00000186092", "ENSG00000243485"}


def test_gencode_gff3_named_gff_is_read_as_gff3_not_gtf(tmp_path):
    # a .gff (or .gff.gz) name used to mean GTF: the content decides now
    path = tmp_path / "gencode.v44.basic.annotation.gff.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(GENCODE_GFF3) + "\n")
    assert annotation_kind(str(path)) == "GFF3"
    gs = read_genes(str(path), biotype="protein_coding")
    assert [(g.gene_id, g.tss) for g in gs.genes] == [
        ("ENSG00000186092.7", 65418),
        ("ENSG00000188976.11", 959308),
    ]
    names = read_genes(str(path), id_attribute="gene_name")
    assert [g.gene_id for g in names.genes] == ["DDX11L2", "OR4F5", "NOC2L"]


def test_gtf_bed_and_tss_table_by_content_whatever_the_name(tmp_path):
    gtf = write_lines(tmp_path / "genes.txt", GTF)
    assert annotation_kind(str(gtf)) == "GTF"
    assert [g.gene_id for g in read_genes(str(gtf), biotype="protein_coding").genes] == [
        "ENSG00000186092"
    ]
    bed = write_lines(
        tmp_path / "genes.gtf", ["chr1\t100\t101\tg1\t0\t+", "chr1\t500\t900\tg2\t0\t-"]
    )
    assert annotation_kind(str(bed)) == "BED"  # named .gtf, holds BED6
    assert [(g.gene_id, g.tss) for g in read_genes(str(bed)).genes] == [("g1", 100), ("g2", 899)]
    tss = write_lines(
        tmp_path / "tss.tsv",
        ["gene_id\tsymbol\tchrom\ttss\tstrand", "g1\tA\tchr1\t100\t+", "g2\tB\tchr2\t7\t-"],
    )
    assert annotation_kind(str(tss)) == "TSS table"
    assert [(g.gene_id, g.chrom, g.tss, g.strand) for g in read_genes(str(tss)).genes] == [
        ("g1", "chr1", 100, "+"),
        ("g2", "chr2", 7, "-"),
    ]


@pytest.mark.parametrize(
    "lines, kw, message",
    [
        (GENCODE_GFF3[:3], {"biotype": "protein_coding", "id_attribute": "nope"}, "nope=..."),
        (
            ["##gff-version 3", "chr1\tx\tgene\t5\t9\t.\t+\t.\tName=A"],
            {},
            ":2: expected a gene_id=... attribute in field 9",
        ),
        (
            ["chr1\tx\tgene\t5\t9\t.\t+\t.\tgene_id=A;Name=B"],
            {"biotype": "protein_coding"},
            "--biotype protein_coding: no record carries a biotype",
        ),
        (["chr1\t100\t101\tg1\t0\t+"], {"biotype": "protein_coding"}, "--biotype is for GTF/GFF3"),
        (
            ["gene_id\tchrom\ttss\tstrand", "g1\tchr1\t1.5e3\t+"],
            {},
            ":2: expected a 0-based TSS (a whole number >= 0) in column tss, found '1.5e3'",
        ),
        (["just some words here"], {}, ":1: not a gene annotation: expected GTF or GFF3"),
    ],
)
def test_bad_annotations_are_one_line_errors(tmp_path, lines, kw, message):
    path = write_lines(tmp_path / "a.txt", lines)
    with pytest.raises(FormatError) as err:
        read_genes(str(path), **kw)
    assert message in str(err.value) and "\n" not in str(err.value)


# salmon 1.10's quant.sf; RSEM 1.3's genes.results; featureCounts 2.0's counts table (its
# first line the command); Roadmap's 57epigenomes.RPKM.pc (genes x epigenomes).
SALMON = [
    "Name\tLength\tEffectiveLength\tTPM\tNumReads",
    "ENSG00000186092.7\t2618\t2368.000\t0.000000\t0.000",
    "ENSG00000188976.11\t4687\t4437.000\t35.118731\t812.000",
]
RSEM = [
    "gene_id\ttranscript_id(s)\tlength\teffective_length\texpected_count\tTPM\tFPKM",
    "ENSG00000186092\tENST00000641515\t2618.00\t2468.87\t0.00\t0.00\t0.00",
    "ENSG00000188976\tENST00000327044,ENST00000487214\t3245.17\t3095.04\t812.00\t41.27\t18.55",
]
FEATURECOUNTS = [
    '# Program:featureCounts v2.0.3; Command:"featureCounts" "-a" "genes.gtf" "-o" "counts.txt"',
    "Geneid\tChr\tStart\tEnd\tStrand\tLength\tGM12878_rep1.bam\tGM12878_rep2.bam",
    "ENSG00000186092\t1\t65419\t71585\t+\t2618\t0\t1",
    "ENSG00000188976\t1;1;1\t944203;945042;945518\t959309;945146;945653\t-;-;-\t4687\t812\t790",
]
ROADMAP = [
    "gene_id\tE000\tE003\tE004\tE116",
    "ENSG00000186092\t0.000\t0.000\t0.010\t0.000",
    "ENSG00000188976\t12.410\t22.876\t18.051\t9.660",
]


@pytest.mark.parametrize(
    "name, lines, kw, value, described",
    [
        ("quant.sf", SALMON, {}, 35.118731, "column TPM (a salmon quant.sf)"),
        ("genes.results", RSEM, {}, 41.27, "column TPM (a RSEM genes.results)"),
        ("rsem.fpkm", RSEM, {"column": "FPKM"}, 18.55, "column FPKM"),
        ("counts.txt", FEATURECOUNTS, {"column": "GM12878_rep2.bam"}, 790.0, "column GM"),
        (
            "counts1.txt",
            [FEATURECOUNTS[0], FEATURECOUNTS[1].rsplit("\t", 1)[0]]
            + [r.rsplit("\t", 1)[0] for r in FEATURECOUNTS[2:]],
            {},
            812.0,
            "(the one sample of a featureCounts table)",
        ),
        ("57epigenomes.RPKM.pc", ROADMAP, {"cell": "E116"}, 9.66, "column E116"),
        ("two.tsv", ["gene\tlevel", "ENSG00000186092\t1", "ENSG00000188976\t2.5"], {}, 2.5, ""),
        ("nohead.csv", ["ENSG00000186092,1,9", "ENSG00000188976,2.5,7"], {"column": "3"}, 7, ""),
    ],
)
def test_expression_tables_in_the_layouts_of_their_tools(
    tmp_path, name, lines, kw, value, described
):
    e = Expression(str(write_lines(tmp_path / name, lines)), **kw)
    assert e.get("ENSG00000188976") == pytest.approx(value)  # versions fall away
    assert described in e.described


@pytest.mark.parametrize(
    "lines, kw, message",
    [
        # the silent misreads of a second-column rule: Length of quant.sf read as the
        # expression, E000 read for every cell
        (ROADMAP, {}, "5 columns (gene_id, E000, E003, E004, E116), none of them known"),
        (
            FEATURECOUNTS,
            {},
            "a featureCounts table of 2 samples (GM12878_rep1.bam, GM12878_rep2.bam)",
        ),
        (ROADMAP, {"cell": "E999"}, "no column 'E999' (--cell); its columns: gene_id, E000"),
        (
            ["gene\tTPM\tFPKM", "g1\t1\t2"],
            {},
            "2 value columns (TPM, FPKM), none of them known as the expression",
        ),
        (["g1\t1\t2", "g2\t3\t4"], {}, "3 columns and no header: say which"),
        (
            SALMON[:2] + ["ENSG00000188976.11\t4687\t4437.000\tNA\t812.000"],
            {},
            ":3: expected a finite number in field 4, the column TPM (a salmon quant.sf), "
            "found 'NA'",
        ),
        (
            RSEM[:2] + ["ENSG00000188976\tENST00000327044\t3245.17"],
            {},
            ":3: expected 7 fields as on line 1, found 3",
        ),
    ],
)
def test_unknown_or_ambiguous_tables_are_errors_naming_the_columns(tmp_path, lines, kw, message):
    with pytest.raises(FormatError) as err:
        Expression(str(write_lines(tmp_path / "t.tsv", lines)), **kw)
    assert message in str(err.value) and "\n" not in str(err.value)
