"""After `Trainer.fit()`: find the best checkpoint of a run, register it under a shortname, report the run.

`fit_and_publish` is what every `train_*` script does with a model and its datasets: fit with the one
Trainer, then `publish_best`; `run_report` is the summary the scripts print as JSON (`print_report`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from poseembroider.devices import is_main_process
from poseembroider.registry import register
from poseembroider.training.config import TrainerConfig
from poseembroider.training.trainer import Callback, Trainer

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
    best_dir, best_metrics = best_checkpoint(output_dir)
    summary.update(best_dir=str(best_dir), best_metrics=best_metrics, shortname=None)
    if shortname and is_main:
        registry_file = register(shortname, best_dir)
        summary["shortname"] = shortname
        logger.info("registered %s -> %s in %s", shortname, best_dir, registry_file)
    return summary


def fit_and_publish(
    model: nn.Module,
    trainer_config: TrainerConfig,
    train_dataset: Dataset,
    val_dataset: Dataset | None,
    shortname: str | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train `model` with the one Trainer, then `publish_best`: the Trainer summary plus `best_dir`,
    `best_metrics`, `shortname` (registered on the main process when given), `train_size`, `val_size` and
    `output_dir`."""
    trainer = Trainer(model, train_dataset, val_dataset, trainer_config, collate_fn, callbacks)
    summary = publish_best(trainer.fit(), trainer_config.output_dir, shortname, trainer.is_main)
    summary.update(
        train_size=len(train_dataset),  # type: ignore[arg-type]
        val_size=len(val_dataset) if val_dataset is not None else 0,  # type: ignore[arg-type]
        output_dir=trainer_config.output_dir,
    )
    return summary


def print_report(report: dict[str, Any]) -> None:
    """Print `report` as JSON on the main process only (one report per run under torchrun)."""
    if is_main_process():
        print(json.dumps(report, indent=2))


def run_report(summary: dict[str, Any]) -> dict[str, Any]:
    """What a `train_*` script prints (as JSON) from a `fit_and_publish` summary: folders, best epoch,
    shortname, dataset sizes and the best checkpoint's validation metrics (`val_metrics`)."""
    return {
        "output_dir": summary["output_dir"],
        "best_dir": summary["best_dir"],
        "best_epoch": summary["best_epoch"],
        "shortname": summary["shortname"],
        "train_size": summary["train_size"],
        "val_size": summary["val_size"],
        "val_metrics": summary["best_metrics"],
    }
