"""The quickstart's typed context: a step that needs an earlier step's product says which step to run first."""

from __future__ import annotations

import pytest

from poseembroider.quickstart import QUICKSTART_STEPS, QuickstartContext
from poseembroider.quickstart.core import step_core_aligner, step_pose_text_features
from poseembroider.quickstart.world import step_pose_contact_sheet


def test_steps_run_world_then_assisting_then_core_then_heads():
    names = list(QUICKSTART_STEPS)
    assert names[:4] == ["body_model", "pose_contact_sheet", "pose_sampler_report", "synthetic_dataset"]
    assert names.index("text_models") < names.index("posetext") < names.index("core_poseembroider")
    assert names.index("core_poseembroider") < names.index("core_aligner") < names.index("hps_heads")
    assert names[-2:] == ["instruction_generator", "instruction_evaluation"]


def test_every_step_after_the_world_says_what_it_needs_and_the_lane_order_can_run_alone():
    from poseembroider.quickstart.lanes import check_needs
    from poseembroider.quickstart.run import LANE_ORDER, STEP_NEEDS

    assert set(LANE_ORDER) == set(STEP_NEEDS) and len(LANE_ORDER) == len(STEP_NEEDS)
    world = [name for name in QUICKSTART_STEPS if name not in STEP_NEEDS]
    assert world == list(QUICKSTART_STEPS)[: len(world)]  # the world comes first
    check_needs(list(LANE_ORDER), STEP_NEEDS, done=world)
    for position, name in enumerate(LANE_ORDER):  # one lane runs them in this order: each after its needs
        assert set(STEP_NEEDS[name]) <= set(world) | set(LANE_ORDER[:position]), name


def test_a_step_without_its_inputs_names_the_step_to_run_first(tmp_path):
    ctx = QuickstartContext(tmp_path)
    with pytest.raises(RuntimeError, match="'body_model' step first"):
        step_pose_contact_sheet(ctx)
    with pytest.raises(RuntimeError, match="'synthetic_dataset' step first"):
        step_core_aligner(ctx)
    with pytest.raises(RuntimeError, match=r"\['pose', 'text'\] encoder\(s\): run 'posevae' and 'posetext'"):
        step_pose_text_features(ctx)
    with pytest.raises(RuntimeError, match="'core_aligner' step first"):
        ctx.require_core_name("Aligner")
    ctx.encoder_names.update(pose="posevae_x", text="posetext_x")
    with pytest.raises(RuntimeError, match=r"\['image'\] encoder\(s\): run 'image_encoder' first"):
        ctx.require_encoder_names()
    assert ctx.require_encoder_names(("pose", "text")) == {"pose": "posevae_x", "text": "posetext_x"}


def test_run_dirs_are_under_the_output_folder(tmp_path):
    assert QuickstartContext(tmp_path).run_dir("posevae") == tmp_path / "models" / "posevae"
