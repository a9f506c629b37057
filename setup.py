"""Installs the `poseembroider` package from `src/` (metadata lives in pyproject.toml)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages("src"),
    package_dir={"": "src"},
    package_data={"poseembroider": ["shortname_2_model_path.json", "data/cmu_mocap/*"]},
)
