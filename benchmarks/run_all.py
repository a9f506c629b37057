"""Run every `bench_*.py` here, then write BENCHMARKS.md from `results/*.json`.

.venv/bin/python benchmarks/run_all.py            # run all, then report
.venv/bin/python benchmarks/run_all.py --report   # only rebuild BENCHMARKS.md from existing results
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPORT = HERE.parent / "BENCHMARKS.md"


def _title(script: Path) -> str:
    doc = ast.get_docstring(ast.parse(script.read_text())) or script.stem
    return doc.strip().splitlines()[0]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _section(script: Path, result: dict) -> str:
    lines = [f"## {result['benchmark']}: {_title(script)}", ""]
    machine = result.get("machine", {})
    lines.append(
        f"Measured on {machine.get('cpu_count')} CPU cores ({machine.get('torch_threads')} torch threads), "
        f"torch {machine.get('torch')}, Python {machine.get('python')}; ours and the baseline in the same run."
    )
    lines += ["", "| | |", "| --- | --- |"]
    for key in ("ours", "baseline"):
        if key in result:
            lines.append(f"| {key} | {result[key]} |")
    for key, value in result.items():
        if key in ("benchmark", "machine", "ours", "baseline"):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
        lines.append(f"| {key} | {_fmt(value)} |")
    lines.append("")
    return "\n".join(lines)


def write_report() -> Path:
    sections = []
    for script in sorted(HERE.glob("bench_*.py")):
        result_file = HERE / "results" / f"{script.stem.removeprefix('bench_')}.json"
        if result_file.exists():
            sections.append(_section(script, json.loads(result_file.read_text())))
        else:
            sections.append(f"## {script.stem}\n\nNot run yet: `.venv/bin/python benchmarks/{script.name}`.\n")
    header = (
        "# Benchmarks\n\n"
        "Speed and memory of the toolkit, each measured as a ratio against a baseline in the same run\n"
        "(`make bench` reruns everything and rewrites this file from `benchmarks/results/*.json`).\n"
        "A ratio above 1 means ours is faster.\n\n"
    )
    REPORT.write_text(header + "\n".join(sections))
    return REPORT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="only rebuild BENCHMARKS.md")
    args = parser.parse_args()
    failed = []
    if not args.report:
        for script in sorted(HERE.glob("bench_*.py")):
            print(f"== {script.name}", flush=True)
            if subprocess.run([sys.executable, str(script)], cwd=HERE).returncode != 0:
                failed.append(script.name)
    print(f"wrote {write_report()}")
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
