"""train_core and evaluate_core end to end on a tiny rendered synthetic dataset with tiny frozen encoders:
features cached once per modality and reused, the loss goes down, evaluation writes the 9-query table and
its figure; bad inputs fail with clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from poseembroider import config, evaluate_core, train_core
from poseembroider.cli import main as cli_main
from poseembroider.datasets.cache_format import cache_file_name, load_cache
from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth
from poseembroider.encoders import FrozenEncoders
from poseembroider.features.store import FeatureCacheError
from poseembroider.modalities import UnknownModalityError
from poseembroider.models.pretrained import CheckpointError
from tiny_models import make_core_encoders

pytestmark = [pytest.mark.render, pytest.mark.usefixtures("one_torch_thread")]  # the dataset is rendered


@pytest.fixture(scope="module")
def core_world(procedural_model_file, tmp_path_factory) -> dict:
    cfg = SynthConfig(
        name="core_tiny",
        n_train=16,
        n_val=8,
        seed=3,
        workers=1,
        pool_factor=1.5,
        chunk_size=8,
        body_model_file=procedural_model_file,
    )
    generate_synth(cfg)
    texts = []
    for split, n in (("train", 16), ("val", 8)):
        name = cache_file_name("synthscript", cfg.script_version, split, "rawtexts", n)
        texts += [t for caps in load_cache(config.DATA_CACHE_DIR / name, "rawtexts")["texts"].values() for t in caps]
    encoders = make_core_encoders(tmp_path_factory.mktemp("core_encoders"), texts)
    return {"dataset": cfg.script_name, "encoders": encoders}


def _train_args(world: dict, out, *extra: str) -> list[str]:
    enc = world["encoders"]
    return [
        "--dataset",
        world["dataset"],
        "--image_encoder_name",
        enc["image"],
        "--pose_encoder_name",
        enc["pose"],
        "--text_encoder_name",
        enc["text"],
        "--latentD",
        "16",
        "--core_width",
        "8",
        "--core_heads",
        "2",
        "--core_ff",
        "16",
        "--l2normalize",
        "--single_partials",
        "--dual_partials",
        "--batch_size",
        "8",
        "--lr",
        "0.003",
        "--epochs",
        "8",
        "--val_every",
        "4",
        "--no_progress",
        "--no_tensorboard",
        "--output_dir",
        str(out),
        "--shortname",
        "",
        *extra,
    ]


@pytest.mark.parametrize("model", ["PoseEmbroider", "Aligner"])
def test_train_on_cached_features_then_evaluate(core_world, tmp_path, model, capsys):
    extra = ["--model", model, "--no_img_augmentation"]
    if model == "Aligner":
        extra += ["--external_encoder_projection_type", "mediummlpxs"]
    assert train_core.main(_train_args(core_world, tmp_path / "run", *extra)) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert any("val/mRecall" in r for r in records)

    # one store per modality, reused by the evaluation (nothing recomputed: same folders, same mtimes)
    stores = sorted((config.DATA_CACHE_DIR / "frozen_features" / f"{core_world['dataset']}_val").iterdir())
    assert {s.name.split("_")[0] for s in stores} >= {"image", "pose", "text"}
    mtimes = {s: (s / "meta.json").stat().st_mtime_ns for s in stores}
    capsys.readouterr()
    assert (
        evaluate_core.main(["--model_path", str(tmp_path / "run"), "--dataset", core_world["dataset"], "--no_progress"])
        == 0
    )
    table = capsys.readouterr().out
    for name in ("i2p", "i2t", "p2i", "p2t", "t2i", "t2p", "ip2t", "it2p", "pt2i", "mRecall_dual_query"):
        assert name in table
    result_file = tmp_path / "run" / "best" / f"result_val_{core_world['dataset']}.json"
    result = json.loads(result_file.read_text())
    assert result["size"] == 8 and result["model"] == model
    assert len([k for k in result["metrics"] if "_R@" in k]) == 27
    pairs = {(row["dual"], row["single"]) for row in result["dual_vs_single"]}
    assert pairs == {
        ("ip2t", "i2t"),
        ("ip2t", "p2t"),
        ("it2p", "i2p"),
        ("it2p", "t2p"),
        ("pt2i", "p2i"),
        ("pt2i", "t2i"),
    }
    assert "dual vs single" in table
    assert result_file.with_suffix(".png").stat().st_size > 5000
    assert {s: (s / "meta.json").stat().st_mtime_ns for s in stores} == mtimes


def test_exact_and_compact_image_stores(core_world, tmp_path):
    from poseembroider.features.frozen import compute_modality_features

    encoders = FrozenEncoders({"image": core_world["encoders"]["image"]})
    root = tmp_path / "features"
    exact = compute_modality_features(core_world["dataset"], "val", encoders.encoders["image"], "exact", root=root)
    compact = compute_modality_features(core_world["dataset"], "val", encoders.encoders["image"], "compact", root=root)
    assert exact.fields["image"].shape == (192, 32) and exact.fields["image"].dtype == "float16"
    assert compact.fields["image"].shape == (32,)
    # compact derives from the exact tokens: their average
    tokens = exact.get("image", list(range(len(exact))))
    assert torch.allclose(compact.get("image", list(range(len(compact)))), tokens.mean(1), atol=1e-5)


def test_train_with_live_encoders_and_image_augmentation(core_world, tmp_path):
    args = _train_args(core_world, tmp_path / "live")
    args[args.index("--epochs") + 1] = "1"
    args[args.index("--val_every") + 1] = "1"
    assert train_core.main([*args, "--data_size", "8"]) == 0
    assert (tmp_path / "live" / "best" / "model.safetensors").is_file()


def test_train_with_a_pose_text_pool(core_world, tmp_path, capsys):
    from poseembroider.datasets.synthetic.pose_pools import PosePoolConfig, generate_pools

    version = core_world["dataset"].removeprefix("synthscript-")
    stats = generate_pools(PosePoolConfig(version, n_train=24, chunk_size=8, pairs=False), progress=False)
    args = _train_args(core_world, tmp_path / "pool", "--no_img_augmentation", "--pose_text_pool")
    assert train_core.main([*args, stats["poses_dataset"], "--pose_text_pool_ratio", "2"]) == 0
    losses = [json.loads(line).get("train/loss") for line in (tmp_path / "pool" / "log.jsonl").read_text().splitlines()]
    losses = [v for v in losses if v is not None]
    assert len(losses) == 8 and losses[-1] < losses[0]
    # the pool's features: pose and text only, cached like any split
    pool_stores = config.DATA_CACHE_DIR / "frozen_features" / f"{stats['poses_dataset']}_train"
    assert {s.name.split("_")[0] for s in pool_stores.iterdir()} == {"pose", "text"}
    capsys.readouterr()
    assert train_core.main([*_train_args(core_world, tmp_path / "bad"), "--pose_text_pool", "x"]) == 2
    assert "--no_img_augmentation" in capsys.readouterr().err


def test_model_dir_without_weights_is_refused(core_world, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = evaluate_core.main(["--model_path", str(tmp_path / "empty"), "--dataset", core_world["dataset"]])
    assert code == 2 and "config.json" in capsys.readouterr().err


def test_features_cached_by_another_encoder_version_are_refused(core_world, tmp_path):
    from poseembroider.features.frozen import compute_modality_features, modality_fingerprint
    from poseembroider.features.store import FeatureStore

    encoders = FrozenEncoders({"pose": core_world["encoders"]["pose"]})
    store = compute_modality_features(core_world["dataset"], "val", encoders.encoders["pose"], root=tmp_path)
    other = dict(modality_fingerprint(encoders.encoders["pose"]), pose_encoder="posevae@0000000000000000")
    with pytest.raises(FeatureCacheError, match="pose_encoder"):
        FeatureStore.open(store.directory, other)


def test_a_model_over_other_encoder_weights_is_refused(core_world, tmp_path):
    from poseembroider.model import CoreConfig, PoseEmbroider

    model = PoseEmbroider(
        CoreConfig(pose_encoder_name=core_world["encoders"]["pose"], pose_encoder_fingerprint="0" * 16)
    )
    with pytest.raises(CheckpointError, match="pose encoder"):
        model.attach_encoders(FrozenEncoders({"pose": core_world["encoders"]["pose"]}))


def test_unknown_modality_name_is_refused(core_world):
    with pytest.raises(UnknownModalityError, match="'audio'"):
        FrozenEncoders({"audio": "x"})


def test_cli_forwards_to_the_scripts(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train-core", "--help"])
    assert exit_info.value.code == 0 and "--single_partials" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["evaluate-core", "--help"])
    assert exit_info.value.code == 0 and "--model_path" in capsys.readouterr().out
