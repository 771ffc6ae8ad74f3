"""The ``chromaformer`` command group; each subcommand lives in its own module.

Commands only parse options and call library functions. Nothing here imports torch,
so ``chromaformer inspect`` answers fast.
"""

from __future__ import annotations

import click

from .._version import __version__
from .demo import demo
from .explain import explain, perturb
from .export import export
from .inspect import inspect
from .models import models
from .prepare import prepare
from .score import score
from .simulate import simulate
from .summarize import summarize
from .train import evaluate, train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chromaformer")
def main() -> None:
    """Learn the histone code: read histone-mark bins, train, export, score."""


main.add_command(inspect)
main.add_command(simulate)
main.add_command(demo)
main.add_command(train)
main.add_command(evaluate)
main.add_command(export)
main.add_command(score)
main.add_command(prepare)
main.add_command(models)
main.add_command(explain)
main.add_command(perturb)
main.add_command(summarize)

# -h as well as --help, for `chromaformer X` and the `chromaformer-X` scripts alike (each
# script imports its command through this package)
for _command in main.commands.values():
    _command.context_settings.setdefault("help_option_names", ["-h", "--help"])
