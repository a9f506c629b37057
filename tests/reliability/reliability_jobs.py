"""The long jobs of the reliability tests (full disks, races): each a `reliability_disk.DiskJob` writing under
one folder, its inputs built once per test module (a tiny intermodality world, the val split the pose pools
copy, pose and text files to embed, a small BEDLAM release), and its readers' verdicts on what a stopped run
left (`DiskJob.checks`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from reliability_disk import CLI, DiskJob, cache_group_problems, config_environment

from intermodality_world import make_intermodality_world, write_split
from poseembroider import config


def build_world(folder: Path, name: str) -> dict:
    """Datasets (train 24 / val 8, in the session's cache folder) and an untrained tiny PoseEmbroider."""
    return make_intermodality_world(folder, name)


def build_pools_seed(cache: Path, images: Path) -> Path:
    """`cache` holding the val split of `synthscript-fdpools_...` (the pools copy it); its images in `images`."""
    saved = config.DATA_CACHE_DIR, config.SYNTH_DATA_DIR
    config.DATA_CACHE_DIR, config.SYNTH_DATA_DIR = cache, images
    try:
        from poseembroider.data import load_cmu_dev_poses

        write_split("fdpools", "val", list(range(500, 508)), load_cmu_dev_poses()[:8], np.random.default_rng(0))
    finally:
        config.DATA_CACHE_DIR, config.SYNTH_DATA_DIR = saved
    return cache


def build_embed_inputs(folder: Path, world: dict) -> Path:
    """16 poses (`poses.npz`) and 16 texts (`texts.txt`) of the world in `folder`."""
    np.savez(folder / "poses.npz", poses=np.asarray(world["poses"]["train"][:16], dtype=np.float32))
    (folder / "texts.txt").write_text("".join(f"the person raises the left arm {k}\n" for k in range(16)))
    return folder


def build_bedlam_release(folder: Path, body_model, procedural_model_file: Path) -> dict:
    """A small BEDLAM release in BEDLAM's layout (2 sequences per scene, 30 frames)."""
    from poseembroider.datasets.process_bedlam.fixture import FixtureConfig, build_fixture

    release = build_fixture(folder, body_model, FixtureConfig(sequences_per_scene=2, frames=30))
    return {**release, "model_file": procedural_model_file.parent.parent}


def _copy_into(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True)


def _store_checks(root: Path) -> list[str]:
    """Every complete feature store under `root` opens; every `.partial` one is refused as incomplete."""
    from poseembroider.features.store import FeatureCacheError, FeatureStore, partial_path

    problems = []
    for meta in root.rglob("meta.json"):
        folder = meta.parent
        if folder.name.endswith(".partial"):
            final = folder.with_name(folder.name.removesuffix(".partial"))
            if (final / "meta.json").is_file():
                continue
            try:
                FeatureStore.open(final)
                problems.append(f"{final}: opened although only {folder.name} exists")
            except FeatureCacheError:
                pass
        elif not partial_path(folder).exists():
            try:
                store = FeatureStore.open(folder)
                for name in store.fields:
                    assert np.isfinite(np.asarray(store.array(name), dtype=np.float32)).all(), name
            except Exception as err:  # noqa: BLE001
                problems.append(f"{folder}: {type(err).__name__}: {err}")
    return problems


def _model_folder_checks(root: Path, shortname: str) -> list[str]:
    """Checkpoint folders under `root/run` load (weights; the training state of `last/`); a registered shortname
    points at a complete folder."""
    import json

    from poseembroider.models.pretrained import load_state_dict_file
    from poseembroider.training.state import load_training_state

    problems = []
    for folder in sorted((root / "run").glob("*")):
        if not folder.is_dir() or folder.name.startswith(".") or folder.name == "tensorboard":
            continue
        try:
            load_state_dict_file(folder / "model.safetensors")
            if folder.name == "last":
                load_training_state(folder / "training_state.pt")
        except Exception as err:  # noqa: BLE001
            problems.append(f"{folder}: {type(err).__name__}: {err}")
    registry = root / "models" / "shortname_2_model_path.json"
    if registry.is_file():
        entries = json.loads(registry.read_text())
        target = root / "models" / entries.get(shortname, "")
        if shortname in entries and not (target / "model.safetensors").is_file():
            problems.append(f"{shortname} is registered but {target} has no weights")
    return problems


def _embedding_checks(out: Path) -> list[str]:
    from poseembroider.features.embedding_files import read_embeddings

    if not out.exists():
        return []
    try:
        read_embeddings(out)
    except Exception as err:  # noqa: BLE001
        return [f"{out}: {type(err).__name__}: {err}"]
    return []


def jobs(world: dict, pools_seed: Path, bedlam: dict | None, inputs: Path) -> dict[str, DiskJob]:
    """The jobs by command name (`data process-bedlam` only with a release)."""
    model = str(world["models"]["PoseEmbroider"])
    jobs = {
        "data synth": DiskJob(
            "data synth",
            lambda f: (
                [*CLI, "data", "synth", "--name", "fdsynth", "--n-train", "40", "--n-val", "8", "--seed", "3"]
                + ["--workers", "2", "--pool-factor", "2"]
            ),
            lambda f: config_environment(DATA_CACHE_DIR=f / "cache", SYNTH_DATA_DIR=f / "synthetic"),
            checks=lambda f: cache_group_problems(f / "cache"),
        ),
        "data pools": DiskJob(
            "data pools",
            lambda f: (
                [*CLI, "data", "pools", "--script-dataset", "synthscript-fdpools_overlap30_res224_j16_sf11"]
                + ["--n-train", "48", "--captions-per-pose", "2", "--chunk-size", "24", "--no-progress"]
            ),
            lambda f: config_environment(DATA_CACHE_DIR=f / "cache"),
            seed=lambda f: _copy_into(pools_seed, f / "cache"),
            checks=lambda f: cache_group_problems(f / "cache"),
        ),
        "train-posevae": DiskJob(
            "train-posevae",
            lambda f: (
                [*CLI, "train-posevae", "--dataset", world["script"], "--latentD", "8", "--num_neurons", "32"]
                + ["--device", "cpu", "--batch_size", "8", "--lr", "0.001", "--epochs", "4", "--val_every", "1"]
                + ["--log_step", "1", "--seed", "7", "--output_dir", str(f / "run"), "--shortname", "fdvae"]
                + ["--no_progress", "--saving_ckpt_step", "2"]  # with TensorBoard: its writer thread too
            ),
            lambda f: config_environment(MODELS_ROOT=f / "models"),
            rerun_extra=("--resume",),
            checks=lambda f: _model_folder_checks(f, "fdvae"),
            volatile=("resume",),  # the rerun's --resume, kept in trainer_config.json and the training state
            ignored=("run/tensorboard/*",),  # event files hold wall times
        ),
        "cache-intermodality-features": DiskJob(
            "cache-intermodality-features",
            lambda f: (
                [*CLI, "cache-intermodality-features", "--model_path", model, "--dataset", world["script"]]
                + ["--split", "train", "--input_types", "images", "poses", "texts", "--batch_size", "8"]
                + ["--cache_dir", str(f / "xbar"), "--feature_cache_dir", str(f / "frozen"), "--device", "cpu"]
                + ["--no_progress"]
            ),
            lambda f: config_environment(),
            checks=_store_checks,
        ),
        "embed": DiskJob(
            "embed",
            lambda f: (
                [*CLI, "embed", "--model", model, "--poses", str(inputs / "poses.npz")]
                + ["--texts", str(inputs / "texts.txt"), "--out", str(f / "emb.safetensors"), "--chunk-size", "6"]
                + ["--batch-size", "6", "--no-progress"]
            ),
            lambda f: config_environment(),
            checks=lambda f: _embedding_checks(f / "emb.safetensors"),
        ),
    }
    if bedlam is not None:
        jobs["data process-bedlam"] = DiskJob(
            "data process-bedlam",
            lambda f: (
                [*CLI, "data", "process-bedlam", "--bedlam-root", str(bedlam["root"]), "--split", "val"]
                + ["--fps-size", "24", "--scene-table", str(bedlam["scene_table"]), "--cache-dir", str(f / "cache")]
                + ["--work-dir", str(f / "work"), "--body-model", str(bedlam["model_file"]), "--groups-per-unit", "2"]
            ),
            lambda f: config_environment(),
            checks=lambda f: cache_group_problems(f / "cache"),
            ignored=("work/*/val/summary.json",),  # the steps' seconds, and which steps this run did
        )
    return jobs
