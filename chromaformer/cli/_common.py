"""What every command shares: one-line errors and the quiet/threads options."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from typing import Any, Callable, Optional, TypeVar

import click

from .._util.atomic import remove_temporaries
from .._util.system import cores
from ..errors import DataError, FormatError

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every temporary file and
    folder is removed by the code that made it."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def one_line_errors(func: F) -> F:
    """Turn bad-input exceptions into ``Error: <one line>`` and exit status 1; SIGTERM
    and SIGHUP end the command cleanly (no temporary files left; status 128 + signal)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, _terminate)
        try:
            return func(*args, **kwargs)
        except Terminated as t:
            remove_temporaries()  # any a write was making when the signal came
            name = signal.Signals(t.args[0]).name
            click.echo(f"Error: stopped by {name}; no partial output was left", err=True)
            sys.exit(128 + t.args[0])
        except (FormatError, DataError) as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            raise click.ClickException(f"{where}{err.strerror or err}") from None
        finally:  # called from Python (or a test), the caller's handlers come back
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    return wrapper  # type: ignore[return-value]


def _at_most_cores(ctx: click.Context, param: click.Parameter, value: Optional[int]) -> Any:
    """A thread or job count cut to the cores this process may use, with a note."""
    if value is None:
        return None
    n = cores()
    if value > n:
        click.echo(
            f"note: --{param.name} {value} is more than the {n} cores available; using {n}",
            err=True,
        )
        return n
    return value


threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    callback=_at_most_cores,
    help="Parser and inference threads (default: OMP_NUM_THREADS, else the cores "
    "available; at most the cores).",
)


def jobs_option(default: Optional[int], help: str) -> Callable[[F], F]:
    """``--jobs/-j``: worker processes, at most the cores (a larger count is cut, with a
    note)."""
    return click.option(
        "--jobs",
        "-j",
        default=default,
        show_default=default is not None,
        type=click.IntRange(min=1),
        callback=_at_most_cores,
        help=help + " At most the cores.",
    )


#: genes per call or per chunk: bounded, so no product of them overflows
size_option_type = click.IntRange(min=1, max=1 << 24)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress output on stderr.")
genes_bed_option = click.option(
    "--genes-bed",
    type=click.Path(dir_okay=False),
    default=None,
    help="Gene positions for the tracks (BED6 or GTF). Default: the <input>.tss.bed "
    "that chromaformer-prepare writes beside its CSV.",
)
