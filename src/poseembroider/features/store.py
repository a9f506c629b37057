"""A folder of per-item feature arrays, written chunk by chunk and read back memory-mapped.

Frozen encoders give the same output for the same input, so their features are computed once per dataset
split and cached here; training then reads rows of memory-mapped arrays instead of running the encoders.

Layout (`N` items, one `.npy` per field, rows in the order of `data_ids`)::

    <directory>.partial/          while being written (never read by `FeatureStore.open`)
        meta.json                 {"format_version", "num_items", "fields": [{name, shape, dtype}], "fingerprint"}
        data_ids.npy              (N,) int64, the dataset id of every row
        <field>.npy               (N, *shape) float16/float32, standard .npy (`np.load(path, mmap_mode="r")`)
        done/chunk_<start>_<stop> one marker per chunk of rows [start, stop), written after its data is synced
    <directory>/                  the same folder, renamed by `finalize` once every row is done (markers removed)

So a final folder is always complete. `meta.json` is written last when a `.partial` folder is created: a
`.partial` folder without it was interrupted while being created and is rebuilt.

Writing is resumable and shardable: rows are cut into chunks of `chunk_size`; chunk `k` belongs to rank
`k % world_size`; a chunk counts as done only when a marker covers it, so a writer killed mid-chunk redoes
that chunk, and a resumed run may use another `world_size` (or `chunk_size`: done rows are tracked, not chunk
numbers). Ranks share the folder and write disjoint rows of the same `.npy` files with positioned writes +
fsync (no shared writable memory map, so nothing is ever held whole in memory and pages are not clobbered
across machines sharing a filesystem). Synchronisation is the caller's job, this module knows nothing of
`torch.distributed`::

    if rank == 0:
        writer = FeatureStoreWriter(directory, ids, fields, fingerprint, rank=0, world_size=W)  # creates files
    barrier()
    if rank != 0:
        writer = FeatureStoreWriter(directory, ids, fields, fingerprint, rank=rank, world_size=W)  # opens them
    for start, stop in writer.pending_chunks():
        writer.write_chunk(start, stop, {"pose": ...})  # (stop - start, *shape) per field
    barrier()
    if rank == 0:
        writer.finalize()
    barrier()
    store = FeatureStore.open(directory, fingerprint)

The fingerprint is any str -> str mapping saying what produced the features (model names, weight hashes,
image processing); `FeatureStore.open(directory, expected_fingerprint)` refuses features made by anything else.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poseembroider.atomic_io import disk_full_named, write_json_atomic
from poseembroider.npz_files import NUMPY_READ_ERRORS

FORMAT_VERSION = 1
META_NAME = "meta.json"
IDS_NAME = "data_ids.npy"
DONE_DIR = "done"
PARTIAL_SUFFIX = ".partial"
TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MARKER = re.compile(r"chunk_(\d+)_(\d+)")
_MAX_LISTED = 10  # values listed in an error message before "... and N more"


class FeatureCacheError(ValueError):
    """A feature store that cannot be written or read as asked: missing, incomplete, made by another model
    version, or asked for a field, shape or id it does not have. The message names the folder and the culprit."""


def _listed(values: Sequence[Any]) -> str:
    """`values` for an error message, at most `_MAX_LISTED` of them."""
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
    return shown + (f", ... and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else "")


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class FieldSpec:
    """One per-item feature array of a store."""

    name: str  # file stem and key, e.g. "image_tokens", "image_pooled", "pose", "text"
    shape: tuple[int, ...]  # shape of one item, e.g. (192, 128), (512,), (3, 512) for 3 captions
    dtype: str = "float32"  # "float16" | "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _FIELD_NAME.fullmatch(self.name) or self.name == "data_ids":
            raise FeatureCacheError(
                f"field name {self.name!r} is not usable: letters, digits and '_' only, not starting with a digit, "
                "and not 'data_ids'"
            )
        try:
            shape = tuple(operator.index(d) for d in self.shape)
        except TypeError:
            raise FeatureCacheError(f"field {self.name!r}: shape {self.shape!r} is not a tuple of ints") from None
        if any(d <= 0 for d in shape):
            raise FeatureCacheError(f"field {self.name!r}: shape {shape} has a dimension <= 0")
        object.__setattr__(self, "shape", shape)
        if not isinstance(self.dtype, str) or self.dtype not in TORCH_DTYPES:
            raise FeatureCacheError(f"field {self.name!r}: dtype {self.dtype!r} is not one of {sorted(TORCH_DTYPES)}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.dtype]

    @property
    def row_bytes(self) -> int:
        """Bytes of one item in the `.npy` file."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldSpec:
        return cls(name=data["name"], shape=tuple(data["shape"]), dtype=data["dtype"])


# --------------------------------------------------------------------------- validation and comparison


def partial_path(directory: str | os.PathLike) -> Path:
    """The folder a store is written in before it is complete: `<directory>.partial`."""
    directory = Path(directory)
    return directory.with_name(directory.name + PARTIAL_SUFFIX)


def _checked_fields(fields: Sequence[FieldSpec]) -> dict[str, FieldSpec]:
    specs: dict[str, FieldSpec] = {}
    for spec in fields:
        if not isinstance(spec, FieldSpec):
            raise FeatureCacheError(f"fields must be FieldSpec instances, got {spec!r}")
        if spec.name in specs:
            raise FeatureCacheError(f"field {spec.name!r} is given twice")
        specs[spec.name] = spec
    if not specs:
        raise FeatureCacheError("no fields given: a feature store holds at least one field")
    return specs


def _checked_fingerprint(fingerprint: Mapping[str, str]) -> dict[str, str]:
    for key, value in fingerprint.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise FeatureCacheError(f"fingerprint entries must be str -> str; key {key!r} maps to {value!r}")
    return dict(fingerprint)


def _checked_data_ids(data_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """`data_ids` as a read-only (N,) int64 array of distinct ids, N >= 1."""
    ids = np.asarray(data_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise FeatureCacheError(f"data_ids must be a non-empty 1-D sequence of ints, got shape {ids.shape}")
    if ids.dtype.kind not in "iu":
        raise FeatureCacheError(f"data_ids must be ints, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise FeatureCacheError(f"data_ids must be distinct; repeated: {_listed(unique[counts > 1].tolist())}")
    ids.setflags(write=False)
    return ids


def fingerprint_differences(found: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """One line per key on which two fingerprints disagree (`found` is what is on disk)."""
    lines = []
    for key in sorted(set(found) | set(expected)):
        if key not in expected:
            lines.append(f"key {key!r} is {found[key]!r} there, absent from the expected fingerprint")
        elif key not in found:
            lines.append(f"key {key!r} is absent there, {expected[key]!r} expected")
        elif found[key] != expected[key]:
            lines.append(f"key {key!r} is {found[key]!r} there, {expected[key]!r} expected")
    return lines


def _field_differences(found: Mapping[str, FieldSpec], expected: Mapping[str, FieldSpec]) -> list[str]:
    lines = []
    for name in sorted(set(found) | set(expected)):
        if name not in expected:
            lines.append(f"field {name!r} is there but not asked for")
        elif name not in found:
            lines.append(f"field {name!r} is asked for but not there")
        elif found[name] != expected[name]:
            there, asked = found[name], expected[name]
            lines.append(
                f"field {name!r} is shape {there.shape} {there.dtype} there, {asked.shape} {asked.dtype} asked for"
            )
    return lines


def _ids_differences(found: np.ndarray, expected: np.ndarray) -> list[str]:
    if found.shape != expected.shape:
        return [f"data_ids: {len(found)} ids there, {len(expected)} given"]
    differ = np.flatnonzero(found != expected)
    if differ.size == 0:
        return []
    p = int(differ[0])
    return [f"data_ids differ at {differ.size} positions, first at position {p}: {found[p]} there, {expected[p]} given"]


def _read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META_NAME
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise FeatureCacheError(f"no feature store at {directory}: {META_NAME} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FeatureCacheError(f"{path} is unreadable: {err}") from err
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise FeatureCacheError(
            f"{path}: format_version {version!r}, this code reads {FORMAT_VERSION}; delete the folder or recompute"
        )
    return _checked_meta(meta, path)


def _checked_meta(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """The content of `meta.json` checked key by key (an edited or damaged file names its key, not a raw
    KeyError / TypeError later): `num_items` an int >= 1, `fields` a non-empty list of distinct
    {name, shape (list of ints), dtype} entries `FieldSpec` accepts, `fingerprint` a str -> str object."""
    num_items = meta.get("num_items")
    if not isinstance(num_items, int) or isinstance(num_items, bool) or num_items < 1:
        raise FeatureCacheError(f"{path}: key 'num_items' is {num_items!r}, expected an int >= 1")
    fields = meta.get("fields")
    if not isinstance(fields, list) or not fields:
        raise FeatureCacheError(f"{path}: key 'fields' is {str(fields)[:80]}, expected a non-empty list of fields")
    names = set()
    for entry in fields:
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
            raise FeatureCacheError(
                f"{path}: field entry {str(entry)[:80]} is not {{'name', 'shape': [ints], 'dtype'}}"
            )
        try:
            spec = FieldSpec.from_json(entry)
        except (KeyError, FeatureCacheError) as err:
            raise FeatureCacheError(f"{path}: field entry {str(entry)[:80]}: {err}") from None
        if spec.name in names:
            raise FeatureCacheError(f"{path}: field {spec.name!r} is listed twice")
        names.add(spec.name)
    fingerprint = meta.get("fingerprint")
    if not isinstance(fingerprint, dict) or not all(isinstance(v, str) for v in fingerprint.values()):
        raise FeatureCacheError(f"{path}: key 'fingerprint' is {str(fingerprint)[:80]}, expected a str -> str object")
    return meta


def _load_ids(directory: Path, num_items: int) -> np.ndarray:
    path = directory / IDS_NAME
    try:
        ids = np.load(path, mmap_mode="r", allow_pickle=False)  # mapped: a header promising more than the file fails
    except NUMPY_READ_ERRORS as err:  # an empty or truncated file: EOFError, a damaged header: SyntaxError...
        raise FeatureCacheError(f"{path} is unreadable: {type(err).__name__}: {err}") from err
    if not isinstance(ids, np.ndarray):  # a zip archive (an .npz, a torch.save file) under the .npy name
        ids.close()
        raise FeatureCacheError(f"{path} is a zip archive, not a .npy array")
    ids = np.array(ids)  # a copy in memory: the ids are small, and sorted / searched on every lookup
    if ids.shape != (num_items,) or ids.dtype != np.int64:
        raise FeatureCacheError(f"{path} holds {ids.shape} {ids.dtype}, ({num_items},) int64 expected by {META_NAME}")
    ids.setflags(write=False)
    return ids


def _open_array(directory: Path, spec: FieldSpec, num_items: int, mode: str = "r") -> np.memmap:
    """The `.npy` of `spec` memory-mapped, checked to be (num_items, *spec.shape) of spec.dtype."""
    path = directory / f"{spec.name}.npy"
    try:
        array = np.load(path, mmap_mode=mode, allow_pickle=False)
    except NUMPY_READ_ERRORS as err:
        raise FeatureCacheError(f"field {spec.name!r}: {path} is unreadable: {type(err).__name__}: {err}") from err
    if not isinstance(array, np.ndarray):  # a zip archive (an .npz, a torch.save file) under the .npy name
        array.close()
        raise FeatureCacheError(f"field {spec.name!r}: {path} is a zip archive, not a .npy array")
    expected = (num_items, *spec.shape)
    if array.shape != expected or array.dtype != np.dtype(spec.dtype):
        raise FeatureCacheError(
            f"field {spec.name!r}: {path} holds {array.shape} {array.dtype}, {expected} {spec.dtype} expected"
        )
    return array


def _done_rows(directory: Path, num_items: int) -> np.ndarray:
    """(num_items,) bool: rows covered by a chunk marker in `directory/done`."""
    done = np.zeros(num_items, dtype=bool)
    done_dir = directory / DONE_DIR
    if done_dir.is_dir():
        for entry in os.scandir(done_dir):
            match = _MARKER.fullmatch(entry.name)
            if match:
                done[int(match[1]) : int(match[2])] = True
    return done


def _chunk_grid(num_items: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_size, num_items)) for start in range(0, num_items, chunk_size)]


# --------------------------------------------------------------------------- writer


class FeatureStoreWriter:
    """Fills `<directory>.partial/` chunk by chunk, then renames it to `<directory>/` (see the module docstring).

    Rank 0's constructor creates the folder and its `.npy` files (sparse, full size) or resumes a matching
    one; other ranks' constructors only open it, so they must be constructed after rank 0's (the caller puts a
    barrier in between). A `.partial` folder started with other ids, fields or fingerprint is an error naming
    what differs, unless `overwrite=True` (rank 0 only), which wipes it and starts over; a matching one is
    always resumed.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        data_ids: Sequence[int] | np.ndarray,
        fields: Sequence[FieldSpec],
        fingerprint: Mapping[str, str],
        chunk_size: int = 256,
        rank: int = 0,
        world_size: int = 1,
        overwrite: bool = False,
    ):
        self.directory = Path(directory)
        self.partial_directory = partial_path(self.directory)
        self.data_ids = _checked_data_ids(data_ids)
        self.fields = _checked_fields(fields)
        self.fingerprint = _checked_fingerprint(fingerprint)
        if chunk_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise FeatureCacheError(
                f"need chunk_size >= 1 and 0 <= rank < world_size; got {chunk_size=}, {rank=}, {world_size=}"
            )
        self.chunk_size, self.rank, self.world_size = chunk_size, rank, world_size
        self.chunks = _chunk_grid(len(self.data_ids), chunk_size)  # every rank's [start, stop) row ranges
        if (self.directory / META_NAME).exists():
            raise FeatureCacheError(
                f"{self.directory} already holds a complete feature store; open it with FeatureStore.open, "
                "or delete it to recompute"
            )
        if rank == 0:
            self._prepare(overwrite)
        elif not (self.partial_directory / META_NAME).is_file():
            raise FeatureCacheError(
                f"{self.partial_directory} is not prepared: construct the rank-0 FeatureStoreWriter first, and "
                f"construct rank {rank}'s only after a barrier that follows it"
            )
        self._check_matches()
        self._data_offsets = {  # byte offset of row 0 in each .npy, past its header
            name: int(_open_array(self.partial_directory, spec, len(self.data_ids)).offset)
            for name, spec in self.fields.items()
        }

    def __repr__(self) -> str:
        return (
            f"FeatureStoreWriter({str(self.partial_directory)!r}, {len(self.data_ids)} items, "
            f"fields={list(self.fields)}, rank {self.rank}/{self.world_size})"
        )

    # ----------------------------------------------------------------- creation / resume

    def _meta(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "num_items": len(self.data_ids),
            "fields": [spec.to_json() for spec in self.fields.values()],
            "fingerprint": self.fingerprint,
        }

    def _differences(self) -> list[str]:
        """What the existing `.partial` folder was started with that differs from this writer's settings."""
        meta = _read_meta(self.partial_directory)
        found_fields = {f["name"]: FieldSpec.from_json(f) for f in meta["fields"]}
        lines = fingerprint_differences(meta["fingerprint"], self.fingerprint)
        lines += _field_differences(found_fields, self.fields)
        if meta["num_items"] != len(self.data_ids):
            return [*lines, f"data_ids: {meta['num_items']} ids there, {len(self.data_ids)} given"]
        return lines + _ids_differences(_load_ids(self.partial_directory, meta["num_items"]), self.data_ids)

    def _check_matches(self) -> None:
        differences = self._differences()
        if differences:
            hint = "pass overwrite=True (rank 0) to wipe it" if self.rank == 0 else "rank 0 prepared other settings"
            raise FeatureCacheError(
                f"{self.partial_directory} was started with other settings: {'; '.join(differences)}; "
                f"{hint}, or delete the folder"
            )

    def _prepare(self, overwrite: bool) -> None:
        """Rank 0: keep a matching `.partial` folder, else (re)create it."""
        partial = self.partial_directory
        if partial.exists():
            if (partial / META_NAME).is_file() and not (overwrite and self._differs()):
                return  # resumed, or refused with the differences by `_check_matches`
            shutil.rmtree(partial)  # interrupted while being created, or overwrite asked for
        self._create()

    def _differs(self) -> bool:
        try:
            return bool(self._differences())
        except FeatureCacheError:  # unreadable meta.json or data_ids.npy, another format version
            return True

    def _create(self) -> None:
        partial, n = self.partial_directory, len(self.data_ids)
        with disk_full_named(partial):  # a full disk here leaves no meta.json: the next run starts it again
            (partial / DONE_DIR).mkdir(parents=True)
            np.save(partial / IDS_NAME, np.asarray(self.data_ids))
            for spec in self.fields.values():
                # A sparse file of full size: nothing is held in memory, rows are written in place later.
                array = np.lib.format.open_memmap(
                    partial / f"{spec.name}.npy", "w+", np.dtype(spec.dtype), (n, *spec.shape)
                )
                del array
            write_json_atomic(partial / META_NAME, self._meta())  # last: its presence says the folder is whole

    # ----------------------------------------------------------------- writing

    def pending_chunks(self) -> list[tuple[int, int]]:
        """[start, stop) row ranges owned by this rank (chunk k -> rank k % world_size) not written yet."""
        done = _done_rows(self.partial_directory, len(self.data_ids))
        return [
            (start, stop)
            for k, (start, stop) in enumerate(self.chunks)
            if k % self.world_size == self.rank and not done[start:stop].all()
        ]

    def is_complete(self) -> bool:
        """Whether every row of every rank is written (or the store was already finalized)."""
        if not self.partial_directory.exists():
            return (self.directory / META_NAME).is_file()
        return bool(_done_rows(self.partial_directory, len(self.data_ids)).all())

    def write_chunk(self, start: int, stop: int, values: Mapping[str, torch.Tensor | np.ndarray]) -> None:
        """Write rows [start, stop) of every field, sync them to disk, then mark the chunk done.

        `values[name]` is (stop - start, *shape) for every field (cast to the field's dtype). Everything is
        checked before anything is written.
        """
        self._check_chunk(start, stop)
        unknown = sorted(set(values) - set(self.fields))
        missing = sorted(set(self.fields) - set(values))
        if unknown or missing:
            raise FeatureCacheError(
                f"{self.partial_directory}, rows [{start}, {stop}): unknown field(s) {unknown}, missing field(s) "
                f"{missing}; the store has {list(self.fields)}"
            )
        rows = {name: self._to_rows(spec, values[name], start, stop) for name, spec in self.fields.items()}
        for name, array in rows.items():
            self._write_rows(name, start, array)
        write_json_atomic(self.partial_directory / DONE_DIR / f"chunk_{start}_{stop}", {"rank": self.rank}, indent=None)

    def _check_chunk(self, start: int, stop: int) -> None:
        try:
            k = self.chunks.index((start, stop))
        except ValueError:
            raise FeatureCacheError(
                f"{self.partial_directory}: [{start}, {stop}) is not a chunk of this writer "
                f"(chunk_size {self.chunk_size}, {len(self.data_ids)} items); use pending_chunks()"
            ) from None
        if k % self.world_size != self.rank:
            raise FeatureCacheError(
                f"{self.partial_directory}: chunk [{start}, {stop}) belongs to rank {k % self.world_size}, "
                f"not to rank {self.rank}"
            )

    def _to_rows(self, spec: FieldSpec, value: torch.Tensor | np.ndarray, start: int, stop: int) -> np.ndarray:
        """`value` (stop - start, *spec.shape) as a C-contiguous numpy array of the field's dtype."""
        value = torch.as_tensor(value)
        expected = (stop - start, *spec.shape)
        if tuple(value.shape) != expected:
            raise FeatureCacheError(
                f"field {spec.name!r} of {self.partial_directory}: values for rows [{start}, {stop}) have shape "
                f"{tuple(value.shape)}, {expected} expected"
            )
        rows = value.detach().to("cpu", spec.torch_dtype).contiguous()
        if not torch.isfinite(rows).all():
            raise FeatureCacheError(
                f"field {spec.name!r} of {self.partial_directory}: rows [{start}, {stop}) hold NaN or inf as "
                f"{spec.dtype} (float16 overflows above 65504)"
            )
        return rows.numpy()

    def _write_rows(self, name: str, start: int, rows: np.ndarray) -> None:
        """Positioned write of `rows` at row `start` of `<name>.npy`, synced before returning."""
        offset = self._data_offsets[name] + start * self.fields[name].row_bytes
        path = self.partial_directory / f"{name}.npy"
        # The file is sparse: rows take their pages now, so a full disk shows here (the chunk stays unmarked).
        with disk_full_named(path), open(path, "r+b") as f:
            f.seek(offset)
            f.write(rows.data)
            f.flush()
            os.fsync(f.fileno())

    # ----------------------------------------------------------------- finishing

    def finalize(self) -> Path:
        """Rename `<directory>.partial` to `<directory>` once every chunk of every rank is done; return it.

        On a rank other than 0 nothing is renamed: it returns the final path once rank 0 has finalized (the
        caller puts a barrier between rank 0's call and the others'). Calling it again is harmless.
        """
        final = self.directory
        if (final / META_NAME).is_file() and not self.partial_directory.exists():
            return final
        if self.rank != 0:
            raise FeatureCacheError(
                f"{final} does not exist yet: rank 0 finalizes; call finalize on rank {self.rank} after a barrier "
                "that follows rank 0's finalize"
            )
        done = _done_rows(self.partial_directory, len(self.data_ids))
        pending = [(a, b) for a, b in self.chunks if not done[a:b].all()]
        if pending:
            owners = sorted({self.chunks.index(c) % self.world_size for c in pending})
            raise FeatureCacheError(
                f"{self.partial_directory} is incomplete: {len(pending)} chunk(s) not written "
                f"({_listed([f'[{a}, {b})' for a, b in pending])}), owned by rank(s) {owners}"
            )
        os.rename(self.partial_directory, final)
        shutil.rmtree(final / DONE_DIR, ignore_errors=True)
        return final


# --------------------------------------------------------------------------- reader


class FeatureStore:
    """A complete store, read-only: `data_ids` (N,), and per field an (N, *shape) memory-mapped array.

    Build it with `FeatureStore.open`. It pickles as its folder name (DataLoader workers reopen the files
    instead of receiving copies of the arrays).
    """

    data_ids: np.ndarray  # (N,) int64, read-only
    fields: dict[str, FieldSpec]
    fingerprint: dict[str, str]

    def __init__(self, directory: str | os.PathLike):
        """Read `directory` as it is; `open` adds the friendly errors and the fingerprint check."""
        self.directory = Path(directory)
        meta = _read_meta(self.directory)
        self.fingerprint = dict(meta["fingerprint"])
        self.fields = {f["name"]: FieldSpec.from_json(f) for f in meta["fields"]}
        self.data_ids = _load_ids(self.directory, meta["num_items"])
        self._arrays = {
            name: _open_array(self.directory, spec, len(self.data_ids)) for name, spec in self.fields.items()
        }
        self._order = np.argsort(self.data_ids, kind="stable")  # positions sorted by id, for positions_of
        self._sorted_ids = self.data_ids[self._order]

    @classmethod
    def open(cls, directory: str | os.PathLike, expected_fingerprint: Mapping[str, str] | None = None) -> FeatureStore:
        """The complete store at `directory`, checked against `expected_fingerprint` key by key when given."""
        directory = Path(directory)
        if not (directory / META_NAME).is_file():
            partial = partial_path(directory)
            if partial.is_dir():
                raise FeatureCacheError(f"the feature store {directory} is incomplete: {_progress(partial)}")
            raise FeatureCacheError(f"no feature store at {directory}: {META_NAME} is missing")
        store = cls(directory)
        if expected_fingerprint is not None:
            store.check_fingerprint(expected_fingerprint)
        return store

    def check_fingerprint(self, expected: Mapping[str, str]) -> None:
        """Raise if the store was cached with another fingerprint, naming every key that differs."""
        differences = fingerprint_differences(self.fingerprint, expected)
        if differences:
            raise FeatureCacheError(
                f"features in {self.directory} were cached by another model version: {'; '.join(differences)}; "
                "delete the folder or recompute"
            )

    def differences(
        self, fields: Sequence[FieldSpec], fingerprint: Mapping[str, str], data_ids: Sequence[int] | np.ndarray
    ) -> list[str]:
        """One line per way this store differs from the asked fields, fingerprint and ids (empty: it matches)."""
        lines = fingerprint_differences(self.fingerprint, fingerprint)
        lines += _field_differences(self.fields, _checked_fields(fields))
        return lines + _ids_differences(self.data_ids, _checked_data_ids(data_ids))

    def __len__(self) -> int:
        return len(self.data_ids)

    def __repr__(self) -> str:
        fields = ", ".join(f"{s.name} {s.shape} {s.dtype}" for s in self.fields.values())
        return f"FeatureStore({str(self.directory)!r}, {len(self)} items: {fields})"

    def __getstate__(self) -> dict[str, str]:
        return {"directory": str(self.directory)}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["directory"])

    def positions_of(self, data_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row positions of `data_ids` (same shape, int64); an id not in the store is an error naming it."""
        ids = np.asarray(data_ids)
        if ids.size == 0:
            return np.zeros(ids.shape, dtype=np.int64)
        if ids.dtype.kind not in "iu":
            raise FeatureCacheError(f"data ids must be ints, got dtype {ids.dtype} for {self.directory}")
        flat = ids.reshape(-1).astype(np.int64)
        where = np.minimum(np.searchsorted(self._sorted_ids, flat), len(self) - 1)
        known = self._sorted_ids[where] == flat
        if not known.all():
            raise FeatureCacheError(
                f"data id(s) {_listed(flat[~known].tolist())} not in the feature store {self.directory} "
                f"({len(self)} ids)"
            )
        return self._order[where].reshape(ids.shape)

    def array(self, field: str) -> np.memmap:
        """The read-only (N, *shape) memory map of `field`."""
        if field not in self._arrays:
            raise FeatureCacheError(
                f"no field {field!r} in the feature store {self.directory}; it has {list(self.fields)}"
            )
        return self._arrays[field]

    def get(
        self,
        field: str,
        positions: np.ndarray | Sequence[int] | slice,
        dtype: torch.dtype | None = torch.float32,
    ) -> torch.Tensor:
        """Rows `positions` of `field`: (len(positions), *shape) as `dtype` (None: the stored dtype).

        Only the requested rows are read from the memory map (a copy, so the tensor is writable).
        """
        array = self.array(field)
        if isinstance(positions, slice):
            rows = np.array(array[positions])
        else:
            index = np.asarray(positions)
            if index.size and index.dtype.kind not in "iu":
                raise FeatureCacheError(f"field {field!r}: positions must be ints, got dtype {index.dtype}")
            bad = index[(index < 0) | (index >= len(self))] if index.size else index[:0]
            if bad.size:
                raise FeatureCacheError(
                    f"field {field!r} of {self.directory}: positions {_listed(bad.reshape(-1).tolist())} are "
                    f"outside [0, {len(self)})"
                )
            rows = np.asarray(np.take(array, index.astype(np.intp), axis=0))
        tensor = torch.from_numpy(rows)
        return tensor if dtype is None else tensor.to(dtype)


def _progress(partial: Path) -> str:
    """How far the writing of a `.partial` folder got, for error messages."""
    try:
        num_items = _read_meta(partial)["num_items"]
    except FeatureCacheError:
        return f"{partial} is still being created"
    done = int(_done_rows(partial, num_items).sum())
    return f"{partial} has {done} of {num_items} rows written; finish it (cache_features resumes it) and finalize"
