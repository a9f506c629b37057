"""Streamlit resources shared by the dataset browsers (`visualize_dataset_script.py`, `visualize_dataset_fix.py`)."""

from __future__ import annotations

import streamlit as st

from poseembroider.datasets.registry import get_dataset


@st.cache_resource
def body_and_renderer():
    """One body model and one offscreen renderer per browser session."""
    from poseembroider.body.body_model import BodyModel
    from poseembroider.rendering import create_renderer

    return BodyModel().eval(), create_renderer(240, 320)


@st.cache_resource
def load_dataset(name: str, split: str):
    """The dataset with every modality, evaluation image processing and the first text of each element."""
    return get_dataset(name, split, item_format="ipt", caption_selection=0)
