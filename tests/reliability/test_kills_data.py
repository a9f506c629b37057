"""SIGKILL the data jobs at random points and run them again (they are idempotent: a rerun keeps what is done
and does the rest): synthetic generation (`data synth`, `data pools`) and dataset processing (`data
process-bedlam`, `process-3dpw`, `import-amass`, `process-posefix`) end with the caches, images and work
files of an uninterrupted run, byte for byte (`reliability_kill_harness`).

Each job writes under its own folder (`POSEEMBROIDER_DATA_CACHE_DIR`, `POSEEMBROIDER_SYNTH_DATA_DIR` or its
flags pointed there); the releases are the tiny fixtures of the existing tests of each job. Progress is the
number of files written in the job's folder.
"""

from __future__ import annotations

import shutil
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


VOLATILE = (
    "samples_per_s",  # data synth's statistics
    "seconds",  # process-bedlam's work parts (people/part_*.pt: counts) and summary.json: seconds per step
    "cpu_seconds",
    "person_frames_per_s",
    "person_frames_per_s_per_worker",
    "person_frames_per_cpu_s",
)
"""Fields that hold wall times, removed before comparing (`reliability_kill_harness`)."""


def data_job(argv: list[str], work: Path, prepare=lambda: None, **env: str | Path) -> KillJob:
    """A data job writing its caches into `work / "cache"` (and whatever else `env` points into `work`)."""
    return KillJob(
        argv=[*CLI, *argv],
        env=config_environment(DATA_CACHE_DIR=work / "cache", **env),
        compared=[work],
        progress=lambda since: files_written([work], since),
        volatile_keys=VOLATILE,
        prepare=prepare,
    )


@pytest.mark.reliability(area="kills", subject="data synth")
def test_data_synth(tmp_path, cases):
    def make(work: Path) -> KillJob:
        argv = ["data", "synth", "--name", "killsynth", "--n-train", "40", "--n-val", "8", "--workers", "2"]
        return data_job([*argv, "--pool-factor", "1.5", "--seed", "4"], work, SYNTH_DATA_DIR=work / "synth")

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="data pools")
def test_data_pools(tmp_path_factory, tmp_path, cases):
    world = make_intermodality_world(tmp_path_factory.mktemp("kills_pools_world"), "killpools")
    version = world["script"].removeprefix("synthscript-")
    from poseembroider import config

    def make(work: Path) -> KillJob:
        def prepare() -> None:  # the script and fix datasets whose val splits the pools share
            (work / "cache").mkdir(parents=True)
            for path in config.DATA_CACHE_DIR.glob(f"synth*_version_{version}*"):
                shutil.copy2(path, work / "cache" / path.name)  # old times: inputs, not progress

        argv = ["data", "pools", "--script-dataset", world["script"], "--n-train", "96", "--chunk-size", "16"]
        return data_job([*argv, "--pool-factor", "2", "--seed", "2", "--no-progress"], work, prepare)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="data process-bedlam")
def test_data_process_bedlam(tmp_path_factory, body_model, procedural_model_file, tmp_path, cases):
    from poseembroider.datasets.process_bedlam.fixture import FixtureConfig, build_fixture

    release = build_fixture(
        tmp_path_factory.mktemp("kills_bedlam"),
        body_model,
        FixtureConfig(sequences_per_scene=3, frames=45, render_scale=0.2),
    )

    def make(work: Path) -> KillJob:
        argv = [
            *("data", "process-bedlam", "--bedlam-root", str(release["root"]), "--split", "train"),
            *("--scene-table", str(release["scene_table"]), "--fps-size", "40", "--cache-dir", str(work / "cache")),
            *("--work-dir", str(work / "work"), "--body-model", str(procedural_model_file.parent.parent)),
            *("--groups-per-unit", "1", "--workers", "2"),
        ]
        return data_job(argv, work)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="data process-3dpw")
def test_data_process_3dpw(tmp_path_factory, body_model, tmp_path, cases):
    from poseembroider.datasets.process_threedpw.fixture import write_threedpw_release

    root = tmp_path_factory.mktemp("kills_threedpw") / "3DPW"
    release = write_threedpw_release(root, body_model=body_model)

    def make(work: Path) -> KillJob:
        argv = ["data", "process-3dpw", "--threedpw-root", str(release.root), "--no-progress"]
        return data_job(argv, work, THREEDPW_IMG_DIR=root / "imageFiles")

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="data import-amass")
def test_data_import_amass(tmp_path_factory, body_model, tmp_path, cases):
    from poseembroider.datasets.process_amass.fixture import synthetic_amass_release

    root = tmp_path_factory.mktemp("kills_amass")
    synthetic_amass_release(root, n_sequences=8, frames=60, fps=30.0, body_model=body_model)

    def make(work: Path) -> KillJob:
        argv = ["data", "import-amass", "--amass-root", str(root), "--name", "motions", "--val-share", "0.3"]
        return data_job([*argv, "--no-progress"], work)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="data process-posefix")
def test_data_process_posefix(tmp_path_factory, body_model, tmp_path, cases):
    from poseembroider.datasets.process_posefix.fixture import write_posefix_release

    release = write_posefix_release(tmp_path_factory.mktemp("kills_posefix") / "release", body_model=body_model)
    dirs = {"POSEFIX_DIR": release.posefix_dir, "POSESCRIPT_DIR": release.posescript_dir}
    dirs |= {"POSEFIX_SMPLX_DIR": release.smplx_dir, "POSESCRIPT_SMPLX_DIR": release.smplx_dir}

    def make(work: Path) -> KillJob:
        argv = ["data", "process-posefix", "--dataset", "posefix-H", "posescript-H2", "--splits", "train", "val"]
        return data_job(argv, work, **dirs)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)
