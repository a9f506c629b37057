"""Human mesh recovery demo of an HPSEstimator head on the representation (streamlit).

    poseembroider demo pose-estimation [--model_path <folder|shortname>] [--checkpoint best|last] \\
        [--dataset NAME] [--split val] [--device auto] [--server.port 8501]
    streamlit run src/poseembroider/downstream/pose_estimation/demo_pose_estimation.py -- [same flags]

Pick a sample of a dataset split (by index or data id) or upload a PNG/JPG picture of a person (optionally
with a person box x, y, w, h: it is cropped like the datasets); occlude 16-px patches of the crop; type a
description (it starts from the sample's caption). The head regresses the body from x̄ of the image alone
and, when a description is given, of the image and the text (x̄ of each input set comes from the head's
representation model), side by side: each predicted body overlaid on the crop as the camera saw it and
rendered from a chosen viewpoint, the ground truth beside them and the errors of each input set (MPJPE,
PA-MPJPE, PVE in mm, rotation error in degrees, the evaluation's protocol) when the sample comes from a
dataset.

The head predicts no camera (as the original): for a dataset sample, the item's `cam_rot` turns the body to
the camera's view and a weak-perspective fit to the sample's annotated 2D joints places it on the crop; an
uploaded picture has neither, so its bodies are shown from the front only.

The model is taken from, in this order: the sidebar field, `--model_path`, the URL query parameter
`?model=...`, the environment variable `POSEEMBROIDER_HPS_DEMO_MODEL`, and the quickstart's head
(`hpsestimator_model_poseembroider_synthscript`), the released one, or the newest registered
`hpsestimator_model_*` (`demos.default_model`). `?dataset=...` preselects a dataset like `--dataset`.
"""

from __future__ import annotations

import hashlib
import sys

import streamlit as st

from poseembroider import config
from poseembroider.datasets.cache_format import CacheError
from poseembroider.datasets.discovery import available_datasets
from poseembroider.datasets.registry import get_dataset
from poseembroider.datasets.visualization import image_to_uint8, pose_image
from poseembroider.datasets.visualize.common import (
    body_and_renderer,
    choose_dataset_and_split,
    choose_sample,
    follow_the_sample,
    index_of_ids,
    occlusion_sliders,
    viewpoint_slider,
)
from poseembroider.demo_core_helpers import occlude_patches, prepare_uploaded_image
from poseembroider.demos import (
    HPS_MODELS,
    MAX_MODEL_NAME_CHARS,
    initial_model,
    missing_model_message,
    pose_estimation_parser,
    shown_path,
)
from poseembroider.downstream.pose_estimation.demo_helpers import (
    MAX_TEXT_CHARS,
    body_in_camera,
    check_text,
    errors_table,
    fit_weak_perspective,
    load_head,
    overlay_body,
    parse_person_box,
    predict_input_sets,
    sample_errors,
)
from poseembroider.models.pretrained import CheckpointError

SAMPLE_SOURCE, UPLOAD_SOURCE = "a sample of a dataset", "an uploaded picture"
# width in pixels of every picture of the result columns (the crops are drawn at twice their 192 pixels); no
# docstring here: streamlit's "magic" would print a bare string of the script on the page
SHOWN_WIDTH = 288
TEXT_KEY, TEXT_SAMPLE_KEY = "input_text", "input_text_sample"


def initial_settings():
    """The demo's flags (after `--`), with the model and dataset also read from the URL and environment."""
    args, _ = pose_estimation_parser().parse_known_args(sys.argv[1:])
    args.model_path = initial_model(HPS_MODELS, args.model_path, st.query_params.get("model")) or ""
    args.dataset = args.dataset or st.query_params.get("dataset")
    return args


@st.cache_resource(show_spinner="Loading the head and its representation model...")
def cached_head(path: str, checkpoint: str, device: str):
    """(head with its representation model attached, head folder), once per server process."""
    return load_head(path, checkpoint, device)


@st.cache_resource(show_spinner="Loading the dataset...")
def sample_dataset(name: str, split: str):
    """(dataset with images, poses, first captions and, when the images cache has them, the 2D joints in the
    crop (`joints_2d_crop`), whether it has them)."""
    common = {"item_format": "ipt", "caption_selection": 0}
    try:
        return get_dataset(name, split, keypoints_2d=True, **common), True
    except CacheError:  # no 'joints_2d' table: no camera fit
        return get_dataset(name, split, **common), False


def choose_dataset(preferred: str | None, preferred_split: str | None) -> tuple[str, str] | None:
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if not d.is_pairs and d.has_images]
    if not found:
        st.warning(f"No dataset with images in {config.DATA_CACHE_DIR}. Upload a picture, or run `make quickstart`.")
        return None
    return choose_dataset_and_split(found, preferred, preferred_split, columns=True)


def dataset_sample(args):
    """(crop (3, 256, 192), dataset item or None, has 2D joints) of the chosen sample, or None."""
    chosen = choose_dataset(args.dataset, args.split)
    if chosen is None:
        return None
    name, split = chosen
    dataset, has_2d = sample_dataset(name, split)
    if len(dataset) == 0:
        st.warning(f"{name} {split} holds no sample.")
        return None
    index = choose_sample(dataset, index_of_ids(name, split, dataset))
    if index is None:
        return None
    item = dataset[index]
    st.caption(f"data id {item['data_ids']}  ·  {len(dataset)} samples in {name} {split}")
    caption = item["raw_texts"][:MAX_TEXT_CHARS]
    follow_the_sample((name, split, int(item["data_ids"])), caption, TEXT_KEY, TEXT_SAMPLE_KEY)
    return item["images"], item, has_2d


def uploaded_sample():
    """(crop, None, False) of the uploaded picture, or None (nothing uploaded, or a message said why)."""
    upload = st.file_uploader("Picture of a person (PNG or JPG)", type=["png", "jpg", "jpeg"], key="upload")
    box_text = st.text_input(
        "Person box (optional): x, y, w, h in pixels of the picture as shown",
        placeholder="e.g. 120, 40, 200, 480 (empty: the whole picture)",
        key="box",
    )
    if upload is None:
        st.info("Upload a picture: it is cropped like the dataset crops (person box enlarged 1.1x, 4:3, 256x192).")
        return None
    data = upload.getvalue()
    follow_the_sample(("upload", hashlib.blake2b(data, digest_size=16).hexdigest(), 0), "", TEXT_KEY, TEXT_SAMPLE_KEY)
    try:
        return prepare_uploaded_image(data, upload.name, parse_person_box(box_text)), None, False
    except ValueError as err:  # UploadError and bad boxes: the message names the file or the box
        st.error(str(err))
        return None


def show_sample(item, has_2d: bool, predictions, head, crop_uint8, azimuth: int, camera_view: bool) -> None:
    """Each input set's body on the crop and from the viewpoint, the ground truth beside them, the errors."""
    body, renderer = body_and_renderer()
    cam_rot = item["cam_rot"]
    columns = st.columns(len(predictions) + 1)
    bodies = [(p.label, p.poses, p.betas) for p in predictions.values()]
    bodies.append(("ground truth", item["poses"], item["shapes"]))
    view = f"{azimuth}°" + (" from the camera" if camera_view else " around the body")
    for column, (label, pose, betas) in zip(columns, bodies, strict=True):
        column.markdown(f"**{label}**")
        if has_2d:
            joints, vertices = body_in_camera(body, pose, betas, cam_rot)
            fit = fit_weak_perspective(joints, item["joints_2d_crop"])
            overlay = overlay_body(renderer, vertices, body.faces, fit, crop_uint8, upscale=2)
            caption = f"as the camera saw it (2D fit: {fit.residual_px:.1f} px RMS)"
            column.image(overlay, caption=caption, width=SHOWN_WIDTH)
        rendered = pose_image(body, renderer, pose, betas, azimuth, cam_rot if camera_view else None)
        column.image(rendered, caption=f"{label}, viewpoint {view}", width=SHOWN_WIDTH)
    if not has_2d:
        st.info("This dataset has no annotated 2D joints: the bodies cannot be placed on the crop.")
    errors = {
        name: sample_errors(body, head, prediction, item["poses"], item["shapes"])
        for name, prediction in predictions.items()
    }
    st.subheader("Errors against the ground truth")
    st.table(errors_table(errors, {name: p.label for name, p in predictions.items()}))
    st.caption(
        "One sample, the evaluation's protocol (SMPL-X joints 0-21, zero translation; PA: after the best "
        "similarity alignment). `poseembroider evaluate-pose-estimation` gives the means over a split."
    )


def show_upload(predictions, azimuth: int) -> None:
    st.info(
        "An uploaded picture has no camera and the head predicts none (as the original): the bodies are shown "
        "from the front of the body (turn them with the viewpoint slider), not placed on the picture."
    )
    body, renderer = body_and_renderer()
    for column, prediction in zip(st.columns(len(predictions)), predictions.values(), strict=True):
        column.markdown(f"**{prediction.label}**")
        rendered = pose_image(body, renderer, prediction.poses, prediction.betas, azimuth)
        column.image(rendered, caption=f"{prediction.label}, viewpoint {azimuth}°", width=SHOWN_WIDTH)


def main() -> None:
    st.set_page_config(page_title="PoseEmbroider: human mesh recovery", layout="wide")
    st.title("Human mesh recovery")
    st.caption(
        "An HPS head regresses the SMPL-X body from the representation x̄ of an image alone, and of the image "
        "with a text: see what the description adds."
    )
    args = initial_settings()
    if TEXT_KEY in st.session_state:  # keep the typed text through runs that stop before its box (a bad upload)
        st.session_state[TEXT_KEY] = st.session_state[TEXT_KEY]
    path = st.sidebar.text_input(
        "Model (folder or shortname)", value=args.model_path, key="model_path", max_chars=MAX_MODEL_NAME_CHARS
    )
    checkpoint = st.sidebar.selectbox(
        "Checkpoint (training folders)",
        ("best", "last"),
        index=("best", "last").index(args.checkpoint),
        key="checkpoint",
    )
    if not path:
        st.info(missing_model_message(HPS_MODELS))
        return
    try:
        head, head_dir = cached_head(path, checkpoint, args.device)
    except (OSError, KeyError, ValueError, RuntimeError) as err:  # CheckpointError is a ValueError
        st.error(f"Cannot load an HPSEstimator head from {path!r}: {err}")
        return
    representation = head.representation()
    st.sidebar.caption(
        f"HPSEstimator from {shown_path(head_dir)}, over {type(representation).__name__} "
        f"({head.config.pretrained_representation_model}); trained on x̄ of "
        f"{' + '.join(head.config.representation_model_input_types)}"
    )
    azimuth = viewpoint_slider(st.sidebar)

    source = st.radio("Input", (SAMPLE_SOURCE, UPLOAD_SOURCE), horizontal=True, key="source")
    chosen = dataset_sample(args) if source == SAMPLE_SOURCE else uploaded_sample()
    if chosen is None:
        return
    image, item, has_2d = chosen
    mask = occlusion_sliders()
    image = occlude_patches(image, *mask)
    crop_uint8 = image_to_uint8(image)

    crop_col, text_col = st.columns([1, 3])
    crop_col.image(crop_uint8, caption="image crop (256x192)" + (", occluded" if mask[2] else ""))
    typed = text_col.text_area(
        "Pose description (optional; empty: image alone)",
        placeholder="The person is...",
        max_chars=MAX_TEXT_CHARS,
        help="Starts from the sample's caption; edit it, then press Ctrl+Enter or click outside the box.",
        key=TEXT_KEY,
    )
    camera_view = False
    if item is not None:
        camera_view = text_col.checkbox("Show the rendered bodies as the camera saw them", key="camera_view")
    try:
        text = check_text(typed)
    except ValueError as err:
        st.error(str(err))
        return
    try:
        predictions = predict_input_sets(head, image, text)
    except (CheckpointError, ValueError, RuntimeError) as err:
        st.error(f"The head cannot run on this input: {err}")
        return
    if text is None:
        st.caption("No description: the image alone. Type one to compare image + text with the image alone.")
    if item is not None:
        show_sample(item, has_2d, predictions, head, crop_uint8, azimuth, camera_view)
    else:
        show_upload(predictions, azimuth)


main()
