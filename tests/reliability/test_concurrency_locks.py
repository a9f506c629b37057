"""The one lock of the toolkit's writers (`atomic_io.exclusive_lock`) and the model registry, raced by real
processes (fast: these processes import the lock's module only, no torch).

- mutual exclusion: processes adding to a counter file under the lock, at random offsets, lose no update (the
  lock file is removed on release and re-created: a process that locked a removed file must try again);
- the loser of a race without waiting is refused at once, naming the output, the lock file and the holder's pid;
  a waiter says whom it waits for and goes on when the holder is done;
- a holder killed with SIGKILL leaves its lock file, which blocks nobody;
- the registry: processes registering shortnames at once keep every entry (it was read-modify-write unlocked).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from poseembroider.atomic_io import exclusive_lock, lock_path

PY = sys.executable


def _spawn(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


HOLD = """
import sys, time
from pathlib import Path
from poseembroider.atomic_io import exclusive_lock
with exclusive_lock(sys.argv[1], "model folder"):
    Path(sys.argv[2]).write_text("held")
    time.sleep(float(sys.argv[3]))
"""

TRY = """
import sys
from poseembroider.atomic_io import OutputLockedError, exclusive_lock
wait = {"no": False, "yes": True}.get(sys.argv[2], None)
try:
    with exclusive_lock(sys.argv[1], "model folder", wait=float(sys.argv[2]) if wait is None else wait):
        print("acquired")
except OutputLockedError as err:
    print(f"refused|{err.holder_pid}|{err}")
"""


def _wait_for(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.reliability(area="concurrency", subject="exclusive_lock (counter under the lock)")
def test_processes_adding_under_the_lock_lose_no_update(tmp_path, cases):
    counter = tmp_path / "counter"
    counter.write_text("0")
    code = """
    import sys, time
    from pathlib import Path
    from poseembroider.atomic_io import exclusive_lock
    counter = Path(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        with exclusive_lock(counter, "counter", wait=True, poll_s=0.001):
            value = int(counter.read_text())
            time.sleep(0.0005)
            counter.write_text(str(value + 1))
    """
    rng = np.random.default_rng(5)
    processes = []
    for _ in range(6):
        time.sleep(float(rng.uniform(0, 0.05)))
        processes.append(_spawn(code, str(counter), "40"))
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    cases.tried(6 * 40)
    assert int(counter.read_text()) == 6 * 40
    assert not lock_path(counter).exists()  # removed by its last holder


@pytest.mark.reliability(area="concurrency", subject="exclusive_lock (refusal names the holder)")
def test_the_loser_is_refused_naming_the_lock_and_the_holder(tmp_path, cases):
    rng = np.random.default_rng(6)
    for race in range(4):
        output, ready = tmp_path / f"run{race}", tmp_path / f"ready{race}"
        holder = _spawn(HOLD, str(output), str(ready), "3")
        _wait_for(ready)
        time.sleep(float(rng.uniform(0, 0.2)))
        loser = subprocess.run([PY, "-c", textwrap.dedent(TRY), str(output), "no"], capture_output=True, text=True)
        cases.tried()
        verdict, pid, message = loser.stdout.strip().split("|", 2)
        assert verdict == "refused" and int(pid) == holder.pid, loser.stdout + loser.stderr
        assert str(output) in message and str(lock_path(output)) in message and f"process {holder.pid}" in message
        holder.kill()
        holder.communicate()


@pytest.mark.reliability(area="concurrency", subject="exclusive_lock (waiting, then the lock)")
def test_a_waiter_says_whom_it_waits_for_and_goes_on(tmp_path, cases):
    output, ready = tmp_path / "store", tmp_path / "ready"
    holder = _spawn(HOLD, str(output), str(ready), "1.0")
    _wait_for(ready)
    start = time.monotonic()
    waiter = subprocess.run([PY, "-c", textwrap.dedent(TRY), str(output), "yes"], capture_output=True, text=True)
    cases.tried()
    holder.communicate(timeout=30)
    assert waiter.stdout.strip() == "acquired" and time.monotonic() - start > 0.3
    assert f"waiting for process {holder.pid}, which is writing model folder {output}" in waiter.stderr
    timed = _spawn(HOLD, str(output), str(tmp_path / "ready2"), "3")
    _wait_for(tmp_path / "ready2")
    bounded = subprocess.run([PY, "-c", textwrap.dedent(TRY), str(output), "0.3"], capture_output=True, text=True)
    cases.tried()
    assert bounded.stdout.startswith("refused|") and "(waited 0.3 s)" in bounded.stdout
    timed.kill()
    timed.communicate()


@pytest.mark.reliability(area="concurrency", subject="exclusive_lock (holder killed: stale lock file)")
def test_a_killed_holder_blocks_nobody(tmp_path, cases):
    for k in range(3):
        output, ready = tmp_path / f"folder{k}", tmp_path / f"ready{k}"
        holder = _spawn(HOLD, str(output), str(ready), "60")
        _wait_for(ready)
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate()
        cases.tried()
        assert lock_path(output).read_text().strip() == str(holder.pid)  # left behind, with the dead pid
        start = time.monotonic()
        with exclusive_lock(output, "model folder"):  # no wait: the kernel released the dead holder's flock
            assert lock_path(output).read_text().strip() == str(os.getpid())
        assert time.monotonic() - start < 1 and not lock_path(output).exists()


@pytest.mark.reliability(area="concurrency", subject="exclusive_lock (re-entrant in one process)")
def test_the_lock_is_reentrant_in_a_process_and_exclusive_across(tmp_path, cases):
    output = tmp_path / "cache"
    with exclusive_lock(output), exclusive_lock(output):
        cases.tried()
        other = subprocess.run([PY, "-c", textwrap.dedent(TRY), str(output), "no"], capture_output=True, text=True)
        assert other.stdout.startswith(f"refused|{os.getpid()}|")
    with exclusive_lock(output):  # free again once both blocks are left
        pass
    assert not lock_path(output).exists()


@pytest.mark.reliability(area="concurrency", subject="model registry (concurrent registrations)")
def test_concurrent_registrations_are_all_kept(tmp_path, cases):
    """Before the registry's lock, processes registering at once overwrote each other's entries."""
    models = tmp_path / "models"
    code = """
    import os, sys
    from pathlib import Path
    from poseembroider import config
    from poseembroider.registry import register
    root = Path(sys.argv[1])
    for k in range(int(sys.argv[3])):
        folder = root / f"{sys.argv[2]}_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        register(f"{sys.argv[2]}_{k}", folder, models_root=root)
    """
    env = dict(os.environ, POSEEMBROIDER_MODELS_ROOT=str(models))
    rng = np.random.default_rng(7)
    processes = []
    for name in ("alpha", "beta", "gamma", "delta"):
        time.sleep(float(rng.uniform(0, 0.03)))
        processes.append(_spawn(code, str(models), name, "15", env=env))
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    cases.tried(4 * 15)
    registry = json.loads((models / "shortname_2_model_path.json").read_text())
    expected = {f"{name}_{k}" for name in ("alpha", "beta", "gamma", "delta") for k in range(15)}
    assert set(registry) == expected
    assert all(registry[name] == name for name in expected)  # stored relative to the models root
