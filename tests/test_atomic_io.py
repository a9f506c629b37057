"""atomic_io: a failed write leaves the previous output intact and nothing temporary behind."""

import json
import os
import threading

import pytest

from poseembroider.atomic_io import (
    atomic_directory,
    atomic_file,
    atomic_files_into,
    temporary_sibling,
    write_json_atomic,
    write_text_atomic,
)


def test_atomic_file_replaces_on_success_and_creates_parents(tmp_path):
    path = tmp_path / "a" / "b" / "out.bin"
    with atomic_file(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".out.bin.") and not path.exists()
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(path.parent) == ["out.bin"]


def test_failure_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_unserialisable_json_touches_nothing(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_write_json_atomic_format(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"b": 2, "a": [1, 2]}, sort_keys=True)
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 2\n}\n'
    write_json_atomic(path, {"p": tmp_path}, indent=None, default=str)
    assert path.read_text() == json.dumps({"p": str(tmp_path)}) + "\n"
    assert write_text_atomic(tmp_path / "t.txt", "é").read_text(encoding="utf-8") == "é"


def test_temporary_names_are_unique_per_call_and_thread(tmp_path):
    names = {temporary_sibling(tmp_path / "x.json") for _ in range(1000)}
    assert len(names) == 1000 and all(n.name.startswith(".x.json.") and n.suffix == ".tmp" for n in names)


def test_concurrent_writers_each_land_a_whole_file(tmp_path):
    path = tmp_path / "shared.json"
    errors = []

    def writer(k: int) -> None:
        try:
            for _ in range(20):
                write_json_atomic(path, {"writer": k, "payload": [k] * 2000})
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = json.loads(path.read_text())
    assert data["payload"] == [data["writer"]] * 2000
    assert os.listdir(tmp_path) == ["shared.json"]


def test_atomic_directory_swaps_the_whole_folder(tmp_path):
    target = tmp_path / "best"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with atomic_directory(target) as tmp:
        assert (tmp.stat().st_mode & 0o777) == 0o755
        (tmp / "model.safetensors").write_text("w")
    assert sorted(os.listdir(target)) == ["model.safetensors"]
    assert os.listdir(tmp_path) == ["best"]


def test_atomic_directory_failure_keeps_the_old_folder(tmp_path):
    target = tmp_path / "best"
    target.mkdir()
    (target / "model.safetensors").write_text("old")
    with pytest.raises(ValueError), atomic_directory(target) as tmp:
        (tmp / "model.safetensors").write_text("half")
        raise ValueError
    assert (target / "model.safetensors").read_text() == "old"
    assert os.listdir(tmp_path) == ["best"]


def test_atomic_files_into_keeps_other_files(tmp_path):
    target = tmp_path / "backbone"
    target.mkdir()
    (target / "model.safetensors").write_text("weights")
    (target / "tokenizer.json").write_text("old")
    with atomic_files_into(target) as tmp:
        (tmp / "tokenizer.json").write_text("new")
        (tmp / "wordpiece_training.json").write_text("{}")
    assert sorted(os.listdir(target)) == ["model.safetensors", "tokenizer.json", "wordpiece_training.json"]
    assert (target / "tokenizer.json").read_text() == "new"
    assert os.listdir(tmp_path) == ["backbone"]
    with pytest.raises(OSError), atomic_files_into(target) as tmp:
        (tmp / "tokenizer.json").write_text("half")
        raise OSError("interrupted")
    assert (target / "tokenizer.json").read_text() == "new"
    assert os.listdir(tmp_path) == ["backbone"]


def test_atomic_files_into_creates_the_folder(tmp_path):
    with atomic_files_into(tmp_path / "new" / "dir") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "new" / "dir" / "a.txt").read_text() == "a"
