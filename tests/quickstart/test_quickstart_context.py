"""The quickstart's typed context: a step that needs an earlier step's product says which step to run first."""

from __future__ import annotations

import pytest

from poseembroider.quickstart import QUICKSTART_STEPS, QuickstartContext
from poseembroider.quickstart.core import step_core_aligner
from poseembroider.quickstart.world import step_pose_contact_sheet


def test_steps_run_world_then_assisting_then_core_then_heads():
    names = list(QUICKSTART_STEPS)
    assert names[:4] == ["body_model", "pose_contact_sheet", "pose_sampler_report", "synthetic_dataset"]
    assert names.index("text_models") < names.index("posetext") < names.index("core_poseembroider")
    assert names.index("core_poseembroider") < names.index("core_aligner") < names.index("hps_heads")
    assert names[-1] == "instruction_generator"


def test_a_step_without_its_inputs_names_the_step_to_run_first(tmp_path):
    ctx = QuickstartContext(tmp_path)
    with pytest.raises(RuntimeError, match="'body_model' step first"):
        step_pose_contact_sheet(ctx)
    with pytest.raises(RuntimeError, match="'synthetic_dataset' step first"):
        step_core_aligner(ctx)
    with pytest.raises(RuntimeError, match="'core_aligner' step first"):
        ctx.require_core_name("Aligner")
    ctx.encoder_names.update(pose="posevae_x", text="posetext_x")
    with pytest.raises(RuntimeError, match=r"\['image'\] encoder"):
        ctx.require_encoder_names()


def test_run_dirs_are_under_the_output_folder(tmp_path):
    assert QuickstartContext(tmp_path).run_dir("posevae") == tmp_path / "models" / "posevae"
