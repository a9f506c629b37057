"""Config dataclasses -> argparse with the original flag names; the original README commands parse."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field

import pytest

from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args


@dataclass
class PoseTextLikeConfig:
    latentD: int = 512  # joint embedding size
    text_encoder_name: str = "distilbertUncased"  # frozen text backbone
    transformer_topping: str = field(default="avgp", metadata={"choices": ("avgp", "augtokens")})
    num_body_joints: int = 22  # SMPL-X joints in the pose input
    retrieval_loss: str = "symBBC"  # contrastive loss
    l2normalize: bool = False  # store_true, like the original flag
    img_augmentation: bool = True  # the original --no_img_augmentation
    datasets: list[str] = field(default_factory=lambda: ["bedlamscript-overlap30_res224_j16_sf11"])
    pretrained: str | None = None  # shortname to start from
    seed: int = 0  # also a TrainerConfig flag: shared


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="PoseText")  # script-level flag
    add_dataclass_arguments(parser, TrainerConfig)
    add_dataclass_arguments(parser, PoseTextLikeConfig)
    return parser


POSETEXT_README = (
    "--model PoseText --latentD 512 --text_encoder_name distilbertUncased --transformer_topping avgp "
    "--num_body_joints 22 --retrieval_loss symBBC --lr 0.0002 --lr_scheduler stepLR --lr_step 400 --lr_gamma 0.5 "
    "--log_step 20 --val_every 20 --batch_size 128 --epochs 500 --seed 1"
)


def test_original_posetext_command_parses():
    args = _parser().parse_args(shlex.split(POSETEXT_README))
    trainer = dataclass_from_args(TrainerConfig, args, output_dir="exp")
    model = dataclass_from_args(PoseTextLikeConfig, args)
    assert args.model == "PoseText"
    assert (trainer.lr, trainer.lr_scheduler, trainer.lr_step, trainer.lr_gamma) == (0.0002, "stepLR", 400, 0.5)
    assert (trainer.log_step, trainer.val_every, trainer.batch_size) == (20, 20, 128)
    assert (trainer.epochs, trainer.seed) == (500, 1)
    assert model.latentD == 512 and model.transformer_topping == "avgp" and model.seed == 1  # shared flag
    assert model.l2normalize is False and model.img_augmentation is True and model.pretrained is None
    assert trainer.output_dir == "exp" and trainer.val_batch_size is None


def test_core_and_pairtext_flags():
    command = (
        "--model PoseEmbroider --latentD 512 --l2normalize --no_img_augmentation --datasets posefix-H bedlamfix-x "
        "--pretrained pairtext_model_bedlamfix --lr 1e-05 --wd 0.0001 --saving_ckpt_step 50 --val_batch_size 64 "
        "--lr_scheduler multistepLR --lr_milestones 10 20 --deterministic --no_drop_last --optimizer AdamW"
    )
    args = _parser().parse_args(shlex.split(command))
    model = dataclass_from_args(PoseTextLikeConfig, args)
    trainer = dataclass_from_args(TrainerConfig, args)
    assert model.l2normalize is True and model.img_augmentation is False
    assert model.datasets == ["posefix-H", "bedlamfix-x"] and model.pretrained == "pairtext_model_bedlamfix"
    assert (trainer.lr, trainer.wd, trainer.saving_ckpt_step, trainer.val_batch_size) == (1e-05, 0.0001, 50, 64)
    assert trainer.lr_milestones == [10, 20] and trainer.deterministic and not trainer.drop_last
    assert trainer.optimizer == "AdamW"


def test_defaults_match_the_dataclasses():
    args = _parser().parse_args([])
    assert dataclass_from_args(PoseTextLikeConfig, args) == PoseTextLikeConfig(seed=TrainerConfig().seed)
    assert dataclass_from_args(TrainerConfig, args) == TrainerConfig()


def test_bad_values_are_refused_naming_the_flag(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--lr_scheduler", "exponential"])
    assert "--lr_scheduler" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["--transformer_topping", "maxp"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["--epochs", "ten"])
    with pytest.raises(ValueError, match="--epochs"):
        TrainerConfig(epochs=0)
    with pytest.raises(ValueError, match="--optimizer 'SGD'"):
        TrainerConfig(optimizer="SGD")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_float_flags_are_refused_at_parse_time(capsys, value):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--lr", value])
    assert "--lr" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("lr", float("nan")),
        ("lr", -1e-4),
        ("lr", 0.0),
        ("wd", float("nan")),
        ("wd", -0.1),
        ("lr_gamma", float("inf")),
        ("lr_min_ratio", 1.5),
        ("lr_min_ratio", float("nan")),
        ("grad_clip", float("nan")),
    ],
)
def test_trainer_config_refuses_out_of_range_floats(field_name, value):
    with pytest.raises(ValueError, match=f"--{field_name} must be a finite number"):
        TrainerConfig(**{field_name: value})


def test_help_lists_fields_with_their_help():
    text = _parser().format_help()
    assert "--lr_scheduler {none,stepLR,multistepLR,cosine,linear}" in text
    assert "--no_img_augmentation" in text and "--l2normalize" in text
    assert "validate every k epochs" in text


@dataclass
class WithTuple:
    sizes: tuple[int, ...] = (1, 2)
    required_name: str = field(default="x")


def test_tuple_fields_and_exclude():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, WithTuple, exclude=("required_name",))
    args = parser.parse_args(["--sizes", "3", "4", "5"])
    assert dataclass_from_args(WithTuple, args) == WithTuple(sizes=(3, 4, 5))
    with pytest.raises(SystemExit):
        parser.parse_args(["--required_name", "y"])
