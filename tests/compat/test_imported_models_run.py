"""The paper's commands run on the imported models, on a tiny synthetic dataset: `evaluate_core` with the imported
PoseEmbroider and Aligner (frozen SMPLer-X / PoseVAE / PoseText rebuilt from the imported folders alone), x̄
caching, the HPS and instruction-generation evaluations with imported heads (each finds its core model by
shortname; the instructions decoded with the original's greedy limits, `--min_length 9 --max_length 199`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from release_fixture import write_fake_release

from poseembroider import config, evaluate_core
from poseembroider.compat.release_import import import_release
from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(procedural_model_file, tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("imported_world")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DATA_CACHE_DIR", "SYNTH_DATA_DIR", "MODELS_ROOT"):
            patch.setattr(config, name, root / name.lower())
        cfg = SynthConfig(name="imported", n_train=6, n_val=6, workers=1)
        generate_synth(cfg)
        write_fake_release(root / "release", seed=2)
        report = import_release(root / "release", root / "models_root" / "pretrained")
        yield {"dataset": cfg.script_name, "fix_dataset": cfg.fix_name, "report": report}


@pytest.mark.parametrize("shortname", ["poseembroider_model_bedlamscript", "aligner_model_bedlamscript"])
def test_evaluate_core_runs_on_an_imported_model(world, shortname, capsys):
    args = ["--model_path", shortname, "--dataset", world["dataset"], "--no_progress"]
    assert evaluate_core.main(args) == 0
    table = capsys.readouterr().out
    assert "mRecall" in table and "pt2i" in table
    result = json.loads((world["report"].written[shortname] / f"result_val_{world['dataset']}.json").read_text())
    assert result["size"] == 6 and len([k for k in result["metrics"] if "_R@" in k]) == 27


def test_feature_caching_and_hps_evaluation_run_on_imported_models(world, capsys):
    from poseembroider.downstream import cache_intermodality_features
    from poseembroider.downstream.pose_estimation import evaluate_pose_estimation

    args = ["--model_shortname", "poseembroider_model_bedlamscript", "--dataset", world["dataset"], "--split", "val"]
    assert cache_intermodality_features.main([*args, "--input_types", "images", "--no_progress"]) == 0
    hps = "hpsestimator_model_poseembroider_bedlamscript"
    args = ["--model_path", hps, "--dataset", world["dataset"], "--split", "val", "--input_sets", "images", "poses"]
    assert evaluate_pose_estimation.main([*args, "--no_progress"]) == 0
    assert "images" in capsys.readouterr().out


def test_instruction_generation_evaluation_runs_on_an_imported_model(world, capsys):
    from poseembroider.downstream.instruction_generation import evaluate_instruction_generation

    args = ["--model_path", "instructgen_model_poseembroider_bedlamfix_posefix", "--dataset", world["fix_dataset"]]
    args += ["--split", "val", "--textret_model", "pairtext_model_ft_bedlamfix_posefix", "--input_sets", "P_A,P_B"]
    args += ["--decodings", "greedy", "--min_length", "9", "--max_length", "199", "--no_progress"]
    assert evaluate_instruction_generation.main(args) == 0
    assert "P_A,P_B" in capsys.readouterr().out
