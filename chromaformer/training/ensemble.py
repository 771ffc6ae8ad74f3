"""An ensemble of trained bin-model runs as a run folder of its own.

``ensemble_run(runs, out)`` averages the members' probabilities (or predictions)
(:class:`~chromaformer.models.ensemble.Ensemble`), evaluates the ensemble on the members'
own validation and evaluation splits beside the baselines, and writes ``out`` as a run
folder (``best.pt``, ``config.json``, ``metrics.json``) that ``chromaformer-export``
turns into one graph. ``--seeds N`` does it for its seeds (``OUT/ensemble``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from .._util.system import PathLike
from ..errors import DataError
from ..families import family_for
from ..models.checkpoint import BEST, load_model, save_checkpoint
from ..models.config import config_of
from ..models.ensemble import ensemble_of
from .config import TrainConfig
from .engine import evaluate_model, predict, resolve_device
from .run_folder import write_json

#: The data options that must agree between members (their evaluation is shared).
_SAME_DATA = ("data_root", "cell_types", "bin_size")


def ensemble_run(
    runs: Sequence[PathLike], out: PathLike, *, device: str = "cpu", quiet: bool = True
) -> dict[str, Any]:
    """Write the ensemble of ``runs`` (run folders of bin models trained on the same
    data) into ``out`` and return its metrics (as :func:`~chromaformer.training.train`)."""
    if len(runs) < 2:
        raise DataError("an ensemble needs at least two runs")
    configs = []
    for r in runs:
        path = Path(r) / "config.json"
        if not path.exists():
            raise DataError(f"{r}: not a run folder of chromaformer-train (no config.json)")
        configs.append(json.loads(path.read_text())["train"])
    for r, c in zip(runs[1:], configs[1:]):
        for key in _SAME_DATA:
            if c.get(key) != configs[0].get(key):
                raise DataError(
                    f"{r}: trained on other data than {runs[0]} ({key}: {c.get(key)!r} vs "
                    f"{configs[0].get(key)!r}); an ensemble's members share their data"
                )
    try:
        ens = ensemble_of([load_model(r) for r in runs])
    except ValueError as err:
        raise DataError(f"{', '.join(map(str, runs))}: {err}") from None
    family = family_for(config_of(ens))
    out = Path(out)
    tc = TrainConfig.from_dict({**configs[0], "out": str(out), "quiet": quiet}).for_family(
        family.name
    )
    task = config_of(ens).task
    data = family.load(tc, task)
    dev = resolve_device(device)
    valid = family.metrics(
        task, data.valid, predict(ens.to(dev), data.valid.inputs, batch_size=2048)
    )
    out.mkdir(parents=True, exist_ok=True)
    cells = list(tc.cell_types)
    save_checkpoint(out / BEST, ens, epoch="", valid=valid, cell_types=cells, task=task)
    write_json(
        out / "config.json",
        {"train": tc.to_dict(), "model": config_of(ens).to_dict(), "members": list(map(str, runs))},
    )
    metrics = evaluate_model(out, family, tc, data, ens, dev, plots=False)
    metrics.update(
        {
            "model": ens.config.description,
            "members": [str(r) for r in runs],
            "best_valid": valid,
            "best_epoch": None,
            "epochs_run": 0,
            "epoch_seconds": [],
            "history": [],
            "notes": data.notes,
            "device": str(dev),
            "world_size": 1,
            **data.info,
        }
    )
    write_json(out / "metrics.json", metrics)
    return metrics
