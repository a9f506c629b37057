"""PairText (§2.3 of the reference): retrieval between pose pairs and instructions, the evaluation model of
instruction generation. `model_pairText` (model) and the scripts `train_pairText`, `evaluate_pairText`;
the text branch, objective and data plumbing are PoseText's (`assisting_models.poseText`)."""

from poseembroider.assisting_models.pairText.model_pairText import PairText, PairTextConfig

__all__ = ["PairText", "PairTextConfig"]
