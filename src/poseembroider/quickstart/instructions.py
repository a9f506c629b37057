"""Quickstart steps: corrective instructions from the representation (the paper's Table 2, on the offline world).

`instruction_generator` trains an InstructionGenerator on PoseEmbroider's x̄ of the two poses of each pair
(`train_instruction_generation.py`, the published architecture at a CPU decoder size, with word dropout on
the teacher-forced inputs and the specificity term, both beyond the original, so a 2-epoch decoder reads
x̄: see `DownstreamSizes`), on the pairs mined in the pose pool (validated on the rendered fix dataset's val
pairs, which the pool's val split copies);
`instruction_evaluation` (a step of its own: only it needs PairText, so training need not wait for it)
evaluates it on the rendered fix val pairs for every input set they offer ((P_A,P_B), (V_A,V_B), (P_A,V_B),
(V_A,P_B), (V_A+P_A,V_B+P_B)) with greedy decoding (the original's), and from poses (the generator's own input
set) also with beam search and 'rerank' (greedy and nucleus candidates, the one kept by the generator as its own
listener over the distractor pairs it keeps): R-precision R@1/2/3 with the quickstart's PairText, BLEU-4,
ROUGE-L, METEOR, beside the ground-truth and random-text controls (`evaluate_instruction_generation.py`).
"""

from __future__ import annotations

import json
from typing import Any

from poseembroider.devices import torch_threads
from poseembroider.downstream.instruction_generation import (
    evaluate_instruction_generation,
    train_instruction_generation,
)
from poseembroider.evaluation.result_files import result_path
from poseembroider.models.pretrained import resolve_model_dir
from poseembroider.quickstart.context import QuickstartContext

SHORTNAME = "instructgen_model_poseembroider_synthfix"
"""The generator's shortname (the demo's default `instructgen_model_*`)."""

POSES = "P_A,P_B"
"""The input set the generator trains on."""


def step_instruction_generator(ctx: QuickstartContext) -> dict[str, Any]:
    """Train the generator from poses on the pool pairs (validation loss on the fix val pairs)."""
    sizes = ctx.downstream_sizes
    pairs_pool = ctx.require_pool_names()["pairs"]
    run_dir = ctx.run_dir("instruction_generator")
    argv = [
        "--dataset", pairs_pool,
        "--pretrained_representation_model", ctx.require_core_name("PoseEmbroider"),
        "--representation_model_input_types", "poses",
        "--text_decoder_name", "transformer_distilbertSynth",
        "--decoder_latentD", str(sizes.instruction_decoder_width), "--decoder_nhead", str(sizes.instruction_heads),
        "--decoder_nlayers", str(sizes.instruction_layers), "--decoder_ff", str(2 * sizes.instruction_decoder_width),
        "--decoder_dropout", "0", "--decoder_word_dropout", str(sizes.instruction_word_dropout),
        "--wloss_specificity", str(sizes.instruction_specificity),
        "--distractor_bank_size", str(sizes.instruction_distractors),
        "--lr", str(sizes.instruction_lr), "--lr_scheduler", "cosine", "--wd", "0.0001",
        "--batch_size", str(sizes.instruction_batch_size), "--epochs", str(sizes.instruction_epochs),
        "--val_every", "1", "--output_dir", str(run_dir), "--shortname", SHORTNAME,
        "--no_progress", "--no_tensorboard",
    ]  # fmt: skip
    with torch_threads(sizes.torch_threads):
        if train_instruction_generation.main(argv) != 0:
            raise RuntimeError(f"train_instruction_generation.py {' '.join(argv)} failed")
    model_dir = resolve_model_dir(SHORTNAME)
    best = json.loads((model_dir / "metrics.json").read_text()) if (model_dir / "metrics.json").exists() else {}
    return {
        "shortname": SHORTNAME,
        "best_epoch": best.get("epoch"),
        "val_loss": best.get("metrics", {}).get("loss"),
    }


def step_instruction_evaluation(ctx: QuickstartContext) -> dict[str, Any]:
    """Evaluate the generator on every input set of the fix val pairs, greedy and beam, beside the controls."""
    fix = ctx.require_synth().fix_name
    pairtext = ctx.results.get("pairtext", {}).get("shortname")
    if pairtext is None:
        raise RuntimeError("this quickstart step needs PairText for R-precision: run the 'pairtext' step first")
    if "instruction_generator" not in ctx.results:
        raise RuntimeError("this quickstart step evaluates the generator: run the 'instruction_generator' step first")
    samples = ctx.downstream_sizes.instruction_rerank_samples
    evaluation = [
        "--model_path", SHORTNAME, "--dataset", fix, "--split", "val", "--textret_model", pairtext,
        "--decodings", "greedy", "beam", "rerank", "--rerank_samples", str(samples), "--other_decodings", "greedy",
    ]  # fmt: skip
    with torch_threads(ctx.downstream_sizes.torch_threads):
        if evaluate_instruction_generation.main([*evaluation, "--device", "cpu", "--no_progress", "--overwrite"]) != 0:
            raise RuntimeError(f"evaluate_instruction_generation.py {' '.join(evaluation)} failed")
    result = json.loads(result_path(resolve_model_dir(SHORTNAME), "val", fix).read_text())
    metrics = result["metrics"]
    from_poses = metrics["results"][POSES]
    return {
        "shortname": SHORTNAME,
        "val_size": result["size"],
        "epoch": result.get("epoch"),
        "controls": metrics["controls"],
        "results": metrics["results"],
        "examples": metrics.get("examples", {}).get(POSES, {}),
        "references": metrics.get("references", []),
        "poses_greedy_R@1": from_poses["greedy"]["R@1"],
        "poses_rerank_R@1": from_poses[f"rerank{samples}"]["R@1"],
        "gt_R@1": metrics["controls"]["GT"]["R@1"],
        "half_gt_R@1": metrics["controls"]["GT"]["R@1"] / 2,
        "ten_times_random_R@1": 10 * metrics["controls"]["random"]["R@1"],
    }


INSTRUCTION_STEPS = {
    "instruction_generator": step_instruction_generator,
    "instruction_evaluation": step_instruction_evaluation,
}
"""Quickstart steps of this module (after the representation models)."""
