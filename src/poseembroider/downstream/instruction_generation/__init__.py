"""Corrective instructions (original_system.md §2.10, §5.3): the text that turns pose A into pose B, written
from the frozen representations x̄ of A and B.

- `model_instruction_generation`: `InstructionGenerator` (TIRG fusion, one memory token, transformer decoder);
- `decoding`: greedy (the original's), beam search, nucleus sampling, by name;
- `data`: pair datasets with x̄ and instructions, the input sets of the evaluation, the finetuning mix;
- `evaluation`: generated texts against references (R-precision with PairText, BLEU-4, ROUGE-L, METEOR) and
  the GT / random controls;
- scripts `train_instruction_generation`, `evaluate_instruction_generation` with the original flags.
"""

from poseembroider.downstream.instruction_generation.model_instruction_generation import (
    InstructionGenerator,
    InstructionGeneratorConfig,
)

__all__ = ["InstructionGenerator", "InstructionGeneratorConfig"]
