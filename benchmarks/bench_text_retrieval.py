"""PoseText / PairText throughput: frozen text-encoder texts/s and training samples/s on 2 cores.

Encoding (the frozen PoseText text branch PoseEmbroider uses): the published width (latentD 512, 4
transformer layers, ff 1024) over our base DistilBERT backbone (4 x 256), on 128 real captions of the
captioner: texts sorted by length and encoded 32 at a time (`encode_by_length`, ours) vs one batched call
padded to the longest caption (baseline); one call per text is reported beside.
Training: full optimisation steps (forward, symBBC, backward, Adam; the frozen backbone runs without
autograd) at batch 128, for the published PoseText size over the base backbone (baseline) and the CPU size
the quickstart trains (latentD 128, 1 layer, over the tiny backbone: ours), and PairText at the CPU size.
Also the masked-language-modelling pretraining of the text backbone (texts/s at batch 32).
Weights are random (speed does not depend on them); the WordPiece tokenizer is trained on the captions.
One torch thread (on 2 shared cores two threads stall each other); each figure is the best of a few medians.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from common import time_call, write_result
from poseembroider.assisting_models.pairText.model_pairText import PairText, PairTextConfig
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
from poseembroider.assisting_models.textBackbone.model_mlm import MaskedLanguageModel
from poseembroider.assisting_models.textBackbone.model_textBackbone import TEXT_BACKBONE_PRESETS
from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus
from poseembroider.text.tokenization import train_wordpiece_tokenizer

BATCH = 128
PUBLISHED = {"latentD": 512, "transformer_layers": 4, "transformer_ff": 1024}
CPU_SIZE = {"latentD": 128, "transformer_layers": 1, "transformer_ff": 256}


def best_time(fn, rounds: int, repeats: int, warmup: int = 1) -> float:
    """Smallest of `rounds` medians: other processes on a shared machine only ever add time."""
    return min(time_call(fn, repeats=repeats, warmup=warmup) for _ in range(rounds))


def save_backbone(texts: list[str], size: str, folder: Path) -> str:
    """A randomly initialised DistilBERT of preset `size` with a tokenizer trained on `texts`, saved."""
    tokenizer = train_wordpiece_tokenizer(texts, 3000, folder / "tokenizer")
    MaskedLanguageModel.from_config(TEXT_BACKBONE_PRESETS[size], tokenizer).save_pretrained(folder / size)
    return str(folder / size)


def mlm_texts_per_s(texts: list[str], folder: Path, size: str, batch_size: int = 32) -> float:
    """Masked-language-modelling steps (AdamW) of the text backbone of preset `size`, texts/s."""
    tokenizer = train_wordpiece_tokenizer(texts, 3000, folder / "tokenizer")
    model = MaskedLanguageModel.from_config(TEXT_BACKBONE_PRESETS[size], tokenizer).train()
    tokens, lengths = tokenizer.batch(texts[:batch_size])
    batch = {"texts_tokens": tokens, "texts_lengths": lengths}
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch)["loss"].backward()
        optimizer.step()

    return batch_size / best_time(step, rounds=2, repeats=3)


def training_samples_per_s(model: torch.nn.Module, batch: dict, rounds: int = 2, repeats: int = 3) -> float:
    optimizer = torch.optim.Adam(model.param_groups(1e-4, 0.0), lr=1e-4)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch)["loss"].backward()
        optimizer.step()

    return BATCH / best_time(step, rounds=rounds, repeats=repeats)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    texts = build_caption_corpus(n_poses=BATCH, n_pairs=0, seed=0)[:BATCH]
    poses = 0.3 * torch.randn(BATCH, 22, 3)
    with tempfile.TemporaryDirectory() as tmp:
        base = save_backbone(texts, "base", Path(tmp))
        tiny = save_backbone(texts, "tiny", Path(tmp))
        published = PoseText(PoseTextConfig(text_encoder_name=base, **PUBLISHED))
        cpu = PoseText(PoseTextConfig(text_encoder_name=tiny, **CPU_SIZE))
        pairs = PairText(PairTextConfig(text_encoder_name=tiny, **CPU_SIZE))
        tokens, lengths = published.text_encoder.tokenizer.batch(texts)

        encoder = published.text_encoder.eval()
        with torch.no_grad():
            by_length = best_time(lambda: encoder.encode_by_length(tokens, lengths, 32), rounds=3, repeats=3)
            batched = best_time(lambda: encoder(tokens, lengths), rounds=2, repeats=1)
            single = [(tokens[i : i + 1, : int(lengths[i])], lengths[i : i + 1]) for i in range(BATCH)]
            looped = best_time(lambda: [encoder(t, n) for t, n in single], rounds=2, repeats=1)

        def batch_for(model: torch.nn.Module) -> dict:
            t, n = model.text_encoder.tokenizer.batch(texts)
            return {"poses": poses, "poses_A": poses, "poses_B": poses.flip(0), "texts_tokens": t, "texts_lengths": n}

        train_published = training_samples_per_s(published, batch_for(published), rounds=1, repeats=2)
        train_cpu = training_samples_per_s(cpu, batch_for(cpu))
        train_pairs = training_samples_per_s(pairs, batch_for(pairs))
        mlm = {size: mlm_texts_per_s(texts, Path(tmp), size) for size in ("base", "tiny")}
    write_result(
        "text_retrieval",
        {
            "threads": 1,
            "batch": BATCH,
            "mean_caption_tokens": float(lengths.float().mean()),
            "ours_encode_texts_per_s": BATCH / by_length,
            "baseline_encode_texts_per_s": BATCH / batched,
            "ratio": batched / by_length,
            "per_text_loop_encode_texts_per_s": BATCH / looped,
            "max_caption_tokens": int(lengths.max()),
            "ours": "PoseText text branch (published width 512 / 4 layers, base backbone), texts sorted by length, "
            "32 per call",
            "baseline": "the same encoder, one call on the 128 texts padded to the longest",
            "posetext_train_published_samples_per_s": train_published,
            "posetext_train_cpu_samples_per_s": train_cpu,
            "posetext_train_ratio_cpu_vs_published": train_cpu / train_published,
            "pairtext_train_cpu_samples_per_s": train_pairs,
            "mlm_pretraining_texts_per_s": mlm,
            "mlm": "masked-language-modelling AdamW steps of the text backbone at batch 32 (base 4x256, tiny 2x64)",
            "train": "Adam steps at batch 128: published PoseText (512 / 4 layers, base backbone) vs the "
            "quickstart's CPU size (128 / 1 layer, tiny backbone); PairText at the CPU size",
        },
    )


if __name__ == "__main__":
    main()
