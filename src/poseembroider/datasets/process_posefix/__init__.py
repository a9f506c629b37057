"""PoseFix and PoseScript releases -> processed caches: `release` (the json files), `pose_sources` (the converted
SMPL-X pose files, read with the restricted unpickler, or AMASS), `build` (normalisation, caches, first-load
building), `fixture` (a small release made by our own code)."""
