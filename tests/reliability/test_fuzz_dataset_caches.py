"""Bad inputs, dataset caches: the processed `.pt` caches (images, poses, rawtexts, pairs), read with the safe
loader (`load_cache`, `torch.load(weights_only=True)`), with a table removed or retyped, an entry of the wrong
shape, type or value (a pose of 10 joints, a box of 3 numbers, NaN betas, a caption that is not a string, a pair
of one id) or the file damaged: building the dataset and reading every item either works or raises an error
naming the cache file, never a raw error from inside the loaders (crop, normalisation, collate)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from reliability_strategies import FUZZ, FUZZ_SLOW, JSON_VALUES, JUNK_BYTES, damaged, expect_clear_error, fuzz

from poseembroider.datasets.base_dataset import DatasetSource, TriModalDatasetFix, TriModalDatasetScript
from poseembroider.datasets.cache_format import cache_file_name, save_cache

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VERSION = "fuzz_overlap30_res224_j16_sf11"
FIX_VERSION = VERSION + "-in15_out20_t05_sim0709"
IDS = (3, 4, 5, 6)


def _tables() -> dict[str, tuple[str, str, dict]]:
    """kind -> (family, version, content) of a tiny valid dataset."""
    poses = {i: torch.full((52, 3), 0.1 * k) for k, i in enumerate(IDS)}
    return {
        "images": (
            "synthscript",
            VERSION,
            {
                "criteria": {"fuzz": True},
                "bboxes": {i: [0, 0, 40, 60] for i in IDS},
                "images": {i: f"images/{i}.png" for i in IDS},
                "full_human_visibility": {i: True for i in IDS},
                "camera_transformation": {i: (torch.zeros(3), torch.zeros(3)) for i in IDS},
                "image_rotation": {i: 0 for i in IDS},
            },
        ),
        "poses": (
            "synthscript",
            VERSION,
            {
                "criteria": {},
                "poses": poses,
                "shapes": {i: torch.zeros(11) for i in IDS},
                "heading_rotation": {i: torch.zeros(3) for i in IDS},
            },
        ),
        "rawtexts": ("synthscript", VERSION, {"criteria": {}, "texts": {i: [f"text {i}", "b"] for i in IDS}}),
        "pairs": (
            "synthfix",
            FIX_VERSION,
            {"criteria": {}, "pair_2_dataid": {0: [3, 4], 1: [5, 6]}, "sequence_info": {0: "in", 1: "out"}},
        ),
        "fixtexts": ("synthfix", FIX_VERSION, {"criteria": {}, "texts": {0: ["move"], 1: ["bend"]}}),
    }


def _write(root, tables) -> dict[str, object]:
    """The caches under `root/cache`, images under `root/images`; returns the kind -> file map."""
    cache, images = root / "cache", root / "images"
    if root.exists():
        shutil.rmtree(root)
    (images / "images").mkdir(parents=True)
    for i in IDS:
        Image.fromarray(np.full((60, 40, 3), 10 * i, np.uint8)).save(images / "images" / f"{i}.png")
    files = {}
    for kind, (family, version, content) in tables.items():
        stored = "rawtexts" if kind == "fixtexts" else kind
        files[kind] = cache / cache_file_name(family, version, "train", stored, len(IDS))
        save_cache(content, files[kind])
    return files


def _read_everything(root) -> None:
    source = DatasetSource("synthscript", VERSION, root / "cache", root / "images")
    pairs = DatasetSource("synthfix", FIX_VERSION, root / "cache", root / "images", script_family="synthscript",
                          script_version=VERSION)  # fmt: skip
    for dataset in (TriModalDatasetScript(source, "train"), TriModalDatasetFix(pairs, "train")):
        for index in range(len(dataset)):
            item = dataset[index]
            for key, value in item.items():
                if key.startswith(("poses", "shapes", "cam_rot", "images")):
                    assert torch.isfinite(value).all(), key
            if "poses" in item:
                assert item["poses"].shape == (22, 3) and item["shapes"].shape == (10,)


ODD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [
            torch.zeros(10, 3),
            torch.zeros(52),
            torch.full((52, 3), float("nan")),
            torch.zeros(3),
            torch.zeros(4),
            torch.zeros(0),
            [1, 2, 3],
            [10, 10, 5, 5],
            [0, 0, 40, float("nan")],
            (torch.zeros(3),),
            (torch.zeros(2), torch.zeros(3)),
            ["a", 1],
            [3],
            [3, 99],
            "in",
            "sideways",
            45,
            np.zeros((52, 3), np.float32),
            torch.zeros(52, 3, dtype=torch.int64),
        ]
    ),
)


@st.composite
def table_edits(draw):
    """The tiny dataset with one table dropped or replaced, or one entry replaced, or one id key changed."""
    tables = _tables()
    kind = draw(st.sampled_from(sorted(tables)))
    content = tables[kind][2]
    table = draw(st.sampled_from(sorted(t for t in content if t != "criteria")))
    how = draw(st.sampled_from(["entry", "entry", "entry", "table", "drop", "key"]))
    if how == "drop":
        del content[table]
    elif how == "table":
        content[table] = draw(ODD_VALUES)
    elif how == "key" and isinstance(content[table], dict) and content[table]:
        key = next(iter(content[table]))
        content[table][draw(st.sampled_from(["3", 3.0, None, (3,)]))] = content[table].pop(key)
    elif isinstance(content[table], dict) and content[table]:
        key = draw(st.sampled_from(sorted(content[table])))
        content[table][key] = draw(ODD_VALUES)
    return tables, kind, table, how


def _fuzz_tables(tmp_path, cases, edit):
    tables, kind, table, how = edit
    cases.tried()
    files = _write(tmp_path / "world", tables)
    expect_clear_error(
        lambda: _read_everything(tmp_path / "world"), [str(f) for f in files.values()], f"{kind}.{table} {how}"
    )


@pytest.mark.reliability(area="bad_inputs", subject="dataset caches (.pt tables: keys, shapes, types)")
def test_cache_tables(tmp_path, cases):
    @FUZZ
    @given(edit=table_edits())
    def run(edit):
        _fuzz_tables(tmp_path, cases, edit)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="dataset caches (.pt tables: keys, shapes, types)")
def test_cache_tables_many(tmp_path, cases):
    @FUZZ_SLOW
    @given(edit=table_edits())
    def run(edit):
        _fuzz_tables(tmp_path, cases, edit)

    run()


def _valid_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(_tables()["poses"][2], buffer)
    return buffer.getvalue()


def _fuzz_bytes(tmp_path, cases, data):
    cases.tried()
    files = _write(tmp_path / "world", _tables())
    files["poses"].write_bytes(data)
    expect_clear_error(lambda: _read_everything(tmp_path / "world"), [str(files["poses"])], "poses cache bytes")


@pytest.mark.reliability(area="bad_inputs", subject="dataset caches (.pt bytes: truncated, random)")
def test_cache_bytes(tmp_path, cases):
    @fuzz(15)
    @given(data=st.one_of(JUNK_BYTES, damaged(_valid_bytes())))
    def run(data):
        _fuzz_bytes(tmp_path, cases, data)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="dataset caches (.pt bytes: truncated, random)")
def test_cache_bytes_many(tmp_path, cases):
    @FUZZ_SLOW
    @given(data=st.one_of(JUNK_BYTES, damaged(_valid_bytes())))
    def run(data):
        _fuzz_bytes(tmp_path, cases, data)

    run()
