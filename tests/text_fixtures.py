"""Text fixtures shared by the tokenizer tests (`tests/text/`) and the text-backbone tests
(`tests/assisting_models/textBackbone/`): a small caption corpus, our WordPiece tokenizer trained on it, and a
fake "real" distilbert-base-uncased folder (tiny weights, BERT-style vocab). Registered once for the whole
session by the root conftest (`pytest_plugins`), so the corpus is built once however many folders use it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def caption_corpus(body_model) -> list[str]:
    """360 texts: 3 captions of 60 sampled poses, 3 instructions of 60 pairs."""
    from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus

    return build_caption_corpus(60, 60, seed=0, body_model=body_model)


@pytest.fixture(scope="session")
def wordpiece_dir(tmp_path_factory, caption_corpus) -> Path:
    from poseembroider.text.tokenization import train_wordpiece_tokenizer

    out = tmp_path_factory.mktemp("wordpiece") / "tokenizer"
    train_wordpiece_tokenizer(caption_corpus, vocab_size=2000, out_dir=out)
    return out


FAKE_WORDS = (
    "the a his her their your left right arm arms hand hands knee knees elbow foot feet head is are and with "
    "bent raised bring move up down slightly little bit , . - ' s ##s ##ed ##ing"
).split()


def fake_bert_vocab() -> list[str]:
    """A WordPiece vocabulary laid out like bert-base-uncased: [PAD] 0, [unused*], [UNK] 100, [CLS] 101,
    [SEP] 102, [MASK] 103, then pieces (so nothing may assume the special tokens sit at 0..4)."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    return vocab + [w for w in FAKE_WORDS if w not in letters] + letters


@pytest.fixture(scope="session")
def fake_distilbert_dir(tmp_path_factory) -> Path:
    """A folder in the layout of the distilbert-base-uncased snapshot, made offline: a tiny
    `DistilBertForMaskedLM` (save_pretrained) and its tokenizer files (tokenizer.json, vocab.txt, ...)."""
    import torch
    from transformers import BertTokenizer, DistilBertConfig, DistilBertForMaskedLM

    folder = tmp_path_factory.mktemp("huggingface_models") / "distilbert-base-uncased"
    vocab = fake_bert_vocab()
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, model_max_length=64)
    assert len(tokenizer) == len(vocab)  # the vocab_file pitfall would give 5
    tokenizer.save_pretrained(str(folder))
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=len(vocab), dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=64
    )
    DistilBertForMaskedLM(config).save_pretrained(str(folder))
    return folder
