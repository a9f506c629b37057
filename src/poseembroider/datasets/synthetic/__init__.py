"""Synthetic world generator, part 1: anatomical joint limits, key poses, a pose sampler and pose sequences."""
