import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from poseembroider.quickstart import QUICKSTART_STEPS, AssistingSizes, CoreSizes, DownstreamSizes, run_quickstart
from poseembroider.registry import resolve

TINY = AssistingSizes(
    corpus_poses=20,
    corpus_pairs=20,
    vocab_size=400,
    text_backbone_size="tiny",
    text_backbone_steps=4,
    posevae_epochs=1,
    posevae_batch_size=4,
    image_encoder_epochs=1,
    image_encoder_batch_size=4,
    text_retrieval_latentD=16,
    posetext_epochs=1,
    pairtext_epochs=1,
    posetext_batch_size=2,
    pairtext_batch_size=2,
    image_encoder_lifter_steps=5,
)
TINY_CORE = CoreSizes(epochs=2, batch_size=4, val_every=1)
TINY_DOWNSTREAM = DownstreamSizes(
    hps_epochs=1, hps_batch_size=4, instruction_epochs=1, instruction_batch_size=4, instruction_decoder_width=16
)


@pytest.mark.render
def test_quickstart_writes_summary_and_contact_sheet(tmp_path, procedural_model_file):
    summary = run_quickstart(
        out_dir=tmp_path,
        n_poses=3,
        seed=1,
        n_train=8,
        n_val=12,
        sampler_report_size=200,
        n_pool=64,
        assisting_sizes=TINY,
        core_sizes=TINY_CORE,
        downstream_sizes=TINY_DOWNSTREAM,
        jobs=2,  # the steps after the world in two lanes of their own processes: the context travels and returns
    )
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary and on_disk["jobs"] == 2
    assert list(on_disk["steps"]) == list(QUICKSTART_STEPS)
    body = on_disk["steps"]["body_model"]
    assert body["kind"] == "procedural" and body["path"] == str(procedural_model_file)
    assert 1.6 <= body["rest_height_m"] <= 1.9
    sheet = on_disk["steps"]["pose_contact_sheet"]
    assert len(sheet["pose_ids"]) == 3 and sheet["images_rendered"] == 6
    image = np.asarray(Image.open(tmp_path / "contact_sheet_poses.png").convert("RGB"))
    # a body was drawn: a good share of the sheet is neither white background nor pure black
    drawn = (image.min(axis=-1) < 200).mean()
    assert 0.03 < drawn < 0.6
    sampler = on_disk["steps"]["pose_sampler_report"]
    assert sampler["n"] == 200 and 0 < sampler["realism_median_nn_mpjpe_mm"] < 500
    synth = on_disk["steps"]["synthetic_dataset"]
    assert synth["splits"]["val"]["size"] == 12 and synth["script_dataset"].startswith("synthscript-quickstart")
    crops = np.asarray(Image.open(tmp_path / "contact_sheet_crops.png").convert("RGB"))
    assert crops.shape[0] > 256 and crops.std() > 20  # 12 crops and renders, not a blank page
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    pools = on_disk["steps"]["pose_pools"]
    assert pools["n_train"] == 64 and pools["poses_dataset"].startswith("synthposes-quickstart")
    assert pools["n_pairs"] > 0 and isinstance(pools["seconds"], float)
    text = on_disk["steps"]["text_models"]
    assert text["mlm_steps"] == 4 and text["vocab_size"] <= 400 and text["corpus_texts"] > 0
    posevae = on_disk["steps"]["posevae"]
    assert posevae["val_size"] == 12 and posevae["val_metrics"]["mpjpe_mm"] > 0
    assert posevae["val_mean_pose_baseline"]["mpjpe_mm"] > 0
    assert resolve(posevae["shortname"]).is_dir()
    encoder = on_disk["steps"]["image_encoder"]
    assert encoder["val"]["pa_mpjpe_mm"] > 0 and encoder["val_mean_pose_baseline"]["pa_mpjpe_mm"] > 0
    assert (resolve(encoder["shortname"]) / "model.safetensors").is_file()
    for name in ("posetext", "pairtext"):
        retrieval = on_disk["steps"][name]
        assert 0 <= retrieval["val"]["mRecall"] <= 100 and retrieval["chance_mRecall"] > 0
        assert (resolve(retrieval["shortname"]) / "model.safetensors").is_file()
    assert on_disk["steps"]["posetext"]["val_size"] == 12
    cached = on_disk["steps"]["pose_text_features"]["stores"]
    assert len(cached) == 3 and all(set(stores) == {"pose", "text"} for stores in cached.values())
    for stores in cached.values():
        split_dir = Path(stores["pose"]).parent
        assert all(
            Path(store).parent == split_dir and (Path(store) / "meta.json").is_file() for store in stores.values()
        )
        # the representation models read these very stores: a store of another fingerprint would sit beside them
        assert {p.name for p in split_dir.iterdir() if not p.name.startswith("image")} == {
            Path(store).name for store in stores.values()
        }
    for name, model in (("core_poseembroider", "PoseEmbroider"), ("core_aligner", "Aligner")):
        core = on_disk["steps"][name]
        assert core["val_size"] == 12 and core["chance_mRecall"] == pytest.approx(100 * (1 + 5 + 10) / 12 / 3, abs=1e-3)
        recalls = [k for k in core["val"] if "_R@" in k]
        assert len(recalls) == 27 and 0 <= core["val"]["mRecall"] <= 100
        assert (resolve(core["shortname"]) / "model.safetensors").is_file()
        assert core["shortname"] == f"{model.lower()}_model_synthscript"
    real = on_disk["steps"]["real_poses"]
    assert real["poses"] == 108 and len(real["captions"]) == 108
    assert 0 <= real["posetext"]["metrics"]["mRecall"] <= 100
    assert real["posevae"]["pampjpe_mm"] > 0 and real["posevae_mean_pose_baseline"]["pampjpe_mm"] > 0
    hps = on_disk["steps"]["hps_heads"]
    for name in ("poseembroider", "aligner"):
        head = hps[name]
        assert set(head["val"]) == {"images", "texts", "images+texts", "poses", "mean_pose"}
        assert head["val"]["images"]["pa_mpjpe_mm"] > 0 and head["val_size"] == 12
        assert (resolve(head["shortname"]) / "model.safetensors").is_file()
    assert set(hps["poseembroider_minus_aligner"]) == {"images", "texts", "images+texts", "poses"}
    assert hps["image_encoder_own_regression_pa_mpjpe"] == encoder["val"]["pa_mpjpe_mm"]
    instructions = on_disk["steps"]["instruction_evaluation"]
    assert on_disk["steps"]["instruction_generator"]["shortname"] == instructions["shortname"]
    assert set(instructions["results"]) == {"P_A,P_B", "V_A,V_B", "P_A,V_B", "V_A,P_B", "V_A+P_A,V_B+P_B"}
    assert list(instructions["results"]["P_A,P_B"]) == ["greedy", "beam4", "rerank4"]  # every decoding from poses
    assert all(
        list(instructions["results"][name]) == ["greedy"] for name in instructions["results"] if name != "P_A,P_B"
    )
    assert instructions["poses_rerank_R@1"] == instructions["results"]["P_A,P_B"]["rerank4"]["R@1"]
    assert set(instructions["controls"]) == {"GT", "random"} and instructions["val_size"] > 0
    assert (resolve(instructions["shortname"]) / "model.safetensors").is_file()
    assert list(on_disk["step_seconds"]) == list(QUICKSTART_STEPS)
    goals = {row["goal"] for row in on_disk["goals"]}
    assert "PoseText pose<->text mRecall" in goals and "PoseEmbroider ahead of the Aligner (mRecall)" in goals
    table = (tmp_path / "results.md").read_text()
    assert "| step | seconds |" in table and "| posevae |" in table
