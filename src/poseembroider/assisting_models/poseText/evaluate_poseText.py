"""Evaluate a trained PoseText on a dataset split: pose-to-text and text-to-pose recall.

    python -m poseembroider.assisting_models.poseText.evaluate_poseText \\
        --model_path posetext_model_bedlamscript --dataset bedlamscript-overlap30_res224_j16_sf11 --split val

`--model_path` is a model folder (config.json + model.safetensors), a training output folder (then
`--checkpoint best|last` picks the sub-folder) or a registered shortname. Every sample is embedded once
(its caption chosen by `--caption_selection`, default 'deterministic-mix' as at validation), and each
query is ranked against the whole split. Keys of `metrics`: `p2t_R@1`, `p2t_R@5`, `p2t_R@10`, `t2p_R@1`,
`t2p_R@5`, `t2p_R@10` (percent) and `mRecall` (their mean). The results are written, atomically, next to
the checkpoint as `result_<split>_<dataset>.json` and reused while the settings are unchanged
(`--overwrite` recomputes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from poseembroider.assisting_models.poseText.data import load_text_datasets, text_collate_fn
from poseembroider.assisting_models.poseText.model_poseText import PoseText, TextRetrievalModel
from poseembroider.models.pretrained import resolve_model_dir
from poseembroider.evaluation.result_files import previous_result, result_path, write_result
from poseembroider.evaluation.retrieval import pose_text_retrieval_metrics
from poseembroider.training.trainer import move_to_device

METRIC_ORDER = ("p2t_R@1", "p2t_R@5", "p2t_R@10", "t2p_R@1", "t2p_R@5", "t2p_R@10", "mRecall")


@torch.no_grad()
def evaluate_text_retrieval(
    model: TextRetrievalModel, dataset: Dataset, batch_size: int = 128, progress: bool = True
) -> dict[str, float]:
    """R@k of both directions over `dataset` (items of format 'pt', tokenized with the model's tokenizer).

    The model is used in eval mode on its own device; `model.embed_batch` gives the (B, D) embeddings of
    what the texts describe (poses, pairs) and of the texts.
    """
    if len(dataset) == 0:
        raise ValueError("evaluate_text_retrieval: the dataset is empty")
    model.eval()
    device = model.loss_weight.device
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=text_collate_fn(model.text_encoder.tokenizer)
    )
    xs, texts = [], []
    for batch in tqdm(loader, desc=f"evaluate {type(model).__name__}", disable=not progress, leave=False):
        x, t = model.embed_batch(move_to_device(batch, device))
        xs.append(x.float().cpu())
        texts.append(t.float().cpu())
    return pose_text_retrieval_metrics(torch.cat(xs), torch.cat(texts))


def build_parser(prog: str = "evaluate_poseText.py", model: str = "PoseText") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=f"evaluate a trained {model} (R@1/5/10 both ways, mRecall)")
    parser.add_argument("--model_path", required=True, help="model folder, training output folder or shortname")
    parser.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="sub-folder of a training output folder (default: %(default)s)",
    )
    parser.add_argument("--dataset", required=True, help="dataset name of the registry")
    parser.add_argument("--split", default="val", help="dataset split (default: %(default)s)")
    parser.add_argument("--data_size", type=int, default=None, help="evaluate on the first N items only")
    parser.add_argument(
        "--caption_selection",
        default="deterministic-mix",
        help="'deterministic-mix' (caption id %% n), 'rand' or a caption index (default: %(default)s)",
    )
    parser.add_argument("--batch_size", type=int, default=128, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the 'rand' caption choice (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:<i>' (default: %(default)s)")
    parser.add_argument(
        "--overwrite", action="store_true", help="recompute even if a result file with the same settings exists"
    )
    parser.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def _caption_selection(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def run_evaluation(args: argparse.Namespace, model_class: type[TextRetrievalModel] = PoseText) -> dict[str, Any]:
    """Load, evaluate (or reuse the result file), write the JSON; returns its content."""
    from poseembroider.training.distributed import resolve_device

    model_dir = resolve_model_dir(args.model_path, args.checkpoint)
    settings = {
        "caption_selection": args.caption_selection,
        "data_size": args.data_size,
        "seed": args.seed,
    }
    path = result_path(model_dir, args.split, args.dataset)
    previous = None if args.overwrite else previous_result(path, settings)
    if previous is not None:
        return previous
    model = model_class.from_pretrained(model_dir, map_location=resolve_device(args.device))
    dataset = load_text_datasets(
        [args.dataset],
        args.split,
        model.text_encoder.tokenizer,
        num_body_joints=model.config.num_body_joints,
        seed=args.seed,
        data_size=args.data_size,
        caption_selection=_caption_selection(args.caption_selection),
    )
    metrics = evaluate_text_retrieval(model, dataset, batch_size=args.batch_size, progress=args.progress)
    metrics_file = model_dir / "metrics.json"
    epoch = json.loads(metrics_file.read_text()).get("epoch") if metrics_file.is_file() else None
    result = {
        "model_dir": str(model_dir),
        "epoch": epoch,
        "dataset": args.dataset,
        "split": args.split,
        "size": len(dataset),
        "settings": settings,
        "metrics": metrics,
    }
    write_result(path, result)
    return result


def format_table(metrics: dict[str, float]) -> str:
    """One 'name value' line per metric, in the order R@1/5/10 p2t, t2p, mRecall."""
    return "\n".join(f"{k:<9} {metrics[k]:6.2f}" for k in METRIC_ORDER if k in metrics)


def main(
    argv: Sequence[str] | None = None,
    model_class: type[TextRetrievalModel] = PoseText,
    parser: argparse.ArgumentParser | None = None,
) -> int:
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1 or (args.data_size is not None and args.data_size < 1):
        parser.error("--batch_size and --data_size must be >= 1")
    from poseembroider.datasets.cache_format import CacheError
    from poseembroider.registry import UnknownShortnameError

    try:
        result = run_evaluation(args, model_class)
    except (FileNotFoundError, UnknownShortnameError, CacheError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(result["metrics"]))
    print(f"results: {result_path(Path(result['model_dir']), args.split, args.dataset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
