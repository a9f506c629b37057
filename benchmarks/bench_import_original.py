"""Importing the original's nine released checkpoints: seconds and disk size, at the test fixtures' widths and at the
real release's widths.

A fake release in the original's format (`tests/compat/release_fixture.py`: random weights, original key layout,
torch pickles with an argparse.Namespace, the DistilBERT folder and the SMPLer-X file) is written once per size,
then imported by `poseembroider.compat.import_release` (ours: safe read, key and config mapping, frozen-encoder
folders, weight fingerprints, safetensors writes, registration). Baseline, in the same run: only reading every
file of the release with `torch.load(weights_only=True)`, the least any loader of these files does. The 'full' size
has the real widths (ViT-B SMPLer-X backbone, DistilBERT-base with 30,522 tokens, 512-d models): 1.7 GB of release
files in a temporary folder, ~1.7 GB of memory, about a minute; `--sizes tiny` alone takes seconds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import write_result

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "compat")]

from release_fixture import FULL_SIZES, Sizes, write_fake_release  # noqa: E402

from poseembroider import config  # noqa: E402
from poseembroider.compat.release_files import read_release_checkpoint  # noqa: E402
from poseembroider.compat.release_import import folder_bytes, import_release  # noqa: E402

SIZES = {"tiny": Sizes(), "full": FULL_SIZES}


def measure(size: str, root: Path) -> dict:
    release = root / size / "release"
    files = write_fake_release(release, seed=0, s=SIZES[size])
    checkpoints = [p for k, p in files.items() if k.endswith(("_bedlamscript", "_posefix"))]
    start = time.perf_counter()
    for path in checkpoints:
        read_release_checkpoint(path)
    torch.load(files["smplerx"], map_location="cpu", weights_only=True)
    read_seconds = time.perf_counter() - start
    config.MODELS_ROOT = root / size / "models"
    start = time.perf_counter()
    report = import_release(release, root / size / "models" / "pretrained")
    import_seconds = time.perf_counter() - start
    release_bytes = folder_bytes(release)
    return {
        "models": len(report.seconds),
        "frozen_encoder_folders": len(report.written) - len(report.seconds),
        "import_s": round(import_seconds, 2),
        "read_only_s": round(read_seconds, 2),
        "import_over_read": round(import_seconds / read_seconds, 2),
        "release_MB": round(release_bytes / 1e6, 1),
        "output_MB": round(report.total_bytes() / 1e6, 1),
        "seconds_per_shortname": {k: round(v, 2) for k, v in report.seconds.items()},
        "MB_per_folder": {k: round(folder_bytes(p) / 1e6, 1) for k, p in report.written.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["tiny", "full"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench_import_original_"))
    try:
        results = {size: measure(size, root) for size in args.sizes}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    headline = results.get("full", results.get("tiny"))
    write_result(
        "import_original",
        {
            "ours": f"import_release of the nine shortnames: {headline['import_s']} s, {headline['output_MB']} MB",
            "baseline": f"reading the release files only (torch.load weights_only): {headline['read_only_s']} s",
            **{f"{size}": result for size, result in results.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
