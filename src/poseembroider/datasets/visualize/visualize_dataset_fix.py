"""Browse pair datasets (BEDLAM-Fix format, synthetic or real):

    poseembroider demo dataset-fix [--dataset NAME] [--split val]
    streamlit run src/poseembroider/datasets/visualize/visualize_dataset_fix.py -- [--dataset NAME] [--split val]

Choose a dataset, split (the validation split first) and pair index; see images and poses A and B side by
side and every instruction.
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
    st.set_page_config(page_title="PoseEmbroider: pair browser", layout="wide")
    st.title("Pair dataset browser")
    args, _ = DEMOS["dataset-fix"].parser().parse_known_args(sys.argv[1:])
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if d.is_pairs and d.has_images]
    if not found:
        st.warning(f"No pair dataset cache in {config.DATA_CACHE_DIR}. Run `poseembroider data synth` first.")
        return
    name, split = choose_dataset_and_split(found, args.dataset, args.split)
    dataset = load_dataset(name, split)
    if len(dataset) == 0:
        st.warning("This split holds no pair with an instruction.")
        return
    index = st.number_input("Pair index", 0, len(dataset) - 1, 0, key="index")
    azimuth = viewpoint_slider()
    item = dataset[int(index)]
    ids = f"A = {item['data_ids_A']}, B = {item['data_ids_B']}"
    st.caption(
        f"pair {item['pair_ids']}  ·  {item['sequence_kind']}-sequence  ·  {ids}  ·  {len(dataset)} pairs in {split}"
    )
    body, renderer = body_and_renderer()
    columns = st.columns(4)
    for k, role in enumerate("AB"):
        columns[2 * k].image(image_to_uint8(item[f"images_{role}"]), caption=f"image {role}")
        rendered = pose_image(body, renderer, item[f"poses_{role}"], item[f"shapes_{role}"], azimuth)
        columns[2 * k + 1].image(rendered, caption=f"pose {role}")
    st.subheader("Instructions (A → B)")
    for k, text in enumerate(dataset._texts[item["pair_ids"]]):
        st.markdown(f"**{k}.** {text}")


main()
