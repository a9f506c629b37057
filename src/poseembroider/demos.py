"""The toolkit's streamlit apps and how to start them: `poseembroider demo <name> [app flags] [--server.port N]`.

`DEMOS` is the table: a name, the app's script (relative to this package), a one-line description, the
app's own flags (the words after `--` of `streamlit run`) and their defaults. `run_demo(name, args)` starts

    python -m streamlit run <script> --server.headless true --browser.gatherUsageStats false \\
        --client.toolbarMode viewer [streamlit flags of args] -- <defaults> <app flags of args>

Words of `args` that start with a streamlit option section (`--server.port 8502`, `--theme.base=dark`) go
to streamlit, the others to the app; they are checked against the app's flags before anything starts.
The streamlit settings (`STREAMLIT_SETTINGS`) hold whoever starts an app this way: the toolkit runs
offline (no usage statistics), the apps are for looking at models, not for deploying (no deploy
button or developer menu), and they listen on localhost only (streamlit's default is every network
interface); a flag given by the user wins (`--server.address 0.0.0.0` shares an app on the network).
`.streamlit/config.toml` at the repository root sets the same for `streamlit run` started there.

The apps pick their model with `initial_model`: the `--model_path` flag, the URL's `?model=`, an
environment variable, else `default_model`: the quickstart's shortname when it is registered and
present, the released model's, else the newest registered model of that kind, so a fresh clone that ran
`make quickstart` opens on the models it trained, never on a release that is not on disk.

The quickstart registers its models under `<family>_model_synthscript` (the `default_shortname` of
`train_poseVAE.py` / `train_core.py` for its `synthscript-...` dataset); the released models are
`<family>_model_bedlamscript` (`shortname_2_model_path.json`).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from poseembroider import config
from poseembroider.registry import load_registry

PACKAGE_DIR = Path(__file__).resolve().parent

STREAMLIT_OPTION_SECTIONS = (
    "--global.",
    "--logger.",
    "--client.",
    "--runner.",
    "--server.",
    "--browser.",
    "--ui.",
    "--magic.",
    "--theme.",
)
"""Words of the arguments handed to `streamlit run` itself (each takes a value: `--server.port 8502`)."""

STREAMLIT_SETTINGS: dict[str, str] = {
    "server.headless": "true",  # no browser launched by the server, no e-mail prompt on the first run
    "browser.gatherUsageStats": "false",  # the toolkit runs offline: send no usage statistics
    "client.toolbarMode": "viewer",  # no deploy button, no rerun / clear-cache developer menu
    "server.address": "localhost",  # reachable from this machine only: --server.address 0.0.0.0 to share it
}
"""Streamlit options of every app started by `run_demo` (the user's own value of an option wins)."""

VALIDATION_SPLIT = "val"

MAX_MODEL_NAME_CHARS = 1024
"""Longest text the apps' model field keeps (a folder path or a shortname): streamlit cuts the typed value, or
the URL's `?model=`, there on the server, so a pasted megabyte is not echoed back in the error messages."""


class UnknownDemoError(ValueError):
    """A demo name that is not in `DEMOS`; the message lists the known ones."""


@dataclass(frozen=True)
class ModelChoice:
    """Which registered models an app can show, for `default_model`."""

    kind: str  # what the app loads, in its messages: "PoseVAE", "PoseEmbroider / Aligner"
    env_var: str  # environment variable naming the model (after --model_path and ?model=)
    preferred: tuple[str, ...]  # shortnames tried first, in this order
    prefixes: tuple[str, ...]  # any other registered shortname starting with one of these, newest first


@dataclass(frozen=True)
class Demo:
    """One streamlit app: `script` relative to the package folder, its flags and their launch defaults."""

    script: str
    description: str
    parser: Callable[[], argparse.ArgumentParser]  # the app's flags (after `--`), checked before launch
    # app flags given at launch unless the user gives the same flag: every app opens on the validation split
    default_args: tuple[str, ...] = ("--split", VALIDATION_SPLIT)
    models: ModelChoice | None = None  # None: the app loads no model

    @property
    def path(self) -> Path:
        return PACKAGE_DIR / self.script


def _add_dataset_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=None, help="dataset selected first (default: the first one found)")
    parser.add_argument("--split", default=None, help="split selected first (default: val, then test, then train)")


def browser_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Flags of a dataset browser: the dataset and split it opens on."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    _add_dataset_flags(parser)
    return parser


def posevae_parser() -> argparse.ArgumentParser:
    """Flags of the PoseVAE demo (each one only sets the initial value of a field of the app)."""
    parser = argparse.ArgumentParser(
        prog="demo_poseVAE.py",
        description="PoseVAE demo: a pose, its reconstruction, and poses sampled from the prior (streamlit app)",
    )
    choice = POSEVAE_MODELS
    parser.add_argument(
        "--model_path",
        default=None,
        help=f"model folder, training output folder or shortname (else ?model=..., ${choice.env_var}, the "
        f"first present of {', '.join(choice.preferred)}, else the newest registered {choice.prefixes[0]}*)",
    )
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="(default: %(default)s)")
    _add_dataset_flags(parser)
    return parser


POSEVAE_MODELS = ModelChoice(
    kind="PoseVAE",
    env_var="POSEEMBROIDER_POSEVAE_DEMO_MODEL",
    preferred=("posevae_model_synthscript", "posevae_model_bedlamscript"),
    prefixes=("posevae_model_",),
)
CORE_MODELS = ModelChoice(
    kind="PoseEmbroider / Aligner",
    env_var="POSEEMBROIDER_CORE_DEMO_MODEL",
    preferred=(
        "poseembroider_model_synthscript",
        "poseembroider_model_bedlamscript",
        "aligner_model_synthscript",
        "aligner_model_bedlamscript",
    ),
    prefixes=("poseembroider_model_", "aligner_model_"),
)

INSTRUCTION_MODELS = ModelChoice(
    kind="InstructionGenerator",
    env_var="POSEEMBROIDER_INSTRUCTION_DEMO_MODEL",
    preferred=(
        "instructgen_model_poseembroider_synthfix",
        "instructgen_model_poseembroider_bedlamfix_posefix",
        "instructgen_model_aligner_bedlamfix_posefix",
    ),
    prefixes=("instructgen_model_",),
)

HPS_MODELS = ModelChoice(
    kind="HPSEstimator",
    env_var="POSEEMBROIDER_HPS_DEMO_MODEL",
    preferred=(
        "hpsestimator_model_poseembroider_synthscript",
        "hpsestimator_model_poseembroider_bedlamscript",
        "hpsestimator_model_aligner_synthscript",
        "hpsestimator_model_aligner_bedlamscript",
    ),
    prefixes=("hpsestimator_model_",),
)

_SCRIPT_BROWSER = "datasets/visualize/visualize_dataset_script.py"
_FIX_BROWSER = "datasets/visualize/visualize_dataset_fix.py"

DEFAULT_N_RETRIEVE = 8
"""Items of each modality the retrieval demo shows first."""


def core_parser() -> argparse.ArgumentParser:
    """Flags of the retrieval demo; every one is also a field of the app (the flags only set their initial value)."""
    parser = argparse.ArgumentParser(
        prog="demo_core.py",
        description="any-to-any retrieval demo of PoseEmbroider / the Aligner (streamlit app)",
        epilog="launch: poseembroider demo core [flags] [--server.port 8501], or "
        "streamlit run src/poseembroider/demo_core.py -- [flags]",
    )
    parser.add_argument(
        "--model_path",
        default=None,
        help=f"model folder, training output folder or shortname (else ?model=..., ${CORE_MODELS.env_var}, the "
        f"first present of {', '.join(CORE_MODELS.preferred)}, else the newest registered "
        f"{' or '.join(p + '*' for p in CORE_MODELS.prefixes)})",
    )
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="(default: %(default)s)")
    parser.add_argument(
        "--n_retrieve",
        type=config.positive_int,
        default=DEFAULT_N_RETRIEVE,
        help="items shown per modality (default: %(default)s)",
    )
    _add_dataset_flags(parser)
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:<i>' (default: %(default)s)")
    return parser


def instruction_parser() -> argparse.ArgumentParser:
    """Flags of the instruction-generation demo; each one only sets the initial value of a field of the app."""
    from poseembroider.downstream.instruction_generation.decoding import DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH

    choice = INSTRUCTION_MODELS
    parser = argparse.ArgumentParser(
        prog="demo_instruction_generation.py",
        description="corrective instructions from pose / image A to pose / image B (streamlit app)",
        epilog="launch: poseembroider demo instruction [flags] [--server.port 8501]",
    )
    parser.add_argument(
        "--model_path",
        default=None,
        help=f"InstructionGenerator folder, training output folder or shortname (else ?model=..., "
        f"${choice.env_var}, the first present of {', '.join(choice.preferred)}, else the newest registered "
        f"{choice.prefixes[0]}*)",
    )
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="(default: %(default)s)")
    _add_dataset_flags(parser)
    parser.add_argument("--decoding", default="greedy", help="greedy, beam, nucleus or rerank (default: %(default)s)")
    parser.add_argument("--beam_size", type=config.positive_int, default=4, help="(default: %(default)s)")
    parser.add_argument(
        "--top_p", type=config.finite_float, default=0.9, help="nucleus sampling (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=config.seed_int, default=0, help="sampled poses and nucleus sampling (default: 0)"
    )
    parser.add_argument(
        "--min_length", type=config.non_negative_int, default=DEFAULT_MIN_LENGTH, help="(default: %(default)s)"
    )
    parser.add_argument(
        "--max_length", type=config.positive_int, default=DEFAULT_MAX_LENGTH, help="(default: %(default)s)"
    )
    parser.add_argument(
        "--input_set", default=None, help="e.g. P_A,P_B (default: the one the generator was trained on)"
    )
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:<i>' (default: %(default)s)")
    return parser


def pose_estimation_parser() -> argparse.ArgumentParser:
    """Flags of the mesh-recovery demo; each one only sets the initial value of a field of the app."""
    choice = HPS_MODELS
    parser = argparse.ArgumentParser(
        prog="demo_pose_estimation.py",
        description="human mesh recovery from an image (and a text) with an HPSEstimator head (streamlit app)",
        epilog="launch: poseembroider demo pose-estimation [flags] [--server.port 8501]",
    )
    parser.add_argument(
        "--model_path",
        default=None,
        help=f"HPSEstimator folder, training output folder or shortname (else ?model=..., ${choice.env_var}, the "
        f"first present of {', '.join(choice.preferred)}, else the newest registered {choice.prefixes[0]}*)",
    )
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="(default: %(default)s)")
    _add_dataset_flags(parser)
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:<i>' (default: %(default)s)")
    return parser


DEMOS: dict[str, Demo] = {
    "core": Demo(
        script="demo_core.py",
        description="any-to-any retrieval (PoseEmbroider / Aligner): image, pose, text queries over a split",
        parser=core_parser,
        models=CORE_MODELS,
    ),
    "posevae": Demo(
        script="assisting_models/poseVAE/demo_poseVAE.py",
        description="PoseVAE: a pose of a dataset (or CMU mocap), its reconstruction, samples of the prior",
        parser=posevae_parser,
        models=POSEVAE_MODELS,
    ),
    "pose-estimation": Demo(
        script="downstream/pose_estimation/demo_pose_estimation.py",
        description="human mesh recovery (HPSEstimator): a dataset sample or a picture, image alone vs image + text",
        parser=pose_estimation_parser,
        models=HPS_MODELS,
    ),
    "instruction": Demo(
        script="downstream/instruction_generation/demo_instruction_generation.py",
        description="corrective instructions (InstructionGenerator): a dataset pair, sampled poses or two pictures",
        parser=instruction_parser,
        models=INSTRUCTION_MODELS,
    ),
    "dataset-script": Demo(
        script=_SCRIPT_BROWSER,
        description="browse a BEDLAM-Script-format dataset: crop, body from any viewpoint, captions",
        parser=lambda: browser_parser("visualize_dataset_script.py", "single-element dataset browser"),
    ),
    "dataset-fix": Demo(
        script=_FIX_BROWSER,
        description="browse a BEDLAM-Fix-format pair dataset: images and poses A and B, instructions",
        parser=lambda: browser_parser("visualize_dataset_fix.py", "pair dataset browser"),
    ),
}


def get_demo(name: str) -> Demo:
    """The demo called `name`; `UnknownDemoError` naming it and listing the known demos otherwise."""
    if name not in DEMOS:
        raise UnknownDemoError(f"unknown demo {name!r}; known demos: {', '.join(DEMOS)}")
    return DEMOS[name]


# ---------------------------------------------------------------------------------------------- models


def default_model(choice: ModelChoice) -> str | None:
    """The shortname an app opens on when no model is named: the first of `choice.preferred` whose folder
    exists, else the most recently modified existing registered model whose shortname starts with one of
    `choice.prefixes`, else None (nothing trained or downloaded yet)."""
    present = {name: entry for name, entry in load_registry().items() if entry.exists}
    for name in choice.preferred:
        if name in present:
            return name
    others = [(entry.path.stat().st_mtime, name) for name, entry in present.items() if name.startswith(choice.prefixes)]
    return max(others)[1] if others else None


def initial_model(choice: ModelChoice, flag: str | None, query_value: str | None) -> str | None:
    """The model an app opens on: its `--model_path` flag, the URL's `?model=`, the environment variable
    `choice.env_var`, else `default_model(choice)` (None: no model is available)."""
    return flag or query_value or os.environ.get(choice.env_var) or default_model(choice)


def missing_model_message(choice: ModelChoice) -> str:
    """What an app says when `initial_model` found nothing."""
    return (
        f"No {choice.kind} model is registered under {config.MODELS_ROOT} (shortnames "
        f"{', '.join(choice.preferred)} or {'/'.join(p + '*' for p in choice.prefixes)}). Train one "
        "(`make quickstart` trains and registers them all), or type a model folder or shortname in the sidebar."
    )


def shown_path(model_dir: str | os.PathLike) -> str:
    """`model_dir` as an app shows it: `MODELS_ROOT/<relative path>` under the models root (where the
    registry's shortnames point), else the absolute path."""
    path = Path(model_dir).resolve()
    root = Path(config.MODELS_ROOT).resolve()
    return f"MODELS_ROOT/{path.relative_to(root)}" if path.is_relative_to(root) else str(path)


# ---------------------------------------------------------------------------------------------- launch


def split_streamlit_args(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """(streamlit options, app flags) of `words`: `--server.port 8502` / `--server.port=8502` go to
    streamlit (an option followed by its value), every other word to the app."""
    streamlit_args: list[str] = []
    app_args: list[str] = []
    remaining = iter(words)
    for word in remaining:
        if word.startswith(STREAMLIT_OPTION_SECTIONS):
            streamlit_args.append(word)
            if "=" not in word:
                streamlit_args.append(next(remaining, ""))
        else:
            app_args.append(word)
    return streamlit_args, app_args


def _given(flag: str, words: Sequence[str]) -> bool:
    return any(word == flag or word.startswith(flag + "=") for word in words)


def build_command(name: str, args: Sequence[str] = ()) -> list[str]:
    """The `python -m streamlit run ...` command line of demo `name` with the user's `args`.

    Raises `UnknownDemoError` for an unknown name; a wrong app flag exits (SystemExit 2) with the app's
    usage, `--help` prints the app's flags and exits 0, before any server starts.
    """
    demo = get_demo(name)
    streamlit_args, app_args = split_streamlit_args(args)
    demo.parser().parse_args(app_args)
    defaults = list(demo.default_args)
    launch_defaults = [
        word
        for flag, value in zip(defaults[::2], defaults[1::2], strict=True)
        if not _given(flag, app_args)
        for word in (flag, value)
    ]
    settings = [
        word
        for option, value in STREAMLIT_SETTINGS.items()
        if not _given(f"--{option}", streamlit_args)
        for word in (f"--{option}", value)
    ]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(demo.path),
        *settings,
        *streamlit_args,
        "--",
        *launch_defaults,
        *app_args,
    ]


def run_demo(name: str, args: Sequence[str] = ()) -> int:
    """Start demo `name` (`build_command`) and wait for it; returns its exit status.

    The app runs in a child process: Ctrl-C reaches both (the terminal signals the whole process group) and
    the launcher waits for the app to stop; a SIGTERM sent to the launcher alone (a process manager, an
    IDE's stop button) is passed on to the app, so no server is left behind holding the port.
    """
    command = build_command(name, args)
    if importlib.util.find_spec("streamlit") is None:
        print(f"error: the {name} demo needs streamlit: pip install 'poseembroider[demo]'", file=sys.stderr)
        return 2
    print(f"starting the {name} demo: {shlex.join(command)}", file=sys.stderr, flush=True)
    process = subprocess.Popen(command)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.terminate()) if in_main_thread else None
    try:
        try:
            return process.wait()
        except KeyboardInterrupt:  # the app got the same Ctrl-C and is stopping: give it a few seconds
            try:
                return process.wait(timeout=10)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                process.terminate()
                return process.wait()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def demos_table() -> str:
    """One line per demo: name and description."""
    width = max(len(name) for name in DEMOS)
    return "\n".join(f"  {name:<{width}}  {demo.description}" for name, demo in DEMOS.items())


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """`NAME [args ...]` of a `demo` command: the demo name (one of `DEMOS`; none lists them) and every
    word after it, for `run_demo(args.name, args.demo_args)`."""
    parser.description = (parser.description or "") + "\n\ndemos:\n" + demos_table()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Words after NAME are the app's flags (`poseembroider demo NAME --help` lists them) and\n"
        "streamlit options such as --server.port 8502. Every app starts headless, without usage\n"
        "statistics nor deploy button, on the validation split and, for the model demos, on the\n"
        "quickstart's model (else the released one, else the newest registered one)."
    )
    parser.add_argument("name", nargs="?", choices=list(DEMOS), metavar="NAME", help="the demo to start")
    parser.add_argument("demo_args", nargs=argparse.REMAINDER, metavar="...", help="app flags, streamlit options")
