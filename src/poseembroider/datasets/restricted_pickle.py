"""Reading the pickles of released datasets without running their code: a restricted unpickler.

Loading a pickle may call any importable function, so a downloaded pickle is a program. Two real-data
releases are pickles nevertheless:

- the PoseFix / PoseScript poses converted to SMPL-X (`{pose_id:06d}.pkl`): a dict of CPU torch tensors
  (`global_orient` (1, 3), `body_pose` (21, 3), hands, jaw, eyes, `betas`, saved with `requires_grad`)
  written by `pickle.dump`;
- the 3DPW sequence files (`sequenceFiles/<split>/<sequence>.pkl`): Python-2 era pickles of dicts of numpy
  arrays, lists and strings, read with `encoding="latin1"`.

`load_restricted_pickle` reads both with an unpickler whose `find_class` resolves a global only through the
table below (nothing is imported by name), so such a file can rebuild tensors, arrays and plain containers
and nothing else:

| global in the pickle | what needs it | resolved to |
| --- | --- | --- |
| `numpy.core.multiarray._reconstruct` (`numpy._core` in numpy 2) | numpy arrays | numpy's reconstructor |
| `numpy.ndarray`, `numpy.dtype` | numpy arrays | the classes |
| `numpy.core.numeric._frombuffer` (`numpy._core` in numpy 2) | arrays at protocol 5 | numpy's buffer reader |
| `numpy.core.multiarray.scalar` (`numpy._core` in numpy 2) | numpy scalars | numpy's scalar reconstructor |
| `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` | tensors, parameters | torch's rebuilders |
| `torch.storage._load_from_bytes` | a tensor's storage (a nested `torch.save` blob) | `_storage_from_bytes` |
| `collections.OrderedDict` | a tensor's (empty) backward hooks, ordered dicts | the class |
| `builtins.set`, `frozenset`, `complex`, `slice` (`__builtin__` in Python 2) | containers, numbers | the builtins |
| `_codecs.encode` | bytes in protocol-2 pickles written by Python 3 | latin-1 encoding only |

Any other global raises `UnsafePickleError` naming it and the file; persistent ids (used by `torch.save`'s
legacy format) are refused too. A truncated or corrupt file raises `PickleReadError` naming the file. A
`torch.save` zip archive met under a `.pkl` name is read with `torch.load(weights_only=True)`.

Torch's own `_load_from_bytes` calls `torch.load(weights_only=False)` on the nested blob, which is why it is
replaced: the blob of a tensor's storage holds a storage and nothing else, and `weights_only=True` reads that.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import io
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poseembroider.datasets.cache_format import unsafe_load_reason

__all__ = ["PickleReadError", "UnsafePickleError", "allowed_globals", "load_restricted_pickle", "loads_restricted"]

ZIP_MAGIC = b"PK\x03\x04"


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that references a global (a callable or class) outside the allow-list."""


class PickleReadError(ValueError):
    """A pickle that cannot be read: truncated, corrupt, or not a pickle."""


def _storage_from_bytes(blob: bytes) -> Any:
    """The storage of a pickled tensor, from its nested `torch.save` blob, without running code (CPU)."""
    if not isinstance(blob, bytes | bytearray):
        raise UnsafePickleError(f"torch.storage._load_from_bytes expects bytes, got {type(blob).__name__}")
    with warnings.catch_warnings():  # torch warns about the protocol of the outer pickle; irrelevant here
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode(text, 'latin1')`, the way Python 3 writes `bytes` at pickle protocol 2; other codecs refused."""
    if not isinstance(text, str) or str(encoding).lower().replace("-", "").replace("_", "") not in (
        "latin1",
        "iso88591",
    ):
        raise UnsafePickleError(f"_codecs.encode is allowed only as latin-1 bytes, got encoding {encoding!r}")
    return text.encode("latin1")


def _numpy_reconstructors() -> dict[tuple[str, str], Any]:
    reconstruct = np.ndarray((0,)).__reduce__()[0]  # numpy 1.x: numpy.core..., numpy 2.x: numpy._core...
    scalar = np.float32(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol 5 writes arrays as (buffer, dtype, shape, order)
    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        out[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        out[(f"{package}.multiarray", "scalar")] = scalar
        out[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return out


def allowed_globals(torch_tensors: bool = True) -> dict[tuple[str, str], Any]:
    """The allow-list: (module, name) as written in a Python 3 pickle -> the object it resolves to."""
    table: dict[tuple[str, str], Any] = {
        **_numpy_reconstructors(),
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
        **{("builtins", name): getattr(builtins, name) for name in ("set", "frozenset", "complex", "slice")},
    }
    if torch_tensors:
        table[("torch._utils", "_rebuild_tensor_v2")] = torch._utils._rebuild_tensor_v2
        table[("torch._utils", "_rebuild_parameter")] = torch._utils._rebuild_parameter
        table[("torch.storage", "_load_from_bytes")] = _storage_from_bytes
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` resolving globals only through `allowed_globals` (module docstring)."""

    def __init__(self, file: Any, where: str, *, encoding: str = "ASCII", torch_tensors: bool = True):
        super().__init__(file, encoding=encoding, fix_imports=True)
        self.where = where
        self._allowed = allowed_globals(torch_tensors)

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        # Python 2 names (`__builtin__.set`, `copy_reg...`) as pickle's own fix_imports maps them
        if key in _compat_pickle.NAME_MAPPING:
            key = _compat_pickle.NAME_MAPPING[key]
        elif module in _compat_pickle.IMPORT_MAPPING:
            key = (_compat_pickle.IMPORT_MAPPING[module], name)
        try:
            return self._allowed[key]
        except KeyError:
            raise UnsafePickleError(
                f"{self.where}: refused to load: the pickle references the global '{module}.{name}', which is not "
                "among those that rebuild tensors, numpy arrays and plain containers (a pickle can run any code "
                "it names; this file is not read)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"{self.where}: refused to load: the pickle uses persistent ids ({str(pid)[:60]!r}), which plain "
            "pickles of tensors and arrays do not"
        )


def loads_restricted(data: bytes, where: str, *, encoding: str = "ASCII", torch_tensors: bool = True) -> Any:
    """Unpickle `data` with `RestrictedUnpickler`; errors name `where` (a file name)."""
    if data[:4] == ZIP_MAGIC:  # a torch.save archive: the safe loader of torch reads it
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError) as err:
            raise PickleReadError(
                f"{where}: a torch.save archive that cannot be read safely ({unsafe_load_reason(err)})"
            ) from None
    stream = io.BytesIO(data)
    try:
        value = RestrictedUnpickler(stream, where, encoding=encoding, torch_tensors=torch_tensors).load()
    except UnsafePickleError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            UnicodeDecodeError, RuntimeError, OverflowError, MemoryError) as err:  # fmt: skip
        kind = "truncated" if isinstance(err, EOFError) or "truncated" in str(err) else "corrupt or not a pickle"
        raise PickleReadError(f"{where}: {kind} ({type(err).__name__}: {err})") from None
    if stream.tell() != len(data):  # a legacy torch.save file is several pickles: its first is a magic number
        raise PickleReadError(
            f"{where}: {len(data) - stream.tell()} bytes follow the first pickle (a legacy torch.save file, or "
            "several pickles in one file); expected one pickle"
        )
    return value


def load_restricted_pickle(
    path: str | Path, *, encoding: str = "ASCII", torch_tensors: bool = True, what: str = "pickle"
) -> Any:
    """Read the pickle file `path` with the restricted unpickler.

    Args:
        encoding: how Python 2 `str` objects are decoded; 'latin1' for Python-2 numpy pickles (3DPW).
        torch_tensors: allow the torch tensor rebuilders (False: numpy arrays and containers only).
        what: what the file is, for the not-found message (e.g. 'SMPL-X pose file').

    Raises FileNotFoundError (naming the file), UnsafePickleError (naming the refused global) or
    PickleReadError (truncated / corrupt, naming the file).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise PickleReadError(f"{path}: a folder, expected a {what}") from None
    if not data:
        raise PickleReadError(f"{path}: empty file (truncated {what})")
    return loads_restricted(data, str(path), encoding=encoding, torch_tensors=torch_tensors)
