import numpy as np
import pytest
import torch

from poseembroider.body.joints import JOINT_INDEX
from poseembroider.datasets.synthetic.joint_limits import limit_violation, within_limits
from poseembroider.datasets.synthetic.key_poses import (
    KEY_POSES,
    POSTURES,
    aim,
    aim_limb,
    bend,
    key_pose_array,
    make_pose,
    orient,
)
from poseembroider.datasets.synthetic.metrics import detect_categories
from poseembroider.datasets.synthetic.self_penetration import self_penetrating
from poseembroider.datasets.synthetic.skeleton import BodySkeleton

REQUIRED = [
    "standing", "a_pose", "t_pose", "walking_left_step", "walking_right_step", "running_left_stride",
    "running_right_stride", "sitting_on_chair", "sitting_cross_legged", "sitting_on_ground_legs_forward",
    "squatting", "kneeling_on_one_knee", "kneeling_on_both_knees", "lunging", "lying_on_back", "lying_on_side",
    "lying_on_front", "bending_forward", "reaching_forward", "reaching_up", "reaching_to_the_side",
    "arms_raised_above_head", "arms_crossed", "hands_on_hips", "star_jump", "tuck_jump", "dance_arms_up_kick",
    "dance_disco_point", "yoga_tree", "yoga_warrior", "one_leg_balance", "waving", "pointing", "crouching",
    "sitting_hands_on_knees", "push_up", "handstand",
]  # fmt: skip


@pytest.fixture(scope="module")
def skeleton(body_model):
    return BodySkeleton(body_model)


@pytest.fixture(scope="module")
def key_joints(skeleton):
    return skeleton(torch.as_tensor(key_pose_array())).joints


def _joints(skeleton, pose):
    return skeleton(torch.as_tensor(pose)[None]).joints[0]


def test_the_library_has_every_required_pose():
    missing = [n for n in REQUIRED if n not in KEY_POSES]
    assert not missing
    assert all(k.posture in POSTURES for k in KEY_POSES.values())
    assert key_pose_array().shape == (len(KEY_POSES), 22, 3) and key_pose_array().dtype == np.float32


def test_every_key_pose_is_within_the_limits():
    poses = torch.as_tensor(key_pose_array())
    bad = [n for n, ok in zip(KEY_POSES, within_limits(poses), strict=True) if not ok]
    assert not bad, (bad, limit_violation(poses).amax(dim=1))


def test_no_key_pose_penetrates_itself(skeleton):
    points = skeleton(torch.as_tensor(key_pose_array())).points
    bad = [n for n, flag in zip(KEY_POSES, self_penetrating(points, skeleton), strict=True) if flag]
    assert not bad


def test_anatomical_helpers_move_limbs_the_expected_way(skeleton):
    rest = _joints(skeleton, make_pose())
    j = JOINT_INDEX
    # knee flexion sends the foot backwards (-z), on both sides
    for side in ("left", "right"):
        bent = _joints(skeleton, make_pose(None, {f"{side}_knee": bend(f"{side}_knee", 90)}))
        assert bent[j[f"{side}_ankle"], 2] < rest[j[f"{side}_ankle"], 2] - 0.3
        # hip flexion sends the knee forwards (+z)
        bent = _joints(skeleton, make_pose(None, {f"{side}_hip": bend(f"{side}_hip", 90)}))
        assert bent[j[f"{side}_knee"], 2] > rest[j[f"{side}_knee"], 2] + 0.3
        # elbow flexion from the T-pose brings the hand forwards
        bent = _joints(skeleton, make_pose(None, {f"{side}_elbow": bend(f"{side}_elbow", 90)}))
        assert bent[j[f"{side}_wrist"], 2] > rest[j[f"{side}_wrist"], 2] + 0.2
    # aim points the upper arm: up for the left, down for the right
    up_down = _joints(
        skeleton,
        make_pose(
            None,
            {"left_shoulder": aim("left_shoulder", (0, 1, 0)), "right_shoulder": aim("right_shoulder", (0, -1, 0))},
        ),
    )
    assert up_down[j["left_elbow"], 1] > up_down[j["left_shoulder"], 1] + 0.2
    assert up_down[j["right_elbow"], 1] < up_down[j["right_shoulder"], 1] - 0.2
    # spine flexion bends the trunk forwards
    bent = _joints(skeleton, make_pose(None, {"spine1": bend("spine1", 40)}))
    assert bent[j["neck"], 2] > rest[j["neck"], 2] + 0.15


def test_aim_limb_places_both_bones(skeleton):
    upper, lower = np.array([0.7, -0.1, 0.7]), np.array([-0.9, -0.1, 0.3])
    for side, sign in (("left", 1.0), ("right", -1.0)):
        mirror = np.array([sign, 1.0, 1.0])
        pose = make_pose(None, aim_limb(f"{side}_hip", upper * mirror, lower * mirror))
        joints = _joints(skeleton, pose).numpy()
        hip, knee, ankle = (joints[JOINT_INDEX[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        thigh, shin = (knee - hip) / np.linalg.norm(knee - hip), (ankle - knee) / np.linalg.norm(ankle - knee)
        # the rest bones are not exactly along -y, so allow a few degrees
        assert thigh @ (upper * mirror / np.linalg.norm(upper)) > np.cos(np.radians(5))
        assert shin @ (lower * mirror / np.linalg.norm(lower)) > np.cos(np.radians(8))


def test_orientations_lie_the_body_down(skeleton):
    j = JOINT_INDEX
    for name, rotations in {"back": (("x", -90.0),), "front": (("x", 90.0),), "side": (("z", -90.0),)}.items():
        joints = _joints(skeleton, make_pose(orient(*rotations)))
        trunk = joints[j["neck"]] - joints[j["pelvis"]]
        assert abs(trunk[1]) < 0.05 * trunk.norm(), name
    # on the back the body faces up: the feet (toes forward) point up from the ankles
    joints = _joints(skeleton, make_pose(orient(("x", -90.0))))
    assert joints[j["left_foot"], 1] > joints[j["left_ankle"], 1]
    joints = _joints(skeleton, make_pose(orient(("x", 180.0))))
    assert joints[j["head"], 1] < joints[j["pelvis"], 1] - 0.4


@pytest.mark.parametrize("category", ["sitting", "kneeling", "lying", "arms_above_head", "upside_down"])
def test_detectors_agree_with_the_tags(key_joints, category):
    flags = detect_categories(key_joints)[category]
    tagged = [i for i, k in enumerate(KEY_POSES.values()) if category in k.tags]
    standing = [i for i, k in enumerate(KEY_POSES.values()) if "standing" in k.tags and "arms_above_head" not in k.tags]
    assert tagged, category
    assert flags[tagged].all(), [list(KEY_POSES)[i] for i in tagged if not flags[i]]
    assert not flags[standing].any(), [list(KEY_POSES)[i] for i in standing if flags[i]]


def test_bad_joint_names_are_refused():
    with pytest.raises(ValueError, match="joint"):
        bend("left_tail", 10)
    with pytest.raises(ValueError, match="hip or a shoulder"):
        aim_limb("left_knee", (0, -1, 0), (0, -1, 0))
