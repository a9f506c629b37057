"""Metrics as pure functions: tensors in, numbers out.

- `retrieval`, `core_retrieval`: chunked ground-truth ranks, R@k, mRecall of the 9 query types;
- `mesh_recovery`: MPJPE, PA-MPJPE, PVE (metres in, mm out), rotation error (degrees) per sample, the paper's
  22-joint protocol and the standard H36M 14-joint one;
- `text_generation`: BLEU-4, ROUGE-L, METEOR (offline WordNet) and R-precision over precomputed embeddings;
- `bootstrap`: percentile intervals of a mean and paired intervals of the difference between two methods;
- `result_files`: the result JSON written next to a checkpoint.
"""
