"""explain / perturb / genome-browser tracks on real parts: a model trained on a
simulated genome and exported, real onnxruntime sessions, files from chromaformer-prepare,
pyBigWig read-back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import chromaformer as cf
from chromaformer.explain import attribute, perturb
from chromaformer.formats.bincsv import write_bins
from chromaformer.formats.signal import write_bigwig
from chromaformer.scoring import Scorer

from .._common import built_once, run_cli, write_lines

MARKS = list(cf.BENCHMARK_MARKS)


@pytest.fixture(scope="session")
def sim_model(tmp_path_factory):
    """A CNN trained on a simulated genome (whose generating marks are known), exported;
    and a 300-gene simulated file to explain."""

    def build(d):
        from chromaformer.export import export_onnx
        from chromaformer.training import TrainConfig, train

        for s, (split, n) in enumerate((("train", 800), ("valid", 200), ("test", 300))):
            path = d / "S" / "classification" / f"{split}.csv"
            cf.write_simulated(path, n, seed=40 + s, noise=0.3)
        train(
            TrainConfig(
                out=str(d / "run"),
                data_root=str(d),
                cell_types=["S"],
                epochs=4,
                quiet=True,
                plots=False,
            ),
            "cnn",
        )
        export_onnx(d / "run", d / "cnn.onnx")

    d = built_once(tmp_path_factory, "explain_sim_model", build)
    return d / "cnn.onnx", d / "S" / "classification" / "test.csv"


def test_shapley_values_are_complete_and_occlusion_is_what_it_says(sim_model):
    model, test_csv = sim_model
    scorer = Scorer(model)
    bins = cf.read_bins(test_csv)
    x = bins.counts[:40].astype(np.float32)
    att = attribute(scorer, {"counts": x}, window=10)
    logit = scorer.run({"counts": x}, ["logit"])["logit"].astype(np.float64)
    empty = scorer.run({"counts": np.zeros_like(x)}, ["logit"])["logit"]
    np.testing.assert_allclose(att.value, logit, atol=1e-6)
    np.testing.assert_allclose(att.baseline, empty, atol=1e-6)
    # completeness: each gene's mark values sum to value - baseline
    np.testing.assert_allclose(att.shapley.sum(axis=1), att.value - att.baseline, atol=1e-4)
    # a single mark's Shapley value with two marks present is the average of its two
    # marginal contributions; here, check the occlusion map against direct scoring
    y = x.copy()
    y[:, 30:40, 3] = 0  # H3K4me3, bins 31-40
    drop = logit - scorer.run({"counts": y}, ["logit"])["logit"]
    np.testing.assert_allclose(att.occlusion[:, 30, 3], drop, atol=1e-5)
    np.testing.assert_allclose(att.occlusion[:, 39, 3], drop, atol=1e-5)
    assert att.occlusion.shape == (40, 100, 5)


def test_chromoformer_occlusion_removes_one_stretch_at_every_resolution(cf_runs, cf_cells):
    scorer = Scorer(cf_runs / "clf.onnx")
    info, family = scorer.info, scorer.family
    a = cf_cells / "A"
    src = ([str(a / "meta.csv")], [str(a / "npy")])
    feeds = next(family.chunks(info, src, chunk_genes=12, threads=None)).feeds
    att = attribute(scorer, feeds, window=2)
    assert att.map_bin_size == 2000 and att.occlusion.shape == (12, 20, 7)
    np.testing.assert_allclose(att.shapley.sum(axis=1), att.value - att.baseline, atol=1e-3)
    # TSS - 4 kb .. TSS of mark 0, removed by hand from the three promoter inputs
    changed = {k: v.copy() for k, v in feeds.items()}
    for b in (2000, 500, 100):
        r = 2000 // b
        changed[f"promoter_{b}"][:, 8 * r : 10 * r, 0] = 0
    z = scorer.run(changed, ["logits"])["logits"].astype(np.float64)
    drop = att.value - (z[:, 1] - z[:, 0])
    np.testing.assert_allclose(att.occlusion[:, 8, 0], drop, atol=1e-4)
    np.testing.assert_allclose(att.occlusion[:, 9, 0], drop, atol=1e-4)
    assert np.abs(att.occlusion).max() > 0


def test_explain_finds_the_generating_marks_of_a_simulated_genome(sim_model, tmp_path):
    model, test_csv = sim_model
    gene = cf.read_bins(test_csv).gene_ids[0]
    res = run_cli("explain", test_csv, "-m", model, "-o", tmp_path / "ex", "--genes", gene, "-q")
    assert res.exit_code == 0, res.output
    expressed = res.output.splitlines()[1]
    assert expressed.startswith("expressed genes (labels): ")
    top_two = [w for w in expressed.split(": ", 1)[1].split(", ")][:2]
    # simulate: H3K4me3 at the TSS and H3K36me3 over the body drive expression
    assert {t.split()[0] for t in top_two} == {"H3K4me3", "H3K36me3"}
    table = pd.read_csv(tmp_path / "ex" / "importance.tsv", sep="\t")
    assert len(table) == 300 and list(table.columns[:4]) == [
        "gene_id",
        "value",
        "probability",
        "baseline",
    ]
    shap = table[[f"shapley_{m}" for m in MARKS]].to_numpy()
    np.testing.assert_allclose(shap.sum(1), table.value - table.baseline, atol=2e-4)
    silent = table.label == 0
    assert (
        table.loc[silent, "shapley_H3K27me3"].mean()
        < 0
        < table.loc[~silent, "shapley_H3K4me3"].mean()
    )
    with np.load(tmp_path / "ex" / "attributions.npz") as z:
        assert z["occlusion"].shape == (300, 100, 5) and list(z["marks"]) == MARKS
        np.testing.assert_allclose(z["shapley"], shap, atol=1e-5)
        assert list(z["gene_id"]) == list(table.gene_id.astype(str))
    for png in ("mark_importance.png", "profiles.png", f"heatmap_{gene}.png"):
        assert (tmp_path / "ex" / png).read_bytes()[:4] == b"\x89PNG"


def _changed(path, counts, labels, ids, tmp_path, name):
    out = tmp_path / f"{name}.csv"
    write_bins(out, counts.astype(np.float32), labels, ids, bin_size=100, marks=MARKS)
    return out


def test_perturb_equals_scoring_the_changed_file(sim_model, tmp_path):
    model, test_csv = sim_model
    b = cf.read_bins(test_csv)
    counts = b.counts.astype(np.float64)
    scorer = Scorer(model)
    before = scorer.predict(counts)["probability"]

    res = perturb(model, test_csv, tmp_path / "k27.tsv", ["H3K27me3=0", "H3K4me3*0.5"], plot=True)
    changed = counts.copy()
    changed[..., 0] = 0
    changed[..., 3] *= 0.5
    after = scorer.predict(changed)["probability"]
    order = {g: i for i, g in enumerate(b.gene_ids)}
    idx = [order[g] for g in res.gene_ids]
    np.testing.assert_allclose(res.before, before[idx], atol=1e-7)
    np.testing.assert_allclose(res.after, after[idx], atol=1e-6)
    table = pd.read_csv(tmp_path / "k27.tsv", sep="\t", dtype={"gene_id": str})
    assert list(table.columns) == [
        "gene_id",
        "probability_before",
        "probability_after",
        "difference",
        "rank",
    ]
    assert (np.diff(np.abs(table.difference)) <= 1e-7).all() and list(table["rank"]) == list(
        range(1, 301)
    )
    assert (tmp_path / "k27.effects.png").read_bytes()[:4] == b"\x89PNG"

    # another cell of the same genes: one mark from it, then every mark (DeepDiff's question)
    other_counts = counts[::-1].copy()
    other = _changed(test_csv, other_counts, b.labels, b.gene_ids, tmp_path, "other")
    one = perturb(model, test_csv, tmp_path / "o1.tsv", ["H3K36me3=other"], other=other)
    mixed = counts.copy()
    mixed[..., 1] = other_counts[..., 1]
    np.testing.assert_allclose(
        one.after, scorer.predict(mixed)["probability"][[order[g] for g in one.gene_ids]], atol=1e-6
    )
    res = run_cli("perturb", test_csv, "-m", model, "--other", other, "-o", tmp_path / "o.tsv")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("what if all=other: 300 genes")
    table = pd.read_csv(tmp_path / "o.tsv", sep="\t", dtype={"gene_id": str}).set_index("gene_id")
    theirs = scorer.predict(other_counts)["probability"]
    np.testing.assert_allclose(table.loc[list(b.gene_ids), "probability_after"], theirs, atol=1e-6)


def test_perturb_and_explain_errors_are_one_line(sim_model, tmp_path):
    model, test_csv = sim_model
    b = cf.read_bins(test_csv)
    shuffled = _changed(
        test_csv, b.counts[::-1], b.labels[::-1], b.gene_ids[::-1], tmp_path, "shuffled"
    )
    cases = [
        (("perturb", test_csv, "--set", "H3K99=0"), "no mark 'H3K99'"),
        (("perturb", test_csv, "--set", "H3K4me3+2"), "expected MARK=0, MARK*FACTOR"),
        (("perturb", test_csv), "nothing to change"),
        (("perturb", test_csv, "--set", "H3K4me3=other"), "needs --other FILE"),
        (("perturb", test_csv, "--other", shuffled), "expected the same genes in the same order"),
        (("explain", test_csv, "--genes", "NOPE"), "no gene 'NOPE' in the input"),
        (("explain", test_csv, "--tracks", "bw"), "no gene positions for tracks"),
    ]
    for args, expected in cases:
        out = tmp_path / f"o{len(args)}"
        res = run_cli(*args, "-m", model, "-o", out, "-q")
        assert res.exit_code == 1, (args, res.output)
        assert expected in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "o5").exists()  # no partial output


def _read_bedgraph(path):
    rows = [ln.split("\t") for ln in path.read_text().splitlines()[1:]]
    return [(c, int(s), int(e), float(v)) for c, s, e, v in rows]


def test_tracks_of_a_prepared_file_are_sorted_within_sizes_and_read_back(sim_model, tmp_path):
    """prepare writes the TSS sidecar and chromosome sizes; explain/perturb tracks are
    sorted, non-overlapping, within the chromosome sizes, and bigWig reads back."""
    import pyBigWig

    model, _ = sim_model
    rng = np.random.default_rng(2)
    sizes = {"chr2": 60_000, "chr10": 80_000}
    paths = {}
    for m in MARKS:
        paths[m] = tmp_path / f"{m}.bw"
        signal = {c: [(0, rng.integers(0, 8, n).astype(float))] for c, n in sizes.items()}
        write_bigwig(str(paths[m]), sizes, signal)
    genes = [f"chr10\t{t}\t{t + 500}\tA{t}\t0\t+" for t in (70_000, 3_000, 30_000, 30_040)]
    genes += [f"chr2\t{t}\t{t + 500}\tB{t}\t0\t-" for t in (59_000, 20_000, 20_010)]
    genes += ["chr2\t40000\t40500\tC1\t0\t+", "chr2\t40000\t40700\tC2\t0\t+"]  # one TSS
    bed = write_lines(tmp_path / "genes.bed", genes)
    csv = tmp_path / "prep" / "genes.csv"
    args = [a for m in MARKS for a in ("--mark", f"{m}={paths[m]}")]
    res = run_cli("prepare", *args, "--genes", bed, "-o", csv, "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "prep" / "genes.tss.bed").read_text().startswith("chr10\t70000\t70001\tA")

    res = run_cli(
        "explain",
        csv,
        "-m",
        model,
        "-o",
        tmp_path / "ex",
        "--tracks",
        "bedGraph",
        "--no-plots",
        "-q",
    )
    assert res.exit_code == 0, res.output
    res = run_cli(
        "perturb",
        csv,
        "-m",
        model,
        "-o",
        tmp_path / "p.tsv",
        "--set",
        "H3K4me3=0",
        "--tracks",
        "bw",
        "-q",
    )
    assert res.exit_code == 0, res.output
    res = run_cli(
        "perturb",
        csv,
        "-m",
        model,
        "-o",
        tmp_path / "q.tsv",
        "--set",
        "H3K4me3=0",
        "--tracks",
        "bed",
        "-q",
    )
    assert res.exit_code == 0, res.output

    rows = _read_bedgraph(tmp_path / "ex" / "value.bedGraph")
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # sort -k1,1 -k2,2n
    for a, b in zip(rows, rows[1:]):
        assert (a[0], a[1]) < (b[0], b[1]) and (a[0] != b[0] or a[2] <= b[1])
    assert all(0 <= s < e <= sizes[c] for c, s, e, _ in rows)
    assert len(rows) == 8  # C1 and C2 share a TSS: one interval, their mean
    table = pd.read_csv(tmp_path / "ex" / "importance.tsv", sep="\t").set_index("gene_id")
    at = {(c, s): v for c, s, _, v in rows}
    assert at[("chr2", 40_000 - 50)] == pytest.approx(table.loc[["C1", "C2"], "value"].mean(), 1e-6)
    assert at[("chr10", 70_000 - 50)] == pytest.approx(table.loc["A70000", "value"], 1e-6)
    # 30000 and 30040: cut at the midpoint between the TSSs
    assert [(s, e) for c, s, e, _ in rows if c == "chr10"][1:3] == [
        (29_950, 30_020),
        (30_020, 30_091),
    ]
    # B59000 is a - strand gene: its TSS is end - 1
    assert ("chr2", 59_499 - 50) in at

    diff = pd.read_csv(tmp_path / "p.tsv", sep="\t").set_index("gene_id")["difference"]
    bw = pyBigWig.open(str(tmp_path / "p.bw"))
    assert bw.chroms() == sizes
    assert bw.values("chr10", 70_000, 70_001)[0] == pytest.approx(diff["A70000"], abs=1e-6)
    assert bw.values("chr2", 20_499, 20_500)[0] == pytest.approx(diff["B20000"], abs=1e-6)
    bw.close()
    bed_rows = (tmp_path / "q.bed").read_text().splitlines()
    assert bed_rows[0].startswith("track ") and len(bed_rows) == 10
    fields = [r.split("\t") for r in bed_rows[1:]]
    assert all(0 <= int(f[4]) <= 1000 and int(f[2]) <= sizes[f[0]] for f in fields)
    assert {f[3] for f in fields} == set(diff.index)
