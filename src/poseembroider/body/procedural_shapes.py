"""Shape (beta) and expression directions of the procedural body: smooth displacement fields.

Each direction is a (V, 3) displacement per unit coefficient, designed for coefficients in about
[-3, 3]. Regions come from the skinning weights (smooth by construction) and smooth radial bumps,
so every field is smooth; all are made exactly left/right symmetric with the mesh's mirror map.

Shape directions (betas), per unit (measured effect in brackets):
    0  size: proportional scaling about the point on the floor between the feet; the soles stay on
       the floor [height +3.0 cm, arm span +3.1 cm].
    1  girth / weight: skin pushed out along the normal, ~0.75 cm on the trunk (more on the belly),
       ~0.4 cm on the limbs, nothing on hands, feet and the top of the head [waist +5.3 cm,
       height unchanged].
    2  leg length vs torso: legs longer, torso shorter by the same amount [hip joints +2.0 cm
       higher, height unchanged].
    3  shoulder width: each shoulder and arm moves out by 0.8 cm [shoulder joints +1.2 cm apart].
    4  hip width: each hip and leg moves out by 0.8 cm, the pelvis widens smoothly [hips +1.6 cm].
    5  chest depth: chest pushed forwards by up to 0.8 cm, upper back by up to 0.4 cm.
    6  arm length: each hand moves out by 1.5 cm, the arm stretches uniformly [arm span +3.0 cm].
    7  head size: head scaled by 4 % about its centre [height +0.5 cm].
    8  belly: the abdomen protrudes by up to 1.2 cm [waist +2.0 cm].
    9  muscularity: biceps, triceps, deltoids, forearms, pectorals, quadriceps and calves bulge by
       up to 0.6 cm, the waist slims by 0.2 cm [waist -1.0 cm].
Expression directions (10 coefficients, face skin only, at most ~5 mm per unit): jaw drop, smile,
brow raise, brow furrow, lip pucker, cheek puff, eye closure, mouth stretch, nose wrinkle, lip
press.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poseembroider.body.joints import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from poseembroider.body.procedural_skeleton import FLOOR_Y, STATURE
from poseembroider.body.procedural_skinning import smooth_ramp

NUM_EXPRESSIONS = 10
_MIRROR = np.array([-1.0, 1.0, 1.0])


def _bump(points: np.ndarray, centre, sigma) -> np.ndarray:
    """(N,) anisotropic Gaussian bump exp(-|(p - c) / sigma|^2 / 2)."""
    q = (points - np.asarray(centre)) / np.asarray(sigma)
    return np.exp(-0.5 * (q * q).sum(axis=1))


def _mirrored_bump(points: np.ndarray, centre, sigma) -> np.ndarray:
    """Bump at `centre` plus the same bump mirrored to the other side (symmetric field)."""
    return _bump(points, centre, sigma) + _bump(points, np.asarray(centre) * _MIRROR, sigma)


def _joint_sum(weights: np.ndarray, predicate) -> np.ndarray:
    """(V,) sum of the weights of the joints whose name passes `predicate`."""
    columns = [j for j, name in enumerate(JOINT_NAMES) if predicate(name)]
    return weights[:, columns].sum(axis=1)


def _girth_amplitude() -> np.ndarray:
    """(55,) outward push per joint region (m per unit beta) for the girth direction."""
    amp = np.zeros(NUM_JOINTS)
    table = {
        "pelvis": 0.007,
        "spine1": 0.008,
        "spine2": 0.0075,
        "spine3": 0.006,
        "neck": 0.003,
        "head": 0.0,
        "jaw": 0.002,
        "collar": 0.004,
        "shoulder": 0.004,
        "elbow": 0.003,
        "hip": 0.006,
        "knee": 0.0035,
    }
    for j, name in enumerate(JOINT_NAMES):
        key = name.split("_")[-1]
        amp[j] = table.get(name, table.get(key, 0.0))
    return amp


@dataclass(frozen=True)
class _Body:
    """What the shape directions are computed from: rest vertices (V, 3), unit normals (V, 3),
    skinning weights (V, 55) and rest joints (55, 3)."""

    v: np.ndarray
    n: np.ndarray
    weights: np.ndarray
    joints: np.ndarray

    def joint(self, name: str) -> np.ndarray:
        return self.joints[JOINT_INDEX[name]]

    def along_normal(self, amount: np.ndarray) -> np.ndarray:
        """(V, 3) displacement of `amount` (V,) metres along the outward normal."""
        return self.n * amount[:, None]

    def along_x(self, amount: np.ndarray) -> np.ndarray:
        """(V, 3) displacement of `amount` (V,) metres along x."""
        out = np.zeros_like(self.v)
        out[:, 0] = amount
        return out


def _belly_region(b: _Body) -> np.ndarray:
    """(V,) bump on the front of the abdomen."""
    return _bump(b.v, (0.0, -0.26, 0.10), (0.10, 0.09, 0.08)) * smooth_ramp(b.n[:, 2], 0.5)


def _arm_region(b: _Body) -> np.ndarray:
    """(V,) total weight of the collar, arm, hand and finger joints (either side)."""
    return _joint_sum(
        b.weights,
        lambda s: (
            s.startswith(("left_", "right_"))
            and not s.endswith(("hip", "knee", "ankle", "foot", "eye_smplhf"))
        ),
    )


def _size(b: _Body) -> np.ndarray:
    return (b.v - [0.0, FLOOR_Y, 0.0]) * (0.03 / STATURE)


def _girth(b: _Body) -> np.ndarray:
    return b.along_normal(b.weights @ _girth_amplitude() + 0.004 * _belly_region(b))


def _leg_length(b: _Body) -> np.ndarray:
    """Stretch below the hips rising to +2 cm at hip height, then compressing the torso back to 0."""
    y, hip_y, armpit_y = b.v[:, 1], b.joint("left_hip")[1], 0.0
    below = np.clip((y - FLOOR_Y) / (hip_y - FLOOR_Y), 0.0, 1.0)
    above = 1.0 - smooth_ramp(y - 0.5 * (hip_y + armpit_y), 0.5 * (armpit_y - hip_y))
    out = np.zeros_like(b.v)
    out[:, 1] = 0.02 * np.where(y <= hip_y, below, above)
    return out


def _shoulder_width(b: _Body) -> np.ndarray:
    collar = _joint_sum(b.weights, lambda s: s.endswith("collar"))
    return b.along_x(0.008 * np.sign(b.v[:, 0]) * (_arm_region(b) - 0.5 * collar))


def _hip_width(b: _Body) -> np.ndarray:
    return b.along_x(0.008 * np.tanh(b.v[:, 0] / 0.07) * (1.0 - smooth_ramp(b.v[:, 1] + 0.30, 0.08)))


def _chest_depth(b: _Body) -> np.ndarray:
    chest = _mirrored_bump(b.v, (0.07, 0.0, 0.09), (0.06, 0.06, 0.05))
    back = _bump(b.v, (0.0, 0.0, -0.09), (0.12, 0.1, 0.05))
    return b.along_normal(0.008 * np.clip(chest + 0.5 * back, 0.0, 1.0))


def _arm_length(b: _Body) -> np.ndarray:
    """Each arm stretched from the shoulder joint, the hand moving out by 1.5 cm."""
    shoulder_x, wrist_x = b.joint("left_shoulder")[0], b.joint("left_wrist")[0]
    reach = np.clip((np.abs(b.v[:, 0]) - shoulder_x) / (wrist_x - shoulder_x), 0.0, 1.0)
    upper_limb = _arm_region(b) - _joint_sum(b.weights, lambda s: s.endswith("collar"))
    return b.along_x(0.015 * np.sign(b.v[:, 0]) * reach * upper_limb)


def _head_size(b: _Body) -> np.ndarray:
    head = _joint_sum(b.weights, lambda s: s in ("head", "jaw"))
    return (b.v - [0.0, 0.30, 0.0]) * (0.04 * head)[:, None]


def _belly(b: _Body) -> np.ndarray:
    return b.along_normal(0.012 * _belly_region(b))


def _muscularity(b: _Body) -> np.ndarray:
    waist = _bump(b.v, (0.0, -0.22, 0.0), (0.2, 0.06, 0.3))
    return b.along_normal(0.006 * _muscle_field(b.v, b.joints) - 0.002 * waist)


SHAPE_DIRECTIONS = (
    _size,
    _girth,
    _leg_length,
    _shoulder_width,
    _hip_width,
    _chest_depth,
    _arm_length,
    _head_size,
    _belly,
    _muscularity,
)
"""One function per beta, in order: (V, 3) displacement per unit coefficient."""


def shape_directions(
    vertices: np.ndarray, normals: np.ndarray, weights: np.ndarray, joints: np.ndarray, mirror: np.ndarray
) -> np.ndarray:
    """(V, 3, 10) shape displacement per unit beta (see the module docstring for each direction)."""
    body = _Body(vertices, normals, weights, joints)
    dirs = np.stack([direction(body) for direction in SHAPE_DIRECTIONS], axis=2)
    return symmetrize_directions(dirs, mirror)


def _muscle_field(v: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(V,) 0..1 field peaking on the main muscle bellies (both sides)."""
    J = {name: joints[i] for name, i in JOINT_INDEX.items()}
    sh, el, wr = J["left_shoulder"], J["left_elbow"], J["left_wrist"]
    hip, knee, ankle = J["left_hip"], J["left_knee"], J["left_ankle"]
    field = (
        _mirrored_bump(v, sh + [0.02, 0.01, 0.0], (0.05, 0.05, 0.05))  # deltoid
        + _mirrored_bump(v, sh + 0.5 * (el - sh), (0.07, 0.04, 0.05))  # biceps / triceps
        + 0.7 * _mirrored_bump(v, el + 0.3 * (wr - el), (0.06, 0.04, 0.04))  # forearm flexors
        + _mirrored_bump(v, (0.07, 0.02, 0.09), (0.06, 0.05, 0.04))  # pectorals
        + _mirrored_bump(v, hip + 0.45 * (knee - hip) + [0, 0, 0.05], (0.06, 0.12, 0.05))  # quadriceps
        + _mirrored_bump(v, knee + 0.3 * (ankle - knee) + [0, 0, -0.05], (0.05, 0.08, 0.04))  # calf
    )
    return np.clip(field, 0.0, 1.0)


def expression_directions(
    vertices: np.ndarray, normals: np.ndarray, weights: np.ndarray, mirror: np.ndarray
) -> np.ndarray:
    """(V, 3, 10) face-only expression displacements per unit coefficient (module docstring)."""
    v, n = vertices, normals
    face = _joint_sum(weights, lambda s: s in ("head", "jaw")) * smooth_ramp(v[:, 2] - 0.03, 0.02)
    x = v[:, 0]
    side = np.sign(x)
    mouth_corner = _mirrored_bump(v, (0.024, 0.229, 0.085), (0.012, 0.010, 0.02))
    dirs = np.zeros((len(v), 3, NUM_EXPRESSIONS))
    jaw = _joint_sum(weights, lambda s: s == "jaw")
    dirs[:, :, 0] = jaw[:, None] * [0.0, -0.005, -0.001]  # jaw drop
    dirs[:, 0, 1] = 0.002 * side * mouth_corner  # smile: corners out and up
    dirs[:, 1, 1] = 0.003 * mouth_corner
    dirs[:, 1, 2] = 0.004 * _mirrored_bump(v, (0.03, 0.332, 0.08), (0.025, 0.015, 0.03))  # brow raise
    furrow = _mirrored_bump(v, (0.014, 0.327, 0.085), (0.01, 0.01, 0.02))
    dirs[:, 0, 3] = -0.002 * side * furrow  # brow furrow: inner brows in and down
    dirs[:, 1, 3] = -0.002 * furrow
    lips = _bump(v, (0.0, 0.229, 0.09), (0.022, 0.013, 0.02))
    dirs[:, 2, 4] = 0.005 * lips  # pucker: lips forward and together
    dirs[:, 0, 4] = -0.003 * np.tanh(x / 0.01) * lips
    cheeks = _mirrored_bump(v, (0.042, 0.250, 0.06), (0.018, 0.02, 0.03))
    dirs[:, :, 5] = n * (0.005 * cheeks)[:, None]  # cheek puff
    lids = _mirrored_bump(v, (0.031, 0.311, 0.08), (0.011, 0.006, 0.02))
    dirs[:, 1, 6] = -0.003 * lids  # eye closure: upper lids down
    dirs[:, 0, 7] = 0.004 * side * mouth_corner  # mouth stretch
    alae = _mirrored_bump(v, (0.012, 0.275, 0.1), (0.008, 0.012, 0.02))
    dirs[:, 1, 8] = 0.002 * alae  # nose wrinkle: alae up
    lower_lip = _bump(v, (0.0, 0.219, 0.09), (0.02, 0.008, 0.02))
    dirs[:, 1, 9] = 0.002 * lower_lip  # lip press: lower lip up and back
    dirs[:, 2, 9] = -0.002 * lower_lip
    return symmetrize_directions(dirs * face[:, None, None], mirror)


def symmetrize_directions(dirs: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Average each vertex's displacement (V, 3, K) with its mirror partner's reflected one."""
    return 0.5 * (dirs + dirs[mirror] * _MIRROR[None, :, None])
