"""`cache_writers`: what it writes the loaders read back, bad tables are refused naming the field, and a
failed write leaves nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from poseembroider import config
from poseembroider.datasets import cache_writers
from poseembroider.datasets.cache_format import cache_file_name, load_cache, tokenized_kind
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    CacheInputError,
    images_cache,
    pairs_cache,
    poses_cache,
    rawtexts_cache,
    tokenized_texts_cache,
    write_cache,
    write_caches,
)
from poseembroider.datasets.registry import get_dataset, synth_image_root

SCRIPT_VERSION = "writer_overlap30_res224_j16_sf11"
FIX_VERSION = SCRIPT_VERSION + "-in15_out20_t05_sim0709"
IDS = [3, 7, 11, 20]
CRITERIA = {"overlap_threshold": 0.3, "scale_factor": 1.1, "generator": "test"}


def _tables(n_ids: int = len(IDS)) -> dict:
    """Per-id inputs of a small script dataset, as a producer hands them over (body-only poses, 10 betas)."""
    ids = IDS[:n_ids]
    gen = torch.Generator().manual_seed(0)
    return {
        "images": {i: f"images/train/{i:06d}.png" for i in ids},
        "bboxes": {i: [0.0, 0.0, 64.0, 96.0] for i in ids},
        "full_human_visibility": {i: i % 2 == 1 for i in ids},
        "camera_transformation": {i: (0.1 * torch.randn(3, generator=gen), torch.randn(3, generator=gen)) for i in ids},
        "joints_2d": {i: 50 * torch.rand(22, 2, generator=gen) for i in ids},
        "poses": {i: 0.3 * torch.randn(22, 3, generator=gen) for i in ids},
        "shapes": {i: torch.randn(10, generator=gen) for i in ids},
        "heading_rotation": {i: torch.tensor([0.0, 0.1 * i, 0.0]) for i in ids},
        "texts": {i: [f"writer text {i} a", f"writer text {i} b"] for i in ids},
    }


def _script_caches(t: dict) -> list:
    return [
        images_cache(
            CRITERIA,
            images=t["images"],
            bboxes=t["bboxes"],
            full_human_visibility=t["full_human_visibility"],
            camera_transformation=t["camera_transformation"],
            joints_2d=t["joints_2d"],
        ),
        poses_cache(CRITERIA, poses=t["poses"], shapes=t["shapes"], heading_rotation=t["heading_rotation"]),
        rawtexts_cache(CRITERIA, t["texts"]),
    ]


def _script_destination(cache_dir=None) -> CacheDestination:
    return CacheDestination(cache_dir or config.DATA_CACHE_DIR, "synthscript", SCRIPT_VERSION, "train", len(IDS))


@pytest.fixture(scope="module")
def written() -> dict:
    """A script dataset and its fix dataset written by the writer into the (test) cache folder."""
    t = _tables()
    for rel in t["images"].values():
        path = synth_image_root(SCRIPT_VERSION) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((96, 64, 3), 128, np.uint8)).save(path)
    script_paths = write_caches(_script_destination(), _script_caches(t))
    fix_destination = CacheDestination(config.DATA_CACHE_DIR, "synthfix", FIX_VERSION, "train", len(IDS))
    pairs = {0: [3, 7], 1: [11, 20]}
    fix_paths = write_caches(
        fix_destination,
        [
            pairs_cache(CRITERIA, pairs, {0: "in", 1: "out"}),
            rawtexts_cache(CRITERIA, {0: ["move the left arm up"], 1: ["bend the knees"]}),
        ],
    )
    return {"tables": t, "script_paths": script_paths, "fix_paths": fix_paths, "pairs": pairs}


# ---- round trip -----------------------------------------------------------------------------------


def test_file_names_are_those_of_cache_format(written):
    names = [p.name for p in written["script_paths"]]
    assert names == [
        cache_file_name("synthscript", SCRIPT_VERSION, "train", k, len(IDS)) for k in ("images", "poses", "rawtexts")
    ]
    assert [p.name for p in written["fix_paths"]] == [
        cache_file_name("synthfix", FIX_VERSION, "train", k, len(IDS)) for k in ("pairs", "rawtexts")
    ]


def test_stored_tables_have_the_documented_types_and_shapes(written):
    t = written["tables"]
    images_path, poses_path, texts_path = written["script_paths"]
    images = load_cache(images_path, "images")
    assert images["criteria"] == CRITERIA
    assert list(images["images"]) == IDS and images["images"][3] == "images/train/000003.png"
    assert images["bboxes"][7] == [0.0, 0.0, 64.0, 96.0]
    assert images["full_human_visibility"] == {i: i % 2 == 1 for i in IDS}
    cam_rot, transl = images["camera_transformation"][11]
    torch.testing.assert_close(cam_rot, t["camera_transformation"][11][0], rtol=0, atol=0)
    assert transl.dtype == torch.float32 and transl.shape == (3,)
    poses = load_cache(poses_path, "poses")
    for i in IDS:
        assert poses["poses"][i].dtype == torch.float32 and poses["poses"][i].shape == (52, 3)
        assert torch.equal(poses["poses"][i][:22], t["poses"][i]) and not poses["poses"][i][22:].any()
        assert poses["shapes"][i].shape == (11,) and torch.equal(poses["shapes"][i][:10], t["shapes"][i])
        assert poses["shapes"][i][10] == 0
    assert torch.equal(poses["heading_rotation"][20], t["heading_rotation"][20])
    assert load_cache(texts_path, "rawtexts")["texts"] == t["texts"]


def test_the_datasets_read_what_was_written(written):
    script = get_dataset(f"synthscript-{SCRIPT_VERSION}", "train", item_format="ipt", keypoints_2d=True)
    assert script.data_ids == IDS
    item = script[1]
    assert item["data_ids"] == 7 and item["images"].shape == (3, 256, 192)
    assert item["poses"].shape == (22, 3) and item["shapes"].shape == (10,)
    assert item["raw_texts"] in written["tables"]["texts"][7]
    assert item["joints_2d_crop"].shape == (22, 2)
    fix = get_dataset(f"synthfix-{FIX_VERSION}", "train", item_format="pt")
    assert len(fix) == 2
    pair = fix[1]
    assert (pair["data_ids_A"], pair["data_ids_B"]) == tuple(written["pairs"][1])
    assert pair["sequence_kind"] == "out" and pair["raw_texts"] == "bend the knees"


def test_tokenized_texts_round_trip(tmp_path):
    tokens = {3: [torch.tensor([101, 7, 102]), torch.tensor([101, 102])], 7: [torch.tensor([101, 5, 6, 102])]}
    lengths = {3: [3, 2], 7: [4]}
    cache = tokenized_texts_cache(CRITERIA, tokens, lengths, "distilbertSynth")
    path = write_cache(_script_destination(tmp_path), cache)
    assert path.name == cache_file_name("synthscript", SCRIPT_VERSION, "train", tokenized_kind("distilbertSynth"), 4)
    data = load_cache(path, tokenized_kind("distilbertSynth"))
    assert data["tokenizer_name"] == "distilbertSynth" and data["texts_length"] == lengths
    assert all(torch.equal(a, b) for a, b in zip(data["texts_tokens"][3], tokens[3], strict=True))


def test_rows_of_a_large_tensor_are_stored_compactly(tmp_path):
    """A producer indexing rows of one big tensor must not write the whole tensor once per file."""
    big = torch.zeros(20_000, 22, 3)
    t = _tables()
    t["poses"] = {i: big[i] for i in IDS}
    path = write_cache(_script_destination(tmp_path), _script_caches(t)[1])
    assert path.stat().st_size < big.numel() * 4 / 10


# ---- refused inputs -------------------------------------------------------------------------------


def _with(key: str, value_for_id) -> dict:
    t = _tables()
    t[key] = {**t[key], 7: value_for_id}
    return t


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            _with("poses", torch.zeros(21, 3)),
            r"poses cache, table 'poses', id 7: expected shape \(22, 3\) or \(52, 3\), got \(21, 3\)",
        ),
        (_with("poses", torch.full((22, 3), float("nan"))), r"table 'poses', id 7: holds NaN"),
        (_with("shapes", torch.zeros(12)), r"table 'shapes', id 7: expected shape \(10,\) or \(11,\), got \(12,\)"),
        (
            _with("camera_transformation", (torch.zeros(3), torch.zeros(2))),
            r"table 'camera_transformation', id 7: .*got \(2,\)",
        ),
        (_with("bboxes", [10.0, 0.0, 5.0, 96.0]), r"table 'bboxes', id 7: expected x2 > x1"),
        (_with("images", "/abs/image.png"), r"table 'images', id 7: expected a path relative to the image root"),
        (_with("full_human_visibility", 1), r"table 'full_human_visibility', id 7: expected a bool"),
        (_with("joints_2d", torch.zeros(22, 3)), r"table 'joints_2d', id 7: expected shape \(J, 2\)"),
        (_with("texts", "one string, not a list"), r"rawtexts cache, table 'texts', id 7: expected a list of strings"),
        (_with("poses", torch.zeros(22, 3, dtype=torch.bool)), r"table 'poses', id 7: expected real numbers"),
    ],
)
def test_bad_values_are_refused_naming_the_table_and_the_id(tables, message, tmp_path):
    with pytest.raises(CacheInputError, match=message):
        write_caches(_script_destination(tmp_path), _script_caches(tables))
    assert not any(tmp_path.iterdir())


def test_a_table_with_other_ids_is_refused():
    t = _tables()
    del t["shapes"][11]
    with pytest.raises(CacheInputError, match=r"poses cache, table 'shapes': its ids differ .*1 missing, e.g. \[11\]"):
        poses_cache(CRITERIA, poses=t["poses"], shapes=t["shapes"])


def test_values_the_loaders_cannot_read_are_refused():
    t = _tables()
    with pytest.raises(CacheInputError, match=r"table 'sequence_info', id 3: numpy.float64 cannot be read back safely"):
        poses_cache(CRITERIA, poses=t["poses"], shapes=t["shapes"], sequence_info={i: np.float64(1.0) for i in IDS})
    with pytest.raises(CacheInputError, match=r"'criteria': numpy.ndarray cannot be read back safely"):
        rawtexts_cache({"window": np.zeros(2)}, t["texts"])
    with pytest.raises(CacheInputError, match=r"table 'texts': ids are integers, got 'a'"):
        rawtexts_cache(CRITERIA, {"a": ["text"]})


def test_pairs_and_tokens_are_checked():
    with pytest.raises(CacheInputError, match=r"table 'sequence_info', id 0: expected one of \('in', 'out'\)"):
        pairs_cache(CRITERIA, {0: [3, 7]}, {0: "sideways"})
    with pytest.raises(CacheInputError, match=r"table 'pair_2_dataid', id 0: expected \[id_A, id_B\]"):
        pairs_cache(CRITERIA, {0: [3, 7, 11]}, {0: "in"})
    with pytest.raises(
        CacheInputError, match=r"table 'texts_length', id 3: expected the token counts \[3\], got \[4\]"
    ):
        tokenized_texts_cache(CRITERIA, {3: [torch.tensor([1, 2, 3])]}, {3: [4]}, "tok")


def test_caches_written_together_must_agree(tmp_path):
    t = _tables()
    images, poses, _ = _script_caches(t)
    fewer_poses = poses_cache(CRITERIA, **{k: dict(list(t[k].items())[:3]) for k in ("poses", "shapes")})
    with pytest.raises(CacheInputError, match=r"images and poses caches hold different data ids \(0 only in poses"):
        write_caches(_script_destination(tmp_path), [images, fewer_poses])
    with pytest.raises(
        CacheInputError, match=r"rawtexts cache: 1 ids are not data ids of the poses cache, e.g. \[99\]"
    ):
        write_caches(_script_destination(tmp_path), [poses, rawtexts_cache(CRITERIA, {99: ["text"]})])
    with pytest.raises(CacheInputError, match=r"rawtexts cache: 1 ids are not pair ids of the pairs cache, e.g. \[5\]"):
        write_caches(
            _script_destination(tmp_path),
            [pairs_cache(CRITERIA, {0: [3, 7]}, {0: "in"}), rawtexts_cache(CRITERIA, {5: ["text"]})],
        )
    with pytest.raises(CacheInputError, match=r"two 'poses' caches"):
        write_caches(_script_destination(tmp_path), [poses, poses])
    assert not any(tmp_path.iterdir())


# ---- nothing half-written -------------------------------------------------------------------------


def test_a_failed_write_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    """The second file fails to save: no new cache lands, the previous ones keep their content, and no
    temporary file or folder is left beside them."""
    cache_dir = tmp_path / "cache"
    old = _tables()
    old_paths = write_caches(_script_destination(cache_dir), _script_caches(old))
    before = {p.name: p.read_bytes() for p in old_paths}
    new = _tables()
    new["texts"] = {i: ["new text"] for i in IDS}
    new["poses"] = {i: torch.ones(22, 3) for i in IDS}
    real_save, saved = torch.save, []

    def failing_save(obj, path, *args, **kwargs):
        if saved:
            raise OSError("disk full")
        saved.append(path)
        real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(cache_writers.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_caches(_script_destination(cache_dir), _script_caches(new))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir()} == before
