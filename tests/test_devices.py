"""devices: `torch_threads` sets the thread count for a block and restores it after, even on error."""

from __future__ import annotations

import pytest
import torch

from poseembroider.devices import torch_threads


def test_thread_count_is_set_then_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match=">= 1"), torch_threads(0):
        pass
