import json

import numpy as np
import pytest
from PIL import Image

from poseembroider.quickstart import QUICKSTART_STEPS, run_quickstart


@pytest.mark.render
def test_quickstart_writes_summary_and_contact_sheet(tmp_path, procedural_model_file):
    summary = run_quickstart(out_dir=tmp_path, n_poses=3, seed=1, n_train=8, n_val=12, sampler_report_size=200)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
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
