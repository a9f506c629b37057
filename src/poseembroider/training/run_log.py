"""Training logs: one JSON object per line in `log.jsonl`, mirrored to TensorBoard.

Lines have `"kind": "step"` (every `log_step` steps: step scalars, lr) or `"kind": "epoch"` (epoch means
of the training outputs as `train/<name>`, validation metrics as `val/<name>`, lr, wall time). Only the
main process writes. A run started with `--resume` (`resume_step`: the step it resumes from, 0 without a
checkpoint yet) first drops the lines past that point (those the interrupted run wrote after its last
checkpoint, redone now) and has TensorBoard purge those events, so the log of a resumed run reads as the
uninterrupted one's; a run without `--resume` appends.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

from poseembroider.atomic_io import disk_full_named, is_disk_full, write_text_atomic

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # strict JSON has no NaN / inf
    return value


def epoch_records(output_dir: str | Path) -> list[dict[str, Any]]:
    """The `"kind": "epoch"` records of `<output_dir>/log.jsonl`, in order ([] without a log): every epoch of a
    run, including those of the runs it resumed (a cut or unreadable line is skipped)."""
    path = Path(output_dir) / "log.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") == "epoch":
            records.append(record)
    return records


class RunLog:
    """Appends JSON lines to `<output_dir>/log.jsonl` and scalars to `<output_dir>/tensorboard/`."""

    def __init__(
        self, output_dir: str | Path, tensorboard: bool = True, enabled: bool = True, resume_step: int | None = None
    ) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / "log.jsonl"
        self.tensorboard_dir = Path(output_dir) / "tensorboard"
        self._writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            self._drop_after(resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # slow import: only when used
            except ImportError as err:  # tensorboard not installed: keep training, say so once
                logger.warning("no TensorBoard logs (%s); install tensorboard or pass --no_tensorboard", err)
            else:
                purge = None if resume_step is None else resume_step + 1
                _quiet_full_disk_in_writer_threads()
                with disk_full_named(self.tensorboard_dir):
                    self._writer = SummaryWriter(log_dir=str(self.tensorboard_dir), purge_step=purge)

    def _drop_after(self, step: int) -> None:
        """Keep the lines of `log.jsonl` whose step is at most `step` (and unreadable whole lines; a cut last line
        goes)."""
        if not self.path.is_file():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = []
        for line in lines:
            try:
                record_step = json.loads(line).get("step")
            except (json.JSONDecodeError, AttributeError):
                if not line.endswith("\n"):
                    continue  # the line the killed run was writing
                record_step = None
            if not (isinstance(record_step, int) and record_step > step):
                kept.append(line if line.endswith("\n") else line + "\n")
        if kept != lines:
            logger.info(
                "%s: dropped %d line(s) past the resume point (step %d)", self.path, len(lines) - len(kept), step
            )
            write_text_atomic(self.path, "".join(kept))

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """One JSON line (`kind`, `step` and `values`); numeric values also go to TensorBoard at `step`."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, **{k: _jsonable(v) for k, v in values.items()}}
        with disk_full_named(self.path), self.path.open("a") as f:  # a line cut by a full disk goes on --resume
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            prefix = "step/" if kind == "step" else ""
            scalars = {
                name: value
                for name, value in values.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in ("epoch", "step")
            }
            with disk_full_named(self.tensorboard_dir):  # its thread's error comes back here, or at close
                for name, value in scalars.items():
                    self._writer.add_scalar(prefix + name, value, global_step=step)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with disk_full_named(self.tensorboard_dir):
                writer.flush()
                writer.close()


def _quiet_full_disk_in_writer_threads() -> None:
    """TensorBoard writes its events from a thread of its own; when the disk fills, that thread dies printing its
    traceback before the main thread meets the error (re-raised by the next `add_scalar` or `flush`, then reported
    in one line as a `DiskFullError` naming the folder). This hook leaves that thread's disk-full errors unprinted;
    every other thread exception goes to the previous hook. Installed once per process."""
    previous = threading.excepthook
    if getattr(previous, "quiet_full_disk", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ == "_AsyncWriterThread" and args.exc_value is not None:
            if is_disk_full(args.exc_value):
                return
        previous(args)

    hook.quiet_full_disk = True  # type: ignore[attr-defined]
    threading.excepthook = hook
