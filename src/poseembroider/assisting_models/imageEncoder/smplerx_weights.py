"""SMPLer-X ViT-B weights -> our timm-based backbone, with a key mapping instead of patched vendored code.

The original PoseEmbroider fetched SMPLer-X's `vit.py` with wget and edited it with sed (original_system.md
§10 #10). We build the same network on timm's `VisionTransformer` (`model_imageEncoder.ViTPoseBackbone`)
and translate the checkpoint's key names instead.

Where the weights live: `<TORCH_CACHE_DIR>/smplerx/smpler_x_b32.pth.tar` (the SMPLer-X release file), or
`<TORCH_CACHE_DIR>/smplerx/smpler_x_b32.backbone.safetensors` written once by the conversion below; the
safetensors file is preferred when both exist.

Reading follows the original: take `ckpt['network']`, keep the keys containing 'backbone.' or 'encoder.',
strip their leading 'module.' / 'backbone.' / 'encoder.' prefixes, load strictly. The `.pth.tar` is read
with `torch.load(weights_only=True)`, which only rebuilds tensors and plain containers: a file that needs
anything else (pickled classes or code) is refused with a message naming it. SMPLer-X's own trainer saves
`{'epoch', 'network', 'optimizer'}` (state dicts of tensors and numbers), which loads this way. If your copy
does not, convert it once, knowingly::

    python -m poseembroider.assisting_models.imageEncoder.smplerx_weights --trust-pickle

which unpickles the `.pth.tar` (only do this for a file from a source you trust: unpickling can run code)
and writes the backbone tensors as safetensors beside it; from then on only the safetensors file is read.

Key mapping (SMPLer-X / mmpose ViT name, prefixes stripped -> timm `VisionTransformer` name):

| SMPLer-X (mmpose `ViT`) | timm `VisionTransformer` | shape (ViT-B, 256x192) |
| --- | --- | --- |
| `patch_embed.proj.weight` / `.bias` | `patch_embed.proj.weight` / `.bias` | (768, 3, 16, 16) / (768,) |
| `pos_embed` | `pos_embed` | (1, 193, 768): num_patches + 1 |
| `task_tokens` | `reg_token` | (1, 31, 768) |
| `blocks.N.norm1.weight` / `.bias` | same | (768,) |
| `blocks.N.attn.qkv.weight` / `.bias` | same | (2304, 768) / (2304,) |
| `blocks.N.attn.proj.weight` / `.bias` | same | (768, 768) / (768,) |
| `blocks.N.norm2.weight` / `.bias` | same | (768,) |
| `blocks.N.mlp.fc1.weight` / `.bias` | same | (3072, 768) / (3072,) |
| `blocks.N.mlp.fc2.weight` / `.bias` | same | (768, 3072) / (768,) |
| `last_norm.weight` / `.bias` | `norm.weight` / `.bias` | (768,) |

Any other backbone key (e.g. a `cls_token`) maps to nothing and is reported as unexpected.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from poseembroider import config
from poseembroider.models.pretrained import CheckpointError, load_state_dict_file, save_state_dict

SMPLERX_SUBDIR = "smplerx"
SMPLERX_CHECKPOINT_NAME = "smpler_x_b32.pth.tar"
SMPLERX_CONVERTED_NAME = "smpler_x_b32.backbone.safetensors"
BACKBONE_MARKERS = ("backbone.", "encoder.")
STRIPPED_PREFIXES = ("module.", "backbone.", "encoder.")
_MAX_LISTED = 20

KEY_MAPPING: tuple[tuple[str, str], ...] = (
    ("patch_embed.proj.{p}", "patch_embed.proj.{p}"),
    ("pos_embed", "pos_embed"),
    ("task_tokens", "reg_token"),
    ("blocks.{n}.norm1.{p}", "blocks.{n}.norm1.{p}"),
    ("blocks.{n}.attn.qkv.{p}", "blocks.{n}.attn.qkv.{p}"),
    ("blocks.{n}.attn.proj.{p}", "blocks.{n}.attn.proj.{p}"),
    ("blocks.{n}.norm2.{p}", "blocks.{n}.norm2.{p}"),
    ("blocks.{n}.mlp.fc1.{p}", "blocks.{n}.mlp.fc1.{p}"),
    ("blocks.{n}.mlp.fc2.{p}", "blocks.{n}.mlp.fc2.{p}"),
    ("last_norm.{p}", "norm.{p}"),
)
"""(SMPLer-X name, timm name) templates of the module docstring's table: `{n}` a block index, `{p}` weight/bias."""

_PLACEHOLDERS = {"{n}": r"(?P<n>\d+)", "{p}": r"(?P<p>weight|bias)"}


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{n\}|\{p\})", template)
    return re.compile("".join(_PLACEHOLDERS.get(part, re.escape(part)) for part in parts))


_TO_TIMM = tuple((_template_regex(smplerx), timm) for smplerx, timm in KEY_MAPPING)
_TO_SMPLERX = tuple((_template_regex(timm), smplerx) for smplerx, timm in KEY_MAPPING)


def _apply(key: str, rules: Sequence[tuple[re.Pattern[str], str]]) -> str | None:
    for regex, template in rules:
        match = regex.fullmatch(key)
        if match:
            return template.format(**match.groupdict())
    return None


def smplerx_to_timm_key(key: str) -> str | None:
    """timm name of a (prefix-stripped) SMPLer-X backbone key, or None when no rule knows it."""
    return _apply(key, _TO_TIMM)


def timm_to_smplerx_key(key: str) -> str | None:
    """SMPLer-X name of a timm `VisionTransformer` key of our backbone, or None when it has none."""
    return _apply(key, _TO_SMPLERX)


def timm_to_smplerx_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename our backbone's state dict to SMPLer-X backbone names (prefix-free); unknown keys are an error."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        name = timm_to_smplerx_key(key)
        if name is None:
            unknown.append(key)
        else:
            out[name] = value
    if unknown:
        raise KeyError(f"no SMPLer-X name for backbone key(s) {_limited(unknown)}")
    return out


# --------------------------------------------------------------------------------------------- files


def smplerx_dir(torch_cache_dir: str | os.PathLike | None = None) -> Path:
    """`<TORCH_CACHE_DIR>/smplerx` (TORCH_CACHE_DIR read now, so test and env overrides apply)."""
    return Path(config.TORCH_CACHE_DIR if torch_cache_dir is None else torch_cache_dir) / SMPLERX_SUBDIR


def smplerx_checkpoint_path(torch_cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the SMPLer-X release checkpoint is expected."""
    return smplerx_dir(torch_cache_dir) / SMPLERX_CHECKPOINT_NAME


def smplerx_converted_path(torch_cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `convert_smplerx_checkpoint` writes the backbone tensors as safetensors."""
    return smplerx_dir(torch_cache_dir) / SMPLERX_CONVERTED_NAME


def find_smplerx_weights(torch_cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The SMPLer-X weight file to use (converted safetensors first, then the `.pth.tar`), or None."""
    for path in (smplerx_converted_path(torch_cache_dir), smplerx_checkpoint_path(torch_cache_dir)):
        if path.is_file():
            return path
    return None


def _limited(items: Sequence[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def missing_smplerx_file_error(path: Path) -> FileNotFoundError:
    """The error for an absent SMPLer-X file: names it and says where to put it or what to use instead."""
    return FileNotFoundError(
        f"SMPLer-X checkpoint not found: {path}. Put the SMPLer-X ViT-B release file "
        f"'{SMPLERX_CHECKPOINT_NAME}' (or its converted '{SMPLERX_CONVERTED_NAME}') in {path.parent} "
        "(set POSEEMBROIDER_TORCH_CACHE_DIR to move that folder), or use the offline image encoder "
        "trained by `poseembroider train-image-encoder`."
    )


def _torch_load_plain(path: Path) -> object:
    """`torch.load(weights_only=True)`; anything needing more than tensors and containers is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"refusing to load {path}: it needs unpickling of objects beyond tensors and plain containers "
            f"(torch.load(weights_only=True) said: {first}). Unpickling can run code. If you trust this file, "
            "convert it once with `python -m poseembroider.assisting_models.imageEncoder.smplerx_weights "
            f"--trust-pickle --checkpoint {path}`, which writes its backbone tensors to "
            f"{path.with_name(SMPLERX_CONVERTED_NAME)} (safetensors), read from then on."
        ) from None
    except Exception as err:  # noqa: BLE001 - RuntimeError (bad zip), EOFError, ... : not a readable torch file
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err}); it may be truncated"
        ) from None


def read_smplerx_network(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The `ckpt['network']` state dict of a SMPLer-X `.pth.tar` (read with weights_only=True).

    A `.safetensors` path (the converted file) is returned as stored. Raises FileNotFoundError naming the
    file when it is missing, CheckpointError when it is unsafe, unreadable or has no 'network' dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise missing_smplerx_file_error(path)
    if path.suffix == ".safetensors":
        return load_state_dict_file(path)
    ckpt = _torch_load_plain(path)
    if not isinstance(ckpt, Mapping) or "network" not in ckpt:
        top = sorted(map(str, ckpt)) if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(f"{path} has no 'network' entry (top level: {top}): not a SMPLer-X checkpoint")
    network = ckpt["network"]
    if not isinstance(network, Mapping):
        raise CheckpointError(f"{path}: ckpt['network'] is a {type(network).__name__}, not a state dict")
    bad = [str(k) for k, v in network.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: ckpt['network'] entries that are not tensors: {_limited(bad)}")
    return dict(network)


def extract_backbone_state(network: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys containing 'backbone.' or 'encoder.', with leading 'module.' / 'backbone.' / 'encoder.' removed."""
    out: dict[str, torch.Tensor] = {}
    for key, value in network.items():
        if not any(marker in key for marker in BACKBONE_MARKERS):
            continue
        name = key
        stripped = True
        while stripped:
            stripped = False
            for prefix in STRIPPED_PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        out[name] = value
    return out


# --------------------------------------------------------------------------------------------- loading


def load_smplerx_state_dict(
    backbone: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike = "state dict"
) -> None:
    """Load a prefix-free SMPLer-X backbone state dict into our timm backbone, strictly.

    Errors (CheckpointError, naming `source`): keys no rule maps (unexpected), backbone keys the file lacks
    (missing, given in SMPLer-X naming), shape mismatches (both names and both shapes).
    """
    expected = backbone.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected = []
    for key, value in state.items():
        name = smplerx_to_timm_key(key)
        if name is None or name not in expected:
            unexpected.append(key)
        else:
            mapped[name] = value
    mismatched = [
        f"{timm_to_smplerx_key(name) or name} (-> {name}): checkpoint {tuple(v.shape)} vs model "
        f"{tuple(expected[name].shape)}"
        for name, v in mapped.items()
        if tuple(v.shape) != tuple(expected[name].shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"{source}: shape mismatch for {len(mismatched)} SMPLer-X backbone key(s): {_limited(mismatched)}. "
            "Is the image encoder config the SMPLer-X ViT-B preset (smplerx_vitb32)?"
        )
    missing = [f"{timm_to_smplerx_key(k) or k} (-> {k})" for k in expected if k not in mapped]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing key(s) {_limited(missing)}")
        if unexpected:
            parts.append(f"unexpected key(s) {_limited(sorted(unexpected))}")
        raise CheckpointError(f"{source} does not match the SMPLer-X ViT backbone (strict load): " + "; ".join(parts))
    backbone.load_state_dict(mapped, strict=True)


def load_smplerx_weights(backbone: nn.Module, path: str | os.PathLike | None = None) -> Path:
    """Find (default: `find_smplerx_weights()`), read, filter, map and strictly load the SMPLer-X backbone.

    Returns the file read. Raises FileNotFoundError naming the expected file when there is none.
    """
    if path is None:
        found = find_smplerx_weights()
        if found is None:
            raise missing_smplerx_file_error(smplerx_checkpoint_path())
        path = found
    path = Path(path)
    network = read_smplerx_network(path)
    state = network if path.suffix == ".safetensors" else extract_backbone_state(network)
    if not state:
        raise CheckpointError(
            f"{path}: no key of ckpt['network'] contains {' or '.join(map(repr, BACKBONE_MARKERS))} "
            f"({len(network)} keys, e.g. {_limited(sorted(network)[:5])})"
        )
    load_smplerx_state_dict(backbone, state, source=path)
    return path


# --------------------------------------------------------------------------------------------- conversion


def convert_smplerx_checkpoint(
    checkpoint: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    trust_pickle: bool = False,
) -> Path:
    """Write the backbone tensors of a SMPLer-X `.pth.tar` as safetensors (prefix-free SMPLer-X names).

    The checkpoint is read with weights_only=True; only with `trust_pickle` is a file that needs full
    unpickling read with weights_only=False (which can run code from the file: trusted sources only).
    """
    src = Path(checkpoint) if checkpoint is not None else smplerx_checkpoint_path()
    dst = Path(output) if output is not None else src.with_name(SMPLERX_CONVERTED_NAME)
    if not src.is_file():
        raise missing_smplerx_file_error(src)
    try:
        network = read_smplerx_network(src)
    except CheckpointError as err:
        if not (trust_pickle and "refusing to load" in str(err)):
            raise
        ckpt = torch.load(src, map_location="cpu", weights_only=False)  # noqa: S614 - explicit user opt-in
        if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("network"), Mapping):
            raise CheckpointError(f"{src} has no 'network' state dict: not a SMPLer-X checkpoint") from None
        network = {str(k): v for k, v in ckpt["network"].items() if isinstance(v, torch.Tensor)}
    state = extract_backbone_state(network)
    if not state:
        raise CheckpointError(f"{src}: no backbone key ('backbone.' / 'encoder.') in ckpt['network']")
    return save_state_dict(state, dst, metadata={"source": src.name, "content": "SMPLer-X backbone"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert the SMPLer-X ViT-B checkpoint's backbone to safetensors (read without unpickling)."
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="default: <TORCH_CACHE_DIR>/smplerx/" + SMPLERX_CHECKPOINT_NAME
    )
    parser.add_argument("--output", type=Path, default=None, help="default: beside it, " + SMPLERX_CONVERTED_NAME)
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow full unpickling of the checkpoint when weights_only loading refuses it "
        "(can run code from the file: only for a file from a trusted source)",
    )
    args = parser.parse_args(argv)
    try:
        out = convert_smplerx_checkpoint(args.checkpoint, args.output, trust_pickle=args.trust_pickle)
    except (FileNotFoundError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
