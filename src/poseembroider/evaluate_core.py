"""Evaluate PoseEmbroider or the Aligner: R@1/5/10 of the 9 query types, mRecall single / dual / total.

    python evaluate_core.py --model_path poseembroider_model_bedlamscript \\
        --dataset bedlamscript-overlap30_res224_j16_sf11 --split val

(also `python -m poseembroider.evaluate_core`, `poseembroider evaluate-core`). `--model_path` is a model
folder, a training output folder (`--checkpoint best|last`) or a shortname. Every sample's frozen features
come from the feature cache of the split (computed on first use, first caption by default as the
original); the gallery of each modality is the N modality tokens; the queries of each query type are
computed chunk by chunk and ranked against the whole gallery without sorting (rank = number of gallery
items scored above the ground truth), so memory stays O(N x D + chunk x N): N = 100,000 fits in a few GB.

Outputs next to the checkpoint: `result_<split>_<dataset>.json` (settings, metrics, and each dual query type
against each single one of the same target: the paired difference of mean R@k with its 95% bootstrap
interval; reused while the settings are unchanged, `--overwrite` recomputes) and
`result_<split>_<dataset>.png`, the R@k table as a figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from poseembroider.atomic_io import atomic_file
from poseembroider.evaluation.core_retrieval import dual_vs_single, recalls_of_ranks, summarize
from poseembroider.evaluation.result_files import previous_result, result_path, write_result
from poseembroider.evaluation.retrieval import DEFAULT_CHUNK_SIZE, K_RECALL_VALUES, chance_recall_at_k, chunk_ranks
from poseembroider.model import FEATURE_KEYS, RepresentationModel
from poseembroider.modalities import QueryType, query_types


@torch.no_grad()
def gallery_tokens(
    model: RepresentationModel, features: Any, modalities: Sequence[str], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> dict[str, torch.Tensor]:
    """{modality: (N, D) float32 tokens} from a `CachedFeatureDataset`-like source (`__getitems__`, `len`),
    read chunk by chunk (the exact image tokens of all N samples are never in memory at once)."""
    model.eval()
    n = len(features)
    out = {m: torch.empty(n, model.config.latentD) for m in modalities}
    device = model.temperature.device
    for start in tqdm(range(0, n, chunk_size), desc="gallery", leave=False, disable=n <= chunk_size):
        batch = features.__getitems__(list(range(start, min(start + chunk_size, n))))
        batch = {FEATURE_KEYS[m]: batch[FEATURE_KEYS[m]].to(device) for m in modalities}
        for m, t in model.embed_features({m: batch[FEATURE_KEYS[m]] for m in modalities}).items():
            out[m][start : start + t.shape[0]] = t.float().cpu()
    return out


@torch.no_grad()
def query_ranks(
    model: RepresentationModel,
    tokens: Mapping[str, torch.Tensor],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    max_queries: int | None = None,
) -> dict[str, torch.Tensor]:
    """{query type: (N,) rank of each query's ground truth} for every query type possible with the modalities
    of `tokens` ({m: (N, D)} gallery tokens). Queries are computed `chunk_size` at a time and never stored
    whole; the representation of a query bundle is computed once per chunk for all its target modalities.
    `max_queries`: rank only the first queries of each type (against the whole gallery), e.g. to measure
    memory at a large N without the full N x N work."""
    model.eval()
    device = model.temperature.device
    n = next(iter(tokens.values())).shape[0]
    if max_queries is not None:
        n = min(n, max_queries)
    queries = query_types(tokens.keys())
    ranks = {q.name: torch.empty(n, dtype=torch.long) for q in queries}
    bundles: dict[tuple[str, ...], list[QueryType]] = {}
    for q in queries:
        bundles.setdefault(q.query, []).append(q)
    steps = [(bundle, start) for bundle in bundles for start in range(0, n, chunk_size)]
    for bundle, start in tqdm(steps, desc="query chunks", leave=False, disable=not progress):
        chunk = {m: tokens[m][start : min(start + chunk_size, n)].to(device) for m in bundle}
        representation = model.represent(chunk, bundle)
        for q in bundles[bundle]:
            predicted = model.predict(representation, q.target).float().to(tokens[q.target].device)
            ranks[q.name][start : start + predicted.shape[0]] = chunk_ranks(predicted, tokens[q.target], start)
    return ranks


def metrics_of_ranks(ranks: Mapping[str, torch.Tensor], ks: Sequence[int] = K_RECALL_VALUES) -> dict[str, float]:
    """R@k of each query type and the mRecall summaries."""
    metrics: dict[str, float] = {}
    for name, r in ranks.items():
        metrics.update(recalls_of_ranks(name, r, ks))
    metrics.update(summarize(metrics))
    return metrics


def retrieval_metrics_from_tokens(
    model: RepresentationModel,
    tokens: Mapping[str, torch.Tensor],
    ks: Sequence[int] = K_RECALL_VALUES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    max_queries: int | None = None,
) -> dict[str, float]:
    """R@k of every query type possible with the modalities of `tokens` and the mRecall summaries
    (`query_ranks`, then `metrics_of_ranks`)."""
    return metrics_of_ranks(query_ranks(model, tokens, chunk_size, progress, max_queries), ks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate_core.py", description="evaluate PoseEmbroider / Aligner retrieval")
    parser.add_argument("--model_path", required=True, help="model folder, training output folder or shortname")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="(default: %(default)s)")
    parser.add_argument("--dataset", required=True, help="dataset name of the registry")
    parser.add_argument("--split", default="val", help="(default: %(default)s)")
    parser.add_argument(
        "--caption_selection",
        default="0",
        help="caption of each sample: an index, or 'deterministic-mix' (default: %(default)s, the "
        "first caption, as the original)",
    )
    parser.add_argument("--chunk_size", type=int, default=DEFAULT_CHUNK_SIZE, help="queries per matmul")
    parser.add_argument("--feature_cache_dir", default=None, help="root of the frozen-feature caches")
    parser.add_argument("--feature_batch_size", type=int, default=32, help="batch size when caching features")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:<i>' (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="recompute even if a result file exists")
    parser.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def load_representation_model(
    path: str, checkpoint: str = "best", device: str = "auto"
) -> tuple[RepresentationModel, Path]:
    """(model, its folder): a PoseEmbroider or Aligner, in eval mode, from a model folder, a training folder
    (`checkpoint` 'best' / 'last') or a shortname; anything else is refused with the folder named."""
    from poseembroider.assisting_models.poseVAE.evaluate_poseVAE import resolve_model_dir
    from poseembroider.models.pretrained import load_pretrained
    from poseembroider.training.distributed import resolve_device

    model_dir = resolve_model_dir(path, checkpoint)
    model = load_pretrained(model_dir, map_location=resolve_device(device))
    if not isinstance(model, RepresentationModel):
        raise ValueError(f"{model_dir} holds a {type(model).__name__}, not PoseEmbroider or Aligner")
    return model.eval(), model_dir


def split_tokens(
    model: RepresentationModel,
    dataset: str,
    split: str,
    caption_selection: str | int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    feature_batch_size: int = 32,
    root: Path | None = None,
    progress: bool = False,
) -> tuple[Any, dict[str, torch.Tensor]]:
    """(features, tokens) of a whole split: its frozen features (`CachedFeatureDataset`, computed into the
    cache on first use, read back afterwards) and the model's gallery tokens {m: (N, D)} of every modality
    the split has; each sample's text is its caption `caption_selection`."""
    from poseembroider.features.frozen import CachedFeatureDataset, compute_frozen_features

    stores = compute_frozen_features(
        dataset,
        split,
        model.frozen_encoders,
        model.config.image_feature_mode,
        batch_size=feature_batch_size,
        root=root,
        progress=progress,
    )
    features = CachedFeatureDataset(stores, caption_selection)
    return features, gallery_tokens(model, features, features.modalities, chunk_size)


def run_evaluation(args: argparse.Namespace) -> dict[str, Any]:
    """Load the model, (cache and) read the split's frozen features, compute the metrics, write the files."""
    from poseembroider.assisting_models.poseVAE.evaluate_poseVAE import resolve_model_dir

    model_dir = resolve_model_dir(args.model_path, args.checkpoint)
    selection: str | int = int(args.caption_selection) if args.caption_selection.isdigit() else args.caption_selection
    settings = {"caption_selection": selection}
    path = result_path(model_dir, args.split, args.dataset)
    previous = None if args.overwrite else previous_result(path, settings)
    if previous is not None:
        return previous
    model, _ = load_representation_model(str(model_dir), device=args.device)
    features, tokens = split_tokens(
        model,
        args.dataset,
        args.split,
        selection,
        args.chunk_size,
        args.feature_batch_size,
        Path(args.feature_cache_dir) if args.feature_cache_dir else None,
        args.progress,
    )
    ranks = query_ranks(model, tokens, chunk_size=args.chunk_size, progress=args.progress)
    metrics = metrics_of_ranks(ranks)
    metrics_file = model_dir / "metrics.json"
    result = {
        "model_dir": str(model_dir),
        "model": type(model).__name__,
        "epoch": json.loads(metrics_file.read_text()).get("epoch") if metrics_file.is_file() else None,
        "dataset": args.dataset,
        "split": args.split,
        "size": len(features),
        "settings": settings,
        "metrics": metrics,
        "dual_vs_single": dual_vs_single(ranks),
    }
    write_result(path, result)
    plot_recall_table(
        metrics,
        path.with_suffix(".png"),
        title=f"{type(model).__name__} on {args.dataset} {args.split}",
        gallery_size=len(features),
    )
    return result


def format_table(metrics: Mapping[str, float], ks: Sequence[int] = K_RECALL_VALUES) -> str:
    """The R@k table, one line per query type, then the mRecall summaries."""
    names = [q.name for q in query_types() if f"{q.name}_R@{ks[0]}" in metrics]
    lines = ["query  " + "  ".join(f"R@{k:<4}" for k in ks)]
    lines += [f"{n:<6} " + "  ".join(f"{metrics[f'{n}_R@{k}']:6.2f}" for k in ks) for n in names]
    lines += [
        f"{k}: {metrics[k]:.2f}" for k in ("mRecall_single_query", "mRecall_dual_query", "mRecall") if k in metrics
    ]
    return "\n".join(lines)


def format_dual_vs_single(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per (dual, single) pair: paired difference of mean R@k with its 95% bootstrap interval."""
    lines = ["dual vs single, same target: mean R@k difference [95% bootstrap interval]"]
    for row in rows:
        low, high = row["ci95"]
        verdict = "dual better" if row["dual_better"] else "single better" if row["single_better"] else "not resolved"
        lines.append(
            f"{row['dual']:<5} - {row['single']:<4} {row['difference']:+6.2f} [{low:+6.2f}, {high:+6.2f}]  {verdict}"
        )
    return "\n".join(lines)


def plot_recall_table(
    metrics: Mapping[str, float],
    path: Path,
    title: str = "",
    ks: Sequence[int] = K_RECALL_VALUES,
    gallery_size: int | None = None,
) -> Path:
    """Grouped bars of R@k per query type (dual queries shaded), saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [q.name for q in query_types() if f"{q.name}_R@{ks[0]}" in metrics]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(names), 3.6))
    width = 0.8 / len(ks)
    for j, k in enumerate(ks):
        values = [metrics[f"{n}_R@{k}"] for n in names]
        ax.bar([i + (j - (len(ks) - 1) / 2) * width for i in range(len(names))], values, width, label=f"R@{k}")
    for i, n in enumerate(names):
        if len(n.split("2")[0]) == 2:
            ax.axvspan(i - 0.45, i + 0.45, color="0.92", zorder=0)
    if gallery_size:  # a random ranking's R@k = k / N, one dotted line per k
        for j, (k, chance) in enumerate(chance_recall_at_k(gallery_size, ks).items()):
            ax.axhline(
                chance, color=f"C{j}", linestyle=":", linewidth=1, label=f"chance R@{k}" if j == len(ks) - 1 else None
            )
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 100)
    ax.set_ylabel("recall (%)")
    summary = ", ".join(
        f"{k.replace('mRecall_', '').replace('_query', '')} {metrics[k]:.1f}"
        for k in ("mRecall_single_query", "mRecall_dual_query", "mRecall")
        if k in metrics
    )
    ax.set_title(f"{title}\nmRecall: {summary}" if title else f"mRecall: {summary}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chunk_size < 1:
        parser.error("--chunk_size must be >= 1")
    from poseembroider.datasets.cache_format import CacheError
    from poseembroider.features.store import FeatureCacheError
    from poseembroider.models.pretrained import CheckpointError
    from poseembroider.registry import UnknownShortnameError

    try:
        result = run_evaluation(args)
    except (
        FileNotFoundError,
        UnknownShortnameError,
        CacheError,
        FeatureCacheError,
        CheckpointError,
        ValueError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(result["metrics"]))
    if result.get("dual_vs_single"):
        print(format_dual_vs_single(result["dual_vs_single"]))
    print(f"results: {result_path(Path(result['model_dir']), args.split, args.dataset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
