"""Our WordPiece vocabulary learner: the same vocabulary in every process (tokenizers' WordPieceTrainer gives
another one per process, huggingface/tokenizers #1794), merges in frequency order with the documented tie
rule, and the guarantees of `build_wordpiece_tokenizer` (special ids, alphabet, no [UNK] in unseen words)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from poseembroider.text.tokenization import _BASIC_ALPHABET, SPECIAL_TOKENS, Tokenizer, build_wordpiece_tokenizer
from poseembroider.text.wordpiece_vocab import learn_wordpiece_vocab

TEXTS = [
    "The left knee is bent at a right angle, the right knee is almost straight.",
    "Bend your left elbow a bit more and raise the right hand above the head!",
    "Zero weight on the right foot; the torso leans forward (about 30 degrees).",
    "Quickly lower both arms, keep the legs apart and the back straight.",
    "Øre: the hips are rotated, the left shoulder is higher than the right shoulder.",
] * 3


def _vocab(hf) -> list[str]:
    return [tok for tok, _ in sorted(hf.get_vocab().items(), key=lambda item: item[1])]


def _merged_pieces(vocab: list[str], n_initial: int) -> list[str]:
    return vocab[n_initial:]


# ---------------------------------------------------------------- determinism

_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    from poseembroider.text.tokenization import build_wordpiece_tokenizer
    texts = sys.stdin.read().splitlines()
    hf = build_wordpiece_tokenizer(texts, vocab_size=300, min_frequency=2)
    vocab = [tok for tok, _ in sorted(hf.get_vocab().items(), key=lambda item: item[1])]
    print(hashlib.sha256("\\n".join(vocab).encode()).hexdigest(), len(vocab))
    """
)


def test_same_vocabulary_in_separate_processes():
    def run(hash_seed: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            input="\n".join(TEXTS),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        return result.stdout.strip()

    in_process = _vocab(build_wordpiece_tokenizer(TEXTS, vocab_size=300, min_frequency=2))
    expected = f"{hashlib.sha256(chr(10).join(in_process).encode()).hexdigest()} {len(in_process)}"
    assert run("1") == run("2") == expected


def test_same_vocabulary_from_a_list_or_a_generator():
    from_list = _vocab(build_wordpiece_tokenizer(TEXTS, vocab_size=300))
    from_generator = _vocab(build_wordpiece_tokenizer((t for t in TEXTS), vocab_size=300))
    assert from_list == from_generator


# ---------------------------------------------------------------- the merges

# hello x4, help x3, world x2: pairs h ##e and ##e ##l both 7 -> tie, "##el" < "he" ('#' sorts before letters);
# then hel (7); then hel ##l and ##l ##o both 4 -> "##lo" < "hell"; then hello (4), help (3); then the
# four pairs of world (2 each), smallest merged piece first: ##ld, ##or, ##orld, world.
_WORDS = {"hello": 4, "help": 3, "world": 2}
_N_INITIAL = len(set("helowrdp")) + len(set("helowrdp"))  # characters + their ## continuations (all alphanumeric)


def test_merges_follow_frequency_then_smallest_piece():
    vocab = learn_wordpiece_vocab(_WORDS, vocab_size=100, min_frequency=2)
    assert vocab[:_N_INITIAL] == sorted("delhoprw") + sorted("##" + c for c in "delhoprw")
    assert _merged_pieces(vocab, _N_INITIAL) == [
        "##el",
        "hel",
        "##lo",
        "hello",
        "help",
        "##ld",
        "##or",
        "##orld",
        "world",
    ]


def test_min_frequency_and_vocab_size_stop_the_merges():
    assert _merged_pieces(learn_wordpiece_vocab(_WORDS, 100, min_frequency=3), _N_INITIAL) == [
        "##el",
        "hel",
        "##lo",
        "hello",
        "help",
    ]
    assert _merged_pieces(learn_wordpiece_vocab(_WORDS, 100, min_frequency=5), _N_INITIAL) == ["##el", "hel"]
    assert learn_wordpiece_vocab(_WORDS, 100, min_frequency=8) == learn_wordpiece_vocab(_WORDS, _N_INITIAL, 1)
    assert _merged_pieces(learn_wordpiece_vocab(_WORDS, _N_INITIAL + 3, min_frequency=1), _N_INITIAL) == [
        "##el",
        "hel",
        "##lo",
    ]
    with pytest.raises(ValueError, match="too small"):
        learn_wordpiece_vocab(_WORDS, _N_INITIAL - 1, min_frequency=1)


def test_a_smaller_vocab_size_only_cuts_the_merge_list():
    words = {w: 1 + len(w) % 4 for t in TEXTS for w in t.lower().split()}
    full = learn_wordpiece_vocab(words, vocab_size=400, min_frequency=1)
    assert len(full) == len(set(full))
    for size in (150, 200, len(full)):
        assert learn_wordpiece_vocab(words, vocab_size=size, min_frequency=1) == full[:size]


# ---------------------------------------------------------------- the tokenizer built on it


def test_special_ids_alphabet_and_continuations():
    hf = build_wordpiece_tokenizer(TEXTS, vocab_size=300)
    vocab = _vocab(hf)
    assert vocab[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(vocab) <= 300
    tokens = set(vocab)
    corpus_chars = set("".join(TEXTS).lower().replace(" ", ""))
    assert corpus_chars | set(_BASIC_ALPHABET) <= tokens
    assert {"##" + c for c in corpus_chars | set(_BASIC_ALPHABET) if c.isalnum()} <= tokens
    with pytest.raises(ValueError, match="too small"):
        build_wordpiece_tokenizer(TEXTS, vocab_size=len(SPECIAL_TOKENS) + len(_BASIC_ALPHABET))
    with pytest.raises(ValueError, match="too small"):  # room for the basic alphabet, not the corpus' ## pieces
        build_wordpiece_tokenizer(TEXTS, vocab_size=len(SPECIAL_TOKENS) + len(_BASIC_ALPHABET) + 5)


def test_unseen_words_split_without_unk_and_round_trip():
    tokenizer = Tokenizer(build_wordpiece_tokenizer(TEXTS, vocab_size=300), "test")
    # z, q and ø start words of the corpus and never follow a letter there
    for text in ("Quiz: søø, the kneez are bent (45%).", "Xylophones juggle 42 quokkas!"):
        tokens = tokenizer(text)
        assert tokenizer.unk_token_id not in tokens.tolist()
        assert tokenizer.decode(tokens) == tokenizer.normalize(text)
    assert tokenizer.tokenize("knee") == ["knee"]
