"""Full disks and races for the reliability tests: real commands on a size-limited output folder, and the checks
of what they leave.

A job writes everything under one folder F (its `POSEEMBROIDER_*` paths and flags point there; its inputs live
elsewhere). `run_job(job, F, room=...)` runs it once with F limited to what F already holds plus `room` times
the bytes the whole job adds (`Footprint`), so a `room` in [0, 1) makes it fail at a random point:

- **tmpfs** (preferred): in a private mount namespace (`unshare -rm`, no privilege needed where user namespaces
  are allowed), F's real folder is bind-mounted aside, a tmpfs is mounted on F, filled with F's content, and
  remounted at its used size plus the room; the job runs there, so every writer (Python, numpy, PIL, torch's
  C++ zip writer, safetensors' Rust writer, worker processes) meets a real ENOSPC; then what F holds is copied
  back to the real folder, temporaries included. Paths are the same as in a run without limit.
- **inject** (machines without user namespaces, or `POSEEMBROIDER_TEST_FULL_DISK=inject`): a `sitecustomize`
  on the job's PYTHONPATH (this and every worker process) gives writes under F a budget of bytes, shared
  through a counter file: Python-level writes (`open`, numpy, text) raise `OSError(ENOSPC)` past it, and
  `torch.save`, safetensors' `save_file` and PIL's `save` to a path are charged the file's size afterwards and
  truncated with the error each library raises on a full disk. Coarser than the tmpfs (C writes are charged
  per file), but the same checks run.

`visible_problems(F)` lists every visible file that does not read whole (hidden temporaries and `.partial`
folders, the toolkit's in-progress names, are skipped); `cache_group_problems` every dataset whose cache files
are not all there; `tree_differences(A, B)` compares two outputs file by file by content (`VOLATILE_KEYS`
removed from JSON). Races: `start_staggered` starts several commands at random offsets.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poseembroider import config

CLI = (sys.executable, "-m", "poseembroider.cli")
"""The toolkit's command line, as a user runs it (`poseembroider ...`)."""

MODE_VARIABLE = "POSEEMBROIDER_TEST_FULL_DISK"
"""`inject` forces the injected failures even where a tmpfs could be mounted (to test that path)."""

VOLATILE_KEYS = frozenset({"seconds", "cpu_seconds", "time_s", "samples_per_s", "person_frames_per_s", "wall_s"})
"""JSON keys holding wall times: removed before two outputs are compared."""

ONE_LINE_ERROR = re.compile(r"^error: .+$")


def config_environment(**overrides: str | os.PathLike) -> dict[str, str]:
    """This process's environment with one torch / OpenMP thread and every path setting of `config` as the
    tests' session set it (isolated folders), as `POSEEMBROIDER_<NAME>` variables; `overrides` (NAME=value)
    replace some."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop(MODE_VARIABLE, None)
    for name in dir(config):
        value = getattr(config, name)
        if name.isupper() and isinstance(value, Path):
            env[config.ENV_PREFIX + name] = str(value)
    for name, value in overrides.items():
        env[config.ENV_PREFIX + name] = str(value)
    return env


# --------------------------------------------------------------------------------------------- limited runs

_TMPFS_SCRIPT = r"""
set -e
folder="$1"; hold="$2"; room="$3"; sizes="$4"; shift 4
mount --bind "$folder" "$hold"
mount -t tmpfs -o size=4g,mode=755 tmpfs "$folder"
cp -a "$hold/." "$folder/"
before=$(df -B1 --output=used "$folder" | tail -n 1 | tr -d ' ')
if [ "$room" != "none" ]; then
    mount -o remount,size=$(( before + room )) "$folder"
fi
set +e
"$@"
status=$?
after=$(df -B1 --output=used "$folder" | tail -n 1 | tr -d ' ')
echo "$before $after" > "$sizes"
find "$hold" -mindepth 1 -delete
cp -a "$folder/." "$hold/"
exit $status
"""


@functools.cache
def limited_filesystem_mode() -> str:
    """'tmpfs' where a size-limited tmpfs can be mounted in a private namespace, else 'inject'."""
    if os.environ.get(MODE_VARIABLE) == "inject":
        return "inject"
    if shutil.which("unshare") is None:
        return "inject"
    with tempfile.TemporaryDirectory() as root:
        folder, hold = Path(root, "f"), Path(root, "h")
        folder.mkdir()
        hold.mkdir()
        (folder / "seed").write_text("x")
        sizes = Path(root, "sizes")
        cmd = ["unshare", "-rm", "sh", "-c", _TMPFS_SCRIPT, "sh", str(folder), str(hold), "4096", str(sizes)]
        probe = [sys.executable, "-c", f"open({str(folder / 'big')!r}, 'wb').write(bytes(65536))"]
        try:
            done = subprocess.run([*cmd, *probe], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return "inject"
        # the probe must have failed for want of space, and the real folder got the seed back
        if done.returncode != 0 and "No space left" in done.stderr and (folder / "seed").is_file():
            return "tmpfs"
    return "inject"


@dataclass
class RunResult:
    """What one run of a job did: its status and output, and the bytes its folder held before and after."""

    returncode: int
    stdout: str
    stderr: str
    room: int | None  # bytes allowed beyond what the folder held (None: no limit)
    used_before: int
    used_after: int
    seconds: float

    @property
    def added(self) -> int:
        return self.used_after - self.used_before

    def describe(self) -> str:
        return (
            f"status {self.returncode}, room {self.room} B\n--- stdout\n{self.stdout[-3000:]}\n"
            f"--- stderr\n{self.stderr[-6000:]}"
        )


def folder_bytes(folder: Path) -> int:
    """Bytes allocated to the files under `folder` (sparse files count what they hold)."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_blocks * 512
    return total


def _run(cmd: Sequence[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`cmd` in its own process group (killed whole on timeout)."""
    process = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{' '.join(cmd[-12:])} ran past {timeout} s\n{stderr[-4000:]}") from None
    return subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)


def run_limited(
    argv: Sequence[str], env: dict[str, str], folder: Path, room: int | None, timeout: float = 900
) -> RunResult:
    """Run `argv` with `folder` limited to its current content plus `room` bytes (None: no limit), in the mode
    of `limited_filesystem_mode`. Without a limit the run is plain (no namespace, no injection)."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    mode = limited_filesystem_mode() if room is not None else "plain"
    if mode == "tmpfs":
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.hold.") as hold:
            sizes = Path(hold).with_name(Path(hold).name + ".sizes")
            cmd = ["unshare", "-rm", "sh", "-c", _TMPFS_SCRIPT, "sh", str(folder), hold, str(room), str(sizes)]
            done = _run([*cmd, *argv], env, timeout)
            try:
                before, after = (int(v) for v in sizes.read_text().split())
            except (OSError, ValueError):
                raise AssertionError(f"the tmpfs run did not start:\n{done.stderr[-4000:]}") from None
            finally:
                sizes.unlink(missing_ok=True)
    else:
        before = folder_bytes(folder)
        run_env = dict(env)
        if mode == "inject":
            run_env.update(_injection_environment(folder, room))
        done = _run(list(argv), run_env, timeout)
        after = folder_bytes(folder)
    return RunResult(done.returncode, done.stdout, done.stderr, room, before, after, time.perf_counter() - start)


def _injection_environment(folder: Path, room: int) -> dict[str, str]:
    site = Path(tempfile.mkdtemp(prefix="fulldisk_site_"))
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    counter = site / "counter"
    counter.write_text("0")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "PYTHONPATH": path,
        "POSEEMBROIDER_FULLDISK_DIR": str(folder.resolve()),
        "POSEEMBROIDER_FULLDISK_BUDGET": str(room),
        "POSEEMBROIDER_FULLDISK_COUNTER": str(counter),
    }


SITECUSTOMIZE = r'''
"""Injected full disk (tests/reliability/reliability_disk.py): writes under POSEEMBROIDER_FULLDISK_DIR share a
budget of POSEEMBROIDER_FULLDISK_BUDGET bytes (counter file shared by every process of the job)."""
import builtins, errno, fcntl, importlib.abc, importlib.machinery, io, os, sys

_DIR = os.path.realpath(os.environ["POSEEMBROIDER_FULLDISK_DIR"]) + os.sep
_BUDGET = int(os.environ["POSEEMBROIDER_FULLDISK_BUDGET"])
_COUNTER = os.environ["POSEEMBROIDER_FULLDISK_COUNTER"]


def _charge(n):
    """Take n bytes from the budget; False (and the budget spent) when they do not fit."""
    fd = os.open(_COUNTER, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        used = int(os.pread(fd, 32, 0).strip() or b"0")
        fits = used + n <= _BUDGET
        os.pwrite(fd, str(used + n if fits else _BUDGET).ljust(31).encode(), 0)
        return fits
    finally:
        os.close(fd)


def _inside(file):
    if not isinstance(file, (str, bytes, os.PathLike)):
        return False
    return os.path.realpath(os.fsdecode(file)).startswith(_DIR)


def _full():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _Limited:
    def __init__(self, raw):
        self._raw = raw

    def write(self, data):
        size = len(data.encode()) if isinstance(data, str) else memoryview(data).nbytes
        if not _charge(size):
            raise _full()
        return self._raw.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def __iter__(self):
        return iter(self._raw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._raw.close()


_open = builtins.open


def _limited_open(file, mode="r", *args, **kwargs):
    handle = _open(file, mode, *args, **kwargs)
    if any(c in mode for c in "wax+") and _inside(file):
        return _Limited(handle)
    return handle


builtins.open = _limited_open
io.open = _limited_open


def _charged_after(save, error):
    """`save(obj, path, ...)` charged the size of the file it wrote; past the budget the file is cut to half
    and `error()` raised, as the library does on a full disk."""
    def wrapper(*args, **kwargs):
        result = save(*args, **kwargs)
        target = args[1] if len(args) > 1 else kwargs.get("f", kwargs.get("filename", kwargs.get("fp")))
        if _inside(target) and os.path.isfile(target):
            size = os.path.getsize(target)
            if not _charge(size):
                os.truncate(target, size // 2)
                raise error()
        return result
    return wrapper


def _patch_torch(module):
    module.save = _charged_after(
        module.save, lambda: RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    )


def _patch_safetensors(module):
    from safetensors import SafetensorError

    def error():
        return SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    module.save_file = _charged_after(module.save_file, error)


def _patch_pil(module):
    save = module.Image.save

    def image_save(self, fp, *args, **kwargs):
        return _charged_after(lambda image, target, *a, **k: save(image, target, *a, **k), _full)(
            self, fp, *args, **kwargs
        )

    module.Image.save = image_save


_PATCHES = {"torch": _patch_torch, "safetensors.torch": _patch_safetensors, "PIL.Image": _patch_pil}


class _Patcher(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in _PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def patched(module):
            exec_module(module)
            _PATCHES[name](module)

        spec.loader.exec_module = patched
        return spec


sys.meta_path.insert(0, _Patcher())
'''


# --------------------------------------------------------------------------------------------- jobs


@dataclass
class DiskJob:
    """A command writing under one folder: `argv(folder)` the command line, `env(folder)` its environment,
    `seed(folder)` fills the folder with what the job reads there before it starts (a dataset whose val split
    it copies ...), `rerun_extra` flags of a rerun after a failure (e.g. `--resume`), `checks(folder)` the
    job's readers' verdicts on what a failed run left (a list of problems; each reader refuses an incomplete
    output or finds it absent), `ignored` output paths (globs) left out of the comparison with a complete run,
    `volatile` keys of JSON / `.pt` dicts that a rerun may write otherwise (e.g. `resume`)."""

    name: str
    argv: Callable[[Path], list[str]]
    env: Callable[[Path], dict[str, str]]
    seed: Callable[[Path], None] = lambda folder: None
    rerun_extra: tuple[str, ...] = ()
    checks: Callable[[Path], list[str]] = lambda folder: []
    ignored: tuple[str, ...] = ()
    volatile: tuple[str, ...] = ()
    timeout: float = 900


@dataclass
class Footprint:
    """What an uninterrupted run adds to its folder (bytes), and where its outputs are kept for comparison."""

    added: int
    reference: Path
    seconds: float


def fresh_folder(job: DiskJob, folder: Path) -> Path:
    """`folder` emptied and seeded with the job's inputs."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    job.seed(folder)
    return folder


def reference_run(job: DiskJob, root: Path) -> Footprint:
    """One uninterrupted run (on a tmpfs without limit in tmpfs mode: the same filesystem as the limited runs)
    at `root/run`, then moved to `root/reference`: absolute paths inside are those of the later runs."""
    folder = fresh_folder(job, root / "run")
    if limited_filesystem_mode() == "tmpfs":
        result = _tmpfs_unlimited(job, folder)
    else:
        result = run_limited(job.argv(folder), job.env(folder), folder, room=None, timeout=job.timeout)
    assert result.returncode == 0, f"{job.name}: the uninterrupted run failed\n{result.describe()}"
    reference = root / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    folder.rename(reference)
    return Footprint(max(result.added, 1), reference, result.seconds)


def _tmpfs_unlimited(job: DiskJob, folder: Path) -> RunResult:
    """The reference run inside a tmpfs (no limit): its used sizes are the tmpfs's, as for the limited runs."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.hold.") as hold:
        sizes = Path(hold).with_name(Path(hold).name + ".sizes")
        cmd = ["unshare", "-rm", "sh", "-c", _TMPFS_SCRIPT, "sh", str(folder), hold, "none", str(sizes)]
        done = _run([*cmd, *job.argv(folder)], job.env(folder), job.timeout)
        before, after = (int(v) for v in sizes.read_text().split())
        sizes.unlink()
    return RunResult(done.returncode, done.stdout, done.stderr, None, before, after, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------- checks


def is_in_progress_name(path: Path, root: Path) -> bool:
    """A hidden temporary (`atomic_io`) or lock file, or anything in a `.partial` folder: named as unfinished."""
    return any(part.startswith(".") or part.endswith(".partial") for part in path.relative_to(root).parts)


def _reads_whole(path: Path) -> str | None:
    """None when the file reads whole by its kind's reader, else why not."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif suffix == ".safetensors":
            from safetensors.torch import load_file

            load_file(str(path))
        elif suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            np.asarray(array[-1:]).sum()
        elif suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".jsonl":
            text = path.read_text()
            lines = text.splitlines()
            whole = lines if text.endswith("\n") else lines[:-1]  # a line cut by the failure is dropped on resume
            for line in whole:
                json.loads(line)
        elif suffix in (".jpg", ".jpeg", ".png"):
            from PIL import Image

            with Image.open(path) as image:
                image.load()
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                for key in archive.files:
                    archive[key]
    except Exception as err:  # noqa: BLE001 - any reader error means the file is not whole
        return f"{type(err).__name__}: {str(err)[:200]}"
    return None


def visible_problems(folder: Path, skip: Iterable[str] = ("tensorboard/*",)) -> list[str]:
    """Visible files under `folder` that do not read whole (in-progress names skipped)."""
    problems = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or is_in_progress_name(path, folder):
            continue
        relative = path.relative_to(folder)
        if any(relative.match(pattern) for pattern in skip):
            continue
        why = _reads_whole(path)
        if why:
            problems.append(f"{relative}: {why}")
    return problems


_CACHE_NAME = re.compile(
    r"(?P<family>[a-z]+)_version_(?P<version>.+)_split_(?P<split>[a-z]+)_(?P<kind>[a-z]+)(?:_tokenizer_.*)?(?:_reduced_\d+)?\.pt$"
)
REQUIRED_KINDS = {
    "synthscript": {"images", "poses", "rawtexts"},
    "bedlamscript": {"images", "poses", "rawtexts"},
    "synthposes": {"poses", "rawtexts"},
    "synthfix": {"pairs"},
    "bedlamfix": {"pairs"},
    "synthpairs": {"pairs", "rawtexts"},
}
"""Cache kinds written together (`cache_writers.write_caches`): a dataset split with some but not all of them
would look complete to a reader of one kind."""


def cache_group_problems(cache_dir: Path) -> list[str]:
    """Dataset splits of `cache_dir` holding some of their cache kinds but not all of `REQUIRED_KINDS`."""
    groups: dict[tuple[str, str, str], set[str]] = {}
    for path in cache_dir.glob("*.pt"):
        match = _CACHE_NAME.match(path.name)
        if match:
            key = (match["family"], match["version"], match["split"])
            groups.setdefault(key, set()).add(match["kind"])
    problems = []
    for (family, version, split), kinds in sorted(groups.items()):
        missing = REQUIRED_KINDS.get(family, set()) - kinds
        if missing:
            problems.append(f"{family}-{version} {split}: has {sorted(kinds)}, lacks {sorted(missing)}")
    return problems


def _without_volatile(value: Any, keys: frozenset[str] = VOLATILE_KEYS) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without_volatile(v, keys) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _content(path: Path, keys: frozenset[str] = VOLATILE_KEYS) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return _without_volatile(torch.load(path, map_location="cpu", weights_only=True), keys)
    if suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {"metadata": handle.metadata(), **{k: handle.get_tensor(k) for k in handle.keys()}}  # noqa: SIM118
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".json":
        return _without_volatile(json.loads(path.read_text()), keys)
    if suffix == ".jsonl":
        return [_without_volatile(json.loads(line), keys) for line in path.read_text().splitlines()]
    return path.read_bytes()


def tree_differences(
    reference: Path, other: Path, ignored: Iterable[str] = (), volatile: Iterable[str] = ()
) -> list[str]:
    """Visible files of two output folders that differ in content or exist in one only (`ignored` globs
    relative to the folders left out; `volatile` keys dropped from JSON and `.pt` dicts, besides
    `VOLATILE_KEYS`)."""
    ignored = tuple(ignored)
    keys = VOLATILE_KEYS | frozenset(volatile)

    def files(root: Path) -> set[Path]:
        return {
            p.relative_to(root)
            for p in root.rglob("*")
            if p.is_file()
            and not is_in_progress_name(p, root)
            and not any(p.relative_to(root).match(g) for g in ignored)
        }

    ref_files, other_files = files(reference), files(other)
    problems = [f"only in the complete run: {p}" for p in sorted(ref_files - other_files)]
    problems += [f"only in the interrupted one: {p}" for p in sorted(other_files - ref_files)]
    for relative in sorted(ref_files & other_files):
        if not _same(_content(reference / relative, keys), _content(other / relative, keys)):
            problems.append(f"differs: {relative}")
    return problems


def leftover_temporaries(folder: Path) -> list[str]:
    """Hidden temporaries (`*.tmp`, lock files) under `folder`: a completed run must not leave them."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob(".*")
        if p.name.endswith((".tmp", ".lock")) or (p.is_dir() and p.name.endswith(".tmp"))
    )


def one_line_error(stderr: str) -> str | None:
    """The `error: ...` line of a failed command's stderr when that is how it ended (no traceback), else None."""
    if "Traceback (most recent call last)" in stderr:
        return None
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if ONE_LINE_ERROR.match(line)]
    return errors[-1] if len(errors) == 1 else None


# --------------------------------------------------------------------------------------------- races


@dataclass
class Racer:
    """One process of a race: its command, when it started (s after the first), and how it ended."""

    argv: list[str]
    offset: float
    process: subprocess.Popen | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    extra: dict = field(default_factory=dict)


def race(commands: Sequence[Sequence[str]], env: dict[str, str], offsets: Sequence[float], timeout: float = 900):
    """Start `commands[i]` `offsets[i]` seconds after the first; wait for all; returns the `Racer`s."""
    racers = [Racer(list(c), float(o)) for c, o in zip(commands, offsets, strict=True)]
    start = time.monotonic()
    for racer in sorted(racers, key=lambda r: r.offset):
        delay = racer.offset - (time.monotonic() - start)
        if delay > 0:
            time.sleep(delay)
        racer.process = subprocess.Popen(
            racer.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    deadline = start + timeout
    for racer in racers:
        assert racer.process is not None
        try:
            racer.stdout, racer.stderr = racer.process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in racers:
                if other.process is not None and other.process.poll() is None:
                    os.killpg(other.process.pid, signal.SIGKILL)
            raise AssertionError(f"a race of {racer.argv[-8:]} ran past {timeout} s") from None
        racer.returncode = racer.process.returncode
    return racers
