"""Training logs: one JSON object per line in `log.jsonl`, mirrored to TensorBoard.

Lines have `"kind": "step"` (every `log_step` steps: step scalars, lr) or `"kind": "epoch"` (epoch means
of the training outputs as `train/<name>`, validation metrics as `val/<name>`, lr, wall time). Only the
main process writes; on resume new lines are appended.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # strict JSON has no NaN / inf
    return value


class RunLog:
    """Appends JSON lines to `<output_dir>/log.jsonl` and scalars to `<output_dir>/tensorboard/`."""

    def __init__(self, output_dir: str | Path, tensorboard: bool = True, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / "log.jsonl"
        self._writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # slow import: only when used
            except ImportError as err:  # tensorboard not installed: keep training, say so once
                logger.warning("no TensorBoard logs (%s); install tensorboard or pass --no_tensorboard", err)
            else:
                self._writer = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """One JSON line (`kind`, `step` and `values`); numeric values also go to TensorBoard at `step`."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, **{k: _jsonable(v) for k, v in values.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            prefix = "step/" if kind == "step" else ""
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in ("epoch", "step"):
                    self._writer.add_scalar(prefix + name, value, global_step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
