"""Front door throughput (items/s): `Representation.embed_*` batched vs one item per call.

Models at the quickstart's sizes, untrained (speed does not depend on the weights): the CPU image encoder
preset, the default PoseVAE, PoseText with a 128-d one-layer text transformer over the `tiny` text backbone,
PoseEmbroider with the published core. Inputs: poses from the pose sampler, their captions from our captioner,
random 256x192 uint8 crops. Ours: one call over all items (batches of 64 inside). Baseline: one call per item,
as a user looping over a dataset would write it. One torch thread for both (the 2-core machine is shared; see
bench_posevae.py); each figure is the best of a few medians.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import DistilBertForMaskedLM

from common import time_call, write_result
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import CPU_PRESET, ImageEncoder
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.assisting_models.textBackbone.model_textBackbone import TEXT_BACKBONE_PRESETS
from poseembroider.body.body_model import BodyModel
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler
from poseembroider.encoders import FrozenEncoders
from poseembroider.model import CoreConfig, PoseEmbroider, encoder_fields
from poseembroider.representation import Representation
from poseembroider.text.captioning.captions import caption_poses
from poseembroider.text.tokenization import train_wordpiece_tokenizer

N_POSES = 256
N_TEXTS = 256
N_IMAGES = 32
N_SINGLE = {"pose": 64, "text": 64, "image": 8}  # items of the one-per-call baseline (rates are per item)


def best_time(fn, rounds: int = 3, repeats: int = 1) -> float:
    return min(time_call(fn, repeats=repeats, warmup=1) for _ in range(rounds))


def build_models(folder: Path, texts: list[str]) -> Representation:
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=3000, out_dir=folder / "text_backbone")
    backbone = TEXT_BACKBONE_PRESETS["tiny"].distilbert_config(len(tokenizer), tokenizer.pad_token_id)
    DistilBertForMaskedLM(backbone).save_pretrained(str(folder / "text_backbone"))
    names = {
        "image": str(ImageEncoder.from_preset(CPU_PRESET).freeze().save_pretrained(folder / "image")),
        "pose": str(PoseVAE(PoseVAEConfig()).eval().save_pretrained(folder / "pose")),
        "text": str(
            PoseText(
                PoseTextConfig(
                    text_encoder_name=str(folder / "text_backbone"),
                    latentD=128,
                    transformer_layers=1,
                    transformer_ff=256,
                )
            )
            .eval()
            .save_pretrained(folder / "text")
        ),
    }
    config = CoreConfig(
        image_encoder_name=names["image"],
        pose_encoder_name=names["pose"],
        text_encoder_name=names["text"],
        **encoder_fields(FrozenEncoders(names)),
        image_feature_mode="compact",
        l2normalize=True,
        single_partials=True,
        dual_partials=True,
    )
    model_dir = PoseEmbroider(config).save_pretrained(folder / "poseembroider")
    return Representation.from_pretrained(model_dir, progress=False)


def main() -> None:
    torch.set_num_threads(1)
    body = BodyModel().eval()
    poses = PoseSampler(seed=0).sample(N_POSES).poses[:, :22].float()
    texts = caption_poses(poses, body, seed=0)[:N_TEXTS]
    images = list(np.random.default_rng(0).integers(0, 256, size=(N_IMAGES, 256, 192, 3), dtype=np.uint8))
    inputs = {"pose": poses, "text": texts, "image": images}
    with tempfile.TemporaryDirectory() as tmp:
        rep = build_models(Path(tmp), texts)
        embed = {"pose": rep.embed_poses, "text": rep.embed_texts, "image": rep.embed_images}
        rates: dict[str, dict[str, float]] = {}
        for modality, items in inputs.items():
            batched = best_time(lambda m=modality, x=items: embed[m](x))
            few = items[: N_SINGLE[modality]]
            single = best_time(lambda m=modality, x=few: [embed[m](x[i : i + 1]) for i in range(len(x))])
            rates[modality] = {
                "batched_items_per_s": len(items) / batched,
                "one_per_call_items_per_s": len(few) / single,
            }
            rates[modality]["ratio"] = (
                rates[modality]["batched_items_per_s"] / rates[modality]["one_per_call_items_per_s"]
            )
            print(modality, rates[modality])
    mean_text_words = float(np.mean([len(t.split()) for t in texts]))
    write_result(
        "representation",
        {
            "ours": "one embed_* call over all items (batches of 64 inside), 1 torch thread",
            "baseline": "one embed_* call per item, 1 torch thread",
            "items": {m: len(v) for m, v in inputs.items()},
            "mean_caption_words": round(mean_text_words, 1),
            **{f"{m}_{k}": v for m, r in rates.items() for k, v in r.items()},
            "ours_poses_per_s": rates["pose"]["batched_items_per_s"],
            "baseline_poses_per_s": rates["pose"]["one_per_call_items_per_s"],
            "ratio": rates["pose"]["ratio"],
        },
    )


if __name__ == "__main__":
    main()
