"""HPS head training samples/s from cached x̄ vs x̄ computed live (from frozen features, from pixels); evaluation.

Whole optimisation steps of the published head (`HPSEstimator`: latentD 512, 3 iterations, hidden 1024, dropout 0.5,
shape head; Adam lr 1e-4, wd 1e-4) at batch 64, one torch thread, batches drawn at random from N = 2048 samples
(the quickstart's training split). Three ways to get x̄, in the same process:

- cached: x̄ (N, 512) read from a cache (`features.intermodality`) into `TensorItems`; a step is the head only;
- live_features: x̄ computed at each step by the frozen PoseEmbroider (quickstart size: compact image mode, one
  core layer) from cached frozen image features (N, 128), as training with `--cached_embeddings_file` absent on a
  feature cache would;
- live_pixels: x̄ computed at each step from the (B, 3, 256, 192) crops by the frozen quickstart image encoder
  (`convvit_tiny_256x192`, random weights: speed does not depend on them) and the core, as live training with
  image augmentation does; the crops are already in memory, so the PNG decoding and cropping of a real run
  (not counted) only add to this cost.

Evaluation throughput: x̄ -> rotations and betas (`predict_from_xbar`), and the per-sample errors of 512 samples
posed by the body model (`hps_errors`, the procedural SMPL-X-format model here). Wall times on a shared machine
move with the load; each figure is the best of a few rounds, and the ratios come from the same run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from common import time_call, write_result
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import CPU_PRESET, ImageEncoder
from poseembroider.downstream.pose_estimation.data import TensorItems
from poseembroider.downstream.pose_estimation.evaluation import hps_errors, predict_from_xbar
from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator, HPSEstimatorConfig
from poseembroider.encoders import FrozenEncoders
from poseembroider.model import CoreConfig, PoseEmbroider, encoder_fields

N, BATCH, ROUNDS, REPEATS = 2048, 64, 3, 8
N_EVAL = 512


def representation(folder: Path) -> PoseEmbroider:
    """A quickstart-size PoseEmbroider (compact image mode) over a randomly initialised quickstart image encoder
    (saved in `folder`, as frozen encoders are named by folder)."""
    image_dir = ImageEncoder.from_preset(CPU_PRESET).freeze().save_pretrained(folder / "image")
    encoders = FrozenEncoders({"image": str(image_dir)})
    fields = encoder_fields(encoders)
    config = CoreConfig(
        image_encoder_name=str(image_dir), image_feature_mode="compact", l2normalize=True,
        single_partials=True, dual_partials=True, **fields,
    )  # fmt: skip
    model = PoseEmbroider(config).eval()
    model.attach_encoders(encoders)
    return model


def steps_per_s(head: HPSEstimator, items: TensorItems, seed: int = 0) -> float:
    """Samples/s of whole optimisation steps on random batches of `items` (best of `ROUNDS` medians)."""
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-4, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    head.train()

    def step() -> None:
        batch = items.__getitems__(torch.randint(len(items), (BATCH,), generator=generator).tolist())
        optimizer.zero_grad(set_to_none=True)
        head.training_step(batch)["loss"].backward()
        optimizer.step()

    return BATCH / min(time_call(step, repeats=REPEATS, warmup=2) for _ in range(ROUNDS))


def main(folder: Path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rep = representation(folder)
    head = HPSEstimator(HPSEstimatorConfig(predict_bodyshape=True))
    head.attach_representation(rep)
    targets = {"poses": 0.3 * torch.randn(N, 22, 3), "shapes": torch.randn(N, 10)}
    images = torch.rand(256, 3, 256, 192)  # 256 crops (600 MB for N): batches drawn among them
    with torch.no_grad():
        features = torch.cat(
            [rep.frozen_encoders(dict(images=images[s : s + 64]))["image"].mean(1) for s in range(0, 256, 64)]
        )
        xbar = torch.cat(
            [
                rep.get_intermodality_token({"image_features": features[s : s + 64]}, ("image",))
                for s in range(0, 256, 64)
            ]
        )
    per_s = {
        "cached": steps_per_s(head, TensorItems(xbar=xbar.repeat(8, 1), **targets)),
        "live_features": steps_per_s(head, TensorItems(image_features=features.repeat(8, 1), **targets)),
        "live_pixels": steps_per_s(head, TensorItems(images=images, **{k: v[:256] for k, v in targets.items()})),
    }
    eval_xbar = xbar.repeat(2, 1)
    start = time.perf_counter()
    pred = predict_from_xbar(head, eval_xbar)
    predict_s = time.perf_counter() - start
    body = head.body_model(torch.device("cpu"))
    start = time.perf_counter()
    hps_errors(body, pred["rotations"], targets["poses"][:N_EVAL], pred["betas"], targets["shapes"][:N_EVAL])
    errors_s = time.perf_counter() - start
    write_result(
        "hps_head",
        {
            "ours": "HPS head steps on cached x̄ (TensorItems batches, the head alone)",
            "baseline": "the same steps with x̄ computed live by the frozen quickstart-size PoseEmbroider, from cached "
            "frozen image features and from in-memory crops through the image encoder",
            "batch": BATCH,
            "samples_per_s": {k: round(v) for k, v in per_s.items()},
            "ratio_cached_vs_live_features": round(per_s["cached"] / per_s["live_features"], 2),
            "ratio_cached_vs_live_pixels": round(per_s["cached"] / per_s["live_pixels"], 1),
            "ours_samples_per_s": round(per_s["cached"]),
            "baseline_samples_per_s": round(per_s["live_pixels"]),
            "ratio": round(per_s["cached"] / per_s["live_pixels"], 1),
            "eval_predict_samples_per_s": round(N_EVAL / predict_s),
            "eval_errors_samples_per_s": round(N_EVAL / errors_s),
            "eval_body_model": getattr(body, "kind", "?"),
        },
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
