"""Browse single-element datasets (BEDLAM-Script format, synthetic or real):

    streamlit run src/poseembroider/datasets/visualize_dataset_script.py

Choose a dataset, split and index; see the image crop, the body rendered from a chosen viewpoint (or as
the camera saw it) and every text of the element.
"""

from __future__ import annotations

import streamlit as st

from poseembroider import config
from poseembroider.datasets.discovery import available_datasets
from poseembroider.datasets.visualization import image_to_uint8, pose_image
from poseembroider.datasets.visualize_common import body_and_renderer, load_dataset


def main() -> None:
    st.set_page_config(page_title="PoseEmbroider: dataset browser", layout="wide")
    st.title("Single-element dataset browser")
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if not d.is_pairs]
    if not found:
        st.warning(f"No dataset cache in {config.DATA_CACHE_DIR}. Run `poseembroider data synth` or `make quickstart`.")
        return
    names = sorted({d.name for d in found})
    name = st.selectbox("Dataset", names, key="dataset")
    split = st.selectbox("Split", sorted({d.split for d in found if d.name == name}), key="split")
    dataset = load_dataset(name, split)
    index = st.number_input("Index (farthest-point-sampling order)", 0, len(dataset) - 1, 0, key="index")
    azimuth = st.slider("Viewpoint (degrees around the body)", -180, 180, 0, step=20, key="azimuth")
    camera_view = st.checkbox("Show the body as the camera saw it", key="camera_view")
    item = dataset[int(index)]
    data_id = item["data_ids"]
    st.caption(f"data id {data_id}  ·  {len(dataset)} elements")
    body, renderer = body_and_renderer()
    left, right = st.columns(2)
    left.image(image_to_uint8(item["images"]), caption="image crop (256x192)")
    cam_rot = item["cam_rot"] if camera_view else None
    right.image(pose_image(body, renderer, item["poses"], item["shapes"], azimuth, cam_rot), caption="pose")
    st.subheader("Texts")
    for k, text in enumerate(dataset._texts[data_id]):
        st.markdown(f"**{k}.** {text}")


main()
