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

import numpy as np
import torch

from poseembroider.atomic_io import atomic_file
from poseembroider.text.pose_files import MAX_AXIS_ANGLE_NORM

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
    if kind in TABLE_CHECKS:
        check_tables(data, kind, path)
    return data


# --------------------------------------------------------------------------- table contents


def _entries(data: dict[str, Any], table: str, path: Path) -> dict[Any, Any]:
    """Table `table` of a cache: a dict keyed by int ids (data ids or pair ids)."""
    entries = data[table]
    if not isinstance(entries, dict):
        raise CacheError(f"{path}: table {table!r} is a {type(entries).__name__}, expected {{id: value}}")
    bad = [k for k in entries if not isinstance(k, int) or isinstance(k, bool)]
    if bad:
        raise CacheError(f"{path}: table {table!r} has key(s) {bad[:3]!r} that are not int ids")
    return entries


def _numbers(value: Any, path: Path, where: str, finite: bool = True) -> np.ndarray:
    """`value` (tensor, array, list of numbers) as a float64 array; anything else is a CacheError naming `where`."""
    try:
        array = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        array = array.astype(np.float64, casting="same_kind" if array.dtype.kind == "f" else "unsafe")
    except (TypeError, ValueError, RuntimeError) as err:
        raise CacheError(f"{path}: {where} is {str(value)[:60]!r}, not numbers ({err})") from None
    if array.dtype.kind != "f" or (finite and not np.isfinite(array).all()):
        raise CacheError(f"{path}: {where} holds {'NaN / inf' if array.dtype.kind == 'f' else 'non-numbers'}")
    return array


def _finite(array: np.ndarray) -> bool:
    return bool(np.isfinite(array).all())


def _stacked(values: list[Any]) -> np.ndarray | None:
    """All entries as one float array when they are tensors (or number lists) of one shape, else None."""
    try:
        if all(isinstance(v, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in v) for v in values):
            values = [torch.stack(list(v)) for v in values]  # camera_transformation: (cam_rot, transl) pairs
        if all(isinstance(v, torch.Tensor) for v in values):
            stacked = torch.stack(values)
            return stacked.numpy() if stacked.is_floating_point() else None
        array = np.asarray(values)
        return array if array.dtype.kind == "f" or array.dtype.kind in "iu" else None
    except (TypeError, ValueError, RuntimeError):
        return None


def _check_each(data: dict[str, Any], table: str, path: Path, check: Any, optional: bool = False) -> None:
    if optional and table not in data:
        return
    entries = _entries(data, table, path)
    if check in _BATCHED and entries:  # one check of the stacked table (0.1 s -> 2 ms for 2048 poses)
        batch = _stacked(list(entries.values()))
        if batch is not None and _BATCHED[check](batch):
            return
    for key, value in entries.items():  # the entry at fault, named
        problem = check(value, path, f"{table}[{key!r}]")
        if problem:
            raise CacheError(f"{path}: {table}[{key!r}] {problem}")


def _bbox(value: Any, path: Path, where: str) -> str | None:
    box = _numbers(value, path, where)
    if box.shape != (4,):
        return f"has shape {box.shape}, expected [x1, y1, x2, y2]"
    return None if box[2] > box[0] and box[3] > box[1] else f"is {box.tolist()}: empty (x2 <= x1 or y2 <= y1)"


def _camera(value: Any, path: Path, where: str) -> str | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return f"is a {type(value).__name__}, expected (cam_rot (3,), transl (3,))"
    rotation, translation = (_numbers(v, path, where) for v in value)
    if (rotation.shape, translation.shape) != ((3,), (3,)):
        return f"holds shapes {[rotation.shape, translation.shape]}, expected (3,) and (3,)"
    return _angles(rotation)


def _rotation(value: Any, path: Path, where: str) -> str | None:
    return None if value in (0, 90, 180, 270) and not isinstance(value, bool) else f"is {value!r}, not 0/90/180/270"


def _joints_2d(value: Any, path: Path, where: str) -> str | None:
    joints = _numbers(value, path, where, finite=False)
    ok = joints.ndim == 2 and joints.shape[0] >= 22 and joints.shape[1] in (2, 3)
    return None if ok else f"has shape {joints.shape}, expected (J >= 22, 2 or 3)"


def _pose(value: Any, path: Path, where: str) -> str | None:
    pose = _numbers(value, path, where)
    ok = pose.size % 3 == 0 and pose.size // 3 >= 22 and pose.shape[-1] in (3, pose.size)
    if not ok:
        return f"has shape {pose.shape}, expected (J >= 22, 3) axis-angles"
    return _angles(pose.reshape(-1, 3))


def _angles(axis_angles: np.ndarray) -> str | None:
    """Axis-angles above 4π are not radians (degrees, 1e30): normalising them gives NaN far from the file."""
    norm = float(np.linalg.norm(axis_angles, axis=-1).max(initial=0.0))
    return None if norm <= MAX_AXIS_ANGLE_NORM else f"holds an axis-angle of norm {norm:.3g} > 4π: not radians"


def _betas(value: Any, path: Path, where: str) -> str | None:
    betas = _numbers(value, path, where)
    return None if betas.ndim == 1 and betas.size >= 10 else f"has shape {betas.shape}, expected (>= 10,) betas"


def _axis_angle(value: Any, path: Path, where: str) -> str | None:
    angle = _numbers(value, path, where)
    return _angles(angle) if angle.shape == (3,) else f"has shape {angle.shape}, expected (3,)"


def _texts(value: Any, path: Path, where: str) -> str | None:
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return None
    return f"is {str(value)[:60]!r}, expected a list of strings"


def _pair(value: Any, path: Path, where: str) -> str | None:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    ok = ok and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
    return None if ok else f"is {str(value)[:60]!r}, expected [data id A, data id B]"


def _sequence_kind(value: Any, path: Path, where: str) -> str | None:
    return None if value in ("in", "out") else f"is {value!r}, expected 'in' or 'out'"


_BATCHED: dict[Any, Any] = {
    _bbox: lambda b: (
        b.shape[1:] == (4,) and _finite(b) and bool((b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all())
    ),
    _pose: lambda b: b.ndim == 3 and b.shape[1] >= 22 and b.shape[2] == 3 and _finite(b) and _angles(b) is None,
    _betas: lambda b: b.ndim == 2 and b.shape[1] >= 10 and _finite(b),
    _axis_angle: lambda b: b.shape[1:] == (3,) and _finite(b) and _angles(b) is None,
    _camera: lambda b: b.shape[1:] == (2, 3) and _finite(b) and _angles(b[:, 0]) is None,
    _joints_2d: lambda b: b.ndim == 3 and b.shape[1] >= 22 and b.shape[2] in (2, 3),
}
"""Checks of a whole stacked table (N, ...) equivalent to their per-entry check passing for every entry."""

TABLE_CHECKS: dict[str, tuple[tuple[str, Any, bool], ...]] = {
    "images": (
        ("bboxes", _bbox, False),
        ("camera_transformation", _camera, False),
        ("image_rotation", _rotation, True),
        ("joints_2d", _joints_2d, True),
    ),
    "poses": (("poses", _pose, False), ("shapes", _betas, False), ("heading_rotation", _axis_angle, True)),
    "rawtexts": (("texts", _texts, False),),
    "pairs": (("pair_2_dataid", _pair, False), ("sequence_info", _sequence_kind, False)),
}
"""Per cache kind: (table, check of one entry, optional) for the tables the datasets read."""


SAME_IDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "images": (("bboxes", "images", "camera_transformation"), ("joints_2d",)),
    "poses": (("poses", "shapes"), ("heading_rotation",)),
    "pairs": (("pair_2_dataid", "sequence_info"), ()),
}
"""Per cache kind: (tables that hold exactly the same ids, optional tables that must hold all of them when
present). `image_rotation` may list only the turned frames."""


def _check_same_ids(data: dict[str, Any], kind: str, path: Path) -> None:
    same, covering = SAME_IDS.get(kind, ((), ()))
    if not same:
        return
    ids = set(data[same[0]])
    for table in same[1:] + tuple(t for t in covering if t in data):
        missing = ids - set(data[table])
        extra = set(data[table]) - ids if table in same else set()
        if missing or extra:
            listed = sorted(missing or extra, key=str)[:5]
            raise CacheError(
                f"{path}: table {table!r} {'lacks' if missing else 'has extra'} id(s) {listed} "
                f"({'of' if missing else 'not in'} table {same[0]!r}); the tables of a cache hold the same ids"
            )


def check_tables(data: dict[str, Any], kind: str, path: Path) -> None:
    """Refuse a cache whose tables the datasets would fail on deep inside (a pose of 10 joints, a box of 3
    numbers, NaN betas, a caption that is not a string, a pair of one id): `CacheError` naming the file, the
    table and the id. Run once per load: 2048 poses and images in 5 ms (stacked), 40 us per entry otherwise."""
    for table, check, optional in TABLE_CHECKS[kind]:
        _check_each(data, table, path, check, optional)
    _check_same_ids(data, kind, path)
