"""One training loop for every model of the toolkit.

The Trainer knows a model only through these methods (it imports no model and no dataset class):

- `training_step(batch) -> dict[str, Tensor]` (required): must hold a scalar `"loss"` to minimise; the
  other scalar entries are logged as `train/<name>`.
- `validation_step(batch) -> dict[str, Tensor | float]` (required with a val set): scalar entries are
  averaged over the split (weighted by batch size); other entries (e.g. `(B, D)` embeddings) are kept
  for `validation_epoch_end`.
- `validation_epoch_end(outputs: list[dict]) -> dict[str, float]` (optional): metrics over the whole
  split (retrieval recalls ...), merged into the averages.
- `param_groups(lr, wd) -> list[dict]` (optional): optimizer parameter groups (default: one group of all
  trainable parameters).
- `on_train_epoch_start(epoch)` (optional): called before each epoch (0-based), e.g. to re-freeze modules.
- `save_pretrained(dir)` (optional): used for checkpoints (see `models.pretrained`); plain modules get a
  bare `model.safetensors`.

`batch` is what the DataLoader yields (through `collate_fn`), moved to the device (tensors inside dicts,
lists and tuples). Validation runs on the main process only, in eval mode, under `torch.no_grad()` and
`models.losses.local_only()` (no cross-rank gathering).

Outputs in `config.output_dir`: `best/` (weights of the best validation `best_metric`, + `metrics.json`),
`last/` (weights + `training_state.pt`, replaced atomically at the end of every epoch: resume point),
`epoch_<k>/` every `saving_ckpt_step` epochs, `log.jsonl`, `tensorboard/`, `trainer_config.json`.

Reproducibility: the data order of epoch e is `DistributedSampler(seed=seed).set_epoch(e)` (also in a
single process), the DataLoader generator is re-seeded from `(seed, e)`, datasets with a `set_epoch` are
told the epoch, and the global RNG states and the training set's own generators (`rng_state()`, see
`training.state`) of every rank are saved with the training state, so a run interrupted and resumed
(`--resume`) ends with the same weights as an uninterrupted one (bit for bit on CPU; with `--deterministic`
on GPUs). The resume point is the end of the last finished epoch: a run killed in the middle of an epoch
redoes that epoch from its start, drawing what the uninterrupted run drew (same sampler order, same
dataset and dropout draws). The log lines the killed run wrote past that point are dropped (`RunLog`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from poseembroider.atomic_io import atomic_directory, clean_up_after_dead_writers, exclusive_lock, write_json_atomic
from poseembroider.devices import barrier
from poseembroider.models.losses import local_only
from poseembroider.models.pretrained import (
    WEIGHTS_NAME,
    load_state_dict_checked,
    load_state_dict_file,
    save_state_dict,
)
from poseembroider.training import distributed as ddp
from poseembroider.training.config import TrainerConfig
from poseembroider.training.run_log import RunLog
from poseembroider.training.schedules import build_scheduler
from poseembroider.training.state import (
    STATE_FORMAT_VERSION,
    TRAINING_STATE_NAME,
    capture_dataset_state,
    capture_rng_state,
    load_training_state,
    restore_dataset_state,
    restore_rng_state,
    save_training_state,
    seed_everything,
    seed_worker,
    set_dataset_epoch,
    unsaved_generators,
)

logger = logging.getLogger(__name__)

Callback = Callable[["Trainer", str, dict[str, Any]], None]
"""`callback(trainer, event, logs)`, event 'step_end' (logs: step scalars) or 'epoch_end' (epoch record)."""


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors inside (nested) dicts, lists and tuples moved to `device`; everything else unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not isinstance(batch, str):
        moved = [move_to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


def batch_size_of(batch: Any) -> int:
    """Leading size of the first tensor (or list) found in the batch; 1 if there is none."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, Mapping):
        for value in batch.values():
            if isinstance(value, (torch.Tensor, Mapping)):
                return batch_size_of(value)
        for value in batch.values():
            if isinstance(value, (list, tuple)):
                return len(value)
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size_of(batch[0]) if isinstance(batch[0], (torch.Tensor, Mapping)) else len(batch)
    return 1


def scalars_of(outputs: Mapping[str, Any]) -> dict[str, float]:
    """The one-element tensors and numbers of a step's outputs, as floats."""
    out = {}
    for name, value in outputs.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[name] = float(value.detach())
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
"""`--optimizer` choices."""


def build_optimizer(groups: list[dict[str, Any]], name: str, lr: float, wd: float) -> torch.optim.Optimizer:
    """The `name` optimizer over parameter groups, fused (one kernel for all the parameters) when they allow it.

    The fused Adam applies the same update as the default per-tensor loop, in fewer passes over memory: with it
    the Aligner's compact training step (3.3M parameters, batch 32, one thread; nothing else changed for that
    step) went from 1,146 to 1,419 samples/s (benchmarks/results/core.json)."""
    params = [p for group in groups for p in group["params"]]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return OPTIMIZER_CLASSES[name](groups, lr=lr, weight_decay=wd, fused=fused)


class _TrainingStep(nn.Module):
    """Routes DDP's forward to `model.training_step`, so DDP's gradient hooks see the step."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> Any:
        return self.model.training_step(batch)


class Trainer:
    """Fit `model` on `train_dataset`, validating on `val_dataset` (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        train_dataset: Dataset,
        val_dataset: Dataset | None = None,
        config: TrainerConfig | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.config = config or TrainerConfig()
        if not self.config.output_dir:
            raise ValueError("TrainerConfig.output_dir is empty: set --output_dir (where checkpoints and logs go)")
        if not callable(getattr(model, "training_step", None)):
            raise TypeError(f"{type(model).__name__} has no training_step(batch) method: the Trainer needs one")
        if val_dataset is not None and not callable(getattr(model, "validation_step", None)):
            raise TypeError(f"{type(model).__name__} has no validation_step(batch) method, but a val set was given")
        self.info = ddp.init_distributed(self.config.device)
        self.device = self.info.device
        self.is_main = self.info.rank == 0
        self.model = model.to(self.device)
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.collate_fn = collate_fn
        self.callbacks = list(callbacks)
        self.output_dir = Path(self.config.output_dir)

        # data order = f(seed, epoch), identical in 1 or N processes (N interleaved shards of one permutation)
        self.sampler = DistributedSampler(
            train_dataset,
            num_replicas=self.info.world_size,
            rank=self.info.rank,
            shuffle=True,
            seed=self.config.seed,
            drop_last=False,
        )
        self.generator = torch.Generator()
        self.train_loader = DataLoader(
            train_dataset,
            batch_size=self.config.batch_size,
            sampler=self.sampler,
            collate_fn=collate_fn,
            num_workers=self.config.num_workers,
            drop_last=self.config.drop_last,
            worker_init_fn=seed_worker,
            generator=self.generator,
            pin_memory=self.device.type == "cuda",
        )
        unsaved = unsaved_generators(train_dataset)
        if unsaved and self.is_main:
            logger.warning(
                "the training set holds random generators that are neither saved (rng_state) nor re-seeded per "
                "epoch (set_epoch): %s; a run resumed with --resume will not draw what an uninterrupted one does",
                ", ".join(unsaved),
            )
        if len(self.train_loader) == 0:
            raise ValueError(
                f"the training set ({len(train_dataset)} samples over {self.info.world_size} process(es)) gives "
                f"no batch of --batch_size {self.config.batch_size} (drop_last={self.config.drop_last})"
            )
        self.optimizer = self._build_optimizer()
        self.scheduler = build_scheduler(self.optimizer, self.config, len(self.train_loader))
        self.epoch = 0  # completed epochs
        self.global_step = 0  # optimisation steps taken
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.last_metrics: dict[str, float] = {}
        self._step_module: nn.Module | None = None
        self._log: RunLog | None = None

    # ------------------------------------------------------------------ setup

    def _build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if callable(getattr(self.model, "param_groups", None)):
            groups = [dict(g) for g in self.model.param_groups(cfg.lr, cfg.wd)]
        else:
            groups = [{"params": list(self.model.parameters())}]
        for group in groups:
            group["params"] = [p for p in group["params"] if p.requires_grad]
        groups = [g for g in groups if g["params"]]
        if not groups:
            raise ValueError(f"{type(self.model).__name__} has no trainable parameter (all requires_grad=False)")
        return build_optimizer(groups, cfg.optimizer, cfg.lr, cfg.wd)

    @property
    def lr(self) -> float:
        """Current LR of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _trainable_parameters(self) -> list[nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    # ------------------------------------------------------------------ main loop

    def fit(self) -> dict[str, Any]:
        """Train up to `config.epochs` (resuming first with `--resume`); returns a summary
        `{epoch, global_step, best_metric, best_score, best_epoch, last_metrics}`.

        The main process holds the lock of `output_dir` (`atomic_io.exclusive_lock`) while it trains: a second
        run into the same folder is refused at once (`OutputLockedError` naming the folder and the pid training
        there) instead of interleaving its checkpoints with this run's."""
        lock = exclusive_lock(self.output_dir, "training output folder") if self.is_main else contextlib.nullcontext()
        with lock:
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        cfg = self.config
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        cudnn_flags = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
        if cfg.deterministic:
            if self.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        self._log = None
        if self.is_main:  # a killed run's temporaries go, and a checkpoint it had moved aside comes back
            clean_up_after_dead_writers(self.output_dir)
        try:
            resumed = self._resume()
            if not resumed:
                seed_everything(cfg.seed + self.info.rank)
            resume_step = self.global_step if cfg.resume else None  # --resume: the log rewinds to the start point
            self._log = RunLog(self.output_dir, cfg.tensorboard, enabled=self.is_main, resume_step=resume_step)
            if self.is_main:
                write_json_atomic(self.output_dir / "trainer_config.json", dataclasses.asdict(cfg))
            self._step_module = ddp.wrap_ddp(_TrainingStep(self.model), self.device, cfg.find_unused_parameters)
            for epoch in range(self.epoch, cfg.epochs):
                self._run_epoch(epoch)
            barrier()
        finally:
            self._step_module = None  # the DDP wrapper goes before the process group (see destroy_distributed)
            torch.use_deterministic_algorithms(was_deterministic)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn_flags
            if self._log is not None:
                self._log.close()
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_metric": cfg.best_metric,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "last_metrics": dict(self.last_metrics),
        }

    def _run_epoch(self, epoch: int) -> None:
        cfg = self.config
        start = time.time()
        lr = self.lr
        train_metrics = self.train_epoch(epoch)
        if cfg.scheduler_interval == "epoch":
            self.scheduler.step()
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **{f"train/{k}": v for k, v in train_metrics.items()}}
        improved = False
        if self.val_dataset is not None and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
            metrics = self.validate()
            if self.is_main:
                self.last_metrics = metrics
                improved = self._update_best(metrics, epoch + 1)
                record.update({f"val/{k}": v for k, v in metrics.items()})
        self.epoch = epoch + 1
        record["time_s"] = round(time.time() - start, 3)
        if self._log is not None:  # before the checkpoint: a run killed in between redoes the epoch, line and all
            self._log.write("epoch", self.global_step, record)
        self._save_checkpoints(improved)
        if self.is_main:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float) and k != "time_s")
            logger.info("epoch %d/%d: %s", epoch + 1, cfg.epochs, shown)
        for callback in self.callbacks:
            callback(self, "epoch_end", record)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training data; returns the epoch means of the step scalars (over ranks)."""
        cfg = self.config
        step_module = self._step_module or _TrainingStep(self.model)
        self.model.train()
        if callable(getattr(self.model, "on_train_epoch_start", None)):
            self.model.on_train_epoch_start(epoch)
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(cfg.seed * 1_000_003 + epoch)
        set_dataset_epoch(self.train_dataset, epoch)
        sums: dict[str, float] = {}
        count = 0
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not (cfg.progress and self.is_main),
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            batch = move_to_device(batch, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            outputs = step_module(batch)
            loss = self._loss_of(outputs, epoch)
            loss.backward()
            scalars = scalars_of(outputs)
            if cfg.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(self._trainable_parameters(), cfg.grad_clip)
                scalars["grad_norm"] = float(norm)
            self.optimizer.step()
            if cfg.scheduler_interval == "step":
                self.scheduler.step()
            self.global_step += 1
            count += 1
            for name, value in scalars.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.set_postfix(loss=f"{scalars['loss']:.4g}", refresh=False)
            logs = {"epoch": epoch + 1, "lr": self.lr, **scalars}
            if self.global_step % cfg.log_step == 0 and self._log is not None:
                self._log.write("step", self.global_step, logs)
            for callback in self.callbacks:
                callback(self, "step_end", logs)
        return ddp.all_reduce_mean({k: v / count for k, v in sums.items()})

    def _loss_of(self, outputs: Any, epoch: int) -> torch.Tensor:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else None
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            keys = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
            raise TypeError(f"training_step must return a dict holding a scalar tensor 'loss'; got {keys}")
        if not torch.isfinite(loss.detach()).all():
            raise FloatingPointError(
                f"non-finite loss ({float(loss.detach())}) at epoch {epoch + 1}, step {self.global_step + 1}; "
                "lower --lr or set --grad_clip"
            )
        return loss.reshape(())

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation metrics over the whole val set, computed on the main process (others wait).

        Returns `{}` on the other ranks.
        """
        if self.val_dataset is None:
            return {}
        if not self.is_main:
            barrier()
            return {}
        cfg = self.config
        loader = DataLoader(
            self.val_dataset,
            batch_size=cfg.val_batch_size or cfg.batch_size,
            shuffle=False,
            collate_fn=self.collate_fn,
            num_workers=cfg.num_workers,
            worker_init_fn=seed_worker,
            pin_memory=self.device.type == "cuda",
        )
        epoch_end = getattr(self.model, "validation_epoch_end", None)
        keep = callable(epoch_end)
        kept: list[dict[str, Any]] = []
        sums: dict[str, float] = {}
        weight = 0
        was_training = self.model.training
        self.model.eval()
        try:
            with local_only():
                for batch in tqdm(loader, desc="validation", disable=not cfg.progress, leave=False):
                    batch = move_to_device(batch, self.device)
                    outputs = self.model.validation_step(batch)
                    size = batch_size_of(batch)
                    for name, value in scalars_of(outputs).items():
                        sums[name] = sums.get(name, 0.0) + value * size
                    weight += size
                    if keep:
                        kept.append({k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in outputs.items()})
                metrics = {k: v / max(weight, 1) for k, v in sums.items()}
                if keep:
                    metrics.update({k: float(v) for k, v in epoch_end(kept).items()})
        finally:
            self.model.train(was_training)
        barrier()
        return metrics

    def _update_best(self, metrics: Mapping[str, float], epoch: int) -> bool:
        cfg = self.config
        if cfg.best_metric not in metrics:
            raise KeyError(f"--best_metric {cfg.best_metric!r} is not among the validation metrics {sorted(metrics)}")
        score = float(metrics[cfg.best_metric])
        if not math.isfinite(score):
            return False
        better = (
            self.best_score is None
            or (cfg.best_mode == "max" and score > self.best_score)
            or (cfg.best_mode == "min" and score < self.best_score)
        )
        if better:
            self.best_score, self.best_epoch = score, epoch
        return better

    # ------------------------------------------------------------------ checkpoints

    def _write_weights(self, folder: Path) -> None:
        if callable(getattr(self.model, "save_pretrained", None)):
            self.model.save_pretrained(folder)
        else:
            save_state_dict(self.model.state_dict(), folder / WEIGHTS_NAME)

    def training_state(
        self, rng_states: list[dict[str, Any]], dataset_states: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Everything besides the weights that resuming needs (see `training.state`); `rng_states` and
        `dataset_states` hold one entry per rank (default for the latter: this process's)."""
        if dataset_states is None:
            dataset_states = [capture_dataset_state(self.train_dataset)]
        return {
            "format_version": STATE_FORMAT_VERSION,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_states,
            "sampler": {"seed": self.config.seed, "epoch": self.epoch, "generator": self.generator.get_state()},
            "datasets": dataset_states,
            "world_size": self.info.world_size,
            "config": dataclasses.asdict(self.config),
        }

    def _save_checkpoints(self, improved: bool) -> None:
        rng_states = ddp.all_gather_objects(capture_rng_state())  # collectives: every rank takes part
        dataset_states = ddp.all_gather_objects(capture_dataset_state(self.train_dataset))
        if self.is_main:
            if improved:
                with atomic_directory(self.output_dir / "best") as tmp:
                    self._write_weights(tmp)
                    payload = {"epoch": self.epoch, "metric": self.config.best_metric, "metrics": self.last_metrics}
                    (tmp / "metrics.json").write_text(json.dumps(payload, indent=2) + "\n")
            if self.epoch % self.config.saving_ckpt_step == 0:
                with atomic_directory(self.output_dir / f"epoch_{self.epoch}") as tmp:
                    self._write_weights(tmp)
            with atomic_directory(self.output_dir / "last") as tmp:
                self._write_weights(tmp)
                save_training_state(self.training_state(rng_states, dataset_states), tmp / TRAINING_STATE_NAME)
        barrier()

    def _resume(self) -> bool:
        """Load `last/` when `--resume` and it exists; returns whether training resumed."""
        last = self.output_dir / "last"
        state_path = last / TRAINING_STATE_NAME
        if not self.config.resume:
            return False
        if not state_path.is_file():
            if self.is_main:
                logger.info("--resume: no %s yet, starting from scratch", state_path)
            return False
        state = load_training_state(state_path)
        weights = load_state_dict_file(last / WEIGHTS_NAME, device=self.device)
        prefixes = tuple(getattr(self.model, "unsaved_prefixes", ()))
        load_state_dict_checked(self.model, weights, last / WEIGHTS_NAME, strict=True, allow_missing_prefixes=prefixes)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        rng = state["rng"]
        if len(rng) != self.info.world_size and self.is_main:
            logger.warning(
                "resuming %s written by %d process(es) with %d: RNG streams are reused, not continued exactly",
                state_path,
                len(rng),
                self.info.world_size,
            )
        restore_rng_state(rng[self.info.rank % len(rng)])
        self.generator.set_state(state["sampler"]["generator"])
        if "datasets" in state:
            datasets = state["datasets"]
            restore_dataset_state(self.train_dataset, datasets[self.info.rank % len(datasets)], state_path)
        elif self.is_main and capture_dataset_state(self.train_dataset):
            logger.warning(
                "%s predates the saved dataset draws: captions / flips / pool rows drawn after the resume point "
                "differ from an uninterrupted run's",
                state_path,
            )
        if self.is_main:
            logger.info("resumed from %s at epoch %d (step %d)", last, self.epoch, self.global_step)
        return True
