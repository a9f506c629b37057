"""Render throughput (images/s) at 256x192 (H x W) for a ~10k-vertex / ~20k-face mesh.

Ours: one persistent `MeshRenderer` (one pyrender `OffscreenRenderer`, shaders compiled once) renders
every image. Baseline: a new renderer, hence a new `pyrender.OffscreenRenderer` (context, shaders,
framebuffers), per image, the way a naive per-sample loop would do it. Both render the same sequence
of meshes (the mesh turned by 15 degrees per image) with the same camera, lights and colours; the
first images of both are checked to be identical. The matplotlib fallback is timed for reference.

The mesh is the SMPL-X body when a body model is available, else a subdivided icosphere (10,242
vertices, 20,480 faces).

    .venv/bin/python benchmarks/bench_render.py [--images 40] [--baseline-images 12]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import write_result
from poseembroider.rendering import MatplotlibRenderer, MeshRenderer, frame_points
from poseembroider.rendering.camera import rotation_y

HEIGHT, WIDTH = 256, 192


def load_mesh() -> tuple[np.ndarray, np.ndarray, str]:
    """(V, 3) vertices, (F, 3) faces and a description."""
    try:
        import torch

        from poseembroider.body.body_model import BodyModel

        model = BodyModel()
        with torch.no_grad():
            vertices = model(torch.zeros(1, 22, 3)).vertices[0].numpy()
        return vertices, model.faces, f"SMPL-X body ({model.kind})"
    except Exception:  # noqa: BLE001 - no body model file here: fall back to a sphere of the same size
        import trimesh

        sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
        return np.asarray(sphere.vertices), np.asarray(sphere.faces), "icosphere (subdivisions=5)"


def timed(render, meshes) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    images = [render(vertices) for vertices in meshes]
    return time.perf_counter() - start, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=40, help="images rendered by the persistent renderer")
    parser.add_argument("--baseline-images", type=int, default=12, help="images rendered by the baseline")
    args = parser.parse_args()

    vertices, faces, description = load_mesh()
    centre = vertices.mean(axis=0)
    turned = [(vertices - centre) @ rotation_y(15.0 * i).T + centre for i in range(max(args.images, 4))]
    camera = frame_points(vertices, WIDTH, HEIGHT, 0.05, elevation_deg=10.0)
    color = (0.62, 0.7, 0.85)

    with MeshRenderer(WIDTH, HEIGHT) as renderer:
        platform = renderer.platform
        for warm in turned[:2]:
            renderer.render(warm, faces, camera, color=color)
        ours_s, ours_images = timed(
            lambda v: renderer.render(v, faces, camera, color=color), turned[: args.images]
        )

    def render_with_new_renderer(v: np.ndarray) -> np.ndarray:
        with MeshRenderer(WIDTH, HEIGHT) as fresh:
            return fresh.render(v, faces, camera, color=color)

    render_with_new_renderer(turned[0])  # warm-up: library loading, driver caches
    base_s, base_images = timed(render_with_new_renderer, turned[: args.baseline_images])
    assert np.array_equal(ours_images[0], base_images[0]), "persistent and fresh renderers disagree"

    fallback = MatplotlibRenderer(WIDTH, HEIGHT)
    fallback.render(turned[0], faces, camera, color=color)
    mpl_s, _ = timed(lambda v: fallback.render(v, faces, camera, color=color), turned[:4])

    ours_rate = args.images / ours_s
    base_rate = args.baseline_images / base_s
    write_result(
        "render",
        {
            "mesh": description,
            "num_vertices": int(len(vertices)),
            "num_faces": int(len(faces)),
            "image_hw": [HEIGHT, WIDTH],
            "opengl_platform": platform,
            "ours_images_per_s": ours_rate,
            "baseline_images_per_s": base_rate,
            "ratio": ours_rate / base_rate,
            "ours_ms_per_image": 1000.0 / ours_rate,
            "baseline_ms_per_image": 1000.0 / base_rate,
            "matplotlib_images_per_s": 4 / mpl_s,
            "images": {"ours": args.images, "baseline": args.baseline_images},
            "ours": "one persistent MeshRenderer (one pyrender.OffscreenRenderer)",
            "baseline": "a new MeshRenderer, hence a new pyrender.OffscreenRenderer, per image",
        },
    )


if __name__ == "__main__":
    main()
