import zipfile
from pathlib import Path

import numpy as np
import pytest

from poseembroider import config
from poseembroider.body.body_model import BodyModel
from poseembroider.body.model_file import (
    PROCEDURAL_MARKER_KEY,
    BodyModelFileError,
    check_model_file,
    locate_model_file,
    model_file_in,
    open_model_file,
)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _write(path: Path, arrays: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def test_missing_file_is_named(tmp_path):
    with pytest.raises(BodyModelFileError, match="not found: .*nothing.npz"):
        check_model_file(tmp_path / "nothing.npz")


def test_corrupt_file_is_named(tmp_path):
    bad = tmp_path / "smplx" / "SMPLX_NEUTRAL.npz"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(BodyModelFileError, match="SMPLX_NEUTRAL.npz: not a readable .npz"):
        BodyModel.from_directory(tmp_path)


def test_truncated_file_is_named(tmp_path, procedural_model_file):
    data = procedural_model_file.read_bytes()
    bad = tmp_path / "SMPLX_NEUTRAL.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BodyModelFileError, match="SMPLX_NEUTRAL.npz"):
        check_model_file(bad)


def test_missing_key_is_named(tmp_path, procedural_model_file):
    arrays = _arrays(procedural_model_file)
    del arrays["J_regressor"]
    path = _write(tmp_path / "SMPLX_NEUTRAL.npz", arrays)
    with pytest.raises(BodyModelFileError, match=r"missing key\(s\) \['J_regressor'\]"):
        check_model_file(path)


def test_wrong_shape_is_named(tmp_path, procedural_model_file):
    arrays = _arrays(procedural_model_file)
    arrays["weights"] = arrays["weights"][:, :52]
    path = _write(tmp_path / "SMPLX_NEUTRAL.npz", arrays)
    with pytest.raises(BodyModelFileError, match=r"key 'weights' has shape \(\d+, 52\), expected \(\d+, 55\)"):
        check_model_file(path)


class _Trap:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_members_are_never_unpickled(tmp_path, procedural_model_file):
    """Real SMPL-X files carry pickled members; loading must skip them, not execute them."""
    marker = tmp_path / "pickle_was_executed"
    arrays = _arrays(procedural_model_file)
    del arrays[PROCEDURAL_MARKER_KEY]  # looks like a licensed file
    trap = np.empty((), dtype=object)
    trap[()] = _Trap(marker)
    arrays["joint2num"] = trap
    path = _write(tmp_path / "licensed" / "smplx" / "SMPLX_NEUTRAL.npz", arrays)
    with zipfile.ZipFile(path) as zf:  # the member really is a pickle of the trap
        assert b"pickle_was_executed" in zf.read("joint2num.npy")
    assert check_model_file(path)["joint2num"][1].hasobject
    found = open_model_file(path, cache_dir=tmp_path / "cache")
    assert found.kind == "smplx"
    assert found.loadable_path != path and "joint2num" not in _arrays(found.loadable_path)
    body = BodyModel(found)
    assert body.num_vertices == found.num_vertices
    assert not marker.exists()


def test_licensed_file_wins_over_procedural(tmp_path, procedural_model_file):
    arrays = _arrays(procedural_model_file)
    del arrays[PROCEDURAL_MARKER_KEY]
    licensed_dir = tmp_path / "licensed"
    _write(model_file_in(licensed_dir), arrays)
    found = locate_model_file(smplx_dir=licensed_dir, procedural_dir=procedural_model_file.parent.parent)
    assert found.kind == "smplx" and found.path == model_file_in(licensed_dir)
    assert "SMPL-X body model" in found.description and "procedural" not in found.description


def test_procedural_used_and_built_when_no_licensed_file(tmp_path):
    procedural_dir = tmp_path / "procedural"
    with pytest.raises(BodyModelFileError, match="POSEEMBROIDER_SMPLX_BODY_MODEL_PATH"):
        locate_model_file(smplx_dir=tmp_path / "none", procedural_dir=procedural_dir, build_if_missing=False)
    found = locate_model_file(smplx_dir=tmp_path / "none", procedural_dir=procedural_dir)
    assert found.kind == "procedural" and found.path == model_file_in(procedural_dir)


def test_outdated_procedural_file_is_rebuilt(tmp_path, procedural_model_file):
    procedural_dir = tmp_path / "procedural"
    arrays = _arrays(procedural_model_file)
    arrays[PROCEDURAL_MARKER_KEY] = np.array(-1)
    _write(model_file_in(procedural_dir), arrays)
    with pytest.raises(BodyModelFileError, match="has version -1"):
        locate_model_file(smplx_dir=tmp_path / "none", procedural_dir=procedural_dir, build_if_missing=False)
    found = locate_model_file(smplx_dir=tmp_path / "none", procedural_dir=procedural_dir)
    assert found.version != "-1"


def test_default_location_follows_config(procedural_model_file):
    """Without arguments the configured places are used (the isolated ones set by conftest)."""
    assert locate_model_file().path == model_file_in(config.PROCEDURAL_BODY_MODEL_PATH) == procedural_model_file


def test_nan_vertex_is_refused_naming_the_key(tmp_path, procedural_model_file):
    # A NaN vertex used to pass the checks; every caption then read "a neutral stance".
    arrays = _arrays(procedural_model_file)
    arrays["v_template"][123, 1] = np.nan
    path = _write(tmp_path / "SMPLX_NEUTRAL.npz", arrays)
    with pytest.raises(
        BodyModelFileError, match=r"SMPLX_NEUTRAL\.npz: key 'v_template' holds 1 NaN or inf.*\[123, 1\]"
    ):
        check_model_file(path)


def test_existing_folder_without_the_model_file_is_an_error(tmp_path, procedural_model_file):
    # It used to fall back to the procedural body silently.
    folder = tmp_path / "licensed"
    folder.mkdir()
    with pytest.raises(BodyModelFileError, match=r"licensed exists but holds no smplx/SMPLX_NEUTRAL\.npz"):
        locate_model_file(smplx_dir=folder, procedural_dir=procedural_model_file.parent.parent)
    _write(folder / "SMPLX_NEUTRAL.npz", _arrays(procedural_model_file))  # one level too high
    with pytest.raises(BodyModelFileError, match=r"found .*licensed/SMPLX_NEUTRAL\.npz.*move it to"):
        locate_model_file(smplx_dir=folder, procedural_dir=procedural_model_file.parent.parent)
    # no folder at all (the default): the procedural body, as documented
    found = locate_model_file(smplx_dir=tmp_path / "none", procedural_dir=procedural_model_file.parent.parent)
    assert found.kind == "procedural"
