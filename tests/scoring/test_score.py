"""chromaformer-score end to end on real and simulated files; mismatch errors; atomic
outputs; the Node.js scorer's parity (required in CI)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

import chromaformer as cf
from chromaformer.cli import main
from chromaformer.formats.scores import output_names
from chromaformer.scoring import Scorer

from .._common import DEEPDIFF, gene_rows, run_cli, write_lines

NODE_DIR = Path(__file__).resolve().parents[2] / "export" / "node"
REAL = [DEEPDIFF / c / "classification" / "test.csv" for c in ("Cell1", "Cell2")]


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _torch_probs(model, counts):
    with torch.no_grad():
        return torch.sigmoid(model(torch.from_numpy(counts))["logit"]).numpy()


def test_score_real_cells_matches_pytorch_and_reports_metrics(exported, tmp_path):
    report, model, _ = exported["hybrid"]
    out = tmp_path / "scores"
    res = _run(
        "score",
        *REAL,
        "--model",
        report.path,
        "-o",
        out,
        "--attention",
        "--quiet",
        "--batch-size",
        "64",
        "--chunk-genes",
        "50",
    )
    assert res.exit_code == 0, res.output
    for src, name in zip(REAL, output_names(REAL)):
        table = pd.read_csv(out / f"{name}.scores.tsv", sep="\t", dtype={"gene_id": str})
        assert list(table.columns) == ["gene_id", "probability", "label"]
        data = cf.read_bins(src)
        assert list(table.gene_id) == list(data.gene_ids)
        assert np.array_equal(table.label.to_numpy(), data.labels)
        probs = _torch_probs(model, data.counts)
        np.testing.assert_allclose(table.probability.to_numpy(), probs, atol=1e-5)
        auroc = roc_auc_score(data.labels, table.probability)
        assert f"AUROC {auroc:.4f}" in res.output
        attn = np.load(out / f"{name}.attention.npz")
        assert attn["bin_attention"].shape == (200, 5, 100)
        assert list(attn["gene_id"]) == list(data.gene_ids)
        assert list(attn["marks"]) == list(cf.BENCHMARK_MARKS)
        np.testing.assert_allclose(attn["bin_attention"].sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(attn["mark_attention"].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("arch", ["bilstm_transformer", "cnn"])
def test_score_simulated_gzip_default_output(exported, tmp_path, arch):
    report, model, _ = exported[arch]
    sim = cf.simulate_genome(300, seed=9, id_style="numeric", bins=model.config.bins)
    src = tmp_path / "genome.csv.gz"
    cf.write_bins(src, sim.counts, sim.labels, sim.gene_ids, compress=True)
    res = _run("score", src, "--model", report.path, "--no-labels", "--quiet")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "genome.scores.tsv", sep="\t", dtype={"gene_id": str})
    assert list(table.columns) == ["gene_id", "probability"]
    assert list(table.gene_id) == list(sim.gene_ids)
    np.testing.assert_allclose(table.probability, _torch_probs(model, sim.counts), atol=1e-5)
    assert "AUROC" not in res.output


def test_scorer_streams_in_chunks_equal_to_one_batch(exported, sim_genome, tmp_path):
    path, sim = sim_genome
    scorer = Scorer(exported["cnn"][0].path)
    whole = scorer.predict(sim.counts)["probability"]
    from chromaformer.scoring import score

    res = score(scorer, path, tmp_path / "s.tsv", genes_per_chunk=333, batch_size=100)
    assert res.genes == 3000
    got = pd.read_csv(tmp_path / "s.tsv", sep="\t").probability.to_numpy()
    np.testing.assert_allclose(got, whole, atol=1e-6)


def test_default_batches_follow_the_device(exported, sim_genome, tmp_path):
    """CPU sessions take 512 genes per call; on the CUDA provider the defaults are the
    larger CUDA_* ones (measured launch-bound below them). The CUDA sizes stream the
    same genome to the same probabilities on this machine's CPU provider."""
    from chromaformer.scoring import score
    from chromaformer.scoring.engine import CUDA_BATCH_SIZE, CUDA_CHUNK_GENES

    path, sim = sim_genome
    scorer = Scorer(exported["cnn"][0].path)
    assert (scorer.batch_size, scorer.chunk_genes) == (512, 2048)
    whole = score(scorer, path, tmp_path / "cpu.tsv").probabilities
    scorer.device = "cuda"  # the sizes only: this machine has no CUDA provider
    assert (scorer.batch_size, scorer.chunk_genes) == (CUDA_BATCH_SIZE["bins"], 16384)
    assert scorer.batch_size > 1024 and CUDA_CHUNK_GENES["bins"] >= scorer.batch_size
    res = score(scorer, path, tmp_path / "big.tsv")
    np.testing.assert_allclose(res.probabilities, whole, atol=1e-6)
    assert len(whole) == len(sim.counts)


def test_mismatched_files_get_one_line_errors(exported, tmp_path):
    model = exported["hybrid"][0].path
    six = write_lines(tmp_path / "six.csv", gene_rows("g1", marks=6))
    fifty = write_lines(tmp_path / "fifty.csv", gene_rows("g1", bins=50) + gene_rows("g2", bins=50))
    for src, words in (
        (six, "6 mark columns but hybrid.onnx expects 5"),
        (fifty, "50 bins but hybrid.onnx expects 100 bins of 100 bp"),
    ):
        res = _run("score", src, "--model", model, "-o", tmp_path / "o.tsv", "--quiet")
        assert res.exit_code == 1
        assert words in res.output and str(src) in res.output
        assert len(res.output.strip().splitlines()) == 1
        assert not (tmp_path / "o.tsv").exists()
    # not a chromaformer model / not a model / cuda without a CUDA provider
    import onnx

    bare = onnx.load(str(model))
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    res = _run("score", REAL[0], "--model", tmp_path / "bare.onnx", "-o", tmp_path / "o.tsv")
    assert res.exit_code == 1 and "not a chromaformer model" in res.output
    (tmp_path / "junk.onnx").write_text("not onnx")
    res = _run("score", REAL[0], "--model", tmp_path / "junk.onnx", "-o", tmp_path / "o.tsv")
    assert res.exit_code == 1 and "not a loadable ONNX model" in res.output
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        res = _run("score", REAL[0], "--model", model, "--device", "cuda")
        assert res.exit_code == 1 and "onnxruntime-gpu" in res.output
    assert not (tmp_path / "o.tsv").exists()


def test_bad_line_deep_in_the_file_leaves_no_output(exported, tmp_path):
    model = exported["cnn"][0].path
    lines = []
    for g in range(40):
        lines += gene_rows(f"g{g}")
    assert lines[3705].startswith("g37,6,")
    lines[3705] = "g37,6,1,-2,3,4,5,1"  # a negative count, in the 8th chunk of 5 genes
    src = write_lines(tmp_path / "bad.csv", lines)
    out = tmp_path / "bad.scores.tsv"
    res = _run("score", src, "--model", model, "--chunk-genes", "5", "--quiet")
    assert res.exit_code == 1
    assert f"{src}:3706" in res.output
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_gzip_cut_at_a_gene_boundary_is_an_error_not_a_short_tsv(exported, tmp_path):
    model = exported["cnn"][0].path
    lines = []
    for g in range(40):
        lines += gene_rows(f"g{g}")
    first = ("\n".join(lines[:2500]) + "\n").encode()  # 25 whole genes, then a cut member
    rest = ("\n".join(lines[2500:]) + "\n").encode()
    src = tmp_path / "cut.csv.gz"
    src.write_bytes(gzip.compress(first) + gzip.compress(rest)[:50])
    res = _run("score", src, "--model", model, "--chunk-genes", "5", "--quiet")
    assert res.exit_code == 1
    assert f"{src}: invalid gzip data: the file is truncated" in res.output
    assert not (tmp_path / "cut.scores.tsv").exists() and not list(tmp_path.glob(".*"))


def test_sigterm_leaves_no_temporary_files(exported, tmp_path):
    import signal
    import time

    src = tmp_path / "big.csv"
    cf.write_simulated(src, 6000, seed=3)
    out = tmp_path / "out" / "big.tsv"
    cmd = ["chromaformer-score", str(src), "--model", str(exported["hybrid"][0].path)]
    proc = subprocess.Popen(
        [*cmd, "-o", str(out), "--chunk-genes", "10", "-q"], stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not list((tmp_path / "out").glob(".*")) and time.time() < deadline:
        time.sleep(0.02)  # until it has written temporaries
    assert proc.poll() is None, "finished before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip() == "Error: stopped by SIGTERM; no partial output was left"
    assert list((tmp_path / "out").iterdir()) == []


def test_a_signal_while_the_parser_starts_leaves_no_thread_behind(monkeypatch):
    """A SIGTERM landing while prefetch's parse thread starts (the handler raises in the
    main thread) still stops that thread: left running, it would be inside the C++
    reader when the interpreter shuts down, which aborts the process."""
    import threading

    from chromaformer._util.prefetch import prefetch

    real_start = threading.Thread.start

    def interrupted_start(self):
        real_start(self)
        if self.name == "chromaformer-parse":
            raise KeyboardInterrupt  # what the signal handler raises, just after the start

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    chunks = prefetch(iter(range(100)))
    with pytest.raises(KeyboardInterrupt):
        next(chunks)
    alive = [t for t in threading.enumerate() if t.name == "chromaformer-parse"]
    assert not alive, "the parse thread outlived its consumer"
    monkeypatch.undo()
    assert list(prefetch(iter(range(5)))) == [0, 1, 2, 3, 4]  # the normal path


def test_progress_on_a_terminal_only_and_quiet(exported, tmp_path):
    import pty

    model = exported["cnn"][0].path
    out = tmp_path / "p.tsv"
    cmd = ["chromaformer-score", str(REAL[0]), "--model", str(model), "-o", str(out)]
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()  # stderr on an 80-column terminal: the bar draws
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    loud = subprocess.run(cmd, stderr=slave, stdout=subprocess.PIPE, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: everything written has been read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    seen = b"".join(chunks).decode(errors="replace")
    assert loud.returncode == 0, seen
    assert "test.csv" in seen and "%" in seen and "\r" in seen  # the tqdm bar
    piped = subprocess.run(cmd, capture_output=True, text=True)  # stderr to a pipe/file
    assert piped.returncode == 0 and "%" not in piped.stderr and "\r" not in piped.stderr
    assert "model " in piped.stderr  # the one-line model summary stays
    quiet = subprocess.run(cmd + ["--quiet"], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "genes/s" in quiet.stdout


def _node_ready() -> bool:
    return (
        shutil.which("node") is not None
        and (NODE_DIR / "node_modules" / "onnxruntime-node").is_dir()
    )


@pytest.mark.skipif(
    not _node_ready() and not os.environ.get("CI"),
    reason="Node.js scorer not installed (cd export/node && "
    "ONNXRUNTIME_NODE_INSTALL=skip npm install); required in CI",
)
@pytest.mark.node
def test_node_scorer_equals_python_scorer(exported, tmp_path):
    assert _node_ready(), "CI must install export/node (see .ci/run)"
    model = exported["hybrid"][0].path
    sim = cf.simulate_genome(150, seed=4)
    gz = tmp_path / "sim.csv.gz"
    cf.write_bins(gz, sim.counts, sim.labels, sim.gene_ids, compress=True)
    inputs = [*REAL, gz]
    py = _run("score", *inputs, "--model", model, "-o", tmp_path / "py", "--quiet")
    assert py.exit_code == 0, py.output
    node = subprocess.run(
        [
            "node",
            str(NODE_DIR / "score.js"),
            *map(str, inputs),
            "--model",
            str(model),
            "-o",
            str(tmp_path / "node"),
        ],
        capture_output=True,
        text=True,
    )
    assert node.returncode == 0, node.stderr
    for name in output_names(inputs):
        a = pd.read_csv(tmp_path / "py" / f"{name}.scores.tsv", sep="\t", dtype={"gene_id": str})
        b = pd.read_csv(tmp_path / "node" / f"{name}.scores.tsv", sep="\t", dtype={"gene_id": str})
        assert list(a.columns) == list(b.columns)
        assert list(a.gene_id) == list(b.gene_id) and list(a.label) == list(b.label)
        assert np.abs(a.probability - b.probability).max() <= 1e-5
    # the same clear, atomic failure on bad input
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(gene_rows("g1")[:50]) + "\ng1,51,1,2,x,4,5,1\n")
    node = subprocess.run(
        ["node", str(NODE_DIR / "score.js"), str(bad), "--model", str(model)],
        capture_output=True,
        text=True,
    )
    assert node.returncode == 1
    assert f"{bad}:51" in node.stderr and "expected a non-negative number" in node.stderr
    assert not (tmp_path / "bad.scores.tsv").exists()
    with gzip.open(gz, "rt") as fh:
        assert fh.readline().count(",") == 7


def test_shipped_e116_model_by_name_reproduces_its_card(tmp_path):
    """`chromaformer models` lists the shipped model; `--model e116` scores the real
    GM12878 validation genes (prepared from the bundled tracks) at the AUROC its card
    reports, above the card's logistic regression."""
    import json

    from chromaformer.prepare.real import prepare_e116
    from chromaformer.pretrained import PRETRAINED

    listing = run_cli("models", "--json")
    assert listing.exit_code == 0, listing.output
    (entry,) = [m for m in json.loads(listing.output) if m["name"] == "e116"]
    assert entry["layout"]["counts"]["bin_size"] == 10000 and entry["task"] == "clf"
    text = run_cli("models")
    assert "e116: ensemble of 3 bilstm_attention + 3 cnn (clf), 21 bins of 10,000 bp" in text.output
    prepare_e116(tmp_path, splits=("valid",))
    valid = tmp_path / "E116" / "classification" / "valid.csv"
    res = run_cli("score", valid, "--model", "e116", "-o", tmp_path / "v.tsv", "--quiet")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "v.tsv", sep="\t")
    card = json.loads((PRETRAINED / "e116.model.json").read_text())["info"]
    auroc = roc_auc_score(table.label, table.probability)
    assert auroc == pytest.approx(card["validation_metrics"]["mean_auroc"], abs=1e-4)
    assert auroc > card["baselines"]["logistic regression"]
    assert auroc > card["baselines"]["gradient boosting"]
    # its members are mirror-symmetric (the bins run in genomic order): onnxruntime gives
    # a gene's profile and its mirror image the same probability, and the card says so
    bins = cf.read_bins(valid)
    scorer = Scorer("e116")
    (ahead,) = scorer.predict(bins.counts[:64]).values()
    (back,) = scorer.predict(bins.counts[:64, ::-1]).values()
    np.testing.assert_allclose(ahead, back, atol=1e-5)
    schema = json.loads((PRETRAINED / "e116.model.json").read_text())["schema"]
    assert "mirror image alike" in schema["inputs"]["counts"]["doc"]
    bad = run_cli("score", valid, "--model", "e117", "-o", tmp_path / "x.tsv", "--quiet")
    assert bad.exit_code == 1 and "no shipped model of that name (shipped: e116" in bad.output


def test_shipped_regression_model_reproduces_its_card_from_the_bundled_data(tmp_path):
    """`e116-reg` is listed beside `e116`; on the bundled GM12878 validation genes (bin
    CSV and expression prepared from the package's files) chromaformer-score and
    chromaformer.predict give the Pearson r its card reports, above its ridge regression;
    the card carries each baseline's gap with its interval."""
    import json

    from chromaformer.prepare.real import prepare_e116
    from chromaformer.pretrained import PRETRAINED

    listing = json.loads(run_cli("models", "--json").output)
    (entry,) = [m for m in listing if m["name"] == "e116-reg"]
    assert entry["task"] == "reg" and entry["metric"] == "pearson_r"
    assert {m["name"] for m in listing} >= {"e116", "e116-reg"}
    assert "validation Pearson r" in run_cli("models").output
    prepare_e116(tmp_path, splits=("valid",))
    valid = tmp_path / "E116" / "classification" / "valid.csv"
    res = run_cli("score", valid, "--model", "e116-reg", "-o", tmp_path / "v.tsv")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "v.tsv", sep="\t")
    assert list(table.columns) == ["gene_id", "prediction", "observed"]
    info = json.loads((PRETRAINED / "e116-reg.model.json").read_text())["info"]
    r = np.corrcoef(table.prediction, table.observed)[0, 1]
    assert r == pytest.approx(info["validation_metrics"]["pearson_r"], abs=1e-4)
    assert r > info["baselines"]["ridge regression"]
    gaps = info["evaluation"]["gaps"]
    assert gaps["ridge regression"]["low"] > 0  # above ridge, beyond the genes' noise
    frame = cf.predict("e116-reg", valid)
    np.testing.assert_allclose(frame["prediction"], table.prediction, rtol=1e-5)


def test_score_writes_a_track_of_the_scores_or_refuses_before_any_work(tmp_path):
    from chromaformer.simulate import simulate_samples

    simulate_samples(tmp_path / "s", samples=1, genes=12, seed=4)
    marks = [a for m in cf.BENCHMARK_MARKS for a in ("--mark", f"{m}={tmp_path}/s/sample1/{m}.bw")]
    src = tmp_path / "bins.csv"
    res = _run(
        "prepare",
        *marks,
        "--genes",
        tmp_path / "s" / "genes.bed",
        "--model",
        "e116",
        "--stat",
        "mean",
        "-o",
        src,
        "--jobs",
        "1",
        "-q",
    )
    assert res.exit_code == 0, res.output
    res = _run("score", src, "--model", "e116", "-o", tmp_path / "o.tsv", "--track", "bed", "-q")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o.tsv", sep="\t", dtype={"gene_id": str})
    bed = pd.read_csv(
        tmp_path / "o.bed",
        sep="\t",
        skiprows=1,
        header=None,
        names=["chrom", "start", "end", "gene", "score", "strand"],
    )
    genes = pd.read_csv(
        tmp_path / "s" / "genes.bed",
        sep="\t",
        header=None,
        names=["chrom", "tss", "e", "gene", "x", "strand"],
    ).set_index("gene")
    assert sorted(bed.gene) == sorted(table.gene_id) and len(bed) == 12
    want = dict(zip(table.gene_id, np.rint(table.probability * 1000).astype(int)))
    for row in bed.itertuples():
        assert row.score == want[row.gene]
        assert row.chrom == genes.chrom[row.gene] and row.strand == genes.strand[row.gene]
        assert row.start == max(genes.tss[row.gene] - 105_000, 0)  # e116's window
    (tmp_path / "bins.tss.bed").unlink()  # no positions: refused before scoring
    res = _run("score", src, "--model", "e116", "-o", tmp_path / "p.tsv", "--track", "bw", "-q")
    assert res.exit_code == 1 and "no gene positions for tracks" in res.output, res.output
    assert not (tmp_path / "p.tsv").exists() and not list(tmp_path.glob(".p.tsv*"))


def test_jobs_score_a_collection_in_worker_processes_to_the_same_bytes(tmp_path):
    files = []
    for i in range(3):
        f = tmp_path / f"s{i}.csv.gz"
        cf.write_simulated(f, 150, seed=i + 1, bins=21, bin_size=10_000)
        files.append(f)
    for jobs in ("1", "2"):
        res = _run(
            "score",
            *files,
            "--model",
            "e116",
            "-o",
            tmp_path / f"j{jobs}",
            "--jobs",
            jobs,
            "--quiet",
        )
        assert res.exit_code == 0, res.output
        assert res.stdout.count("150 genes in") == 3
    for f in (tmp_path / "j1").iterdir():
        assert f.read_bytes() == (tmp_path / "j2" / f.name).read_bytes(), f.name
    bad = tmp_path / "s1.csv.gz"
    bad.write_bytes(bad.read_bytes()[:-20])  # the second input is cut short
    res = _run("score", *files, "--model", "e116", "-o", tmp_path / "jb", "--jobs", "2", "-q")
    assert res.exit_code == 1
    assert res.stderr.strip() == f"Error: {bad}: invalid gzip data: the file is truncated"
    assert not (tmp_path / "jb" / "s1.scores.tsv").exists()
    assert not list((tmp_path / "jb").glob(".*"))


def test_threads_keep_to_omp_num_threads_unless_given(exported, monkeypatch, many_cores):
    """OMP_NUM_THREADS (set by Snakemake, SLURM, this suite's workers) is the budget of
    the onnxruntime session and the parser when no ``threads`` is given."""
    from chromaformer.scoring.session import session_options

    model = exported["cnn"][0].path
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert session_options().intra_op_num_threads == 3
    assert session_options(2).intra_op_num_threads == 2
    scorer = Scorer(model)  # the budget of 3: three calls side by side, one thread each
    assert (scorer.calls, scorer.session.get_session_options().intra_op_num_threads) == (3, 1)
    b3 = cf.read_bins(REAL[0])  # 3 parser threads: the same arrays as one
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert np.array_equal(cf.read_bins(REAL[0]).counts, b3.counts)
    for unset in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert session_options().intra_op_num_threads == 0  # onnxruntime's default


def test_calls_side_by_side_give_the_same_bits_in_the_same_order(exported, many_cores):
    """A thread budget goes to onnxruntime calls side by side before threads within a
    call; several batches scored side by side are the same arrays, in the same order,
    as one call at a time on one thread."""
    from chromaformer.scoring.session import MAX_CONCURRENT_RUNS, thread_plan

    assert thread_plan(1) == (1, 1)
    assert thread_plan(2) == (2, 1)
    assert thread_plan(MAX_CONCURRENT_RUNS * 2) == (MAX_CONCURRENT_RUNS, 2)
    assert thread_plan(MAX_CONCURRENT_RUNS * 4 + 1) == (MAX_CONCURRENT_RUNS, 4)
    assert thread_plan(8, "cuda") == (1, 8) and thread_plan(None, "cuda") == (1, None)
    counts = cf.read_bins(REAL[0]).counts
    for arch in ("hybrid", "cnn"):
        one, four = (
            Scorer(exported[arch][0].path, threads=1),
            Scorer(exported[arch][0].path, threads=4),
        )
        assert (one.calls, four.calls) == (1, 4)
        assert four.chunk_genes >= 4 * four.batch_size
        a = one.predict(counts, attention=True, batch_size=7)
        b = four.predict(counts, attention=True, batch_size=7)
        assert a.keys() == b.keys() and len(a["probability"]) == len(counts)
        for k in a:
            assert np.array_equal(a[k], b[k]), (arch, k)


def test_chromoformer_scores_one_call_at_a_time(cf_runs, many_cores):
    """Calls side by side are for the bin models (SIDE_BY_SIDE): Chromoformer measured
    slower and larger so, and its session keeps the whole thread budget."""
    from chromaformer.scoring.engine import SIDE_BY_SIDE

    assert "bins" in SIDE_BY_SIDE and "chromoformer" not in SIDE_BY_SIDE
    scorer = Scorer(cf_runs / "clf.onnx", threads=4)
    assert scorer.calls == 1
    assert scorer.session.get_session_options().intra_op_num_threads == 4
    assert scorer.chunk_genes == 256


def test_a_signal_between_the_steps_of_a_temporary_leaves_nothing(tmp_path, monkeypatch):
    """The window test_sigterm_leaves_no_temporary_files hits now and then, made certain:
    an interrupt just after a temporary file or folder was created, and one while a
    write is open (the commands' SIGTERM handler then removes what is listed)."""
    from chromaformer._util import atomic as _atomic

    real_close, real_mkdir = os.close, os.mkdir

    def interrupted(real):
        def call(*args, **kwargs):
            real(*args, **kwargs)
            raise KeyboardInterrupt  # what the signal handler raises, after the step

        return call

    monkeypatch.setattr(_atomic.os, "close", interrupted(real_close))
    with pytest.raises(KeyboardInterrupt):
        with _atomic.atomic_path(tmp_path / "a.tsv"):
            pass
    monkeypatch.setattr(_atomic.os, "close", real_close)
    monkeypatch.setattr(_atomic.os, "mkdir", interrupted(real_mkdir))
    with pytest.raises(KeyboardInterrupt):
        with _atomic.temporary_folder(tmp_path, ".work-"):
            pass
    monkeypatch.setattr(_atomic.os, "mkdir", real_mkdir)
    assert list(tmp_path.iterdir()) == [] and not _atomic._LIVE
    with pytest.raises(KeyboardInterrupt):
        with (
            _atomic.atomic_path(tmp_path / "b.tsv") as tmp,
            _atomic.temporary_folder(tmp_path, ".work-") as folder,
        ):
            (folder / "part").write_text("x")
            assert tmp.exists() and len(_atomic._LIVE) == 2
            _atomic.remove_temporaries()  # the handler's sweep, mid-write
            assert list(tmp_path.iterdir()) == []
            raise KeyboardInterrupt  # and the unwinding after it finds nothing to remove
    assert list(tmp_path.iterdir()) == [] and not _atomic._LIVE


def test_scikit_learn_loads_only_for_labels_that_hold_both_classes(exported, tmp_path):
    """A genome prepared without expression is labelled all 0: it gets no metrics, so
    scoring it must not pay about a second of CPU for importing scikit-learn."""
    sim = cf.simulate_genome(300, seed=4, bins=100)
    both = tmp_path / "both.csv"
    cf.write_bins(both, sim.counts, sim.labels, sim.gene_ids)
    zeros = tmp_path / "zeros.csv"
    cf.write_bins(zeros, sim.counts, np.zeros_like(sim.labels), sim.gene_ids)
    code = (
        "import sys; from chromaformer.cli import main\n"
        "try:\n    main(sys.argv[1:])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('sklearn' in sys.modules)"
    )
    model = str(exported["hybrid"][0].path)
    seen = {}
    for src in (both, zeros):
        res = subprocess.run(
            [sys.executable, "-c", code, "score", str(src), "-m", model, "-q"],
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stderr
        seen[src.stem] = res.stdout.split()[-1] == "True"
        assert ("AUROC" in res.stdout) == (src is both)
    assert seen == {"both": True, "zeros": False}
    table = pd.read_csv(tmp_path / "zeros.scores.tsv", sep="\t")
    assert list(table.columns) == ["gene_id", "probability", "label"] and set(table.label) == {0}


def test_chunks_handed_over_ahead_give_the_same_file_as_one_call_at_a_time(
    exported, sim_genome, tmp_path, many_cores
):
    """With calls side by side, a chunk's calls start before the chunk before it is
    written (and small chunks and batches make many of both): the TSV is the same bytes
    as one call at a time, rows in input order; the Scorer's worker threads are reused."""
    from chromaformer.scoring import score

    path, _ = sim_genome
    one = Scorer(exported["hybrid"][0].path, threads=1)
    three = Scorer(exported["hybrid"][0].path, threads=3)
    assert (one.calls, three.calls) == (1, 3)
    a = score(one, path, tmp_path / "one.tsv", genes_per_chunk=250, batch_size=40)
    b = score(three, path, tmp_path / "three.tsv", genes_per_chunk=250, batch_size=40)
    assert (tmp_path / "one.tsv").read_bytes() == (tmp_path / "three.tsv").read_bytes()
    assert a.metrics == b.metrics and a.genes == b.genes == 3000
    workers = three._workers()
    score(three, path, tmp_path / "again.tsv", genes_per_chunk=999, batch_size=64)
    assert three._workers() is workers
    assert (tmp_path / "again.tsv").read_bytes() == (tmp_path / "one.tsv").read_bytes()


def test_the_metrics_import_waits_for_the_end_on_small_machines(exported, tmp_path, monkeypatch):
    """scikit-learn's import runs beside the scoring only where a core is spare for it
    (measured: on 2 cores it slowed a labelled genome by about half a second), and
    --no-metrics (the workflow's score step) never starts it."""
    from chromaformer.scoring import engine, score

    started = []
    monkeypatch.setattr(engine, "import_in_background", lambda: started.append(1))
    sim = cf.simulate_genome(300, seed=4, bins=100)
    src = tmp_path / "both.csv"
    cf.write_bins(src, sim.counts, sim.labels, sim.gene_ids)
    scorer = Scorer(exported["cnn"][0].path)
    for n_cores, metrics, expect in ((2, True, 0), (4, True, 1), (16, False, 0)):
        started.clear()
        monkeypatch.setattr(engine, "cores", lambda n=n_cores: n)
        res = score(scorer, src, tmp_path / "s.tsv", metrics=metrics)
        assert len(started) == expect, (n_cores, metrics)
        assert bool(res.metrics) == metrics
        assert pd.read_csv(tmp_path / "s.tsv", sep="\t").columns[-1] == "label"
