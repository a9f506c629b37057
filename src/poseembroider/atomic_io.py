"""Atomic outputs: a reader sees the old file (or folder) or the complete new one, never a half-written one.

Every writer of the toolkit goes through these helpers (DESIGN §5: outputs are written to a temporary name
and renamed when complete):

- `atomic_file(path)`: yields a temporary path beside `path`; the caller writes it with any library
  (`torch.save`, `safetensors`, PIL, `fig.savefig`), and on success one `os.replace` puts it in place;
- `write_text_atomic(path, text)` and `write_json_atomic(path, data)`: the common cases of `atomic_file`;
- `atomic_directory(path)`: a folder the caller owns entirely (trainer checkpoints), swapped in whole;
- `atomic_files_into(directory)`: files written together into a folder that holds other files too
  (a tokenizer saved beside a backbone's weights); each file lands by one rename;
- `ensure_writable_dir(path)`: an output folder proven writable before the work that fills it starts.

Temporary names are hidden siblings (`.<name>.<pid>.<random>.tmp`): on the same filesystem as the target,
so the rename is atomic, and unique per process and call, so concurrent writers never share one. On any
error (an exception in the caller's block, or Ctrl-C) the temporary file or folder is removed and the
previous output stays untouched. Multi-rank resumable stores (`features/store.py`) keep their own
`.partial` protocol on top of these.

This module imports nothing from the package (import floor 1).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMPORARY_SUFFIX = ".tmp"


class FolderNotWritableError(OSError):
    """An output folder that cannot be created or written: found before the work that would fill it."""


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create `path` (and parents) and prove it writable by creating and removing a temporary file there;
    returns it. Called before expensive work (rendering, training) so that an unwritable output folder is
    reported first, not after hours. Raises `FolderNotWritableError` naming `what` and the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_check.", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as err:
        raise FolderNotWritableError(err.errno, f"{what} {path} is not writable: {err.strerror or err}") from None
    return path


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A fresh hidden name beside `path` (`.<name>.<pid>.<8 hex>.tmp`), unique per process and call."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (parent folders created); on success it replaces `path` in one rename.

    The temporary name ends in `.tmp`, not in the suffix of `path`: libraries that choose a format from the
    suffix (PIL, matplotlib) need an explicit `format=`, and `np.savez` an open file (it appends `.npz` to names).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent))
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
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
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
        yield tmp
        directory.mkdir(parents=True, exist_ok=True)
        for entry in sorted(tmp.iterdir()):
            os.replace(entry, directory / entry.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = [
    "TEMPORARY_SUFFIX",
    "atomic_directory",
    "atomic_file",
    "atomic_files_into",
    "temporary_sibling",
    "write_json_atomic",
    "write_text_atomic",
]
