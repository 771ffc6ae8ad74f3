"""What every command shares: one-line errors and the quiet/threads options."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import click

from ..errors import DataError, FormatError

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(func: F) -> F:
    """Turn bad-input exceptions into ``Error: <one line>`` and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (FormatError, DataError) as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            raise click.ClickException(f"{where}{err.strerror or err}") from None

    return wrapper  # type: ignore[return-value]


threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Parser threads (default: the cores available).",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress output on stderr.")
