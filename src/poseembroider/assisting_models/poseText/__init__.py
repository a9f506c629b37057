"""PoseText (§2.2 of the reference): pose-text retrieval whose text branch is PoseEmbroider's frozen text
encoder. `model_poseText` (model, shared retrieval base), `data` (datasets and batching), and the scripts
`train_poseText`, `evaluate_poseText`."""

from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig

__all__ = ["PoseText", "PoseTextConfig"]
