"""`import_release`: every checkpoint of an original release folder as model folders of ours, registered.

    from poseembroider.compat import import_release
    report = import_release("~/poseembroider_release", out="~/models/pretrained")
    Representation.from_pretrained("poseembroider_model_bedlamscript")

(also `poseembroider import-original --release-dir DIR --out DIR`). For each shortname of the release (or of
`shortnames`) the checkpoint is read safely (`release_files`), its kind (`args.model`) picks the importer
(`importers.IMPORTERS`), dependencies are imported first (a head needs its core model, a core model needs PoseVAE
and PoseText; the frozen SMPLer-X and DistilBERT folders are written when first needed), and
`<out>/<shortname>/` gets config.json + model.safetensors + `original_release.json` (source file, epoch, stored
args). Every folder is registered under
its shortname in `MODELS_ROOT/shortname_2_model_path.json`; configs refer to each other by these shortnames.

A shortname whose kind has no importer is reported in `ImportReport.skipped` (with the kinds that have one);
asked for explicitly (`shortnames`), it is an error. Each checkpoint is read once and dropped once imported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from poseembroider.compat import assisting, core, heads  # noqa: F401 - fill IMPORTERS
from poseembroider.compat.importers import ENCODER_SHORTNAMES, IMPORTERS, ImportContext, provenance
from poseembroider.compat.release_files import ReleaseLayout
from poseembroider.models.pretrained import CheckpointError

__all__ = ["ImportReport", "NoImporterError", "folder_bytes", "import_release"]


class NoImporterError(KeyError):
    """A release checkpoint of a kind that no registered importer handles."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass
class ImportReport:
    """What one `import_release` did: folders written (dependencies and assets included), seconds per
    shortname (including its dependencies' first import), what was skipped and why."""

    written: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def total_bytes(self) -> int:
        return sum(folder_bytes(p) for p in self.written.values())


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder`."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def import_release(
    release_dir: str | os.PathLike,
    out: str | os.PathLike,
    transformer_cache_dir: str | os.PathLike | None = None,
    torch_cache_dir: str | os.PathLike | None = None,
    shortnames: Sequence[str] | None = None,
) -> ImportReport:
    """Import the release's checkpoints (all, or `shortnames` and their dependencies) under `out`."""
    layout = ReleaseLayout(Path(release_dir), transformer_cache_dir, torch_cache_dir)
    out_dir = Path(out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = ImportContext(layout, out_dir)
    report = ImportReport(written=ctx.written)
    in_progress: list[str] = []

    def import_one(shortname: str) -> Path:
        if shortname in ctx.written:
            return ctx.written[shortname]
        if shortname in in_progress:
            raise CheckpointError(f"circular dependency between release models: {' -> '.join(in_progress)}")
        in_progress.append(shortname)
        try:
            start = time.perf_counter()
            ckpt = ctx.checkpoint(shortname)
            if ckpt.kind not in IMPORTERS:
                raise NoImporterError(
                    f"{ckpt.path}: no importer for kind {ckpt.kind!r} (args.model) yet; importers exist for "
                    f"{IMPORTERS.names()}"
                )
            model = IMPORTERS.get(ckpt.kind).convert(ckpt, ctx)
            folder = ctx.write(shortname, model, provenance(ckpt, shortname))
            report.seconds[shortname] = time.perf_counter() - start
            return folder
        finally:
            in_progress.pop()

    ctx.import_shortname = import_one
    wanted = list(shortnames) if shortnames else layout.shortnames()
    first = list(ENCODER_SHORTNAMES.values())  # the frozen encoders first: their DistilBERT copy is the named one
    wanted.sort(key=lambda name: first.index(name) if name in first else len(first))
    if not wanted:
        raise FileNotFoundError(
            f"no release checkpoint found in {layout.release_dir} (no shortname_2_model_path.json, no "
            "pretrained_models/<shortname>/checkpoint_release*.pth)"
        )
    for shortname in wanted:
        try:
            import_one(shortname)
        except NoImporterError as err:
            if shortnames:
                raise
            report.skipped[shortname] = str(err)
    return report
