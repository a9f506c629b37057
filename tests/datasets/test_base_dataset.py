import pytest
import torch
from torch.utils.data import DataLoader

from poseembroider.datasets.cache_format import CacheError
from poseembroider.datasets.pose_processing import flip_poses, normalize_poses
from poseembroider.datasets.registry import get_dataset


def test_script_items_have_documented_keys_dtypes_shapes(tiny_synth_dataset):
    ds = get_dataset(tiny_synth_dataset["script"], "train", item_format="ipt")
    assert len(ds) == 6 and ds.data_ids == tiny_synth_dataset["ids"]
    item = ds[0]
    assert item["images"].shape == (3, 256, 192) and item["images"].dtype == torch.float32
    assert 0.0 <= item["images"].min() and item["images"].max() <= 1.0
    assert item["poses"].shape == (22, 3) and item["poses"].dtype == torch.float32
    assert item["shapes"].shape == (10,)
    assert isinstance(item["raw_texts"], str) and item["data_ids"] == tiny_synth_dataset["ids"][0]
    assert item["cam_rot"].shape == (3,) and item["flipped"] is False


def test_item_format_limits_what_is_loaded(tiny_synth_dataset):
    item = get_dataset(tiny_synth_dataset["script"], "train", item_format="p")[1]
    assert "poses" in item and "images" not in item and "raw_texts" not in item


def test_cam_rot_comes_from_the_images_cache_whatever_the_item_format(tiny_synth_dataset):
    name = tiny_synth_dataset["script"]
    with_images, poses_only = get_dataset(name, "train", item_format="ip"), get_dataset(name, "train", item_format="p")
    for index in range(3):
        assert poses_only[index]["cam_rot"].abs().sum() > 0  # a real camera, not the identity
        torch.testing.assert_close(poses_only[index]["cam_rot"], with_images[index]["cam_rot"], rtol=0, atol=0)


def test_poses_are_normalised_to_the_z_up_frame(tiny_synth_dataset):
    ds = get_dataset(tiny_synth_dataset["script"], "train", item_format="p")
    stored = torch.as_tensor(tiny_synth_dataset["poses"][2])
    torch.testing.assert_close(ds[2]["poses"], normalize_poses(stored, "bedlam"))


def test_caption_selection_modes(tiny_synth_dataset):
    name = tiny_synth_dataset["script"]
    mix = get_dataset(name, "train", item_format="t", caption_selection="deterministic-mix")
    assert [mix[i]["raw_texts"].split()[3] for i in range(3)] == ["b", "c", "a"]  # data ids 10, 11, 12 -> id % 3
    fixed = get_dataset(name, "train", item_format="t", caption_selection=2)
    assert fixed[0]["raw_texts"].endswith(" c")
    rand = get_dataset(name, "train", item_format="t", caption_selection="rand", seed=0)
    assert len({rand[0]["raw_texts"] for _ in range(30)}) == 3


def test_captions_of_gives_every_caption_in_stored_order(tiny_synth_dataset):
    ds = get_dataset(tiny_synth_dataset["script"], "train", item_format="t", caption_selection=0)
    captions = ds.captions_of(ds.data_ids[0])
    assert len(captions) == 3 and [c.split()[3] for c in captions] == ["a", "b", "c"]
    assert captions[0] == ds[0]["raw_texts"]
    with pytest.raises(ValueError, match="loaded without texts \\(item format 'p'\\)"):
        get_dataset(tiny_synth_dataset["script"], "train", item_format="p").captions_of(ds.data_ids[0])


def test_training_augmentation_changes_images_but_not_shapes(tiny_synth_dataset):
    ds = get_dataset(tiny_synth_dataset["script"], "train", item_format="i", img_processing="smplerx_train")
    a, b = ds[0]["images"], ds[0]["images"]
    assert a.shape == b.shape == (3, 256, 192) and not torch.equal(a, b)


def test_lr_flip_mirrors_pose_and_image(tiny_synth_dataset, monkeypatch):
    import poseembroider.text.text_flip as text_flip

    monkeypatch.setattr(text_flip, "flip_text", lambda t: t.replace("left", "right"))
    name = tiny_synth_dataset["script"]
    plain = get_dataset(name, "train", item_format="ipt")[0]
    flipped = get_dataset(name, "train", item_format="ipt", lr_flip_probability=1.0)[0]
    assert flipped["flipped"] is True
    torch.testing.assert_close(flipped["poses"], flip_poses(plain["poses"]))
    torch.testing.assert_close(flipped["images"], plain["images"].flip(-1))
    assert "right arm" in flipped["raw_texts"] or flipped["raw_texts"] == plain["raw_texts"].replace("left", "right")


def test_fix_pairs(tiny_synth_dataset):
    ds = get_dataset(tiny_synth_dataset["fix"], "train", item_format="pt")
    assert len(ds) == 2  # the pair whose instructions are all empty is dropped
    item = ds[0]
    assert item["sequence_kind"] == "in" and item["pair_ids"] == 0
    assert item["poses_A"].shape == item["poses_B"].shape == (22, 3)
    assert item["data_ids_A"] == tiny_synth_dataset["ids"][0] and item["data_ids_B"] == tiny_synth_dataset["ids"][1]
    assert item["raw_texts"] == "fixture instruction zero"
    assert ds[1]["sequence_kind"] == "out"
    out_only = get_dataset(tiny_synth_dataset["fix"], "train", item_format="p", pair_kinds=("out",))
    assert len(out_only) == 2  # without texts, the empty-instruction pair stays


def test_dataloader_with_two_workers(tiny_synth_dataset):
    ds = get_dataset(tiny_synth_dataset["script"], "train", item_format="ipt")
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert [b["images"].shape[0] for b in batches] == [4, 2]
    assert batches[0]["poses"].shape == (4, 22, 3) and len(batches[0]["raw_texts"]) == 4
    fix = get_dataset(tiny_synth_dataset["fix"], "train", item_format="ip")
    (batch,) = list(DataLoader(fix, batch_size=8, num_workers=2))
    assert batch["images_A"].shape == (3, 3, 256, 192) and batch["poses_B"].shape == (3, 22, 3)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset name 'nosuch-x'.*synthscript"):
        get_dataset("nosuch-x", "train")


def test_missing_cache_is_named(tiny_synth_dataset):
    with pytest.raises(CacheError, match=r"no '(images|poses)' cache for synthscript-fixture_\w+ split 'val'"):
        get_dataset(tiny_synth_dataset["script"], "val")


def test_corrupt_image_is_named(tiny_synth_dataset, tmp_path, monkeypatch):
    ds = get_dataset(tiny_synth_dataset["script"], "train", item_format="i")
    path = ds.source.image_root / ds._images["images"][ds.data_ids[0]]
    backup = path.read_bytes()
    try:
        path.write_bytes(b"not a png")
        with pytest.raises(ValueError, match=f"corrupt or unreadable image file: {path}"):
            ds[0]
    finally:
        path.write_bytes(backup)


def test_bad_item_format():
    from poseembroider.datasets.base_dataset import _parse_item_format

    with pytest.raises(ValueError, match="item_format 'ix'"):
        _parse_item_format("ix")


def test_dataloader_workers_make_their_own_random_draws(tiny_synth_dataset):
    ds = get_dataset(tiny_synth_dataset["script"], "train", item_format="p", lr_flip_probability=0.5, seed=0)
    assert len(ds) == 6
    patterns = []
    for seed in range(4):
        loader = DataLoader(ds, batch_size=3, num_workers=2, generator=torch.Generator().manual_seed(seed))
        first, second = (batch["flipped"].tolist() for batch in loader)  # one batch per worker
        patterns.append((first, second))
    # copies of one generator would flip the same positions in both workers, whatever the loader seed
    assert any(first != second for first, second in patterns)
    assert len(set(map(str, patterns))) > 1  # and the draws follow the loader's seed


@pytest.mark.parametrize("probability", [float("nan"), -0.1, 1.5, float("inf")])
def test_lr_flip_probability_must_be_a_probability(tiny_synth_dataset, probability):
    # NaN used to flip every item: `random() >= nan` is False.
    with pytest.raises(ValueError, match="lr_flip_probability.*finite in \\[0, 1\\]"):
        get_dataset(tiny_synth_dataset["script"], "train", item_format="p", lr_flip_probability=probability)
