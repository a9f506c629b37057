"""Heads trained on the frozen representation x̄ (DESIGN.md §1 jobs 2 and 3).

- `input_types`: the original's plural input-type names (`--input_types images poses texts`) and the
  modalities they stand for.
- `cache_intermodality_features` (script): x̄ of every element of a dataset split, cached once per
  representation model (library: `features.intermodality`).
- `pose_estimation/`: HPSEstimator, an SMPL-X body pose + shape regression head (model, mean pose,
  train / evaluate scripts);
- `instruction_generation/`: InstructionGenerator, the text of the correction from pose A to pose B.
"""
