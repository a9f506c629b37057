"""What the quickstart's steps share: the sizes they train at and a typed context that carries each step's
products to the later steps (the body model, the synthetic datasets, the encoders' shortnames).

A step reads what an earlier step made through the `require_*` accessors, which say which step to run first
instead of failing on a missing key; each step's JSON-able results (`results`) go to `summary.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poseembroider.body.body_model import BodyModel
from poseembroider.datasets.synthetic.generate import SynthConfig
from poseembroider.modalities import MODALITIES

ENCODER_STEPS = {"image": "image_encoder", "pose": "posevae", "text": "posetext"}
"""The quickstart step that trains and registers each modality's frozen encoder."""


@dataclass
class AssistingSizes:
    """How much each assisting model trains in the quickstart."""

    corpus_poses: int = 1500  # sampled poses captioned for the text corpus (3 captions each)
    corpus_pairs: int = 1500  # sampled pairs instructed for the text corpus (3 instructions each)
    vocab_size: int = 3000
    text_backbone_size: str = "tiny"  # TEXT_BACKBONE_PRESETS
    text_backbone_steps: int = 600
    # the pose-only models train on the pose pools (`pose_pools`), validate on the rendered val split
    posevae_epochs: int = 32
    posevae_batch_size: int = 128
    posevae_lr: float = 1e-3  # cosine per step; the likelihood scales at their own lr (`posevae_decsigma_lr`)
    posevae_decsigma_lr: float = 0.01
    posevae_kld_weight: float = 0.2
    text_retrieval_latentD: int = 128  # PoseText / PairText embedding and text-transformer width
    text_retrieval_layers: int = 1
    # val mRecall per epoch (pools of 16,384 poses / 22,923 pairs): PoseText bs 128 lr 3e-3 constant: 12.8 22.4
    # 28.8 29.6 32.2 36.1. PairText bs 64 lr 1e-3 (beside other runs): constant 3.3 6.0 7.1 9.9 9.4 10.9 11.8
    # 12.4 12.6 13.9 14.5 13.6 15.6 16.1 15.1 15.6; cosine over 12 epochs 3.5 6.3 7.9 9.0 10.5 11.0 11.0 12.4
    # 13.2 13.0 13.3 13.0 (it flattens as the rate decays). On a 22,927-pair pool (another machine's floats):
    # constant 14.3 best / 14.1 last, 10.9-14.3 over epochs 8-16; x0.2 after epoch 13 15.4 15.2 16.0 for epochs
    # 14-16; x0.3 after epochs 11 and 14: 15.9 last. PairText runs on the lane beside the image encoder and
    # PoseEmbroider, where most of its 16 epochs cost no wall time
    posetext_epochs: int = 6
    posetext_batch_size: int = 128
    posetext_lr: float = 3e-3
    posetext_lr_scheduler: str = "none"
    pairtext_epochs: int = 16
    pairtext_batch_size: int = 64
    pairtext_lr: float = 1e-3
    pairtext_lr_scheduler: str = "multistepLR"  # constant, then x0.2 for the last epochs (pairtext_lr_decay_epoch)
    pairtext_lr_decay_epoch: int = 13
    pairtext_lr_decay: float = 0.2
    # the keypoint CNN on a 2x-pooled view, bf16: same crops, same 18 epochs, 2D joints 21 px off instead of the
    # conv-stem ViT's 26 (4x-pooled view), PA-MPJPE 107 vs 113 mm (train_imageEncoder.py's docstring has both)
    image_encoder_name: str = "unet_kp_256x192"
    image_encoder_epochs: int = 18
    image_encoder_input_pooling: int = 2
    image_encoder_keypoints_l1: float = 5.0  # soft-argmax L1 term: places each joint below a heatmap cell
    image_encoder_precision: str = "bf16"
    image_encoder_batch_size: int = 16
    image_encoder_lr: float = 2e-3
    image_encoder_lifter_steps: int = 500  # lifter pretraining on ground-truth 2D joints (seconds)
    torch_threads: int = 1  # 1 is the fast choice on 2 cores shared with DataLoader workers


@dataclass
class CoreSizes:
    """How much the representation models train in the quickstart."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 5e-4
    val_every: int = 5
    image_feature_mode: str = "compact"
    pose_text_pool_ratio: float = 1.0  # pool sub-batch size relative to the batch (0: no pool)
    torch_threads: int = 1


@dataclass
class DownstreamSizes:
    """How much the downstream heads train in the quickstart."""

    # HPS head on cached image x̄: validation loss is lowest around epoch 5-8 on 2,048 crops, then overfits
    hps_epochs: int = 8
    hps_batch_size: int = 64
    hps_lr: float = 1e-4
    # InstructionGenerator from pose x̄ on the pool's pairs: the published architecture, a CPU decoder size
    instruction_epochs: int = 2
    instruction_batch_size: int = 32
    instruction_lr: float = 5e-4
    instruction_decoder_width: int = 128
    instruction_heads: int = 4
    instruction_layers: int = 2
    # [MASK] for teacher-forced words (beyond the original): greedy R@1 from poses, same world, 3 epochs:
    # 2.1 without, 3.4 at 0.25, 3.0 at 0.5. With the quickstart's 16-epoch PairText, at 0.25: 2.7 after 3
    # epochs; 2.3 after 6 (validation loss 1.27 -> 1.15) and 2.3 at width 256: a lower loss is not a more
    # specific text
    instruction_word_dropout: float = 0.25
    # hinge on each text's per-token NLL under another pair's x̄ minus its own (beyond the original; the decoder
    # then reads x̄): on the 2445354 run's world, 3 epochs, greedy R@1 from poses 2.3 without, 5.9 at weight 1,
    # 8.2 at weight 3, BLEU-4 37.8 -> 27.1 -> 16.0; each step costs two decoder passes, so the quickstart
    # trains 2 epochs at weight 3 (R@1 8.0 in the quickstart at 87e8033 + these sizes, 33.1 min in all)
    instruction_specificity: float = 3.0
    # the 'rerank' decoding (beyond the original): the greedy text and nucleus samples, the one kept by the
    # generator as its own listener over distractor pairs kept with it; see README for the sizes measured
    instruction_distractors: int = 8
    instruction_rerank_samples: int = 4
    torch_threads: int = 1


@dataclass
class QuickstartContext:
    """Settings of a quickstart run and what its steps have made so far."""

    out_dir: Path
    n_poses: int = 16  # real CMU poses on the pose contact sheet
    seed: int = 0
    n_train: int = 2048
    n_val: int = 512
    sampler_report_size: int = 10_000
    n_pool: int = 16_384  # sampled poses (captioned, no images) the pose-only models train on
    assisting_sizes: AssistingSizes = field(default_factory=AssistingSizes)
    core_sizes: CoreSizes = field(default_factory=CoreSizes)
    downstream_sizes: DownstreamSizes = field(default_factory=DownstreamSizes)
    body: BodyModel | None = None  # set by `body_model`
    synth: SynthConfig | None = None  # set by `synthetic_dataset`
    pool_names: dict[str, str] = field(default_factory=dict)  # 'poses' / 'pairs' -> dataset name, set by `pose_pools`
    encoder_names: dict[str, str] = field(default_factory=dict)  # modality -> shortname, set by the assisting steps
    core_names: dict[str, str] = field(default_factory=dict)  # 'PoseEmbroider' / 'Aligner' -> shortname (core steps)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # step name -> its results (summary.json)

    def run_dir(self, name: str) -> Path:
        """Training output folder of one model of the run."""
        return self.out_dir / "models" / name

    def require_body(self) -> BodyModel:
        if self.body is None:
            raise RuntimeError("this quickstart step needs the body model: run the 'body_model' step first")
        return self.body

    def require_synth(self) -> SynthConfig:
        if self.synth is None:
            raise RuntimeError("this quickstart step needs the datasets: run the 'synthetic_dataset' step first")
        return self.synth

    def require_pool_names(self) -> dict[str, str]:
        if set(self.pool_names) != {"poses", "pairs"}:
            raise RuntimeError("this quickstart step needs the pose-only pools: run the 'pose_pools' step first")
        return dict(self.pool_names)

    def require_core_name(self, model: str) -> str:
        if model not in self.core_names:
            raise RuntimeError(
                f"this quickstart step needs the {model} model: run the 'core_{model.lower()}' step first"
            )
        return self.core_names[model]

    def require_encoder_names(self, modalities: Sequence[str] = MODALITIES) -> dict[str, str]:
        """{modality: shortname} of the frozen encoders of `modalities` (default: all three)."""
        missing = [m for m in modalities if m not in self.encoder_names]
        if missing:
            steps = " and ".join(repr(ENCODER_STEPS[m]) for m in missing)
            raise RuntimeError(f"this quickstart step needs the frozen {missing} encoder(s): run {steps} first")
        return {m: self.encoder_names[m] for m in modalities}


QuickstartStep = Callable[[QuickstartContext], dict[str, Any]]
"""A step: reads and extends the context, returns its JSON-able results."""
