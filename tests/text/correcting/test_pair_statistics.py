"""Posecode categories for pair mining: shape, no noise, batch independence, differing counts."""

from __future__ import annotations

import torch
from instruction_helpers import POSES, flip, sample_pairs

from poseembroider.datasets.synthetic.pair_mining import count_differing_codes
from poseembroider.text.captioning.captions import posecodes_of_poses
from poseembroider.text.captioning.posecode_definitions import POSECODES, SUPER_POSECODES
from poseembroider.text.correcting.pair_statistics import (
    NUM_MINING_POSECODES,
    count_differing_posecodes,
    count_differing_rows,
    posecode_categories,
)


def test_categories_are_noise_free_rows_of_every_posecode(skeleton):
    a, _ = sample_pairs(64, seed=3)
    codes = posecode_categories(a, skeleton)
    assert codes.shape == (64, len(POSECODES) + len(SUPER_POSECODES)) == (64, NUM_MINING_POSECODES)
    assert codes.dtype == torch.long
    assert torch.equal(codes, posecode_categories(a, skeleton))
    assert torch.equal(codes[10:20], posecode_categories(a[10:20], skeleton))  # one pose, one row
    assert torch.equal(codes, posecode_categories(a, skeleton, batch_size=7))
    reference = posecodes_of_poses(a, skeleton, noise=False)
    assert torch.equal(codes[:, : len(POSECODES)], reference.categories)
    assert torch.equal(codes[:, len(POSECODES):], reference.super_active.long())
    assert (codes[:, : len(POSECODES)] >= 0).all()  # head codes are measured (axis-angles are passed)


def test_differing_posecodes(skeleton):
    a, b = sample_pairs(32, seed=6)
    counts = count_differing_posecodes(a, b, skeleton)
    codes_a, codes_b = posecode_categories(a, skeleton), posecode_categories(b, skeleton)
    assert torch.equal(counts, NUM_MINING_POSECODES - (codes_a == codes_b).sum(1))
    assert torch.equal(counts, count_differing_rows(codes_a, codes_b))
    assert torch.equal(counts, count_differing_codes(codes_a, codes_b).diagonal())  # what mining compares
    assert count_differing_posecodes(a, a, skeleton).eq(0).all()
    standing, seated = POSES["standing"], POSES["seated"]
    assert int(count_differing_posecodes(standing, seated, skeleton)[0]) > 20
    # flipping both poses keeps the count (the codes are mirrored, not changed)
    assert torch.equal(count_differing_posecodes(flip(a), flip(b), skeleton), counts)
