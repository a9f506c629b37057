import pickle

import pytest
import torch

from poseembroider.datasets.cache_format import CacheError, cache_file_name, load_cache, save_cache


def test_names_follow_the_original_scheme():
    assert cache_file_name("bedlamscript", "overlap30_res224_j16_sf11", "train", "poses", 50000) == (
        "bedlamscript_version_overlap30_res224_j16_sf11_split_train_poses_reduced_50000.pt"
    )


def test_round_trip_and_missing_table(tmp_path):
    path = save_cache(
        {"criteria": {"a": 1}, "poses": {3: torch.ones(52, 3)}, "shapes": {3: torch.zeros(11)}}, tmp_path / "c.pt"
    )
    assert torch.equal(load_cache(path, "poses")["poses"][3], torch.ones(52, 3))
    with pytest.raises(CacheError, match=r"missing key\(s\) \['texts'\] for a 'rawtexts' cache"):
        load_cache(path, "rawtexts")
    assert not list(tmp_path.glob(".*tmp"))


class _Trap:
    def __reduce__(self):
        return (print, ("executed",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"criteria": _Trap()}))
    with pytest.raises(CacheError, match="evil.pt: cannot be read as a safe cache file"):
        load_cache(path)
