"""Run independent quickstart steps side by side, each in a process of its own ("lanes").

The quickstart's training steps each run on one torch thread: small matrices gain little from a second
thread, so on a 2-core machine two steps that do not depend on each other (the image encoder and the text
models, PairText and PoseEmbroider, ...) finish in the time of the longer one. `run_on_lanes` starts up to
`jobs` steps at once, in the order of `steps`, each as soon as every step it `needs` has finished, and merges
what each one adds to the context (its results and the shortnames it registers) back into the parent's.

A step runs in a fresh interpreter (`spawn`: no OpenMP state or locks copied from the parent). It receives the
context as it stands, pickled to bytes by the parent (multiprocessing's own pickler would hand each tensor of
the body model over as a shared-memory file descriptor, one open file each, and ran out of them), the parent's
configuration (`config.current_settings`, which tests and `--flags` may have changed after import) and its
process start method (for the step's own DataLoader workers); it sends back its results, or the traceback of its
failure. Only this module's own bytes are unpickled, in the lane it started. `jobs=1` runs every step in this
process, in order, as before: the same results, no process start.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from poseembroider import config
from poseembroider.quickstart.context import QuickstartContext, QuickstartStep

NAME_FIELDS = ("pool_names", "encoder_names", "core_names")
"""Context fields a lane step may extend (the shortnames and dataset names later steps read)."""


class StepFailed(RuntimeError):
    """A step failed in its lane; the message names the step and carries the lane's traceback."""


@dataclass
class _Running:
    step: str
    process: multiprocessing.process.BaseProcess
    connection: Connection
    start: float


def check_needs(steps: Sequence[str], needs: Mapping[str, Sequence[str]], done: Sequence[str] = ()) -> None:
    """Refuse a dependency table that names an unknown step or that no order of `steps` can satisfy."""
    known = set(steps) | set(done)
    for step in steps:
        unknown = [n for n in needs.get(step, ()) if n not in known]
        if unknown:
            raise ValueError(f"quickstart step {step!r} needs {unknown}, which is neither run nor done before it")
    finished = set(done)
    remaining = list(steps)
    while remaining:
        ready = [s for s in remaining if set(needs.get(s, ())) <= finished]
        if not ready:
            raise ValueError(f"quickstart steps {remaining} wait on each other: the dependency table has a cycle")
        finished.update(ready)
        remaining = [s for s in remaining if s not in ready]


def run_on_lanes(
    ctx: QuickstartContext,
    steps: Mapping[str, QuickstartStep],
    needs: Mapping[str, Sequence[str]],
    jobs: int,
    on_finished: Callable[[str, dict[str, Any], float], None] | None = None,
) -> None:
    """Run every step of `steps` on at most `jobs` lanes, each after the steps it `needs` (names of `steps` or
    of steps already in `ctx.results`); store each result in `ctx.results[name]` with its `seconds`.

    `on_finished(name, result, seconds)` is called in the parent as each step ends. A failing step stops the
    run: the running lanes are ended and `StepFailed` names the step."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    check_needs(list(steps), needs, done=list(ctx.results))
    if jobs == 1:
        for name, step in steps.items():
            missing = [n for n in needs.get(name, ()) if n not in ctx.results]
            if missing:
                raise ValueError(f"quickstart step {name!r} comes before {missing}, which it needs")
            start = time.perf_counter()
            _store(ctx, name, step(ctx), start, on_finished)
        return
    spawn = multiprocessing.get_context("spawn")
    pending = list(steps)
    running: dict[Connection, _Running] = {}
    try:
        while pending or running:
            for name in [s for s in pending if set(needs.get(s, ())) <= set(ctx.results)]:
                if len(running) >= jobs:
                    break
                receive, send = spawn.Pipe(duplex=False)
                process = spawn.Process(
                    target=_run_step_in_lane,
                    args=(
                        steps[name],
                        pickle.dumps(ctx),
                        config.current_settings(),
                        logging.getLogger().level,
                        multiprocessing.get_start_method(),
                        send,
                    ),
                    name=f"quickstart-{name}",
                )
                start = time.perf_counter()
                process.start()
                send.close()  # the lane holds the only writing end: its exit closes the pipe
                running[receive] = _Running(name, process, receive, start)
                pending.remove(name)
            if not running:
                raise RuntimeError(f"quickstart steps {pending} can never start")  # check_needs makes this unreachable
            for connection in wait(list(running)):
                lane = running.pop(connection)  # type: ignore[arg-type]
                message = _receive(lane)
                lane.process.join()
                for field in NAME_FIELDS:
                    getattr(ctx, field).update(message["names"][field])
                _store(ctx, lane.step, message["result"], lane.start, on_finished)
    finally:
        for lane in running.values():
            lane.process.terminate()
            lane.process.join()


def _store(
    ctx: QuickstartContext,
    name: str,
    result: dict[str, Any],
    start: float,
    on_finished: Callable[[str, dict[str, Any], float], None] | None,
) -> None:
    seconds = round(time.perf_counter() - start, 2)
    ctx.results[name] = result
    result.setdefault("seconds", seconds)
    if on_finished is not None:
        on_finished(name, result, seconds)


def _receive(lane: _Running) -> dict[str, Any]:
    """The lane's message, or `StepFailed` if it sent a failure or died without a word (killed, out of memory)."""
    try:
        message = lane.connection.recv()
    except EOFError:
        lane.process.join()
        raise StepFailed(
            f"quickstart step {lane.step!r} ended without a result (its process exited with code "
            f"{lane.process.exitcode}: killed, or out of memory?)"
        ) from None
    if message["status"] != "ok":
        lane.process.join()  # it exits right after its report
        raise StepFailed(f"quickstart step {lane.step!r} failed:\n{message['traceback']}")
    return message


def _run_step_in_lane(
    step: QuickstartStep,
    pickled_ctx: bytes,
    settings: dict[str, Any],
    log_level: int,
    start_method: str,
    connection: Connection,
) -> None:
    """Body of a lane process: the parent's configuration, log level and process start method, the step,
    its results sent back."""
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # lines in the order they are made
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    config.apply_settings(settings)
    # a spawned process makes 'spawn' its default: the step's DataLoader workers would then be spawned too,
    # each given its dataset's tensors through file descriptors (slow, and out of them on the image datasets)
    multiprocessing.set_start_method(start_method, force=True)
    try:
        ctx: QuickstartContext = pickle.loads(pickled_ctx)  # the parent's own context, pickled by the parent
        result = step(ctx)
    except BaseException:  # noqa: BLE001  # the parent reports it, naming the step
        connection.send({"status": "failed", "traceback": traceback.format_exc()})
        raise SystemExit(1) from None
    names = {field: getattr(ctx, field) for field in NAME_FIELDS}
    connection.send({"status": "ok", "result": result, "names": names})
    connection.close()
