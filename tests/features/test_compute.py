"""cache_features: correct rows in id order, computed once, resumed, sharded over ranks, refusals named."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from poseembroider.features.compute import cache_features
from poseembroider.features.store import FeatureCacheError, FeatureStore, FeatureStoreWriter, FieldSpec

IDS = np.array([40, 2, 33, 15, 8, 27, 19, 5, 11, 36, 1])  # 11 items: chunks of 4 -> [0,4) [4,8) [8,11)
FIELDS = [FieldSpec("sum", (1,)), FieldSpec("double", (2, 3), "float16")]
FINGERPRINT = {"toy_encoder": "v1"}


class ToyDataset(Dataset):
    """Item i: {"x": (2, 3) values derived from its id, "data_ids": id}."""

    def __init__(self, ids: np.ndarray):
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.arange(6.0).reshape(2, 3) + float(self.ids[i]), "data_ids": int(self.ids[i])}


def expected_x(data_id: int) -> torch.Tensor:
    return torch.arange(6.0).reshape(2, 3) + data_id


class CountingEncoders(dict):
    """The toy encoders, counting the items each one saw."""

    def __init__(self):
        self.items = Counter()
        super().__init__(sum=self.encode_sum, double=self.encode_double)

    def encode_sum(self, batch: dict) -> torch.Tensor:
        assert torch.is_inference_mode_enabled()
        self.items["sum"] += len(batch["x"])
        return batch["x"].sum(dim=(1, 2)).unsqueeze(1)  # (B, 1)

    def encode_double(self, batch: dict) -> torch.Tensor:
        self.items["double"] += len(batch["x"])
        return batch["x"] * 2  # (B, 2, 3)


def run(directory, encoders, **kwargs) -> FeatureStore:
    settings = dict(fields=FIELDS, fingerprint=FINGERPRINT, data_ids=IDS, batch_size=3, chunk_size=4, progress=False)
    return cache_features(ToyDataset(IDS), encoders, directory=directory, **(settings | kwargs))


def assert_correct(store: FeatureStore) -> None:
    """Rows of the store, looked up by id, are the encoder outputs of those ids."""
    assert np.array_equal(store.data_ids, IDS)
    ids = [1, 40, 19, 36]
    positions = store.positions_of(ids)
    x = torch.stack([expected_x(i) for i in ids])
    assert torch.equal(store.get("sum", positions), x.sum(dim=(1, 2)).unsqueeze(1))
    assert torch.equal(store.get("double", positions, dtype=None), (x * 2).half())


def test_rows_in_id_order_and_computed_once(tmp_path):
    encoders = CountingEncoders()
    store = run(tmp_path / "feats", encoders)
    assert_correct(store)
    assert store.fingerprint == FINGERPRINT and encoders.items == {"sum": 11, "double": 11}
    again = run(tmp_path / "feats", encoders)
    assert encoders.items == {"sum": 11, "double": 11}  # not recomputed
    assert_correct(again)


def test_an_interrupted_run_is_resumed(tmp_path):
    directory = tmp_path / "feats"
    partial = FeatureStoreWriter(directory, IDS, FIELDS, FINGERPRINT, chunk_size=4)
    x = torch.stack([expected_x(i) for i in IDS[4:8]])
    partial.write_chunk(4, 8, {"sum": x.sum(dim=(1, 2)).unsqueeze(1), "double": x * 2})
    encoders = CountingEncoders()
    store = run(directory, encoders)
    assert encoders.items == {"sum": 7, "double": 7}  # chunks [0, 4) and [8, 11) only
    assert_correct(store)


def test_another_fingerprint_is_refused_unless_overwrite(tmp_path):
    run(tmp_path / "feats", CountingEncoders())
    encoders = CountingEncoders()
    with pytest.raises(FeatureCacheError, match="key 'toy_encoder' is 'v1' there, 'v2' expected.*overwrite=True"):
        run(tmp_path / "feats", encoders, fingerprint={"toy_encoder": "v2"})
    assert encoders.items == {}
    store = run(tmp_path / "feats", encoders, fingerprint={"toy_encoder": "v2"}, overwrite=True)
    assert store.fingerprint == {"toy_encoder": "v2"} and encoders.items == {"sum": 11, "double": 11}
    assert_correct(store)


def test_two_ranks_share_the_work(tmp_path):
    """Two threads stand for two ranks; a real barrier makes the rank-0-first and finalize steps matter."""
    barrier = threading.Barrier(2, timeout=60)
    encoders = [CountingEncoders(), CountingEncoders()]
    results: dict[int, FeatureStore | BaseException] = {}

    def rank(r: int) -> None:
        try:
            results[r] = run(tmp_path / "feats", encoders[r], rank=r, world_size=2, barrier=barrier.wait)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            results[r] = err
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = sorted((e for e in results.values() if isinstance(e, BaseException)), key=_is_broken_barrier)
    if errors:
        raise errors[0]  # the cause, not the other rank's broken barrier
    for store in results.values():
        assert_correct(store)
    assert encoders[0].items["sum"] == 7 and encoders[1].items["sum"] == 4  # chunks [0,4) [8,11) vs [4,8)


def _is_broken_barrier(err: BaseException) -> bool:
    return isinstance(err, threading.BrokenBarrierError)


def test_bad_encoders_and_misaligned_ids_are_named(tmp_path):
    with pytest.raises(FeatureCacheError, match=r"no encoder for field\(s\) \['double'\]"):
        run(tmp_path / "a", {"sum": CountingEncoders().encode_sum})
    encoders = CountingEncoders()
    encoders["double"] = lambda batch: batch["x"]  # (B, 2, 3) float32 is fine; transposed is not
    encoders["sum"] = lambda batch: batch["x"].sum(dim=(1, 2))  # (B,) instead of (B, 1)
    with pytest.raises(FeatureCacheError, match=r"field 'sum' returned \(3,\) for a batch of 3, \(3, 1\) expected"):
        run(tmp_path / "b", encoders)
    with pytest.raises(FeatureCacheError, match="not in the same order"):
        run(tmp_path / "c", CountingEncoders(), data_ids=IDS[::-1].copy())
