"""The two scripts on a tiny world: training on x̄ caches registers a generator whose evaluation covers every
input set and decoding beside the controls; the finetuning mix; clear errors for pairs whose poses are missing,
a tokenizer of another vocabulary, unknown decodings and input sets the data does not offer."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from intermodality_world import PAIR_VERSION_SUFFIX, make_intermodality_world
from poseembroider import config
from poseembroider.assisting_models.pairText.model_pairText import PairText, PairTextConfig
from poseembroider.cli import main as cli_main
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.downstream.instruction_generation.data import (
    INPUT_SETS,
    PairDataError,
    WeightedMix,
    available_input_sets,
    check_pair_images,
    load_pair_references,
    pair_kinds_of,
    xbar_cache_root,
)
from poseembroider.downstream.instruction_generation.evaluate_instruction_generation import main as evaluate_main
from poseembroider.downstream.instruction_generation.evaluation import derangement
from poseembroider.downstream.instruction_generation.model_instruction_generation import InstructionGenerator
from poseembroider.downstream.instruction_generation.train_instruction_generation import main as train_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DECODER = ["--decoder_latentD", "16", "--decoder_nlayers", "1", "--decoder_nhead", "2", "--decoder_ff", "32"]
LIMITS = ["--max_length", "12", "--min_length", "2"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("instructgen")
    world = make_intermodality_world(folder, "igworld", n_train=20, n_val=9)
    text_dir = folder / "encoders" / "text_backbone"
    torch.manual_seed(0)
    pairtext = PairText(
        PairTextConfig(
            text_encoder_name=str(text_dir),
            latentD=16,
            num_neurons=32,
            num_neurons_mini=8,
            transformer_layers=1,
            transformer_heads=2,
            transformer_ff=32,
        )
    )
    world.update(text_dir=text_dir, pairtext=str(pairtext.save_pretrained(folder / "pairtext")), xbar=folder / "xbar")
    return world


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("instructgen_run")
    argv = [
        "--pretrained_representation_model", str(world["models"]["PoseEmbroider"]),
        "--representation_model_input_types", "poses",
        "--dataset", world["fix"],
        "--text_decoder_name", f"transformer_{world['text_dir']}",
        *DECODER,
        "--epochs", "2", "--val_every", "1", "--batch_size", "8", "--lr", "0.001",
        "--cached_embeddings_file", str(world["xbar"]),
        "--output_dir", str(out / "run"), "--shortname", "instructgen_test", "--no_progress", "--no_tensorboard",
        "--textret_model", world["pairtext"],
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = train_main(argv)
    return {"code": code, "out": out / "run", "printed": printed.getvalue()}


def test_training_registers_a_generator_with_its_representation(trained, world):
    assert trained["code"] == 0
    report = json.loads(trained["printed"])
    assert report["shortname"] == "instructgen_test" and report["train_size"] == 19 and report["val_size"] == 8
    assert {"loss", "fake_loss"} <= set(report["val_metrics"])
    generation = report["val_generation"]
    assert set(generation["controls"]) == {"GT", "random"}
    assert {"R@1", "R@2", "R@3", "bleu4", "rouge_l", "meteor", "texts_per_s"} <= set(generation["greedy"])
    model = InstructionGenerator.from_pretrained("instructgen_test")
    assert model.config.pretrained_representation_model == str(world["models"]["PoseEmbroider"])
    assert model.config.representation_model_input_types == ["poses"]
    assert model.config.latentD == 16 and model.config.vocab_size == len(model.tokenizer)
    assert (world["xbar"] / f"{world['fix']}_train_input-poses").is_dir()  # the x̄ caches went where asked


def test_evaluation_covers_every_input_set_and_decoding_with_controls(trained, world, capsys):
    argv = [
        "--model_path", "instructgen_test", "--dataset", world["fix"], "--split", "val",
        "--textret_model", world["pairtext"], "--decodings", "greedy", "beam", "--beam_size", "2", *LIMITS,
        "--cached_embeddings_file", str(world["xbar"]), "--no_progress",
    ]  # fmt: skip
    assert evaluate_main(argv) == 0
    table = capsys.readouterr().out
    assert "control GT" in table and "(V_A+P_A,V_B+P_B) beam2" in table
    result = json.loads((trained["out"] / "best" / f"result_val_{world['fix']}.json").read_text())
    metrics = result["metrics"]
    assert list(metrics["results"]) == list(INPUT_SETS)
    for by_decoding in metrics["results"].values():
        assert list(by_decoding) == ["greedy", "beam2"]
        for values in by_decoding.values():
            assert 0 <= values["R@1"] <= values["R@2"] <= values["R@3"] <= 100
            assert 0 <= values["bleu4"] <= 100 and 0 <= values["rouge_l"] <= 100 and values["texts_per_s"] > 0
    assert result["size"] == 8 and len(metrics["references"]) == 5
    # the same settings reuse the result file; the beam of size 1 is greedy
    assert evaluate_main(argv) == 0
    one = ["--decodings", "greedy", "beam", "--beam_size", "1", "--input_sets", "P_A,P_B", "--overwrite"]
    assert evaluate_main([*argv[:10], *one, *LIMITS, *argv[-3:]]) == 0
    texts = json.loads((trained["out"] / "best" / f"result_val_{world['fix']}.json").read_text())["metrics"]
    assert texts["examples"]["P_A,P_B"]["greedy"] == texts["examples"]["P_A,P_B"]["beam1"]


def test_the_trained_generator_keeps_distractors_and_rerank_is_then_evaluated_by_default(trained, world):
    model = InstructionGenerator.from_pretrained("instructgen_test")
    assert model.config.distractor_bank_size == 32  # the script's default, drawn from the 19 training pairs
    assert len({tuple(row) for row in model.distractor_xbar[:, 0].tolist()}) == 19  # every pair, some twice
    argv = [
        "--model_path", "instructgen_test", "--dataset", world["fix"], "--textret_model", world["pairtext"],
        "--input_sets", "P_A,P_B", "--rerank_samples", "0", *LIMITS, "--cached_embeddings_file", str(world["xbar"]),
        "--no_progress", "--overwrite",
    ]  # fmt: skip
    assert evaluate_main(argv) == 0
    metrics = json.loads((trained["out"] / "best" / f"result_val_{world['fix']}.json").read_text())["metrics"]
    assert list(metrics["results"]["P_A,P_B"]) == ["greedy", "beam4", "rerank0"]
    examples = metrics["examples"]["P_A,P_B"]
    assert examples["rerank0"] == examples["greedy"]  # no samples: the greedy texts


def test_finetuning_from_a_generator_keeps_its_own_distractors(trained, world, tmp_path):
    """--pretrained loads the weights whatever distractors the other kept (32, then none): the run draws its own."""
    base = [
        "--pretrained_representation_model", str(world["models"]["PoseEmbroider"]),
        "--representation_model_input_types", "poses", "--dataset", world["fix"],
        "--text_decoder_name", f"transformer_{world['text_dir']}", *DECODER,
        "--epochs", "1", "--batch_size", "8", "--cached_embeddings_file", str(world["xbar"]),
        "--no_progress", "--no_tensorboard",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert train_main([*base, "--pretrained", "instructgen_test", "--distractor_bank_size", "4",
                           "--output_dir", str(tmp_path / "ft4"), "--shortname", "instructgen_ft4"]) == 0  # fmt: skip
        assert train_main([*base, "--pretrained", "instructgen_ft4", "--distractor_bank_size", "0",
                           "--output_dir", str(tmp_path / "ft0"), "--shortname", "instructgen_ft0"]) == 0  # fmt: skip
    assert InstructionGenerator.from_pretrained("instructgen_ft4").distractor_xbar.shape == (4, 2, 16)
    assert "distractor_xbar" not in InstructionGenerator.from_pretrained("instructgen_ft0").state_dict()


def test_other_input_sets_get_their_own_decodings(trained, world):
    argv = [
        "--model_path", "instructgen_test", "--dataset", world["fix"], "--textret_model", world["pairtext"],
        "--decodings", "greedy", "beam", "--other_decodings", "greedy", *LIMITS,
        "--cached_embeddings_file", str(world["xbar"]), "--no_progress", "--overwrite",
    ]  # fmt: skip
    assert evaluate_main(argv) == 0
    results = json.loads((trained["out"] / "best" / f"result_val_{world['fix']}.json").read_text())["metrics"][
        "results"
    ]
    assert list(results["P_A,P_B"]) == ["greedy", "beam4"]  # the generator's own input set: every decoding
    assert all(list(results[name]) == ["greedy"] for name in INPUT_SETS if name != "P_A,P_B")


def test_bad_inputs_are_clear_errors(trained, world, tmp_path, capsys):
    base = ["--model_path", "instructgen_test", "--dataset", world["fix"], "--textret_model", world["pairtext"]]
    assert evaluate_main([*base, "--decodings", "topk"]) == 2
    assert "unknown decoding method 'topk'; known: ['beam', 'greedy', 'nucleus', 'rerank']" in capsys.readouterr().err
    assert evaluate_main([*base, "--input_sets", "P_A,V_C"]) == 2
    assert "P_A,V_C" in capsys.readouterr().err
    # a decoder whose vocabulary is not the tokenizer's
    broken = tmp_path / "other_vocab"
    broken.mkdir()
    best = trained["out"] / "best"
    (broken / "model.safetensors").write_bytes((best / "model.safetensors").read_bytes())
    payload = json.loads((best / "config.json").read_text())
    payload["config"]["vocab_size"] += 7
    (broken / "config.json").write_text(json.dumps(payload))
    assert evaluate_main([*base[:1], str(broken), *base[2:]]) == 2
    assert "vocabulary of" in capsys.readouterr().err


def test_pairs_whose_poses_are_missing_are_named(world):
    version = world["fix"].removeprefix("synthfix-").removesuffix(PAIR_VERSION_SUFFIX)
    broken_version = f"{version}-in15_out20_t05_broken"
    pairs = {0: [world["ids"]["val"][0], world["ids"]["val"][1]], 1: [world["ids"]["val"][2], 99999]}
    save_cache(
        {"criteria": {"t": 1}, "pair_2_dataid": pairs, "sequence_info": {0: "out", 1: "out"}},
        config.DATA_CACHE_DIR / cache_file_name("synthfix", broken_version, "val", "pairs", 2),
    )
    save_cache(
        {"criteria": {"t": 1}, "texts": {0: ["raise the left arm"], 1: ["bend the right knee"]}},
        config.DATA_CACHE_DIR / cache_file_name("synthfix", broken_version, "val", "rawtexts", 2),
    )
    with pytest.raises(
        ValueError, match=r"poses_reduced_\d+\.pt: data id\(s\) \[99999\] are missing, used by pair\(s\) \[1\]"
    ):
        load_pair_references(f"synthfix-{broken_version}", "val")  # refused when the dataset is built


def test_pairs_whose_images_are_missing_are_named(world):
    from poseembroider.datasets.registry import get_dataset

    pairs = get_dataset(world["fix"], "val", item_format="t")
    check_pair_images(world["fix"], "val", pairs.pair_ids)
    data_id = int(pairs[1]["data_ids_B"])
    image = next((config.SYNTH_DATA_DIR).rglob(f"images/val/{data_id:06d}.png"))
    hidden = image.with_suffix(".hidden")
    image.rename(hidden)
    try:
        with pytest.raises(
            PairDataError, match=rf"pair {pairs.pair_ids[1]}: element B \(data id {data_id}\): image file"
        ):
            check_pair_images(world["fix"], "val", pairs.pair_ids)
    finally:
        hidden.rename(image)


def test_input_sets_follow_the_data(world):
    assert available_input_sets(world["fix"]) == list(INPUT_SETS)
    assert available_input_sets("synthpairs-x_overlap30_res224_j16_sf11-in15_out20_t05_sim0709") == ["P_A,P_B"]
    with pytest.raises(ValueError, match="not a pair dataset"):
        available_input_sets(world["script"])


def test_weighted_mix_draws_each_dataset_its_share_anew_every_epoch():
    a, b = list(range(10)), list(range(100, 130))
    mix = WeightedMix([a, b], [1.0, 2.0], seed=3)
    assert len(mix) == 30 and [mix.source_of(i) for i in (0, 9, 10, 29)] == [0, 0, 1, 1]
    first = [mix[i] for i in range(30)]
    assert all(x in a for x in first[:10]) and all(x in b for x in first[10:])
    second = [mix[i] for i in range(30)]
    assert first != second  # with replacement, drawn again
    assert first == [WeightedMix([a, b], [1.0, 2.0], seed=3)[i] for i in range(30)]  # reproducible
    with pytest.raises(ValueError, match="one finite positive weight per dataset"):
        WeightedMix([a, b], [1.0])
    for bad in (float("nan"), float("inf"), 0.0):  # NaN used to pass, then fail as a raw 'cannot convert' error
        with pytest.raises(ValueError, match="one finite positive weight per dataset"):
            WeightedMix([a, b], [1.0, bad])


def test_flag_helpers():
    assert pair_kinds_of(["out", "any"], 2) == [("out",), ("in", "out")]
    assert pair_kinds_of(None, 3) == [("in", "out")] * 3
    with pytest.raises(ValueError, match="--pair_kinds 'all'"):
        pair_kinds_of(["all"], 1)
    with pytest.raises(ValueError, match="one per dataset"):
        pair_kinds_of(["in", "out"], 3)
    assert xbar_cache_root("auto") is None and xbar_cache_root("e350") is None
    assert str(xbar_cache_root("/tmp/xbar")) == "/tmp/xbar"
    order = derangement(50, seed=1)
    assert sorted(order.tolist()) == list(range(50)) and not np.any(order == np.arange(50))


def test_cli_commands_reach_the_scripts(capsys):
    for command in ("train-instruction-generation", "evaluate-instruction-generation"):
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, "--help"])
        assert exit_info.value.code == 0
        assert "--cached_embeddings_file" in capsys.readouterr().out
