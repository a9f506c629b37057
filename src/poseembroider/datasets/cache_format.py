"""Processed dataset caches: names, contents, safe reading and atomic writing.

The layout is the one of the processed BEDLAM-Script / BEDLAM-Fix caches of the original pipeline: one
file per (dataset version, split, kind), each a dict with the selection `criteria` and per-data-id
tables. Synthetic datasets are written in exactly the same layout, so every loader reads both.

| kind | content |
| --- | --- |
| `images` | criteria, bboxes {id: [x1, y1, x2, y2]} in the stored image, images {id: relative path}, full_human_visibility {id: bool}, camera_transformation {id: (cam_rot (3,), transl (3,))} |
| `poses` | criteria, poses {id: (52, 3) axis-angles}, shapes {id: (11,) betas} |
| `rawtexts` | criteria, texts {id: [str, str, str]} (pair ids for fix datasets) |
| `tokenizedtexts_tokenizer_<name>` | criteria, texts_tokens {id: [LongTensor (L,)]}, texts_length {id: [int]}, tokenizer_name |
| `pairs` (fix datasets) | criteria, pair_2_dataid {pair_id: [id_A, id_B]}, sequence_info {pair_id: 'in' / 'out'} |

Deliberate change: the original stored these as Python pickles. Ours are `torch.save` files holding only
tensors, numbers, strings, lists, tuples and dicts, read back with `torch.load(weights_only=True)`, so a
cache file can never run code. Synthetic datasets add optional tables (e.g. `frame_bboxes`,
`joints_visibility`, `sequence_info`); readers ignore tables they do not know.
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path
from typing import Any

import torch

from poseembroider.atomic_io import atomic_file

CACHE_SUFFIX = ".pt"

REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "images": ("criteria", "bboxes", "images", "full_human_visibility", "camera_transformation"),
    "poses": ("criteria", "poses", "shapes"),
    "rawtexts": ("criteria", "texts"),
    "pairs": ("criteria", "pair_2_dataid", "sequence_info"),
}
"""Tables every cache of a kind must hold (tokenized caches: see `tokenized_kind`)."""


class CacheError(ValueError):
    """A cache file that is missing, unreadable or lacks a table."""


def tokenized_kind(tokenizer_name: str) -> str:
    return f"tokenizedtexts_tokenizer_{tokenizer_name}"


def cache_file_name(family: str, version: str, split: str, kind: str, reduced_size: int | None = None) -> str:
    """`{family}_version_{version}_split_{split}_{kind}[_reduced_{N}].pt`, the original's naming.

    `family` is e.g. 'bedlamscript', 'bedlamfix', 'synthscript', 'synthfix'; `version` the criteria
    string (e.g. 'overlap30_res224_j16_sf11'); `reduced_size` the farthest-point-sampled size.
    """
    reduced = "" if reduced_size is None else f"_reduced_{reduced_size}"
    return f"{family}_version_{version}_split_{split}_{kind}{reduced}{CACHE_SUFFIX}"


def save_cache(data: dict[str, Any], path: Path) -> Path:
    """Write a cache atomically (temporary file in the same folder, then rename), with `save_torch_file`."""
    return save_torch_file(data, path)


def save_torch_file(data: Any, path: str | Path) -> Path:
    """`torch.save(data)` to `path` atomically, the same bytes for the same content whichever process wrote it.

    The one writer of the toolkit's `.pt` files (caches, training states). `torch.save` to a path names the
    archive's inner folder after the file, here a temporary name random per call; pickle writes a string once
    and then refers back to it only where it is the same object, so equal strings of other origins (a table
    read back from a work file, an optimizer state loaded on resume) change the bytes. So the file is written
    through an open handle (inner folder `archive/`) and the containers are rebuilt with every string
    interned first (`_canonical`): a resumed job writes byte for byte what an uninterrupted one does."""
    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        torch.save(_canonical(data), handle)
    return path


def _canonical(value: Any) -> Any:
    """`value` with its dicts, lists and tuples rebuilt and every string interned (see `save_torch_file`);
    tensors and other leaves are kept as they are."""
    if isinstance(value, str):
        return sys.intern(value) if type(value) is str else value
    if type(value) in (dict, collections.OrderedDict):
        return type(value)((_canonical(k), _canonical(v)) for k, v in value.items())
    if type(value) is list:
        return [_canonical(v) for v in value]
    if type(value) is tuple:
        return tuple(_canonical(v) for v in value)
    return value


def unsafe_load_reason(err: BaseException) -> str:
    """One line saying why `torch.load(weights_only=True)` failed: the pickled globals or opcodes it refused, or
    the first line of any other error. Torch's own message begins by advising `weights_only=False`, which would
    run whatever the file carries: that advice is not passed on."""
    text = str(err)
    names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", text)))
    if names:
        return f"it carries pickled code or objects ({', '.join(names)}), which are never unpickled"
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if detail:
        return f"it is not plain tensors and containers ({detail.group(1).strip()[:200]}): refused"
    first = text.strip().splitlines()[0][:300] if text.strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def check_image_entries(images: Any, path: Path) -> None:
    """Refuse an `images` table (data id -> path relative to the image root) with an entry that is not a
    relative path inside the root: not a string, empty, absolute, or climbing with `..` (a cache pointing at
    `../../etc/passwd` would have the loaders read, and the demos show, any file). `CacheError` naming the
    cache file, the data id and the entry. Symlinks are checked when an image is opened (`image_file`)."""
    if not isinstance(images, dict):
        raise CacheError(f"{path}: table 'images' is a {type(images).__name__}, expected {{data id: relative path}}")
    for data_id, entry in images.items():
        if not isinstance(entry, str) or not entry or "\0" in entry:
            raise CacheError(f"{path}: images[{data_id!r}] is {entry!r}, expected a path relative to the image root")
        if entry.startswith("/") or ".." in entry.split("/"):
            raise CacheError(
                f"{path}: images[{data_id!r}] is {entry!r}, which leaves the image root (absolute or '..'): refused"
            )


def image_file(image_root: Path, entry: str, cache: Path | str, data_id: Any) -> Path:
    """The file of the `images` entry `entry` (of data id `data_id`) under `image_root`, refused with a
    `CacheError` naming the cache file, the data id and the entry when it resolves outside the root: an
    absolute path, a `..`, or a symlink inside the root that points elsewhere."""
    root = Path(image_root)
    file = root / entry
    real_root, real = root.resolve(), file.resolve()
    if entry.startswith("/") or not real.is_relative_to(real_root):
        raise CacheError(
            f"{cache}: images[{data_id!r}] = {entry!r} resolves to {real}, outside the image root {real_root}: "
            "refused (a symlink or '..' leaving the root)"
        )
    return file


def load_cache(path: Path, kind: str | None = None, *, mmap: bool = False) -> dict[str, Any]:
    """Read a cache without unpickling code; check the tables of `kind` are present. `mmap`: tensors stay
    memory-mapped (`torch.load(mmap=True)`) until used. Every `torch.save` table of the package (caches, the
    work tables of `data synth` and BEDLAM processing) is read here, so a hostile or corrupt one is refused
    the same way.

    Raises `CacheError` naming the file, and the missing table if any.
    """
    path = Path(path)
    if not path.is_file():
        raise CacheError(f"cache file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # noqa: BLE001 - torch raises many types for corrupt or unsafe files
        raise CacheError(f"{path}: cannot be read as a safe cache file ({unsafe_load_reason(err)})") from None
    if not isinstance(data, dict):
        raise CacheError(f"{path}: expected a dict of tables, got {type(data).__name__}")
    required = REQUIRED_TABLES.get(kind, ()) if kind else ()
    if kind and kind.startswith("tokenizedtexts_tokenizer_"):
        required = ("criteria", "texts_tokens", "texts_length", "tokenizer_name")
    missing = [table for table in required if table not in data]
    if missing:
        raise CacheError(f"{path}: missing key(s) {missing} for a '{kind}' cache (has {sorted(data)})")
    if kind == "images":
        check_image_entries(data["images"], path)
    return data
