"""The traps measured on Debian 12 + QGIS 3.22, each pinned by a test so a future bump fails loudly."""

from __future__ import annotations

import os
import subprocess
from importlib import metadata

import numpy as np


def test_numpy_below_2_keeps_gdal_array_working(tmp_path):
    assert int(np.__version__.split(".")[0]) < 2, "numpy >= 2 breaks Debian's osgeo.gdal_array"
    from osgeo import gdal, gdal_array

    path = str(tmp_path / "a.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 4, 3, 1, gdal.GDT_UInt16)
    gdal_array.BandWriteArray(ds.GetRasterBand(1), np.arange(12, dtype=np.uint16).reshape(3, 4))
    ds = None
    assert gdal_array.LoadFile(path).sum() == 66


def test_affine_below_3_keeps_rasterio_res_working(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    assert int(metadata.version("affine").split(".")[0]) < 3
    path = tmp_path / "b.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="uint8",
        crs="EPSG:32621",
        transform=from_origin(700000, -2700000, 30, 30),
    ) as ds:
        ds.write(np.ones((1, 2, 2), np.uint8))
    with rasterio.open(path) as ds:
        assert ds.res == (30.0, 30.0)


def test_rasterio_shares_qgis_gdal():
    import rasterio
    from osgeo import gdal

    assert rasterio.__gdal_version__.split(".")[:2] == gdal.__version__.split(".")[:2]


def test_qgis_process_wrapper_is_broken_and_the_binary_works():
    """Debian's /usr/bin/qgis_process adds QGIS_OPTS='--noversioncheck' (/etc/default/qgis), which 3.22's
    qgis_process rejects; geodl always calls qgis_process.bin."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    wrapper = subprocess.run(["/usr/bin/qgis_process", "--version"], capture_output=True, text=True, timeout=120, env=env)
    assert "--noversioncheck not known" in wrapper.stdout + wrapper.stderr, "the wrapper works again: geodl could use qgis_process directly"
    ok = subprocess.run(["/usr/bin/qgis_process.bin", "--version"], capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0 and "QGIS 3.22" in ok.stdout
