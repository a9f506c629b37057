"""Packaging: the metadata declares what the code imports, extras stay optional, the wheel carries its data.

- every third-party module imported by `src/poseembroider` is a declared dependency (core or an extra);
- the core library imports none of the extras' modules when it is imported (streamlit only in demos);
- every data file the package holds is package data, every folder of modules a package;
- a wheel built from the sources holds all modules and data files.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "src" / "poseembroider"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]

EXTRA_MODULES = {  # top-level modules of the optional extras, never imported when the library is imported
    "streamlit": "demo",
    "pyrender": "render",
    "trimesh": "render",
    "OpenGL": "render",
    "sacrebleu": "eval",
    "rouge_score": "eval",
    "nltk": "eval",
    "tensorboard": "tensorboard",
}
PROVIDED_BY = {"OpenGL": "pyrender", "torchvision": "timm"}
"""Modules imported by the code but installed by a declared dependency that requires them."""

SCRIPT_ONLY = re.compile(r"(^|\.)(demo_(?!core_helpers)\w+|visualize_dataset_\w+|visualize\.common)$")
"""Streamlit scripts (demos, dataset browsers): the only modules that import streamlit at their top."""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalize(re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0])


def _declared(group: list[str]) -> set[str]:
    return {_requirement_name(r) for r in group}


def _module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module -> the package modules importing it (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top != "poseembroider":
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE_DIR)))
    return found


def test_extras_are_declared():
    core = _declared(PROJECT["dependencies"])
    assert {"streamlit", "pyrender", "sacrebleu", "tensorboard", "pandas"}.isdisjoint(core)
    assert {"torch", "numpy", "smplx", "safetensors", "tokenizers", "transformers"} <= core
    assert "streamlit" in _declared(EXTRAS["demo"])
    assert {"sacrebleu", "rouge-score", "nltk"} <= _declared(EXTRAS["eval"])
    assert {"pyrender", "trimesh"} <= _declared(EXTRAS["render"])
    everything = EXTRAS["all"][0]
    assert _requirement_name(everything) == "poseembroider"
    assert set(everything[everything.index("[") + 1 : everything.index("]")].split(",")) == set(EXTRAS) - {"all"}
    assert PROJECT["scripts"]["poseembroider"] == "poseembroider.cli:main"


def test_every_imported_third_party_module_is_declared():
    distributions = importlib.metadata.packages_distributions()
    declared = _declared(PROJECT["dependencies"]) | {n for group in EXTRAS.values() for n in _declared(group)}
    missing = {}
    for module, importers in sorted(_third_party_imports().items()):
        if module in PROVIDED_BY:
            provider = PROVIDED_BY[module]
            requires = importlib.metadata.requires(provider) or []
            assert provider in declared and any(
                _requirement_name(r) in {_normalize(d) for d in distributions.get(module, [module])} for r in requires
            ), f"{module} is said to come with {provider}, which does not require it"
            continue
        names = {_normalize(d) for d in distributions.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(importers)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_extras_are_imported_only_by_streamlit_scripts_at_module_level():
    """Importing every library module pulls in none of the extras (streamlit, pyrender, tensorboard, ...)."""
    modules = [m for m in _module_names() if not SCRIPT_ONLY.search(m) and not m.endswith("__main__")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {sorted(EXTRA_MODULES)!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the library loads optional modules {loaded} ({len(modules)} modules imported)"


def _package_data_globs() -> list[str]:
    return PYPROJECT["tool"]["setuptools"]["package-data"]["poseembroider"]


def _data_files() -> list[str]:
    return sorted(
        str(p.relative_to(PACKAGE_DIR))
        for p in PACKAGE_DIR.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )


def test_every_data_file_is_package_data():
    globs = _package_data_globs()
    left_out = [f for f in _data_files() if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not left_out, f"files in the package that a wheel would not carry: {left_out} (pyproject package-data)"


def test_every_folder_of_modules_is_a_package():
    """`namespaces = false`: a folder of modules without `__init__.py` would be left out of the wheel."""
    folders = {p.parent for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(f.relative_to(PACKAGE_DIR)) for f in folders if not (f / "__init__.py").exists()) == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the checkout gets no build/ folder)."""
    import shutil

    work = tmp_path_factory.mktemp("wheel_build")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "out"), "."],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return next((work / "out").glob("poseembroider-*.whl"))


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"poseembroider/{f}" for f in _data_files()} | {
        str(p.relative_to(PACKAGE_DIR.parent)) for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts
    }
    assert expected - names == set()
    assert {"poseembroider/shortname_2_model_path.json", "poseembroider/data/cmu_mocap/poses_dev.npz"} <= names
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    for extra in ("demo", "eval", "render", "all"):
        assert f"Provides-Extra: {extra}" in metadata
