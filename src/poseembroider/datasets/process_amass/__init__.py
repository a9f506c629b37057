"""AMASS-style motion files: `motion_files` (SMPL+H / SMPL-X `.npz` readers), `importer`
(`poseembroider data import-amass`: poses, captions, pairs mined in and across sequences, instructions),
`fixture` (AMASS-style files from the synthetic world or the CMU sequences)."""
