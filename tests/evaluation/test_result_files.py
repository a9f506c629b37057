from poseembroider.evaluation.result_files import previous_result, result_path, write_result


def test_result_is_reused_only_with_the_same_settings(tmp_path):
    path = result_path(tmp_path, "val", "synthscript-x")
    assert path == tmp_path / "result_val_synthscript-x.json"
    assert previous_result(path, {"seed": 1}) is None
    write_result(path, {"settings": {"seed": 1}, "metrics": {"mRecall": 3.5}})
    assert previous_result(path, {"seed": 1}) == {"settings": {"seed": 1}, "metrics": {"mRecall": 3.5}}
    assert previous_result(path, {"seed": 2}) is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
