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
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from poseembroider.atomic_io import atomic_file
from poseembroider.evaluation.core_retrieval import dual_vs_single, is_dual, metrics_of_ranks, query_ranks
from poseembroider.evaluation.result_files import result_path, reusable_result, save_result
from poseembroider.evaluation.retrieval import DEFAULT_CHUNK_SIZE, K_RECALL_VALUES, chance_recall_at_k
from poseembroider.modalities import query_types
from poseembroider.models.pretrained import resolve_model_dir
from poseembroider.representation import load_representation_model, split_tokens
from poseembroider.training.script_args import add_evaluation_arguments, positive_int, script_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate_core.py", description="evaluate PoseEmbroider / Aligner retrieval")
    add_evaluation_arguments(parser)
    parser.add_argument(
        "--caption_selection",
        default="0",
        help="caption of each sample: an index, or 'deterministic-mix' (default: %(default)s, the "
        "first caption, as the original)",
    )
    parser.add_argument("--chunk_size", type=positive_int, default=DEFAULT_CHUNK_SIZE, help="queries per matmul")
    parser.add_argument("--feature_cache_dir", default=None, help="root of the frozen-feature caches")
    parser.add_argument("--feature_batch_size", type=positive_int, default=32, help="batch size when caching features")
    return parser


def run_evaluation(args: argparse.Namespace) -> dict[str, Any]:
    """Load the model, (cache and) read the split's frozen features, compute the metrics, write the files."""
    model_dir = resolve_model_dir(args.model_path, args.checkpoint)
    selection: str | int = int(args.caption_selection) if args.caption_selection.isdigit() else args.caption_selection
    settings = {"caption_selection": selection}
    previous = reusable_result(model_dir, args.split, args.dataset, settings, args.overwrite)
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
    ranks = query_ranks(model, tokens, args.chunk_size, args.progress, device=model.temperature.device)
    metrics = metrics_of_ranks(ranks)
    result = save_result(
        model_dir,
        args.split,
        args.dataset,
        settings,
        len(features),
        metrics,
        model=type(model).__name__,
        dual_vs_single=dual_vs_single(ranks),
    )
    plot_recall_table(
        metrics,
        result_path(model_dir, args.split, args.dataset).with_suffix(".png"),
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


def recall_figure(
    metrics: Mapping[str, float],
    title: str = "",
    ks: Sequence[int] = K_RECALL_VALUES,
    gallery_size: int | None = None,
):
    """Grouped bars of R@k per query type (dual queries shaded), each bar labelled with its value -> a
    matplotlib `Figure` (no pyplot: no global backend or figure state).

    The y axis is fitted to the data (15% above the highest bar or chance level, at most 100%), so recalls
    of a few percent stay readable. With `gallery_size` N, the recall of a random ranking, k/N for R@k
    (`chance_recall_at_k`), is a black tick across each R@k bar: one mark per bar at its own k, one legend
    entry for all of them.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = [q.name for q in query_types() if f"{q.name}_R@{ks[0]}" in metrics]
    chance = chance_recall_at_k(gallery_size, ks) if gallery_size else {}
    fig = Figure(figsize=(2.2 + 0.95 * len(names), 3.8))
    ax = fig.subplots()
    width = 0.8 / len(ks)
    highest = 0.0
    for j, k in enumerate(ks):
        values = [metrics[f"{n}_R@{k}"] for n in names]
        xs = [i + (j - (len(ks) - 1) / 2) * width for i in range(len(names))]
        bars = ax.bar(xs, values, width, label=f"R@{k}", color=f"C{j}", zorder=2)
        ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
        highest = max(highest, *values)
        if k in chance:
            ax.hlines(
                [chance[k]] * len(xs),
                [x - 0.45 * width for x in xs],
                [x + 0.45 * width for x in xs],
                colors="black",
                linewidth=1.5,
                zorder=3,
                label=f"chance: k/N (N={gallery_size})" if j == 0 else None,
            )
            highest = max(highest, chance[k])
    for i, n in enumerate(names):
        if is_dual(n):
            ax.axvspan(i - 0.45, i + 0.45, color="0.93", zorder=0)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, min(100.0, max(1.0, 1.15 * highest)))
    ax.set_ylabel("recall (%)")
    ax.yaxis.grid(True, color="0.85", linewidth=0.6, zorder=1)
    summary = ", ".join(
        f"{k.replace('mRecall_', '').replace('_query', '')} {metrics[k]:.1f}"
        for k in ("mRecall_single_query", "mRecall_dual_query", "mRecall")
        if k in metrics
    )
    ax.set_title(f"{title}\nmRecall: {summary}" if title else f"mRecall: {summary}", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("chance"))  # the bars first
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    if any(is_dual(n) for n in names):
        handles.append(Patch(facecolor="0.93", label="dual query"))
        labels.append("dual query")
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_recall_table(
    metrics: Mapping[str, float],
    path: Path,
    title: str = "",
    ks: Sequence[int] = K_RECALL_VALUES,
    gallery_size: int | None = None,
) -> Path:
    """`recall_figure` saved atomically as PNG at `path`."""
    fig = recall_figure(metrics, title, ks, gallery_size)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


@script_main(ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = run_evaluation(args)
    print(format_table(result["metrics"]))
    if result.get("dual_vs_single"):
        print(format_dual_vs_single(result["dual_vs_single"]))
    print(f"results: {result_path(Path(result['model_dir']), args.split, args.dataset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
