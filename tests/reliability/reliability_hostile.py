"""Hostile files for the reliability tests (`test_hostile_*.py`): pickles that would run code, safetensors files
whose header lies, `.npy` headers that promise terabytes.

Every pickle here carries a payload that creates a marker file when it is unpickled (`os.system("touch ...")`,
`open(marker, "w")`, `exec`, `subprocess.call`), wrapped in each way a file reader meets a pickle: a plain
pickle at protocols 0 to 5, a Python 2 era protocol-0 pickle naming `posix.system` / `__builtin__.eval`, a
`torch.save` zip archive, a legacy (pre-1.6) `torch.save` file, a tensor storage whose nested blob is the
payload (what torch's own `_load_from_bytes` would unpickle with `weights_only=False`), a numpy object array,
and `.npy` / `.npz` files with an object member. `live_payload_ran` proves each one really runs its code when
read the naive way, so a refusal in the tests is never vacuous.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


class TouchesMarker:
    """`os.system('touch <marker>')` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class OpensMarker:
    """`open(marker, 'w')` when unpickled (creates the file without a shell)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class ExecsMarker:
    """`exec(...)` of Python source creating the marker when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


class SpawnsMarker:
    """`subprocess.call(['touch', marker])` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (subprocess.call, (["touch", self.marker],))


class NestedStorageBlob:
    """A pickled tensor storage whose `torch.save` blob is itself the payload: torch's `_load_from_bytes`
    reads the blob with `torch.load(weights_only=False)`."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))


PAYLOADS: dict[str, type] = {
    "os.system": TouchesMarker,
    "open": OpensMarker,
    "exec": ExecsMarker,
    "subprocess.call": SpawnsMarker,
}


def _container(payload: object) -> dict:
    """A dict shaped like the files the readers expect (cache tables, checkpoint keys), the payload inside."""
    return {
        "format_version": 1,
        "criteria": payload,
        "images": {0: payload},
        "model": {"weight": payload},
        "args": payload,
        "network": {"w": payload},
        "poses": payload,
        "value": payload,
    }


def _torch_bytes(obj: object, legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _object_array(payload: object) -> np.ndarray:
    array = np.empty(1, dtype=object)
    array[0] = payload
    return array


def hostile_pickles(marker: Path) -> dict[str, bytes]:
    """name -> bytes of a file that creates `marker` when read by a reader that unpickles (module docstring)."""
    marker = Path(marker)
    files: dict[str, bytes] = {}
    for name, make in PAYLOADS.items():
        payload = make(marker)
        for protocol in (0, 2, 5):
            files[f"pickle protocol {protocol}, {name}"] = pickle.dumps(_container(payload), protocol=protocol)
        files[f"torch.save zip, {name}"] = _torch_bytes(_container(payload))
    files["torch.save legacy format, os.system"] = _torch_bytes(_container(TouchesMarker(marker)), legacy=True)
    touch = f"touch '{marker}'"
    files["python 2 protocol 0, posix.system"] = f"cposix\nsystem\n(S'{touch}'\ntR.".encode()
    source = f"__import__('os').system({touch!r})"
    files["python 2 protocol 0, __builtin__.eval"] = f'c__builtin__\neval\n(S"{source}"\ntR.'.encode()
    blob = _torch_bytes(TouchesMarker(marker), legacy=True)
    files["tensor storage with a payload blob"] = pickle.dumps({"poses": NestedStorageBlob(blob)}, protocol=2)
    files["numpy object array, os.system"] = pickle.dumps({"poses": _object_array(TouchesMarker(marker))})
    files[".npy object array, os.system"] = _npy_bytes(_object_array(TouchesMarker(marker)))
    objects = _object_array(OpensMarker(marker))
    files[".npz with an object member, open"] = _npz_bytes(poses=objects, pose_body=objects, v_template=objects)
    return files


def live_payload_ran(data: bytes, marker: Path) -> bool:
    """Read `data` the unsafe way (the way a careless reader would) and say whether `marker` appeared.
    Only for the tests' own hostile files, in a temporary folder."""
    marker = Path(marker)
    marker.unlink(missing_ok=True)

    def numpy_load() -> None:
        loaded = np.load(io.BytesIO(data), allow_pickle=True)
        if isinstance(loaded, np.lib.npyio.NpzFile):  # members are unpickled when read
            with loaded:
                for key in loaded.files:
                    loaded[key]  # noqa: B018

    def torch_load() -> None:
        torch.load(io.BytesIO(data), weights_only=False)  # noqa: S614 - the test's own file, run on purpose

    def pickle_load() -> None:
        pickle.loads(data)  # noqa: S301 - the test's own file, run on purpose

    for naive in (numpy_load, torch_load, pickle_load):
        try:
            naive()
        except Exception:  # noqa: BLE001, S112 - the payload's return value may not fit: it ran anyway
            pass
        if marker.exists():
            return True
    return marker.exists()


# ------------------------------------------------------------------------------------------- safetensors


def safetensors_parts(tensors: dict[str, torch.Tensor]) -> tuple[dict, bytes]:
    """(header dict, data bytes) of a valid safetensors file of `tensors` (F32 only)."""
    header: dict = {}
    body = b""
    for key, tensor in tensors.items():
        data = tensor.to(torch.float32).contiguous().numpy().tobytes()
        header[key] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    return header, body


def safetensors_bytes(header: dict | bytes, body: bytes, length: int | None = None) -> bytes:
    """A safetensors file: 8-byte little-endian header length (`length` may lie), header, data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + body


def lying_safetensors(header: dict, body: bytes) -> dict[str, bytes]:
    """name -> bytes of a safetensors file whose header lies, made from a valid (`header`, `body`)."""
    first = next(k for k in header if k != "__metadata__")
    second = [k for k in header if k not in ("__metadata__", first)][0]

    def edited(edit: Callable[[dict], None]) -> bytes:
        copy = json.loads(json.dumps(header))
        edit(copy)
        return safetensors_bytes(copy, body)

    def field(key: str, name: str, value: object) -> Callable[[dict], None]:
        return lambda h: h[key].__setitem__(name, value)

    size = header[first]["data_offsets"][1] - header[first]["data_offsets"][0]
    return {
        "header length past the end of the file": safetensors_bytes(header, body, length=10**6),
        "header length of 2**63 - 1": safetensors_bytes(header, body, length=2**63 - 1),
        "header length of 200 MB (over the 100 MB cap)": safetensors_bytes(header, body, length=200 * 2**20),
        "header of 101 MB of JSON": safetensors_bytes(b'{"__metadata__": {"x": "' + b"a" * (101 * 2**20) + b'"}}', b""),
        "offsets beyond the file": edited(field(first, "data_offsets", [0, 10**12])),
        "overlapping tensors": edited(field(second, "data_offsets", [0, size])),
        "reversed offsets": edited(field(first, "data_offsets", [size, 0])),
        "shape larger than its bytes (400000 x 3000)": edited(field(first, "shape", [400_000, 3000])),
        "shape whose size overflows (2**40 x 2**40)": edited(field(first, "shape", [2**40, 2**40])),
        "negative dimension": edited(field(first, "shape", [-1, 3])),
        "dtype F64 over F32 bytes": edited(field(first, "dtype", "F64")),
        "unknown dtype": edited(field(first, "dtype", "EVIL")),
        "non-JSON header (a pickle)": safetensors_bytes(pickle.dumps({"a": 1}), body),
        "JSON list header": safetensors_bytes(b"[1, 2, 3]", body),
        "non-string metadata": edited(lambda h: h.__setitem__("__metadata__", {"format": 3})),
        "truncated data": safetensors_bytes(header, body[: len(body) // 2]),
        "three bytes": b"abc",
        "empty file": b"",
    }


def lying_npy(shape: tuple[int, ...], dtype: str = "<i8", data: bytes = b"\0" * 16) -> bytes:
    """An `.npy` file whose header claims `shape` of `dtype` over `data` bytes."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data
