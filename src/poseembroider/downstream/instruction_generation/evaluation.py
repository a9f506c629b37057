"""Evaluation of generated instructions (original_system.md §5.3): for each input set and decoding method, the
texts generated for every pair of a split, scored against the pairs' annotated instructions.

- R-precision (R@1/2/3): PairText embeds each generated text and each ground-truth pair (poses A, B); the rank
  of the pair among a random pool of 200 pairs (or the split), averaged over 10 pools.
- BLEU-4, ROUGE-L, METEOR (x 100), multi-reference: all the annotated instructions of the pair.
- `avg_likelihood`: the mean per-token log-likelihood of the generated texts (the decoding's score), and
  `texts_per_s`: generated instructions per second (decoding only, one process).

Control measures, as the original: `GT`, the annotated instruction itself (R-precision of the first annotation;
its NLP metrics leave it out of its own references, over the pairs that have another one), and `random`, the
first annotation of another pair drawn at random (a derangement: never the pair's own). A model whose texts
are read as well as the annotations reaches GT's R-precision; random's is chance, ~100 k / pool.

The metrics themselves are `poseembroider.evaluation.text_generation`'s, called from `score_texts` only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from poseembroider import config
from poseembroider.assisting_models.pairText.model_pairText import PairText
from poseembroider.downstream.instruction_generation.data import InputSet, PairReferences
from poseembroider.downstream.instruction_generation.model_instruction_generation import InstructionGenerator
from poseembroider.evaluation.text_generation import r_precision, text_generation_metrics

__all__ = [
    "METRIC_COLUMNS",
    "control_texts",
    "evaluate_instruction_generator",
    "format_table",
    "generate_instructions",
    "pair_embeddings",
    "score_texts",
    "text_embeddings",
]

METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("R@1", "R@1"),
    ("R@2", "R@2"),
    ("R@3", "R@3"),
    ("bleu4", "BLEU-4"),
    ("rouge_l", "ROUGE-L"),
    ("meteor", "METEOR"),
    ("texts_per_s", "texts/s"),
)
"""(metric key, column title) of the result table, in the paper's order."""

XbarSource = Callable[[InputSet], tuple[torch.Tensor, torch.Tensor]]
"""`xbar_for(input_set) -> (x̄_A (N, D), x̄_B (N, D))` in the order of the evaluated pairs."""


@torch.no_grad()
def generate_instructions(
    model: InstructionGenerator,
    xbar_A: torch.Tensor,
    xbar_B: torch.Tensor,
    decoding: str = "greedy",
    batch_size: int = 128,
    progress: bool = False,
    **options: Any,
) -> tuple[list[str], dict[str, float]]:
    """(texts, timing): the instruction of every row of x̄_A / x̄_B (N, D), decoded in batches; timing holds
    `seconds` (decoding, excluding the text detokenisation), `texts_per_s` and `avg_likelihood`."""
    model.eval()
    device = next(model.parameters()).device
    texts: list[str] = []
    scores: list[torch.Tensor] = []
    seconds = 0.0
    n = xbar_A.shape[0]
    for start in tqdm(range(0, n, batch_size), desc=f"generating ({decoding})", disable=not progress, leave=False):
        a = xbar_A[start : start + batch_size].to(device)
        b = xbar_B[start : start + batch_size].to(device)
        begin = time.perf_counter()
        generated = model.generate(a, b, decoding, **options)
        seconds += time.perf_counter() - begin
        texts += model.texts_of(generated)
        scores.append(generated.scores.cpu())
    return texts, {
        "seconds": seconds,
        "texts_per_s": n / max(seconds, 1e-9),
        "avg_likelihood": float(torch.cat(scores).mean()),
    }


@torch.no_grad()
def pair_embeddings(pairtext: PairText, references: PairReferences, batch_size: int = 256) -> torch.Tensor:
    """(N, D) PairText embeddings of the ground-truth pairs (poses A and B)."""
    pairtext.eval()
    device = next(pairtext.parameters()).device
    parts = [
        pairtext.encode_pose_pairs(
            references.poses_A[s : s + batch_size].to(device), references.poses_B[s : s + batch_size].to(device)
        ).cpu()
        for s in range(0, len(references), batch_size)
    ]
    return torch.cat(parts).float()


@torch.no_grad()
def text_embeddings(pairtext: PairText, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """(N, D) PairText embeddings of texts (tokenized with PairText's own tokenizer)."""
    pairtext.eval()
    return torch.cat(
        [pairtext.encode_raw_texts(list(texts[s : s + batch_size])).cpu() for s in range(0, len(texts), batch_size)]
    ).float()


def score_texts(
    texts: Sequence[str],
    references: Sequence[Sequence[str]],
    texts_embedded: torch.Tensor | None,
    pairs_embedded: torch.Tensor | None,
    seed: int = 0,
    pool_size: int = config.sample_size_r_precision,
    n_repetitions: int = config.r_precision_n_repetitions,
) -> dict[str, float]:
    """R@1/2/3 (when embeddings are given) and BLEU-4 / ROUGE-L / METEOR of `texts` against their references:
    the one place this package calls the metrics (`poseembroider.evaluation.text_generation`)."""
    out: dict[str, float] = {}
    if texts_embedded is not None and pairs_embedded is not None:
        out.update(
            r_precision(texts_embedded, pairs_embedded, pool_size=pool_size, n_repetitions=n_repetitions, seed=seed)
        )
    out.update(text_generation_metrics(list(texts), [list(r) for r in references]))
    return out


def derangement(n: int, seed: int) -> np.ndarray:
    """A random permutation of range(n) without fixed point (n >= 2): row i is paired with another row."""
    if n < 2:
        raise ValueError(f"the random control needs at least 2 pairs, got {n}")
    generator = np.random.default_rng(seed)
    order = generator.permutation(n)
    # a cyclic shift along a random order has no fixed point and is uniform over the cyclic derangements
    out = np.empty(n, dtype=np.int64)
    out[order] = np.roll(order, 1)
    return out


def control_texts(references: PairReferences, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The texts of the control measures: {'GT' | 'random': {'texts', 'rows' (for R-precision: the i-th text
    describes pair i), 'nlp_texts', 'nlp_references' (for the NLP metrics)}} (see the module docstring)."""
    first = [texts[0] for texts in references.texts]
    others = derangement(len(references), seed)
    random_texts = [first[j] for j in others]
    multi = [i for i, texts in enumerate(references.texts) if len(texts) > 1]
    return {
        "GT": {
            "texts": first,
            "nlp_texts": [references.texts[i][0] for i in multi],
            "nlp_references": [references.texts[i][1:] for i in multi],
        },
        "random": {"texts": random_texts, "nlp_texts": random_texts, "nlp_references": references.texts},
    }


def evaluate_instruction_generator(
    model: InstructionGenerator,
    references: PairReferences,
    xbar_for: XbarSource,
    pairtext: PairText,
    input_sets: Sequence[InputSet],
    decodings: Mapping[str, Mapping[str, Any]],
    batch_size: int = 128,
    seed: int = 0,
    pool_size: int = config.sample_size_r_precision,
    n_repetitions: int = config.r_precision_n_repetitions,
    examples: int = 5,
    progress: bool = False,
    other_decodings: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Metrics of every (input set, decoding) and of the controls.

    `decodings`: {name: {'decoding': method, **options}} (e.g. {'beam4': {'decoding': 'beam', 'beam_size': 4}}),
    for the generator's own input set (the types it was trained on, both sides); `other_decodings` for the
    other input sets (default: `decodings`).
    Returns {'controls': {'GT': metrics, 'random': metrics}, 'results': {input set: {decoding name: metrics}},
    'examples': {input set: {decoding name: the first `examples` texts}}, 'references': the first `examples`
    pairs' instructions}."""
    pairs = pair_embeddings(pairtext, references)
    scoring = {"seed": seed, "pool_size": pool_size, "n_repetitions": n_repetitions}
    controls = {}
    for name, control in control_texts(references, seed).items():
        r_at = r_precision(
            text_embeddings(pairtext, control["texts"]),
            pairs,
            pool_size=pool_size,
            n_repetitions=n_repetitions,
            seed=seed,
        )
        nlp = score_texts(control["nlp_texts"], control["nlp_references"], None, None) if control["nlp_texts"] else {}
        controls[name] = {**r_at, **nlp}
    results: dict[str, dict[str, Any]] = {}
    shown: dict[str, dict[str, list[str]]] = {}
    for input_set in input_sets:
        xbar_A, xbar_B = xbar_for(input_set)
        if xbar_A.shape[0] != len(references) or xbar_B.shape[0] != len(references):
            raise ValueError(
                f"input set {input_set.name}: x̄ of {xbar_A.shape[0]} / {xbar_B.shape[0]} pairs for {len(references)}"
            )
        results[input_set.name], shown[input_set.name] = {}, {}
        own = input_set.types_A == input_set.types_B == tuple(model.config.representation_model_input_types)
        for name, spec in (decodings if own or other_decodings is None else other_decodings).items():
            options = dict(spec)
            method = options.pop("decoding")
            texts, timing = generate_instructions(
                model, xbar_A, xbar_B, method, batch_size=batch_size, progress=progress, **options
            )
            metrics = score_texts(texts, references.texts, text_embeddings(pairtext, texts), pairs, **scoring)
            results[input_set.name][name] = {**metrics, **timing}
            shown[input_set.name][name] = texts[:examples]
    return {
        "controls": controls,
        "results": results,
        "examples": shown,
        "references": references.texts[:examples],
    }


def format_table(result: Mapping[str, Any]) -> str:
    """The result as a text table: one row per control and per (input set, decoding), the paper's columns."""
    header = f"{'':<28}" + "".join(f"{title:>9}" for _, title in METRIC_COLUMNS)
    lines = [header]

    def row(label: str, metrics: Mapping[str, float]) -> str:
        cells = "".join(f"{metrics[key]:9.1f}" if key in metrics else f"{'-':>9}" for key, _ in METRIC_COLUMNS)
        return f"{label:<28}" + cells

    for name, metrics in result["controls"].items():
        lines.append(row(f"control {name}", metrics))
    for input_set, by_decoding in result["results"].items():
        for decoding, metrics in by_decoding.items():
            lines.append(row(f"({input_set}) {decoding}", metrics))
    return "\n".join(lines)
