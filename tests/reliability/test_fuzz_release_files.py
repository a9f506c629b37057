"""Bad inputs, release files of the original (`compat/`, `poseembroider import-original`): a checkpoint that is
truncated or random bytes, whose `args` hold values of the wrong type or range, or whose state dict has tensors
of the wrong shape, dtype or values, is refused with an error naming the checkpoint file (and the argument or
key), never a raw torch / config error. Pickles that would run code are the hostile-files tests'."""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reliability_strategies import FUZZ_SLOW, JUNK_BYTES, damaged, expect_clear_error, fuzz

from poseembroider import config
from poseembroider.compat.release_files import read_release_checkpoint
from poseembroider.compat.release_import import import_release

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
from release_fixture import write_fake_release  # noqa: E402 - the fixture module of tests/compat

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHORTNAME = "posevae_model_bedlamscript"
ARG_VALUES = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([2**31, 2**70, -(2**63), 0.5, float("nan"), float("inf"), True, None, "", "PoseVAE", [1], (2, 3)]),
    st.text(max_size=6),
)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_release") / "release"
    files = write_fake_release(root, seed=3, only=(SHORTNAME,))
    return {"root": root, "checkpoint": files[SHORTNAME]}


@pytest.fixture
def models_root(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "MODELS_ROOT", tmp_path / "models")
    return tmp_path / "models"


def _copy(release, tmp_path) -> tuple[Path, Path]:
    target = tmp_path / "release"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(release["root"], target)
    return target, target / release["checkpoint"].relative_to(release["root"])


def _import(root: Path, checkpoint: Path, tmp_path: Path, names) -> object:
    out = tmp_path / "imported"
    shutil.rmtree(out, ignore_errors=True)
    return expect_clear_error(
        lambda: import_release(root, out, shortnames=[SHORTNAME]), [str(checkpoint), *names], "import_release"
    )


# --------------------------------------------------------------------------- bytes


def _fuzz_bytes(release, tmp_path, cases, data):
    cases.tried()
    path = tmp_path / "checkpoint_release.pth"
    path.write_bytes(data)
    expect_clear_error(lambda: read_release_checkpoint(path), [str(path)], "read_release_checkpoint")


@pytest.mark.reliability(area="bad_inputs", subject="release files (checkpoint bytes: truncated, random)")
def test_checkpoint_bytes(release, tmp_path, cases):
    @fuzz(20)
    @given(data=st.one_of(JUNK_BYTES, damaged(release["checkpoint"].read_bytes())))
    def run(data):
        _fuzz_bytes(release, tmp_path, cases, data)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="release files (checkpoint bytes: truncated, random)")
def test_checkpoint_bytes_many(release, tmp_path, cases):
    @FUZZ_SLOW
    @given(data=st.one_of(JUNK_BYTES, damaged(release["checkpoint"].read_bytes())))
    def run(data):
        _fuzz_bytes(release, tmp_path, cases, data)

    run()


# --------------------------------------------------------------------------- args and tensors


@st.composite
def checkpoint_edits(draw, payload: dict):
    """The checkpoint dict with one `args` value or one state-dict tensor changed."""
    args = dict(vars(payload["args"]))
    state = dict(payload["model"])
    if draw(st.booleans()):
        key = draw(st.sampled_from(["latentD", "num_body_joints", "model", "wloss_kld", "kld_epsilon", "lr", "x"]))
        args[key] = draw(ARG_VALUES)
        named = [key]
    else:
        key = draw(st.sampled_from(sorted(state)))
        how = draw(st.sampled_from(["shape", "dtype", "nan", "drop"]))
        if how == "shape":
            state[key] = torch.zeros(draw(st.lists(st.integers(0, 5), max_size=3)))
        elif how == "dtype":
            state[key] = state[key].to(draw(st.sampled_from([torch.int64, torch.bool, torch.float16, torch.float64])))
        elif how == "nan":
            state[key] = torch.full_like(state[key], float("nan")) if state[key].is_floating_point() else state[key]
        else:
            del state[key]
        named = [key]
    return {**payload, "args": argparse.Namespace(**args), "model": state}, named


def _fuzz_checkpoint(release, tmp_path, cases, edit):
    payload, named = edit
    cases.tried()
    root, checkpoint = _copy(release, tmp_path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    checkpoint.write_bytes(buffer.getvalue())
    _import(root, checkpoint, tmp_path, named)


def _payload(release) -> dict:
    return torch.load(release["checkpoint"], weights_only=False)  # our own fixture file


@pytest.mark.reliability(area="bad_inputs", subject="release files (args and tensors of import-original)")
def test_checkpoint_contents(release, tmp_path, models_root, cases):
    @fuzz(20)
    @given(edit=checkpoint_edits(_payload(release)))
    def run(edit):
        _fuzz_checkpoint(release, tmp_path, cases, edit)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="release files (args and tensors of import-original)")
def test_checkpoint_contents_many(release, tmp_path, models_root, cases):
    @FUZZ_SLOW
    @given(edit=checkpoint_edits(_payload(release)))
    def run(edit):
        _fuzz_checkpoint(release, tmp_path, cases, edit)

    run()
