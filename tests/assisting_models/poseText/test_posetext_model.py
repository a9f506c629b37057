"""PoseText: the published architecture, the symBBC objective with a learnable temperature, a frozen text
backbone left out of checkpoints, strict save / load, and a loss that falls on a tiny captioned dataset."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from poseembroider.assisting_models.poseText import model_poseText
from poseembroider.assisting_models.poseText.data import load_text_datasets, loader_backbone, text_collate_fn
from poseembroider.assisting_models.poseText.model_poseText import (
    PoseText,
    PoseTextConfig,
    load_posetext_text_encoder,
)
from poseembroider.models.losses import symmetric_bbc
from poseembroider.models.pretrained import WEIGHTS_NAME, CheckpointError, load_state_dict_file
from poseembroider.models.text_encoder import lengths_to_mask


def small_config(text_dir, **overrides) -> PoseTextConfig:
    """A PoseText small enough for a loaded 2-core CPU."""
    sizes = dict(
        latentD=32,
        num_neurons=64,
        num_neurons_mini=8,
        transformer_layers=1,
        transformer_heads=2,
        transformer_ff=64,
    )
    return PoseTextConfig(text_encoder_name=str(text_dir), **{**sizes, **overrides})


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(retrieval_text_dir) -> PoseText:
    torch.manual_seed(0)
    return PoseText(small_config(retrieval_text_dir))


@pytest.fixture(scope="module")
def batch(retrieval_datasets, model) -> dict:
    tokenizer = model.text_encoder.tokenizer
    dataset = load_text_datasets([retrieval_datasets["script"]], "val", tokenizer)
    return next(iter(DataLoader(dataset, batch_size=8, collate_fn=text_collate_fn(tokenizer))))


def test_defaults_are_the_published_recipe():
    cfg = PoseTextConfig()
    assert (cfg.latentD, cfg.num_body_joints, cfg.text_encoder_name) == (512, 22, "distilbertUncased")
    assert (cfg.transformer_topping, cfg.retrieval_loss) == ("avgp", "symBBC")
    assert (cfg.num_neurons, cfg.num_neurons_mini, cfg.pose_dropout) == (512, 32, 0.1)
    assert (cfg.transformer_layers, cfg.transformer_heads, cfg.transformer_ff, cfg.transformer_dropout) == (
        4,
        4,
        1024,
        0.1,
    )


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"latentD": 0}, "latentD"),
        ({"retrieval_loss": "InfoNCE"}, "InfoNCE"),
        ({"transformer_topping": "cls"}, "topping"),
    ],
)
def test_bad_configs_name_the_flag(overrides, flag):
    with pytest.raises(ValueError, match=flag):
        PoseTextConfig(**overrides)


def test_temperature_starts_at_10(model):
    assert model.loss_weight.shape == (1,) and model.loss_weight.item() == 10.0 and model.loss_weight.requires_grad


def test_embeddings_have_unit_norm(model, batch):
    model.eval()
    poses = model.encode_poses(batch["poses"])
    texts = model.encode_texts(batch["texts_tokens"], batch["texts_lengths"])
    assert poses.shape == texts.shape == (8, 32)
    assert torch.allclose(poses.norm(dim=-1), torch.ones(8), atol=1e-5)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(8), atol=1e-5)
    assert torch.allclose(model.encode_raw_texts(batch["raw_texts"]), texts, atol=1e-5)


def test_loss_is_symbbc_of_scaled_text_pose_scores(model, batch):
    model.eval()
    out = model.training_step(batch)
    poses = model.encode_poses(batch["poses"])
    texts = model.encode_texts(batch["texts_tokens"], batch["texts_lengths"])
    assert torch.allclose(out["loss"], symmetric_bbc(texts @ poses.T * 10.0), atol=1e-5)
    assert out["loss_weight"].item() == 10.0


def test_loss_uses_the_embeddings_of_every_rank(model, batch, monkeypatch):
    """With other ranks' embeddings gathered in, the scores are over the global batch."""
    others = torch.nn.functional.normalize(torch.randn(2, 8, 32), dim=-1)
    calls = []

    def fake_gather(x, texts):
        calls.append(True)
        return torch.cat([others[0], x]), torch.cat([others[1], texts])

    model.eval()
    poses = model.encode_poses(batch["poses"])
    texts = model.encode_texts(batch["texts_tokens"], batch["texts_lengths"])
    monkeypatch.setattr(model_poseText, "gather_features", fake_gather)
    loss = model.training_step(batch)["loss"]
    expected = symmetric_bbc(torch.cat([others[1], texts]) @ torch.cat([others[0], poses]).T * 10.0)
    assert calls and torch.allclose(loss, expected, atol=1e-5)


def test_validation_gives_the_recalls_of_both_directions(model, batch):
    model.eval()
    with torch.no_grad():
        outputs = [model.validation_step(batch), model.validation_step(batch)]
    assert outputs[0]["poses"].shape == outputs[0]["texts"].shape == (8, 32)
    metrics = model.validation_epoch_end(outputs)
    assert set(metrics) == {f"{d}_R@{k}" for d in ("p2t", "t2p") for k in (1, 5, 10)} | {"mRecall"}
    assert all(0.0 <= v <= 100.0 for v in metrics.values())


def test_param_groups_leave_out_the_frozen_backbone(model):
    (group,) = model.param_groups(lr=2e-4, wd=0.0)
    params = {id(p) for p in group["params"]}
    assert group["lr"] == 2e-4 and "weight_decay" not in group
    assert id(model.loss_weight) in params
    assert not params & {id(p) for p in model.text_encoder.backbone.parameters()}
    expected = {id(p) for n, p in model.named_parameters() if not n.startswith("text_encoder.backbone.")}
    assert params == expected


def test_backbone_stays_frozen_and_in_eval_mode(model, batch):
    model.train()
    try:
        assert model.pose_encoder.training and model.text_encoder.transformer.training
        assert not model.text_encoder.backbone.training
        model.zero_grad()
        model.training_step(batch)["loss"].backward()
        assert all(p.grad is None for p in model.text_encoder.backbone.parameters())
        assert model.loss_weight.grad is not None and model.pose_encoder.encoder[2].weight.grad is not None
    finally:
        model.eval()


def test_save_load_round_trip_is_strict_and_exact(model, batch, tmp_path):
    model.eval()
    with torch.no_grad():
        model.loss_weight.fill_(12.5)
        expected = model.training_step(batch)
    model.save_pretrained(tmp_path / "posetext")
    saved = load_state_dict_file(tmp_path / "posetext" / WEIGHTS_NAME)
    assert not [k for k in saved if k.startswith("text_encoder.backbone.")], "the frozen backbone is not saved"
    assert "text_encoder.backbone_fingerprint" in saved and "loss_weight" in saved
    loaded = PoseText.from_pretrained(tmp_path / "posetext")
    assert loaded.config == model.config and not loaded.training
    with torch.no_grad():
        out = loaded.training_step(batch)
    assert torch.equal(out["loss"], expected["loss"]) and loaded.loss_weight.item() == 12.5
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with torch.no_grad():
        model.loss_weight.fill_(10.0)
    encoder = load_posetext_text_encoder(tmp_path / "posetext", role=None)
    assert encoder.role is None and not encoder.training
    raw = encoder(batch["texts_tokens"], batch["texts_lengths"])
    assert raw.shape == (8, 32) and torch.allclose(
        torch.nn.functional.normalize(raw, dim=-1), model.encode_texts(batch["texts_tokens"], batch["texts_lengths"])
    )


def test_loading_over_another_text_backbone_fails_clearly(
    model, tmp_path, retrieval_datasets, text_model_folder_factory
):
    model.save_pretrained(tmp_path / "posetext")
    other = text_model_folder_factory(tmp_path / "other_text", retrieval_datasets["texts"][:200], seed=3)
    config_file = tmp_path / "posetext" / "config.json"
    config_file.write_text(config_file.read_text().replace(str(model.config.text_encoder_name), str(other)))
    with pytest.raises(CheckpointError, match="another text backbone"):
        PoseText.from_pretrained(tmp_path / "posetext")


def test_a_few_steps_lower_the_loss(retrieval_text_dir, retrieval_datasets, one_thread):
    torch.manual_seed(0)
    model = PoseText(small_config(retrieval_text_dir))
    tokenizer = model.text_encoder.tokenizer
    dataset = load_text_datasets([retrieval_datasets["script"]], "train", tokenizer, data_size=32)
    batch = next(iter(DataLoader(dataset, batch_size=32, collate_fn=text_collate_fn(tokenizer))))
    optimizer = torch.optim.Adam(model.param_groups(2e-3, 0.0)[0]["params"], lr=2e-3)
    model.train()
    losses = []
    for _ in range(10):
        loss = model.training_step(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


def test_backbone_features_from_the_loader_give_the_same_loss_and_gradients(model, retrieval_datasets):
    """`text_collate_fn(tokenizer, backbone)` computes the frozen backbone's token features in the loader (in
    the DataLoader workers when there are some); the model then uses them instead of running its backbone:
    same loss and same gradients."""
    tokenizer = model.text_encoder.tokenizer
    dataset = load_text_datasets([retrieval_datasets["script"]], "val", tokenizer)
    plain = next(iter(DataLoader(dataset, batch_size=16, collate_fn=text_collate_fn(tokenizer))))
    loader = DataLoader(dataset, batch_size=16, collate_fn=text_collate_fn(tokenizer, model.text_encoder.backbone))
    with_features = next(iter(loader))
    features = with_features["texts_features"]
    assert features.shape == (*with_features["texts_tokens"].shape, model.text_encoder.backbone.hidden_size)
    assert features[~lengths_to_mask(with_features["texts_lengths"], features.shape[1])].abs().max() == 0.0
    model.eval()  # no dropout: both paths must be the same function
    grads = []
    for batch in (plain, with_features):
        model.zero_grad()
        loss = model.training_step(batch)["loss"]
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.param_groups(1e-3, 0.0)[0]["params"]]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads[0][1], grads[1][1], strict=True))
    model.zero_grad()
    with torch.no_grad():  # the features given are the ones used
        texts = model.encode_texts(plain["texts_tokens"], plain["texts_lengths"])
        zeroed = model.encode_texts(plain["texts_tokens"], plain["texts_lengths"], torch.zeros_like(features))
    assert not torch.allclose(texts, zeroed, atol=1e-3)
    with pytest.raises(ValueError, match="texts_features"):
        model.encode_texts(plain["texts_tokens"], plain["texts_lengths"], features[:, :, :3])


def test_the_loader_runs_the_backbone_only_with_workers_on_the_cpu(model):
    assert loader_backbone(model, num_workers=1, device="cpu") is model.text_encoder.backbone
    assert loader_backbone(model, num_workers=0, device="cpu") is None
    assert loader_backbone(torch.nn.Linear(2, 2), num_workers=1, device="cpu") is None
