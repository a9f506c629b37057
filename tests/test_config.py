import subprocess
import sys
from pathlib import Path

import pytest

from poseembroider import config


def test_defaults_live_inside_the_project_folder():
    settings = config.read_settings({})
    main_dir = settings["MAIN_DIR"]
    assert (main_dir / "src" / "poseembroider" / "config.py").exists()
    for name, value in settings.items():
        if isinstance(value, Path):
            assert value.is_relative_to(main_dir), f"{name}={value} is outside {main_dir}"


def test_original_config_names_and_constants_are_present():
    for name in [
        "MAIN_DIR",
        "GENERAL_EXP_OUTPUT_DIR",
        "BEDLAM_RAW_DATA_DIR",
        "BEDLAM_IMG_DIR",
        "BEDLAM_PROCESSED_DIR",
        "THREEDPW_IMG_DIR",
        "THREEDPW_DIR",
        "POSEFIX_DIR",
        "POSEFIX_SMPLX_DIR",
        "POSESCRIPT_DIR",
        "POSESCRIPT_SMPLX_DIR",
        "SMPLX_BODY_MODEL_PATH",
        "DATA_CACHE_DIR",
        "PRETRAINED_MODEL_DICT",
        "TORCH_CACHE_DIR",
        "TRANSFORMER_CACHE_DIR",
        "MEAN_SMPLX_POSE_FILE",
    ]:
        assert hasattr(config, name), name
    assert config.NB_INPUT_JOINTS == 22 and config.NB_SHAPE_COEFFS == 10
    assert config.k_recall_values == (1, 5, 10)
    assert config.k_topk_r_precision == (1, 2, 3)
    assert config.sample_size_r_precision == 200 and config.r_precision_n_repetitions == 10
    assert config.nb_sample_reconstruction == 30 and config.k_topk_reconstruction_values == (1,)


def test_every_setting_is_overridable_by_environment(tmp_path):
    settings = config.read_settings({})
    env = {}
    for name, value in settings.items():
        if isinstance(value, Path) or value is None:
            env[f"POSEEMBROIDER_{name}"] = str(tmp_path / name.lower())
    env["POSEEMBROIDER_NB_SHAPE_COEFFS"] = "16"
    env["POSEEMBROIDER_k_recall_values"] = "1,2,50"
    overridden = config.read_settings(env)
    for key, raw in env.items():
        name = key[len("POSEEMBROIDER_") :]
        if name in ("NB_SHAPE_COEFFS", "k_recall_values"):
            continue
        assert overridden[name] == Path(raw), name
    assert overridden["NB_SHAPE_COEFFS"] == 16
    assert overridden["k_recall_values"] == (1, 2, 50)


def test_main_dir_override_moves_every_default(tmp_path):
    overridden = config.read_settings({"POSEEMBROIDER_MAIN_DIR": str(tmp_path)})
    assert overridden["DATA_CACHE_DIR"] == tmp_path / "cache"
    assert overridden["BEDLAM_IMG_DIR"].is_relative_to(tmp_path)


def test_bad_override_names_the_variable():
    with pytest.raises(ValueError, match="POSEEMBROIDER_NB_INPUT_JOINTS"):
        config.read_settings({"POSEEMBROIDER_NB_INPUT_JOINTS": "twenty-two"})


def test_import_has_no_side_effects(tmp_path):
    """Importing config creates no folder and sets no TORCH_HOME (the original did both)."""
    code = (
        "import os, sys; before = set(os.listdir('.')); import poseembroider.config as c; "
        "assert 'TORCH_HOME' not in os.environ; assert set(os.listdir('.')) == before; "
        "assert 'torch' not in sys.modules; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"POSEEMBROIDER_MAIN_DIR": str(tmp_path / "nowhere"), "PATH": "/usr/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "nowhere").exists()
