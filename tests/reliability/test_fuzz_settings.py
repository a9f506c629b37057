"""Bad inputs, settings and the body model: `POSEEMBROIDER_*` environment overrides of numbers are refused naming
the variable (NaN, negative or non-numeric counts); a SMPLX_BODY_MODEL_PATH that does not exist is said, not
silently replaced by the procedural body; a damaged SMPL-X-format model file is refused naming it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_strategies import FUZZ, expect_clear_error, fuzz

from poseembroider import config
from poseembroider.body import model_file
from poseembroider.body.model_file import BodyModelFileError, locate_model_file

NUMBER_SETTINGS = ("NB_INPUT_JOINTS", "sample_size_r_precision", "k_recall_values", "IMAGENET_DEFAULT_MEAN")


@pytest.mark.reliability(area="bad_inputs", subject="POSEEMBROIDER_* number overrides")
def test_number_overrides(cases):
    @FUZZ
    @given(
        name=st.sampled_from(NUMBER_SETTINGS),
        raw=st.one_of(st.sampled_from(["nan", "-1", "0", "x", "1e999", "2,nan", "1,,2", "-3,4"]), st.text(max_size=8)),
    )
    def run(name, raw):
        cases.tried()
        variable = config.ENV_PREFIX + name
        settings = expect_clear_error(lambda: config.read_settings({variable: raw}), [variable], variable)
        if not isinstance(settings, BaseException):  # accepted: finite numbers, counts >= 1
            values = settings[name] if isinstance(settings[name], tuple) else (settings[name],)
            assert all(v == v and abs(v) != float("inf") for v in values), (raw, values)
            assert all(v >= 1 for v in values if isinstance(v, int)), (raw, values)

    run()


# --------------------------------------------------------------------------- SMPLX_BODY_MODEL_PATH


@pytest.fixture
def procedural_dir(procedural_model_file):
    return procedural_model_file.parent.parent


@pytest.mark.reliability(area="bad_inputs", subject="SMPLX_BODY_MODEL_PATH (missing, none, empty folder)")
def test_a_missing_smplx_path_is_said(procedural_dir, tmp_path, monkeypatch, caplog, cases):
    """A path someone set that does not exist: the procedural body is used and a warning names the path and the
    variable (once per path); the default path and 'none' fall back quietly; an existing folder without the
    model file is an error (commit 1d468aa)."""
    missing = tmp_path / "smplx_typo"
    monkeypatch.setenv(model_file.SMPLX_PATH_VARIABLE, str(missing))
    monkeypatch.setattr(config, "SMPLX_BODY_MODEL_PATH", missing)
    with caplog.at_level(logging.WARNING, logger=model_file.__name__):
        cases.tried()
        assert locate_model_file(procedural_dir=procedural_dir).kind == "procedural"
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and str(missing) in warned[0] and model_file.SMPLX_PATH_VARIABLE in warned[0]
        cases.tried()
        locate_model_file(procedural_dir=procedural_dir)  # said once per path and process
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1

        caplog.clear()
        cases.tried()
        monkeypatch.setattr(config, "SMPLX_BODY_MODEL_PATH", None)  # POSEEMBROIDER_SMPLX_BODY_MODEL_PATH=none
        assert locate_model_file(procedural_dir=procedural_dir).kind == "procedural" and not caplog.records
        cases.tried()
        default = config.read_settings({})["SMPLX_BODY_MODEL_PATH"]
        monkeypatch.delenv(model_file.SMPLX_PATH_VARIABLE)
        monkeypatch.setattr(config, "SMPLX_BODY_MODEL_PATH", default)
        if not default.exists():
            assert locate_model_file(procedural_dir=procedural_dir).kind == "procedural" and not caplog.records

    cases.tried()
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(config, "SMPLX_BODY_MODEL_PATH", empty)
    with pytest.raises(BodyModelFileError, match="exists but holds no smplx/SMPLX_NEUTRAL.npz"):
        locate_model_file(procedural_dir=procedural_dir)


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="SMPLX_BODY_MODEL_PATH (missing, none, empty folder)")
def test_a_missing_smplx_path_is_said_by_the_cli(procedural_dir, tmp_path, cases):
    """`poseembroider body info` with POSEEMBROIDER_SMPLX_BODY_MODEL_PATH set to a path that does not exist."""
    env = dict(os.environ, POSEEMBROIDER_PROCEDURAL_BODY_MODEL_PATH=str(procedural_dir), OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", "import sys; from poseembroider.cli import main; sys.exit(main(sys.argv[1:]))"]
    for value, warned in ((str(tmp_path / "typo"), True), ("none", False)):
        cases.tried()
        env["POSEEMBROIDER_SMPLX_BODY_MODEL_PATH"] = value
        done = subprocess.run([*command, "body", "info"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0 and "procedural" in done.stdout, done.stderr
        assert (value in done.stderr and "does not exist" in done.stderr) == warned, done.stderr


# --------------------------------------------------------------------------- body model files


@st.composite
def model_file_edits(draw, members: dict):
    """The procedural SMPL-X file's members with one dropped, replaced by an odd array, or given NaN / an
    index out of range; or the file's bytes damaged (a flag: the caller damages the written file)."""
    from reliability_strategies import odd_arrays

    members = dict(members)
    key = draw(st.sampled_from(sorted(model_file.REQUIRED_KEYS)))
    how = draw(st.sampled_from(["drop", "odd", "nan", "index", "bytes"]))
    if how == "drop":
        del members[key]
    elif how == "odd":
        members[key] = draw(odd_arrays())
    elif how == "nan" and np.issubdtype(members[key].dtype, np.floating):
        members[key] = members[key].copy()
        members[key].flat[draw(st.integers(0, members[key].size - 1))] = np.nan
    elif how == "index" and key in ("f", "lmk_faces_idx", "kintree_table"):
        members[key] = members[key].astype(np.int64)
        members[key].flat[-1] = draw(st.sampled_from([-5, 10**6]))
    return members, key, how


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="body model files (SMPLX_NEUTRAL.npz members and bytes)")
def test_body_model_files(procedural_model_file, tmp_path, cases):
    """A damaged SMPL-X-format file is refused by `open_model_file`, naming it, before smplx reads it; one it
    accepts builds a BodyModel whose forward pass is finite (1.3 s per example: 144 MB written and read)."""
    import torch

    from poseembroider.body.body_model import BodyModel
    from poseembroider.body.model_file import open_model_file

    with np.load(procedural_model_file) as data:
        members = {k: data[k] for k in data.files}

    @fuzz(40)
    @given(edit=model_file_edits(members), damage=st.data())
    def run(edit, damage):
        arrays, key, how = edit
        cases.tried()
        path = tmp_path / "smplx" / "SMPLX_NEUTRAL.npz"
        path.parent.mkdir(exist_ok=True)
        np.savez(path, **arrays)
        if how == "bytes":
            data = bytearray(path.read_bytes())
            start = damage.draw(st.integers(0, len(data) - 1))
            data[start : start + 64] = damage.draw(st.binary(min_size=64, max_size=64))
            path.write_bytes(bytes(data[: len(data)]))

        def build():
            found = open_model_file(path, cache_dir=tmp_path / "cache")
            output = BodyModel(found).eval()(poses=torch.full((1, 22, 3), 0.2))
            assert torch.isfinite(output.vertices).all() and torch.isfinite(output.joints).all()

        expect_clear_error(build, [str(path)], f"{key} {how}")

    run()
