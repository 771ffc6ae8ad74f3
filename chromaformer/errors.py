"""Exceptions raised on bad input. Both are ``ValueError`` subclasses."""

from __future__ import annotations

from typing import Optional


class FormatError(ValueError):
    """A file that does not follow the bin-CSV format.

    ``str(err)`` is one line, ``path:line[:column]: what was expected``. ``line`` is
    1-based as an editor shows it (``None`` for file-level problems such as an empty
    or unreadable file); ``column`` is the 1-based character column where it helps.
    """

    def __init__(
        self,
        message: str,
        path: str = "",
        line: Optional[int] = None,
        column: Optional[int] = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason or message


class DataError(ValueError):
    """A data set that cannot be used as asked (unknown cell type, missing split...)."""
