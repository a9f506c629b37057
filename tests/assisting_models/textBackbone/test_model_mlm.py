"""Masked-language modelling: BERT masking, the Trainer contract of the MLM model, its split-wide metrics
and references, and a checkpoint layout the Trainer can resume from."""

from __future__ import annotations

import pytest
import torch

from poseembroider.assisting_models.textBackbone.model_mlm import IGNORE_INDEX, MaskedLanguageModel, mask_tokens
from poseembroider.datasets.collate import collate_texts
from poseembroider.models.pretrained import WEIGHTS_NAME, load_state_dict_checked, load_state_dict_file
from poseembroider.text.tokenization import load_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer(wordpiece_dir, tiny_config):
    return load_tokenizer(wordpiece_dir, max_length=tiny_config.max_position_embeddings)


def _batch(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    return collate_texts([{"texts_tokens": t, "texts_lengths": len(t)} for t in map(tokenizer, texts)])


def test_mask_tokens_follows_the_80_10_10_rule():
    generator = torch.Generator().manual_seed(0)
    vocab, special = 500, [0, 1, 2, 3, 4]
    tokens = torch.randint(5, vocab, (64, 128), generator=generator)
    lengths = torch.randint(10, 128, (64,), generator=generator)
    tokens[:, 0] = 2
    tokens[torch.arange(64), lengths - 1] = 3
    tokens[torch.arange(128)[None, :] >= lengths[:, None]] = 0
    inputs, labels = mask_tokens(tokens, lengths, 4, vocab, special, 0.15, torch.Generator().manual_seed(1))
    again = mask_tokens(tokens, lengths, 4, vocab, special, 0.15, torch.Generator().manual_seed(1))
    assert torch.equal(inputs, again[0]) and torch.equal(labels, again[1])
    selected = labels != IGNORE_INDEX
    eligible = (torch.arange(128)[None, :] < lengths[:, None] - 1) & (torch.arange(128)[None, :] > 0)
    assert not (selected & ~eligible).any()  # never [CLS], [SEP] or padding
    assert torch.equal(labels[selected], tokens[selected])
    assert abs(selected.sum() / eligible.sum() - 0.15) < 0.01
    masked = (inputs[selected] == 4).float().mean()
    kept = (inputs[selected] == tokens[selected]).float().mean()
    assert abs(masked - 0.8) < 0.03 and abs(kept - 0.1) < 0.03  # (random replacements may hit the same id)
    assert not torch.isin(inputs[selected & (inputs != 4)], torch.tensor([0, 1, 2, 3])).any()
    assert torch.equal(inputs[~selected], tokens[~selected])
    # one short text still gets one prediction target
    _, few = mask_tokens(torch.tensor([[2, 9, 3]]), torch.tensor([3]), 4, vocab, special, 0.0)
    assert (few != IGNORE_INDEX).sum() == 1 and few[0, 1] == 9


def test_mlm_model_follows_the_trainer_contract(tokenizer, caption_corpus, tiny_config):
    torch.manual_seed(0)
    model = MaskedLanguageModel.from_config(tiny_config, tokenizer)
    batch = _batch(tokenizer, caption_corpus[:8])
    out = model.training_step(batch)
    assert out["loss"].dim() == 0 and out["loss"].requires_grad
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.validation_step(batch) == model.validation_step(batch)  # same masks every time
    # "targets" (the masked token ids) feed the most-frequent-token reference of validation_epoch_end
    assert set(model.validation_step(batch)) == {"loss", "accuracy", "n_masked", "targets"}


def test_validation_metrics_weigh_every_masked_token_and_give_the_references(tokenizer, caption_corpus, tiny_config):
    """Split-wide loss and accuracy are means over masked tokens (not over batches); the most-frequent-token
    reference is measured on the same targets."""
    torch.manual_seed(0)
    model = MaskedLanguageModel.from_config(tiny_config, tokenizer).eval()
    outputs = [model.validation_step(_batch(tokenizer, caption_corpus[i : i + n])) for i, n in ((0, 2), (2, 16))]
    metrics = model.validation_epoch_end(outputs)
    n = [o["n_masked"] for o in outputs]
    assert metrics["n_masked"] == sum(n) and len(outputs[1]["targets"]) == n[1]
    assert metrics["loss"] == pytest.approx((outputs[0]["loss"] * n[0] + outputs[1]["loss"] * n[1]) / sum(n))
    targets = outputs[0]["targets"] + outputs[1]["targets"]
    assert metrics["unigram_accuracy"] == pytest.approx(max(map(targets.count, set(targets))) / len(targets))
    n_regular = len(tokenizer) - len(tokenizer.special_token_ids)
    assert metrics["chance_accuracy"] == pytest.approx(1 / n_regular)


def test_saved_weights_reload_into_the_model_for_resuming(tokenizer, tiny_config, tmp_path):
    """The Trainer resumes by loading `last/model.safetensors` into the model strictly: the transformers file
    has exactly this module's state-dict keys, but for the tied projection, which is the token embeddings."""
    torch.manual_seed(0)
    model = MaskedLanguageModel.from_config(tiny_config, tokenizer)
    model.save_pretrained(tmp_path)
    torch.manual_seed(1)
    other = MaskedLanguageModel.from_config(tiny_config, tokenizer)
    state = load_state_dict_file(tmp_path / WEIGHTS_NAME)
    load_state_dict_checked(other, state, tmp_path / WEIGHTS_NAME, allow_missing_prefixes=other.unsaved_prefixes)
    for name, tensor in model.state_dict().items():
        assert torch.equal(other.state_dict()[name], tensor), name
    assert other.vocab_projector.weight is other.distilbert.embeddings.word_embeddings.weight  # still tied
    assert (tmp_path / "tokenizer.json").is_file()  # a complete text model folder
    reloaded = MaskedLanguageModel.from_pretrained(tmp_path)
    assert torch.equal(reloaded.vocab_projector.weight, model.vocab_projector.weight)


def test_param_groups_decay_matrices_only(tokenizer, tiny_config):
    model = MaskedLanguageModel.from_config(tiny_config, tokenizer)
    decay, no_decay = model.param_groups(1e-3, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
