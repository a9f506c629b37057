"""The offline world's text: the caption + instruction corpus is reproducible, and the tokenized dataset
cache holds the documented tables."""

from __future__ import annotations

import torch

from poseembroider.datasets.cache_format import cache_file_name, load_cache, save_cache, tokenized_kind
from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus, tokenize_cache
from poseembroider.text.tokenization import get_tokenizer


def test_caption_corpus_is_reproducible(body_model):
    corpus = build_caption_corpus(3, 2, seed=5, body_model=body_model)
    assert len(corpus) == 3 * (3 + 2) and all(isinstance(t, str) and t for t in corpus)
    assert corpus == build_caption_corpus(3, 2, seed=5, body_model=body_model)
    assert corpus[:9] == build_caption_corpus(3, 0, seed=5, body_model=body_model)  # pairs do not shift captions


def test_tokenize_cache_writes_the_documented_tables(tmp_path, wordpiece_dir):
    tokenizer = get_tokenizer("distilbertSynth", folder=wordpiece_dir)
    texts = {0: ["The left knee is bent.", "Bend the left knee.", "left knee bent"], 7: ["Raise both arms.", ""]}
    raw = save_cache(
        {"criteria": {"fixture": True}, "texts": texts},
        tmp_path / cache_file_name("synthscript", "fixture", "val", "rawtexts"),
    )
    out = tokenize_cache(raw, tokenizer)
    kind = tokenized_kind("distilbertSynth")
    assert out.name == cache_file_name("synthscript", "fixture", "val", kind)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([raw.name, out.name])  # no temporary left
    data = load_cache(out, kind)
    assert set(data) == {"criteria", "texts_tokens", "texts_length", "tokenizer_name"}
    assert data["tokenizer_name"] == "distilbertSynth" and data["criteria"] == {"fixture": True}
    for key, strings in texts.items():
        assert len(data["texts_tokens"][key]) == len(strings) == len(data["texts_length"][key])
        for tokens, length, text in zip(data["texts_tokens"][key], data["texts_length"][key], strings, strict=True):
            assert tokens.dtype == torch.long and tokens.shape == (length,)
            assert torch.equal(tokens, tokenizer(text))
