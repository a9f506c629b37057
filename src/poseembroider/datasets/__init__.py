"""Datasets: processed-cache loaders (BEDLAM, synthetic, ...), their registry, and the synthetic world generator."""
