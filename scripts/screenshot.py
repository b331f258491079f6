"""Save a PNG of the GeoDL dock beside a map canvas showing a project (for the README).

``make screenshot`` runs it under Xvfb with the demo project; without a project file it builds a small
synthetic scene with two labelled classes itself.
Usage: python scripts/screenshot.py [--project demo-output/demo.qgz] --out resources/screenshot.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "plugin"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="")
    parser.add_argument("--out", default=str(REPO / "resources" / "screenshot.png"))
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()

    from qgis.core import QgsApplication, QgsProject
    from qgis.gui import QgsLayerTreeMapCanvasBridge, QgsMapCanvas
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QMainWindow

    app = QgsApplication([], True)
    app.initQgis()
    window = QMainWindow()
    window.setWindowTitle("QGIS — GeoDL")
    canvas = QgsMapCanvas(window)
    window.setCentralWidget(canvas)
    project = QgsProject.instance()
    QgsLayerTreeMapCanvasBridge(project.layerTreeRoot(), canvas, window)

    from geodl_plugin.gui.dock import GeoDLDock

    dock = GeoDLDock(window, project=project, canvas=canvas)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    if args.project and Path(args.project).exists():
        project.read(args.project)
    else:
        _scene(dock, canvas, project, Path(tempfile.mkdtemp(prefix="geodl-shot-")))
    window.resize(args.width, args.height)
    window.show()
    canvas.setDestinationCrs(project.crs() if project.crs().isValid() else canvas.mapSettings().destinationCrs())
    canvas.zoomToFullExtent()
    dock.steps.setCurrentWidget(dock.labelsPage)
    for _ in range(20):
        app.processEvents()
    canvas.refresh()
    canvas.waitWhileRendering()
    app.processEvents()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(args.out)
    print(f"wrote {args.out}" if ok else f"could not write {args.out}")
    dock.disconnect_project()
    from qgis_headless import finish

    # End here, while QgsApplication is still referenced: deleting it (as main's locals go) and QGIS's own
    # teardown segfault on 3.22 after the work is written.
    finish(0 if ok else 1)
    return 0 if ok else 1


def _scene(dock, canvas, project, work: Path) -> None:
    """A synthetic two-class scene, a few labels per class and a region."""
    from dock_support import ORIGIN, add_raster, raster_extent, setup_canvas, write_two_class_raster
    from qgis.core import QgsGeometry, QgsPointXY, QgsRectangle

    raster = add_raster(project, write_two_class_raster(work / "scene.tif", 120), "Synthetic scene")
    setup_canvas(canvas, [raster], raster_extent(120))
    project.setCrs(raster.crs())
    dock.set_output_dir(str(work / "geodl"))
    dock.set_rasters([raster])
    dock.add_class("water")
    dock.add_class("field")
    dock.ensure_labels_layer()
    x0, y0 = ORIGIN
    for i in range(24):
        cls = i % 2
        dock.session.add_point(QgsPointXY(x0 + 60 + cls * 600 + (i * 37) % 480, y0 - 60 - (i * 53) % 1080),
                               dock.palette.at(cls).id, raster.crs())
    dock.set_region(QgsGeometry.fromRect(QgsRectangle(x0 + 100, y0 - 1100, x0 + 1100, y0 - 100)), raster.crs())


if __name__ == "__main__":
    raise SystemExit(main())
