"""Fast checks behind the kill tests' byte-for-byte comparisons: the toolkit's writers give the same bytes for
the same content, whichever process wrote it and wherever its strings came from (a resumed run writes
tables and optimizer states read back from its own files, an uninterrupted run fresh ones)."""

from __future__ import annotations

import io

import pytest
import torch

from poseembroider.datasets.cache_format import save_torch_file
from poseembroider.models.pretrained import read_safetensors_file, save_state_dict, write_safetensors

pytestmark = pytest.mark.reliability(area="kills", subject="byte-identical writes (.pt, .safetensors)")

METADATA = {f"key_{i}": f"value {i}" for i in range(8)}


def test_safetensors_metadata_in_any_order_gives_the_same_bytes(tmp_path, cases):
    """safetensors serialises its metadata map in a random order (20 saves gave 20 files before the fix)."""
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.int64)}
    written = set()
    for i in range(12):
        metadata = dict(sorted(METADATA.items(), reverse=bool(i % 2)))
        written.add(write_safetensors(tensors, tmp_path / "w.safetensors", metadata).read_bytes())
        cases.tried()
    assert len(written) == 1
    loaded, metadata = read_safetensors_file(tmp_path / "w.safetensors")
    assert metadata == METADATA and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    linear = torch.nn.Linear(3, 3)
    tied = {"weight": linear.weight, "alias": linear.weight, "bias": linear.bias}  # two metadata keys + format
    first = save_state_dict(tied, tmp_path / "s1.safetensors", {"model_class": "X"}).read_bytes()
    assert all(save_state_dict(tied, tmp_path / "s.safetensors", {"model_class": "X"}).read_bytes() == first
               for _ in range(6))  # fmt: skip


def _state() -> dict:
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(3, 4)).sum().backward()
    optimizer.step()
    return {"optimizer": optimizer.state_dict(), "config": {"lr": 0.01, "name": "run"}, "texts": ["a b", "a b"]}


def test_a_state_read_back_is_written_with_the_bytes_of_the_fresh_one(tmp_path, cases):
    """Fresh strings share objects ('lr' of the optimizer and of the config) where strings read back from a
    file do not; pickle's back-references followed that, so a resumed run's training state had other bytes."""
    state = _state()
    fresh = save_torch_file(state, tmp_path / "fresh.pt").read_bytes()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    reloaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    assert save_torch_file(reloaded, tmp_path / "reloaded.pt").read_bytes() == fresh
    cases.tried()
