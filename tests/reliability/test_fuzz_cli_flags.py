"""Bad inputs, command-line flags: every int and float flag of every command (the `poseembroider` CLI, the
scripts it forwards to, the demos' parsers) refuses negative, zero, NaN, huge and non-numeric values at parse
time, naming the flag (exit status 2), and takes valid ones; unknown shortnames and paths that do not exist
end in one `error:` line naming them. The flags' types are fuzzed in-process (one call per value); a sample
runs through the real CLI (in-process `main`, and real subprocesses in the slow twin)."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_strategies import fuzz

from poseembroider import config
from poseembroider.cli import SCRIPT_COMMANDS, build_parser
from poseembroider.cli import main as cli_main

FLAG_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(-3, 3).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e3", "2.5", "", "x", " 7 ", "0x10", "1_000", "--", "٣"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "poseembroider"):
    """(name, parser) of `parser` and of every sub-command below it."""
    yield prefix, parser
    for action in parser._actions:  # noqa: SLF001 - argparse's only way to walk sub-commands
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                yield from _subparsers(sub, f"{prefix} {name}")


def all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the toolkit: CLI commands, forwarded scripts (their own `build_parser`), demos."""
    from poseembroider.demos import DEMOS

    parsers = list(_subparsers(build_parser()))
    modules = [module for _, module, _ in SCRIPT_COMMANDS] + ["poseembroider.datasets.process_bedlam.process_bedlam"]
    for module in dict.fromkeys(modules):
        parsers.append((module, importlib.import_module(module).build_parser()))
    parsers += [(f"demo {name}", demo.parser()) for name, demo in DEMOS.items()]
    return parsers


def numeric_flags() -> list[tuple[str, str, argparse.Action]]:
    """(parser name, flag, action) of every flag whose type reads a number."""
    found = []
    for name, parser in all_parsers():
        for action in parser._actions:  # noqa: SLF001
            kind = getattr(action.type, "__name__", "")
            if action.option_strings and (
                action.type in (int, float) or hasattr(action.type, "low") or kind == "finite_float"
            ):
                found.append((name, action.option_strings[-1], action))
    return found


@pytest.fixture(scope="module")
def flags():
    return numeric_flags()


@pytest.mark.reliability(area="bad_inputs", subject="CLI int and float flags (every command: types)")
def test_every_numeric_flag_is_checked(flags, cases):
    """No flag reads a bare int or float: ints are `config.checked_int` ranges, floats `config.finite_float`."""
    assert len(flags) > 150  # the scripts' dataclass flags included
    for where, flag, action in flags:
        cases.tried()
        assert action.type not in (int, float), f"{where} {flag}: unchecked {action.type.__name__}"


def _check_value(action: argparse.Action, value: str) -> None:
    """`action.type(value)` returns what the flag promises or raises an ArgumentTypeError (argparse then names
    the flag); nothing else."""
    try:
        parsed = action.type(value)
    except (argparse.ArgumentTypeError, ValueError, TypeError):  # argparse reports all three naming the flag
        return
    if hasattr(action.type, "low"):
        assert isinstance(parsed, int) and action.type.low <= parsed <= action.type.high, (value, parsed)
        assert parsed == int(value)
    else:
        assert isinstance(parsed, float) and parsed == parsed and abs(parsed) != float("inf"), (value, parsed)


def _fuzz_flags(flags, cases, index, value):
    where, flag, action = flags[index % len(flags)]
    cases.tried()
    try:
        _check_value(action, value)
    except AssertionError as err:
        raise AssertionError(f"{where} {flag} {value!r}: {err}") from None


@pytest.mark.reliability(area="bad_inputs", subject="CLI int and float flags (every command: values)")
def test_numeric_flag_values(flags, cases):
    @fuzz(200)  # in-process type calls: 200 values in well under a second
    @given(index=st.integers(0, 10**6), value=FLAG_VALUES)
    def run(index, value):
        _fuzz_flags(flags, cases, index, value)

    run()
    for _, _, action in flags:  # each flag once with the values that most often slipped through
        for value in ("-1", "nan", str(2**64)):
            cases.tried()
            _check_value(action, value)


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="CLI int and float flags (every command: values)")
def test_numeric_flag_values_many(flags, cases):
    @fuzz(5000)
    @given(index=st.integers(0, 10**6), value=FLAG_VALUES)
    def run(index, value):
        _fuzz_flags(flags, cases, index, value)

    run()


# --------------------------------------------------------------------------- the real CLI

REFUSED = [
    (["train-posevae", "--epochs", "-1"], "--epochs"),
    (["train-posevae", "--batch_size", "0"], "--batch_size"),
    (["train-core", "--seed", str(2**40)], "--seed"),
    (["train-core", "--lr", "nan"], "--lr"),
    (["train-posetext", "--latentD", "0"], "--latentD"),
    (["evaluate-posevae", "--model_path", "x", "--batch_size", "1.5"], "--batch_size"),
    (["data", "synth", "--name", "x", "--n-train", "-5", "--n-val", "1"], "--n-train"),
    (["data", "pools", "--script-dataset", "x", "--n-train", "10", "--chunk-size", "0"], "--chunk-size"),
    (["caption", "--poses", "x.npz", "--seed", "nan"], "--seed"),
    (["embed", "--model", "m", "--texts", "t", "--out", "o.safetensors", "--batch-size", "0"], "--batch-size"),
    (["embed", "--model", "m", "--texts", "t", "--out", "o.safetensors", "--chunk-size", "0"], "--chunk-size"),
    (["text", "train-tokenizer", "--out", "x", "--vocab-size", "-3"], "--vocab-size"),
    (
        [
            "cache-intermodality-features",
            "--model_path",
            "m",
            "--dataset",
            "d",
            "--input_types",
            "poses",
            "--num_workers",
            "-1",
        ],
        "--num_workers",
    ),  # fmt: skip
]


def _run_cli(argv, capsys) -> tuple[int, str]:
    try:
        status = cli_main(argv)
    except SystemExit as exit_:  # argparse's exit
        status = exit_.code
    return status, capsys.readouterr().err


@pytest.mark.reliability(area="bad_inputs", subject="CLI int and float flags (real commands)")
@pytest.mark.parametrize(("argv", "flag"), REFUSED, ids=[" ".join(a[:2]) + " " + f for a, f in REFUSED])
def test_cli_refuses_bad_numbers(argv, flag, capsys, cases):
    cases.tried()
    status, err = _run_cli(argv, capsys)
    assert status == 2 and "Traceback" not in err, err
    assert f"argument {flag}:" in err.strip().splitlines()[-1], err


MISSING = [
    (["caption", "--poses", "{tmp}/no_such.npz"], "no_such.npz"),
    (["posecodes", "--poses", "{tmp}/no_such.npz"], "no_such.npz"),
    (
        ["embed", "--model", "no_such_shortname", "--texts", "{tmp}/t.txt", "--out", "{tmp}/o.safetensors"],
        "no_such_shortname",
    ),  # fmt: skip
    (["evaluate-posevae", "--model_path", "no_such_shortname", "--dataset", "synthscript-x"], "no_such_shortname"),
    (["evaluate-core", "--model_path", "{tmp}/no_such_folder", "--dataset", "synthscript-x"], "no_such_folder"),
    (["train-posevae", "--dataset", "synthscript-no_such_version", "--epochs", "1"], "synthscript-no_such_version"),
]


@pytest.mark.reliability(area="bad_inputs", subject="CLI unknown shortnames and missing paths")
@pytest.mark.parametrize(("argv", "named"), MISSING, ids=[f"{a[0]} {n}" for a, n in MISSING])
def test_cli_names_what_is_missing(argv, named, tmp_path, capsys, cases):
    cases.tried()
    (tmp_path / "t.txt").write_text("a text\n")
    status, err = _run_cli([w.format(tmp=tmp_path) for w in argv], capsys)
    lines = err.strip().splitlines()
    assert status == 2 and "Traceback" not in err, err
    assert named in lines[-1] and (lines[-1].startswith("error:") or "error:" in lines[-1]), err


CLI = "import sys; from poseembroider.cli import main; sys.exit(main(sys.argv[1:]))"
"""The `poseembroider` console script, run by the test's interpreter."""


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="CLI int and float flags (real commands, subprocesses)")
def test_cli_subprocesses(tmp_path, cases, isolated_config):
    """The same refusals through the console script in a fresh interpreter, as a user runs it."""
    env = dict(os.environ, OMP_NUM_THREADS="1", POSEEMBROIDER_SMPLX_BODY_MODEL_PATH="none")
    for name in ("DATA_CACHE_DIR", "MODELS_ROOT", "GENERAL_EXP_OUTPUT_DIR", "PROCEDURAL_BODY_MODEL_PATH"):
        env[f"POSEEMBROIDER_{name}"] = str(getattr(config, name))
    (tmp_path / "t.txt").write_text("a text\n")
    for argv, flag in REFUSED[:6] + [(a, n) for a, n in MISSING[:3]]:
        cases.tried()
        words = [w.format(tmp=tmp_path) for w in argv]
        done = subprocess.run([sys.executable, "-c", CLI, *words], capture_output=True, text=True, env=env, timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and "Traceback" not in done.stderr, (words, done.stderr)
        assert flag in lines[-1], (words, done.stderr)
