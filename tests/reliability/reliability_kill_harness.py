"""SIGKILL a long job at random moments, rerun it, and compare what it leaves with an uninterrupted run.

A job is a real command (`python -m poseembroider.cli ...`) run in a subprocess with a given environment,
writing under a folder of its own. `check_kills_leave_the_uninterrupted_outputs` does, for one job:

1. the reference: one uninterrupted run, its progress (`KillJob.progress`, e.g. the lines of the training
   log or the files written) polled every few milliseconds into a timeline;
2. the chain: the same command started, SIGKILLed (its whole process group: worker processes die with
   it), restarted (with `rerun_extra` flags, e.g. `--resume`), killed again, ... at `kills` points, then
   run to its end. A rerun that completes the job before its kill (it had little left to do) is compared
   there, and the chain goes on from an empty folder, so every point kills a run;
3. the comparison: every file under the compared folders of both runs, byte for byte, except the fields
   that hold wall times (`KillJob.volatile_keys`, removed from `.json` / `.jsonl` files before comparing),
   and no file more or less (hidden temporaries of killed writers included: a rerun must not leave them).

Kill points are spread over the run and reproducible in what they aim at: with `seed`, the first point aims
into the start-up (before any progress: imports, dataset loading, resume), the others at times t_i of the
reference's active part, stratified (t_i uniform in the i-th of k-1 equal slices), i.e. at "progress p_i
reached, then d_i seconds more" in the reference's timeline. A run of the chain is killed d_i seconds after
it reaches p_i, so points land at increasing stages of the job whatever the machine's speed. Progress
counts only once the run has written something itself (`progress(since)` is -1 before: a resumed run reads
the killed run's files first), so a rerun that starts past p_i is killed d_i after its first write. Where
exactly a point lands (between two steps, in a checkpoint write) varies with the timing, which is the point
of killing at random moments; the test prints where each landed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from poseembroider import config

POLL_S = 0.005
"""Seconds between two looks at a running job's progress."""

CLI = (sys.executable, "-m", "poseembroider.cli")
"""The toolkit's command line, as a user runs it (`poseembroider ...`)."""


def config_environment(**overrides: str | os.PathLike) -> dict[str, str]:
    """This process's environment, one torch / OpenMP thread, and every path setting of `config` as the tests'
    session set it (isolated folders), as `POSEEMBROIDER_<NAME>` variables so the subprocess sees the same
    configuration; `overrides` (NAME=value) replace some."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    for name in dir(config):
        value = getattr(config, name)
        if name.isupper() and isinstance(value, Path):
            env[config.ENV_PREFIX + name] = str(value)
    for name, value in overrides.items():
        env[config.ENV_PREFIX + name] = str(value)
    return env


def log_lines(log: Path, since: float) -> int:
    """A trainer's progress: the lines of its training log, -1 while the log is older than `since` (the run's
    start: a resumed run has not rewritten it yet) or absent."""
    try:
        if log.stat().st_mtime < since:
            return -1
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return -1


def is_temporary(path: Path) -> bool:
    """A hidden temporary of an atomic write (`atomic_io`) or a `.partial` store folder: not an output."""
    return any(part.startswith(".") or part.endswith(".partial") for part in path.parts)


def files_written(folders: Iterable[Path], since: float) -> int:
    """A writer's progress: the files under the folders (not hidden temporaries, nor the files of hidden
    folders), -1 while none of them is newer than `since` (the run's start: a rerun has not written yet)."""
    count, fresh = 0, False
    for folder in folders:
        for where, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # temporary folders (atomic_io): not progress yet
            for name in files:
                if name.startswith("."):
                    continue
                count += 1
                if not fresh:
                    try:
                        fresh = os.stat(os.path.join(where, name)).st_mtime >= since
                    except FileNotFoundError:
                        pass
    return count if fresh else -1


@dataclass
class KillJob:
    """One job, set up to write under a given folder (see the module docstring)."""

    argv: list[str]  # the command of every run
    env: dict[str, str]
    compared: list[Path]  # folders (or files) whose content must end identical
    progress: Callable[[float], float]  # progress(since): absolute, non-decreasing; -1 before the run's own writes
    rerun_extra: list[str] = field(default_factory=list)  # flags added to the runs after a kill (--resume)
    volatile_keys: tuple[str, ...] = ()  # JSON keys holding wall times, removed before comparing
    prepare: Callable[[], None] = lambda: None  # puts the job's inputs in its folder (before each of the two runs)
    timeout_s: float = 600.0

    def start(self, rerun: bool) -> tuple[subprocess.Popen, float]:
        """The started process and its start time (`time.time()`, for `progress(since)`)."""
        argv = [*self.argv, *self.rerun_extra] if rerun else list(self.argv)
        since = time.time() - 0.01  # file times may round down a little
        process = subprocess.Popen(
            argv, env=self.env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return process, since


@dataclass
class Timeline:
    """The reference run: (seconds since start, progress) at each change, and its duration."""

    points: list[tuple[float, float]]
    duration: float

    @property
    def startup_s(self) -> float:
        """When progress first changed: the start-up (imports, loading) before it."""
        return self.points[1][0] if len(self.points) > 1 else 0.0

    @property
    def active_end(self) -> float:
        """When progress last changed: kills aim before it (after it the job only exits)."""
        return self.points[-1][0] if len(self.points) > 1 else self.duration

    def aim(self, t: float) -> tuple[float, float, bool]:
        """(progress reached at time t, seconds since it was reached, whether it is the start-up's)."""
        index = max(i for i, (when, _) in enumerate(self.points) if when <= t)
        when, value = self.points[index]
        return value, t - when, index == 0


@dataclass
class KillRecord:
    """Where one kill aimed and where it landed."""

    aimed_progress: float
    aimed_delay_s: float
    startup: bool
    killed_after_s: float | None  # seconds since the run's start; None: the run ended before the kill
    progress_at_kill: float | None


def _stderr_tail(process: subprocess.Popen) -> str:
    try:
        return process.stderr.read().decode(errors="replace")[-3000:] if process.stderr else ""
    except (OSError, ValueError):
        return ""


def _wait(process: subprocess.Popen, job: KillJob, label: str) -> None:
    try:
        _, err = process.communicate(timeout=job.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"{label}: still running after {job.timeout_s:.0f} s: {' '.join(job.argv)}") from None
    if process.returncode != 0:
        raise AssertionError(
            f"{label}: exit status {process.returncode}: {' '.join(job.argv)}\n{err.decode(errors='replace')[-3000:]}"
        )


def run_reference(job: KillJob) -> Timeline:
    """Run the job to its end, recording its progress over time."""
    start = time.monotonic()
    process, since = job.start(rerun=False)
    points = [(0.0, job.progress(since))]
    while process.poll() is None:
        if time.monotonic() - start > job.timeout_s:
            break
        value = job.progress(since)
        if value != points[-1][1]:
            points.append((time.monotonic() - start, value))
        time.sleep(POLL_S)
    duration = time.monotonic() - start
    _wait(process, job, "the uninterrupted run")
    value = job.progress(since)
    if value != points[-1][1]:
        points.append((duration, value))
    return Timeline(points, duration)


def kill_aims(timeline: Timeline, kills: int, seed: int) -> list[tuple[float, float, bool]]:
    """`kills` aims (progress, delay after it, start-up?): the first in the start-up (before any progress), the
    others stratified over the reference's active part (first progress to last)."""
    rng = np.random.default_rng(seed)
    startup, end = timeline.startup_s, timeline.active_end
    times = [startup * rng.uniform(0.1, 0.9)]
    times += [startup + (end - startup) * (i + rng.uniform(0.02, 0.98)) / (kills - 1) for i in range(kills - 1)]
    return [timeline.aim(t) for t in times]


def _kill_once(job: KillJob, aim: tuple[float, float, bool], rerun: bool) -> KillRecord:
    """Start the job, SIGKILL its process group at the aimed point (unless it ends first)."""
    progress, delay, startup = aim
    start = time.monotonic()
    process, since = job.start(rerun)
    kill_at = start + delay if startup else None
    while process.poll() is None:
        now = time.monotonic()
        if now - start > job.timeout_s:
            break
        if kill_at is None and job.progress(since) >= progress:
            kill_at = now + delay
        if kill_at is not None and now >= kill_at:
            reached = job.progress(since)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return KillRecord(progress, delay, startup, now - start, reached)
        time.sleep(POLL_S)
    _wait(process, job, f"the run aimed to be killed at progress {progress} + {delay:.2f} s")
    return KillRecord(progress, delay, startup, None, None)


def kill_chain(
    job: KillJob,
    timeline: Timeline,
    kills: int,
    seed: int,
    on_kill: Callable[[], None],
    on_complete: Callable[[], None],
) -> list[KillRecord]:
    """Start, kill at each aim in turn (each start after the first with `rerun_extra`), then run to the end.

    `on_kill()` is called once per process actually killed. A run that ends before its kill (a rerun that had
    little left to do got there first) has completed the job: `on_complete()` checks its outputs, and the
    chain starts again from an empty folder (`prepare()` again) with that aim, so every aim kills a run."""
    records = []
    rerun = False
    for aim in kill_aims(timeline, kills, seed):
        record = _kill_once(job, aim, rerun=rerun)
        if record.killed_after_s is None:
            on_complete()
            record = _kill_once(job, aim, rerun=False)
        records.append(record)
        if record.killed_after_s is not None:
            on_kill()
        rerun = True
    _wait(job.start(rerun=True)[0], job, "the rerun after the last kill")
    on_complete()
    return records


# --------------------------------------------------------------------------- comparison


def _strip(value, volatile_keys: Sequence[str]):
    """`value` without the dict entries named in `volatile_keys`, at any depth."""
    if isinstance(value, dict):
        return {k: _strip(v, volatile_keys) for k, v in value.items() if k not in volatile_keys}
    if isinstance(value, (list, tuple)):
        return type(value)(_strip(v, volatile_keys) for v in value)
    return value


def _normalized(path: Path, volatile_keys: Sequence[str]) -> bytes:
    """The file's bytes without its wall times: for .json / .jsonl files the JSON without the volatile keys, for
    .pt files (torch.save, read with weights_only) the content without them, saved again."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        lines = [json.dumps(_strip(json.loads(line), volatile_keys)) for line in data.decode().splitlines()]
        return "\n".join(lines).encode()
    if path.suffix == ".json":
        return json.dumps(_strip(json.loads(data), volatile_keys)).encode()
    if path.suffix == ".pt":
        buffer = io.BytesIO()
        torch.save(_strip(torch.load(io.BytesIO(data), weights_only=True), volatile_keys), buffer)
        return buffer.getvalue()
    return data


def _tree(root: Path) -> dict[str, Path]:
    if root.is_file():
        return {".": root}
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def tree_differences(
    reference: Sequence[Path], resumed: Sequence[Path], volatile_keys: Sequence[str] = ()
) -> list[str]:
    """What differs between the files under each pair of folders: missing, extra, or other bytes."""
    lines = []
    for ref_root, new_root in zip(reference, resumed, strict=True):
        ref, new = _tree(ref_root), _tree(new_root)
        lines += [f"{new_root}/{name}: missing after the kills" for name in sorted(set(ref) - set(new))]
        lines += [
            f"{new_root}/{name}: left by the kills, not in the uninterrupted run"
            for name in sorted(set(new) - set(ref))
        ]
        for name in sorted(set(ref) & set(new)):
            if ref[name].read_bytes() == new[name].read_bytes():
                continue
            if not volatile_keys or _normalized(ref[name], volatile_keys) != _normalized(new[name], volatile_keys):
                lines.append(f"{new_root}/{name}: other bytes than the uninterrupted run's")
    return lines


def check_kills_leave_the_uninterrupted_outputs(
    make_job: Callable[[Path], KillJob], root: Path, cases, kills: int = 10, seed: int = 0
) -> list[KillRecord]:
    """The whole check (module docstring) for the job `make_job(folder)`, which writes only under `folder`;
    counts each kill with `cases.tried()`; returns the kill records. Fails naming the files that differ.

    Both runs write in the same folder (`root/work`; the reference is moved to `root/reference` after its run),
    so files that record their own location (configs, training states) compare equal."""
    work, moved = root / "work", root / "reference"
    job = make_job(work)
    outside = [str(p) for p in job.compared if not p.is_relative_to(work)]
    assert not outside, f"the job compares files outside its folder {work}: {outside}"
    job.prepare()
    timeline = run_reference(job)
    work.rename(moved)
    job.prepare()
    reference = [moved / p.relative_to(work) for p in job.compared]
    completions = 0

    def compare() -> None:
        nonlocal completions
        completions += 1
        differences = tree_differences(reference, job.compared, job.volatile_keys)
        assert not differences, f"{len(differences)} differences after kills, run {completions} to its end:\n" + (
            "\n".join(differences[:20])
        )
        shutil.rmtree(work)
        job.prepare()

    records = kill_chain(job, timeline, kills, seed, cases.tried, compare)
    killed = sum(r.killed_after_s is not None for r in records)
    landed = ", ".join(
        "ended" if r.killed_after_s is None else f"{r.progress_at_kill:g}@{r.killed_after_s:.2f}s" for r in records
    )
    print(
        f"reference {timeline.duration:.1f} s (start-up {timeline.startup_s:.1f} s), progress "
        f"{timeline.points[-1][1]:g}; kills at (progress@seconds): {landed}; {completions} completion(s) compared"
    )
    assert killed == kills, f"only {killed} of {kills} runs were killed before they ended: {landed}"
    return records
