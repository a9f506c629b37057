"""Pure geometry over batched torch tensors: the bottom layer of the toolkit (imports only torch).

- `rotations`: axis-angle, rotation matrices, 6D (first two matrix columns), quaternions (w, x, y, z), Euler
  angles (scipy convention strings), geodesic distance, uniform random rotations.
- `procrustes`: similarity (Umeyama) alignment, as used by PA-MPJPE.
- `pose_normalization`: the original's global-orientation normalisations (BEDLAM hips-face-front about y,
  AMASS/PoseFix zero z Euler angle) and the y-up <-> z-up frame change.
- `flip`: left/right mirroring of axis-angle poses and of points.
- `rotation_mean`: chordal L2 mean of rotations, projection onto SO(3).

Every function accepts any leading batch dims, float32 or float64, on any device, and raises ValueError naming
the argument and the expected shape on bad input.
"""

from poseembroider.geometry.flip import flip_left_right, flip_points_left_right
from poseembroider.geometry.pose_normalization import (
    normalize_global_orient_amass,
    normalize_global_orient_bedlam,
    rotate_global_orient,
    y_up_to_z_up,
    z_up_to_y_up,
)
from poseembroider.geometry.procrustes import ProcrustesResult, procrustes_align
from poseembroider.geometry.rotation_mean import (
    chordal_mean,
    chordal_mean_axis_angle,
    project_to_rotation_matrix,
)
from poseembroider.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    axis_rotation_matrix,
    compose_axis_angle,
    euler_to_matrix,
    geodesic_distance,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_rotation_matrices,
    rot6d_to_matrix,
)

__all__ = [
    "ProcrustesResult",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "axis_rotation_matrix",
    "chordal_mean",
    "chordal_mean_axis_angle",
    "compose_axis_angle",
    "euler_to_matrix",
    "flip_left_right",
    "flip_points_left_right",
    "geodesic_distance",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "normalize_global_orient_amass",
    "normalize_global_orient_bedlam",
    "procrustes_align",
    "project_to_rotation_matrix",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "random_rotation_matrices",
    "rot6d_to_matrix",
    "rotate_global_orient",
    "y_up_to_z_up",
    "z_up_to_y_up",
]
