"""Tokenizers: our WordPiece tokenizer (trained, saved, reloaded offline with its whole vocabulary), the
distilbertUncased entry read from TRANSFORMER_CACHE_DIR without network."""

from __future__ import annotations

import json

import pytest
import torch

from poseembroider import config
from poseembroider.text.tokenization import (
    SPECIAL_TOKENS,
    TextModelNotFoundError,
    Tokenizer,
    get_tokenizer,
    list_tokenizers,
    load_tokenizer,
)


def test_registry_lists_both_tokenizers():
    assert {"distilbertUncased", "distilbertSynth"} <= set(list_tokenizers())


def test_wordpiece_reloads_offline_with_its_vocabulary(wordpiece_dir, no_network):
    from transformers import AutoTokenizer

    tokenizer = get_tokenizer("distilbertSynth", folder=wordpiece_dir)
    trained = json.loads((wordpiece_dir / "wordpiece_training.json").read_text())
    vocab_lines = (wordpiece_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    # the vocab_file pitfall gives 5 tokens: the size must be the trained one, everywhere
    assert len(tokenizer) == trained["vocab_size"] == len(vocab_lines) > 300
    assert len(AutoTokenizer.from_pretrained(str(wordpiece_dir), local_files_only=True)) == len(tokenizer)
    assert vocab_lines[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id) == (0, 1)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.mask_token_id) == (2, 3, 4)
    assert tokenizer.name == "distilbertSynth"
    assert tokenizer.max_length == 256


def test_wordpiece_round_trips_heldout_texts(wordpiece_dir, heldout_texts):
    tokenizer = load_tokenizer(wordpiece_dir)
    unknown = total = 0
    for text in heldout_texts:
        tokens = tokenizer(text)
        unknown += int((tokens == tokenizer.unk_token_id).sum())
        total += tokens.numel()
        assert tokenizer.decode(tokens) == tokenizer.normalize(text)
        # normalising only lower-cases and re-spaces punctuation
        assert tokenizer.normalize(text).replace(" ", "") == text.lower().replace(" ", "")
    assert total > 50 * len(heldout_texts)
    assert unknown / total < 1e-3
    # words never seen split into pieces instead of [UNK]
    unseen = tokenizer("Zygomatic quokkas juggle 42 xylophones!")
    assert tokenizer.unk_token_id not in unseen.tolist()
    assert tokenizer.decode(unseen) == "zygomatic quokkas juggle 42 xylophones!"


def test_call_batch_and_truncation(wordpiece_dir, heldout_texts):
    tokenizer = load_tokenizer(wordpiece_dir)
    texts = heldout_texts[:5]
    singles = [tokenizer(t) for t in texts]
    for tokens in singles:
        assert tokens.dtype == torch.long and tokens.dim() == 1
        assert tokens[0] == tokenizer.bos_token_id and tokens[-1] == tokenizer.eos_token_id
    tokens, lengths = tokenizer.batch(texts)
    assert tokens.shape == (5, max(len(s) for s in singles)) and lengths.tolist() == [len(s) for s in singles]
    for row, n, single in zip(tokens, lengths, singles, strict=True):
        assert torch.equal(row[:n], single) and (row[n:] == 0).all()
    assert tokenizer.decode_batch(tokens, lengths) == [tokenizer.decode(s) for s in singles]

    short = Tokenizer(tokenizer.hf, "short", max_length=12)
    cut = short(texts[0])
    assert len(cut) == 12 and cut[-1] == short.eos_token_id
    assert short.batch(texts)[0].shape == (5, 12)


def test_vocab_file_pitfall_is_refused(tmp_path):
    from transformers import BertTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join([*SPECIAL_TOKENS, "left", "right", "knee"]) + "\n")
    pitfall = BertTokenizer(vocab_file=str(vocab))  # silently ignored by transformers 5
    if len(pitfall) > len(SPECIAL_TOKENS):
        pytest.skip("this transformers version reads vocab_file=")
    saved = tmp_path / "pitfall"
    pitfall.save_pretrained(str(saved))
    with pytest.raises(ValueError, match="vocab_file"):
        load_tokenizer(saved)
    # a folder holding only vocab.txt is read with vocab= (the working call)
    only_vocab = tmp_path / "only_vocab"
    only_vocab.mkdir()
    (only_vocab / "vocab.txt").write_text(vocab.read_text())
    assert len(load_tokenizer(only_vocab)) == 8


def test_distilbert_uncased_from_transformer_cache_dir(fake_distilbert_dir, monkeypatch, no_network):
    monkeypatch.setattr(config, "TRANSFORMER_CACHE_DIR", fake_distilbert_dir)
    tokenizer = get_tokenizer("distilbertUncased")
    assert tokenizer.name == "distilbertUncased" and len(tokenizer) == len(
        (fake_distilbert_dir / "vocab.txt").read_text().splitlines()
    )
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 101, 102)
    tokens = tokenizer("His left knees are bent.")
    assert tokens[0] == 101 and tokens[-1] == 102 and tokenizer.unk_token_id not in tokens.tolist()
    assert tokenizer.decode(tokens) == tokenizer.normalize("His left knees are bent.")
    # the same folder with only vocab.txt (older snapshots)
    only_vocab = fake_distilbert_dir.parent / "vocab_only"
    only_vocab.mkdir(exist_ok=True)
    (only_vocab / "vocab.txt").write_text((fake_distilbert_dir / "vocab.txt").read_text())
    assert torch.equal(get_tokenizer("distilbertUncased", folder=only_vocab)("His left knees are bent."), tokens)


def test_missing_folder_is_a_clear_error(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "distilbert-base-uncased"
    monkeypatch.setattr(config, "TRANSFORMER_CACHE_DIR", missing)
    with pytest.raises(TextModelNotFoundError, match="TRANSFORMER_CACHE_DIR") as err:
        get_tokenizer("distilbertUncased")
    assert str(missing) in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TextModelNotFoundError, match="no tokenizer files"):
        load_tokenizer(empty)
    with pytest.raises(KeyError, match="neither a registered tokenizer"):
        get_tokenizer("noSuchTokenizer")


def test_cli_train_tokenizer(tmp_path, caption_corpus, capsys):
    from poseembroider.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(caption_corpus[:100]) + "\n")
    out = tmp_path / "tokenizer"
    assert main(["text", "train-tokenizer", "--out", str(out), "--corpus", str(corpus), "--vocab-size", "1000"]) == 0
    assert "tokens" in capsys.readouterr().out
    assert len(load_tokenizer(out)) == len((out / "vocab.txt").read_text().splitlines()) > 100
    assert main(["text", "train-tokenizer", "--out", str(out), "--corpus", str(tmp_path / "missing.txt")]) == 2
