"""The procedural body as an implicit surface: anatomical primitives placed on the rest skeleton.

Sizes follow adult anthropometry for a slim 1.72 m neutral body (circumferences as built: waist
0.77 m, chest 0.95 m, hips 0.94 m; thigh ~0.55 m, calf ~0.36 m, upper arm ~0.29 m; head breadth
0.15 m, length 0.19 m, height 0.24 m). Each body region is a `Blend` of primitives with its own
blend radius: large (6 cm) inside the torso so chest, belly and buttocks flow into each other, a
few millimetres between the fingers so they stay separate. Left limbs are designed once and
mirrored; the face is a mannequin face (brow ridge, shallow eye sockets, nose, lips, chin, ears).

`body_field_tree()` is the whole body; polygonisation (`procedural_surface`) samples it.
"""

from __future__ import annotations

import numpy as np

from poseembroider.body.joints import JOINT_INDEX
from poseembroider.body.procedural_sdf import (
    Blend,
    Carve,
    Ellipsoid,
    Node,
    RoundCone,
    RoundedBox,
    mirror_node,
)
from poseembroider.body.procedural_skeleton import (
    FINGERS,
    FLOOR_Y,
    finger_chain,
    left_hand_frame,
    rest_joints,
)

# Radii (m) of each finger at joints 1, 2, 3 and at the fingertip.
FINGER_RADII: dict[str, tuple[float, float, float, float]] = {
    "index": (0.0100, 0.0088, 0.0079, 0.0072),
    "middle": (0.0103, 0.0090, 0.0081, 0.0074),
    "ring": (0.0097, 0.0085, 0.0077, 0.0070),
    "pinky": (0.0086, 0.0076, 0.0069, 0.0063),
    "thumb": (0.0150, 0.0120, 0.0108, 0.0096),
}


def _joint(name: str) -> np.ndarray:
    return rest_joints()[JOINT_INDEX[name]]


def _t(v) -> tuple[float, float, float]:
    return tuple(float(x) for x in np.asarray(v, dtype=np.float64))


def _torso() -> Node:
    """Pelvis, buttocks, abdomen, ribcage, chest, upper back and trapezius (both sides)."""
    centre = [
        Ellipsoid((0.0, -0.385, 0.0), (0.165, 0.105, 0.105)),  # pelvic girdle
        Ellipsoid((0.0, -0.235, 0.012), (0.138, 0.140, 0.100)),  # abdomen / waist
        Ellipsoid((0.0, -0.292, 0.03), (0.112, 0.080, 0.082)),  # lower belly
        Ellipsoid((0.0, -0.035, 0.0), (0.140, 0.160, 0.100)),  # ribcage
        RoundCone((-0.10, 0.072, -0.018), (0.10, 0.072, -0.018), 0.066, 0.066),  # shoulder girdle
    ]
    left = [
        Ellipsoid((0.062, -0.448, -0.048), (0.080, 0.092, 0.074)),  # buttock
        Ellipsoid((0.066, 0.004, 0.058), (0.070, 0.058, 0.048)),  # pectoral
        Ellipsoid((0.074, 0.008, -0.052), (0.074, 0.092, 0.050)),  # scapula / upper back
        Ellipsoid((0.095, -0.050, -0.020), (0.055, 0.100, 0.062)),  # latissimus / flank
        RoundCone((0.030, 0.150, -0.026), (0.160, 0.108, -0.020), 0.040, 0.036),  # trapezius
    ]
    return Blend(tuple(centre + left + [mirror_node(p) for p in left]), 0.06)


def _head() -> Node:
    """Neck, skull, face (nose, brow ridge, shallow eye sockets, lips, chin, jaw) and ears."""
    eye = _joint("left_eye_smplhf")
    left = [
        Ellipsoid(
            (0.073, 0.298, -0.012), (0.011, 0.030, 0.017), ((1, 0, 0), (0, 1, -0.25), (0, 0.25, 1))
        ),  # ear
    ]
    face = Blend(
        (
            Ellipsoid((0.0, 0.325, -0.006), (0.075, 0.095, 0.097)),  # skull
            Ellipsoid((0.0, 0.260, 0.020), (0.062, 0.074, 0.070)),  # face: cheeks and maxilla
            Ellipsoid((0.0, 0.228, -0.005), (0.060, 0.045, 0.060)),  # mandible
            RoundCone((0.038, 0.332, 0.078), (-0.038, 0.332, 0.078), 0.0105, 0.0105),  # brow ridge
            Ellipsoid((0.0, 0.199, 0.068), (0.024, 0.016, 0.017)),  # chin
            Ellipsoid((0.0, 0.229, 0.083), (0.023, 0.013, 0.011)),  # lips
            *left,
            *[mirror_node(p) for p in left],
        ),
        0.016,
    )
    sockets = Blend(
        (
            Ellipsoid(_t(eye + [0.0, 0.003, 0.026]), (0.018, 0.011, 0.011)),
            Ellipsoid(_t(eye * [-1, 1, 1] + [0.0, 0.003, 0.026]), (0.018, 0.011, 0.011)),
        ),
        0.0,
    )
    nose = Blend(
        (
            RoundCone((0.0, 0.314, 0.078), (0.0, 0.268, 0.104), 0.0100, 0.0130),  # bridge to tip
            Ellipsoid((0.0, 0.262, 0.094), (0.017, 0.009, 0.011)),  # alae
        ),
        0.008,
    )
    head = Blend((Carve(face, sockets, 0.010), nose), 0.012)
    neck = RoundCone((0.0, 0.10, -0.012), (0.0, 0.262, 0.004), 0.058, 0.051)
    return Blend((neck, head), 0.025)


def _left_arm() -> Node:
    """Deltoid, upper arm with biceps/triceps, elbow, forearm flattening towards the wrist."""
    sh, el, wr = _joint("left_shoulder"), _joint("left_elbow"), _joint("left_wrist")
    fa = (wr - el) / np.linalg.norm(wr - el)
    parts = (
        Ellipsoid(_t(sh + [0.012, 0.004, 0.002]), (0.072, 0.057, 0.058)),  # deltoid
        RoundCone(_t(sh), _t(el), 0.046, 0.035),  # humerus
        Ellipsoid(_t(sh + 0.47 * (el - sh) + [0, -0.004, 0.014]), (0.085, 0.035, 0.034)),  # biceps
        Ellipsoid(_t(sh + 0.42 * (el - sh) + [0, 0.002, -0.016]), (0.090, 0.036, 0.032)),  # triceps
        Ellipsoid(_t(el + 0.075 * fa + [0, 0.0, 0.003]), (0.085, 0.036, 0.041)),  # forearm muscles
        RoundCone(_t(el), _t(wr), 0.034, 0.027, (0.0, 1.0, 0.0), 0.70),  # radius / ulna
    )
    return Blend(parts, 0.028)


def _left_hand() -> Node:
    """Flat left hand: palm (rounded box), thenar and hypothenar pads, five tapered fingers."""
    frame = left_hand_frame()
    wr = _joint("left_wrist")
    along, thumb_side, dorsal = frame
    axes = (_t(along), _t(thumb_side), _t(dorsal))

    def at(a: float, t: float, d: float) -> tuple[float, float, float]:
        return _t(wr + a * along + t * thumb_side + d * dorsal)

    palm = (
        RoundCone(_t(wr - 0.02 * along), at(0.03, -0.006, 0.0), 0.026, 0.028, _t(dorsal), 0.62),  # wrist
        RoundedBox(at(0.056, -0.008, 0.0), (0.036, 0.039, 0.0135), axes, 0.0125),  # palm
        Ellipsoid(
            at(0.036, 0.017, -0.008),
            (0.030, 0.017, 0.013),
            (_t(0.8 * along + 0.6 * thumb_side), _t(-0.6 * along + 0.8 * thumb_side), axes[2]),
        ),  # thenar
        Ellipsoid(at(0.050, -0.033, -0.005), (0.036, 0.012, 0.011), axes),  # hypothenar
    )
    fingers = []
    for finger in FINGERS:
        chain = finger_chain(finger)
        radii = FINGER_RADII[finger]
        direction = (chain[3] - chain[2]) / np.linalg.norm(chain[3] - chain[2])
        ends = [chain[0], chain[1], chain[2], chain[3] - radii[3] * direction]
        segments = [RoundCone(_t(ends[k]), _t(ends[k + 1]), radii[k], radii[k + 1]) for k in range(3)]
        fingers.append(Blend(tuple(segments), 0.004))
    return Blend((Blend(palm, 0.012), *fingers), 0.006)


def _left_leg() -> Node:
    """Thigh with quadriceps, knee, shin with calf, ankle and a foot with heel, arch, ball and toes."""
    hip, knee, ankle, ball = (_joint(n) for n in ("left_hip", "left_knee", "left_ankle", "left_foot"))
    floor = FLOOR_Y
    leg = (
        RoundCone(_t(hip), _t(knee), 0.086, 0.050),  # femur
        Ellipsoid(_t(0.5 * (hip + knee) + [0.004, 0.035, 0.022]), (0.068, 0.175, 0.068)),  # quadriceps
        Ellipsoid(_t(knee + [0.0, 0.0, 0.006]), (0.047, 0.052, 0.051)),  # knee
        RoundCone(_t(knee), _t(ankle), 0.046, 0.031),  # tibia
        Ellipsoid(_t(knee + [-0.003, -0.135, -0.026]), (0.050, 0.105, 0.050)),  # calf
        Ellipsoid(_t(ankle), (0.035, 0.030, 0.031)),  # malleoli
    )
    x = ball[0]
    foot = (
        Ellipsoid((ankle[0], floor + 0.036, ankle[2] - 0.034), (0.031, 0.036, 0.040)),  # heel
        RoundCone(
            _t(ankle + [0, -0.005, 0.01]), (x - 0.010, floor + 0.040, ball[2] - 0.03), 0.031, 0.025
        ),  # instep
        RoundCone(
            (ankle[0] - 0.006, floor + 0.030, ankle[2] - 0.03),
            (x - 0.026, floor + 0.019, ball[2] + 0.004),
            0.026,
            0.019,
        ),  # medial arch to first metatarsal head
        RoundCone(
            (ankle[0] + 0.010, floor + 0.022, ankle[2] - 0.03),
            (x + 0.028, floor + 0.016, ball[2] - 0.016),
            0.020,
            0.016,
        ),  # lateral border to fifth metatarsal head
        Ellipsoid((x - 0.001, floor + 0.022, ball[2] - 0.004), (0.045, 0.021, 0.030)),  # ball of the foot
        RoundCone(
            (x - 0.024, floor + 0.014, ball[2] + 0.012),
            (x - 0.022, floor + 0.012, ball[2] + 0.052),
            0.0135,
            0.0115,
        ),  # big toe
        Ellipsoid((x + 0.014, floor + 0.011, ball[2] + 0.030), (0.030, 0.011, 0.026)),  # small toes
    )
    return Blend((Blend(leg, 0.03), Blend(foot, 0.018)), 0.02)


def body_field_tree() -> Node:
    """The whole body as one smooth union: torso, head and neck, two arms, hands and legs."""
    arm, hand, leg = _left_arm(), _left_hand(), _left_leg()
    arm_and_hand = Blend((arm, hand), 0.012)
    return Blend(
        (
            _torso(),
            _head(),
            arm_and_hand,
            mirror_node(arm_and_hand),
            leg,
            mirror_node(leg),
        ),
        0.035,
    )
