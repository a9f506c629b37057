"""Evaluation of a trained PoseText or PairText on a dataset split: recall of both retrieval directions.

Every sample is embedded once (its caption chosen by `caption_selection`, 'deterministic-mix' as at
validation: caption `id % number of captions`), and each query is ranked against the whole split. Metrics:
`p2t_R@1`, `p2t_R@5`, `p2t_R@10`, `t2p_R@1`, `t2p_R@5`, `t2p_R@10` (percent; 'p' is what the texts describe,
a pose or a pair of poses) and `mRecall`, their mean. `evaluate_saved_model` writes them, atomically, next to
the checkpoint as `result_<split>_<dataset>.json`, and reuses that file while the settings are unchanged.
The scripts `evaluate_poseText` and `evaluate_pairText` are this module with flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from poseembroider.assisting_models.poseText.data import load_text_datasets, text_collate_fn
from poseembroider.assisting_models.poseText.model_poseText import TextRetrievalModel
from poseembroider.devices import resolve_device
from poseembroider.evaluation.result_files import result_path, reusable_result, save_result
from poseembroider.evaluation.retrieval import pose_text_retrieval_metrics
from poseembroider.models.pretrained import resolve_model_dir

__all__ = ["METRIC_ORDER", "evaluate_saved_model", "evaluate_text_retrieval", "format_table"]

METRIC_ORDER = ("p2t_R@1", "p2t_R@5", "p2t_R@10", "t2p_R@1", "t2p_R@5", "t2p_R@10", "mRecall")


@torch.no_grad()
def evaluate_text_retrieval(
    model: TextRetrievalModel, dataset: Dataset, batch_size: int = 128, progress: bool = True
) -> dict[str, float]:
    """R@k of both directions over `dataset` (items of format 'pt', tokenized with the model's tokenizer).

    The model is used in eval mode on its own device; `model.embed_batch` gives the (B, D) embeddings of
    what the texts describe (poses, pairs) and of the texts, gathered on the CPU as (N, D) each.
    """
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("evaluate_text_retrieval: the dataset is empty")
    model.eval()
    device = model.loss_weight.device
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=text_collate_fn(model.text_encoder.tokenizer)
    )
    xs, texts = [], []
    for batch in tqdm(loader, desc=f"evaluate {type(model).__name__}", disable=not progress, leave=False):
        on_device = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        x, t = model.embed_batch(on_device)
        xs.append(x.float().cpu())
        texts.append(t.float().cpu())
    return pose_text_retrieval_metrics(torch.cat(xs), torch.cat(texts))


def _caption_selection(value: str | int) -> str | int:
    """'3' -> caption index 3; 'deterministic-mix' / 'rand' unchanged."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def evaluate_saved_model(
    model_class: type[TextRetrievalModel],
    model_path: str | Path,
    dataset: str,
    split: str = "val",
    checkpoint: str = "best",
    device: str | torch.device = "auto",
    caption_selection: str | int = "deterministic-mix",
    data_size: int | None = None,
    seed: int = 42,
    batch_size: int = 128,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the `model_class` of `model_path` (a model folder, a training output folder and its
    `checkpoint` sub-folder, or a shortname) on `split` of registry dataset `dataset` (its first `data_size`
    items), or reuse the result file computed with the same settings unless `overwrite`. The keywords are the
    flags of the evaluation scripts (`evaluate_saved_model(PoseText, **vars(args))`).

    Returns the content of the result file: `model_dir`, `epoch` (of the checkpoint, when known), `dataset`,
    `split`, `size`, `settings` and `metrics`. `seed` seeds the 'rand' caption choice."""
    model_dir = resolve_model_dir(model_path, checkpoint)
    settings = {"caption_selection": caption_selection, "data_size": data_size, "seed": seed}
    previous = reusable_result(model_dir, split, dataset, settings, overwrite)
    if previous is not None:
        return previous
    model = model_class.from_pretrained(model_dir, map_location=resolve_device(device))
    items = load_text_datasets(
        [dataset],
        split,
        model.text_encoder.tokenizer,
        num_body_joints=model.config.num_body_joints,
        seed=seed,
        data_size=data_size,
        caption_selection=_caption_selection(caption_selection),
    )
    metrics = evaluate_text_retrieval(model, items, batch_size=batch_size, progress=progress)
    return save_result(model_dir, split, dataset, settings, len(items), metrics)  # type: ignore[arg-type]


def format_table(result: Mapping[str, Any]) -> str:
    """One 'name value' line per metric of a result (order of `METRIC_ORDER`), then the result file."""
    metrics = result["metrics"]
    lines = [f"{k:<9} {metrics[k]:6.2f}" for k in METRIC_ORDER if k in metrics]
    lines.append(f"results: {result_path(Path(result['model_dir']), result['split'], result['dataset'])}")
    return "\n".join(lines)
