"""PairText: the published pair MLP over a shared pose encoder, PoseText's objective and text branch; the
two-step recipe (pretrain, then finetune from `--pretrained` on several datasets) through the CLI."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from poseembroider.assisting_models.pairText import train_pairText
from poseembroider.assisting_models.pairText.model_pairText import PairText, PairTextConfig
from poseembroider.assisting_models.poseText.data import load_text_datasets, text_collate_fn
from poseembroider.cli import build_parser as cli_parser
from poseembroider.cli import main as cli_main
from poseembroider.models.losses import symmetric_bbc
from poseembroider.models.pose_encoder import L2Norm
from poseembroider.models.pretrained import WEIGHTS_NAME, load_state_dict_file
from poseembroider.registry import resolve
from poseembroider.training.config import TrainerConfig, dataclass_from_args

PRETRAIN_COMMAND = (
    "--model PairText --num_body_joints 22 --latentD 512 --text_encoder_name distilbertUncased "
    "--transformer_topping avgp --retrieval_loss symBBC --lr 0.00005 --lr_scheduler stepLR --lr_gamma 0.5 "
    "--log_step 50 --batch_size 128 --seed 1 --dataset bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709 "
    "--epochs 400 --lr_step 400 --val_every 20"
).split()

SMALL_MODEL_FLAGS = (
    "--latentD 32 --num_neurons 64 --num_neurons_mini 8 --transformer_layers 1 --transformer_heads 2 "
    "--transformer_ff 64"
).split()


@pytest.fixture(scope="module")
def model(retrieval_text_dir) -> PairText:
    torch.manual_seed(0)
    config = PairTextConfig(
        text_encoder_name=str(retrieval_text_dir),
        latentD=32,
        num_neurons=64,
        num_neurons_mini=8,
        transformer_layers=1,
        transformer_heads=2,
        transformer_ff=64,
    )
    return PairText(config).eval()


@pytest.fixture(scope="module")
def batch(retrieval_datasets, model) -> dict:
    tokenizer = model.text_encoder.tokenizer
    dataset = load_text_datasets([retrieval_datasets["fix"]], "val", tokenizer)
    return next(iter(DataLoader(dataset, batch_size=8, collate_fn=text_collate_fn(tokenizer))))


def test_pose_mlp_has_the_original_layout(model):
    mlp = model.pose_mlp
    linears = [(m.in_features, m.out_features) for m in mlp if isinstance(m, nn.Linear)]
    assert linears == [(64, 64), (64, 32), (32, 32)]  # 2·latentD -> 2·latentD -> latentD -> latentD
    assert [type(m) for m in mlp][1::2] == [nn.LeakyReLU, nn.LeakyReLU, nn.LeakyReLU]
    assert isinstance(mlp[-1], L2Norm)
    default = PairTextConfig()
    assert default.latentD == 512 and default.retrieval_loss == "symBBC"
    assert model.loss_weight.item() == 10.0


def test_pair_embeddings_and_loss(model, batch):
    pairs = model.encode_pose_pairs(batch["poses_A"], batch["poses_B"])
    assert pairs.shape == (8, 32) and torch.allclose(pairs.norm(dim=-1), torch.ones(8), atol=1e-5)
    swapped = model.encode_pose_pairs(batch["poses_B"], batch["poses_A"])
    assert not torch.allclose(pairs, swapped, atol=1e-3)  # the order A -> B matters
    texts = model.encode_texts(batch["texts_tokens"], batch["texts_lengths"])
    loss = model.training_step(batch)["loss"]
    assert torch.allclose(loss, symmetric_bbc(texts @ pairs.T * 10.0), atol=1e-5)
    with pytest.raises(KeyError, match="poses_A"):
        model.training_step({"poses": batch["poses_A"]})


def test_save_load_round_trip_is_strict_and_exact(model, batch, tmp_path):
    model.save_pretrained(tmp_path / "pairtext")
    assert not [k for k in load_state_dict_file(tmp_path / "pairtext" / WEIGHTS_NAME) if ".backbone." in k]
    loaded = PairText.from_pretrained(tmp_path / "pairtext")
    with torch.no_grad():
        assert torch.equal(loaded.training_step(batch)["loss"], model.training_step(batch)["loss"])


def test_the_original_pretraining_command_parses_into_the_recipe():
    args = train_pairText.build_parser().parse_args(PRETRAIN_COMMAND)
    assert dataclass_from_args(PairTextConfig, args) == PairTextConfig()
    trainer_config = dataclass_from_args(TrainerConfig, args, output_dir="x")
    assert (trainer_config.lr, trainer_config.lr_scheduler, trainer_config.lr_step) == (5e-5, "stepLR", 400)
    assert (trainer_config.log_step, trainer_config.batch_size, trainer_config.epochs) == (50, 128, 400)
    assert (trainer_config.best_metric, trainer_config.best_mode, trainer_config.wd) == ("mRecall", "max", 0.0)
    names = train_pairText.dataset_names(args)
    assert train_pairText.default_shortname(names) == "pairtext_model_bedlamfix"
    finetune = ["posefix-H", "bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709"]
    assert train_pairText.default_shortname(finetune, finetuned=True) == "pairtext_model_ft_bedlamfix_posefix"
    assert cli_parser().parse_args(["train-pairtext", *PRETRAIN_COMMAND]).script_args == PRETRAIN_COMMAND


def _train(argv: list[str]) -> dict:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli_main(["train-pairtext", *argv]) == 0
    return json.loads(printed.getvalue())


def _common_flags(text_dir, out, lr: str = "1e-3") -> list[str]:
    return [
        "--text_encoder_name",
        str(text_dir),
        *SMALL_MODEL_FLAGS,
        "--batch_size",
        "16",
        "--val_every",
        "1",
        "--lr",
        lr,
        "--output_dir",
        str(out),
        "--no_tensorboard",
        "--no_progress",
        "--device",
        "cpu",
    ]


@pytest.fixture(scope="module")
def pretrained(retrieval_datasets, retrieval_text_dir, tmp_path_factory):
    """Step 1: 2 epochs on the fix dataset, registered under the default shortname."""
    out = tmp_path_factory.mktemp("pairtext_pretrain")
    dataset = retrieval_datasets["fix"]
    report = _train(["--dataset", dataset, "--epochs", "2", *_common_flags(retrieval_text_dir, out)])
    return out, report


def test_pretraining_registers_the_default_shortname(pretrained):
    out, report = pretrained
    assert report["shortname"] == "pairtext_model_synthfix" and report["train_size"] == 48
    assert {"mRecall", "p2t_R@1", "t2p_R@10"} <= set(report["val_metrics"])
    assert resolve("pairtext_model_synthfix") == (out / "best").resolve()


def test_finetuning_starts_from_the_pretrained_weights(pretrained, retrieval_datasets, retrieval_text_dir, tmp_path):
    out, _ = pretrained
    fix = retrieval_datasets["fix"]
    argv = ["--datasets", fix, fix, "--pretrained", "pairtext_model_synthfix", "--apply_LR_augmentation"]
    argv += ["--epochs", "1", "--data_size", "32", *_common_flags(retrieval_text_dir, tmp_path, lr="1e-9")]
    report = _train(argv)
    assert report["shortname"] == "pairtext_model_ft_synthfix" and report["val_size"] == 48  # concatenated
    start = load_state_dict_file(out / "best" / WEIGHTS_NAME)
    tuned = load_state_dict_file(tmp_path / "best" / WEIGHTS_NAME)
    # a negligible LR: the finetuned weights are the pretrained ones
    assert torch.allclose(tuned["pose_mlp.0.weight"], start["pose_mlp.0.weight"], atol=1e-6)
    assert torch.allclose(tuned["loss_weight"], start["loss_weight"], atol=1e-6)


def test_a_pretrained_model_of_another_architecture_is_refused(
    pretrained, retrieval_datasets, retrieval_text_dir, tmp_path, capsys
):
    argv = ["--dataset", retrieval_datasets["fix"], "--pretrained", "pairtext_model_synthfix"]
    argv += [*_common_flags(retrieval_text_dir, tmp_path), "--latentD", "16"]
    assert train_pairText.main(argv) == 2
    err = capsys.readouterr().err
    assert "--pretrained pairtext_model_synthfix" in err and "shape mismatch" in err


def test_evaluation_writes_the_recalls(pretrained, retrieval_datasets, capsys):
    out, _ = pretrained
    argv = ["--model_path", "pairtext_model_synthfix", "--dataset", retrieval_datasets["fix"], "--no_progress"]
    assert cli_main(["evaluate-pairtext", *argv, "--device", "cpu"]) == 0
    assert "mRecall" in capsys.readouterr().out
    result = json.loads((out / "best" / f"result_val_{retrieval_datasets['fix']}.json").read_text())
    assert result["size"] == 24 and 0.0 <= result["metrics"]["mRecall"] <= 100.0
