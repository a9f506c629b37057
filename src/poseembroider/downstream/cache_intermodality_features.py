"""Cache x̄ of every element of a dataset split for the downstream heads (original_system.md §7.2):

    python downstream/cache_intermodality_features.py --model_shortname poseembroider_model_bedlamscript \\
        --dataset bedlamscript-overlap30_res224_j16_sf11 --split train --input_types images

(also `python -m poseembroider.downstream.cache_intermodality_features`, `poseembroider
cache-intermodality-features`; under `torchrun --nproc_per_node N` every rank computes its chunks).
`--input_types`: any non-empty subset of images, poses, texts. Pair datasets (`bedlamfix-`, `synthfix-`)
get x̄ of element A and of element B (images and / or poses).

The cache goes to `<model folder>/intermodality_features/<dataset>_<split>_input-<types>` (or under
`--cache_dir`), named by `features.intermodality.intermodality_cache_dir`, the function every reader uses.
It is fingerprinted by the model's weights, the dataset, split, input types and caption index: a complete
matching cache is reused, an interrupted one resumed, a mismatched one refused with what differs
(`--overwrite` recomputes). The original printed a 'filemark' for `--cached_embeddings_file`; here the
trainers find the cache by the same function, so this prints the cache folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from poseembroider.config import non_negative_int
from poseembroider.downstream.input_types import INPUT_TYPES, InputTypesError
from poseembroider.features.intermodality import compute_intermodality_features
from poseembroider.training.distributed import destroy_distributed, init_distributed
from poseembroider.training.script_args import positive_int, script_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cache_intermodality_features.py", description="cache x̄ of a dataset split for the downstream heads"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model_path", help="representation model folder or training output folder")
    which.add_argument("--model_shortname", help="registered shortname of the representation model")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="(default: %(default)s)")
    parser.add_argument("--dataset", required=True, help="dataset name of the registry")
    parser.add_argument("--split", default="train", help="dataset split (default: %(default)s)")
    parser.add_argument(
        "--input_types", nargs="+", required=True, choices=INPUT_TYPES, help="what x̄ is made of (any subset)"
    )
    parser.add_argument(
        "--text_index", type=non_negative_int, default=0, help="caption of each sample (default: the first)"
    )
    parser.add_argument("--batch_size", type=positive_int, default=32, help="(default: %(default)s)")
    parser.add_argument(
        "--num_workers", type=non_negative_int, default=0, help="DataLoader workers (default: %(default)s)"
    )
    parser.add_argument(
        "--cache_dir", default=None, help="folder of the caches (default: <model>/intermodality_features)"
    )
    parser.add_argument("--feature_cache_dir", default=None, help="root of the frozen-feature caches")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="recompute a cache made with other settings")
    parser.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bar")
    return parser


@script_main(InputTypesError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    info = init_distributed(args.device)
    try:
        features = compute_intermodality_features(
            args.model_path or args.model_shortname,
            args.dataset,
            args.split,
            args.input_types,
            root=args.cache_dir,
            checkpoint=args.checkpoint,
            text_index=args.text_index,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            overwrite=args.overwrite,
            device=info.device,
            frozen_root=args.feature_cache_dir,
            progress=args.progress,
        )
    finally:
        destroy_distributed()
    if info.rank == 0:
        report = {
            "cache": str(features.store.directory),
            "rows": len(features),
            "dim": features.dim,
            "sides": list(features.sides),
            "fingerprint": features.store.fingerprint,
        }
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
