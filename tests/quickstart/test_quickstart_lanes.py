"""Lanes: steps run side by side in processes of their own, each after what it needs, results merged back."""

from __future__ import annotations

import functools
import multiprocessing
import os
import resource
import time
from pathlib import Path

import pytest
import torch

from poseembroider import config
from poseembroider.quickstart.context import QuickstartContext
from poseembroider.quickstart.lanes import StepFailed, check_needs, run_on_lanes

# steps are module-level functions: a spawned lane imports this module to find them


def step_first(ctx: QuickstartContext) -> dict:
    ctx.encoder_names["pose"] = "pose_from_first"
    (ctx.out_dir / "first.txt").write_text(str(os.getpid()))
    start_method = multiprocessing.get_start_method()
    return {"pid": os.getpid(), "models_root": str(config.MODELS_ROOT), "start_method": start_method}


def step_slow(ctx: QuickstartContext) -> dict:
    time.sleep(1.0)
    return {"pid": os.getpid(), "saw_first": "first" in ctx.results}


def step_after_first(ctx: QuickstartContext) -> dict:
    return {"pid": os.getpid(), "pose_name": ctx.encoder_names.get("pose"), "first_done": "first" in ctx.results}


def step_meeting(ctx: QuickstartContext, me: str, partner: str, patience: float) -> dict:
    """Leave a mark, then wait up to `patience` seconds for the partner's: both marks are seen only when the
    two steps run at the same time."""
    (ctx.out_dir / f"{me}.here").touch()
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if (ctx.out_dir / f"{partner}.here").exists():
            return {"met": True}
        time.sleep(0.05)
    return {"met": False}


def step_counting_body_tensors(ctx: QuickstartContext) -> dict:
    return {"tensors": len(list(ctx.body.buffers())), "total": float(sum(b.sum() for b in ctx.body.buffers()))}


class ManyTensors(torch.nn.Module):
    """A stand-in body model with many tensors (the real one has dozens, and each step gets a copy)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        for i in range(count):
            self.register_buffer(f"b{i}", torch.full((3,), float(i)))


def step_failing(ctx: QuickstartContext) -> dict:
    raise ValueError("the planted failure")


def step_dying(ctx: QuickstartContext) -> dict:
    os._exit(3)


STEPS = {"first": step_first, "slow": step_slow, "after_first": step_after_first}
NEEDS = {"after_first": ("first",)}


def test_lanes_run_steps_in_processes_after_their_needs_and_merge_what_they_add(tmp_path):
    ctx = QuickstartContext(tmp_path)
    finished: list[str] = []
    run_on_lanes(ctx, STEPS, NEEDS, jobs=2, on_finished=lambda name, result, seconds: finished.append(name))
    assert set(ctx.results) == set(STEPS) and sorted(finished) == sorted(STEPS)
    pids = {name: result["pid"] for name, result in ctx.results.items()}
    assert os.getpid() not in pids.values() and len(set(pids.values())) == 3  # a process per step
    assert ctx.results["after_first"] == {
        "pid": pids["after_first"],
        "pose_name": "pose_from_first",  # what `first` registered reached the step that needs it
        "first_done": True,
        "seconds": ctx.results["after_first"]["seconds"],
    }
    assert ctx.encoder_names == {"pose": "pose_from_first"}  # and the parent's context
    # the lanes saw the configuration the tests set (not the one the environment would give a fresh process)
    assert ctx.results["first"]["models_root"] == str(config.MODELS_ROOT)
    # and the parent's start method for their own workers (a spawned process would otherwise default to spawn)
    assert ctx.results["first"]["start_method"] == multiprocessing.get_start_method()
    assert finished.index("first") < finished.index("after_first")
    assert all(result["seconds"] >= 0 for result in ctx.results.values())


def test_two_lanes_overlap_steps_that_do_not_need_each_other(tmp_path):
    def meetings(patience: float) -> dict:
        return {
            "a": functools.partial(step_meeting, me="a", partner="b", patience=patience),
            "b": functools.partial(step_meeting, me="b", partner="a", patience=patience),
        }

    ctx = QuickstartContext(tmp_path / "two")
    ctx.out_dir.mkdir()
    run_on_lanes(ctx, meetings(60.0), {}, jobs=2)
    assert ctx.results["a"]["met"] and ctx.results["b"]["met"]  # each found the other running
    ctx = QuickstartContext(tmp_path / "one")
    ctx.out_dir.mkdir()
    run_on_lanes(ctx, meetings(0.2), {}, jobs=1)
    assert not ctx.results["a"]["met"] and ctx.results["b"]["met"]  # one lane: `a` waited alone


def test_one_lane_runs_in_this_process_in_order(tmp_path):
    ctx = QuickstartContext(tmp_path)
    run_on_lanes(ctx, STEPS, NEEDS, jobs=1)
    assert {result["pid"] for result in ctx.results.values()} == {os.getpid()}
    assert ctx.results["slow"]["saw_first"] and ctx.results["after_first"]["pose_name"] == "pose_from_first"
    with pytest.raises(ValueError, match="'after_first' comes before \\['first'\\]"):
        run_on_lanes(QuickstartContext(tmp_path), {"after_first": step_after_first, "first": step_first}, NEEDS, 1)


def test_a_failing_step_is_named_with_its_traceback(tmp_path):
    ctx = QuickstartContext(tmp_path)
    with pytest.raises(StepFailed, match="(?s)step 'broken' failed:.*ValueError: the planted failure"):
        run_on_lanes(ctx, {"broken": step_failing, "slow": step_slow}, {}, jobs=2)
    assert "broken" not in ctx.results


def test_a_step_whose_process_dies_is_named_with_its_exit_code(tmp_path):
    with pytest.raises(StepFailed, match="step 'dead' ended without a result .*exited with code 3"):
        run_on_lanes(QuickstartContext(tmp_path), {"dead": step_dying}, {}, jobs=2)


def test_needs_that_name_unknown_steps_or_wait_on_each_other_are_refused():
    with pytest.raises(ValueError, match="'b' needs \\['nowhere'\\]"):
        check_needs(["a", "b"], {"b": ("nowhere",)})
    with pytest.raises(ValueError, match="wait on each other"):
        check_needs(["a", "b"], {"a": ("b",), "b": ("a",)})
    check_needs(["b"], {"b": ("a",)}, done=["a"])  # needs already done before the lanes start
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        run_on_lanes(QuickstartContext(Path(".")), {}, {}, jobs=0)


def test_the_context_travels_as_bytes_not_one_open_file_per_tensor(tmp_path):
    """multiprocessing's pickler (with torch's reducers) shares each tensor through a file descriptor of its own:
    the full quickstart's context ran out of them. Under a limit of 64 open files, 300 tensors still travel."""
    ctx = QuickstartContext(tmp_path)
    ctx.body = ManyTensors(300)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        run_on_lanes(ctx, {"count": step_counting_body_tensors}, {}, jobs=2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert ctx.results["count"]["tensors"] == 300
    assert ctx.results["count"]["total"] == 3 * sum(range(300))
