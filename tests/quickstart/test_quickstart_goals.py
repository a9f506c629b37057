import pytest

from poseembroider.quickstart.goals import GOALS, Goal, goal_rows, lookup, results_markdown, step_seconds


def _results(pe: float = 31.0, aligner: float = 30.5, single: float = 25.0, dual: float = 35.0) -> dict:
    core = {"val": {"mRecall": pe, "mRecall_single_query": single, "mRecall_dual_query": dual}, "chance_mRecall": 1.04}
    return {
        "posevae": {
            "val_metrics": {"mpjpe_mm": 55.0, "pampjpe_mm": 26.0},
            "val_mean_pose_baseline": {"mpjpe_mm": 324.0, "pampjpe_mm": 134.0},
            "seconds": 100.0,
        },
        "core_poseembroider": {**core, "seconds": 80.0},
        "core_aligner": {
            "val": {"mRecall": aligner, "mRecall_single_query": 30, "mRecall_dual_query": 29},
            "chance_mRecall": 1.04,
        },
    }


def test_lookup_walks_the_path_and_says_none_when_missing():
    results = _results()
    assert lookup(results, ("posevae", "val_metrics", "mpjpe_mm")) == 55.0
    assert lookup(results, ("posevae", "val_metrics", "nope")) is None
    assert lookup(results, ("image_encoder", "val", "pa_mpjpe_mm")) is None


def test_goal_rows_judge_numbers_inclusively_and_comparisons_strictly():
    rows = {row["goal"]: row for row in goal_rows(_results())}
    assert rows["PoseVAE reconstruction MPJPE, synthetic val"]["met"]  # 55 <= 60
    assert not rows["PoseVAE reconstruction PA-MPJPE, synthetic val"]["met"]  # 26 > 25
    assert rows["PoseVAE reconstruction PA-MPJPE, synthetic val"]["reference"] == 134.0
    assert rows["PoseEmbroider mRecall (9 query types)"]["met"]
    assert rows["PoseEmbroider ahead of the Aligner (mRecall)"]["met"]
    assert rows["PoseEmbroider: dual queries ahead of single (mRecall)"]["met"]
    assert not rows["Aligner: dual queries ahead of single (mRecall)"]["met"]  # 29 < 30
    # steps that did not run give no row (the image encoder, the text models, the real poses)
    assert "image encoder pose regression PA-MPJPE, synthetic val" not in rows
    tie = {row["goal"]: row for row in goal_rows(_results(pe=30.5, aligner=30.5))}
    assert not tie["PoseEmbroider ahead of the Aligner (mRecall)"]["met"]


def test_a_goal_against_a_missing_result_is_not_met():
    goal = Goal("x ahead of y", ("posevae", "seconds"), ("nowhere", "value"))
    (row,) = goal_rows(_results(), [goal])
    assert not row["met"] and "—" in row["target"]


def test_every_goal_path_names_a_quickstart_step():
    from poseembroider.quickstart import QUICKSTART_STEPS

    for goal in GOALS:
        assert goal.value[0] in QUICKSTART_STEPS, goal.label
        if isinstance(goal.target, tuple):
            assert goal.target[0] in QUICKSTART_STEPS, goal.label


def test_markdown_holds_every_goal_and_step_time():
    results = _results()
    summary = {"goals": goal_rows(results), "step_seconds": step_seconds(results), "total_seconds": 2160.0}
    table = results_markdown(summary)
    assert table.count("| yes |") + table.count("| **no** |") == len(summary["goals"])
    assert "| posevae | 100 |" in table and "| core_poseembroider | 80 |" in table
    assert "36.0 min, **over** the 35 min goal" in table
    within = results_markdown({**summary, "total_seconds": 1851.0})
    assert "30.9 min, within the 35 min goal" in within
    assert step_seconds(results) == pytest.approx({"posevae": 100.0, "core_poseembroider": 80.0})
