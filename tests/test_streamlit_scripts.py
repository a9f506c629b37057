"""Streamlit scripts: no stray module-level expression that streamlit's "magic" would print on the page.

`streamlit run` shows every bare expression statement of the script it runs (a string after a constant, meant
as its docstring, appeared at the top of the retrieval demo in the browser); AppTest does not flag it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "poseembroider"
SCRIPTS = sorted(p for p in SOURCE.rglob("*.py") if "import streamlit" in p.read_text(encoding="utf-8"))


def test_the_streamlit_scripts_are_found():
    names = {p.name for p in SCRIPTS}
    assert {"demo_core.py", "visualize_dataset_script.py", "visualize_dataset_fix.py"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_module_level_expression_but_the_docstring(script):
    body = ast.parse(script.read_text(encoding="utf-8")).body
    stray = [
        node.lineno
        for index, node in enumerate(body)
        if isinstance(node, ast.Expr)
        and not isinstance(node.value, ast.Call)  # calls (main(), st.title(...)) are not shown
        and not (index == 0 and isinstance(node.value, ast.Constant))
    ]
    assert not stray, f"{script}: module-level expressions at lines {stray} would be rendered by streamlit"
