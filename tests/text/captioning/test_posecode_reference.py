"""The elementary posecodes keep the categories they had before the whole-body postures were added:
a reference of every original code's category on the 108 real CMU poses and on 300 sampled poses,
without noise and with the noise of seed 0, stored by code name (`data/posecode_reference.npz`).

The reference was written by `reference_arrays` with the captioner of commit 4149bac (277 elementary
codes, before the posture recipes); regenerate it only when an elementary code is changed on purpose:
`python tests/text/captioning/test_posecode_reference.py` (from the repository root, with the venv).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from poseembroider.data import load_cmu_dev_poses
from poseembroider.text.captioning.captions import posecodes_of_poses
from poseembroider.text.captioning.posecode_definitions import KINDS, NUM_ORIGINAL_POSECODES, POSECODES

REFERENCE = Path(__file__).parent / "data" / "posecode_reference.npz"
MARGIN = 1e-4  # values this close to a threshold may bin either way across machines: not compared
NOISE_SEED = 0


def reference_poses(sample_poses) -> torch.Tensor:
    """(408, 22, 3): the CMU poses, then `sample_poses(300, seed=21)` of the conftest."""
    return torch.cat([torch.as_tensor(load_cmu_dev_poses()), sample_poses(300, seed=21)])


def reference_arrays(poses: torch.Tensor, body_model, posecodes_fn=posecodes_of_poses, codes=POSECODES) -> dict:
    """Categories (N, K) int8 without noise and with the noise of `NOISE_SEED`, and (N, K) bool masks of
    the values within `MARGIN` of a threshold, for the codes `codes` (their names in `names`)."""
    out = {"names": np.array([c.name for c in codes])}
    for tag, noise in (("clean", False), ("noisy", True)):
        pc = posecodes_fn(poses, body_model, seed=NOISE_SEED, noise=noise)
        k = len(codes)
        values, categories = pc.values[:, :k], pc.categories[:, :k]
        width = max(len(KINDS[c.kind].thresholds) for c in codes)
        table = torch.tensor(
            [list(KINDS[c.kind].thresholds) + [float("inf")] * (width - len(KINDS[c.kind].thresholds)) for c in codes]
        )
        borderline = ((values[..., None] - table).abs() < MARGIN).any(-1)
        out[f"{tag}_categories"] = categories.numpy().astype(np.int8)
        out[f"{tag}_borderline"] = borderline.numpy()
    return out


def test_elementary_categories_are_unchanged(body_model, poses_sampler):
    ref = np.load(REFERENCE)
    names = list(ref["names"])
    assert names == [c.name for c in POSECODES[:NUM_ORIGINAL_POSECODES]], "the original codes moved"
    now = reference_arrays(reference_poses(poses_sampler), body_model, codes=POSECODES[:NUM_ORIGINAL_POSECODES])
    for tag in ("clean", "noisy"):
        compared = ~(ref[f"{tag}_borderline"] | now[f"{tag}_borderline"])
        same = (ref[f"{tag}_categories"] == now[f"{tag}_categories"]) | ~compared
        assert compared.mean() > 0.999
        assert same.all(), (tag, [names[k] for k in np.nonzero(~same)[1][:10]])


if __name__ == "__main__":  # write the reference with the captioner of this checkout
    sys.path[:0] = [str(Path(__file__).parent.parent), str(Path(__file__).parent)]
    from conftest import sample_poses
    from poseembroider.body.body_model import BodyModel

    REFERENCE.parent.mkdir(exist_ok=True)
    arrays = reference_arrays(reference_poses(sample_poses), BodyModel(), codes=POSECODES[:NUM_ORIGINAL_POSECODES])
    np.savez_compressed(REFERENCE, **arrays)
    print(f"wrote {REFERENCE}: {arrays['clean_categories'].shape}")
