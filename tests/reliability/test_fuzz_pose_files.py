"""Bad inputs, pose files: every pose reader (`load_pose_file`, `poses_from_mapping`, `embed --poses`, the mean
pose of the HPS head) answers a bad file with an error naming the file and the key or shape, never a raw
numpy / zipfile / torch error; what it accepts is a finite (N, 22|52|55, 3) float32 array of radians."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reliability_strategies import (
    FUZZ,
    FUZZ_SLOW,
    IDENTIFIERS,
    JUNK_BYTES,
    damaged,
    expect_clear_error,
    odd_arrays,
    pose_arrays,
)

from poseembroider.text.pose_files import MAX_AXIS_ANGLE_NORM, load_pose_file, poses_from_mapping

POSE_KEYS = ("poses", "root_orient", "pose_body", "pose_hand", "global_orient", "body_pose", "ids")
pose_mappings = st.dictionaries(st.one_of(st.sampled_from(POSE_KEYS), IDENTIFIERS), pose_arrays(), max_size=4)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


VALID = _npz_bytes({"poses": np.zeros((2, 22, 3), np.float32), "ids": np.array(["a", "b"])})


def _check_poses(result, where) -> None:
    """An accepted input gives what the module promises."""
    if isinstance(result, BaseException):
        return
    poses = result.numpy() if isinstance(result, torch.Tensor) else result
    assert poses.dtype == np.float32 and poses.ndim == 3 and poses.shape[1:] in ((22, 3), (52, 3), (55, 3)), where
    assert poses.shape[0] >= 1 and np.isfinite(poses).all(), where
    assert np.linalg.norm(poses, axis=-1).max() <= MAX_AXIS_ANGLE_NORM + 1e-3, where


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _fuzz_npz_contents(tmp_path, cases, arrays):
    cases.tried()
    path = _write(tmp_path, "poses.npz", _npz_bytes(arrays))
    _check_poses(expect_clear_error(lambda: load_pose_file(path), [str(path)], "load_pose_file"), arrays)


def _fuzz_npz_bytes(tmp_path, cases, data):
    cases.tried()
    path = _write(tmp_path, "poses.npz", data)
    _check_poses(expect_clear_error(lambda: load_pose_file(path), [str(path)], "load_pose_file"), data[:40])


@pytest.mark.reliability(area="bad_inputs", subject="pose files (.npz keys, shapes, dtypes, values)")
def test_pose_npz_contents(tmp_path, cases):
    @FUZZ
    @given(arrays=pose_mappings)
    def run(arrays):
        _fuzz_npz_contents(tmp_path, cases, arrays)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="pose files (.npz keys, shapes, dtypes, values)")
def test_pose_npz_contents_many(tmp_path, cases):
    @FUZZ_SLOW
    @given(arrays=pose_mappings)
    def run(arrays):
        _fuzz_npz_contents(tmp_path, cases, arrays)

    run()


pose_file_bytes = st.one_of(JUNK_BYTES, damaged(VALID), st.just(np.lib.format.magic(1, 0) + b"junk"))


@pytest.mark.reliability(area="bad_inputs", subject="pose files (.npz bytes: truncated, random, .npy)")
def test_pose_npz_bytes(tmp_path, cases):
    @FUZZ
    @given(data=pose_file_bytes)
    def run(data):
        _fuzz_npz_bytes(tmp_path, cases, data)

    run()
    for name, data in (("poses.npy", _npy_bytes(np.zeros((2, 22, 3), np.float32))), ("folder", None)):
        cases.tried()
        path = tmp_path / name
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
        expect_clear_error(lambda path=path: load_pose_file(path), [str(path)], "load_pose_file")


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="pose files (.npz bytes: truncated, random, .npy)")
def test_pose_npz_bytes_many(tmp_path, cases):
    @FUZZ_SLOW
    @given(data=pose_file_bytes)
    def run(data):
        _fuzz_npz_bytes(tmp_path, cases, data)

    run()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.reliability(area="bad_inputs", subject="pose arrays in memory (Representation.embed_poses)")
def test_pose_mappings_in_memory(cases):
    """`poses_from_mapping` takes dicts of numpy arrays or tensors (the Python API's `embed_poses`)."""

    @FUZZ
    @given(arrays=pose_mappings, as_tensors=st.booleans())
    def run(arrays, as_tensors):
        cases.tried()
        if as_tensors:
            arrays = {
                k: torch.from_numpy(v) for k, v in arrays.items() if v.dtype.kind in "fiub" and v.dtype != "uint16"
            }
        expect_clear_error(lambda: _check_poses(poses_from_mapping(arrays, "given poses"), arrays), ["given poses"], "")

    run()


@pytest.mark.reliability(area="bad_inputs", subject="embed --poses (.npz with ids)")
def test_embed_pose_items(tmp_path, cases):
    from poseembroider.features.embedding_files import read_inputs

    @FUZZ
    @given(ids=odd_arrays(), n=st.integers(1, 3))
    def run(ids, n):
        cases.tried()
        path = _write(tmp_path, "poses.npz", _npz_bytes({"poses": np.zeros((n, 22, 3), np.float32), "ids": ids}))
        result = expect_clear_error(lambda: read_inputs(poses=str(path)), [str(path)], "read_inputs")
        if not isinstance(result, BaseException):
            assert len(result.ids["pose"]) == n == len(set(result.ids["pose"]))

    run()


mean_pose_contents = st.fixed_dictionaries(
    {},
    optional={
        "pose": st.one_of(odd_arrays(shapes=st.sampled_from([(22, 3), (52, 3), (3,), (0, 3), (22, 2)])), pose_arrays()),
        "betas": odd_arrays(shapes=st.sampled_from([(10,), (0,), (10, 2), ()])),
        "count": odd_arrays(shapes=st.sampled_from([(), (2,)])),
        "source": st.sampled_from([np.str_("synthscript:train"), np.zeros(2)]),
    },
)


@pytest.mark.reliability(area="bad_inputs", subject="mean-pose .npz (HPS head)")
def test_mean_pose_files(tmp_path, cases):
    from poseembroider.downstream.pose_estimation.mean_pose import load_mean_pose

    @FUZZ
    @given(contents=st.one_of(mean_pose_contents.map(_npz_bytes), JUNK_BYTES, damaged(VALID)))
    def run(contents):
        cases.tried()
        path = _write(tmp_path, "mean_pose.npz", contents)
        mean = expect_clear_error(lambda: load_mean_pose(path), [str(path)], "load_mean_pose")
        if not isinstance(mean, BaseException):
            assert mean.pose.ndim == 2 and mean.pose.shape[1] == 3 and torch.isfinite(mean.pose).all()
            assert mean.betas.ndim == 1 and torch.isfinite(mean.betas).all() and mean.count >= 1

    run()
