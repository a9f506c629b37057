"""Trainer settings, and config dataclasses turned into command-line flags.

`add_dataclass_arguments(parser, Cls)` adds one flag per field, named exactly like the field, so the
original README commands parse unchanged (`--lr 0.0002 --lr_scheduler stepLR --lr_step 400 ...`):

| field type | flag |
| --- | --- |
| `int`, `float`, `str`, `Path` | `--name VALUE` (floats finite: `nan`, `inf` refused; int ranges: below) |
| `bool`, default False | `--name` (store_true, like the original `--l2normalize`) |
| `bool`, default True | `--no_name` (store_false, like the original `--no_img_augmentation`) |
| `Literal[...]` or `metadata={"choices": ...}` | `--name VALUE` among the choices |
| `list[X]`, `tuple[X, ...]` | `--name V1 V2 ...` |
| `Optional[X]` | `--name VALUE`, default None |

An int flag takes its range from the field's metadata (`config_field(32, "...", min=1, max=...)`), by default
[0, 2**63 - 1]: a value outside it is refused at parse time naming the flag (`config.checked_int`).
Help text comes from `field(metadata={"help": ...})`. Fields whose flag is already on the parser (two
configs sharing a name) are added once, and both configs read the same value.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from poseembroider.config import INT64_MAX, SEED_MAX, checked_int, finite_float
from poseembroider.models.config_fields import config_field
from poseembroider.models.pretrained import dataclass_field_types

__all__ = ["TrainerConfig", "add_dataclass_arguments", "check_finite_range", "dataclass_from_args", "finite_float"]

T = TypeVar("T")

OPTIMIZERS = ("Adam", "AdamW")
LR_SCHEDULERS = ("none", "stepLR", "multistepLR", "cosine", "linear")
SCHEDULER_INTERVALS = ("epoch", "step")


@dataclass
class TrainerConfig:
    """Everything the training loop needs, independent of the model and the data."""

    output_dir: str = config_field("", "folder for checkpoints (best/, last/), log.jsonl and tensorboard/")
    epochs: int = config_field(100, "number of training epochs", min=1)
    batch_size: int = config_field(32, "batch size per process (global batch = batch_size x world size)", min=1)
    val_batch_size: int | None = config_field(None, "validation batch size (default: batch_size)", min=1)
    lr: float = config_field(1e-4, "base learning rate")
    wd: float = config_field(0.0, "weight decay (L2 for Adam, decoupled for AdamW)")
    optimizer: str = config_field("Adam", "optimizer", choices=OPTIMIZERS)
    lr_scheduler: str = config_field("none", "LR schedule; 'none' keeps the LR constant", choices=LR_SCHEDULERS)
    lr_step: int = config_field(400, "stepLR: multiply the LR by lr_gamma every lr_step intervals", min=1)
    lr_gamma: float = config_field(0.5, "stepLR / multistepLR decay factor")
    lr_milestones: list[int] = config_field([], "multistepLR: intervals at which the LR is multiplied by lr_gamma")
    lr_min_ratio: float = config_field(0.0, "cosine, linear: final LR as a fraction of lr")
    warmup: int = config_field(0, "linear warm-up length, in scheduler intervals (before the schedule starts)")
    scheduler_interval: str = config_field(
        "epoch", "unit of lr_step / milestones / warmup: the schedule is stepped per epoch or per step",
        choices=SCHEDULER_INTERVALS,
    )
    grad_clip: float = config_field(0.0, "clip the global gradient norm to this value (0: no clipping)")
    val_every: int = config_field(1, "validate every k epochs (and after the last one)", min=1)
    log_step: int = config_field(20, "write a log line every k optimisation steps", min=1)
    best_metric: str = config_field("loss", "validation metric that selects the best checkpoint (e.g. loss, mRecall)")
    best_mode: str = config_field("min", "whether the best checkpoint has the lowest or highest best_metric",
                        choices=("min", "max"))
    seed: int = config_field(1, "seed of python, numpy, torch and the data order", max=SEED_MAX)
    deterministic: bool = config_field(False, "deterministic algorithms (torch.use_deterministic_algorithms); slower")
    num_workers: int = config_field(0, "DataLoader worker processes")
    drop_last: bool = config_field(True, "drop the last incomplete training batch")
    saving_ckpt_step: int = config_field(10000, "also keep the weights of every k-th epoch in epoch_<k>/", min=1)
    resume: bool = config_field(False, "resume from output_dir/last/ when it exists")
    device: str = config_field("auto", "'auto' (cuda when available), 'cpu', 'cuda' or 'cuda:<i>'")
    find_unused_parameters: bool = config_field(False, "DDP: allow parameters that get no gradient in a step")
    tensorboard: bool = config_field(True, "write tensorboard event files")
    progress: bool = config_field(True, "show tqdm progress bars")

    def __post_init__(self) -> None:
        for name in ("optimizer", "lr_scheduler", "scheduler_interval", "best_mode"):
            choices = next(f for f in dataclasses.fields(self) if f.name == name).metadata["choices"]
            if getattr(self, name) not in choices:
                raise ValueError(f"--{name} {getattr(self, name)!r} is not one of {list(choices)}")
        for name in ("epochs", "batch_size", "val_every", "log_step", "saving_ckpt_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.lr_scheduler == "stepLR" and self.lr_step < 1:
            raise ValueError(f"--lr_step must be >= 1 with stepLR, got {self.lr_step}")
        if self.grad_clip < 0 or self.warmup < 0:
            raise ValueError("--grad_clip and --warmup must be >= 0")
        # NaN passes every `<` test above: each float is checked for finiteness and range explicitly.
        for name, low, high, low_open in (
            ("lr", 0.0, math.inf, True),
            ("wd", 0.0, math.inf, False),
            ("lr_gamma", 0.0, math.inf, True),
            ("lr_min_ratio", 0.0, 1.0, False),
            ("grad_clip", 0.0, math.inf, False),
        ):
            check_finite_range(name, getattr(self, name), low, high, low_open)


def check_finite_range(name: str, value: float, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """Refuse a non-finite `value` of flag `--name`, or one outside [low, high] ((low, high] when `low_open`),
    with a ValueError naming the flag."""
    bound = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if math.isfinite(high) else "")
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        raise ValueError(f"--{name} must be a finite number {bound}, got {value!r}")




# --------------------------------------------------------------------------- dataclass <-> argparse


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _scalar_parser(tp: Any, metadata: Any = None) -> Any:
    """The argparse `type` of a field of type `tp`: floats must be finite, ints in the field's [`min`, `max`]
    (metadata; default [0, 2**63 - 1]: no int setting of the toolkit means a negative number)."""
    if tp is float:
        return finite_float
    if tp is int:
        metadata = metadata or {}
        return checked_int(metadata.get("min", 0), metadata.get("max", INT64_MAX))
    if tp is str:
        return tp
    if tp is Path:
        return Path
    raise TypeError(f"no command-line parser for type {tp!r}")


def _flag_taken(parser: argparse.ArgumentParser, flag: str) -> bool:
    return flag in parser._option_string_actions  # noqa: SLF001 - the only way to ask argparse


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    exclude: tuple[str, ...] = (),
    title: str | None = None,
) -> argparse.ArgumentParser:
    """Add one flag per field of dataclass `cls` (rules in the module docstring); returns `parser`.

    Nested dataclass fields and fields in `exclude` are skipped. A field without default becomes a
    required flag.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass type")
    group = parser.add_argument_group(title or cls.__name__)
    field_types = dataclass_field_types(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.name in exclude:
            continue
        tp, optional = _unwrap_optional(field_types[f.name])
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            continue
        default = _field_default(f)
        required = default is dataclasses.MISSING
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text}
        if tp is bool:
            flag = f"--{f.name}" if required or not default else f"--no_{f.name}"
            if _flag_taken(parser, flag):
                continue
            action = "store_true" if flag == f"--{f.name}" else "store_false"
            group.add_argument(flag, action=action, default=bool(default) if not required else False, **kwargs)
            continue
        flag = f"--{f.name}"
        if _flag_taken(parser, flag):
            continue
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Literal:
            kwargs["choices"] = list(args)
            kwargs["type"] = type(args[0])
        elif origin in (list, tuple) or tp in (list, tuple):
            item = args[0] if args else str
            kwargs["nargs"] = "*"
            kwargs["type"] = _scalar_parser(item, f.metadata)
        else:
            kwargs["type"] = _scalar_parser(tp, f.metadata)
        if "choices" in f.metadata:
            kwargs["choices"] = list(f.metadata["choices"])
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = list(default) if isinstance(default, (list, tuple)) else default
            if not optional or default is not None:
                kwargs["help"] = f"{help_text} (default: {default!r})".strip()
        group.add_argument(flag, **kwargs)
    return parser


def dataclass_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """Build dataclass `cls` from parsed flags (fields absent from `args` keep their defaults)."""
    field_types = dataclass_field_types(cls)
    values = vars(args)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.name not in values:
            continue
        value = values[f.name]
        tp, _ = _unwrap_optional(field_types[f.name])
        if value is not None and (typing.get_origin(tp) is tuple or tp is tuple):
            value = tuple(value)
        kwargs[f.name] = value
    kwargs.update(overrides)
    return cls(**kwargs)
