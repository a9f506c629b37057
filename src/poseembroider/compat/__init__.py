"""Readers of the original PoseEmbroider's release files: its nine checkpoints and two frozen-encoder assets become
model folders of ours (config.json + model.safetensors), registered under the original shortnames.

- `release_files`: the release layout and the safe reader (`torch.load(weights_only=True)`, only
  `argparse.Namespace` allowed beyond tensors and containers);
- `state_mapping`: original keys -> ours by templates, with errors naming keys and both shapes;
- `importers`: the `Importer` registry (one per `args.model` kind: key mapping + config mapping) and the
  import context; `assisting` (PoseVAE, PoseText, PairText), `core` (PoseEmbroider, Aligner) and `heads` (HPSEstimator,
  InstructionGenerator) register theirs;
- `assets`: the SMPLer-X image encoder and the DistilBERT text backbone as folders of ours;
- `release_import.import_release`: the whole release at once (`poseembroider import-original`).
"""

from poseembroider.compat.importers import IMPORTERS, Importer, register_importer
from poseembroider.compat.release_files import ReleaseLayout, read_release_checkpoint
from poseembroider.compat.release_import import ImportReport, import_release

__all__ = [
    "IMPORTERS",
    "ImportReport",
    "Importer",
    "ReleaseLayout",
    "import_release",
    "read_release_checkpoint",
    "register_importer",
]
