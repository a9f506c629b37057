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


WRITABLE_SETTINGS = (
    "GENERAL_EXP_OUTPUT_DIR",
    "DATA_CACHE_DIR",
    "SYNTH_DATA_DIR",
    "PROCEDURAL_BODY_MODEL_PATH",
    "MODELS_ROOT",
    "TORCH_CACHE_DIR",
    "TRANSFORMER_CACHE_DIR",
)


@pytest.fixture
def site_packages(tmp_path) -> Path:
    """A package folder laid out like an installed wheel: `<site-packages>/poseembroider`, no checkout around."""
    package_dir = tmp_path / "lib" / "python3.11" / "site-packages" / "poseembroider"
    package_dir.mkdir(parents=True)
    return package_dir


def test_checkout_is_detected_by_its_markers(tmp_path):
    package_dir = tmp_path / "repo" / "src" / "poseembroider"
    package_dir.mkdir(parents=True)
    assert config.source_checkout_root(package_dir) is None  # a src/ layout alone is not a checkout
    (tmp_path / "repo" / "pyproject.toml").write_text("")
    assert config.source_checkout_root(package_dir) == tmp_path / "repo"
    assert config.source_checkout_root(config.PACKAGE_DIR) == config.MAIN_DIR  # this test run: a checkout


def test_installed_package_defaults_to_the_user_cache_folder(site_packages, tmp_path):
    settings = config.read_settings({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, package_dir=site_packages)
    root = tmp_path / "xdg" / "poseembroider"
    assert settings["MAIN_DIR"] == root
    for name in WRITABLE_SETTINGS:
        assert settings[name].is_relative_to(root), f"{name}={settings[name]} is outside {root}"
    for name, value in settings.items():  # only read-only package data stays in site-packages
        if isinstance(value, Path) and value.is_relative_to(site_packages.parent):
            assert name in ("PRETRAINED_MODEL_DICT", "MEAN_SMPLX_POSE_FILE"), name
    assert settings["PRETRAINED_MODEL_DICT"] == site_packages / "shortname_2_model_path.json"


def test_user_folder_without_xdg_is_home_cache(site_packages, tmp_path):
    for env in ({"HOME": str(tmp_path)}, {"HOME": str(tmp_path), "XDG_CACHE_HOME": "relative/ignored"}):
        settings = config.read_settings(env, package_dir=site_packages)
        assert settings["MAIN_DIR"] == tmp_path / ".cache" / "poseembroider"


def test_main_dir_override_wins_when_installed(site_packages, tmp_path):
    env = {"POSEEMBROIDER_MAIN_DIR": str(tmp_path / "mine"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    settings = config.read_settings(env, package_dir=site_packages)
    assert settings["MAIN_DIR"] == tmp_path / "mine"
    assert settings["MODELS_ROOT"] == tmp_path / "mine" / "experiments"
    assert config.default_main_dir(env, site_packages)[1] == "env (POSEEMBROIDER_MAIN_DIR)"


def test_detection_can_be_patched_and_describe_names_the_root(monkeypatch, tmp_path):
    monkeypatch.delenv("POSEEMBROIDER_MAIN_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(config, "source_checkout_root", lambda package_dir=None: None)
    settings = config.read_settings()
    assert settings["MAIN_DIR"] == tmp_path / "poseembroider"
    first = config.describe(settings).splitlines()[0]
    assert first == f"# default paths under {tmp_path / 'poseembroider'}: user folder (not in a source checkout)"
    monkeypatch.undo()
    assert config.describe().splitlines()[0] == f"# default paths under {config.MAIN_DIR}: source checkout"


def test_nan_override_of_a_float_setting_is_refused():
    with pytest.raises(ValueError, match="POSEEMBROIDER_IMAGENET_DEFAULT_MEAN='nan,0.4,0.4'"):
        config.read_settings({"POSEEMBROIDER_IMAGENET_DEFAULT_MEAN": "nan,0.4,0.4"})


def test_finite_float_is_the_flag_parser_of_every_float():
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=config.finite_float)
    assert parser.parse_args(["--x", "1e-4"]).x == 1e-4
    for bad in ("nan", "inf", "-inf", "NaN"):
        with pytest.raises(ValueError, match="finite"):
            config.finite_float(bad)
