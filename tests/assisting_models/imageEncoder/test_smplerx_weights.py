"""SMPLer-X checkpoints: generated files with the SMPLer-X (mmpose ViT) key names load through the key mapping.

The state dicts are generated from the mmpose ViT naming (written out below, independent of the mapping
under test), wrapped like SMPLer-X's trainer saves them (`{'epoch', 'network': DataParallel state dict,
'optimizer'}`, keys 'module.encoder.*' plus the heads' keys that must be dropped), in a temporary
TORCH_CACHE_DIR.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections import OrderedDict

import pytest
import torch

from poseembroider import config
from poseembroider.assisting_models.imageEncoder import smplerx_weights as sw
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    ImageEncoder,
    ImageEncoderConfig,
    build_image_encoder,
)
from poseembroider.models.pretrained import CheckpointError

SMALL = ImageEncoderConfig(embed_dim=32, depth=2, num_heads=4, preset="test_small")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mmpose_vit_shapes(cfg: ImageEncoderConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of SMPLer-X's `ViT` backbone parameters (mmpose naming, no prefix)."""
    d, hidden = cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio)
    shapes: dict[str, tuple[int, ...]] = {
        "task_tokens": (1, cfg.num_task_tokens, d),
        "pos_embed": (1, cfg.num_patches + 1, d),
        "patch_embed.proj.weight": (d, cfg.in_chans, cfg.patch_size, cfg.patch_size),
        "patch_embed.proj.bias": (d,),
    }
    for i in range(cfg.depth):
        shapes |= {
            f"blocks.{i}.norm1.weight": (d,), f"blocks.{i}.norm1.bias": (d,),
            f"blocks.{i}.attn.qkv.weight": (3 * d, d), f"blocks.{i}.attn.qkv.bias": (3 * d,),
            f"blocks.{i}.attn.proj.weight": (d, d), f"blocks.{i}.attn.proj.bias": (d,),
            f"blocks.{i}.norm2.weight": (d,), f"blocks.{i}.norm2.bias": (d,),
            f"blocks.{i}.mlp.fc1.weight": (hidden, d), f"blocks.{i}.mlp.fc1.bias": (hidden,),
            f"blocks.{i}.mlp.fc2.weight": (d, hidden), f"blocks.{i}.mlp.fc2.bias": (d,),
        }
    return shapes | {"last_norm.weight": (d,), "last_norm.bias": (d,)}


def smplerx_network(cfg: ImageEncoderConfig, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """A SMPLer-X `model.state_dict()` as DataParallel saves it: random backbone + a few head keys."""
    g = torch.Generator().manual_seed(seed)
    network: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, shape in mmpose_vit_shapes(cfg).items():
        network[f"module.encoder.{name}"] = 0.02 * torch.randn(shape, generator=g)
    network["module.body_regressor.body_pose_out.weight"] = torch.randn(126, 768, generator=g)
    network["module.hand_roi_net.deconv.0.weight"] = torch.randn(4, 4, 3, 3, generator=g)
    network["module.face_regressor.expr_out.bias"] = torch.randn(10, generator=g)
    network["module.box_net.bbox_center.running_mean"] = torch.zeros(3)
    return network


def write_checkpoint(path, network, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    optimizer = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-5, "params": [0]}]}
    torch.save({"epoch": 9, "network": network, "optimizer": optimizer, **extra}, path)


def _stripped(network) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module.encoder."): v for k, v in network.items() if k.startswith("module.encoder.")}


@pytest.fixture
def torch_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "TORCH_CACHE_DIR", tmp_path / "torch_models")
    return tmp_path / "torch_models"


def _images(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 256, 192, generator=torch.Generator().manual_seed(0))


def test_mapping_table_round_trips_every_backbone_key():
    cfg = dataclasses.replace(SMALL, num_task_tokens=31)
    timm_keys = list(ImageEncoder(cfg).backbone.state_dict())
    smplerx_keys = [sw.timm_to_smplerx_key(k) for k in timm_keys]
    assert sorted(smplerx_keys) == sorted(mmpose_vit_shapes(cfg))
    assert [sw.smplerx_to_timm_key(k) for k in smplerx_keys] == timm_keys
    assert sw.smplerx_to_timm_key("last_norm.weight") == "norm.weight"
    assert sw.smplerx_to_timm_key("task_tokens") == "reg_token"
    assert sw.smplerx_to_timm_key("cls_token") is None and sw.smplerx_to_timm_key("blocks.x.norm1.weight") is None


def test_prefixes_are_stripped_and_other_modules_dropped():
    network = smplerx_network(SMALL)
    network["backbone.blocks.0.norm1.weight"] = torch.zeros(1)
    state = sw.extract_backbone_state(network)
    assert "blocks.0.norm1.weight" in state and "pos_embed" in state
    assert not any(k.startswith(("module.", "encoder.", "body_regressor", "hand_roi", "face_", "box_")) for k in state)
    assert len(state) == len(mmpose_vit_shapes(SMALL))


def test_vitb_checkpoint_with_smplerx_names_loads_strictly_through_the_mapping(torch_cache):
    """Full ViT-B/16 shapes, the default file location, and the default 'smplerx_vitb32' builder."""
    cfg = ImageEncoderConfig()
    network = smplerx_network(cfg, seed=1)
    write_checkpoint(sw.smplerx_checkpoint_path(), network)
    assert sw.smplerx_checkpoint_path() == torch_cache / "smplerx" / "smpler_x_b32.pth.tar"

    encoder = build_image_encoder("smplerx_vitb32")  # finds the file, maps, loads strictly, freezes
    assert encoder.frozen
    loaded = encoder.backbone.state_dict()
    for name, value in _stripped(network).items():
        assert torch.equal(loaded[sw.smplerx_to_timm_key(name)], value), name
    assert torch.equal(loaded["norm.weight"], network["module.encoder.last_norm.weight"])
    assert torch.equal(loaded["reg_token"], network["module.encoder.task_tokens"])
    with torch.no_grad():
        assert encoder(_images(1)).shape == (1, 192, 768)


def test_smplerx_named_copy_of_a_model_gives_its_outputs(tmp_path):
    """timm-named weights -> SMPLer-X names (inverse mapping) -> checkpoint -> mapped load: same outputs."""
    torch.manual_seed(4)
    cfg = dataclasses.replace(SMALL, num_task_tokens=31)
    source = ImageEncoder(cfg).eval()
    renamed = sw.timm_to_smplerx_state_dict(source.backbone.state_dict())
    assert {k: tuple(v.shape) for k, v in renamed.items()} == mmpose_vit_shapes(cfg)
    network = smplerx_network(cfg)  # for its non-backbone keys
    network.update({f"module.encoder.{k}": v for k, v in renamed.items()})
    path = tmp_path / "smpler_x_small.pth.tar"
    write_checkpoint(path, network)
    loaded = ImageEncoder(cfg).eval()
    loaded.load_smplerx_weights(path)
    with torch.no_grad():
        assert torch.equal(loaded(_images()), source(_images()))


def test_converted_safetensors_is_preferred_and_loads_the_same(torch_cache):
    network = smplerx_network(SMALL, seed=2)
    write_checkpoint(sw.smplerx_checkpoint_path(), network)
    from_pth = ImageEncoder(SMALL).eval()
    assert from_pth.load_smplerx_weights() == sw.smplerx_checkpoint_path()
    assert sw.main([]) == 0  # default paths: pth.tar -> safetensors beside it
    assert sw.find_smplerx_weights() == sw.smplerx_converted_path()
    from_safetensors = ImageEncoder(SMALL).eval()
    assert from_safetensors.load_smplerx_weights() == sw.smplerx_converted_path()
    with torch.no_grad():
        assert torch.equal(from_pth(_images()), from_safetensors(_images()))


def test_missing_file_names_the_expected_path(torch_cache):
    with pytest.raises(FileNotFoundError, match=r"smplerx/smpler_x_b32\.pth\.tar"):
        ImageEncoder(SMALL).load_smplerx_weights()
    with pytest.raises(FileNotFoundError, match="SMPLer-X checkpoint not found"):
        build_image_encoder("smplerx_vitb32")


def test_wrong_shapes_name_the_key_and_both_shapes(tmp_path):
    network = smplerx_network(dataclasses.replace(SMALL, img_size=(224, 224)))  # 14x14 grid: pos_embed 197
    path = tmp_path / "vit224.pth.tar"
    write_checkpoint(path, network)
    with pytest.raises(CheckpointError) as err:
        ImageEncoder(SMALL).load_smplerx_weights(path)
    message = str(err.value)
    assert str(path) in message and "pos_embed" in message
    assert "(1, 197, 32)" in message and "(1, 193, 32)" in message


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    network = smplerx_network(SMALL)
    del network["module.encoder.blocks.1.mlp.fc2.bias"]
    network["module.encoder.cls_token"] = torch.zeros(1, 1, 32)
    path = tmp_path / "partial.pth.tar"
    write_checkpoint(path, network)
    expected = r"missing key\(s\) blocks\.1\.mlp\.fc2\.bias.*unexpected key\(s\) cls_token"
    with pytest.raises(CheckpointError, match=expected):
        ImageEncoder(SMALL).load_smplerx_weights(path)


def test_file_without_network_or_backbone_is_refused(tmp_path):
    path = tmp_path / "other.pth.tar"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match=r"no 'network' entry"):
        ImageEncoder(SMALL).load_smplerx_weights(path)
    write_checkpoint(path, OrderedDict(head=torch.zeros(2)))
    with pytest.raises(CheckpointError, match=r"no key of ckpt\['network'\] contains"):
        ImageEncoder(SMALL).load_smplerx_weights(path)


class _RunsCode:
    """Unpickling this object calls os.makedirs(marker): a stand-in for arbitrary code in a pickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_pickle_carrying_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "smpler_x_b32.pth.tar"
    write_checkpoint(path, smplerx_network(SMALL), payload=_RunsCode(str(marker)))
    with pytest.raises(CheckpointError) as err:
        ImageEncoder(SMALL).load_smplerx_weights(path)
    assert str(path) in str(err.value) and "refusing to load" in str(err.value) and "--trust-pickle" in str(err.value)
    assert not marker.exists()
    assert sw.main(["--checkpoint", str(path)]) == 2  # conversion refuses too without --trust-pickle
    assert not marker.exists()


def test_trust_pickle_converts_a_checkpoint_with_plain_python_objects(tmp_path, capsys):
    """A checkpoint holding a non-allowlisted object (here an argparse.Namespace of settings)."""
    path = tmp_path / "smpler_x_b32.pth.tar"
    network = smplerx_network(SMALL, seed=3)
    write_checkpoint(path, network, args=argparse.Namespace(lr=1e-5))
    with pytest.raises(CheckpointError, match="refusing to load"):
        sw.read_smplerx_network(path)
    assert sw.main(["--checkpoint", str(path)]) == 2
    assert "refusing to load" in capsys.readouterr().err
    assert sw.main(["--checkpoint", str(path), "--trust-pickle"]) == 0
    converted = path.with_name(sw.SMPLERX_CONVERTED_NAME)
    encoder = ImageEncoder(SMALL)
    encoder.load_smplerx_weights(converted)
    assert torch.equal(encoder.backbone.blocks[1].mlp.fc1.weight, network["module.encoder.blocks.1.mlp.fc1.weight"])


def test_corrupt_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "broken.pth.tar"
    path.write_bytes(b"PK\x03\x04 not a real archive")
    with pytest.raises(CheckpointError, match=r"broken\.pth\.tar is not a readable torch checkpoint"):
        ImageEncoder(SMALL).load_smplerx_weights(path)
