"""train_pose_estimation and evaluate_pose_estimation end to end on the tiny world: training on cached x̄ (and
live) lowers the loss and registers the head; the evaluation reports every input set against the mean pose;
bad inputs (a folder without a head, caches of another model, augmentation with cached x̄) fail clearly."""

from __future__ import annotations

import json

import pytest
import torch

from intermodality_world import make_intermodality_world
from poseembroider.cli import main as cli_main
from poseembroider.downstream.pose_estimation.evaluation import load_per_sample, per_sample_path
from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator
from poseembroider.features.intermodality import compute_intermodality_features, intermodality_cache_dir
from poseembroider.model import PoseEmbroider
from poseembroider.registry import resolve

pytestmark = pytest.mark.usefixtures("one_torch_thread", "procedural_model_file")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_intermodality_world(tmp_path_factory.mktemp("hps_scripts"), "hpsscripts", n_train=24, n_val=8)


def train_args(world: dict, out, *extra: str) -> list[str]:
    return [
        "train-pose-estimation",
        "--dataset", world["script"],
        "--pretrained_representation_model", str(world["models"]["PoseEmbroider"]),
        "--representation_model_input_types", "images",
        "--predict_bodyshape",
        "--lr", "0.003", "--batch_size", "8", "--epochs", "6", "--val_every", "3",
        "--no_progress", "--no_tensorboard", "--output_dir", str(out),
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("hps_run")
    argv = train_args(world, out, "--cached_embeddings_file", "auto", "--no_img_augmentation", "--shortname", "hps_t")
    assert cli_main(argv) == 0
    return {"out": out}


def test_training_on_cached_xbar_lowers_the_loss_and_registers_the_head(world, trained, capsys):
    epochs = [json.loads(line) for line in (trained["out"] / "log.jsonl").read_text().splitlines()]
    losses = [e["train/loss"] for e in epochs if "train/loss" in e]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert resolve("hps_t") == trained["out"] / "best"
    head = HPSEstimator.from_pretrained("hps_t")
    rep = world["models"]["PoseEmbroider"]
    assert head.config.pretrained_representation_model == str(rep) and head.config.latentD == 16
    assert head.config.representation_model_fingerprint.startswith("PoseEmbroider@")
    for split in ("train", "val"):  # the caches the training computed, where every reader looks
        assert (intermodality_cache_dir(rep, world["script"], split, "images") / "meta.json").is_file()


def test_live_training_runs(world, tmp_path):
    """Without --cached_embeddings_file, x̄ is computed from the raw inputs (here texts) at each step."""
    argv = train_args(world, tmp_path / "live", "--epochs", "1", "--val_every", "1", "--shortname", "")
    argv[argv.index("--representation_model_input_types") + 1] = "texts"
    assert cli_main(argv) == 0
    head = HPSEstimator.from_pretrained(tmp_path / "live" / "last")
    assert head.config.representation_model_input_types == ["texts"]


def test_evaluation_reports_every_input_set(world, trained, capsys):
    argv = ["evaluate-pose-estimation", "--model_path", "hps_t", "--dataset", world["script"], "--no_progress"]
    assert cli_main(argv) == 0
    table = capsys.readouterr().out
    assert "images+texts - images: PA-MPJPE" in table and "h36m14 protocol skipped" in table
    best = trained["out"] / "best"
    result = json.loads((best / f"result_val_{world['script']}.json").read_text())
    assert set(result["metrics"]) == {"images", "texts", "images+texts", "poses", "mean_pose"}
    assert result["size"] == 8 and result["settings"]["input_sets"] == ["images", "texts", "images+texts", "poses"]
    for summary in result["metrics"].values():
        metrics = summary["smplx22"]
        assert summary["n"] == 8 and set(metrics) == {"pa_mpjpe_mm", "mpjpe_mm", "pve_mm", "rotation_error_deg"}
        assert 0 < metrics["pa_mpjpe_mm"]["low"] <= metrics["pa_mpjpe_mm"]["value"] <= metrics["pa_mpjpe_mm"]["high"]
        assert "J_regressor_h36m" in summary["skipped"]["h36m14"]
    assert set(result["comparisons"]) == {"images+texts - images", "images - mean_pose", "texts - mean_pose",
                                          "poses - images"}  # fmt: skip
    per_sample = load_per_sample(per_sample_path(best, "val", world["script"]))
    assert per_sample["data_ids"].tolist() == world["ids"]["val"]
    pa = per_sample["images/smplx22/pa_mpjpe_mm"]
    assert pa.shape == (8,) and pa.mean() == pytest.approx(
        result["metrics"]["images"]["smplx22"]["pa_mpjpe_mm"]["value"]
    )
    assert cli_main([*argv, "--input_sets", "poses", "images+poses"]) == 0  # other settings: recomputed
    result = json.loads((best / f"result_val_{world['script']}.json").read_text())
    assert set(result["metrics"]) == {"poses", "images+poses", "mean_pose"}


def test_bad_inputs_are_refused_clearly(world, trained, tmp_path, capsys):
    base = ["--dataset", world["script"], "--no_progress"]
    assert cli_main(["evaluate-pose-estimation", "--model_path", str(world["models"]["Aligner"]), *base]) == 2
    assert "holds a Aligner, not an HPSEstimator head" in capsys.readouterr().err
    other = PoseEmbroider.from_pretrained(world["models"]["PoseEmbroider"])
    with torch.no_grad():
        other.intermodality_token.add_(1.0)
    stale = tmp_path / "stale"
    compute_intermodality_features(other, world["script"], "val", "images", root=stale, progress=False)
    argv = ["evaluate-pose-estimation", "--model_path", "hps_t", *base, "--input_sets", "images", "--overwrite"]
    assert cli_main([*argv, "--cache_dir", str(stale)]) == 2
    err = capsys.readouterr().err
    assert f"{stale}" in err and "key 'representation_model'" in err
    assert cli_main([*argv[:-3], "--input_sets", "image"]) == 2
    assert "--input_sets: unknown input type 'image'" in capsys.readouterr().err
    cached = train_args(world, tmp_path / "x", "--cached_embeddings_file", "auto")
    assert cli_main(cached) == 2
    assert "add --no_img_augmentation" in capsys.readouterr().err
