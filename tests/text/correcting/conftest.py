"""Fixtures of the instruction writer's tests (helpers live in `instruction_helpers.py`)."""

from __future__ import annotations

import pytest

from poseembroider.text.captioning.skeleton import skeleton_model


@pytest.fixture(scope="session")
def skeleton(body_model):
    """The joints-only skeleton of the session's procedural body model (fast captioning coordinates)."""
    return skeleton_model(body_model)
