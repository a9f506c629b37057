"""What the `train_*` and `evaluate_*` scripts share: flags, recipe defaults, run-folder names, error exits.

A script is a thin entry point (DESIGN.md §3): it parses its flags, calls the library and prints. The pieces
every script would otherwise write again live here, one copy each:

- flags: `add_run_arguments` (`--dataset`, `--model`, `--data_size`, `--apply_LR_augmentation`,
  `--shortname`), `add_config_arguments` (a model config's fields, the Trainer's, the recipe's defaults),
  `add_evaluation_arguments` (`--model_path`, `--checkpoint`, `--dataset`, `--split`, ...);
- `set_recipe_defaults`: a published recipe as the defaults of the flags, with help texts that say so;
- run folders and shortnames: `GENERAL_EXP_OUTPUT_DIR/<model>/<dataset>/<run name>` (`default_output_dir`,
  the training part of the run name from `training_run_tag`), `<model>_model_<dataset family>`
  (`default_shortname`), so the same flags give the same folder whichever script trains;
- errors: the failures a user causes (a missing dataset cache, an unknown shortname, a checkpoint of another
  architecture, a missing text backbone, a bad flag value...) are `SCRIPT_ERRORS`; `script_main` turns them
  into one line `error: <message>` on stderr and exit status 2 (argparse's status for bad usage), while any
  other exception, a bug, keeps its traceback. `as_usage_error` turns the errors of a block into a
  `UsageError` naming the flag whose value caused them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from poseembroider import config
from poseembroider.atomic_io import DiskFullError, OutputLockedError
from poseembroider.config import positive_int, seed_int
from poseembroider.datasets.cache_format import CacheError
from poseembroider.features.store import FeatureCacheError
from poseembroider.models.pretrained import CheckpointError, UnknownModelError
from poseembroider.registry import UnknownShortnameError, check_shortname
from poseembroider.text.tokenization import TextModelNotFoundError
from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args

__all__ = [
    "OFFLINE_TEXT_ENCODER",
    "SCRIPT_ERRORS",
    "UsageError",
    "add_config_arguments",
    "add_evaluation_arguments",
    "add_run_arguments",
    "as_usage_error",
    "configs_from_args",
    "dataset_family",
    "default_output_dir",
    "default_shortname",
    "error_line",
    "positive_int",
    "script_main",
    "set_recipe_defaults",
    "text_encoder_errors",
    "training_run_tag",
]

MainFunction = TypeVar("MainFunction", bound=Callable[..., int])
ModelConfig = TypeVar("ModelConfig")

OFFLINE_TEXT_ENCODER = "distilbertSynth"
"""The text backbone made offline (`poseembroider text train-tokenizer`, `text pretrain-backbone`)."""

# --------------------------------------------------------------------------- errors


class UsageError(ValueError):
    """A flag value found unusable before any work (out of range, no such dataset...): the message names
    the flag at fault."""


SCRIPT_ERRORS: tuple[type[Exception], ...] = (
    UsageError,
    CacheError,  # a dataset cache that is missing or not in the processed format
    FeatureCacheError,  # a frozen-feature cache made by other encoders or settings
    CheckpointError,  # weights that do not fit the model, or an unsafe file
    UnknownShortnameError,  # a model name that is neither a registered shortname nor a folder
    UnknownModelError,  # a config.json naming a model class that does not exist
    TextModelNotFoundError,  # a tokenizer or text backbone folder that is missing
    FileNotFoundError,  # a model folder without config.json, a missing input file
    DiskFullError,  # an output that could not be written for want of space (named; a rerun completes it)
    OutputLockedError,  # an output folder another live process is writing (named, with its pid)
)
"""The errors a user causes with a flag or a missing file, or meets in the machine (a full disk, another run
writing the same output): one line and exit status 2, no traceback."""


def error_line(err: BaseException) -> str:
    """`error: <message>` on one line (a multi-line message is joined with ' '; a KeyError's message is not
    shown quoted)."""
    message = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    return "error: " + " ".join(str(message).split("\n"))


def script_main(*extra_errors: type[Exception]) -> Callable[[MainFunction], MainFunction]:
    """Decorator of a script's `main(argv) -> int`: `SCRIPT_ERRORS` and `extra_errors` raised inside it print
    `error_line(err)` on stderr and make `main` return 2. An evaluation script passes `ValueError` (its
    metrics refuse settings with one, e.g. a best-of-k larger than the number of samples)."""
    errors = SCRIPT_ERRORS + tuple(extra_errors)

    def decorate(main: MainFunction) -> MainFunction:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> int:
            try:
                return main(*args, **kwargs)
            except errors as err:
                print(error_line(err), file=sys.stderr)
                return 2

        return wrapper  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def as_usage_error(*errors: type[Exception], flag: str = "", hint: str = "") -> Iterator[None]:
    """Inside the block, an error of type `errors` (default: `SCRIPT_ERRORS` and `ValueError`) becomes a
    `UsageError`, its message prefixed with `flag` (e.g. '--dataset synthscript-x: <message>') when given,
    and followed by `hint`. For the checks of a script's flags, whose messages say what is wrong."""
    caught = errors or (*SCRIPT_ERRORS, ValueError)
    try:
        yield
    except caught as err:
        message = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
        raise UsageError(f"{flag}: {message}{hint}" if flag else f"{message}{hint}") from err


def text_encoder_errors(name: str) -> contextlib.AbstractContextManager[None]:
    """`as_usage_error` for building a model over the text backbone `--text_encoder_name name`: a backbone
    or tokenizer that cannot be found is reported with the flag and, for a real backbone, the offline way out."""
    hint = ""
    if name != OFFLINE_TEXT_ENCODER:
        hint = (
            f". Offline, use our own text backbone: --text_encoder_name {OFFLINE_TEXT_ENCODER} "
            "(made by `poseembroider text train-tokenizer` then `poseembroider text pretrain-backbone`)."
        )
    return as_usage_error(TextModelNotFoundError, KeyError, flag=f"--text_encoder_name {name}", hint=hint)


def _shortname_flag(value: str) -> str:
    """argparse `type` of `--shortname`: '' (do not register) or a name `registry.register` accepts, checked at
    parse time so that a bad name is refused before training, not after it."""
    if value == "":
        return value
    try:
        return check_shortname(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --------------------------------------------------------------------------- flags


def set_recipe_defaults(parser: argparse.ArgumentParser, defaults: Mapping[str, Any]) -> None:
    """Make `defaults` (a published recipe) the defaults of their flags, keeping the '(default: ...)' of
    their help texts true. A flag given on the command line still wins."""
    parser.set_defaults(**defaults)
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public access to the help strings
        if action.dest in defaults and action.help:
            action.help = re.sub(r"\(default: .*\)$", f"(default: {defaults[action.dest]!r})", action.help)


def add_run_arguments(
    parser: argparse.ArgumentParser,
    model: str,
    default_dataset: str,
    models: tuple[str, ...] = (),
    lr_flip: bool = True,
) -> argparse._ArgumentGroup:
    """The 'data and run' group: `--dataset`, `--model` (one of `models`, default `model`), `--data_size`,
    `--apply_LR_augmentation` (when `lr_flip`), `--shortname`; returns the group for the script's own flags."""
    group = parser.add_argument_group("data and run")
    group.add_argument("--dataset", default=default_dataset, help="dataset name of the registry (default: %(default)s)")
    group.add_argument("--model", default=model, choices=models or (model,), help="model class (default: %(default)s)")
    group.add_argument("--data_size", type=positive_int, default=None, help="keep only the first N training items")
    if lr_flip:
        group.add_argument(
            "--apply_LR_augmentation",
            action="store_true",
            help="mirror training samples left/right (poses, and texts or images) with probability 0.5",
        )
    group.add_argument(
        "--shortname",
        type=_shortname_flag,
        default=None,
        help="register the best model under this shortname "
        f"(default: {'<model>' if models else model.lower()}_model_<dataset family>; '' to skip)",
    )
    return group


def add_config_arguments(
    parser: argparse.ArgumentParser,
    config_class: type,
    model: str,
    recipe: Mapping[str, Any],
    exclude: tuple[str, ...] = (),
    title: str | None = None,
) -> None:
    """One flag per field of the model's `config_class` (but `exclude`) and of `TrainerConfig`, the
    `recipe` as their defaults, and the help of `--output_dir` naming the default run folder."""
    add_dataclass_arguments(parser, config_class, exclude=exclude, title=title or model)
    add_dataclass_arguments(parser, TrainerConfig, title="training")
    set_recipe_defaults(parser, recipe)
    for action in parser._actions:  # noqa: SLF001
        if action.dest == "output_dir":
            action.help = (
                "folder for checkpoints, logs and tensorboard/ "
                f"(default: GENERAL_EXP_OUTPUT_DIR/{'<model>' if title else model}/<dataset>/<run name>)"
            )


def add_evaluation_arguments(
    parser: argparse.ArgumentParser,
    default_dataset: str | None = None,
    batch_size: int | None = None,
    caption_selection: str | None = None,
) -> None:
    """`--model_path`, `--checkpoint`, `--dataset` (required unless `default_dataset`), `--split`, `--device`,
    `--overwrite`, `--no_progress`; with `batch_size`, also `--batch_size`, `--data_size` and `--seed`; with
    `caption_selection`, `--caption_selection` with that default."""
    parser.add_argument("--model_path", required=True, help="model folder, training output folder or shortname")
    parser.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="sub-folder of a training output folder (default: %(default)s)",
    )
    if default_dataset is None:
        parser.add_argument("--dataset", required=True, help="dataset name of the registry")
    else:
        parser.add_argument(
            "--dataset", default=default_dataset, help="dataset name of the registry (default: %(default)s)"
        )
    parser.add_argument("--split", default="val", help="dataset split (default: %(default)s)")
    if batch_size is not None:
        parser.add_argument("--data_size", type=positive_int, default=None, help="evaluate on the first N items only")
        parser.add_argument("--batch_size", type=positive_int, default=batch_size, help="(default: %(default)s)")
        parser.add_argument("--seed", type=seed_int, default=42, help="seed of all random draws (default: %(default)s)")
    if caption_selection is not None:
        parser.add_argument(
            "--caption_selection",
            default=caption_selection,
            help="caption of each sample: an index, 'deterministic-mix' (caption id %% n) or 'rand' "
            "(default: %(default)s)",
        )
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:<i>' (default: %(default)s)")
    parser.add_argument(
        "--overwrite", action="store_true", help="recompute even if a result file with the same settings exists"
    )
    parser.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bar")


def configs_from_args(
    args: argparse.Namespace, config_class: type[ModelConfig], output_dir: str | Path, **overrides: Any
) -> tuple[ModelConfig, TrainerConfig]:
    """(model config, Trainer config) of parsed flags; `--output_dir` defaults to `output_dir` (also written
    back into `args`), `overrides` are fields of the model config not given by flags. A value a config
    refuses (its `__post_init__` checks) is a `UsageError`."""
    with as_usage_error(ValueError):
        model_config = dataclass_from_args(config_class, args, **overrides)
        args.output_dir = args.output_dir or str(output_dir)
        return model_config, dataclass_from_args(TrainerConfig, args)


# --------------------------------------------------------------------------- run folders and shortnames


def dataset_family(name: str) -> str:
    """'bedlamscript-overlap30_…' -> 'bedlamscript'."""
    return name.partition("-")[0]


def default_shortname(model: str, dataset: str) -> str:
    """`<model>_model_<dataset family>`: 'PoseVAE' on 'bedlamscript-…' gives the released model's name,
    `posevae_model_bedlamscript`."""
    return f"{model.lower()}_model_{dataset_family(dataset)}"


def text_retrieval_run_name(args: argparse.Namespace) -> str:
    """Folder name of a PoseText / PairText run: the architecture flags, then `training_run_tag`."""
    encoder = Path(args.text_encoder_name).name
    return f"latentD{args.latentD}_{encoder}_{args.transformer_topping}_{args.retrieval_loss}_{training_run_tag(args)}"


def training_run_tag(args: argparse.Namespace) -> str:
    """The Trainer part of a run name: `lr<lr>[_wd<wd>][_<scheduler>[<step>-<gamma>]]_bs<B>_seed<S>`, then
    `_data<N>` and `_LRflip` when those flags are set (zero weight decay and a constant LR are left out)."""
    tag = f"lr{args.lr:g}"
    if args.wd:
        tag += f"_wd{args.wd:g}"
    if args.lr_scheduler != "none":
        tag += f"_{args.lr_scheduler}"
        if args.lr_scheduler == "stepLR":
            tag += f"{args.lr_step}-{args.lr_gamma:g}"
    tag += f"_bs{args.batch_size}_seed{args.seed}"
    if getattr(args, "data_size", None):
        tag += f"_data{args.data_size}"
    if getattr(args, "apply_LR_augmentation", False):
        tag += "_LRflip"
    return tag


def default_output_dir(model: str, dataset: str, run_name: str) -> Path:
    """`GENERAL_EXP_OUTPUT_DIR/<model>/<dataset>/<run name>`."""
    return Path(config.GENERAL_EXP_OUTPUT_DIR) / model / dataset / run_name
