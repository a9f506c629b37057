"""Tokenizer test data: texts the tokenizer never saw. The caption corpus, the WordPiece tokenizer trained on
it and the fake distilbert-base-uncased folder are session-wide (`tests/text_fixtures.py`), shared with the
text-backbone tests."""

from __future__ import annotations

import pytest

from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus


@pytest.fixture(scope="session")
def heldout_texts(body_model) -> list[str]:
    """Texts of other poses and pairs (another seed), never seen by the tokenizer."""
    return build_caption_corpus(12, 12, seed=12345, body_model=body_model)
