"""A procedural, licence-free neutral body model file in the SMPL-X layout (`SMPLX_NEUTRAL.npz`).

The licensed SMPL-X model cannot ship with the toolkit, but tests, demos and the renderer need a
body that `smplx.create(..., model_type="smplx")` loads. `build_procedural_smplx` writes one, built
from scratch from adult anatomy (no SMPL-X data):

1. Skeleton (`procedural_skeleton`): 55 T-pose joints, 1.72 m stature, pelvis at (0, -0.35, 0.01),
   soles at y = -1.30; rest bone directions equal to those the shipped CMU poses were retargeted to.
2. Surface (`procedural_anatomy`, `procedural_sdf`, `procedural_isosurface`,
   `procedural_surface`): a smooth union of tapered capsules, ellipsoids and rounded boxes (torso,
   head with face, limbs, hands with five fingers, feet), polygonised by surface nets on a 1.8 cm
   body grid, a 1 cm head grid and a 6-9.5 mm hand grid, zipped together and relaxed onto the
   implicit surface: a closed, outward-oriented, left/right symmetric mesh of ~11k vertices.
3. Reserved vertices (`procedural_landmarks`): the 21 vertices smplx reads as keypoints (nose,
   eyes, ears, toes, heels, fingertips) are moved to their fixed indices; 51 static and 79 x 17
   dynamic face landmarks are ray hits on the face.
4. Skinning (`procedural_skinning`): smooth stick-breaking weights down the kinematic tree (<= 4
   joints per vertex, all on one chain) and a convex joint regressor reproducing the rest joints.
5. Shapes (`procedural_shapes`): 10 shape directions (size, girth, leg/torso ratio, shoulder
   width, hip width, chest depth, arm length, head size, belly, muscularity) and 10 face-only
   expression directions. Pose correctives (`posedirs`) are zero: plain linear blend skinning.
6. Hand PCA: a seeded random orthonormal basis (45, 45); the mean hand pose is a slight curl.

The file carries `poseembroider_procedural_version` (smplx ignores unknown keys) so the toolkit can
tell it from a licensed model, and is written deterministically (fixed zip timestamps) and
atomically.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from poseembroider.atomic_io import atomic_file
from poseembroider.body.joints import JOINT_NAMES, NUM_JOINTS, PARENTS, left_right_permutation
from poseembroider.body.procedural_isosurface import vertex_normals
from poseembroider.body.procedural_landmarks import (
    dynamic_landmarks,
    reserved_permutation,
    reserved_vertex_choice,
    static_landmarks,
)
from poseembroider.body.procedural_shapes import expression_directions, shape_directions
from poseembroider.body.procedural_skeleton import FINGERS, finger_chain, rest_joints
from poseembroider.body.procedural_skinning import joint_regressor, skinning_weights
from poseembroider.body.procedural_surface import build_body_mesh

PROCEDURAL_MODEL_VERSION = 1
"""Bump when the generated geometry changes, so cached files get rebuilt."""

VERSION_KEY = "poseembroider_procedural_version"
"""Extra key marking a procedural model file (smplx ignores it)."""

MODEL_SUBPATH = Path("smplx") / "SMPLX_NEUTRAL.npz"
"""Where `smplx.create(out_dir, model_type='smplx', gender='neutral')` looks for the file."""

_HAND_SEED = 20240501
_NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9  # 486


def _permute_mesh(vertices: np.ndarray, faces: np.ndarray, mirror: np.ndarray, order: np.ndarray):
    """Apply a new -> old vertex order to vertices (V, 3), faces (F, 3) and the mirror map (V,)."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return vertices[order], inverse[faces], inverse[mirror[order]]


def _symmetrize_weights(weights: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(V, 55) weights averaged with the mirror vertex's weights (left/right joint columns swapped)."""
    swap = np.asarray(left_right_permutation(JOINT_NAMES))
    return 0.5 * (weights + weights[mirror][:, swap])


def _symmetrize_regressor(regressor: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(55, V) regressor averaged with its mirror image: exact on a symmetric mesh and skeleton."""
    swap = np.asarray(left_right_permutation(JOINT_NAMES))
    mirrored = np.zeros_like(regressor)
    mirrored[:, mirror] = regressor[swap]
    return 0.5 * (regressor + mirrored)


def _hand_pca() -> dict[str, np.ndarray]:
    """Orthonormal (45, 45) hand bases (rows = components) and slightly curled mean hand poses (45,)."""
    rng = np.random.default_rng(_HAND_SEED)
    out = {}
    for side, sign in (("l", 1.0), ("r", -1.0)):
        q, r = np.linalg.qr(rng.standard_normal((45, 45)))
        out[f"hands_components{side}"] = (q * np.sign(np.diag(r))).T
        # Fingers flex about the hand's z axis (palm down, fingers along +-x): fingertips go down.
        curl = np.tile([0.0, 0.0, -0.15 * sign], (15, 1))
        thumb = [i for i, f in enumerate(FINGERS) if f == "thumb"][0]
        curl[3 * thumb : 3 * thumb + 3] = [0.0, 0.05 * sign, -0.05 * sign]
        out[f"hands_mean{side}"] = curl.ravel()
    return out


def procedural_model_arrays() -> dict[str, np.ndarray]:
    """Every array of the model file, keyed as smplx expects (see the module docstring)."""
    joints = rest_joints()
    mesh, mirror = build_body_mesh()
    choice = reserved_vertex_choice(mesh.vertices, joints)
    vertices, faces, mirror = _permute_mesh(
        mesh.vertices, mesh.faces, mirror, reserved_permutation(len(mesh.vertices), choice)
    )
    chains = {finger: finger_chain(finger) for finger in FINGERS}
    weights = _symmetrize_weights(skinning_weights(vertices, faces, joints, chains), mirror)
    regressor = _symmetrize_regressor(joint_regressor(vertices, joints, weights), mirror)
    normals = vertex_normals(vertices, faces)
    shapedirs = np.concatenate(
        [
            shape_directions(vertices, normals, weights, joints, mirror),
            expression_directions(vertices, normals, weights, mirror),
        ],
        axis=2,
    )
    lmk_faces, lmk_bary = static_landmarks(vertices, faces)
    dyn_faces, dyn_bary = dynamic_landmarks(vertices, faces)
    kintree = np.stack([np.array(PARENTS, dtype=np.int64), np.arange(NUM_JOINTS, dtype=np.int64)])
    kintree[0, 0] = 4294967295
    return {
        "v_template": vertices.astype(np.float64),
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs.astype(np.float64),
        "posedirs": np.zeros((len(vertices), 3, _NUM_POSE_BASIS), dtype=np.float64),
        "J_regressor": regressor.astype(np.float64),
        "weights": weights.astype(np.float64),
        "kintree_table": kintree,
        **_hand_pca(),
        "lmk_faces_idx": lmk_faces.astype(np.int64),
        "lmk_bary_coords": lmk_bary.astype(np.float64),
        "dynamic_lmk_faces_idx": dyn_faces.astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_bary.astype(np.float64),
        VERSION_KEY: np.array(PROCEDURAL_MODEL_VERSION, dtype=np.int64),
    }


def write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz that is byte-identical for identical arrays, atomically (`atomic_io.atomic_file`).

    `np.savez_compressed` stamps the current time into every zip entry; here each entry gets a
    fixed date and the arrays are serialised with `numpy.lib.format.write_array`.
    """
    with atomic_file(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[key], order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=6)


def build_procedural_smplx(out_dir: str | Path) -> Path:
    """Write `<out_dir>/smplx/SMPLX_NEUTRAL.npz` (the procedural neutral body) and return its path.

    Load it with `smplx.create(out_dir, model_type="smplx", gender="neutral", use_pca=False, ...)`.
    Deterministic: two builds give byte-identical files.
    """
    path = Path(out_dir) / MODEL_SUBPATH
    write_npz_deterministic(path, procedural_model_arrays())
    return path
