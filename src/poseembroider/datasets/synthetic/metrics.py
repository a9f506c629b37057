"""Pose-set metrics: MPJPE diversity and realism, farthest-point sampling, and posture detectors.

All functions take body joints (N, 22, 3) in metres in the SMPL-X frame (y up; e.g. `BodyModel(...).body_joints`
or `BodySkeleton(...).joints`). The MPJPE functions compare poses, not placements: by default they first move
the pelvis to the origin and turn each body about the vertical so that its hips face +z
(`normalize_joints`), keeping tilts (a lying body stays lying). Distances are returned in millimetres.

Memory stays bounded for any N: pairwise distances are computed in blocks of `chunk_size` rows x columns.
"""

from __future__ import annotations

import math

import torch

from poseembroider.body.joints import JOINT_INDEX, NUM_BODY_JOINTS

__all__ = [
    "CATEGORY_DETECTORS",
    "detect_arms_above_head",
    "detect_categories",
    "detect_kneeling",
    "detect_lying",
    "detect_sitting",
    "detect_upside_down",
    "farthest_point_sampling",
    "mean_pairwise_mpjpe",
    "mpjpe_matrix",
    "nearest_neighbour_mpjpe",
    "normalize_joints",
]

_J = JOINT_INDEX


def _check_joints(joints: torch.Tensor, name: str) -> torch.Tensor:
    joints = torch.as_tensor(joints)
    if joints.dim() != 3 or joints.shape[-1] != 3:
        raise ValueError(f"{name}: expected (N, J, 3) joint positions, got shape {tuple(joints.shape)}")
    return joints if joints.is_floating_point() else joints.float()


def normalize_joints(joints: torch.Tensor) -> torch.Tensor:
    """(N, 22+, 3) joints -> pelvis-centred, heading-normalised joints (same shape).

    The rotation about y brings the horizontal part of the hip line (right hip -> left hip) onto +x, so the body
    faces +z. When the hip line is nearly vertical (a body lying on its side) the heading comes from the trunk
    instead: the horizontal part of pelvis -> neck is turned onto +z.
    """
    joints = _check_joints(joints, "joints")
    centred = joints - joints[:, :1]
    hip = joints[:, _J["left_hip"]] - joints[:, _J["right_hip"]]
    trunk = joints[:, _J["neck"]] - joints[:, _J["pelvis"]]
    hip_h = torch.stack([hip[:, 0], hip[:, 2]], dim=-1)
    # fallback: (t_z, -t_x) is the trunk's horizontal direction turned by -90°; bringing it onto +x brings the
    # trunk onto +z
    trunk_h = torch.stack([trunk[:, 2], -trunk[:, 0]], dim=-1)
    use_hip = hip_h.norm(dim=-1) > 0.3 * hip.norm(dim=-1).clamp(min=1e-9)
    heading = torch.where(use_hip[:, None], hip_h, trunk_h)
    phi = torch.atan2(heading[:, 1], heading[:, 0])
    c, s = torch.cos(phi), torch.sin(phi)
    # Ry(phi) maps (cos phi, 0, sin phi) onto +x
    x, y, z = centred.unbind(-1)
    return torch.stack([c[:, None] * x + s[:, None] * z, y, -s[:, None] * x + c[:, None] * z], dim=-1)


def mpjpe_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(A, J, 3) x (B, J, 3) -> (A, B) mean per-joint position error, in the inputs' unit (no normalisation)."""
    return (a[:, None] - b[None]).norm(dim=-1).mean(dim=-1)


def _prepare(joints: torch.Tensor, name: str, normalize: bool) -> torch.Tensor:
    joints = _check_joints(joints, name)[:, :NUM_BODY_JOINTS]
    return normalize_joints(joints) if normalize else joints


def mean_pairwise_mpjpe(joints: torch.Tensor, normalize: bool = True, chunk_size: int = 256) -> float:
    """Mean MPJPE (mm) over all unordered pairs of the N poses (N >= 2): the diversity of a pose set."""
    x = _prepare(joints, "joints", normalize)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"joints: need at least 2 poses for pairwise distances, got {n}")
    total = torch.zeros((), dtype=torch.float64)
    for i in range(0, n, chunk_size):
        for j in range(i, n, chunk_size):
            block = mpjpe_matrix(x[i : i + chunk_size], x[j : j + chunk_size]).double()
            if i == j:
                block = torch.triu(block, diagonal=1)
            total += block.sum()
    return float(total / (n * (n - 1) / 2) * 1000.0)


def nearest_neighbour_mpjpe(
    query_joints: torch.Tensor,
    reference_joints: torch.Tensor,
    normalize: bool = True,
    chunk_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query pose, the MPJPE (mm) to its nearest reference pose and that pose's index.

    Returns (distances (Q,) float, indices (Q,) long). References are scanned `chunk_size` at a time, so memory
    is O(Q x chunk_size x J) whatever the number of references.
    """
    q = _prepare(query_joints, "query_joints", normalize)
    r = _prepare(reference_joints, "reference_joints", normalize)
    if q.shape[1:] != r.shape[1:]:
        raise ValueError(f"query_joints {tuple(q.shape)} and reference_joints {tuple(r.shape)}: joint counts differ")
    if r.shape[0] == 0:
        raise ValueError("reference_joints: empty")
    best = torch.full((q.shape[0],), math.inf, dtype=q.dtype)
    index = torch.zeros(q.shape[0], dtype=torch.long)
    for start in range(0, r.shape[0], chunk_size):
        dist, arg = mpjpe_matrix(q, r[start : start + chunk_size]).min(dim=1)
        better = dist < best
        best = torch.where(better, dist, best)
        index = torch.where(better, arg + start, index)
    return best * 1000.0, index


def farthest_point_sampling(
    features: torch.Tensor, k: int, seed_index: int = 0, distance: str = "mpjpe"
) -> torch.Tensor:
    """Greedy farthest-point subset: k distinct row indices (k,) long of `features` (N, D), starting at
    `seed_index`; each next row is the one farthest from the rows chosen so far. O(N k D) time, O(N) memory.

    `distance="mpjpe"` reads each row as D / 3 joints (flattened (J, 3) coordinates) and uses the mean per-joint
    distance (so subsets match the MPJPE diversity measure); `"euclidean"` uses the plain L2 distance.
    """
    x = torch.as_tensor(features)
    if x.dim() != 2:
        raise ValueError(f"features: expected (N, D), got shape {tuple(x.shape)}")
    n = x.shape[0]
    if not 0 < k <= n:
        raise ValueError(f"k: expected 1 <= k <= N = {n}, got {k}")
    if not 0 <= seed_index < n:
        raise ValueError(f"seed_index: expected 0 <= seed_index < {n}, got {seed_index}")
    if distance == "mpjpe":
        if x.shape[1] % 3:
            raise ValueError(
                f"features: distance='mpjpe' needs D divisible by 3 (flattened joints), got D = {x.shape[1]}"
            )
        # (3, J, N): each step's distances are whole-row operations (no reductions over short axes)
        coords = x.reshape(n, -1, 3).float().permute(2, 1, 0).contiguous()
    elif distance == "euclidean":
        coords = x.float().T.contiguous()[:, None]  # (D, 1, N)
    else:
        raise ValueError(f"distance: expected 'mpjpe' or 'euclidean', got {distance!r}")
    buffer = torch.empty_like(coords)

    def dist_to(i: int) -> torch.Tensor:
        torch.sub(coords, coords[..., i : i + 1], out=buffer)
        buffer.mul_(buffer)
        return buffer.sum(dim=0).sqrt_().mean(dim=0)

    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = seed_index
    min_dist = dist_to(seed_index)
    min_dist[seed_index] = -1.0
    for step in range(1, k):
        nxt = int(torch.argmax(min_dist))
        chosen[step] = nxt
        torch.minimum(min_dist, dist_to(nxt), out=min_dist)
        min_dist[nxt] = -1.0  # the chosen rows keep -1: every distance is >= 0
    return chosen


# ----------------------------------------------------------------------------------------------------
# posture detectors (world frame, y up; heading does not matter)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def _trunk_up(joints: torch.Tensor) -> torch.Tensor:
    """Vertical component of the unit trunk axis (pelvis -> neck): 1 upright, 0 horizontal, -1 upside down."""
    return _unit(joints[:, _J["neck"]] - joints[:, _J["pelvis"]])[:, 1]


def _thighs(joints: torch.Tensor) -> torch.Tensor:
    """(N, 2, 3) unit thigh directions (hip -> knee), left then right."""
    hips = joints[:, [_J["left_hip"], _J["right_hip"]]]
    knees = joints[:, [_J["left_knee"], _J["right_knee"]]]
    return _unit(knees - hips)


def detect_lying(joints: torch.Tensor) -> torch.Tensor:
    """(N, 22+, 3) -> (N,) bool: trunk within 30° of horizontal and no thigh pointing steeply down (more than
    45° below horizontal), so that bending forward over the legs or a one-leg balance is not lying, while a
    push-up plank or lying with bent knees is."""
    joints = _check_joints(joints, "joints")
    legs_down = (_thighs(joints)[..., 1] < -math.sin(math.radians(45.0))).any(dim=1)
    return (_trunk_up(joints).abs() < math.sin(math.radians(30.0))) & ~legs_down


def detect_upside_down(joints: torch.Tensor) -> torch.Tensor:
    """(N, 22+, 3) -> (N,) bool: trunk pointing down, within 45° of the downward vertical."""
    return _trunk_up(_check_joints(joints, "joints")) < -math.cos(math.radians(45.0))


def detect_arms_above_head(joints: torch.Tensor) -> torch.Tensor:
    """(N, 22+, 3) -> (N,) bool: trunk upright (within 50° of vertical) and both wrists above the top of the
    head, estimated as the head joint (the skull base) plus 1.5 neck lengths (hands resting on the head do not
    count)."""
    joints = _check_joints(joints, "joints")
    head = joints[:, _J["head"]]
    top_y = head[:, 1] + 1.5 * (head - joints[:, _J["neck"]]).norm(dim=-1)
    wrists_up = (joints[:, _J["left_wrist"], 1] > top_y) & (joints[:, _J["right_wrist"], 1] > top_y)
    return wrists_up & (_trunk_up(joints) > math.cos(math.radians(50.0)))


def detect_sitting(joints: torch.Tensor) -> torch.Tensor:
    """(N, 22+, 3) -> (N,) bool: trunk within 50° of vertical, both thighs within 35° of horizontal and the hips
    flexed 50-130° (angle between trunk and thigh). Seated postures on a chair or on the ground; deep squats
    with horizontal thighs also match (the seat is not seen)."""
    joints = _check_joints(joints, "joints")
    trunk = _unit(joints[:, _J["neck"]] - joints[:, _J["pelvis"]])
    thighs = _thighs(joints)
    horizontal = (thighs[..., 1].abs() < math.sin(math.radians(35.0))).all(dim=1)
    # hip flexion = 180° - angle(trunk, thigh): 90° when the thigh is perpendicular to the trunk
    cos_trunk_thigh = (thighs * trunk[:, None]).sum(-1)
    flexed = (cos_trunk_thigh.abs() < math.cos(math.radians(50.0))).all(dim=1)
    return horizontal & flexed & (trunk[:, 1] > math.cos(math.radians(50.0)))


def detect_kneeling(joints: torch.Tensor) -> torch.Tensor:
    """(N, 22+, 3) -> (N,) bool: trunk within 50° of vertical and a knee within 12 cm of the lowest joint (the
    floor) with its thigh pointing down (more than 17° below horizontal, unlike cross-legged sitting)."""
    joints = _check_joints(joints, "joints")
    floor = joints[:, :NUM_BODY_JOINTS, 1].min(dim=1).values
    knees_y = joints[:, [_J["left_knee"], _J["right_knee"]], 1]
    thigh_down = _thighs(joints)[..., 1] < -0.3
    kneel = ((knees_y - floor[:, None] < 0.12) & thigh_down).any(dim=1)
    return kneel & (_trunk_up(joints) > math.cos(math.radians(50.0)))


CATEGORY_DETECTORS = {
    "sitting": detect_sitting,
    "kneeling": detect_kneeling,
    "lying": detect_lying,
    "arms_above_head": detect_arms_above_head,
    "upside_down": detect_upside_down,
}
"""Category name -> detector on (N, 22+, 3) world-frame joints."""


def detect_categories(joints: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every detector of `CATEGORY_DETECTORS` on (N, 22+, 3) joints -> {name: (N,) bool}."""
    return {name: detector(joints) for name, detector in CATEGORY_DETECTORS.items()}
