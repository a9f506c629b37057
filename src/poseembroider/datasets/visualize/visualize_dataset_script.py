"""Browse single-element datasets (BEDLAM-Script format, synthetic or real):

    poseembroider demo dataset-script [--dataset NAME] [--split val]
    streamlit run src/poseembroider/datasets/visualize/visualize_dataset_script.py -- [--dataset NAME] [--split val]

Choose a dataset, split (the validation split first) and index; see the image crop, the body rendered from
a chosen viewpoint (or as the camera saw it) and every text of the element.
"""

from __future__ import annotations

import sys

import streamlit as st

from poseembroider import config
from poseembroider.datasets.discovery import available_datasets
from poseembroider.datasets.visualization import image_to_uint8, pose_image
from poseembroider.datasets.visualize.common import (
    body_and_renderer,
    choose_dataset_and_split,
    load_dataset,
    viewpoint_slider,
)
from poseembroider.demos import DEMOS


def main() -> None:
    st.set_page_config(page_title="PoseEmbroider: dataset browser", layout="wide")
    st.title("Single-element dataset browser")
    args, _ = DEMOS["dataset-script"].parser().parse_known_args(sys.argv[1:])
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if not d.is_pairs and d.has_images]
    if not found:
        st.warning(f"No dataset cache in {config.DATA_CACHE_DIR}. Run `poseembroider data synth` or `make quickstart`.")
        return
    name, split = choose_dataset_and_split(found, args.dataset, args.split)
    dataset = load_dataset(name, split)
    index = st.number_input("Index (farthest-point-sampling order)", 0, len(dataset) - 1, 0, key="index")
    azimuth = viewpoint_slider()
    camera_view = st.checkbox("Show the body as the camera saw it", key="camera_view")
    item = dataset[int(index)]
    data_id = item["data_ids"]
    st.caption(f"data id {data_id}  ·  {len(dataset)} elements in {split}")
    body, renderer = body_and_renderer()
    left, right = st.columns(2)
    left.image(image_to_uint8(item["images"]), caption="image crop (256x192)")
    cam_rot = item["cam_rot"] if camera_view else None
    right.image(pose_image(body, renderer, item["poses"], item["shapes"], azimuth, cam_rot), caption="pose")
    st.subheader("Texts")
    for k, text in enumerate(dataset.captions_of(data_id)):
        st.markdown(f"**{k}.** {text}")


main()
