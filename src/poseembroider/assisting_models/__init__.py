"""Assisting models: the pretrained modality encoders (PoseVAE, PoseText, PairText, image ViT) and their trainers."""
