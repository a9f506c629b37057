"""Bad inputs, model folders: `load_pretrained` / `from_pretrained` answer a damaged `config.json` (junk text,
missing or unknown keys, values of the wrong type or range, unknown model kinds) or `model.safetensors`
(random bytes, truncation, missing file, tensors of the wrong shape or dtype) with an error naming the file
and the key, never a raw JSON / safetensors / torch error. Crafted hostile safetensors headers are the
hostile-files tests' (`test_hostile_*`)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reliability_strategies import (
    FUZZ,
    FUZZ_SLOW,
    IDENTIFIERS,
    JSON_VALUES,
    JUNK_BYTES,
    JUNK_JSON_TEXT,
    damaged,
    expect_clear_error,
)
from safetensors.torch import save_file

from poseembroider.models.pretrained import CONFIG_NAME, WEIGHTS_NAME, load_pretrained

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL_INTS = st.one_of(st.integers(-3, 40), st.sampled_from([2**31, 2**62, 2**70, -(2**63)]))
"""Ints for config values: small ones (0 and negatives included) and ones past any size a tensor can have;
none in the range that would allocate gigabytes (that is a valid, if unwise, config)."""
CONFIG_VALUES = st.one_of(
    SMALL_INTS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([None, True, False, "", "skeleton", "body_model", [], {}, [1, 2], {"a": 1}]),
    JSON_VALUES.filter(lambda v: not isinstance(v, int) or abs(v) < 64),
)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny saved PoseVAE: config.json + model.safetensors."""
    from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("fuzz_model") / "posevae"
    PoseVAE(PoseVAEConfig(num_neurons=16, latentD=4, joints_source="skeleton")).save_pretrained(folder)
    return folder


def _copy(model_folder, tmp_path):
    target = tmp_path / "model"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(model_folder, target)
    return target


def _load(folder, names, what="load_pretrained"):
    def call():
        model = load_pretrained(folder)
        for value in model.state_dict().values():  # an accepted folder gives a usable model
            assert value.device.type == "cpu"
        return model

    return expect_clear_error(call, [str(folder / CONFIG_NAME), str(folder / WEIGHTS_NAME), *names], what)


@st.composite
def config_edits(draw, payload: dict):
    """A config.json payload with one or two keys removed, added or set to another JSON value."""
    data = json.loads(json.dumps(payload))
    for _ in range(draw(st.integers(1, 2))):
        where = draw(st.sampled_from(["top", "config", "config", "config"]))
        target = data if where == "top" or not isinstance(data.get("config"), dict) else data["config"]
        key = draw(st.one_of(st.sampled_from(sorted(target)), IDENTIFIERS))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(CONFIG_VALUES)
    return data


def _fuzz_config(model_folder, tmp_path, cases, text):
    cases.tried()
    folder = _copy(model_folder, tmp_path)
    (folder / CONFIG_NAME).write_text(text)
    _load(folder, [], f"config.json {text[:200]!r}")


def _payload(model_folder) -> dict:
    return json.loads((model_folder / CONFIG_NAME).read_text())


@pytest.mark.reliability(area="bad_inputs", subject="model folders (config.json)")
def test_config_json(model_folder, tmp_path, cases):
    @FUZZ
    @given(text=st.one_of(JUNK_JSON_TEXT, config_edits(_payload(model_folder)).map(json.dumps)))
    def run(text):
        _fuzz_config(model_folder, tmp_path, cases, text)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="model folders (config.json)")
def test_config_json_many(model_folder, tmp_path, cases):
    @FUZZ_SLOW
    @given(text=st.one_of(JUNK_JSON_TEXT, config_edits(_payload(model_folder)).map(json.dumps)))
    def run(text):
        _fuzz_config(model_folder, tmp_path, cases, text)

    run()


def _fuzz_weights_bytes(model_folder, tmp_path, cases, data):
    cases.tried()
    folder = _copy(model_folder, tmp_path)
    if data is None:
        (folder / WEIGHTS_NAME).unlink()
    else:
        (folder / WEIGHTS_NAME).write_bytes(data)
    _load(folder, [], "model.safetensors bytes")


def _weights_bytes(model_folder):
    return st.one_of(st.none(), JUNK_BYTES, damaged((model_folder / WEIGHTS_NAME).read_bytes()))


@pytest.mark.reliability(area="bad_inputs", subject="model folders (model.safetensors: random, truncated, missing)")
def test_weights_bytes(model_folder, tmp_path, cases):
    @FUZZ
    @given(data=_weights_bytes(model_folder))
    def run(data):
        _fuzz_weights_bytes(model_folder, tmp_path, cases, data)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="model folders (model.safetensors: random, truncated, missing)")
def test_weights_bytes_many(model_folder, tmp_path, cases):
    @FUZZ_SLOW
    @given(data=_weights_bytes(model_folder))
    def run(data):
        _fuzz_weights_bytes(model_folder, tmp_path, cases, data)

    run()


TENSOR_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8, torch.bool]


@st.composite
def state_edits(draw, state: dict):
    """The state dict with one tensor reshaped, retyped, dropped, or one extra tensor added."""
    state = dict(state)
    key = draw(st.sampled_from(sorted(state)))
    how = draw(st.sampled_from(["shape", "dtype", "drop", "extra", "nan"]))
    if how == "shape":
        shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=3))
        how = "shape" if tuple(shape) != tuple(state[key].shape) else "same"
        state[key] = torch.zeros(shape, dtype=state[key].dtype)
    elif how == "dtype":
        state[key] = state[key].to(draw(st.sampled_from(TENSOR_DTYPES)))
    elif how == "drop":
        del state[key]
    elif how == "extra":
        state[draw(IDENTIFIERS)] = torch.zeros(2)
    else:
        tensor = state[key].clone()
        if tensor.is_floating_point() and tensor.numel():
            tensor.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf")]))
        state[key] = tensor
    return state, key, how


def _fuzz_tensors(model_folder, tmp_path, cases, edit):
    state, key, how = edit
    cases.tried()
    folder = _copy(model_folder, tmp_path)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / WEIGHTS_NAME))
    result = _load(folder, [key] if how != "extra" else [], f"tensor {key!r} {how}")
    if not isinstance(result, BaseException):  # accepted: an edit that changes nothing the model reads
        same_kind = how == "dtype" and state[key].is_floating_point() == _state(model_folder)[key].is_floating_point()
        assert how == "same" or same_kind, f"{how} of {key!r} accepted"


def _state(model_folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_folder / WEIGHTS_NAME))


@pytest.mark.reliability(area="bad_inputs", subject="model folders (tensors of wrong shape, dtype, values)")
def test_weight_tensors(model_folder, tmp_path, cases):
    @FUZZ
    @given(edit=state_edits(_state(model_folder)))
    def run(edit):
        _fuzz_tensors(model_folder, tmp_path, cases, edit)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="model folders (tensors of wrong shape, dtype, values)")
def test_weight_tensors_many(model_folder, tmp_path, cases):
    @FUZZ_SLOW
    @given(edit=state_edits(_state(model_folder)))
    def run(edit):
        _fuzz_tensors(model_folder, tmp_path, cases, edit)

    run()
