"""The quickstart: the main job on the offline world, one module per stage (`world`, `assisting`, `core`,
`mesh_recovery`) over a typed context (`context`); `run.run_quickstart` runs them all and writes `summary.json`."""

from poseembroider.quickstart.context import AssistingSizes, CoreSizes, DownstreamSizes, QuickstartContext
from poseembroider.quickstart.run import QUICKSTART_STEPS, run_quickstart

__all__ = ["QUICKSTART_STEPS", "AssistingSizes", "CoreSizes", "DownstreamSizes", "QuickstartContext", "run_quickstart"]
