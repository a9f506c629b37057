"""Streamlit pieces shared by the apps: the dataset browsers of this folder, the retrieval and PoseVAE demos.

Cached resources (one body model and renderer, one dataset object per split and server process) and the
widgets every app shows the same way: the dataset and split pickers (held-out splits first), the sample
picker (by index or data id), the text box that follows the chosen sample, the occlusion sliders (whole
16-px patches of the crop) and the viewpoint slider (reaching the side views).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from poseembroider.datasets.discovery import AvailableDataset
from poseembroider.datasets.registry import get_dataset
from poseembroider.datasets.visualization import AZIMUTH_RANGE, AZIMUTH_STEP, RENDER_HW, order_splits
from poseembroider.demo_core_helpers import PATCH_GRID, PATCH_SIZE


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


@st.cache_resource
def index_of_ids(dataset_name: str, split: str, _dataset) -> dict[int, int]:
    """data id -> dataset index, once per (dataset, split) and server process."""
    return {int(data_id): index for index, data_id in enumerate(_dataset.data_ids)}


def choose_sample(dataset, ids: dict[int, int]) -> int | None:
    """Dataset index of a sample chosen by index or data id (`ids`: `index_of_ids`); None and an error
    message for an unknown id. Widget keys: "select_by", "index", "data_id"."""
    left, right = st.columns(2)
    select_by = left.radio("Select the sample by", ("index", "data id"), horizontal=True, key="select_by")
    if select_by == "index":
        return int(right.number_input(f"Index (0 to {len(dataset) - 1})", 0, len(dataset) - 1, 0, key="index"))
    data_id = int(right.number_input("Data id", 0, value=int(dataset.data_ids[0]), key="data_id"))
    if data_id not in ids:
        st.error(f"No sample with data id {data_id} in this split; for example: {list(dataset.data_ids[:8])}")
        return None
    return ids[data_id]


def follow_the_sample(
    sample: tuple[str, str, int], caption: str, text_key: str = "input_text", sample_key: str = "input_text_sample"
) -> None:
    """Put `caption` in the text box of key `text_key` when the chosen `sample` (dataset, split, data id) is
    not the one the box was filled for. A keyed text area keeps its state and ignores a new `value=`:
    without this the box would keep the first sample's caption for the whole session. The user's edits stay
    until another sample is chosen."""
    if st.session_state.get(sample_key) != sample or text_key not in st.session_state:
        st.session_state[text_key] = caption
        st.session_state[sample_key] = sample


def occlusion_sliders() -> tuple[int, int, int]:
    """(x, y, size) in patches of the square of the crop to black out (`demo_core_helpers.occlude_patches`);
    widget keys "mask_x", "mask_y", "mask_size"."""
    st.markdown(f"**Occlude the image** ({PATCH_SIZE}-pixel patches; size 0 occludes nothing)")
    rows, columns = PATCH_GRID
    x_col, y_col, size_col = st.columns(3)
    x = x_col.slider("x (patches from the left)", 0, columns - 1, 0, key="mask_x")
    y = y_col.slider("y (patches from the top)", 0, rows - 1, 0, key="mask_y")
    size = size_col.slider("size (patches)", 0, max(rows, columns), 0, key="mask_size")
    return x, y, size
