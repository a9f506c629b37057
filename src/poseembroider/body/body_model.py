"""The SMPL-X body model used everywhere in the toolkit: a thin shell over `smplx.SMPLX`.

Neutral gender, flat hand mean, no hand PCA (the original's settings). `smplx` models keep default
parameters sized for the batch size they were built with and fail on other batch sizes (expression,
jaw, eye and hand parameters are not expanded); `BodyModel.forward` therefore passes every parameter
explicitly, sized to the input batch, so one instance serves any batch size.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from torch import nn

from poseembroider import config
from poseembroider.body.joints import NUM_BODY_JOINTS, NUM_JOINTS
from poseembroider.body.model_file import BodyModelFile, locate_model_file, model_file_in, open_model_file

logger = logging.getLogger(__name__)

NUM_HAND_JOINTS = 15
NUM_EXPRESSION_COEFFS = 10
# accepted pose layouts: joints -> slices of (global, body, jaw, leye, reye, left hand, right hand)
_POSE_JOINT_COUNTS = (NUM_BODY_JOINTS, 52, NUM_JOINTS)


@dataclass
class BodyModelOutput:
    """Posed body. `vertices` (B, V, 3); `joints` (B, 127, 3): 55 skeleton joints, 21 vertex joints
    (nose, eyes, ears, toes, heels, fingertips), 51 face landmarks; all in metres, model frame."""

    vertices: torch.Tensor
    joints: torch.Tensor

    @property
    def skeleton_joints(self) -> torch.Tensor:
        """(B, 55, 3) joints of the kinematic tree."""
        return self.joints[:, :NUM_JOINTS]

    @property
    def body_joints(self) -> torch.Tensor:
        """(B, 22, 3) pelvis and the 21 body joints."""
        return self.joints[:, :NUM_BODY_JOINTS]


def as_joint_poses(poses: torch.Tensor, name: str = "poses") -> torch.Tensor:
    """Validate and reshape axis-angle poses to (B, J, 3) with J in {22, 52, 55}.

    Accepts (B, J, 3) or flat (B, 3J). Raises ValueError naming `name`, the expected and the received
    shape, or the presence of NaN/inf.
    """
    if not isinstance(poses, torch.Tensor):
        poses = torch.as_tensor(np.asarray(poses))
    expected = "(B, 22|52|55, 3) axis-angles or flat (B, 66|156|165)"
    if poses.dim() == 2 and poses.shape[1] % 3 == 0 and poses.shape[1] // 3 in _POSE_JOINT_COUNTS:
        poses = poses.reshape(poses.shape[0], -1, 3)
    if poses.dim() != 3 or poses.shape[2] != 3 or poses.shape[1] not in _POSE_JOINT_COUNTS:
        raise ValueError(f"{name}: expected {expected}, got shape {tuple(poses.shape)}")
    if not torch.isfinite(poses).all():
        bad = (~torch.isfinite(poses)).any(dim=-1).nonzero()[:3].tolist()
        raise ValueError(f"{name}: contains NaN or inf values (first [sample, joint] entries: {bad})")
    return poses


class BodyModel(nn.Module):
    """SMPL-X forward kinematics + skinning for any batch size.

    Args:
        model_file: a checked model file (`locate_model_file()` by default: the licensed SMPL-X file
            when configured, else the procedural one).
        num_betas: shape coefficients used (10 in the original).
    """

    def __init__(self, model_file: BodyModelFile | None = None, num_betas: int = config.NB_SHAPE_COEFFS):
        super().__init__()
        self.model_file = locate_model_file() if model_file is None else model_file
        logger.info("body model: %s", self.model_file.description)
        self.num_betas = num_betas
        # smplx prints a warning about "only 10 shape coefficients" on every load: keep it off stdout
        with contextlib.redirect_stdout(io.StringIO()):
            self.smplx = self._build_smplx(num_betas)
        for p in self.smplx.parameters():  # default parameters are never used: inputs are passed explicitly
            p.requires_grad_(False)

    def _build_smplx(self, num_betas: int) -> smplx.SMPLX:
        return smplx.SMPLX(
            model_path=str(self.model_file.loadable_path),
            gender="neutral",
            num_betas=num_betas,
            num_expression_coeffs=NUM_EXPRESSION_COEFFS,
            use_pca=False,
            flat_hand_mean=True,
            batch_size=1,
        )

    @classmethod
    def from_directory(cls, model_dir: str | Path, num_betas: int = config.NB_SHAPE_COEFFS) -> BodyModel:
        """Load `model_dir/smplx/SMPLX_NEUTRAL.npz` (or a direct path to such a file)."""
        path = Path(model_dir)
        return cls(open_model_file(path if path.suffix == ".npz" else model_file_in(path)), num_betas)

    @property
    def kind(self) -> str:
        """'smplx' for the licensed model, 'procedural' for the toolkit's own."""
        return self.model_file.kind

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 triangle indices."""
        return np.asarray(self.smplx.faces, dtype=np.int64)

    @property
    def num_vertices(self) -> int:
        return int(self.smplx.v_template.shape[0])

    def forward(
        self,
        poses: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> BodyModelOutput:
        """Pose the body.

        Args:
            poses: axis-angles (B, 22, 3) (global orientation + 21 body joints; hands flat),
                (B, 52, 3) (+ 15 left- and 15 right-hand joints, the stored format),
                (B, 55, 3) (full SMPL-X order with jaw and eyes), or the flat (B, 3J) equivalents.
            betas: (B, n) shape coefficients, n <= num_betas (zero-padded); None = mean shape.
            transl: (B, 3) root translation; None = 0.
        """
        poses = as_joint_poses(poses)
        batch, num_joints = poses.shape[:2]
        ref = self.smplx.v_template
        poses = poses.to(device=ref.device, dtype=ref.dtype)
        zeros3 = poses.new_zeros(batch, 3)
        hands_l = poses.new_zeros(batch, NUM_HAND_JOINTS * 3)
        hands_r = poses.new_zeros(batch, NUM_HAND_JOINTS * 3)
        jaw, leye, reye = zeros3, zeros3, zeros3
        if num_joints == 52:
            hands_l = poses[:, 22:37].reshape(batch, -1)
            hands_r = poses[:, 37:52].reshape(batch, -1)
        elif num_joints == NUM_JOINTS:
            jaw, leye, reye = poses[:, 22], poses[:, 23], poses[:, 24]
            hands_l = poses[:, 25:40].reshape(batch, -1)
            hands_r = poses[:, 40:55].reshape(batch, -1)
        out = self.smplx(
            global_orient=poses[:, 0],
            body_pose=poses[:, 1:NUM_BODY_JOINTS].reshape(batch, -1),
            left_hand_pose=hands_l,
            right_hand_pose=hands_r,
            jaw_pose=jaw,
            leye_pose=leye,
            reye_pose=reye,
            betas=self._batch_param(betas, batch, self.num_betas, "betas"),
            expression=poses.new_zeros(batch, NUM_EXPRESSION_COEFFS),
            transl=self._batch_param(transl, batch, 3, "transl"),
            return_verts=True,
        )
        return BodyModelOutput(vertices=out.vertices, joints=out.joints)

    def _batch_param(self, value: torch.Tensor | None, batch: int, width: int, name: str) -> torch.Tensor:
        ref = self.smplx.v_template
        if value is None:
            return ref.new_zeros(batch, width)
        value = torch.as_tensor(value, device=ref.device, dtype=ref.dtype)
        if value.dim() != 2 or value.shape[0] != batch or value.shape[1] > width:
            raise ValueError(f"{name}: expected ({batch}, <= {width}) for a batch of {batch}, got {tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{name}: contains NaN or inf values")
        if value.shape[1] < width:
            value = torch.cat([value, value.new_zeros(batch, width - value.shape[1])], dim=1)
        return value
