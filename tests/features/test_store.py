"""FeatureStoreWriter / FeatureStore: exact round trips, atomic completion, resume, sharding, clear refusals."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from poseembroider.features.store import FeatureCacheError, FeatureStore, FeatureStoreWriter, FieldSpec, partial_path

FIELDS = [FieldSpec("tokens", (3, 4), "float16"), FieldSpec("pooled", (5,), "float32")]
IDS = np.array([50, 3, 17, 8, 41, 22, 9, 30, 12, 7])  # not sorted, so positions != ids
FINGERPRINT = {"pose_encoder": "abc", "image_processing": "crop224"}
CHUNK = 3  # chunks [0, 3) [3, 6) [6, 9) [9, 10)


def make_values() -> dict[str, torch.Tensor]:
    """Every field for every item, exactly representable in the field's dtype."""
    generator = torch.Generator().manual_seed(0)
    return {
        spec.name: torch.randn(len(IDS), *spec.shape, generator=generator).to(spec.torch_dtype) * 100 for spec in FIELDS
    }


def writer(directory: Path, **kwargs) -> FeatureStoreWriter:
    settings = dict(data_ids=IDS, fields=FIELDS, fingerprint=FINGERPRINT, chunk_size=CHUNK) | kwargs
    return FeatureStoreWriter(directory, **settings)


def write(w: FeatureStoreWriter, values: dict[str, torch.Tensor], chunks=None) -> list[tuple[int, int]]:
    """Write `chunks` (default: all pending ones) of `values`; return the chunks written."""
    chunks = w.pending_chunks() if chunks is None else chunks
    for start, stop in chunks:
        w.write_chunk(start, stop, {name: v[start:stop] for name, v in values.items()})
    return chunks


def assert_same_store(a: FeatureStore, b: FeatureStore) -> None:
    assert np.array_equal(a.data_ids, b.data_ids)
    assert a.fields == b.fields and a.fingerprint == b.fingerprint
    for name in a.fields:
        assert a.array(name).tobytes() == b.array(name).tobytes()


@pytest.fixture
def values() -> dict[str, torch.Tensor]:
    return make_values()


@pytest.fixture
def reference(tmp_path, values) -> FeatureStore:
    """The store of an uninterrupted one-rank run."""
    w = writer(tmp_path / "reference")
    write(w, values)
    return FeatureStore.open(w.finalize(), FINGERPRINT)


def test_round_trip_is_exact_and_memory_mapped(reference, values):
    store = reference
    assert len(store) == len(IDS) and np.array_equal(store.data_ids, IDS)
    assert store.fields == {spec.name: spec for spec in FIELDS} and store.fingerprint == FINGERPRINT
    for spec in FIELDS:
        stored = store.get(spec.name, slice(None), dtype=None)
        assert stored.dtype == spec.torch_dtype and torch.equal(stored, values[spec.name])
        assert torch.equal(store.get(spec.name, slice(None)), values[spec.name].float())  # default float32
        array = store.array(spec.name)
        assert isinstance(array, np.memmap) and not array.flags.writeable
        plain = np.load(store.directory / f"{spec.name}.npy", mmap_mode="r")  # a standard .npy
        assert plain.dtype == np.dtype(spec.dtype) and np.array_equal(plain, values[spec.name].numpy())
    positions = store.positions_of([7, 50, 22])
    assert positions.tolist() == [9, 0, 5]
    rows = store.get("pooled", positions)
    assert rows.shape == (3, 5) and torch.equal(rows, values["pooled"][[9, 0, 5]])
    rows[:] = 0  # a copy: the store is untouched
    assert torch.equal(store.get("pooled", [9]), values["pooled"][[9]])


def test_partial_folder_is_invisible_until_finalized(tmp_path, values):
    final = tmp_path / "feats"
    w = writer(final)
    write(w, values, w.pending_chunks()[:2])
    assert partial_path(final).is_dir() and not final.exists()
    with pytest.raises(FeatureCacheError, match="incomplete.*6 of 10 rows"):
        FeatureStore.open(final)
    with pytest.raises(FeatureCacheError, match=r"incomplete: 2 chunk\(s\).*\[6, 9\)"):
        w.finalize()
    assert not w.is_complete()
    write(w, values)
    assert w.is_complete() and not final.exists()
    assert w.finalize() == final
    assert not partial_path(final).exists() and not (final / "done").exists()
    assert w.is_complete() and w.finalize() == final  # again: harmless
    FeatureStore.open(final, FINGERPRINT)


def test_resume_after_kill_redoes_unmarked_chunks(tmp_path, reference, values):
    final = tmp_path / "feats"
    first = writer(final)
    write(first, values, [(0, 3), (6, 9)])
    # Killed after writing the data of [3, 6) but before its marker: garbage on disk, no marker.
    write(first, {name: torch.full_like(v, 7) for name, v in values.items()}, [(3, 6)])
    (partial_path(final) / "done" / "chunk_3_6").unlink()
    del first

    second = writer(final)
    assert second.pending_chunks() == [(3, 6), (9, 10)]
    assert write(second, values) == [(3, 6), (9, 10)]
    assert second.pending_chunks() == []
    assert_same_store(FeatureStore.open(second.finalize(), FINGERPRINT), reference)


def test_resume_accepts_another_chunk_size_and_world_size(tmp_path, reference, values):
    final = tmp_path / "feats"
    write(writer(final), values, [(0, 3), (3, 6)])
    resumed = writer(final, chunk_size=4, rank=1, world_size=2)  # chunks [0,4) [4,8) [8,10); rank 1 owns [4, 8)
    assert resumed.pending_chunks() == [(4, 8)]
    write(resumed, values)
    rank0 = writer(final, chunk_size=4, world_size=2)
    assert rank0.pending_chunks() == [(8, 10)]  # [0, 4) is covered by the markers of the first run
    write(rank0, values)
    assert_same_store(FeatureStore.open(rank0.finalize()), reference)


def test_two_ranks_make_the_same_store_as_one(tmp_path, reference, values):
    final = tmp_path / "feats"
    with pytest.raises(FeatureCacheError, match="construct the rank-0 FeatureStoreWriter first"):
        writer(final, rank=1, world_size=2)
    rank0 = writer(final, rank=0, world_size=2)  # creates the files: before rank 1 (the barrier)
    rank1 = writer(final, rank=1, world_size=2)
    assert rank0.pending_chunks() == [(0, 3), (6, 9)] and rank1.pending_chunks() == [(3, 6), (9, 10)]
    with pytest.raises(FeatureCacheError, match="belongs to rank 1, not to rank 0"):
        rank0.write_chunk(3, 6, {name: v[3:6] for name, v in values.items()})
    write(rank0, values)
    with pytest.raises(FeatureCacheError, match=r"owned by rank\(s\) \[1\]"):
        rank0.finalize()
    write(rank1, values)
    with pytest.raises(FeatureCacheError, match="rank 0 finalizes"):
        rank1.finalize()
    assert rank0.finalize() == final and rank1.finalize() == final
    assert_same_store(FeatureStore.open(final, FINGERPRINT), reference)


def test_fingerprint_mismatch_names_the_key(reference):
    with pytest.raises(FeatureCacheError) as info:
        FeatureStore.open(reference.directory, {"pose_encoder": "def", "image_processing": "crop224"})
    message = str(info.value)
    assert str(reference.directory) in message and "another model version" in message
    assert "key 'pose_encoder' is 'abc' there, 'def' expected" in message and "image_processing" not in message
    with pytest.raises(FeatureCacheError, match="key 'image_processing' is 'crop224' there, absent from the expected"):
        FeatureStore.open(reference.directory, {"pose_encoder": "abc"})


def test_resuming_with_other_settings_is_refused_unless_overwrite(tmp_path, values):
    final = tmp_path / "feats"
    write(writer(final), values, [(0, 3)])
    with pytest.raises(FeatureCacheError, match="key 'pose_encoder' is 'abc' there, 'new' expected.*overwrite=True"):
        writer(final, fingerprint={**FINGERPRINT, "pose_encoder": "new"})
    with pytest.raises(FeatureCacheError, match=r"field 'pooled' is shape \(5,\) float32 there, \(6,\) float32"):
        writer(final, fields=[FIELDS[0], FieldSpec("pooled", (6,))])
    with pytest.raises(FeatureCacheError, match="first at position 1: 3 there, 4 given"):
        writer(final, data_ids=[50, 4, 17, 8, 41, 22, 9, 30, 12, 7])
    assert writer(final).pending_chunks() == [(3, 6), (6, 9), (9, 10)]  # still resumable
    fresh = writer(final, fingerprint={"pose_encoder": "new"}, overwrite=True)
    assert fresh.pending_chunks() == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_bad_values_are_refused_before_anything_is_written(tmp_path, values):
    w = writer(tmp_path / "feats")
    chunk = {name: v[0:3] for name, v in values.items()}
    with pytest.raises(FeatureCacheError, match=r"field 'tokens'.*shape \(3, 4, 3\), \(3, 3, 4\) expected"):
        w.write_chunk(0, 3, {**chunk, "tokens": chunk["tokens"].transpose(1, 2)})
    with pytest.raises(FeatureCacheError, match=r"unknown field\(s\) \['text'\], missing field\(s\) \['pooled'\]"):
        w.write_chunk(0, 3, {"tokens": chunk["tokens"], "text": chunk["pooled"]})
    with pytest.raises(FeatureCacheError, match="'tokens'.*NaN or inf as float16"):
        w.write_chunk(0, 3, {**chunk, "tokens": torch.full((3, 3, 4), 1e5)})  # overflows float16
    with pytest.raises(FeatureCacheError, match=r"\[0, 4\) is not a chunk"):
        w.write_chunk(0, 4, {name: v[0:4] for name, v in values.items()})
    assert w.pending_chunks() == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_unknown_field_id_or_position_is_named(reference):
    with pytest.raises(FeatureCacheError, match=r"no field 'text'.*\['tokens', 'pooled'\]"):
        reference.get("text", [0])
    with pytest.raises(FeatureCacheError, match=r"data id\(s\) 999, -1 not in the feature store"):
        reference.positions_of([3, 999, 50, -1])
    with pytest.raises(FeatureCacheError, match=r"positions 10 are outside \[0, 10\)"):
        reference.get("pooled", [0, 10])
    assert reference.positions_of(np.zeros(0, dtype=np.int64)).shape == (0,)


def test_missing_store_and_bad_specs_are_refused(tmp_path):
    with pytest.raises(FeatureCacheError, match="no feature store at .*nothing_here"):
        FeatureStore.open(tmp_path / "nothing_here")
    with pytest.raises(FeatureCacheError, match="dtype 'int8'"):
        FieldSpec("pose", (512,), "int8")
    with pytest.raises(FeatureCacheError, match="'data_ids' is not usable"):
        FieldSpec("data_ids", (1,))
    with pytest.raises(FeatureCacheError, match="dimension <= 0"):
        FieldSpec("pose", (0,))
    with pytest.raises(FeatureCacheError, match="repeated: 3"):
        writer(tmp_path / "feats", data_ids=[3, 1, 3])


def test_a_complete_store_is_not_rewritten(reference):
    with pytest.raises(FeatureCacheError, match="already holds a complete feature store"):
        writer(reference.directory)


def test_pickles_as_its_folder(reference, values):
    clone = pickle.loads(pickle.dumps(reference))
    assert len(pickle.dumps(reference)) < 500  # not the arrays
    assert torch.equal(clone.get("tokens", [2, 1], dtype=None), values["tokens"][[2, 1]])
