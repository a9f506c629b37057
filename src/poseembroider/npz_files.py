"""Reading small `.npz` files given by users (pose files, mean poses) whole, with errors that name the file.

`np.load` of a damaged archive fails late and in many ways: a truncated zip raises `zipfile.BadZipFile`
when a member is opened, a corrupt deflate stream `zlib.error`, a short member `EOFError` or a `ValueError`
about a buffer size, an object array a `ValueError` about pickles; none names the file. `read_npz` opens the
archive and reads every member at once, inside one guard, so a caller either gets every array or one
`NpzReadError` naming the file and the member at fault. Nothing is unpickled (`allow_pickle=False`).

For small files only: every member is read into memory (the SMPL-X model files, 100s of MB, are checked
member by member in `body/model_file.py` instead). This module imports nothing from the package (floor 1).
"""

from __future__ import annotations

import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["NUMPY_READ_ERRORS", "NpzReadError", "read_npz"]

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPY_MAGIC = b"\x93NUMPY"
NUMPY_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError, TypeError, OverflowError,
                NotImplementedError, MemoryError, SyntaxError, tokenize.TokenError)  # fmt: skip
"""What numpy and zipfile raise on a damaged archive or member (a corrupt .npy header is tokenized and parsed with
`ast.literal_eval`: TokenError, SyntaxError; an absurd shape in it: MemoryError, ValueError)."""


class NpzReadError(ValueError):
    """An `.npz` file that is missing members' data, damaged, not an archive, or holds pickled objects."""


def read_npz(path: str | os.PathLike, what: str = ".npz file") -> dict[str, np.ndarray]:
    """Every array of the `.npz` archive `path`, by member name (no `.npy` suffix).

    `what` says what the file should be, for the messages (e.g. 'pose file'). Raises `FileNotFoundError`
    for a missing file and `NpzReadError` naming the file (and the member) for anything unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {what}")
    if not path.is_file():
        raise NpzReadError(f"{path} is not a {what}: a folder or special file, not an .npz archive")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(NPY_MAGIC))
    except OSError as err:
        raise NpzReadError(f"{path} is not a readable {what}: {err.strerror or err}") from None
    if not head:
        raise NpzReadError(f"{path} is not a {what}: an empty file, not an .npz archive made by numpy.savez")
    if not head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        kind = "a plain .npy array (numpy.save)" if head.startswith(NPY_MAGIC) else f"it starts with {head[:4]!r}"
        raise NpzReadError(f"{path} is not a {what}: not an .npz archive (a zip of .npy arrays, numpy.savez); {kind}")
    arrays: dict[str, np.ndarray] = {}
    member = None
    try:
        with np.load(path, allow_pickle=False) as data:
            for member in data.files:
                arrays[member] = np.asarray(data[member])
    except NUMPY_READ_ERRORS as err:
        where = f"member {member!r}" if member is not None else "the archive"
        reason = (
            "holds pickled objects (object arrays), which are never loaded"
            if "pickle" in str(err)
            else (f"damaged or truncated ({type(err).__name__}: {str(err)[:200]})")
        )
        raise NpzReadError(f"{path} is not a readable {what}: {where} {reason}") from None
    return arrays
