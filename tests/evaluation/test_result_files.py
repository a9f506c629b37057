import json

from poseembroider.evaluation.result_files import (
    checkpoint_epoch,
    previous_result,
    result_path,
    reusable_result,
    save_result,
    write_result,
)


def test_result_is_reused_only_with_the_same_settings(tmp_path):
    path = result_path(tmp_path, "val", "synthscript-x")
    assert path == tmp_path / "result_val_synthscript-x.json"
    assert previous_result(path, {"seed": 1}) is None
    write_result(path, {"settings": {"seed": 1}, "metrics": {"mRecall": 3.5}})
    assert previous_result(path, {"seed": 1}) == {"settings": {"seed": 1}, "metrics": {"mRecall": 3.5}}
    assert previous_result(path, {"seed": 2}) is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_saved_result_records_the_checkpoint_epoch_and_is_reused(tmp_path):
    assert checkpoint_epoch(tmp_path) is None
    (tmp_path / "metrics.json").write_text(json.dumps({"epoch": 7, "metrics": {}}))
    settings = {"seed": 1, "data_size": None}
    assert reusable_result(tmp_path, "val", "d", settings) is None
    result = save_result(tmp_path, "val", "d", settings, 12, {"mRecall": 3.5}, body_model="procedural")
    assert result == {
        "model_dir": str(tmp_path),
        "epoch": 7,
        "dataset": "d",
        "split": "val",
        "size": 12,
        "settings": settings,
        "metrics": {"mRecall": 3.5},
        "body_model": "procedural",
    }
    assert json.loads(result_path(tmp_path, "val", "d").read_text()) == result
    assert reusable_result(tmp_path, "val", "d", settings) == result
    assert reusable_result(tmp_path, "val", "d", settings, overwrite=True) is None
    assert reusable_result(tmp_path, "val", "d", {"seed": 2, "data_size": None}) is None
