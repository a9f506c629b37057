import json

import pytest

from poseembroider.cli import COMMANDS, build_parser, main


def test_every_registered_command_has_help_and_a_handler(capsys):
    parser = build_parser()
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*cmd.path, "--help"])
        assert exit_info.value.code == 0
        assert cmd.help.split()[0] in capsys.readouterr().out
    leaves = {cmd.path for cmd in COMMANDS}
    assert len(leaves) == len(COMMANDS), "two commands registered under the same name"


def test_models_list_shows_every_shortname(capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["shortname"] for r in rows}
    assert "poseembroider_model_bedlamscript" in names and "posevae_model_bedlamscript" in names
    assert all(set(r) == {"shortname", "path", "exists"} for r in rows)


def test_models_list_table(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "models root:" in out and "aligner_model_bedlamscript" in out


def test_body_build_procedural_writes_the_smplx_layout(tmp_path, capsys):
    assert main(["body", "build-procedural", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "smplx" / "SMPLX_NEUTRAL.npz").is_file()
    assert "procedural SMPL-X-format model" in capsys.readouterr().out


def test_body_info_says_which_model(procedural_model_file, capsys):
    assert main(["body", "info"]) == 0
    out = capsys.readouterr().out
    assert "procedural" in out and str(procedural_model_file) in out


def test_config_lists_settings(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "SMPLX_BODY_MODEL_PATH" in out and "k_recall_values" in out


def test_unknown_command_fails():
    with pytest.raises(SystemExit):
        main(["no-such-command"])


def test_output_into_a_closed_pipe_ends_quietly():
    # `poseembroider config | head -0`: the reader is gone before the command writes. It used to end with a
    # BrokenPipeError traceback.
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "poseembroider.cli", "config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


@pytest.mark.parametrize(
    "command",
    [
        ["data", "synth", "--name", "x", "--n-train", "2", "--n-val", "1"],
        ["data", "pools", "--script-dataset", "x", "--n-train", "2"],
    ],
)
def test_non_finite_float_flags_are_refused_naming_the_flag(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--pool-factor", "nan"])
    assert exit_info.value.code == 2 and "--pool-factor" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["data", "import-amass", "--amass-root", ".", "--name", "x"], "--fps"),
        (["data", "import-amass", "--amass-root", ".", "--name", "x"], "--val-share"),
        (["data", "process-bedlam"], "--overlap"),
        (["data", "process-bedlam"], "--scale-factor"),
        (["data", "process-3dpw"], "--scale-factor"),
    ],
)
def test_dataset_processing_float_flags_refuse_nan(command, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, flag, "nan"])
    assert exit_info.value.code == 2 and f"argument {flag}: must be a finite number" in capsys.readouterr().err


def test_an_unusable_body_model_folder_is_one_error_line(tmp_path, monkeypatch, capsys):
    from poseembroider import config

    monkeypatch.setattr(config, "SMPLX_BODY_MODEL_PATH", tmp_path)  # exists, holds no smplx/SMPLX_NEUTRAL.npz
    assert main(["body", "info"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: SMPLX_BODY_MODEL_PATH") and "smplx/SMPLX_NEUTRAL.npz" in err
