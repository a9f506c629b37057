"""`config_field`: one field of a config dataclass, its default and its one-line help together.

Every config dataclass (model architectures, `TrainerConfig`) declares its fields this way, as open_clip's
`CLIPVisionCfg` does with comments, except that the help is kept in `field.metadata["help"]`, where the
command-line builder (`training.config.add_dataclass_arguments`) reads it::

    @dataclass
    class PoseVAEConfig:
        latentD: int = config_field(32, "size of the latent space")
"""

from __future__ import annotations

import copy
from dataclasses import field
from typing import Any

MUTABLE_DEFAULT_TYPES = (list, dict, set)


def config_field(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with `default` and `metadata={"help": help, **metadata}`.

    A mutable default (list, dict, set) becomes a `default_factory` returning a fresh copy, so instances
    never share it (a bare mutable default is refused by `dataclasses`).
    """
    meta = {"help": help, **metadata}
    if isinstance(default, MUTABLE_DEFAULT_TYPES):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


__all__ = ["config_field"]
