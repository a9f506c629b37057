"""Model building blocks: the pretrained-model mixin, projections, MLPs, frozen modality encoders, losses."""
