"""What the train_* / evaluate_* scripts share: one-line errors with exit status 2, recipe defaults that a
flag overrides, run-folder names, the common flags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from poseembroider import config
from poseembroider.datasets.cache_format import CacheError
from poseembroider.features.store import FeatureCacheError
from poseembroider.models.config_fields import config_field
from poseembroider.models.pretrained import CheckpointError
from poseembroider.registry import UnknownShortnameError
from poseembroider.text.tokenization import TextModelNotFoundError
from poseembroider.training.config import TrainerConfig
from poseembroider.training.script_args import (
    OFFLINE_TEXT_ENCODER,
    UsageError,
    add_config_arguments,
    add_evaluation_arguments,
    add_run_arguments,
    as_usage_error,
    configs_from_args,
    dataset_family,
    default_output_dir,
    default_shortname,
    script_main,
    set_recipe_defaults,
    text_encoder_errors,
    training_run_tag,
)

RECIPE = {"lr": 0.0002, "lr_scheduler": "stepLR", "batch_size": 128, "epochs": 500, "seed": 1}


@dataclass
class TinyConfig:
    width: int = config_field(8, "hidden width")

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"--width must be >= 1, got {self.width}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_tiny.py")
    add_run_arguments(parser, "Tiny", "synthscript-tiny_overlap30_res224_j16_sf11")
    add_config_arguments(parser, TinyConfig, "Tiny", RECIPE)
    return parser


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "error",
    [
        CacheError("no processed cache in /data/synthscript-x (run the generator)"),
        FeatureCacheError("feature cache /c/pose_1 was made by encoder abc, not def"),
        CheckpointError("model.safetensors: shape mismatch for 'w': (2,) vs (3,)"),
        UnknownShortnameError("'posevae_model_x' is neither a registered shortname nor a folder"),
        TextModelNotFoundError("text backbone folder not found: /models/distilbert"),
        FileNotFoundError("/runs/a: no config.json there nor in /runs/a/best"),
        UsageError("--data_size must be >= 1, got 0"),
    ],
)
def test_a_known_error_is_one_line_naming_the_problem_and_exit_status_2(error, capsys):
    @script_main()
    def main(argv=None) -> int:
        raise error

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert err.strip() == f"error: {error.args[0]}"  # a KeyError's message is not shown quoted


def test_a_multi_line_message_is_printed_on_one_line(capsys):
    @script_main()
    def main() -> int:
        raise CacheError("no cache at /x\nmake it with: poseembroider data generate")

    assert main() == 2
    assert capsys.readouterr().err == "error: no cache at /x make it with: poseembroider data generate\n"


def test_a_bug_keeps_its_traceback_and_success_passes_through(capsys):
    @script_main()
    def broken() -> int:
        raise RuntimeError("a bug")

    @script_main()
    def fine(argv=None) -> int:
        return 0

    with pytest.raises(RuntimeError, match="a bug"):
        broken()
    assert fine(["--x"]) == 0 and fine.__name__ == "fine"


def test_value_errors_are_known_only_where_a_script_says_so(capsys):
    def failing() -> int:
        raise ValueError("k_topk_reconstruction_values [5] must lie in [1, 3]")

    with pytest.raises(ValueError):
        script_main()(failing)()
    assert script_main(ValueError)(failing)() == 2
    assert "k_topk_reconstruction_values [5]" in capsys.readouterr().err


def test_as_usage_error_names_the_flag_and_adds_the_hint():
    with pytest.raises(UsageError, match=r"^--dataset synthscript-x: no cache at /x; see the README$") as info:
        with as_usage_error(flag="--dataset synthscript-x", hint="; see the README"):
            raise CacheError("no cache at /x")
    assert isinstance(info.value.__cause__, CacheError)
    with pytest.raises(UsageError, match=r"^--width must be >= 1"):
        with as_usage_error(ValueError):
            raise ValueError("--width must be >= 1")
    with pytest.raises(RuntimeError):  # only the listed errors are converted
        with as_usage_error(ValueError):
            raise RuntimeError("a bug")


def test_a_missing_text_backbone_suggests_the_offline_one():
    with pytest.raises(UsageError) as info:
        with text_encoder_errors("distilbertUncased"):
            raise TextModelNotFoundError("text backbone folder not found: /models/distilbert")
    message = str(info.value)
    assert message.startswith("--text_encoder_name distilbertUncased: text backbone folder not found")
    assert f"--text_encoder_name {OFFLINE_TEXT_ENCODER}" in message
    with pytest.raises(UsageError) as info:
        with text_encoder_errors(OFFLINE_TEXT_ENCODER):
            raise TextModelNotFoundError("tokenizer folder not found: /t")
    assert "Offline" not in str(info.value)


# --------------------------------------------------------------------------- flags and recipe defaults


def test_recipe_defaults_apply_unless_the_flag_is_given():
    parser = _parser()
    args = parser.parse_args([])
    assert (args.lr, args.lr_scheduler, args.batch_size, args.epochs, args.seed) == (0.0002, "stepLR", 128, 500, 1)
    assert args.wd == TrainerConfig().wd  # not in the recipe: the Trainer's default
    args = parser.parse_args(["--lr", "0.1", "--epochs", "3"])
    assert (args.lr, args.epochs, args.batch_size) == (0.1, 3, 128)


def test_recipe_defaults_keep_the_help_true():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=1e-4, help="base learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    set_recipe_defaults(parser, {"lr": 0.0002, "seed": 1})
    help_text = parser.format_help()
    assert "(default: 0.0002)" in help_text and "0.0001" not in help_text
    assert parser.parse_args([]).seed == 1


def test_run_arguments_refuse_a_non_positive_data_size(capsys):
    parser = _parser()
    args = parser.parse_args(["--data_size", "5", "--apply_LR_augmentation"])
    assert args.data_size == 5 and args.apply_LR_augmentation and args.model == "Tiny" and args.shortname is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--data_size", "0"])
    assert "--data_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--model", "Other"])


@pytest.mark.parametrize("name", ["a name", "a/b", "..", "-x", "é"])
def test_a_bad_shortname_is_refused_at_parse_time(capsys, name):
    # It used to be refused by `registry.register`, after the whole training run.
    with pytest.raises(SystemExit):
        _parser().parse_args([f"--shortname={name}"])
    err = capsys.readouterr().err
    assert "--shortname" in err and "invalid shortname" in err


def test_good_shortnames_and_the_empty_one_pass():
    for name in ("", "posevae_model_synthscript", "my.model-v2"):
        assert _parser().parse_args(["--shortname", name]).shortname == name


def test_configs_from_args_fill_the_output_dir_and_name_a_bad_value(tmp_path):
    args = _parser().parse_args(["--width", "4"])
    model_config, trainer_config = configs_from_args(args, TinyConfig, tmp_path / "run")
    assert model_config == TinyConfig(width=4) and trainer_config.output_dir == str(tmp_path / "run")
    assert args.output_dir == str(tmp_path / "run") and trainer_config.lr == 0.0002
    given = _parser().parse_args(["--output_dir", "mine"])
    assert configs_from_args(given, TinyConfig, tmp_path / "run")[1].output_dir == "mine"
    with pytest.raises(UsageError, match="--width must be >= 1, got 0"):
        configs_from_args(_parser().parse_args(["--width", "0"]), TinyConfig, tmp_path)


def test_evaluation_arguments():
    parser = argparse.ArgumentParser()
    add_evaluation_arguments(parser, batch_size=32, caption_selection="deterministic-mix")
    args = parser.parse_args(["--model_path", "posetext_model_x", "--dataset", "d"])
    assert (args.checkpoint, args.split, args.batch_size, args.data_size, args.seed) == ("best", "val", 32, None, 42)
    assert (args.device, args.overwrite, args.progress, args.caption_selection) == (
        "auto",
        False,
        True,
        "deterministic-mix",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--dataset", "d"])  # --model_path is required
    bare = argparse.ArgumentParser()
    add_evaluation_arguments(bare, default_dataset="d0")
    args = bare.parse_args(["--model_path", "m"])
    assert args.dataset == "d0" and not hasattr(args, "batch_size") and not hasattr(args, "caption_selection")


# --------------------------------------------------------------------------- run folders and shortnames


def test_shortnames_follow_the_dataset_family():
    assert dataset_family("bedlamscript-overlap30_res224_j16_sf11") == "bedlamscript"
    assert default_shortname("PoseVAE", "bedlamscript-overlap30_res224_j16_sf11") == "posevae_model_bedlamscript"
    assert default_shortname("Aligner", "synthscript-quickstart_overlap30") == "aligner_model_synthscript"


def test_training_run_tag_names_what_differs_from_a_plain_run():
    args = _parser().parse_args([])
    assert training_run_tag(args) == "lr0.0002_stepLR400-0.5_bs128_seed1"
    args = _parser().parse_args(["--lr_scheduler", "none", "--wd", "0.0001", "--data_size", "9"])
    assert training_run_tag(args) == "lr0.0002_wd0.0001_bs128_seed1_data9"
    args = _parser().parse_args(["--lr_scheduler", "cosine", "--apply_LR_augmentation"])
    assert training_run_tag(args) == "lr0.0002_cosine_bs128_seed1_LRflip"


def test_default_output_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "GENERAL_EXP_OUTPUT_DIR", tmp_path)
    assert default_output_dir("PoseText", "bedlamscript-x", "run") == Path(
        tmp_path, "PoseText", "bedlamscript-x", "run"
    )
