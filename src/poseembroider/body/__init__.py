"""SMPL-X body model: joint names and kinematic tree, the smplx wrapper, the procedural model file."""
