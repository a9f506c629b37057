"""Every Python example of the README runs as written (vector-quantize-pytorch's habit).

The examples use what `make quickstart` leaves behind: the synthetic dataset `synthscript-quickstart_…` and the
registered `poseembroider_model_synthscript`. Here a small dataset of the same name is generated in the tests'
isolated folders and tiny untrained models are registered under the quickstart's shortnames, so the examples
run unchanged on a fresh clone; what they print is not checked against trained numbers, only that they run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from poseembroider import config
from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth
from poseembroider.registry import register
from tiny_models import make_core_models

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXAMPLES = BLOCK.findall(README.read_text(encoding="utf-8"))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def quickstart_world(procedural_model_file, tmp_path_factory) -> Iterator[None]:
    """The quickstart's dataset name (tiny) and model shortnames (tiny, untrained), in folders of their own
    (the quickstart's own test makes a dataset of the same name with other sizes)."""
    root = tmp_path_factory.mktemp("readme_world")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DATA_CACHE_DIR", "SYNTH_DATA_DIR", "MODELS_ROOT"):
            patch.setattr(config, name, root / name.lower())
        generate_synth(SynthConfig(name="quickstart", n_train=6, n_val=6, workers=1))
        models = make_core_models(root / "models", ["a person kneeling", "arms raised"] * 5)
        register("poseembroider_model_synthscript", models["PoseEmbroider"])
        register("aligner_model_synthscript", models["Aligner"])
        yield


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 3
    assert any("Representation.from_pretrained" in code for code in EXAMPLES)


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example_{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code, quickstart_world, capsys):
    exec(compile(code, f"{README.name}:example", "exec"), {"__name__": "__readme__"})
