"""Release files are read without unpickling anything but data, found wherever the original's layout puts them,
and refused with errors naming the file, the global, the key and both shapes when they are not what the
original wrote."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from release_fixture import Sizes, write_fake_release

from poseembroider import config
from poseembroider.cli import main as cli_main
from poseembroider.compat.release_files import ReleaseLayout, read_release_checkpoint
from poseembroider.compat.release_import import NoImporterError, import_release
from poseembroider.models.pretrained import CheckpointError
from poseembroider.registry import load_registry

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class PlantedPayload:
    """A class a malicious file could ask the unpickler to build."""

    def __reduce__(self):
        return (os.getcwd, ())


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("release_errors") / "release"
    only = (
        "posevae_model_bedlamscript",
        "posetext_model_bedlamscript",
        "poseembroider_model_bedlamscript",
        "hpsestimator_model_poseembroider_bedlamscript",
        "instructgen_model_poseembroider_bedlamfix_posefix",
    )
    return write_fake_release(root, seed=4, only=only) | {"root": root}


@pytest.fixture
def models_root(tmp_path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "MODELS_ROOT", tmp_path / "models")
        yield tmp_path / "models"


def _copy_release(release: dict, tmp_path: Path) -> Path:
    target = tmp_path / "release"
    shutil.copytree(release["root"], target)
    return target


def _rewrite(path: Path, edit) -> None:
    data = torch.load(path, weights_only=False)  # our own fixture file
    edit(data)
    torch.save(data, path)


# ------------------------------------------------------------------------------------------ safe reading


def test_a_release_checkpoint_is_read_with_its_namespace(release):
    ckpt = read_release_checkpoint(release["posevae_model_bedlamscript"])
    assert ckpt.kind == "PoseVAE" and ckpt.epoch == 137 and ckpt.args["latentD"] == Sizes().vae_latent
    assert set(ckpt.extra_keys) == {"optimizer", "scheduler", "best_val_loss"}
    assert ckpt.state["pose_encoder.encoder.1.num_batches_tracked"].dtype == torch.int64


@pytest.mark.parametrize(
    "planted, global_name",
    [(PlantedPayload(), "posix.getcwd"), (os.system, "posix.system"), (Sizes(), "release_fixture.Sizes")],
)
def test_any_other_pickled_global_is_refused_naming_file_and_global(release, tmp_path, planted, global_name):
    path = tmp_path / "checkpoint_release.pth"
    shutil.copyfile(release["posevae_model_bedlamscript"], path)
    _rewrite(path, lambda data: data.update(planted=planted))
    with pytest.raises(CheckpointError, match="refusing to load") as err:
        read_release_checkpoint(path)
    assert str(path) in str(err.value) and global_name in str(err.value)


def test_non_tensor_state_entries_and_missing_args_are_refused(release, tmp_path):
    path = tmp_path / "checkpoint_release.pth"
    shutil.copyfile(release["posevae_model_bedlamscript"], path)
    _rewrite(path, lambda data: data["model"].update(extra=[1, 2]))
    with pytest.raises(CheckpointError, match=r"not tensors: \['extra'\]"):
        read_release_checkpoint(path)
    _rewrite(path, lambda data: data.pop("args"))
    with pytest.raises(CheckpointError, match=r"lacks \['args'\]"):
        read_release_checkpoint(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_release_checkpoint(path)


def test_checkpoints_are_found_by_registry_or_by_shortname(release, tmp_path):
    root = _copy_release(release, tmp_path)
    layout = ReleaseLayout(root)
    expected = root / "pretrained_models" / "posevae_model_bedlamscript" / "checkpoint_release.pth"
    assert layout.checkpoint_path("posevae_model_bedlamscript") == expected  # relative registry path: by shortname
    registry = {"posevae_model_bedlamscript": "/home/authors/posevae_model_bedlamscript/checkpoint_release.pth"}
    (root / "shortname_2_model_path.json").write_text(json.dumps(registry))  # absolute paths of another machine
    assert ReleaseLayout(root).checkpoint_path("posevae_model_bedlamscript") == expected
    assert set(ReleaseLayout(root).shortnames()) >= {"posevae_model_bedlamscript", "poseembroider_model_bedlamscript"}
    moved = root / "posetext_model_bedlamscript"  # `<release>/<shortname>/` works too
    shutil.move(root / "pretrained_models" / "posetext_model_bedlamscript", moved)
    assert ReleaseLayout(root).checkpoint_path("posetext_model_bedlamscript") == moved / "checkpoint_release.pth"
    with pytest.raises(FileNotFoundError, match="no checkpoint for 'nothing_here'"):
        layout.checkpoint_path("nothing_here")


# ------------------------------------------------------------------------------------------ importing


def test_a_misshaped_key_names_the_key_and_both_shapes(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    path = root / "pretrained_models" / "posevae_model_bedlamscript" / "checkpoint_release.pth"
    n = Sizes().neurons
    _rewrite(path, lambda data: data["model"].update({"pose_encoder.encoder.6.weight": torch.zeros(n, n + 1)}))
    with pytest.raises(CheckpointError) as err:
        import_release(root, tmp_path / "out", shortnames=["posevae_model_bedlamscript"])
    message = str(err.value)
    assert str(path) in message
    assert f"pose_encoder.encoder.6.weight: file ({n}, {n + 1}) vs expected ({n}, {n})" in message


def test_a_missing_key_is_named_in_the_originals_and_our_terms(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    path = root / "pretrained_models" / "poseembroider_model_bedlamscript" / "checkpoint_release_noencoderweights.pth"
    _rewrite(path, lambda data: data["model"].pop("embroider_core.1.linear2.bias"))
    with pytest.raises(
        CheckpointError, match=r"missing key\(s\): embroider_core\.1\.linear2\.bias \(-> core\.1\.layers"
    ):
        import_release(root, tmp_path / "out", shortnames=["poseembroider_model_bedlamscript"])


def test_an_unexpected_key_and_a_misshaped_token_are_refused(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    path = root / "pretrained_models" / "poseembroider_model_bedlamscript" / "checkpoint_release_noencoderweights.pth"
    d = Sizes().core_latent

    def edit(data):
        data["model"]["pose_encoder.pretrained_pose_encoder.encoder.2.weight"] = torch.zeros(3)
        data["model"]["modality_encoding_text"] = torch.zeros(1, 1, d + 2)

    _rewrite(path, edit)
    with pytest.raises(CheckpointError) as err:
        import_release(root, tmp_path / "out", shortnames=["poseembroider_model_bedlamscript"])
    message = str(err.value)
    assert f"modality_encoding_text: file (1, 1, {d + 2}) vs expected (1, 1, {d})" in message
    assert "unexpected key(s): pose_encoder.pretrained_pose_encoder.encoder.2.weight" in message


def test_stale_position_ids_are_dropped_but_another_positional_table_is_refused(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    path = root / "pretrained_models" / "posetext_model_bedlamscript" / "checkpoint_release.pth"
    positions = Sizes().bert_positions
    key = "text_encoder.pretrained_text_encoder.embeddings.position_ids"
    _rewrite(path, lambda data: data["model"].update({key: torch.arange(positions)[None]}))
    report = import_release(root, tmp_path / "out", shortnames=["posetext_model_bedlamscript"])
    assert set(report.written) == {"posetext_model_bedlamscript", "distilbert-base-uncased"}
    _rewrite(path, lambda data: data["model"]["text_encoder.positional_encoding.pe"].mul_(1.01))
    with pytest.raises(CheckpointError, match="positional_encoding.pe differs from the sinusoid table"):
        import_release(root, tmp_path / "out2", shortnames=["posetext_model_bedlamscript"])


def test_unsupported_args_are_refused_naming_the_argument(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    path = root / "pretrained_models" / "posetext_model_bedlamscript" / "checkpoint_release.pth"
    _rewrite(path, lambda data: setattr(data["args"], "text_encoder_name", "glovebigru"))
    with pytest.raises(CheckpointError, match=r"args.text_encoder_name = 'glovebigru'"):
        import_release(root, tmp_path / "out", shortnames=["posetext_model_bedlamscript"])


def test_a_kind_without_importer_is_skipped_and_reported_or_refused_when_asked(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    head = root / "pretrained_models" / "some_head_model" / "checkpoint_release.pth"
    head.parent.mkdir()
    torch.save({"epoch": 1, "model": OrderedDict(w=torch.zeros(2)), "args": argparse.Namespace(model="Head")}, head)
    report = import_release(root, tmp_path / "out", shortnames=None)
    assert "no importer for kind 'Head'" in report.skipped["some_head_model"]
    assert "poseembroider_model_bedlamscript" in report.seconds
    with pytest.raises(NoImporterError, match="importers exist for"):
        import_release(root, tmp_path / "out", shortnames=["some_head_model"])


def test_the_cli_imports_with_cache_folders_given_apart(release, tmp_path, models_root, capsys):
    root = _copy_release(release, tmp_path)
    hf, torch_cache = tmp_path / "hf", tmp_path / "torch_cache"
    shutil.move(root / "huggingface_models", hf)
    shutil.move(root / "torch_models", torch_cache)
    args = ["import-original", "--release-dir", str(root), "--out", str(tmp_path / "out")]
    assert cli_main([*args, "--only", "posevae_model_bedlamscript"]) == 0  # needs no asset
    assert cli_main([*args, "--only", "poseembroider_model_bedlamscript"]) == 2
    assert "SMPLer-X checkpoint not found" in capsys.readouterr().err
    code = cli_main([*args, "--transformer-cache", str(hf), "--torch-cache", str(torch_cache)])
    assert code == 0
    out = capsys.readouterr().out
    assert "imported 5 model(s) and 2 frozen-encoder folder(s)" in out
    assert {"poseembroider_model_bedlamscript", "smpler_x_b32"} <= set(load_registry())


def test_a_head_over_another_core_version_is_refused(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    head = root / "pretrained_models" / "hpsestimator_model_poseembroider_bedlamscript" / "checkpoint_release.pth"
    core = torch.load(release["poseembroider_model_bedlamscript"], weights_only=False)["model"]
    prefix = "representation_wrapper.representation_model."
    copy = {prefix + k: v.clone() for k, v in core.items()}  # a full copy of the core, as a strict=False save holds
    _rewrite(head, lambda data: data["model"].update(copy))
    report = import_release(root, tmp_path / "out", shortnames=["hpsestimator_model_poseembroider_bedlamscript"])
    assert "poseembroider_model_bedlamscript" in report.seconds  # the dependency first; the identical copy accepted
    copy[prefix + "temperature"] = copy[prefix + "temperature"] + 1.0
    _rewrite(head, lambda data: data["model"].update(copy))
    with pytest.raises(CheckpointError, match=r"representation_model\.temperature differs from temperature"):
        import_release(root, tmp_path / "out2", shortnames=["hpsestimator_model_poseembroider_bedlamscript"])


def test_a_decoder_vocabulary_other_than_the_tokenizers_is_refused(release, tmp_path, models_root):
    root = _copy_release(release, tmp_path)
    path = root / "pretrained_models" / "instructgen_model_poseembroider_bedlamfix_posefix" / "checkpoint_release.pth"

    def drop_last_token(data):
        for key in (
            "text_decoder.embedding.weight",
            "text_decoder.final_layer.weight",
            "text_decoder.final_layer.bias",
        ):
            data["model"][key] = data["model"][key][:-1].clone()

    _rewrite(path, drop_last_token)
    with pytest.raises(CheckpointError, match=f"{path}.*vocabulary"):
        import_release(root, tmp_path / "out", shortnames=["instructgen_model_poseembroider_bedlamfix_posefix"])


def test_a_different_distilbert_copy_gets_a_folder_of_its_own(tmp_path, models_root):
    from poseembroider.assisting_models.pairText.model_pairText import PairText
    from poseembroider.models.pretrained import read_model_config

    posetext, pairtext = "posetext_model_bedlamscript", "pairtext_model_ft_bedlamfix_posefix"
    files = write_fake_release(tmp_path / "release", seed=5, only=(posetext, pairtext))
    key = "text_encoder.pretrained_text_encoder.embeddings.word_embeddings.weight"
    _rewrite(files[pairtext], lambda data: data["model"][key].add_(0.5))
    report = import_release(tmp_path / "release", tmp_path / "out")
    own = f"distilbert-base-uncased_{pairtext}"
    assert set(report.written) == {posetext, pairtext, "distilbert-base-uncased", own}
    assert read_model_config(report.written[pairtext])["config"]["text_encoder_name"] == own
    assert read_model_config(report.written[posetext])["config"]["text_encoder_name"] == "distilbert-base-uncased"
    weights = PairText.from_pretrained(pairtext).text_encoder.backbone.model.embeddings.word_embeddings.weight
    assert torch.equal(weights, torch.load(files[pairtext], weights_only=False)["model"][key])
