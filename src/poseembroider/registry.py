"""Shortname -> model directory registry, and the one generic name -> builder registry (`Registry`).

Two JSON files `{shortname: path}` are merged, the second one winning:

1. the packaged `shortname_2_model_path.json` (`config.PRETRAINED_MODEL_DICT`): the names of the
   released models of the paper, at fixed places under the models root; only ever read (it may sit in a
   read-only site-packages);
2. the local `MODELS_ROOT/shortname_2_model_path.json`: models trained on this machine (`register`), in
   the checkout's `experiments/` or, for an installed package, the user folder (see `config.py`).

Relative paths resolve against `config.MODELS_ROOT`; absolute paths are allowed. Unlike the
original, nothing needs editing after cloning.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from poseembroider import config
from poseembroider.atomic_io import exclusive_lock, write_json_atomic

LOCAL_REGISTRY_NAME = "shortname_2_model_path.json"

Builder = TypeVar("Builder", bound=Callable)


class Registry(Generic[Builder]):
    """Builders of one kind of thing by name (tokenizers, text backbones, ...), filled by a decorator:

        TOKENIZERS: Registry[Callable[..., Tokenizer]] = Registry("tokenizer")

        @TOKENIZERS.register("distilbertUncased")
        def distilbert_uncased(folder=None, max_length=None) -> Tokenizer: ...

    Registering a name twice is an error (two modules fighting over a name would otherwise depend on import
    order), and so is asking for an unknown name, with the known ones listed.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Builder] = {}

    def register(self, name: str) -> Callable[[Builder], Builder]:
        def add(builder: Builder) -> Builder:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return add

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._builders)

    def get(self, name: str) -> Builder:
        if name not in self._builders:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {self.names()}")
        return self._builders[name]

    def build(self, name_or_folder: str | os.PathLike, from_folder: Callable[[Path], object], **kwargs: object):
        """The registered builder of `name_or_folder` called with `kwargs`, else `from_folder(path)` when it is
        an existing folder (a model saved outside the registry) or a model shortname (`resolve`: e.g. the text
        backbone folder written by `poseembroider import-original`); anything else is an error naming the ways."""
        key = str(name_or_folder)
        if key in self._builders:
            return self._builders[key](**kwargs)
        if Path(name_or_folder).is_dir():
            return from_folder(Path(name_or_folder))
        if key in load_registry():
            return from_folder(resolve(key))
        raise KeyError(
            f"{key!r} is neither a registered {self.kind} ({self.names()}) nor a folder, nor a model shortname"
        )


class UnknownShortnameError(KeyError):
    """Raised when a name is neither a registered shortname nor an existing path."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass(frozen=True)
class RegistryEntry:
    shortname: str
    path: Path  # absolute
    source: Path  # the JSON file that defines it

    @property
    def exists(self) -> bool:
        return self.path.exists()


def _read_registry_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"model registry {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"model registry {path} must be a JSON object mapping shortnames to path strings")
    return data


def _absolute(path: str, models_root: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else models_root / p


def load_registry(packaged: Path | None = None, models_root: Path | None = None) -> dict[str, RegistryEntry]:
    """All registered shortnames, local entries overriding packaged ones."""
    packaged = config.PRETRAINED_MODEL_DICT if packaged is None else packaged
    models_root = config.MODELS_ROOT if models_root is None else models_root
    entries: dict[str, RegistryEntry] = {}
    for source in (packaged, models_root / LOCAL_REGISTRY_NAME):
        for name, path in _read_registry_file(source).items():
            entries[name] = RegistryEntry(name, _absolute(path, models_root), source)
    return entries


def list_models(packaged: Path | None = None, models_root: Path | None = None) -> list[str]:
    """The registered shortnames (`poseembroider.list_models()`), sorted: what `from_pretrained` accepts
    besides folders."""
    return sorted(load_registry(packaged, models_root))


def resolve(
    name_or_path: str | os.PathLike,
    must_exist: bool = True,
    packaged: Path | None = None,
    models_root: Path | None = None,
) -> Path:
    """The model directory for a shortname, or the given path itself when it exists.

    Raises `UnknownShortnameError` listing the known shortnames when `name_or_path` is neither, and
    `FileNotFoundError` when a registered shortname points to a missing directory (`must_exist`).
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        return candidate.resolve()
    entries = load_registry(packaged, models_root)
    name = str(name_or_path)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "(none)"
        raise UnknownShortnameError(
            f"unknown model shortname or missing path {name!r}. Known shortnames: {known}. "
            "Run `poseembroider models list` to see where each one points."
        )
    entry = entries[name]
    if must_exist and not entry.exists:
        raise FileNotFoundError(
            f"shortname {name!r} points to {entry.path}, which does not exist "
            f"(defined in {entry.source}; relative paths resolve against MODELS_ROOT="
            f"{models_root or config.MODELS_ROOT}). Train or download the model, or set "
            "POSEEMBROIDER_MODELS_ROOT."
        )
    return entry.path


_SHORTNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_shortname(shortname: str) -> str:
    """`shortname` if it can be registered (letters, digits, '_', '-', '.', not starting with '.' or '-'), else a
    ValueError saying why. Scripts call it on `--shortname` at parse time, before any training."""
    if not isinstance(shortname, str) or not _SHORTNAME.fullmatch(shortname):
        raise ValueError(
            f"invalid shortname {shortname!r}: use letters, digits, '_', '-' and '.' (not first), e.g. my_model-v2"
        )
    return shortname


def register(shortname: str, model_dir: str | os.PathLike, models_root: Path | None = None) -> Path:
    """Add or update `shortname` in the local registry (atomic write, under `exclusive_lock`: concurrent
    registrations are all kept; the same shortname registered twice points at the last one); returns the
    registry file.

    Paths under the models root are stored relative to it, so the folder can be moved.
    """
    check_shortname(shortname)
    models_root = (config.MODELS_ROOT if models_root is None else models_root).resolve()
    target = Path(model_dir).expanduser().resolve()
    try:
        stored = str(target.relative_to(models_root))
    except ValueError:
        stored = str(target)
    registry_file = models_root / LOCAL_REGISTRY_NAME
    if registry_file.resolve().is_relative_to(config.PACKAGE_DIR):
        raise ValueError(
            f"refusing to write the model registry {registry_file} inside the package folder "
            f"{config.PACKAGE_DIR}: set {config.ENV_PREFIX}MODELS_ROOT to a writable folder"
        )
    # read-modify-write under the registry's lock: two trainings registering at once keep both entries
    with exclusive_lock(registry_file, "model registry", wait=True):
        data = _read_registry_file(registry_file)
        data[shortname] = stored
        return write_json_atomic(registry_file, data, sort_keys=True)
