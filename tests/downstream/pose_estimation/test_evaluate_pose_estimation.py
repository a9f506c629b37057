"""The input sets `evaluate_pose_estimation` offers by default, per dataset family."""

import pytest

from poseembroider.downstream.pose_estimation import evaluate_pose_estimation


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("synthscript-quickstart_overlap30_res224_j16_sf11", ["images", "texts", "images+texts", "poses"]),
        ("threedpw-sf13", ["images", "poses"]),
        ("synthposes-quickstart_overlap30_res224_j16_sf11", ["texts", "poses"]),
    ],
)
def test_default_input_sets_are_those_the_dataset_offers(dataset, expected):
    args = evaluate_pose_estimation.build_parser().parse_args(["--model_path", "x", "--dataset", dataset])
    assert evaluate_pose_estimation.default_sets(args) == expected
