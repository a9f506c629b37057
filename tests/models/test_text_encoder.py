"""Retrieval building blocks: the text branch (frozen backbone + transformer + masked average) and the
retrieval pose encoder (PoseVAE trunk + bottleneck head)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from poseembroider.assisting_models.textBackbone.model_textBackbone import load_text_encoder
from poseembroider.models.pretrained import CheckpointError
from poseembroider.models.text_encoder import (
    PositionalEncoding,
    TransformerTextEncoder,
    backbone_fingerprint,
    length_chunks,
    lengths_to_mask,
    masked_average,
)

SENTENCES = [
    "the left arm is raised above the head",
    "the right knee is bent and the left foot is behind the body",
    "both hands are close together in front of the chest",
    "the torso leans forward while the arms are spread apart",
] * 3


def _text_model_folder(folder, seed: int):
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    from poseembroider.text.tokenization import train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(SENTENCES, vocab_size=200, out_dir=folder, max_length=32)
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(tokenizer), dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32
    )
    DistilBertForMaskedLM(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    return _text_model_folder(tmp_path_factory.mktemp("text_encoder") / "tiny", seed=0)


def _small_encoder(text_dir, role="retrieval") -> TransformerTextEncoder:
    tokenizer, backbone = load_text_encoder(str(text_dir))
    torch.manual_seed(0)
    return TransformerTextEncoder(
        tokenizer, backbone, name=str(text_dir), latentD=16, role=role, num_layers=2, num_heads=2, dim_feedforward=32
    )


@pytest.fixture(scope="module")
def encoder(text_dir) -> TransformerTextEncoder:
    return _small_encoder(text_dir).eval()


def _tokens(encoder: TransformerTextEncoder, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    return encoder.tokenizer.batch(texts)


def test_default_layout_is_the_original_one(text_dir):
    encoder = TransformerTextEncoder(*load_text_encoder(str(text_dir)))
    assert encoder.latentD == 512 and encoder.topping == "avgp" and encoder.role == "retrieval"
    assert isinstance(encoder.projection[0], nn.ReLU) and encoder.projection[1].in_features == 16  # backbone hidden
    assert encoder.projection[1].out_features == 512
    layers = encoder.transformer.layers
    assert len(layers) == 4
    layer = layers[0]
    assert layer.self_attn.embed_dim == 512 and layer.self_attn.num_heads == 4
    assert layer.linear1.out_features == 1024 and layer.dropout.p == 0.1
    assert layer.activation is torch.nn.functional.gelu or "gelu" in str(layer.activation)
    assert encoder.positional_encoding.dropout.p == 0.1


def test_positional_encoding_is_the_sinusoidal_table():
    pe = PositionalEncoding(8, dropout=0.0).eval()
    out = pe(torch.zeros(2, 3, 8))
    assert torch.allclose(out[0, 0], torch.tensor([0.0, 1.0] * 4))
    assert torch.allclose(out[1, 2, 0], torch.sin(torch.tensor(2.0)))
    assert "pe" not in pe.state_dict()  # rebuilt at construction, never saved


def test_masked_average_ignores_masked_positions():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert torch.allclose(masked_average(x, mask), torch.tensor([[2.0], [4.0]]))


def test_output_shapes_and_norms(encoder, text_dir):
    tokens, lengths = _tokens(encoder, SENTENCES[:4])
    out = encoder(tokens, lengths)
    assert out.shape == (4, 16)
    assert torch.allclose(out.norm(dim=-1), torch.ones(4), atol=1e-5)
    raw = _small_encoder(text_dir, role=None).eval()(tokens, lengths)
    assert raw.shape == (4, 16) and not torch.allclose(raw.norm(dim=-1), torch.ones(4), atol=1e-3)
    assert torch.allclose(torch.nn.functional.normalize(raw, dim=-1), out, atol=1e-5)


def test_padding_does_not_change_the_output(encoder):
    tokens, lengths = _tokens(encoder, SENTENCES[:4])
    reference = encoder(tokens, lengths)
    padded = torch.cat([tokens, torch.full((4, 7), 5, dtype=torch.long)], dim=1)  # garbage after the lengths
    assert torch.allclose(encoder(padded, lengths), reference, atol=1e-5)
    alone = encoder(tokens[1:2, : lengths[1]], lengths[1:2])  # no padding at all
    assert torch.allclose(alone, reference[1:2], atol=1e-5)


def test_backbone_is_frozen_gets_no_gradient_and_stays_in_eval_mode(text_dir):
    encoder = _small_encoder(text_dir)
    encoder.train()
    assert encoder.training and encoder.transformer.training
    assert not encoder.backbone.training and not encoder.backbone.model.training
    assert all(not p.requires_grad for p in encoder.backbone.parameters())
    trainable = {id(p) for p in encoder.trainable_parameters()}
    assert trainable and not trainable & {id(p) for p in encoder.backbone.parameters()}
    tokens, lengths = _tokens(encoder, SENTENCES[:4])
    encoder(tokens, lengths).sum().backward()
    assert all(p.grad is None for p in encoder.backbone.parameters())
    assert encoder.projection[1].weight.grad is not None


def test_weights_trained_over_another_backbone_are_refused(encoder, tmp_path):
    other_dir = _text_model_folder(tmp_path / "other", seed=1)
    other = _small_encoder(other_dir)
    assert not torch.equal(backbone_fingerprint(other.backbone), backbone_fingerprint(encoder.backbone))
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("backbone.")}
    with pytest.raises(CheckpointError, match="another text backbone"):
        other.load_state_dict(state, strict=False)
    same = _small_encoder(encoder.text_encoder_name)
    same.load_state_dict(state, strict=False)  # same backbone: accepted


def test_bad_inputs_are_refused(encoder, text_dir):
    tokens, lengths = _tokens(encoder, SENTENCES[:2])
    with pytest.raises(ValueError, match="texts_tokens must be"):
        encoder(tokens[0], lengths)
    with pytest.raises(ValueError, match="texts_lengths must lie"):
        encoder(tokens, lengths + 100)
    with pytest.raises(ValueError, match="transformer_topping"):
        TransformerTextEncoder(*load_text_encoder(str(text_dir)), topping="cls")
    with pytest.raises(ValueError, match="role"):
        TransformerTextEncoder(*load_text_encoder(str(text_dir)), role="generative")


def test_the_trunk_takes_any_text_backbone_it_is_given(text_dir):
    """The trunk loads nothing: it is built over the backbone it receives (named after it by default), and
    refuses a module that is not a text backbone."""
    tokenizer, backbone = load_text_encoder(str(text_dir))
    encoder = TransformerTextEncoder(tokenizer, backbone, latentD=16, num_layers=1, num_heads=2, dim_feedforward=32)
    assert encoder.backbone is backbone and encoder.tokenizer is tokenizer
    assert encoder.text_encoder_name == backbone.name == text_dir.name
    with pytest.raises(TypeError, match="not a text backbone"):
        TransformerTextEncoder(tokenizer, nn.Linear(4, 4))


def test_lengths_to_mask_marks_the_real_tokens():
    mask = lengths_to_mask(torch.tensor([1, 3, 0]), 3)
    assert mask.tolist() == [[True, False, False], [True, True, True], [False, False, False]]


def test_length_sorted_encoding_equals_one_batch_in_input_order(encoder):
    texts = [SENTENCES[i % len(SENTENCES)] for i in (3, 0, 2, 1, 0, 3)]
    tokens, lengths = _tokens(encoder, texts)
    reference = encoder(tokens, lengths)
    assert torch.allclose(encoder.encode_by_length(tokens, lengths, batch_size=2), reference, atol=1e-5)
    assert torch.allclose(encoder.encode_raw_texts(texts, batch_size=4), reference, atol=1e-5)


def test_length_sorted_chunks_give_the_outputs_and_gradients_of_one_padded_call(text_dir):
    """On the CPU, `forward` encodes a batch whose padded size exceeds `chunk_tokens` in length-sorted chunks:
    the same embeddings, in the input order, and the same gradients as one call padded to the longest text."""
    texts = [SENTENCES[i % 4] + " and" * (i % 5) for i in (3, 0, 2, 1, 0, 3, 2, 1, 4)]
    chunked = _small_encoder(text_dir)
    padded = _small_encoder(text_dir)
    padded.chunk_tokens = 0
    for module in (chunked, padded):
        module.train()
        for sub in module.modules():  # no dropout: both forwards must be the same function
            if isinstance(sub, nn.Dropout):
                sub.p = 0.0
        for layer in module.transformer.layers:
            layer.self_attn.dropout = 0.0
    chunked.chunk_tokens = 20
    tokens, lengths = _tokens(chunked, texts)
    assert len(length_chunks(lengths, max_tokens=20)[1]) > 2  # several chunks of different padded lengths
    weights = torch.randn(len(texts), 16)
    outputs = []
    for module in (chunked, padded):
        out = module(tokens, lengths)
        (out * weights).sum().backward()
        outputs.append(out.detach())
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)
    for (name, a), (_, b) in zip(chunked.named_parameters(), padded.named_parameters(), strict=True):
        if a.requires_grad:
            assert torch.allclose(a.grad, b.grad, atol=1e-5), name
    with pytest.raises(ValueError, match="chunk_tokens"):
        TransformerTextEncoder(*load_text_encoder(str(text_dir)), chunk_tokens=-1)


def test_length_chunks_sort_the_texts_and_keep_each_chunk_within_its_budgets():
    lengths = torch.tensor([5, 30, 2, 9, 30, 7, 3])
    order, sizes = length_chunks(lengths, max_tokens=20)
    assert order.tolist() == [2, 6, 0, 5, 3, 1, 4]  # ascending lengths, ties in input order
    assert sizes == [3, 2, 1, 1]  # [2, 3, 5] 15 tokens; [7, 9] 18; a 30-token text alone over the budget
    chunks = order.split(sizes)
    assert all(len(rows) * int(lengths[rows].max()) <= 20 or len(rows) == 1 for rows in chunks)
    assert length_chunks(lengths, max_texts=3)[1] == [3, 3, 1]
    assert length_chunks(lengths)[1] == [7]  # no budget: one chunk
    assert length_chunks(torch.zeros(0, dtype=torch.long), max_tokens=8)[1] == []
