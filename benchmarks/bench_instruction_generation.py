"""InstructionGenerator: training samples/s from cached x̄, and generated instructions/s greedy vs beam 4 and rerank.

At the quickstart's decoder size (decoder_latentD 128, 2 layers, 4 heads, feed-forward 256; x̄ of 512), on the
instructions our instruction writer gives for pairs of independently sampled poses (longer than those of the
mined pairs of the datasets: ~380 characters against ~200), tokenized by a WordPiece tokenizer trained on them;
x̄ are random (speed does not depend on their values). One torch thread, everything in one process.

Training: whole steps as the Trainer runs them from an x̄ cache (items = x̄ rows + an instruction tokenized on
read, DataLoader, collate, forward, cross-entropy, backward, Adam), batch 32:

- baseline: one padded decoder call per batch and the recipe's `--decoder_dropout 0.1`;
- chunked: the CPU loss in length-sorted chunks (`InstructionGenerator.loss`, same loss and gradients);
- ours: chunked and `--decoder_dropout 0` (dropout sends CPU attention to its unfused path and draws a mask
  per activation);
- specificity: ours with `--wloss_specificity 3` (the quickstart's setting): a second decoder pass under
  another pair's x̄ (`specificity_over_ours`).

Generation (eval mode, 256 pairs in batches of 128, each text exactly 48 tokens long: `min_length` 47 and
`max_length` 48, so that every method decodes the same number of steps): greedy over the key/value-cached
incremental decoder (ours) vs greedy recomputing the whole prefix at every step (the original's way), and beam
search of 4 beams (cached) vs greedy, and rerank at the quickstart's sizes (the greedy text and 4 nucleus samples,
each judged by the listener under its own pair and 8 kept distractor pairs) vs greedy. On a machine shared with
other processes, wall times move with the load; the ratios, measured in one process, are the stable figures.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from common import write_result
from poseembroider.assisting_models.poseText.data import text_collate_fn
from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus
from poseembroider.downstream.instruction_generation import InstructionGenerator, InstructionGeneratorConfig
from poseembroider.downstream.instruction_generation.decoding import decode
from poseembroider.text.tokenization import load_tokenizer, train_wordpiece_tokenizer

D = 512
SIZE = {"decoder_latentD": 128, "decoder_nlayers": 2, "decoder_nhead": 4, "decoder_ff": 256}
BATCH = 32
BATCHES = 12  # timed training steps per setting, after one untimed
N_GENERATED = 256
GENERATION_BATCH = 128
LENGTH = 48
RERANK_SAMPLES = 4  # the quickstart's rerank: 4 nucleus samples beside the greedy text, 8 distractor pairs
RERANK_DISTRACTORS = 8
# (chunk_tokens, dropout, specificity weight): "specificity" is the quickstart's training step (two decoder passes)
SETTINGS = {
    "baseline": (0, 0.1, 0.0),
    "chunked": (None, 0.1, 0.0),
    "ours": (None, 0.0, 0.0),
    "specificity": (None, 0.0, 3.0),
}


class CachedPairs(Dataset):
    """Items as the training reads them: x̄ rows of a cache and an instruction tokenized on read."""

    def __init__(self, texts: list[str], tokenizer) -> None:
        self.texts, self.tokenizer = texts, tokenizer
        generator = torch.Generator().manual_seed(0)
        self.xbar = torch.nn.functional.normalize(torch.randn(len(texts), 2, D, generator=generator), dim=-1)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> dict:
        tokens = self.tokenizer(self.texts[index])
        return {
            "pair_ids": index,
            "texts_tokens": tokens,
            "texts_lengths": int(tokens.numel()),
            "xbar_A": self.xbar[index, 0],
            "xbar_B": self.xbar[index, 1],
        }


def model_of(
    tokenizer_dir: str, dropout: float, specificity: float = 0.0, distractors: int = 0
) -> InstructionGenerator:
    torch.manual_seed(0)
    config = InstructionGeneratorConfig(
        latentD=D,
        comparison_latentD=D,
        decoder_dropout=dropout,
        wloss_specificity=specificity,
        distractor_bank_size=distractors,
        text_decoder_name=tokenizer_dir,
        **SIZE,
    )
    return InstructionGenerator(config)


def training_samples_per_s(tokenizer_dir: str, texts: list[str], setting: tuple) -> float:
    chunk_tokens, dropout, specificity = setting
    model = model_of(tokenizer_dir, dropout, specificity).train()
    if chunk_tokens is not None:
        model.chunk_tokens = chunk_tokens
    loader = DataLoader(
        CachedPairs(texts, model.tokenizer),
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        collate_fn=text_collate_fn(model.tokenizer),
        generator=torch.Generator().manual_seed(0),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(batch: dict) -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch)["loss"].backward()
        optimizer.step()

    batches = iter(loader)
    step(next(batches))
    start = time.perf_counter()
    for _ in range(BATCHES):
        step(next(batches))
    return BATCHES * BATCH / (time.perf_counter() - start)


class FullPrefix:
    """Decoding state recomputing the whole prefix at every step (no cache): the baseline of the cache."""

    def __init__(self, model: InstructionGenerator, memory: torch.Tensor, bos: int) -> None:
        self.model, self.memory, self.prefix = model, memory, None
        self.bos = bos

    def expand(self, k: int) -> FullPrefix:
        return FullPrefix(self.model, self.memory.repeat_interleave(k, dim=0), self.bos)

    def __call__(self, tokens: torch.Tensor, parents: torch.Tensor | None) -> torch.Tensor:
        if parents is not None:
            self.memory, self.prefix = self.memory[parents], self.prefix[parents]
        step = tokens[:, None]
        self.prefix = step if self.prefix is None else torch.cat([self.prefix, step], dim=1)
        return self.model.text_decoder(self.prefix, self.memory)[:, -1]


@torch.no_grad()
def texts_per_s(model: InstructionGenerator, xbar: torch.Tensor, method: str, cached: bool = True, **options) -> float:
    start = time.perf_counter()
    for s in range(0, xbar.shape[0], GENERATION_BATCH):
        a, b = xbar[s : s + GENERATION_BATCH, 0], xbar[s : s + GENERATION_BATCH, 1]
        memory = model.memory(a, b)
        state = model.decoding_state(a, b) if cached else FullPrefix(model, memory, model.special.bos)
        out = decode(method, state, a.shape[0], model.special, LENGTH, LENGTH - 1, "cpu", **options)
        assert int(out.lengths.min()) == LENGTH - 1 or int(out.lengths.min()) == LENGTH
    return xbar.shape[0] / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    texts = [t for t in build_caption_corpus(n_poses=0, n_pairs=320, seed=0) if t][: BATCH * (BATCHES + 1)]
    results: dict = {"threads": 1, "batch": BATCH, "decoder": SIZE, "mean_instruction_chars": 0.0}
    results["mean_instruction_chars"] = sum(map(len, texts)) / len(texts)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = str(Path(tmp) / "tokenizer")
        train_wordpiece_tokenizer(texts, vocab_size=800, out_dir=tokenizer_dir)
        results["vocab_size"] = len(load_tokenizer(tokenizer_dir))
        training = {name: training_samples_per_s(tokenizer_dir, texts, s) for name, s in SETTINGS.items()}
        model = model_of(tokenizer_dir, 0.0, distractors=RERANK_DISTRACTORS).eval()
        xbar = torch.nn.functional.normalize(
            torch.randn(N_GENERATED, 2, D, generator=torch.Generator().manual_seed(1)), dim=-1
        )
        model.set_distractor_bank(xbar[:, 0], xbar[:, 1])
        generation = {
            "greedy_full_prefix": texts_per_s(model, xbar, "greedy", cached=False),
            "greedy": texts_per_s(model, xbar, "greedy"),
            "beam4": texts_per_s(model, xbar, "beam", beam_size=4),
            "beam4_full_prefix": texts_per_s(model, xbar, "beam", cached=False, beam_size=4),
            "rerank4": texts_per_s(model, xbar, "rerank", nucleus_samples=RERANK_SAMPLES),
        }
    results.update(
        ours="training: length-sorted chunks, --decoder_dropout 0; generation: key/value-cached incremental decoder",
        baseline="training: one padded call, --decoder_dropout 0.1; generation: the whole prefix recomputed per step",
        training_samples_per_s={k: round(v, 1) for k, v in training.items()},
        training_ratio=training["ours"] / training["baseline"],
        specificity_over_ours=training["specificity"] / training["ours"],
        texts_per_s={k: round(v, 1) for k, v in generation.items()},
        greedy_cache_ratio=generation["greedy"] / generation["greedy_full_prefix"],
        beam4_cache_ratio=generation["beam4"] / generation["beam4_full_prefix"],
        greedy_over_beam4=generation["greedy"] / generation["beam4"],
        greedy_over_rerank4=generation["greedy"] / generation["rerank4"],
    )
    write_result("instruction_generation", results)


if __name__ == "__main__":
    main()
