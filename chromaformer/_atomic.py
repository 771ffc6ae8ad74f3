"""Write-to-temporary-then-rename, so a failed run never leaves partial output."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator

from ._base import PathLike

#: Errors that only writing raises; Python's file objects give them no file name.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS})


#: the temporaries that exist (or are being made) now: each is listed before its file is
#: created, so :func:`remove_temporaries` finds it whenever a signal interrupts
_LIVE: set[Path] = set()


def _new(name: Callable[[str], Path], make: Callable[[Path], None]) -> Path:
    """``make`` a new file or folder at ``name(<random>)``, listed in ``_LIVE`` before it
    exists; a name already taken draws again, an interruption removes what was made."""
    while True:
        path = name(secrets.token_hex(8))
        _LIVE.add(path)
        try:
            make(path)
            return path
        except FileExistsError:  # another's name: draw again
            _LIVE.discard(path)
        except BaseException:  # interrupted: the file or folder may exist already
            with contextlib.suppress(FileNotFoundError):
                path.rmdir() if path.is_dir() else path.unlink()
            _LIVE.discard(path)
            raise


def remove_temporaries() -> None:
    """Remove every temporary that :func:`atomic_path` and :func:`temporary_folder` have
    made and not yet renamed or removed: what a signal (SIGTERM) can leave when it
    interrupts them between their steps. The commands call it as they stop."""
    for tmp in list(_LIVE):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        _LIVE.discard(tmp)


@contextlib.contextmanager
def temporary_folder(parent: PathLike, prefix: str) -> Iterator[Path]:
    """A new private folder in ``parent`` (``PREFIX<random>``), removed with what it
    holds on the way out, listed in ``_LIVE`` from before it exists."""
    folder = _new(lambda r: Path(parent) / f"{prefix}{r}", lambda p: os.mkdir(p, 0o700))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE.discard(folder)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success only."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new(
        lambda r: target.parent / f".{target.name}.{r}.tmp",
        lambda p: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)),
    )
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(err, OSError) and (
            err.filename == str(tmp_path) or (err.filename is None and err.errno in WRITE_ERRNOS)
        ):
            err.filename = str(target)  # name the file the user asked for, not ours
        raise
    finally:
        _LIVE.discard(tmp_path)
