import math
import subprocess
import sys

import pytest
import torch

from poseembroider import config
from poseembroider.evaluation import text_generation as tg
from poseembroider.evaluation.retrieval import ground_truth_ranks

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCE = "Raise your left arm above your head."
OTHER = "Bend the right knee and lower both hands."


# ------------------------------------------------------------------------------------------- BLEU


def test_bleu_of_identical_texts_is_100():
    assert tg.bleu4([SENTENCE, OTHER], [[SENTENCE], [OTHER]]) == pytest.approx(100.0)


def test_bleu_hand_computed():
    """Unigram 5/6 (the second 'the' is clipped), bigram 3/5, trigram 2/4, 4-gram 1/3, same length:
    BLEU = (5/6 * 3/5 * 1/2 * 1/3) ** (1/4) = (1/12) ** (1/4)."""
    score = tg.bleu4(["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert score == pytest.approx(100.0 * (1.0 / 12.0) ** 0.25, abs=1e-6)


def test_bleu_multi_reference_counts_ngrams_of_the_best_reference():
    assert tg.bleu4([SENTENCE], [[OTHER, SENTENCE]]) == pytest.approx(100.0)
    assert tg.bleu4([SENTENCE], [[OTHER]]) == 0.0  # no 4-gram in common, no smoothing
    # samples may have different numbers of references
    assert tg.bleu4([SENTENCE, OTHER], [[OTHER, SENTENCE, "a third one"], [OTHER]]) == pytest.approx(100.0)


def test_bleu_is_case_insensitive_unless_asked():
    assert tg.bleu4([SENTENCE.lower()], [[SENTENCE]]) == pytest.approx(100.0)
    assert tg.bleu4([SENTENCE.lower()], [[SENTENCE]], lowercase=False) < 100.0


# ------------------------------------------------------------------------------------------- ROUGE-L


def test_rouge_l_hand_computed_and_best_reference():
    assert tg.rouge_l([SENTENCE], [[SENTENCE]]) == pytest.approx(100.0)
    # LCS("raise the left arm", "raise your arm up now") = "raise arm": P = 2/4, R = 2/5, F = 4/9
    assert tg.rouge_l(["raise the left arm"], [["raise your arm up now"]]) == pytest.approx(100.0 * 4 / 9)
    per_sample = tg.rouge_l_scores(["raise the left arm", SENTENCE], [["raise your arm up now", OTHER], [SENTENCE]])
    assert per_sample == pytest.approx([100.0 * 4 / 9, 100.0])
    assert tg.rouge_l(["raise the left arm", SENTENCE], [["raise your arm up now"], [SENTENCE]]) == pytest.approx(
        (100.0 * 4 / 9 + 100.0) / 2
    )


# ------------------------------------------------------------------------------------------- METEOR


def test_wordnet_is_installed_and_read_offline(no_network):
    """`make install` puts WordNet 3.0 on disk (tools/install_system_packages.sh); nothing is downloaded."""
    wordnet = tg.load_wordnet()
    assert wordnet.get_version() == "3.0"
    assert wordnet.morphy("knees") == "knee"
    assert wordnet.synset("dog.n.01").lexname() == "noun.animal"  # the lexnames table, served when absent
    assert any("lift" in s.lemma_names() for s in wordnet.synsets("raise", pos="v"))


def test_meteor_hand_computed(no_network):
    """Identical 5-token texts: precision = recall = 1, one chunk of 5 matches, fragmentation penalty
    0.5 * (1/5)^3 = 0.004: METEOR 0.996."""
    assert tg.meteor(["Raise your left arm."], [["raise your left arm."]]) == pytest.approx(99.6)
    # synonyms through WordNet: 'lifts' ~ 'raises', 'over' ~ 'above' (measured in environment.md §10)
    score = tg.meteor(
        ["the person raises the left arm above the head"], [["the person lifts the left arm over the head"]]
    )
    assert score == pytest.approx(74.72, abs=0.01)


def test_meteor_multi_reference_takes_the_best_reference(no_network):
    # nltk's documented example: three references, 0.6944
    hypothesis = "It is a guide to action which ensures that the military always obeys the commands of the party"
    references = [
        "It is a guide to action that ensures that the military will forever heed Party commands",
        "It is the guiding principle which guarantees the military forces always being under the command of the Party",
        "It is the practical guide for the army always to heed the directions of the party",
    ]
    assert tg.meteor([hypothesis], [references]) == pytest.approx(69.44, abs=0.01)
    best = max(tg.meteor([hypothesis], [[r]]) for r in references)
    assert tg.meteor([hypothesis], [references]) == pytest.approx(best)
    assert tg.meteor_scores([SENTENCE, ""], [[OTHER, SENTENCE], [OTHER]]) == pytest.approx([100 * (1 - 0.5 / 8**3), 0])


def test_meteor_remembers_stems_and_synonyms_and_gives_nltks_scores(no_network):
    """Stems, synsets and tokens are looked up once per word / text; the scores are nltk's, to the last bit."""
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import meteor_score

    predictions = [
        "Bend your left knee a bit more and raise both arms above the head.",
        "Lift the right leg, then straighten the knees. Turn your torso to the left.",
        "Lower your arms slowly; spread the legs wider.",
    ]
    references = [
        ["Bend the left knee more, lifting both arms over your head.", "Raise your arms above the head."],
        ["Raise the right leg and straighten both knees. Rotate the torso leftwards."],
        ["Spread your legs wider and lower the arms.", "Lowering arms, legs further apart."],
    ]
    wordnet = tg.load_wordnet()
    plain = [
        100.0
        * meteor_score(
            [tg.tokenize_for_meteor(r) for r in refs],
            tg.tokenize_for_meteor(pred),
            stemmer=PorterStemmer(),
            wordnet=wordnet,
            **tg.METEOR_PARAMETERS,
        )
        for pred, refs in zip(predictions, references, strict=True)
    ]
    assert tg.meteor_scores(predictions, references, wordnet=wordnet) == plain
    stems = tg._remembering_stemmer().stem.cache_info()
    assert tg.meteor_scores(predictions, references, wordnet=wordnet) == plain  # all remembered now
    assert tg._remembering_stemmer().stem.cache_info().misses == stems.misses
    remembered = tg._remembering_wordnet(wordnet)
    assert "bit" in remembered._synsets and remembered.get_version() == "3.0"  # the rest goes to the reader


def test_text_generation_metrics_together(no_network):
    metrics = tg.text_generation_metrics([SENTENCE, OTHER], [[SENTENCE], [OTHER, SENTENCE]])
    assert set(metrics) == {"bleu4", "rouge_l", "meteor"}
    assert metrics["bleu4"] == pytest.approx(100.0) and metrics["rouge_l"] == pytest.approx(100.0)
    assert 99.0 < metrics["meteor"] < 100.0


def test_missing_wordnet_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "WORDNET_DIR", tmp_path)
    with pytest.raises(tg.WordNetNotFoundError, match="POSEEMBROIDER_WORDNET_DIR.*wordnet-base") as err:
        tg.meteor([SENTENCE], [[SENTENCE]])
    assert "data.noun" in str(err.value) and "make install" in str(err.value)
    import nltk.data

    monkeypatch.setattr(config, "WORDNET_DIR", None)
    monkeypatch.setattr(tg, "WORDNET_SYSTEM_DIR", tmp_path / "no_wordnet")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "no_nltk_data")])
    with pytest.raises(tg.WordNetNotFoundError, match="wordnet-base wordnet-sense-index"):
        tg.find_wordnet_dir()


def test_importing_the_module_loads_no_metric_library():
    code = (
        "import sys, poseembroider.evaluation.text_generation\n"
        "print(sorted(m for m in ('nltk', 'sacrebleu', 'rouge_score') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: tg.bleu4(SENTENCE, [[SENTENCE]]), TypeError, "predictions"),
        (lambda: tg.bleu4([], []), ValueError, "predictions: no generated text"),
        (lambda: tg.rouge_l([SENTENCE], SENTENCE), ValueError, "references: expected one list.*a string"),
        (lambda: tg.rouge_l([SENTENCE], [SENTENCE]), TypeError, r"references\[0\]: .*wrap it"),
        (lambda: tg.rouge_l([SENTENCE, OTHER], [[SENTENCE]]), ValueError, r"references: .*\(2\), got 1"),
        (lambda: tg.meteor([SENTENCE], [[]]), ValueError, r"references\[0\]"),
        (lambda: tg.bleu4([SENTENCE, OTHER], [[SENTENCE], OTHER]), TypeError, r"references\[1\]"),
    ],
)
def test_bad_text_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------------------------- R-precision


def _embeddings(n: int, d: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_r_precision_of_identical_embeddings_is_100():
    pairs = _embeddings(500)
    assert tg.r_precision(pairs, pairs) == {"R@1": 100.0, "R@2": 100.0, "R@3": 100.0}


def test_r_precision_of_unrelated_embeddings_is_near_chance():
    """Unrelated texts: the ground truth's averaged rank in a pool of 200 is below k for about k / 200 of
    the queries (0.5%, 1%, 1.5%)."""
    result = tg.r_precision(_embeddings(2000, seed=1), _embeddings(2000, seed=2))
    assert list(result) == ["R@1", "R@2", "R@3"]
    assert result["R@1"] <= result["R@2"] <= result["R@3"] < 4.0
    assert result["R@1"] < 2.0


def test_pool_rank_follows_the_hypergeometric_law_of_explicit_pools():
    """Averaged over many pools, the drawn rank of query i tends to (pool - 1) * K_i / (N - 1), K_i being the
    number of other pairs scored above its ground truth: what explicit pools give."""
    texts, pairs = _embeddings(60, seed=3), _embeddings(60, seed=4)
    full = ground_truth_ranks(texts, pairs).double()
    mean_ranks = tg.r_precision_mean_ranks(texts, pairs, pool_size=10, n_repetitions=4000)
    torch.testing.assert_close(mean_ranks, 9 * full / 59, atol=0.15, rtol=0)
    # explicit pools for one query: the ground truth plus 9 of the 59 others, without replacement
    g = torch.Generator().manual_seed(0)
    scores = texts[7] @ pairs.t()
    others = torch.tensor([j for j in range(60) if j != 7])
    explicit = [float((scores[others[torch.randperm(59, generator=g)[:9]]] > scores[7]).sum()) for _ in range(4000)]
    assert sum(explicit) / len(explicit) == pytest.approx(float(mean_ranks[7]), abs=0.15)


def test_pool_larger_than_the_split_ranks_against_the_whole_split():
    texts, pairs = _embeddings(50, seed=5), _embeddings(50, seed=6)
    mean_ranks = tg.r_precision_mean_ranks(texts, pairs)  # pool 200 > 50: the pool is the split
    assert torch.equal(mean_ranks, ground_truth_ranks(texts, pairs).double())
    result = tg.r_precision(texts, pairs, ks=(1, 5))
    expected = {f"R@{k}": float((mean_ranks < k).double().mean() * 100) for k in (1, 5)}
    assert result == expected


def test_r_precision_is_seeded():
    texts, pairs = _embeddings(400, seed=7), _embeddings(400, seed=8)
    a = tg.r_precision_mean_ranks(texts, pairs, seed=1)
    assert torch.equal(a, tg.r_precision_mean_ranks(texts, pairs, seed=1))
    assert not torch.equal(a, tg.r_precision_mean_ranks(texts, pairs, seed=2))
    assert math.isclose(
        float(a.mean()), float(ground_truth_ranks(texts, pairs).double().mean() * 199 / 399), rel_tol=0.1
    )


@pytest.mark.parametrize(
    ("texts", "pairs", "match"),
    [
        (torch.zeros(5, 8), torch.zeros(6, 8), "text_embeddings .* and pair_embeddings"),
        (torch.zeros(5), torch.zeros(5), r"expected \(N, D\)"),
        (torch.zeros(0, 8), torch.zeros(0, 8), "no generated text"),
    ],
)
def test_r_precision_bad_input(texts, pairs, match):
    with pytest.raises(ValueError, match=match):
        tg.r_precision(texts, pairs)
