"""Quickstart steps that train the assisting models on the synthetic datasets of the quickstart.

Each step runs the same code as the model's training script (`train_*.py`, same flags) at a size a 2-core
CPU finishes in minutes, registers the model under the shortname the later steps load it by, and returns its
validation metrics beside a chance-level reference measured on the same split, for `summary.json` and the
README's results table:

- `text_models`: our WordPiece tokenizer and the small DistilBERT, masked-language-modelled on the caption +
  instruction corpus, saved where `distilbertSynth` resolves (`config.MODELS_ROOT/distilbert-synth`);
- `posevae`: the PoseVAE (reconstruction MPJPE vs. the mean pose);
- `posetext`, `pairtext`: pose<->text and pair<->instruction retrieval (mRecall vs. chance, k/N);
- `image_encoder`: our keypoint CNN pretrained to regress the pose from crops (PA-MPJPE vs. the mean pose).

The pose-only models (PoseVAE, PoseText, PairText) train on the pose pools of the `pose_pools` step (many
more captioned sampled poses and mined pairs than are rendered, no images) and validate on the rendered
datasets' val splits, which the pools share; they keep the shortnames of the rendered datasets
(`posevae_model_synthscript`, ...), the offline world's family. CPU sizes differ from the published recipes
where the recipe would take hours here: the PoseVAE's joint term runs on the skeleton (forward kinematics of
the 22 body joints) instead of the posed mesh, with no vertex term, a cosine learning rate, the likelihood
scales at a learning rate of their own and a KL weight of 0.2; PoseText and PairText use a narrower,
shallower text transformer (`--latentD 128 --transformer_layers 1`, no dropout) over the tiny text backbone,
a few epochs over the pools at a higher, constant learning rate; the image encoder trains a few
epochs with left/right flips but no photometric augmentation, its pose regression helped by 2D keypoint
heatmaps (a 32x24 grid at stride 8) and a 2D -> 3D lifter pretrained on the ground-truth 2D joints. The scripts'
defaults stay the published ones.

Sizes are set by `AssistingSizes` (the defaults fit the quickstart; tests shrink them).
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch
from torch.utils.data import DataLoader

from poseembroider.assisting_models.imageEncoder import train_imageEncoder
from poseembroider.assisting_models.pairText import train_pairText
from poseembroider.assisting_models.poseText import train_poseText
from poseembroider.assisting_models.poseVAE import train_poseVAE
from poseembroider.assisting_models.poseVAE.reconstruction_metrics import pose_reconstruction_errors
from poseembroider.datasets.registry import get_dataset
from poseembroider.devices import torch_threads
from poseembroider.evaluation.retrieval import chance_mrecall
from poseembroider.geometry import axis_angle_to_matrix, chordal_mean_axis_angle
from poseembroider.quickstart.context import QuickstartContext


def step_text_models(ctx: QuickstartContext) -> dict[str, Any]:
    """Tokenizer + MLM-pretrained text backbone, saved as `distilbertSynth`."""
    from poseembroider.assisting_models.textBackbone.model_textBackbone import TEXT_BACKBONE_PRESETS
    from poseembroider.assisting_models.textBackbone.train_textBackbone import pretrain_backbone
    from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus
    from poseembroider.text.tokenization import text_model_folder, train_wordpiece_tokenizer

    sizes = ctx.assisting_sizes
    start = time.perf_counter()
    corpus = build_caption_corpus(sizes.corpus_poses, sizes.corpus_pairs, seed=ctx.seed, body_model=ctx.require_body())
    corpus_seconds = time.perf_counter() - start
    tokenizer = train_wordpiece_tokenizer(corpus, sizes.vocab_size, ctx.out_dir / "models" / "tokenizer")
    backbone_dir = text_model_folder("distilbertSynth")
    report = pretrain_backbone(
        corpus,
        tokenizer,
        backbone_dir,
        steps=sizes.text_backbone_steps,
        seed=ctx.seed,
        config=TEXT_BACKBONE_PRESETS[sizes.text_backbone_size],
        num_threads=sizes.torch_threads,
        run_dir=ctx.run_dir("textBackbone"),
        progress=False,  # as the other steps (--no_progress): the quickstart prints one line per model
    )
    print(
        f"[quickstart] text backbone: masked-token accuracy {report.val_accuracy:.3f} "
        f"(most frequent token {report.unigram_accuracy:.3f}); saved in {backbone_dir}"
    )
    return {
        "corpus_texts": len(corpus),
        "corpus_seconds": round(corpus_seconds, 1),
        "vocab_size": len(tokenizer),
        "backbone_dir": str(backbone_dir),
        "backbone_parameters": report.n_backbone_parameters,
        "mlm_steps": report.steps,
        "val_mlm_loss": round(report.val_loss, 4),
        "val_masked_token_accuracy": round(report.val_accuracy, 4),
        "chance_masked_token_accuracy": round(report.unigram_accuracy, 4),
    }


def step_posevae(ctx: QuickstartContext) -> dict[str, Any]:
    """The PoseVAE on the pose pool (`train_poseVAE.py` flags), validated on the script dataset's val split.

    Its joint term runs on the skeleton (forward kinematics of the 22 body joints, no mesh), the scales of
    the likelihoods learn at a rate of their own and the KL weighs 0.2: the CPU recipe of `AssistingSizes`."""

    sizes = ctx.assisting_sizes
    dataset = ctx.require_pool_names()["poses"]
    argv = [
        "--dataset", dataset,
        "--epochs", str(sizes.posevae_epochs),
        "--batch_size", str(sizes.posevae_batch_size),
        "--lr", str(sizes.posevae_lr),
        "--lr_scheduler", "cosine", "--scheduler_interval", "step",
        "--wloss_v2v", "0", "--wloss_jts", "1", "--joints_source", "skeleton",
        "--decsigma_lr", str(sizes.posevae_decsigma_lr),
        "--wloss_kld", str(sizes.posevae_kld_weight),
        "--val_every", str(max(1, sizes.posevae_epochs // 2)),
        "--output_dir", str(ctx.run_dir("posevae")),
        "--shortname", train_poseVAE.default_shortname(ctx.require_synth().script_name),
        "--no_tensorboard", "--no_progress",
    ]  # fmt: skip
    with torch_threads(sizes.torch_threads):
        report = train_poseVAE.run(argv, body_model=ctx.require_body())
        baseline = mean_pose_baseline(dataset, ctx.require_body())
    metrics = report["val_metrics"]
    print(
        f"[quickstart] PoseVAE: val reconstruction MPJPE {metrics['mpjpe_mm']:.1f} mm, PA-MPJPE "
        f"{metrics['pampjpe_mm']:.1f} mm (mean pose: {baseline['mpjpe_mm']:.1f}, {baseline['pampjpe_mm']:.1f} mm); "
        f"registered as {report['shortname']}"
    )
    ctx.encoder_names["pose"] = report["shortname"]
    return {**report, "val_mean_pose_baseline": baseline}


def _text_retrieval_argv(
    ctx: QuickstartContext,
    epochs: int,
    batch_size: int,
    lr: float,
    lr_scheduler: str,
    name: str,
    decay_epoch: int = 0,
    decay: float = 1.0,
) -> list[str]:
    """Flags of a PoseText / PairText run; `decay_epoch` > 0 multiplies the rate by `decay` from that epoch on
    (with `lr_scheduler` 'multistepLR', stepped per epoch)."""
    sizes = ctx.assisting_sizes
    if decay_epoch:
        schedule = ["--lr_scheduler", lr_scheduler, "--scheduler_interval", "epoch",
                    "--lr_milestones", str(decay_epoch), "--lr_gamma", str(decay)]  # fmt: skip
    else:
        schedule = ["--lr_scheduler", lr_scheduler, "--scheduler_interval", "step"]
    return [
        "--text_encoder_name", "distilbertSynth",
        "--latentD", str(sizes.text_retrieval_latentD),
        "--transformer_layers", str(sizes.text_retrieval_layers),
        "--transformer_ff", str(2 * sizes.text_retrieval_latentD),
        "--transformer_dropout", "0",
        "--epochs", str(epochs),
        "--batch_size", str(batch_size),
        "--lr", str(lr),
        *schedule,
        "--val_every", "1",
        "--num_workers", "1",
        "--output_dir", str(ctx.run_dir(name)),
        "--no_tensorboard", "--no_progress",
    ]  # fmt: skip


def _retrieval_results(ctx: QuickstartContext, name: str, dataset: str, shortname: str, label: str) -> dict[str, Any]:
    """Best validation metrics of a finished retrieval run, with the chance level of its gallery size
    (R@k of a random ranking: k / N)."""

    best = json.loads((ctx.run_dir(name) / "best" / "metrics.json").read_text())
    metrics = best["metrics"]
    n_val = len(get_dataset(dataset, "val", item_format="pt"))
    chance = chance_mrecall(n_val)
    print(
        f"[quickstart] {label}: val mRecall {metrics['mRecall']:.2f} (chance {chance:.2f}); registered as {shortname}"
    )
    return {
        "shortname": shortname,
        "best_epoch": best["epoch"],
        "val_size": n_val,
        "val": metrics,
        "chance_mRecall": round(chance, 3),
    }


def step_posetext(ctx: QuickstartContext) -> dict[str, Any]:
    """PoseText (pose <-> caption retrieval) on the pose pool, validated on the script val split."""

    sizes = ctx.assisting_sizes
    dataset = ctx.require_pool_names()["poses"]
    shortname = train_poseText.default_shortname(ctx.require_synth().script_name)
    argv = [
        "--dataset",
        dataset,
        "--shortname",
        shortname,
        *_text_retrieval_argv(
            ctx, sizes.posetext_epochs, sizes.posetext_batch_size, sizes.posetext_lr, sizes.posetext_lr_scheduler,
            "posetext",
        ),
    ]
    with torch_threads(sizes.torch_threads):
        if train_poseText.main(argv) != 0:
            raise RuntimeError(f"train_poseText.py {' '.join(argv)} failed")
    ctx.encoder_names["text"] = shortname
    return _retrieval_results(ctx, "posetext", dataset, shortname, "PoseText")


def step_pairtext(ctx: QuickstartContext) -> dict[str, Any]:
    """PairText (pose pair <-> instruction retrieval) on the pairs of the pose pool, validated on the fix val split."""

    sizes = ctx.assisting_sizes
    dataset = ctx.require_pool_names()["pairs"]
    shortname = train_pairText.default_shortname([ctx.require_synth().fix_name])
    argv = [
        "--dataset",
        dataset,
        "--shortname",
        shortname,
        *_text_retrieval_argv(
            ctx, sizes.pairtext_epochs, sizes.pairtext_batch_size, sizes.pairtext_lr, sizes.pairtext_lr_scheduler,
            "pairtext", sizes.pairtext_lr_decay_epoch, sizes.pairtext_lr_decay,
        ),
    ]
    with torch_threads(sizes.torch_threads):
        if train_pairText.main(argv) != 0:
            raise RuntimeError(f"train_pairText.py {' '.join(argv)} failed")
    return _retrieval_results(ctx, "pairtext", dataset, shortname, "PairText")


def step_image_encoder(ctx: QuickstartContext) -> dict[str, Any]:
    """Our image encoder (the keypoint CNN by default), pretrained on the synthetic crops (`train_imageEncoder.py`)."""

    sizes = ctx.assisting_sizes
    argv = [
        "--dataset", ctx.require_synth().script_name,
        "--image_encoder_name", sizes.image_encoder_name,
        "--wloss_keypoints_l1", str(sizes.image_encoder_keypoints_l1),
        "--epochs", str(sizes.image_encoder_epochs),
        "--batch_size", str(sizes.image_encoder_batch_size),
        "--lr", str(sizes.image_encoder_lr),
        "--lifter_steps", str(sizes.image_encoder_lifter_steps),
        "--stem_input_pooling", str(sizes.image_encoder_input_pooling),
        "--train_precision", sizes.image_encoder_precision,
        "--num_workers", "1",
        "--no_img_augmentation",
        "--torch_threads", str(sizes.torch_threads),
        "--output_dir", str(ctx.run_dir("image_encoder")),
        "--no_progress",
    ]  # fmt: skip
    args = train_imageEncoder.build_parser().parse_args(argv)
    results = train_imageEncoder.train(args, body_model=ctx.require_body())
    val, base = results["val"], results["val_mean_pose_baseline"]
    print(
        f"[quickstart] image encoder: val PA-MPJPE {val['pa_mpjpe_mm']:.1f} mm (mean pose: "
        f"{base['pa_mpjpe_mm']:.1f} mm); registered as {results['shortname']}"
    )
    ctx.encoder_names["image"] = results["shortname"]
    return results


@torch.no_grad()
def mean_pose_baseline(dataset: str, body_model: torch.nn.Module) -> dict[str, float]:
    """Reconstruction errors of answering every validation pose with the chordal mean of the training
    poses: the level a pose model must beat. Keys of `pose_reconstruction_errors` (mm, degrees)."""

    def poses_of(split: str) -> torch.Tensor:
        loader = DataLoader(get_dataset(dataset, split, item_format="p"), batch_size=512)
        return torch.cat([batch["poses"] for batch in loader])

    val = poses_of("val")
    mean = chordal_mean_axis_angle(poses_of("train")).expand_as(val)
    totals: dict[str, float] = {}
    for start in range(0, len(val), 256):
        target, predicted = val[start : start + 256], mean[start : start + 256]
        true_out, pred_out = body_model(target), body_model(predicted)
        errors = pose_reconstruction_errors(
            pred_out.joints,
            true_out.joints,
            pred_out.vertices,
            true_out.vertices,
            axis_angle_to_matrix(predicted),
            axis_angle_to_matrix(target),
        )
        for name, value in errors.items():
            totals[name] = totals.get(name, 0.0) + float(value.sum())
    return {name: round(total / len(val), 2) for name, total in totals.items()}


ASSISTING_STEPS = {
    "text_models": step_text_models,
    "posevae": step_posevae,
    "posetext": step_posetext,
    "pairtext": step_pairtext,
    "image_encoder": step_image_encoder,
}
"""Quickstart steps of this module, in order (after `synthetic_dataset`)."""
