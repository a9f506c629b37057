"""PoseEmbroider: one human-pose representation from image crops, SMPL-X poses and text.

    import poseembroider
    poseembroider.list_models()                                   # registered shortnames
    rep = poseembroider.Representation.from_pretrained("poseembroider_model_quickstart")
    xbar = rep.represent(texts=["a person kneeling"])             # (1, 512)

The public face is `Representation` (the front door, `representation.py`), `load_pretrained` (any saved model
of the toolkit by folder or shortname), `list_models` (the registered shortnames) and `__version__`. They are
imported on first access (PEP 562), so `import poseembroider` stays light: it imports neither torch nor any
sub-package and has no side effects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY_EXPORTS: dict[str, tuple[str, str]] = {
    "Representation": ("poseembroider.representation", "Representation"),
    "load_pretrained": ("poseembroider.models.pretrained", "load_pretrained"),
    "list_models": ("poseembroider.registry", "list_models"),
}

__all__ = ["Representation", "__version__", "list_models", "load_pretrained"]

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time the names are resolved lazily
    from poseembroider.models.pretrained import load_pretrained
    from poseembroider.registry import list_models
    from poseembroider.representation import Representation


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module 'poseembroider' has no attribute {name!r}")
    module, attribute = _LAZY_EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
