"""Installs the `poseembroider` package from `src/`: metadata, dependencies, extras, packages and package data
all live in pyproject.toml; this file only lets tools that still call `setup.py` build the same package."""

from setuptools import setup

setup()
