"""The fault suite's world: a tiny seeded four-class scene (bands B2, B3, B4 that each class lights up
differently, so band order matters), its labels, samples and a random-forest model; and the checks every case
makes: the message, the failure, the inputs byte-identical, nothing left in the folder, no process left."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pytest

from tests.core.synthetic import ORIGIN, PIXEL, write_points, write_raster
from tests.plugin.conftest import QgisProcess, geodl_provider, qgis_process  # noqa: F401 - fixtures

SIZE = 48
BANDS = ("B2", "B3", "B4")
# Mean of each band per class (quadrants): swapping B2 and B4 turns water into crop.
CLASS_MEANS = {"water": (3000, 800, 800), "tree": (800, 3000, 800), "crop": (800, 800, 3000), "developed": (3000, 3000, 800)}
QUADRANTS = (("water", "tree"), ("crop", "developed"))


def scene_array(seed: int = 0, order=(0, 1, 2)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.empty((3, SIZE, SIZE), np.uint16)
    h = SIZE // 2
    for qr in range(2):
        for qc in range(2):
            means = CLASS_MEANS[QUADRANTS[qr][qc]]
            for b in range(3):
                data[b, qr * h : (qr + 1) * h, qc * h : (qc + 1) * h] = rng.normal(means[b], 60, (h, h)).clip(1, None)
    return data[list(order)]


def write_scene(path: Path, order=(0, 1, 2), names=BANDS, seed: int = 0) -> Path:
    from osgeo import gdal

    write_raster(path, scene_array(seed, order), nodata=0)
    if names:
        ds = gdal.Open(str(path), gdal.GA_Update)
        for i, k in enumerate(order, start=1):
            ds.GetRasterBand(i).SetDescription(names[k] if len(names) == 3 else names[i - 1])
        ds = None
    return path


def truth_points(step: int = 4, classes: Iterable[str] | None = None):
    xy, names = [], []
    h = SIZE // 2
    for r in range(1, SIZE - 1, step):
        for c in range(1, SIZE - 1, step):
            name = QUADRANTS[r // h][c // h]
            if classes is None or name in classes:
                xy.append((ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL))
                names.append(name)
    return xy, names


def write_polygons(path: Path) -> Path:
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32621)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = ds.CreateLayer("polygons", srs, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    h = SIZE // 2 * PIXEL
    for qr in range(2):
        for qc in range(2):
            x0, y0 = ORIGIN[0] + qc * h, ORIGIN[1] - qr * h
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for x, y in ((x0, y0), (x0 + h, y0), (x0 + h, y0 - h), (x0, y0 - h), (x0, y0)):
                ring.AddPoint_2D(x, y)
            poly = ogr.Geometry(ogr.wkbPolygon)
            poly.AddGeometry(ring)
            f = ogr.Feature(lyr.GetLayerDefn())
            f.SetGeometry(poly)
            f.SetField("name", QUADRANTS[qr][qc])
            lyr.CreateFeature(f)
    ds = None
    return path


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """Built once: scene.tif, points.gpkg, polygons.gpkg, s.tfrecord.gz (+ .json), rf.geodl."""
    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.families import train_model
    from geodl_plugin.core.train.trainer import TrainParams

    root = tmp_path_factory.mktemp("fault_world")
    write_scene(root / "scene.tif")
    xy, names = truth_points()
    write_points(root / "points.gpkg", xy, names)
    write_polygons(root / "polygons.gpkg")
    labels = read_labels(root / "points.gpkg", "name")
    extract_samples([str(root / "scene.tif")], labels, root / "s.tfrecord.gz")
    train_model(
        TrainParams(
            samples=[str(root / "s.tfrecord.gz")],
            output=str(root / "rf.geodl"),
            family="rf",
            options={"n_trees": 8},
            split="random",
            test_fraction=0.0,
        )
    )
    return root


def stage(world: Path, dest: Path, *names: str) -> dict[str, Path]:
    """Copies of world files (with their sidecars) in ``dest``, so each case has its own folder."""
    out = {}
    for name in names:
        for p in world.glob(name + "*"):
            if p.name == name or p.name.startswith(name + "."):
                shutil.copy2(p, dest / p.name)
        out[name] = dest / name
    return out


def digest(paths: Iterable[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def listing(folder: Path) -> list[str]:
    """The folder's files, less the statistics cache GDAL writes beside a raster QGIS opened as a layer
    (``<raster>.aux.xml`` holding histograms): QGIS's own, not a geodl output. Any other ``.aux.xml`` (that of a
    temporary file, say) is listed."""
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    return [
        n
        for n in names
        if not (n.endswith(".aux.xml") and n[: -len(".aux.xml")] in names and "<Histograms>" in (folder / n).read_text(errors="replace"))
    ]


def child_pids() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    return {p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)}


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "gone"


@dataclass
class Recorded:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    results: dict | None = None
    exception: str = ""
    failed: bool = False


def recording_feedback(rec: Recorded, cancel_at: float | None = None):
    from qgis.core import QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        def reportError(self, error, fatalError=False):  # noqa: N802, N803 - Qt's names
            rec.errors.append(error)

        def pushWarning(self, warning):  # noqa: N802
            rec.warnings.append(warning)

        def pushInfo(self, info):  # noqa: N802
            rec.infos.append(info)

    feedback = Feedback()
    if cancel_at is not None and cancel_at < 0:
        feedback.cancel()  # cancelled before the step could finish, whatever the machine's speed
    elif cancel_at is not None:
        feedback.progressChanged.connect(lambda p: feedback.cancel() if p >= cancel_at else None)
    return feedback


def run_alg(alg: str, params: dict, cancel_at: float | None = None) -> Recorded:
    """processing.run through the real framework; records what the user would see."""
    import processing
    from qgis.core import QgsProcessingException

    rec = Recorded()
    feedback = recording_feedback(rec, cancel_at)
    try:
        rec.results = processing.run(
            f"geodl:{alg}", {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}, feedback=feedback
        )
    except QgsProcessingException as exc:
        rec.exception, rec.failed = str(exc), True
    return rec


@pytest.fixture
def fault(geodl_provider, tmp_path):  # noqa: F811 - the imported fixture
    """``fault(alg, params, message, inputs)``: the run must fail with ``message`` (a regex) as one clear error
    without a traceback; the inputs must be byte-identical afterwards; the folder must hold exactly what it held
    (no output, no temporary file), and no process may be left."""

    def check(
        alg: str, params: dict, message: str, inputs: Iterable[Path], folder: Path = tmp_path, cancel_at: float | None = None
    ) -> Recorded:
        inputs = [Path(p) for p in inputs]
        before, files, kids = digest(inputs), listing(folder), child_pids()
        rec = run_alg(alg, params, cancel_at)
        assert rec.results is None, f"geodl:{alg} succeeded but should have failed: {rec.results}"
        assert rec.failed, "the run must end with a QgsProcessingException"
        text = "\n".join(rec.errors + [rec.exception])
        assert re.search(message, text), f"expected /{message}/ in the error, got:\n{text}"
        shown = rec.errors + ([rec.exception] if rec.exception not in rec.errors else [])  # processing.run repeats
        assert sum(bool(re.search(message, e)) for e in shown) == 1, f"the message must be shown once:\n{text}"
        assert "Traceback" not in text, f"a user error must not show a traceback:\n{text}"
        assert digest(inputs) == before, "an input changed"
        assert listing(folder) == files, f"files were left behind: {set(listing(folder)) ^ set(files)}"
        assert child_pids() <= kids, "a worker process was left running"
        return rec

    return check


@pytest.fixture
def succeeds(geodl_provider, tmp_path):  # noqa: F811 - the imported fixture
    """``succeeds(alg, params, inputs)``: the run must succeed, inputs byte-identical, no temporary file left,
    no process left; returns what was recorded (warnings included)."""

    def check(alg: str, params: dict, inputs: Iterable[Path], folder: Path = tmp_path) -> Recorded:
        inputs = [Path(p) for p in inputs]
        before, kids = digest(inputs), child_pids()
        rec = run_alg(alg, params)
        assert rec.results is not None, f"geodl:{alg} failed: {rec.errors}"
        assert digest(inputs) == before, "an input changed"
        assert not [p for p in listing(folder) if ".part" in p], "a temporary file was left"
        assert child_pids() <= kids, "a worker process was left running"
        assert not [e for e in rec.errors if "warning" in e.lower()], "a warning was reported as an error"
        return rec

    return check


def one_line(text: str) -> bool:
    return "\n" not in text.strip() and "Traceback" not in text


__all__ = [
    "BANDS",
    "SIZE",
    "stage",
    "write_scene",
    "truth_points",
    "run_alg",
    "digest",
    "listing",
    "Recorded",
    "re",
    "one_line",
    "write_polygons",
]
