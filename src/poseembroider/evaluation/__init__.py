"""Metrics as pure functions: tensors in, numbers out (retrieval; mesh recovery and text metrics later)."""
