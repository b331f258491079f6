"""geodl:mosaic, geodl:flatten, geodl:summarize and the regression families through the Processing framework
and through qgis_process.bin (the packaged plugin)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.core.test_mosaic import _write


def _tiles(tmp_path):
    scene = np.random.default_rng(5).integers(1, 5000, (3, 20, 30)).astype(np.uint16)
    folder = tmp_path / "tiles"
    folder.mkdir()
    _write(folder / "a.tif", scene[:, :, :16], nodata=0)
    _write(folder / "b.tif", scene[:, :, 16:], col=16, nodata=0)
    return scene, folder


def test_mosaic_algorithm_names_a_misfit(geodl_provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    scene, folder = _tiles(tmp_path)
    out = processing.run("geodl:mosaic", {"FOLDER": str(folder), "FORMAT": 3, "OUTPUT": str(tmp_path / "m.tif")})
    import rasterio

    with rasterio.open(out["OUTPUT"]) as ds:
        np.testing.assert_array_equal(ds.read(), scene)
    _write(tmp_path / "odd.tif", scene[:, :4, :4], crs="EPSG:4326")
    with pytest.raises(QgsProcessingException, match="odd.tif"):
        processing.run("geodl:mosaic", {"FOLDER": str(folder), "INPUT": [str(tmp_path / "odd.tif")],
                                        "OUTPUT": str(tmp_path / "bad.tif")})


@pytest.mark.slow
def test_roof_pipeline_in_qgis_process(qgis_process, tmp_path):
    import rasterio

    scene, folder = _tiles(tmp_path)
    run = qgis_process.run
    mosaic = run("mosaic", FOLDER=folder, OUTPUT=tmp_path / "m.vrt")["OUTPUT"]
    with rasterio.open(mosaic) as ds:
        np.testing.assert_array_equal(ds.read(), scene)
    table = run("flatten", INPUT=mosaic, OUTPUT=tmp_path / "t.csv")["OUTPUT"]
    rows = np.loadtxt(table, delimiter=",", skiprows=1)
    r, c = rows[:, 4].astype(int), rows[:, 5].astype(int)
    np.testing.assert_array_equal(rows[:, 6:9].T, scene[:, r, c])
