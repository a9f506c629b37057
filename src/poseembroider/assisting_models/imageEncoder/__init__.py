"""Image encoder: SMPLer-X ViT-B/16 on timm (weights by key mapping), or our CPU-sized ViT pretrained offline."""
