"""Models that save and load themselves: `config.json` + `model.safetensors`, never a pickle.

A model is an `nn.Module` built from one config dataclass (`Model(config)`, kept as `model.config`).
Mix `PretrainedModel` in and register the class by name::

    @dataclass
    class PoseTextConfig:
        latentD: int = 512  # size of the joint embedding space

    @register_model
    class PoseText(PretrainedModel, nn.Module):
        config_class = PoseTextConfig

        def __init__(self, config: PoseTextConfig):
            super().__init__()
            self.config = config
            ...

    model.save_pretrained("experiments/posetext")      # config.json + model.safetensors
    PoseText.from_pretrained("experiments/posetext")   # or a shortname of the model registry
    load_pretrained("posetext_model_bedlamscript")     # any registered class, chosen by config.json

`config.json` holds `{"format_version", "model_class", "model_module", "config_class", "config": {...}}`;
the class is looked up in the registry filled by `@register_model` (no string `eval`). Weights are loaded
strictly: a missing or unexpected key, or a shape mismatch, is an error naming the key (and both shapes).
Tied parameters (one tensor under several names) are stored once and re-linked on load.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import os
import struct
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from poseembroider.atomic_io import atomic_file, write_json_atomic

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
_TIED_KEY = "poseembroider.tied"  # safetensors metadata: JSON {alias: canonical name}
_MAX_LISTED = 20  # keys listed in an error message before "... and N more"

M = TypeVar("M", bound=nn.Module)
T = TypeVar("T")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: corrupt file, wrong keys or shapes, unsafe content."""


class UnknownModelError(KeyError):
    """A `model_class` name that no `@register_model` class answers to."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


# --------------------------------------------------------------------------- model class registry

_MODEL_REGISTRY: dict[str, type[nn.Module]] = {}


def register_model(cls: type[M] | None = None, *, name: str | None = None) -> Any:
    """Class decorator: make `cls` loadable by `load_pretrained` under `name` (default: the class name).

    Usable bare (`@register_model`) or with a name (`@register_model(name="PoseText")`). Registering a
    different class under a taken name is an error; re-registering the same class (module reload) is not.
    """

    def decorate(klass: type[M]) -> type[M]:
        key = name or klass.__name__
        if not isinstance(getattr(klass, "config_class", None), type) or not dataclasses.is_dataclass(
            klass.config_class
        ):
            raise TypeError(f"@register_model: {klass.__name__}.config_class must be a dataclass type")
        previous = _MODEL_REGISTRY.get(key)
        if previous is not None and (previous.__module__, previous.__qualname__) != (
            klass.__module__,
            klass.__qualname__,
        ):
            raise ValueError(
                f"model name {key!r} is already registered by {previous.__module__}.{previous.__qualname__}"
            )
        klass.registered_name = key  # type: ignore[attr-defined]
        _MODEL_REGISTRY[key] = klass
        return klass

    return decorate(cls) if cls is not None else decorate


def model_name(cls: type) -> str:
    """The name a class is registered under (its own `@register_model` name, not a parent's)."""
    return cls.__dict__.get("registered_name", cls.__name__)


def list_models() -> list[str]:
    """Names of the registered model classes (those imported so far), sorted."""
    return sorted(_MODEL_REGISTRY)


def get_model_class(name: str, module: str | None = None) -> type[nn.Module]:
    """The class registered under `name`.

    When it is not registered yet and `module` is a `poseembroider.*` module (as written in config.json),
    that module is imported first, since importing it runs its `@register_model` decorators. Other modules
    are never imported from a file's content.
    """
    if name not in _MODEL_REGISTRY and module and (module == "poseembroider" or module.startswith("poseembroider.")):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    if name not in _MODEL_REGISTRY:
        known = ", ".join(list_models()) or "(none)"
        raise UnknownModelError(
            f"unknown model class {name!r}. Registered model classes: {known}. "
            "Import the module that defines it (its class must be decorated with @register_model)."
        )
    return _MODEL_REGISTRY[name]


# --------------------------------------------------------------------------- config dataclass <-> JSON


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain JSON-able data (nested dataclasses become dicts)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config), default=_json_default))


_BUILTIN_NAMES: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": bool, "Path": Path}


def dataclass_field_types(cls: type) -> dict[str, Any]:
    """Resolved annotation of every field of dataclass `cls` (strings from `from __future__ import
    annotations` included); unresolvable ones fall back to builtin names, else `Any`."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - local classes whose annotations name local types
        hints = {}
    resolved = {}
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name, f.type)
        if isinstance(tp, str):
            tp = _BUILTIN_NAMES.get(tp, Any)
        resolved[f.name] = tp
    return resolved


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """JSON value -> the annotated type (lists to tuples, dicts to nested dataclasses, ints to floats)."""
    if value is None:
        return None
    if _is_union(tp):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(options[0], value, where) if len(options) == 1 else value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return config_from_dict(tp, value, source=where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(args[0], v, where) for v in value]
        elif origin is tuple and args and len(args) == len(value):
            items = [_coerce(a, v, where) for a, v in zip(args, value, strict=True)]
        else:
            items = [_coerce(args[0], v, where) for v in value] if args else list(value)
        return tuple(items) if origin is tuple else items
    if tp is tuple and isinstance(value, list):
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    _check_scalar(tp, value, where)
    return value


_SCALAR_TYPES: dict[Any, tuple[type, ...]] = {bool: (bool,), int: (int,), float: (float,), str: (str,), Path: (str,)}


def _check_scalar(tp: Any, value: Any, where: str) -> None:
    """A JSON value of the wrong type for a scalar field (a string for an int, a bool for a float...) is a
    CheckpointError naming the file and key, not a TypeError from deep inside the model's constructor."""
    expected = _SCALAR_TYPES.get(tp)
    if expected is None:
        return
    wrong = not isinstance(value, expected) or (tp is not bool and isinstance(value, bool))
    if wrong:
        raise CheckpointError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")


def _check_range(f: dataclasses.Field, value: Any, where: str) -> None:
    """An int field outside the [`min`, `max`] of its metadata (the range its command-line flag accepts, see
    `config_field`) is a CheckpointError: a size of 0 or -3 read from a config.json, refused before the model
    is built. Lists of ints are checked item by item."""
    low, high = f.metadata.get("min"), f.metadata.get("max")
    if low is None and high is None:
        return
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(item, int) and not isinstance(item, bool):
            if (low is not None and item < low) or (high is not None and item > high):
                raise CheckpointError(f"{where}: {item} is outside [{low}, {high}]")


def config_from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Rebuild dataclass `cls` from `config_to_dict` output; unknown fields are an error naming them."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass type")
    if not isinstance(data, Mapping):
        raise CheckpointError(
            f"{source}: the config of {cls.__name__} must be a JSON object, got {type(data).__name__}"
        )
    init_fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - init_fields)
    if unknown:
        raise CheckpointError(
            f"{source}: unknown field(s) {unknown} for {cls.__name__} (known: {sorted(init_fields)}). "
            "Was it written by another version of the model?"
        )
    hints = dataclass_field_types(cls)
    kwargs = {k: _coerce(hints.get(k, Any), v, f"{source}: key {k!r}") for k, v in data.items()}
    for f in dataclasses.fields(cls):
        _check_range(f, kwargs.get(f.name), f"{source}: key {f.name!r}")
    try:
        return cls(**kwargs)  # type: ignore[call-arg]
    except (ValueError, TypeError) as err:  # the config's own checks (__post_init__) refusing a value
        raise CheckpointError(f"{source}: {cls.__name__}: {err}") from None


# --------------------------------------------------------------------------- state dict <-> safetensors


def _limited(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else "")


def save_state_dict(
    state: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write a state dict as safetensors, atomically.

    safetensors refuses tensors that share memory: a tensor registered under several names (tied
    weights) is stored once under its first name, the aliases listed in the metadata; other tensors
    that share storage (views) are copied.
    """
    path = Path(path)
    kept: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    storages: dict[int, int] = {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state dict entry {name!r} is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach()
        if tensor.numel() > 0:
            ptr = tensor.untyped_storage().data_ptr()
            view = (tensor.device, ptr, tensor.storage_offset(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
            if view in seen:
                tied[name] = seen[view]
                continue
            seen[view] = name
            storages[ptr] = storages.get(ptr, 0) + 1
        kept[name] = tensor
    for name, tensor in kept.items():
        shared = tensor.numel() > 0 and storages[tensor.untyped_storage().data_ptr()] > 1
        if shared or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        kept[name] = tensor.cpu()
    meta = {"format": "pt", **(metadata or {})}
    if tied:
        meta[_TIED_KEY] = json.dumps(tied, sort_keys=True)
    return write_safetensors(kept, path, meta)


def write_safetensors(
    tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> Path:
    """`safetensors.torch.save_file`, atomically and with the same bytes for the same tensors and metadata.

    safetensors keeps the metadata in a hash map serialised in a random order (per process, and per call
    within one): two saves of the same weights differed in their header, so a training run killed and
    resumed never ended byte-identical to an uninterrupted one. The header is rewritten in place with the
    metadata keys sorted (same JSON text otherwise, so the same length; the data is not touched)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata) if metadata else None)
        if metadata and len(metadata) > 1:
            _sort_safetensors_metadata(tmp)
    return path


def _sort_safetensors_metadata(path: Path) -> None:
    """Sort the `__metadata__` keys of a safetensors header in place (see `write_safetensors`)."""
    with open(path, "r+b") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))  # keeps its place in the header
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > size:  # not the JSON text safetensors writes: leave the (valid) file as it is
            return
        f.seek(8)
        f.write(text + b" " * (size - len(text)))  # safetensors pads its header with spaces


def read_safetensors_file(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; the one reader of safetensors files in the package.

    Never unpickles anything. A header that lies (a length past the file or over safetensors' 100 MB cap,
    offsets beyond the data or overlapping, a dtype or shape that disagrees with the byte count, a header
    that is not JSON) is refused by safetensors before anything is allocated; every error is a
    `CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device=str(torch.device(device))) as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is not a mapping
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({type(err).__name__}: {str(err)[:300]}). "
            "It may be truncated or corrupt; re-save or re-download it."
        ) from None
    return tensors, metadata


def load_state_dict_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors state dict (tied names re-linked). Never unpickles anything."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    state, metadata = read_safetensors_file(path, device)
    try:
        tied = json.loads(metadata.get(_TIED_KEY, "{}"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: metadata {_TIED_KEY!r} is not JSON ({err})") from None
    if not isinstance(tied, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tied.items()):
        raise CheckpointError(f"{path}: metadata {_TIED_KEY!r} must map names to names, got {str(tied)[:100]}")
    for alias, canonical in tied.items():
        if canonical not in state:
            raise CheckpointError(f"{path}: tied weight {alias!r} points to {canonical!r}, which is not in the file")
        if alias in state:
            raise CheckpointError(f"{path}: tied weight {alias!r} is also stored as a tensor of its own")
        state[alias] = state[canonical]
    return state


def _dtype_kind(dtype: torch.dtype) -> str:
    """'float', 'complex', 'bool' or 'int': tensors of one kind load into each other (float16 -> float32)."""
    if dtype.is_floating_point:
        return "float"
    if dtype.is_complex:
        return "complex"
    return "bool" if dtype == torch.bool else "int"


def _check_finite(state: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Refuse NaN / inf weights: every output of such a model is NaN, with no error anywhere."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source}: NaN or inf values in {len(bad)} tensor(s): {_limited(sorted(bad))}")


def load_state_dict_checked(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str | os.PathLike,
    strict: bool = True,
    allow_missing_prefixes: tuple[str, ...] = (),
) -> None:
    """`module.load_state_dict` with errors that name the file, the keys and both shapes.

    Shape mismatches are always errors; missing / unexpected keys are errors when `strict` (missing
    keys under `allow_missing_prefixes` excepted: weights the model rebuilds itself).
    """
    expected = module.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if mismatched:
        raise CheckpointError(f"{source}: shape mismatch for {len(mismatched)} key(s): {_limited(mismatched)}")
    # load_state_dict casts silently: a bool or int tensor would become 0/1 weights, a float count a wrong count
    retyped = [
        f"{k}: checkpoint {v.dtype} vs model {expected[k].dtype}"
        for k, v in state.items()
        if k in expected and _dtype_kind(v.dtype) != _dtype_kind(expected[k].dtype)
    ]
    if retyped:
        raise CheckpointError(f"{source}: dtype mismatch for {len(retyped)} key(s): {_limited(retyped)}")
    missing = sorted(k for k in expected if k not in state and not k.startswith(allow_missing_prefixes))
    unexpected = sorted(k for k in state if k not in expected)
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing key(s) {_limited(missing)}")
        if unexpected:
            parts.append(f"unexpected key(s) {_limited(unexpected)}")
        raise CheckpointError(
            f"{source} does not match {type(module).__name__}: " + "; ".join(parts) + ". "
            "Was it saved from another model or config? Load with strict=False to ignore."
        )
    module.load_state_dict(dict(state), strict=False)


# --------------------------------------------------------------------------- config.json


def read_model_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed `config.json` of a model folder (format checked)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{CONFIG_NAME} not found in {Path(directory)}: not a saved model folder (expected {CONFIG_NAME} "
            f"and {WEIGHTS_NAME}, written by save_pretrained)"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not {"model_class", "config"} <= set(data):
        raise CheckpointError(f"{path} lacks 'model_class' and 'config': not written by save_pretrained")
    version = data.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this toolkit reads up to {FORMAT_VERSION}. Update poseembroider."
        )
    for key in ("model_class", "model_module", "config_class"):
        if key in data and not (isinstance(data[key], str) and data[key]):
            raise CheckpointError(f"{path}: key {key!r} is {data[key]!r}, expected the name of a class or module")
    if not isinstance(data["config"], dict):
        raise CheckpointError(f"{path}: key 'config' is a {type(data['config']).__name__}, expected a JSON object")
    return data


def _model_class_of(data: dict[str, Any], directory: Path) -> type[nn.Module]:
    """The registered class a config.json names; an unknown one is an error naming the file."""
    try:
        return get_model_class(data["model_class"], data.get("model_module"))
    except UnknownModelError as err:
        raise UnknownModelError(f"{directory / CONFIG_NAME}: {err}") from None


def _resolve_dir(name_or_path: str | os.PathLike) -> Path:
    from poseembroider.registry import resolve  # lazy: keeps importing models free of registry/config reads

    return resolve(name_or_path)


def resolve_model_dir(model_path: str | os.PathLike, checkpoint: str = "best") -> Path:
    """The folder holding config.json: `model_path` itself, or its `checkpoint` sub-folder (a training output
    folder holds `best/` and `last/`); shortnames are resolved through the registry."""
    directory = _resolve_dir(model_path)
    if (directory / CONFIG_NAME).is_file():
        return directory
    if (directory / checkpoint / CONFIG_NAME).is_file():
        return directory / checkpoint
    raise FileNotFoundError(
        f"{directory}: no {CONFIG_NAME} there nor in {directory / checkpoint} (expected a model folder written "
        "by save_pretrained, or a training output folder with best/ and last/)"
    )


_BUILD_ERRORS = (RuntimeError, TypeError, ValueError, OverflowError, MemoryError, IndexError, ZeroDivisionError)
"""What a module's constructor raises for sizes it cannot build: torch's 'Overflow when unpacking long' (a
size past int64), 'can't allocate memory' (one the allocator refuses at once), negative dimensions..."""


def build_model(cls: type[M], config: Any, source: str | os.PathLike) -> M:
    """`cls(config)`; a config whose values the constructor cannot build (a width of 2**70, a negative
    size) is a CheckpointError naming `source` (the config file, a release checkpoint), not a raw torch
    error. The toolkit's own errors (a missing text backbone folder, a config check) pass unchanged: they
    already name what is at fault."""
    try:
        return cls(config)
    except _BUILD_ERRORS as err:
        if type(err).__module__.split(".")[0] == "poseembroider":
            raise
        raise CheckpointError(
            f"{source}: its config cannot build a {cls.__name__} ({type(err).__name__}: {str(err)[:300]}); "
            "the file is damaged or was edited by hand"
        ) from err


def _build_and_load(
    cls: type[nn.Module], directory: Path, data: dict[str, Any], strict: bool, map_location: str | torch.device
) -> nn.Module:
    config = config_from_dict(cls.config_class, data["config"], source=str(directory / CONFIG_NAME))  # type: ignore[attr-defined]
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"weight file {weights} not found (the folder's {CONFIG_NAME} is there)")
    model = build_model(cls, config, directory / CONFIG_NAME)
    device = torch.device(map_location)
    model.to(device)
    state = load_state_dict_file(weights, device=device)
    _check_finite(state, weights)
    prefixes = tuple(getattr(cls, "unsaved_prefixes", ()))
    load_state_dict_checked(model, state, weights, strict=strict, allow_missing_prefixes=prefixes)
    return model.eval()


def load_pretrained(
    name_or_path: str | os.PathLike, strict: bool = True, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild any registered model from a folder or shortname; the class is read from config.json.

    The model is returned in eval mode on `map_location`.
    """
    directory = _resolve_dir(name_or_path)
    data = read_model_config(directory)
    return _build_and_load(_model_class_of(data, directory), directory, data, strict, map_location)


class PretrainedModel:
    """Mixin for `nn.Module`s built as `cls(config)` from the dataclass `config_class`.

    Subclasses set `self.config` in `__init__`. `unsaved_prefixes` names state-dict prefixes that are
    not written by `save_pretrained` (e.g. frozen encoders reloaded from their own files at
    construction); they may be missing at load time.
    """

    config_class: ClassVar[type]
    unsaved_prefixes: ClassVar[tuple[str, ...]] = ()
    config: Any

    def _checked_config(self) -> Any:
        config = getattr(self, "config", None)
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__}.config must be a {self.config_class.__name__} instance "
                f"(set self.config in __init__), got {type(config).__name__}"
            )
        return config

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write `config.json` and `model.safetensors` into `directory` (each file atomically, weights
        first, so a folder with a config always has complete weights). Returns the folder."""
        assert isinstance(self, nn.Module), "PretrainedModel is a mixin for nn.Module subclasses"
        directory = Path(directory)
        config = self._checked_config()
        name = model_name(type(self))
        state = {k: v for k, v in self.state_dict().items() if not k.startswith(self.unsaved_prefixes)}
        save_state_dict(state, directory / WEIGHTS_NAME, metadata={"model_class": name})
        payload = {
            "format_version": FORMAT_VERSION,
            "model_class": name,
            "model_module": type(self).__module__,
            "config_class": type(config).__name__,
            "config": config_to_dict(config),
        }
        write_json_atomic(directory / CONFIG_NAME, payload, default=_json_default)
        return directory

    @classmethod
    def from_pretrained(
        cls: type[T],
        name_or_path: str | os.PathLike,
        strict: bool = True,
        map_location: str | torch.device = "cpu",
    ) -> T:
        """Rebuild the model saved in a folder (or registered under a shortname) and load its weights
        strictly; returned in eval mode on `map_location`. A config.json of an unrelated class is refused."""
        directory = _resolve_dir(name_or_path)
        data = read_model_config(directory)
        stored = data["model_class"]
        own_name = model_name(cls)
        if stored == own_name:
            target: type = cls
        else:
            try:
                target = get_model_class(stored, data.get("model_module"))
            except UnknownModelError:
                target = object
            if not (isinstance(target, type) and issubclass(target, cls)):  # type: ignore[arg-type]
                raise CheckpointError(
                    f"{directory / CONFIG_NAME} describes a {stored!r} model, not a {own_name!r} "
                    f"(use load_pretrained to build whatever class it holds)"
                )
        return _build_and_load(target, directory, data, strict, map_location)  # type: ignore[return-value]


__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "UnknownModelError",
    "PretrainedModel",
    "register_model",
    "list_models",
    "model_name",
    "get_model_class",
    "load_pretrained",
    "build_model",
    "config_to_dict",
    "config_from_dict",
    "dataclass_field_types",
    "save_state_dict",
    "load_state_dict_file",
    "read_safetensors_file",
    "load_state_dict_checked",
    "read_model_config",
]
