"""`PosedBody`: one posed body in the world, the input of every scene function.

The sampler, the framing and the renderer all take the same body, so it is converted once here
(float32 vertices as OpenGL wants them, float64 joints for the projections, int64 faces; torch tensors
accepted) and its shapes are checked when it is made: a wrong tensor fails at construction, naming the
field, rather than deep inside a render.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poseembroider.body.joints import NUM_BODY_JOINTS

__all__ = ["NUM_BODY_JOINTS", "PosedBody"]


@dataclass(frozen=True, eq=False)
class PosedBody:
    """One posed body in the world (SMPL-X frame, metres).

    Attributes:
        vertices: (V, 3) posed vertices.
        joints: (J >= 22, 3) posed joints (SMPL-X order; the first 22 are the body joints).
        faces: (F, 3) triangles.
        global_orient: (3,) axis-angle global orientation of the forward pass.
        transl: (3,) translation of the forward pass (default 0).
    """

    vertices: np.ndarray
    joints: np.ndarray
    faces: np.ndarray
    global_orient: np.ndarray
    transl: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        def arr(value, dtype):
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            return np.asarray(value, dtype=dtype)

        object.__setattr__(self, "vertices", arr(self.vertices, np.float32))
        object.__setattr__(self, "joints", arr(self.joints, np.float64))
        object.__setattr__(self, "faces", arr(self.faces, np.int64))
        object.__setattr__(self, "global_orient", arr(self.global_orient, np.float64).reshape(3))
        object.__setattr__(self, "transl", arr(self.transl, np.float64).reshape(3))
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices: expected (V, 3), got {self.vertices.shape}")
        if self.joints.ndim != 2 or self.joints.shape[0] < NUM_BODY_JOINTS or self.joints.shape[1] != 3:
            raise ValueError(f"joints: expected (>= 22, 3), got {self.joints.shape}")

    @classmethod
    def from_output(cls, output, index: int, faces: np.ndarray, poses, transl=None) -> PosedBody:
        """Body `index` of a `BodyModelOutput` forwarded with `poses` ((B, J, 3) axis-angles; the global
        orientation is poses[index, 0]) and `transl` ((B, 3) or None)."""
        pose = poses[index]
        pose = pose.detach().cpu().numpy() if hasattr(pose, "detach") else np.asarray(pose)
        t = np.zeros(3) if transl is None else transl[index]
        return cls(output.vertices[index], output.joints[index], faces, np.asarray(pose).reshape(-1, 3)[0], t)
