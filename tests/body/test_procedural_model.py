"""The procedural SMPL-X-format body model file: contract, anatomy, skinning, shapes, determinism.

The model is built once per session (`procedural_model_file`, tests/conftest.py); one more build
checks byte-identical output.
"""

from __future__ import annotations

import numpy as np
import pytest
import smplx
import torch

from poseembroider.body.joints import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS, left_right_permutation
from poseembroider.body.procedural_model import PROCEDURAL_MODEL_VERSION, VERSION_KEY, build_procedural_smplx
from poseembroider.body.procedural_skeleton import FLOOR_Y, rest_joints

EXPECTED = {
    "v_template": ((None, 3), np.float64),
    "f": (("F", 3), np.uint32),
    "shapedirs": ((None, 3, 20), np.float64),
    "posedirs": ((None, 3, 486), np.float64),
    "J_regressor": ((55, None), np.float64),
    "weights": ((None, 55), np.float64),
    "kintree_table": ((2, 55), np.int64),
    "hands_componentsl": ((45, 45), np.float64),
    "hands_componentsr": ((45, 45), np.float64),
    "hands_meanl": ((45,), np.float64),
    "hands_meanr": ((45,), np.float64),
    "lmk_faces_idx": ((51,), np.int64),
    "lmk_bary_coords": ((51, 3), np.float64),
    "dynamic_lmk_faces_idx": ((79, 17), np.int64),
    "dynamic_lmk_bary_coords": ((79, 17, 3), np.float64),
}
LEFT_LEG = [JOINT_INDEX[n] for n in ("left_hip", "left_knee", "left_ankle", "left_foot")]
RIGHT_LEG = [JOINT_INDEX[n] for n in ("right_hip", "right_knee", "right_ankle", "right_foot")]


@pytest.fixture(scope="module")
def arrays(procedural_model_file) -> dict[str, np.ndarray]:
    with np.load(procedural_model_file, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def model_dir(procedural_model_file):
    return procedural_model_file.parent.parent


def _create(model_dir, batch_size: int):
    return smplx.create(
        str(model_dir),
        model_type="smplx",
        gender="neutral",
        use_pca=False,
        flat_hand_mean=True,
        batch_size=batch_size,
    )


def _forward(model, body_pose=None, betas=None) -> tuple[np.ndarray, np.ndarray]:
    b = model.batch_size
    with torch.no_grad():
        out = model(
            body_pose=torch.zeros(b, 63)
            if body_pose is None
            else torch.as_tensor(body_pose, dtype=torch.float32),
            betas=torch.zeros(b, 10) if betas is None else torch.as_tensor(betas, dtype=torch.float32),
        )
    return out.vertices.numpy(), out.joints.numpy()


def test_every_key_has_the_smplx_shape_and_dtype(arrays):
    v = len(arrays["v_template"])
    assert 9930 <= v <= 12000
    for key, (shape, dtype) in EXPECTED.items():
        assert key in arrays, key
        expected = tuple(v if s is None else len(arrays["f"]) if s == "F" else s for s in shape)
        assert arrays[key].shape == expected, key
        assert arrays[key].dtype == dtype, key
    assert int(arrays[VERSION_KEY]) == PROCEDURAL_MODEL_VERSION
    kintree = arrays["kintree_table"]
    assert kintree[0, 0] == 4294967295
    assert kintree[0, 1:].tolist() == list(PARENTS[1:])
    assert kintree[1].tolist() == list(range(NUM_JOINTS))
    assert arrays["f"].max() < v


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_smplx_loads_the_file_and_runs_batches(model_dir, arrays, batch_size):
    model = _create(model_dir, batch_size)
    rng = np.random.default_rng(batch_size)
    vertices, joints = _forward(
        model, body_pose=rng.normal(0.0, 0.3, (batch_size, 63)), betas=rng.normal(0.0, 1.0, (batch_size, 10))
    )
    assert vertices.shape == (batch_size, len(arrays["v_template"]), 3)
    assert joints.shape == (batch_size, 127, 3)
    assert np.isfinite(vertices).all()


def test_mesh_is_closed_outward_and_symmetric(arrays):
    v, f = arrays["v_template"], arrays["f"].astype(np.int64)
    half = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(half, axis=0)) == len(half), "an edge is used twice in the same direction"
    assert set(map(tuple, half.tolist())) == set(map(tuple, half[:, ::-1].tolist())), "open boundary"
    tri = v[f]
    signed_volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert 0.05 < signed_volume < 0.1  # outward normals; an adult body is 60-80 litres
    mirrored = v * [-1.0, 1.0, 1.0]
    from scipy.spatial import cKDTree

    assert cKDTree(v).query(mirrored)[0].max() < 1e-6


def test_rest_pose_is_a_plausible_adult(model_dir):
    vertices, joints = _forward(_create(model_dir, 1))
    v, j = vertices[0], joints[0, :NUM_JOINTS]
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 < height < 1.9
    span = v[:, 0].max() - v[:, 0].min()
    assert abs(span / height - 1.0) < 0.05
    hip_height = j[JOINT_INDEX["left_hip"], 1] - v[:, 1].min()
    assert 0.45 < hip_height / height < 0.55
    shoulders = j[JOINT_INDEX["left_shoulder"], 0] - j[JOINT_INDEX["right_shoulder"], 0]
    assert 0.33 < shoulders < 0.42
    assert np.allclose(j[0], [0.0, -0.35, 0.01], atol=0.01)
    assert abs(v[:, 1].min() - FLOOR_Y) < 0.01
    swap = list(left_right_permutation(JOINT_NAMES))
    assert np.abs(j[swap] * [-1.0, 1.0, 1.0] - j).max() < 1e-3
    body = j[:22]
    assert body[:, 1].argmax() == JOINT_INDEX["head"]
    assert set(np.argsort(body[:, 1])[:4]) == {
        JOINT_INDEX[n] for n in ("left_foot", "right_foot", "left_ankle", "right_ankle")
    }
    assert j[JOINT_INDEX["left_wrist"], 0] > 0.6 and j[JOINT_INDEX["right_wrist"], 0] < -0.6


def test_regressor_reproduces_the_designed_joints(arrays):
    regressor = arrays["J_regressor"]
    assert (regressor >= 0).all()
    assert np.allclose(regressor.sum(axis=1), 1.0)
    assert ((regressor > 0).sum(axis=1) <= 120).all()
    assert np.abs(regressor @ arrays["v_template"] - rest_joints()).max() < 1e-3


def test_every_joint_lies_inside_the_body():
    from poseembroider.body.procedural_anatomy import body_field_tree
    from poseembroider.body.procedural_sdf import evaluate

    depth = evaluate(body_field_tree(), rest_joints())  # negative inside the skin
    assert (depth < -0.003).all(), [JOINT_NAMES[j] for j in np.flatnonzero(depth >= -0.003)]


def test_reserved_vertices_sit_where_they_belong(arrays):
    v = arrays["v_template"]
    ids = smplx.vertex_ids.vertex_ids["smplx"]
    p = {name: v[index] for name, index in ids.items()}
    joints = rest_joints()
    head = v[v[:, 1] > joints[JOINT_INDEX["neck"], 1] + 0.02]
    assert p["nose"][2] >= head[:, 2].max() - 1e-9
    assert abs(p["nose"][0]) < 1e-6
    for side, sign in (("l", 1.0), ("r", -1.0)):
        eye, ear = p[f"{side}eye"], p[f"{side}ear"]
        assert sign * eye[0] > 0.01 and sign * ear[0] > 0.07
        assert eye[1] > p["nose"][1] and eye[2] > 0.06 and abs(ear[2]) < 0.03
        wrist = joints[JOINT_INDEX[f"{'left' if sign > 0 else 'right'}_wrist"]]
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            assert sign * (p[f"{side}{finger}"][0] - wrist[0]) > 0.07, finger
        assert p[f"{side}middle"][0] * sign == max(
            p[f"{side}{f}"][0] * sign for f in ("index", "middle", "ring")
        )
        assert p[f"{side}thumb"][2] > p[f"{side}index"][2] > p[f"{side}pinky"][2]
    for side, sign in (("L", 1.0), ("R", -1.0)):
        big, small, heel = p[f"{side}BigToe"], p[f"{side}SmallToe"], p[f"{side}Heel"]
        assert min(big[2], small[2]) > heel[2] + 0.2
        assert sign * big[0] > 0 and sign * small[0] > sign * big[0]  # big toe medial, small toe lateral
        for point in (big, small, heel):
            assert point[1] < FLOOR_Y + 0.03


def test_weights_are_a_partition_of_unity_on_one_chain(arrays):
    w = arrays["weights"]
    assert (w >= 0).all()
    assert np.allclose(w.sum(axis=1), 1.0)
    assert ((w > 0).sum(axis=1) <= 4).all()
    assert not ((w[:, LEFT_LEG].sum(axis=1) > 0) & (w[:, RIGHT_LEG].sum(axis=1) > 0)).any()
    hand_joints = [j for j, n in enumerate(JOINT_NAMES) if j >= 25]
    torso_joints = [JOINT_INDEX[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    on_hand = w[:, hand_joints].sum(axis=1) > 0.5
    assert on_hand.sum() > 500
    assert (w[on_hand][:, torso_joints] == 0).all()


def test_bending_a_knee_moves_only_the_shin_and_foot(model_dir, arrays):
    model = _create(model_dir, 2)
    pose = np.zeros((2, 21, 3))
    pose[1, JOINT_INDEX["left_knee"] - 1] = [np.pi / 2, 0.0, 0.0]
    vertices, _ = _forward(model, body_pose=pose.reshape(2, 63))
    moved = np.linalg.norm(vertices[1] - vertices[0], axis=1)
    w = arrays["weights"]
    shin_and_foot = (
        w[:, [JOINT_INDEX[n] for n in ("left_knee", "left_ankle", "left_foot")]].sum(axis=1) > 0.99
    )
    assert moved[shin_and_foot].min() > 0.02
    v = arrays["v_template"]
    other_leg_or_torso = (v[:, 0] < -0.01) | (v[:, 1] > rest_joints()[JOINT_INDEX["left_hip"], 1])
    assert moved[other_leg_or_torso].max() < 1e-6
    # the foot swings backwards and up: knees bend backwards
    foot = v[:, 1] < FLOOR_Y + 0.05
    assert (vertices[1][foot & (v[:, 0] > 0), 2] < vertices[0][foot & (v[:, 0] > 0), 2]).all()


def _waist_circumference(vertices: np.ndarray, height: float) -> float:
    from scipy.spatial import ConvexHull

    ring = vertices[(np.abs(vertices[:, 1] - height) < 0.01) & (np.abs(vertices[:, 0]) < 0.25)][:, [0, 2]]
    return ConvexHull(ring).area  # perimeter of the 2-D hull


def test_first_betas_change_height_and_girth_monotonically(model_dir):
    model = _create(model_dir, 5)
    levels = np.array([-3.0, -1.5, 0.0, 1.5, 3.0])
    betas = np.zeros((5, 10))
    betas[:, 0] = levels
    vertices, _ = _forward(model, betas=betas)
    heights = vertices[:, :, 1].max(axis=1) - vertices[:, :, 1].min(axis=1)
    assert (np.diff(heights) > 0.03).all()
    assert np.allclose(np.diff(heights) / 1.5, 0.03, atol=0.01)
    assert np.abs(vertices[:, :, 1].min(axis=1) - FLOOR_Y).max() < 0.01  # scaled from the floor
    betas = np.zeros((5, 10))
    betas[:, 1] = levels
    vertices, _ = _forward(model, betas=betas)
    waist_y = rest_joints()[JOINT_INDEX["spine1"], 1]
    waists = np.array([_waist_circumference(v, waist_y) for v in vertices])
    assert (np.diff(waists) > 0.02).all()
    heights = vertices[:, :, 1].max(axis=1) - vertices[:, :, 1].min(axis=1)
    assert np.ptp(heights) < 0.01


def test_shape_and_expression_directions_are_symmetric_and_local(arrays):
    v, dirs = arrays["v_template"], arrays["shapedirs"]
    from scipy.spatial import cKDTree

    mirror = cKDTree(v).query(v * [-1.0, 1.0, 1.0])[1]
    assert np.abs(dirs[mirror] * np.array([-1.0, 1.0, 1.0])[None, :, None] - dirs).max() < 1e-9
    assert (np.abs(dirs[:, :, :10]).max(axis=(0, 1)) > 0.004).all()
    expressions = np.linalg.norm(dirs[:, :, 10:], axis=1)
    assert (expressions.max(axis=0) > 1e-3).all()
    assert expressions[v[:, 1] < rest_joints()[JOINT_INDEX["neck"], 1]].max() == 0.0


def test_hand_pca_and_face_landmarks_are_valid(arrays):
    for side in "lr":
        basis = arrays[f"hands_components{side}"]
        assert np.allclose(basis @ basis.T, np.eye(45), atol=1e-10)
        assert 0 < np.abs(arrays[f"hands_mean{side}"]).max() < 0.3
    v, f = arrays["v_template"], arrays["f"].astype(np.int64)
    for faces, bary in (
        (arrays["lmk_faces_idx"], arrays["lmk_bary_coords"]),
        (arrays["dynamic_lmk_faces_idx"], arrays["dynamic_lmk_bary_coords"]),
    ):
        assert (bary >= 0).all() and np.allclose(bary.sum(axis=-1), 1.0)
        centres = v[f[faces]].mean(axis=-2)
        assert (centres[..., 1] > rest_joints()[JOINT_INDEX["neck"], 1]).all()
        assert (centres[..., 2] > 0.0).all()


def test_builds_are_byte_identical(tmp_path, procedural_model_file):
    again = build_procedural_smplx(tmp_path)
    assert again.read_bytes() == procedural_model_file.read_bytes()
    assert [p.name for p in again.parent.iterdir()] == ["SMPLX_NEUTRAL.npz"]  # no temporary left behind
