"""Paths and constants of the toolkit.

Every value can be overridden by an environment variable named `POSEEMBROIDER_<NAME>` (e.g.
`POSEEMBROIDER_SMPLX_BODY_MODEL_PATH=/data/smplx_models`). Relative override paths are taken relative
to the current working directory. Default paths live under one root, `MAIN_DIR`:

- in a source checkout (`src/poseembroider/` with `pyproject.toml` or `.git` two levels up, editable
  installs included): the checkout itself, as the README's tables say (`experiments/`, `cache/`, `tools/`);
- otherwise (a wheel installed in site-packages): a user folder, `$XDG_CACHE_HOME/poseembroider` or
  `~/.cache/poseembroider`, so nothing is ever written into site-packages.

`POSEEMBROIDER_MAIN_DIR` moves the root in both cases. Files shipped inside the package (the released
models' shortname registry) are only read; models registered on this machine go to
`MODELS_ROOT/shortname_2_model_path.json` (see `registry.py`).

Importing this module only reads environment variables: it creates no folder, sets no global
library state (no `TORCH_HOME`, no TF32 flags) and touches no file. Call `describe()` to print the
effective settings. Values are read once at import; code that must follow a later change of the
environment calls `read_settings()`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "POSEEMBROIDER_"

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed package folder (`.../poseembroider`): read-only package data lives here."""
USER_DIR_NAME = "poseembroider"
CHECKOUT_MARKERS = ("pyproject.toml", ".git")


def source_checkout_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The repository root when `package_dir` is `<root>/src/poseembroider` of a source checkout, else None."""
    if package_dir.parent.name != "src":
        return None
    root = package_dir.parent.parent
    return root if any((root / marker).exists() for marker in CHECKOUT_MARKERS) else None


def user_root(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user folder of an installed toolkit: `$XDG_CACHE_HOME/poseembroider`, else `~/.cache/poseembroider`."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path(env.get("HOME") or Path.home()) / ".cache"
    return base / USER_DIR_NAME


def default_main_dir(environ: Mapping[str, str] | None = None, package_dir: Path = PACKAGE_DIR) -> tuple[Path, str]:
    """The root of the default paths and where it comes from ('env', 'source checkout' or 'user folder')."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_PREFIX + "MAIN_DIR")
    if raw:
        return Path(raw).expanduser().resolve(), f"env ({ENV_PREFIX}MAIN_DIR)"
    checkout = source_checkout_root(package_dir)
    if checkout is not None:
        return checkout, "source checkout"
    return user_root(env), "user folder (not in a source checkout)"


def _path_settings(main_dir: Path, data_dir: Path, package_dir: Path) -> dict[str, Path | None]:
    """Default paths, in the original config's names, derived from the root folder (`MAIN_DIR`)."""
    tools = main_dir / "tools"
    return {
        "GENERAL_EXP_OUTPUT_DIR": main_dir / "experiments",
        # licensed data: point these at your copies
        "BEDLAM_RAW_DATA_DIR": data_dir / "BEDLAM" / "raw",
        "BEDLAM_IMG_DIR": data_dir / "BEDLAM" / "images",
        "BEDLAM_PROCESSED_DIR": data_dir / "BEDLAM" / "processed",
        "THREEDPW_IMG_DIR": data_dir / "3DPW" / "imageFiles",
        "THREEDPW_DIR": data_dir / "3DPW",
        "POSEFIX_DIR": data_dir / "PoseFix" / "posefix_release",
        "POSEFIX_SMPLX_DIR": data_dir / "PoseFix" / "output_data_pkl",
        "POSESCRIPT_DIR": data_dir / "PoseScript" / "posescript_release",
        "POSESCRIPT_SMPLX_DIR": data_dir / "PoseFix" / "output_data_pkl",
        # directory holding smplx/SMPLX_NEUTRAL.npz (licensed SMPL-X); used when the file exists
        "SMPLX_BODY_MODEL_PATH": tools / "smplx_models",
        # where the procedural SMPL-X-format model is built when no licensed file is present
        "PROCEDURAL_BODY_MODEL_PATH": tools / "procedural_smplx",
        "DATA_CACHE_DIR": main_dir / "cache",
        # images of the synthetic (offline-world) datasets; their caches go to DATA_CACHE_DIR
        "SYNTH_DATA_DIR": data_dir / "synthetic",
        "PRETRAINED_MODEL_DICT": package_dir / "shortname_2_model_path.json",  # read-only package data
        # relative paths of the shortname registry resolve against this folder
        "MODELS_ROOT": main_dir / "experiments",
        "TORCH_CACHE_DIR": tools / "torch_models",
        "TRANSFORMER_CACHE_DIR": tools / "huggingface_models" / "distilbert-base-uncased",
        "MEAN_SMPLX_POSE_FILE": package_dir / "datasets" / "other" / "mean_pose_smplx.npz",
        # Human3.6M joint regressor (17, V) as .npy/.npz (never a pickle), V = the body model's vertex count:
        # the standard 14-joint mesh-recovery protocol is skipped, saying so, when this file is absent
        "H36M_REGRESSOR_FILE": tools / "J_regressor_h36m.npy",
        # a WordNet 3.0 database folder for METEOR (None: nltk's data path, then the distribution's
        # /usr/share/wordnet that `make install` installs)
        "WORDNET_DIR": None,
    }


_CONSTANTS: dict[str, Any] = {
    "NB_INPUT_JOINTS": 22,
    "NB_SHAPE_COEFFS": 10,
    "IMAGENET_DEFAULT_MEAN": (0.485, 0.456, 0.406),
    "IMAGENET_DEFAULT_STD": (0.229, 0.224, 0.225),
    "k_recall_values": (1, 5, 10),
    "k_topk_r_precision": (1, 2, 3),
    "sample_size_r_precision": 200,
    "r_precision_n_repetitions": 10,
    "k_topk_reconstruction_values": (1,),
    "nb_sample_reconstruction": 30,
}


class NonFiniteValueError(argparse.ArgumentTypeError, ValueError):
    """'nan' or 'inf' given where a number is expected: argparse reports it with the flag's name, other callers
    catch it as a ValueError."""


def finite_float(value: str) -> float:
    """`float(value)`, refusing 'nan', 'inf' and '-inf' (`NonFiniteValueError`): no setting of this toolkit
    means them, and NaN passes every `x < 0` check. The argparse `type` of every float flag (scripts, CLI,
    dataclass fields) and the parser of float environment overrides; one copy for all, here because this
    module imports nothing heavy."""
    number = float(value)
    if not math.isfinite(number):
        raise NonFiniteValueError(f"must be a finite number, got {value!r}")
    return number


INT64_MAX = 2**63 - 1
"""Largest int a flag accepts unless it says otherwise: torch and numpy refuse larger ones, deep inside."""
SEED_MAX = 2**32 - 1
"""Largest seed: numpy's `RandomState` / `default_rng` legacy seeding refuses larger ones."""


class IntRangeError(argparse.ArgumentTypeError, ValueError):
    """Not an integer, or one outside the range of its flag: argparse reports it with the flag's name, other
    callers catch it as a ValueError."""


def checked_int(low: int = 0, high: int = INT64_MAX) -> Callable[[str], int]:
    """The argparse `type` of an int flag: `int(value)` in [low, high], else `IntRangeError` (at parse time, so
    `--epochs -1` or `--batch_size 0` is refused naming the flag before any work, not deep inside a DataLoader
    or a seed call). Every int flag of the toolkit uses one (the int twin of `finite_float`); the returned
    function carries `low` and `high` for the flag's help and the tests."""
    if low > high:
        raise ValueError(f"checked_int: low {low} > high {high}")

    def parse(value: str) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise IntRangeError(f"must be an integer, got {value!r}") from None
        if not low <= number <= high:
            bound = f">= {low}" if high == INT64_MAX and number < low else f"in [{low}, {high}]"
            raise IntRangeError(f"must be an integer {bound}, got {number}")
        return number

    parse.__name__ = f"int_{low}_{'max' if high == INT64_MAX else high}"  # argparse names the type by it
    parse.low, parse.high = low, high  # type: ignore[attr-defined]
    return parse


positive_int = checked_int(1)
"""`checked_int(1)`: counts and sizes (`--batch_size`, `--epochs`, `--n-train`...)."""
non_negative_int = checked_int(0)
"""`checked_int(0)`: counts where 0 means none or 'default' (`--num_workers`, `--warmup`, `--threads 0`)."""
seed_int = checked_int(0, SEED_MAX)
"""`checked_int(0, 2**32 - 1)`: seeds."""


def _parse_like(name: str, raw: str, default: Any) -> Any:
    """Parse an environment override with the type of the default value."""
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):  # the int constants are counts and sizes
            return positive_int(raw)
        if isinstance(default, float):
            return finite_float(raw)
        if isinstance(default, tuple):
            kind = type(default[0]) if default else float
            parse = {float: finite_float, int: positive_int}.get(kind, kind)
            return tuple(parse(x) for x in raw.replace(" ", "").split(",") if x)
    except ValueError:
        raise ValueError(
            f"environment variable {ENV_PREFIX}{name}={raw!r} cannot be read as {type(default).__name__} "
            f"(default {default!r})"
        ) from None
    return raw


def read_settings(environ: Mapping[str, str] | None = None, package_dir: Path = PACKAGE_DIR) -> dict[str, Any]:
    """All settings, from defaults and `POSEEMBROIDER_*` overrides in `environ` (default: os.environ).

    `package_dir` is the package folder the defaults are derived from (tests pass a site-packages-like one).
    """
    env = os.environ if environ is None else environ

    def override_path(name: str, default: Path | None) -> Path | None:
        raw = env.get(ENV_PREFIX + name)
        if raw is None:
            return default
        return None if raw.lower() in ("", "none") else Path(raw).expanduser().resolve()

    main_dir = override_path("MAIN_DIR", default_main_dir(env, package_dir)[0])
    assert main_dir is not None
    data_dir = override_path("DATA_DIR", main_dir / "data")
    assert data_dir is not None
    settings: dict[str, Any] = {"MAIN_DIR": main_dir, "DATA_DIR": data_dir}
    for name, default in _path_settings(main_dir, data_dir, package_dir).items():
        settings[name] = override_path(name, default)
    if ENV_PREFIX + "POSESCRIPT_SMPLX_DIR" not in env:  # the original's POSESCRIPT_SMPLX_DIR = POSEFIX_SMPLX_DIR
        settings["POSESCRIPT_SMPLX_DIR"] = settings["POSEFIX_SMPLX_DIR"]
    for name, default in _CONSTANTS.items():
        raw = env.get(ENV_PREFIX + name)
        settings[name] = default if raw is None else _parse_like(name, raw, default)
    return settings


def describe(settings: Mapping[str, Any] | None = None) -> str:
    """A first line saying which root the defaults derive from, then one line per setting, `NAME = value`,
    with `(env)` marking overridden values."""
    settings = read_settings() if settings is None else settings
    width = max(len(k) for k in settings)
    root, origin = default_main_dir()
    lines = [f"# default paths under {root}: {origin}"]
    for name, value in settings.items():
        mark = "  (env)" if ENV_PREFIX + name in os.environ else ""
        lines.append(f"{name:<{width}} = {value}{mark}")
    return "\n".join(lines)


_SETTINGS = read_settings()

MAIN_DIR: Path = _SETTINGS["MAIN_DIR"]
DATA_DIR: Path = _SETTINGS["DATA_DIR"]
GENERAL_EXP_OUTPUT_DIR: Path = _SETTINGS["GENERAL_EXP_OUTPUT_DIR"]
BEDLAM_RAW_DATA_DIR: Path = _SETTINGS["BEDLAM_RAW_DATA_DIR"]
BEDLAM_IMG_DIR: Path = _SETTINGS["BEDLAM_IMG_DIR"]
BEDLAM_PROCESSED_DIR: Path = _SETTINGS["BEDLAM_PROCESSED_DIR"]
THREEDPW_IMG_DIR: Path = _SETTINGS["THREEDPW_IMG_DIR"]
THREEDPW_DIR: Path = _SETTINGS["THREEDPW_DIR"]
POSEFIX_DIR: Path = _SETTINGS["POSEFIX_DIR"]
POSEFIX_SMPLX_DIR: Path = _SETTINGS["POSEFIX_SMPLX_DIR"]
POSESCRIPT_DIR: Path | None = _SETTINGS["POSESCRIPT_DIR"]
POSESCRIPT_SMPLX_DIR: Path = _SETTINGS["POSESCRIPT_SMPLX_DIR"]
SMPLX_BODY_MODEL_PATH: Path = _SETTINGS["SMPLX_BODY_MODEL_PATH"]
PROCEDURAL_BODY_MODEL_PATH: Path = _SETTINGS["PROCEDURAL_BODY_MODEL_PATH"]
DATA_CACHE_DIR: Path = _SETTINGS["DATA_CACHE_DIR"]
SYNTH_DATA_DIR: Path = _SETTINGS["SYNTH_DATA_DIR"]
PRETRAINED_MODEL_DICT: Path = _SETTINGS["PRETRAINED_MODEL_DICT"]
MODELS_ROOT: Path = _SETTINGS["MODELS_ROOT"]
TORCH_CACHE_DIR: Path = _SETTINGS["TORCH_CACHE_DIR"]
TRANSFORMER_CACHE_DIR: Path = _SETTINGS["TRANSFORMER_CACHE_DIR"]
MEAN_SMPLX_POSE_FILE: Path = _SETTINGS["MEAN_SMPLX_POSE_FILE"]
H36M_REGRESSOR_FILE: Path = _SETTINGS["H36M_REGRESSOR_FILE"]
WORDNET_DIR: Path | None = _SETTINGS["WORDNET_DIR"]

NB_INPUT_JOINTS: int = _SETTINGS["NB_INPUT_JOINTS"]
NB_SHAPE_COEFFS: int = _SETTINGS["NB_SHAPE_COEFFS"]
IMAGENET_DEFAULT_MEAN: tuple[float, ...] = _SETTINGS["IMAGENET_DEFAULT_MEAN"]
IMAGENET_DEFAULT_STD: tuple[float, ...] = _SETTINGS["IMAGENET_DEFAULT_STD"]
k_recall_values: tuple[int, ...] = _SETTINGS["k_recall_values"]
k_topk_r_precision: tuple[int, ...] = _SETTINGS["k_topk_r_precision"]
sample_size_r_precision: int = _SETTINGS["sample_size_r_precision"]
r_precision_n_repetitions: int = _SETTINGS["r_precision_n_repetitions"]
k_topk_reconstruction_values: tuple[int, ...] = _SETTINGS["k_topk_reconstruction_values"]
nb_sample_reconstruction: int = _SETTINGS["nb_sample_reconstruction"]


def current_settings() -> dict[str, Any]:
    """Every setting as this module holds it now: the values read at import, plus any a caller has set
    since (tests, command-line flags). `apply_settings` of it in another process gives that process the
    same configuration (a spawned process would read only the environment again)."""
    module = sys.modules[__name__]
    return {name: getattr(module, name) for name in _SETTINGS}


def apply_settings(settings: Mapping[str, Any]) -> None:
    """Set this module's settings to `settings` (names of `read_settings`); an unknown name is refused."""
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise KeyError(f"unknown configuration setting(s) {unknown}; known: {sorted(_SETTINGS)}")
    module = sys.modules[__name__]
    for name, value in settings.items():
        setattr(module, name, value)
