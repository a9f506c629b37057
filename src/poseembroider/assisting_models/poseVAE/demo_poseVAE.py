"""PoseVAE demo: a pose, its reconstruction, and poses sampled from the prior.

    streamlit run src/poseembroider/assisting_models/poseVAE/demo_poseVAE.py -- --model_path <folder|shortname>

The model is taken from, in this order: the sidebar field, `--model_path` after `--`, the URL query
parameter `?model=...`, the environment variable `POSEEMBROIDER_POSEVAE_DEMO_MODEL`, and finally the
shortname `posevae_model_bedlamscript`. Poses come from the packaged CMU mocap poses or from any
single-element dataset in DATA_CACHE_DIR; they are in the models' z-up frame and turned to the
renderer's y-up frame for display.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import streamlit as st
import torch

from poseembroider import config
from poseembroider.assisting_models.poseVAE.reconstruction_metrics import pose_reconstruction_errors
from poseembroider.geometry import axis_angle_to_matrix

MODEL_ENV_VAR = "POSEEMBROIDER_POSEVAE_DEMO_MODEL"
DEFAULT_MODEL = "posevae_model_bedlamscript"
CMU_SOURCE = "CMU mocap poses (packaged)"
RENDER_HW = (320, 240)


def initial_model_path() -> tuple[str, str]:
    """(model path, checkpoint) from argv, the query string or the environment (see module docstring)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model_path", default=None)
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"))
    args, _ = parser.parse_known_args(sys.argv[1:])
    path = args.model_path or st.query_params.get("model") or os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL
    return path, args.checkpoint


@st.cache_resource
def body_and_renderer():
    from poseembroider.body.body_model import BodyModel
    from poseembroider.rendering import create_renderer

    return BodyModel().eval(), create_renderer(RENDER_HW[1], RENDER_HW[0])


@st.cache_resource
def load_model(path: str, checkpoint: str):
    from poseembroider.assisting_models.poseVAE.evaluate_poseVAE import resolve_model_dir
    from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE

    return PoseVAE.from_pretrained(resolve_model_dir(path, checkpoint)).eval()


@st.cache_resource
def load_poses(source: str, split: str, num_body_joints: int):
    """A sequence of (J, 3) z-up poses (dataset or packaged CMU poses)."""
    if source == CMU_SOURCE:
        from poseembroider.data import load_cmu_dev_poses
        from poseembroider.datasets.pose_processing import normalize_poses

        # recorded in the y-up SMPL-X frame with their heading: same normalisation as the datasets
        return normalize_poses(torch.as_tensor(load_cmu_dev_poses()), "bedlam")
    from poseembroider.datasets.registry import get_dataset

    dataset = get_dataset(source, split, item_format="p", num_body_joints=num_body_joints)
    return _DatasetPoses(dataset)


class _DatasetPoses:
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.dataset[index]["poses"]


def render_poses(body, renderer, poses: torch.Tensor, azimuth_deg: float) -> list[np.ndarray]:
    """(N, J, 3) z-up poses -> N (H, W, 3) uint8 renders of the mean-shape body."""
    from poseembroider.datasets.pose_processing import to_render_frame
    from poseembroider.rendering import render_body

    with torch.no_grad():
        vertices = body(to_render_frame(poses)).vertices.numpy()
    return [render_body(renderer, v, body.faces, (azimuth_deg, 10.0), image_size=RENDER_HW) for v in vertices]


def main() -> None:
    st.set_page_config(page_title="PoseEmbroider: PoseVAE", layout="wide")
    st.title("PoseVAE: reconstruction and samples")
    path, checkpoint = initial_model_path()
    path = st.sidebar.text_input("Model (folder or shortname)", value=path, key="model_path")
    checkpoint = st.sidebar.selectbox(
        "Checkpoint (training folders)", ("best", "last"), index=("best", "last").index(checkpoint), key="checkpoint"
    )
    try:
        model = load_model(path, checkpoint)
    except (OSError, KeyError, ValueError) as err:
        st.error(f"Cannot load a PoseVAE from {path!r}: {err}")
        return
    from poseembroider.datasets.discovery import available_datasets

    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if not d.is_pairs]
    source = st.selectbox("Poses", [CMU_SOURCE, *sorted({d.name for d in found})], key="source")
    split = "dev"
    if source != CMU_SOURCE:
        split = st.selectbox("Split", sorted({d.split for d in found if d.name == source}), key="split")
    poses = load_poses(source, split, model.num_body_joints)
    index = st.number_input("Index", 0, len(poses) - 1, 0, key="index")
    n_samples = st.slider("Samples from the prior", 1, 8, 4, key="n_samples")
    seed = st.number_input("Sampling seed", 0, 2**31 - 1, 0, key="seed")
    azimuth = st.slider("Viewpoint (degrees around the body)", -180, 180, 0, step=20, key="azimuth")

    body, renderer = body_and_renderer()
    model.set_body_model(body)
    pose = poses[int(index)][None].float()
    with torch.no_grad():
        rec = model.reconstruct(pose)
        samples = model.sample(int(n_samples), torch.Generator().manual_seed(int(seed)))
        original, posed = body(pose), body(rec["pose_body"])
        errors = pose_reconstruction_errors(
            posed.joints,
            original.joints,
            posed.vertices,
            original.vertices,
            rec["pose_body_matrot"].reshape(1, -1, 3, 3),
            axis_angle_to_matrix(pose),
        )
    images = render_poses(body, renderer, torch.cat([pose, rec["pose_body"], samples["pose_body"]]), azimuth)
    left, right = st.columns(2)
    left.image(images[0], caption="original pose")
    right.image(images[1], caption="reconstruction (decoded posterior mean)")
    st.markdown("Reconstruction error: " + ", ".join(f"{k} **{float(v):.1f}**" for k, v in errors.items()))
    st.subheader("Samples from the prior N(0, I)")
    for column, image in zip(st.columns(int(n_samples)), images[2:], strict=True):
        column.image(image)


main()
