"""Every kind of writer of the toolkit on a full filesystem (fast): a `DiskFullError` naming the output, the
output absent or as before, no temporary left, and the same write fitting once there is room.

One subprocess runs all the writes in a folder limited to 64 KiB beyond what it holds (a real tmpfs where
possible, else the injected failures of `reliability_disk`; a second test, slow, forces the injected ones so
that both paths stay tested here): `save_cache` (torch's C++ zip writer), safetensors (Rust), `np.save`, PIL JPEG and
PNG, `write_json_atomic` (text), `atomic_directory` (a checkpoint folder of several files), a feature store's
rows (sparse `.npy`), a run log line. Each write is bigger than the room by a seeded random amount.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from reliability_disk import MODE_VARIABLE, config_environment, limited_filesystem_mode, run_limited

ROOM = 64 * 1024

WRITES = textwrap.dedent(
    r'''
    import errno, json, os, sys
    from pathlib import Path
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from poseembroider.atomic_io import DiskFullError, atomic_directory, atomic_file, write_json_atomic
    from poseembroider.datasets.cache_format import save_cache
    from poseembroider.features.store import FeatureStoreWriter, FieldSpec
    from poseembroider.training.run_log import RunLog

    root = Path(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]))

    def payload(kb):
        return rng.standard_normal(kb * 256).astype(np.float32)  # kb KiB of noise (incompressible)

    def jpeg(path, kb):
        side = int((kb * 1024 / 3) ** 0.5 * 1.6)
        with atomic_file(path) as tmp:
            Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(tmp, format="JPEG", quality=100)

    def png(path, kb):
        side = int((kb * 1024 / 3) ** 0.5)
        with atomic_file(path) as tmp:
            Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(tmp, format="PNG")

    def npy(path, kb):
        with atomic_file(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, payload(kb))

    def safetensors(path, kb):
        with atomic_file(path) as tmp:
            save_file({"w": torch.from_numpy(payload(kb))}, str(tmp))

    def cache(path, kb):
        save_cache({"criteria": {}, "poses": {0: torch.from_numpy(payload(kb))}}, path)

    def text(path, kb):
        write_json_atomic(path, {"rows": payload(kb // 4 + 1).tolist()})

    def checkpoint(path, kb):
        with atomic_directory(path) as tmp:
            save_file({"w": torch.from_numpy(payload(kb // 2))}, str(tmp / "model.safetensors"))
            torch.save({"state": torch.from_numpy(payload(kb // 2))}, tmp / "training_state.pt")
            (tmp / "metrics.json").write_text("{}")

    def store_rows(path, kb):
        rows = kb * 256 // 64
        writer = FeatureStoreWriter(path, np.arange(rows), [FieldSpec("pose", (64,))], {"m": "x"}, chunk_size=rows)
        ((start, stop),) = writer.pending_chunks()
        writer.write_chunk(start, stop, {"pose": torch.from_numpy(payload(kb).reshape(rows, 64))})
        writer.finalize()

    def log_lines(path, kb):
        log = RunLog(path, tensorboard=False)
        for step in range(kb * 4):
            log.write("step", step, {"loss": 1.0, "pad": "x" * 200})

    WRITERS = {
        "torch.save cache": (cache, "cache.pt"),
        "safetensors": (safetensors, "model.safetensors"),
        "np.save (file object)": (npy, "array.npy"),
        "PIL JPEG": (jpeg, "image.jpg"),
        "PIL PNG": (png, "image.png"),
        "JSON text": (text, "data.json"),
        "checkpoint folder": (checkpoint, "last"),
        "feature store rows": (store_rows, "store"),
        "run log": (log_lines, "run"),
    }
    room_kb = int(sys.argv[3]) // 1024

    def free_space():
        """Remove what the last case left; with injected failures, give the bytes back to the budget."""
        for p in sorted(root.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        counter = os.environ.get("POSEEMBROIDER_FULLDISK_COUNTER")
        if counter:
            Path(counter).write_text("0")

    report = []
    for name, (write, target) in WRITERS.items():
        for attempt in range(2):
            kb = int(room_kb * rng.uniform(1.5, 4.0))
            path = root / f"{attempt}" / target
            case = {"writer": name, "path": str(path), "kb": kb}
            try:
                write(path, kb)
                case["outcome"] = "written"
            except DiskFullError as err:
                case.update(outcome="DiskFullError", filename=err.filename, message=err.strerror, errno=err.errno)
            except BaseException as err:
                case.update(outcome=type(err).__name__, message=str(err)[:300])
            case["left"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            report.append(case)
            free_space()  # the next case starts with the same room (a log / store keeps its files)
        small = root / "small" / target
        try:
            write(small, 2)
            report.append({"writer": name, "outcome": "small fits", "path": str(small)})
        except BaseException as err:
            report.append({"writer": name, "outcome": "small failed", "message": f"{type(err).__name__}: {err}"})
        free_space()
    print(json.dumps(report))
    '''
)


def _check_report(stdout: str, cases) -> None:
    report = json.loads(stdout.strip().splitlines()[-1])
    failures = []
    for case in report:
        cases.tried()
        name = case["writer"]
        if case["outcome"] == "small fits":
            continue
        if case["outcome"] != "DiskFullError":
            failures.append(f"{name} ({case.get('kb')} KiB): {case['outcome']} {case.get('message', '')}")
            continue
        if not case["filename"].startswith(case["path"]):  # the output, or a file of the output folder
            failures.append(f"{name}: the error names {case['filename']}, not {case['path']}")
        if case["errno"] != 28 or str(case["path"]).split("/")[-1] not in case["message"]:
            failures.append(f"{name}: message {case['message']!r}")
        whole_outputs = [p for p in case["left"] if not p.split("/")[-1].startswith(".")]
        # a store keeps its .partial folder (resumable, refused by readers); a log keeps its whole lines
        unexpected = [p for p in whole_outputs if ".partial/" not in p and not p.endswith("log.jsonl")]
        hidden = [p for p in case["left"] if p.split("/")[-1].startswith(".") and ".partial/" not in p]
        if unexpected or hidden:
            failures.append(f"{name}: left {unexpected + hidden}")
    assert not failures, "\n".join(failures)


def _run_writes(tmp_path, seed: int, **env_changes):
    script = tmp_path / "writes.py"
    script.write_text(WRITES)
    folder = tmp_path / "out"
    env = config_environment()
    env.update(env_changes)
    return run_limited([sys.executable, str(script), str(folder), str(seed), str(ROOM)], env, folder, ROOM, 300)


@pytest.mark.reliability(area="full_disk", subject="atomic writers (torch, safetensors, numpy, PIL, text, stores)")
def test_every_writer_names_its_output_on_a_full_disk(tmp_path, cases):
    result = _run_writes(tmp_path, seed=11)
    assert result.returncode == 0, result.describe()
    _check_report(result.stdout, cases)


@pytest.mark.slow
@pytest.mark.reliability(area="full_disk", subject="atomic writers, injected ENOSPC (no namespaces)")
def test_injected_failures_reach_the_same_errors(tmp_path, cases, monkeypatch):
    """The fallback of machines without user namespaces, forced here so that it stays tested."""
    monkeypatch.setenv(MODE_VARIABLE, "inject")
    limited_filesystem_mode.cache_clear()
    try:
        assert limited_filesystem_mode() == "inject"
        result = _run_writes(tmp_path, seed=12)
    finally:
        monkeypatch.delenv(MODE_VARIABLE)
        limited_filesystem_mode.cache_clear()
    assert result.returncode == 0, result.describe()
    _check_report(result.stdout, cases)
