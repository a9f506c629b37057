"""Pretrain the offline text backbone (`distilbertSynth`) by masked-language modelling, with the one Trainer.

    python -m poseembroider.assisting_models.textBackbone.train_textBackbone \\
        --tokenizer TOKENIZER_DIR --out MODELS_ROOT/distilbert-synth --size base --steps 2000

(also `poseembroider text pretrain-backbone`, which prints a summary). The corpus is `--corpus` (one text per
line) or the generated captions + instructions. Held-out texts (5 %, at most 512) measure the MLM loss and
the masked-token accuracy before training, every `--val-every` steps and at the end, beside the accuracy of
always answering the most frequent masked token (the model's validation metrics). AdamW (weight decay 0.01
on matrices), linear warm-up over 5 % of the steps then linear decay to 0, stepped every step; gradients
clipped at 1. Texts are batched with texts of similar lengths (`data.BucketedTextStream`).

`--out` receives the final model with its tokenizer files and `pretraining_metrics.json` (a complete text
model folder); the report is printed as JSON. The Trainer's run folder (`best/`, `last/` + training state,
`log.jsonl`) is `--run-dir` (default `GENERAL_EXP_OUTPUT_DIR/textBackbone/<out name>`); `--resume` continues
from its `last/`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from poseembroider import config as paths
from poseembroider.assisting_models.textBackbone.data import (
    BucketedTextStream,
    TextBatches,
    epoch_plan,
    first_item,
    split_corpus,
    tokenize_corpus,
)
from poseembroider.assisting_models.textBackbone.model_mlm import MaskedLanguageModel
from poseembroider.assisting_models.textBackbone.model_textBackbone import TEXT_BACKBONE_PRESETS, TextBackboneConfig
from poseembroider.atomic_io import atomic_files_into, write_json_atomic
from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus
from poseembroider.devices import torch_threads
from poseembroider.models.parameters import count_parameters
from poseembroider.text.text_files import read_text_lines
from poseembroider.text.tokenization import Tokenizer, load_tokenizer
from poseembroider.training.config import TrainerConfig
from poseembroider.training.run_log import epoch_records
from poseembroider.training.script_args import script_main
from poseembroider.training.state import seed_everything
from poseembroider.training.trainer import Trainer


@dataclass
class PretrainingReport:
    """What `pretrain_backbone` measured (also written to `pretraining_metrics.json`)."""

    steps: int
    batch_size: int
    n_train_texts: int
    n_val_texts: int
    vocab_size: int
    n_parameters: int  # MLM model (backbone + head), tied weights once
    n_backbone_parameters: int
    config: dict
    train_time_s: float  # of this call (a resumed run: the steps it ran)
    train_texts_per_s: float
    initial_val_loss: float
    initial_val_accuracy: float
    val_loss: float
    val_accuracy: float
    chance_accuracy: float  # 1 / number of non-special tokens
    unigram_accuracy: float  # always predicting the most frequent masked token
    history: list[dict] = field(default_factory=list)  # held-out metrics by step (the run's, resumed parts too)


def pretrain_backbone(
    corpus: Sequence[str], tokenizer: Tokenizer, out_dir: str | os.PathLike, steps: int = 2000, batch_size: int = 32,
    seed: int = 0, config: TextBackboneConfig | None = None, lr: float = 5e-4, weight_decay: float = 0.01,
    warmup_fraction: float = 0.05, val_fraction: float = 0.05, max_val_texts: int = 512, val_every: int | None = None,
    device: str = "cpu", progress: bool = True, num_threads: int | None = None,
    run_dir: str | os.PathLike | None = None, resume: bool = False,
) -> PretrainingReport | None:
    """Pretrain our small DistilBERT on `corpus` (module docstring); save it with its tokenizer in `out_dir`.

    About `steps` steps in `epoch_plan` epochs (an epoch = `val_every` steps, or one pass over the corpus).
    Deterministic for a seed on one device; the global RNG and the torch thread count (`num_threads`, 1 is
    the fast choice on shared cores) are restored after. Under torchrun, the main process reports and saves
    (the others return None)."""
    config = config or TextBackboneConfig()
    if tokenizer.max_length > config.max_position_embeddings:
        tokenizer = Tokenizer(tokenizer.hf, tokenizer.name, config.max_position_embeddings)
    train_texts, val_texts = split_corpus(corpus, val_fraction, max_val_texts, seed)
    pad = tokenizer.pad_token_id
    train_set = BucketedTextStream(tokenize_corpus(train_texts, tokenizer), batch_size, seed=seed, pad_token_id=pad)
    epochs, train_set.batches_per_epoch = epoch_plan(steps, train_set.batches_per_pass, val_every)
    val_set = TextBatches.in_order(tokenize_corpus(val_texts, tokenizer), 64, pad)
    trainer_config = TrainerConfig(
        output_dir=str(run_dir or Path(paths.GENERAL_EXP_OUTPUT_DIR) / "textBackbone" / Path(out_dir).name),
        epochs=epochs, batch_size=1, val_batch_size=1, lr=lr, wd=weight_decay, optimizer="AdamW",
        lr_scheduler="linear", scheduler_interval="step", warmup=max(1, int(warmup_fraction * epochs * len(train_set))),
        grad_clip=1.0, val_every=1 if val_every else epochs, log_step=50, seed=seed, drop_last=False,
        resume=resume, device=device, tensorboard=False, progress=progress,
    )
    ran = 0  # optimisation steps of this call (a resumed run starts past 0)

    def record(trainer: Trainer, event: str, logs: dict) -> None:
        nonlocal ran
        ran += event == "step_end"

    with torch.random.fork_rng(devices=[]), torch_threads(num_threads):
        seed_everything(seed)
        model = MaskedLanguageModel.from_config(config, tokenizer, validation_seed=seed)
        trainer = Trainer(model, train_set, val_set, trainer_config, collate_fn=first_item, callbacks=[record])
        train_set.epoch_of = lambda: trainer.epoch  # the stream's window follows the Trainer's epochs
        initial = trainer.validate()  # {} on the processes other than the main one
        start = time.perf_counter()
        summary = trainer.fit()
        train_time = time.perf_counter() - start
    if not trainer.is_main:
        return None
    # the validations of the whole run, from its log: a resumed run (even one resumed after its last epoch, which
    # validates nothing) reports what an uninterrupted one does
    validations = [r for r in epoch_records(trainer_config.output_dir) if "val/loss" in r]
    history = [{"step": 0, "val_loss": initial["loss"], "val_accuracy": initial["accuracy"]}]
    history += [{"step": r["step"], "val_loss": float(r["val/loss"]), "val_accuracy": float(r["val/accuracy"])}
                for r in validations]  # fmt: skip
    final = {k[4:]: float(v) for k, v in validations[-1].items() if k.startswith("val/")} if validations else {}
    final = final or summary["last_metrics"]
    report = PretrainingReport(
        steps=trainer.global_step, batch_size=batch_size, n_train_texts=len(train_texts), n_val_texts=len(val_texts),
        vocab_size=len(tokenizer), n_parameters=count_parameters(model),
        n_backbone_parameters=count_parameters(model.distilbert), config=asdict(config),
        train_time_s=round(train_time, 2), train_texts_per_s=round(ran * batch_size / max(train_time, 1e-9), 1),
        initial_val_loss=initial["loss"], initial_val_accuracy=initial["accuracy"], val_loss=final["loss"],
        val_accuracy=final["accuracy"], chance_accuracy=final["chance_accuracy"],
        unigram_accuracy=final["unigram_accuracy"], history=history,
    )
    with atomic_files_into(out_dir) as tmp:
        model.to("cpu").save_pretrained(tmp)  # weights and tokenizer
        write_json_atomic(tmp / "pretraining_metrics.json", asdict(report))
    if not math.isfinite(report.val_loss):
        raise RuntimeError(f"MLM pretraining diverged (held-out loss {report.val_loss}); model left in {out_dir}")
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_textBackbone.py", description=__doc__.splitlines()[0])
    p.add_argument("--tokenizer", type=Path, required=True, help="tokenizer folder (from `text train-tokenizer`)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder receiving the model and its tokenizer (distilbertSynth: MODELS_ROOT/distilbert-synth)")
    p.add_argument("--corpus", type=Path, default=None, help="text file, one text per line (default: generated)")
    p.add_argument("--n-poses", type=paths.positive_int, default=3000, help="sampled poses to caption (3 each)")
    p.add_argument("--n-pairs", type=paths.positive_int, default=3000, help="sampled pose pairs to instruct (3 each)")
    p.add_argument("--seed", type=paths.seed_int, default=0, help="seed of the corpus and of the training")
    p.add_argument("--size", choices=sorted(TEXT_BACKBONE_PRESETS), default="base",
                   help="TEXT_BACKBONE_PRESETS: base 4x256 (3.4 M), small 4x128 (0.9 M), tiny 2x64 (0.16 M)")
    p.add_argument("--steps", type=paths.positive_int, default=2000)
    p.add_argument("--batch-size", type=paths.positive_int, default=32)
    p.add_argument("--lr", type=paths.finite_float, default=5e-4)
    p.add_argument("--val-every", type=paths.positive_int, default=None,
                   help="held-out evaluation every N steps (and at the end)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=paths.positive_int, default=None,
                   help="torch CPU threads (1 is faster on shared cores)")
    p.add_argument("--run-dir", type=Path, default=None, help="the Trainer's checkpoints and logs")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last/")
    p.add_argument("--json", action="store_true", help="print the pretraining report as JSON")
    return p


def summary(report: PretrainingReport, size: str, out: Path) -> str:
    """What a run reports to a person: size, speed, held-out loss and accuracy beside the chance levels."""
    return (
        f"text backbone ({size}, {report.n_backbone_parameters:,} parameters) saved in {out}\n"
        f"  {report.steps} steps x {report.batch_size} texts in {report.train_time_s:.0f} s "
        f"({report.train_texts_per_s:.0f} texts/s)\n"
        f"  held-out MLM loss {report.initial_val_loss:.3f} -> {report.val_loss:.3f}, masked-token accuracy "
        f"{report.val_accuracy:.3f} (chance {report.chance_accuracy:.4f}, most frequent token "
        f"{report.unigram_accuracy:.3f})"
    )


@script_main(OSError, ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tokenizer = load_tokenizer(args.tokenizer)
    if args.corpus is not None:
        texts = read_text_lines(args.corpus, "corpus file")[0]  # errors name the file (and line)
    else:
        texts = build_caption_corpus(args.n_poses, args.n_pairs, seed=args.seed)
    report = pretrain_backbone(
        texts, tokenizer, args.out, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        config=TEXT_BACKBONE_PRESETS[args.size], lr=args.lr, val_every=args.val_every, device=args.device,
        num_threads=args.threads, run_dir=args.run_dir, resume=args.resume,
    )  # fmt: skip
    if report is not None:
        print(json.dumps(asdict(report), indent=2) if args.json else summary(report, args.size, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
