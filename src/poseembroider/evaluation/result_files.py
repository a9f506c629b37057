"""Evaluation result files written next to a checkpoint: `result_<split>_<dataset>.json`.

A result file records the evaluation settings with the metrics; an evaluation asked again with the same
settings reuses it instead of recomputing (`--overwrite` in the scripts forces a new one). An evaluation
reads `reusable_result` first, and `save_result` writes what it computed, with the checkpoint's epoch.
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


def reusable_result(
    model_dir: str | os.PathLike, split: str, dataset: str, settings: dict[str, Any], overwrite: bool = False
) -> dict[str, Any] | None:
    """The result file of this evaluation when one was computed with exactly `settings` (None when there is
    none, or under `overwrite`)."""
    return None if overwrite else previous_result(result_path(model_dir, split, dataset), settings)


def checkpoint_epoch(model_dir: str | os.PathLike) -> int | None:
    """The epoch of the checkpoint in `model_dir` (from the `metrics.json` the Trainer writes beside its
    weights); None for a folder without one (a model saved by hand, a released checkpoint)."""
    metrics_file = Path(model_dir) / "metrics.json"
    return json.loads(metrics_file.read_text()).get("epoch") if metrics_file.is_file() else None


def save_result(
    model_dir: str | os.PathLike,
    split: str,
    dataset: str,
    settings: dict[str, Any],
    size: int,
    metrics: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """Write the result file of an evaluation of `size` items and return its content: `model_dir`, `epoch`
    (`checkpoint_epoch`), `dataset`, `split`, `size`, `settings`, `metrics`, then the `extra` keys."""
    result = {
        "model_dir": str(model_dir),
        "epoch": checkpoint_epoch(model_dir),
        "dataset": dataset,
        "split": split,
        "size": size,
        "settings": settings,
        "metrics": metrics,
        **extra,
    }
    write_result(result_path(model_dir, split, dataset), result)
    return result
