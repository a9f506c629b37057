"""Corrective-instruction demo of the InstructionGenerator (streamlit): what to change to go from A to B.

    poseembroider demo instruction [--model_path <folder|shortname>] [--checkpoint best|last] [--dataset NAME] \\
        [--split val] [--decoding greedy|beam|nucleus|rerank] [--beam_size 4] [--top_p 0.9] [--seed 0] \\
        [--min_length 10] [--max_length 200] [--input_set P_A,P_B] [--device auto] [--server.port 8501]
    streamlit run src/poseembroider/downstream/instruction_generation/demo_instruction_generation.py -- [flags]

A and B come from a pair of a pair dataset (by index or pair id; its annotated instructions are the
references), two samples of a single-element dataset, two poses of the pose sampler (seeded; the rule-based
instruction writer that annotates the synthetic pairs gives the references) or two uploaded pictures. Both
bodies are rendered (and the pictures shown). The input set says what x̄ of A and of B are made of: poses,
images or both on each side, among those the pair has (an uploaded picture has no pose, so uploads use the
images: (V_A,V_B)); x̄ is computed live by the generator's frozen PoseEmbroider / Aligner. The instruction is
decoded with the sidebar's method (greedy as the original, beam search, nucleus sampling with its seed and
number of samples, rerank with its seed for a generator that keeps distractor pairs) and length limits.

The model is taken from, in this order: the sidebar field, `--model_path`, the URL query parameter
`?model=...`, the environment variable `POSEEMBROIDER_INSTRUCTION_DEMO_MODEL`, and the quickstart's generator,
the released one or the newest registered `instructgen_model_*` (`demos.default_model`). The non-streamlit
parts are in `demo_helpers.py`.
"""

from __future__ import annotations

import sys

import streamlit as st

from poseembroider import config
from poseembroider.datasets.discovery import available_datasets
from poseembroider.datasets.registry import get_dataset
from poseembroider.datasets.visualization import RENDER_HW, image_to_uint8, pose_image
from poseembroider.datasets.visualize.common import (
    body_and_renderer,
    choose_dataset_and_split,
    load_dataset,
    viewpoint_slider,
)
from poseembroider.demo_core_helpers import UploadError
from poseembroider.demos import (
    INSTRUCTION_MODELS,
    MAX_MODEL_NAME_CHARS,
    initial_model,
    instruction_parser,
    missing_model_message,
    shown_path,
)
from poseembroider.devices import resolve_device
from poseembroider.downstream.input_types import input_types_name
from poseembroider.downstream.instruction_generation.data import input_set_of
from poseembroider.downstream.instruction_generation.demo_helpers import (
    MAX_BEAM_SIZE,
    MAX_LENGTH_LIMIT,
    MAX_SAMPLES,
    DecodingChoice,
    DemoPair,
    Element,
    describe_input_set,
    fix_pair,
    generate,
    generator_representation,
    load_generator,
    method_label,
    methods,
    offered_input_sets,
    pair_index,
    pair_xbar,
    sampled_pair,
    script_pair,
    uploaded_pair,
)

FIX_SOURCE = "a pair of a pair dataset"
SCRIPT_SOURCE = "two samples of a dataset"
SAMPLED_SOURCE = "two sampled poses"
UPLOAD_SOURCE = "two uploaded pictures"
SOURCES = (FIX_SOURCE, SCRIPT_SOURCE, SAMPLED_SOURCE, UPLOAD_SOURCE)


def initial_settings():
    """The demo's flags (after `--`), with the model and dataset also read from the URL and environment."""
    args, _ = instruction_parser().parse_known_args(sys.argv[1:])
    args.model_path = initial_model(INSTRUCTION_MODELS, args.model_path, st.query_params.get("model")) or ""
    args.dataset = args.dataset or st.query_params.get("dataset")
    return args


@st.cache_resource(show_spinner="Loading the generator and its representation model...")
def load_models(path: str, checkpoint: str, device: str):
    """(generator, its folder, the frozen representation behind the front door)."""
    torch_device = resolve_device(device)
    generator, model_dir = load_generator(path, checkpoint, torch_device)
    return generator, str(model_dir), generator_representation(generator, torch_device)


@st.cache_resource
def load_pose_only_pairs(name: str, split: str):
    """A pair dataset without images (PoseFix-style): poses and instructions."""
    return get_dataset(name, split, item_format="pt", caption_selection=0)


@st.cache_resource(show_spinner="Sampling two poses...")
def sampled(seed: int) -> DemoPair:
    return sampled_pair(seed, body_and_renderer()[0])


@st.cache_data(show_spinner=False, max_entries=256)
def rendered(key: tuple, side: str, azimuth: int, _element: Element):
    """(320, 240, 3) uint8 render of an element's body (its own shape) seen from `azimuth`."""
    body, renderer = body_and_renderer()
    return pose_image(body, renderer, _element.pose, _element.shape, azimuth)


# ---------------------------------------------------------------------------------------------- the pair


def choose_fix_pair(preferred: str | None, preferred_split: str | None) -> DemoPair | None:
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if d.is_pairs]
    if not found:
        st.warning(f"No pair dataset cache in {config.DATA_CACHE_DIR}. Run `poseembroider data synth` first.")
        return None
    name, split = choose_dataset_and_split(found, preferred, preferred_split, columns=True)
    has_images = next(d for d in found if d.name == name).has_images
    dataset = load_dataset(name, split) if has_images else load_pose_only_pairs(name, split)
    if len(dataset) == 0:
        st.warning(f"{name} {split} holds no pair with an instruction.")
        return None
    left, right = st.columns(2)
    select_by = left.radio("Select the pair by", ("index", "pair id"), horizontal=True, key="select_by")
    if select_by == "index":
        index = int(right.number_input(f"Pair index (0 to {len(dataset) - 1})", 0, len(dataset) - 1, 0, key="index"))
    else:
        pair_id = int(right.number_input("Pair id", 0, value=int(dataset.pair_ids[0]), key="pair_id"))
        try:
            index = pair_index(dataset, pair_id)
        except ValueError as err:
            st.error(str(err))
            return None
    return fix_pair(dataset, index, name, split)


def choose_script_pair(preferred: str | None, preferred_split: str | None) -> DemoPair | None:
    found = [d for d in available_datasets(config.DATA_CACHE_DIR) if not d.is_pairs and d.has_images]
    if not found:
        st.warning(f"No dataset cache in {config.DATA_CACHE_DIR}. Run `poseembroider data synth` first.")
        return None
    name, split = choose_dataset_and_split(found, preferred, preferred_split, columns=True)
    dataset = load_dataset(name, split)
    if len(dataset) < 1:
        st.warning(f"{name} {split} is empty.")
        return None
    last = len(dataset) - 1
    left, right = st.columns(2)
    index_A = int(left.number_input(f"Index of A (0 to {last})", 0, last, 0, key="index_A"))
    index_B = int(right.number_input(f"Index of B (0 to {last})", 0, last, min(1, last), key="index_B"))
    st.caption("A pair of two samples was never annotated: no reference instruction.")
    return script_pair(dataset, index_A, index_B, name, split)


def choose_uploaded_pair() -> DemoPair | None:
    left, right = st.columns(2)
    uploads = [
        column.file_uploader(f"Picture of {side} (PNG or JPG)", type=["png", "jpg", "jpeg"], key=f"upload_{side}")
        for column, side in ((left, "A"), (right, "B"))
    ]
    if any(upload is None for upload in uploads):
        st.info(
            "Upload a picture of the person in pose A and one in pose B: each is padded to 4:3 and resized to "
            "256x192 like the dataset crops. A picture has no pose: x̄ comes from the images (V_A,V_B)."
        )
        return None
    try:
        return uploaded_pair(*((upload.getvalue(), upload.name) for upload in uploads))
    except UploadError as err:
        st.error(str(err))
        return None


def choose_pair(args) -> DemoPair | None:
    source = st.radio("A and B from", SOURCES, horizontal=True, key="source")
    if source == FIX_SOURCE:
        return choose_fix_pair(args.dataset, args.split)
    if source == SCRIPT_SOURCE:
        return choose_script_pair(args.dataset, args.split)
    if source == SAMPLED_SOURCE:
        seed = int(st.number_input("Pose seed (same seed, same two poses)", 0, 2**31 - 1, args.seed, key="pose_seed"))
        return sampled(seed)
    return choose_uploaded_pair()


def show_pair(pair: DemoPair, azimuth: int) -> None:
    """Four places, A's image and body on the left, B's on the right; a missing image or body leaves its
    place empty, so A and B stay where they are whatever the source."""
    columns = st.columns(4, gap="medium")
    for k, side in enumerate("AB"):
        element = pair.side(side)
        if element.image is not None:
            columns[2 * k].image(
                image_to_uint8(element.image), caption=f"image {side} · {element.label}", width=RENDER_HW[1]
            )
        if element.pose is not None:
            columns[2 * k + 1].image(
                rendered(pair.key, side, azimuth, element), caption=f"pose {side} · {element.label}", width=RENDER_HW[1]
            )
    for note in pair.notes:
        st.caption(note)
    for side in ("A", "B"):
        texts = pair.side(side).texts
        if texts:
            with st.expander(f"Captions of {side}"):
                for k, text in enumerate(texts):
                    st.markdown(f"**{k}.** {text}")


# ---------------------------------------------------------------------------------------------- decoding


def decoding_sidebar(args) -> DecodingChoice | None:
    """The decoding fields (only those of the chosen method are shown); None with a message when invalid."""
    sidebar = st.sidebar
    sidebar.subheader("Decoding")
    names = methods()
    method = sidebar.selectbox(
        "Method",
        names,
        index=names.index(args.decoding) if args.decoding in names else 0,
        format_func=method_label,
        key="method",
    )
    fields = {}
    if method == "beam":
        fields["beam_size"] = int(
            sidebar.number_input(
                "Beam size", 1, MAX_BEAM_SIZE, min(max(args.beam_size, 1), MAX_BEAM_SIZE), key="beam_size"
            )
        )
    if method in ("nucleus", "rerank"):
        top_p = min(max(float(args.top_p), 0.05), 1.0)
        fields["top_p"] = float(sidebar.slider("Top-p (nucleus mass)", 0.05, 1.0, top_p, step=0.05, key="top_p"))
        fields["seed"] = int(sidebar.number_input("Sampling seed", 0, 2**31 - 1, max(args.seed, 0), key="seed"))
    if method == "nucleus":
        fields["samples"] = int(sidebar.number_input("Instructions to draw", 1, MAX_SAMPLES, 3, key="samples"))
    low, high = sidebar.columns(2)
    fields["min_length"] = int(
        low.number_input("Min tokens", 0, MAX_LENGTH_LIMIT - 1, min(max(args.min_length, 0), 510), key="min_length")
    )
    fields["max_length"] = int(
        high.number_input(
            "Max tokens", 1, MAX_LENGTH_LIMIT, min(max(args.max_length, 1), MAX_LENGTH_LIMIT), key="max_length"
        )
    )
    sidebar.caption("EOS is forbidden before the minimum length; decoding stops at the maximum.")
    try:
        return DecodingChoice(method=method, **fields)
    except ValueError as err:
        st.sidebar.error(str(err))
        return None


def choose_input_set(pair: DemoPair, generator, wanted: str | None) -> str | None:
    """The input set x̄ is made of, among those the pair offers; the generator's own first."""
    offered = offered_input_sets(pair)
    if not offered:
        st.error("This pair has neither poses nor images on both sides: no input set can be made of it.")
        return None
    trained = input_set_of(
        generator.config.representation_model_input_types, generator.config.representation_model_input_types
    ).name
    if wanted and wanted not in offered:
        st.warning(f"The input set {wanted} cannot be used for this pair (it offers {', '.join(offered)}).")
    first = wanted if wanted in offered else trained if trained in offered else offered[0]
    input_set = st.selectbox(
        "Input set (V: image, P: pose)",
        offered,
        index=offered.index(first),
        key="input_set",
        format_func=describe_input_set,
    )
    if input_set != trained:
        st.caption(
            f"The generator was trained on x̄ of {input_types_name(generator.config.representation_model_input_types)} "
            f"({trained}); other input sets are read through the same representation space, as in the paper's Table 2."
        )
    return input_set


def show_generated(texts, choice: DecodingChoice, input_set: str) -> None:
    st.subheader("Generated instruction" + ("s" if len(texts) > 1 else ""))
    st.caption(f"{choice.describe()} · from x̄ of the input set ({input_set})")
    for k, generated in enumerate(texts):
        prefix = f"**{k + 1}.** " if len(texts) > 1 else ""
        st.markdown(f"{prefix}{generated.text or '_(empty)_'}")
        st.caption(f"{generated.tokens} tokens · mean log-likelihood {generated.score:.2f} per token")


def write_instructions(generator, rep, pair: DemoPair, input_set: str, choice: DecodingChoice) -> None:
    """x̄ of A and B from the input set, then the decoded instructions; a message when either cannot be made."""
    try:
        xbar_A, xbar_B = pair_xbar(rep, pair, input_set)
    except ValueError as err:
        st.error(f"The representation model cannot make x̄ of input set {input_set} here: {err}")
        return
    try:
        texts = generate(generator, xbar_A, xbar_B, choice)
    except ValueError as err:
        st.error(f"Cannot decode with these options: {err}")
        return
    show_generated(texts, choice, input_set)


def show_references(pair: DemoPair) -> None:
    if not pair.references:
        return
    st.subheader("Reference instructions")
    st.caption(f"from {pair.references_from}")
    for k, text in enumerate(pair.references):
        st.markdown(f"**{k}.** {text}")


def main() -> None:
    st.set_page_config(page_title="PoseEmbroider: corrective instructions", layout="wide")
    st.title("Corrective instructions")
    st.caption("What to change to go from A to B, written by the InstructionGenerator from the representations x̄.")
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
    choice = decoding_sidebar(args)
    if not path:
        st.info(missing_model_message(INSTRUCTION_MODELS))
        return
    try:
        generator, model_dir, rep = load_models(path, checkpoint, args.device)
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        st.error(f"Cannot load an InstructionGenerator from {path!r}: {message}")
        return
    st.sidebar.caption(
        f"InstructionGenerator from {shown_path(model_dir)}, over {type(rep.model).__name__} "
        f"{generator.config.pretrained_representation_model}"
    )

    pair = choose_pair(args)
    if pair is None:
        return
    has_bodies = pair.A.pose is not None or pair.B.pose is not None
    show_pair(pair, viewpoint_slider() if has_bodies else 0)
    input_set = choose_input_set(pair, generator, args.input_set)
    if input_set is not None and choice is not None:
        write_instructions(generator, rep, pair, input_set, choice)
    show_references(pair)


main()
