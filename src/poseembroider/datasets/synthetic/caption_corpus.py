"""The offline world's text: corpora for the tokenizer and the text backbone, and tokenized dataset caches.

`build_caption_corpus` writes the offline world's text: 3 captions per sampled pose (the BEDLAM-Script
recipe, `caption_variants`) and 3 instructions per pair of sampled poses (the BEDLAM-Fix recipe,
`instruction_variants`). `tokenize_cache` turns a `rawtexts` dataset cache into the
`tokenizedtexts_tokenizer_<name>` cache next to it.

It lives with the synthetic world generator, not with the tokenizers (`text/tokenization.py`), because
it draws poses with the pose sampler, captions them with `text/captioning` and `text/correcting`, and
reads and writes the dataset cache format: all of them sit above the tokenizers in the import order.
The tokenizer training (`poseembroider text train-tokenizer`), the text-backbone pretraining and the
quickstart read the corpus from here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch

from poseembroider.body.body_model import BodyModel
from poseembroider.datasets.cache_format import load_cache, save_cache, tokenized_kind
from poseembroider.datasets.cache_writers import tokenized_texts_cache
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler
from poseembroider.text.captioning.captions import caption_variants
from poseembroider.text.correcting.instructions import instruction_variants
from poseembroider.text.tokenization import Tokenizer

__all__ = ["build_caption_corpus", "iter_caption_corpus", "tokenize_cache", "tokenized_cache_path"]


def iter_caption_corpus(
    n_poses: int, n_pairs: int, seed: int = 0, body_model: BodyModel | None = None, chunk: int = 256
) -> Iterator[list[str]]:
    """Chunks of the corpus of `build_caption_corpus`, for progress bars: captions first, then instructions."""
    if n_poses < 0 or n_pairs < 0:
        raise ValueError(f"n_poses={n_poses} and n_pairs={n_pairs} must be >= 0")
    if body_model is None:
        body_model = BodyModel().eval()
    # two independent sampler streams: adding pairs does not change the captions
    caption_sampler = PoseSampler(seed, body_model=body_model)
    pair_sampler = PoseSampler(seed + 1_000_003, body_model=body_model)
    for start in range(0, n_poses, chunk):
        poses = caption_sampler.sample(min(chunk, n_poses - start)).poses
        yield [text for texts in caption_variants(poses, body_model, seed=seed + start) for text in texts]
    for start in range(0, n_pairs, chunk):
        n = min(chunk, n_pairs - start)
        poses = pair_sampler.sample(2 * n).poses
        yield [
            text
            for texts in instruction_variants(poses[:n], poses[n:], body_model, seed=seed + start)
            for text in texts
        ]


def build_caption_corpus(
    n_poses: int, n_pairs: int, seed: int = 0, body_model: BodyModel | None = None
) -> list[str]:
    """3 * (n_poses + n_pairs) texts: captions of `n_poses` sampled poses, then instructions of `n_pairs`
    pairs of sampled poses. Same arguments, same corpus (empty texts are dropped)."""
    return [t for texts in iter_caption_corpus(n_poses, n_pairs, seed, body_model) for t in texts if t]


def tokenized_cache_path(rawtexts_cache_path: str | os.PathLike, tokenizer_name: str) -> Path:
    """The tokenized cache next to a rawtexts cache: `..._rawtexts...` -> `..._tokenizedtexts_tokenizer_<name>...`."""
    path = Path(rawtexts_cache_path)
    if "_rawtexts" not in path.name:
        raise ValueError(f"{path}: not a rawtexts cache name (no '_rawtexts' in it); give the output path")
    return path.with_name(path.name.replace("_rawtexts", "_" + tokenized_kind(tokenizer_name), 1))


def tokenize_cache(
    rawtexts_cache_path: str | os.PathLike,
    tokenizer: Tokenizer,
    out_path: str | os.PathLike | None = None,
    batch_size: int = 1024,
) -> Path:
    """Tokenize every text of a `rawtexts` cache and write the `tokenizedtexts_tokenizer_<name>` cache.

    Tables: `criteria` (copied), `texts_tokens` {id: [LongTensor (L,)]} (unpadded, `[CLS] ... [SEP]`,
    truncated to `tokenizer.max_length`), `texts_length` {id: [int]} and `tokenizer_name`, built and checked by
    `cache_writers.tokenized_texts_cache`. Written atomically (`cache_format.save_cache`); default output:
    `tokenized_cache_path`.
    """
    data = load_cache(Path(rawtexts_cache_path), "rawtexts")
    out = tokenized_cache_path(rawtexts_cache_path, tokenizer.name) if out_path is None else Path(out_path)
    keys = list(data["texts"])
    flat = [(key, str(text)) for key in keys for text in data["texts"][key]]
    texts_tokens: dict[int, list[torch.Tensor]] = {key: [] for key in keys}
    texts_length: dict[int, list[int]] = {key: [] for key in keys}
    for start in range(0, len(flat), batch_size):
        part = flat[start : start + batch_size]
        tokens, lengths = tokenizer.batch([text for _, text in part])
        for (key, _), row, n in zip(part, tokens, lengths.tolist(), strict=True):
            texts_tokens[key].append(row[:n].clone())
            texts_length[key].append(int(n))
    cache = tokenized_texts_cache(data["criteria"], texts_tokens, texts_length, tokenizer.name)
    return save_cache(cache.tables, out)
