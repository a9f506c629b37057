"""`poseembroider <command>`: the toolkit's command line.

Commands are registered in `COMMANDS` (name -> help, argument setup, handler). Handlers import what
they need when they run, so `poseembroider --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from poseembroider.config import finite_float, non_negative_int, positive_int, seed_int


@dataclass(frozen=True)
class Command:
    """One leaf command: `path` words after `poseembroider`, e.g. ("body", "build-procedural")."""

    path: tuple[str, ...]
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: list[Command] = []


def command(path: str, help: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Decorator registering `run(args) -> exit code` under the space-separated `path`."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS.append(Command(tuple(path.split()), help, configure, run))
        return run

    return register


# ---------------------------------------------------------------- models


def _configure_models_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


@command("models list", "list the registered model shortnames and where they point", _configure_models_list)
def _models_list(args: argparse.Namespace) -> int:
    from poseembroider import config
    from poseembroider.registry import load_registry

    entries = load_registry()
    if args.json:
        rows = [{"shortname": e.shortname, "path": str(e.path), "exists": e.exists} for e in entries.values()]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"models root: {config.MODELS_ROOT}")
    width = max((len(n) for n in entries), default=10)
    for entry in entries.values():
        status = "ok     " if entry.exists else "missing"
        print(f"{entry.shortname:<{width}}  {status}  {entry.path}")
    return 0


def _configure_import_original(p: argparse.ArgumentParser) -> None:
    p.add_argument("--release-dir", type=Path, required=True, help="folder of the original's release files")
    p.add_argument(
        "--transformer-cache",
        type=Path,
        default=None,
        help="the original's TRANSFORMER_CACHE_DIR (holding distilbert-base-uncased/); default: "
        "RELEASE_DIR/huggingface_models",
    )
    p.add_argument(
        "--torch-cache",
        type=Path,
        default=None,
        help="the original's TORCH_CACHE_DIR (holding smplerx/smpler_x_b32.pth.tar); default: RELEASE_DIR/torch_models",
    )
    p.add_argument("--out", type=Path, required=True, help="folder receiving one model folder per shortname")
    p.add_argument("--only", nargs="+", default=None, metavar="SHORTNAME", help="import these (and what they need)")


@command(
    "import-original",
    "import the original's released checkpoints as registered model folders (config.json + model.safetensors)",
    _configure_import_original,
)
def _import_original(args: argparse.Namespace) -> int:
    import time

    from poseembroider.compat.release_import import folder_bytes, import_release
    from poseembroider.models.pretrained import CheckpointError

    start = time.perf_counter()
    try:
        report = import_release(args.release_dir, args.out, args.transformer_cache, args.torch_cache, args.only)
    except (FileNotFoundError, KeyError, CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, folder in report.written.items():
        seconds = f"{report.seconds[name]:6.1f} s" if name in report.seconds else "   asset"
        print(f"{name:<45} {seconds}  {folder_bytes(folder) / 1e6:9.1f} MB  {folder}")
    for name, why in report.skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    print(
        f"imported {len(report.seconds)} model(s) and {len(report.written) - len(report.seconds)} frozen-encoder "
        f"folder(s) in {time.perf_counter() - start:.1f} s, {report.total_bytes() / 1e6:.1f} MB under {args.out}; "
        "registered: `poseembroider models list`"
    )
    return 0


# ---------------------------------------------------------------- body


def _configure_build_procedural(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder (default: PROCEDURAL_BODY_MODEL_PATH)")


@command(
    "body build-procedural",
    "write the procedural SMPL-X-format model to OUT/smplx/SMPLX_NEUTRAL.npz",
    _configure_build_procedural,
)
def _body_build_procedural(args: argparse.Namespace) -> int:
    from poseembroider import config
    from poseembroider.body.procedural_model import PROCEDURAL_MODEL_VERSION, build_procedural_smplx

    out = config.PROCEDURAL_BODY_MODEL_PATH if args.out is None else args.out
    path = build_procedural_smplx(out)
    print(f"wrote {path} (procedural SMPL-X-format model, version {PROCEDURAL_MODEL_VERSION})")
    return 0


@command("body info", "say which body model the toolkit uses (licensed SMPL-X or procedural)")
def _body_info(args: argparse.Namespace) -> int:
    from poseembroider.body.model_file import locate_model_file

    print(locate_model_file().description)
    return 0


# ---------------------------------------------------------------- config


@command("config", "print the effective paths and constants (POSEEMBROIDER_* overrides marked)")
def _config(args: argparse.Namespace) -> int:
    from poseembroider import config

    print(config.describe())
    return 0


# ---------------------------------------------------------------- data


def _configure_data_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="dataset name part (lower-case letters, digits, '_')")
    p.add_argument("--n-train", type=non_negative_int, required=True, help="poses kept in the train split (after FPS)")
    p.add_argument("--n-val", type=non_negative_int, required=True, help="poses kept in the val split (after FPS)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--workers", type=non_negative_int, default=2, help="rendering processes")
    p.add_argument("--pool-factor", type=finite_float, default=3.0, help="candidates per kept pose before FPS")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


@command(
    "data synth",
    "generate a synthetic script + fix dataset in the processed BEDLAM cache format",
    _configure_data_synth,
)
def _data_synth(args: argparse.Namespace) -> int:
    from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth

    try:
        cfg = SynthConfig(
            name=args.name,
            n_train=args.n_train,
            n_val=args.n_val,
            seed=args.seed,
            workers=args.workers,
            pool_factor=args.pool_factor,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from poseembroider.atomic_io import FolderNotWritableError

    try:
        stats = generate_synth(cfg)
    except FolderNotWritableError as err:  # found before any rendering
        print(f"error: {err.strerror}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(f"script dataset: {stats['script_dataset']}\nfix dataset:    {stats['fix_dataset']}")
        for split, s in stats["splits"].items():
            print(
                f"  {split}: {s['size']} poses, {s['pairs_in_sequence']} in- / {s['pairs_out_of_sequence']} "
                f"out-of-sequence pairs"
            )
        print(f"{stats['samples_per_s']} samples/s; caches in {stats['cache_dir']}, images in {stats['image_root']}")
    return 0


def _configure_data_pools(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--script-dataset",
        required=True,
        help="script dataset whose val split the pools share, e.g. synthscript-quickstart_overlap30_res224_j16_sf11",
    )
    p.add_argument("--n-train", type=positive_int, required=True, help="poses in the train split of the pose pool")
    p.add_argument("--captions-per-pose", type=positive_int, default=3, help="captions per pose (default: %(default)s)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the pool (default: %(default)s)")
    p.add_argument(
        "--pool-factor", type=finite_float, default=3.0, help="candidates per kept pose before FPS, per chunk"
    )
    p.add_argument(
        "--chunk-size", type=positive_int, default=2048, help="poses per chunk (each chunk FPS'd on its own)"
    )
    p.add_argument("--no-pairs", dest="pairs", action="store_false", help="make the pose pool only (no synthpairs)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


@command(
    "data pools",
    "pose-only training pools (no images): synthposes-<script version> and synthpairs-<fix version>",
    _configure_data_pools,
)
def _data_pools(args: argparse.Namespace) -> int:
    from poseembroider.datasets.cache_format import CacheError
    from poseembroider.datasets.synthetic.pose_pools import PosePoolConfig, generate_pools, script_version_of

    try:
        cfg = PosePoolConfig(
            script_version=script_version_of(args.script_dataset),
            n_train=args.n_train,
            captions_per_pose=args.captions_per_pose,
            pairs=args.pairs,
            seed=args.seed,
            pool_factor=args.pool_factor,
            chunk_size=args.chunk_size,
        )
        stats = generate_pools(cfg, progress=args.progress)
    except (ValueError, CacheError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(f"pose pool:  {stats['poses_dataset']} ({stats['n_train']} train poses)")
        if stats["pairs_dataset"]:
            print(f"pair pool:  {stats['pairs_dataset']} ({stats['n_pairs']} train pairs)")
        done = "reused" if stats["reused"] else "made"
        print(f"{done} in {stats['seconds']['total']} s; caches in {stats['cache_dir']}")
    return 0


@command("data list", "list the processed datasets found in DATA_CACHE_DIR")
def _data_list(args: argparse.Namespace) -> int:
    from poseembroider import config
    from poseembroider.datasets.discovery import available_datasets

    for found in available_datasets(config.DATA_CACHE_DIR):
        print(f"{found.name}  {found.split}  {found.size or '-'}  {'pairs' if found.is_pairs else 'elements'}")
    return 0


def _configure_process_posefix(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", nargs="+", default=["posefix-H", "posescript-H2"], help="posefix-H|-HPP, posescript-H2")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="(default: %(default)s)")
    p.add_argument("--amass-root", type=Path, default=None, help="read the poses from AMASS SMPL+H files instead")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")


@command(
    "data process-posefix",
    "PoseFix / PoseScript caches from the releases (POSEFIX_DIR, POSESCRIPT_DIR, *_SMPLX_DIR), with skip counts",
    _configure_process_posefix,
)
def _data_process_posefix(args: argparse.Namespace) -> int:
    from poseembroider.datasets.process_posefix.cli_runs import run_process_posefix

    return run_process_posefix(args)


def _configure_process_3dpw(p: argparse.ArgumentParser) -> None:
    from poseembroider.datasets.process_threedpw.cli_runs import add_process_3dpw_arguments

    add_process_3dpw_arguments(p)


@command(
    "data process-3dpw",
    "threedpw-sf<scale> caches from the 3DPW release (--threedpw-root DIR)",
    _configure_process_3dpw,
)
def _data_process_3dpw(args: argparse.Namespace) -> int:
    from poseembroider.datasets.process_threedpw.cli_runs import run_process_3dpw

    return run_process_3dpw(args)


def _configure_import_amass(p: argparse.ArgumentParser) -> None:
    from poseembroider.datasets.process_amass.cli_runs import add_import_amass_arguments

    add_import_amass_arguments(p)


@command(
    "data import-amass",
    "AMASS-style motions (--amass-root DIR --name NAME) -> amassposes-NAME and amasspairs-NAME-... (fix pairs)",
    _configure_import_amass,
)
def _data_import_amass(args: argparse.Namespace) -> int:
    from poseembroider.datasets.process_amass.cli_runs import run_import_amass

    return run_import_amass(args)


# ---------------------------------------------------------------- quickstart


def _configure_quickstart(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="output folder (default: experiments/quickstart)")
    # defaults: run_quickstart's (QuickstartContext's), passed on only when given
    p.add_argument("--n-poses", type=positive_int, default=None, help="number of poses on the contact sheet (16)")
    p.add_argument("--n-train", type=positive_int, default=None, help="size of the synthetic train split (2048)")
    p.add_argument("--n-val", type=positive_int, default=None, help="size of the synthetic val split (512)")
    p.add_argument(
        "--n-pool", type=positive_int, default=None, help="captioned sampled poses of the pose-only pools (16384)"
    )
    p.add_argument("--seed", type=seed_int, default=None, help="seed of the whole run (0)")
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        help="steps after the data generation that run at once, one process each (2; 1: one after the other)",
    )


@command("quickstart", "run the main job on the offline world and write experiments/quickstart/", _configure_quickstart)
def _quickstart(args: argparse.Namespace) -> int:
    from poseembroider.quickstart import run_quickstart

    names = ("n_poses", "n_train", "n_val", "n_pool", "seed", "jobs")
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    run_quickstart(out_dir=args.out, **given)
    return 0


# ---------------------------------------------------------------- embedding files


def _configure_embed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="shortname or folder of a PoseEmbroider / Aligner model")
    p.add_argument("--images", default=None, help="image folder (searched recursively) or glob pattern")
    p.add_argument("--poses", type=Path, default=None, help=".npz poses ('poses', AMASS or SMPL-X keys; 'ids')")
    p.add_argument("--texts", type=Path, default=None, help="text file, one text per non-empty line")
    p.add_argument(
        "--combine",
        action="store_true",
        help="the n-th items of the inputs describe one person: write their joint x̄ ('xbar') instead of "
        "each modality's tokens and single-modality x̄",
    )
    p.add_argument("--out", type=Path, required=True, help="output .safetensors file (ids in its metadata)")
    p.add_argument(
        "--pose-normalization",
        default="bedlam",
        choices=("bedlam", "amass", "none"),
        help="frame of the poses: y-up SMPL-X camera frame (bedlam), z-up AMASS (amass), the models' (none)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=64, help="items per encoder forward (default: %(default)s)"
    )
    p.add_argument(
        "--chunk-size", type=positive_int, default=1024, help="items per resumable chunk (default: %(default)s)"
    )
    p.add_argument("--device", default="cpu", help="'auto', 'cpu', 'cuda', 'cuda:<i>' (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace the output file and any stale partial folder")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


@command("embed", "embed image / pose / text files with a representation model into .safetensors", _configure_embed)
def _embed(args: argparse.Namespace) -> int:
    from poseembroider.features.embedding_files import EmbeddingJobError, check_output, embed_to_file, read_inputs
    from poseembroider.models.pretrained import CheckpointError
    from poseembroider.registry import UnknownShortnameError
    from poseembroider.representation import InputError, Representation

    try:
        check_output(args.out, args.overwrite, args.chunk_size, args.batch_size)
        inputs = read_inputs(args.images, args.poses, args.texts)
        rep = Representation.from_pretrained(args.model, args.device, batch_size=args.batch_size, progress=False)
        out = embed_to_file(
            rep, args.model, inputs, args.out, args.combine, args.chunk_size, args.pose_normalization,
            args.overwrite, args.progress,
        )  # fmt: skip
    except (EmbeddingJobError, InputError, UnknownShortnameError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    except ValueError as err:  # a folder holding another kind of model, a bad device name
        print(f"error: --model {args.model}: {err}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{len(ids)} {m}" for m, ids in inputs.ids.items())
    print(f"wrote {out} ({counts}{', combined' if args.combine else ''})")
    return 0


# ---------------------------------------------------------------- captions


def _read_pose_file(path: Path | None):
    """Poses of `--poses`, or None after printing why they cannot be read."""
    from poseembroider.text.pose_files import load_pose_file

    if path is None:
        print("error: --poses FILE.npz is required", file=sys.stderr)
        return None
    try:
        return load_pose_file(path)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def _configure_caption(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--poses",
        type=Path,
        default=None,
        help="(required) npz with 'poses' (N,22|52|55,3 or flat) or AMASS 'root_orient' + 'pose_body'",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="same seed, same captions")
    p.add_argument("--variant", choices=("default", "simplified", "ripple"), default="default")
    p.add_argument("--json", action="store_true", help="print a JSON list of {index, caption}")


@command("caption", "describe poses in words (rule-based captioner), one caption per pose", _configure_caption)
def _caption(args: argparse.Namespace) -> int:
    from poseembroider.body.body_model import BodyModel
    from poseembroider.text.captioning.captions import caption_poses

    poses = _read_pose_file(args.poses)
    if poses is None:
        return 2
    captions = caption_poses(poses, BodyModel().eval(), seed=args.seed, variant=args.variant)
    if args.json:
        print(json.dumps([{"index": i, "caption": c} for i, c in enumerate(captions)], indent=2))
    else:
        for caption in captions:
            print(caption)
    return 0


def _configure_posecodes(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--poses",
        type=Path,
        default=None,
        help="(required) npz with 'poses' (N,22|52|55,3 or flat) or AMASS 'root_orient' + 'pose_body'",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the noise (as `caption --seed`)")
    p.add_argument(
        "--variant",
        choices=("default", "simplified", "ripple"),
        default="default",
        help="caption variant whose noise draw to reproduce",
    )
    p.add_argument("--no-noise", action="store_true", help="bin the measured values without noise")
    p.add_argument("--json", action="store_true", help="JSON output (the only format)")


@command(
    "posecodes",
    "dump every posecode of each pose before selection (kind, joints, raw value, category, eligibility)",
    _configure_posecodes,
)
def _posecodes(args: argparse.Namespace) -> int:
    from poseembroider.body.body_model import BodyModel
    from poseembroider.text.captioning.captions import posecodes_of_poses

    poses = _read_pose_file(args.poses)
    if poses is None:
        return 2
    codes = posecodes_of_poses(poses, BodyModel().eval(), seed=args.seed, variant=args.variant, noise=not args.no_noise)
    print(json.dumps([{"index": i, "posecodes": codes.describe(i)} for i in range(len(codes))]))
    return 0


def _configure_instruct(p: argparse.ArgumentParser) -> None:
    for flag, which in (("--poses-a", "A (start)"), ("--poses-b", "B (target)")):
        p.add_argument(
            flag,
            type=Path,
            default=None,
            help=f"(required) npz with the poses {which}, one per pair, same format as `caption --poses`",
        )
    p.add_argument("--seed", type=seed_int, default=0, help="same seed, same instructions")
    p.add_argument("--variant", choices=("default", "simplified", "short"), default="default")
    p.add_argument(
        "--rotation-change",
        type=finite_float,
        default=None,
        metavar="DEG",
        help="heading change from A to B in degrees (positive: to the body's left), said first",
    )
    p.add_argument(
        "--in-sequence",
        action="store_true",
        help="A and B share one world frame (frames of a sequence): say the whole-body turn "
        "taken from their global orientations",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of {index, instruction}")


@command("instruct", "write what to change to go from pose A to pose B, one instruction per pair", _configure_instruct)
def _instruct(args: argparse.Namespace) -> int:
    from poseembroider.body.body_model import BodyModel
    from poseembroider.text.correcting.instructions import instruct_pairs

    missing = [flag for flag, value in (("--poses-a", args.poses_a), ("--poses-b", args.poses_b)) if value is None]
    if missing:
        print(f"error: {' and '.join(missing)} FILE.npz required", file=sys.stderr)
        return 2
    poses_a, poses_b = _read_pose_file(args.poses_a), _read_pose_file(args.poses_b)
    if poses_a is None or poses_b is None:
        return 2
    if poses_a.shape[0] != poses_b.shape[0]:
        print(
            f"error: {args.poses_a} has {poses_a.shape[0]} poses (shape {tuple(poses_a.shape)}) but {args.poses_b} "
            f"has {poses_b.shape[0]} (shape {tuple(poses_b.shape)}): one pose B per pose A",
            file=sys.stderr,
        )
        return 2
    instructions = instruct_pairs(
        poses_a,
        poses_b,
        BodyModel().eval(),
        seed=args.seed,
        variant=args.variant,
        rotation_change_deg=args.rotation_change,
        in_sequence=args.in_sequence,
    )
    if args.json:
        print(json.dumps([{"index": i, "instruction": t} for i, t in enumerate(instructions)], indent=2))
    else:
        for text in instructions:
            print(text)
    return 0


# ---------------------------------------------------------------- PoseVAE


def _forward_to_script(module: str, parser: str = "build_parser") -> Callable[[argparse.ArgumentParser], None]:
    """`configure` for a command that hands every word after it to `module.main(argv)` (as `args.script_args`).

    `--help` prints the script's own help (all its flags) and exits, like any command's help. The leaf
    parser's `parse_known_args` is replaced because argparse cannot collect leading optionals
    (`--dataset x`) into a positional `REMAINDER` of a sub-command.
    """

    def configure(p: argparse.ArgumentParser) -> None:
        own_parse = p.parse_known_args

        def parse_known_args(args=None, namespace=None):
            words = list(args or [])
            if "-h" in words or "--help" in words:
                getattr(importlib.import_module(module), parser)().parse_args(["--help"])  # prints and exits 0
            namespace, _ = own_parse([], namespace)  # the leaf's defaults (handler)
            namespace.script_args = words
            return namespace, []

        p.parse_known_args = parse_known_args  # type: ignore[method-assign]

    return configure


SCRIPT_COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "data process-bedlam",
        "poseembroider.datasets.process_bedlam.process_bedlam",
        "BEDLAM-Script / BEDLAM-Fix caches from a BEDLAM release (--bedlam-root DIR --split train|val; resumable)",
    ),
    (
        "text pretrain-backbone",
        "poseembroider.assisting_models.textBackbone.train_textBackbone",
        "pretrain the offline DistilBERT text backbone by masked-language modelling on the caption corpus",
    ),
    (
        "train-posevae",
        "poseembroider.assisting_models.poseVAE.train_poseVAE",
        "train the PoseVAE (flags of train_poseVAE.py, e.g. --dataset ... --lr 1e-05 --epochs 2000)",
    ),
    (
        "evaluate-posevae",
        "poseembroider.assisting_models.poseVAE.evaluate_poseVAE",
        "evaluate a PoseVAE: ELBO terms, reconstruction errors (mm, degrees), best-of-k samples",
    ),
    (
        "train-core",
        "poseembroider.train_core",
        "train PoseEmbroider or the Aligner (flags of train_core.py, e.g. --model PoseEmbroider --dataset ...)",
    ),
    (
        "evaluate-core",
        "poseembroider.evaluate_core",
        "evaluate PoseEmbroider / Aligner retrieval: R@1/5/10 of the 9 query types, mRecall",
    ),
    (
        "train-posetext",
        "poseembroider.assisting_models.poseText.train_poseText",
        "train PoseText (flags of train_poseText.py, e.g. --dataset ... --text_encoder_name distilbertSynth)",
    ),
    (
        "evaluate-posetext",
        "poseembroider.assisting_models.poseText.evaluate_poseText",
        "evaluate a PoseText: pose-to-text and text-to-pose R@1/5/10 and mRecall",
    ),
    (
        "train-pairtext",
        "poseembroider.assisting_models.pairText.train_pairText",
        "train PairText (flags of train_pairText.py, e.g. --datasets ... --pretrained <shortname>)",
    ),
    (
        "evaluate-pairtext",
        "poseembroider.assisting_models.pairText.evaluate_pairText",
        "evaluate a PairText: pair-to-text and text-to-pair R@1/5/10 and mRecall",
    ),
    (
        "train-image-encoder",
        "poseembroider.assisting_models.imageEncoder.train_imageEncoder",
        "pretrain the offline image encoder on synthetic crops (pose regression), save it frozen, register it",
    ),
    (
        "cache-intermodality-features",
        "poseembroider.downstream.cache_intermodality_features",
        "cache x̄ of a dataset split for the downstream heads (--model_shortname ... --dataset ... --input_types ...)",
    ),
    (
        "train-pose-estimation",
        "poseembroider.downstream.pose_estimation.train_pose_estimation",
        "train the HPS head on x̄ (--pretrained_representation_model ... --cached_embeddings_file auto ...)",
    ),
    (
        "evaluate-pose-estimation",
        "poseembroider.downstream.pose_estimation.evaluate_pose_estimation",
        "evaluate an HPS head: PA-MPJPE / MPJPE / PVE / rotation error per input set, vs the mean pose",
    ),
    (
        "train-instruction-generation",
        "poseembroider.downstream.instruction_generation.train_instruction_generation",
        "train the InstructionGenerator on x̄ of pose pairs (--pretrained_representation_model ... --dataset ...)",
    ),
    (
        "evaluate-instruction-generation",
        "poseembroider.downstream.instruction_generation.evaluate_instruction_generation",
        "evaluate an InstructionGenerator: R@1/2/3, BLEU-4, ROUGE-L, METEOR per input set and decoding, vs controls",
    ),
)
"""(command, script module, help): commands that hand every word after them to the script's `main(argv)`, so
`poseembroider train-core --dataset ...` is `python train_core.py --dataset ...` with the original flags."""


def _run_script(module: str) -> Callable[[argparse.Namespace], int]:
    """Handler running `module.main(args.script_args)`; the module is imported only when its command runs."""

    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(module).main(args.script_args)

    return run


for _name, _module, _help in SCRIPT_COMMANDS:
    COMMANDS.append(Command(tuple(_name.split()), _help, _forward_to_script(_module), _run_script(_module)))


# ---------------------------------------------------------------- PoseText, PairText


def _configure_demo(p: argparse.ArgumentParser) -> None:
    from poseembroider.demos import add_demo_arguments

    add_demo_arguments(p)


@command("demo", "start a streamlit app: core (retrieval), posevae, dataset-script, dataset-fix", _configure_demo)
def _demo(args: argparse.Namespace) -> int:
    from poseembroider.demos import demos_table, run_demo

    if args.name is None:
        print(f"demos (poseembroider demo NAME [flags]):\n{demos_table()}")
        return 0
    return run_demo(args.name, args.demo_args)


@command(
    "demo-core",
    "the any-to-any retrieval demo (same as `demo core`; flags of demo_core.py, plus streamlit's --server.port ...)",
    _forward_to_script("poseembroider.demos", "core_parser"),
)
def _demo_core(args: argparse.Namespace) -> int:
    from poseembroider.demos import run_demo

    return run_demo("core", args.script_args)


# ---------------------------------------------------------------- image encoder


# ---------------------------------------------------------------- text (tokenizer, text backbone)


def _add_corpus_flags(p: argparse.ArgumentParser, n_poses: int, n_pairs: int) -> None:
    p.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="text file, one text per line (default: generate captions + instructions)",
    )
    p.add_argument("--n-poses", type=positive_int, default=n_poses, help="sampled poses to caption (3 captions each)")
    p.add_argument(
        "--n-pairs", type=positive_int, default=n_pairs, help="sampled pose pairs to instruct (3 instructions each)"
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the corpus (and of the training)")


def _text_corpus(args: argparse.Namespace) -> list[str] | None:
    """Texts of `--corpus`, or the generated caption + instruction corpus; None after an error message."""
    if args.corpus is not None:
        from poseembroider.text.text_files import TextFileError, read_text_lines

        try:
            return read_text_lines(args.corpus, "corpus file")[0]
        except (FileNotFoundError, TextFileError) as err:
            print(f"error: --corpus {err}", file=sys.stderr)
            return None
    from tqdm.auto import tqdm

    from poseembroider.datasets.synthetic.caption_corpus import iter_caption_corpus

    texts: list[str] = []
    with tqdm(total=3 * (args.n_poses + args.n_pairs), desc="caption corpus", unit="text") as bar:
        for chunk in iter_caption_corpus(args.n_poses, args.n_pairs, seed=args.seed):
            texts += [t for t in chunk if t]
            bar.update(len(chunk))
    return texts


def _configure_text_train_tokenizer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="folder receiving tokenizer.json, vocab.txt, ...")
    _add_corpus_flags(p, n_poses=3000, n_pairs=3000)
    p.add_argument(
        "--vocab-size",
        type=positive_int,
        default=3000,
        help="largest vocabulary (fewer when the corpus has fewer pieces)",
    )
    p.add_argument("--min-frequency", type=positive_int, default=2, help="pieces seen fewer times are not merged")
    p.add_argument(
        "--max-length", type=positive_int, default=256, help="truncation length in tokens, [CLS] and [SEP] included"
    )
    p.add_argument("--save-corpus", type=Path, default=None, help="also write the corpus there, one text per line")


@command(
    "text train-tokenizer",
    "train the offline WordPiece tokenizer on the caption + instruction corpus and save it in OUT",
    _configure_text_train_tokenizer,
)
def _text_train_tokenizer(args: argparse.Namespace) -> int:
    import time

    from poseembroider.text.tokenization import train_wordpiece_tokenizer

    texts = _text_corpus(args)
    if texts is None:
        return 2
    if args.save_corpus is not None:
        args.save_corpus.parent.mkdir(parents=True, exist_ok=True)
        args.save_corpus.write_text("".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8")
    start = time.perf_counter()
    try:
        tokenizer = train_wordpiece_tokenizer(
            texts, args.vocab_size, args.out, min_frequency=args.min_frequency, max_length=args.max_length
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"tokenizer: {len(tokenizer)} tokens (asked for at most {args.vocab_size}) from {len(texts)} texts "
        f"in {time.perf_counter() - start:.1f} s; saved in {args.out}"
    )
    return 0


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poseembroider", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): parser.add_subparsers(dest="command")}
    parsers: dict[tuple[str, ...], argparse.ArgumentParser] = {(): parser}
    for cmd in COMMANDS:
        for depth in range(1, len(cmd.path)):
            prefix = cmd.path[:depth]
            if prefix not in parsers:
                sub = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                parsers[prefix] = sub
                groups[prefix] = sub.add_subparsers(dest=f"command_{depth}")
        leaf = groups[cmd.path[:-1]].add_parser(cmd.path[-1], help=cmd.help, description=cmd.help)
        cmd.configure(leaf)
        leaf.set_defaults(handler=cmd.run)
        parsers[cmd.path] = leaf
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of `argv`; its exit status. Output piped into a reader that stops early (`| head`) ends
    the command quietly with status 141 (128 + SIGPIPE), as standard command-line tools do; a full disk or an
    output locked by another process ends it with one `error:` line and status 2."""
    try:
        status = _run(argv)
        sys.stdout.flush()  # inside the try: a closed pipe fails here, not in the interpreter's final flush
        return status
    except BrokenPipeError:
        # Later writes (the interpreter's flush at exit) go to /dev/null instead of raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as err:
        # A full disk (or quota) met by any command: one line naming the output, not a traceback (from a worker
        # pool, a library's writer ...); the outputs are atomic, so running the command again completes them.
        from poseembroider.atomic_io import DISK_FULL_ERRNOS, DiskFullError, disk_full_message

        if isinstance(err, DiskFullError):
            print(f"error: {err.strerror}", file=sys.stderr)
        elif err.errno in DISK_FULL_ERRNOS:
            print(f"error: {disk_full_message(err.filename or 'an output file', err.strerror or '')}", file=sys.stderr)
        else:
            raise
        return 2
    except RuntimeError as err:
        from poseembroider.atomic_io import OutputLockedError  # another process writes the same output

        if not isinstance(err, OutputLockedError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        # A body model folder or file the user configured that cannot be used is found by whichever command
        # first builds the body model: one line naming the folder / file / key, not a traceback.
        from poseembroider.body.model_file import BodyModelFileError  # lazy: only on an error

        if not isinstance(err, BodyModelFileError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
