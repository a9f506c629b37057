"""BEDLAM processing: person-frames/s per worker; FPS and pair-mining memory at 50k vs the original's N x N.

`poseembroider data process-bedlam`, measured in one run.

Throughput: step `people` (original steps 1-3: motion files, body-model forward, BEDLAM camera model,
boxes, joints, selection criteria, image headers) on a fixture release in BEDLAM's layout (flat frames:
pixels are not read by this step, only image headers), with 1 and 2 worker processes; baseline: the same
step with one body-model forward per person-frame (as the original's per-frame loop), 1 worker.

Memory, each measurement in a fresh process (working memory = peak resident memory during the call minus
the resident memory with the inputs already made), with synthetic inputs of the real sizes: canonical
joints (N, 22, 3) float32, PoseText-sized features (N, 512), posecode categories (N, P), sequences of 36
frames:
- ours: `farthest_point_sampling` (one distance per candidate) and `mine_in/out_of_sequence_pairs` (chunks of
  B rows against all A), at N = 50,000;
- the original's approach: the full N x N distance matrix for FPS, and N x N similarity, time-difference and
  differing-posecode matrices for mining, measured at N = 5,000 / 10,000 / 20,000 (at 50,000 one float32
  N x N matrix is 10 GB, more than this shared machine can spare: the 50k row is N^2 x bytes, computed).

    .venv/bin/python benchmarks/bench_bedlam_processing.py [--n 50000] [--fps-k 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_DIR, write_result

NXN_SIZES = (5_000, 10_000, 20_000)


def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


# ------------------------------------------------------------------------------------------- memory


def _inputs(n: int, seed: int = 0):
    import numpy as np
    import torch

    from poseembroider.text.correcting.pair_statistics import NUM_MINING_POSECODES

    g = torch.Generator().manual_seed(seed)
    joints = torch.randn(n, 22, 3, generator=g) * 0.3
    centres = torch.nn.functional.normalize(torch.randn(max(1, n // 50), 512, generator=g), dim=-1)
    assign = torch.randint(len(centres), (n,), generator=g)
    features = torch.nn.functional.normalize(centres[assign] + 0.022 * torch.randn(n, 512, generator=g), dim=-1)
    codes = torch.randint(0, 4, (n, NUM_MINING_POSECODES), generator=g)
    sequence_ids = np.arange(n) // 36
    times = (np.arange(n) % 36) / 6.0
    return joints, features, codes, sequence_ids, times


def measure(what: str, n: int, fps_k: int) -> dict:
    """One measurement in this (fresh) process."""
    import numpy as np
    import torch

    from poseembroider.datasets.synthetic.metrics import farthest_point_sampling
    from poseembroider.datasets.synthetic.pair_mining import (
        MiningParams,
        mine_in_sequence_pairs,
        mine_out_of_sequence_pairs,
    )

    torch.set_num_threads(1)
    joints, features, codes, seq, times = _inputs(n)
    k = min(fps_k, n)
    before = _rss_mb()
    _reset_peak()
    start = time.perf_counter()
    extra: dict = {}
    if what == "fps_ours":
        farthest_point_sampling(joints.reshape(n, -1), k)
    elif what == "fps_nxn":  # the full distance matrix (MPJPE: one cdist per joint), then the greedy selection
        dist = torch.zeros(n, n)
        for s in range(0, n, 1024):
            for j in range(joints.shape[1]):
                dist[s : s + 1024] += torch.cdist(joints[s : s + 1024, j], joints[:, j])
        dist /= joints.shape[1]
        chosen, min_dist = [0], dist[0].clone()
        for _ in range(1, k):
            nxt = int(torch.argmax(min_dist))
            chosen.append(nxt)
            torch.minimum(min_dist, dist[nxt], out=min_dist)
    elif what == "mining_ours":
        params = MiningParams()
        pairs_in = mine_in_sequence_pairs(seq, times, codes, params)
        pairs_out = mine_out_of_sequence_pairs(seq, features, codes, params, np.random.default_rng(0))
        extra = {"pairs_in": len(pairs_in), "pairs_out": len(pairs_out)}
    elif what == "mining_nxn":  # the original's matrices: similarity, time difference, differing posecodes
        sim = features @ features.T
        sim.fill_diagonal_(0)
        time_diff = (
            torch.as_tensor(times, dtype=torch.float32)[None] - torch.as_tensor(times, dtype=torch.float32)[:, None]
        )
        # differing posecodes = P - equal categories; equal counts as one-hot products (a matmul per row chunk)
        onehot = torch.nn.functional.one_hot(codes, int(codes.max()) + 1).reshape(n, -1).float()
        differing = torch.empty(n, n, dtype=torch.int32)
        for s in range(0, n, 1024):
            differing[s : s + 1024] = codes.shape[1] - (onehot[s : s + 1024] @ onehot.T).round().int()
        top = sim.topk(min(100, n - 1), dim=1).indices
        extra = {
            "matrices_mb": round((sim.numel() * 4 + time_diff.numel() * 4 + differing.numel() * 4) / 2**20),
            "top": tuple(top.shape),
        }
    else:
        raise ValueError(what)
    seconds = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    return {
        "what": what,
        "n": n,
        "fps_k": k,
        "seconds": round(seconds, 2),
        "working_memory_mb": round(peak - before, 1),
        "inputs_mb": round(before, 1),
        **extra,
    }


def _subprocess(what: str, n: int, fps_k: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", what, str(n), str(fps_k)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


# ------------------------------------------------------------------------------------------- throughput


def throughput() -> dict:
    import torch

    from poseembroider.body.body_model import BodyModel
    from poseembroider.body.model_file import locate_model_file
    from poseembroider.datasets.process_bedlam import person_frames
    from poseembroider.datasets.process_bedlam.fixture import FIXTURE_SCENES, FixtureConfig, build_fixture
    from poseembroider.datasets.process_bedlam.pipeline import BedlamConfig, process_bedlam

    torch.set_num_threads(1)
    model_file = locate_model_file().path
    body = BodyModel().eval()
    out: dict = {"model": locate_model_file().description}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fixture = FixtureConfig(
            scenes=FIXTURE_SCENES[:2],
            sequences_per_scene=12,
            bodies_per_sequence=(3, 3),
            frames=150,
            render=False,
            short_motion=False,
        )
        build_fixture(tmp / "release", body, fixture)

        def run(name: str, workers: int) -> tuple[float, float, float]:
            cfg = BedlamConfig(
                tmp / "release",
                "train",
                workers=workers,
                scene_table=tmp / "release" / "scenes.csv",
                work_dir=tmp / name / "work",
                cache_dir=tmp / name / "cache",
                body_model_file=model_file.parent.parent,
                groups_per_unit=2,
            )
            start = time.perf_counter()
            stats = process_bedlam(cfg, steps=["people"])
            seconds = time.perf_counter() - start
            out["person_frames"] = stats["person_frames"]
            rates = stats["person_frames_per_s_per_worker"], stats["person_frames_per_cpu_s"]
            return stats["person_frames"] / seconds, *rates

        load = [round(os.getloadavg()[0], 2)]
        ours_1 = run("ours1", 1)
        ours_2 = run("ours2", 2)
        saved = person_frames.FORWARD_BATCH
        person_frames.FORWARD_BATCH = 1
        try:
            base = run("base", 1)
        finally:
            person_frames.FORWARD_BATCH = saved
        load.append(round(os.getloadavg()[0], 2))
    out.update(
        # per worker: person-frames / the workers' own seconds on their units (start-up excluded)
        person_frames_per_s_per_worker={"1_worker": ours_1[1], "2_workers": ours_2[1]},
        # per CPU second of a worker: the rate with a free core (the machine is shared)
        person_frames_per_cpu_s={"1_worker": ours_1[2], "2_workers": ours_2[2], "baseline": base[2]},
        # wall clock of the whole step (process start-up, planning, body-model loading per worker included)
        person_frames_per_s_wall={"1_worker": round(ours_1[0], 1), "2_workers": round(ours_2[0], 1)},
        baseline_person_frames_per_s_per_worker_one_forward_per_frame=base[1],
        ratio_batched_vs_per_frame=round(ours_1[1] / base[1], 2),
        load_average_start_end=load,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--fps-k", type=int, default=10_000, help="farthest-point subset size of the memory runs")
    parser.add_argument("--measure", nargs=3, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reuse-memory", action="store_true", help="keep the memory rows of the last results file")
    args = parser.parse_args()
    if args.measure:
        what, n, k = args.measure
        print(json.dumps(measure(what, int(n), int(k))))
        return
    result: dict = {
        "ours": "step 'people' batched per body (one forward per 256 frames), 1 and 2 workers; FPS with one distance "
        "per candidate; pair mining in chunks of 128 B rows",
        "baseline": "step 'people' with one forward per person-frame; FPS and mining on full N x N matrices (the "
        "original), measured up to N = 20,000",
    }
    result.update(throughput())
    previous = RESULTS_DIR / "bedlam_processing.json"
    if args.reuse_memory and previous.exists():
        last = json.loads(previous.read_text())
        result.update({k: v for k, v in last.items() if k.startswith(("fps_", "mining_"))})
        write_result("bedlam_processing", result)
        return
    memory = {}
    for what in ("fps_ours", "mining_ours"):
        memory[f"{what}_{args.n}"] = _subprocess(what, args.n, args.fps_k)
    for n in NXN_SIZES:
        for what in ("fps_nxn", "mining_nxn"):
            memory[f"{what}_{n}"] = _subprocess(what, n, args.fps_k)
    for what in ("fps", "mining"):
        ours = memory[f"{what}_ours_{args.n}"]
        result[f"{what}_ours_at_{args.n}"] = {
            "working_memory_mb": ours["working_memory_mb"],
            "seconds": ours["seconds"],
        }
        result[f"{what}_nxn_measured"] = {str(n): memory[f"{what}_nxn_{n}"]["working_memory_mb"] for n in NXN_SIZES}
    bytes_per_cell = {"fps": 4, "mining": 12}  # float32 distances; float32 sim + float32 time + int32 posecodes
    for what, b in bytes_per_cell.items():
        result[f"{what}_nxn_at_{args.n}_computed_mb"] = round(args.n**2 * b / 2**20)
    result["mining_pairs_at_n"] = {k: memory[f"mining_ours_{args.n}"][k] for k in ("pairs_in", "pairs_out")}
    result["fps_k"] = args.fps_k
    write_result("bedlam_processing", result)


if __name__ == "__main__":
    main()
