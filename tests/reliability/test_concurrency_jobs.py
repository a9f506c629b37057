"""Two processes writing the same output at once, as users would start them (slow): the same feature stores
(`cache-intermodality-features`: frozen stores and x̄), the same model folder (two `train-posevae` with one
`--output_dir`; two with one `--shortname` and their own folders), the same dataset caches (`data pools`,
`data synth` with one name), the same embedding file (`embed --out`).

Each race starts the second process a seeded random 0-1.5 s (0-0.5 s for the short jobs) after the first, in a
folder seeded like the full-disk tests' (`reliability_jobs`). One wins or both wait, and:

- nothing is corrupted: the folder holds what one uninterrupted run leaves (file by file, by content), no
  temporary nor lock file is left, and the readers open it;
- the loser says why: a refused process ends with one `error:` line naming the output, its lock file and the
  winner's pid; a waiting one said whom it waited for (the other racer's pid) on stderr.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from reliability_disk import (
    DiskJob,
    fresh_folder,
    leftover_temporaries,
    one_line_error,
    race,
    reference_run,
    tree_differences,
    visible_problems,
)
from reliability_jobs import build_embed_inputs, build_pools_seed, build_world, jobs

pytestmark = [pytest.mark.slow]

RACES = 3
"""Races per output."""
SEED = 23
WAITING = re.compile(r"waiting for process (\d+), which is writing (.+) \(lock file (.+)\)")
REFUSED = re.compile(r"^error: (.+) is being written by process (\d+) \(lock file (\S+)\)")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return build_world(tmp_path_factory.mktemp("race_world"), "raceworld")


@pytest.fixture(scope="module")
def race_jobs(tmp_path_factory, world) -> dict[str, DiskJob]:
    seed = build_pools_seed(tmp_path_factory.mktemp("race_pools_seed"), tmp_path_factory.mktemp("race_images"))
    return jobs(world, seed, None, build_embed_inputs(tmp_path_factory.mktemp("race_inputs"), world))


def _contention(racers, root: Path) -> list[str]:
    """How each racer met the other ('won', 'waited', 'refused'), checking that a loser named the output and its
    lock file (under `root`) and the other racer's pid."""
    pids = [r.process.pid for r in racers]
    verdicts = []
    for k, racer in enumerate(racers):
        other = pids[1 - k]
        if racer.returncode == 0:
            waits = WAITING.findall(racer.stderr)
            for pid, _, lock in waits:
                assert int(pid) == other and lock.startswith(str(root)), f"waited for {pid} ({lock}); other {other}"
            verdicts.append("waited" if waits else "won")
        else:
            line = one_line_error(racer.stderr)
            assert racer.returncode == 2 and line is not None, f"status {racer.returncode}\n{racer.stderr[-3000:]}"
            match = REFUSED.match(line)
            if match is None:  # started after the winner finished: the finished output is refused as such
                verdicts.append("refused (finished)")
                continue
            output, lock = match[1].split()[-1], Path(match[3])
            assert int(match[2]) == other and output.startswith(str(root)), line
            assert lock.name == f".{Path(output).name}.lock" and lock.parent == Path(output).parent, line
            verdicts.append("refused")
    return verdicts


def _run_races(
    job: DiskJob, tmp_path: Path, argvs, root_of, cases, allowed_outcomes, max_offset: float = 1.5
) -> list[list[str]]:
    """`RACES` races of `argvs(folder)` (one argv per racer, the second started U(0, max_offset) s after the
    first) in fresh folders; every one compared with the reference run. Returns the verdicts of each race."""
    reference = reference_run(job, tmp_path)
    rng = np.random.default_rng([SEED, len(job.name), sum(map(ord, job.name))])
    folder = tmp_path / "run"
    outcomes = []
    for k in range(RACES):
        fresh_folder(job, folder)
        offsets = [0.0, float(rng.uniform(0, max_offset))]
        racers = race(argvs(folder), job.env(folder), offsets, timeout=job.timeout)
        cases.tried()
        verdicts = _contention(racers, root_of(folder))
        assert tuple(sorted(verdicts)) in allowed_outcomes, (verdicts, [r.stderr[-2000:] for r in racers])
        assert not leftover_temporaries(folder), leftover_temporaries(folder)
        problems = visible_problems(folder) + job.checks(folder)
        assert not problems, "\n".join(problems)
        differences = tree_differences(reference.reference, folder, job.ignored, job.volatile)
        assert not differences, f"race {k} (offset {offsets[1]:.2f} s):\n" + "\n".join(differences)
        outcomes.append(verdicts)
    print(f"{job.name}: {outcomes}")  # how the races went (-s / -rA), e.g. [['waited', 'won'], ...]
    return outcomes


BOTH_DONE = {("won", "won"), ("waited", "won"), ("waited", "waited")}
"""Both finish; one waited, or each at another store (one lock per store, never two held at once: no deadlock)."""
ONE_REFUSED = {("refused", "won"), ("refused (finished)", "won"), ("won", "won")}


@pytest.mark.reliability(area="concurrency", subject="feature stores (cache-intermodality-features x2)")
def test_two_jobs_caching_the_same_features(race_jobs, tmp_path, cases):
    """Both finish: the second waits for a store the first is writing, then reuses it, or finds it complete
    (the stores of this tiny world take a second or two: whether the second process arrives while one is being
    written depends on the machine; the waiting itself is raced in `test_concurrency_locks`)."""
    job = race_jobs["cache-intermodality-features"]
    _run_races(job, tmp_path, lambda f: [job.argv(f)] * 2, lambda f: f, cases, BOTH_DONE, max_offset=0.5)


@pytest.mark.reliability(area="concurrency", subject="model folder (train-posevae x2, same --output_dir)")
def test_two_trainings_into_the_same_folder(race_jobs, tmp_path, cases):
    """The second is refused naming the folder, its lock and the first's pid; the first's folder is whole."""
    job = race_jobs["train-posevae"]
    outcomes = _run_races(job, tmp_path, lambda f: [job.argv(f)] * 2, lambda f: f / "run", cases, ONE_REFUSED)
    assert any("refused" in o for o in outcomes), f"no race had a loser: {outcomes}"


@pytest.mark.reliability(area="concurrency", subject="model registry (train-posevae x2, same --shortname)")
def test_two_trainings_registering_the_same_shortname(race_jobs, tmp_path, cases):
    """Two folders, one shortname: both train; the shortname points at one of the two whole folders, and the
    registry stays valid JSON (its read-modify-write is locked)."""
    job = race_jobs["train-posevae"]
    rng = np.random.default_rng(SEED)
    for k in range(RACES):
        folder = fresh_folder(job, tmp_path / f"run{k}")
        argvs = [[a.replace(str(folder / "run"), str(folder / name)) for a in job.argv(folder)] for name in "ab"]
        racers = race(argvs, job.env(folder), [0.0, float(rng.uniform(0, 1.5))], timeout=job.timeout)
        cases.tried()
        assert all(r.returncode == 0 for r in racers), [r.stderr[-2000:] for r in racers]
        registry = json.loads((folder / "models" / "shortname_2_model_path.json").read_text())
        target = Path(registry["fdvae"])
        target = target if target.is_absolute() else folder / "models" / target
        assert target.parent in (folder / "a", folder / "b") and (target / "model.safetensors").is_file(), registry
        assert not tree_differences(folder / "a", folder / "b", ("tensorboard/*",), volatile=("output_dir",))
        assert not leftover_temporaries(folder), leftover_temporaries(folder)


@pytest.mark.reliability(area="concurrency", subject="dataset caches (data pools x2, same name)")
def test_two_pool_jobs_with_the_same_name(race_jobs, tmp_path, cases):
    """Both finish: the second waits, then reuses the pools (or remakes the same files)."""
    job = race_jobs["data pools"]
    _run_races(job, tmp_path, lambda f: [job.argv(f)] * 2, lambda f: f / "cache", cases, BOTH_DONE, max_offset=0.5)


@pytest.mark.reliability(area="concurrency", subject="dataset caches (data synth x2, same --name)")
def test_two_synth_jobs_with_the_same_name(race_jobs, tmp_path, cases):
    """Both finish: the second waits for the first, then finds every chunk rendered and writes the same caches."""
    job = race_jobs["data synth"]
    outcomes = _run_races(job, tmp_path, lambda f: [job.argv(f)] * 2, lambda f: f / "synthetic", cases, BOTH_DONE)
    assert any("waited" in o for o in outcomes), f"no race made one process wait: {outcomes}"


@pytest.mark.reliability(area="concurrency", subject="embedding file (embed x2, same --out)")
def test_two_embed_jobs_with_the_same_output(race_jobs, tmp_path, cases):
    """The second is refused: writing (naming the file, lock and pid) or already written (the file exists)."""
    job = race_jobs["embed"]
    _run_races(job, tmp_path, lambda f: [job.argv(f)] * 2, lambda f: f / "emb.safetensors", cases, ONE_REFUSED)
