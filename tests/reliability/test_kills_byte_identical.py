"""Fast checks behind the kill tests' byte-for-byte comparisons: the toolkit's writers give the same bytes for
the same content, whichever process wrote it and wherever its strings came from (a resumed run writes
tables and optimizer states read back from its own files, an uninterrupted run fresh ones)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import pytest
import torch

from poseembroider.datasets.cache_format import save_torch_file
from poseembroider.models.pretrained import read_safetensors_file, save_state_dict, write_safetensors

pytestmark = pytest.mark.reliability(area="kills", subject="byte-identical writes (.pt, .safetensors)")

METADATA = {f"key_{i}": f"value {i}" for i in range(8)}


def test_safetensors_metadata_in_any_order_gives_the_same_bytes(tmp_path, cases):
    """safetensors serialises its metadata map in a random order (20 saves gave 20 files before the fix)."""
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.int64)}
    written = set()
    for i in range(12):
        metadata = dict(sorted(METADATA.items(), reverse=bool(i % 2)))
        written.add(write_safetensors(tensors, tmp_path / "w.safetensors", metadata).read_bytes())
        cases.tried()
    assert len(written) == 1
    loaded, metadata = read_safetensors_file(tmp_path / "w.safetensors")
    assert metadata == METADATA and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    linear = torch.nn.Linear(3, 3)
    tied = {"weight": linear.weight, "alias": linear.weight, "bias": linear.bias}  # two metadata keys + format
    first = save_state_dict(tied, tmp_path / "s1.safetensors", {"model_class": "X"}).read_bytes()
    assert all(save_state_dict(tied, tmp_path / "s.safetensors", {"model_class": "X"}).read_bytes() == first
               for _ in range(6))  # fmt: skip


def _state() -> dict:
    """A training state's shape: an optimizer state and the config share key strings ('lr') when fresh."""
    optimizer = {"state": {0: {"momentum_buffer": torch.ones(3)}}, "param_groups": [{"lr": 0.01, "params": [0]}]}
    return {"optimizer": optimizer, "config": {"lr": 0.01, "name": "run"}, "texts": ["a b", "a b"]}


def _read_back(value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def test_a_state_partly_read_back_is_written_with_the_bytes_of_the_fresh_one(tmp_path, cases):
    """A resumed run's state mixes parts read back from its checkpoint (the optimizer's) with fresh ones (the
    config): equal strings then are other objects, and pickle's back-references (by object) gave other bytes."""
    fresh = _state()
    expected = save_torch_file(fresh, tmp_path / "fresh.pt").read_bytes()
    for part in ("optimizer", "config", "texts"):
        resumed = {**_state(), part: _read_back(fresh[part])}
        assert save_torch_file(resumed, tmp_path / f"{part}.pt").read_bytes() == expected, part
        cases.tried()


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from poseembroider.atomic_io import atomic_directory, atomic_file
folder = Path(sys.argv[1])
with atomic_file(folder / "table.json") as tmp:
    tmp.write_text("half")
    block = atomic_directory(folder / "best")
    (block.__enter__() / "weights").write_text("new")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.reliability(area="kills", subject="temporaries of killed writers (atomic_io)")
def test_a_killed_writers_temporaries_go_with_the_next_write(tmp_path, cases):
    """SIGKILL inside `atomic_file` and `atomic_directory` leaves their temporaries; the next process's first
    atomic write into the folder removes them, and puts back a checkpoint folder the killed writer had moved
    aside (killed between the two renames of `atomic_directory`), without touching a live writer's."""
    from poseembroider import atomic_io

    (tmp_path / "last").mkdir()
    (tmp_path / "last" / "weights").write_text("previous")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], check=False)
    assert killed.returncode == -signal.SIGKILL
    dead_pid = 4_000_000  # above Linux's pid_max: no process has it
    os.rename(tmp_path / "last", tmp_path / f".last.{atomic_io._host_tag()}-{dead_pid}.0123abcd{atomic_io.OLD_SUFFIX}")
    live = atomic_io.temporary_sibling(tmp_path / "other.json")  # this process's: running
    live.write_text("being written")
    assert len(list(tmp_path.iterdir())) == 4
    cases.tried(2)
    atomic_io.write_text_atomic(tmp_path / "table.json", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last", "table.json", live.name])
    assert (tmp_path / "last" / "weights").read_text() == "previous"
    cases.tried()
