import json

from poseembroider.registry import resolve
from poseembroider.training.run_results import best_checkpoint, publish_best


def test_best_checkpoint_prefers_best_with_metrics_else_last(tmp_path):
    assert best_checkpoint(tmp_path) == (tmp_path / "last", {})
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "metrics.json").write_text(json.dumps({"epoch": 3, "metrics": {"mRecall": 12.5}}))
    assert best_checkpoint(tmp_path) == (tmp_path / "best", {"mRecall": 12.5})


def test_publish_best_registers_on_the_main_process_only(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "metrics.json").write_text(json.dumps({"epoch": 1, "metrics": {"loss": 0.5}}))
    summary = publish_best({"epoch": 2}, tmp_path, "runresults_test_model", is_main=False)
    assert summary["shortname"] is None and summary["best_metrics"] == {"loss": 0.5}
    summary = publish_best({"epoch": 2}, tmp_path, "runresults_test_model", is_main=True)
    assert summary["shortname"] == "runresults_test_model" and summary["best_dir"] == str(tmp_path / "best")
    assert resolve("runresults_test_model") == tmp_path / "best"
