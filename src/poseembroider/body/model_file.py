"""Finding, checking and safely opening SMPL-X model files.

Which model is used: the licensed SMPL-X file when `<SMPLX_BODY_MODEL_PATH>/smplx/SMPLX_NEUTRAL.npz`
exists; otherwise the procedural SMPL-X-format file under `PROCEDURAL_BODY_MODEL_PATH`, built on first
use by `poseembroider body build-procedural`. Both are read by `smplx`, so everything downstream is
the same code.

`smplx` opens `.npz` files with `allow_pickle=True`. Real SMPL-X files carry a few pickled members
that `smplx` does not need (`joint2num`, `part2num`); to never unpickle a file, a model file holding
object arrays is copied once, without them, into `DATA_CACHE_DIR/body_models/` and that copy is
loaded instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poseembroider import config
from poseembroider.atomic_io import atomic_file
from poseembroider.body.procedural_model import PROCEDURAL_MODEL_VERSION, build_procedural_smplx
from poseembroider.npz_files import NUMPY_READ_ERRORS

logger = logging.getLogger(__name__)

MODEL_FILE_NAME = "SMPLX_NEUTRAL.npz"
PROCEDURAL_MARKER_KEY = "poseembroider_procedural_version"
MIN_VERTICES = 9930  # smplx always selects vertex 9929 (right eye) as an extra joint

# key -> expected shape; "V" is the vertex count, "F" the face count, None any size
REQUIRED_KEYS: dict[str, tuple] = {
    "v_template": ("V", 3),
    "f": ("F", 3),
    "shapedirs": ("V", 3, None),
    "posedirs": ("V", 3, 486),
    "J_regressor": (55, "V"),
    "weights": ("V", 55),
    "kintree_table": (2, 55),
    "hands_componentsl": (45, 45),
    "hands_componentsr": (45, 45),
    "hands_meanl": (45,),
    "hands_meanr": (45,),
    "lmk_faces_idx": (51,),
    "lmk_bary_coords": (51, 3),
}
MIN_SHAPE_DIRECTIONS = 20  # 10 betas + 10 expression coefficients
_FINITE_FILES: set[tuple[str, int, int]] = set()  # (resolved path, size, mtime_ns) found free of NaN / inf
_WARNED_MISSING: set[str] = set()  # configured SMPLX_BODY_MODEL_PATH folders already reported missing
SMPLX_PATH_VARIABLE = config.ENV_PREFIX + "SMPLX_BODY_MODEL_PATH"


class BodyModelFileError(ValueError):
    """A SMPL-X model file that is missing, unreadable or not in the SMPL-X layout."""


@dataclass(frozen=True)
class BodyModelFile:
    """A checked SMPL-X-format model file."""

    path: Path  # the file the user configured
    loadable_path: Path  # the same content without pickled members: what smplx.SMPLX opens
    kind: str  # "smplx" (licensed file) or "procedural"
    version: str | None  # procedural builder version
    num_vertices: int
    num_shape_directions: int

    @property
    def description(self) -> str:
        if self.kind == "procedural":
            details = f"version {self.version}, {self.num_vertices} vertices"
            return f"procedural SMPL-X-format body model ({details}) at {self.path}"
        return f"SMPL-X body model ({self.num_vertices} vertices) at {self.path}"


def model_file_in(model_dir: Path) -> Path:
    """`model_dir/smplx/SMPLX_NEUTRAL.npz`, the layout `smplx.create` expects."""
    return Path(model_dir) / "smplx" / MODEL_FILE_NAME


def _member_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an .npz, read from the .npy headers (no data, no pickle)."""
    headers = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                headers[info.filename[: -len(".npy")]] = (shape, dtype)
    except NUMPY_READ_ERRORS as err:  # a damaged .npy header: TokenError, SyntaxError...
        raise BodyModelFileError(f"{path}: not a readable .npz SMPL-X model file ({err})") from None
    return headers


def check_model_file(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Check keys and shapes of a SMPL-X .npz against what `smplx` reads; returns the member headers.
    Raises `BodyModelFileError` naming the file and the key at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise BodyModelFileError(f"SMPL-X model file not found: {path}")
    headers = _member_headers(path)
    missing = [k for k in REQUIRED_KEYS if k not in headers]
    if missing:
        raise BodyModelFileError(f"{path}: missing key(s) {missing}; a SMPL-X model file needs {list(REQUIRED_KEYS)}")
    num_vertices = headers["v_template"][0][0] if headers["v_template"][0] else 0
    num_faces = headers["f"][0][0] if headers["f"][0] else 0
    sizes = {"V": num_vertices, "F": num_faces}
    for key, expected in REQUIRED_KEYS.items():
        shape = headers[key][0]
        want = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in expected)
        if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want, strict=False)):
            shown = tuple("any" if w is None else w for w in want)
            raise BodyModelFileError(f"{path}: key {key!r} has shape {shape}, expected {shown}")
    if num_vertices < MIN_VERTICES:
        raise BodyModelFileError(
            f"{path}: {num_vertices} vertices; smplx needs at least {MIN_VERTICES} (it reads vertex 9929)"
        )
    if headers["shapedirs"][0][2] < MIN_SHAPE_DIRECTIONS:
        raise BodyModelFileError(
            f"{path}: key 'shapedirs' has {headers['shapedirs'][0][2]} directions, "
            f"expected at least {MIN_SHAPE_DIRECTIONS} (10 betas + 10 expression)"
        )
    _check_finite(path, headers)
    return headers


def _check_finite(path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    """Read every member `smplx` reads once (a damaged member fails its CRC here, naming the file, not inside
    smplx later) and refuse NaN / inf in the float ones (one NaN vertex makes every joint NaN, and every
    caption then reads 'a neutral stance' with no error anywhere) and indices out of range in the int ones
    (faces, landmark faces, the kinematic tree: an IndexError deep in smplx otherwise)."""
    stat = path.stat()
    checked = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if checked in _FINITE_FILES:  # 0.15 s for a 10k-vertex file: once per file version and process
        return
    num_vertices, num_faces = headers["v_template"][0][0], headers["f"][0][0]
    index_ranges = {"f": num_vertices, "lmk_faces_idx": num_faces, "kintree_table": 55}  # 55 SMPL-X joints
    key = None
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in REQUIRED_KEYS:
                values = data[key]
                if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
                    count = int((~np.isfinite(values)).sum())
                    first = np.argwhere(~np.isfinite(values))[0].tolist()
                    raise BodyModelFileError(
                        f"{path}: key {key!r} holds {count} NaN or inf value(s) (first at index {first})"
                    )
                if key in index_ranges:
                    _check_indices(path, key, values, index_ranges[key])
    except NUMPY_READ_ERRORS as err:
        raise BodyModelFileError(f"{path}: not a readable .npz SMPL-X model file (key {key!r}: {err})") from None
    _FINITE_FILES.add(checked)


def _check_indices(path: Path, key: str, values: np.ndarray, size: int) -> None:
    """Integer indices in [0, size) (the kinematic tree's parents: the root's may be -1 or its unsigned wrap)."""
    if not np.issubdtype(values.dtype, np.integer):
        raise BodyModelFileError(f"{path}: key {key!r} has dtype {values.dtype}, expected integer indices")
    indices = values.astype(np.int64)
    if key == "kintree_table":
        indices = indices[0, 1:]  # parents of every joint but the root
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise BodyModelFileError(
            f"{path}: key {key!r} holds indices in [{indices.min()}, {indices.max()}], expected [0, {size})"
        )


def _sanitized_copy(path: Path, headers: dict, cache_dir: Path) -> Path:
    """Copy the numeric members of `path` into the cache (once); returns the copy's path."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir / "body_models" / key / MODEL_FILE_NAME
    if target.exists():
        return target
    numeric = [k for k, (_, dtype) in headers.items() if not dtype.hasobject]
    logger.info("copying %s without its pickled members to %s", path, target)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in numeric}
    with atomic_file(target) as tmp, open(tmp, "wb") as stream:  # a file object: np.savez adds no suffix
        np.savez(stream, **arrays)
    return target


def open_model_file(path: Path, cache_dir: Path | None = None) -> BodyModelFile:
    """Check a SMPL-X .npz and return where `smplx` can load it from without unpickling anything."""
    path = Path(path)
    headers = check_model_file(path)
    version = None
    if PROCEDURAL_MARKER_KEY in headers:
        with np.load(path, allow_pickle=False) as data:
            version = str(data[PROCEDURAL_MARKER_KEY])
    loadable = path
    if any(dtype.hasobject for _, dtype in headers.values()):
        loadable = _sanitized_copy(path, headers, config.DATA_CACHE_DIR if cache_dir is None else cache_dir)
    return BodyModelFile(
        path=path,
        loadable_path=loadable,
        kind="procedural" if version is not None else "smplx",
        version=version,
        num_vertices=headers["v_template"][0][0],
        num_shape_directions=headers["shapedirs"][0][2],
    )


def _default_smplx_dir() -> Path | None:
    """SMPLX_BODY_MODEL_PATH as it is when nobody sets it (`<MAIN_DIR>/tools/smplx_models`)."""
    environ = {k: v for k, v in os.environ.items() if k != SMPLX_PATH_VARIABLE}
    return config.read_settings(environ)["SMPLX_BODY_MODEL_PATH"]


def _say_missing_smplx_dir(smplx_dir: Path) -> None:
    """Warn (once per folder and process) that a SMPLX_BODY_MODEL_PATH someone chose does not exist, so the
    procedural body is used: with no word said, a typo in the path gives other numbers than the licensed
    model would. Refusing instead would break every setup that exports the default layout's path before the
    licensed file is there; the default path itself, and 'none', fall back quietly."""
    default = _default_smplx_dir()
    if default is not None and smplx_dir.resolve() == default.resolve() or str(smplx_dir) in _WARNED_MISSING:
        return
    _WARNED_MISSING.add(str(smplx_dir))
    source = f" (from {SMPLX_PATH_VARIABLE})" if os.environ.get(SMPLX_PATH_VARIABLE) else ""
    logger.warning(
        "SMPLX_BODY_MODEL_PATH %s%s does not exist: using the procedural SMPL-X-format body model instead. "
        "Point it at the folder holding smplx/%s for the licensed model, or set %s=none to choose the "
        "procedural one without this warning",
        smplx_dir,
        source,
        MODEL_FILE_NAME,
        SMPLX_PATH_VARIABLE,
    )


def locate_model_file(
    smplx_dir: Path | None = None, procedural_dir: Path | None = None, build_if_missing: bool = True
) -> BodyModelFile:
    """The body model to use: the licensed SMPL-X file if present, else (when `smplx_dir` does not exist) the
    procedural one. An existing `smplx_dir` without the model file is an error, not a silent fallback; a
    `smplx_dir` that does not exist and is not the default path gets a warning naming it. A
    SMPLX_BODY_MODEL_PATH of None (`POSEEMBROIDER_SMPLX_BODY_MODEL_PATH=none`) chooses the procedural body.
    The procedural file is built (a few seconds, deterministic) when it does not exist yet and
    `build_if_missing` is set.
    """
    smplx_dir = config.SMPLX_BODY_MODEL_PATH if smplx_dir is None else Path(smplx_dir)
    procedural_dir = config.PROCEDURAL_BODY_MODEL_PATH if procedural_dir is None else Path(procedural_dir)
    if smplx_dir is None:  # the procedural body, chosen explicitly
        return _procedural(None, procedural_dir, build_if_missing)
    licensed = model_file_in(smplx_dir)
    if licensed.exists():
        return open_model_file(licensed)
    if not smplx_dir.exists():
        _say_missing_smplx_dir(smplx_dir)
    else:
        # A folder that exists was made for the licensed model: using the procedural body instead, silently,
        # would give other numbers with no word said. Only a folder that does not exist (the default) falls back.
        stray = sorted(str(p) for p in smplx_dir.rglob(MODEL_FILE_NAME))[:3] if smplx_dir.is_dir() else []
        hint = f"; found {stray}: move it to {licensed}" if stray else ""
        raise BodyModelFileError(
            f"SMPLX_BODY_MODEL_PATH {smplx_dir} exists but holds no {licensed.relative_to(smplx_dir)} "
            f"(looked for {licensed}){hint}. Remove the folder or unset POSEEMBROIDER_SMPLX_BODY_MODEL_PATH "
            "to use the procedural body model"
        )
    return _procedural(licensed, procedural_dir, build_if_missing)


def _procedural(licensed: Path | None, procedural_dir: Path, build_if_missing: bool) -> BodyModelFile:
    """The procedural model file of `procedural_dir`, built when missing or of another version (if allowed)."""
    procedural = model_file_in(procedural_dir)
    found = open_model_file(procedural) if procedural.exists() else None
    if found is not None and found.version == str(PROCEDURAL_MODEL_VERSION):
        return found
    if not build_if_missing:
        state = "is missing" if found is None else f"has version {found.version}, not {PROCEDURAL_MODEL_VERSION}"
        licensed_state = (
            f"{licensed} (licensed SMPL-X, set POSEEMBROIDER_SMPLX_BODY_MODEL_PATH) does not exist"
            if licensed is not None
            else "POSEEMBROIDER_SMPLX_BODY_MODEL_PATH is none (no licensed SMPL-X)"
        )
        raise BodyModelFileError(
            f"no usable SMPL-X model file: {licensed_state} and {procedural} {state} "
            "(run `poseembroider body build-procedural`)"
        )
    logger.info("no licensed SMPL-X file at %s: building the procedural model in %s", licensed, procedural_dir)
    build_procedural_smplx(procedural_dir)
    return open_model_file(procedural)
