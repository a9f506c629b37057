"""Atomic outputs: a reader sees the old file (or folder) or the complete new one, never a half-written one.

Every writer of the toolkit goes through these helpers (DESIGN §5: outputs are written to a temporary name
and renamed when complete):

- `atomic_file(path)`: yields a temporary path beside `path`; the caller writes it with any library
  (`torch.save`, `safetensors`, PIL, `fig.savefig`), and on success one `os.replace` puts it in place;
- `write_text_atomic(path, text)` and `write_json_atomic(path, data)`: the common cases of `atomic_file`;
- `atomic_directory(path)`: a folder the caller owns entirely (trainer checkpoints), swapped in whole;
- `atomic_files_into(directory)`: files written together into a folder that holds other files too
  (a tokenizer saved beside a backbone's weights); each file lands by one rename;
- `ensure_writable_dir(path)`: an output folder proven writable before the work that fills it starts;
- `DiskFullError`, `disk_full_named(path)`: a write that fails because its filesystem is full becomes one
  error naming the output (the atomic helpers above do it for their blocks), whichever library wrote;
- `exclusive_lock(path)`: one writer of an output at a time, across processes (`OutputLockedError` names the
  holder's pid and the lock file);
- `clean_up_after_dead_writers(folder)`: what a killed writer left in a folder goes (see below).

Temporary names are hidden siblings (`.<name>.<host>-<pid>.<random>.tmp`, host: a hash of the machine's
name): on the same filesystem as the target, so the rename is atomic, and unique per process and call, so
concurrent writers never share one. On any error (an exception in the caller's block, or Ctrl-C) the
temporary file or folder is removed and the previous output stays untouched. A process killed outright
(SIGKILL, out of memory, power cut) removes nothing: the first atomic write of a later process into the same
folder clears the temporaries of writers of this machine that no longer run (once per folder and process),
so a job killed and run again leaves only its outputs, and a folder that a killed `atomic_directory` had
moved aside while its replacement was not yet in place is put back. Multi-rank resumable stores
(`features/store.py`) keep their own `.partial` protocol on top of these.

This module imports nothing from the package (import floor 1).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMPORARY_SUFFIX = ".tmp"


class FolderNotWritableError(OSError):
    """An output folder that cannot be created or written: found before the work that would fill it."""


# --------------------------------------------------------------------------- full disks

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""`errno`s of a write refused for want of space: no space left on the device, disk quota exceeded."""

_DISK_FULL_MARKERS = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122")
"""How the libraries that write files themselves say it when they keep no `errno` (safetensors' Rust writer)."""

_PROBE_BYTES = 4096  # one page / block: a full filesystem refuses it


class DiskFullError(OSError):
    """A write that failed because the filesystem of `filename` is full (ENOSPC) or the quota used up (EDQUOT).

    `strerror` is one line naming the output; `filename` is the output (file or folder). Raised by the atomic
    helpers of this module and `disk_full_named` blocks, whatever library wrote (Python files, numpy, PIL,
    `torch.save`, safetensors), with the library's own error as `__cause__`. The output is left as before the
    write (absent or the previous version), so running the command again once space is freed completes it.
    """


def _no_room(folder: Path) -> bool:
    """Whether `folder`'s filesystem refuses one more page: a probe file is written there and removed.

    For the libraries whose write errors say nothing of the cause: `torch.save` on a full disk raises
    `RuntimeError('... unexpected pos ...')`, `np.save` `OSError('N requested and M written')` without errno.
    The probe uses the built-in `open`, as the failed write did.
    """
    probe = temporary_sibling(folder / "space_check")
    try:
        with open(probe, "wb") as handle:
            handle.write(b"\0" * _PROBE_BYTES)
            handle.flush()
    except OSError as err:
        return err.errno in DISK_FULL_ERRNOS
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return False


def is_disk_full(err: BaseException, folder: str | os.PathLike | None = None) -> bool:
    """Whether `err` (raised by a write into `folder`) was caused by a full filesystem or an exhausted quota.

    True for an `OSError` with errno ENOSPC / EDQUOT, an error whose message carries the system's words for
    it, or, when `folder` is given, an `OSError` / `RuntimeError` / library error raised while `folder`'s
    filesystem has no page left (`_no_room`: the writers that lose the errno)."""
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
        return True
    if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit
        return False
    if any(marker in str(err) for marker in _DISK_FULL_MARKERS):
        return True
    writer_error = isinstance(err, (OSError, RuntimeError)) or "Error" in type(err).__name__
    return folder is not None and writer_error and Path(folder).is_dir() and _no_room(Path(folder))


def disk_full_message(path: str | os.PathLike, detail: str = "") -> str:
    """The one line of a `DiskFullError`: the output that could not be written, and what to do."""
    detail = f" ({detail})" if detail else ""
    return (
        f"no space left on the device to write {path}{detail}: nothing there looks complete; free some space "
        "and run the command again"
    )


def _in_temporary(path: str | os.PathLike) -> bool:
    """Whether `path` is, or lies in, a temporary of this module (`.<name>...tmp`)."""
    return any(part.startswith(".") and part.endswith(TEMPORARY_SUFFIX) for part in Path(path).parts)


@contextmanager
def disk_full_named(path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Iterator[None]:
    """Inside the block, an error caused by a full filesystem (`is_disk_full`, probing `folder`, default the
    parent of `path`) becomes a `DiskFullError` naming `path` (also one raised by a nested block about a
    temporary name: the user is told about the output, not its temporary); other errors pass unchanged."""
    try:
        yield
    except DiskFullError as err:
        inner = err.filename
        if not inner or not _in_temporary(inner) or Path(inner) == Path(path):
            raise
        # a writer nested in this one (a model's save_pretrained in a checkpoint folder) named its temporary
        raise DiskFullError(errno.ENOSPC, disk_full_message(path, f"writing {Path(inner).name}"), str(path)) from err
    except Exception as err:
        if not is_disk_full(err, Path(path).parent if folder is None else folder):
            raise
        inner = getattr(err, "filename", None)
        detail = f"writing {Path(inner).name}" if inner and Path(inner).name != Path(path).name else ""
        raise DiskFullError(errno.ENOSPC, disk_full_message(path, detail), str(path)) from err


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create `path` (and parents) and prove it writable by creating and removing a temporary file there;
    returns it. Called before expensive work (rendering, training) so that an unwritable output folder is
    reported first, not after hours. Raises `FolderNotWritableError` naming `what` and the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=f".write_check.{_owner()}.", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as err:
        raise FolderNotWritableError(err.errno, f"{what} {path} is not writable: {err.strerror or err}") from None
    return path


OLD_SUFFIX = ".old"
"""Suffix of the previous version of a folder that `atomic_directory` moves aside while it swaps the new one in."""

_TEMPORARY_NAME = re.compile(
    r"\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[0-9A-Za-z_]+(?P<suffix>\.tmp|\.old)"
)
_CLEANED: set[str] = set()  # folders this process has cleared of dead writers' temporaries


@functools.cache
def _host_tag() -> str:
    """8 hex digits naming this machine in temporary names (a pid means something only on its machine)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _owner() -> str:
    """`<host>-<pid>`: who writes a temporary, in its name."""
    return f"{_host_tag()}-{os.getpid()}"


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A fresh hidden name beside `path` (`.<name>.<host>-<pid>.<8 hex>.tmp`), unique per process and call."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_owner()}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")


def _running(pid: int) -> bool:
    """Whether process `pid` of this machine exists (a pid taken again by another process counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean_up_after_dead_writers(folder: str | os.PathLike) -> list[Path]:
    """Clear `folder` of the temporaries (files and folders named by `temporary_sibling`, `atomic_directory`,
    `atomic_files_into`) of writers of this machine whose process no longer runs; returns what was removed.

    A folder that an `atomic_directory` killed between its two renames had moved aside (`.<name>....old`)
    while `<name>` is absent is renamed back to `<name>` (its previous, complete version) instead. Temporaries of
    running processes and of other machines (a shared filesystem) are left alone. Called by the atomic helpers
    before their first write into a folder (once per folder and process), and by jobs that read their folder
    before writing it (the Trainer, before it looks for a checkpoint to resume)."""
    folder = Path(folder)
    _CLEANED.add(str(folder.absolute()))
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = _TEMPORARY_NAME.fullmatch(entry.name)
        if match is None or match["host"] != _host_tag() or _running(int(match["pid"])):
            continue
        target = folder / match["name"]
        try:
            if match["suffix"] == OLD_SUFFIX and not os.path.lexists(target):
                os.rename(entry.path, target)
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:  # another process cleaned it first
            continue
        removed.append(Path(entry.path))
    return removed


def _clean_up_once(folder: Path) -> None:
    """`clean_up_after_dead_writers(folder)` unless this process did it already."""
    if str(folder.absolute()) not in _CLEANED:
        clean_up_after_dead_writers(folder)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (parent folders created); on success it replaces `path` in one rename.

    The temporary name ends in `.tmp`, not in the suffix of `path`: libraries that choose a format from the
    suffix (PIL, matplotlib) need an explicit `format=`, and `np.savez` an open file (it appends `.npz` to names).
    """
    path = Path(path)
    with disk_full_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_up_once(path.parent)
    tmp = temporary_sibling(path)
    try:
        with disk_full_named(path):  # checked while the temporary file still holds its pages
            yield tmp
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically; returns `path`."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns `path`. Python's buffered writer retries a short write and
    raises on the next one, so a full disk cannot leave a shorter file behind a success."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_json_atomic(
    path: str | os.PathLike,
    data: Any,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> Path:
    """Write `data` as JSON (`indent` spaces, a final newline) to `path` atomically; returns `path`.

    The JSON text is made before the temporary file is opened, so data that cannot be serialised raises
    `TypeError` without touching the folder.
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, default=default) + "\n"
    return write_text_atomic(path, text)


def _temporary_directory(path: Path) -> Path:
    with disk_full_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_up_once(path.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_owner()}.", suffix=TEMPORARY_SUFFIX, dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private (0o700); the published folder should read like any other
    return tmp


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it takes the place of `path`.

    For folders the caller owns entirely (trainer checkpoints): the previous `path` is moved aside,
    the new one renamed in, then the old one deleted, so a reader never sees a half-written folder.
    """
    path = Path(path)
    tmp = _temporary_directory(path)
    try:
        with disk_full_named(path, path.parent):
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{_owner()}.{uuid.uuid4().hex[:8]}{OLD_SUFFIX}")
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_files_into(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `directory`; on success each of its entries is renamed into it.

    For files written together into a folder that holds other files (a tokenizer saved beside a backbone's
    weights): `directory` is created if missing, its other files are kept, and same-named ones are replaced
    one rename each. Nothing reaches `directory` when the block fails.
    """
    directory = Path(directory)
    tmp = _temporary_directory(directory)
    try:
        with disk_full_named(directory, directory.parent):
            yield tmp
            directory.mkdir(parents=True, exist_ok=True)
        for entry in sorted(tmp.iterdir()):
            os.replace(entry, directory / entry.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- one writer at a time

LOCK_SUFFIX = ".lock"


class OutputLockedError(RuntimeError):
    """An output another live process is writing: `exclusive_lock` without waiting. The message names the
    output, the lock file and the holder's pid."""

    def __init__(self, message: str, lock_file: Path, holder_pid: int | None) -> None:
        super().__init__(message)
        self.lock_file = lock_file
        self.holder_pid = holder_pid


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of an output: the hidden sibling `.<name>.lock` (beside it, so on its filesystem)."""
    path = Path(path)
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


def _holder_pid(lock_file: Path) -> int | None:
    """The pid its holder wrote in `lock_file` (None while it is being written, once removed, or unreadable)."""
    try:
        text = lock_file.read_text()[:64].split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


_HELD: dict[str, list] = {}  # lock file -> [open handle, depth]: this process's locks (re-entrant)
_HELD_GUARD = threading.Lock()


@contextmanager
def exclusive_lock(
    path: str | os.PathLike, what: str = "output", wait: bool | float = False, poll_s: float = 0.2
) -> Iterator[Path]:
    """Hold the exclusive lock of the output `path` (a file or folder, existing or not) for the block.

    The lock is an advisory `fcntl.flock` on `lock_path(path)` (`.<name>.lock` beside the output), whose holder
    writes its pid there and removes it when done, still holding the lock; a process that locked a file since
    removed sees it (the inode changed) and tries again, so two holders never coexist. Only writers that take
    this lock are kept out: every writer of the toolkit's shared outputs (feature stores, model folders, dataset
    caches and work folders, embedding files, the model registry) takes it at its entry.

    - `wait=False`: another process holding it raises `OutputLockedError` at once, naming `what`, `path`, the
      lock file and the holder's pid; `wait=True` waits for it (saying once on stderr whom it waits for);
      a number waits at most that many seconds, then raises.
    - A holder that dies (killed, crashed, machine restarted) releases the lock: the kernel drops a flock with
      the last open descriptor of its process, so the lock file it leaves never blocks anyone (the next holder
      takes it over and removes it).
    - Re-entrant within a process (a nested block on the same output passes). The descriptor is not inherited
      by programs this process executes; forked children (DataLoader workers) share it until they exit.
    - Local filesystems and NFS (Linux maps flock onto NFS byte-range locks); not on filesystems without locks.
    """
    path = Path(path)
    lock_file = lock_path(path)
    key = str(lock_file.absolute())
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield lock_file
        finally:
            with _HELD_GUARD:
                held[1] -= 1
        return
    with disk_full_named(lock_file):
        lock_file.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(what, path, lock_file, wait, poll_s)
    try:
        with _HELD_GUARD:
            _HELD[key] = [handle, 1]
        try:
            yield lock_file
        finally:
            with _HELD_GUARD:
                _HELD.pop(key, None)
            lock_file.unlink(missing_ok=True)  # while still holding it: a waiter on this inode will retry
    finally:
        handle.close()  # releases the flock


def _acquire(what: str, path: Path, lock_file: Path, wait: bool | float, poll_s: float):
    """The open lock file, flocked by this process, with this pid written in it (see `exclusive_lock`)."""
    deadline = None if wait is True or wait is False else time.monotonic() + float(wait)
    told = False
    while True:
        with disk_full_named(lock_file):
            handle = open(lock_file, "a+")  # noqa: SIM115 - returned open: the flock lives as long as it
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
        else:
            try:
                current = os.stat(lock_file).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(handle.fileno()).st_ino:  # not removed by a holder that just finished
                with disk_full_named(lock_file):
                    handle.truncate(0)
                    handle.write(f"{os.getpid()}\n")
                    handle.flush()
                return handle
            handle.close()
            continue
        pid = _holder_pid(lock_file)
        holder = f"process {pid}" if pid is not None else "another process"
        if wait is False or (deadline is not None and time.monotonic() >= deadline):
            waited = "" if wait is False else f" (waited {float(wait):g} s)"
            raise OutputLockedError(
                f"{what} {path} is being written by {holder} (lock file {lock_file}){waited}: wait for it to finish "
                "and run this again, or stop that process; a lock is released when its process ends",
                lock_file,
                pid,
            )
        if not told:
            print(f"waiting for {holder}, which is writing {what} {path} (lock file {lock_file})", file=sys.stderr)
            told = True
        time.sleep(poll_s)


__all__ = [
    "DISK_FULL_ERRNOS",
    "LOCK_SUFFIX",
    "OLD_SUFFIX",
    "TEMPORARY_SUFFIX",
    "DiskFullError",
    "FolderNotWritableError",
    "OutputLockedError",
    "atomic_directory",
    "atomic_file",
    "atomic_files_into",
    "clean_up_after_dead_writers",
    "disk_full_message",
    "disk_full_named",
    "ensure_writable_dir",
    "exclusive_lock",
    "is_disk_full",
    "lock_path",
    "temporary_sibling",
    "write_json_atomic",
    "write_text_atomic",
]
