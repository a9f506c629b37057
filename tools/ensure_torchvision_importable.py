"""Make `import torchvision` work in this virtual environment when no CPU build of torchvision exists.

The registry's torchvision wheels are CUDA builds whose compiled ops fail to load against CPU torch,
and the failure breaks `import torchvision`, hence `import timm` and parts of `transformers`.
When (and only when) the import fails, a one-line `.pth` file pre-registers the two modules whose
import raises, so the pure-Python part of torchvision (transforms, timm's dependencies) imports.
Compiled ops (nms, image decoders) stay unavailable; the toolkit uses PIL for image I/O.

Run with the interpreter of the environment to fix: `.venv/bin/python tools/ensure_torchvision_importable.py`.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

SHIM_NAME = "zz_poseembroider_torchvision_cpu_shim.pth"
SHIM_LINE = (
    "import sys, types; "
    "sys.modules.setdefault('torchvision._meta_registrations', types.ModuleType('torchvision._meta_registrations')); "
    "sys.modules.setdefault('torchvision._autograd_registrations', types.ModuleType('torchvision._autograd_registrations'))\n"
)


def torchvision_imports() -> tuple[bool, str]:
    """Try `import torchvision` in a fresh interpreter; returns (ok, last line of the error)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import torchvision, torchvision.transforms"], capture_output=True, text=True
    )
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return proc.returncode == 0, last


def main() -> int:
    shim = Path(sysconfig.get_paths()["purelib"]) / SHIM_NAME
    ok, error = torchvision_imports()
    if ok:
        print(f"torchvision imports{' (with the shim ' + str(shim) + ')' if shim.exists() else ''}: nothing to do")
        return 0
    if shim.exists():
        print(f"torchvision still fails with the shim in place: {error}", file=sys.stderr)
        return 1
    if "No module named 'torchvision'" in error:
        print("torchvision is not installed: nothing to fix")
        return 0
    print(f"torchvision fails to import ({error}); writing {shim}")
    tmp = shim.with_suffix(".tmp")
    tmp.write_text(SHIM_LINE)
    tmp.rename(shim)
    ok, error = torchvision_imports()
    if not ok:
        shim.unlink()
        print(f"the shim did not help ({error}); removed it", file=sys.stderr)
        return 1
    print("torchvision imports with the shim (compiled ops unavailable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
