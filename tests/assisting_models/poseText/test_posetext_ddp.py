"""PoseText under DDP (2 gloo processes on CPU): the loss over gathered embeddings and the averaged gradients
equal those of one process with the doubled batch."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from posetext_ddp_worker import posetext_ddp_worker
from torch.utils.data import DataLoader

from ddp_processes import run_ranks
from poseembroider.assisting_models.poseText.data import load_text_datasets, text_collate_fn
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig


@pytest.mark.slow
def test_two_ranks_match_one_process_with_the_doubled_batch(retrieval_datasets, retrieval_text_dir, tmp_path):
    config = PoseTextConfig(
        text_encoder_name=str(retrieval_text_dir),
        latentD=32,
        num_neurons=64,
        num_neurons_mini=8,
        transformer_layers=1,
        transformer_heads=2,
        transformer_ff=64,
    )
    torch.manual_seed(0)
    model = PoseText(config).eval()
    tokenizer = model.text_encoder.tokenizer
    dataset = load_text_datasets([retrieval_datasets["script"]], "val", tokenizer)
    batch = next(iter(DataLoader(dataset, batch_size=16, collate_fn=text_collate_fn(tokenizer))))
    inputs = {k: batch[k] for k in ("poses", "texts_tokens", "texts_lengths")}
    torch.save({**inputs, "config": dataclasses.asdict(config)}, tmp_path / "inputs.pt")

    run_ranks(posetext_ddp_worker, tmp_path)

    loss = model.training_step(inputs)["loss"]
    loss.backward()
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert torch.allclose(result["loss"], loss.detach(), atol=1e-5)
        for name, p in model.named_parameters():
            if p.grad is not None:
                assert torch.allclose(result[f"grad.{name}"], p.grad, atol=1e-5), name
