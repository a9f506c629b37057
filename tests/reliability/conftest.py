"""The reliability cases and their recorder.

Every test of this folder carries `@pytest.mark.reliability(area, subject)`: `area` is one of `AREAS` (a row
group of RELIABILITY.md), `subject` says what was tried (a script, a reader, a demo). A test counts the cases
it tries with the `cases` fixture (`cases.tried()` per kill point, fuzzed file, upload, ...; a test that counts
nothing is one case). When `POSEEMBROIDER_RELIABILITY_LOG` names a file, each test appends one JSON line to it:
its node id, area, subject, cases tried, and outcome; `tools/reliability_report.py` runs this folder with that
variable set and turns the lines into RELIABILITY.md. A failing test stops at its first failure, so it reports
its cases up to that one as held and that one as not held.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

AREAS = ("kills", "full_disk", "concurrency", "bad_inputs", "hostile_files", "uploads")
LOG_VARIABLE = "POSEEMBROIDER_RELIABILITY_LOG"


class CaseCounter:
    """How many cases one test tried (kill points, fuzzed inputs, uploads); 1 when the test counts nothing."""

    def __init__(self) -> None:
        self.count = 0

    def tried(self, n: int = 1) -> None:
        """Count `n` more cases; call it once a case has been set up, before checking what held."""
        if n < 1:
            raise ValueError(f"cases.tried(n): n must be >= 1, got {n}")
        self.count += n

    @property
    def total(self) -> int:
        return max(self.count, 1)


def _reliability_marker(item: pytest.Item) -> pytest.Mark:
    marker = item.get_closest_marker("reliability")
    if marker is None:
        raise pytest.UsageError(f"{item.nodeid}: every test of tests/reliability needs @pytest.mark.reliability")
    area = marker.kwargs.get("area", marker.args[0] if marker.args else None)
    if area not in AREAS:
        raise pytest.UsageError(f"{item.nodeid}: reliability area {area!r} is not one of {AREAS}")
    return marker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "reliability" or "/reliability/" in str(item.fspath):
            _reliability_marker(item)


def _short_reason(report: pytest.TestReport) -> str:
    """One line saying why a case did not hold: the crash message of a failure, the reason of a skip."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.splitlines()[0]
    if isinstance(report.longrepr, tuple):  # a skip: (file, line, reason)
        return str(report.longrepr[-1])
    return str(report.longrepr).splitlines()[-1] if report.longrepr else ""


@pytest.fixture
def cases(request) -> CaseCounter:
    """The case counter of this test (see the module docstring)."""
    counter = CaseCounter()
    request.node._reliability_cases = counter
    return counter


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    log = os.environ.get(LOG_VARIABLE)
    if not log or report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    marker = _reliability_marker(item)
    counter = getattr(item, "_reliability_cases", None)
    tried = counter.total if counter is not None else 1
    failed = report.outcome == "failed"
    xfail_reason = getattr(report, "wasxfail", None)
    skipped = report.outcome == "skipped" and xfail_reason is None
    if skipped:
        tried = 0
    record = {
        "nodeid": item.nodeid,
        "area": marker.kwargs.get("area", marker.args[0] if marker.args else None),
        "subject": marker.kwargs.get("subject", marker.args[1] if len(marker.args) > 1 else item.name),
        "tried": tried,
        "held": max(tried - 1, 0) if failed or xfail_reason is not None else tried,
        "outcome": "xfailed" if xfail_reason is not None else report.outcome,
        "reason": xfail_reason or (_short_reason(report) if failed or skipped else ""),
        "slow": item.get_closest_marker("slow") is not None,
    }
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
