import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from poseembroider.features.frozen import WithPoolBatches, collate_batched
from poseembroider.model import POOL_BATCH_KEY


class RowsDataset:
    """Stands for a `CachedFeatureDataset`: rows of `pose_features` whose value is their position."""

    def __init__(self, n: int, offset: int = 0) -> None:
        self.data_ids = np.arange(n) + offset

    def __len__(self) -> int:
        return len(self.data_ids)

    def __getitems__(self, indices):
        positions = torch.as_tensor(list(indices))
        return {"pose_features": positions.float()[:, None], "data_ids": torch.as_tensor(self.data_ids[positions])}


def _pool_rows(dataset: WithPoolBatches, batches: list[list[int]]) -> list[list[int]]:
    return [dataset.__getitems__(b)[POOL_BATCH_KEY]["pose_features"][:, 0].long().tolist() for b in batches]


def test_pool_rows_come_without_replacement_until_the_pool_is_used_up():
    dataset = WithPoolBatches(RowsDataset(8), RowsDataset(10, offset=100), ratio=1.5, seed=3)
    rows = _pool_rows(dataset, [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1], [2, 3]])
    assert [len(r) for r in rows] == [6, 6, 3, 3]
    first_pass = rows[0] + rows[1][:4]
    assert sorted(first_pass) == list(range(10))  # every pool row once before any repeats
    batch = dataset.__getitems__([5, 6])
    assert batch["pose_features"][:, 0].tolist() == [5.0, 6.0] and len(dataset) == 8


def test_pool_order_follows_the_seed():
    def rows(seed: int) -> list[list[int]]:
        return _pool_rows(WithPoolBatches(RowsDataset(4), RowsDataset(50), seed=seed), [[0, 1, 2, 3]] * 3)

    assert rows(0) == rows(0)
    assert rows(0) != rows(1)


def test_a_dataloader_passes_whole_batches_with_their_pool_sub_batch():
    dataset = WithPoolBatches(RowsDataset(6), RowsDataset(20), ratio=0.5)
    batches = list(DataLoader(dataset, batch_size=4, collate_fn=collate_batched))
    assert [len(b["pose_features"]) for b in batches] == [4, 2]
    assert [len(b[POOL_BATCH_KEY]["pose_features"]) for b in batches] == [2, 1]


@pytest.mark.parametrize(("pool", "ratio", "message"), [(RowsDataset(0), 1.0, "empty"), (RowsDataset(3), 0, "> 0")])
def test_bad_pools_are_refused(pool, ratio, message):
    with pytest.raises(ValueError, match=message):
        WithPoolBatches(RowsDataset(4), pool, ratio)


def test_the_pool_order_is_saved_and_restored_mid_permutation():
    """What the Trainer checkpoints (`rng_state`): a rebuilt dataset given the state continues the same rows."""
    dataset = WithPoolBatches(RowsDataset(8), RowsDataset(10, offset=100), ratio=1.5, seed=3)
    _pool_rows(dataset, [[0, 1, 2, 3]])  # 6 of the 10 rows of the first permutation taken
    state = dataset.rng_state()
    expected = _pool_rows(dataset, [[0, 1, 2, 3], [4, 5]])
    rebuilt = WithPoolBatches(RowsDataset(8), RowsDataset(10, offset=100), ratio=1.5, seed=3)
    rebuilt.set_rng_state(state)
    assert _pool_rows(rebuilt, [[0, 1, 2, 3], [4, 5]]) == expected
    with pytest.raises(ValueError, match="outside the pool of 5"):
        WithPoolBatches(RowsDataset(8), RowsDataset(5), seed=3).set_rng_state(state)


@pytest.mark.parametrize("ratio", [0.0, -1.0, float("nan"), float("inf")])
def test_a_ratio_that_is_not_a_finite_positive_number_is_refused(ratio):
    # NaN passed the old `ratio <= 0` check.
    with pytest.raises(ValueError, match="pool batch ratio .*finite number > 0"):
        WithPoolBatches(RowsDataset(4), RowsDataset(10), ratio=ratio)
