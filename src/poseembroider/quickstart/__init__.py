"""The quickstart: the main job on the offline world, one module per stage (`world`, `assisting`, `core`) over a
typed context (`context`); `run.run_quickstart` runs them all and writes `summary.json`."""

from poseembroider.quickstart.context import AssistingSizes, CoreSizes, QuickstartContext
from poseembroider.quickstart.run import QUICKSTART_STEPS, run_quickstart

__all__ = ["QUICKSTART_STEPS", "AssistingSizes", "CoreSizes", "QuickstartContext", "run_quickstart"]
