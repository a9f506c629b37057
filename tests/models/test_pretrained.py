"""save_pretrained / from_pretrained: strict round trips, tied weights, and clear refusals of bad input."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from poseembroider import registry
from poseembroider.models.pretrained import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    PretrainedModel,
    UnknownModelError,
    config_from_dict,
    config_to_dict,
    list_models,
    load_pretrained,
    register_model,
    resolve_model_dir,
    save_state_dict,
)


@dataclass
class BlockConfig:
    width: int = 4  # hidden width
    scales: tuple[float, ...] = (1.0, 2.0)  # output scales


@dataclass
class TinyConfig:
    input_dim: int = 3  # input features
    block: BlockConfig = field(default_factory=BlockConfig)  # nested config
    name: str | None = None  # free label
    tie: bool = True  # decoder shares the encoder weight


@register_model(name="TinyTestModel")
class TinyModel(PretrainedModel, nn.Module):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.Linear(config.input_dim, config.block.width)
        self.decoder = nn.Linear(config.block.width, config.input_dim, bias=False)
        self.norm = nn.BatchNorm1d(config.block.width)  # buffers round-trip too
        if config.tie:
            self.decoder.weight = nn.Parameter(self.encoder.weight.t())  # a view: shares storage
            self.head = nn.Linear(config.block.width, 2)
            self.head2 = self.head  # the same module under two names: tied parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, input_dim)."""
        h = self.norm(self.encoder(x))
        return self.decoder(h) * self.config.block.scales[-1]


@register_model
class OtherModel(PretrainedModel, nn.Module):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.lin = nn.Linear(config.input_dim, 1)


def _trained(config: TinyConfig | None = None) -> TinyModel:
    torch.manual_seed(0)
    model = TinyModel(config or TinyConfig(name="demo", block=BlockConfig(width=5, scales=(0.5, 3.0))))
    model.train()
    model(torch.randn(8, model.config.input_dim))  # move the BatchNorm running stats
    return model.eval()


def test_round_trip_is_strict_and_exact(tmp_path):
    model = _trained()
    folder = model.save_pretrained(tmp_path / "tiny")
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]  # no temporary file left
    loaded = TinyModel.from_pretrained(folder)
    assert loaded.config == model.config and isinstance(loaded.config.block.scales, tuple)
    assert not loaded.training
    x = torch.randn(6, 3)
    assert torch.equal(loaded(x), model(x))
    for (k, v), w in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    assert loaded.head2 is loaded.head  # module-level sharing survives (rebuilt by the constructor)
    rebuilt = load_pretrained(folder)  # class chosen by config.json
    assert type(rebuilt) is TinyModel and torch.equal(rebuilt(x), model(x))


def test_config_json_content(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    data = json.loads((folder / CONFIG_NAME).read_text())
    assert data["model_class"] == "TinyTestModel" and data["format_version"] == 1
    assert data["config"] == {"input_dim": 3, "block": {"width": 5, "scales": [0.5, 3.0]}, "name": "demo", "tie": True}
    assert config_from_dict(TinyConfig, data["config"]) == _trained().config
    assert config_to_dict(BlockConfig()) == {"width": 4, "scales": [1.0, 2.0]}


def test_tied_tensors_are_stored_once(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as f:
        keys = set(f.keys())
        tied = json.loads(f.metadata()["poseembroider.tied"])
    assert tied == {"head2.bias": "head.bias", "head2.weight": "head.weight"}
    assert not {"head2.weight", "head2.bias"} & keys
    assert {"encoder.weight", "decoder.weight"} <= keys  # storage-sharing views are copied, both kept


def test_from_shortname(tmp_path, isolated_config):
    folder = _trained().save_pretrained(isolated_config["MODELS_ROOT"] / "tiny_run")
    registry.register("tiny_test_model", folder)
    loaded = TinyModel.from_pretrained("tiny_test_model")
    x = torch.randn(2, 3)
    assert torch.equal(loaded(x), _trained()(x))


def test_resolve_model_dir_finds_the_folder_holding_config_json(tmp_path, isolated_config):
    """A model folder, a training output folder (its `best/` or `last/`), or a shortname of either."""
    run = isolated_config["MODELS_ROOT"] / "run"
    _trained().save_pretrained(run / "best")
    _trained().save_pretrained(run / "last")
    assert resolve_model_dir(run / "best") == (run / "best").resolve()
    assert resolve_model_dir(run) == (run / "best").resolve()
    assert resolve_model_dir(run, checkpoint="last") == (run / "last").resolve()
    registry.register("tiny_test_run", run)
    assert resolve_model_dir("tiny_test_run", "last") == (run / "last").resolve()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"no {CONFIG_NAME} there nor in .*best"):
        resolve_model_dir(tmp_path / "empty")
    with pytest.raises(registry.UnknownShortnameError, match="no_such_run"):
        resolve_model_dir("no_such_run")


def test_map_location(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    loaded = TinyModel.from_pretrained(folder, map_location=torch.device("cpu"))
    assert next(loaded.parameters()).device.type == "cpu"


# --------------------------------------------------------------------------- bad input


def test_missing_weight_file(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    (folder / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_NAME):
        TinyModel.from_pretrained(folder)


def test_missing_config(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    (folder / CONFIG_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        load_pretrained(folder)


def test_missing_folder_or_shortname():
    with pytest.raises(registry.UnknownShortnameError, match="no_such_model"):
        TinyModel.from_pretrained("no_such_model")


def test_wrong_shapes_name_the_key_and_both_shapes(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    wide = TinyModel(TinyConfig(block=BlockConfig(width=7, scales=(0.5, 3.0)), name="demo"))
    save_state_dict(wide.state_dict(), folder / WEIGHTS_NAME)
    with pytest.raises(CheckpointError) as err:
        TinyModel.from_pretrained(folder)
    message = str(err.value)
    assert "encoder.weight: checkpoint (7, 3) vs model (5, 3)" in message and WEIGHTS_NAME in message


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    model = _trained()
    folder = model.save_pretrained(tmp_path / "tiny")
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "norm.running_mean"}
    state["extra.weight"] = torch.zeros(2)
    save_state_dict(state, folder / WEIGHTS_NAME)
    expected = r"missing key\(s\) norm\.running_mean.*unexpected key\(s\) extra\.weight"
    with pytest.raises(CheckpointError, match=expected):
        TinyModel.from_pretrained(folder)
    loaded = TinyModel.from_pretrained(folder, strict=False)
    assert torch.equal(loaded.encoder.weight, model.encoder.weight)


@pytest.mark.parametrize("content", [b"", b"\x00" * 50, b"not a safetensors file at all", "pickle"])
def test_corrupt_or_pickled_weight_file(tmp_path, content):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    if content == "pickle":
        content = pickle.dumps({"encoder.weight": torch.zeros(5, 3)})
    (folder / WEIGHTS_NAME).write_bytes(content)
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not a readable safetensors file"):
        TinyModel.from_pretrained(folder)


def test_truncated_weight_file(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    data = (folder / WEIGHTS_NAME).read_bytes()
    (folder / WEIGHTS_NAME).write_bytes(data[: len(data) - 10])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        TinyModel.from_pretrained(folder)


def test_unknown_model_class_lists_known_ones(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    data = json.loads((folder / CONFIG_NAME).read_text())
    data.update(model_class="NoSuchModel", model_module="somewhere.else")
    (folder / CONFIG_NAME).write_text(json.dumps(data))
    with pytest.raises(UnknownModelError) as err:
        load_pretrained(folder)
    assert "NoSuchModel" in str(err.value) and "TinyTestModel" in str(err.value) and "OtherModel" in str(err.value)
    assert "TinyTestModel" in list_models()


def test_unknown_config_field(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    data = json.loads((folder / CONFIG_NAME).read_text())
    data["config"]["depth"] = 3
    (folder / CONFIG_NAME).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"unknown field\(s\) \['depth'\]"):
        TinyModel.from_pretrained(folder)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("input_dim", "3", r"key 'input_dim': expected int, got str '3'"),
        ("input_dim", True, r"key 'input_dim': expected int, got bool"),
        ("tie", 1, r"key 'tie': expected bool, got int"),
        ("block", {"width": 4.5}, r"key 'block': key 'width': expected int, got float"),
    ],
)
def test_config_value_of_the_wrong_type_names_the_file_and_key(tmp_path, key, value, message):
    # It used to be a TypeError from inside the model's constructor, naming neither key nor file.
    folder = _trained().save_pretrained(tmp_path / "tiny")
    data = json.loads((folder / CONFIG_NAME).read_text())
    data["config"][key] = value
    (folder / CONFIG_NAME).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=rf"config\.json: {message}"):
        TinyModel.from_pretrained(folder)


def test_config_of_another_class_is_refused(tmp_path):
    other = OtherModel(TinyConfig()).save_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="describes a 'OtherModel' model, not a 'TinyTestModel'"):
        TinyModel.from_pretrained(other)
    assert isinstance(load_pretrained(other), OtherModel)


def test_invalid_config_json(tmp_path):
    folder = _trained().save_pretrained(tmp_path / "tiny")
    (folder / CONFIG_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_pretrained(folder)
    (folder / CONFIG_NAME).write_text(json.dumps({"format_version": 99, "model_class": "TinyTestModel", "config": {}}))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_pretrained(folder)


def test_registry_refuses_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):

        @register_model(name="TinyTestModel")
        class Impostor(PretrainedModel, nn.Module):
            config_class = TinyConfig


def test_model_without_config_cannot_be_saved(tmp_path):
    model = _trained()
    model.config = {"input_dim": 3}
    with pytest.raises(TypeError, match="must be a TinyConfig"):
        model.save_pretrained(tmp_path / "x")


def test_unsaved_prefixes_are_skipped_and_tolerated(tmp_path):
    class Partial(TinyModel):
        unsaved_prefixes = ("encoder.",)

    model = Partial(TinyConfig(tie=False))
    folder = model.save_pretrained(tmp_path / "partial")
    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as f:
        assert not [k for k in f.keys() if k.startswith("encoder.")]  # noqa: SIM118
    loaded = Partial.from_pretrained(folder)  # strict, yet the frozen part may be missing
    assert torch.equal(loaded.decoder.weight, model.decoder.weight)


def test_save_state_dict_is_plain_safetensors(tmp_path):
    """Readable by any safetensors client; a file written by plain safetensors loads too."""
    path = save_state_dict({"a": torch.arange(4.0)}, tmp_path / "w.safetensors")
    with safe_open(str(path), framework="pt") as f:
        assert torch.equal(f.get_tensor("a"), torch.arange(4.0))
    model = OtherModel(TinyConfig())
    folder = model.save_pretrained(tmp_path / "other")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_NAME))
    assert torch.equal(OtherModel.from_pretrained(folder).lin.weight, model.lin.weight)
