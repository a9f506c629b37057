"""InstructionGenerator: the published architecture, the cached incremental decoder equal to the full forward,
save -> load -> same logits, a few steps that lower the loss, and clear errors for a tokenizer of another
vocabulary and for batches without x̄."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from poseembroider.downstream.instruction_generation import InstructionGenerator, InstructionGeneratorConfig
from poseembroider.downstream.instruction_generation.model_instruction_generation import (
    TIRG,
    VocabularyMismatchError,
)
from poseembroider.models.pretrained import load_pretrained
from poseembroider.text.tokenization import load_tokenizer, train_wordpiece_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = [
    "Bend your left knee a little.",
    "Raise your right arm above your head and turn the torso.",
    "Straighten both legs, then bring the left hand forward.",
    "Lean forward slightly and lower the right elbow.",
    "Move the right foot back a bit.",
    "Lift your left arm and bend the right knee.",
]
D = 16
TINY = dict(latentD=D, comparison_latentD=D, decoder_latentD=32, decoder_nhead=2, decoder_nlayers=2, decoder_ff=48)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("instructgen_tokenizer") / "tok"
    train_wordpiece_tokenizer(TEXTS * 4, vocab_size=300, out_dir=folder, max_length=64)
    return folder


def make_model(tokenizer_dir, seed: int = 0, **config) -> InstructionGenerator:
    torch.manual_seed(seed)
    values = dict(TINY, text_decoder_name=f"transformer_{tokenizer_dir}")
    values.update(config)
    return InstructionGenerator(InstructionGeneratorConfig(**values))


def batch_of(model: InstructionGenerator, n: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tokens, lengths = model.tokenizer.batch([TEXTS[i % len(TEXTS)] for i in range(n)])
    return {
        "xbar_A": torch.nn.functional.normalize(torch.randn(n, D, generator=generator), dim=-1),
        "xbar_B": torch.nn.functional.normalize(torch.randn(n, D, generator=generator), dim=-1),
        "texts_tokens": tokens,
        "texts_lengths": lengths,
    }


def test_published_architecture_is_the_default():
    cfg = InstructionGeneratorConfig()
    assert (cfg.latentD, cfg.comparison_latentD, cfg.decoder_latentD) == (512, 512, 512)
    assert (cfg.decoder_nhead, cfg.decoder_nlayers, cfg.decoder_ff, cfg.decoder_dropout) == (8, 4, 1024, 0.1)
    assert cfg.text_decoder_name == "transformer_distilbertUncased" and cfg.comparison_module_mode == "tirg"
    with pytest.raises(ValueError, match="--comparison_latentD 256 must equal --latentD 512"):
        InstructionGeneratorConfig(comparison_latentD=256)
    with pytest.raises(ValueError, match="--representation_model_input_types: unknown input type 'pose'"):
        InstructionGeneratorConfig(representation_model_input_types=["pose"])


def test_tirg_gates_the_main_input_with_the_modifier():
    torch.manual_seed(0)
    tirg = TIRG(4, 4).eval()
    main, modifier = torch.randn(3, 4), torch.randn(3, 4)
    both = torch.cat([main, modifier], dim=1)
    expected = torch.sigmoid(tirg.gated_feature_composer(both)) * main + tirg.res_info_composer(both)
    torch.testing.assert_close(tirg(main, modifier), expected)
    assert tirg.a.tolist() == [1.0, 1.0]


def test_incremental_decoder_equals_the_full_forward(tokenizer_dir):
    model = make_model(tokenizer_dir).eval()
    batch = batch_of(model, 4)
    tokens = batch["texts_tokens"][:, :9]
    tokens[tokens == model.special.pad] = 7  # padding keys are masked in the full forward: compare on text
    with torch.no_grad():
        full = model(batch["xbar_A"], batch["xbar_B"], tokens)  # (B, L, V)
        state = model.decoding_state(batch["xbar_A"], batch["xbar_B"])
        steps = [state(tokens[:, 0], None)]
        keep = torch.tensor([3, 1, 0])  # drop and reorder rows as the decodings do
        steps.append(state(tokens[keep, 1], keep))
        for t in range(2, tokens.shape[1]):
            steps.append(state(tokens[keep, t], None))
    torch.testing.assert_close(steps[0], full[:, 0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.stack(steps[1:], dim=1), full[keep, 1:], atol=1e-5, rtol=1e-4)


def test_several_memory_tokens_are_read_per_word_and_decode_incrementally(tokenizer_dir):
    """K memory tokens: the adapter makes (B, K, D); the cached decoder still equals the full forward; with one
    token every position gets the same cross-attention output, with several it differs by position."""
    model = make_model(tokenizer_dir, memory_tokens=3).eval()
    assert InstructionGeneratorConfig().memory_tokens == 1  # the original's single token
    batch = batch_of(model, 2)
    memory = model.memory(batch["xbar_A"], batch["xbar_B"])
    assert memory.shape == (2, 3, 32) and model.adapter.out_features == 3 * 32
    tokens = batch["texts_tokens"][:, :6].clone()
    tokens[tokens == model.special.pad] = 7
    with torch.no_grad():
        full = model(batch["xbar_A"], batch["xbar_B"], tokens)
        state = model.decoding_state(batch["xbar_A"], batch["xbar_B"])
        steps = torch.stack([state(tokens[:, t], None) for t in range(tokens.shape[1])], dim=1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-4)

    def cross_attention_outputs(generator: InstructionGenerator) -> torch.Tensor:
        layer = generator.text_decoder.decoder.layers[0]
        queries = torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(1))
        mem = generator.memory(batch["xbar_A"][:1], batch["xbar_B"][:1])
        return layer.multihead_attn(queries, mem, mem, need_weights=False)[0][0]  # (5, D)

    with torch.no_grad():
        one = cross_attention_outputs(make_model(tokenizer_dir).eval())
        several = cross_attention_outputs(model)
    assert torch.allclose(one, one[:1].expand_as(one), atol=1e-6)
    assert not torch.allclose(several, several[:1].expand_as(several), atol=1e-3)
    with pytest.raises(ValueError, match="memory_tokens"):
        InstructionGeneratorConfig(memory_tokens=0)


def test_generation_gives_texts_and_beam_one_is_greedy(tokenizer_dir):
    model = make_model(tokenizer_dir).eval()
    batch = batch_of(model, 3)
    greedy = model.generate(batch["xbar_A"], batch["xbar_B"], "greedy", max_length=15, min_length=2)
    beam1 = model.generate(batch["xbar_A"], batch["xbar_B"], "beam", max_length=15, min_length=2, beam_size=1)
    assert torch.equal(greedy.tokens, beam1.tokens)
    texts = model.generate_texts(batch["xbar_A"], batch["xbar_B"], "beam", max_length=15, beam_size=3)
    assert len(texts) == 3 and all(isinstance(t, str) and t for t in texts)
    with pytest.raises(RuntimeError, match="eval"):
        model.train().generate(batch["xbar_A"], batch["xbar_B"])


def test_save_load_gives_the_same_logits_and_records_the_vocabulary(tokenizer_dir, tmp_path):
    model = make_model(
        tokenizer_dir, pretrained_representation_model="some_rep", representation_model_input_types=["poses"]
    )
    batch = batch_of(model)
    model.train()
    model.training_step(batch)["loss"].backward()  # BatchNorm statistics move: they must be saved too
    model.eval()
    folder = model.save_pretrained(tmp_path / "generator")
    loaded = load_pretrained(folder)
    assert isinstance(loaded, InstructionGenerator)
    assert loaded.config == model.config and loaded.config.vocab_size == len(model.tokenizer)
    with torch.no_grad():
        expected = model(batch["xbar_A"], batch["xbar_B"], batch["texts_tokens"])
        torch.testing.assert_close(loaded(batch["xbar_A"], batch["xbar_B"], batch["texts_tokens"]), expected)
    assert InstructionGenerator.from_pretrained(folder).generate_texts(
        batch["xbar_A"], batch["xbar_B"], max_length=8, min_length=2
    ) == model.generate_texts(batch["xbar_A"], batch["xbar_B"], max_length=8, min_length=2)


def test_a_few_steps_lower_the_loss(tokenizer_dir):
    model = make_model(tokenizer_dir, decoder_dropout=0.0).train()
    batch = batch_of(model, 6)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = model.training_step(batch)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        out = model.validation_step(batch)
    assert float(out["loss"]) < float(out["fake_loss"])  # x̄ is read: other pairs' texts fit worse


def test_loss_ignores_padding(tokenizer_dir):
    model = make_model(tokenizer_dir).eval()
    batch = batch_of(model, 2)
    tokens = batch["texts_tokens"]
    padded = torch.cat([tokens, torch.full((2, 5), model.special.pad)], dim=1)
    with torch.no_grad():
        a = model.loss(batch["xbar_A"], batch["xbar_B"], tokens)
        b = model.loss(batch["xbar_A"], batch["xbar_B"], padded)
    torch.testing.assert_close(a, b)


def test_word_dropout_masks_only_words_and_only_in_training(tokenizer_dir):
    model = make_model(tokenizer_dir, decoder_word_dropout=0.5)
    tokens = batch_of(model, 6)["texts_tokens"]
    special = (tokens == model.special.bos) | (tokens == model.special.eos) | (tokens == model.special.pad)
    assert torch.equal(model.eval().drop_words(tokens), tokens)
    torch.manual_seed(3)
    dropped = model.train().drop_words(tokens)
    changed = dropped != tokens
    assert torch.equal(dropped[~special], torch.where(changed, model.tokenizer.mask_token_id, tokens)[~special])
    assert not changed[special].any()  # BOS, EOS and PAD stay
    share = changed[~special].float().mean()
    assert 0.3 < share < 0.7  # about half of the words
    assert torch.equal(make_model(tokenizer_dir).train().drop_words(tokens), tokens)  # 0: as the original
    with pytest.raises(ValueError, match="decoder_word_dropout must be in"):
        InstructionGeneratorConfig(decoder_word_dropout=1.0)


def test_word_dropout_changes_the_training_loss_and_not_the_evaluation_loss(tokenizer_dir):
    model = make_model(tokenizer_dir, decoder_dropout=0.0, decoder_word_dropout=0.5)
    batch = batch_of(model, 4)
    xa, xb, tokens = batch["xbar_A"], batch["xbar_B"], batch["texts_tokens"]
    with torch.no_grad():
        evaluated = model.eval().loss(xa, xb, tokens)
        model.config.decoder_word_dropout = 0.0
        evaluated_without = model.eval().loss(xa, xb, tokens)
        unmasked = model.train().loss(xa, xb, tokens)  # train mode: TIRG's batch norm uses the batch statistics
        model.config.decoder_word_dropout = 0.5
        masked = model.train().loss(xa, xb, tokens)
    assert not torch.isclose(masked, unmasked)
    torch.testing.assert_close(evaluated, evaluated_without)


def test_specificity_term_is_the_hinge_on_the_nll_gap_to_another_pair(tokenizer_dir):
    """The term by hand: per-text NLL under its own x̄ and under the next text's (batch rolled by one), the hinge
    on their difference; off by default; training with it widens the gap."""
    model = make_model(tokenizer_dir, wloss_specificity=2.0, specificity_margin=0.5, decoder_dropout=0.0)
    assert InstructionGeneratorConfig().wloss_specificity == 0.0
    batch = batch_of(model, 6)
    xbar_A, xbar_B, tokens = batch["xbar_A"], batch["xbar_B"], batch["texts_tokens"]
    model.eval()  # no word dropout: the term is deterministic

    def per_token_nll(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = model(a, b, tokens[:, :-1])
        losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), tokens[:, 1:], ignore_index=model.special.pad, reduction="none"
        )
        return losses.sum(1) / (tokens[:, 1:] != model.special.pad).sum(1)

    with torch.no_grad():
        own = per_token_nll(xbar_A, xbar_B)
        memory = model.memory(xbar_A, xbar_B)
        other_sum, counts = model.text_losses(memory.roll(1, dims=0), tokens, tokens)
        other = other_sum / counts
        out = model.specificity_loss(xbar_A, xbar_B, tokens)
    expected = model.loss(xbar_A, xbar_B, tokens) + 2.0 * torch.relu(0.5 - (other - own)).mean()
    torch.testing.assert_close(out["loss"], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["gap"], (other - own).mean(), atol=1e-5, rtol=1e-5)

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    gaps = []
    for _ in range(30):
        step = model.training_step(batch)
        optimizer.zero_grad()
        step["loss"].backward()
        optimizer.step()
        gaps.append(float(step["gap"]))
    assert gaps[-1] > gaps[0]
    with pytest.raises(ValueError, match="--wloss_specificity -1"):
        InstructionGeneratorConfig(wloss_specificity=-1.0)


def test_a_tokenizer_of_another_vocabulary_is_refused(tokenizer_dir, tmp_path):
    folder = make_model(tokenizer_dir).save_pretrained(tmp_path / "generator")
    other = tmp_path / "other_tokenizer"
    train_wordpiece_tokenizer(TEXTS * 4 + ["zebra quokka xylophone"] * 4, vocab_size=400, out_dir=other, max_length=64)
    config = dataclasses.replace(load_pretrained(folder).config)
    assert len(load_tokenizer(other)) != config.vocab_size
    with pytest.raises(VocabularyMismatchError, match=r"vocabulary of \d+ tokens .* but the tokenizer .* has \d+"):
        InstructionGenerator(config, tokenizer=load_tokenizer(other))
    with pytest.raises(VocabularyMismatchError, match="special token ids"):
        InstructionGenerator(dataclasses.replace(config, vocab_size=2), tokenizer=_FakeTwoTokens())


class _FakeTwoTokens:
    name = "two-tokens"
    bos_token_id, eos_token_id, pad_token_id = 2, 3, 0

    def __len__(self) -> int:
        return 2


def test_batches_without_xbar_or_of_the_wrong_size_are_clear_errors(tokenizer_dir):
    model = make_model(tokenizer_dir)
    batch = batch_of(model)
    with pytest.raises(KeyError, match="'xbar_A'.*WithIntermodalityFeatures"):
        model.training_step({k: v for k, v in batch.items() if k != "xbar_A"})
    with pytest.raises(ValueError, match=r"xbar_B: \(6, 8\); expected \(B, 16\)"):
        model.training_step({**batch, "xbar_B": batch["xbar_B"][:, :8]})
    specific = make_model(tokenizer_dir, wloss_specificity=1.0)  # the same errors with the specificity term
    with pytest.raises(KeyError, match=r"expects a batch with 'texts_tokens' \(dataset item_format 't'\)"):
        specific.training_step({k: v for k, v in batch.items() if k != "texts_tokens"})
    with pytest.raises(KeyError, match="'xbar_A'.*WithIntermodalityFeatures"):
        specific.training_step({k: v for k, v in batch.items() if k != "xbar_A"})


def test_length_sorted_chunks_give_the_padded_loss_and_gradients(tokenizer_dir):
    model = make_model(tokenizer_dir, decoder_dropout=0.0).train()
    batch = batch_of(model, 6)
    results = []
    for budget in (0, 40):  # one padded call, then chunks of at most 40 padded tokens
        model.chunk_tokens = budget
        model.zero_grad()
        loss = model.training_step(batch)["loss"]
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-6, rtol=1e-5)
    for padded, chunked in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(padded, chunked, atol=1e-6, rtol=1e-4)


def test_listener_is_a_softmax_over_the_pairs_of_the_texts_likelihood(tokenizer_dir):
    model = make_model(tokenizer_dir, distractor_bank_size=3).eval()
    batch = batch_of(model, 4)
    xa, xb = batch["xbar_A"], batch["xbar_B"]
    texts = model.generate(xa, xb, "greedy", max_length=12, min_length=2)
    # distractors that are the first pair itself: its text is as likely under each, so the listener is at chance
    model.set_distractor_bank(xa[:1].expand(5, -1), xb[:1].expand(5, -1))
    chance = model.listener_log_probs(model.memory(xa, xb), texts.tokens, texts.lengths)
    torch.testing.assert_close(chance[0], torch.tensor(-math.log(4.0)))
    # by hand: the summed log-likelihood of each text under its own pair and under each kept pair
    model.set_distractor_bank(torch.randn(10, D), torch.randn(10, D), seed=2)
    full = torch.cat([torch.full((4, 1), model.special.bos), texts.tokens], dim=1)
    pairs = [(xa, xb)] + [
        (model.distractor_xbar[j, 0].expand(4, -1), model.distractor_xbar[j, 1].expand(4, -1)) for j in range(3)
    ]
    with torch.no_grad():
        log_likelihoods = torch.stack([-model.text_losses(model.memory(a, b), full, full)[0] for a, b in pairs], dim=1)
    expected = log_likelihoods.log_softmax(dim=1)[:, 0]
    torch.testing.assert_close(model.listener_log_probs(model.memory(xa, xb), texts.tokens, texts.lengths), expected)
    counts = (full[:, 1:] != model.special.pad).sum(dim=1)  # tokens each text is scored on (EOS included)
    per_token = (log_likelihoods / counts[:, None]).log_softmax(dim=1)[:, 0]
    normalised = model.listener_log_probs(model.memory(xa, xb), texts.tokens, texts.lengths, length_normalised=True)
    torch.testing.assert_close(normalised, per_token)


def test_rerank_keeps_the_bank_through_save_and_load_and_without_one_says_so(tokenizer_dir, tmp_path):
    model = make_model(tokenizer_dir, distractor_bank_size=4).eval()
    batch = batch_of(model, 3)
    xa, xb = batch["xbar_A"], batch["xbar_B"]
    model.set_distractor_bank(torch.randn(20, D), torch.randn(20, D))
    options = dict(max_length=10, min_length=2, nucleus_samples=3)
    reranked = model.generate(xa, xb, "rerank", **options)
    greedy = model.generate(xa, xb, "greedy", max_length=10, min_length=2)
    assert torch.equal(
        model.generate(xa, xb, "rerank", max_length=10, min_length=2, nucleus_samples=0).tokens, greedy.tokens
    )
    loaded = InstructionGenerator.from_pretrained(model.save_pretrained(tmp_path / "generator"))
    assert torch.equal(loaded.distractor_xbar, model.distractor_xbar)
    assert torch.equal(loaded.generate(xa, xb, "rerank", **options).tokens, reranked.tokens)
    plain = make_model(tokenizer_dir).eval()
    with pytest.raises(ValueError, match="distractor_bank_size 0.*--distractor_bank_size"):
        plain.generate(xa, xb, "rerank", **options)
    with pytest.raises(ValueError, match="distractor_bank_size 0"):
        plain.set_distractor_bank(xa, xb)
    model.set_distractor_bank(xa[:2], xb[:2])  # fewer pairs than the bank holds: each kept twice
    kept = sorted(map(tuple, model.distractor_xbar[:, 0].tolist()))
    assert kept == sorted(map(tuple, xa[:2].tolist() * 2))
    with pytest.raises(ValueError, match="no pairs to keep"):
        model.set_distractor_bank(xa[:0], xb[:0])
    with pytest.raises(ValueError, match=r"xbar_A: \(20, 7\)"):
        model.set_distractor_bank(torch.randn(20, 7), torch.randn(20, 7))
