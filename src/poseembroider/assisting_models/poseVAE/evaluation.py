"""Evaluation of a trained PoseVAE on a dataset split: ELBO terms and reconstruction errors.

Keys of the metrics (all dataset means):

| key | meaning |
| --- | --- |
| `elbo_v2v`, `elbo_jts`, `elbo_rot` | (-NLL summed over the coefficients - KL) / number of coefficients, z ~ q(z|x) |
| `kld` | KL(q(z|x) ‖ N(0, I)) summed over the latent dims (times `wloss_kldnpmul`) |
| `recon_<m>` | error of the deterministic reconstruction (decoded posterior mean) |
| `sample_<m>_avg` | error averaged over `nb_sample_reconstruction` decoded samples |
| `sample_<m>_top<k>` | mean error of the k best samples, for k in `k_topk_reconstruction_values` |

with `<m>` among `mpjpe_mm`, `pampjpe_mm` (22 body joints), `pve_mm` (vertices) and `rot_deg` (mean
geodesic joint-rotation error), see `reconstruction_metrics.py`. Samples are drawn from the prior N(0, I)
by default, as in the original (whose `sample_nposes` ignores the input pose): this measures how well the
prior covers the data (best-of-k); `sample_from="posterior"` draws z ~ q(z|x) instead (reconstruction
diversity). `evaluate_saved_model` writes the metrics, atomically, next to the checkpoint as
`result_<split>_<dataset>.json` and reuses that file while the settings are unchanged. The script
`evaluate_poseVAE` is this module with flags.

Difference with the original: its evaluation subtracts KL(q ‖ q) = 0 in the ELBO (it passes the posterior
as the "prior"), so it reports -NLL / N. Ours subtracts the KL to the model's prior N(0, I); the
original's value is `elbo_<t> + kld / N_<t>`.

Poses outside any dataset (e.g. the 108 real CMU poses, `poseembroider.data.load_cmu_dev_poses`):
`evaluate_pose_file` (the `--pose_file` flag of `evaluate_poseVAE`) normalises them as the datasets do and
returns the errors of their deterministic reconstructions (`reconstruction_errors`) beside those of the
mean-pose baseline (`mean_pose_errors`: every pose answered by one chordal-mean pose).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from poseembroider import config
from poseembroider.assisting_models.poseVAE.loss import gaussian_nll, kl_to_standard_normal, laplacian_nll
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE
from poseembroider.assisting_models.poseVAE.reconstruction_metrics import METRIC_NAMES, pose_reconstruction_errors
from poseembroider.datasets.pose_processing import POSE_NORMALIZERS, normalize_poses
from poseembroider.datasets.registry import get_dataset
from poseembroider.devices import resolve_device
from poseembroider.evaluation.result_files import result_path, reusable_result, save_result
from poseembroider.geometry import axis_angle_to_matrix, chordal_mean_axis_angle
from poseembroider.models.pretrained import resolve_model_dir

__all__ = [
    "SAMPLE_SOURCES",
    "evaluate_pose_file",
    "evaluate_posevae",
    "evaluate_saved_model",
    "format_pose_file_table",
    "format_table",
    "mean_pose_errors",
    "reconstruction_errors",
]

SAMPLE_SOURCES = ("prior", "posterior")


def _errors(body, decoded: dict[str, torch.Tensor], original, target_rotmat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pose errors of decoded poses against the original bodies and rotations (B, J, 3, 3)."""
    posed = body(decoded["pose_body"])
    return pose_reconstruction_errors(
        posed.joints,
        original.joints,
        posed.vertices,
        original.vertices,
        decoded["pose_body_matrot"].reshape(target_rotmat.shape),
        target_rotmat,
    )


def _sum_into(sums: dict[str, float], name: str, values: torch.Tensor) -> None:
    sums[name] = sums.get(name, 0.0) + float(values.sum())


@torch.no_grad()
def evaluate_posevae(
    model: PoseVAE,
    dataset: Dataset,
    batch_size: int = 32,
    nb_sample: int = config.nb_sample_reconstruction,
    k_values: Sequence[int] = config.k_topk_reconstruction_values,
    sample_from: str = "prior",
    seed: int = 42,
    progress: bool = True,
) -> dict[str, float]:
    """The metrics of the module docstring over `dataset` (items with `poses` (J, 3), z-up model frame).

    The model is used in eval mode on its own device; its body model (`model.body_model`) poses the
    bodies. All random draws come from one generator seeded with `seed`.
    """
    if sample_from not in SAMPLE_SOURCES:
        raise ValueError(f"sample_from: expected one of {SAMPLE_SOURCES}, got {sample_from!r}")
    if nb_sample < 1:
        raise ValueError(f"nb_sample_reconstruction must be >= 1, got {nb_sample}")
    bad_k = [k for k in k_values if not 1 <= k <= nb_sample]
    if bad_k:
        raise ValueError(
            f"k_topk_reconstruction_values {list(bad_k)} must lie in [1, nb_sample_reconstruction={nb_sample}]"
        )
    if len(dataset) == 0:
        raise ValueError("evaluate_posevae: the dataset is empty")
    model.eval()
    device = model.decsigma_v2v.device
    body = model.body_model(device)
    generator = torch.Generator().manual_seed(seed)

    def normal(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(device)

    sums: dict[str, float] = {}
    count = 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in tqdm(loader, desc="evaluate PoseVAE", disable=not progress, leave=False):
        poses = model._check_poses(batch["poses"].to(device))  # noqa: SLF001
        size, joints = poses.shape[:2]
        target_rotmat = axis_angle_to_matrix(poses)
        original = body(poses)
        q_z = model.encode(poses)

        # ELBO terms, z ~ q(z|x)
        rec = model.decode(q_z.loc + q_z.scale * normal(tuple(q_z.loc.shape)))
        posed = body(rec["pose_body"])
        kld = model.config.wloss_kldnpmul * kl_to_standard_normal(q_z)
        nll = {
            "v2v": laplacian_nll(posed.vertices, original.vertices, model.decsigma_v2v).sum((1, 2)),
            "jts": laplacian_nll(posed.joints, original.joints, model.decsigma_jts).sum((1, 2)),
            "rot": gaussian_nll(
                rec["pose_body_matrot"].reshape(size, joints, 3, 3), target_rotmat, model.decsigma_rot
            ).sum((1, 2, 3)),
        }
        norms = {"v2v": original.vertices.shape[1] * 3, "jts": original.joints.shape[1] * 3, "rot": joints * 9}
        for term, values in nll.items():
            _sum_into(sums, f"elbo_{term}", (-values - kld) / norms[term])
        _sum_into(sums, "kld", kld)

        # deterministic reconstruction
        for name, values in _errors(body, model.decode(q_z.loc), original, target_rotmat).items():
            _sum_into(sums, f"recon_{name}", values)

        # nb_sample decoded samples per pose: average and best-of-k
        per_sample: dict[str, list[torch.Tensor]] = {name: [] for name in METRIC_NAMES}
        for _ in range(nb_sample):
            noise = normal((size, model.latentD))
            z = noise if sample_from == "prior" else q_z.loc + q_z.scale * noise
            for name, values in _errors(body, model.decode(z), original, target_rotmat).items():
                per_sample[name].append(values)
        for name, values in per_sample.items():
            stacked = torch.stack(values, dim=1)  # (B, nb_sample)
            _sum_into(sums, f"sample_{name}_avg", stacked.mean(1))
            for k in k_values:
                _sum_into(sums, f"sample_{name}_top{k}", stacked.topk(k, dim=1, largest=False).values.mean(1))
        count += size
    return {name: value / count for name, value in sums.items()}


def evaluate_saved_model(
    model_path: str | Path,
    dataset: str = "bedlamscript-overlap30_res224_j16_sf11",
    split: str = "val",
    checkpoint: str = "best",
    device: str | torch.device = "auto",
    data_size: int | None = None,
    batch_size: int = 32,
    nb_sample_reconstruction: int = config.nb_sample_reconstruction,
    k_topk_reconstruction_values: Sequence[int] = config.k_topk_reconstruction_values,
    sample_from: str = "prior",
    seed: int = 42,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the PoseVAE of `model_path` (a model folder, a training output folder and its `checkpoint`
    sub-folder, or a shortname) on `split` of registry dataset `dataset` (its first `data_size` poses), or
    reuse the result file computed with the same settings unless `overwrite`. The keywords are the flags of
    `evaluate_poseVAE` (`evaluate_saved_model(**vars(args))`).

    Returns the content of the result file: `model_dir`, `epoch` (of the checkpoint, when known), `dataset`,
    `split`, `size`, `body_model` (the kind of body model that posed the bodies), `settings` and `metrics`."""
    model_dir = resolve_model_dir(model_path, checkpoint)
    settings = {
        "nb_sample_reconstruction": nb_sample_reconstruction,
        "k_topk_reconstruction_values": list(k_topk_reconstruction_values),
        "sample_from": sample_from,
        "seed": seed,
        "data_size": data_size,
    }
    previous = reusable_result(model_dir, split, dataset, settings, overwrite)
    if previous is not None:
        return previous
    model = PoseVAE.from_pretrained(model_dir, map_location=resolve_device(device))
    poses: Dataset = get_dataset(dataset, split, item_format="p", num_body_joints=model.num_body_joints)
    if data_size:
        poses = Subset(poses, range(min(data_size, len(poses))))  # type: ignore[arg-type]
    metrics = evaluate_posevae(
        model,
        poses,
        batch_size=batch_size,
        nb_sample=nb_sample_reconstruction,
        k_values=k_topk_reconstruction_values,
        sample_from=sample_from,
        seed=seed,
        progress=progress,
    )
    size = len(poses)  # type: ignore[arg-type]
    return save_result(model_dir, split, dataset, settings, size, metrics, body_model=model.body_model().kind)


def format_table(result: Mapping[str, Any]) -> str:
    """One 'name value' line per metric of a result, in a fixed order, then the result file."""
    metrics = result["metrics"]
    order = ["elbo_jts", "elbo_v2v", "elbo_rot", "kld"]
    order += [f"recon_{m}" for m in METRIC_NAMES]
    order += sorted(k for k in metrics if k.startswith("sample_"))
    width = max(len(k) for k in order)
    lines = [f"{k:<{width}}  {metrics[k]:.4f}" for k in order if k in metrics]
    lines.append(f"results: {result_path(Path(result['model_dir']), result['split'], result['dataset'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- pose files


def _mean_errors(body, predicted: torch.Tensor, target: torch.Tensor, batch_size: int) -> dict[str, float]:
    """Dataset means of `pose_reconstruction_errors` of predicted vs target poses (N, J, 3), posed by `body`."""
    sums: dict[str, float] = {}
    for start in range(0, len(target), batch_size):
        pred, true = predicted[start : start + batch_size], target[start : start + batch_size]
        rotmat = axis_angle_to_matrix(true)
        decoded = {"pose_body": pred, "pose_body_matrot": axis_angle_to_matrix(pred)}
        for name, values in _errors(body, decoded, body(true), rotmat).items():
            _sum_into(sums, name, values)
    return {name: value / len(target) for name, value in sums.items()}


@torch.no_grad()
def reconstruction_errors(model: PoseVAE, poses: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    """Mean errors (`mpjpe_mm`, `pampjpe_mm`, `pve_mm`, `rot_deg`) of the deterministic reconstructions
    (decoded posterior means) of `poses` (N, J, 3) axis-angles in the models' z-up frame."""
    model.eval()
    device = model.decsigma_v2v.device
    poses = model._check_poses(torch.as_tensor(poses, dtype=torch.float32).to(device))  # noqa: SLF001
    if len(poses) == 0:
        raise ValueError("reconstruction_errors: no poses")
    decoded = torch.cat(
        [model.reconstruct(poses[s : s + batch_size])["pose_body"] for s in range(0, len(poses), batch_size)]
    )
    return _mean_errors(model.body_model(device), decoded, poses, batch_size)


@torch.no_grad()
def mean_pose_errors(
    poses: torch.Tensor, body, mean_pose: torch.Tensor | None = None, batch_size: int = 256
) -> dict[str, float]:
    """Errors of answering every pose of `poses` (N, J, 3) with one pose: `mean_pose` (J, 3), by default the
    chordal mean of `poses` themselves (the best single answer for them, hence a demanding baseline)."""
    poses = torch.as_tensor(poses, dtype=torch.float32)
    mean = chordal_mean_axis_angle(poses) if mean_pose is None else torch.as_tensor(mean_pose, dtype=torch.float32)
    return _mean_errors(body, mean.reshape(1, *poses.shape[1:]).expand_as(poses), poses, batch_size)


def evaluate_pose_file(
    model_path: str | Path,
    pose_file: str | Path,
    pose_normalization: str = "bedlam",
    checkpoint: str = "best",
    device: str | torch.device = "auto",
    mean_pose_dataset: str | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Reconstruction errors of the PoseVAE of `model_path` on the poses of an `.npz` file, and the mean-pose
    baseline on the same poses.

    `pose_file`: any layout `text.pose_files.load_pose_file` reads ('poses' (N, 22 | 52 | 55, 3), flat, or
    AMASS-style keys); `pose_normalization`: their frame, as in the datasets ('bedlam': y-up SMPL-X with any
    heading, as the CMU poses; 'amass': z-up; 'none': already in the models' frame). The baseline's pose is
    the chordal mean of the training poses of `mean_pose_dataset` when given (what a model that learnt
    nothing would answer), else of the file's own poses.

    Returns {model_dir, pose_file, size, pose_normalization, metrics: {recon_<m>}, mean_pose: {<m>},
    mean_pose_source}, with `<m>` among `mpjpe_mm`, `pampjpe_mm`, `pve_mm`, `rot_deg`.
    """
    from poseembroider.text.pose_files import load_pose_file

    if pose_normalization not in POSE_NORMALIZERS:
        raise ValueError(f"--pose_normalization {pose_normalization!r}: use one of {sorted(POSE_NORMALIZERS)}")
    model_dir = resolve_model_dir(model_path, checkpoint)
    model = PoseVAE.from_pretrained(model_dir, map_location=resolve_device(device))
    poses = normalize_poses(load_pose_file(pose_file)[:, : model.num_body_joints], pose_normalization)
    mean_pose, source = None, f"chordal mean of the {len(poses)} poses of the file"
    if mean_pose_dataset:
        train = get_dataset(mean_pose_dataset, "train", item_format="p", num_body_joints=model.num_body_joints)
        train_poses = torch.cat([batch["poses"] for batch in DataLoader(train, batch_size=4096)])
        mean_pose = chordal_mean_axis_angle(train_poses)
        source = f"chordal mean of the {len(train_poses)} train poses of {mean_pose_dataset}"
    metrics = reconstruction_errors(model, poses, batch_size)
    baseline = mean_pose_errors(poses, model.body_model(), mean_pose, batch_size)
    return {
        "model_dir": str(model_dir),
        "pose_file": str(pose_file),
        "size": len(poses),
        "pose_normalization": pose_normalization,
        "metrics": {f"recon_{k}": v for k, v in metrics.items()},
        "mean_pose": baseline,
        "mean_pose_source": source,
    }


def format_pose_file_table(result: Mapping[str, Any]) -> str:
    """'metric  reconstruction  mean pose' lines of an `evaluate_pose_file` result."""
    lines = [f"{result['size']} poses of {result['pose_file']} ({result['pose_normalization']} frame)"]
    lines.append(f"{'':<12}  {'PoseVAE':>9}  {'mean pose':>9}")
    for name in METRIC_NAMES:
        lines.append(f"{name:<12}  {result['metrics'][f'recon_{name}']:>9.2f}  {result['mean_pose'][name]:>9.2f}")
    lines.append(f"mean pose: {result['mean_pose_source']}")
    return "\n".join(lines)
