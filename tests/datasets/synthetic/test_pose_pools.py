"""Pose-only training pools (`synthposes-` / `synthpairs-`): names, the shared val split, item formats,
determinism, reuse and errors, on a tiny pool beside a hand-built script + fix val split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poseembroider import config
from poseembroider.cli import main
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.cache_format import CacheError, load_cache
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    pairs_cache,
    poses_cache,
    rawtexts_cache,
    write_caches,
)
from poseembroider.datasets.registry import (
    PosePoolDatasetFix,
    PosePoolDatasetScript,
    get_dataset,
    parse_dataset_name,
)
from poseembroider.datasets.synthetic.pose_pools import (
    PosePoolConfig,
    generate_pools,
    pairs_dataset_name,
    poses_dataset_name,
    script_version_of,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VERSION = "pooltest_overlap30_res224_j16_sf11"
FIX_VERSION = VERSION + "-in15_out20_t05_sim0709"
N_VAL = 6
VAL_IDS = [100 + 7 * i for i in range(N_VAL)]  # not 0..n-1: the copy must keep the ids


def _write_val_split(cache_dir) -> None:
    """A script + fix val split written by the cache writers (CMU poses; test-only texts)."""
    poses = torch.as_tensor(load_cmu_dev_poses()[:N_VAL])
    criteria = {"fixture": True}
    write_caches(
        CacheDestination(cache_dir, "synthscript", VERSION, "val", N_VAL),
        [
            poses_cache(
                criteria,
                poses={i: poses[k] for k, i in enumerate(VAL_IDS)},
                shapes={i: torch.zeros(10) for i in VAL_IDS},
                heading_rotation={i: torch.zeros(3) for i in VAL_IDS},
            ),
            rawtexts_cache(criteria, {i: [f"val text {i} a", f"val text {i} b", "c"] for i in VAL_IDS}),
        ],
    )
    pairs = {0: [VAL_IDS[0], VAL_IDS[1]], 1: [VAL_IDS[2], VAL_IDS[3]]}
    write_caches(
        CacheDestination(cache_dir, "synthfix", FIX_VERSION, "val", N_VAL),
        [
            pairs_cache(criteria, pairs, {0: "in", 1: "out"}),
            rawtexts_cache(criteria, {0: ["val instruction 0"], 1: ["val instruction 1"]}),
        ],
    )


def _config(cache_dir, n_train: int = 40, **kwargs) -> PosePoolConfig:
    return PosePoolConfig(VERSION, n_train, chunk_size=16, pool_factor=2.0, cache_dir=cache_dir, **kwargs)


@pytest.fixture(scope="module")
def pools(body_model):
    cache_dir = config.DATA_CACHE_DIR
    _write_val_split(cache_dir)
    cfg = _config(cache_dir)
    return cfg, generate_pools(cfg, body_model, progress=False)


def test_names_parse_to_pose_only_families(pools):
    cfg, stats = pools
    assert stats["poses_dataset"] == poses_dataset_name(VERSION) == f"synthposes-{VERSION}"
    assert stats["pairs_dataset"] == pairs_dataset_name(VERSION) == f"synthpairs-{FIX_VERSION}"
    family, source = parse_dataset_name(stats["poses_dataset"])
    assert family.dataset_class is PosePoolDatasetScript and source.version == VERSION
    family, source = parse_dataset_name(stats["pairs_dataset"])
    assert family.dataset_class is PosePoolDatasetFix
    assert (source.script_family, source.script_version) == ("synthposes", VERSION)
    assert script_version_of(f"synthscript-{VERSION}") == script_version_of(VERSION) == VERSION
    with pytest.raises(ValueError, match="synthpairs-nodash: a fix dataset name"):
        parse_dataset_name("synthpairs-nodash")


def test_train_split_has_n_poses_with_k_captions_and_pairs(pools):
    cfg, stats = pools
    train = get_dataset(stats["poses_dataset"], "train", item_format="pt")
    assert len(train) == cfg.n_train == 40 and train.data_ids == list(range(40))
    assert all(len(train.captions_of(i)) == 3 for i in train.data_ids)
    pairs = get_dataset(stats["pairs_dataset"], "train", item_format="pt")
    assert len(pairs) == stats["n_pairs"] > 0
    item = pairs[0]
    assert item["poses_A"].shape == item["poses_B"].shape == (22, 3) and item["raw_texts"]


def test_val_split_is_the_script_and_fix_val_split(pools):
    _, stats = pools
    pool_val = get_dataset(stats["poses_dataset"], "val", item_format="pt", caption_selection="rand", seed=1)
    script_val = get_dataset(f"synthscript-{VERSION}", "val", item_format="pt", caption_selection="rand", seed=1)
    assert pool_val.data_ids == script_val.data_ids == VAL_IDS
    for a, b in zip(pool_val, script_val, strict=True):
        assert torch.equal(a["poses"], b["poses"]) and a["raw_texts"] == b["raw_texts"]
    for data_id in VAL_IDS:
        assert pool_val.captions_of(data_id) == script_val.captions_of(data_id)
    pair_val = get_dataset(stats["pairs_dataset"], "val", item_format="pt")
    fix_val = get_dataset(f"synthfix-{FIX_VERSION}", "val", item_format="pt")
    assert pair_val.pair_ids == fix_val.pair_ids
    for a, b in zip(pair_val, fix_val, strict=True):
        assert a["raw_texts"] == b["raw_texts"] and torch.equal(a["poses_B"], b["poses_B"])


@pytest.mark.parametrize("item_format", ["p", "pt"])
def test_pose_item_formats(pools, item_format):
    _, stats = pools
    item = get_dataset(stats["poses_dataset"], "train", item_format=item_format)[3]
    assert item["poses"].shape == (22, 3) and item["shapes"].shape == (10,)
    assert ("raw_texts" in item) == ("t" in item_format)


@pytest.mark.parametrize(
    "kwargs", [{"item_format": "ipt"}, {"item_format": "i"}, {"item_format": "p", "keypoints_2d": True}]
)
def test_images_are_refused_naming_the_dataset(pools, kwargs):
    _, stats = pools
    for name in (stats["poses_dataset"], stats["pairs_dataset"]):
        with pytest.raises(ValueError, match=f"{name} is a pose-only pool"):
            get_dataset(name, "train", **kwargs)


def test_poses_are_normalised_like_the_script_dataset(pools):
    """Stored y-up and heading-normalised: the dataset's z-up pose equals the script dataset's normalisation."""
    from poseembroider.datasets.pose_processing import normalize_poses

    _, stats = pools
    ds = get_dataset(stats["poses_dataset"], "train", item_format="p")
    raw = load_cache(ds.source.cache_path("train", "poses"), "poses")["poses"][7][:22]
    assert torch.allclose(ds[7]["poses"], normalize_poses(raw[None], "bedlam")[0])


def test_same_settings_same_files_and_prefix_pools(pools, tmp_path, body_model):
    cfg, _ = pools
    _write_val_split(tmp_path)
    other = generate_pools(_config(tmp_path), body_model, progress=False)
    assert not other["reused"]
    tables = [("synthposes", VERSION, "poses"), ("synthposes", VERSION, "rawtexts")]
    tables += [("synthpairs", FIX_VERSION, "pairs"), ("synthpairs", FIX_VERSION, "rawtexts")]
    for family, version, kind in tables:
        a = load_cache(CacheDestination(cfg.cache_dir, family, version, "train", 40).path(kind))
        b = load_cache(CacheDestination(tmp_path, family, version, "train", 40).path(kind))
        key = {"poses": "poses", "rawtexts": "texts", "pairs": "pair_2_dataid"}[kind]
        assert list(a[key]) == list(b[key])
        for k in a[key]:
            va, vb = a[key][k], b[key][k]
            assert torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb
    # a smaller pool is the prefix of the larger one (same chunks), and replaces it in the folder
    smaller = generate_pools(_config(tmp_path, n_train=24, pairs=False), body_model, progress=False)
    assert smaller["pairs_dataset"] is None
    small = load_cache(CacheDestination(tmp_path, "synthposes", VERSION, "train", 24).path("poses"))["poses"]
    large = load_cache(CacheDestination(cfg.cache_dir, "synthposes", VERSION, "train", 40).path("poses"))["poses"]
    assert all(torch.equal(small[i], large[i]) for i in range(24))
    assert not CacheDestination(tmp_path, "synthposes", VERSION, "train", 40).path("poses").exists()
    assert not list(tmp_path.glob("synthpairs_*_split_train_*"))  # pairs of the replaced pool are gone too


def test_second_call_reuses_the_caches(pools, body_model):
    cfg, _ = pools
    path = CacheDestination(cfg.cache_dir, "synthposes", VERSION, "train", 40).path("poses")
    before = path.stat().st_mtime_ns
    again = generate_pools(cfg, body_model, progress=False)
    assert again["reused"] and path.stat().st_mtime_ns == before


def test_k_captions_per_pose(tmp_path, body_model):
    _write_val_split(tmp_path)
    cfg = PosePoolConfig(
        VERSION, 5, captions_per_pose=4, pairs=False, chunk_size=8, pool_factor=1.5, cache_dir=tmp_path
    )
    generate_pools(cfg, body_model, progress=False)
    texts = load_cache(CacheDestination(tmp_path, "synthposes", VERSION, "train", 5).path("rawtexts"))["texts"]
    assert len(texts) == 5 and all(len(t) == 4 and all(t) for t in texts.values())
    assert all(len(set(t)) > 1 for t in texts.values())


def test_missing_script_dataset_is_named(tmp_path, body_model):
    with pytest.raises(CacheError, match=f"val split of synthscript-{VERSION}.*data synth"):
        generate_pools(_config(tmp_path), body_model, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_train": 0}, "--n-train"),
        ({"captions_per_pose": 0}, "--captions-per-pose"),
        ({"pool_factor": 0.5}, "--pool-factor"),
        ({"chunk_size": 1}, "--chunk-size"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    settings = {"n_train": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        PosePoolConfig(VERSION, **settings)


def test_cli_errors_name_the_flag(capsys, tmp_path, monkeypatch):
    assert main(["data", "pools", "--script-dataset", "synthfix-a-b", "--n-train", "4"]) == 2
    assert "--script-dataset" in capsys.readouterr().err
    monkeypatch.setattr(config, "DATA_CACHE_DIR", tmp_path)
    assert main(["data", "pools", "--script-dataset", f"synthscript-{VERSION}", "--n-train", "4"]) == 2
    assert "poseembroider data synth" in capsys.readouterr().err


def test_chunk_seeds_differ_from_script_split_seeds():
    cfg = PosePoolConfig(VERSION, 10, cache_dir=".")
    seeds = {cfg.chunk_seed(c) for c in range(64)}
    assert len(seeds) == 64 and not seeds & set(range(1000))
    assert np.all(np.array(sorted(seeds)) >= 0)
