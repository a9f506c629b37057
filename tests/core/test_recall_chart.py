"""The R@k chart of `evaluate_core` (`recall_figure`, `plot_recall_table`): an axis fitted to the bars and one
chance mark per bar with a single legend entry."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from PIL import Image

from poseembroider.evaluate_core import plot_recall_table, recall_figure
from poseembroider.modalities import query_types

N = 512
KS = (1, 5, 10)


def _metrics(scale: float) -> dict[str, float]:
    """R@k of every query type, R@10 = `scale` for the first one, all below it."""
    metrics = {}
    for i, q in enumerate(query_types()):
        for k in KS:
            metrics[f"{q.name}_R@{k}"] = scale * (k / 10) ** 0.5 * (1 - 0.05 * i)
    metrics.update(mRecall_single_query=10.0, mRecall_dual_query=12.0, mRecall=11.0)
    return metrics


def test_the_axis_is_fitted_to_the_bars_not_to_100():
    metrics = _metrics(28.0)
    ax = recall_figure(metrics, "PoseEmbroider", gallery_size=N).axes[0]
    low, high = ax.get_ylim()
    assert low == 0 and np.isclose(high, 1.15 * 28.0)  # bars under 30: not a 0-100 axis
    assert recall_figure(_metrics(95.0)).axes[0].get_ylim()[1] == 100  # never past 100 %
    assert recall_figure(_metrics(0.0), gallery_size=N).axes[0].get_ylim()[1] > 0  # all zero: still an axis


def test_one_chance_mark_per_bar_at_its_own_k_and_one_legend_entry():
    metrics = _metrics(20.0)
    ax = recall_figure(metrics, gallery_size=N).axes[0]
    marks = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(marks) == len(KS)  # one set of marks per k ...
    bars = {container.get_label(): container for container in ax.containers}
    for k, collection in zip(KS, marks, strict=True):
        segments = collection.get_segments()
        assert len(segments) == len(query_types())  # ... one mark per bar of that k
        heights = {float(y) for segment in segments for _, y in segment}
        assert heights == {100.0 * k / N}  # at the recall of a random ranking, k / N
        for segment, bar in zip(segments, bars[f"R@{k}"].patches, strict=True):  # across its own bar
            assert bar.get_x() <= segment[0][0] < segment[1][0] <= bar.get_x() + bar.get_width()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["R@1", "R@5", "R@10", f"chance: k/N (N={N})", "dual query"]


def test_without_a_gallery_size_no_chance_is_drawn_and_the_png_is_written(tmp_path):
    ax = recall_figure(_metrics(12.0)).axes[0]
    assert not [c for c in ax.collections if isinstance(c, LineCollection)]
    assert not any(t.get_text().startswith("chance") for t in ax.get_legend().get_texts())
    path = plot_recall_table(_metrics(12.0), tmp_path / "result.png", "title", gallery_size=N)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 800
