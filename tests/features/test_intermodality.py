"""x̄ caches: the rows are the model's x̄ of each element (single elements and pairs), written once, resumed,
shared by two ranks, read back by id, and refused with what differs when made by another model version or for
another dataset, split or input types."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from intermodality_world import make_intermodality_world
from poseembroider.cli import main as cli_main
from poseembroider.datasets.registry import get_dataset
from poseembroider.downstream.input_types import InputTypesError
from poseembroider.features import intermodality as im
from poseembroider.features.frozen import CachedFeatureDataset, compute_frozen_features
from poseembroider.features.intermodality import (
    WithIntermodalityFeatures,
    compute_intermodality_features,
    intermodality_cache_dir,
    open_intermodality_features,
)
from poseembroider.features.store import FeatureCacheError, FeatureStoreWriter, FieldSpec
from poseembroider.model import PoseEmbroider

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATOL = 2e-3  # frozen image tokens are cached in float16; x̄ from pixels differs by that rounding only


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_intermodality_world(tmp_path_factory.mktemp("intermodality"), "imworld", n_train=20, n_val=6)


def live_xbar(model_dir, dataset: str, split: str, modalities: tuple[str, ...], suffix: str = "") -> torch.Tensor:
    """x̄ of every item of a dataset computed from its raw inputs (pixels, poses, first caption) by the model."""
    model = PoseEmbroider.from_pretrained(model_dir).eval()
    tokenizer = model.frozen_encoders.encoders["text"].tokenizer
    letters = "".join(m[0] for m in modalities)
    data = get_dataset(dataset, split, item_format=letters, caption_selection=0, tokenizer=tokenizer)
    out = []
    keys = {"image": ["images"], "pose": ["poses"], "text": ["texts_tokens", "texts_lengths"]}
    with torch.no_grad():
        for index in range(len(data)):
            item = data[index]
            batch = {k: torch.as_tensor(item[k + suffix])[None] for m in modalities for k in keys[m]}
            out.append(model.get_intermodality_token(batch, modalities))
    return torch.cat(out)


def test_cache_dir_is_named_by_one_function(tmp_path):
    path = intermodality_cache_dir(tmp_path / "model", "synthscript-x", "val", ["texts", "images"])
    assert path == tmp_path / "model" / "intermodality_features" / "synthscript-x_val_input-images+texts"
    assert intermodality_cache_dir("m", "d", "train", "poses", root=tmp_path) == tmp_path / "d_train_input-poses"
    with pytest.raises(InputTypesError, match="unknown input type 'image'"):
        intermodality_cache_dir("m", "d", "train", ["image"])
    with pytest.raises(InputTypesError, match="at least one"):
        intermodality_cache_dir("m", "d", "train", [])


def test_single_elements_round_trip(world):
    model_dir = world["models"]["PoseEmbroider"]
    feats = compute_intermodality_features(model_dir, world["script"], "train", ["images", "texts"], progress=False)
    assert feats.store.directory == intermodality_cache_dir(model_dir, world["script"], "train", "images+texts")
    assert feats.data_ids.dtype == np.int64 and feats.data_ids.tolist() == world["ids"]["train"]
    assert feats.sides == () and feats.dim == 16
    expected = live_xbar(model_dir, world["script"], "train", ("image", "text"))
    torch.testing.assert_close(feats.features(), expected, atol=ATOL, rtol=1e-3)
    again = open_intermodality_features(model_dir, world["script"], "train", ["texts", "images"])
    ids = np.array(world["ids"]["train"][::-3])
    torch.testing.assert_close(again.rows(ids), feats.features().flip(0)[::3])
    with pytest.raises(FeatureCacheError, match=r"data id\(s\) 7 not in the feature store"):
        again.rows([7])
    with pytest.raises(ValueError, match="single elements: side must be None"):
        again.features("A")


def test_a_partial_cache_is_resumed(world):
    """Rows of a chunk written before an interruption are kept (here zeros), the other chunks computed."""
    model_dir = world["models"]["PoseEmbroider"]
    model = PoseEmbroider.from_pretrained(model_dir)
    directory = intermodality_cache_dir(model_dir, world["script"], "train", ["poses"])
    fingerprint = im.intermodality_fingerprint(model, world["script"], "train", ["poses"])
    writer = FeatureStoreWriter(directory, world["ids"]["train"], [FieldSpec("xbar", (16,))], fingerprint, chunk_size=8)
    writer.write_chunk(0, 8, {"xbar": torch.zeros(8, 16)})
    feats = compute_intermodality_features(model_dir, world["script"], "train", "poses", chunk_size=8, progress=False)
    rows = feats.features()
    assert torch.equal(rows[:8], torch.zeros(8, 16))
    expected = live_xbar(model_dir, world["script"], "train", ("pose",))
    torch.testing.assert_close(rows[8:], expected[8:], atol=1e-5, rtol=1e-4)


def test_two_ranks_write_the_same_cache_as_one(world, monkeypatch, tmp_path):
    """Two threads stand for two torchrun ranks (rank, world size and barrier patched per thread)."""
    model_dir = world["models"]["PoseEmbroider"]
    model = PoseEmbroider.from_pretrained(model_dir)
    compute_frozen_features(world["script"], "val", model.frozen_encoders, modalities=("pose",), progress=False)
    local, barrier = threading.local(), threading.Barrier(2, timeout=120)
    monkeypatch.setattr(im, "get_rank", lambda: local.rank)
    monkeypatch.setattr(im, "get_world_size", lambda: 2)
    monkeypatch.setattr(im, "barrier", lambda: barrier.wait())
    results: dict[int, object] = {}

    def rank(r: int) -> None:
        local.rank = r
        try:
            results[r] = compute_intermodality_features(
                model_dir, world["script"], "val", "poses", root=tmp_path / "two", chunk_size=2, progress=False
            )
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            barrier.abort()
            results[r] = err

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not isinstance(v, BaseException) for v in results.values()), results
    monkeypatch.undo()
    one = compute_intermodality_features(
        model_dir, world["script"], "val", "poses", root=tmp_path / "one", progress=False
    )
    torch.testing.assert_close(results[0].features(), one.features())
    assert len(list((tmp_path / "two").iterdir())) == 1  # the final folder only: .partial renamed


def test_another_model_version_dataset_or_input_types_is_refused(world, tmp_path):
    model_dir = world["models"]["PoseEmbroider"]
    root = tmp_path / "caches"
    compute_intermodality_features(model_dir, world["script"], "val", "images", root=root, progress=False)
    other = PoseEmbroider.from_pretrained(model_dir)
    with torch.no_grad():
        other.intermodality_token.add_(1.0)  # another version of the model: same folder names, other weights
    with pytest.raises(FeatureCacheError, match=r"val_input-images was made for other settings: key 'representation_"):
        open_intermodality_features(other, world["script"], "val", "images", root=root)
    with pytest.raises(FeatureCacheError, match="key 'representation_model'.*overwrite"):
        compute_intermodality_features(other, world["script"], "val", "images", root=root, progress=False)
    cache = intermodality_cache_dir(model_dir, world["script"], "val", "images", root=root)
    with pytest.raises(FeatureCacheError, match=r"key 'dataset' is 'synthscript-imworld.*' there, 'synthscript-b'"):
        open_intermodality_features(model_dir, "synthscript-b", "val", "images", directory=cache)
    with pytest.raises(FeatureCacheError, match="key 'input_types' is 'images' there, 'images\\+texts' expected"):
        open_intermodality_features(model_dir, world["script"], "val", "images texts".split(), directory=cache)
    missing = intermodality_cache_dir(model_dir, world["script"], "val", "poses", root=root)
    with pytest.raises(FeatureCacheError, match=f"no x̄ cache at {missing} .missing.: compute it with"):
        open_intermodality_features(model_dir, world["script"], "val", "poses", root=root)
    rewritten = compute_intermodality_features(
        other, world["script"], "val", "images", root=root, overwrite=True, progress=False
    )
    assert rewritten.store.fingerprint["representation_model"].startswith("PoseEmbroider@")


def test_pairs_hold_both_elements(world):
    """x̄_A, x̄_B from the pair dataset's poses (B of an in-sequence pair in A's heading) and images."""
    model_dir = world["models"]["PoseEmbroider"]
    feats = compute_intermodality_features(model_dir, world["fix"], "val", ["images", "poses"], progress=False)
    pairs = get_dataset(world["fix"], "val", item_format="p")
    assert feats.sides == ("A", "B") and feats.data_ids.tolist() == pairs.pair_ids
    for side in ("A", "B"):
        expected = live_xbar(model_dir, world["fix"], "val", ("image", "pose"), suffix=f"_{side}")
        torch.testing.assert_close(feats.features(side), expected, atol=ATOL, rtol=1e-3)
    single = compute_intermodality_features(model_dir, world["script"], "val", ["images", "poses"], progress=False)
    in_pair = next(i for i, p in enumerate(pairs.pair_ids) if pairs[i]["sequence_kind"] == "in")
    id_b = pairs[in_pair]["data_ids_B"]
    assert not torch.allclose(feats.features("B")[in_pair], single.rows([id_b])[0], atol=1e-3)  # B re-normalised
    with pytest.raises(ValueError, match=r"holds pairs: side must be one of \('A', 'B'\)"):
        feats.features()
    with pytest.raises(FeatureCacheError, match="--input_types texts: .* is a pair dataset"):
        compute_intermodality_features(model_dir, world["fix"], "val", ["poses", "texts"], progress=False)


def test_datasets_with_intermodality_features(world):
    model_dir = world["models"]["PoseEmbroider"]
    feats = compute_intermodality_features(model_dir, world["script"], "train", ["images", "texts"], progress=False)
    poses = get_dataset(world["script"], "train", item_format="p")
    items = WithIntermodalityFeatures(poses, feats)
    batch = next(iter(DataLoader(items, batch_size=5, shuffle=False)))
    assert batch["xbar"].shape == (5, 16) and batch["poses"].shape == (5, 22, 3)
    torch.testing.assert_close(batch["xbar"], feats.rows(batch["data_ids"]))
    model = PoseEmbroider.from_pretrained(model_dir)
    stores = compute_frozen_features(world["script"], "train", model.frozen_encoders, modalities=("pose",))
    batched = WithIntermodalityFeatures(CachedFeatureDataset(stores), feats, key="x").__getitems__([3, 1])
    torch.testing.assert_close(batched["x"], feats.features()[[3, 1]])
    pair_feats = compute_intermodality_features(model_dir, world["fix"], "val", "poses", progress=False)
    pair_item = WithIntermodalityFeatures(get_dataset(world["fix"], "val", item_format="p"), pair_feats)[2]
    torch.testing.assert_close(pair_item["xbar_B"], pair_feats.features("B")[2])
    with pytest.raises(KeyError, match="no 'data_ids' to look x̄ up by"):
        WithIntermodalityFeatures([{"poses": 0}], feats)[0]


def test_script_and_cli(world, capsys):
    model_dir = world["models"]["Aligner"]
    argv = ["--model_path", str(model_dir), "--dataset", world["script"], "--split", "val", "--input_types", "texts"]
    assert cli_main(["cache-intermodality-features", *argv, "--no_progress", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 6 and report["dim"] == 16
    assert report["cache"] == str(intermodality_cache_dir(model_dir, world["script"], "val", "texts"))
    assert report["fingerprint"]["representation_model"].startswith("Aligner@")
    bad = ["--model_path", str(model_dir), "--dataset", world["fix"], "--input_types", "texts", "--split", "val"]
    assert cli_main(["cache-intermodality-features", *bad, "--no_progress"]) == 2
    assert "is a pair dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["cache-intermodality-features", *argv[:-1], "text"])


def test_a_complete_cache_is_read_without_the_frozen_encoders(world, tmp_path):
    """Once x̄ is cached, neither the frozen features nor the encoders are needed to read it again."""
    model_dir = world["models"]["PoseEmbroider"]
    kwargs = {"root": tmp_path / "xbar", "frozen_root": tmp_path / "frozen", "progress": False}
    first = compute_intermodality_features(model_dir, world["script"], "val", "poses", **kwargs)
    shutil.rmtree(tmp_path / "frozen")
    model = PoseEmbroider.from_pretrained(model_dir)
    again = compute_intermodality_features(model, world["script"], "val", "poses", **kwargs)
    assert not (tmp_path / "frozen").exists() and model._frozen_encoders is None
    torch.testing.assert_close(again.features(), first.features())
