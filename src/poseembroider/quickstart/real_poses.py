"""The quickstart step `real_poses`: the models trained on the synthetic world, measured on the 108 real CMU
mocap poses (`data/cmu_mocap/poses_dev.npz`), which the pose sampler never drew.

- PoseVAE reconstruction errors (MPJPE, PA-MPJPE, PVE) and the mean-pose reference on the same poses: does
  the pose encoder, frozen inside PoseEmbroider, keep what makes a real pose?
- PoseText retrieval between the real poses and our captions of them (one caption each, seeded): R@k both
  ways and mRecall over a gallery of 108, beside chance.

Poses are heading-normalised as the datasets normalise theirs (`normalize_poses(..., "bedlam")`); the
captioner reads the raw poses (it removes the heading itself).
"""

from __future__ import annotations

from typing import Any

import torch

from poseembroider.assisting_models.poseText.model_poseText import PoseText
from poseembroider.assisting_models.poseVAE.evaluation import evaluate_pose_file
from poseembroider.data import CMU_DEV_POSES_FILE, load_cmu_dev_poses
from poseembroider.datasets.pose_processing import normalize_poses
from poseembroider.evaluation.retrieval import chance_mrecall, pose_text_retrieval_metrics
from poseembroider.quickstart.context import QuickstartContext
from poseembroider.registry import resolve
from poseembroider.text.captioning.captions import caption_variants


def cmu_poses() -> tuple[torch.Tensor, torch.Tensor]:
    """(raw, normalized): the 108 real CMU poses, (108, 22, 3) y-up axis-angles with their recorded heading,
    and the same in the models' frame with the heading removed (what the datasets feed the models)."""
    raw = torch.from_numpy(load_cmu_dev_poses())
    return raw, normalize_poses(raw.clone(), "bedlam")


@torch.no_grad()
def posetext_on_poses(shortname: str, model_poses: torch.Tensor, captions: list[str]) -> dict[str, Any]:
    """R@k (p2t, t2p) and mRecall of PoseText `shortname` between (N, 22, 3) model-frame poses and their N
    captions, beside the chance mRecall of N items."""
    model = PoseText.from_pretrained(resolve(shortname)).eval()
    metrics = pose_text_retrieval_metrics(model.encode_poses(model_poses), model.encode_raw_texts(captions))
    return {"size": len(captions), "metrics": metrics, "chance_mRecall": round(chance_mrecall(len(captions)), 3)}


def step_real_poses(ctx: QuickstartContext) -> dict[str, Any]:
    """PoseVAE and PoseText on the 108 real CMU poses."""
    names = ctx.require_encoder_names(("pose", "text"))
    posevae = evaluate_pose_file(
        names["pose"], CMU_DEV_POSES_FILE, "bedlam", device="cpu", mean_pose_dataset=ctx.require_synth().script_name
    )
    print(
        f"[quickstart] real CMU poses: PoseVAE reconstruction MPJPE {posevae['metrics']['recon_mpjpe_mm']:.1f} mm, "
        f"PA-MPJPE {posevae['metrics']['recon_pampjpe_mm']:.1f} mm (the synthetic training set's mean pose: "
        f"{posevae['mean_pose']['mpjpe_mm']:.1f}, {posevae['mean_pose']['pampjpe_mm']:.1f} mm)"
    )
    raw, model_poses = cmu_poses()
    captions = [variants[0] for variants in caption_variants(raw, ctx.require_body(), seed=ctx.seed)]
    posetext = posetext_on_poses(names["text"], model_poses, captions)
    print(
        f"[quickstart] real CMU poses ({len(raw)}): PoseText mRecall {posetext['metrics']['mRecall']:.1f} "
        f"(chance {posetext['chance_mRecall']:.1f})"
    )
    return {
        "poses": len(raw),
        "source": "CMU mocap dev poses (real)",
        "posevae": {key.removeprefix("recon_"): value for key, value in posevae["metrics"].items()},
        "posevae_mean_pose_baseline": posevae["mean_pose"],
        "posevae_mean_pose_source": posevae["mean_pose_source"],
        "posetext": posetext,
        "captions": captions,
    }


REAL_POSE_STEPS = {"real_poses": step_real_poses}
"""Quickstart steps of this module (after the assisting models)."""
