"""PoseEmbroider: one human-pose representation from image crops, SMPL-X poses and text.

Importing the package has no side effects; sub-packages are imported on demand.
"""

__version__ = "0.1.0"
