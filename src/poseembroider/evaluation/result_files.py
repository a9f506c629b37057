"""Evaluation result files written next to a checkpoint: `result_<split>_<dataset>.json`.

A result file records the evaluation settings with the metrics; an evaluation asked again with the same
settings reuses it instead of recomputing (`--overwrite` in the scripts forces a new one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from poseembroider.atomic_io import write_json_atomic


def result_path(model_dir: str | os.PathLike, split: str, dataset: str) -> Path:
    """`<model_dir>/result_<split>_<dataset>.json`."""
    return Path(model_dir) / f"result_{split}_{dataset}.json"


def previous_result(path: str | os.PathLike, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The content of result file `path` when it exists and was computed with exactly `settings`."""
    path = Path(path)
    if not path.is_file():
        return None
    previous = json.loads(path.read_text())
    return previous if previous.get("settings") == settings else None


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write `result` as JSON to `path` atomically (temporary name in the same folder, then rename)."""
    return write_json_atomic(path, result)
