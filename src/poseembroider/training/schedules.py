"""Learning-rate schedules as pure functions of the number of scheduler steps taken.

The Trainer steps the schedule once per epoch (`scheduler_interval='epoch'`, the original unit of
`--lr_step`) or once per optimisation step (`'step'`). Unlike the original trainers, the schedule is
really stepped: with `--lr_scheduler stepLR --lr_step 400 --lr_gamma 0.5`, the LR of epoch e (0-based)
is `lr * 0.5 ** (e // 400)`. Use `--lr_scheduler none` for the constant LR of the published results.

One `LambdaLR` carries every schedule, so the scheduler state saved for resuming holds only numbers.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from poseembroider.training.config import TrainerConfig


def lr_factor(
    t: int,
    scheduler: str,
    total: int,
    lr_step: int = 1,
    lr_gamma: float = 1.0,
    milestones: Sequence[int] = (),
    warmup: int = 0,
    min_ratio: float = 0.0,
) -> float:
    """Multiplier of the base LR after `t` scheduler steps (`total` steps in the whole run).

    Linear warm-up `(t + 1) / warmup` for `t < warmup`, then the schedule counted from the end of the
    warm-up: 'none' 1; 'stepLR' `gamma ** (t // lr_step)`; 'multistepLR' `gamma ** #(milestones <= t)`;
    'cosine' from 1 down to `min_ratio` at `total`; 'linear' likewise along a straight line (BERT's schedule).
    """
    if t < warmup:
        return (t + 1) / warmup
    t -= warmup
    if scheduler == "none":
        return 1.0
    if scheduler == "stepLR":
        return lr_gamma ** (t // lr_step)
    if scheduler == "multistepLR":
        return lr_gamma ** bisect.bisect_right(sorted(milestones), t)
    if scheduler == "cosine":
        span = max(1, total - warmup)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(t, span) / span))
    if scheduler == "linear":
        span = max(1, total - warmup)
        return min_ratio + (1.0 - min_ratio) * (1.0 - min(t, span) / span)
    raise ValueError(f"unknown lr_scheduler {scheduler!r}")


def schedule_from_config(config: TrainerConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The `lr_factor` of `config`, counted in epochs or in optimisation steps."""
    total = config.epochs if config.scheduler_interval == "epoch" else config.epochs * max(1, steps_per_epoch)
    milestones = tuple(config.lr_milestones)

    def factor(t: int) -> float:  # a plain function: LambdaLR does not try to save it
        return lr_factor(
            t, config.lr_scheduler, total, config.lr_step, config.lr_gamma, milestones, config.warmup,
            config.lr_min_ratio,
        )

    return factor


def build_scheduler(optimizer: Optimizer, config: TrainerConfig, steps_per_epoch: int) -> LambdaLR:
    """A `LambdaLR` following `config`; the Trainer calls `.step()` per epoch or per step."""
    return LambdaLR(optimizer, schedule_from_config(config, steps_per_epoch))
