"""The skeleton model the captioners pose: `body.skeleton.Skeleton` behind a body-model-like call.

The captioners need the 55 skeleton joints of the mean-shape body, never its vertices; the joints-only
forward kinematics of `poseembroider.body.skeleton` gives them ~100x faster than `BodyModel.forward`.
`SkeletonModel(body_model)` is a drop-in for `caption_coordinates(poses, body_model)`: it is called like
a `BodyModel` and returns an output whose `joints` are the (B, 55, 3) skeleton joints.
"""

from __future__ import annotations

import torch

from poseembroider.body.body_model import BodyModel, BodyModelOutput
from poseembroider.body.skeleton import Skeleton

__all__ = ["SkeletonModel", "skeleton_model"]


class SkeletonModel(torch.nn.Module):
    """Mean-shape skeleton of a `BodyModel`: forward kinematics only (no vertices, no translation)."""

    def __init__(self, body_model: BodyModel):
        super().__init__()
        self.skeleton = Skeleton(body_model)

    @torch.no_grad()
    def forward(self, poses: torch.Tensor) -> BodyModelOutput:
        """Pose the skeleton: (B, 22 | 52 | 55, 3) axis-angles -> output with `joints` (B, 55, 3)."""
        joints = self.skeleton(poses).joints
        return BodyModelOutput(vertices=joints.new_zeros(joints.shape[0], 0, 3), joints=joints)


_CACHE: dict[int, tuple[BodyModel, SkeletonModel]] = {}


def skeleton_model(body_model: BodyModel | SkeletonModel | torch.nn.Module) -> torch.nn.Module:
    """The (cached) `SkeletonModel` of a `BodyModel`. A `SkeletonModel`, or any other module called
    like a body model (poses -> output with `joints`), is returned as is."""
    if not isinstance(body_model, BodyModel):
        return body_model
    cached = _CACHE.get(id(body_model))
    if cached is None or cached[0] is not body_model:
        cached = (body_model, SkeletonModel(body_model))
        _CACHE.clear()  # one body model per process in practice; never keep stale ones alive
        _CACHE[id(body_model)] = cached
    return cached[1]
