"""A tiny two-tower contrastive model and paired random data, used by the Trainer tests.

Also the worker of the two-process DDP tests (it must live in an importable module, not a test file,
for `torch.multiprocessing` to start it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from poseembroider.models.losses import all_gather_with_grad, gather_features
from poseembroider.models.pretrained import PretrainedModel, register_model
from poseembroider.training.config import TrainerConfig
from poseembroider.training.distributed import destroy_distributed, init_distributed, wrap_ddp


@dataclass
class ToyConfig:
    dim_a: int = 6  # input size of tower A
    dim_b: int = 5  # input size of tower B
    hidden: int = 16  # hidden width of both towers
    latentD: int = 8  # joint embedding size
    dropout: float = 0.0  # dropout in the towers (uses the torch RNG)
    temperature_init: float = 10.0  # learnable scale of the cosine scores


def symmetric_infonce(za: torch.Tensor, zb: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(N, D), (N, D) L2-normalised -> scalar: mean of the A->B and B->A cross-entropies."""
    scores = za @ zb.t() * scale
    target = torch.arange(za.shape[0], device=za.device)
    return 0.5 * (F.cross_entropy(scores, target) + F.cross_entropy(scores.t(), target))


@register_model
class ToyTwoTower(PretrainedModel, nn.Module):
    config_class = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config

        def tower(dim: int) -> nn.Sequential:
            hidden = config.hidden
            return nn.Sequential(
                nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(hidden, config.latentD)
            )

        self.tower_a, self.tower_b = tower(config.dim_a), tower(config.dim_b)
        self.loss_weight = nn.Parameter(torch.tensor(config.temperature_init))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, dim_a), (B, dim_b) -> two (B, latentD) unit vectors."""
        return F.normalize(self.tower_a(a), dim=-1), F.normalize(self.tower_b(b), dim=-1)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        za, zb = gather_features(*self(batch["a"], batch["b"]))
        return {"loss": symmetric_infonce(za, zb, self.loss_weight), "temperature": self.loss_weight.detach()}

    def validation_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.training_step(batch)
        za, zb = self(batch["a"], batch["b"])
        return {"loss": out["loss"], "za": za, "zb": zb}

    def validation_epoch_end(self, outputs: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        za = torch.cat([o["za"] for o in outputs])
        zb = torch.cat([o["zb"] for o in outputs])
        hits = (za @ zb.t()).argmax(dim=1) == torch.arange(za.shape[0])
        return {"R@1": 100.0 * hits.float().mean().item()}

    def param_groups(self, lr: float, wd: float) -> list[dict]:
        towers = [p for n, p in self.named_parameters() if n != "loss_weight"]
        return [{"params": towers, "weight_decay": wd}, {"params": [self.loss_weight], "weight_decay": 0.0}]


class PairDataset(Dataset):
    """`n` pairs `{"a": (dim_a,), "b": (dim_b,)}` that share a latent code (so they can be matched)."""

    def __init__(self, n: int, seed: int = 0, dim_a: int = 6, dim_b: int = 5) -> None:
        g = torch.Generator().manual_seed(seed)
        latent = torch.randn(n, 4, generator=g)
        self.a = latent @ torch.randn(4, dim_a, generator=g) + 0.1 * torch.randn(n, dim_a, generator=g)
        self.b = latent @ torch.randn(4, dim_b, generator=g) + 0.1 * torch.randn(n, dim_b, generator=g)

    def __len__(self) -> int:
        return self.a.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"a": self.a[i], "b": self.b[i]}


def make_model(seed: int = 0, **overrides) -> ToyTwoTower:
    torch.manual_seed(seed)
    return ToyTwoTower(ToyConfig(**overrides))


def ddp_trainer_config(output_dir: Path, batch_size: int) -> TrainerConfig:
    """The run compared between 2 processes (batch_size 8 each) and 1 process (batch_size 16)."""
    return TrainerConfig(
        output_dir=str(output_dir), epochs=2, batch_size=batch_size, val_batch_size=12, lr=1e-2, val_every=1,
        log_step=1, best_metric="R@1", best_mode="max", seed=5, tensorboard=False, progress=False, device="cpu",
    )


class LossRecorder:
    """Trainer callback keeping the loss of every step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def __call__(self, trainer, event: str, logs: dict) -> None:
        if event == "step_end":
            self.losses.append(logs["loss"])


def ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """One rank of the 2-process checks; writes its observations to `out_dir` for the test to compare."""
    from poseembroider.training.trainer import Trainer

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    out = Path(out_dir)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.backend) == (rank, world_size, "gloo")
    try:
        # 1. the raw gather: values in rank order, gradient only through the local slice
        x = (torch.arange(6.0).reshape(2, 3) + 10 * rank).requires_grad_()
        gathered = all_gather_with_grad(x, grad_scale=1.0)
        weights = torch.arange(gathered.numel(), dtype=torch.float32).reshape(gathered.shape)
        (gathered * weights).sum().backward()
        # 2. one DDP step of the contrastive model on this rank's half of a fixed global batch
        data = PairDataset(16, seed=1)
        model = wrap_ddp(make_model(0), info.device)
        rows = slice(rank * 8, (rank + 1) * 8)
        za, zb = gather_features(*model(data.a[rows], data.b[rows]))
        loss = symmetric_infonce(za, zb, model.module.loss_weight)
        loss.backward()
        grads = {f"grad.{n}": p.grad.clone() for n, p in model.module.named_parameters()}
        torch.save(
            {"gathered": gathered.detach(), "x_grad": x.grad, "loss": loss.detach(), **grads},
            out / f"rank{rank}.pt",
        )
        del model, za, zb, loss  # the DDP wrapper goes before the process group (see destroy_distributed)
        # 3. a whole Trainer run (2 epochs, validation on rank 0, checkpoints)
        recorder = LossRecorder()
        trainer = Trainer(
            make_model(0), PairDataset(64, seed=2), PairDataset(24, seed=3),
            ddp_trainer_config(out / "ddp_run", batch_size=8), callbacks=[recorder],
        )
        summary = trainer.fit()
        if rank == 0:
            (out / "ddp_run_losses.json").write_text(json.dumps({"losses": recorder.losses, "summary": summary}))
    finally:
        destroy_distributed()
