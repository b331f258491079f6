"""Save a PNG of the real QGIS desktop (menus, layers panel, map canvas) with the GeoDL dock, on a project.

``make screenshot`` runs it on the demo project: it installs the plugin into a throw-away QGIS profile, starts
the QGIS binary under Xvfb with that project, waits until the dock is up and the map has rendered, and grabs
QGIS's main window. Nothing of the user's own QGIS profile is touched.
Usage: python scripts/screenshot.py --project demo-output/demo.qgz --out docs/screenshot.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs inside QGIS (``qgis --code``): waits for the plugin and the project, then grabs the main window.
IN_QGIS = """
import time
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface, plugins
started = time.time()

def shoot():
    try:
        _shoot()
    except Exception as exc:  # a failure must end QGIS, not leave it waiting
        open(OUT + ".error", "w").write(repr(exc))
        iface.actionExit().trigger()

def _shoot():
    p = plugins.get("geodl")
    ready = p is not None and p.dock is not None and iface.mapCanvas().layers()
    if not ready and time.time() - started < 120:
        QTimer.singleShot(500, shoot)
        return
    if ready:
        p.dock.show()
        p.dock.raise_()
        p.dock.steps.setCurrentWidget(getattr(p.dock, TAB))
        iface.mainWindow().resize(WIDTH, HEIGHT)
        iface.mapCanvas().zoomToFullExtent()
        iface.mapCanvas().refreshAllLayers()
        QTimer.singleShot(4000, grab)
    else:
        iface.actionExit().trigger()

def grab():
    try:
        iface.mapCanvas().waitWhileRendering()
        iface.mainWindow().grab().save(OUT)
    except Exception as exc:
        open(OUT + ".error", "w").write(repr(exc))
    iface.actionExit().trigger()

QTimer.singleShot(1000, shoot)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="a QGIS project, e.g. demo-output/demo.qgz (make demo)")
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--tab", default="labelsPage", help="the dock step to show")
    args = parser.parse_args()
    project = Path(args.project).resolve()
    if not project.exists():
        print(f"no project at {project}: run `make demo` first")
        return 1
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geodl-shot-") as tmp:
        root = Path(tmp) / "profiles"
        subprocess.run(["make", "-s", "install", f"QGIS_PROFILE_DIR={root}/default"], cwd=REPO, check=True)
        script = Path(tmp) / "shoot.py"
        partial = out.parent / f".{out.name}.part.png"  # beside the target: the rename cannot cross disks
        script.write_text(f"OUT = {str(partial)!r}\nTAB = {args.tab!r}\nWIDTH, HEIGHT = {args.width}, {args.height}\n" + IN_QGIS)
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        env.update({"PYTHONPATH": sysconfig.get_paths()["purelib"], "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": tmp})
        subprocess.run(
            [
                "xvfb-run",
                "-a",
                "-s",
                f"-screen 0 {args.width}x{args.height}x24",
                "/usr/bin/qgis",
                "--profiles-path",
                str(root.parent),
                "--profile",
                "default",
                "--nologo",
                "--noversioncheck",
                "--project",
                str(project),
                "--code",
                str(script),
            ],
            env=env,
            timeout=300,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        error = Path(str(partial) + ".error")
        if not partial.exists():
            print("QGIS ended without a screenshot" + (f": {error.read_text()}" if error.exists() else ""))
            error.unlink(missing_ok=True)
            return 1
        os.replace(partial, out)  # never a half-written picture in docs/
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
