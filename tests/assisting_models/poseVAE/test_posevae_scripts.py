"""train_poseVAE / evaluate_poseVAE: the original command parses, training runs end to end through the CLI,
the evaluation JSON has the documented keys."""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from poseembroider.assisting_models.poseVAE import evaluate_poseVAE, train_poseVAE
from poseembroider.assisting_models.poseVAE.evaluation import (
    evaluate_pose_file,
    mean_pose_errors,
    reconstruction_errors,
)
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.cli import build_parser as cli_parser
from poseembroider.cli import main as cli_main
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.pose_processing import normalize_poses
from poseembroider.evaluation.result_files import result_path
from poseembroider.geometry import axis_angle_to_matrix, chordal_mean_axis_angle, matrix_to_axis_angle
from poseembroider.registry import resolve
from poseembroider.training.config import TrainerConfig, dataclass_from_args

ORIGINAL_COMMAND = (
    "--dataset bedlamscript-overlap30_res224_j16_sf11 --model PoseVAE --latentD 32 --num_body_joints 22 "
    "--lr 1e-05 --wd 0.0001 --batch_size 128 --epochs 2000 --val_every 20 --seed 1"
).split()


def test_the_original_command_parses_into_the_recipe():
    args = train_poseVAE.build_parser().parse_args(ORIGINAL_COMMAND)
    assert args.dataset == "bedlamscript-overlap30_res224_j16_sf11" and args.model == "PoseVAE"
    model_config = dataclass_from_args(PoseVAEConfig, args)
    assert model_config == PoseVAEConfig()
    trainer_config = dataclass_from_args(TrainerConfig, args, output_dir="x")
    assert (trainer_config.lr, trainer_config.wd, trainer_config.batch_size) == (1e-5, 1e-4, 128)
    assert (trainer_config.epochs, trainer_config.val_every, trainer_config.seed) == (2000, 20, 1)
    assert trainer_config.optimizer == "Adam" and trainer_config.lr_scheduler == "none"
    assert trainer_config.best_metric == "loss" and trainer_config.best_mode == "min"
    # the recipe is also the default
    defaults = train_poseVAE.build_parser().parse_args([])
    assert dataclass_from_args(TrainerConfig, defaults, output_dir="x") == trainer_config
    assert train_poseVAE.default_shortname(args.dataset) == "posevae_model_bedlamscript"
    assert train_poseVAE.run_name(args) == "latentD32_wloss1-1-1-1_kldeps10_lr1e-05_wd0.0001_bs128_seed1"
    # the CLI hands every word to the script
    cli_args = cli_parser().parse_args(["train-posevae", *ORIGINAL_COMMAND])
    assert cli_args.script_args == ORIGINAL_COMMAND


def test_bad_flags_are_refused(capsys):
    assert train_poseVAE.main([*ORIGINAL_COMMAND, "--kld_epsilon", "-1"]) == 2
    assert "kld_epsilon" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_poseVAE.main([*ORIGINAL_COMMAND, "--model", "PoseText"])


def test_a_missing_dataset_is_reported(tmp_path, capsys):
    code = train_poseVAE.main(
        ["--dataset", "synthscript-nothere_overlap30_res224_j16_sf11", "--output_dir", str(tmp_path)]
    )
    assert code == 2 and "synthscript-nothere" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(posevae_dataset, procedural_model_file, tmp_path_factory):
    """One epoch of the full objective (body model included) through `poseembroider train-posevae`;
    returns the output folder and the printed report."""
    out = tmp_path_factory.mktemp("posevae_run")
    argv = [
        "train-posevae",
        "--dataset",
        posevae_dataset,
        "--data_size",
        "64",
        "--batch_size",
        "16",
        "--epochs",
        "1",
        "--val_every",
        "1",
        "--lr",
        "1e-3",
        "--output_dir",
        str(out),
        "--shortname",
        "posevae_model_test",
        "--no_tensorboard",
        "--no_progress",
        "--device",
        "cpu",
    ]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli_main(argv) == 0
    return out, json.loads(printed.getvalue())


def test_training_runs_through_the_cli_and_registers_the_best_model(trained):
    out, report = trained
    assert report["train_size"] == 64 and report["val_size"] == 64 and report["best_epoch"] == 1
    metrics = report["val_metrics"]
    assert {"loss", "v2v", "jts", "rot", "kld", "mpjpe_mm", "pampjpe_mm", "pve_mm", "rot_deg"} <= set(metrics)
    assert resolve("posevae_model_test") == (out / "best").resolve()
    model = PoseVAE.from_pretrained("posevae_model_test")
    assert model.config == PoseVAEConfig()
    assert (out / "last" / "training_state.pt").is_file() and (out / "log.jsonl").is_file()


def test_evaluation_writes_the_documented_keys_next_to_the_checkpoint(trained, posevae_dataset, capsys):
    out, _ = trained
    argv = [
        "--model_path",
        str(out),
        "--dataset",
        posevae_dataset,
        "--split",
        "val",
        "--data_size",
        "12",
        "--batch_size",
        "8",
        "--nb_sample_reconstruction",
        "3",
        "--k_topk_reconstruction_values",
        "1",
        "2",
        "--device",
        "cpu",
        "--no_progress",
    ]
    assert cli_main(["evaluate-posevae", *argv]) == 0
    path = result_path(out / "best", "val", posevae_dataset)
    assert path.is_file() and str(path) in capsys.readouterr().out
    result = json.loads(path.read_text())
    assert result["size"] == 12 and result["epoch"] == 1 and result["split"] == "val"
    assert result["settings"]["nb_sample_reconstruction"] == 3 and result["settings"]["sample_from"] == "prior"
    metrics = result["metrics"]
    expected = {"elbo_v2v", "elbo_jts", "elbo_rot", "kld"}
    for m in ("mpjpe_mm", "pampjpe_mm", "pve_mm", "rot_deg"):
        expected |= {f"recon_{m}", f"sample_{m}_avg", f"sample_{m}_top1", f"sample_{m}_top2"}
    assert set(metrics) == expected
    assert all(math.isfinite(v) for v in metrics.values())
    for m in ("mpjpe_mm", "pve_mm", "rot_deg"):
        assert metrics[f"sample_{m}_top1"] <= metrics[f"sample_{m}_top2"] <= metrics[f"sample_{m}_avg"] + 1e-6
    # same settings: the file is reused, not recomputed
    mtime = path.stat().st_mtime_ns
    assert evaluate_poseVAE.main(argv) == 0
    assert path.stat().st_mtime_ns == mtime
    # k larger than the number of samples is refused
    assert evaluate_poseVAE.main([*argv, "--k_topk_reconstruction_values", "5", "--overwrite"]) == 2


def test_pose_file_evaluation_reports_reconstruction_and_mean_pose_on_the_same_poses(
    trained, posevae_dataset, tmp_path, capsys
):
    """--pose_file: CMU poses (y-up, recorded heading) normalised as the datasets do; the library result agrees
    with the reconstruction of the normalised poses and with the mean-pose baseline computed by hand."""
    out, _ = trained
    poses = load_cmu_dev_poses()[:10]
    pose_file = tmp_path / "cmu10.npz"
    np.savez(pose_file, poses=poses)
    result = evaluate_pose_file(out, pose_file, device="cpu")
    assert result["size"] == 10 and result["pose_normalization"] == "bedlam"
    model = PoseVAE.from_pretrained(out / "best")
    normalised = normalize_poses(torch.as_tensor(poses), "bedlam")
    expected = reconstruction_errors(model, normalised)
    assert result["metrics"] == pytest.approx({f"recon_{k}": v for k, v in expected.items()}, rel=1e-5)
    mean = chordal_mean_axis_angle(normalised)
    assert result["mean_pose"] == pytest.approx(mean_pose_errors(normalised, model.body_model(), mean), rel=1e-5)
    assert all(result["mean_pose"][k] > 0 for k in ("mpjpe_mm", "pampjpe_mm", "pve_mm", "rot_deg"))
    # the heading is removed: turning every pose about the vertical changes nothing
    turn = axis_angle_to_matrix(torch.tensor([0.0, 1.3, 0.0]))
    turned = poses.copy()
    turned[:, 0] = matrix_to_axis_angle(turn @ axis_angle_to_matrix(torch.as_tensor(poses[:, 0]))).numpy()
    np.savez(tmp_path / "turned.npz", poses=turned)
    again = evaluate_pose_file(out, tmp_path / "turned.npz", device="cpu")
    assert again["metrics"] == pytest.approx(result["metrics"], rel=1e-3, abs=1e-2)
    # the baseline from a dataset's train poses, and the script's flags
    from_dataset = evaluate_pose_file(out, pose_file, device="cpu", mean_pose_dataset=posevae_dataset)
    assert posevae_dataset in from_dataset["mean_pose_source"]
    argv = ["--model_path", str(out), "--pose_file", str(pose_file), "--device", "cpu"]
    assert evaluate_poseVAE.main(argv) == 0
    printed = capsys.readouterr().out
    assert "mean pose" in printed and "pampjpe_mm" in printed
    assert evaluate_poseVAE.main(["--model_path", str(out), "--pose_file", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_the_scripts_run_from_their_folder():
    folder = train_poseVAE.__file__.rsplit("/", 1)[0]
    done = subprocess.run(
        [sys.executable, "train_poseVAE.py", "--help"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--kld_epsilon" in done.stdout and "--val_every" in done.stdout
