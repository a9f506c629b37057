"""The importer registry: one `Importer` per kind of release checkpoint (`args.model` of the original trainer).

An importer is a key mapping (`rules`, plus `ignore`d keys consumed elsewhere and our keys the model
`provide`s itself) and a config mapping (`build_config`: stored args + state-dict shapes -> our config
dataclass). Registering one is all a new kind needs::

    register_importer(Importer(
        kind="HPSEstimator",                      # args.model of the original's checkpoints of that kind
        model_class=HPSEstimator,                 # a @register_model class built as cls(config)
        rules=(KeyRule("pose_prediction_head.{rest}", "pose_head.{rest}"), ...),
        build_config=hps_config,                  # (ReleaseCheckpoint, ImportContext) -> HPSEstimatorConfig
    ))

`build_config` reaches the other models through the `ImportContext`: `ctx.require(shortname)` imports a
dependency first (the core model a head was trained on) and returns the name to write in the config;
`ctx.image_encoder()` / `ctx.text_backbone(...)` make the frozen-encoder folders (`assets`); `ctx.encoder_fields`
gives the feature widths and weight fingerprints of frozen encoders, as trained core models store them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseembroider.atomic_io import atomic_directory, write_json_atomic
from poseembroider.compat.assets import DISTILBERT_POSITION_IDS, import_smplerx, write_distilbert_folder
from poseembroider.compat.release_files import ReleaseCheckpoint, ReleaseLayout, read_release_checkpoint
from poseembroider.compat.state_mapping import KeyRule, map_state_dict
from poseembroider.encoders import FrozenEncoders
from poseembroider.model import encoder_fields
from poseembroider.models.pretrained import CheckpointError, build_model, load_state_dict_checked
from poseembroider.registry import Registry, register

__all__ = [
    "IMPORTERS",
    "PROVENANCE_NAME",
    "ImportContext",
    "Importer",
    "register_importer",
    "shape_of",
]

PROVENANCE_NAME = "original_release.json"
"""File written beside config.json in every imported folder: the source file, its epoch and stored args."""
SMPLERX_SHORTNAME = "smpler_x_b32"
"""Shortname (and folder name) of the imported SMPLer-X image encoder."""
DISTILBERT_SHORTNAME = "distilbert-base-uncased"
"""Shortname (and folder name) of the imported DistilBERT text backbone: PoseText's copy, the one the core models
read; a different copy (another model's) is suffixed with that model's shortname."""
ENCODER_SHORTNAMES = {"pose": "posevae_model_bedlamscript", "text": "posetext_model_bedlamscript"}
"""Registry entries the original reads its frozen pose and text encoders from (whatever a core model's args say)."""


def state_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of a state dict (key order ignored)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def shape_of(ckpt: ReleaseCheckpoint, key: str, ndim: int | None = None) -> tuple[int, ...]:
    """Shape of `key` in a release state dict: what the config mapping reads widths from; an absent key (or
    one of another rank) is an error naming the file and the key."""
    if key not in ckpt.state:
        raise CheckpointError(f"{ckpt.path}: missing key {key!r} (needed to read the architecture)")
    shape = tuple(ckpt.state[key].shape)
    if ndim is not None and len(shape) != ndim:
        raise CheckpointError(f"{ckpt.path}: key {key!r} has shape {shape}, expected {ndim} dimensions")
    return shape


def count_indices(ckpt: ReleaseCheckpoint, prefix: str) -> int:
    """Number of distinct `<prefix><n>.` indices in the state dict (layers of an nn.ModuleList)."""
    return len({k[len(prefix) :].split(".")[0] for k in ckpt.state if k.startswith(prefix)})


@dataclass(frozen=True)
class Importer:
    """Key mapping + config mapping of one kind of release checkpoint (see the module docstring)."""

    kind: str
    model_class: type[nn.Module]
    rules: tuple[KeyRule, ...]
    build_config: Callable[[ReleaseCheckpoint, ImportContext], Any]
    ignore: tuple[str, ...] = ()  # regexes of original keys consumed elsewhere or recomputed
    provided: tuple[str, ...] = ()  # prefixes of our keys that the model fills itself (frozen parts)
    check: Callable[[ReleaseCheckpoint], None] | None = None  # extra checks of ignored content (e.g. tables)

    def convert(self, ckpt: ReleaseCheckpoint, ctx: ImportContext) -> nn.Module:
        """Our model (eval mode) with the checkpoint's weights; errors name the file, keys and shapes."""
        if self.check is not None:
            self.check(ckpt)
        try:
            config = self.build_config(ckpt, ctx)
        except (ValueError, TypeError) as err:  # the config's own checks refusing a value of `args`
            if type(err).__module__.split(".")[0] == "poseembroider":
                raise
            raise CheckpointError(f"{ckpt.path}: its args give no valid {self.kind} config ({err})") from None
        model = build_model(self.model_class, config, ckpt.path)
        state = map_state_dict(ckpt.state, self.rules, model.state_dict(), ckpt.path, self.ignore, self.provided)
        load_state_dict_checked(model, state, ckpt.path, strict=False)
        return model.eval()


IMPORTERS: Registry[Importer] = Registry("release importer")
"""Importers by kind (`args.model`)."""


def register_importer(importer: Importer) -> Importer:
    """Add `importer` under its kind (a kind registered twice is an error)."""
    IMPORTERS.register(importer.kind)(importer)
    return importer


@dataclass
class ImportContext:
    """State of one import run: the release, the output folder, what was written, cached encoder fields.

    Every folder written is registered under its shortname at once, so later configs can name it and the
    models built to check them find it (`register`, in `MODELS_ROOT/shortname_2_model_path.json`)."""

    layout: ReleaseLayout
    out_dir: Path
    import_shortname: Callable[[str], Path] | None = None  # set by the runner: imports one shortname
    written: dict[str, Path] = field(default_factory=dict)
    _text_backbones: dict[str, str] = field(default_factory=dict)  # weights fingerprint -> shortname
    _encoder_fields: dict[tuple, dict[str, Any]] = field(default_factory=dict)

    def checkpoint(self, shortname: str) -> ReleaseCheckpoint:
        return read_release_checkpoint(self.layout.checkpoint_path(shortname), shortname)

    def require(self, shortname: str) -> str:
        """Import `shortname` first if this run has not (a dependency); returns the name for configs."""
        if shortname not in self.written:
            if self.import_shortname is None:
                raise RuntimeError("ImportContext.require needs the runner's import_shortname")
            self.import_shortname(shortname)
        return shortname

    def write(self, shortname: str, model: nn.Module, provenance: Mapping[str, Any]) -> Path:
        """Save `model` (its `save_pretrained`) as `<out>/<shortname>` with the provenance file; register it."""
        folder = self.out_dir / shortname
        with atomic_directory(folder) as tmp:
            model.save_pretrained(tmp)  # type: ignore[operator]
            write_json_atomic(tmp / PROVENANCE_NAME, dict(provenance), default=str)
        return self._registered(shortname, folder)

    def _registered(self, shortname: str, folder: Path) -> Path:
        register(shortname, folder)
        self.written[shortname] = folder
        return folder

    def image_encoder(self) -> str:
        """The SMPLer-X image encoder folder (written on first call); its shortname."""
        if SMPLERX_SHORTNAME not in self.written:
            source = self.layout.smplerx_file()
            folder = import_smplerx(source, self.out_dir / SMPLERX_SHORTNAME)
            write_json_atomic(folder / PROVENANCE_NAME, {"kind": "SMPLer-X ViT", "source": str(source)})
            self._registered(SMPLERX_SHORTNAME, folder)
        return SMPLERX_SHORTNAME

    def text_backbone(self, state: Mapping[str, torch.Tensor], source: ReleaseCheckpoint, owner: str) -> str:
        """A DistilBERT folder holding the weights `state` (the copy inside `source`, prefix removed); one folder
        per distinct copy: PoseText's named `distilbert-base-uncased`, a different one suffixed with `owner`."""
        digest = state_fingerprint({k: v for k, v in state.items() if k != DISTILBERT_POSITION_IDS})
        if digest in self._text_backbones:
            return self._text_backbones[digest]
        name = DISTILBERT_SHORTNAME if owner == ENCODER_SHORTNAMES["text"] else f"{DISTILBERT_SHORTNAME}_{owner}"
        folder = write_distilbert_folder(self.layout.distilbert_dir(), state, source.path, self.out_dir / name)
        write_json_atomic(
            folder / PROVENANCE_NAME,
            {"kind": "DistilBERT", "weights": str(source.path), "architecture": str(self.layout.distilbert_dir())},
        )
        self._registered(name, folder)
        self._text_backbones[digest] = name
        return name

    def encoder_fields(self, names: Mapping[str, str]) -> dict[str, Any]:
        """Feature widths and weight fingerprints of the frozen encoders `names` ({modality: name}), built once."""
        key = tuple(sorted(names.items()))
        if key not in self._encoder_fields:
            self._encoder_fields[key] = encoder_fields(FrozenEncoders(dict(names)))
        return self._encoder_fields[key]


def provenance(ckpt: ReleaseCheckpoint, shortname: str) -> dict[str, Any]:
    """What `ImportContext.write` stores beside an imported model."""
    return {
        "shortname": shortname,
        "kind": ckpt.kind,
        "source": str(ckpt.path),
        "source_bytes": os.path.getsize(ckpt.path),
        "epoch": ckpt.epoch,
        "args": ckpt.args,
    }
