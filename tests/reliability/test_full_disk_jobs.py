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
    fresh_folder,
    leftover_temporaries,
    limited_filesystem_mode,
    one_line_error,
    reference_run,
    run_limited,
    tree_differences,
    visible_problems,
)
from reliability_jobs import build_bedlam_release, build_embed_inputs, build_pools_seed, build_world, jobs

pytestmark = [pytest.mark.slow]

POINTS = 10
"""Failure points per job, at least."""
CHAIN = 5
"""Failing runs before the run without limit."""
SEED = 19


# --------------------------------------------------------------------------------------------- the jobs' inputs


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return build_world(tmp_path_factory.mktemp("fulldisk_world"), "fulldiskworld")


@pytest.fixture(scope="module")
def pools_seed(tmp_path_factory) -> Path:
    return build_pools_seed(tmp_path_factory.mktemp("pools_seed"), tmp_path_factory.mktemp("pools_seed_images"))


@pytest.fixture(scope="module")
def embed_inputs(tmp_path_factory, world) -> Path:
    return build_embed_inputs(tmp_path_factory.mktemp("embed_inputs"), world)


@pytest.fixture(scope="module")
def bedlam_release(tmp_path_factory, body_model, procedural_model_file) -> dict:
    return build_bedlam_release(tmp_path_factory.mktemp("fulldisk_bedlam"), body_model, procedural_model_file)


# --------------------------------------------------------------------------------------------- the test

JOBS = ("data synth", "data pools", "train-posevae", "cache-intermodality-features", "embed", "data process-bedlam")


@pytest.mark.parametrize(
    "name", [pytest.param(job, marks=pytest.mark.reliability(area="full_disk", subject=job)) for job in JOBS]
)
def test_a_full_disk_at_random_points_leaves_nothing_complete_and_the_rerun_completes(
    name, request, world, pools_seed, embed_inputs, procedural_model_file, tmp_path, cases
):
    bedlam = request.getfixturevalue("bedlam_release") if name == "data process-bedlam" else None
    job = jobs(world, pools_seed, bedlam, embed_inputs)[name]
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
