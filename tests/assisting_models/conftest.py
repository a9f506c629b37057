"""Shared PoseText / PairText test data: small script and fix datasets in the cache format, captioned and
instructed by our own captioner, and a text model folder (WordPiece tokenizer trained on those texts + a
tiny randomly initialised DistilBERT) usable as `text_encoder_name`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from poseembroider import config
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from tiny_models import make_text_model_folder

RETRIEVAL_SCRIPT_VERSION = "retrievaltest_overlap30_res224_j16_sf11"
RETRIEVAL_FIX_VERSION = RETRIEVAL_SCRIPT_VERSION + "-in15_out20_t05_sim0709"
N_POSES = {"train": 96, "val": 48}
N_PAIRS = {"train": 48, "val": 24}


def _write_split(split: str, poses: torch.Tensor, first_id: int, body_model) -> list[str]:
    """Poses, captions and pairs (with instructions) of one split; returns every text written."""
    from poseembroider.text.captioning.captions import caption_variants
    from poseembroider.text.correcting.instructions import instruction_variants

    ids = list(range(first_id, first_id + len(poses)))
    criteria = {"retrieval_test": True}
    stored = {i: torch.cat([p, torch.zeros(30, 3)]) for i, p in zip(ids, poses, strict=True)}  # (52, 3)
    save_cache(
        {
            "criteria": criteria,
            "poses": stored,
            "shapes": {i: torch.zeros(11) for i in ids},
            "heading_rotation": {i: torch.zeros(3) for i in ids},
        },
        config.DATA_CACHE_DIR / cache_file_name("synthscript", RETRIEVAL_SCRIPT_VERSION, split, "poses", len(ids)),
    )
    captions = caption_variants(poses, body_model, seed=first_id)
    save_cache(
        {"criteria": criteria, "texts": {i: list(texts) for i, texts in zip(ids, captions, strict=True)}},
        config.DATA_CACHE_DIR / cache_file_name("synthscript", RETRIEVAL_SCRIPT_VERSION, split, "rawtexts", len(ids)),
    )
    n = N_PAIRS[split]
    pairs = {p: [ids[2 * p], ids[2 * p + 1]] for p in range(n)}
    instructions = instruction_variants(poses[0 : 2 * n : 2], poses[1 : 2 * n : 2], body_model, seed=first_id + 1)
    save_cache(
        {"criteria": criteria, "pair_2_dataid": pairs, "sequence_info": {p: "out" for p in pairs}},
        config.DATA_CACHE_DIR / cache_file_name("synthfix", RETRIEVAL_FIX_VERSION, split, "pairs", n),
    )
    save_cache(
        {"criteria": criteria, "texts": {p: list(texts) for p, texts in enumerate(instructions)}},
        config.DATA_CACHE_DIR / cache_file_name("synthfix", RETRIEVAL_FIX_VERSION, split, "rawtexts", n),
    )
    return [t for texts in [*captions, *instructions] for t in texts if t]


@pytest.fixture(scope="session")
def retrieval_datasets(body_model) -> dict[str, object]:
    """`{"script": synthscript name, "fix": synthfix name, "texts": all texts}`: 96 / 48 captioned poses
    and 48 / 24 instructed pairs (train / val)."""
    from poseembroider.datasets.synthetic.pose_sampler import PoseSampler

    poses = PoseSampler(seed=7, body_model=body_model).sample(N_POSES["train"] + N_POSES["val"]).poses
    texts = _write_split("train", poses[: N_POSES["train"]], 1000, body_model)
    texts += _write_split("val", poses[N_POSES["train"] :], 5000, body_model)
    return {
        "script": f"synthscript-{RETRIEVAL_SCRIPT_VERSION}",
        "fix": f"synthfix-{RETRIEVAL_FIX_VERSION}",
        "texts": texts,
    }


@pytest.fixture(scope="session")
def text_model_folder_factory():
    """`make_text_model_folder(folder, texts, seed)`, for tests that need another backbone."""
    return make_text_model_folder


@pytest.fixture(scope="session")
def retrieval_text_dir(tmp_path_factory, retrieval_datasets) -> Path:
    """Text model folder for `text_encoder_name` (hidden size 32)."""
    return make_text_model_folder(
        tmp_path_factory.mktemp("retrieval_text") / "tiny-distilbert", retrieval_datasets["texts"]
    )
