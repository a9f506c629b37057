"""BEDLAM-Script / BEDLAM-Fix from a BEDLAM release (`poseembroider data process-bedlam`).

- `layout`: BEDLAM's files (scene table, `be_seq.csv`, camera csv, motion npz, image folders); errors name
  the file and the column or key at fault;
- `camera`: BEDLAM's camera model (intrinsics from mm, Unreal positions and angles -> OpenCV camera);
- `person_frames`: original steps 1-3 on one sequence group (poses, boxes, joints, selection per image);
- `pipeline`: the steps over a split (parallel, shardable units; farthest-point subset; captions; pairs;
  instructions; caches), resumable;
- `fixture`: a small release in BEDLAM's layout made from the procedural world (tests, try-outs);
- `process_bedlam`: the script (`python -m poseembroider.datasets.process_bedlam.process_bedlam ...`).
"""
