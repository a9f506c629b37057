"""SIGKILL the caching jobs at random points and run them again (they resume what is cached): the frozen-feature
stores (computed by `train-core --no_img_augmentation` before it trains) and the x̄ stores
(`cache-intermodality-features`) end byte-identical to an uninterrupted run's (`reliability_kill_harness`).

The world has 600 training samples, so each frozen-feature store is written in 3 chunks (256 rows each) and
the job runs long enough for kills to land between chunks, inside one and in the finalising rename. Progress
is the number of files written in the job's folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_kill_harness import (
    CLI,
    KillJob,
    check_kills_leave_the_uninterrupted_outputs,
    config_environment,
    files_written,
)

from intermodality_world import make_intermodality_world

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("procedural_model_file")]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_intermodality_world(tmp_path_factory.mktemp("kills_cache_world"), "killcache", n_train=600, n_val=8)


def cache_job(argv: list[str], work: Path) -> KillJob:
    return KillJob(
        argv=[*CLI, *argv],
        env=config_environment(),
        compared=[work],
        progress=lambda since: files_written([work], since),
        volatile_keys=("time_s",),
    )


@pytest.mark.reliability(area="kills", subject="frozen-feature caching (train-core)")
def test_frozen_feature_caching(world, tmp_path, cases):
    encoders = world["models"]["PoseEmbroider"].parent / "encoders"

    def make(work: Path) -> KillJob:
        argv = [
            *("train-core", "--dataset", world["script"], "--model", "Aligner", "--no_img_augmentation"),
            *("--external_encoder_projection_type", "mediummlpxs", "--image_feature_mode", "exact"),
            *("--image_encoder_name", str(encoders / "image"), "--pose_encoder_name", str(encoders / "pose")),
            *("--text_encoder_name", str(encoders / "text"), "--latentD", "16", "--l2normalize", "--single_partials"),
            *("--feature_cache_dir", str(work / "features"), "--feature_batch_size", "64", "--torch_threads", "1"),
            *("--batch_size", "64", "--epochs", "1", "--val_every", "1", "--seed", "3", "--output_dir"),
            *(str(work / "run"), "--shortname", "", "--no_progress", "--no_tensorboard", "--resume"),
        ]
        return cache_job(argv, work)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="cache-intermodality-features")
def test_cache_intermodality_features(world, tmp_path, cases):
    def make(work: Path) -> KillJob:
        argv = [
            *("cache-intermodality-features", "--model_path", str(world["models"]["PoseEmbroider"])),
            *("--dataset", world["script"], "--split", "train", "--input_types", "images", "texts"),
            *("--batch_size", "64", "--cache_dir", str(work / "xbar"), "--feature_cache_dir", str(work / "features")),
            *("--device", "cpu", "--no_progress"),
        ]
        return cache_job(argv, work)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)
