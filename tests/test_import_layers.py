"""Imports run one way: no module of `poseembroider` imports a floor above its own (DESIGN.md §3).

The floors, from the bottom up (a module may import its own floor and every floor below it):

1. `config`, `modalities`, `atomic_io`, `geometry/`, `evaluation/`, `data/` (pure functions, constants)
2. `registry`, `body/`, `text/` (tokenizers and plain text helpers)
3. `rendering/`, `text/captioning/`, `text/correcting/`
4. `datasets/`
5. `models/` (5.0) < `assisting_models/` library modules (5.1) < `encoders`, `model`, `downstream/` library
   modules (5.2) < `representation`, `features/`, `compat/` (5.3)
6. `training/`
7. scripts (`train_*`, `evaluate_*`, `cache_*`, `process_*`) (7.0) < demos and dataset browsers (7.1) <
   `quickstart/` (7.2) < `cli` (7.3)

and a second rule: a script's helpers are library code, so nothing but `quickstart/` and `cli` (which run
scripts' `main`) imports a script. Every import counts, top-level or inside a function: a local import
hides an upward dependency from a reader, it does not remove it.

The checker reads the source with `ast` (nothing is imported), so it can be pointed at a planted tree:
`test_an_upward_import_is_reported` shows it failing on one.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "poseembroider"
SRC_ROOT = Path(__file__).resolve().parents[1] / "src"
SCRIPT_NAME = re.compile(r"^(train|evaluate|process)_\w+$|^cache_\w+_features$")
"""Script modules by their file name (a package such as `datasets/process_bedlam/` is library code)."""

# (module path prefix, floor); the longest matching prefix wins
FLOOR_BY_PREFIX: tuple[tuple[str, float], ...] = (
    ("config", 1),
    ("modalities", 1),
    ("atomic_io", 1),
    ("npz_files", 1),
    ("devices", 1),
    ("geometry", 1),
    ("evaluation", 1),
    ("data", 1),
    ("registry", 2),
    ("body", 2),
    ("text", 2),
    ("rendering", 3),
    ("text.captioning", 3),
    ("text.correcting", 3),
    ("datasets", 4),
    ("models", 5.0),
    ("assisting_models", 5.1),
    ("encoders", 5.2),
    ("model", 5.2),
    ("downstream", 5.2),
    ("representation", 5.3),
    ("features", 5.3),
    ("compat", 5.3),
    ("training", 6),
    ("datasets.visualize", 7.1),
    ("demos", 7.1),
    ("quickstart", 7.2),
    ("cli", 7.3),
    ("__main__", 7.3),
)
SCRIPT_FLOOR = 7.0
DEMO_FLOOR = 7.1
IMPORTERS_OF_SCRIPTS = ("quickstart", "cli", "__main__")


@dataclass(frozen=True)
class Violation:
    importer: str
    imported: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}: {self.why}"


def module_name(path: Path, src_root: Path) -> str:
    """`src/poseembroider/models/losses.py` -> `poseembroider.models.losses` (a package is its `__init__`)."""
    parts = list(path.relative_to(src_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_script(module: str, packages: frozenset[str] = frozenset()) -> bool:
    return module not in packages and SCRIPT_NAME.match(module.rsplit(".", 1)[-1]) is not None


def floor_of(module: str, packages: frozenset[str] = frozenset()) -> float | None:
    """The floor of a `poseembroider.*` module, or None when no floor is assigned to it."""
    relative = module.removeprefix(PACKAGE).lstrip(".")
    if not relative:
        return None  # the package root: its exports are lazy and it is exempt
    leaf = relative.rsplit(".", 1)[-1]
    if is_script(module, packages):
        return SCRIPT_FLOOR
    if leaf.startswith(("demo_", "visualize_")):
        return DEMO_FLOOR
    best: tuple[int, float] | None = None
    for prefix, floor in FLOOR_BY_PREFIX:
        if relative == prefix or relative.startswith(prefix + "."):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), floor)
    return None if best is None else best[1]


def imported_modules(tree: ast.AST, known: set[str]) -> list[tuple[str, int]]:
    """Every `poseembroider` module the tree imports, with its line (`from pkg import sub` names `pkg.sub`
    when `sub` is a module, `pkg` otherwise)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.append((candidate if candidate in known else node.module, node.lineno))
    return found


def violations(src_root: Path = SRC_ROOT) -> tuple[list[Violation], list[str]]:
    """(imports that break a rule, modules without a floor) of the package under `src_root`."""
    files = sorted((src_root / PACKAGE).rglob("*.py"))
    modules = {module_name(path, src_root): path for path in files}
    packages = frozenset(m for m, path in modules.items() if path.name == "__init__.py")
    broken: list[Violation] = []
    unplaced = sorted(m for m in modules if m != PACKAGE and floor_of(m, packages) is None)
    for importer, path in modules.items():
        importer_floor = floor_of(importer, packages)
        if importer_floor is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for imported, line in sorted(set(imported_modules(tree, set(modules)))):
            imported_floor = floor_of(imported, packages)
            if imported_floor is not None and imported_floor > importer_floor:
                why = f"floor {imported_floor:g} is above the importer's floor {importer_floor:g}"
                broken.append(Violation(importer, imported, line, why))
            elif is_script(imported, packages) and imported != importer:
                relative = importer.removeprefix(PACKAGE + ".")
                if not relative.startswith(IMPORTERS_OF_SCRIPTS):
                    why = "a script is imported outside quickstart/ and cli: move what it shares into the library"
                    broken.append(Violation(importer, imported, line, why))
    return broken, unplaced


def test_every_module_has_a_floor() -> None:
    _, unplaced = violations()
    header = "modules with no floor (add them to FLOOR_BY_PREFIX, as DESIGN.md §3 places them):\n"
    assert not unplaced, header + "\n".join(unplaced)


def test_no_module_imports_a_floor_above_it() -> None:
    broken, _ = violations()
    assert not broken, "imports that run upward or into a script:\n" + "\n".join(map(str, broken))


def _plant(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / PACKAGE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_an_upward_import_is_reported(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "__init__.py": "",
            "models/__init__.py": "",
            "models/losses.py": "from poseembroider.training import trainer\n",
            "training/__init__.py": "",
            "training/trainer.py": "from poseembroider.models import losses\n",
        },
    )
    broken, unplaced = violations(tmp_path)
    assert unplaced == []
    assert [(v.importer, v.imported, v.line) for v in broken] == [
        ("poseembroider.models.losses", "poseembroider.training.trainer", 1)
    ]


def test_a_local_import_counts_too(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "__init__.py": "",
            "text/__init__.py": "",
            "text/tokens.py": "def f():\n    from poseembroider.datasets.registry import get_dataset\n",
            "datasets/__init__.py": "",
            "datasets/registry.py": "",
        },
    )
    broken, _ = violations(tmp_path)
    assert [(v.importer, v.imported, v.line) for v in broken] == [
        ("poseembroider.text.tokens", "poseembroider.datasets.registry", 2)
    ]


def test_a_script_imported_by_a_library_module_or_another_script_is_reported(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "__init__.py": "",
            "train_core.py": "from poseembroider.train_other import helper\n",
            "train_other.py": "",
            "quickstart/__init__.py": "from poseembroider import train_core\n",
        },
    )
    broken, _ = violations(tmp_path)
    assert [(v.importer, v.imported) for v in broken] == [("poseembroider.train_core", "poseembroider.train_other")]


def test_a_module_outside_every_floor_is_reported(tmp_path: Path) -> None:
    _plant(tmp_path, {"__init__.py": "", "misc/helpers.py": ""})
    _, unplaced = violations(tmp_path)
    assert unplaced == ["poseembroider.misc.helpers"]


@pytest.mark.parametrize(
    ("module", "floor"),
    [
        ("poseembroider.text.tokenization", 2),
        ("poseembroider.text.captioning.posecodes", 3),
        ("poseembroider.datasets.visualize.browse_script", 7.1),
        ("poseembroider.assisting_models.poseVAE.train_poseVAE", 7.0),
        ("poseembroider.assisting_models.poseVAE.model_poseVAE", 5.1),
        ("poseembroider.model", 5.2),
        ("poseembroider.models.losses", 5.0),
        ("poseembroider.demo_core", 7.1),
        ("poseembroider.datasets.cache_format", 4),
        ("poseembroider.downstream.cache_intermodality_features", 7.0),
    ],
)
def test_floors_follow_the_design(module: str, floor: float) -> None:
    assert floor_of(module) == floor
