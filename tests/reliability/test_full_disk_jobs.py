"""The toolkit's long jobs on a disk that fills up at random points, then rerun once space is freed (slow).

For each job (`data synth`, `data pools`, `train-posevae`, `cache-intermodality-features` with its frozen-feature
stores, `embed`, `data process-bedlam`), run as a user runs it (`python -m poseembroider.cli ...`) with all its
outputs under one folder (`reliability_disk`):

1. a reference run without limit gives the bytes the job adds to its folder and the outputs to compare with;
2. chains of runs from the job's start: each run gets a random share of the room the rest of the job needs (a
   seeded uniform draw), so it fails somewhere in the job's remaining part; at least `POINTS` failure points
   per job. At each point: the command ends with status 2 and one `error:` line naming a path under the
   folder (no traceback), every visible file there reads whole, every dataset split has all its cache kinds,
   and the job's own readers refuse what is unfinished (`DiskJob.checks`);
3. each chain ends with a run without limit (with the job's resume flag): it completes, leaves no temporary,
   and its outputs equal the reference's file by file (content; wall times aside).

The random points are drawn by `numpy.random.default_rng(SEED + job)`: the same shares on every machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from reliability_disk import (
    CLI,
    DiskJob,
    cache_group_problems,
    config_environment,
    fresh_folder,
    leftover_temporaries,
    limited_filesystem_mode,
    one_line_error,
    reference_run,
    run_limited,
    tree_differences,
    visible_problems,
)

from intermodality_world import make_intermodality_world, write_split
from poseembroider import config

pytestmark = [pytest.mark.slow]

POINTS = 10
"""Failure points per job, at least."""
CHAIN = 5
"""Failing runs before the run without limit."""
SEED = 19


# --------------------------------------------------------------------------------------------- the jobs' inputs


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Datasets (train 24 / val 8, in the session's cache folder) and an untrained tiny PoseEmbroider."""
    return make_intermodality_world(tmp_path_factory.mktemp("fulldisk_world"), "fulldiskworld")


@pytest.fixture(scope="module")
def pools_seed(tmp_path_factory) -> Path:
    """A cache folder holding the val split of `synthscript-fdpools_...` (the pools copy it)."""
    cache = tmp_path_factory.mktemp("pools_seed")
    saved = config.DATA_CACHE_DIR, config.SYNTH_DATA_DIR
    config.DATA_CACHE_DIR, config.SYNTH_DATA_DIR = cache, tmp_path_factory.mktemp("pools_seed_images")
    try:
        from poseembroider.data import load_cmu_dev_poses

        write_split("fdpools", "val", list(range(500, 508)), load_cmu_dev_poses()[:8], np.random.default_rng(0))
    finally:
        config.DATA_CACHE_DIR, config.SYNTH_DATA_DIR = saved
    return cache


def _copy_into(source: Path, target: Path) -> None:
    import shutil

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


def _jobs(world: dict, pools_seed: Path, bedlam: dict | None, inputs: Path) -> dict[str, DiskJob]:
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
                + ["--no_progress", "--no_tensorboard", "--saving_ckpt_step", "2"]
            ),
            lambda f: config_environment(MODELS_ROOT=f / "models"),
            rerun_extra=("--resume",),
            checks=lambda f: _model_folder_checks(f, "fdvae"),
            volatile=("resume",),  # the rerun's --resume, kept in trainer_config.json and the training state
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


@pytest.fixture(scope="module")
def embed_inputs(tmp_path_factory, world) -> Path:
    folder = tmp_path_factory.mktemp("embed_inputs")
    np.savez(folder / "poses.npz", poses=np.asarray(world["poses"]["train"][:16], dtype=np.float32))
    (folder / "texts.txt").write_text("".join(f"the person raises the left arm {k}\n" for k in range(16)))
    return folder


@pytest.fixture(scope="module")
def bedlam_release(tmp_path_factory, body_model, procedural_model_file) -> dict:
    from poseembroider.datasets.process_bedlam.fixture import FixtureConfig, build_fixture

    release = build_fixture(
        tmp_path_factory.mktemp("fulldisk_bedlam"), body_model, FixtureConfig(sequences_per_scene=2, frames=30)
    )
    return {**release, "model_file": procedural_model_file.parent.parent}


# --------------------------------------------------------------------------------------------- the test

JOBS = ("data synth", "data pools", "train-posevae", "cache-intermodality-features", "embed", "data process-bedlam")


@pytest.mark.parametrize(
    "name", [pytest.param(job, marks=pytest.mark.reliability(area="full_disk", subject=job)) for job in JOBS]
)
def test_a_full_disk_at_random_points_leaves_nothing_complete_and_the_rerun_completes(
    name, request, world, pools_seed, embed_inputs, procedural_model_file, tmp_path, cases
):
    bedlam = request.getfixturevalue("bedlam_release") if name == "data process-bedlam" else None
    job = _jobs(world, pools_seed, bedlam, embed_inputs)[name]
    footprint = reference_run(job, tmp_path)
    rng = np.random.default_rng([SEED, JOBS.index(name)])
    folder, failures, chains = tmp_path / "run", 0, 0
    while failures < POINTS:
        chains += 1
        assert chains <= 4, f"{name}: only {failures} failure points in {chains - 1} chains"
        fresh_folder(job, folder)
        seeded, progress = None, 0  # bytes the folder held at the chain's start; bytes the job added since
        for attempt in range(CHAIN):
            argv = job.argv(folder) + (list(job.rerun_extra) if attempt else [])
            room = int(rng.uniform(0, 1) * max(footprint.added - progress, 0))
            result = run_limited(argv, job.env(folder), folder, room, timeout=job.timeout)
            seeded = result.used_before if seeded is None else seeded
            progress = result.used_after - seeded
            if result.returncode == 0:
                break  # it fitted (the rest of the job was smaller than drawn): no failure point
            failures += 1
            cases.tried()
            where = f"{name}, chain {chains}, run {attempt + 1} ({limited_filesystem_mode()}, room {room} B)"
            line = one_line_error(result.stderr)
            assert result.returncode == 2 and line is not None, f"{where}: not one error line\n{result.describe()}"
            assert "no space left on the device to write" in line and str(folder) in line, f"{where}: {line}"
            problems = visible_problems(folder) + job.checks(folder)
            assert not problems, f"{where}: left looking complete:\n" + "\n".join(problems)
        rerun = run_limited(job.argv(folder) + list(job.rerun_extra), job.env(folder), folder, None, job.timeout)
        assert rerun.returncode == 0, f"{name}: the rerun after freeing space failed\n{rerun.describe()}"
        assert not leftover_temporaries(folder), leftover_temporaries(folder)
        differences = tree_differences(footprint.reference, folder, job.ignored, job.volatile)
        assert not differences, f"{name}: the rerun differs from an uninterrupted run:\n" + "\n".join(differences)


@pytest.mark.reliability(area="full_disk", subject="the jobs are the CLI's commands")
def test_the_job_list_is_the_cli_s():
    """Every job named here is a command of the CLI (a renamed command would silently drop its case)."""
    from poseembroider.cli import COMMANDS

    known = {" ".join(c.path) for c in COMMANDS}
    assert set(JOBS) <= known, set(JOBS) - known
    assert sys.executable in CLI
