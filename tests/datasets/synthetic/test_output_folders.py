"""`data synth` checks its output folders before any sampling or rendering."""

from __future__ import annotations

import pytest

from poseembroider.atomic_io import FolderNotWritableError
from poseembroider.cli import main
from poseembroider.datasets.synthetic import generate
from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the output folders were checked")


@pytest.mark.parametrize("which", ["cache_dir", "synth_root"])
def test_unwritable_output_folder_is_refused_before_any_rendering(tmp_path, monkeypatch, which):
    # It used to be found after every image was rendered. A regular file where the folder should be cannot be
    # written (as root too, where permission bits are not enforced).
    monkeypatch.setattr(generate, "RenderWorkers", _no_work)
    monkeypatch.setattr(generate, "generate_split", _no_work)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    dirs = {"synth_root": tmp_path / "synth", "cache_dir": tmp_path / "cache", which: blocked / "sub"}
    cfg = SynthConfig(name="tiny", n_train=4, n_val=2, seed=0, workers=1, **dirs)
    with pytest.raises(FolderNotWritableError, match=r"blocked/sub.* is not writable"):
        generate_synth(cfg)


def test_cli_reports_the_unwritable_folder_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(generate, "RenderWorkers", _no_work)
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    monkeypatch.setattr(generate.config, "DATA_CACHE_DIR", blocked)
    monkeypatch.setattr(generate.config, "SYNTH_DATA_DIR", tmp_path / "synth")
    assert main(["data", "synth", "--name", "tiny", "--n-train", "4", "--n-val", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset cache folder") and str(blocked) in err and "Traceback" not in err
