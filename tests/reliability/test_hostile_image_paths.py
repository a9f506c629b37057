"""Dataset caches whose image paths climb out of their image root.

An images cache maps data ids to paths relative to the dataset's image root; the loaders open those files
and the demos show them. A cache naming `../../etc/passwd`, an absolute path or a path through a symlink
that leaves the root must be refused, naming the cache file and the entry: lexical escapes (absolute, `..`,
not a string, empty, NUL) when the cache is read (`cache_format.check_image_entries`, from `load_cache`),
symlinks when the image is opened (`cache_format.image_file`). Readers tried: the single-element and pair
dataset classes (items, 2D keypoints) and the instruction-generation pair check. Controls: a symlink that
stays inside the root and an image root that is itself a symlink still load.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poseembroider.datasets.base_dataset import DatasetSource, TriModalDatasetFix, TriModalDatasetScript
from poseembroider.datasets.cache_format import CacheError, cache_file_name, save_cache

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VERSION = "hostilepaths"
IDS = (11, 12)


def _write_world(folder: Path, entry: object, bad_id: int = IDS[1]) -> DatasetSource:
    """Caches of two samples (script) and one pair (fix) in `folder/cache`; images in `folder/root`; the images
    entry of `bad_id` is `entry`. A file `folder/outside/secret.png` lies outside the root."""
    cache, root, outside = folder / "cache", folder / "root", folder / "outside"
    for d in (cache, root / "images", outside):
        d.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(np.full((64, 48, 3), 120, np.uint8))
    picture.save(outside / "secret.png")
    images = {}
    for data_id in IDS:
        picture.save(root / "images" / f"{data_id}.png")
        images[data_id] = f"images/{data_id}.png"
    images[bad_id] = entry
    criteria = {"test": "hostile image paths"}
    name = lambda family, kind: cache / cache_file_name(family, VERSION, "val", kind)  # noqa: E731
    save_cache(
        {
            "criteria": criteria,
            "images": images,
            "bboxes": {i: [0, 0, 48, 64] for i in IDS},
            "full_human_visibility": {i: True for i in IDS},
            "camera_transformation": {i: (torch.zeros(3), torch.zeros(3)) for i in IDS},
            "joints_2d": {i: torch.full((22, 2), 10.0) for i in IDS},
        },
        name("synthscript", "images"),
    )
    save_cache(
        {
            "criteria": criteria,
            "poses": {i: torch.zeros(52, 3) for i in IDS},
            "shapes": {i: torch.zeros(11) for i in IDS},
        },
        name("synthscript", "poses"),
    )
    save_cache(
        {"criteria": criteria, "pair_2_dataid": {7: list(IDS)}, "sequence_info": {7: "out"}}, name("synthfix", "pairs")
    )
    return DatasetSource("synthscript", VERSION, cache, root)


def _fix(source: DatasetSource) -> DatasetSource:
    return DatasetSource("synthfix", VERSION, source.cache_dir, source.image_root, "bedlam", "synthscript", VERSION)


def _readers(source: DatasetSource) -> dict[str, object]:
    """Each way an image of the cache is reached; each returns what it read."""
    return {
        "script dataset item": lambda: TriModalDatasetScript(source, "val", item_format="ip")[1],
        "script dataset 2D keypoints": lambda: TriModalDatasetScript(source, "val", item_format="p", keypoints_2d=True)[
            1
        ],
        "pair dataset item": lambda: TriModalDatasetFix(_fix(source), "val", item_format="ip")[0],
    }


LEXICAL = {
    "../../etc/passwd": "../../etc/passwd",
    "'..' after a folder": "images/../../outside/secret.png",
    "absolute path": "/etc/passwd",
    "absolute path to a real picture": None,  # filled with the outside picture's absolute path
    "empty entry": "",
    "an int": 5,
    "None": None,
    "NUL byte": "images/11.png\0.jpg",
}


@pytest.mark.reliability(
    area="hostile_files", subject="dataset caches with image paths leaving the root ('..', absolute)"
)
def test_an_entry_leaving_the_image_root_is_refused_naming_the_cache_and_entry(tmp_path, cases):
    for k, (name, entry) in enumerate(LEXICAL.items()):
        folder = tmp_path / f"case_{k}"
        if name == "absolute path to a real picture":
            entry = str(folder / "outside" / "secret.png")
        source = _write_world(folder, entry)
        cache = source.cache_dir / cache_file_name("synthscript", VERSION, "val", "images")
        for reader, read in _readers(source).items():
            cases.tried()
            with pytest.raises(CacheError) as err:
                read()
            message = str(err.value)
            assert str(cache) in message and repr(entry) in message and "12" in message, f"{name}, {reader}: {message}"


def _symlinks(folder: Path) -> dict[str, tuple[str, bool]]:
    """name -> (images entry, whether it leaves the root): symlinks made inside `folder/root`."""
    root, outside = folder / "root", folder / "outside"
    (root / "images" / "escape.png").symlink_to(outside / "secret.png")
    (root / "images" / "out_dir").symlink_to(outside, target_is_directory=True)
    (root / "images" / "relative_escape.png").symlink_to(Path("..") / ".." / "outside" / "secret.png")
    (root / "images" / "inside.png").symlink_to(root / "images" / "11.png")
    return {
        "file symlink to a file outside": ("images/escape.png", True),
        "folder symlink to a folder outside": ("images/out_dir/secret.png", True),
        "relative symlink climbing out": ("images/relative_escape.png", True),
        "symlink to a file inside (control)": ("images/inside.png", False),
    }


@pytest.mark.reliability(
    area="hostile_files", subject="dataset caches with image paths through symlinks leaving the root"
)
def test_a_symlink_leaving_the_image_root_is_refused_when_the_image_is_opened(tmp_path, cases):
    names = _symlinks(_write_world(tmp_path / "probe", "images/12.png").image_root.parent)
    for k, name in enumerate(names):
        folder = tmp_path / f"case_{k}"
        _write_world(folder, "images/12.png")
        entry, leaves = _symlinks(folder)[name]
        source = _write_world(folder, entry)  # rewrite the caches with the symlinked entry
        cache = source.cache_dir / cache_file_name("synthscript", VERSION, "val", "images")
        for reader, read in _readers(source).items():
            cases.tried()
            if not leaves:
                read()  # a symlink inside the root is fine
                continue
            with pytest.raises(CacheError) as err:
                read()
            message = str(err.value)
            assert str(cache) in message and repr(entry) in message and "outside the image root" in message, (
                f"{name}, {reader}: {message}"
            )


@pytest.mark.reliability(area="hostile_files", subject="dataset caches: an image root that is a symlink (control)")
def test_an_image_root_that_is_itself_a_symlink_still_loads(tmp_path, cases):
    source = _write_world(tmp_path / "real", "images/12.png")
    link = tmp_path / "linked_root"
    os.symlink(source.image_root, link)
    linked = DatasetSource(source.family, source.version, source.cache_dir, link)
    for read in _readers(linked).values():
        cases.tried()
        read()


@pytest.mark.reliability(area="hostile_files", subject="instruction generation: pair images leaving the root")
def test_the_pair_image_check_refuses_an_entry_leaving_the_root(tmp_path, cases, monkeypatch):
    from poseembroider.downstream.instruction_generation import data

    for k, entry in enumerate(("../../etc/passwd", "images/escape.png")):
        folder = tmp_path / f"case_{k}"
        _symlinks(_write_world(folder, "images/12.png").image_root.parent)
        source = _write_world(folder, entry)
        monkeypatch.setattr(data, "parse_dataset_name", lambda name, source=source: ("synthfix", _fix(source)))
        cache = source.cache_dir / cache_file_name("synthscript", VERSION, "val", "images")
        cases.tried()
        with pytest.raises(CacheError) as err:
            data.check_pair_images(f"synthfix-{VERSION}", "val", [7])
        assert str(cache) in str(err.value) and repr(entry) in str(err.value), str(err.value)
