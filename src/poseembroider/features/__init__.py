"""Features of frozen encoders, computed once per dataset split and read back memory-mapped.

`FeatureStoreWriter` fills a store chunk by chunk (resumable, shardable by rank), `FeatureStore` reads it,
`cache_features` runs encoders over a dataset into a store. See `store.py` for the on-disk layout.
"""

from poseembroider.features.compute import cache_features
from poseembroider.features.store import FeatureCacheError, FeatureStore, FeatureStoreWriter, FieldSpec

__all__ = ["FeatureCacheError", "FeatureStore", "FeatureStoreWriter", "FieldSpec", "cache_features"]
