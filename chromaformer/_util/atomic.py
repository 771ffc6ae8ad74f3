"""Where outputs go, and how they appear: write to a temporary, then rename into place, so
a failed run never leaves partial output, and never destroy what is not ours to replace.

- A regular file (or a new name) is replaced atomically; a symbolic link is written
  through (the file it points to is replaced, the link stays); an existing file keeps
  its permission bits, a new one gets ``0o666`` less the umask.
- A character device (``/dev/null``, a terminal) or a FIFO, and the ``/dev/stdout`` or
  ``/proc/self/fd/N`` aliases of an open descriptor, are written straight into once the
  output is complete: never unlinked, never replaced.
- A directory, a block device or a socket is refused.
- Temporaries are named ``.NAME.cf-HOST-PID-RANDOM.tmp`` beside their target; one left
  by a process that no longer runs (``kill -9``) is removed by the next write beside it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import socket
import stat
import tempfile
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from ..errors import DataError
from .system import PathLike

#: Errors that only writing raises; Python's file objects give them no file name.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS})


#: the temporaries that exist (or are being made) now: each is listed before its file is
#: created, so :func:`remove_temporaries` finds it whenever a signal interrupts
_LIVE: set[Path] = set()

#: this host, in the temporaries' names (a PID means nothing on another machine)
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_MARK = ".cf-"


def _owner() -> str:
    return f"{_HOST}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(folder: Path, prefix: str) -> None:
    """Remove the temporaries named ``PREFIX`` + ``cf-HOST-PID-...`` in ``folder`` that a
    process of this host left when it was killed (its PID no longer runs)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix + "cf-")]
    except OSError:
        return
    for name in names:
        host, _, tail = name[len(prefix) + 3 :].partition("-")
        pid, _, _ = tail.partition("-")
        if host != _HOST or not pid.isdigit() or _alive(int(pid)):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _new(name: Callable[[str], Path], make: Callable[[Path], None], shown: Path) -> Path:
    """``make`` a new file or folder at ``name(<random>)``, listed in ``_LIVE`` before it
    exists; a name already taken draws again, an interruption removes what was made. An
    error names ``shown`` (what the user asked for), not the temporary."""
    while True:
        path = name(secrets.token_hex(6))
        _LIVE.add(path)
        try:
            make(path)
            return path
        except FileExistsError:  # another's name: draw again
            _LIVE.discard(path)
        except BaseException as err:  # interrupted: the file or folder may exist already
            with contextlib.suppress(FileNotFoundError):
                path.rmdir() if path.is_dir() else path.unlink()
            _LIVE.discard(path)
            if isinstance(err, OSError) and err.filename == str(path):
                err.filename = str(shown)
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
    """A new private folder in ``parent`` (``PREFIX cf-HOST-PID-RANDOM``), removed with
    what it holds on the way out, listed in ``_LIVE`` from before it exists; stale ones of
    killed processes in ``parent`` are removed first."""
    base = Path(parent)
    remove_stale(base, prefix)
    folder = _new(lambda r: base / f"{prefix}cf-{_owner()}-{r}", lambda p: os.mkdir(p, 0o700), base)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE.discard(folder)


#: inside :func:`staged`: the writes made so far, each (temporary, publish), in order
_STAGE: ContextVar[Optional[list[tuple[Path, Callable[[], None]]]]] = ContextVar(
    "chromaformer_stage", default=None
)


@contextlib.contextmanager
def staged() -> Iterator[None]:
    """Every :func:`atomic_path` inside publishes at the end of this block, all together,
    or none does: a command of several outputs (a TSV, its track, its figures) leaves
    nothing when any of them fails. Nested, the outermost block publishes."""
    if _STAGE.get() is not None:
        yield
        return
    pending: list[tuple[Path, Callable[[], None]]] = []
    token = _STAGE.set(pending)
    try:
        try:
            yield
        finally:
            _STAGE.reset(token)
        while pending:
            tmp, publish = pending[0]
            publish()
            _LIVE.discard(tmp)
            pending.pop(0)
    finally:
        for tmp, _ in pending:  # failed, or a publish failed: the rest never appear
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            _LIVE.discard(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: what each refused kind of node is called in the error
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def output_kind(path: PathLike) -> str:
    """How an output at ``path`` is written: ``"file"`` (a new name or a regular file:
    temporary + rename) or ``"stream"`` (a character device, a FIFO, or an alias of an
    open descriptor: written straight into). Raises :class:`DataError` for a directory,
    a block device or a socket, or anything else that is not a regular file."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return "file"
    except NotADirectoryError:
        raise DataError(f"{p}: a folder on this path is a file") from None
    mode = st.st_mode
    if stat.S_ISREG(mode):
        # /dev/stdout -> /proc/self/fd/1 -> a file the shell holds open (> or >>): write
        # into the descriptor, never replace the file under it
        return "stream" if _through_descriptor(p) else "file"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    what = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    raise DataError(
        f"{p}: {what}; an output must be a regular file (or a character device such as "
        "/dev/null, or a FIFO), and it is never replaced"
    )


def _through_descriptor(path: str) -> bool:
    """Whether ``path``, or a symbolic link on its way, is under /dev or /proc (an open
    descriptor's alias: /dev/stdout, /dev/fd/N, /proc/self/fd/N)."""
    p = os.path.abspath(path)
    for _ in range(40):
        if p.startswith(("/dev/", "/proc/")):
            return True
        if not os.path.islink(p):
            return False
        p = os.path.abspath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return False


def own_descriptor(path: PathLike) -> Optional[int]:
    """The descriptor of this process that ``path`` names (``/dev/stdout`` 1,
    ``/dev/stderr`` 2, ``/dev/fd/N``, ``/proc/self/fd/N``, ``/proc/<pid>/fd/N``), or None."""
    p = os.path.abspath(os.fspath(path))
    named = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
    if p in named:
        return named[p]
    for prefix in ("/dev/fd/", "/proc/self/fd/", f"/proc/{os.getpid()}/fd/"):
        if p.startswith(prefix) and p[len(prefix) :].isdigit():
            return int(p[len(prefix) :])
    return None


def _write_into(tmp: Path, target: Path) -> None:
    """Copy a finished temporary into a device, a FIFO or an open descriptor by plain
    reads and writes: the descriptor itself where ``target`` names one of this process
    (so its offset and O_APPEND hold, and what the process prints after lands after),
    else a new one opened for appending (no truncation of a file a shell opened with >>)."""
    import sys

    fd = own_descriptor(target)
    if fd is not None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        out = os.fdopen(os.dup(fd), "wb")
    else:
        out = open(target, "ab")
    with open(tmp, "rb") as src, out:
        shutil.copyfileobj(src, out, 1 << 20)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path for ``path``'s contents; on success only, rename it into
    place (a regular file, through any symbolic link) or copy it into ``path`` (a device,
    a FIFO, a descriptor's alias). On failure nothing at ``path`` changes."""
    target = Path(path)
    kind = output_kind(target)
    if kind == "file":
        real = Path(os.path.realpath(target)) if target.is_symlink() else target
        folder = real.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise DataError(f"{target}: {folder} is a file, not a folder") from None
        except OSError as err:
            err.filename = err.filename or str(folder)
            raise
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        stem = real.name[:200]
        remove_stale(folder, f".{stem}.")
    else:
        real, folder, mode = target, Path(tempfile.gettempdir()), 0o600
        stem = target.name[:200] or "output"
    tmp_path = _new(
        lambda r: folder / f".{stem}.cf-{_owner()}-{r}.tmp",
        lambda p: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)),
        target,
    )

    def publish() -> None:
        try:
            if kind == "file":
                os.chmod(tmp_path, mode)
                os.replace(tmp_path, real)
            else:  # never unlink or replace a device or a FIFO: write into it
                _write_into(tmp_path, target)
                tmp_path.unlink()
        except OSError as err:
            if err.filename in (str(tmp_path), str(real)) or (
                err.filename is None and err.errno in WRITE_ERRNOS
            ):
                err.filename = str(target)
            raise

    stage = _STAGE.get()
    try:
        yield tmp_path
        if stage is not None:
            stage.append((tmp_path, publish))
            return
        publish()
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(err, OSError) and (
            err.filename in (str(tmp_path), str(real))
            or (err.filename is None and err.errno in WRITE_ERRNOS)
        ):
            err.filename = str(target)  # name the file the user asked for, not ours
        raise
    finally:  # a staged write stays listed until its block publishes or removes it
        if stage is None or not any(t == tmp_path for t, _ in stage):
            _LIVE.discard(tmp_path)


def _same(a: PathLike, b: PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(
    outputs: Iterable[Optional[PathLike]], inputs: Iterable[Optional[PathLike]] = ()
) -> None:
    """Before any work: every output is writable as :func:`atomic_path` writes (not a
    directory, block device or socket), none is one of the ``inputs`` (the same file by
    any name: a hard or symbolic link included), and no two outputs are the same file.
    A :class:`DataError` names the output."""
    outs = [os.fspath(o) for o in outputs if o is not None]
    ins = [os.fspath(i) for i in inputs if i is not None]
    seen: list[str] = []
    for out in outs:
        kind = output_kind(out)
        if kind == "file":
            for inp in ins:
                if _same(out, inp) or (
                    not os.path.exists(out)
                    and os.path.abspath(os.path.realpath(out)) == os.path.abspath(inp)
                ):
                    raise DataError(
                        f"{out}: is the input {inp}; refusing to overwrite an input "
                        "(give another output)"
                    )
            for other in seen:
                if os.path.abspath(os.path.realpath(out)) == os.path.abspath(
                    os.path.realpath(other)
                ) or _same(out, other):
                    raise DataError(f"{out}: named as two outputs ({other}); give distinct ones")
            seen.append(out)


#: the lock file a run folder holds while a command writes into it
LOCK_NAME = ".chromaformer.lock"


@contextlib.contextmanager
def folder_lock(folder: PathLike, what: str) -> Iterator[None]:
    """Hold ``folder``'s lock (an ``flock`` on ``folder/.chromaformer.lock``, made with
    the folder) while the block runs: a second writer is refused at once with one line
    naming the process that holds it. The kernel drops the lock when its process ends,
    ``kill -9`` included, so a crashed run never leaves the folder locked."""
    import fcntl

    base = Path(folder)
    made = not base.exists()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DataError(f"{base}: exists and is not a folder") from None
    path = base / LOCK_NAME
    created = not os.path.lexists(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise DataError(
                f"{base}: {holder} is writing into this folder now; wait for it to end, "
                "or give another output folder"
            ) from None
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} (pid {os.getpid()} on {socket.gethostname()})\n".encode(), 0)
        yield
    finally:
        if held and created:  # the lock file this run made goes with it
            with contextlib.suppress(OSError):
                path.unlink()
            if made:  # and the folder, if the run wrote nothing into it
                with contextlib.suppress(OSError):
                    base.rmdir()
        os.close(fd)  # releases the lock
