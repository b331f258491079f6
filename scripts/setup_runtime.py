"""`make install-runtime`: geodl's own ML runtime in a QGIS profile, from the command line (what the dock's
"Set up the ML runtime" button and geodl:setupruntime do). QGIS's own Python is not modified."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from geodl_plugin.core.runtime.environment import (  # noqa: E402
    BACKENDS,
    DEVICES,
    INSTALLERS,
    RuntimeSpec,
    create_runtime,
    describe_runtime,
    detect_gpu,
    recommended_spec,
)
from geodl_plugin.core.runtime.errors import GeoDLError  # noqa: E402
from geodl_plugin.core.runtime.progress import Progress  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path, help="the QGIS profile folder (the runtime goes to <profile>/geodl/runtime)")
    parser.add_argument("--backend", choices=BACKENDS, help="default: recommended for this machine")
    parser.add_argument("--device", choices=DEVICES, help="default: cuda when an NVIDIA GPU is present")
    parser.add_argument("--wheels", help="install offline from this folder of wheels")
    parser.add_argument("--python", default=None, help="the Python QGIS runs (default: this one)")
    parser.add_argument(
        "--installer", choices=INSTALLERS, default="auto", help="auto: uv where found (GEODL_UV, else on PATH), else venv and pip"
    )
    args = parser.parse_args()
    gpu = detect_gpu()
    print(f"NVIDIA GPU: {gpu.describe()}" if gpu else "No NVIDIA GPU found.")
    recommended = recommended_spec(gpu)
    spec = RuntimeSpec(args.backend or recommended.backend, args.device or recommended.device, args.wheels, installer=args.installer)
    root = args.profile / "geodl" / "runtime"
    print(f"Installing Keras on {spec.backend} ({spec.device}) into {root}")
    try:
        create_runtime(
            root, spec, base_python=args.python or sys.executable, progress=Progress(on_message=lambda m: print(f"  {m}", flush=True))
        )
    except GeoDLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(describe_runtime(root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
