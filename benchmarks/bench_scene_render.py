"""Synthetic person crops (samples/s): render the crop window only vs render the whole frame and crop it.

Ours: `render_sample` renders the 256x192 crop window of the virtual 1280x720 frame directly (frame
camera with a shifted principal point and scaled focal lengths, environment shaded per pixel ray),
and computes everything a sample records (joints, visibility, cam_rot, criteria). Baselines, same
bodies and the same `SceneParams`: render the whole frame (1280x720, or 640x360) with the same
environment and lights, then crop it the original way (`crop_and_resize`: PIL crop, zero padding to
4:3, bicubic resize); their time covers the image only. The crops of ours and of the full-resolution
baseline are compared (mean absolute difference, 0-255). Bodies are real CMU dev poses on the
configured body model; parameters come from `SceneSampler` (seed 0), whose time is reported apart.
`--workers 2` also measures ours in 2 processes at once (samples/s for the machine).

    .venv/bin/python benchmarks/bench_scene_render.py [--samples 24] [--baseline-samples 6] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np
import torch

from common import time_call, write_result
from poseembroider.body.body_model import BodyModel
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.synthetic.crops import crop_and_resize
from poseembroider.datasets.synthetic.scene import (
    PosedBody,
    SceneSampler,
    create_scene_renderer,
    render_frame,
    render_sample,
)
from poseembroider.datasets.synthetic.textures import BodySurfaceMap
from poseembroider.rendering import MeshRenderer


def make_bodies(model: BodyModel, count: int) -> list[PosedBody]:
    poses = torch.from_numpy(load_cmu_dev_poses())
    poses = poses[torch.arange(count) * 7 % len(poses)]
    with torch.no_grad():
        output = model(poses)
    return [PosedBody.from_output(output, i, model.faces, poses) for i in range(count)]


def _worker(args: tuple[int, int]) -> float:
    """Render `count` samples in this process (own model, sampler and renderer); returns seconds."""
    worker, count = args
    torch.set_num_threads(1)
    model = BodyModel().eval()
    surface = BodySurfaceMap.from_body_model(model)
    bodies = make_bodies(model, count)
    sampler = SceneSampler(seed=worker)
    renderer = create_scene_renderer()
    params = sampler.sample(bodies[0].vertices, bodies[0].joints, index=0)
    render_sample(renderer, bodies[0], params, surface)  # warm-up
    start = time.perf_counter()
    for index, body in enumerate(bodies):
        render_sample(renderer, body, sampler.sample(body.vertices, body.joints, index=index), surface)
    elapsed = time.perf_counter() - start
    renderer.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=24, help="samples rendered by ours")
    parser.add_argument("--baseline-samples", type=int, default=6, help="samples rendered by the baselines")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel measurement (0: skip)")
    args = parser.parse_args()

    model = BodyModel().eval()
    surface = BodySurfaceMap.from_body_model(model)
    bodies = make_bodies(model, args.samples)
    sampler = SceneSampler(seed=0)
    sample_s = time_call(
        lambda: [sampler.sample(b.vertices, b.joints, index=i) for i, b in enumerate(bodies)], args.repeats
    )
    params = [sampler.sample(b.vertices, b.joints, index=i) for i, b in enumerate(bodies)]

    crop_renderer = create_scene_renderer()
    platform = getattr(crop_renderer, "platform", crop_renderer.backend_name)
    pairs = list(zip(bodies, params, strict=True))
    ours_s = time_call(lambda: [render_sample(crop_renderer, b, p, surface) for b, p in pairs], args.repeats)
    ours = [render_sample(crop_renderer, b, p, surface) for b, p in pairs]
    crop_renderer.close()

    smooth_renderer = create_scene_renderer(supersample=2)
    smooth_s = time_call(
        lambda: [render_sample(smooth_renderer, b, p, surface, supersample=2) for b, p in pairs], args.repeats
    )
    smooth_renderer.close()

    few = pairs[: args.baseline_samples]
    full_renderer = MeshRenderer(1280, 720)

    def full_frame_then_crop(scale: float, renderer) -> list[np.ndarray]:
        crops = []
        for (body, p), sample in zip(few, ours, strict=False):
            frame = render_frame(renderer, body, p, surface, scale=scale)
            crops.append(crop_and_resize(frame, np.round(sample.bbox * scale).astype(int)))
        return crops

    full_s = time_call(lambda: full_frame_then_crop(1.0, full_renderer), args.repeats)
    reference = full_frame_then_crop(1.0, full_renderer)
    full_renderer.close()
    half_renderer = MeshRenderer(640, 360)
    half_s = time_call(lambda: full_frame_then_crop(0.5, half_renderer), args.repeats)
    half_renderer.close()
    difference = float(
        np.mean([np.abs(a.image.astype(int) - b.astype(int)).mean() for a, b in zip(ours, reference, strict=False)])
    )

    parallel = {}
    if args.workers > 0:
        context = mp.get_context("spawn")
        with context.Pool(args.workers) as pool:
            start = time.perf_counter()
            times = pool.map(_worker, [(w, args.samples) for w in range(args.workers)])
            wall = time.perf_counter() - start
        parallel = {
            "workers": args.workers,
            "samples_per_s_machine": args.workers * args.samples / max(times),
            "samples_per_s_per_worker": float(np.mean([args.samples / t for t in times])),
            "pool_wall_s_including_startup": wall,
        }

    ours_rate = args.samples / ours_s
    full_rate = len(few) / full_s
    write_result(
        "scene_render",
        {
            "frame_hw": [720, 1280],
            "crop_hw": [256, 192],
            "opengl_platform": platform,
            "body_vertices": int(len(bodies[0].vertices)),
            "ours_samples_per_s": ours_rate,
            "ours_ms_per_sample": 1000.0 / ours_rate,
            "ours_supersample2_samples_per_s": args.samples / smooth_s,
            "baseline_1280x720_samples_per_s": full_rate,
            "baseline_640x360_samples_per_s": len(few) / half_s,
            "ratio_vs_1280x720": ours_rate / full_rate,
            "ratio_vs_640x360": ours_rate / (len(few) / half_s),
            "scene_sampling_ms_per_sample": 1000.0 * sample_s / args.samples,
            "mean_abs_difference_vs_1280x720_crop": difference,
            "parallel": parallel,
            "samples": {"ours": args.samples, "baseline": len(few), "repeats": args.repeats},
            "ours": "render_sample: one 256x192 render of the crop window + per-ray environment + bookkeeping",
            "baseline": "render_frame (whole frame, same scene) + crop_and_resize (PIL crop, pad, bicubic)",
        },
    )


if __name__ == "__main__":
    main()
