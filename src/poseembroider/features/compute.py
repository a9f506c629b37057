"""Run frozen encoders over a dataset once and keep their outputs in a `FeatureStore`.

One call per dataset split and encoder set::

    store = cache_features(
        dataset,                                    # dict items; position i <-> data_ids[i]
        {"pose": lambda b: pose_encoder(b["poses"].to(device))},  # batch -> (B, 512)
        [FieldSpec("pose", (512,), "float16")],
        cache_dir / "bedlamscript_val_poses",
        fingerprint={"pose_encoder": weights_sha256},
        data_ids=dataset.data_ids,
    )

Under `torchrun`, pass `rank`, `world_size` and `barrier=torch.distributed.barrier`: each rank computes its
own chunks into the shared folder, rank 0 renames it when all are done. An interrupted run resumes where it
stopped; a complete store with the same fingerprint, fields and ids is returned without computing anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from poseembroider.atomic_io import exclusive_lock
from poseembroider.features.store import META_NAME, FeatureCacheError, FeatureStore, FeatureStoreWriter, FieldSpec

Encoder = Callable[[Any], torch.Tensor]  # batch -> (B, *field.shape)


def _no_barrier() -> None:
    """Single-process runs need no synchronisation."""


def cache_features(
    dataset: Dataset,
    encoders: Mapping[str, Encoder],
    fields: Sequence[FieldSpec],
    directory: str | os.PathLike,
    fingerprint: Mapping[str, str],
    data_ids: Sequence[int] | np.ndarray,
    batch_size: int = 32,
    num_workers: int = 0,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    chunk_size: int = 256,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] = _no_barrier,
    progress: bool = True,
    overwrite: bool = False,
) -> FeatureStore:
    """Compute `encoders[field.name](batch)` -> (B, *field.shape) for every item of `dataset` into `directory`.

    Every rank calls it with the same arguments (`barrier` synchronises them; a no-op for one process).
    A complete store at `directory` is reused when its fingerprint, fields and ids match; otherwise it is an
    error naming what differs, unless `overwrite=True`, which recomputes it (the same holds for a `.partial`
    folder left by an interrupted run: a matching one is resumed). Encoders run under `torch.inference_mode()`
    and move batches to their own device; outputs come back to the CPU batch by batch, so memory holds at most
    one chunk of features. When batches are dicts with a `data_ids` entry, it is checked against `data_ids`.
    """
    directory = Path(directory)
    fields = list(fields)
    _check_arguments(dataset, encoders, fields, data_ids)
    # One job writes a store at a time: another one (rank 0 of another run) waits here, then reuses the store.
    # Its other ranks follow rank 0 through the barriers.
    lock = exclusive_lock(directory, "feature store", wait=True) if rank == 0 else contextlib.nullcontext()
    with lock:
        return _cache_features(
            dataset, encoders, fields, directory, fingerprint, data_ids, batch_size, num_workers, collate_fn,
            chunk_size, rank, world_size, barrier, progress, overwrite,
        )  # fmt: skip


def _cache_features(
    dataset: Dataset,
    encoders: Mapping[str, Encoder],
    fields: list[FieldSpec],
    directory: Path,
    fingerprint: Mapping[str, str],
    data_ids: Sequence[int] | np.ndarray,
    batch_size: int,
    num_workers: int,
    collate_fn: Callable[[list[Any]], Any] | None,
    chunk_size: int,
    rank: int,
    world_size: int,
    barrier: Callable[[], None],
    progress: bool,
    overwrite: bool,
) -> FeatureStore:
    """`cache_features` once its arguments are checked and rank 0 holds the store's lock."""
    if (directory / META_NAME).is_file():
        store = FeatureStore.open(directory)
        differences = store.differences(fields, fingerprint, data_ids)
        if not differences:
            return store
        if not overwrite:
            raise FeatureCacheError(
                f"features in {directory} were cached by another model version or for other data: "
                f"{'; '.join(differences)}; delete the folder, recompute with overwrite=True, or use another folder"
            )
        del store
        barrier()  # every rank has looked at the old store before it goes
        if rank == 0:
            shutil.rmtree(directory)
    writer = _open_writer(directory, data_ids, fields, fingerprint, chunk_size, rank, world_size, barrier, overwrite)
    _write_pending_chunks(writer, dataset, encoders, data_ids, batch_size, num_workers, collate_fn, progress)
    barrier()
    if rank == 0:
        writer.finalize()
    barrier()
    return FeatureStore.open(directory, fingerprint)


def _check_arguments(
    dataset: Dataset, encoders: Mapping[str, Encoder], fields: Sequence[FieldSpec], data_ids: Sequence[int]
) -> None:
    names = [spec.name for spec in fields]
    missing, unused = sorted(set(names) - set(encoders)), sorted(set(encoders) - set(names))
    if missing or unused:
        raise FeatureCacheError(f"no encoder for field(s) {missing}; encoder(s) {unused} have no FieldSpec")
    if len(dataset) != len(data_ids):
        raise FeatureCacheError(f"the dataset has {len(dataset)} items but {len(data_ids)} data_ids are given")


def _open_writer(
    directory: Path,
    data_ids: Sequence[int],
    fields: Sequence[FieldSpec],
    fingerprint: Mapping[str, str],
    chunk_size: int,
    rank: int,
    world_size: int,
    barrier: Callable[[], None],
    overwrite: bool,
) -> FeatureStoreWriter:
    """Rank 0 creates (or resumes) the `.partial` folder before the other ranks open it."""

    def make() -> FeatureStoreWriter:
        return FeatureStoreWriter(directory, data_ids, fields, fingerprint, chunk_size, rank, world_size, overwrite)

    writer = make() if rank == 0 else None
    barrier()
    return writer if writer is not None else make()


def _write_pending_chunks(
    writer: FeatureStoreWriter,
    dataset: Dataset,
    encoders: Mapping[str, Encoder],
    data_ids: Sequence[int],
    batch_size: int,
    num_workers: int,
    collate_fn: Callable[[list[Any]], Any] | None,
    progress: bool,
) -> None:
    """Encode and write this rank's pending chunks.

    One DataLoader covers all of them (its workers keep prefetching across chunk boundaries) with batches cut
    so that none straddles two chunks; a chunk is written as soon as its last batch is encoded.
    """
    pending = writer.pending_chunks()
    batches = [
        list(range(first, min(first + batch_size, stop)))
        for start, stop in pending
        for first in range(start, stop, batch_size)
    ]
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=collate_fn)
    total = sum(stop - start for start, stop in pending)
    with tqdm(
        total=total, unit="item", desc=f"caching {writer.directory.name}", disable=not progress or writer.rank != 0
    ) as bar:
        for start, stop, values in _encoded_chunks(
            loader, batches, pending, encoders, writer.fields, np.asarray(data_ids)
        ):
            writer.write_chunk(start, stop, values)
            bar.update(stop - start)


def _encoded_chunks(
    loader: DataLoader,
    batches: Sequence[Sequence[int]],
    chunks: Sequence[tuple[int, int]],
    encoders: Mapping[str, Encoder],
    fields: Mapping[str, FieldSpec],
    data_ids: np.ndarray,
) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """Yield (start, stop, {field: (stop - start, *shape)}) per chunk; `loader` yields `batches` in order."""
    remaining = iter(chunks)
    start, stop = next(remaining, (0, 0))
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in fields}
    filled = start
    for positions, batch in zip(batches, loader, strict=True):
        _check_batch_ids(batch, data_ids[positions], positions[0])
        with torch.inference_mode():
            for name, spec in fields.items():
                parts[name].append(_encoded(encoders[name], batch, spec, len(positions)))
        filled += len(positions)
        if filled == stop:
            yield start, stop, {name: torch.cat(values) for name, values in parts.items()}
            parts = {name: [] for name in fields}
            start, stop = next(remaining, (stop, stop))
            filled = start


def _encoded(encoder: Encoder, batch: Any, spec: FieldSpec, size: int) -> torch.Tensor:
    """`encoder(batch)` checked to be (size, *spec.shape), on the CPU in the field's dtype."""
    out = encoder(batch)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (size, *spec.shape):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise FeatureCacheError(
            f"the encoder of field {spec.name!r} returned {shape} for a batch of {size}, {(size, *spec.shape)} expected"
        )
    return out.to("cpu", spec.torch_dtype)


def _check_batch_ids(batch: Any, expected: np.ndarray, first: int) -> None:
    """When the batch carries `data_ids`, they must be those of its positions (dataset order = data_ids order)."""
    if not isinstance(batch, Mapping) or "data_ids" not in batch:
        return
    found = np.asarray(torch.as_tensor(batch["data_ids"]).reshape(-1))
    if found.shape != expected.shape or (found != expected).any():
        raise FeatureCacheError(
            f"the batch at positions [{first}, {first + len(expected)}) carries data_ids {found.tolist()[:10]}, "
            f"but data_ids gives {expected.tolist()[:10]} there: the dataset and data_ids are not in the same order"
        )
