"""The text backbone (§2.2 of the reference: the frozen DistilBERT under PoseText's text branch).

`model_textBackbone` (the frozen backbone, its registry and loaders, `load_text_encoder`), `model_mlm`
(masked-language modelling, the model the Trainer pretrains), `data` (corpus split and length-bucketed
batches), and the script `train_textBackbone` (pretraining of our offline `distilbertSynth`).
"""

from poseembroider.assisting_models.textBackbone.model_textBackbone import (
    TEXT_BACKBONE_PRESETS,
    TextBackbone,
    TextBackboneConfig,
    get_text_backbone,
    load_text_encoder,
)

__all__ = ["TEXT_BACKBONE_PRESETS", "TextBackbone", "TextBackboneConfig", "get_text_backbone", "load_text_encoder"]
