"""train_poseText / evaluate_poseText: the original command parses into the recipe, a missing text backbone
is a clear error with the offline way out, training runs end to end through the CLI and registers the
best model, the evaluation JSON has the documented keys."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from poseembroider import config
from poseembroider.assisting_models.poseText import evaluate_poseText, train_poseText
from poseembroider.assisting_models.poseText.evaluation import METRIC_ORDER
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
from poseembroider.cli import build_parser as cli_parser
from poseembroider.cli import main as cli_main
from poseembroider.registry import resolve
from poseembroider.training.config import TrainerConfig, dataclass_from_args

ORIGINAL_COMMAND = (
    "--model PoseText --latentD 512 --text_encoder_name distilbertUncased --transformer_topping avgp "
    "--num_body_joints 22 --retrieval_loss symBBC --lr 0.0002 --lr_scheduler stepLR --lr_step 400 --lr_gamma 0.5 "
    "--log_step 20 --val_every 20 --batch_size 128 --epochs 500 --seed 1"
).split()

SMALL_MODEL_FLAGS = (
    "--latentD 32 --num_neurons 64 --num_neurons_mini 8 --transformer_layers 1 --transformer_heads 2 "
    "--transformer_ff 64"
).split()


def test_the_original_command_parses_into_the_recipe():
    args = train_poseText.build_parser().parse_args(ORIGINAL_COMMAND)
    assert args.dataset == "bedlamscript-overlap30_res224_j16_sf11" and args.model == "PoseText"
    assert dataclass_from_args(PoseTextConfig, args) == PoseTextConfig()
    trainer_config = dataclass_from_args(TrainerConfig, args, output_dir="x")
    assert (trainer_config.lr, trainer_config.wd, trainer_config.batch_size) == (2e-4, 0.0, 128)
    assert (trainer_config.lr_scheduler, trainer_config.lr_step, trainer_config.lr_gamma) == ("stepLR", 400, 0.5)
    assert (trainer_config.epochs, trainer_config.val_every, trainer_config.log_step, trainer_config.seed) == (
        500,
        20,
        20,
        1,
    )
    assert trainer_config.optimizer == "Adam"
    assert (trainer_config.best_metric, trainer_config.best_mode) == ("mRecall", "max")
    defaults = train_poseText.build_parser().parse_args([])  # the recipe is also the default
    assert dataclass_from_args(TrainerConfig, defaults, output_dir="x") == trainer_config
    assert train_poseText.default_shortname(args.dataset) == "posetext_model_bedlamscript"
    run = "latentD512_distilbertUncased_avgp_symBBC_lr0.0002_stepLR400-0.5_bs128_seed1"
    assert train_poseText.run_name(args) == run
    cli_args = cli_parser().parse_args(["train-posetext", *ORIGINAL_COMMAND])
    assert cli_args.script_args == ORIGINAL_COMMAND


def test_bad_flags_are_refused(capsys):
    with pytest.raises(SystemExit):
        train_poseText.main([*ORIGINAL_COMMAND, "--retrieval_loss", "InfoNCE"])
    assert "InfoNCE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_poseText.main([*ORIGINAL_COMMAND, "--model", "PairText"])


def test_a_missing_real_distilbert_suggests_the_offline_backbone(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "TRANSFORMER_CACHE_DIR", tmp_path / "no_distilbert_here")
    code = train_poseText.main([*ORIGINAL_COMMAND, "--output_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "--text_encoder_name distilbertUncased" in err
    assert str(tmp_path / "no_distilbert_here") in err and "--text_encoder_name distilbertSynth" in err


def test_a_missing_dataset_is_reported(tmp_path, capsys, retrieval_text_dir):
    argv = ["--dataset", "synthscript-nothere_overlap30_res224_j16_sf11", "--output_dir", str(tmp_path)]
    code = train_poseText.main([*argv, "--text_encoder_name", str(retrieval_text_dir), *SMALL_MODEL_FLAGS])
    assert code == 2 and "synthscript-nothere" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(retrieval_datasets, retrieval_text_dir, tmp_path_factory):
    """2 epochs through `poseembroider train-posetext`, one DataLoader worker (which runs the frozen text
    backbone, `loader_backbone`); returns the output folder and the printed report."""
    out = tmp_path_factory.mktemp("posetext_run")
    argv = [
        "train-posetext",
        "--dataset",
        retrieval_datasets["script"],
        "--text_encoder_name",
        str(retrieval_text_dir),
        *SMALL_MODEL_FLAGS,
        "--batch_size",
        "32",
        "--epochs",
        "2",
        "--val_every",
        "1",
        "--lr",
        "1e-3",
        "--lr_step",
        "1",
        "--apply_LR_augmentation",
        "--output_dir",
        str(out),
        "--shortname",
        "posetext_model_test",
        "--no_tensorboard",
        "--no_progress",
        "--device",
        "cpu",
        "--num_workers",
        "1",
    ]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli_main(argv) == 0
    return out, json.loads(printed.getvalue())


def test_training_runs_through_the_cli_and_registers_the_best_model(trained, retrieval_text_dir):
    out, report = trained
    assert report["train_size"] == 96 and report["val_size"] == 48 and report["best_epoch"] in (1, 2)
    metrics = report["val_metrics"]
    assert {"loss", "mRecall", "p2t_R@1", "t2p_R@10"} <= set(metrics)
    assert resolve("posetext_model_test") == (out / "best").resolve()
    model = PoseText.from_pretrained("posetext_model_test")
    assert model.config.latentD == 32 and model.config.text_encoder_name == str(retrieval_text_dir)
    assert (out / "last" / "training_state.pt").is_file()
    epochs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in epochs if "val/mRecall" in r]
    assert lrs == [1e-3, 5e-4]  # stepLR is applied (every epoch here)
    assert all(0.0 <= r["val/mRecall"] <= 100.0 for r in epochs if "val/mRecall" in r)


def test_evaluation_writes_the_documented_keys_next_to_the_checkpoint(trained, retrieval_datasets, capsys):
    out, report = trained
    argv = ["--model_path", str(out), "--dataset", retrieval_datasets["script"], "--batch_size", "16", "--no_progress"]
    assert cli_main(["evaluate-posetext", *argv, "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "mRecall" in printed and "t2p_R@5" in printed
    result = json.loads((out / "best" / f"result_val_{retrieval_datasets['script']}.json").read_text())
    assert set(result["metrics"]) == set(METRIC_ORDER) and result["size"] == 48
    # same protocol as the validation of the best epoch (deterministic captions, whole split)
    assert result["metrics"]["mRecall"] == pytest.approx(report["val_metrics"]["mRecall"], abs=1e-6)
    assert result["epoch"] == report["best_epoch"]


def test_evaluation_of_an_unknown_model_is_a_clear_error(capsys):
    assert evaluate_poseText.main(["--model_path", "no_such_model", "--dataset", "x"]) == 2
    assert "no_such_model" in capsys.readouterr().err
