"""After `Trainer.fit()`: find the best checkpoint of a run and register it under a shortname."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def best_checkpoint(output_dir: str | Path) -> tuple[Path, dict[str, float]]:
    """(`best/`, its validation metrics) of a finished run; (`last/`, {}) when no validation ran."""
    output_dir = Path(output_dir)
    metrics_file = output_dir / "best" / "metrics.json"
    if not metrics_file.is_file():
        return output_dir / "last", {}
    return output_dir / "best", json.loads(metrics_file.read_text())["metrics"]


def publish_best(summary: dict[str, Any], output_dir: str | Path, shortname: str | None, is_main: bool) -> dict:
    """`summary` (the Trainer's) plus `best_dir`, `best_metrics` and `shortname`, the best checkpoint
    registered under `shortname` by the main process (None / '' : not registered)."""
    from poseembroider.registry import register

    best_dir, best_metrics = best_checkpoint(output_dir)
    summary.update(best_dir=str(best_dir), best_metrics=best_metrics, shortname=None)
    if shortname and is_main:
        registry_file = register(shortname, best_dir)
        summary["shortname"] = shortname
        logger.info("registered %s -> %s in %s", shortname, best_dir, registry_file)
    return summary
