"""The recorder itself: a case counted with `cases` reaches the log that RELIABILITY.md is rendered from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.reliability(area="bad_inputs", subject="the recorder (a passing, a failing and an uncounted test)")
def test_recorder_logs_cases_and_failures(tmp_path, cases):
    cases.tried()
    (tmp_path / "conftest.py").write_text((Path(__file__).parent / "conftest.py").read_text())
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "@pytest.mark.reliability(area='kills', subject='s')\n"
        "def test_passes(cases):\n    cases.tried(3)\n"
        "@pytest.mark.reliability(area='uploads', subject='u')\n"
        "def test_fails(cases):\n    cases.tried(2)\n    assert False, 'broke'\n"
        "@pytest.mark.reliability(area='full_disk', subject='d')\n"
        "def test_uncounted():\n    pass\n"
    )
    log = tmp_path / "log.jsonl"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**__import__("os").environ, "POSEEMBROIDER_RELIABILITY_LOG": str(log)},
        capture_output=True,
    )
    records = {r["nodeid"].split("::")[-1]: r for r in map(json.loads, log.read_text().splitlines())}
    assert (records["test_passes"]["tried"], records["test_passes"]["held"]) == (3, 3)
    assert (records["test_fails"]["tried"], records["test_fails"]["held"]) == (2, 1)
    assert records["test_fails"]["outcome"] == "failed"
    assert (records["test_uncounted"]["tried"], records["test_uncounted"]["held"]) == (1, 1)
    sys.path.insert(0, str(ROOT / "tools"))
    from reliability_report import render

    table = render(list(records.values()), "cmd")
    assert "**5 of 6 cases held** over 3 tests." in table
    assert "test_fails` | failed | AssertionError: broke" in table.split("## Cases that did not hold")[1]
