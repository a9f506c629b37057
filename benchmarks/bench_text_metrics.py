"""METEOR over an evaluation's rows on 1 thread: stems, synsets and tokens remembered vs nltk's plain call.

An instruction-generation evaluation scores several rows (decodings, input sets, the GT and random controls) of
predictions against the same references: 9 rows of 954 pairs in the quickstart. Here: 1,024 CMU pose pairs,
3 instructions each from our instruction writer; references are instructions 2 and 3 of each pair, and the
9 rows of predictions are instruction 1 of the pair itself, then of the pair 1, ..., 8 places further (texts
of other pairs, as weak decodings). Ours: `meteor_scores` per row, every cache emptied first (one cold
evaluation). Baseline: nltk's `meteor_score` per prediction with a fresh Porter stemmer and the WordNet reader,
the texts tokenised each time. Both give the same scores (checked); ROUGE-L and BLEU-4 of the same rows
are timed beside them for scale.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from common import time_call, write_result
from poseembroider.body.body_model import BodyModel
from poseembroider.data import load_cmu_dev_poses
from poseembroider.evaluation import text_generation as tg
from poseembroider.text.correcting.instructions import instruction_variants

NUM_PAIRS = 1024
NUM_ROWS = 9


def _texts() -> list[list[str]]:
    rng = np.random.default_rng(0)
    cmu = load_cmu_dev_poses()
    first = rng.integers(0, len(cmu), NUM_PAIRS)
    second = np.where(rng.random(NUM_PAIRS) < 0.5, first, rng.integers(0, len(cmu), NUM_PAIRS))
    a = torch.from_numpy(cmu[first] + rng.normal(0, 0.1, (NUM_PAIRS, 22, 3)).astype(np.float32))
    b = torch.from_numpy(cmu[second] + rng.normal(0, 0.1, (NUM_PAIRS, 22, 3)).astype(np.float32))
    return instruction_variants(a, b, BodyModel().eval(), seed=0)


def _forget() -> None:
    tg._meteor_tokens.cache_clear()
    tg._remembering_stemmer.cache_clear()
    tg._remembering_wordnet.cache_clear()


def main() -> None:
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import meteor_score

    torch.set_num_threads(1)
    texts = _texts()
    references = [list(per_pair[1:]) for per_pair in texts]
    rows = [[texts[(i + shift) % NUM_PAIRS][0] for i in range(NUM_PAIRS)] for shift in range(NUM_ROWS)]
    wordnet = tg.load_wordnet()

    def ours() -> list[list[float]]:
        _forget()
        return [tg.meteor_scores(row, references, wordnet=wordnet) for row in rows]

    def plain() -> list[list[float]]:
        scores = []
        for row in rows:
            stemmer = PorterStemmer()
            scores.append([
                100.0 * meteor_score([tg._meteor_tokens.__wrapped__(r) for r in refs],
                                     tg._meteor_tokens.__wrapped__(pred), stemmer=stemmer, wordnet=wordnet,
                                     **tg.METEOR_PARAMETERS)
                for pred, refs in zip(row, references, strict=True)
            ])  # fmt: skip
        return scores

    same = ours() == plain()
    ours_s = time_call(ours, repeats=3, warmup=0)
    plain_s = time_call(plain, repeats=1, warmup=0)
    start = time.perf_counter()
    for row in rows:
        tg.rouge_l(row, references)
    rouge_s = time.perf_counter() - start
    start = time.perf_counter()
    for row in rows:
        tg.bleu4(row, references)
    bleu_s = time.perf_counter() - start
    predictions = NUM_PAIRS * NUM_ROWS
    write_result(
        "text_metrics",
        {
            "ours": "meteor_scores: Porter stems, WordNet synsets and tokens remembered (caches emptied each run)",
            "baseline": "nltk meteor_score per prediction, fresh PorterStemmer, WordNet reader, texts re-tokenised",
            "predictions": predictions,
            "rows": NUM_ROWS,
            "same_scores": same,
            "meteor_predictions_per_s": predictions / ours_s,
            "meteor_baseline_predictions_per_s": predictions / plain_s,
            "meteor_speedup": plain_s / ours_s,
            "meteor_s": ours_s,
            "meteor_baseline_s": plain_s,
            "rouge_l_s": rouge_s,
            "bleu4_s": bleu_s,
        },
    )


if __name__ == "__main__":
    main()
