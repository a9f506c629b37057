"""Any-to-any retrieval demo of PoseEmbroider and the Aligner (streamlit).

    poseembroider demo core [--model_path <folder|shortname>] [--checkpoint best|last] [--n_retrieve 8] \\
        [--dataset NAME] [--split val] [--device auto] [--server.port 8501]
    streamlit run src/poseembroider/demo_core.py -- [same flags]

Pick a sample of a dataset split (by index or data id) or upload a PNG/JPG picture of a person; occlude
16-px patches of the image crop; choose which of its image, pose, annotated text and a typed text make
the query; "Process!" shows the top-k images, poses (rendered bodies) and texts of the whole split.
PoseEmbroider ranks each modality with the corresponding reprojection of the query's x̄, the Aligner
with the mixed query (`representation.retrieve_from_batch`). The split's gallery comes from its frozen-feature
cache (the frozen encoders run once per split, see `features/frozen.py`), embedded once per session.

The model is taken from, in this order: the sidebar field, `--model_path`, the URL query parameter
`?model=...`, the environment variable `POSEEMBROIDER_CORE_DEMO_MODEL`, and the quickstart's PoseEmbroider
(`poseembroider_model_synthscript`), the released one, or the newest registered PoseEmbroider / Aligner
(`demos.default_model`). `?dataset=...` preselects a dataset like `--dataset`. The split opens on `--split`,
else the validation split.

The query text box starts from the chosen sample's first caption and follows the sample: picking another
sample puts that sample's caption in the box (`follow_the_sample`), which the user can then edit.
"""

from __future__ import annotations

import sys

import streamlit as st
import torch

from poseembroider import config
from poseembroider.datasets.discovery import available_datasets
from poseembroider.datasets.visualization import image_to_uint8, pose_image
from poseembroider.datasets.visualize.common import (
    body_and_renderer,
    choose_dataset_and_split,
    choose_sample,
    follow_the_sample,
    index_of_ids,
    load_dataset,
    occlusion_sliders,
)
from poseembroider.demo_core_helpers import (
    MAX_TEXT_CHARS,
    check_text,
    occlude_patches,
    prepare_uploaded_image,
    query_batch,
)
from poseembroider.demos import (
    CORE_MODELS,
    MAX_MODEL_NAME_CHARS,
    core_parser,
    initial_model,
    missing_model_message,
    shown_path,
)
from poseembroider.modalities import MODALITIES
from poseembroider.representation import Gallery, load_representation_model, retrieve_from_batch, split_gallery

SAMPLE_SOURCE, UPLOAD_SOURCE = "a sample of the dataset", "an uploaded picture"
GRID_COLUMNS = 4
INPUT_TEXT_KEY = "input_text"
INPUT_TEXT_SAMPLE_KEY = "input_text_sample"


def initial_settings():
    """The demo's flags (after `--`), with the model and dataset also read from the URL and environment."""
    args, _ = core_parser().parse_known_args(sys.argv[1:])
    args.model_path = initial_model(CORE_MODELS, args.model_path, st.query_params.get("model")) or ""
    args.dataset = args.dataset or st.query_params.get("dataset")
    return args


@st.cache_resource(show_spinner="Loading the model...")
def load_model(path: str, checkpoint: str, device: str):
    """(model, model folder) of a PoseEmbroider or Aligner folder, training folder or shortname."""
    model, model_dir = load_representation_model(path, checkpoint, device)
    return model, str(model_dir)


@st.cache_resource(show_spinner="Embedding the gallery (the frozen features are cached on disk once per split)...")
def load_gallery(model_dir: str, dataset_name: str, split: str, _model) -> Gallery:
    """Gallery tokens of the whole split, once per (model, dataset, split) and server process."""
    return split_gallery(_model, dataset_name, split)


@st.cache_data(show_spinner=False, max_entries=1024)
def rendered_pose(dataset_name: str, split: str, data_id: int, _pose: torch.Tensor, _shape: torch.Tensor):
    """(320, 240, 3) uint8 render of a sample's body (its own shape), front view."""
    body, renderer = body_and_renderer()
    return pose_image(body, renderer, _pose, _shape)


def choose_dataset(preferred: str | None, preferred_split: str | None) -> tuple[str, str] | None:
    """(dataset, split) of the query samples and the gallery; the validation split first."""
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if not d.is_pairs and d.has_images]
    if not found:
        st.warning(f"No dataset cache in {config.DATA_CACHE_DIR}. Run `poseembroider data synth` or `make quickstart`.")
        return None
    return choose_dataset_and_split(found, preferred, preferred_split, "Split (the gallery)", columns=True)


def caption_of(rank: int | None, data_id: int, score: float, query_id: int | None) -> str:
    """`3. id 146 · 0.454` (no rank under a text: the text shows its rank already)."""
    found = f"id {data_id} · {score:.3f}" + (" · the query sample" if data_id == query_id else "")
    return found if rank is None else f"{rank}. {found}"


def show_results(results, gallery: Gallery, dataset, dataset_name: str, split: str, ids, query_id) -> None:
    """Top-k images, rendered poses, and texts (with their pose) of every gallery modality."""
    for target in MODALITIES:
        if target not in results:
            continue
        found = results[target]
        rows = [
            (rank + 1, int(gallery.data_ids[row]), float(score))
            for rank, (row, score) in enumerate(zip(found.indices[0].tolist(), found.scores[0].tolist(), strict=True))
        ]
        st.subheader(f"Top {len(rows)} {target}s")
        for start in range(0, len(rows), 1 if target == "text" else GRID_COLUMNS):
            if target == "text":
                rank, data_id, score = rows[start]
                item = dataset[ids[data_id]]
                text_col, pose_col = st.columns([3, 1])
                text_col.markdown(f"**{rank}.** _{item['raw_texts']}_")
                text_col.caption(caption_of(None, data_id, score, query_id))  # "1. ..." would be a markdown list
                pose_col.image(rendered_pose(dataset_name, split, data_id, item["poses"], item["shapes"]))
                continue
            for column, (rank, data_id, score) in zip(
                st.columns(GRID_COLUMNS), rows[start : start + GRID_COLUMNS], strict=False
            ):
                item = dataset[ids[data_id]]
                if target == "image":
                    picture = image_to_uint8(item["images"])
                else:
                    picture = rendered_pose(dataset_name, split, data_id, item["poses"], item["shapes"])
                column.image(picture, caption=caption_of(rank, data_id, score, query_id))


def main() -> None:
    st.set_page_config(page_title="PoseEmbroider: any-to-any retrieval", layout="wide")
    st.title("Any-to-any retrieval")
    st.caption(
        "Query with any subset of an image (occluded or not), a pose and a text; see the closest images, "
        "poses and texts of a whole dataset split."
    )
    args = initial_settings()
    path = st.sidebar.text_input(
        "Model (folder or shortname)", value=args.model_path, key="model_path", max_chars=MAX_MODEL_NAME_CHARS
    )
    checkpoint = st.sidebar.selectbox(
        "Checkpoint (training folders)",
        ("best", "last"),
        index=("best", "last").index(args.checkpoint),
        key="checkpoint",
    )
    n_retrieve = min(64, max(1, args.n_retrieve))
    k = int(st.sidebar.number_input("Items retrieved per modality", 1, 64, n_retrieve, key="n_retrieve"))
    if not path:
        st.info(missing_model_message(CORE_MODELS))
        return
    try:
        model, model_dir = load_model(path, checkpoint, args.device)
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        st.error(f"Cannot load a PoseEmbroider / Aligner from {path!r}: {err}")
        return
    model_name = type(model).__name__
    st.sidebar.caption(f"{model_name} from {shown_path(model_dir)}")

    chosen = choose_dataset(args.dataset, args.split)
    if chosen is None:
        return
    dataset_name, split = chosen
    dataset = load_dataset(dataset_name, split)
    ids = index_of_ids(dataset_name, split, dataset)

    # ------------------------------------------------------------------ the query
    source = st.radio("Query from", (SAMPLE_SOURCE, UPLOAD_SOURCE), horizontal=True, key="source")
    item, query_id = None, None
    if source == SAMPLE_SOURCE:
        index = choose_sample(dataset, ids)
        if index is None:
            return
        item = dataset[index]
        query_id = int(item["data_ids"])
        image = item["images"]
        st.caption(f"data id {query_id}  ·  {len(dataset)} samples in {dataset_name} {split}")
        follow_the_sample((dataset_name, split, query_id), item["raw_texts"], INPUT_TEXT_KEY, INPUT_TEXT_SAMPLE_KEY)
    else:
        upload = st.file_uploader("Picture of a person (PNG or JPG)", type=["png", "jpg", "jpeg"], key="upload")
        if upload is None:
            st.info("Upload a picture: it is padded to 4:3 and resized to 256x192, like the dataset crops.")
            return
        try:
            image = prepare_uploaded_image(upload.getvalue(), upload.name)
        except ValueError as err:
            st.error(str(err))
            return
    mask = occlusion_sliders()
    image = occlude_patches(image, *mask)

    with st.form("query_form"):
        st.markdown("**Select what to use as input**")
        image_col, pose_col = st.columns(2)
        use_image = image_col.checkbox("**Use the image!**", key="use_image")
        image_col.image(image_to_uint8(image), caption="image crop (256x192)" + (", occluded" if mask[2] else ""))
        use_pose = use_text = False
        annotated = ""
        if item is not None:
            use_pose = pose_col.checkbox("**Use the pose!**", key="use_pose")
            pose_col.image(
                rendered_pose(dataset_name, split, query_id, item["poses"], item["shapes"]), caption="annotated pose"
            )
            annotated = item["raw_texts"]
            use_text = st.checkbox("**Use the annotated text!**", key="use_text")
            st.markdown(f"_{annotated}_")
        use_input_text = st.checkbox("**Use the input text!**", key="use_input_text")
        input_text = st.text_area(
            "Pose description",
            placeholder="The person is...",
            help="Starts from the chosen sample's caption; edit it and check **Use the input text!**",
            key=INPUT_TEXT_KEY,
            max_chars=MAX_TEXT_CHARS,
        )
        submitted = st.form_submit_button("Process!", key="process")

    modalities = [m for m, used in (("image", use_image), ("pose", use_pose)) if used]
    text = None
    if use_input_text:
        try:
            typed = check_text(input_text)
        except ValueError as err:  # the box cuts at MAX_TEXT_CHARS in a browser; a request can carry more
            st.error(str(err))
            return
        if typed is None:
            st.warning("The input text is empty: type a pose description, or uncheck **Use the input text!**")
            return
        if use_text:
            st.info("The input text replaces the annotated text in the query.")
        text = typed
    elif use_text:
        text = annotated
    if text is not None:
        modalities.append("text")
    if not modalities:
        message = "No input selected: check at least one of the image, the pose or a text, then press **Process!**"
        (st.warning if submitted else st.info)(message)
        return

    # ------------------------------------------------------------------ retrieval
    try:
        gallery = load_gallery(model_dir, dataset_name, split, model)
        tokenizer = model.frozen_encoders.encoders["text"].tokenizer if text is not None else None
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        st.error(f"Cannot embed the gallery of {dataset_name} {split} with this model: {err}")
        return
    batch = query_batch(
        image=image if "image" in modalities else None,
        pose=item["poses"] if "pose" in modalities else None,
        text_tokens=tokenizer(text) if tokenizer is not None else None,
    )
    results = retrieve_from_batch(model, batch, modalities, gallery.tokens, k)
    how = (
        "each modality ranked with its reprojection of x̄"
        if model_name == "PoseEmbroider"
        else "every modality ranked with the mixed query"
    )
    query_words = [m if m != "text" else ("input text" if use_input_text else "annotated text") for m in modalities]
    st.markdown(f"**Query:** {' + '.join(query_words)} ({model_name}: {how}); gallery of {len(gallery)} samples.")
    if text is not None:
        st.caption(f"query text: {text}")
    show_results(results, gallery, dataset, dataset_name, split, ids, query_id)
    st.markdown("---")
    st.markdown(f"**Model:** {model_name} from _{shown_path(model_dir)}_")


main()
