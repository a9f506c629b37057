"""A small PoseFix + PoseScript release made by our own code, in the layout and formats of the real one.

`write_posefix_release(root)` writes:

- `root/posefix_release/`: `pair_id_2_pose_ids.json`, `{train,val,test}_{in,out}_sequence_pair_ids.json`,
  `posefix_human_6157.json` (our instruction writer's texts as the "human" modifiers; some pairs with two
  texts, one with only an empty text), `posefix_paraphrases_4284.json`,
  `ids_2_dataset_sequence_and_frame_index_100k.json`;
- `root/posescript_release/`: `{split}_ids_100k.json`, `posescript_human_6293.json` (our captioner's texts for
  every other pose), the same id table;
- `root/output_data_pkl/{pose_id:06d}.pkl`: each pose as the converted SMPL-X files are (a `pickle.dump` of
  a dict of CPU tensors with `requires_grad`: global_orient (1, 3), body_pose (21, 3), hands (15, 3), jaw,
  eyes, betas (1, 10), transl (1, 3)), except `missing_pose_files` of them (skipped by the loaders);
- `root/amass/Fixture/seq_<k>_poses.npz`: the same poses as AMASS SMPL+H sequence files (z-up), which the id
  table points at.

Poses: smooth synthetic sequences (`sample_sequences`), turned z-up (AMASS frame, heading kept). In-sequence
pairs are (frame t, frame t + `in_gap`) of one sequence; out-of-sequence pairs join frames of two sequences.
Sequences are dealt to the splits in turn, so every split has in- and out-of-sequence pairs.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from poseembroider.atomic_io import atomic_file, write_json_atomic
from poseembroider.datasets.process_amass.fixture import write_amass_motion
from poseembroider.datasets.process_posefix.pose_sources import pose_file_path
from poseembroider.datasets.process_posefix.release import AMASS_IDS_FILE, SPLITS
from poseembroider.geometry import normalize_global_orient_bedlam, y_up_to_z_up, z_up_to_y_up

__all__ = ["PoseFixReleaseFixture", "write_posefix_release", "write_smplx_pose_file"]


@dataclass(frozen=True)
class PoseFixReleaseFixture:
    posefix_dir: Path
    posescript_dir: Path
    smplx_dir: Path
    amass_root: Path
    pairs: dict[str, dict[int, tuple[int, int, str]]]  # split -> {pair id: (pose A, pose B, kind)}, annotated ones
    missing_pose_ids: list[int]
    poses_z_up: dict[int, np.ndarray]  # pose id -> (22, 3) z-up axis-angles as written


def write_smplx_pose_file(path: Path, pose: np.ndarray | torch.Tensor, protocol: int = 4) -> Path:
    """A converted-SMPL-X pose file as the original's conversion leaves them (module docstring)."""
    pose = torch.as_tensor(np.asarray(pose), dtype=torch.float32).reshape(-1, 3)
    full = torch.zeros(52, 3)
    full[: pose.shape[0]] = pose
    data = {
        "global_orient": full[:1].clone().requires_grad_(),
        "body_pose": full[1:22].clone().requires_grad_(),
        "left_hand_pose": full[22:37].clone().requires_grad_(),
        "right_hand_pose": full[37:52].clone().requires_grad_(),
        "jaw_pose": torch.zeros(1, 3, requires_grad=True),
        "leye_pose": torch.zeros(1, 3, requires_grad=True),
        "reye_pose": torch.zeros(1, 3, requires_grad=True),
        "betas": torch.zeros(1, 10, requires_grad=True),
        "transl": torch.zeros(1, 3, requires_grad=True),
    }
    with atomic_file(path) as tmp, tmp.open("wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return Path(path)


def _y_up_normalised(poses_z: np.ndarray) -> torch.Tensor:
    """(N, 22, 3) z-up poses -> y-up heading-normalised poses, the frame our text writers read."""
    poses = torch.from_numpy(poses_z).clone()
    poses[:, 0], _ = normalize_global_orient_bedlam(z_up_to_y_up(poses[:, 0]))
    return poses


def write_posefix_release(
    root: Path,
    *,
    sequences: int = 6,
    frames: int = 8,
    fps: float = 30.0,
    in_gap: int = 3,
    missing_pose_files: int = 1,
    seed: int = 0,
    body_model=None,
) -> PoseFixReleaseFixture:
    """Write the release of the module docstring under `root` (in the order: sequences dealt to train, val,
    test in turn; `sequences` >= 6 gives every split two sequences)."""
    from poseembroider.datasets.synthetic.sequences import sample_sequences
    from poseembroider.text.captioning.captions import caption_variants
    from poseembroider.text.correcting.instructions import instruction_variants

    root = Path(root)
    posefix_dir, posescript_dir = root / "posefix_release", root / "posescript_release"
    smplx_dir, amass_root = root / "output_data_pkl", root / "amass"
    batch = sample_sequences(sequences, frames, fps, seed, body_model=body_model)
    poses_z = batch.poses.numpy().copy()
    poses_z[..., 0, :] = y_up_to_z_up(batch.poses[..., 0, :].double()).float().numpy()

    pose_id = lambda s, t: s * frames + t  # noqa: E731 - running pose ids over (sequence, frame)
    id_table = {}
    for s in range(sequences):
        sequence = f"Fixture/seq_{s:02d}_poses.npz"
        write_amass_motion(amass_root / sequence, poses_z[s], fps, release="smplh")
        for t in range(frames):
            id_table[str(pose_id(s, t))] = ["AMASS", sequence, t]
    split_of = {s: SPLITS[s % len(SPLITS)] for s in range(sequences)}

    pair_list: list[list[int]] = []
    split_pairs: dict[str, dict[str, list[int]]] = {split: {"in": [], "out": []} for split in SPLITS}
    for split in SPLITS:
        members = [s for s in range(sequences) if split_of[s] == split]
        for s in members:
            for t in range(0, frames - in_gap, 2):
                split_pairs[split]["in"].append(len(pair_list))
                pair_list.append([pose_id(s, t), pose_id(s, t + in_gap)])
        for a, b in zip(members, members[1:] + members[:1], strict=True):
            if a != b:
                for t in range(0, frames, 3):
                    split_pairs[split]["out"].append(len(pair_list))
                    pair_list.append([pose_id(a, t), pose_id(b, frames - 1 - t)])

    flat = poses_z.reshape(-1, 22, 3)
    a_ids = [a for a, _ in pair_list]
    b_ids = [b for _, b in pair_list]
    kinds = {p: k for split in SPLITS for k in ("in", "out") for p in split_pairs[split][k]}
    texts = instruction_variants(
        _y_up_normalised(flat[a_ids]), _y_up_normalised(flat[b_ids]), body_model, seed=seed, in_sequence=False
    )
    human: dict[str, str | list[str]] = {}
    for p, variants in enumerate(texts):
        human[str(p)] = [variants[0], variants[1]] if p % 4 == 1 else variants[0]
    human["0"] = ""  # an unannotated pair: dropped by the loaders, as the original drops them
    paraphrases = {str(p): texts[p][2] for p in range(0, len(pair_list), 2)}

    write_json_atomic(posefix_dir / "pair_id_2_pose_ids.json", pair_list)
    for split in SPLITS:
        for kind in ("in", "out"):
            write_json_atomic(posefix_dir / f"{split}_{kind}_sequence_pair_ids.json", split_pairs[split][kind])
    write_json_atomic(posefix_dir / "posefix_human_6157.json", human)
    write_json_atomic(posefix_dir / "posefix_paraphrases_4284.json", paraphrases)
    write_json_atomic(posefix_dir / AMASS_IDS_FILE, id_table)

    all_ids = list(range(sequences * frames))
    captions = caption_variants(_y_up_normalised(flat), body_model, seed=seed + 1)
    for split in SPLITS:
        ids = [pose_id(s, t) for s in range(sequences) if split_of[s] == split for t in range(frames)]
        write_json_atomic(posescript_dir / f"{split}_ids_100k.json", ids)
    write_json_atomic(
        posescript_dir / "posescript_human_6293.json",
        {str(i): (captions[i][0] if i % 3 else captions[i][:2]) for i in all_ids if i % 2 == 0},
    )
    write_json_atomic(posescript_dir / AMASS_IDS_FILE, id_table)

    used = sorted({p for pair in pair_list for p in pair})
    missing = used[len(used) // 2 : len(used) // 2 + missing_pose_files]
    for i in all_ids:
        if i not in missing:
            write_smplx_pose_file(pose_file_path(smplx_dir, i), flat[i])
    annotated = {
        split: {
            p: (pair_list[p][0], pair_list[p][1], kinds[p])
            for kind in ("in", "out")
            for p in split_pairs[split][kind]
            if p != 0
        }
        for split in SPLITS
    }
    return PoseFixReleaseFixture(
        posefix_dir, posescript_dir, smplx_dir, amass_root, annotated, missing, {i: flat[i] for i in all_ids}
    )
