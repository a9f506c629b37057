"""The one writer of the processed dataset format: checked tables in, cache files out, all or nothing.

Every producer of processed caches (the synthetic generator today; BEDLAM, PoseFix and 3DPW processing
next) builds its caches here, so the files `base_dataset` reads have one definition of their tables, one
set of checks and one naming (`cache_format.cache_file_name`). Nothing here knows where the data came
from: a producer hands over per-id tables, a builder checks and normalises them into a `ProcessedCache`,
and `write_caches` writes the caches of one (family, version, split) together.

What the builders store, per id (Python ints: data ids of single elements, pair ids of pairs):

- `images` (`images_cache`):
  `bboxes` list of 4 floats [x1, y1, x2, y2], the person box in the stored image (x2 > x1, y2 > y1);
  `images` str, the image path relative to the dataset's image root;
  `full_human_visibility` bool, all 22 body joints inside the frame;
  `camera_transformation` tuple (cam_rot (3,) float32 axis-angle, transl (3,) float32);
  optional `joints_2d` (J >= 22, 2) float32, joints in pixels of the stored image (`keypoints_2d=True`);
  optional `joints_in_frame`, `joints_unoccluded`, `joints_visible` (J >= 22,) bool;
  optional `frame_bboxes` list of 4 floats, the crop box in frame pixels;
  optional `image_rotation` int, degrees the stored image is turned clockwise before use (BEDLAM's
  close-up frames: 90); boxes and 2D joints then refer to the turned image.
- `poses` (`poses_cache`):
  `poses` (52, 3) float32 SMPL-X axis-angles, y up, heading-normalised ((22, 3) input: zero hands);
  `shapes` (11,) float32 betas ((10,) input: a zero 11th beta, BEDLAM's kid blend, i.e. an adult);
  optional `heading_rotation` (3,) float32 axis-angle N, normalised = N @ original orientation.
- `rawtexts` (`rawtexts_cache`): `texts` list of str (captions of a data id, instructions of a pair id).
- `tokenizedtexts_tokenizer_<name>` (`tokenized_texts_cache`): `texts_tokens` list of (L,) int64 tensors,
  one per text; `texts_length` list of int, their L; `tokenizer_name` str (not per id).
- `pairs` (`pairs_cache`): `pair_2_dataid` list [id_A, id_B] of ints; `sequence_info` 'in' (A and B
  from one sequence) or 'out'.

Every cache also holds `criteria`, a dict of the selection settings (str keys). Other optional tables
(e.g. `sequence_info` of a synthetic poses cache) are stored as given, after the same id and type checks.

Checks, before anything is written: every table of a cache is keyed by the same ids; tensors have the
documented shapes and finite values (poses, shapes, cameras); every value is of a type
`torch.load(weights_only=True)` reads back (no numpy arrays or scalars: they would make a file the
loaders refuse); caches written together agree (images and poses hold the same data ids, texts belong
to known ids). A bad input raises `CacheInputError` naming the cache kind, the table, the id and what
was expected; nothing is written then.

Writes: `write_caches` saves every cache into a temporary folder beside the cache folder and renames
the files into it only when all are saved (`atomic_io.atomic_files_into`): a failure leaves the folder
as it was, with neither half-written files nor a partial set of a dataset's caches.

    destination = CacheDestination(cache_dir, "bedlamscript", "overlap30_res224_j16_sf11", "train", 50_000)
    write_caches(destination, [
        images_cache(criteria, images=paths, bboxes=boxes, full_human_visibility=full, camera_transformation=cams),
        poses_cache(criteria, poses=poses, shapes=betas),
        rawtexts_cache(criteria, captions),
    ])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from poseembroider.atomic_io import atomic_files_into
from poseembroider.body.joints import NUM_BODY_JOINTS
from poseembroider.datasets.cache_format import REQUIRED_TABLES, cache_file_name, save_torch_file, tokenized_kind

__all__ = [
    "CacheDestination",
    "CacheInputError",
    "ProcessedCache",
    "images_cache",
    "pairs_cache",
    "poses_cache",
    "rawtexts_cache",
    "tokenized_texts_cache",
    "write_cache",
    "write_caches",
]

STORED_POSE_JOINTS = 52
"""Joints of a stored pose: 22 body joints then 2 x 15 hand joints (SMPL-X order, no jaw or eyes)."""
STORED_BETAS = 11
"""Betas of a stored shape: SMPL-X's 10 and BEDLAM's kid blend (0 for adults)."""
PAIR_KINDS = ("in", "out")
TOKENIZED_PREFIX = tokenized_kind("")


class CacheInputError(ValueError):
    """A table handed to a cache builder that the processed format cannot hold (named in the message)."""


class _BadValue(ValueError):
    """Raised by the value converters; the table builder adds the cache kind, table and id."""


@dataclass(frozen=True)
class ProcessedCache:
    """One checked cache, ready to write: its kind ('images', 'poses', 'rawtexts', 'pairs' or
    `cache_format.tokenized_kind(name)`) and its tables, in the stored form (module docstring)."""

    kind: str
    tables: dict[str, Any]

    @property
    def ids(self) -> list[int]:
        """The ids the cache's per-id tables are keyed by (data ids, or pair ids for 'pairs')."""
        return list(self.tables[_ID_TABLE[_base_kind(self.kind)]])


@dataclass(frozen=True)
class CacheDestination:
    """Where the caches of one dataset split go: `cache_dir / cache_file_name(family, version, split, kind,
    reduced_size)`.

    `family` e.g. 'bedlamscript', 'bedlamfix', 'synthscript', 'synthfix'; `version` the criteria string
    (e.g. 'overlap30_res224_j16_sf11'); `reduced_size` the size in the `_reduced_<N>` suffix (the
    farthest-point-sampled size of the single-element set; the fix caches of the original carry it too).
    """

    cache_dir: Path
    family: str
    version: str
    split: str
    reduced_size: int | None = None

    def path(self, kind: str) -> Path:
        return Path(self.cache_dir) / cache_file_name(self.family, self.version, self.split, kind, self.reduced_size)


# ---------------------------------------------------------------------------------------------- values


def _tensor(value: Any, expected: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError):
        raise _BadValue(f"expected {expected}, got {type(value).__name__}") from None


def _shape_text(shape: Sequence[int | None]) -> str:
    dims = ["J" if d is None else str(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _fits(shape: tuple[int, ...], pattern: tuple[int | None, ...], min_joints: int) -> bool:
    """Whether `shape` matches `pattern` (None: any size >= `min_joints`)."""
    if len(shape) != len(pattern):
        return False
    return all(n == d if d is not None else n >= min_joints for d, n in zip(pattern, shape, strict=True))


def _float_tensor(
    value: Any, shapes: Sequence[Sequence[int | None]], *, finite: bool = True, min_joints: int = 0
) -> torch.Tensor:
    """A float32 copy of `value` (tensor, array or nested list) of one of `shapes` (None: any size >=
    `min_joints`); a compact copy, so a row of a large tensor does not drag its whole storage into the file."""
    expected = " or ".join(_shape_text(s) for s in shapes)
    tensor = _tensor(value, f"a float tensor of shape {expected}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise _BadValue(f"expected real numbers of shape {expected}, got dtype {tensor.dtype}")
    if not any(_fits(tuple(tensor.shape), tuple(s), min_joints) for s in shapes):
        raise _BadValue(f"expected shape {expected}, got {tuple(tensor.shape)}")
    tensor = tensor.to(torch.float32).clone(memory_format=torch.contiguous_format)
    if finite and not torch.isfinite(tensor).all():
        raise _BadValue(f"holds NaN or infinite values (shape {tuple(tensor.shape)})")
    return tensor


def _bool_vector(value: Any) -> torch.Tensor:
    tensor = _tensor(value, f"a bool tensor of shape (J >= {NUM_BODY_JOINTS},)")
    if tensor.dtype != torch.bool:
        raise _BadValue(f"expected dtype torch.bool, got {tensor.dtype}")
    if tensor.dim() != 1 or tensor.shape[0] < NUM_BODY_JOINTS:
        raise _BadValue(f"expected shape (J >= {NUM_BODY_JOINTS},), got {tuple(tensor.shape)}")
    return tensor.clone(memory_format=torch.contiguous_format)


def _box(value: Any, *, ordered: bool = True) -> list[float]:
    try:
        box = [float(v) for v in value]
    except (TypeError, ValueError):
        raise _BadValue(f"expected 4 numbers [x1, y1, x2, y2], got {value!r}") from None
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise _BadValue(f"expected 4 finite numbers [x1, y1, x2, y2], got {box}")
    if ordered and not (box[2] > box[0] and box[3] > box[1]):
        raise _BadValue(f"expected x2 > x1 and y2 > y1, got {box}")
    return box


def _flag(value: Any) -> bool:
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.numel() == 1:
        return bool(value)
    if type(value) is bool or isinstance(value, np.bool_):
        return bool(value)
    raise _BadValue(f"expected a bool, got {value!r} ({type(value).__name__})")


def _image_path(value: Any) -> str:
    if not isinstance(value, str | PurePath):
        raise _BadValue(f"expected a relative path (str), got {type(value).__name__}")
    path = PurePath(value)
    if not str(value) or path.is_absolute() or ".." in path.parts:
        raise _BadValue(f"expected a path relative to the image root, got {str(value)!r}")
    return path.as_posix() if isinstance(value, PurePath) else str(value)


def _camera(value: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise _BadValue(f"expected a pair (cam_rot (3,), transl (3,)), got {type(value).__name__}")
    return (_float_tensor(value[0], [(3,)]), _float_tensor(value[1], [(3,)]))


def _padded(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """`tensor` with zero rows appended up to `rows` along its first dimension."""
    if tensor.shape[0] == rows:
        return tensor
    return torch.cat([tensor, tensor.new_zeros(rows - tensor.shape[0], *tensor.shape[1:])])


def _rotation(value: Any) -> int:
    if type(value) is not int or value not in (0, 90, 180, 270):
        raise _BadValue(f"expected degrees clockwise 0, 90, 180 or 270 (int), got {value!r}")
    return value


def _pose(value: Any) -> torch.Tensor:
    return _padded(_float_tensor(value, [(NUM_BODY_JOINTS, 3), (STORED_POSE_JOINTS, 3)]), STORED_POSE_JOINTS)


def _shape(value: Any) -> torch.Tensor:
    return _padded(_float_tensor(value, [(STORED_BETAS - 1,), (STORED_BETAS,)]), STORED_BETAS)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise _BadValue(f"expected a list of strings, got {type(value).__name__}")
    bad = [text for text in value if type(text) is not str]
    if bad:
        raise _BadValue(f"expected a list of strings, got an item of type {type(bad[0]).__name__}")
    return list(value)


def _token_rows(value: Any) -> list[torch.Tensor]:
    if not isinstance(value, list | tuple):
        raise _BadValue(f"expected a list of (L,) int64 tensors, got {type(value).__name__}")
    rows = []
    for row in value:
        tensor = _tensor(row, "an (L,) int64 tensor")
        if tensor.dtype != torch.int64 or tensor.dim() != 1:
            raise _BadValue(f"expected (L,) int64 tensors, got {tensor.dtype} of shape {tuple(tensor.shape)}")
        rows.append(tensor.clone(memory_format=torch.contiguous_format))
    return rows


def _lengths(value: Any) -> list[int]:
    if not isinstance(value, list | tuple) or not all(type(n) is int and n >= 0 for n in value):
        raise _BadValue(f"expected a list of non-negative ints, got {value!r}")
    return list(value)


def _pair(value: Any) -> list[int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _BadValue(f"expected [id_A, id_B], got {value!r}")
    return [_id(v) for v in value]


def _pair_kind(value: Any) -> str:
    if value not in PAIR_KINDS:
        raise _BadValue(f"expected one of {PAIR_KINDS}, got {value!r}")
    return str(value)


_LOADABLE_SCALARS = (type(None), bool, int, float, str)


def _loadable(value: Any) -> Any:
    """`value` itself, once checked to hold only what `torch.load(weights_only=True)` reads (plain Python
    scalars, str, tensors, and lists, tuples and dicts of them): numpy values pickle fine but the
    loaders refuse the file."""
    if type(value) in _LOADABLE_SCALARS or isinstance(value, torch.Tensor):
        return value
    if type(value) in (list, tuple):
        for item in value:
            _loadable(item)
        return value
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            _loadable(key)
            _loadable(item)
        return value
    hint = " (convert numpy values with .tolist() or torch.as_tensor)" if type(value).__module__ == "numpy" else ""
    raise _BadValue(f"{type(value).__module__}.{type(value).__name__} cannot be read back safely{hint}")


def _id(key: Any) -> int:
    """A data or pair id as a Python int (numpy and 0-d torch integers accepted: the loaders need ints)."""
    if isinstance(key, bool | np.bool_):
        raise _BadValue(f"ids are integers, got {key!r}")
    if isinstance(key, int | np.integer):
        return int(key)
    if (
        isinstance(key, torch.Tensor)
        and key.numel() == 1
        and not (key.dtype.is_floating_point or key.dtype == torch.bool)
    ):
        return int(key)
    raise _BadValue(f"ids are integers, got {key!r} ({type(key).__name__})")


# ---------------------------------------------------------------------------------------------- tables


def _table(kind: str, name: str, table: Any, convert: Callable[[Any], Any], ids: list[int] | None) -> dict[int, Any]:
    """{id: convert(value)} in the order of `table`; its ids must be those of `ids` when given."""
    if not isinstance(table, Mapping):
        raise CacheInputError(
            f"{kind} cache, table '{name}': expected a dict {{id: value}}, got {type(table).__name__}"
        )
    out: dict[int, Any] = {}
    for key, value in table.items():
        try:
            data_id = _id(key)
        except _BadValue as err:
            raise CacheInputError(f"{kind} cache, table '{name}': {err}") from None
        try:
            out[data_id] = convert(value)
        except _BadValue as err:
            raise CacheInputError(f"{kind} cache, table '{name}', id {data_id}: {err}") from None
    if ids is not None and set(out) != set(ids):
        missing, extra = sorted(set(ids) - set(out)), sorted(set(out) - set(ids))
        raise CacheInputError(
            f"{kind} cache, table '{name}': its ids differ from those of the other tables "
            f"({len(missing)} missing, e.g. {missing[:5]}; {len(extra)} extra, e.g. {extra[:5]})"
        )
    return out


def _criteria(kind: str, criteria: Any) -> dict[str, Any]:
    if not isinstance(criteria, Mapping) or not all(type(k) is str for k in criteria):
        raise CacheInputError(f"{kind} cache, 'criteria': expected a dict with str keys, got {criteria!r}")
    try:
        return _loadable(dict(criteria))
    except _BadValue as err:
        raise CacheInputError(f"{kind} cache, 'criteria': {err}") from None


def _optional_tables(
    kind: str, tables: Mapping[str, Any], converters: Mapping[str, Callable[[Any], Any]], ids: list[int]
) -> dict[str, dict[int, Any]]:
    out = {}
    for name, table in tables.items():
        if table is None:
            continue
        out[name] = _table(kind, name, table, converters.get(name, _loadable), ids)
    return out


def images_cache(
    criteria: Mapping[str, Any],
    *,
    images: Mapping[int, str],
    bboxes: Mapping[int, Sequence[float]],
    full_human_visibility: Mapping[int, bool],
    camera_transformation: Mapping[int, tuple[Any, Any]],
    **optional_tables: Mapping[int, Any] | None,
) -> ProcessedCache:
    """The `images` cache of a single-element dataset: image paths, person boxes, visibility, cameras.

    Args (each {data id: value}, the same ids in every table):
        images: image path relative to the dataset's image root (no absolute paths: the caches move).
        bboxes: [x1, y1, x2, y2] person box in pixels of the stored image (the crop the loader cuts).
        full_human_visibility: all 22 body joints project inside the frame.
        camera_transformation: (cam_rot (3,), transl (3,)): rotation from the stored (normalised)
            orientation to the camera view, and the SMPL-X translation in the camera frame.
        optional_tables: `joints_2d` (J >= 22, 2), `joints_in_frame` / `joints_unoccluded` /
            `joints_visible` (J >= 22,) bool, `frame_bboxes` [x1, y1, x2, y2], `image_rotation` (0, 90,
            180 or 270 degrees clockwise), or any other table of plain values (None: left out).
    """
    kind = "images"
    paths = _table(kind, "images", images, _image_path, None)
    ids = list(paths)
    tables = {
        "criteria": _criteria(kind, criteria),
        "bboxes": _table(kind, "bboxes", bboxes, _box, ids),
        "images": paths,
        "full_human_visibility": _table(kind, "full_human_visibility", full_human_visibility, _flag, ids),
        "camera_transformation": _table(kind, "camera_transformation", camera_transformation, _camera, ids),
    }
    converters: dict[str, Callable[[Any], Any]] = {
        "joints_2d": lambda v: _float_tensor(v, [(None, 2)], finite=False, min_joints=NUM_BODY_JOINTS),
        "joints_in_frame": _bool_vector,
        "joints_unoccluded": _bool_vector,
        "joints_visible": _bool_vector,
        "frame_bboxes": _box,
        "image_rotation": _rotation,
    }
    return ProcessedCache(kind, {**tables, **_optional_tables(kind, optional_tables, converters, ids)})


def poses_cache(
    criteria: Mapping[str, Any],
    *,
    poses: Mapping[int, Any],
    shapes: Mapping[int, Any],
    heading_rotation: Mapping[int, Any] | None = None,
    **optional_tables: Mapping[int, Any] | None,
) -> ProcessedCache:
    """The `poses` cache of a single-element dataset.

    Args (each {data id: value}, the same ids in every table):
        poses: (22, 3) or (52, 3) SMPL-X axis-angles, y up, heading-normalised (global orientation
            first); stored as (52, 3) float32, body-only poses with zero (flat) hands.
        shapes: (10,) or (11,) betas; stored as (11,) float32 (BEDLAM's 11th beta, the kid blend, 0).
        heading_rotation: optional (3,) axis-angle N with normalised = N @ original orientation; lets
            in-sequence pairs keep the rotation between their two poses.
        optional_tables: any other table of plain values (e.g. `sequence_info`; None: left out).
    """
    kind = "poses"
    stored_poses = _table(kind, "poses", poses, _pose, None)
    ids = list(stored_poses)
    tables = {
        "criteria": _criteria(kind, criteria),
        "poses": stored_poses,
        "shapes": _table(kind, "shapes", shapes, _shape, ids),
    }
    optional = {"heading_rotation": heading_rotation, **optional_tables}
    converters = {"heading_rotation": lambda v: _float_tensor(v, [(3,)])}
    return ProcessedCache(kind, {**tables, **_optional_tables(kind, optional, converters, ids)})


def rawtexts_cache(criteria: Mapping[str, Any], texts: Mapping[int, Sequence[str]]) -> ProcessedCache:
    """The `rawtexts` cache: {data id: captions} of a single-element dataset, {pair id: instructions} of a
    pair dataset. Empty strings are kept (the loaders skip them; a pair with only empty ones is dropped)."""
    kind = "rawtexts"
    return ProcessedCache(
        kind, {"criteria": _criteria(kind, criteria), "texts": _table(kind, "texts", texts, _texts, None)}
    )


def tokenized_texts_cache(
    criteria: Mapping[str, Any],
    texts_tokens: Mapping[int, Sequence[torch.Tensor]],
    texts_length: Mapping[int, Sequence[int]],
    tokenizer_name: str,
) -> ProcessedCache:
    """The `tokenizedtexts_tokenizer_<tokenizer_name>` cache of a `rawtexts` cache: per id, one unpadded
    (L,) int64 token row and its length L for each text, in the order of the texts."""
    if type(tokenizer_name) is not str or not tokenizer_name:
        raise CacheInputError(f"tokenized texts cache: tokenizer_name must be a non-empty str, got {tokenizer_name!r}")
    kind = tokenized_kind(tokenizer_name)
    tokens = _table(kind, "texts_tokens", texts_tokens, _token_rows, None)
    lengths = _table(kind, "texts_length", texts_length, _lengths, list(tokens))
    for key, rows in tokens.items():
        if [row.numel() for row in rows] != lengths[key]:
            raise CacheInputError(
                f"{kind} cache, table 'texts_length', id {key}: expected the token counts "
                f"{[row.numel() for row in rows]}, got {lengths[key]}"
            )
    tables = {
        "criteria": _criteria(kind, criteria),
        "texts_tokens": tokens,
        "texts_length": lengths,
        "tokenizer_name": tokenizer_name,
    }
    return ProcessedCache(kind, tables)


def pairs_cache(
    criteria: Mapping[str, Any], pair_2_dataid: Mapping[int, Sequence[int]], sequence_info: Mapping[int, str]
) -> ProcessedCache:
    """The `pairs` cache of a pair dataset: {pair id: [data id A, data id B]} and {pair id: 'in' | 'out'}
    (A and B from the same sequence or not). Data ids refer to the single-element dataset's caches."""
    kind = "pairs"
    pairs = _table(kind, "pair_2_dataid", pair_2_dataid, _pair, None)
    tables = {
        "criteria": _criteria(kind, criteria),
        "pair_2_dataid": pairs,
        "sequence_info": _table(kind, "sequence_info", sequence_info, _pair_kind, list(pairs)),
    }
    return ProcessedCache(kind, tables)


# ---------------------------------------------------------------------------------------------- writing

_ID_TABLE = {
    "images": "images",
    "poses": "poses",
    "rawtexts": "texts",
    "pairs": "pair_2_dataid",
    "tokenized": "texts_tokens",
}


def _base_kind(kind: str) -> str:
    return "tokenized" if kind.startswith(TOKENIZED_PREFIX) else kind


def _check_together(caches: Sequence[ProcessedCache]) -> None:
    """Caches written together must agree: one per kind, images and poses over the same data ids, texts
    over known ids (pair ids when a pairs cache comes along, else data ids)."""
    by_kind: dict[str, ProcessedCache] = {}
    for cache in caches:
        if not isinstance(cache, ProcessedCache):
            raise CacheInputError(f"expected caches made by the builders of cache_writers, got {type(cache).__name__}")
        if cache.kind in by_kind:
            raise CacheInputError(f"two '{cache.kind}' caches for one destination: they would share a file")
        if _base_kind(cache.kind) not in _ID_TABLE or any(
            t not in cache.tables for t in REQUIRED_TABLES.get(cache.kind, ())
        ):
            raise CacheInputError(f"'{cache.kind}' is not a cache kind of the processed format")
        by_kind[cache.kind] = cache
    if "images" in by_kind and "poses" in by_kind:
        image_ids, pose_ids = set(by_kind["images"].ids), set(by_kind["poses"].ids)
        if image_ids != pose_ids:
            raise CacheInputError(
                f"the images and poses caches hold different data ids ({len(pose_ids - image_ids)} only in poses, "
                f"e.g. {sorted(pose_ids - image_ids)[:5]}; {len(image_ids - pose_ids)} only in images, "
                f"e.g. {sorted(image_ids - pose_ids)[:5]})"
            )
    owner = next((by_kind[k] for k in ("pairs", "poses", "images") if k in by_kind), None)
    if owner is None:
        return
    known = set(owner.ids)
    for cache in caches:
        if _base_kind(cache.kind) in ("rawtexts", "tokenized"):
            unknown = sorted(set(cache.ids) - known)
            if unknown:
                what = "pair ids of the pairs cache" if owner.kind == "pairs" else f"data ids of the {owner.kind} cache"
                raise CacheInputError(f"{cache.kind} cache: {len(unknown)} ids are not {what}, e.g. {unknown[:5]}")


def write_caches(destination: CacheDestination, caches: Iterable[ProcessedCache]) -> list[Path]:
    """Write `caches` (from the builders of this module) for `destination`; returns their paths, in order.

    All or nothing: the caches are checked against each other first, then saved into a temporary folder
    beside `destination.cache_dir`, and renamed into it only once every file is complete. Existing caches
    of the same names are replaced; other files of the folder are left alone.
    """
    caches = list(caches)
    _check_together(caches)
    paths = [destination.path(cache.kind) for cache in caches]
    with atomic_files_into(destination.cache_dir) as staging:
        for cache, path in zip(caches, paths, strict=True):
            save_torch_file(cache.tables, staging / path.name)  # the same bytes whichever run wrote them
    return paths


def write_cache(destination: CacheDestination, cache: ProcessedCache) -> Path:
    """`write_caches` of one cache."""
    return write_caches(destination, [cache])[0]
