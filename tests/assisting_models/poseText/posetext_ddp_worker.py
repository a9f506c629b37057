"""One rank of the 2-process PoseText check (spawned by test_posetext_ddp.py)."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def posetext_ddp_worker(rank: int, world_size: int, port: int, folder: str) -> None:
    """Run one DDP step of PoseText on this rank's half of the batch saved in `folder`; save loss and grads."""
    from ddp_processes import ddp_loss_and_grads
    from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
    from poseembroider.training.distributed import destroy_distributed, init_distributed, wrap_ddp
    from poseembroider.training.trainer import _TrainingStep

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    out = Path(folder)
    inputs = torch.load(out / "inputs.pt", weights_only=True)
    info = init_distributed("cpu")
    try:
        torch.manual_seed(0)
        model = PoseText(PoseTextConfig(**inputs["config"])).eval()  # eval: batch norm uses running statistics
        half = inputs["poses"].shape[0] // world_size
        rows = slice(rank * half, (rank + 1) * half)
        batch = {k: inputs[k][rows] for k in ("poses", "texts_tokens", "texts_lengths")}
        torch.save(ddp_loss_and_grads(wrap_ddp(_TrainingStep(model), info.device), batch), out / f"rank{rank}.pt")
    finally:
        destroy_distributed()  # after the DDP wrapper is gone (see destroy_distributed)
