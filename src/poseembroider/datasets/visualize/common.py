"""Streamlit pieces shared by the apps: the dataset browsers of this folder, the retrieval and PoseVAE demos.

Cached resources (one body model and renderer, one dataset object per split and server process) and the
widgets every app shows the same way: the dataset and split pickers (held-out splits first) and the
viewpoint slider (reaching the side views).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from poseembroider.datasets.discovery import AvailableDataset
from poseembroider.datasets.registry import get_dataset
from poseembroider.datasets.visualization import AZIMUTH_RANGE, AZIMUTH_STEP, RENDER_HW, order_splits


@st.cache_resource
def body_and_renderer():
    """One body model and one offscreen renderer per server process."""
    from poseembroider.body.body_model import BodyModel
    from poseembroider.rendering import create_renderer

    return BodyModel().eval(), create_renderer(RENDER_HW[1], RENDER_HW[0])


@st.cache_resource
def load_dataset(name: str, split: str):
    """The dataset with every modality, evaluation image processing and the first text of each element."""
    return get_dataset(name, split, item_format="ipt", caption_selection=0)


def choose_dataset_and_split(
    found: Sequence[AvailableDataset],
    preferred: str | None = None,
    preferred_split: str | None = None,
    split_label: str = "Split",
    columns: bool = False,
) -> tuple[str, str]:
    """(name, split) picked among `found` (not empty), opening on `preferred` / `preferred_split` when they
    exist, else on the first name and the first of `order_splits` (val, test, then train). Widget keys:
    "dataset", "split"."""
    names = sorted({d.name for d in found})
    left, right = st.columns(2) if columns else (st, st)
    name = left.selectbox("Dataset", names, index=names.index(preferred) if preferred in names else 0, key="dataset")
    splits = order_splits(d.split for d in found if d.name == name)
    index = splits.index(preferred_split) if preferred_split in splits else 0
    return name, right.selectbox(split_label, splits, index=index, key="split")


def viewpoint_slider(container=st) -> int:
    """Azimuth of the rendered bodies in degrees (0: front, 90 and -90: the sides); widget key "azimuth"."""
    low, high = AZIMUTH_RANGE
    return int(container.slider("Viewpoint (degrees around the body)", low, high, 0, step=AZIMUTH_STEP, key="azimuth"))
