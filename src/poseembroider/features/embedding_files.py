"""Embed files of raw inputs into one safetensors file, in resumable chunks (`poseembroider embed`).

Inputs (`EmbeddingInputs`), each with an id per item:

- images: an image folder (every .png/.jpg/.jpeg/.bmp/.webp below it, sorted) or a glob; ids are the paths
  relative to the folder (to the glob's fixed prefix);
- poses: an `.npz` pose file (`text.pose_files` formats); ids are its `ids` array when it has one, else the
  row numbers;
- texts: a UTF-8 text file, one text per non-empty line; ids are the line numbers (1-based).

Output: `<out>.safetensors` holding, for each modality m given, `m` (N, D) modality tokens and `m_xbar` (N, D)
its single-modality representation x̄; with `combine`, the n-th items of every input describe one person and
the file holds `xbar` (N, D), the representation of them all together. The ids (JSON lists per modality), the
model, its weights fingerprint and the settings are in the file's metadata (`read_embeddings` returns them).

Large inputs are processed `chunk_size` items at a time; each finished chunk is written atomically into
`<out>.partial/` with a manifest of the job (model fingerprint, input ids, settings). A killed run started
again with the same job skips the finished chunks and ends with the same file; another job refuses the
stale folder (remove it or use `--overwrite`). The final file is assembled, written to a temporary name and
renamed, then the partial folder is removed: an output file is always complete.
"""

from __future__ import annotations

import glob as globbing
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from poseembroider.atomic_io import exclusive_lock, write_json_atomic
from poseembroider.encoders import weights_fingerprint
from poseembroider.modalities import MODALITIES
from poseembroider.models.pretrained import CheckpointError, read_safetensors_file, write_safetensors
from poseembroider.npz_files import read_npz
from poseembroider.representation import Representation
from poseembroider.text.pose_files import poses_from_mapping
from poseembroider.text.text_files import TextFileError, read_text_lines

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class EmbeddingJobError(ValueError):
    """Bad inputs or a partial folder of another job; the message names the file or flag at fault."""


@dataclass
class EmbeddingInputs:
    """The items of each modality given: `items[m]` what `Representation.embed_<m>` takes, `ids[m]` their ids."""

    items: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.items)

    def count(self, modality: str) -> int:
        return len(self.ids[modality])


def image_paths(folder_or_glob: str | Path) -> tuple[list[Path], list[str]]:
    """(image files, ids) of a folder (recursively) or a glob pattern, sorted by id."""
    text = str(folder_or_glob)
    folder = Path(text).expanduser()
    if folder.is_dir():
        paths = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        root = folder
    elif globbing.has_magic(text):
        paths = [Path(p) for p in globbing.glob(text, recursive=True) if Path(p).is_file()]
        root = Path(text.split("*")[0].split("?")[0].split("[")[0])
        root = root if root.is_dir() else root.parent
    else:
        raise EmbeddingJobError(f"--images {text}: neither a folder nor a glob pattern")
    ids = [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in paths]
    if not paths:
        raise EmbeddingJobError(f"--images {text}: no image file ({', '.join(IMAGE_SUFFIXES)}) found")
    order = sorted(range(len(paths)), key=lambda i: ids[i])
    return [paths[i] for i in order], [ids[i] for i in order]


def pose_items(path: str | Path) -> tuple[torch.Tensor, list[str]]:
    """(poses (N, J, 3), ids) of an `.npz` pose file; ids from its `ids` array when present."""
    path = Path(path)
    data = read_npz(path, "pose file")
    poses = torch.from_numpy(poses_from_mapping(data, path))
    if "ids" not in data:
        return poses, [str(i) for i in range(poses.shape[0])]
    ids = [str(v) for v in data["ids"].reshape(-1).tolist()]
    if len(ids) != poses.shape[0] or len(set(ids)) != len(ids):
        raise EmbeddingJobError(f"{path}: key 'ids' must hold {poses.shape[0]} distinct ids, one per pose")
    return poses, ids


def text_items(path: str | Path) -> tuple[list[str], list[str]]:
    """(texts, ids) of a text file: one text per non-empty line, ids the line numbers (1-based)."""
    try:
        texts, numbers = read_text_lines(path)
    except (FileNotFoundError, TextFileError) as err:
        raise EmbeddingJobError(f"--texts {err}") from None
    return texts, [str(n) for n in numbers]


def read_inputs(images: str | None = None, poses: str | None = None, texts: str | None = None) -> EmbeddingInputs:
    """The inputs of a job from the command's flags (at least one)."""
    inputs = EmbeddingInputs()
    if images is not None:
        inputs.items["image"], inputs.ids["image"] = image_paths(images)
    if poses is not None:
        try:
            inputs.items["pose"], inputs.ids["pose"] = pose_items(poses)
        except (FileNotFoundError, ValueError) as err:
            raise EmbeddingJobError(f"--poses {err}") from None
    if texts is not None:
        inputs.items["text"], inputs.ids["text"] = text_items(texts)
    if not inputs.items:
        raise EmbeddingJobError("give at least one of --images, --poses, --texts")
    return inputs


def _job_manifest(
    rep: Representation, model_name: str, inputs: EmbeddingInputs, combine: bool, chunk: int, normalization: str
) -> dict[str, Any]:
    ids_digest = hashlib.sha256(json.dumps(inputs.ids, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "model_class": type(rep.model).__name__,
        "model_fingerprint": weights_fingerprint(rep.model),
        "modalities": list(inputs.modalities),
        "combine": combine,
        "chunk_size": chunk,
        "pose_normalization": normalization,
        "ids_digest": ids_digest,
    }


def _chunk_outputs(
    rep: Representation, inputs: EmbeddingInputs, part: slice, combine: bool, normalization: str
) -> dict[str, torch.Tensor]:
    tokens = {
        m: rep.embed(m, inputs.items[m][part], normalization=normalization)
        for m in inputs.modalities
        if part.start < inputs.count(m)
    }
    outputs: dict[str, torch.Tensor] = {}
    if combine:
        outputs["xbar"] = rep.represent_tokens(tokens)
    else:
        for m, t in tokens.items():
            outputs[m] = t
            outputs[f"{m}_xbar"] = rep.represent_tokens({m: t})
    return {k: v.contiguous() for k, v in outputs.items()}


def check_output(out: str | Path, overwrite: bool = False, chunk_size: int = 1024, batch_size: int = 1) -> Path:
    """The output file of a job, refused before any work when it is not .safetensors, exists (without
    `overwrite`), or the chunk or batch size is below 1."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise EmbeddingJobError(f"--out {out}: the output file must end in .safetensors")
    if batch_size < 1 or chunk_size < 1:
        raise EmbeddingJobError("--batch-size and --chunk-size must be >= 1")
    if out.exists() and not overwrite:
        raise EmbeddingJobError(f"--out {out}: the file exists (use --overwrite to replace it)")
    return out


def embed_to_file(
    rep: Representation,
    model_name: str,
    inputs: EmbeddingInputs,
    out: str | Path,
    combine: bool = False,
    chunk_size: int = 1024,
    normalization: str = "bedlam",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Run the job (module doc) and return the output file; finished chunks of an interrupted run are reused.

    One process writes an output at a time: another job on the same `out` is refused at once
    (`OutputLockedError`, naming the file and the pid writing it)."""
    out = check_output(out, overwrite, chunk_size)
    with exclusive_lock(out, "embedding file"):
        check_output(out, overwrite, chunk_size)  # again under the lock: the other job may have just finished
        return _embed_to_file(rep, model_name, inputs, out, combine, chunk_size, normalization, overwrite, progress)


def _embed_to_file(
    rep: Representation,
    model_name: str,
    inputs: EmbeddingInputs,
    out: Path,
    combine: bool,
    chunk_size: int,
    normalization: str,
    overwrite: bool,
    progress: bool,
) -> Path:
    counts = {m: inputs.count(m) for m in inputs.modalities}
    if combine and len(set(counts.values())) > 1:
        raise EmbeddingJobError(f"--combine needs as many items of each input, got {counts}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    manifest = _job_manifest(rep, model_name, inputs, combine, chunk_size, normalization)
    if partial.exists() and not (partial / MANIFEST).is_file():
        # stopped between creating the folder and writing its manifest (a full disk, a kill): no chunk in it yet
        shutil.rmtree(partial)
    if partial.exists():
        found = _read_manifest(partial)
        if found != manifest:
            if not overwrite:
                raise EmbeddingJobError(
                    f"{partial} holds the chunks of another job ({_differences(found, manifest)}); "
                    "remove it or use --overwrite"
                )
            shutil.rmtree(partial)
    partial.mkdir(exist_ok=True)
    write_json_atomic(partial / MANIFEST, manifest)
    total = max(counts.values())
    starts = range(0, total, chunk_size)
    for index, start in enumerate(tqdm(starts, desc=f"embedding into {out.name}", unit="chunk", disable=not progress)):
        chunk_file = partial / f"chunk_{index:06d}.safetensors"
        if chunk_file.is_file():
            continue
        outputs = _chunk_outputs(rep, inputs, slice(start, start + chunk_size), combine, normalization)
        write_safetensors(outputs, chunk_file)
    _assemble(partial, len(starts), out, manifest, inputs)
    shutil.rmtree(partial)
    return out


def _read_manifest(partial: Path) -> dict[str, Any]:
    try:
        return json.loads((partial / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _differences(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
    return ", ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} now" for k in keys) or "no manifest"


def _assemble(partial: Path, n_chunks: int, out: Path, manifest: dict[str, Any], inputs: EmbeddingInputs) -> None:
    parts: dict[str, list[torch.Tensor]] = {}
    for index in range(n_chunks):
        chunk = partial / f"chunk_{index:06d}.safetensors"
        try:
            tensors, _ = read_safetensors_file(chunk)
        except CheckpointError as err:  # written atomically: damaged since, or not ours
            raise EmbeddingJobError(f"{err} Delete {partial} to redo the job from its start.") from None
        for key, tensor in tensors.items():
            parts.setdefault(key, []).append(tensor)
    tensors = {key: torch.cat(chunks) for key, chunks in parts.items()}
    metadata = {key: json.dumps(value) for key, value in manifest.items()}
    metadata["ids"] = json.dumps(inputs.ids)
    write_safetensors(tensors, out, metadata)  # the same bytes for the same embeddings (sorted metadata)


@dataclass(frozen=True)
class Embeddings:
    """An embedding file read back: `tensors` by name ((N, D) each), `ids` by modality, the job's `metadata`."""

    tensors: dict[str, torch.Tensor]
    ids: dict[str, list[str]]
    metadata: dict[str, Any]


def read_embeddings(path: str | Path) -> Embeddings:
    """Read a file written by `embed_to_file` (safetensors only: nothing is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such embedding file")
    tensors, raw = read_safetensors_file(path)  # a lying header or corrupt data: CheckpointError naming the file
    if "ids" not in raw:
        raise EmbeddingJobError(f"{path}: not an embedding file of `poseembroider embed` (no 'ids' metadata)")
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError as err:
            raise EmbeddingJobError(f"{path}: metadata {key!r} is not JSON ({err})") from None
    ids = metadata.pop("ids")
    if not (isinstance(ids, dict) and all(isinstance(v, list) for v in ids.values())):
        raise EmbeddingJobError(f"{path}: metadata 'ids' must map each modality to a list of ids")
    return Embeddings(tensors, {m: [str(i) for i in v] for m, v in ids.items()}, metadata)
