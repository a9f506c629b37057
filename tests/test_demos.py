"""The demo launcher (`poseembroider demo <name>`): its table, the command it builds, the model it opens on."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from poseembroider import config, demos
from poseembroider.cli import main as cli_main
from poseembroider.datasets.visualization import AZIMUTH_RANGE, AZIMUTH_STEP, order_splits
from poseembroider.demos import (
    CORE_MODELS,
    DEMOS,
    POSEVAE_MODELS,
    STREAMLIT_SETTINGS,
    UnknownDemoError,
    build_command,
    default_model,
    get_demo,
    initial_model,
    run_demo,
    shown_path,
    split_streamlit_args,
)
from poseembroider.registry import LOCAL_REGISTRY_NAME


@pytest.fixture
def launched(monkeypatch) -> list[list[str]]:
    """The command lines `run_demo` would start (nothing is started)."""
    calls: list[list[str]] = []

    class App:
        def __init__(self, command: list[str]) -> None:
            calls.append(command)

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", App)
    return calls


def _options(command: list[str]) -> dict[str, str]:
    """The streamlit options of a command line (between the script and `--`)."""
    words = iter(command[command.index("run") + 2 : command.index("--")])
    return dict(word.split("=", 1) if "=" in word else (word, next(words)) for word in words)


def test_the_table_names_the_apps_and_each_script_is_a_streamlit_app():
    assert list(DEMOS) == ["core", "posevae", "pose-estimation", "instruction", "dataset-script", "dataset-fix"]
    for name, demo in DEMOS.items():
        assert demo.path.is_file(), f"{name}: {demo.path} is missing"
        assert "import streamlit as st" in demo.path.read_text(encoding="utf-8")
        assert demo.description and "\n" not in demo.description
        assert demo.default_args == ("--split", "val"), f"{name} does not open on the validation split"
        demo.parser().parse_args(list(demo.default_args))  # the defaults are flags of the app
    assert (
        "datasets/visualize/" in DEMOS["dataset-script"].script and "datasets/visualize/" in DEMOS["dataset-fix"].script
    )


@pytest.mark.parametrize("name", list(DEMOS))
def test_every_app_starts_headless_without_statistics_nor_deploy_button(name):
    command = build_command(name)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(DEMOS[name].path)]
    assert _options(command) == {
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "viewer",
        "--server.address": "localhost",  # not every network interface
    }
    assert command[command.index("--") + 1 :] == ["--split", "val"]


def test_streamlit_options_and_app_flags_are_told_apart_and_the_users_win(launched):
    args = ["--model_path", "m", "--server.port", "8600", "--split", "train", "--client.toolbarMode=minimal"]
    assert run_demo("core", args) == 0
    (command,) = launched
    assert _options(command)["--server.port"] == "8600"
    assert _options(command)["--client.toolbarMode"] == "minimal" and "viewer" not in command  # the user's wins
    assert _options(command)["--browser.gatherUsageStats"] == "false"
    assert command[command.index("--") + 1 :] == ["--model_path", "m", "--split", "train"]  # no second --split
    assert split_streamlit_args(["--theme.base=dark", "-x", "--server.port", "1"]) == (
        ["--theme.base=dark", "--server.port", "1"],
        ["-x"],
    )
    assert set(STREAMLIT_SETTINGS) == {
        "server.headless",
        "browser.gatherUsageStats",
        "client.toolbarMode",
        "server.address",
    }


def test_an_unknown_demo_is_refused_naming_it_and_listing_the_known_ones(launched, capsys):
    with pytest.raises(UnknownDemoError) as err:
        get_demo("retrieval")
    message = str(err.value)
    assert "'retrieval'" in message and all(name in message for name in DEMOS)
    with pytest.raises(UnknownDemoError):
        run_demo("retrieval", [])
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo", "retrieval"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "'retrieval'" in error and all(name in error for name in DEMOS)
    assert not launched


def test_a_wrong_app_flag_fails_before_any_server_starts_and_help_lists_the_apps_flags(launched, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_demo("posevae", ["--no_such_flag"])
    assert exit_info.value.code == 2 and "--no_such_flag" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo", "dataset-fix", "--help"])
    assert exit_info.value.code == 0 and "--split" in capsys.readouterr().out
    assert not launched


def test_the_cli_starts_a_demo_and_lists_them_without_a_name(launched, capsys):
    assert cli_main(["demo", "dataset-script", "--dataset", "synthscript-x", "--server.port", "8601"]) == 0
    (command,) = launched
    assert str(DEMOS["dataset-script"].path) in command and _options(command)["--server.port"] == "8601"
    assert command[command.index("--") + 1 :] == ["--split", "val", "--dataset", "synthscript-x"]
    assert cli_main(["demo"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in DEMOS)
    assert cli_main(["demo-core", "--n_retrieve", "4"]) == 0  # the older spelling starts the same app
    assert launched[-1][4] == str(DEMOS["core"].path) and launched[-1][-2:] == ["--n_retrieve", "4"]


def test_without_streamlit_the_launcher_says_which_extra_to_install(launched, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "streamlit" else real_find_spec(name))
    assert run_demo("dataset-fix") == 2
    assert "poseembroider[demo]" in capsys.readouterr().err and not launched


def test_a_sigterm_to_the_launcher_stops_the_app(monkeypatch):
    """A process manager stopping the launcher must not leave the server behind, holding its port."""
    app = [sys.executable, "-c", "import time; time.sleep(120)"]
    monkeypatch.setattr(demos, "build_command", lambda name, args=(): app)
    before = signal.getsignal(signal.SIGTERM)

    def stop_the_launcher() -> None:  # once run_demo's handler is in place: never SIGTERM pytest itself
        deadline = time.monotonic() + 60
        while signal.getsignal(signal.SIGTERM) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        if signal.getsignal(signal.SIGTERM) != before:
            os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_the_launcher, daemon=True)
    stopper.start()
    start = time.monotonic()
    assert run_demo("core") == -signal.SIGTERM  # the app was terminated, the launcher returned
    assert time.monotonic() - start < 60
    stopper.join()
    assert signal.getsignal(signal.SIGTERM) == before  # the launcher's handler is gone


# ---------------------------------------------------------------------------------------------- models


@pytest.fixture
def models_root(tmp_path, monkeypatch):
    """An empty models root and packaged registry: `register(name, age)` makes a model folder of that age."""
    root = tmp_path / "models"
    root.mkdir()
    packaged = tmp_path / "packaged.json"
    packaged.write_text(json.dumps({"posevae_model_bedlamscript": "pretrained/posevae_model_bedlamscript"}))
    monkeypatch.setattr(config, "MODELS_ROOT", root)
    monkeypatch.setattr(config, "PRETRAINED_MODEL_DICT", packaged)
    registry: dict[str, str] = {}

    def register(name: str, age_s: float = 0.0) -> None:
        folder = root / name
        folder.mkdir(parents=True)
        stamp = folder.stat().st_mtime - age_s
        os.utime(folder, (stamp, stamp))
        registry[name] = name
        (root / LOCAL_REGISTRY_NAME).write_text(json.dumps(registry))

    return register


def test_no_model_is_proposed_when_none_is_on_disk(models_root, monkeypatch):
    monkeypatch.delenv(POSEVAE_MODELS.env_var, raising=False)
    assert default_model(POSEVAE_MODELS) is None  # the released shortname is registered, not downloaded
    assert initial_model(POSEVAE_MODELS, None, None) is None


def test_the_quickstart_model_wins_else_the_newest_registered_one(models_root):
    models_root("posevae_model_mine", age_s=100)
    models_root("posevae_model_other", age_s=10)
    models_root("poseembroider_model_x", age_s=1)
    assert default_model(POSEVAE_MODELS) == "posevae_model_other"  # the newest PoseVAE
    assert default_model(CORE_MODELS) == "poseembroider_model_x"
    models_root("posevae_model_synthscript", age_s=1000)  # the quickstart's, even if older
    assert default_model(POSEVAE_MODELS) == "posevae_model_synthscript"


def test_a_named_model_comes_before_the_default(models_root, monkeypatch):
    models_root("posevae_model_synthscript")
    monkeypatch.setenv(POSEVAE_MODELS.env_var, "from_env")
    assert initial_model(POSEVAE_MODELS, "from_flag", "from_url") == "from_flag"
    assert initial_model(POSEVAE_MODELS, None, "from_url") == "from_url"
    assert initial_model(POSEVAE_MODELS, None, None) == "from_env"
    monkeypatch.delenv(POSEVAE_MODELS.env_var)
    assert initial_model(POSEVAE_MODELS, None, None) == "posevae_model_synthscript"


def test_model_folders_are_shown_relative_to_the_models_root(models_root, tmp_path):
    assert shown_path(config.MODELS_ROOT / "quickstart" / "models" / "core") == "MODELS_ROOT/quickstart/models/core"
    assert shown_path(tmp_path / "elsewhere") == str((tmp_path / "elsewhere").resolve())


# ---------------------------------------------------------------------------------------------- shared widgets


def test_held_out_splits_come_first():
    assert order_splits(["train", "val", "dev", "test", "train"]) == ["val", "test", "train", "dev"]
    assert order_splits(["train"]) == ["train"]


def test_the_viewpoint_slider_reaches_the_front_the_sides_and_the_back():
    low, high = AZIMUTH_RANGE
    reachable = set(range(low, high + 1, AZIMUTH_STEP))
    assert {-180, -90, 0, 90, 180} <= reachable
