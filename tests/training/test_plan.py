"""The few-genes rules as a pure function (training/plan.py): the numbers a run on 25
training genes gets, in milliseconds and without torch. tests/training/test_engine.py
trains one run that checks the engine follows its plan."""

from __future__ import annotations

import pytest

from chromaformer.training import TrainConfig
from chromaformer.training.plan import plan_run


def _recipe(**kw):
    return TrainConfig(out="x", **kw).for_family("bins").recipe


def test_fewer_genes_than_a_batch_train_in_batches_of_eight():
    """Fewer training genes than one batch (64): the recipe's few_genes_batch_size (8),
    with a note; 25 genes make 4 steps per pass, at the recipe's rate. A batch given is
    the batch at any size; a recipe without one keeps its own."""
    few = plan_run(25, _recipe(min_steps=160, patience=0), "clf", "bilstm_attention")
    assert (few.batch_size, few.few_genes, few.full_pass) == (8, True, False)
    assert (few.steps_per_pass, few.passes, few.epochs, few.steps_per_epoch) == (4, 2, 20, 8)
    assert few.peak_lr == pytest.approx(3e-3) and few.selection is None
    assert few.options == {"towers": 1}  # one network, as the shipped starting weights
    assert few.notes[0].startswith(
        "note: 25 training genes, fewer than one batch (64): batches of 8 "
    )
    given = plan_run(25, _recipe(min_steps=160, batch_size=64), "clf", "cnn")
    assert (given.batch_size, given.passes * given.epochs * given.steps_per_pass) == (64, 160)
    assert not any("batches of" in n for n in given.notes)
    assert plan_run(25, _recipe(few_genes_batch_size=5), "clf", "cnn").batch_size == 5
    resolved = TrainConfig(out="x", batch_size=32).for_family("bins")
    assert (resolved.batch_size, resolved.few_genes_batch_size) == (32, 32)
    ref = TrainConfig(out="x", recipe_name="attentivechrome").for_family("bins")
    assert ref.few_genes_batch_size == ref.batch_size == 16
    big = plan_run(5000, _recipe(), "clf", "cnn")
    assert (big.batch_size, big.few_genes, big.passes, big.notes) == (64, False, 1, ())


def test_fewer_genes_than_the_batch_trained_take_the_lower_rate():
    """Every step a full pass (here few_genes_batch_size 64): few_genes_lr (3e-4) in place
    of the recipe's lr (3e-3), with a note; a rate given is kept at any size, and one batch
    or more trains at the recipe's lr; a start from learned weights takes start_lr."""
    few = plan_run(25, _recipe(few_genes_batch_size=64, epochs=1), "clf", "cnn")
    assert few.full_pass and few.peak_lr == pytest.approx(3e-4)
    assert few.notes[-1].startswith(
        "note: 25 training genes, fewer than one batch (64): peak learning rate 0.0003 "
    )
    given = plan_run(25, _recipe(few_genes_batch_size=64, epochs=1, lr=1e-3), "clf", "cnn")
    assert given.peak_lr == pytest.approx(1e-3)
    whole = plan_run(25, _recipe(few_genes_batch_size=64, epochs=1, batch_size=25), "clf", "cnn")
    assert whole.peak_lr == pytest.approx(3e-3)
    assert not any("peak learning rate" in n for n in whole.notes)
    rc = _recipe(few_genes_batch_size=64, epochs=1)
    started = few.starting(rc)
    assert started.peak_lr == pytest.approx(rc.start_lr)
    if rc.start_lr != few.peak_lr:
        assert started.notes[-1].startswith("note: starting from learned weights")
    else:
        assert started == few


def test_fewer_genes_than_a_batch_validate_often_and_pick_by_log_loss():
    """Every step a full pass: epochs of at most few_genes_epoch_steps steps, more epochs,
    the same steps and patience in steps, the lowest validation log loss picks. One batch
    or more, or the option off: as before."""
    few = plan_run(25, _recipe(few_genes_batch_size=64, min_steps=400, patience=0), "clf")
    # 25 genes, 1 step per pass: 400 steps in 20 epochs would be 20 per epoch
    assert (few.passes, few.epochs, few.steps_per_epoch) == (10, 40, 10)
    assert few.selection == ("log_loss", False)
    assert any(
        "each epoch makes 10 passes (at least 400 steps in 40 epochs); the lowest "
        "validation log_loss picks the epoch" in n
        for n in few.notes
    )
    # patience 8 epochs of 20 steps = 16 epochs of 10
    assert plan_run(25, _recipe(few_genes_batch_size=64, min_steps=400), "clf").patience == 16
    whole = plan_run(25, _recipe(few_genes_batch_size=64, min_steps=400, batch_size=25), "clf")
    assert (whole.passes, whole.epochs, whole.selection) == (20, 20, None)
    assert not any("picks the epoch" in n for n in whole.notes)
    off = plan_run(
        25, _recipe(few_genes_batch_size=64, min_steps=400, few_genes_epoch_steps=0), "clf"
    )
    assert (off.passes, off.epochs, off.selection) == (20, 20, None)
    # at least min_steps: 25 genes = 1 batch of 64 per pass, 25 steps in 20 epochs: 2 passes
    short = plan_run(25, _recipe(min_steps=25, patience=0, few_genes_batch_size=64), "clf")
    assert (short.passes, short.epochs, short.passes * short.epochs) == (2, 20, 40)


def test_fewer_genes_than_a_batch_train_a_smaller_hybrid():
    """The hybrid takes the recipe's few_genes_options (16 hidden units, not 32) with a
    note; an option given is kept, the other models are untouched, one batch or more
    trains the default, and a config given whole (arch None: resume) gets none."""
    rc = _recipe(epochs=1)
    few = plan_run(25, rc, "clf", "hybrid")
    assert few.options == {"bin_hidden": 16}
    assert any(
        "fewer than one batch (64): bin_hidden 16 (the recipe's few_genes_options)" in n
        for n in few.notes
    )
    assert plan_run(25, rc, "clf", "hybrid", {"bin_hidden": 8}).options == {"bin_hidden": 8}
    assert plan_run(25, _recipe(epochs=1, batch_size=25), "clf", "hybrid").options == {}
    assert plan_run(25, rc, "clf", "bilstm_attention").options == {"towers": 1}
    assert plan_run(25, rc, "clf", "cnn").options == {}
    assert plan_run(25, _recipe(epochs=1, few_genes_options={}), "clf", "hybrid").options == {}
    assert plan_run(25, rc, "clf", None).options == {}
