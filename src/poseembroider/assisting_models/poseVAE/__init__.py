"""PoseVAE (§2.1 of the reference): the pose VAE whose encoder, up to its 512-d layer, is PoseEmbroider's
frozen pose encoder. `model_poseVAE` (model), `loss` (likelihoods), `reconstruction_metrics`, and the
scripts `train_poseVAE`, `evaluate_poseVAE`, `demo_poseVAE` (streamlit)."""

from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig

__all__ = ["PoseVAE", "PoseVAEConfig"]
