"""Fixtures of the scene tests: a few real poses on the procedural body, its clothing map, a renderer."""

from __future__ import annotations

import pytest
import torch

from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.synthetic.scene import PosedBody, create_scene_renderer
from poseembroider.datasets.synthetic.textures import BodySurfaceMap

N_POSES = 8


@pytest.fixture(scope="module")
def dev_poses() -> torch.Tensor:
    """(8, 22, 3) CMU dev poses, spread over the file: the poses of `bodies`."""
    return torch.from_numpy(load_cmu_dev_poses()[::13][:N_POSES])


@pytest.fixture(scope="module")
def bodies(body_model, dev_poses) -> list[PosedBody]:
    """`PosedBody`s of `dev_poses` on the procedural body model."""
    poses = dev_poses
    with torch.no_grad():
        output = body_model(poses)
    return [PosedBody.from_output(output, i, body_model.faces, poses) for i in range(len(poses))]


@pytest.fixture(scope="module")
def surface(body_model) -> BodySurfaceMap:
    """The clothing regions of the procedural body model."""
    return BodySurfaceMap.from_body_model(body_model)


@pytest.fixture(scope="module")
def renderer():
    """A crop-sized pyrender renderer; the module's render tests are skipped without an OpenGL context."""
    from poseembroider.rendering import MeshRenderer

    try:
        renderer = create_scene_renderer(backend="pyrender")
    except Exception as error:  # noqa: BLE001 - no offscreen context on this machine
        pytest.skip(f"no offscreen OpenGL context: {type(error).__name__}: {error}")
    assert isinstance(renderer, MeshRenderer)
    yield renderer
    renderer.close()
