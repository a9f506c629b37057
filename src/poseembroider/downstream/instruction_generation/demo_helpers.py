"""What the instruction-generation demo (`demo_instruction_generation.py`) computes, without streamlit, so it
can be tested.

- Pairs (`DemoPair`, two `Element`s A and B, each with any of a pose, a body shape and an image crop): a pair of
  a pair dataset (`fix_pair`, with its annotated instructions as references), two samples of a single-element
  dataset (`script_pair`), two poses of the pose sampler (`sampled_pair`: reproducible from the seed, with
  the rule-based instruction writer's texts beside them), or two uploaded pictures (`uploaded_pair`).
- Uploads go through `demo_core_helpers.prepare_uploaded_image`, as in every demo: checked from the header
  before anything is decoded (non-image bytes, decompression bombs, huge and tiny pictures get an `UploadError`
  naming the file), then cropped like the datasets' images.
- Input sets (`data.INPUT_SETS`): `offered_input_sets(pair)` lists the ones a pair can feed (images need
  pictures, poses need poses); `pair_xbar` makes x̄ of A and of B with the generator's frozen representation
  model through the front door (`Representation`), live.
- Decoding (`DecodingChoice`): the demo's fields (method, beam size, top-p, seed, lengths, samples) checked
  and mapped onto the options each method of the `decoding.DECODINGS` registry takes (`call`), and
  `generate` runs it.
- Models: `load_generator` (an InstructionGenerator, or an error naming the folder and what it holds) and
  `generator_representation` (the frozen PoseEmbroider / Aligner whose x̄ the generator reads).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from poseembroider.datasets.pose_processing import normalize_poses
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler
from poseembroider.datasets.visualization import image_to_uint8
from poseembroider.demo_core_helpers import prepare_uploaded_image
from poseembroider.downstream.instruction_generation.data import INPUT_SETS, InputSet, get_input_set
from poseembroider.downstream.instruction_generation.decoding import (
    DECODINGS,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MIN_LENGTH,
    UnknownDecodingError,
    decoding_options,
)
from poseembroider.downstream.instruction_generation.model_instruction_generation import InstructionGenerator
from poseembroider.models.pretrained import resolve_model_dir
from poseembroider.representation import Representation
from poseembroider.text.correcting.instructions import instruction_variants

__all__ = [
    "DecodingChoice",
    "DemoPair",
    "Element",
    "GeneratedText",
    "InputSetError",
    "describe_input_set",
    "fix_pair",
    "generate",
    "generator_representation",
    "load_generator",
    "method_label",
    "methods",
    "offered_input_sets",
    "pair_index",
    "pair_xbar",
    "sampled_pair",
    "script_pair",
    "uploaded_pair",
]

# ---------------------------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class Element:
    """One side of a pair: `pose` (22, 3) axis-angles in the models' z-up frame, `shape` (betas) for rendering,
    `image` (3, 256, 192) float crop in [0, 1]; any may be None. `label` says where it comes from, `texts` are
    its captions (a sample of a single-element dataset)."""

    label: str
    pose: torch.Tensor | None = None
    shape: torch.Tensor | None = None
    image: torch.Tensor | None = None
    texts: tuple[str, ...] = ()

    @property
    def input_types(self) -> tuple[str, ...]:
        """The input types (`downstream.input_types`) this element can give x̄: images, poses."""
        return tuple(t for t, v in (("images", self.image), ("poses", self.pose)) if v is not None)


@dataclass(frozen=True)
class DemoPair:
    """Two elements A (start) and B (target), `key` naming the pair (hashable, for caches), the reference
    instructions when there are some and where they come from."""

    key: tuple
    A: Element
    B: Element
    references: tuple[str, ...] = ()
    references_from: str = ""
    notes: tuple[str, ...] = field(default=())

    def side(self, name: str) -> Element:
        if name not in ("A", "B"):
            raise ValueError(f"side must be 'A' or 'B', got {name!r}")
        return self.A if name == "A" else self.B


def offered_input_sets(pair: DemoPair) -> list[str]:
    """The names of `data.INPUT_SETS` the pair can feed, in the paper's order: every type of side A is
    among element A's, every type of side B among element B's."""
    a, b = set(pair.A.input_types), set(pair.B.input_types)
    return [name for name, s in INPUT_SETS.items() if set(s.types_A) <= a and set(s.types_B) <= b]


def describe_input_set(input_set: InputSet | str) -> str:
    """'(V_A,P_B): x̄ of A from its image, x̄ of B from its pose'."""
    s = get_input_set(input_set) if isinstance(input_set, str) else input_set
    words = {"images": "image", "poses": "pose"}

    def of(types: Sequence[str]) -> str:
        return " and ".join(words.get(t, t) for t in types)

    return f"({s.name}): x̄ of A from its {of(s.types_A)}, x̄ of B from its {of(s.types_B)}"


def pair_index(dataset, pair_id: int) -> int:
    """Index of pair `pair_id` in a pair dataset (`pair_ids`); a ValueError with examples otherwise."""
    try:
        return dataset.pair_ids.index(int(pair_id))
    except ValueError:
        raise ValueError(f"no pair with id {pair_id} in this split; for example: {dataset.pair_ids[:8]}") from None


def _check_index(dataset, index: int, what: str) -> int:
    if not 0 <= int(index) < len(dataset):
        raise ValueError(f"{what} {index}: out of range [0, {len(dataset) - 1}]")
    return int(index)


def _dataset_element(item: Mapping[str, Any], suffix: str, label: str, texts: Sequence[str] = ()) -> Element:
    return Element(
        label=label,
        pose=item.get(f"poses{suffix}"),
        shape=item.get(f"shapes{suffix}"),
        image=item.get(f"images{suffix}"),
        texts=tuple(texts),
    )


def fix_pair(dataset, index: int, dataset_name: str = "", split: str = "") -> DemoPair:
    """Pair `index` of a pair dataset (item format with poses, images when it has them, and texts): elements
    A and B, and every annotated instruction of the pair as the references."""
    item = dataset[_check_index(dataset, index, "pair index")]
    pair_id = int(item["pair_ids"])
    kind = item.get("sequence_kind", "")
    return DemoPair(
        key=("fix", dataset_name, split, pair_id),
        A=_dataset_element(item, "_A", f"data id {int(item['data_ids_A'])}"),
        B=_dataset_element(item, "_B", f"data id {int(item['data_ids_B'])}"),
        references=tuple(dataset.instructions_of(pair_id)),
        references_from=f"the annotations of pair {pair_id}",
        notes=(f"pair {pair_id}" + (f" ({kind}-sequence)" if kind else ""),),
    )


def script_pair(dataset, index_A: int, index_B: int, dataset_name: str = "", split: str = "") -> DemoPair:
    """Samples `index_A` and `index_B` of a single-element dataset as A and B (no reference instruction:
    such a pair was never annotated); each element keeps its captions."""
    elements = []
    for side, index in (("A", index_A), ("B", index_B)):
        item = dataset[_check_index(dataset, index, f"index of {side}")]
        data_id = int(item["data_ids"])
        elements.append(_dataset_element(item, "", f"data id {data_id}", dataset.captions_of(data_id)))
    notes = ("A and B are the same sample",) if int(index_A) == int(index_B) else ()
    return DemoPair(
        key=("script", dataset_name, split, elements[0].label, elements[1].label),
        A=elements[0],
        B=elements[1],
        notes=notes,
    )


def sampled_pair(seed: int, body_model, sampler: PoseSampler | None = None) -> DemoPair:
    """Two poses of the pose sampler seeded with `seed` (A, B = its first two draws: the same seed gives the
    same pair), with their sampled body shapes, in the models' frame (normalised as the synthetic datasets'
    poses). References: the three variants of the rule-based instruction writer that annotates the synthetic
    pair datasets (an out-of-sequence pair), seeded with `seed`. `sampler` (a fresh `PoseSampler(seed, ...)`)
    may be given to reuse its library; it is used for one draw."""
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed={seed!r}: a non-negative integer")
    sampler = PoseSampler(int(seed), body_model=body_model) if sampler is None else sampler
    drawn = sampler.sample(2)
    poses = normalize_poses(drawn.poses, "bedlam")  # the sampler's y-up frame, as the synthetic datasets
    references = instruction_variants(drawn.poses[:1], drawn.poses[1:], body_model, seed=int(seed))[0]
    names = drawn.key_a_names
    elements = [
        Element(f"sampled pose {k + 1} of seed {seed} (near key pose {names[k]})", pose=poses[k], shape=drawn.betas[k])
        for k in range(2)
    ]
    return DemoPair(
        key=("sampled", int(seed)),
        A=elements[0],
        B=elements[1],
        references=tuple(references),
        references_from="the rule-based instruction writer that annotates the synthetic pairs",
        notes=("two independent poses: usually further apart than the mined pairs the generator was trained on",),
    )


def uploaded_pair(upload_A: tuple[bytes, str], upload_B: tuple[bytes, str]) -> DemoPair:
    """Two uploaded pictures (bytes, file name) as A and B, each the whole picture taken as the person crop
    (`prepare_uploaded_image`: `UploadError` naming a bad file); no pose, so only images feed x̄."""
    elements = [
        Element(f"upload {name}", image=prepare_uploaded_image(data, name)) for data, name in (upload_A, upload_B)
    ]
    key = ("upload", *(hashlib.blake2b(data, digest_size=16).hexdigest() for data, _ in (upload_A, upload_B)))
    return DemoPair(key=key, A=elements[0], B=elements[1])


# ---------------------------------------------------------------------------------------------- x̄


class InputSetError(ValueError):
    """An input set the pair cannot feed (a pose or an image missing on one side); the message says which."""


@torch.no_grad()
def pair_xbar(rep: Representation, pair: DemoPair, input_set: InputSet | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̄_A, x̄_B), (1, D) each, of the pair from the input types of `input_set`, computed live by the frozen
    representation model: images through `embed_images` (the crops as they are), poses through `embed_poses`
    (already in the models' frame). `InputSetError` when an element lacks an input; the representation's
    `InputError` when it cannot embed a modality here (e.g. its image encoder is absent)."""
    s = get_input_set(input_set) if isinstance(input_set, str) else input_set
    for side in ("A", "B"):
        missing = [t for t in s.types(side) if t not in pair.side(side).input_types]
        if missing:
            offered = offered_input_sets(pair)
            raise InputSetError(
                f"input set {s.name} needs the {' and '.join(missing)} of {side}, which this pair does not have; "
                f"it offers {offered or 'none'}"
            )
    tokens: dict[str, dict[str, torch.Tensor]] = {"A": {}, "B": {}}
    for input_type, modality in (("images", "image"), ("poses", "pose")):
        sides = [side for side in ("A", "B") if input_type in s.types(side)]
        if not sides:
            continue
        if input_type == "images":
            embedded = rep.embed_images([image_to_uint8(pair.side(side).image) for side in sides])
        else:
            embedded = rep.embed_poses(torch.stack([pair.side(side).pose for side in sides]), normalization="none")
        for row, side in enumerate(sides):
            tokens[side][modality] = embedded[row : row + 1]
    return rep.represent_tokens(tokens["A"]), rep.represent_tokens(tokens["B"])


# ---------------------------------------------------------------------------------------------- decoding

METHOD_LABELS: dict[str, str] = {
    "greedy": "greedy (the original's)",
    "beam": "beam search",
    "nucleus": "nucleus sampling",
    "rerank": "rerank (greedy + nucleus samples, kept by the model's listener)",
}
MAX_BEAM_SIZE = 16
MAX_SAMPLES = 8
MAX_LENGTH_LIMIT = 511
"""Longest instruction a decoding may write (the positional table of the published decoder holds 512)."""


def methods() -> list[str]:
    """The registered decoding methods, the original's greedy first, then beam, nucleus and rerank, then any
    other."""
    names = DECODINGS.names()
    return [n for n in METHOD_LABELS if n in names] + [n for n in names if n not in METHOD_LABELS]


def method_label(name: str) -> str:
    return METHOD_LABELS.get(name, name)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{name}={value!r}: an integer")
    if not low <= int(value) <= high:
        raise ValueError(f"{name}={value!r}: must be in [{low}, {high}]")
    return int(value)


@dataclass(frozen=True)
class DecodingChoice:
    """The demo's decoding fields. Each method takes the ones its function in `decoding.DECODINGS` has
    (`decoding_options`): greedy none, beam `beam_size`, nucleus and rerank `top_p` and `seed` (rerank its
    default `nucleus_samples`, and a model that keeps distractors); a method that takes a seed
    samples, and `samples` instructions are drawn at once. Checked when built (ValueError / UnknownDecodingError
    naming the field)."""

    method: str = "greedy"
    beam_size: int = 4
    top_p: float = 0.9
    seed: int = 0
    min_length: int = DEFAULT_MIN_LENGTH
    max_length: int = DEFAULT_MAX_LENGTH
    samples: int = 1

    def __post_init__(self) -> None:
        if self.method not in DECODINGS:
            raise UnknownDecodingError(f"unknown decoding method {self.method!r}; known: {methods()}")
        _integer(self.beam_size, "beam_size", 1, MAX_BEAM_SIZE)
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p!r}: must be in (0, 1]")
        _integer(self.seed, "seed", 0, 2**63 - 1)
        _integer(self.max_length, "max_length", 1, MAX_LENGTH_LIMIT)
        _integer(self.min_length, "min_length", 0, MAX_LENGTH_LIMIT)
        if self.min_length >= self.max_length:
            raise ValueError(f"min_length={self.min_length} must be below max_length={self.max_length}")
        _integer(self.samples, "samples", 1, MAX_SAMPLES)

    @property
    def options(self) -> dict[str, Any]:
        """The method's own options among the demo's fields (what `decoding.decode` gets beyond the lengths)."""
        fields = {"beam_size": int(self.beam_size), "top_p": float(self.top_p), "seed": int(self.seed)}
        return {k: v for k, v in fields.items() if k in decoding_options(self.method)}

    @property
    def count(self) -> int:
        """Instructions written: `samples` for a sampling method (one taking a seed), else 1."""
        return int(self.samples) if "seed" in self.options else 1

    def call(self) -> tuple[str, dict[str, Any]]:
        """(method, keyword arguments of `InstructionGenerator.generate`)."""
        return self.method, {"min_length": int(self.min_length), "max_length": int(self.max_length), **self.options}

    def describe(self) -> str:
        """'beam search, beam_size 4, 10 to 200 tokens'."""
        options = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.options.items())
        lengths = f"{self.min_length} to {self.max_length} tokens"
        return ", ".join(p for p in (method_label(self.method), options, lengths) if p)


@dataclass(frozen=True)
class GeneratedText:
    """One generated instruction, its length in tokens (EOS included) and mean log-likelihood per token."""

    text: str
    tokens: int
    score: float


@torch.no_grad()
def generate(
    generator: InstructionGenerator, xbar_A: torch.Tensor, xbar_B: torch.Tensor, choice: DecodingChoice
) -> list[GeneratedText]:
    """`choice.count` instructions turning A into B, x̄ (1, D) each: one for greedy and beam search, `samples`
    for nucleus sampling (the pair repeated, drawn in one batch from one seeded generator: the same seed and
    count give the same texts)."""
    longest = generator.config.max_tokens - 1  # `generate` cuts max_length there
    if choice.min_length >= min(choice.max_length, longest):
        raise ValueError(
            f"min_length={choice.min_length}: this generator writes at most {longest} tokens (max_tokens "
            f"{generator.config.max_tokens} in its config); ask for fewer"
        )
    generator.eval()
    device = next(generator.parameters()).device
    n = choice.count
    a, b = xbar_A.to(device).expand(n, -1), xbar_B.to(device).expand(n, -1)
    method, kwargs = choice.call()
    out = generator.generate(a, b, method, **kwargs)
    texts = generator.texts_of(out)
    return [
        GeneratedText(text, int(length), float(score))
        for text, length, score in zip(texts, out.lengths.tolist(), out.scores.tolist(), strict=True)
    ]


# ---------------------------------------------------------------------------------------------- models


def load_generator(
    path: str | os.PathLike, checkpoint: str = "best", device: str | torch.device = "cpu"
) -> tuple[InstructionGenerator, Path]:
    """(generator in eval mode, its folder) from a model folder, a training folder (`checkpoint` best / last)
    or a shortname. A folder without a model, or whose model is not an InstructionGenerator, is an error
    naming the folder (and the class it holds)."""
    model_dir = resolve_model_dir(path, checkpoint)
    return InstructionGenerator.from_pretrained(model_dir, map_location=device).eval(), model_dir


def generator_representation(generator: InstructionGenerator, device: str | torch.device = "cpu") -> Representation:
    """The frozen representation model whose x̄ the generator reads (`pretrained_representation_model` of its
    config), behind the front door. A config naming none, a model that does not load, or one of another width
    is an error saying so."""
    name = generator.config.pretrained_representation_model
    if not name:
        raise ValueError(
            "the generator's config names no representation model (pretrained_representation_model is empty): "
            "it cannot be fed x̄ from raw poses and images"
        )
    try:
        rep = Representation.from_pretrained(name, device=device)
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise ValueError(f"the generator's representation model {name!r} does not load: {message}") from err
    if rep.dim != generator.config.latentD:
        raise ValueError(
            f"the representation model {name!r} gives x̄ of {rep.dim} values but the generator reads "
            f"{generator.config.latentD} (latentD)"
        )
    return rep
