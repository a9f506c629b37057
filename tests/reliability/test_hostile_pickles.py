"""Pickles that would run code, placed at every place the toolkit reads a torch, pickle or numpy file.

Each reader gets every hostile file of `reliability_hostile.hostile_pickles` (a payload that creates a marker
file, in 23 wrappings) under the name it reads; each must refuse with an error naming the file, and the marker
must never appear. `test_every_payload_is_live` first proves each file does create the marker when read the
naive way (`pickle.loads`, `torch.load(weights_only=False)`, `np.load(allow_pickle=True)`), so no refusal is
vacuous. The readers are the ones found by grepping the package for `torch.load`, `pickle`, `np.load`:
training states (also through the Trainer's `--resume`), dataset caches (also through the dataset classes),
the restricted unpickler and its 3DPW / PoseFix readers, release checkpoints, SMPLer-X checkpoints, the work
tables of `data synth` and BEDLAM processing, pose / mean-pose / per-sample / regressor / motion / body-model
`.npz` files, feature stores and text-backbone folders. `test_import_release_refuses_a_hostile_checkpoint`
runs the whole release import (tests/compat fixture) with one checkpoint replaced.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_hostile import hostile_pickles, live_payload_ran

TESTS = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Site:
    """A reader of files: `file_name` is where the hostile file goes in a fresh folder; `read(path)` reads it
    the way the toolkit does (building whatever else the reader needs around it)."""

    file_name: str
    read: Callable[[Path], Any]
    named: Callable[[Path], Path] = lambda path: path  # the file the error must name (where `read` put it)


def _training_state(path: Path) -> Any:
    from poseembroider.training.state import load_training_state

    return load_training_state(path)


def _trainer_resume(path: Path) -> Any:
    """The Trainer's `--resume` of a run folder whose `last/training_state.pt` is `path`'s content."""
    sys.path.insert(0, str(TESTS / "training"))
    from toy_contrastive import PairDataset, make_model

    from poseembroider.training.config import TrainerConfig
    from poseembroider.training.state import TRAINING_STATE_NAME
    from poseembroider.training.trainer import Trainer

    run = path.parent / "run"
    (run / "last").mkdir(parents=True, exist_ok=True)
    (run / "last" / TRAINING_STATE_NAME).write_bytes(path.read_bytes())
    make_model(0).save_pretrained(run / "last")
    config = TrainerConfig(
        output_dir=str(run), epochs=1, batch_size=8, resume=True, tensorboard=False, progress=False, device="cpu"
    )
    return Trainer(make_model(0), PairDataset(16), None, config).fit()


def _cache(path: Path) -> Any:
    from poseembroider.datasets.cache_format import load_cache

    return load_cache(path, "images")


def _dataset(path: Path) -> Any:
    """A TriModalDatasetScript over a cache folder whose images cache is `path`."""
    from poseembroider.datasets.base_dataset import DatasetSource, TriModalDatasetScript

    source = DatasetSource("synthscript", "hostile", path.parent, path.parent)
    return TriModalDatasetScript(source, "val", item_format="ip")


def _restricted(path: Path) -> Any:
    from poseembroider.datasets.restricted_pickle import load_restricted_pickle

    return load_restricted_pickle(path)


def _threedpw(path: Path) -> Any:
    from poseembroider.datasets.process_threedpw.sequences import read_sequence_file

    return read_sequence_file(path)


def _posefix_pose(path: Path) -> Any:
    from poseembroider.datasets.process_posefix.pose_sources import read_smplx_pose_file

    return read_smplx_pose_file(path)


def _release(path: Path) -> Any:
    from poseembroider.compat.release_files import read_release_checkpoint

    return read_release_checkpoint(path)


def _smplerx(path: Path) -> Any:
    from poseembroider.assisting_models.imageEncoder.smplerx_weights import read_smplerx_network

    return read_smplerx_network(path)


def _synth_work_table(path: Path) -> Any:
    from poseembroider.datasets.synthetic.generate import _cached

    return _cached(path, lambda: pytest.fail("the table exists: it must be read, not recomputed"))


def _bedlam_work_table(path: Path) -> Any:
    from poseembroider.datasets.process_bedlam.pipeline import _cached

    return _cached(path, lambda: pytest.fail("the table exists: it must be read, not recomputed"))


def _pose_file(path: Path) -> Any:
    from poseembroider.text.pose_files import load_pose_file

    return load_pose_file(path)


def _embed_poses(path: Path) -> Any:
    from poseembroider.features.embedding_files import read_inputs

    return read_inputs(poses=str(path))


def _mean_pose(path: Path) -> Any:
    from poseembroider.downstream.pose_estimation.mean_pose import load_mean_pose

    return load_mean_pose(path)


def _per_sample(path: Path) -> Any:
    from poseembroider.downstream.pose_estimation.evaluation import load_per_sample

    return load_per_sample(path)


def _regressor(path: Path) -> Any:
    from poseembroider.evaluation.mesh_recovery import load_h36m_regressor

    return load_h36m_regressor(path)


def _amass_motion(path: Path) -> Any:
    from poseembroider.datasets.process_amass.motion_files import read_motion_file

    return read_motion_file(path)


def _bedlam_motion(path: Path) -> Any:
    from poseembroider.datasets.process_bedlam.layout import read_motion

    return read_motion(path)


def _body_model(path: Path) -> Any:
    from poseembroider.body.model_file import open_model_file

    return open_model_file(path, cache_dir=path.parent / "cache")


def _feature_store_ids(path: Path) -> Any:
    return _feature_store(path, "data_ids.npy")


def _feature_store_field(path: Path) -> Any:
    return _feature_store(path, "pose.npy")


def _feature_store(path: Path, member: str) -> Any:
    """A complete feature store whose `member` is `path`'s content."""
    from poseembroider.features.store import FeatureStore, FeatureStoreWriter, FieldSpec

    directory = path.parent / "store"
    writer = FeatureStoreWriter(directory, [3, 5], [FieldSpec("pose", (4,), "float32")], {"model": "m"})
    for start, stop in writer.pending_chunks():
        writer.write_chunk(start, stop, {"pose": np.zeros((stop - start, 4), np.float32)})
    writer.finalize()
    (directory / member).write_bytes(path.read_bytes())
    return FeatureStore.open(directory, {"model": "m"})


def _text_backbone(path: Path) -> Any:
    """A text-backbone folder with a config.json and `path` as its only weights (`pytorch_model.bin`)."""
    from poseembroider.assisting_models.textBackbone.model_textBackbone import load_distilbert

    (path.parent / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    return load_distilbert(path.parent)


SITES: dict[str, Site] = {
    "training state": Site("training_state.pt", _training_state),
    "Trainer --resume": Site("training_state.pt", _trainer_resume, lambda p: p.parent / "run" / "last" / p.name),
    "dataset cache": Site("synthscript_version_hostile_split_val_images.pt", _cache),
    "dataset class over caches": Site("synthscript_version_hostile_split_val_images.pt", _dataset),
    "restricted pickle": Site("file.pkl", _restricted),
    "3DPW sequence file": Site("courtyard_basketball_00.pkl", _threedpw),
    "PoseFix SMPL-X pose file": Site("pose.pkl", _posefix_pose),
    "release checkpoint": Site("checkpoint_release.pth", _release),
    "SMPLer-X checkpoint": Site("smpler_x_b32.pth.tar", _smplerx),
    "data synth work table": Site("pool.pt", _synth_work_table),
    "BEDLAM processing work table": Site("rows.pt", _bedlam_work_table),
    "pose file (.npz)": Site("poses.npz", _pose_file),
    "embed --poses": Site("poses.npz", _embed_poses),
    "mean pose file": Site("mean_pose.npz", _mean_pose),
    "per-sample evaluation file": Site("per_sample.npz", _per_sample),
    "H36M regressor": Site("J_regressor_h36m.npy", _regressor),
    "AMASS motion file": Site("motion_poses.npz", _amass_motion),
    "BEDLAM motion file": Site("motion_seq.npz", _bedlam_motion),
    "body model file": Site("SMPLX_NEUTRAL.npz", _body_model),
    "feature store ids": Site("data_ids.npy", _feature_store_ids, lambda p: p.parent / "store" / p.name),
    "feature store field": Site("pose.npy", _feature_store_field, lambda p: p.parent / "store" / p.name),
    "text backbone folder": Site("pytorch_model.bin", _text_backbone, lambda p: p.parent),
}


@pytest.mark.reliability(area="hostile_files", subject="the hostile pickles themselves (each runs its code)")
def test_every_payload_is_live(tmp_path, cases):
    marker = tmp_path / "ran"
    for name, data in hostile_pickles(marker).items():
        cases.tried()
        assert live_payload_ran(data, marker), f"{name}: the payload does not run when read naively"


@pytest.mark.parametrize("site", list(SITES))
@pytest.mark.reliability(area="hostile_files", subject="code-running pickles at every torch / pickle / npy reader")
def test_a_pickle_that_runs_code_is_refused_naming_the_file(site, tmp_path, cases):
    marker = tmp_path / "ran"
    for k, (name, data) in enumerate(hostile_pickles(marker).items()):
        folder = tmp_path / f"case_{k}"
        folder.mkdir()
        path = folder / SITES[site].file_name
        path.write_bytes(data)
        cases.tried()
        with pytest.raises(Exception) as err:  # noqa: PT011 - any refusal, checked below to name the file
            SITES[site].read(path)
        assert not marker.exists(), f"{site}: {name} RAN ITS PAYLOAD"
        message, named = str(err.value), SITES[site].named(path)
        assert str(named) in message, (
            f"{site}: {name}: the error does not name {named}: {type(err.value).__name__}: {message}"
        )
        assert "Traceback" not in message


@pytest.mark.slow
@pytest.mark.reliability(area="hostile_files", subject="release import (tests/compat fixture, one checkpoint hostile)")
def test_import_release_refuses_a_hostile_checkpoint(tmp_path, cases, monkeypatch):
    sys.path.insert(0, str(TESTS / "compat"))
    from release_fixture import write_fake_release

    from poseembroider import config
    from poseembroider.compat.release_import import import_release

    monkeypatch.setattr(config, "MODELS_ROOT", tmp_path / "models")
    release = write_fake_release(tmp_path / "release", seed=1, only=("posevae_model_bedlamscript",))
    checkpoint = Path(release["posevae_model_bedlamscript"])
    marker = tmp_path / "ran"
    for name, data in hostile_pickles(marker).items():
        cases.tried()
        checkpoint.write_bytes(data)
        with pytest.raises(Exception) as err:  # noqa: PT011 - checked below
            import_release(tmp_path / "release", tmp_path / "out")
        assert not marker.exists(), f"{name} RAN ITS PAYLOAD"
        assert str(checkpoint) in str(err.value), f"{name}: {err.value}"
        assert not (tmp_path / "out" / "posevae_model_bedlamscript").exists()
