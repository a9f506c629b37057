"""PoseEmbroider and Aligner on cached features: losses, queries, modality isolation, save/load, errors."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from itertools import combinations
from types import SimpleNamespace

import pytest
import torch
from core_batches import feature_batch, small_config

from poseembroider.modalities import MODALITIES, QUERY_TYPES, UnknownModalityError
from poseembroider.model import POOL_BATCH_KEY, Aligner, PoseEmbroider
from poseembroider.models.losses import symmetric_bbc
from poseembroider.models.pretrained import CheckpointError, load_pretrained

MODELS = (PoseEmbroider, Aligner)


def test_symbbc_hand_computed_value():
    # 2x2 scores, diagonal 1, off-diagonal 0: every row and column gives -log(e / (e + 1))
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = math.log(1 + math.exp(-1))
    assert symmetric_bbc(scores).item() == pytest.approx(expected, abs=1e-6)
    # asymmetric case: rows and columns differ, symBBC averages both
    scores = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    rows = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(1 / (math.exp(1) + 1))) / 2
    cols = (-math.log(math.exp(2) / (math.exp(2) + math.exp(1))) - math.log(1 / 2)) / 2
    assert symmetric_bbc(scores).item() == pytest.approx((rows + cols) / 2, abs=1e-6)


def _loop_losses_poseembroider(model: PoseEmbroider, tokens: dict) -> torch.Tensor:
    terms = []
    for bundle in model.config.bundles:
        xbar = model.represent(tokens, bundle)
        for m in MODALITIES:
            terms.append(symmetric_bbc(model.predict(xbar, m) @ tokens[m].t() * model.temperature))
    return torch.stack(terms)


def test_poseembroider_loss_is_the_mean_over_bundles_and_targets(features):
    model = PoseEmbroider(small_config()).eval()
    tokens = model.encode(features)
    terms = model.training_losses(tokens)
    assert terms.shape == (6 * 3,)  # 3 single + 3 dual bundles, 3 target modalities each
    assert torch.allclose(terms, _loop_losses_poseembroider(model, tokens), atol=1e-5)


def test_triplet_bundle_adds_three_terms(features):
    model = PoseEmbroider(small_config(triplet_partial=True)).eval()
    assert model.training_losses(model.encode(features)).shape == (7 * 3,)


def test_aligner_loss_terms(features):
    model = Aligner(small_config(external_encoder_projection_type="mediummlpxs")).eval()
    tokens = model.encode(features)
    expected = []
    for m1, m2 in combinations(MODALITIES, 2):
        expected.append(symmetric_bbc(tokens[m1] @ tokens[m2].t() * model.temperature))
        (m3,) = [m for m in MODALITIES if m not in (m1, m2)]
        mixed = torch.nn.functional.normalize(tokens[m1] + tokens[m2], dim=-1)
        expected.append(symmetric_bbc(mixed @ tokens[m3].t() * model.temperature))
    assert torch.allclose(model.training_losses(tokens), torch.stack(expected), atol=1e-5)


def test_poseembroider_terms_of_pose_and_text_only(features):
    model = PoseEmbroider(small_config()).eval()
    tokens = model.encode(features, ("pose", "text"))
    terms = model.training_losses(tokens)
    assert terms.shape == (3 * 2,)  # bundles pose, text, pose+text; targets pose and text
    expected = []
    for bundle in (("pose",), ("text",), ("pose", "text")):
        xbar = model.represent(tokens, bundle)
        expected += [
            symmetric_bbc(model.predict(xbar, m) @ tokens[m].t() * model.temperature) for m in ("pose", "text")
        ]
    assert torch.allclose(terms, torch.stack(expected), atol=1e-5)
    with pytest.raises(ValueError, match="no training bundle"):
        PoseEmbroider(small_config(single_partials=False)).training_losses({"pose": tokens["pose"]})


def test_aligner_terms_of_pose_and_text_only(features):
    model = Aligner(small_config(external_encoder_projection_type="mediummlpxs")).eval()
    tokens = model.encode(features, ("pose", "text"))
    expected = symmetric_bbc(tokens["pose"] @ tokens["text"].t() * model.temperature)
    assert torch.allclose(model.training_losses(tokens), expected[None], atol=1e-5)


@pytest.mark.parametrize("cls", MODELS)
def test_a_pool_sub_batch_adds_its_terms_to_the_mean(cls, features):
    model = cls(small_config()).eval()
    pool = {k: v for k, v in feature_batch(batch_size=12, seed=5).items() if k != "image_features"}
    full = model.training_losses(model.encode(features))
    partial = model.training_losses(model.encode(pool, ("pose", "text")))
    loss = model.training_step({**features, POOL_BATCH_KEY: pool})["loss"]
    assert torch.allclose(loss, torch.cat([full, partial]).mean(), atol=1e-6)
    assert not torch.allclose(loss, full.mean())
    # the pool's poses and texts train the pose and text projections, never the image one
    model.zero_grad()
    model.training_losses(model.encode(pool, ("pose", "text"))).mean().backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert any(
        g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith("encoder_projections.pose")
    )
    assert all(g is None or g.abs().sum() == 0 for n, g in grads.items() if n.startswith("encoder_projections.image"))


@pytest.mark.parametrize("cls", MODELS)
def test_training_reduces_the_loss(cls):
    torch.manual_seed(0)
    model = cls(small_config())
    batch = feature_batch(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(120):
        loss = model.training_step(batch)["loss"]
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_modality_encodings_do_not_change_the_targets(features):
    model = PoseEmbroider(small_config()).eval()
    with torch.no_grad():
        for p in model.modality_encodings.values():
            p.add_(1.0)
    tokens = model.encode(features)
    before = {m: t.clone() for m, t in tokens.items()}
    model.training_losses(tokens)
    for m in MODALITIES:
        assert torch.equal(tokens[m], before[m])


class RecordingBatch(Mapping):
    """A batch that records which keys were read."""

    def __init__(self, data: dict) -> None:
        self.data, self.read = data, set()

    def __getitem__(self, key):
        self.read.add(key)
        return self.data[key]

    def __iter__(self) -> Iterator:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, key) -> bool:
        return key in self.data


@pytest.mark.parametrize("cls", MODELS)
def test_a_query_never_reads_the_missing_modalities(cls, features):
    model = cls(small_config()).eval()
    for query in QUERY_TYPES:
        batch = RecordingBatch(features)
        tokens = model.encode(batch, query.query)
        model.query_features(tokens, query)
        assert batch.read == {f"{m}_features" for m in query.query}, query.name


def test_query_output_does_not_depend_on_the_missing_modality(features):
    model = PoseEmbroider(small_config()).eval()
    other = dict(features, image_features=torch.randn_like(features["image_features"]))
    for query in QUERY_TYPES:
        if "image" in query.query:
            continue
        a = model.query_features(model.encode(features), query)
        b = model.query_features(model.encode(other), query)
        assert torch.equal(a, b), query.name


def test_dual_queries_use_both_modalities(features):
    model = PoseEmbroider(small_config()).eval()
    tokens = model.encode(features)
    single = model.represent(tokens, ["pose"])
    dual = model.represent(tokens, ["pose", "text"])
    assert not torch.allclose(single, dual)
    bundles = model.represent_bundles(tokens, [("pose",), ("pose", "text")])
    assert torch.allclose(bundles[0], single, atol=1e-6) and torch.allclose(bundles[1], dual, atol=1e-6)


ALL_BUNDLES = [("image",), ("pose",), ("text",), ("image", "pose"), ("image", "text"), ("pose", "text"), MODALITIES]


def _full_core_outputs(model: PoseEmbroider, tokens: dict, bundles) -> torch.Tensor:
    """x̄ of each bundle by the plain route: its whole sequence through `model.core`, position 0 read."""
    outputs = []
    for bundle in bundles:
        parts = [tokens[m] + model.modality_encodings[m] for m in bundle]
        glob = model.intermodality_token.expand(parts[0].shape[0], -1)
        outputs.append(model.core_norm(model.core(torch.stack([glob, *parts], dim=1))[:, 0]))
    return torch.stack(outputs)


@pytest.mark.parametrize("layers", [1, 2])
def test_bundles_equal_the_core_run_on_each_full_sequence(features, layers):
    # the one-layer shortcut (shared keys/values, global query only) and the deeper path (last layer on the
    # global token only) are the same function, with the same gradients, as the core on whole sequences
    torch.manual_seed(0)
    model = PoseEmbroider(small_config(core_layers=layers)).eval()
    with torch.no_grad():  # away from the zero / tiny initial values, so every term matters
        for parameter in [model.intermodality_token, *model.modality_encodings.values()]:
            parameter.normal_()
    tokens = model.encode(features)
    fast = model.represent_bundles(tokens, ALL_BUNDLES)
    plain = _full_core_outputs(model, tokens, ALL_BUNDLES)
    assert fast.shape == (len(ALL_BUNDLES), features["pose_features"].shape[0], model.config.latentD)
    assert torch.allclose(fast, plain, atol=1e-5)
    weights = torch.randn_like(fast)
    params = list(model.parameters())
    grads_fast = torch.autograd.grad((fast * weights).sum(), params, allow_unused=True, retain_graph=True)
    grads_plain = torch.autograd.grad((plain * weights).sum(), params, allow_unused=True)
    compared = 0
    for (name, _), a, b in zip(model.named_parameters(), grads_fast, grads_plain, strict=True):
        if b is not None:
            assert a is not None and torch.allclose(a, b, atol=1e-5), name
            compared += 1
    assert compared > 10


@pytest.mark.parametrize("cls", MODELS)
def test_save_load_gives_the_same_outputs(cls, features, tmp_path):
    torch.manual_seed(0)
    model = cls(small_config()).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = load_pretrained(tmp_path / "m")
    assert type(loaded) is cls
    tokens, loaded_tokens = model.encode(features), loaded.encode(features)
    for query in QUERY_TYPES:
        assert torch.equal(model.query_features(tokens, query), loaded.query_features(loaded_tokens, query))


def test_image_feature_modes(features):
    exact = PoseEmbroider(small_config(image_feature_mode="exact")).eval()
    compact = PoseEmbroider(small_config(image_feature_mode="compact")).eval()
    compact.load_state_dict(exact.state_dict())
    tokens = features["image_features"]
    # compact: average the frozen tokens, then project; exact: project each token, then average
    pooled = compact.encode({"image_features": tokens.mean(1)}, ["image"])["image"]
    assert torch.allclose(compact.encode({"image_features": tokens}, ["image"])["image"], pooled, atol=1e-6)
    assert not torch.allclose(exact.encode({"image_features": tokens}, ["image"])["image"], pooled, atol=1e-4)
    with pytest.raises(ValueError, match="image_feature_mode 'exact' expects"):
        exact.encode({"image_features": tokens.mean(1)}, ["image"])


def test_unknown_modality_is_refused(features):
    model = PoseEmbroider(small_config()).eval()
    with pytest.raises(UnknownModalityError, match="'audio'"):
        model.get_intermodality_token(features, ["pose", "audio"])
    with pytest.raises(UnknownModalityError, match="'depth'"):
        model.predict(torch.zeros(2, 16), "depth")


def test_encoders_of_another_version_are_refused():
    model = PoseEmbroider(small_config(pose_encoder_fingerprint="aaaa"))
    fake = SimpleNamespace(encoders={"pose": SimpleNamespace(name="posevae_x", fingerprint="bbbb")})
    with pytest.raises(CheckpointError, match="pose encoder 'posevae_x'.*bbbb.*aaaa"):
        model.attach_encoders(fake)


def test_validation_metrics_cover_the_nine_query_types(features):
    model = PoseEmbroider(small_config()).eval()
    with torch.no_grad():
        outputs = [model.validation_step(feature_batch(8, seed)) for seed in range(2)]
    metrics = model.validation_epoch_end(outputs)
    names = {k.split("_R@")[0] for k in metrics if "_R@" in k}
    assert names == {q.name for q in QUERY_TYPES} and len(names) == 9
    assert {"mRecall", "mRecall_single_query", "mRecall_dual_query"} <= set(metrics)
    singles = [v for k, v in metrics.items() if "_R@" in k and len(k.split("2")[0]) == 1]
    duals = [v for k, v in metrics.items() if "_R@" in k and len(k.split("2")[0]) == 2]
    assert len(singles) == 18 and len(duals) == 9
    assert metrics["mRecall_single_query"] == pytest.approx(sum(singles) / 18)
    assert metrics["mRecall"] == pytest.approx((sum(singles) / 18 + sum(duals) / 9) / 2)


@pytest.mark.parametrize("cls", MODELS)
def test_chunked_evaluation_equals_full_query_matrices(cls):
    from poseembroider.evaluation.core_retrieval import core_retrieval_metrics, retrieval_metrics_from_tokens

    torch.manual_seed(0)
    model = cls(small_config()).eval()
    with torch.no_grad():
        tokens = model.encode(feature_batch(40, seed=3))
        queries = {q.name: model.query_features(tokens, q) for q in QUERY_TYPES}
    expected = core_retrieval_metrics(queries, tokens)
    chunked = retrieval_metrics_from_tokens(model, tokens, chunk_size=7, progress=False)
    assert chunked.keys() == expected.keys()
    for key, value in expected.items():
        assert chunked[key] == pytest.approx(value), key
    partial = retrieval_metrics_from_tokens(model, tokens, chunk_size=7, progress=False, max_queries=14)
    assert set(partial) == set(expected)


def test_a_model_folder_without_weights_is_refused(tmp_path):
    PoseEmbroider(small_config()).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_pretrained(tmp_path / "m")
