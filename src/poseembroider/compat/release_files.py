"""The original's release files: where they are, and reading them without unpickling anything but data.

Layout of a release folder (`released_checkpoints.md` §1, the original's `tools/` and `experiments/` folders;
every place has a fallback so that the folder can be arranged either way):

    <release>/shortname_2_model_path.json          optional: {shortname: checkpoint path}
    <release>/pretrained_models/<shortname>/checkpoint_release[_noencoderweights].pth
      (or <release>/<shortname>/..., or <release>/experiments/pretrained_models/<shortname>/...)
    <release>/huggingface_models/distilbert-base-uncased/     (--transformer-cache DIR: DIR/distilbert-base-uncased
                                                               or DIR itself)
    <release>/torch_models/smplerx/smpler_x_b32.pth.tar        (--torch-cache DIR: DIR/smplerx/smpler_x_b32.pth.tar)

The registry holds paths as the original wrote them (relative `experiments/pretrained_models/...` in the
repository, absolute ones after the README's edit): a path that does not exist here is looked up by shortname
inside the release folder.

Checkpoints are `torch.save` dicts {epoch, model, optimizer, scheduler, args, best_score | best_val_loss}
whose `args` is an `argparse.Namespace` (§2). They are read with `torch.load(weights_only=True)` with exactly
one class allowed beyond tensors and plain containers, `argparse.Namespace`; the file's globals are listed
first (`torch.serialization.get_unsafe_globals_in_checkpoint`), so a file carrying any other (a planted class
or function) is refused with an error naming the file and the globals, before anything is unpickled.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from poseembroider.models.pretrained import CheckpointError

__all__ = [
    "ALLOWED_GLOBALS",
    "RELEASE_REGISTRY_NAME",
    "ReleaseCheckpoint",
    "ReleaseLayout",
    "read_release_checkpoint",
]

ALLOWED_GLOBALS: tuple[type, ...] = (argparse.Namespace,)
"""Classes a release checkpoint may carry beyond what `weights_only` loading always allows."""

RELEASE_REGISTRY_NAME = "shortname_2_model_path.json"
CHECKPOINT_NAMES = ("checkpoint_release.pth", "checkpoint_release_noencoderweights.pth")
"""Checkpoint file names of the release, looked for in this order inside a shortname folder."""
CHECKPOINT_FOLDERS = ("pretrained_models", "", "experiments/pretrained_models")
"""Sub-folders of the release folder that may hold the `<shortname>/` folders."""
DISTILBERT_SUBDIR = "distilbert-base-uncased"
SMPLERX_RELATIVE = Path("smplerx") / "smpler_x_b32.pth.tar"
ARG_VALUE_TYPES = (str, int, float, bool, type(None), list, tuple)


def _global_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class ReleaseCheckpoint:
    """One release checkpoint read safely: its `args` as a plain dict, its state dict, and where it came from."""

    path: Path
    args: dict[str, Any]
    state: dict[str, torch.Tensor]
    epoch: int | None = None
    extra_keys: tuple[str, ...] = ()  # other top-level keys (optimizer, scheduler, best_score, ...): ignored
    shortname: str = ""  # the release shortname it was read for (empty when read by path)

    @property
    def kind(self) -> str:
        """The model class the original trained (`args.model`: 'PoseVAE', 'PoseText', 'PoseEmbroider', ...)."""
        model = self.args.get("model")
        if not isinstance(model, str) or not model:
            raise CheckpointError(f"{self.path}: its args have no 'model' name (got {model!r}); cannot tell its kind")
        return model

    def arg(self, name: str, expected: type | tuple[type, ...] | None = None) -> Any:
        """`args.<name>`, or an error naming the file and the argument when it is absent or of the wrong type."""
        if name not in self.args:
            raise CheckpointError(f"{self.path}: args has no {name!r} (a release checkpoint of the original has it)")
        value = self.args[name]
        if expected is not None and not isinstance(value, expected):
            names = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
            raise CheckpointError(f"{self.path}: args.{name} = {value!r}, expected a {names}")
        return value


def _refuse_unsafe_globals(path: Path) -> None:
    """Raise CheckpointError naming `path` and every pickled global outside the allow-list."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as err:  # noqa: BLE001 - not a zip / legacy torch file: the load below says so
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err}); it may be truncated, or "
            "written by torch < 1.6 (legacy format)"
        ) from None
    allowed = {_global_name(cls) for cls in ALLOWED_GLOBALS}
    unsafe = sorted(set(found) - allowed)
    if unsafe:
        raise CheckpointError(
            f"refusing to load {path}: it carries pickled global(s) {unsafe} beyond the allowed "
            f"{sorted(allowed)}; a release checkpoint of the original holds only tensors, plain containers and "
            "its argparse.Namespace. Unpickling other globals could run code from the file."
        )


def _plain_args(value: Any, path: Path) -> dict[str, Any]:
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if not isinstance(value, Mapping):
        raise CheckpointError(f"{path}: 'args' is a {type(value).__name__}, expected an argparse.Namespace")
    args = dict(value)
    bad = sorted(k for k, v in args.items() if not isinstance(v, ARG_VALUE_TYPES))
    if bad:
        raise CheckpointError(f"{path}: args field(s) {bad} hold values that are not str/int/float/bool/None/list")
    return args


def read_release_checkpoint(path: str | os.PathLike, shortname: str = "") -> ReleaseCheckpoint:
    """Read a release checkpoint with `weights_only=True`, allowing `argparse.Namespace` and nothing else.

    Errors (`CheckpointError` / `FileNotFoundError`) name the file: missing, not a torch file, a pickled global
    outside the allow-list (named), no `model` state dict of tensors, no `args`. A `model` value may carry
    non-tensor entries only as the original's stray `_metadata`; any other is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"release checkpoint not found: {path}")
    _refuse_unsafe_globals(path)
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # defence in depth: the listing above should have caught it
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        names = re.findall(r"GLOBAL ([\w.]+)", str(err))
        raise CheckpointError(f"refusing to load {path}: {names or first}") from None
    except Exception as err:  # noqa: BLE001 - corrupt zip, EOF: an unreadable file
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, expected the original's checkpoint dict")
    missing = [k for k in ("model", "args") if k not in data]
    if missing:
        raise CheckpointError(f"{path} lacks {missing} (top-level keys: {sorted(map(str, data))})")
    model = data["model"]
    if not isinstance(model, Mapping):
        raise CheckpointError(f"{path}: 'model' is a {type(model).__name__}, expected a state dict")
    bad = sorted(str(k) for k, v in model.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(f"{path}: 'model' entries that are not tensors: {bad[:10]}")
    epoch = data.get("epoch")
    return ReleaseCheckpoint(
        path=path,
        args=_plain_args(data["args"], path),
        state=dict(model),
        epoch=int(epoch) if isinstance(epoch, (int, float)) else None,
        extra_keys=tuple(sorted(str(k) for k in data if k not in ("model", "args", "epoch"))),
        shortname=shortname or path.parent.name,
    )


@dataclass
class ReleaseLayout:
    """Where the files of one release are (see the module docstring); nothing is read at construction."""

    release_dir: Path
    transformer_cache_dir: Path | None = None
    torch_cache_dir: Path | None = None
    _registry: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.release_dir = Path(self.release_dir).expanduser()
        if not self.release_dir.is_dir():
            raise FileNotFoundError(f"release folder not found: {self.release_dir}")
        for name in ("transformer_cache_dir", "torch_cache_dir"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value).expanduser())

    # ---------------------------------------------------------------- checkpoints

    def registry(self) -> dict[str, str]:
        """The release's `shortname_2_model_path.json` ({} when the folder has none)."""
        if self._registry is None:
            path = self.release_dir / RELEASE_REGISTRY_NAME
            data: Any = {}
            if path.is_file():
                try:
                    data = json.loads(path.read_text())
                except json.JSONDecodeError as err:
                    raise CheckpointError(f"{path} is not valid JSON: {err}") from None
                if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                    raise CheckpointError(f"{path} must be a JSON object mapping shortnames to checkpoint paths")
            self._registry = dict(data)
        return self._registry

    def _shortname_folders(self, shortname: str) -> list[Path]:
        return [self.release_dir / sub / shortname for sub in CHECKPOINT_FOLDERS]

    def checkpoint_path(self, shortname: str) -> Path:
        """The checkpoint of `shortname`: the registry's path when it exists here, else the shortname folder's
        `checkpoint_release*.pth` (also the registry path's file name) inside the release folder."""
        registered = self.registry().get(shortname)
        names = list(CHECKPOINT_NAMES)
        if registered:
            path = Path(registered).expanduser()
            if not path.is_absolute():
                path = self.release_dir / path
            if path.is_file():
                return path
            names.insert(0, Path(registered).name)
        for folder in self._shortname_folders(shortname):
            for name in names:
                if (folder / name).is_file():
                    return folder / name
        where = ", ".join(str(f) for f in self._shortname_folders(shortname))
        hint = f" (the registry says {registered!r}, not found here)" if registered else ""
        raise FileNotFoundError(f"no checkpoint for {shortname!r}{hint}: looked for {names} in {where}")

    def shortnames(self) -> list[str]:
        """The shortnames of the release: the registry's keys, and every shortname folder holding a checkpoint."""
        names = set(self.registry())
        for sub in CHECKPOINT_FOLDERS:
            folder = self.release_dir / sub
            if folder.is_dir():
                names.update(p.name for p in folder.iterdir() if any((p / n).is_file() for n in CHECKPOINT_NAMES))
        return sorted(names)

    # ---------------------------------------------------------------- frozen-encoder assets

    def distilbert_dir(self) -> Path:
        """The distilbert-base-uncased folder (config.json + tokenizer files)."""
        if self.transformer_cache_dir is not None:
            candidates = [self.transformer_cache_dir / DISTILBERT_SUBDIR, self.transformer_cache_dir]
        else:
            candidates = [
                self.release_dir / "huggingface_models" / DISTILBERT_SUBDIR,
                self.release_dir / DISTILBERT_SUBDIR,
            ]
        for folder in candidates:
            if (folder / "config.json").is_file():
                return folder
        raise FileNotFoundError(
            f"distilbert-base-uncased folder not found (looked for config.json in {', '.join(map(str, candidates))}); "
            "give it with --transformer-cache DIR (the original's TRANSFORMER_CACHE_DIR)"
        )

    def smplerx_file(self) -> Path:
        """The SMPLer-X ViT-B checkpoint `smpler_x_b32.pth.tar`."""
        if self.torch_cache_dir is not None:
            candidates = [self.torch_cache_dir / SMPLERX_RELATIVE, self.torch_cache_dir / SMPLERX_RELATIVE.name]
        else:
            candidates = [self.release_dir / "torch_models" / SMPLERX_RELATIVE, self.release_dir / SMPLERX_RELATIVE]
        for path in candidates:
            if path.is_file():
                return path
        raise FileNotFoundError(
            f"SMPLer-X checkpoint not found (looked for {', '.join(map(str, candidates))}); give it with "
            "--torch-cache DIR (the original's TORCH_CACHE_DIR, holding smplerx/smpler_x_b32.pth.tar)"
        )
