"""The restricted unpickler: tensors (with requires_grad), numpy arrays (Python 2 latin-1 pickles too) and plain
containers load; any other global is refused by name; truncated and corrupt files are errors naming the file."""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from poseembroider.datasets.process_threedpw.fixture import dump_python2_pickle
from poseembroider.datasets.restricted_pickle import (
    PickleReadError,
    UnsafePickleError,
    load_restricted_pickle,
    loads_restricted,
)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


class _Imports:
    def __reduce__(self):
        return (__import__, ("subprocess",))


def _content() -> dict:
    return {
        "global_orient": torch.randn(1, 3, requires_grad=True),
        "body_pose": torch.randn(21, 3, requires_grad=True),
        "array": np.arange(6.0).reshape(2, 3),
        "scalar": np.float32(1.5),
        "ordered": OrderedDict(a=1),
        "set": {1, 2},
        "nested": [("x", 1.0), {"y": None}],
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_tensors_arrays_and_containers_load(protocol):
    content = _content()
    out = loads_restricted(pickle.dumps(content, protocol=protocol), "mem.pkl")
    assert torch.equal(out["body_pose"], content["body_pose"]) and out["body_pose"].requires_grad
    assert np.array_equal(out["array"], content["array"]) and out["scalar"] == np.float32(1.5)
    assert out["ordered"] == OrderedDict(a=1) and out["set"] == {1, 2} and out["nested"] == content["nested"]


@pytest.mark.parametrize("payload, name", [(_RunsCode(), f"{os.name}.system"), (_Imports(), "builtins.__import__")])
def test_any_other_global_is_refused_by_name(tmp_path, payload, name):
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps({"global_orient": torch.zeros(1, 3), "x": payload}))
    with pytest.raises(UnsafePickleError, match=rf"hostile\.pkl.*'{name}'"):
        load_restricted_pickle(path)


def test_a_hostile_storage_blob_cannot_run_code():
    """The nested torch.save blob of a tensor's storage goes through torch.load(weights_only=True)."""
    blob = io.BytesIO()
    torch.save(_RunsCode(), blob, _use_new_zipfile_serialization=False)

    class Storage:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (blob.getvalue(),))

    with pytest.raises((UnsafePickleError, PickleReadError)):
        loads_restricted(pickle.dumps({"t": Storage()}), "blob.pkl")


def test_torch_tensor_rebuilders_can_be_refused():
    with pytest.raises(UnsafePickleError, match="_rebuild_tensor_v2"):
        loads_restricted(pickle.dumps(torch.zeros(2)), "t.pkl", torch_tensors=False)


def test_truncated_corrupt_empty_and_missing_files_name_the_file(tmp_path):
    data = pickle.dumps(_content())
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pkl").write_bytes(b"\x00not a pickle at all")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(PickleReadError, match=r"cut\.pkl: truncated"):
        load_restricted_pickle(tmp_path / "cut.pkl")
    with pytest.raises(PickleReadError, match=r"noise\.pkl"):
        load_restricted_pickle(tmp_path / "noise.pkl")
    with pytest.raises(PickleReadError, match=r"empty\.pkl: empty file"):
        load_restricted_pickle(tmp_path / "empty.pkl")
    with pytest.raises(FileNotFoundError, match=r"gone\.pkl"):
        load_restricted_pickle(tmp_path / "gone.pkl")


def test_python2_latin1_numpy_pickles(tmp_path):
    """3DPW's files: Python 2 `str` on the wire (needs encoding='latin1'), numpy.core module names."""
    content = {"sequence": "courtyard_fixture", "poses": [np.random.default_rng(0).normal(size=(4, 72))]}
    path = tmp_path / "seq.pkl"
    dump_python2_pickle(content, path)
    assert b"numpy.core.multiarray" in path.read_bytes() and b"BINUNICODE" not in path.read_bytes()
    with pytest.raises(PickleReadError, match=r"seq\.pkl"):  # ASCII cannot decode the array bytes
        load_restricted_pickle(path)
    out = load_restricted_pickle(path, encoding="latin1")
    assert out["sequence"] == "courtyard_fixture" and np.array_equal(out["poses"][0], content["poses"][0])


def test_a_torch_save_archive_under_a_pkl_name_is_read_safely():
    blob = io.BytesIO()
    torch.save({"global_orient": torch.ones(1, 3)}, blob)
    assert torch.equal(loads_restricted(blob.getvalue(), "z.pkl")["global_orient"], torch.ones(1, 3))
