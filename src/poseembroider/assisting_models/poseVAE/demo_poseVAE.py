"""PoseVAE demo: a pose, its reconstruction, and poses sampled from the prior.

    poseembroider demo posevae [--model_path <folder|shortname>] [--dataset NAME] [--split val]
    streamlit run src/poseembroider/assisting_models/poseVAE/demo_poseVAE.py -- [same flags]

The model is taken from, in this order: the sidebar field, `--model_path` after `--`, the URL query
parameter `?model=...`, the environment variable `POSEEMBROIDER_POSEVAE_DEMO_MODEL`, and finally the
quickstart's PoseVAE (`posevae_model_synthscript`), the released one, or the newest registered PoseVAE
(`demos.default_model`). Poses come from the packaged CMU mocap poses or from any single-element dataset
in DATA_CACHE_DIR (its validation split first); they are in the models' z-up frame and turned to the
renderer's y-up frame for display.
"""

from __future__ import annotations

import sys

import streamlit as st
import torch

from poseembroider import config
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE
from poseembroider.assisting_models.poseVAE.reconstruction_metrics import pose_reconstruction_errors
from poseembroider.datasets.discovery import available_datasets
from poseembroider.datasets.visualization import RENDER_HW, pose_image
from poseembroider.datasets.visualize.common import body_and_renderer, choose_dataset_and_split, viewpoint_slider
from poseembroider.demos import (
    MAX_MODEL_NAME_CHARS,
    POSEVAE_MODELS,
    initial_model,
    missing_model_message,
    posevae_parser,
    shown_path,
)
from poseembroider.geometry import axis_angle_to_matrix
from poseembroider.models.pretrained import resolve_model_dir

CMU_SOURCE = "the packaged CMU mocap poses"
DATASET_SOURCE = "a dataset"


@st.cache_resource(show_spinner="Loading the PoseVAE...")
def load_model(path: str, checkpoint: str) -> PoseVAE:
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

    return _DatasetPoses(get_dataset(source, split, item_format="p", num_body_joints=num_body_joints))


class _DatasetPoses:
    """The poses of a dataset as a sequence of (J, 3) tensors."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.dataset[index]["poses"]


def choose_poses(model: PoseVAE, preferred: str | None, preferred_split: str | None):
    """(poses, where they come from): a dataset split (the validation split first) when there is a dataset,
    else or on demand the packaged CMU poses (real mocap, seen by no model)."""
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if not d.is_pairs]
    sources = (DATASET_SOURCE, CMU_SOURCE) if found else (CMU_SOURCE,)
    source = st.radio("Poses from", sources, horizontal=True, key="source")
    if source == CMU_SOURCE:
        return load_poses(CMU_SOURCE, "dev", model.num_body_joints), "CMU mocap"
    name, split = choose_dataset_and_split(found, preferred, preferred_split, columns=True)
    return load_poses(name, split, model.num_body_joints), f"{name} {split}"


def main() -> None:
    st.set_page_config(page_title="PoseEmbroider: PoseVAE", layout="wide")
    st.title("PoseVAE: reconstruction and samples")
    args, _ = posevae_parser().parse_known_args(sys.argv[1:])
    initial = initial_model(POSEVAE_MODELS, args.model_path, st.query_params.get("model")) or ""
    path = st.sidebar.text_input(
        "Model (folder or shortname)", value=initial, key="model_path", max_chars=MAX_MODEL_NAME_CHARS
    )
    checkpoint = st.sidebar.selectbox(
        "Checkpoint (training folders)",
        ("best", "last"),
        index=("best", "last").index(args.checkpoint),
        key="checkpoint",
    )
    if not path:
        st.info(missing_model_message(POSEVAE_MODELS))
        return
    try:
        model = load_model(path, checkpoint)
    except (OSError, KeyError, ValueError) as err:
        st.error(f"Cannot load a PoseVAE from {path!r}: {err}")
        return
    st.sidebar.caption(f"PoseVAE from {shown_path(resolve_model_dir(path, checkpoint))}")
    poses, origin = choose_poses(model, args.dataset, args.split)
    index = st.number_input(f"Index (0 to {len(poses) - 1})", 0, len(poses) - 1, 0, key="index")
    left, middle, right = st.columns(3)
    n_samples = left.slider("Samples from the prior", 1, 8, 4, key="n_samples")
    seed = middle.number_input("Sampling seed", 0, 2**31 - 1, 0, key="seed")
    azimuth = viewpoint_slider(right)

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
    shown = torch.cat([pose, rec["pose_body"], samples["pose_body"]])
    images = [pose_image(body, renderer, p, azimuth_deg=azimuth) for p in shown]
    st.caption(f"pose {int(index)} of {origin}")
    left, right = st.columns(2)  # same width for both: a long caption would stretch its image
    left.image(images[0], caption="original pose", width=RENDER_HW[1])
    right.image(images[1], caption="reconstruction (decoded posterior mean)", width=RENDER_HW[1])
    st.markdown("Reconstruction error: " + ", ".join(f"{k} **{float(v):.1f}**" for k, v in errors.items()))
    st.subheader("Samples from the prior N(0, I)")
    for column, image in zip(st.columns(int(n_samples)), images[2:], strict=True):
        column.image(image)


main()
